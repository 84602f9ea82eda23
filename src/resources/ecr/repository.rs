//! `ecr:repository`: a private ECR repository with images scanned on push, immutable tags
//! and encryption with a customer-managed KMS key.
//!
//! A repository's encryption is fixed when it is created: one found with other encryption is
//! an error, not a change; scan-on-push and tag immutability are repaired in place.
//! Repositories are adopted only if they carry the stack tag (ECR is invisible to the
//! Resource Groups Tagging API in moto, so they are found by name and their tags read with
//! ListTagsForResource). Deletion uses `force`: the images go with the repository (ECR
//! refuses otherwise).

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "ecr:repository";

pub struct EcrRepository;

/// A repository the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct RepositorySpec<'a> {
    pub name: &'a str,
    /// The stack key's ARN (a plan-mode placeholder until the key exists).
    pub key_arn: &'a str,
    /// The configured service it holds the images of (recorded as `service`).
    pub service: &'a str,
}

/// Whether a repository is encrypted with the KMS key `key_arn` (ECR reports the key's ARN).
pub fn encrypted_with(repo: &Repository, key_arn: &str) -> bool {
    repo.encryption_configuration().is_some_and(|e| {
        e.encryption_type() == &EncryptionType::Kms && e.kms_key() == Some(key_arn)
    })
}

pub async fn describe(ctx: &StepCtx, name: &str) -> Result<Option<Repository>> {
    Ok(ctx
        .aws()
        .ecr()
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .aws("ecr:DescribeRepositories", name)
        .not_found_ok()?
        .and_then(|o| {
            o.repositories
                .unwrap_or_default()
                .into_iter()
                .find(|r| r.repository_name() == Some(name))
        }))
}

/// The repository if it exists and carries this stack's tag; an error if it exists
/// without (someone else's repository of the same name is never adopted).
pub async fn find(ctx: &StepCtx, name: &str) -> Result<Option<Repository>> {
    let Some(repo) = describe(ctx, name).await? else {
        return Ok(None);
    };
    let arn = repo.repository_arn().unwrap_or_default();
    let tags = ctx
        .aws()
        .ecr()
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws("ecr:ListTagsForResource", name)
        .not_found_ok()?;
    let Some(tags) = tags else {
        return Ok(None); // deleted between the two calls
    };
    let tag = tags
        .tags()
        .iter()
        .find(|t| t.key() == STACK_TAG)
        .map(|t| t.value());
    ctx.check_ours("ECR repository", name, tag)?;
    Ok(Some(repo))
}

async fn create(ctx: &StepCtx, name: &str, key_arn: &str) -> Result<Found> {
    let tags = ctx
        .tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building ECR tags")?;
    let encryption = EncryptionConfiguration::builder()
        .encryption_type(EncryptionType::Kms)
        .kms_key(key_arn)
        .build()
        .context("building the ECR encryption configuration")?;
    let out = ctx
        .aws()
        .ecr()
        .create_repository()
        .repository_name(name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .encryption_configuration(encryption)
        .set_tags(Some(tags))
        .send()
        .await
        .aws("ecr:CreateRepository", name)?;
    let repo = out
        .repository
        .context("CreateRepository returned no repository")?;
    Ok(found(name, &repo))
}

fn found(name: &str, repo: &Repository) -> Found {
    Found::new(name)
        .arn(repo.repository_arn().unwrap_or_default())
        .attr("uri", repo.repository_uri().unwrap_or_default())
}

/// Scan-on-push and tag immutability can change in place; encryption cannot.
async fn fix(ctx: &StepCtx, name: &str, key_arn: &str, repo: &Repository) -> Result<()> {
    let ecr = ctx.aws().ecr();
    if !is_pending(key_arn) {
        let enc = repo.encryption_configuration();
        if !encrypted_with(repo, key_arn) {
            bail!(
                "ECR repository {name} is encrypted with {} rather than the stack's KMS key \
                 {key_arn}; ECR cannot change a repository's encryption: delete the \
                 repository (its images go with it) and rerun `up`",
                enc.map(|e| format!(
                    "{} {}",
                    e.encryption_type().as_str(),
                    e.kms_key().unwrap_or("(AWS managed key)")
                ))
                .unwrap_or_else(|| "AES256".to_string())
            );
        }
    }
    let scanning = repo
        .image_scanning_configuration()
        .is_some_and(|s| s.scan_on_push());
    if !scanning {
        ctx.change(KIND, name, "turn on scan on push", || async {
            ecr.put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .send()
                .await
                .aws("ecr:PutImageScanningConfiguration", name)?;
            Ok(())
        })
        .await?;
    }
    if repo.image_tag_mutability() != Some(&ImageTagMutability::Immutable) {
        ctx.change(KIND, name, "make image tags immutable", || async {
            ecr.put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::Immutable)
                .send()
                .await
                .aws("ecr:PutImageTagMutability", name)?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Finds or creates the repository `spec` (recorded with its ARN, URI and service), then
/// repairs what can change in place.
pub async fn ensure(ctx: &StepCtx, spec: &RepositorySpec<'_>) -> Result<Found> {
    let RepositorySpec {
        name,
        key_arn,
        service,
    } = *spec;
    let existing = ctx.look_up(KIND, name, find(ctx, name)).await?;
    let current = existing.as_ref().map(|r| found(name, r));
    let repo = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(current.map(|f| f.attr("service", service))) },
            || async { Ok(create(ctx, name, key_arn).await?.attr("service", service)) },
        )
        .await?;
    if let Some(r) = &existing {
        fix(ctx, name, key_arn, r).await?;
    }
    Ok(repo)
}

/// Deletes the repository `name` with its images; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let ecr = ctx.aws().ecr();
    // `force`: the images go with the repository (ECR refuses otherwise).
    ctx.retry_dependency(&format!("{KIND} {name}"), || async {
        ecr.delete_repository()
            .repository_name(name)
            .force(true)
            .send()
            .await
            .map(|_| ())
            .aws("ecr:DeleteRepository", name)
    })
    .await
}

#[async_trait]
impl Provider for EcrRepository {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id).await?.map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

    fn repo(enc: Option<(EncryptionType, Option<&str>)>) -> Repository {
        let mut b = Repository::builder().repository_name("repo-web-prod");
        if let Some((t, key)) = enc {
            b = b.encryption_configuration(
                EncryptionConfiguration::builder()
                    .encryption_type(t)
                    .set_kms_key(key.map(str::to_string))
                    .build()
                    .unwrap(),
            );
        }
        b.build()
    }

    #[test]
    fn only_the_stack_key_counts_as_the_right_encryption() {
        assert!(encrypted_with(
            &repo(Some((EncryptionType::Kms, Some(KEY)))),
            KEY
        ));
        let other = "arn:aws:kms:us-east-1:123456789012:key/other";
        assert!(!encrypted_with(
            &repo(Some((EncryptionType::Kms, Some(other)))),
            KEY
        ));
        // KMS with the AWS managed key, AES256, or nothing reported.
        assert!(!encrypted_with(
            &repo(Some((EncryptionType::Kms, None))),
            KEY
        ));
        assert!(!encrypted_with(
            &repo(Some((EncryptionType::Aes256, None))),
            KEY
        ));
        assert!(!encrypted_with(&repo(None), KEY));
    }
}
