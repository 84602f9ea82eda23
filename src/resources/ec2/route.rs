//! `ec2:route`: a route in a route table, through an internet gateway, a NAT gateway or a
//! peering connection. Recorded as `<table>|<destination>` with both, which is what
//! DeleteRoute takes; a route that leads elsewhere is pointed at the wanted target
//! (ReplaceRoute) rather than deleted and created again, so traffic is not cut in between.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::Route;

use super::route_table;
use crate::aws::AwsResultExt;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:route";

pub struct RouteProvider;

/// What a route leads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Igw,
    Nat,
    Peering,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Igw => "igw",
            Via::Nat => "nat",
            Via::Peering => "pcx",
        }
    }
}

/// A route to `dest` in the route table `rt_id` (whose current routes are `routes`)
/// through `target`; one to `dest` that leads elsewhere (e.g. `nat_gateways` went from
/// single to per-az, or a NAT gateway or peering was replaced) is pointed at `target`.
pub async fn ensure(
    ctx: &StepCtx,
    rt_id: &str,
    routes: &[Route],
    dest: &str,
    via: Via,
    target: &Found,
) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    let route_id = format!("{rt_id}|{dest}");
    let route_name = format!("{dest} via {} in {rt_id}", via.as_str());
    let current = routes
        .iter()
        .find(|r| r.destination_cidr_block() == Some(dest));
    let points_at_target = current.is_some_and(|r| {
        let t = Some(target.id.as_str());
        r.gateway_id() == t || r.nat_gateway_id() == t || r.vpc_peering_connection_id() == t
    });
    let found = || {
        Found::new(&route_id)
            .attr("route_table_id", rt_id)
            .attr("destination", dest)
    };
    ctx.ensure(
        KIND,
        &route_name,
        || async { Ok(current.is_some().then(found)) },
        || async {
            let req = ec2
                .create_route()
                .route_table_id(rt_id)
                .destination_cidr_block(dest);
            let req = match via {
                Via::Nat => req.nat_gateway_id(&target.id),
                Via::Igw => req.gateway_id(&target.id),
                Via::Peering => req.vpc_peering_connection_id(&target.id),
            };
            req.send().await.aws("ec2:CreateRoute", &route_id)?;
            Ok(found())
        },
    )
    .await?;
    if current.is_some() && !points_at_target && !target.is_pending() {
        ctx.change(
            KIND,
            &route_name,
            &format!("route through {}", target.id),
            || async {
                let req = ec2
                    .replace_route()
                    .route_table_id(rt_id)
                    .destination_cidr_block(dest);
                let req = match via {
                    Via::Nat => req.nat_gateway_id(&target.id),
                    Via::Igw => req.gateway_id(&target.id),
                    Via::Peering => req.vpc_peering_connection_id(&target.id),
                };
                req.send().await.aws("ec2:ReplaceRoute", &route_id)?;
                Ok(())
            },
        )
        .await?;
    }
    Ok(())
}

/// Deletes the route recorded as `rec` (its `route_table_id` and `destination`), retrying
/// while AWS reports a dependency; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    let attr = |k: &str| rec.attrs.get(k).cloned().unwrap_or_default();
    ctx.retry_dependency(&format!("{KIND} {}", rec.id), || async {
        ec2.delete_route()
            .route_table_id(attr("route_table_id"))
            .destination_cidr_block(attr("destination"))
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteRoute", &rec.id)
    })
    .await
}

#[async_trait]
impl Provider for RouteProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let rt = rec.attrs.get("route_table_id").cloned().unwrap_or_default();
        let dest = rec.attrs.get("destination").map(String::as_str);
        Ok(route_table::describe(ctx, &rt).await?.and_then(|t| {
            t.routes()
                .iter()
                .find(|r| r.destination_cidr_block() == dest)
                .map(|r| {
                    r.state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                })
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
    }
}
