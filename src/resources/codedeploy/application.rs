//! `codedeploy:application`: a CodeDeploy application on the ECS compute platform, the
//! container of the stack's deployment groups. Deleting it deletes its groups with it.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_codedeploy::types::ComputePlatform;

use super::codedeploy_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "codedeploy:application";

pub struct Application;

/// The compute platform of the application `name`, `None` if there is none.
async fn platform(ctx: &StepCtx, name: &str) -> Result<Option<Option<ComputePlatform>>> {
    Ok(ctx
        .aws()
        .codedeploy()
        .get_application()
        .application_name(name)
        .send()
        .await
        .aws("codedeploy:GetApplication", name)
        .not_found_ok()?
        .map(|o| o.application.and_then(|a| a.compute_platform)))
}

/// Finds or creates the ECS application `name`. An application of another platform under
/// that name cannot hold ECS deployment groups: that is an error, not something to change.
pub async fn ensure(ctx: &StepCtx, name: &str) -> Result<Found> {
    let existing = platform(ctx, name).await?;
    if let Some(Some(p)) = &existing {
        if p != &ComputePlatform::Ecs {
            anyhow::bail!(
                "CodeDeploy application {name} exists for the {} platform, not ECS: it belongs \
                 to something else; remove or rename it",
                p.as_str()
            );
        }
    }
    ctx.ensure(
        KIND,
        name,
        || async { Ok(existing.map(|_| Found::new(name))) },
        || async {
            ctx.aws()
                .codedeploy()
                .create_application()
                .application_name(name)
                .compute_platform(ComputePlatform::Ecs)
                .set_tags(Some(codedeploy_tags(ctx, name)))
                .send()
                .await
                .aws("codedeploy:CreateApplication", name)?;
            Ok(Found::new(name))
        },
    )
    .await
}

/// Deletes the application `name` (and any group still in it); "not found" counts as done.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    ctx.aws()
        .codedeploy()
        .delete_application()
        .application_name(name)
        .send()
        .await
        .aws("codedeploy:DeleteApplication", name)
        .not_found_ok()?;
    Ok(())
}

#[async_trait]
impl Provider for Application {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(platform(ctx, &rec.id).await?.map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
