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
//! immutable, so one that names another role or resource is replaced. Teardown: the
//! selection, the plan (AWS refuses to delete a plan that still has selections), the
//! recovery points of both vaults (a vault holding any cannot be deleted; deleting an Aurora
//! snapshot takes a moment, so the vault delete is retried), the vaults, the role.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_backup::types::{
    BackupPlanInput, BackupRuleInput, BackupSelection, CopyAction, Lifecycle,
};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::iam::{self, RoleSpec};
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::{database, dr_storage, kms};

pub const VAULT: &str = "backup:vault";
pub const PLAN: &str = "backup:plan";
pub const SELECTION: &str = "backup:selection";

/// Output keys.
pub const OUT_VAULT_ARN: &str = "backup_vault_arn";
pub const OUT_DR_VAULT_ARN: &str = "dr_backup_vault_arn";
pub const OUT_PLAN_ID: &str = "backup_plan_id";
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

/// Whether a plan read back does what [`wanted_plan`] asks.
fn plan_matches(
    plan: &aws_sdk_backup::types::BackupPlan,
    vault: &str,
    dr_vault_arn: &str,
    days: i64,
) -> bool {
    let [rule] = plan.rules() else {
        return false;
    };
    let kept = |l: Option<&Lifecycle>| l.and_then(|l| l.delete_after_days()) == Some(days);
    let copies = rule.copy_actions();
    rule.rule_name() == RULE_NAME
        && rule.target_backup_vault_name() == vault
        && rule.schedule_expression() == Some(SCHEDULE)
        && kept(rule.lifecycle())
        && copies.len() == 1
        && copies[0].destination_backup_vault_arn() == dr_vault_arn
        && kept(copies[0].lifecycle())
}

fn tag_map(ctx: &StepCtx, name: &str) -> HashMap<String, String> {
    ctx.tags(Some(name)).into_iter().collect()
}

