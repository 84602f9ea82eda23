//! `servicediscovery:namespace`: the Cloud Map private DNS namespace the services discover
//! each other through, in the stack's VPC.
//!
//! CreatePrivateDnsNamespace is asynchronous: it returns an operation, polled here until it
//! succeeds, and the namespace is recorded as soon as the operation names it (a run
//! interrupted while Route 53 sets up the hosted zone can still undo it). A run that died
//! before that is recovered by name and stack tag.
//!
//! CreatePrivateDnsNamespace also creates a Route 53 private hosted zone named like the
//! namespace, and the namespace's tags stay Cloud Map's: the zone, a Route 53 resource, is
//! created without any (hashicorp/terraform-provider-aws#13750 found the same). The zone's ID
//! comes from GetNamespace (`Properties.DnsProperties.HostedZoneId`) and is recorded with the
//! namespace ([`ATTR_HOSTED_ZONE`], so that a change of `[tags]` re-tags it too:
//! `crate::retag`); [`ensure_zone_tags`] tags it with the stack's tags and `Name` when they
//! differ. DeleteNamespace deletes the zone with the namespace (Cloud Map Developer Guide,
//! "Deleting an AWS Cloud Map namespace").
//!
//! DeleteNamespace is refused (ResourceInUse) while Cloud Map services remain in it, and is
//! asynchronous too: the delete is retried, then its operation waited for.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_route53::types::TagResourceType;
use aws_sdk_servicediscovery::types::{
    FilterCondition, NamespaceFilter, NamespaceFilterName, NamespaceProperties, NamespaceType,
    OperationStatus, OperationTargetType,
};

use super::cloudmap_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "servicediscovery:namespace";

/// The namespace record's attribute holding the ID of its Route 53 private hosted zone.
pub const ATTR_HOSTED_ZONE: &str = "hosted_zone_id";

/// How long a Cloud Map namespace operation may take (AWS: usually under a minute; creating
/// the Route 53 private hosted zone behind it dominates).
const TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Namespace;

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

/// The namespace recorded by an earlier run, or one named `name` carrying the stack tag
/// (a run that died before the create operation named it).
async fn find(ctx: &StepCtx, name: &str) -> Result<Option<Found>> {
    let sd = ctx.aws().cloudmap();
    for rec in ctx.records(Some(KIND)) {
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
        for ns in page
            .namespaces()
            .iter()
            .filter(|n| n.name() == Some(name) && n.r#type() == Some(&NamespaceType::DnsPrivate))
        {
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
    ctx: &StepCtx,
    operation_id: &str,
    what: &str,
    on_target: impl Fn(&str) -> Result<()>,
) -> Result<()> {
    let sd = ctx.aws().cloudmap();
    ctx.wait_for(what, TIMEOUT, || async {
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

/// The namespace `name` in the VPC `vpc_id`, created (and waited for) or found.
pub async fn ensure(ctx: &StepCtx, name: &str, vpc_id: &str) -> Result<Found> {
    let sd = ctx.aws().cloudmap();
    ctx.ensure(
        KIND,
        name,
        || async {
            if is_pending(vpc_id) {
                return Ok(None);
            }
            find(ctx, name).await
        },
        || async {
            let tags = cloudmap_tags(ctx, name)?;
            let out = sd
                .create_private_dns_namespace()
                .name(name)
                .vpc(vpc_id)
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
            wait_operation(ctx, op, &format!("Cloud Map namespace {name}"), |ns_id| {
                let mut known = id.lock().unwrap_or_else(|e| e.into_inner());
                if known.is_none() {
                    ctx.record(KIND, name, &Found::new(ns_id).attr("name", name))?;
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
pub async fn ensure_zone_tags(ctx: &StepCtx, ns: &Found) -> Result<()> {
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
    ctx.change(KIND, name, &what, || async {
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

/// Deletes the namespace `id` and waits for the operation: refused (ResourceInUse) while
/// Cloud Map services remain, retried meanwhile (`down` deletes them first, as they are
/// built on it, but Cloud Map may lag behind). "Not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let sd = ctx.aws().cloudmap();
    let op = Mutex::new(None::<String>);
    ctx.retry_dependency(&format!("Cloud Map namespace {id}"), || async {
        let out = sd
            .delete_namespace()
            .id(id)
            .send()
            .await
            .aws("servicediscovery:DeleteNamespace", id)?;
        *op.lock().unwrap_or_else(|e| e.into_inner()) = out.operation_id;
        Ok(())
    })
    .await?;
    if let Some(op) = op.into_inner().unwrap_or_else(|e| e.into_inner()) {
        // Deleting removes the Route 53 hosted zone and its VPC association; the VPC
        // (which the namespace is built on) is deleted after this, so wait for it here.
        wait_operation(
            ctx,
            &op,
            &format!("Cloud Map namespace {id} to be deleted"),
            |_| Ok(()),
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Provider for Namespace {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .cloudmap()
            .get_namespace()
            .id(&rec.id)
            .send()
            .await
            .aws("servicediscovery:GetNamespace", &rec.id)
            .not_found_ok()?
            .and_then(|o| o.namespace)
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
