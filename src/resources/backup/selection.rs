//! `backup:selection`: the resources an AWS Backup plan backs up, and the role it works as.
//! A selection cannot be changed: one that names another role or resource is deleted and
//! created again. AWS Backup checks at creation that it may assume the role, which a role made
//! moments ago may not be yet (IAM is eventually consistent): the create is retried.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_backup::types::BackupSelection;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "backup:selection";

pub struct Selection;

/// A selection the stack wants: one resource, backed up as one role.
#[derive(Debug, Clone, Copy)]
pub struct SelectionSpec<'a> {
    pub name: &'a str,
    pub role_arn: &'a str,
    /// The ARN of the resource to back up.
    pub resource: &'a str,
    /// The plan item shown when an existing selection must be replaced.
    pub replace: &'a str,
}

/// The selection `spec` in `plan`; replaced when it names another role or resource (AWS
/// Backup selections cannot be changed).
pub async fn ensure(ctx: &StepCtx, plan: &Found, spec: &SelectionSpec<'_>) -> Result<()> {
    let backup = ctx.aws().backup();
    let SelectionSpec {
        name,
        role_arn,
        resource,
        replace: what,
    } = *spec;
    let mut current = None;
    if !plan.is_pending() {
        let listed = backup
            .list_backup_selections()
            .backup_plan_id(&plan.id)
            .send()
            .await
            .aws("backup:ListBackupSelections", name)?;
        if let Some(id) = listed
            .backup_selections_list()
            .iter()
            .find(|s| s.selection_name() == Some(name))
            .and_then(|s| s.selection_id())
        {
            let got = backup
                .get_backup_selection()
                .backup_plan_id(&plan.id)
                .selection_id(id)
                .send()
                .await
                .aws("backup:GetBackupSelection", name)?;
            current = Some((id.to_string(), got.backup_selection));
        }
    }
    let up_to_date = current.as_ref().is_some_and(|(_, s)| {
        s.as_ref().is_some_and(|s| {
            s.iam_role_arn() == role_arn && s.resources() == [resource.to_string()]
        })
    });
    let found = |id: &str| Found::new(id).attr("plan_id", &plan.id);
    let existing = current.as_ref().map(|(id, _)| found(id));
    ctx.ensure(
        KIND,
        name,
        || async { Ok(existing) },
        || create(ctx, &plan.id, name, role_arn, resource),
    )
    .await?;
    if let (Some((id, _)), false) = (&current, up_to_date) {
        ctx.change(KIND, name, what, || async {
            backup
                .delete_backup_selection()
                .backup_plan_id(&plan.id)
                .selection_id(id)
                .send()
                .await
                .aws("backup:DeleteBackupSelection", name)?;
            ctx.deleted(KIND, id)?;
            let new = create(ctx, &plan.id, name, role_arn, resource).await?;
            ctx.record(KIND, name, &new)
        })
        .await?;
    }
    Ok(())
}

async fn create(
    ctx: &StepCtx,
    plan_id: &str,
    name: &str,
    role_arn: &str,
    resource: &str,
) -> Result<Found> {
    let backup = ctx.aws().backup();
    let selection = BackupSelection::builder()
        .selection_name(name)
        .iam_role_arn(role_arn)
        .resources(resource)
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

/// Deletes the selection `id` of the plan `plan_id`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, plan_id: &str, id: &str) -> Result<()> {
    let backup = ctx.aws().backup();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        backup
            .delete_backup_selection()
            .backup_plan_id(plan_id)
            .selection_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("backup:DeleteBackupSelection", id)
    })
    .await
}

/// The plan a recorded selection belongs to.
fn plan_of(rec: &ResourceRecord) -> String {
    rec.attrs.get("plan_id").cloned().unwrap_or_default()
}

#[async_trait]
impl Provider for Selection {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .backup()
            .get_backup_selection()
            .backup_plan_id(plan_of(rec))
            .selection_id(&rec.id)
            .send()
            .await
            .aws("backup:GetBackupSelection", &rec.id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &plan_of(rec), &rec.id).await
    }
}
