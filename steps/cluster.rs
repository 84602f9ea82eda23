//! Cluster step: the ECS cluster the services run in, and (when `cluster.namespace` is set) the
//! Cloud Map private DNS namespace they discover each other through.
//!
//! The cluster has Container Insights on or off (`cluster.container_insights`) and the
//! capacity providers FARGATE and FARGATE_SPOT, with the first service's capacity split as the
//! cluster's default strategy (by default one task on FARGATE, the rest half on Spot), set
//! through PutClusterCapacityProviders. The namespace lives in the stack's VPC;
//! CreatePrivateDnsNamespace is asynchronous, so the step polls the operation, recording the
//! namespace as soon as the operation names it.
//!
//! With Container Insights on, ECS writes the cluster's performance events to
//! `/aws/ecs/containerinsights/<cluster>/performance`, a log group it creates itself,
//! unencrypted and never expiring, unless it exists (ECS Developer Guide, "Container Insights";
//! AWS-CONTRACTS B10). The step creates it first, with the stack key (hence the dependency on
//! `kms`), `logs.retention_days` and the stack's tags, and records it.
//!
//! CreatePrivateDnsNamespace also creates a Route 53 private hosted zone named like the
//! namespace, and the namespace's tags stay Cloud Map's: the zone, a Route 53 resource, is
//! created without any (hashicorp/terraform-provider-aws#13750 found the same). The step
//! reads the zone's ID from GetNamespace (`Properties.DnsProperties.HostedZoneId`), records it
//! with the namespace ([`ATTR_HOSTED_ZONE`], so that a change of `[tags]` re-tags it too:
//! `crate::retag`) and tags it with the stack's tags and `Name` when they differ.
//! DeleteNamespace deletes the zone with the namespace (Cloud Map Developer Guide, "Deleting
//! an AWS Cloud Map namespace").
//!
//! Teardown runs after the services step's (it depends on this one): the namespace first
//! (Cloud Map refuses while services remain in it; the services step deletes its Cloud Map
//! services), then the cluster (ECS refuses while services are ACTIVE or DRAINING), then the
//! Container Insights log group, which nothing writes to any more.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem, ClusterField, ClusterSetting, ClusterSettingName,
};
use aws_sdk_servicediscovery::types::{
    FilterCondition, NamespaceFilter, NamespaceFilterName, NamespaceProperties, NamespaceType,
    OperationStatus, OperationTargetType,
};

use aws_sdk_route53::types::TagResourceType;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::CapacityConfig;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::{kms, log_group, network};

pub const CLUSTER: &str = "ecs:cluster";
pub const NAMESPACE: &str = "servicediscovery:namespace";

/// Output keys other steps read.
pub const OUT_CLUSTER_NAME: &str = "ecs_cluster_name";
pub const OUT_CLUSTER_ARN: &str = "ecs_cluster_arn";
pub const OUT_NAMESPACE_ID: &str = "cloudmap_namespace_id";
pub const OUT_NAMESPACE_NAME: &str = "cloudmap_namespace_name";

/// The namespace record's attribute holding the ID of its Route 53 private hosted zone.
pub const ATTR_HOSTED_ZONE: &str = "hosted_zone_id";

/// The log group Container Insights writes a cluster's performance events to.
pub fn insights_log_group(cluster: &str) -> String {
    format!("/aws/ecs/containerinsights/{cluster}/performance")
}

/// The capacity providers every cluster of the stack offers.
pub const CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// How long a Cloud Map namespace operation may take (AWS: usually under a minute; creating
/// the Route 53 private hosted zone behind it dominates).
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Cluster;

/// One entry of a capacity provider strategy, in a form that compares easily.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StrategyItem {
    pub provider: String,
    pub base: i32,
    pub weight: i32,
}

/// The strategy a capacity split asks for: `fargate_base` tasks on FARGATE, the rest split
/// by the weights. Providers with neither base nor weight are left out (ECS accepts weight 0,
/// but listing a provider that never gets a task only obscures the intent).
pub fn strategy(c: &CapacityConfig) -> Vec<StrategyItem> {
    let mut v = Vec::new();
    if c.fargate_weight > 0 || c.fargate_base > 0 {
        v.push(StrategyItem {
            provider: "FARGATE".into(),
            base: c.fargate_base,
            weight: c.fargate_weight,
        });
    }
    if c.spot_weight > 0 {
        v.push(StrategyItem {
            provider: "FARGATE_SPOT".into(),
            base: 0,
            weight: c.spot_weight,
        });
    }
    v.sort();
    v
}

