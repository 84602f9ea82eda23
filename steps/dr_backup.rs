//! DR backup step (seed 004: cross-region replication of the database's snapshots).
//!
//! Aurora has no cross-region automated-backup replication of its own (RDS offers that for
//! instances only), so snapshots go through AWS Backup: a vault in the stack's region
//! (encrypted with the stack key) and one in the DR region (with the DR key), a plan whose
//! daily rule snapshots the cluster at 05:00 UTC (after the database's backup window) and
//! copies every recovery point to the DR vault, both kept `dr.snapshot_retention_days`, a
//! selection of the Aurora cluster, and the role AWS Backup works as (a least-privilege
//! customer-managed policy: the cluster, Backup's own snapshots in both regions, the two keys
//! and the DR vault).
//!
//! A second `up` reads the plan back and updates it only if a rule drifted; a selection is
//! immutable, so one that names another role or resource is replaced (the vault, plan and
//! selection types are in [`crate::resources::backup`]).
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): the selection is built
//! on its plan, the role and the Aurora cluster, so it goes before them (AWS refuses to
//! delete a plan that still has selections); the plan is built on the vaults of every region,
//! as it copies into the DR one. The vault provider deletes a vault's recovery points before the
//! vault (a vault holding any cannot be deleted) and retries while deleted snapshots still
//! count against it.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, CopyAction, Lifecycle};
use serde_json::{json, Value};

use crate::resources::backup::selection::{self, SelectionSpec};
use crate::resources::backup::{plan, vault};
use crate::resources::delete_recorded;
use crate::resources::iam::{self, RoleSpec};
use crate::step::{is_pending, Step, StepCtx};
use crate::outputs::{database, dr_storage, kms};

pub use crate::outputs::dr_backup::*;

pub const VAULT: &str = vault::KIND;
pub const PLAN: &str = plan::KIND;
pub const SELECTION: &str = selection::KIND;

const OUTPUTS: [&str; 3] = [OUT_VAULT_ARN, OUT_DR_VAULT_ARN, OUT_PLAN_ID];

/// The daily rule: after the database's default backup window (03:00-04:00 UTC).
pub const RULE_NAME: &str = "daily-with-dr-copy";
pub const SCHEDULE: &str = "cron(0 5 ? * * *)";
const START_WINDOW_MINUTES: i64 = 60;
const COMPLETION_WINDOW_MINUTES: i64 = 360;

/// Read-only RDS calls AWS Backup makes on any cluster or snapshot: they take no resource.
const DESCRIBE_ACTIONS: &[&str] = &["rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots"];

pub struct DrBackup;

/// Snapshots AWS Backup makes of Aurora are named `awsbackup:<job>`.
fn backup_snapshots(region: &str, account: &str) -> String {
    format!("arn:aws:rds:{region}:{account}:cluster-snapshot:awsbackup:*")
}

/// What AWS Backup may do as the stack's backup role.
pub fn backup_policy(
    account: &str,
    region: &str,
    dr_region: &str,
    cluster_arn: &str,
    keys: [&str; 2],
    dr_vault_arn: &str,
) -> Value {
    let (here, there) = (
        backup_snapshots(region, account),
        backup_snapshots(dr_region, account),
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SnapshotTheCluster",
                "Effect": "Allow",
                "Action": ["rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"],
                "Resource": [cluster_arn, here]
            },
            {
                "Sid": "CopyAndExpireBackupSnapshots",
                "Effect": "Allow",
                "Action": ["rds:CopyDBClusterSnapshot", "rds:DeleteDBClusterSnapshot",
                           "rds:AddTagsToResource", "rds:ListTagsForResource"],
                "Resource": [here, there]
            },
            {
                "Sid": "DescribeClustersAndSnapshots",
                "Effect": "Allow",
                "Action": DESCRIBE_ACTIONS,
                "Resource": "*"
            },
            {
                "Sid": "UseTheStackKeys",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
                           "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"],
                "Resource": keys
            },
            {
                "Sid": "CopyIntoTheDrVault",
                "Effect": "Allow",
                "Action": ["backup:CopyIntoBackupVault"],
                "Resource": [dr_vault_arn]
            }
        ]
    })
}

/// The plan `up` wants: one daily rule into `vault`, copied to `dr_vault_arn`.
fn wanted_plan(name: &str, vault: &str, dr_vault_arn: &str, days: i64) -> Result<BackupPlanInput> {
    let keep = || Lifecycle::builder().delete_after_days(days).build();
    let rule = BackupRuleInput::builder()
        .rule_name(RULE_NAME)
        .target_backup_vault_name(vault)
        .schedule_expression(SCHEDULE)
        .start_window_minutes(START_WINDOW_MINUTES)
        .completion_window_minutes(COMPLETION_WINDOW_MINUTES)
        .lifecycle(keep())
        .copy_actions(
            CopyAction::builder()
                .destination_backup_vault_arn(dr_vault_arn)
                .lifecycle(keep())
                .build()
                .context("building the backup copy action")?,
        )
        .build()
        .context("building the backup rule")?;
    BackupPlanInput::builder()
        .backup_plan_name(name)
        .rules(rule)
        .build()
        .context("building the backup plan")
}

