//! `codedeploy:deployment-group`: the blue/green deployment group of one ECS service: both
//! target groups of its pair, the production listener CodeDeploy shifts and the test
//! listener it switches first, the service role, the deployment configuration (linear or
//! canary), the alarms that stop a deployment, and automatic rollback on failure and on those
//! alarms.
//!
//! Recorded as `<application>|<group>`. A group found with other settings is brought back
//! with UpdateDeploymentGroup (every field is sent: it replaces what it is given). AWS
//! refuses the group unless CodeDeploy may assume the role with the
//! `AWSCodeDeployRoleForECS` permissions, the style is BLUE_GREEN with traffic control, the
//! service uses the `CODE_DEPLOY` controller and the production listener forwards to one of
//! the pair (AWS-CONTRACTS A15); a role created moments ago may not be assumable yet (A16),
//! which the create retries.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_codedeploy::types::{
    Alarm, AlarmConfiguration, AutoRollbackConfiguration, AutoRollbackEvent,
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, DeploymentGroupInfo,
    DeploymentOption, DeploymentReadyAction, DeploymentReadyOption, DeploymentStyle,
    DeploymentType, EcsService, InstanceAction, LoadBalancerInfo, TargetGroupInfo,
    TargetGroupPairInfo, TrafficRoute,
};

use super::codedeploy_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::ecs::MapAws as _;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "codedeploy:deployment-group";

pub struct DeploymentGroup;

/// What the deployment group should be.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub application: String,
    pub name: String,
    pub service_role_arn: String,
    /// `CodeDeployDefault.ECSLinear10PercentEvery1Minutes`, a canary configuration, ...
    pub config_name: String,
    pub cluster: String,
    pub ecs_service: String,
    /// The names (not ARNs) of the pair's target groups: blue first.
    pub target_groups: [String; 2],
    pub prod_listener: String,
    pub test_listener: Option<String>,
    /// Alarms whose ALARM state stops a deployment and rolls it back.
    pub alarms: Vec<String>,
    /// Minutes the old tasks are kept after the traffic moved.
    pub termination_wait_mins: i32,
}

impl GroupSpec {
    fn style() -> DeploymentStyle {
        DeploymentStyle::builder()
            .deployment_type(DeploymentType::BlueGreen)
            .deployment_option(DeploymentOption::WithTrafficControl)
            .build()
    }

    fn blue_green(&self) -> BlueGreenDeploymentConfiguration {
        BlueGreenDeploymentConfiguration::builder()
            // No manual gate: traffic starts moving once the new tasks are ready.
            .deployment_ready_option(
                DeploymentReadyOption::builder()
                    .action_on_timeout(DeploymentReadyAction::ContinueDeployment)
                    .build(),
            )
            .terminate_blue_instances_on_deployment_success(
                BlueInstanceTerminationOption::builder()
                    .action(InstanceAction::Terminate)
                    .termination_wait_time_in_minutes(self.termination_wait_mins)
                    .build(),
            )
            .build()
    }

    fn load_balancer(&self) -> LoadBalancerInfo {
        let route = |arn: &str| TrafficRoute::builder().listener_arns(arn).build();
        LoadBalancerInfo::builder()
            .target_group_pair_info_list(
                TargetGroupPairInfo::builder()
                    .set_target_groups(Some(
                        self.target_groups
                            .iter()
                            .map(|n| TargetGroupInfo::builder().name(n).build())
                            .collect(),
                    ))
                    .prod_traffic_route(route(&self.prod_listener))
                    .set_test_traffic_route(self.test_listener.as_deref().map(route))
                    .build(),
            )
            .build()
    }

    fn alarm_configuration(&self) -> AlarmConfiguration {
        AlarmConfiguration::builder()
            .enabled(!self.alarms.is_empty())
            // An alarm CodeDeploy cannot read stops the deployment: a release is not let
            // through unwatched.
            .ignore_poll_alarm_failure(false)
            .set_alarms(Some(
                self.alarms
                    .iter()
                    .map(|a| Alarm::builder().name(a).build())
                    .collect(),
            ))
            .build()
    }

