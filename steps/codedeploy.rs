//! CodeDeploy step: blue/green releases through AWS CodeDeploy for a default service with
//! `deployment = "codedeploy-linear"` (seed 003) or `"codedeploy-canary"` (seed 004).
//!
//! - The service role `role-codedeploy-<s>`, trusted by `codedeploy.amazonaws.com`, with the
//!   AWS managed policy `AWSCodeDeployRoleForECS` (what CodeDeploy does to the service, its
//!   task sets, the listeners and their rules; AWS-CONTRACTS A15).
//! - The ECS application `codedeploy-<s>`.
//! - The deployment group `dg-<service>-<s>`: blue/green with traffic control on the ECS
//!   service (created with the `CODE_DEPLOY` controller by the services step), the blue and
//!   green target groups, the production listener and the ALB's test listener
//!   (`deploy.test_port`), `deploy.linear_config` or `deploy.canary_config`, the old tasks
//!   kept `deploy.termination_wait_mins` after the traffic moved, the ALB's 5xx-rate and p99
//!   latency alarms (`ROLLBACK_ALARMS`) stopping a deployment, and automatic rollback on a
//!   failed deployment and on those alarms.
//!
//! `fintech-infra deploy` creates the deployments ([`crate::deploy`]). The step is always in
//! the graph: without a CodeDeploy service it only removes what an earlier run built. `down`
//! takes the order from `BUILT_ON`: the group goes before its application, the ECS service,
//! the target groups, listeners and alarms it names and the role it acts as.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::json;

use crate::outputs::alarms::{alarm_name, ROLLBACK_ALARMS};
use crate::outputs::{alb, cluster};
use crate::resources::codedeploy::application;
use crate::resources::codedeploy::deployment_group::{self, GroupSpec};
use crate::resources::elasticloadbalancing::tg_name_of;
use crate::resources::iam::{attachment, role, RoleSpec};
use crate::step::{is_pending, Step, StepCtx, PENDING_PREFIX};

pub use crate::outputs::codedeploy::*;

pub const APPLICATION: &str = application::KIND;
pub const DEPLOYMENT_GROUP: &str = deployment_group::KIND;

/// The AWS managed policy of CodeDeploy's ECS service role.
pub const ECS_ROLE_POLICY: &str = "AWSCodeDeployRoleForECS";

pub struct CodeDeploy;

/// Who may assume the service role: CodeDeploy.
fn trust() -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "CodeDeployAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "codedeploy.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

#[async_trait]
impl Step for CodeDeploy {
    fn name(&self) -> &'static str {
        "codedeploy"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["services", "alb", "alarms", "cluster"]
    }

    fn estimate_secs(&self) -> u64 {
        // A role, an application, a group: seconds, plus IAM's propagation on a new role.
        15
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = ctx.cfg();
        let Some(svc) = cfg
            .services
            .0
            .first()
            .filter(|s| s.deployment.is_code_deploy())
        else {
            // Nothing deploys through CodeDeploy (any more): what an earlier run built goes.
            crate::resources::delete_recorded(ctx, DEPLOYMENT_GROUP).await?;
            crate::resources::delete_recorded(ctx, APPLICATION).await?;
            crate::resources::delete_recorded(ctx, attachment::KIND).await?;
            crate::resources::delete_recorded(ctx, role::KIND).await?;
            ctx.set_output(OUT_APPLICATION, serde_json::Value::Null)?;
            ctx.set_output(OUT_DEPLOYMENT_GROUPS, json!({}))?;
            return Ok(());
        };
        let s = ctx.suffix();
        let role_name = ctx.names().of("role-codedeploy");
        let spec = RoleSpec {
            service: None,
            role: role_name.clone(),
            policy: String::new(),
            trust: trust(),
            document: None,
            description: "CodeDeploy's service role for the stack's ECS blue/green deployments"
                .into(),
            policy_description: String::new(),
            resource_star_actions: &[],
        };
        let role = role::ensure(ctx, &spec).await?;
        let account_partition = role
            .arn
            .as_deref()
            .map(crate::resources::iam::partition_of)
            .unwrap_or("aws")
            .to_string();
        let policy_arn = format!("arn:{account_partition}:iam::aws:policy/{ECS_ROLE_POLICY}");
        attachment::ensure(ctx, &role_name, &policy_arn, ECS_ROLE_POLICY, true).await?;

        let app = ctx.names().of("codedeploy");
        application::ensure(ctx, &app).await?;

        let tgs = ctx.input_map(alb::OUT_TARGET_GROUPS)?;
        let prod = ctx.input_str(alb::OUT_LISTENER_ARN)?;
        let test = ctx
            .output(alb::OUT_TEST_LISTENER_ARN)
            .and_then(|v| v.as_str().map(str::to_string));
        let cluster_name = ctx.input_str(cluster::OUT_CLUSTER_NAME)?;
        let config_name = match svc.deployment {
            crate::config::Deployment::CodedeployCanary => cfg.deploy.canary_config.clone(),
            _ => cfg.deploy.linear_config.clone(),
        };
        let pair = |k: &str| -> Result<String> {
            match tgs.get(k) {
                Some(a) if is_pending(a) => Ok(a.clone()),
                Some(a) => Ok(tg_name_of(a).to_string()),
                // Plan on a new stack: the ALB step makes them in this run.
                None if ctx.is_plan() => Ok(format!(
                    "{PENDING_PREFIX} output {}.{k})",
                    alb::OUT_TARGET_GROUPS
                )),
                None => anyhow::bail!(
                    "output {} has no {k} target group: has the alb step run?",
                    alb::OUT_TARGET_GROUPS
                ),
            }
        };
        let group = GroupSpec {
            application: app.clone(),
            name: format!("dg-{}-{s}", svc.name.0),
            service_role_arn: role.arn.clone().unwrap_or_else(|| role.id.clone()),
            config_name,
            cluster: cluster_name,
            ecs_service: crate::naming::ecs_service_name(&svc.name.0, s),
            target_groups: [pair("blue")?, pair("green")?],
            prod_listener: prod,
            test_listener: test,
            alarms: ROLLBACK_ALARMS.iter().map(|p| alarm_name(p, s)).collect(),
            termination_wait_mins: cfg.deploy.termination_wait_mins as i32,
        };
        deployment_group::ensure(ctx, &group).await?;
        ctx.set_output(OUT_APPLICATION, app)?;
        ctx.set_output(OUT_DEPLOYMENT_GROUPS, json!({ svc.name.0.clone(): group.name }))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_group_names_come_from_their_arns() {
        assert_eq!(
            tg_name_of("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-blue-t/0123456789abcdef"),
            "tg-blue-t"
        );
    }

    #[test]
    fn only_codedeploy_may_assume_the_role() {
        let t = trust().to_string();
        assert!(t.contains("codedeploy.amazonaws.com"), "{t}");
        assert!(!t.contains("ecs-tasks"), "{t}");
    }
}
