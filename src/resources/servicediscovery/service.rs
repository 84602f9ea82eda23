//! `servicediscovery:service`: the Cloud Map service an ECS service registers its tasks in,
//! one A record per task (awsvpc: each task has its own IP), health reported by ECS.
//!
//! Found by name in the stack's namespace: the namespace is re-checked on each match, as moto
//! ignores ListServices' namespace filter and lists other stacks' services of the same name.
//! DeleteService is refused (ResourceInUse) while instances are registered, which ECS removes
//! as the service's tasks stop: it is retried.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_servicediscovery::types::{
    DnsConfig, DnsRecord, FilterCondition, HealthCheckCustomConfig, RecordType, RoutingPolicy,
    ServiceFilter, ServiceFilterName,
};

use super::cloudmap_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "servicediscovery:service";

/// TTL of the Cloud Map A records: short, so callers stop using a replaced task quickly.
const DNS_TTL: i64 = 10;

pub struct DiscoveryService;

/// A Cloud Map service the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct DiscoverySpec<'a> {
    /// Its name in the namespace (the stack's service name): `<name>.<namespace>` resolves to
    /// the tasks.
    pub name: &'a str,
    pub namespace_id: &'a str,
    /// The ECS service whose tasks register in it (for the description).
    pub ecs_service: &'a str,
}

/// The Cloud Map service `spec`, recorded with its name (`service`) and namespace.
pub async fn ensure(ctx: &StepCtx, spec: &DiscoverySpec<'_>) -> Result<Found> {
    let sd = ctx.aws().cloudmap();
    let DiscoverySpec {
        name,
        namespace_id,
        ecs_service,
    } = *spec;
    ctx.ensure(
        KIND,
        name,
        || async {
            if is_pending(namespace_id) {
                return Ok(None);
            }
            let mut pages = sd
                .list_services()
                .filters(
                    ServiceFilter::builder()
                        .name(ServiceFilterName::NamespaceId)
                        .values(namespace_id)
                        .condition(FilterCondition::Eq)
                        .build()?,
                )
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.aws("servicediscovery:ListServices", name)?;
                // The namespace is the stack's own, and names are unique in it. The
                // namespace is re-checked (the summary does not carry it): moto ignores
                // the filter and lists other stacks' services of the same name.
                for s in page.services().iter().filter(|s| s.name() == Some(name)) {
                    let id = s.id().unwrap_or_default();
                    let full = sd
                        .get_service()
                        .id(id)
                        .send()
                        .await
                        .aws("servicediscovery:GetService", id)
                        .not_found_ok()?
                        .and_then(|o| o.service);
                    if full.is_some_and(|f| f.namespace_id() == Some(namespace_id)) {
                        return Ok(Some(
                            Found::new(id)
                                .arn(s.arn().unwrap_or_default())
                                .attr("service", name)
                                .attr("namespace_id", namespace_id),
                        ));
                    }
                }
            }
            Ok(None)
        },
        || async {
            let tags = cloudmap_tags(ctx, name)?;
            let out = sd
                .create_service()
                .name(name)
                .namespace_id(namespace_id)
                .description(format!("ECS service {ecs_service}"))
                // One A record per task (awsvpc: each task has its own IP).
                .dns_config(
                    DnsConfig::builder()
                        .routing_policy(RoutingPolicy::Multivalue)
                        .dns_records(
                            DnsRecord::builder()
                                .r#type(RecordType::A)
                                .ttl(DNS_TTL)
                                .build()?,
                        )
                        .build()?,
                )
                // ECS reports task health to Cloud Map (Route 53 health checks cannot
                // reach private IPs).
                .health_check_custom_config(HealthCheckCustomConfig::builder().build())
                .set_tags(Some(tags))
                .send()
                .await
                .aws("servicediscovery:CreateService", name)?;
            let s = out.service.context("CreateService returned no service")?;
            Ok(Found::new(s.id.unwrap_or_default())
                .arn(s.arn.unwrap_or_default())
                .attr("service", name)
                .attr("namespace_id", namespace_id))
        },
    )
    .await
}

/// Deletes a Cloud Map service: refused (ResourceInUse) while instances are registered,
/// which ECS removes as the service's tasks stop.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let sd = ctx.aws().cloudmap();
    ctx.retry_dependency(&format!("Cloud Map service {id}"), || async {
        sd.delete_service()
            .id(id)
            .send()
            .await
            .map(|_| ())
            .aws("servicediscovery:DeleteService", id)
    })
    .await
}

#[async_trait]
impl Provider for DiscoveryService {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .cloudmap()
            .get_service()
            .id(id)
            .send()
            .await
            .aws("servicediscovery:GetService", id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
