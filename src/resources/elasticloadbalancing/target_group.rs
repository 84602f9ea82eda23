//! `elasticloadbalancing:targetgroup`: an IP target group of the ALB (HTTP, the service's
//! port and health check path), found by name, created, its health check kept in line.
//!
//! A target group's port and VPC cannot change. One of this stack's left in an old VPC (a
//! run that died after creating it, then a `down` that removed the VPC without knowing of
//! the group) is deleted and made again; one with the stack's name that is not the stack's
//! is refused.

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroup, TargetTypeEnum};

use super::elb_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "elasticloadbalancing:targetgroup";

/// Health check: every 30 s, 3 failures mark a target unhealthy, 3 successes healthy again.
pub const HEALTH_INTERVAL: i32 = 30;
pub const HEALTH_TIMEOUT: i32 = 5;
pub const HEALTHY_THRESHOLD: i32 = 3;
pub const UNHEALTHY_THRESHOLD: i32 = 3;
pub const MATCHER: &str = "200-399";

pub struct TargetGroupProvider;

/// A target group the stack needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupSpec {
    /// Key in `alb_target_groups` (kept in the record's attrs): `blue`, `green` or the
    /// service name.
    pub key: String,
    pub name: String,
    pub port: i32,
    pub health_check_path: String,
}

/// `targetgroup/<name>/<id>` from a target group ARN: CloudWatch's `TargetGroup` dimension.
pub fn tg_full_name(arn: &str) -> String {
    arn.rsplit_once(':')
        .map(|(_, n)| n.to_string())
        .unwrap_or_default()
}

/// The target group named `name`, if it exists.
pub async fn find(ctx: &StepCtx, name: &str) -> Result<Option<TargetGroup>> {
    let out = ctx
        .aws()
        .elb()
        .describe_target_groups()
        .names(name)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeTargetGroups", name)
        .not_found_ok()?;
    Ok(out.and_then(|o| o.target_groups().first().cloned()))
}

