//! `ec2:route-table`: a route table of a VPC, found by name in that VPC or created, and
//! wired: its subnets associated ([`super::route_table_association`]) and its default route
//! added ([`super::route`]).
//!
//! A table with associations left cannot be deleted: teardown removes the associations and
//! the subnets first.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, RouteTable};

use super::route::{self, Via};
use super::{filter, is_ours, named, route_table_association, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:route-table";

pub struct RouteTableProvider;

/// The route table `name` of `vpc`, and the tables found by that name (the first is the
/// one used; empty when it was just created or is a plan placeholder): their current
/// associations and routes tell [`wire`] what is missing without another read.
pub async fn ensure(ctx: &StepCtx, vpc: &Found, name: &str) -> Result<(Found, Vec<RouteTable>)> {
    let ec2 = ctx.aws().ec2();
    let mut tables = Vec::new();
    let rt = ctx
        .ensure(
            KIND,
            name,
            || async {
                if vpc.is_pending() {
                    return Ok(None);
                }
                let mut filters = named(ctx, name);
                filters.push(filter("vpc-id", &vpc.id));
                let out = ec2
                    .describe_route_tables()
                    .set_filters(Some(filters))
                    .send()
                    .await
                    .aws("ec2:DescribeRouteTables", name)?;
                tables = out
                    .route_tables()
                    .iter()
                    .filter(|t| is_ours(ctx, t.tags(), name) && t.vpc_id() == Some(vpc.id.as_str()))
                    .cloned()
                    .collect();
                Ok(tables
                    .first()
                    .and_then(|t| t.route_table_id())
                    .map(Found::new))
            },
            || async {
                let out = ec2
                    .create_route_table()
                    .vpc_id(&vpc.id)
                    .tag_specifications(tag_spec(ctx, ResourceType::RouteTable, name))
                    .send()
                    .await
                    .aws("ec2:CreateRouteTable", name)?;
                Ok(Found::new(
                    out.route_table()
                        .and_then(|t| t.route_table_id())
                        .context("CreateRouteTable returned no ID")?,
                ))
            },
        )
        .await?;
    Ok((rt, tables))
}

/// Associates subnets with the route table `rt` (whose tables as found are `current`) and
/// adds its default route, if any.
pub async fn wire(
    ctx: &StepCtx,
    rt: &Found,
    current: &[RouteTable],
    subnets: &[&Found],
    default_route: Option<(Via, &Found)>,
) -> Result<()> {
    let table = current.first();
    for subnet in subnets {
        route_table_association::ensure(ctx, rt, table, subnet).await?;
    }
    if let Some((via, target)) = default_route {
        let routes = table.map(|t| t.routes()).unwrap_or_default();
        route::ensure(ctx, &rt.id, routes, "0.0.0.0/0", via, target).await?;
    }
    Ok(())
}

/// The route table `id` as AWS describes it, if it exists.
pub async fn describe(ctx: &StepCtx, id: &str) -> Result<Option<RouteTable>> {
    Ok(ctx
        .aws()
        .ec2()
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .aws("ec2:DescribeRouteTables", id)
        .not_found_ok()?
        .and_then(|o| o.route_tables().first().cloned()))
}

/// Deletes the route table `id`, retrying while AWS reports a dependency; "not found"
/// counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteRouteTable", id)
    })
    .await
}

#[async_trait]
impl Provider for RouteTableProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id).await?.map(|_| "exists".into()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
