//! Cluster step: the ECS cluster the services run in, and (when `cluster.namespace` is set) the
//! Cloud Map private DNS namespace they discover each other through.
//!
//! The cluster has Container Insights on or off (`cluster.container_insights`) and the
//! capacity providers FARGATE and FARGATE_SPOT, with the first service's capacity split as the
//! cluster's default strategy (by default one task on FARGATE, the rest half on Spot), set
//! through PutClusterCapacityProviders. The namespace lives in the stack's VPC;
//! CreatePrivateDnsNamespace is asynchronous, so the namespace is recorded as soon as the
//! operation names it. Each resource type is a provider
//! ([`crate::resources::ecs::cluster`], [`crate::resources::servicediscovery::namespace`],
//! [`crate::resources::logs::log_group`]); this step decides what to build from the
//! `[cluster]` config, in which order, and what to publish.
//!
//! With Container Insights on, ECS writes the cluster's performance events to
//! `/aws/ecs/containerinsights/<cluster>/performance`, a log group it creates itself,
//! unencrypted and never expiring, unless it exists (ECS Developer Guide, "Container Insights";
//! AWS-CONTRACTS B10). The step creates it first, with the stack key (hence the dependency on
//! `kms`), `logs.retention_days` and the stack's tags, and records it.
//!
//! Cloud Map creates the namespace's Route 53 private hosted zone untagged; the step records
//! the zone's ID with the namespace ([`ATTR_HOSTED_ZONE`], so that a change of `[tags]`
//! re-tags it too: `crate::retag`) and tags it with the stack's tags and `Name` when they
//! differ ([`namespace::ensure_zone_tags`]).
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): the ECS services are
//! built on their cluster and the Cloud Map services on their namespace, so both go first
//! (ECS refuses to delete a cluster while services are ACTIVE or DRAINING, Cloud Map a
//! namespace while services remain in it); the cluster is built on every log group, so the
//! Container Insights group outlives it (a running cluster would recreate it unencrypted);
//! and the namespace is built on the VPC (AWS refuses to delete a VPC its private hosted
//! zone is associated with). The `ecs:cluster` provider retries while services or tasks
//! remain; the namespace provider retries while in use and waits for the delete operation.

/// The `[cluster]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;

use crate::resources::ecs::cluster::{self, ClusterSpec};
use crate::resources::ecs::{strategy, StrategyItem};
use crate::resources::logs::log_group;
use crate::resources::servicediscovery::namespace;
use crate::step::{Step, StepCtx};
use crate::outputs::{kms, network};

pub use crate::outputs::cluster::*;

pub use crate::resources::servicediscovery::namespace::ATTR_HOSTED_ZONE;

pub const CLUSTER: &str = cluster::KIND;
pub const NAMESPACE: &str = namespace::KIND;

/// The log group Container Insights writes a cluster's performance events to.
pub fn insights_log_group(cluster: &str) -> String {
    format!("/aws/ecs/containerinsights/{cluster}/performance")
}

pub struct Cluster;

/// The cluster's default strategy: the first service's split.
fn default_strategy(ctx: &StepCtx) -> Vec<StrategyItem> {
    let capacity = ctx
        .cfg()
        .services
        .0
        .first()
        .map(|s| s.capacity)
        .unwrap_or_default();
    strategy(&capacity)
}

#[async_trait]
impl Step for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn deps(&self) -> Vec<&'static str> {
        // kms: the Container Insights log group is encrypted with the stack key.
        // The VPC, for the namespace: not the NAT gateways.
        vec!["~network", "kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // The cluster takes seconds; a private DNS namespace about a minute (Route 53).
        60
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let name = ctx.names().of("cluster");
        if ctx.cfg().cluster.container_insights {
            // Before the cluster, so ECS finds it rather than creating its own.
            let key = ctx.input_str(kms::OUT_KEY_ARN)?;
            let group = insights_log_group(&name);
            let found =
                log_group::ensure(ctx, &group, &key, &[("purpose", "container-insights")]).await?;
            log_group::ensure_tags(ctx, &found).await?;
        }
        let spec = ClusterSpec {
            name,
            container_insights: ctx.cfg().cluster.container_insights,
            strategy: default_strategy(ctx),
        };
        let cluster = cluster::ensure(ctx, &spec).await?;
        let namespace = match &ctx.cfg().cluster.namespace {
            Some(ns) => {
                let vpc_id = ctx.input_str(network::OUT_VPC_ID)?;
                Some(namespace::ensure(ctx, &ns.0, &vpc_id).await?)
            }
            None => None,
        };
        if !cluster.is_pending() {
            ctx.set_output(OUT_CLUSTER_NAME, cluster.id.clone())?;
            ctx.set_output(OUT_CLUSTER_ARN, cluster.arn.clone().unwrap_or_default())?;
        }
        match namespace {
            Some(ns) if !ns.is_pending() => {
                namespace::ensure_zone_tags(ctx, &ns).await?;
                ctx.set_output(OUT_NAMESPACE_ID, ns.id.clone())?;
                let name = ns.attrs.get("name").cloned().unwrap_or_default();
                ctx.set_output(OUT_NAMESPACE_NAME, name)?;
            }
            Some(_) => {}
            None if !ctx.is_plan() => {
                ctx.remove_output(OUT_NAMESPACE_ID)?;
                ctx.remove_output(OUT_NAMESPACE_NAME)?;
            }
            None => {}
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insights_log_group_is_the_one_ecs_writes_to() {
        assert_eq!(
            insights_log_group("cluster-dev"),
            "/aws/ecs/containerinsights/cluster-dev/performance"
        );
    }
}
