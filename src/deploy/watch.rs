//! What a deploy watches while it runs: the ECS deployment of a revision, the target
//! group's health, the rollback alarms; and the progress lines it prints (only when
//! something changed).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aws_sdk_cloudwatch::types::StateValue;
use aws_sdk_ecs::types::DeploymentRolloutState;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use serde_json::json;

use crate::aws::{Aws, AwsResultExt};

/// One ECS service a deploy acts on.
#[derive(Debug, Clone)]
pub struct EcsService {
    pub cluster: String,
    pub name: String,
    /// The target group its tasks register in, if it is load-balanced.
    pub target_group: Option<String>,
}

/// The target group's targets by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub healthy: usize,
    pub starting: usize,
    pub unhealthy: usize,
    pub draining: usize,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "targets {} healthy, {} starting, {} unhealthy",
            self.healthy, self.starting, self.unhealthy
        )?;
        if self.draining > 0 {
            write!(f, ", {} draining", self.draining)?;
        }
        Ok(())
    }
}

pub async fn health(aws: &Aws, target_group: &str) -> Result<Health> {
    let out = aws
        .elb()
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeTargetHealth", target_group)?;
    let mut h = Health::default();
    for d in out.target_health_descriptions() {
        match d.target_health().and_then(|t| t.state()) {
            Some(TargetHealthStateEnum::Healthy) => h.healthy += 1,
            Some(TargetHealthStateEnum::Initial) => h.starting += 1,
            Some(TargetHealthStateEnum::Draining) => h.draining += 1,
            Some(TargetHealthStateEnum::Unhealthy) => h.unhealthy += 1,
            _ => {}
        }
    }
    Ok(h)
}

/// The service as ECS describes it.
pub async fn describe(aws: &Aws, s: &EcsService) -> Result<aws_sdk_ecs::types::Service> {
    let out = aws
        .ecs()
        .describe_services()
        .cluster(&s.cluster)
        .services(&s.name)
        .send()
        .await
        .aws("ecs:DescribeServices", &s.name)?;
    out.services()
        .first()
        .filter(|svc| svc.status() == Some("ACTIVE"))
        .cloned()
        .with_context(|| {
            format!(
                "ECS service {} is not ACTIVE: run `fintech-infra up`",
                s.name
            )
        })
}

/// Rollback alarms now in ALARM: (name, reason).
pub async fn firing(aws: &Aws, alarms: &[String]) -> Result<Vec<(String, String)>> {
    if alarms.is_empty() {
        return Ok(Vec::new());
    }
    let out = aws
        .cloudwatch()
        .describe_alarms()
        .set_alarm_names(Some(alarms.to_vec()))
        .send()
        .await
        .aws("cloudwatch:DescribeAlarms", alarms.join(","))?;
    Ok(out
        .metric_alarms()
        .iter()
        .filter(|a| a.state_value() == Some(&StateValue::Alarm))
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                a.state_reason().unwrap_or("in ALARM").to_string(),
            )
        })
        .collect())
}

/// How following a deployment ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every task of the revision runs and passes the health checks.
    Done,
    /// ECS failed it (the circuit breaker: tasks failed to start or failed their health
    /// checks) and is rolling the service back itself.
    Failed(String),
    /// A rollback alarm went to ALARM.
    Alarm(String),
    /// Not healthy within `deploy.health_timeout_secs`.
    TimedOut(Duration),
}

/// Prints progress lines: text on stderr, or one JSON object per line on stdout.
pub struct Progress {
    pub json: bool,
    pub service: String,
    last: Option<String>,
}

impl Progress {
    pub fn new(json: bool, service: &str) -> Progress {
        Progress {
            json,
            service: service.to_string(),
            last: None,
        }
    }

    /// A line about something that happened.
    pub fn say(&mut self, what: &str) {
        if self.json {
            println!(
                "{}",
                json!({"event": "deploy", "service": self.service, "message": what})
            );
        } else {
            eprintln!("deploy {}: {what}", self.service);
        }
        self.last = None;
    }

    /// A status line, printed only when it differs from the last one.
    pub fn status(&mut self, line: String) {
        if self.last.as_deref() == Some(line.as_str()) {
            return;
        }
        if self.json {
            println!(
                "{}",
                json!({"event": "deploy-status", "service": self.service, "status": line})
            );
        } else {
            eprintln!("  {line}");
        }
        self.last = Some(line);
    }
}

/// The interval between two polls: 5 s on AWS, shorter when the tests cap polling.
pub fn poll_interval() -> Duration {
    crate::step::max_poll_interval().min(Duration::from_secs(5))
}

