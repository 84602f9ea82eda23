//! `ecs:cluster`: the ECS cluster the services run in, with Container Insights on or off and
//! the capacity providers FARGATE and FARGATE_SPOT with a default strategy.
//!
//! The capacity providers and the default strategy are set through
//! PutClusterCapacityProviders right after CreateCluster (part of creating the cluster), and
//! again when they drift; ECS refuses that call while an earlier cluster update is still being
//! applied, so it is retried. INACTIVE clusters linger in DescribeClusters for a while after
//! deletion and count as missing.
//!
//! DeleteCluster is refused while ECS still counts services or tasks in the cluster (a deleted
//! service stays DRAINING for a while and still blocks its cluster): it is retried until the
//! dependency timeout.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecs::types::{ClusterField, ClusterSetting, ClusterSettingName};

use super::{ecs_tags, from_sdk, to_sdk, StrategyItem, CAPACITY_PROVIDERS};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ecs:cluster";

pub struct Cluster;

/// The cluster the stack wants.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    /// Container Insights on (`enabled`) or off.
    pub container_insights: bool,
    /// The default capacity provider strategy.
    pub strategy: Vec<StrategyItem>,
}

/// The Container Insights setting value for the config flag.
fn insights_value(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

/// Whether the described Container Insights value satisfies the config: `enhanced` (the
/// observability tier above `enabled`) counts as on, so a user's upgrade is not undone.
fn insights_ok(described: Option<&str>, on: bool) -> bool {
    matches!(
        (described.unwrap_or("disabled"), on),
        ("enabled" | "enhanced", true) | ("disabled", false)
    )
}

/// What the cluster looks like now, as far as the stack manages it.
#[derive(Debug, Clone)]
struct ClusterView {
    arn: String,
    insights: Option<String>,
    providers: Vec<String>,
    strategy: Vec<StrategyItem>,
}

/// The stack's cluster if it exists and is live (INACTIVE clusters linger in
/// DescribeClusters for a while after deletion; CreateCluster brings the name back).
async fn find(ctx: &StepCtx, name: &str) -> Result<Option<ClusterView>> {
    let out = ctx
        .aws()
        .ecs()
        .describe_clusters()
        .clusters(name)
        // Settings are only returned when asked for.
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .aws("ecs:DescribeClusters", name)?;
    let Some(c) = out.clusters().iter().find(|c| {
        c.cluster_name() == Some(name)
            && !matches!(c.status(), Some("INACTIVE") | Some("DEPROVISIONING"))
    }) else {
        return Ok(None);
    };
    let ours = c
        .tags()
        .iter()
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()));
    if !ours {
        bail!(
            "ECS cluster {name} exists but is not tagged {STACK_TAG}={}: it belongs to \
             something else; remove it or pick another env suffix",
            ctx.suffix()
        );
    }
    let insights = c
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value().map(str::to_string));
    let mut providers: Vec<String> = c.capacity_providers().to_vec();
    providers.sort();
    Ok(Some(ClusterView {
        arn: c.cluster_arn().unwrap_or_default().to_string(),
        insights,
        providers,
        strategy: from_sdk(c.default_capacity_provider_strategy()),
    }))
}

