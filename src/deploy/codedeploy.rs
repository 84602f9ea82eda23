//! A `codedeploy-linear` or `codedeploy-canary` release: a CodeDeploy blue/green deployment
//! of a new task definition revision (a copy of the running one with the new image), made
//! with an AppSpec and followed until it ends.
//!
//! CodeDeploy starts the new revision as a replacement task set behind the idle target group
//! of the pair, switches the test listener to it, then shifts the production listener by the
//! group's configuration (10 % a minute, or 10 % then the rest after five minutes), keeps the
//! old tasks for `deploy.termination_wait_mins`, and removes them. It stops the deployment
//! and puts all traffic back on the old tasks when they fail or a rollback alarm goes to
//! ALARM (the group's automatic rollback). The deploy shows the traffic split and the task
//! sets while that runs; a deployment that does not end within
//! `deploy.health_timeout_secs` plus the shift and the termination wait is stopped with
//! rollback. A rolled-back revision is deregistered.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aws_sdk_codedeploy::types::{
    Alarm, AlarmConfiguration, AppSpecContent, DeploymentStatus, RevisionLocation,
    RevisionLocationType,
};
use serde_json::json;

use super::rolling::short;
use super::watch;
use super::{Ctx, RolledBack};
use crate::aws::{Aws, AwsResultExt};
use crate::resources::ecs::task_definition;

/// Where the replacement task set runs: the stack's private subnets, the service's own
/// security group, the config's capacity split. CodeDeploy takes the service's current
/// network settings when the AppSpec names none, and a changed network or capacity setting
/// reaches a CODE_DEPLOY service only through a deployment's AppSpec, so every AppSpec
/// carries what `up` wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub subnets: Vec<String>,
    pub security_group: String,
    pub strategy: Vec<crate::resources::ecs::StrategyItem>,
}

/// The AppSpec of a deployment of `revision`: the service's container and port behind the
/// load balancer (CodeDeploy registers the replacement task set's tasks by them) and, when
/// known, where its tasks run.
pub fn appspec(
    revision: &str,
    container: &str,
    port: u16,
    placement: Option<&Placement>,
) -> String {
    let mut properties = json!({
        "TaskDefinition": revision,
        "LoadBalancerInfo": {
            "ContainerName": container,
            "ContainerPort": port
        },
        "PlatformVersion": "LATEST"
    });
    if let Some(p) = placement {
        properties["NetworkConfiguration"] = json!({
            "AwsvpcConfiguration": {
                "Subnets": p.subnets,
                "SecurityGroups": [p.security_group],
                // Private subnets: the tasks reach out through the NAT gateway only.
                "AssignPublicIp": "DISABLED"
            }
        });
        properties["CapacityProviderStrategy"] = p
            .strategy
            .iter()
            .map(|s| json!({"CapacityProvider": s.provider, "Base": s.base, "Weight": s.weight}))
            .collect();
    }
    json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": properties
            }
        }]
    })
    .to_string()
}

/// The placement `up` gives the service, from the state's outputs and the config.
fn placement(ctx: &Ctx<'_>) -> Option<Placement> {
    let subnets: Vec<String> = ctx
        .store
        .output(crate::outputs::network::OUT_PRIVATE_SUBNET_IDS)?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let security_group = ctx
        .store
        .output(crate::outputs::network::OUT_SERVICE_SG_IDS)?
        .get(&ctx.svc.name.0)?
        .as_str()?
        .to_string();
    (!subnets.is_empty()).then(|| Placement {
        subnets,
        security_group,
        strategy: crate::resources::ecs::strategy(&ctx.svc.capacity),
    })
}