/// Follows the deployment `deployment` (an ID, see `update_revision`) of `s` until its tasks
/// all run and pass the health checks, ECS fails it, a rollback alarm fires, or `timeout`
/// passes.
pub async fn follow(
    aws: &Aws,
    s: &EcsService,
    deployment_id: &str,
    label: &str,
    alarms: &[String],
    timeout: Duration,
    progress: &mut Progress,
) -> Result<Outcome> {
    let started = Instant::now();
    let since = aws_sdk_ecs::primitives::DateTime::from(std::time::SystemTime::now()).secs() - 5;
    // DescribeServices is eventually consistent right after UpdateService: a deployment not
    // listed yet is not a deployment gone.
    let mut seen = false;
    loop {
        let svc = describe(aws, s).await?;
        let deployment = svc
            .deployments()
            .iter()
            .find(|d| d.id() == Some(deployment_id));
        let health = match &s.target_group {
            Some(tg) => Some(health(aws, tg).await?),
            None => None,
        };
        let (state, running, desired) = match deployment {
            Some(d) => (
                d.rollout_state().cloned(),
                d.running_count(),
                d.desired_count(),
            ),
            None => (None, 0, svc.desired_count()),
        };
        progress.status(format!(
            "{label}: deployment {}, {running}/{desired} tasks running{}",
            state.as_ref().map(|r| r.as_str()).unwrap_or("gone"),
            health.map(|h| format!("; {h}")).unwrap_or_default()
        ));
        if state == Some(DeploymentRolloutState::Failed) {
            let reason = deployment
                .and_then(|d| d.rollout_state_reason())
                .unwrap_or("ECS failed the deployment");
            return Ok(Outcome::Failed(reason.to_string()));
        }
        seen |= deployment.is_some();
        if deployment.is_none() && !seen && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(poll_interval()).await;
            continue;
        }
        if deployment.is_none() {
            // It was listed when it started (its ID came from UpdateService): gone now means
            // the circuit breaker's rollback replaced and drained it. This deploy's events
            // say why.
            let why = svc
                .events()
                .iter()
                .filter(|e| e.created_at().is_some_and(|t| t.secs() >= since))
                .find_map(|e| e.message().filter(|m| m.contains("fail")))
                .unwrap_or("no reason in the service's events");
            return Ok(Outcome::Failed(format!(
                "the deployment circuit breaker rolled it back: {why}"
            )));
        }
        let healthy_enough = health.is_none_or(|h| h.healthy as i32 >= desired.max(1));
        if state == Some(DeploymentRolloutState::Completed) && healthy_enough {
            return Ok(Outcome::Done);
        }
        if let Some((name, reason)) = firing(aws, alarms).await?.into_iter().next() {
            return Ok(Outcome::Alarm(format!("{name} ({reason})")));
        }
        if started.elapsed() >= timeout {
            return Ok(Outcome::TimedOut(timeout));
        }
        tokio::time::sleep(poll_interval()).await;
    }
}

/// [`follow`] for a new version: an error while following is itself a reason to take the
/// version back (not knowing how it does), so it comes out as [`Outcome::Failed`].
pub async fn follow_new(
    aws: &Aws,
    s: &EcsService,
    deployment_id: &str,
    label: &str,
    alarms: &[String],
    timeout: Duration,
    progress: &mut Progress,
) -> Outcome {
    follow(aws, s, deployment_id, label, alarms, timeout, progress)
        .await
        .unwrap_or_else(|e| Outcome::Failed(format!("following the deployment failed: {e:#}")))
}

/// Watches the rollback alarms and the target group of the new version for `secs` once it
/// takes traffic: `Some(reason)` when it should be rolled back, an error reading them
/// included.
pub async fn bake(
    aws: &Aws,
    alarms: &[String],
    target_group: Option<&str>,
    secs: Duration,
    progress: &mut Progress,
) -> Option<String> {
    watch_bake(aws, alarms, target_group, secs, progress)
        .await
        .unwrap_or_else(|e| Some(format!("watching the new version failed: {e:#}")))
}

async fn watch_bake(
    aws: &Aws,
    alarms: &[String],
    target_group: Option<&str>,
    secs: Duration,
    progress: &mut Progress,
) -> Result<Option<String>> {
    let started = Instant::now();
    progress.say(&format!(
        "watching {} for {} s",
        if alarms.is_empty() {
            "the new version's targets".to_string()
        } else {
            alarms.join(", ")
        },
        secs.as_secs()
    ));
    loop {
        if let Some((name, reason)) = firing(aws, alarms).await?.into_iter().next() {
            return Ok(Some(format!("alarm {name} ({reason})")));
        }
        if let Some(tg) = target_group {
            let h = health(aws, tg).await?;
            progress.status(format!("new version: {h}"));
            if h.unhealthy > 0 {
                return Ok(Some(format!(
                    "{} of its targets failed their health checks",
                    h.unhealthy
                )));
            }
        }
        if started.elapsed() >= secs {
            return Ok(None);
        }
        tokio::time::sleep(poll_interval()).await;
    }
}