/// The target group `spec` in the VPC `vpc_id`, created if missing; a drifted health check is
/// repaired (its port cannot change: a warning says so).
pub async fn ensure(ctx: &StepCtx, vpc_id: &str, spec: &TargetGroupSpec) -> Result<Found> {
    let elb = ctx.aws().elb();
    let mut existing = find(ctx, &spec.name).await?;
    if let (Some(tg), false) = (existing.clone(), is_pending(vpc_id)) {
        if tg.vpc_id() != Some(vpc_id) {
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            let old_vpc = tg.vpc_id().unwrap_or("?").to_string();
            // A target group of this stack left in its old VPC (a run that died after
            // creating it, then a `down` that removed the VPC it did not know about the
            // group): nothing can use it, and its name is this stack's. Anything else is
            // someone else's.
            let tags = elb
                .describe_tags()
                .resource_arns(&arn)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeTags", &arn)?;
            let ours = tags
                .tag_descriptions()
                .iter()
                .flat_map(|d| d.tags())
                .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()));
            let vpc_gone = ctx
                .aws()
                .ec2()
                .describe_vpcs()
                .vpc_ids(&old_vpc)
                .send()
                .await
                .aws("ec2:DescribeVpcs", &old_vpc)
                .not_found_ok()?
                .is_none_or(|o| o.vpcs().is_empty());
            if !(ours && (vpc_gone || tg.load_balancer_arns().is_empty())) {
                bail!(
                    "target group {} exists in VPC {old_vpc}, not in the stack's VPC \
                     {vpc_id}: it belongs to something else; delete or rename it",
                    spec.name
                );
            }
            ctx.change(
                KIND,
                &spec.name,
                &format!("delete: left by this stack in its old VPC {old_vpc}"),
                || async {
                    elb.delete_target_group()
                        .target_group_arn(&arn)
                        .send()
                        .await
                        .aws("elasticloadbalancing:DeleteTargetGroup", &arn)?;
                    Ok(())
                },
            )
            .await?;
            if !ctx.is_plan() {
                ctx.forget(KIND, &arn)?;
            }
            existing = None;
        }
    }
    let found = ctx
        .ensure(
            KIND,
            &spec.name,
            || async {
                Ok(existing.as_ref().and_then(|t| {
                    t.target_group_arn()
                        .map(|a| Found::new(a).arn(a).attr("key", &spec.key))
                }))
            },
            || async {
                let out = elb
                    .create_target_group()
                    .name(&spec.name)
                    .protocol(ProtocolEnum::Http)
                    .port(spec.port)
                    .vpc_id(vpc_id)
                    .target_type(TargetTypeEnum::Ip)
                    .health_check_enabled(true)
                    .health_check_protocol(ProtocolEnum::Http)
                    .health_check_path(&spec.health_check_path)
                    .health_check_interval_seconds(HEALTH_INTERVAL)
                    .health_check_timeout_seconds(HEALTH_TIMEOUT)
                    .healthy_threshold_count(HEALTHY_THRESHOLD)
                    .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                    .matcher(Matcher::builder().http_code(MATCHER).build())
                    .set_tags(Some(elb_tags(ctx, &spec.name)))
                    .send()
                    .await
                    .aws("elasticloadbalancing:CreateTargetGroup", &spec.name)?;
                let arn = out
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .context("CreateTargetGroup returned no ARN")?;
                Ok(Found::new(arn).arn(arn).attr("key", &spec.key))
            },
        )
        .await?;
    // Drift of the health check (ports cannot change: that needs a new group).
    if let Some(tg) = &existing {
        let ok = tg.health_check_path() == Some(spec.health_check_path.as_str())
            && tg.health_check_interval_seconds() == Some(HEALTH_INTERVAL)
            && tg.healthy_threshold_count() == Some(HEALTHY_THRESHOLD)
            && tg.unhealthy_threshold_count() == Some(UNHEALTHY_THRESHOLD)
            && tg.matcher().and_then(|m| m.http_code()) == Some(MATCHER);
        if !ok {
            ctx.change(
                KIND,
                &spec.name,
                &format!(
                    "health check: path {}, every {HEALTH_INTERVAL}s, healthy after \
                     {HEALTHY_THRESHOLD}, unhealthy after {UNHEALTHY_THRESHOLD}, codes {MATCHER}",
                    spec.health_check_path
                ),
                || async {
                    elb.modify_target_group()
                        .target_group_arn(&found.id)
                        .health_check_path(&spec.health_check_path)
                        .health_check_interval_seconds(HEALTH_INTERVAL)
                        .health_check_timeout_seconds(HEALTH_TIMEOUT)
                        .healthy_threshold_count(HEALTHY_THRESHOLD)
                        .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                        .matcher(Matcher::builder().http_code(MATCHER).build())
                        .send()
                        .await
                        .aws("elasticloadbalancing:ModifyTargetGroup", &spec.name)?;
                    Ok(())
                },
            )
            .await?;
        }
        if tg.port() != Some(spec.port) {
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "target group {} listens on port {}, the config says {}: a target \
                     group's port cannot change; tasks register with their own port, so \
                     traffic still flows",
                    spec.name,
                    tg.port().unwrap_or_default(),
                    spec.port
                ),
            );
        }
    }
    Ok(found)
}

/// Deletes the target group `arn`, retried while a listener or rule still forwards to it
/// (`ResourceInUse`); "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        elb.delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("elasticloadbalancing:DeleteTargetGroup", arn)
    })
    .await
}

#[async_trait]
impl Provider for TargetGroupProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .elb()
            .describe_target_groups()
            .target_group_arns(id)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeTargetGroups", id)
            .not_found_ok()?
            .filter(|o| !o.target_groups().is_empty())
            .map(|_| "exists".into()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_dimension_comes_from_the_arn() {
        assert_eq!(
            tg_full_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-blue-p/73e2d6bc24d8a067"
            ),
            "targetgroup/tg-blue-p/73e2d6bc24d8a067"
        );
    }
}