impl DrBackup {
    async fn ensure_vault(c: &StepCtx, name: &str, key_arn: &str) -> Result<Found> {
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
            let recorded = c.records(Some(VAULT)).iter().any(|r| r.id == name);
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
            VAULT,
            name,
            || async {
                Ok(existing.and_then(|v| v.backup_vault_arn.map(|a| Found::new(name).arn(a))))
            },
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

    /// A plan's document, unless it is gone or deleted (AWS keeps deleted plans readable).
    async fn live_plan(
        ctx: &StepCtx,
        id: &str,
    ) -> Result<Option<aws_sdk_backup::types::BackupPlan>> {
        let out = ctx
            .aws()
            .backup()
            .get_backup_plan()
            .backup_plan_id(id)
            .send()
            .await
            .aws("backup:GetBackupPlan", id)
            .not_found_ok()?;
        Ok(out
            .filter(|o| o.deletion_date.is_none())
            .and_then(|o| o.backup_plan))
    }

    /// The recorded plan, if it is still live: one read instead of a list and a read.
    async fn recorded_plan(
        ctx: &StepCtx,
    ) -> Result<Option<(String, aws_sdk_backup::types::BackupPlan)>> {
        for rec in ctx.records(Some(PLAN)) {
            if let Some(plan) = Self::live_plan(ctx, &rec.id).await? {
                return Ok(Some((rec.id, plan)));
            }
        }
        Ok(None)
    }

    async fn ensure_plan(
        ctx: &StepCtx,
        wanted: BackupPlanInput,
        vault: &str,
        dr_vault_arn: &str,
        days: i64,
    ) -> Result<Found> {
        let backup = ctx.aws().backup();
        let name = wanted.backup_plan_name().to_string();
        let (id, current) = match Self::recorded_plan(ctx).await? {
            Some((id, plan)) => (Some(id), Some(plan)),
            None => {
                // Not recorded (e.g. the state was lost): found by name among the live plans.
                let listed = backup
                    .list_backup_plans()
                    .send()
                    .await
                    .aws("backup:ListBackupPlans", &name)?;
                let id = listed
                    .backup_plans_list()
                    .iter()
                    .find(|p| {
                        p.backup_plan_name() == Some(name.as_str()) && p.deletion_date().is_none()
                    })
                    .and_then(|p| p.backup_plan_id().map(str::to_string));
                let current = match &id {
                    Some(id) => Self::live_plan(ctx, id).await?,
                    None => None,
                };
                (id, current)
            }
        };
        let wanted_for_create = wanted.clone();
        let plan = ctx
            .ensure(
                PLAN,
                &name,
                || async { Ok(id.clone().map(Found::new)) },
                || async {
                    let out = backup
                        .create_backup_plan()
                        .backup_plan(wanted_for_create)
                        .set_backup_plan_tags(Some(tag_map(ctx, &name)))
                        .send()
                        .await
                        .aws("backup:CreateBackupPlan", &name)?;
                    let id = out
                        .backup_plan_id
                        .context("CreateBackupPlan returned no ID")?;
                    Ok(Found::new(id).arn(out.backup_plan_arn.unwrap_or_default()))
                },
            )
            .await?;
        if let Some(current) = current {
            if !plan_matches(&current, vault, dr_vault_arn, days) {
                ctx.change(
                    PLAN,
                    &name,
                    "daily snapshot copied to the DR vault",
                    || async {
                        backup
                            .update_backup_plan()
                            .backup_plan_id(&plan.id)
                            .backup_plan(wanted)
                            .send()
                            .await
                            .aws("backup:UpdateBackupPlan", &name)?;
                        Ok(())
                    },
                )
                .await?;
            }
        }
        Ok(plan)
    }

    /// The selection of the Aurora cluster; replaced when it names another role or resource
    /// (AWS Backup selections cannot be changed).
    async fn ensure_selection(
        ctx: &StepCtx,
        plan: &Found,
        role_arn: &str,
        cluster_arn: &str,
    ) -> Result<()> {
        let backup = ctx.aws().backup();
        let name = format!("aurora-{}", ctx.suffix());
        let mut current = None;
        if !plan.is_pending() {
            let listed = backup
                .list_backup_selections()
                .backup_plan_id(&plan.id)
                .send()
                .await
                .aws("backup:ListBackupSelections", &name)?;
            if let Some(id) = listed
                .backup_selections_list()
                .iter()
                .find(|s| s.selection_name() == Some(name.as_str()))
                .and_then(|s| s.selection_id())
            {
                let got = backup
                    .get_backup_selection()
                    .backup_plan_id(&plan.id)
                    .selection_id(id)
                    .send()
                    .await
                    .aws("backup:GetBackupSelection", &name)?;
                current = Some((id.to_string(), got.backup_selection));
            }
        }
        let up_to_date = current.as_ref().is_some_and(|(_, s)| {
            s.as_ref().is_some_and(|s| {
                s.iam_role_arn() == role_arn && s.resources() == [cluster_arn.to_string()]
            })
        });
        let found = |id: &str| Found::new(id).attr("plan_id", &plan.id);
        let existing = current.as_ref().map(|(id, _)| found(id));
        ctx.ensure(
            SELECTION,
            &name,
            || async { Ok(existing) },
            || Self::create_selection(ctx, &plan.id, &name, role_arn, cluster_arn),
        )
        .await?;
        if let (Some((id, _)), false) = (&current, up_to_date) {
            let what = "select the stack's Aurora cluster as the backup role";
            ctx.change(SELECTION, &name, what, || async {
                backup
                    .delete_backup_selection()
                    .backup_plan_id(&plan.id)
                    .selection_id(id)
                    .send()
                    .await
                    .aws("backup:DeleteBackupSelection", &name)?;
                ctx.deleted(SELECTION, id)?;
                let new =
                    Self::create_selection(ctx, &plan.id, &name, role_arn, cluster_arn).await?;
                ctx.record(SELECTION, &name, &new)
            })
            .await?;
        }
        Ok(())
    }

    async fn create_selection(
        ctx: &StepCtx,
        plan_id: &str,
        name: &str,
        role_arn: &str,
        cluster_arn: &str,
    ) -> Result<Found> {
        let backup = ctx.aws().backup();
        let selection = BackupSelection::builder()
            .selection_name(name)
            .iam_role_arn(role_arn)
            .resources(cluster_arn)
            .build()
            .context("building the backup selection")?;
        // AWS Backup checks that it may assume the role: a new role can take a moment.
        let out = ctx
            .retry_iam("the backup selection", || {
                let selection = selection.clone();
                async move {
                    backup
                        .create_backup_selection()
                        .backup_plan_id(plan_id)
                        .backup_selection(selection)
                        .send()
                        .await
                        .aws("backup:CreateBackupSelection", name)
                }
            })
            .await?;
        let id = out
            .selection_id
            .context("CreateBackupSelection returned no ID")?;
        Ok(Found::new(id).attr("plan_id", plan_id))
    }

    /// Deletes every recovery point of a vault, then the vault; retried while deleted
    /// snapshots still count against it.
    async fn delete_vault(c: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        let backup = c.aws().backup();
        let name = rec.id.as_str();
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
        .await?;
        c.deleted(VAULT, name)
    }

    async fn remove(ctx: &StepCtx) -> Result<()> {
        let backup = ctx.aws().backup();
        ctx.delete_recorded(SELECTION, |rec| async move {
            backup
                .delete_backup_selection()
                .backup_plan_id(rec.attrs.get("plan_id").cloned().unwrap_or_default())
                .selection_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("backup:DeleteBackupSelection", &rec.id)
        })
        .await?;
        ctx.delete_recorded(PLAN, |rec| async move {
            backup
                .delete_backup_plan()
                .backup_plan_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("backup:DeleteBackupPlan", &rec.id)
        })
        .await?;
        for region in ctx.record_regions() {
            let c = ctx.in_region(&region);
            for rec in c.records(Some(VAULT)) {
                c.check_cancelled()?;
                Self::delete_vault(&c, &rec).await?;
            }
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
        let vault = Self::ensure_vault(ctx, &vault_name, &key).await?;
        let dr_vault = Self::ensure_vault(&dr, &format!("vault-dr-{s}"), &dr_key).await?;
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
        let plan = Self::ensure_plan(ctx, wanted, &vault_name, &dr_vault_arn, days).await?;
        let role_arn = role.arn.clone().unwrap_or_default();
        Self::ensure_selection(ctx, &plan, &role_arn, &cluster_arn).await?;

        if pending || plan.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_VAULT_ARN, vault.arn.clone().unwrap_or_default())?;
        ctx.set_output(OUT_DR_VAULT_ARN, dr_vault_arn)?;
        ctx.set_output(OUT_PLAN_ID, plan.id.clone())?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        Self::remove(ctx).await
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let backup = ctx.aws().backup();
        match rec.kind.as_str() {
            VAULT => Ok(backup
                .describe_backup_vault()
                .backup_vault_name(&rec.id)
                .send()
                .await
                .aws("backup:DescribeBackupVault", &rec.id)
                .not_found_ok()?
                .map(|v| format!("{} recovery points", v.number_of_recovery_points))),
            PLAN => Ok(Self::live_plan(ctx, &rec.id)
                .await?
                .map(|_| "exists".to_string())),
            SELECTION => Ok(backup
                .get_backup_selection()
                .backup_plan_id(rec.attrs.get("plan_id").cloned().unwrap_or_default())
                .selection_id(&rec.id)
                .send()
                .await
                .aws("backup:GetBackupSelection", &rec.id)
                .not_found_ok()?
                .map(|_| "exists".to_string())),
            _ => Ok(None),
        }
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
        assert!(plan_matches(&as_read, "vault", "arn:dr", 7));
        assert!(!plan_matches(&as_read, "vault", "arn:dr", 14));
        assert!(!plan_matches(&as_read, "vault", "arn:other", 7));
    }
}
