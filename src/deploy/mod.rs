//! `fintech-infra deploy`: releases a new image of one service by the strategy its config
//! names (`services[].deployment`), shows the progress, and ends with success or with the
//! rollback and its reason (exit 1).
//!
//! - `rolling` ([`rolling`]): a new revision on the ECS service; ECS starts the new tasks
//!   before it stops the old ones, and its circuit breaker rolls back tasks that fail. The
//!   deploy also rolls back when a rollback alarm fires or the tasks are not healthy in time.
//! - `codedeploy-linear`, `codedeploy-canary` ([`codedeploy`]): a CodeDeploy blue/green
//!   deployment shifts the traffic to a replacement task set and rolls back on a failure or
//!   a rollback alarm.
//! - `weighted` ([`weighted`]): the new revision goes to the idle colour (blue: the service,
//!   green: its twin) while the other serves all traffic; once healthy it takes the
//!   configured split; `--promote` gives it all the traffic, `--rollback` none.
//!
//! Before any change: the input is checked (exit 2), and an ECR image must exist and, in the
//! stack's repositories, have a completed scan without findings at or above
//! `deploy.block_severity` ([`image`]). What was released is recorded in the state
//! ([`crate::state::Release`]) so that `up` keeps it.
//!
//! The parts: the image checks (`image`), what it watches and prints (`watch`), the two
//! strategies (`rolling`, `weighted`).

/// The `[deploy]` section (re-exported by `crate::config`).
pub mod config;

mod codedeploy;
mod image;
mod rolling;
mod watch;
mod weighted;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;

use crate::aws::{Aws, AwsResultExt};
use crate::config::{Config, Deployment, ServiceConfig};
use crate::error::UsageError;
use crate::state::{Release, StateStore};
use watch::{EcsService, Progress};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Action {
    Release {
        image: String,
        allow_vulnerable: bool,
    },
    Promote,
    Rollback,
}

/// The deploy was rolled back (or could not start its new version); exit 1.
#[derive(Debug, thiserror::Error)]
#[error("deploy of {service} rolled back: {reason}")]
pub struct RolledBack {
    pub service: String,
    pub reason: String,
}

