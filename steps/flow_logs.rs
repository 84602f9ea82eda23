//! Flow logs step (issue 12, Security Hub EC2.6): VPC flow logs of every accepted and rejected
//! packet (`TrafficType` ALL) of the stack's VPC and, with `[dr] region`, of the DR VPC, each
//! to a CloudWatch Logs group in its own region (`/vpc/flow-logs-<suffix>`), encrypted with
//! that region's stack key and kept `logs.retention_days`.
//!
//! Flow logs publish to CloudWatch Logs as an IAM role (`DeliverLogsPermissionArn`) that
//! `vpc-flow-logs.amazonaws.com` assumes; AWS refuses CreateFlowLogs when the service cannot
//! assume it and leaves the flow log `DeliverLogsStatus: FAILED` when the role may not write to
//! the group (<https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html>). One
//! role per region (`role-flow-logs-<suffix>`, `role-flow-logs-dr-<suffix>`), trusted by that
//! service for this account only (`aws:SourceAccount`, against the confused deputy), with a
//! customer-managed policy allowing exactly the four delivery actions on its region's group.
//!
//! Flow logs cannot be modified (there is no UpdateFlowLog): one that no longer matches (other
//! group, role or traffic type) is deleted and created again (see
//! [`crate::resources::ec2::flow_log`]).
//!
//! `network.flow_logs = false` (flow logs are billed per GB ingested into CloudWatch Logs)
//! builds nothing and removes what an earlier run built; so does a DR region the config no
//! longer names.
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): a flow log is built on
//! its VPC, its log group and its role, so it goes before them: until it is deleted it
//! delivers into that group as that role. The log group is built on the key it is encrypted
//! with; the role's policy attachment is built on the role and the policy, and goes first.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::resources::delete_recorded;
use crate::resources::ec2::flow_log::{self, FlowLogSpec};
use crate::resources::iam::{self, RoleSpec};
use crate::resources::logs::log_group;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::outputs::{dr_network, dr_storage, kms, network};

pub use crate::outputs::flow_logs::*;

pub const FLOW_LOG: &str = flow_log::KIND;

/// The actions VPC Flow Logs needs on its log group (AWS's documented delivery policy).
pub const DELIVERY_ACTIONS: [&str; 4] = [
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
];

/// The service principal that assumes the delivery role.
pub const FLOW_LOGS_PRINCIPAL: &str = "vpc-flow-logs.amazonaws.com";

pub struct FlowLogs;

/// Which VPC: the stack's or the DR one. Names differ so both can be told apart in IAM
/// (global), although the log groups are regional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Main,
    Dr,
}

impl Side {
    fn tag(self) -> &'static str {
        match self {
            Side::Main => "",
            Side::Dr => "dr-",
        }
    }

    fn output(self) -> &'static str {
        match self {
            Side::Main => OUT_FLOW_LOG_ID,
            Side::Dr => OUT_DR_FLOW_LOG_ID,
        }
    }
}

/// `/vpc/flow-logs-<suffix>` (one per region, so the same name on both sides).
pub fn log_group_name(suffix: &str) -> String {
    format!("/vpc/flow-logs-{suffix}")
}

pub fn role_name(suffix: &str, side: Side) -> String {
    format!("role-flow-logs-{}{suffix}", side.tag())
}

pub fn policy_name(suffix: &str, side: Side) -> String {
    format!("policy-flow-logs-{}{suffix}", side.tag())
}

/// The flow log's Name tag.
fn flow_log_name(suffix: &str, side: Side) -> String {
    format!("fl-{}vpc-{suffix}", side.tag())
}

/// `arn:<p>:logs:<region>:<account>:log-group:<name>`.
pub fn log_group_arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:logs:{region}:{account}:log-group:{name}")
}

/// Who may assume the delivery role: VPC Flow Logs, on behalf of this account only.
pub fn trust_policy(account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "VpcFlowLogsAssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": FLOW_LOGS_PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    })
}

/// What the delivery role may do: the four delivery actions on the one group (the group ARN
/// for DescribeLogGroups, `:*` for its streams), nothing else.
pub fn delivery_policy(group_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DeliverFlowLogsToTheGroup",
            "Effect": "Allow",
            "Action": DELIVERY_ACTIONS,
            "Resource": [group_arn, format!("{group_arn}:*")]
        }]
    })
}

impl FlowLogs {
    /// The delivery role and its policy, recorded in `c`'s region.
    async fn ensure_role(
        c: &StepCtx,
        side: Side,
        partition: &str,
        account: &str,
        group_arn: &str,
        pending: bool,
    ) -> Result<Found> {
        let s = c.suffix();
        let spec = RoleSpec {
            service: None,
            role: role_name(s, side),
            policy: policy_name(s, side),
            trust: trust_policy(account),
            document: Some(delivery_policy(group_arn)),
            description: format!("fintech-infra {s}: VPC flow log delivery in {}", c.region()),
            policy_description: format!(
                "fintech-infra {s}: write VPC flow logs to {}",
                log_group_name(s)
            ),
            resource_star_actions: &[],
        };
        iam::ensure_role_with_policy(c, &spec, partition, account, pending).await
    }

