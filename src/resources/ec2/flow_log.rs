//! `ec2:flow-log`: a VPC flow log of every accepted and rejected packet (`TrafficType` ALL)
//! into a CloudWatch Logs group, delivered as an IAM role (`DeliverLogsPermissionArn`).
//!
//! Flow logs cannot be modified (there is no UpdateFlowLog): one that no longer matches (other
//! group, role or traffic type) is deleted and created again. CreateFlowLogs carries a
//! `ClientToken`, so an SDK retry of a create that reached AWS makes no second flow log
//! (<https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Run_Instance_Idempotency.html>).
//! AWS refuses CreateFlowLogs while `vpc-flow-logs.amazonaws.com` cannot assume the role yet
//! (IAM is eventually consistent): the create is retried a while. DeleteFlowLogs answers an
//! unknown ID with an unsuccessful item, not an error: that counts as deleted.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    FlowLog, FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType,
};

use super::{filter, is_ours, named, tag_spec};
use crate::aws::{AwsError, AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{idempotency_token, is_pending, Found, StepCtx};

pub const KIND: &str = "ec2:flow-log";

/// How long CreateFlowLogs is retried while a new role is not yet assumable (IAM is
/// eventually consistent, AWS-CONTRACTS A16).
const ROLE_PROPAGATION: Duration = Duration::from_secs(120);

pub struct FlowLogProvider;

/// A flow log the stack wants: `vpc_id`'s traffic into `log_group`, delivered as `role`.
#[derive(Debug, Clone, Copy)]
pub struct FlowLogSpec<'a> {
    /// The `Name` tag.
    pub name: &'a str,
    /// The VPC (a plan-mode placeholder until it exists).
    pub vpc_id: &'a str,
    pub log_group: &'a str,
    /// The delivery role (pending until it exists).
    pub role: &'a Found,
    /// Whether the VPC, key or log group is still to be created (plan mode).
    pub inputs_pending: bool,
}

/// What a flow log must be to be kept.
struct Wanted<'a> {
    vpc_id: &'a str,
    group: &'a str,
    role_arn: &'a str,
}

impl Wanted<'_> {
    fn matches(&self, f: &FlowLog) -> bool {
        f.resource_id() == Some(self.vpc_id)
            && f.log_group_name() == Some(self.group)
            && f.deliver_logs_permission_arn() == Some(self.role_arn)
            && f.traffic_type() == Some(&TrafficType::All)
            && f.log_destination_type()
                .is_none_or(|t| t == &LogDestinationType::CloudWatchLogs)
    }
}

/// This stack's flow logs named `name` on `vpc_id` (tags checked here as well: emulators
/// may ignore the filters).
async fn find(ctx: &StepCtx, name: &str, vpc_id: &str) -> Result<Vec<FlowLog>> {
    let mut filters = named(ctx, name);
    filters.push(filter("resource-id", vpc_id));
    let out = ctx
        .aws()
        .ec2()
        .describe_flow_logs()
        .set_filter(Some(filters))
        .send()
        .await
        .aws("ec2:DescribeFlowLogs", name)?;
    Ok(out
        .flow_logs()
        .iter()
        .filter(|f| f.resource_id() == Some(vpc_id) && is_ours(ctx, f.tags(), name))
        .cloned()
        .collect())
}

async fn request_delete(ctx: &StepCtx, id: &str) -> Result<(), AwsError> {
    let out = ctx
        .aws()
        .ec2()
        .delete_flow_logs()
        .flow_log_ids(id)
        .send()
        .await
        .aws("ec2:DeleteFlowLogs", id)?;
    // AWS answers an unknown ID with an unsuccessful item, not an error: that is deleted.
    match out.unsuccessful().iter().find_map(|u| u.error()) {
        Some(e) if !e.code().unwrap_or_default().contains("NotFound") => Err(AwsError {
            operation: "ec2:DeleteFlowLogs",
            resource: id.to_string(),
            code: e.code().map(str::to_string),
            message: e.message().map(str::to_string),
            source: format!("{e:?}").into(),
        }),
        _ => Ok(()),
    }
}

