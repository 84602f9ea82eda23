//! `backup:vault`: an AWS Backup vault encrypted with a customer-managed KMS key, in the
//! region of the context it is made in (the DR copy goes to a vault in another region).
//!
//! A vault holding any recovery point cannot be deleted, so teardown deletes every recovery
//! point first; deleting an Aurora snapshot takes a moment, and the deleted points still count
//! against the vault meanwhile, so the vault delete is retried until AWS accepts it.

use std::collections::HashMap;

use anyhow::Result;
use async_trait::async_trait;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "backup:vault";

pub struct Vault;

/// The stack's tags for the Backup resource `name`.
pub(super) fn tag_map(ctx: &StepCtx, name: &str) -> HashMap<String, String> {
    ctx.tags(Some(name)).into_iter().collect()
}

/// Finds or creates the vault `name` in `c`'s region, encrypted with `key_arn`. A vault not
/// yet recorded must carry the stack tag (another stack's vault is never adopted).
pub async fn ensure(c: &StepCtx, name: &str, key_arn: &str) -> Result<Found> {
    let backup = c.aws().backup();
    let existing = backup
        .describe_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
        .aws("backup:DescribeBackupVault", name)
        .not_found_ok()?;
    if let Some(v) = &existing {
        let arn = v.backup_vault_arn().unwrap_or_default();
        let recorded = c.records(Some(KIND)).iter().any(|r| r.id == name);
        if !recorded {
            let tags = backup
                .list_tags()
                .resource_arn(arn)
                .send()
                .await
                .aws("backup:ListTags", name)?;
            let tag = tags
                .tags()
                .and_then(|t| t.get(STACK_TAG))
                .map(String::as_str);
            c.check_ours("backup vault", name, tag)?;
        }
    }
    c.ensure(
        KIND,
        name,
        || async { Ok(existing.and_then(|v| v.backup_vault_arn.map(|a| Found::new(name).arn(a)))) },
        || async {
            let out = backup
                .create_backup_vault()
                .backup_vault_name(name)
                .encryption_key_arn(key_arn)
                .set_backup_vault_tags(Some(tag_map(c, name)))
                .send()
                .await
                .aws("backup:CreateBackupVault", name)?;
            Ok(Found::new(name).arn(out.backup_vault_arn.unwrap_or_default()))
        },
    )
    .await
}

/// Deletes every recovery point of a vault, then the vault; retried while deleted
/// snapshots still count against it.
pub async fn delete(c: &StepCtx, name: &str) -> Result<()> {
    let backup = c.aws().backup();
    let timeout = std::time::Duration::from_secs(c.cfg().timeouts.dependency_violation_secs.0);
    c.wait_for(
        &format!("backup vault {name} to be empty"),
        timeout,
        || async {
            let points = backup
                .list_recovery_points_by_backup_vault()
                .backup_vault_name(name)
                .send()
                .await
                .aws("backup:ListRecoveryPointsByBackupVault", name)
                .not_found_ok()?;
            let Some(points) = points else {
                return Ok(Some(())); // the vault is gone
            };
            for p in points.recovery_points() {
                let Some(arn) = p.recovery_point_arn() else {
                    continue;
                };
                let deleting = p.status().is_some_and(|s| s.as_str() == "DELETING");
                if !deleting {
                    backup
                        .delete_recovery_point()
                        .backup_vault_name(name)
                        .recovery_point_arn(arn)
                        .send()
                        .await
                        .aws("backup:DeleteRecoveryPoint", arn)
                        .not_found_ok()?;
                }
            }
            match backup
                .delete_backup_vault()
                .backup_vault_name(name)
                .send()
                .await
                .aws("backup:DeleteBackupVault", name)
            {
                Ok(_) => Ok(Some(())),
                Err(e) if e.is_not_found() => Ok(Some(())),
                // "Backup vault cannot be deleted because it contains recovery points."
                Err(e) if e.code.as_deref() == Some("InvalidRequestException") => Ok(None),
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
}

#[async_trait]
impl Provider for Vault {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .backup()
            .describe_backup_vault()
            .backup_vault_name(&rec.id)
            .send()
            .await
            .aws("backup:DescribeBackupVault", &rec.id)
            .not_found_ok()?
            .map(|v| format!("{} recovery points", v.number_of_recovery_points)))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