async fn put_capacity_providers(
    ctx: &StepCtx,
    name: &str,
    strategy: &[StrategyItem],
) -> Result<()> {
    let items = to_sdk(strategy)?;
    let ecs = ctx.aws().ecs();
    // ECS refuses a change while an earlier cluster update is still being applied.
    ctx.wait_for(
        &format!("cluster {name} to accept capacity providers"),
        Duration::from_secs(120),
        || {
            let items = items.clone();
            async move {
                let r = ecs
                    .put_cluster_capacity_providers()
                    .cluster(name)
                    .set_capacity_providers(Some(
                        CAPACITY_PROVIDERS.iter().map(|p| p.to_string()).collect(),
                    ))
                    .set_default_capacity_provider_strategy(Some(items))
                    .send()
                    .await
                    .aws("ecs:PutClusterCapacityProviders", name);
                match r {
                    Ok(_) => Ok(Some(())),
                    Err(e) if e.code.as_deref() == Some("UpdateInProgressException") => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
        },
    )
    .await
}

/// The cluster `spec`, created or found; a found one gets its Container Insights setting,
/// capacity providers and default strategy repaired when they drifted.
pub async fn ensure(ctx: &StepCtx, spec: &ClusterSpec) -> Result<Found> {
    let ecs = ctx.aws().ecs();
    let name = &spec.name;
    let insights_on = spec.container_insights;
    let want_strategy = &spec.strategy;
    let existing = find(ctx, name).await?;
    let found = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(existing.as_ref().map(|c| Found::new(name).arn(&c.arn))) },
            || async {
                let out = ecs
                    .create_cluster()
                    .cluster_name(name)
                    .settings(
                        ClusterSetting::builder()
                            .name(ClusterSettingName::ContainerInsights)
                            .value(insights_value(insights_on))
                            .build(),
                    )
                    .set_tags(Some(ecs_tags(ctx, name)))
                    .send()
                    .await
                    .aws("ecs:CreateCluster", name)?;
                let arn = out
                    .cluster()
                    .and_then(|c| c.cluster_arn())
                    .context("CreateCluster returned no cluster ARN")?
                    .to_string();
                let found = Found::new(name).arn(&arn);
                ctx.record(KIND, name, &found)?;
                // Part of creating the cluster, not a change to an existing one.
                put_capacity_providers(ctx, name, want_strategy).await?;
                Ok(found)
            },
        )
        .await?;

    if let Some(c) = &existing {
        if !insights_ok(c.insights.as_deref(), insights_on) {
            let value = insights_value(insights_on);
            ctx.change(
                KIND,
                name,
                &format!("set Container Insights {value}"),
                || async {
                    ecs.update_cluster()
                        .cluster(name)
                        .settings(
                            ClusterSetting::builder()
                                .name(ClusterSettingName::ContainerInsights)
                                .value(value)
                                .build(),
                        )
                        .send()
                        .await
                        .aws("ecs:UpdateCluster", name)?;
                    Ok(())
                },
            )
            .await?;
        }
        let want_providers: Vec<String> =
            CAPACITY_PROVIDERS.iter().map(|p| p.to_string()).collect();
        if c.providers != want_providers || &c.strategy != want_strategy {
            ctx.change(
                KIND,
                name,
                "set capacity providers FARGATE, FARGATE_SPOT and the default strategy",
                || put_capacity_providers(ctx, name, want_strategy),
            )
            .await?;
        }
    }
    Ok(found)
}

/// DeleteCluster, retried while ECS still counts services or tasks in it (a deleted
/// service stays DRAINING for a while and still blocks its cluster).
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let ecs = ctx.aws().ecs();
    let timeout = Duration::from_secs(ctx.cfg().timeouts.dependency_violation_secs.0);
    ctx.wait_for(
        &format!("cluster {name} to be free of services and tasks"),
        timeout,
        || async {
            let r = ecs
                .delete_cluster()
                .cluster(name)
                .send()
                .await
                .aws("ecs:DeleteCluster", name)
                .not_found_ok();
            match r {
                Ok(_) => Ok(Some(())),
                Err(e)
                    if matches!(
                        e.code.as_deref(),
                        Some("ClusterContainsServicesException")
                            | Some("ClusterContainsTasksException")
                            | Some("UpdateInProgressException")
                    ) =>
                {
                    tracing::debug!(error = %e, "cluster still in use; retrying");
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
    .with_context(|| format!("deleting ECS cluster {name}"))
}

#[async_trait]
impl Provider for Cluster {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let out = ctx
            .aws()
            .ecs()
            .describe_clusters()
            .clusters(&rec.id)
            .send()
            .await
            .aws("ecs:DescribeClusters", &rec.id)?;
        Ok(out
            .clusters()
            .iter()
            .find(|c| c.cluster_name() == Some(rec.id.as_str()))
            .and_then(|c| c.status().map(str::to_string))
            .filter(|s| s != "INACTIVE"))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_insights_count_as_on() {
        assert!(insights_ok(Some("enhanced"), true));
        assert!(insights_ok(Some("enabled"), true));
        assert!(!insights_ok(Some("disabled"), true));
        assert!(!insights_ok(None, true));
        assert!(insights_ok(None, false));
        assert!(!insights_ok(Some("enabled"), false));
    }
}
