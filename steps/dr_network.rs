//! DR network step (seed 004): in the disaster-recovery region (`dr.region`), a VPC with a
//! private subnet per zone and their route table, peered with the stack's VPC so that
//! replication between the regions stays on AWS's network, and routes both ways through the
//! peering connection (from the stack's private and isolated route tables, and back).
//!
//! The peering connection is requested from the stack's region and accepted in the DR region:
//! AWS refuses to accept a cross-region peering from the requester's side, and a new request
//! takes a moment to appear in the accepter's region, so the step polls for it there (see
//! [`vpc_peering_connection`]).
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): a route is built on its
//! route table and on the peering connection of any region, so the routes on both sides go
//! before the peering (they would only black-hole); the peering is built on both VPCs; a
//! route table association is built on its table and subnet, so it goes before both (a table
//! with associations cannot be deleted); subnets and the route table go before the DR VPC.
//! The VPC provider retries while a peering connection still being deleted holds the VPC.
//!
//! The DR VPC's default security group is stripped of its rules, as the stack's is (Security
//! Hub EC2.2, see [`security_group::restrict_default`]).
//!
//! Without `dr.region` the step does nothing, except that resources it recorded earlier (the
//! config stopped asking for DR) are removed by `up` as well as by `down`.

/// The `[dr]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::Route;
use serde_json::json;

use crate::aws::AwsResultExt;
use crate::resources::delete_recorded;
use crate::resources::ec2::route::{self, Via};
use crate::resources::ec2::subnet::{self, SubnetSpec};
use crate::resources::ec2::{
    self as ec2, route_table, route_table_association, security_group, vpc, vpc_peering_connection,
};
use crate::step::{is_pending, Found, Step, StepCtx};
// The network step's output keys (its published interface; no code of it is used here).
use crate::outputs::network::{OUT_INTERNAL_ROUTE_TABLE_IDS, OUT_VPC_ID};

pub use crate::outputs::dr_network::*;

pub const PEERING: &str = vpc_peering_connection::KIND;

const OUTPUTS: [&str; 4] = [
    OUT_DR_REGION,
    OUT_DR_VPC_ID,
    OUT_DR_SUBNET_IDS,
    OUT_PEERING_ID,
];

pub struct DrNetwork;

impl DrNetwork {
    /// The current routes of existing route tables (none for plan placeholders).
    async fn routes_of(c: &StepCtx, ids: &[String]) -> Result<Vec<(String, Vec<Route>)>> {
        let real: Vec<String> = ids.iter().filter(|i| !is_pending(i)).cloned().collect();
        if real.is_empty() {
            return Ok(ids.iter().map(|i| (i.clone(), Vec::new())).collect());
        }
        let out = c
            .aws()
            .ec2()
            .describe_route_tables()
            .set_route_table_ids(Some(real))
            .send()
            .await
            .aws("ec2:DescribeRouteTables", ids.join(","))?;
        Ok(ids
            .iter()
            .map(|id| {
                let routes = out
                    .route_tables()
                    .iter()
                    .find(|t| t.route_table_id() == Some(id.as_str()))
                    .map(|t| t.routes().to_vec())
                    .unwrap_or_default();
                (id.clone(), routes)
            })
            .collect())
    }

    /// Deletes everything recorded, in every region it was recorded in: the routes on both
    /// sides first (they would only black-hole), then the peering, then the DR VPC.
    async fn remove(ctx: &StepCtx) -> Result<()> {
        let regions = ctx.record_regions();
        for region in &regions {
            delete_recorded(&ctx.in_region(region), route::KIND).await?;
        }
        for region in &regions {
            delete_recorded(&ctx.in_region(region), PEERING).await?;
        }
        for region in &regions {
            let c = ctx.in_region(region);
            delete_recorded(&c, route_table_association::KIND).await?;
            // Subnets before their route table: a table with associations left cannot be
            // deleted.
            delete_recorded(&c, subnet::KIND).await?;
            delete_recorded(&c, route_table::KIND).await?;
            // A peering connection still being deleted can hold the VPC for a moment: the
            // delete is retried while AWS reports the dependency.
            delete_recorded(&c, vpc::KIND).await?;
        }
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for DrNetwork {
    fn name(&self) -> &'static str {
        "dr_network"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["network"]
    }

    fn estimate_secs(&self) -> u64 {
        30
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let Some(region) = ctx.cfg().dr.region.clone() else {
            if !ctx.has_records() {
                return Ok(());
            }
            let name = ctx.names().with_purpose("vpc", "dr");
            return ctx
                .change(vpc::KIND, &name, "remove: dr.region is not set", || {
                    Self::remove(ctx)
                })
                .await;
        };
        let dr = ctx.in_region(&region.0);
        let cfg = &ctx.cfg().dr;
        let zones = ec2::zones(&dr, usize::from(cfg.az_count.0), None, "dr").await?;
        let dr_cidr = cfg.cidr.0.to_string();
        let vpc_name = dr.names().with_purpose("vpc", "dr");
        let vpc = vpc::ensure(&dr, &vpc_name, &dr_cidr, "dr.cidr").await?;
        // Security Hub EC2.2 applies in every region: the DR VPC's default group allows nothing.
        security_group::restrict_default(&dr, &vpc).await?;
        let mut subnets = Vec::new();
        for (i, zone) in zones.iter().enumerate() {
            let letter = zone.chars().last().unwrap_or('x');
            let name = dr
                .names()
                .with_purpose("subnet", &format!("dr-private-{letter}"));
            let cidr = cfg.cidr.slice(i as u8).to_string();
            let spec = SubnetSpec {
                name: &name,
                cidr: &cidr,
                zone,
                tier: "private",
            };
            subnets.push(subnet::ensure(&dr, &vpc, &spec).await?);
        }
        let rt_name = dr.names().with_purpose("rt", "dr-private");
        let (rt, tables) = route_table::ensure(&dr, &vpc, &rt_name).await?;
        let subnet_refs: Vec<&Found> = subnets.iter().collect();
        route_table::wire(&dr, &rt, &tables, &subnet_refs, None).await?;

        let vpc_id = ctx.input_str(OUT_VPC_ID)?;
        let pcx_name = ctx.names().with_purpose("pcx", "dr");
        let pcx = vpc_peering_connection::ensure(ctx, &dr, &pcx_name, &vpc_id, &vpc).await?;

        // Both ways: the stack's internal subnets to the DR block, the DR subnets back.
        let main_cidr = ctx.cfg().network.cidr.0.to_string();
        let internal = ctx.input_list(OUT_INTERNAL_ROUTE_TABLE_IDS)?;
        for (rt_id, routes) in Self::routes_of(ctx, &internal).await? {
            route::ensure(ctx, &rt_id, &routes, &dr_cidr, Via::Peering, &pcx).await?;
        }
        let dr_routes = tables.first().map(|t| t.routes()).unwrap_or_default();
        route::ensure(&dr, &rt.id, dr_routes, &main_cidr, Via::Peering, &pcx).await?;

        if pcx.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_DR_REGION, region.0.clone())?;
        ctx.set_output(OUT_DR_VPC_ID, vpc.id.clone())?;
        ctx.set_output(
            OUT_DR_SUBNET_IDS,
            json!(subnets.iter().map(|s| s.id.clone()).collect::<Vec<_>>()),
        )?;
        ctx.set_output(OUT_PEERING_ID, pcx.id.clone())?;
        Ok(())
    }

}
