//! The image a deploy releases: its reference parsed, and, for ECR images, the checks before
//! any change: the image exists, and, in the stack's own repositories, its scan has
//! completed without findings at or above `deploy.block_severity` (seed 003's "images
//! scanned before deployment").
//!
//! Images of other registries (Docker Hub, ghcr.io, ...) cannot be checked through AWS: ECS
//! pulls them when the tasks start, and a missing one fails the deployment, which then rolls
//! back like any failed deployment.

use anyhow::Result;
use aws_sdk_ecr::types::{FindingSeverity, ImageIdentifier, ScanStatus};

use crate::aws::{Aws, AwsResultExt};
use crate::config::Severity;
use crate::error::UsageError;

/// An image in an ECR registry: `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrImage {
    pub account: String,
    pub region: String,
    pub repository: String,
    /// A tag or a digest (`sha256:...`); `latest` when the reference names neither.
    pub reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl EcrImage {
    fn id(&self) -> ImageIdentifier {
        match &self.reference {
            Reference::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
            Reference::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
        }
    }

    fn shown(&self) -> String {
        match &self.reference {
            Reference::Tag(t) => format!("{}:{t}", self.repository),
            Reference::Digest(d) => format!("{}@{d}", self.repository),
        }
    }
}

/// Checks an image reference's syntax (exit 2 before any AWS call on a bad one).
pub fn check_syntax(image: &str) -> Result<(), UsageError> {
    let bad = |why: &str| {
        Err(UsageError::new(format!(
            "invalid --image `{image}`: {why}; expected e.g. \
             123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2 or public.ecr.aws/nginx/nginx:1.27"
        )))
    };
    if image.is_empty() || image.len() > 255 {
        return bad("it must be 1 to 255 characters");
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains whitespace");
    }
    if image.starts_with(['/', ':', '@']) || image.ends_with(['/', ':', '@']) {
        return bad("it has an empty part");
    }
    if let Some((_, digest)) = image.split_once('@') {
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return bad("a digest is sha256: and 64 hex digits");
        }
    }
    Ok(())
}

/// The ECR image an image reference names, `None` for another registry's.
pub fn parse_ecr(image: &str) -> Option<EcrImage> {
    let (host, path) = image.split_once('/')?;
    let mut parts = host.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let region = parts.next()?;
    if parts.next() != Some("amazonaws") {
        return None;
    }
    let (repository, reference) = match path.split_once('@') {
        // `repo:tag@sha256:...`: the digest decides, the tag is only a label.
        Some((repo, digest)) => (
            repo.split_once(':').map_or(repo, |(r, _)| r),
            Reference::Digest(digest.to_string()),
        ),
        None => match path.rsplit_once(':') {
            Some((repo, tag)) => (repo, Reference::Tag(tag.to_string())),
            None => (path, Reference::Tag("latest".into())),
        },
    };
    Some(EcrImage {
        account: account.to_string(),
        region: region.to_string(),
        repository: repository.to_string(),
        reference,
    })
}

/// What the checks found, for the progress output.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// Not an ECR image: nothing to check through AWS.
    Unchecked,
    /// Exists; not in the stack's repositories, so not scan-gated.
    Exists,
    /// Exists and its scan passed (`allowed`: it has findings `--allow-vulnerable` let through).
    Scanned { allowed: Option<String> },
}

