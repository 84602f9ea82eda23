//! `backup:plan`: an AWS Backup plan, found by its record (one read) or, if the state was
//! lost, by name among the live plans (AWS keeps deleted plans readable, with a deletion
//! date: those do not count). A plan read back is compared rule by rule and updated in place
//! if it drifted. AWS refuses to delete a plan that still has selections: they go first.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_backup::types::{BackupPlan, BackupPlanInput, Lifecycle};

use super::vault::tag_map;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "backup:plan";

pub struct Plan;

/// Whether a plan read back does what `wanted` asks, rule by rule: name, target vault,
/// schedule, retention, and each copy's destination and retention.
pub fn matches(plan: &BackupPlan, wanted: &BackupPlanInput) -> bool {
    let days = |l: Option<&Lifecycle>| l.and_then(|l| l.delete_after_days());
    plan.rules().len() == wanted.rules().len()
        && plan.rules().iter().zip(wanted.rules()).all(|(got, want)| {
            let (copies, want_copies) = (got.copy_actions(), want.copy_actions());
            got.rule_name() == want.rule_name()
                && got.target_backup_vault_name() == want.target_backup_vault_name()
                && got.schedule_expression() == want.schedule_expression()
                && days(got.lifecycle()) == days(want.lifecycle())
                && copies.len() == want_copies.len()
                && copies.iter().zip(want_copies).all(|(c, w)| {
                    c.destination_backup_vault_arn() == w.destination_backup_vault_arn()
                        && days(c.lifecycle()) == days(w.lifecycle())
                })
        })
}

/// A plan's document, unless it is gone or deleted (AWS keeps deleted plans readable).
pub async fn live(ctx: &StepCtx, id: &str) -> Result<Option<BackupPlan>> {
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
async fn recorded(ctx: &StepCtx) -> Result<Option<(String, BackupPlan)>> {
    for rec in ctx.records(Some(KIND)) {
        if let Some(plan) = live(ctx, &rec.id).await? {
            return Ok(Some((rec.id, plan)));
        }
    }
    Ok(None)
}

/// Finds (the recorded one, else a live one by name) or creates the plan `wanted`, and
/// updates it when a rule drifted (see [`matches`]); `what` describes that update.
pub async fn ensure(ctx: &StepCtx, wanted: BackupPlanInput, what: &str) -> Result<Found> {
    let backup = ctx.aws().backup();
    let name = wanted.backup_plan_name().to_string();
    let (id, current) = match recorded(ctx).await? {
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
                Some(id) => live(ctx, id).await?,
                None => None,
            };
            (id, current)
        }
    };
    let wanted_for_create = wanted.clone();
    let plan = ctx
        .ensure(
            KIND,
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
        if !matches(&current, &wanted) {
            ctx.change(KIND, &name, what, || async {
                backup
                    .update_backup_plan()
                    .backup_plan_id(&plan.id)
                    .backup_plan(wanted)
                    .send()
                    .await
                    .aws("backup:UpdateBackupPlan", &name)?;
                Ok(())
            })
            .await?;
        }
    }
    Ok(plan)
}

/// Deletes the plan `id`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let backup = ctx.aws().backup();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        backup
            .delete_backup_plan()
            .backup_plan_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("backup:DeleteBackupPlan", id)
    })
    .await
}

#[async_trait]
impl Provider for Plan {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(live(ctx, &rec.id).await?.map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