    fn rollback() -> AutoRollbackConfiguration {
        AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnAlarm)
            .build()
    }

    fn ecs_service(&self) -> EcsService {
        EcsService::builder()
            .cluster_name(&self.cluster)
            .service_name(&self.ecs_service)
            .build()
    }

    /// How the described group differs from this spec. Fields an emulator leaves empty are
    /// compared only when present: AWS always returns them.
    pub fn differences(&self, g: &DeploymentGroupInfo) -> Vec<&'static str> {
        let mut d = Vec::new();
        if g.deployment_config_name() != Some(self.config_name.as_str()) {
            d.push("deployment configuration");
        }
        if g.service_role_arn() != Some(self.service_role_arn.as_str()) {
            d.push("service role");
        }
        let services: Vec<(Option<&str>, Option<&str>)> = g
            .ecs_services()
            .iter()
            .map(|s| (s.cluster_name(), s.service_name()))
            .collect();
        if services != [(Some(self.cluster.as_str()), Some(self.ecs_service.as_str()))] {
            d.push("ECS service");
        }
        let pair = g
            .load_balancer_info()
            .and_then(|l| l.target_group_pair_info_list().first());
        let groups: Vec<&str> = pair
            .map(|p| p.target_groups().iter().filter_map(|t| t.name()).collect())
            .unwrap_or_default();
        if groups
            != self
                .target_groups
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        {
            d.push("target groups");
        }
        let listeners = |r: Option<&TrafficRoute>| -> Vec<String> {
            r.map(|r| r.listener_arns().to_vec()).unwrap_or_default()
        };
        if listeners(pair.and_then(|p| p.prod_traffic_route())) != [self.prod_listener.clone()] {
            d.push("production listener");
        }
        if listeners(pair.and_then(|p| p.test_traffic_route()))
            != self.test_listener.iter().cloned().collect::<Vec<_>>()
        {
            d.push("test listener");
        }
        if let Some(a) = g
            .alarm_configuration()
            .filter(|a| !a.alarms().is_empty() || a.enabled())
        {
            let mut have: Vec<&str> = a.alarms().iter().filter_map(|x| x.name()).collect();
            have.sort_unstable();
            let mut want: Vec<&str> = self.alarms.iter().map(String::as_str).collect();
            want.sort_unstable();
            if have != want || a.enabled() == self.alarms.is_empty() {
                d.push("alarms");
            }
        } else if !self.alarms.is_empty() {
            d.push("alarms");
        }
        let rollback = g.auto_rollback_configuration();
        let events = rollback.map(|r| r.events()).unwrap_or_default();
        if !rollback.is_some_and(|r| r.enabled())
            || !events.contains(&AutoRollbackEvent::DeploymentFailure)
            || !events.contains(&AutoRollbackEvent::DeploymentStopOnAlarm)
        {
            d.push("automatic rollback");
        }
        let wait = g
            .blue_green_deployment_configuration()
            .and_then(|b| b.terminate_blue_instances_on_deployment_success())
            .map(|t| (t.action().cloned(), t.termination_wait_time_in_minutes()));
        if wait != Some((Some(InstanceAction::Terminate), self.termination_wait_mins)) {
            d.push("termination wait");
        }
        d
    }
}

/// The group `name` of `application`, `None` if there is none.
pub async fn describe(
    ctx: &StepCtx,
    application: &str,
    name: &str,
) -> Result<Option<DeploymentGroupInfo>> {
    Ok(ctx
        .aws()
        .codedeploy()
        .get_deployment_group()
        .application_name(application)
        .deployment_group_name(name)
        .send()
        .await
        .aws("codedeploy:GetDeploymentGroup", name)
        .not_found_ok()?
        .and_then(|o| o.deployment_group_info))
}

/// Every setting of `spec` on a CreateDeploymentGroup or UpdateDeploymentGroup request (two
/// builder types with the same setters; an update replaces each field it is given).
macro_rules! group_settings {
    ($request:expr, $spec:expr) => {
        $request
            .application_name(&$spec.application)
            .service_role_arn(&$spec.service_role_arn)
            .deployment_config_name(&$spec.config_name)
            .deployment_style(GroupSpec::style())
            .blue_green_deployment_configuration($spec.blue_green())
            .load_balancer_info($spec.load_balancer())
            .ecs_services($spec.ecs_service())
            .alarm_configuration($spec.alarm_configuration())
            .auto_rollback_configuration(GroupSpec::rollback())
    };
}