    /// Log group, role and flow log of one VPC, in `c`'s region. Returns the flow log.
    async fn ensure_side(c: &StepCtx, side: Side, vpc_id: &str, key_arn: &str) -> Result<Found> {
        let account = c.account_id().await?;
        let group_name = log_group_name(c.suffix());
        let group = log_group::ensure(c, &group_name, key_arn, &[("vpc_id", vpc_id)]).await?;
        let pending = is_pending(vpc_id) || is_pending(key_arn) || group.is_pending();
        let partition = if is_pending(key_arn) {
            "aws"
        } else {
            iam::partition_of(key_arn)
        };
        let group_arn = log_group_arn(partition, c.region(), &account, &group_name);
        let role = Self::ensure_role(c, side, partition, &account, &group_arn, pending).await?;

        let name = flow_log_name(c.suffix(), side);
        let spec = FlowLogSpec {
            name: &name,
            vpc_id,
            log_group: &group_name,
            role: &role,
            inputs_pending: pending,
        };
        flow_log::ensure(c, &spec).await
    }

    /// Removes everything recorded in `region`: flow logs first (they write to the group as
    /// the role), then the log group, then the policy and the role.
    async fn remove_region(ctx: &StepCtx, region: &str) -> Result<()> {
        let c = ctx.in_region(region);
        delete_recorded(&c, FLOW_LOG).await?;
        delete_recorded(&c, log_group::KIND).await?;
        iam::delete_recorded_roles(&c).await?;
        Ok(())
    }

    /// The regions flow logs are wanted in, with the VPC and key output keys of each.
    fn wanted_regions(ctx: &StepCtx) -> Vec<(String, Side)> {
        if !ctx.cfg().network.flow_logs {
            return Vec::new();
        }
        let mut v = vec![(ctx.region().to_string(), Side::Main)];
        if let Some(dr) = &ctx.cfg().dr.region {
            v.push((dr.0.clone(), Side::Dr));
        }
        v
    }
}

#[async_trait]
impl Step for FlowLogs {
    fn name(&self) -> &'static str {
        "flow_logs"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["network", "kms", "dr_network", "dr_storage"]
    }

    fn estimate_secs(&self) -> u64 {
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let wanted = Self::wanted_regions(ctx);
        // Regions recorded but no longer wanted: flow logs switched off, or DR dropped/moved.
        for region in ctx.record_regions() {
            let stale = !wanted.iter().any(|(r, _)| *r == region);
            let c = ctx.in_region(&region);
            if stale && !c.records(None).is_empty() {
                let why = if ctx.cfg().network.flow_logs {
                    format!("remove in {region}: dr.region no longer names it")
                } else {
                    format!("remove in {region}: network.flow_logs is false")
                };
                let name = log_group_name(ctx.suffix());
                ctx.change(FLOW_LOG, &name, &why, || Self::remove_region(ctx, &region))
                    .await?;
            }
        }
        for side in [Side::Main, Side::Dr] {
            if !wanted.iter().any(|(_, s)| *s == side) {
                ctx.remove_output(side.output())?;
            }
        }
        for (region, side) in wanted {
            let (vpc_id, key_arn) = match side {
                Side::Main => (
                    ctx.input_str(network::OUT_VPC_ID)?,
                    ctx.input_str(kms::OUT_KEY_ARN)?,
                ),
                Side::Dr => (
                    ctx.input_str(dr_network::OUT_DR_VPC_ID)?,
                    ctx.input_str(dr_storage::OUT_DR_KEY_ARN)?,
                ),
            };
            let c = ctx.in_region(&region);
            let fl = Self::ensure_side(&c, side, &vpc_id, &key_arn).await?;
            if !fl.is_pending() {
                ctx.set_output(side.output(), fl.id.clone())?;
            }
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_policy_is_least_privilege_on_one_group() {
        let arn = log_group_arn("aws", "us-east-1", "123456789012", &log_group_name("dev"));
        let doc = delivery_policy(&arn);
        iam::check_least_privilege(&doc).expect("least privilege");
        let st = &doc["Statement"][0];
        assert_eq!(st["Action"], json!(DELIVERY_ACTIONS));
        assert_eq!(
            st["Resource"],
            json!([
                "arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flow-logs-dev",
                "arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flow-logs-dev:*"
            ])
        );
        assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn trust_is_the_flow_logs_service_of_this_account_only() {
        let t = trust_policy("123456789012");
        let st = &t["Statement"][0];
        assert_eq!(
            st["Principal"],
            json!({"Service": "vpc-flow-logs.amazonaws.com"})
        );
        assert_eq!(
            st["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": "123456789012"}})
        );
    }

    #[test]
    fn names_differ_per_side_and_fit_iam() {
        assert_ne!(role_name("dev", Side::Main), role_name("dev", Side::Dr));
        assert_ne!(policy_name("dev", Side::Main), policy_name("dev", Side::Dr));
        let longest = "a".repeat(crate::naming::max_suffix_len());
        assert!(role_name(&longest, Side::Dr).len() <= 64);
    }
}
