//! `application-autoscaling:scalable-target`: an ECS service's desired count registered with
//! Application Auto Scaling between a minimum and a maximum, recorded by its resource ID
//! (`service/<cluster>/<service>`).
//!
//! RegisterScalableTarget both creates the target and changes its capacity range; a second
//! `up` calls it only when the range differs. Teardown deregisters the target, which also
//! deletes its policies (the services step deletes those first anyway: a policy must not scale
//! a service back up while it is deleted).

use std::collections::HashMap;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "application-autoscaling:scalable-target";

pub struct ScalableTarget;

/// The scalable target of one ECS service.
#[derive(Debug, Clone, Copy)]
pub struct TargetSpec<'a> {
    /// `service/<cluster>/<ECS service name>`.
    pub resource_id: &'a str,
    /// The stack's service name (recorded as the `service` attribute).
    pub service: &'a str,
    /// The name the target's tags carry (`Name`: the ECS service's).
    pub tag_name: &'a str,
    pub min: i32,
    pub max: i32,
}

/// The target `spec`, registered or found; its capacity range is repaired when it differs.
/// `service_pending`: the ECS service does not exist yet (plan mode), so nothing is looked up.
pub async fn ensure(ctx: &StepCtx, spec: &TargetSpec<'_>, service_pending: bool) -> Result<Found> {
    let aas = ctx.aws().autoscaling();
    let TargetSpec {
        resource_id,
        service,
        tag_name,
        min,
        max,
    } = *spec;
    let register = || async {
        aas.register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .min_capacity(min)
            .max_capacity(max)
            .set_tags(Some(
                ctx.tags(Some(tag_name))
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            ))
            .send()
            .await
            .aws(
                "application-autoscaling:RegisterScalableTarget",
                resource_id,
            )
    };
    let existing = if service_pending {
        None
    } else {
        aas.describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .aws(
                "application-autoscaling:DescribeScalableTargets",
                resource_id,
            )?
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == resource_id)
            .cloned()
    };
    let found_of = |arn: Option<&str>| {
        let f = Found::new(resource_id)
            .attr("service", service)
            .attr("min", min.to_string())
            .attr("max", max.to_string());
        match arn {
            Some(a) => f.arn(a),
            None => f,
        }
    };
    let found = ctx
        .ensure(
            KIND,
            resource_id,
            || async { Ok(existing.as_ref().map(|t| found_of(t.scalable_target_arn()))) },
            || async {
                let out = register().await?;
                Ok(found_of(out.scalable_target_arn()))
            },
        )
        .await?;
    if let Some(t) = &existing {
        if t.min_capacity() != min || t.max_capacity() != max {
            ctx.change(
                KIND,
                resource_id,
                &format!("set capacity {min}..{max}"),
                || async {
                    register().await?;
                    Ok(())
                },
            )
            .await?;
        }
    }
    Ok(found)
}

/// Deregisters the target `resource_id` ("not found" counts as deleted).
pub async fn delete(ctx: &StepCtx, resource_id: &str) -> Result<()> {
    ctx.aws()
        .autoscaling()
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .aws(
            "application-autoscaling:DeregisterScalableTarget",
            resource_id,
        )
        .not_found_ok()?;
    Ok(())
}

#[async_trait]
impl Provider for ScalableTarget {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        let out = ctx
            .aws()
            .autoscaling()
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(id)
            .send()
            .await
            .aws("application-autoscaling:DescribeScalableTargets", id)?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == id)
            .map(|t| format!("{}..{}", t.min_capacity(), t.max_capacity())))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