/// Finds or creates the group `spec`; updates it when it drifted.
pub async fn ensure(ctx: &StepCtx, spec: &GroupSpec) -> Result<Found> {
    let cd = ctx.aws().codedeploy();
    let name = &spec.name;
    let id = format!("{}|{name}", spec.application);
    let existing = describe(ctx, &spec.application, name).await?;
    let found = || {
        Found::new(&id)
            .attr("application", &spec.application)
            .attr("group", name)
            .attr("ecs_service", &spec.ecs_service)
    };
    let recorded = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(existing.as_ref().map(|_| found())) },
            || async {
                ctx.retry_iam(&format!("deployment group {name}"), || {
                    group_settings!(
                        cd.create_deployment_group().deployment_group_name(name),
                        spec
                    )
                    .set_tags(Some(codedeploy_tags(ctx, name)))
                    .send()
                    .map_aws("codedeploy:CreateDeploymentGroup", name)
                })
                .await?;
                Ok(found())
            },
        )
        .await?;
    if let Some(g) = &existing {
        let diff = spec.differences(g);
        if !diff.is_empty() {
            ctx.change(
                KIND,
                name,
                &format!("update {}", diff.join(", ")),
                || async {
                    ctx.retry_iam(&format!("deployment group {name}"), || {
                        group_settings!(
                            cd.update_deployment_group()
                                .current_deployment_group_name(name),
                            spec
                        )
                        .send()
                        .map_aws("codedeploy:UpdateDeploymentGroup", name)
                    })
                    .await?;
                    Ok(())
                },
            )
            .await?;
        }
    }
    Ok(recorded)
}

/// `(application, group)` of a record.
fn names(rec: &ResourceRecord) -> Result<(&str, &str)> {
    rec.id.split_once('|').with_context(|| {
        format!(
            "deployment group record {} is not <application>|<group>",
            rec.id
        )
    })
}

#[async_trait]
impl Provider for DeploymentGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let (app, group) = names(rec)?;
        Ok(describe(ctx, app, group)
            .await?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        let (app, group) = names(rec)?;
        ctx.aws()
            .codedeploy()
            .delete_deployment_group()
            .application_name(app)
            .deployment_group_name(group)
            .send()
            .await
            .aws("codedeploy:DeleteDeploymentGroup", group)
            .not_found_ok()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GroupSpec {
        GroupSpec {
            application: "app-t".into(),
            name: "dg-web-t".into(),
            service_role_arn: "arn:aws:iam::123456789012:role/role-codedeploy-t".into(),
            config_name: "CodeDeployDefault.ECSLinear10PercentEvery1Minutes".into(),
            cluster: "cluster-t".into(),
            ecs_service: "svc-web-t".into(),
            target_groups: ["tg-blue-t".into(), "tg-green-t".into()],
            prod_listener: "arn:listener/prod".into(),
            test_listener: Some("arn:listener/test".into()),
            alarms: vec!["alarm-b".into(), "alarm-a".into()],
            termination_wait_mins: 5,
        }
    }

    /// The group as CodeDeploy describes what `create` sent.
    fn described(s: &GroupSpec) -> DeploymentGroupInfo {
        DeploymentGroupInfo::builder()
            .deployment_config_name(&s.config_name)
            .service_role_arn(&s.service_role_arn)
            .ecs_services(s.ecs_service())
            .load_balancer_info(s.load_balancer())
            .alarm_configuration(s.alarm_configuration())
            .auto_rollback_configuration(GroupSpec::rollback())
            .blue_green_deployment_configuration(s.blue_green())
            .build()
    }

    #[test]
    fn a_group_as_created_has_no_differences() {
        let s = spec();
        assert!(s.differences(&described(&s)).is_empty());
    }

    #[test]
    fn each_drift_is_named() {
        let s = spec();
        let mut other = s.clone();
        other.config_name = "CodeDeployDefault.ECSAllAtOnce".into();
        other.alarms.pop();
        other.test_listener = None;
        other.termination_wait_mins = 60;
        let d = s.differences(&described(&other));
        assert_eq!(
            d,
            vec![
                "deployment configuration",
                "test listener",
                "alarms",
                "termination wait"
            ]
        );
        let no_rollback = DeploymentGroupInfo::builder()
            .deployment_config_name(&s.config_name)
            .build();
        assert!(s.differences(&no_rollback).contains(&"automatic rollback"));
    }
}
