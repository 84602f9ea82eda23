//! Registry step: one private ECR repository per configured service (`[[services]]`),
//! `repo-<service>-<suffix>`: images scanned on push, tags immutable (a deployed tag always
//! means the same image, so a rollback is exact), encrypted with the stack's KMS key.
//!
//! A repository's encryption is fixed when it is created: one found with other encryption is
//! an error, not a change. Repositories are adopted only if they carry the stack tag (ECR is
//! invisible to the Resource Groups Tagging API in moto, so they are found by name and their
//! tags read with ListTagsForResource). Teardown deletes each recorded repository with
//! `force`, images included.

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
    Repository, Tag,
};
use serde_json::Value;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};

pub const REPOSITORY: &str = "ecr:repository";

/// Output keys other steps read: JSON objects `{service: value}`.
pub const OUT_URIS: &str = "ecr_repository_uris";
pub const OUT_ARNS: &str = "ecr_repository_arns";

pub struct Registry;

/// Whether a repository is encrypted with the KMS key `key_arn` (ECR reports the key's ARN).
pub fn encrypted_with(repo: &Repository, key_arn: &str) -> bool {
    repo.encryption_configuration().is_some_and(|e| {
        e.encryption_type() == &EncryptionType::Kms && e.kms_key() == Some(key_arn)
    })
}

impl Registry {
    /// `repo-<service>-<suffix>`.
    pub fn repo_name(ctx: &StepCtx, service: &str) -> String {
        ctx.names().with_purpose("repo", service)
    }

    async fn describe(ctx: &StepCtx, name: &str) -> Result<Option<Repository>> {
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
    async fn find(ctx: &StepCtx, name: &str) -> Result<Option<Repository>> {
        let Some(repo) = Self::describe(ctx, name).await? else {
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
        Ok(Self::found(name, &repo))
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
            ctx.change(REPOSITORY, name, "turn on scan on push", || async {
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
            ctx.change(REPOSITORY, name, "make image tags immutable", || async {
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
}

#[async_trait]
impl Step for Registry {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        5
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let key_arn = ctx.input_str(crate::steps::kms::OUT_KEY_ARN)?;
        let mut uris = BTreeMap::new();
        let mut arns = BTreeMap::new();
        let mut any_pending = false;
        // Only the configured services: the repository of a service removed from the config
        // stays recorded (so `down` still deletes it) but is no longer published.
        for svc in &ctx.cfg().services.0 {
            let service = svc.name.0.as_str();
            let name = Self::repo_name(ctx, service);
            let existing = Self::find(ctx, &name).await?;
            let found = existing.as_ref().map(|r| Self::found(&name, r));
            let repo = ctx
                .ensure(
                    REPOSITORY,
                    &name,
                    || async { Ok(found.map(|f| f.attr("service", service))) },
                    || async {
                        Ok(Self::create(ctx, &name, &key_arn)
                            .await?
                            .attr("service", service))
                    },
                )
                .await?;
            if let Some(r) = &existing {
                Self::fix(ctx, &name, &key_arn, r).await?;
            }
            if repo.is_pending() {
                any_pending = true;
            } else {
                uris.insert(
                    service.to_string(),
                    Value::from(repo.attrs.get("uri").cloned().unwrap_or_default()),
                );
                arns.insert(
                    service.to_string(),
                    Value::from(repo.arn.clone().unwrap_or_default()),
                );
            }
        }
        // In plan mode a repository still to be created has no URI: later steps then see the
        // outputs as missing (placeholders) rather than a partial map.
        if !any_pending {
            ctx.set_output(OUT_URIS, Value::Object(uris.into_iter().collect()))?;
            ctx.set_output(OUT_ARNS, Value::Object(arns.into_iter().collect()))?;
        }
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let ecr = ctx.aws().ecr();
        // `force`: the images go with the repository (ECR refuses otherwise).
        ctx.delete_recorded(REPOSITORY, |rec| async move {
            ecr.delete_repository()
                .repository_name(&rec.id)
                .force(true)
                .send()
                .await
                .map(|_| ())
                .aws("ecr:DeleteRepository", &rec.id)
        })
        .await?;
        for key in [OUT_URIS, OUT_ARNS] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(Self::describe(ctx, &rec.id)
            .await?
            .map(|_| "exists".to_string()))
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