/// Checks the input against the stack's config and state, before any AWS call.
pub fn check(cfg: &Config, store: &StateStore, service: &str, action: &Action) -> Result<()> {
    let Some(svc) = cfg.services.0.iter().find(|s| s.name.0 == service) else {
        return Err(UsageError::new(format!(
            "--service `{service}` is not a service of this stack; its services: {}",
            cfg.services
                .0
                .iter()
                .map(|s| s.name.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    };
    if let Action::Release { image, .. } = action {
        image::check_syntax(image)?;
    }
    let ecs_service = crate::naming::ecs_service_name(service, store.snapshot().suffix.as_str());
    let built = store.with_resources(|all| {
        all.iter().any(|r| {
            r.kind == crate::resources::ecs::service::KIND && r.name == ecs_service && !r.pending
        })
    });
    if !built {
        return Err(UsageError::new(format!(
            "service `{service}` has no ECS service {ecs_service} in the state: run \
             `fintech-infra up` first"
        ))
        .into());
    }
    match (svc.deployment, action) {
        (Deployment::Rolling, Action::Promote | Action::Rollback) => Err(UsageError::new(format!(
            "--promote and --rollback move traffic between the colours of a `weighted` service; \
             `{service}` deploys `rolling` (ECS replaces its tasks in place): release the \
             previous image with --image to go back"
        ))
        .into()),
        (
            Deployment::CodedeployLinear | Deployment::CodedeployCanary,
            Action::Promote | Action::Rollback,
        ) => Err(UsageError::new(format!(
            "--promote and --rollback move traffic between the colours of a `weighted` service; \
             `{service}` deploys `{}`: CodeDeploy moves the traffic and rolls back itself on a \
             failure or an alarm; release the previous image with --image to go back",
            svc.deployment.name()
        ))
        .into()),
        (Deployment::Weighted, Action::Promote | Action::Rollback) => {
            if store
                .release_holding(service, &svc.image, true)
                .and_then(|r| r.newest)
                .is_none()
            {
                return Err(UsageError::new(format!(
                    "service `{service}` has no release to promote or roll back: deploy one \
                     with --image first"
                ))
                .into());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Everything a strategy works with.
pub struct Ctx<'a> {
    pub aws: Arc<Aws>,
    pub store: &'a StateStore,
    pub cfg: &'a Config,
    pub svc: &'a ServiceConfig,
    pub suffix: String,
    /// The rollback alarms: the ALB's 5xx rate and p99 latency, for a load-balanced service
    /// whose stack has them.
    pub alarms: Vec<String>,
    pub progress: Progress,
}

impl Ctx<'_> {
    fn cluster(&self) -> Result<String> {
        self.store
            .output(crate::outputs::cluster::OUT_CLUSTER_NAME)
            .and_then(|v| v.as_str().map(str::to_string))
            .context("the state has no ECS cluster: run `fintech-infra up`")
    }

    /// A target group from an ALB output map (`{key: ARN}`).
    fn target_group(&self, output: &str, key: &str) -> Option<String> {
        self.store
            .output(output)
            .and_then(|v| v.get(key).and_then(|a| a.as_str()).map(str::to_string))
    }

    /// The ECS service of the config's service (blue, for a weighted one).
    fn service(&self) -> Result<EcsService> {
        Ok(EcsService {
            cluster: self.cluster()?,
            name: crate::naming::ecs_service_name(&self.svc.name.0, &self.suffix),
            target_group: self.target_group(
                crate::outputs::alb::OUT_SERVICE_TARGET_GROUPS,
                &self.svc.name.0,
            ),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.deploy.health_timeout_secs.0)
    }

    fn bake_time(&self) -> Duration {
        Duration::from_secs(self.cfg.deploy.bake_secs.0)
    }

    fn record(&self, release: Release) -> Result<()> {
        self.store
            .set_release(&self.svc.name.0, Some(release))
            .context("writing the release to the state")
    }

    /// Records `image` as what the service itself (blue) runs now, and says so.
    fn released(&mut self, image: &str, ecs_service: &str) -> Result<()> {
        let mut r = self.current_release();
        r.blue = image.to_string();
        r.at = Utc::now();
        self.record(r)?;
        self.progress.say(&format!(
            "done: {image} serves all traffic of {ecs_service}"
        ));
        Ok(())
    }

    /// The release that holds, or what runs without one (the config's image everywhere).
    fn current_release(&self) -> Release {
        self.store
            .release_holding(
                &self.svc.name.0,
                &self.svc.image,
                self.svc.deployment == Deployment::Weighted,
            )
            .unwrap_or_else(|| Release {
                config_image: self.svc.image.clone(),
                blue: self.svc.image.clone(),
                green: (self.svc.deployment == Deployment::Weighted)
                    .then(|| self.svc.image.clone()),
                weights: None,
                newest: None,
                at: Utc::now(),
            })
    }
}

/// Points `service` at `revision`; nothing else of the service changes. Returns the ID of
/// the deployment that now rolls `revision` out (the PRIMARY one): a deployment is followed
/// by its ID, since an older deployment of the same revision may still be listed. When the
/// service already runs `revision` (ECS's circuit breaker rolled back to it), no deployment
/// starts and the PRIMARY one is that rollback.
async fn update_revision(aws: &Aws, s: &EcsService, revision: &str) -> Result<String> {
    let out = aws
        .ecs()
        .update_service()
        .cluster(&s.cluster)
        .service(&s.name)
        .task_definition(revision)
        .send()
        .await
        .aws("ecs:UpdateService", &s.name)?;
    out.service()
        .into_iter()
        .flat_map(|svc| svc.deployments())
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id().map(str::to_string))
        .with_context(|| format!("UpdateService of {} returned no PRIMARY deployment", s.name))
}

/// Deregisters a rolled-back revision; a failure is reported, not returned, so that the
/// rollback's own reason stays the command's error.
async fn forget_revision(ctx: &mut Ctx<'_>, revision: &str) {
    if let Err(e) = crate::resources::ecs::task_definition::deregister(&ctx.aws, revision).await {
        ctx.progress.say(&format!(
            "warning: could not deregister the rolled-back revision {revision} ({e:#}); \
             deregister it by hand, or the next `up` registers the running one again"
        ));
    }
}

/// Runs a checked deploy.
pub async fn run(
    aws: Arc<Aws>,
    store: &StateStore,
    cfg: &Config,
    service: &str,
    action: Action,
    json: bool,
) -> Result<()> {
    let svc = cfg
        .services
        .0
        .iter()
        .find(|s| s.name.0 == service)
        .context("checked: the service is in the config")?;
    let suffix = store.snapshot().suffix;
    let recorded_alarms: Vec<String> = store.with_resources(|all| {
        all.iter()
            .filter(|r| r.kind == crate::resources::cloudwatch::alarm::KIND)
            .map(|r| r.name.clone())
            .collect()
    });
    let load_balanced = store
        .output(crate::outputs::alb::OUT_SERVICE_TARGET_GROUPS)
        .is_some_and(|v| v.get(service).is_some());
    let alarms = if load_balanced {
        crate::steps::alarms::ROLLBACK_ALARMS
            .iter()
            .map(|p| crate::steps::alarms::alarm_name(p, &suffix))
            .filter(|n| recorded_alarms.contains(n))
            .collect()
    } else {
        Vec::new()
    };
    // An alarm already in ALARM says nothing about the new version (and must not block the
    // release that fixes it): it is left out of the watch, with a warning.
    let mut alarms = alarms;
    let firing_now = watch::firing(&aws, &alarms).await?;
    let mut progress = Progress::new(json, service);
    if !firing_now.is_empty() {
        alarms.retain(|a| !firing_now.iter().any(|(name, _)| name == a));
        progress.say(&format!(
            "warning: already in ALARM, not watched during this deploy: {}",
            firing_now
                .iter()
                .map(|(name, reason)| format!("{name} ({reason})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut ctx = Ctx {
        aws,
        store,
        cfg,
        svc,
        suffix,
        alarms,
        progress,
    };
    match action {
        Action::Release {
            image,
            allow_vulnerable,
        } => {
            let repositories: Vec<String> = store.with_resources(|all| {
                all.iter()
                    .filter(|r| r.kind == crate::resources::ecr::repository::KIND)
                    .map(|r| r.name.clone())
                    .collect()
            });
            let checked = image::check(
                &ctx.aws,
                &image,
                &repositories,
                cfg.deploy.block_severity,
                allow_vulnerable,
            )
            .await?;
            match checked {
                image::Checked::Unchecked => ctx.progress.say(&format!(
                    "{image} is not in ECR: ECS pulls it when the tasks start (a missing image \
                     fails the deployment, which rolls back)"
                )),
                image::Checked::Exists => ctx.progress.say(&format!("{image} exists")),
                image::Checked::Scanned { allowed: None } => ctx.progress.say(&format!(
                    "{image}: scan complete, nothing at or above {}",
                    cfg.deploy.block_severity.name()
                )),
                image::Checked::Scanned {
                    allowed: Some(findings),
                } => ctx.progress.say(&format!(
                    "warning: {image} has {findings}; deploying it because of --allow-vulnerable"
                )),
            }
            match svc.deployment {
                Deployment::Rolling => rolling::release(&mut ctx, &image).await,
                Deployment::Weighted => weighted::release(&mut ctx, &image).await,
                Deployment::CodedeployLinear | Deployment::CodedeployCanary => {
                    codedeploy::release(&mut ctx, &image).await
                }
            }
        }
        Action::Promote => weighted::promote(&mut ctx).await,
        Action::Rollback => weighted::rollback(&mut ctx).await,
    }
}