impl DrBackup {
    async fn remove(ctx: &StepCtx) -> Result<()> {
        // The selection before the plan: AWS refuses to delete a plan that has selections.
        delete_recorded(ctx, SELECTION).await?;
        delete_recorded(ctx, PLAN).await?;
        for region in ctx.record_regions() {
            // Each vault in its region, its recovery points first.
            delete_recorded(&ctx.in_region(&region), VAULT).await?;
        }
        iam::delete_recorded_roles(ctx).await?;
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for DrBackup {
    fn name(&self) -> &'static str {
        "dr_backup"
    }

    fn deps(&self) -> Vec<&'static str> {
        // The cluster to select, and the DR key (made by dr_storage) for the DR vault.
        vec!["database", "dr_storage"]
    }

    fn estimate_secs(&self) -> u64 {
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let Some(region) = ctx.cfg().dr.region.clone() else {
            if !ctx.has_records() {
                return Ok(());
            }
            let name = format!("plan-backup-{}", ctx.suffix());
            return ctx
                .change(PLAN, &name, "remove: dr.region is not set", || {
                    Self::remove(ctx)
                })
                .await;
        };
        let dr = ctx.in_region(&region.0);
        let s = ctx.suffix();
        let account = ctx.account_id().await?;
        let key = ctx.input_str(kms::OUT_KEY_ARN)?;
        let dr_key = ctx.input_str(dr_storage::OUT_DR_KEY_ARN)?;
        let cluster_arn = ctx.input_str(database::OUT_CLUSTER_ARN)?;
        let days = i64::from(ctx.cfg().dr.snapshot_retention_days.0);

        let vault_name = format!("vault-{s}");
        let vault = vault::ensure(ctx, &vault_name, &key).await?;
        let dr_vault = vault::ensure(&dr, &format!("vault-dr-{s}"), &dr_key).await?;
        let dr_vault_arn = dr_vault.arn.clone().unwrap_or_else(|| dr_vault.id.clone());

        let doc = backup_policy(
            &account,
            ctx.region(),
            dr.region(),
            &cluster_arn,
            [&key, &dr_key],
            &dr_vault_arn,
        );
        let spec = RoleSpec {
            service: None,
            role: format!("role-backup-{s}"),
            policy: format!("policy-backup-{s}"),
            trust: json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "backup.amazonaws.com"},
                    "Action": "sts:AssumeRole"
                }]
            }),
            document: Some(doc),
            description: format!("fintech-infra {s}: AWS Backup of the Aurora cluster"),
            policy_description: format!(
                "fintech-infra {s}: Aurora snapshots copied to the DR region"
            ),
            resource_star_actions: DESCRIBE_ACTIONS,
        };
        let pending = [&key, &dr_key, &cluster_arn, &dr_vault_arn]
            .iter()
            .any(|v| is_pending(v));
        let partition = if pending {
            "aws"
        } else {
            iam::partition_of(&key)
        };
        let role = iam::ensure_role_with_policy(ctx, &spec, partition, &account, pending).await?;

        let wanted = wanted_plan(
            &format!("plan-backup-{s}"),
            &vault_name,
            &dr_vault_arn,
            days,
        )?;
        let plan = plan::ensure(ctx, wanted, "daily snapshot copied to the DR vault").await?;
        let role_arn = role.arn.clone().unwrap_or_default();
        let selection = SelectionSpec {
            name: &format!("aurora-{s}"),
            role_arn: &role_arn,
            resource: &cluster_arn,
            replace: "select the stack's Aurora cluster as the backup role",
        };
        selection::ensure(ctx, &plan, &selection).await?;

        if pending || plan.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_VAULT_ARN, vault.arn.clone().unwrap_or_default())?;
        ctx.set_output(OUT_DR_VAULT_ARN, dr_vault_arn)?;
        ctx.set_output(OUT_PLAN_ID, plan.id.clone())?;
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_policy_is_least_privilege() {
        let doc = backup_policy(
            "123456789012",
            "us-east-2",
            "us-west-2",
            "arn:aws:rds:us-east-2:123456789012:cluster:aurora-prod",
            [
                "arn:aws:kms:us-east-2:1:key/a",
                "arn:aws:kms:us-west-2:1:key/b",
            ],
            "arn:aws:backup:us-west-2:123456789012:backup-vault:vault-dr-prod",
        );
        iam::check_least_privilege_with(&doc, DESCRIBE_ACTIONS).expect("least privilege");
        let s = doc.to_string();
        assert!(s.contains("cluster-snapshot:awsbackup:*"));
        assert!(s.contains("arn:aws:rds:us-west-2:123456789012:cluster-snapshot"));
    }

    #[test]
    fn plan_read_back_is_compared_rule_by_rule() {
        let input = wanted_plan("plan", "vault", "arn:dr", 7).unwrap();
        let rule = &input.rules()[0];
        let as_read = aws_sdk_backup::types::BackupPlan::builder()
            .backup_plan_name("plan")
            .rules(
                aws_sdk_backup::types::BackupRule::builder()
                    .rule_name(rule.rule_name())
                    .target_backup_vault_name(rule.target_backup_vault_name())
                    .schedule_expression(SCHEDULE)
                    .set_lifecycle(rule.lifecycle().cloned())
                    .set_copy_actions(Some(rule.copy_actions().to_vec()))
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(plan::matches(&as_read, &input));
        let longer = wanted_plan("plan", "vault", "arn:dr", 14).unwrap();
        assert!(!plan::matches(&as_read, &longer));
        let elsewhere = wanted_plan("plan", "vault", "arn:other", 7).unwrap();
        assert!(!plan::matches(&as_read, &elsewhere));
    }
}