/// The checks before any change; a refusal is a [`UsageError`] naming what to do.
pub async fn check(
    aws: &Aws,
    image: &str,
    stack_repositories: &[String],
    block: Severity,
    allow_vulnerable: bool,
) -> Result<Checked> {
    let Some(ecr_image) = parse_ecr(image) else {
        return Ok(Checked::Unchecked);
    };
    let here = aws.for_region(&ecr_image.region);
    let ecr = here.ecr();
    let shown = ecr_image.shown();
    let found = ecr
        .describe_images()
        .registry_id(&ecr_image.account)
        .repository_name(&ecr_image.repository)
        .image_ids(ecr_image.id())
        .send()
        .await
        .aws("ecr:DescribeImages", &shown);
    match found {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.code.as_deref(),
                Some("ImageNotFoundException" | "RepositoryNotFoundException")
            ) =>
        {
            return Err(UsageError::new(format!(
                "image {image} does not exist ({}): push it first",
                e.code.as_deref().unwrap_or_default()
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    }
    if !stack_repositories.contains(&ecr_image.repository) {
        return Ok(Checked::Exists);
    }
    let scan = ecr
        .describe_image_scan_findings()
        .registry_id(&ecr_image.account)
        .repository_name(&ecr_image.repository)
        .image_id(ecr_image.id())
        .send()
        .await
        .aws("ecr:DescribeImageScanFindings", &shown);
    let scan = match scan {
        Ok(s) => s,
        Err(e) if e.code.as_deref() == Some("ScanNotFoundException") => {
            return Err(UsageError::new(format!(
                "image {image} has not been scanned: the stack's repositories scan on push; \
                 push it again or run `aws ecr start-image-scan --repository-name {} \
                 --image-id ...`, then deploy",
                ecr_image.repository
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let status = scan.image_scan_status().and_then(|s| s.status());
    // Basic scanning ends COMPLETE; enhanced scanning (Amazon Inspector, set for the
    // registry) keeps the image ACTIVE, monitored, with its findings counted.
    if !matches!(status, Some(ScanStatus::Complete | ScanStatus::Active)) {
        return Err(UsageError::new(format!(
            "the scan of image {image} has not completed (status {}): wait for it, then deploy",
            status.map(|s| s.as_str()).unwrap_or("unknown")
        ))
        .into());
    }
    let counts = scan
        .image_scan_findings()
        .and_then(|f| f.finding_severity_counts());
    let blocking: Vec<String> = Severity::ALL
        .iter()
        .filter(|s| **s >= block)
        .filter_map(|s| {
            let n = counts
                .and_then(|c| c.get(&FindingSeverity::from(s.name())))
                .copied()
                .unwrap_or(0);
            (n > 0).then(|| format!("{n} {}", s.name()))
        })
        .collect();
    if blocking.is_empty() {
        return Ok(Checked::Scanned { allowed: None });
    }
    let findings = blocking.join(", ");
    if allow_vulnerable {
        return Ok(Checked::Scanned {
            allowed: Some(findings),
        });
    }
    Err(UsageError::new(format!(
        "image {image} has scan findings at or above {} ({findings}): fix them, or deploy \
         with --allow-vulnerable to accept them (deploy.block_severity sets the threshold)",
        block.name()
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_references_are_parsed_and_others_are_not() {
        let i = parse_ecr("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:1.4.2").unwrap();
        assert_eq!(
            (i.account.as_str(), i.region.as_str(), i.repository.as_str()),
            ("123456789012", "eu-west-1", "team/web")
        );
        assert_eq!(i.reference, Reference::Tag("1.4.2".into()));
        let d = format!("sha256:{}", "a".repeat(64));
        let i = parse_ecr(&format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{d}"
        ))
        .unwrap();
        assert_eq!(i.reference, Reference::Digest(d));
        let i = parse_ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com/web").unwrap();
        assert_eq!(i.reference, Reference::Tag("latest".into()));
        for other in [
            "nginx:1.27",
            "public.ecr.aws/nginx/nginx:1.27",
            "ghcr.io/org/app:2",
            "12345.dkr.ecr.us-east-1.amazonaws.com/web:1",
            "localhost:5000/web:1",
        ] {
            assert_eq!(parse_ecr(other), None, "{other}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_the_rule() {
        for bad in [
            "",
            "web 2",
            "web:",
            "/web",
            "web@sha256:abc",
            &"a".repeat(256),
        ] {
            let e = check_syntax(bad).unwrap_err().0;
            assert!(
                e.contains("invalid --image") && e.contains("expected"),
                "{bad}: {e}"
            );
        }
        check_syntax("123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2").unwrap();
        check_syntax(&format!("nginx@sha256:{}", "0".repeat(64))).unwrap();
    }
}