/// The flow log `spec`: a drifted one is replaced, a missing one created (recorded with its
/// VPC and log group).
pub async fn ensure(c: &StepCtx, spec: &FlowLogSpec<'_>) -> Result<Found> {
    let FlowLogSpec {
        name,
        vpc_id,
        log_group: group_name,
        role,
        inputs_pending: pending,
    } = *spec;
    let role_arn = role.arn.clone().unwrap_or_default();
    let wanted = Wanted {
        vpc_id,
        group: group_name,
        role_arn: &role_arn,
    };
    let existing = if is_pending(vpc_id) {
        Vec::new()
    } else {
        find(c, name, vpc_id).await?
    };
    // Flow logs are immutable: one that drifted is replaced.
    let (keep, drifted): (Vec<_>, Vec<_>) = existing
        .into_iter()
        .partition(|f| !role.is_pending() && wanted.matches(f));
    for f in drifted {
        let id = f.flow_log_id().unwrap_or_default().to_string();
        let what = format!("replace flow log {id} (group, role or traffic type changed)");
        c.change(KIND, name, &what, || async {
            request_delete(c, &id).await?;
            c.forget(KIND, &id)
        })
        .await?;
    }
    let found = keep.first().and_then(|f| f.flow_log_id()).map(|id| {
        Found::new(id)
            .attr("vpc_id", vpc_id)
            .attr("log_group", group_name)
    });
    let ec2 = c.aws().ec2();
    let flow_log = c
        .ensure(
            KIND,
            name,
            || async { Ok(found) },
            || async {
                if pending || role.is_pending() {
                    bail!("the VPC, key or delivery role is not known yet");
                }
                // One token for the call and its retries: AWS then creates one flow log.
                let token = idempotency_token(name);
                let out = c
                    .retry_while(
                        &format!("IAM role {} to be assumable", role.id),
                        ROLE_PROPAGATION,
                        is_unassumable_role,
                        || async {
                            ec2.create_flow_logs()
                                .client_token(&token)
                                .resource_type(FlowLogsResourceType::Vpc)
                                .resource_ids(vpc_id)
                                .traffic_type(TrafficType::All)
                                .log_destination_type(LogDestinationType::CloudWatchLogs)
                                .log_group_name(group_name)
                                .deliver_logs_permission_arn(&role_arn)
                                .tag_specifications(tag_spec(c, ResourceType::VpcFlowLog, name))
                                .send()
                                .await
                                .aws("ec2:CreateFlowLogs", name)
                        },
                    )
                    .await?;
                if let Some(e) = out.unsuccessful().iter().find_map(|u| u.error()) {
                    bail!(
                        "ec2:CreateFlowLogs {name}: {} {}",
                        e.code().unwrap_or_default(),
                        e.message().unwrap_or_default()
                    );
                }
                let id = out
                    .flow_log_ids()
                    .first()
                    .context("CreateFlowLogs returned no flow log ID")?;
                Ok(Found::new(id)
                    .attr("vpc_id", vpc_id)
                    .attr("log_group", group_name))
            },
        )
        .await?;
    Ok(flow_log)
}

/// CreateFlowLogs' answer while a new role cannot be assumed yet: `InvalidParameter` "Unable to
/// assume given IAM role" (not one of the codes [`crate::step::is_iam_propagation`] knows).
fn is_unassumable_role(e: &AwsError) -> bool {
    crate::step::is_iam_propagation(e)
        || (e.code.as_deref() == Some("InvalidParameter")
            && e.message
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains("assume"))
}

/// Deletes the flow log `id`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    ctx.retry_dependency(&format!("{KIND} {id}"), || request_delete(ctx, id))
        .await
}

#[async_trait]
impl Provider for FlowLogProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let out = ctx
            .aws()
            .ec2()
            .describe_flow_logs()
            .flow_log_ids(&rec.id)
            .send()
            .await
            .aws("ec2:DescribeFlowLogs", &rec.id)
            .not_found_ok()?;
        Ok(out
            .and_then(|o| {
                o.flow_logs()
                    .iter()
                    .find(|f| f.flow_log_id() == Some(rec.id.as_str()))
                    .cloned()
            })
            .map(|f| {
                format!(
                    "{} (delivery {})",
                    f.flow_log_status().unwrap_or("unknown"),
                    f.deliver_logs_status().unwrap_or("unknown")
                )
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unassumable_role_is_retried_other_refusals_are_not() {
        let e = |code: &str, msg: &str| AwsError {
            operation: "ec2:CreateFlowLogs",
            resource: "x".into(),
            code: Some(code.into()),
            message: Some(msg.into()),
            source: "x".into(),
        };
        assert!(is_unassumable_role(&e(
            "InvalidParameter",
            "Unable to assume given IAM role: 'arn'"
        )));
        assert!(!is_unassumable_role(&e(
            "InvalidParameter",
            "bad log group"
        )));
    }
}
