//! A `weighted` release (seed 001): blue is the ECS service, green its twin; each runs its
//! own revision behind its own target group, and the listener splits the traffic by weight.
//!
//! The idle colour is the one with the smaller weight (green on a new stack's 80/20). A
//! release moves all traffic to the other colour first, so nobody is served by the idle
//! colour while its tasks are replaced; puts the new revision on the idle colour; waits
//! until its tasks run and pass the health checks; then gives it the smaller share of the
//! configured split (`alb.blue_weight` / `alb.green_weight`, 20 of 80/20) and watches the
//! rollback alarms and its targets for `deploy.bake_secs`. `--promote` gives the newest
//! colour all the traffic, `--rollback` gives it none; the other colour keeps running its
//! revision, so either is instant. A target group that gets traffic always has healthy
//! targets: weight only ever moves to a colour whose targets are healthy.

use anyhow::{Context as _, Result};
use chrono::Utc;

use super::rolling::short;
use super::watch::{self, EcsService, Outcome};
use super::{update_revision, Ctx, RolledBack};
use crate::aws::AwsResultExt;
use crate::error::UsageError;
use crate::resources::ecs::task_definition;
use crate::resources::elasticloadbalancing::ListenerDefault;
use crate::state::Colour;

/// Blue and green: their ECS services and target groups.
struct Colours {
    blue: EcsService,
    green: EcsService,
}

impl Colours {
    fn of(&self, c: Colour) -> &EcsService {
        match c {
            Colour::Blue => &self.blue,
            Colour::Green => &self.green,
        }
    }

    fn tg(&self, c: Colour) -> Result<&str> {
        self.of(c).target_group.as_deref().with_context(|| {
            format!(
                "the state has no {} target group: run `fintech-infra up`",
                c.name()
            )
        })
    }
}

fn colours(ctx: &Ctx<'_>) -> Result<Colours> {
    let cluster = ctx.cluster()?;
    let tg = |key: &str| ctx.target_group(crate::outputs::alb::OUT_TARGET_GROUPS, key);
    let twin =
        crate::naming::ecs_service_name(&crate::config::green_twin(&ctx.svc.name.0), &ctx.suffix);
    let recorded = ctx.store.with_resources(|all| {
        all.iter()
            .any(|r| r.kind == crate::resources::ecs::service::KIND && r.name == twin && !r.pending)
    });
    // Stacks built before the twin had its own family ran it on blue's: a release must
    // not write green's image into blue's family.
    let family =
        crate::naming::task_family(&crate::config::green_twin(&ctx.svc.name.0), &ctx.suffix);
    let own_family = ctx.store.with_resources(|all| {
        all.iter().any(|r| {
            r.kind == crate::resources::ecs::task_definition::KIND && r.name == family && !r.pending
        })
    });
    if !recorded || !own_family {
        return Err(UsageError::new(format!(
            "the green twin {twin} (with its task definition family {family}) is not built \
             yet: run `fintech-infra up` first"
        ))
        .into());
    }
    Ok(Colours {
        blue: EcsService {
            cluster: cluster.clone(),
            name: crate::naming::ecs_service_name(&ctx.svc.name.0, &ctx.suffix),
            target_group: tg("blue"),
        },
        green: EcsService {
            cluster,
            name: twin,
            target_group: tg("green"),
        },
    })
}

/// The listeners that forward the default traffic to blue and green.
fn listeners(ctx: &Ctx<'_>) -> Vec<String> {
    let mut v: Vec<String> = [
        crate::outputs::alb::OUT_LISTENER_ARN,
        crate::outputs::alb::OUT_HTTP_LISTENER_ARN,
    ]
    .iter()
    .filter_map(|k| {
        ctx.store
            .output(k)
            .and_then(|v| v.as_str().map(str::to_string))
    })
    .collect();
    v.dedup();
    v
}