/// One line about a deployment: its status and each task set's traffic share and tasks.
async fn status_line(aws: &Aws, id: &str, target: &str, status: &str) -> String {
    let sets = aws
        .codedeploy()
        .get_deployment_target()
        .deployment_id(id)
        .target_id(target)
        .send()
        .await
        .ok()
        .and_then(|o| o.deployment_target)
        .and_then(|t| t.ecs_target)
        .map(|t| t.task_sets_info)
        .unwrap_or_default()
        .unwrap_or_default();
    let mut parts: Vec<String> = sets
        .iter()
        .map(|s| {
            format!(
                "{} {}% ({}/{} running{})",
                s.task_set_label().map(|l| l.as_str()).unwrap_or("task set"),
                s.traffic_weight(),
                s.running_count(),
                s.desired_count(),
                s.target_group()
                    .and_then(|t| t.name())
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    parts.sort();
    if parts.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", parts.join("; "))
    }
}

/// The group's rollback alarms without those already in ALARM when the deploy started
/// (`watched`: what the deploy watches): an alarm firing before the release says nothing
/// about it, and CodeDeploy would stop the deployment at once. `None` when every one is
/// watched: the group's own configuration applies.
fn override_alarms(watched: &[String], suffix: &str) -> Option<AlarmConfiguration> {
    let all: Vec<String> = crate::outputs::alarms::ROLLBACK_ALARMS
        .iter()
        .map(|p| crate::outputs::alarms::alarm_name(p, suffix))
        .collect();
    if all.iter().all(|a| watched.contains(a)) {
        return None;
    }
    Some(
        AlarmConfiguration::builder()
            .enabled(!watched.is_empty())
            .ignore_poll_alarm_failure(false)
            .set_alarms(Some(
                watched
                    .iter()
                    .map(|a| Alarm::builder().name(a).build())
                    .collect(),
            ))
            .build(),
    )
}

async fn get(aws: &Aws, id: &str) -> Result<aws_sdk_codedeploy::types::DeploymentInfo> {
    aws.codedeploy()
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .aws("codedeploy:GetDeployment", id)?
        .deployment_info
        .context("GetDeployment returned no deployment")
}

fn is_done(status: Option<&DeploymentStatus>) -> bool {
    matches!(
        status,
        Some(DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped)
    )
}

/// How long the configuration's traffic shift takes, from its name
/// (`...Every<N>Minutes`, `...Canary10Percent<N>Minutes`); `None` for all-at-once.
pub fn shift_minutes(config: &str) -> Option<u64> {
    let digits = |s: &str| -> Option<u64> {
        let n: String = s.chars().take_while(char::is_ascii_digit).collect();
        n.parse().ok()
    };
    if let Some(rest) = config.split("Every").nth(1) {
        // Linear: 10 % per interval, ten intervals.
        let step = config
            .split("Linear")
            .nth(1)
            .and_then(digits)
            .unwrap_or(10)
            .max(1);
        return digits(rest).map(|m| m * 100u64.div_ceil(step));
    }
    let rest = config.split("Canary").nth(1)?;
    let minutes = rest.split("Percent").nth(1)?;
    digits(minutes)
}

pub async fn release(ctx: &mut Ctx<'_>, image: &str) -> Result<()> {
    let aws = ctx.aws.clone();
    let service = ctx.service()?;
    let application = ctx
        .store
        .output(crate::outputs::codedeploy::OUT_APPLICATION)
        .and_then(|v| v.as_str().map(str::to_string))
        .context("the state has no CodeDeploy application: run `fintech-infra up`")?;
    let group = ctx
        .store
        .output(crate::outputs::codedeploy::OUT_DEPLOYMENT_GROUPS)
        .and_then(|v| {
            v.get(&ctx.svc.name.0)
                .and_then(|g| g.as_str())
                .map(str::to_string)
        })
        .with_context(|| {
            format!(
                "the state has no deployment group for `{}`: run `fintech-infra up`",
                ctx.svc.name.0
            )
        })?;
    // The family's latest revision: what `up` registered from the config (its CPU, memory,
    // environment and roles), which CodeDeploy alone may put on the service.
    let family = crate::naming::task_family(&ctx.svc.name.0, &ctx.suffix);
    let revision =
        task_definition::register_with_image(&aws, &family, &ctx.svc.name.0, image).await?;
    let content = appspec(
        &revision,
        &ctx.svc.name.0,
        ctx.svc.port,
        placement(ctx).as_ref(),
    );
    let out = aws
        .codedeploy()
        .create_deployment()
        .application_name(&application)
        .deployment_group_name(&group)
        .description(format!("fintech-infra deploy {image}"))
        .revision(
            RevisionLocation::builder()
                .revision_type(RevisionLocationType::AppSpecContent)
                .app_spec_content(AppSpecContent::builder().content(&content).build())
                .build(),
        )
        .set_override_alarm_configuration(override_alarms(&ctx.alarms, &ctx.suffix))
        .send()
        .await
        .aws("codedeploy:CreateDeployment", &group);
    let id = match out {
        Ok(o) => o
            .deployment_id
            .context("CreateDeployment returned no deployment ID")?,
        Err(e) => {
            super::forget_revision(ctx, &revision).await;
            return Err(e.into());
        }
    };
    let config = match ctx.svc.deployment {
        crate::config::Deployment::CodedeployCanary => &ctx.cfg.deploy.canary_config,
        _ => &ctx.cfg.deploy.linear_config,
    };
    ctx.progress.say(&format!(
        "CodeDeploy deployment {id} of {image} ({}) on {} by {config}",
        short(&revision),
        service.name
    ));
    let limit = ctx.timeout()
        + Duration::from_secs(60 * shift_minutes(config).unwrap_or(0))
        + Duration::from_secs(60 * u64::from(ctx.cfg.deploy.termination_wait_mins));
    let target = format!("{}:{}", service.cluster, service.name);
    let started = Instant::now();
    let mut stopped = false;
    let info = loop {
        let info = get(&aws, &id).await?;
        let status = info.status().cloned();
        let label = status
            .as_ref()
            .map_or("Created", |s| s.as_str())
            .to_string();
        let line = status_line(&aws, &id, &target, &label).await;
        ctx.progress.status(line);
        if is_done(status.as_ref()) {
            break info;
        }
        if started.elapsed() > limit && !stopped {
            ctx.progress.say(&format!(
                "the deployment has not ended within {} s: stopping it, with rollback",
                limit.as_secs()
            ));
            // Once: a stop can stay pending a while. A deployment that ended meanwhile
            // refuses it, and the next poll sees how it ended.
            if let Err(e) = aws
                .codedeploy()
                .stop_deployment()
                .deployment_id(&id)
                .auto_rollback_enabled(true)
                .send()
                .await
                .aws("codedeploy:StopDeployment", &id)
            {
                ctx.progress.say(&format!("StopDeployment: {e}"));
            }
            stopped = true;
        }
        tokio::time::sleep(watch::poll_interval()).await;
    };
    if info.status() == Some(&DeploymentStatus::Succeeded) {
        return ctx.released(image, &service.name);
    }
    let error = info
        .error_information()
        .map(|e| {
            format!(
                "{}: {}",
                e.code().map(|c| c.as_str()).unwrap_or("error"),
                e.message().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no reason given".into());
    let rollback = info
        .rollback_info()
        .and_then(|r| r.rollback_message())
        .map(|m| format!("; {m}"))
        .unwrap_or_default();
    let reason = format!(
        "CodeDeploy {} deployment {id} ({error}){rollback}",
        info.status().map_or("ended", |s| s.as_str()).to_lowercase()
    );
    ctx.progress.say(&reason);
    // CodeDeploy's automatic rollback is a deployment of its own: the traffic is back on
    // the original task set only once it has ended.
    if let Some(rollback) = info
        .rollback_info()
        .and_then(|r| r.rollback_deployment_id())
    {
        let deadline = Instant::now() + ctx.timeout();
        loop {
            let r = get(&aws, rollback).await?;
            let status = r.status().cloned();
            ctx.progress.status(format!(
                "rollback {rollback}: {}",
                status.as_ref().map_or("Created", |s| s.as_str())
            ));
            if status == Some(DeploymentStatus::Succeeded) {
                ctx.progress
                    .say("rolled back: the original task set serves all traffic");
                break;
            }
            if is_done(status.as_ref()) || Instant::now() > deadline {
                anyhow::bail!(
                    "{reason}; its rollback deployment {rollback} did not succeed ({}): check \
                     the deployment in CodeDeploy",
                    status.as_ref().map_or("still running", |s| s.as_str())
                );
            }
            tokio::time::sleep(watch::poll_interval()).await;
        }
    }
    super::forget_revision(ctx, &revision).await;

    Err(RolledBack {
        service: ctx.svc.name.0.clone(),
        reason,
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appspec_names_the_revision_container_port_and_placement() {
        let placement = Placement {
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            security_group: "sg-web".into(),
            strategy: vec![crate::resources::ecs::StrategyItem {
                provider: "FARGATE".into(),
                base: 1,
                weight: 1,
            }],
        };
        let a: serde_json::Value =
            serde_json::from_str(&appspec("arn:td/web:3", "web", 8080, Some(&placement))).unwrap();
        let p = &a["Resources"][0]["TargetService"]["Properties"];
        assert_eq!(
            a["Resources"][0]["TargetService"]["Type"],
            "AWS::ECS::Service"
        );
        assert_eq!(p["TaskDefinition"], "arn:td/web:3");
        assert_eq!(p["LoadBalancerInfo"]["ContainerName"], "web");
        assert_eq!(p["LoadBalancerInfo"]["ContainerPort"], 8080);
        let vpc = &p["NetworkConfiguration"]["AwsvpcConfiguration"];
        assert_eq!(vpc["Subnets"], json!(["subnet-a", "subnet-b"]));
        assert_eq!(vpc["SecurityGroups"], json!(["sg-web"]));
        assert_eq!(vpc["AssignPublicIp"], "DISABLED");
        assert_eq!(
            p["CapacityProviderStrategy"],
            json!([{"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1}])
        );
        // Without the state's outputs: the service's own settings.
        let bare: serde_json::Value =
            serde_json::from_str(&appspec("arn:td/web:3", "web", 8080, None)).unwrap();
        assert!(bare["Resources"][0]["TargetService"]["Properties"]
            .get("NetworkConfiguration")
            .is_none());
    }

    #[test]
    fn alarms_already_firing_are_left_out_of_the_deployment() {
        let all: Vec<String> = crate::outputs::alarms::ROLLBACK_ALARMS
            .iter()
            .map(|p| crate::outputs::alarms::alarm_name(p, "t"))
            .collect();
        assert!(override_alarms(&all, "t").is_none());
        let one = override_alarms(&all[..1], "t").unwrap();
        assert!(one.enabled());
        assert_eq!(
            one.alarms()
                .iter()
                .filter_map(|a| a.name())
                .collect::<Vec<_>>(),
            vec![all[0].as_str()]
        );
        assert!(!override_alarms(&[], "t").unwrap().enabled());
    }

    #[test]
    fn shift_time_of_the_built_in_configurations() {
        assert_eq!(
            shift_minutes("CodeDeployDefault.ECSLinear10PercentEvery1Minutes"),
            Some(10)
        );
        assert_eq!(
            shift_minutes("CodeDeployDefault.ECSLinear10PercentEvery3Minutes"),
            Some(30)
        );
        assert_eq!(
            shift_minutes("CodeDeployDefault.ECSCanary10Percent5Minutes"),
            Some(5)
        );
        assert_eq!(shift_minutes("CodeDeployDefault.ECSAllAtOnce"), None);
    }
}