/// SDK strategy items for a strategy.
pub fn to_sdk(items: &[StrategyItem]) -> Result<Vec<CapacityProviderStrategyItem>> {
    items
        .iter()
        .map(|i| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&i.provider)
                .base(i.base)
                .weight(i.weight)
                .build()
                .context("building a capacity provider strategy item")
        })
        .collect()
}

/// A strategy as AWS describes it, normalised for comparison with [`strategy`].
pub fn from_sdk(items: &[CapacityProviderStrategyItem]) -> Vec<StrategyItem> {
    let mut v: Vec<StrategyItem> = items
        .iter()
        .map(|i| StrategyItem {
            provider: i.capacity_provider().to_string(),
            base: i.base(),
            weight: i.weight(),
        })
        // A weight-0 entry without a base never gets a task: same as absent.
        .filter(|i| i.weight > 0 || i.base > 0)
        .collect();
    v.sort();
    v
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

/// What the cluster looks like now, as far as the step manages it.
#[derive(Debug, Clone)]
struct ClusterView {
    arn: String,
    insights: Option<String>,
    providers: Vec<String>,
    strategy: Vec<StrategyItem>,
}

impl Cluster {
    /// The stack's cluster if it exists and is live (INACTIVE clusters linger in
    /// DescribeClusters for a while after deletion; CreateCluster brings the name back).
    async fn find_cluster(&self, ctx: &StepCtx, name: &str) -> Result<Option<ClusterView>> {
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

    async fn put_capacity_providers(
        &self,
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
                        Err(e) if e.code.as_deref() == Some("UpdateInProgressException") => {
                            Ok(None)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            },
        )
        .await
    }

    async fn ensure_cluster(&self, ctx: &StepCtx) -> Result<Found> {
        let ecs = ctx.aws().ecs();
        let name = ctx.names().of("cluster");
        let insights_on = ctx.cfg().cluster.container_insights;
        let want_strategy = Self::default_strategy(ctx);
        let existing = self.find_cluster(ctx, &name).await?;
        let found = ctx
            .ensure(
                CLUSTER,
                &name,
                || async { Ok(existing.as_ref().map(|c| Found::new(&name).arn(&c.arn))) },
                || async {
                    let tags = ctx
                        .tags(Some(&name))
                        .into_iter()
                        .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
                        .collect();
                    let out = ecs
                        .create_cluster()
                        .cluster_name(&name)
                        .settings(
                            ClusterSetting::builder()
                                .name(ClusterSettingName::ContainerInsights)
                                .value(insights_value(insights_on))
                                .build(),
                        )
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .aws("ecs:CreateCluster", &name)?;
                    let arn = out
                        .cluster()
                        .and_then(|c| c.cluster_arn())
                        .context("CreateCluster returned no cluster ARN")?
                        .to_string();
                    let found = Found::new(&name).arn(&arn);
                    ctx.record(CLUSTER, &name, &found)?;
                    // Part of creating the cluster, not a change to an existing one.
                    self.put_capacity_providers(ctx, &name, &want_strategy)
                        .await?;
                    Ok(found)
                },
            )
            .await?;

        if let Some(c) = &existing {
            if !insights_ok(c.insights.as_deref(), insights_on) {
                let value = insights_value(insights_on);
                ctx.change(
                    CLUSTER,
                    &name,
                    &format!("set Container Insights {value}"),
                    || async {
                        ecs.update_cluster()
                            .cluster(&name)
                            .settings(
                                ClusterSetting::builder()
                                    .name(ClusterSettingName::ContainerInsights)
                                    .value(value)
                                    .build(),
                            )
                            .send()
                            .await
                            .aws("ecs:UpdateCluster", &name)?;
                        Ok(())
                    },
                )
                .await?;
            }
            let want_providers: Vec<String> =
                CAPACITY_PROVIDERS.iter().map(|p| p.to_string()).collect();
            if c.providers != want_providers || c.strategy != want_strategy {
                ctx.change(
                    CLUSTER,
                    &name,
                    "set capacity providers FARGATE, FARGATE_SPOT and the default strategy",
                    || self.put_capacity_providers(ctx, &name, &want_strategy),
                )
                .await?;
            }
        }
        Ok(found)
    }

    /// The namespace recorded by an earlier run, or one named `name` carrying the stack tag
    /// (a run that died before the create operation named it).
    async fn find_namespace(&self, ctx: &StepCtx, name: &str) -> Result<Option<Found>> {
        let sd = ctx.aws().cloudmap();
        for rec in ctx.records(Some(NAMESPACE)) {
            let ns = sd
                .get_namespace()
                .id(&rec.id)
                .send()
                .await
                .aws("servicediscovery:GetNamespace", &rec.id)
                .not_found_ok()?
                .and_then(|o| o.namespace);
            if let Some(ns) = ns.filter(|n| n.name() == Some(name)) {
                return Ok(Some(with_zone(
                    Found::new(ns.id().unwrap_or_default())
                        .arn(ns.arn().unwrap_or_default())
                        .attr("name", name),
                    ns.properties(),
                )));
            }
        }
        let filter = |n: NamespaceFilterName, v: &str| {
            NamespaceFilter::builder()
                .name(n)
                .values(v)
                .condition(FilterCondition::Eq)
                .build()
        };
        let mut pages = sd
            .list_namespaces()
            .filters(filter(NamespaceFilterName::Type, "DNS_PRIVATE")?)
            .filters(filter(NamespaceFilterName::Name, name)?)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.aws("servicediscovery:ListNamespaces", name)?;
            // Filters are re-checked here: moto ignores them.
            for ns in page.namespaces().iter().filter(|n| {
                n.name() == Some(name) && n.r#type() == Some(&NamespaceType::DnsPrivate)
            }) {
                let arn = ns.arn().unwrap_or_default();
                let tags = sd
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send()
                    .await
                    .aws("servicediscovery:ListTagsForResource", arn)?;
                // Several stacks may use the same namespace name, each in its own VPC.
                if tags
                    .tags()
                    .iter()
                    .any(|t| t.key() == STACK_TAG && t.value() == ctx.suffix())
                {
                    return Ok(Some(with_zone(
                        Found::new(ns.id().unwrap_or_default())
                            .arn(arn)
                            .attr("name", name),
                        ns.properties(),
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Polls a Cloud Map operation until it succeeds; `on_target` sees the namespace ID as
    /// soon as the operation reports it.
    async fn wait_operation(
        &self,
        ctx: &StepCtx,
        operation_id: &str,
        what: &str,
        on_target: impl Fn(&str) -> Result<()>,
    ) -> Result<()> {
        let sd = ctx.aws().cloudmap();
        ctx.wait_for(what, NAMESPACE_TIMEOUT, || async {
            let op = sd
                .get_operation()
                .operation_id(operation_id)
                .send()
                .await
                .aws("servicediscovery:GetOperation", operation_id)?
                .operation
                .with_context(|| format!("GetOperation {operation_id} returned no operation"))?;
            if let Some(id) = op
                .targets()
                .and_then(|t| t.get(&OperationTargetType::Namespace))
            {
                on_target(id)?;
            }
            match op.status() {
                Some(OperationStatus::Success) => Ok(Some(())),
                Some(OperationStatus::Fail) => bail!(
                    "Cloud Map operation {operation_id} ({what}) failed: {}: {}",
                    op.error_code().unwrap_or("?"),
                    op.error_message().unwrap_or("")
                ),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn ensure_namespace(&self, ctx: &StepCtx, name: &str) -> Result<Found> {
        let sd = ctx.aws().cloudmap();
        let vpc_id = ctx.input_str(network::OUT_VPC_ID)?;
        ctx.ensure(
            NAMESPACE,
            name,
            || async {
                if is_pending(&vpc_id) {
                    return Ok(None);
                }
                self.find_namespace(ctx, name).await
            },
            || async {
                let tags = cloudmap_tags(ctx, name)?;
                let out = sd
                    .create_private_dns_namespace()
                    .name(name)
                    .vpc(&vpc_id)
                    .description(format!(
                        "fintech-infra stack {}: service discovery",
                        ctx.suffix()
                    ))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws("servicediscovery:CreatePrivateDnsNamespace", name)?;
                let op = out
                    .operation_id()
                    .context("CreatePrivateDnsNamespace returned no operation ID")?;
                // The namespace has no ID until the operation names it: record it then, so
                // a run interrupted while Route 53 sets up the hosted zone can still undo it.
                let id = Mutex::new(None::<String>);
                self.wait_operation(ctx, op, &format!("Cloud Map namespace {name}"), |ns_id| {
                    let mut known = id.lock().unwrap_or_else(|e| e.into_inner());
                    if known.is_none() {
                        ctx.record(NAMESPACE, name, &Found::new(ns_id).attr("name", name))?;
                        *known = Some(ns_id.to_string());
                    }
                    Ok(())
                })
                .await?;
                let id = id
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .with_context(|| format!("Cloud Map operation {op} named no namespace"))?;
                let ns = sd
                    .get_namespace()
                    .id(&id)
                    .send()
                    .await
                    .aws("servicediscovery:GetNamespace", &id)?
                    .namespace;
                let arn = ns.as_ref().and_then(|n| n.arn()).unwrap_or_default();
                let found = Found::new(&id).arn(arn).attr("name", name);
                Ok(with_zone(found, ns.as_ref().and_then(|n| n.properties())))
            },
        )
        .await
    }

    /// Gives the namespace's Route 53 private hosted zone the stack's tags and `Name` (the
    /// namespace's name, as the zone's), when ListTagsForResource shows any of them missing or
    /// different: Cloud Map creates the zone untagged.
    async fn ensure_zone_tags(&self, ctx: &StepCtx, ns: &Found) -> Result<()> {
        let Some(zone) = ns
            .attrs
            .get(ATTR_HOSTED_ZONE)
            .map(|z| crate::retag::bare_zone_id(z))
            .filter(|z| !z.is_empty())
        else {
            return Ok(());
        };
        let name = ns.attrs.get("name").map(String::as_str).unwrap_or_default();
        let r53 = ctx.aws().route53();
        let got = r53
            .list_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(zone)
            .send()
            .await
            .aws("route53:ListTagsForResource", zone)?;
        let have: Vec<(String, String)> = got
            .resource_tag_set()
            .map(|s| s.tags())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        let missing: Vec<(String, String)> = ctx
            .tags(Some(name))
            .into_iter()
            .filter(|t| !have.contains(t))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
        let what = format!("tag its hosted zone {zone}: {}", keys.join(", "));
        ctx.change(NAMESPACE, name, &what, || async {
            let tags = missing
                .iter()
                .map(|(k, v)| {
                    aws_sdk_route53::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                })
                .collect();
            r53.change_tags_for_resource()
                .resource_type(TagResourceType::Hostedzone)
                .resource_id(zone)
                .set_add_tags(Some(tags))
                .send()
                .await
                .aws("route53:ChangeTagsForResource", zone)?;
            Ok(())
        })
        .await
    }

    /// DeleteCluster, retried while ECS still counts services or tasks in it (a deleted
    /// service stays DRAINING for a while and still blocks its cluster).
    async fn delete_cluster(&self, ctx: &StepCtx, name: &str) -> Result<()> {
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
}

/// A namespace as found, with the ID of its hosted zone when Cloud Map names one (moto puts
/// Route 53's `/hostedzone/` prefix in front of it; AWS gives the bare ID).
fn with_zone(found: Found, properties: Option<&NamespaceProperties>) -> Found {
    match properties
        .and_then(|p| p.dns_properties())
        .and_then(|d| d.hosted_zone_id())
        .map(crate::retag::bare_zone_id)
        .filter(|z| !z.is_empty())
    {
        Some(zone) => found.attr(ATTR_HOSTED_ZONE, zone),
        None => found,
    }
}

/// The stack's tags in Cloud Map's form (namespaces and services).
pub(crate) fn cloudmap_tags(
    ctx: &StepCtx,
    name: &str,
) -> Result<Vec<aws_sdk_servicediscovery::types::Tag>> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_servicediscovery::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("building Cloud Map tags")
}

#[async_trait]
impl Step for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn deps(&self) -> Vec<&'static str> {
        // kms: the Container Insights log group is encrypted with the stack key.
        vec!["network", "kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // The cluster takes seconds; a private DNS namespace about a minute (Route 53).
        60
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        if ctx.cfg().cluster.container_insights {
            // Before the cluster, so ECS finds it rather than creating its own.
            let key = ctx.input_str(kms::OUT_KEY_ARN)?;
            let group = insights_log_group(&ctx.names().of("cluster"));
            let found =
                log_group::ensure(ctx, &group, &key, &[("purpose", "container-insights")]).await?;
            log_group::ensure_tags(ctx, &found).await?;
        }
        let cluster = self.ensure_cluster(ctx).await?;
        let namespace = match &ctx.cfg().cluster.namespace {
            Some(ns) => Some(self.ensure_namespace(ctx, &ns.0).await?),
            None => None,
        };
        if !cluster.is_pending() {
            ctx.set_output(OUT_CLUSTER_NAME, cluster.id.clone())?;
            ctx.set_output(OUT_CLUSTER_ARN, cluster.arn.clone().unwrap_or_default())?;
        }
        match namespace {
            Some(ns) if !ns.is_pending() => {
                self.ensure_zone_tags(ctx, &ns).await?;
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

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let sd = ctx.aws().cloudmap();
        for rec in ctx.records(Some(NAMESPACE)) {
            // Refused (ResourceInUse) while Cloud Map services remain: the services step
            // deletes its own before this runs, but Cloud Map may lag behind.
            let op = Mutex::new(None::<String>);
            ctx.retry_dependency(&format!("Cloud Map namespace {}", rec.id), || async {
                let out = sd
                    .delete_namespace()
                    .id(&rec.id)
                    .send()
                    .await
                    .aws("servicediscovery:DeleteNamespace", &rec.id)?;
                *op.lock().unwrap_or_else(|e| e.into_inner()) = out.operation_id;
                Ok(())
            })
            .await?;
            if let Some(op) = op.into_inner().unwrap_or_else(|e| e.into_inner()) {
                // Deleting removes the Route 53 hosted zone and its VPC association; the
                // network step deletes the VPC after this step, so wait for it here.
                self.wait_operation(
                    ctx,
                    &op,
                    &format!("Cloud Map namespace {} to be deleted", rec.id),
                    |_| Ok(()),
                )
                .await?;
            }
            ctx.deleted(NAMESPACE, &rec.id)?;
        }
        for rec in ctx.records(Some(CLUSTER)) {
            ctx.check_cancelled()?;
            self.delete_cluster(ctx, &rec.id).await?;
            ctx.deleted(CLUSTER, &rec.id)?;
        }
        log_group::delete_recorded(ctx).await?;
        for key in [
            OUT_CLUSTER_NAME,
            OUT_CLUSTER_ARN,
            OUT_NAMESPACE_ID,
            OUT_NAMESPACE_NAME,
        ] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        match rec.kind.as_str() {
            CLUSTER => {
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
            NAMESPACE => Ok(ctx
                .aws()
                .cloudmap()
                .get_namespace()
                .id(&rec.id)
                .send()
                .await
                .aws("servicediscovery:GetNamespace", &rec.id)
                .not_found_ok()?
                .and_then(|o| o.namespace)
                .map(|_| "exists".to_string())),
            log_group::LOG_GROUP => log_group::probe(ctx, &rec.id).await,
            other => bail!("cluster step does not know resource type {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_split_is_one_fargate_to_two_spot() {
        // CapacityConfig's default: no FARGATE base, FARGATE : FARGATE_SPOT = 1 : 2.
        let s = strategy(&CapacityConfig::default());
        assert_eq!(
            s,
            vec![
                StrategyItem {
                    provider: "FARGATE".into(),
                    base: 0,
                    weight: 1
                },
                StrategyItem {
                    provider: "FARGATE_SPOT".into(),
                    base: 0,
                    weight: 2
                },
            ]
        );
    }

    #[test]
    fn spot_only_split_leaves_fargate_out() {
        let s = strategy(&CapacityConfig {
            fargate_base: 0,
            fargate_weight: 0,
            spot_weight: 1,
        });
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].provider, "FARGATE_SPOT");
    }

    #[test]
    fn described_strategy_round_trips_and_ignores_empty_entries() {
        let want = strategy(&CapacityConfig {
            fargate_base: 2,
            fargate_weight: 1,
            spot_weight: 3,
        });
        let mut sdk = to_sdk(&want).unwrap();
        sdk.reverse();
        sdk.push(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("OTHER")
                .weight(0)
                .build()
                .unwrap(),
        );
        assert_eq!(from_sdk(&sdk), want);
    }

    #[test]
    fn insights_log_group_is_the_one_ecs_writes_to() {
        assert_eq!(
            insights_log_group("cluster-dev"),
            "/aws/ecs/containerinsights/cluster-dev/performance"
        );
    }

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