async fn describe_listener(
    ctx: &Ctx<'_>,
    arn: &str,
) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>> {
    let out = ctx
        .aws
        .elb()
        .describe_listeners()
        .listener_arns(arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeListeners", arn)?;
    Ok(out.listeners().to_vec())
}

/// The live (blue, green) weights of the first listener that forwards to both.
async fn live_weights(ctx: &Ctx<'_>, c: &Colours) -> Result<(i32, i32)> {
    let (blue, green) = (c.tg(Colour::Blue)?, c.tg(Colour::Green)?);
    for arn in listeners(ctx) {
        for l in describe_listener(ctx, &arn).await? {
            for a in l.default_actions() {
                let groups = a
                    .forward_config()
                    .map(|f| f.target_groups())
                    .unwrap_or_default();
                let weight = |tg: &str| {
                    groups
                        .iter()
                        .find(|t| t.target_group_arn() == Some(tg))
                        .map(|t| t.weight().unwrap_or(1))
                };
                if let (Some(b), Some(g)) = (weight(blue), weight(green)) {
                    return Ok((b, g));
                }
            }
        }
    }
    anyhow::bail!("no listener of the stack forwards to the blue and green target groups: run `fintech-infra up`")
}

/// Sets the weights on every listener that forwards the default traffic to the colours.
async fn set_weights(ctx: &mut Ctx<'_>, c: &Colours, (b, g): (i32, i32)) -> Result<()> {
    let (blue, green) = (
        c.tg(Colour::Blue)?.to_string(),
        c.tg(Colour::Green)?.to_string(),
    );
    let action = ListenerDefault::Forward(vec![(blue.clone(), b), (green.clone(), g)]).action();
    for arn in listeners(ctx) {
        let forwards = describe_listener(ctx, &arn).await?.iter().any(|l| {
            l.default_actions().iter().any(|a| {
                a.forward_config().is_some_and(|f| {
                    f.target_groups()
                        .iter()
                        .any(|t| t.target_group_arn() == Some(blue.as_str()))
                })
            })
        });
        if !forwards {
            continue; // the HTTP listener redirecting to HTTPS
        }
        ctx.aws
            .elb()
            .modify_listener()
            .listener_arn(&arn)
            .default_actions(action.clone())
            .send()
            .await
            .aws("elasticloadbalancing:ModifyListener", &arn)?;
    }
    ctx.progress
        .say(&format!("traffic: blue {b} %, green {g} %"));
    Ok(())
}

/// Waits (up to `deploy.health_timeout_secs`) until `colour` has healthy targets and none
/// failing, e.g. tasks a moment-old `up` started; refuses to send it traffic otherwise.
async fn check_serves(ctx: &mut Ctx<'_>, c: &Colours, colour: Colour) -> Result<()> {
    let started = std::time::Instant::now();
    let timeout = ctx.timeout();
    loop {
        let h = watch::health(&ctx.aws, c.tg(colour)?).await?;
        if h.healthy > 0 && h.unhealthy == 0 && h.starting == 0 {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            anyhow::bail!(
                "{} ({}) cannot take traffic: {h} after {} s; nothing was changed",
                colour.name(),
                c.of(colour).name,
                timeout.as_secs()
            );
        }
        ctx.progress
            .status(format!("waiting for {} to serve: {h}", colour.name()));
        tokio::time::sleep(watch::poll_interval()).await;
    }
}

fn weights_with(colour: Colour, own: i32, other: i32) -> (i32, i32) {
    match colour {
        Colour::Blue => (own, other),
        Colour::Green => (other, own),
    }
}

pub async fn release(ctx: &mut Ctx<'_>, image: &str) -> Result<()> {
    let aws = ctx.aws.clone();
    let c = colours(ctx)?;
    let (b, g) = live_weights(ctx, &c).await?;
    let idle = if g <= b { Colour::Green } else { Colour::Blue };
    let live = idle.other();
    let mut release = ctx.current_release();
    let previous_image = release.image(idle).to_string();
    let previous_newest = release.newest;
    ctx.progress.say(&format!(
        "{image} goes to {} ({}); {} serves all traffic meanwhile",
        idle.name(),
        c.of(idle).name,
        live.name()
    ));
    let all_on_live = weights_with(live, 100, 0);
    if (b, g) != all_on_live {
        check_serves(ctx, &c, live).await?;
        set_weights(ctx, &c, all_on_live).await?;
        release.weights = Some(all_on_live);
        release.at = Utc::now();
        ctx.record(release.clone())?;
    }
    let target = c.of(idle).clone();
    let current = watch::describe(&aws, &target)
        .await?
        .task_definition()
        .map(str::to_string)
        .with_context(|| format!("ECS service {} names no task definition", target.name))?;
    let revision =
        task_definition::register_with_image(&aws, &current, &ctx.svc.name.0, image).await?;
    let deployment = update_revision(&aws, &target, &revision).await?;
    let timeout = ctx.timeout();
    // The idle colour gets no traffic yet: the ALB's alarms say nothing about it.
    let outcome = watch::follow_new(
        &aws,
        &target,
        &deployment,
        idle.name(),
        &[],
        timeout,
        &mut ctx.progress,
    )
    .await;
    let reason = match outcome {
        Outcome::Done => {
            // Every target serving (none starting or failing) before it gets a share.
            if let Err(e) = check_serves(ctx, &c, idle).await {
                format!("{e:#}")
            } else {
                let cfg = &ctx.cfg.alb;
                let (old_share, new_share) = (
                    cfg.blue_weight.max(cfg.green_weight),
                    cfg.blue_weight.min(cfg.green_weight),
                );
                let split = weights_with(idle, new_share, old_share);
                set_weights(ctx, &c, split).await?;
                match idle {
                    Colour::Blue => release.blue = image.to_string(),
                    Colour::Green => release.green = Some(image.to_string()),
                }
                release.weights = Some(split);
                release.newest = Some(idle);
                release.at = Utc::now();
                ctx.record(release.clone())?;
                let bake = ctx.bake_time();
                let alarms = ctx.alarms.clone();
                let tg = c.tg(idle)?.to_string();
                let baked = watch::bake(&aws, &alarms, Some(&tg), bake, &mut ctx.progress).await;
                match baked {
                    None => {
                        ctx.progress.say(&format!(
                            "done: {image} on {} takes {new_share} % of the traffic; \
                         `fintech-infra deploy --service {} --promote` gives it all, \
                         `--rollback` none",
                            idle.name(),
                            ctx.svc.name.0
                        ));
                        return Ok(());
                    }
                    Some(reason) => {
                        set_weights(ctx, &c, all_on_live).await?;
                        reason
                    }
                }
            }
        }
        Outcome::Failed(reason) => reason,
        Outcome::Alarm(a) => format!("alarm {a}"),
        Outcome::TimedOut(t) => format!(
            "the new tasks were not all healthy within {} s (deploy.health_timeout_secs)",
            t.as_secs()
        ),
    };
    // The idle colour goes back to its previous revision, with no traffic, so that a later
    // `--promote` cannot put the failed version in front of users.
    ctx.progress.say(&format!(
        "rolling back: {reason}; {} serves all traffic, {} goes back to {}",
        live.name(),
        idle.name(),
        short(&current)
    ));
    match idle {
        Colour::Blue => release.blue = previous_image,
        Colour::Green => release.green = Some(previous_image),
    }
    release.weights = Some(all_on_live);
    release.newest = previous_newest;
    release.at = Utc::now();
    ctx.record(release)?;
    let back = update_revision(&aws, &target, &current).await?;
    match watch::follow(
        &aws,
        &target,
        &back,
        idle.name(),
        &[],
        timeout,
        &mut ctx.progress,
    )
    .await?
    {
        Outcome::Done => {}
        other => ctx.progress.say(&format!(
            "warning: {} did not get back to {} ({other:?}); it takes no traffic",
            target.name,
            short(&current)
        )),
    }
    super::forget_revision(ctx, &revision).await;
    Err(RolledBack {
        service: ctx.svc.name.0.clone(),
        reason,
    }
    .into())
}

/// All traffic to the colour of the newest release.
pub async fn promote(ctx: &mut Ctx<'_>) -> Result<()> {
    all_traffic_to(ctx, true).await
}

/// All traffic back to the colour that does not run the newest release.
pub async fn rollback(ctx: &mut Ctx<'_>) -> Result<()> {
    all_traffic_to(ctx, false).await
}

/// All traffic to the newest release's colour (`newest`) or to the other one, once its
/// targets all serve; recorded in the release.
async fn all_traffic_to(ctx: &mut Ctx<'_>, newest: bool) -> Result<()> {
    let c = colours(ctx)?;
    let mut release = ctx.current_release();
    let latest = release.newest.context("checked: a release exists")?;
    let to = if newest { latest } else { latest.other() };
    let all = weights_with(to, 100, 0);
    if live_weights(ctx, &c).await? == all {
        ctx.progress
            .say(&format!("{} already takes all traffic", to.name()));
        return Ok(());
    }
    check_serves(ctx, &c, to).await?;
    set_weights(ctx, &c, all).await?;
    release.weights = Some(all);
    release.at = Utc::now();
    let image = release.image(to).to_string();
    ctx.record(release)?;
    ctx.progress.say(&if newest {
        format!(
            "promoted: {} ({image}) takes all traffic; `--rollback` moves it back to {}",
            to.name(),
            to.other().name()
        )
    } else {
        format!("rolled back: {} ({image}) takes all traffic", to.name())
    });
    Ok(())
}
