//! A `rolling` release: a new revision of the service's task definition with the new image;
//! ECS starts the new tasks before it stops the old ones (`minimumHealthyPercent` 100), and
//! its deployment circuit breaker rolls back tasks that fail to start or fail their health
//! checks. The deploy follows it, then watches the rollback alarms for `deploy.bake_secs`;
//! an alarm, or tasks not healthy within `deploy.health_timeout_secs`, make the deploy put
//! the previous revision back itself. A rolled-back revision is deregistered, so the next
//! `up` finds the one the service runs as the family's latest.

use anyhow::{Context as _, Result};

use super::watch::{self, Outcome};
use super::{update_revision, Ctx, RolledBack};
use crate::resources::ecs::task_definition;

pub async fn release(ctx: &mut Ctx<'_>, image: &str) -> Result<()> {
    let aws = ctx.aws.clone();
    let service = ctx.service()?;
    let current = watch::describe(&aws, &service)
        .await?
        .task_definition()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("ECS service {} names no task definition", service.name))?;
    let revision =
        task_definition::register_with_image(&aws, &current, &ctx.svc.name.0, image).await?;
    ctx.progress.say(&format!(
        "rolling {image} out on {} ({})",
        service.name,
        short(&revision)
    ));
    let deployment = update_revision(&aws, &service, &revision).await?;
    let alarms = ctx.alarms.clone();
    let timeout = ctx.timeout();
    let outcome = watch::follow_new(
        &aws,
        &service,
        &deployment,
        "new version",
        &alarms,
        timeout,
        &mut ctx.progress,
    )
    .await;
    let reason = match outcome {
        Outcome::Done => {
            let bake = ctx.bake_time();
            match watch::bake(
                &aws,
                &alarms,
                service.target_group.as_deref(),
                bake,
                &mut ctx.progress,
            )
            .await
            {
                None => return ctx.released(image, &service.name),
                Some(reason) => reason,
            }
        }
        Outcome::Failed(reason) => {
            // The circuit breaker puts the last completed revision back, if there is one
            // (not when the deployment before was itself still rolling out): the deploy
            // names the previous revision either way, which starts nothing when ECS already
            // did.
            ctx.progress.say(&format!(
                "ECS failed the deployment ({reason}); rolling back"
            ));
            back_to(ctx, &service, &current)
                .await
                .with_context(|| format!("rolling back after: {reason}"))?;
            super::forget_revision(ctx, &revision).await;
            return Err(RolledBack {
                service: ctx.svc.name.0.clone(),
                reason,
            }
            .into());
        }
        Outcome::Alarm(a) => format!("alarm {a}"),
        Outcome::TimedOut(t) => format!(
            "the new tasks were not all healthy within {} s (deploy.health_timeout_secs)",
            t.as_secs()
        ),
    };
    ctx.progress
        .say(&format!("rolling back to {}: {reason}", short(&current)));
    back_to(ctx, &service, &current)
        .await
        .with_context(|| format!("rolling back after: {reason}"))?;
    super::forget_revision(ctx, &revision).await;
    Err(RolledBack {
        service: ctx.svc.name.0.clone(),
        reason,
    }
    .into())
}

/// Puts `revision` back and follows it until it serves again.
async fn back_to(ctx: &mut Ctx<'_>, service: &watch::EcsService, revision: &str) -> Result<()> {
    let aws = ctx.aws.clone();
    let deployment = update_revision(&aws, service, revision).await?;
    let timeout = ctx.timeout();
    match watch::follow(
        &aws,
        service,
        &deployment,
        "rollback",
        &[],
        timeout,
        &mut ctx.progress,
    )
    .await?
    {
        Outcome::Done => {
            ctx.progress
                .say(&format!("rolled back: {} serves again", short(revision)));
            Ok(())
        }
        other => anyhow::bail!(
            "the rollback of {} to {} did not finish ({other:?}): check the service's events",
            service.name,
            short(revision)
        ),
    }
}

/// `family:revision` of a task definition ARN.
pub fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
