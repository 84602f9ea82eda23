//! DR network step (seed 004): in the disaster-recovery region (`dr.region`), a VPC with a
//! private subnet per zone and their route table, peered with the stack's VPC so that
//! replication between the regions stays on AWS's network, and routes both ways through the
//! peering connection (from the stack's private and isolated route tables, and back).
//!
//! The peering connection is requested from the stack's region and accepted in the DR region:
//! AWS refuses to accept a cross-region peering from the requester's side, and a new request
//! takes a moment to appear in the accepter's region, so the step polls for it there.
//!
//! Teardown: the routes on both sides (they would only black-hole), the peering connection,
//! then the DR route table's associations, the subnets, the route table and the VPC.
//!
//! Without `dr.region` the step does nothing, except that resources it recorded earlier (the
//! config stopped asking for DR) are removed by `up` as well as by `down`.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, Route, RouteTable, Tag, VpcPeeringConnection};
use serde_json::json;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::network::{self, filter, Network, ASSOCIATION, ROUTE, ROUTE_TABLE, SUBNET, VPC};

pub const PEERING: &str = "ec2:vpc-peering-connection";

/// Output keys.
pub const OUT_DR_REGION: &str = "dr_region";
pub const OUT_DR_VPC_ID: &str = "dr_vpc_id";
pub const OUT_DR_SUBNET_IDS: &str = "dr_private_subnet_ids";
pub const OUT_PEERING_ID: &str = "vpc_peering_connection_id";
const OUTPUTS: [&str; 4] = [
    OUT_DR_REGION,
    OUT_DR_VPC_ID,
    OUT_DR_SUBNET_IDS,
    OUT_PEERING_ID,
];

/// How long a new peering request may take to reach the DR region and become active (AWS:
/// seconds to a couple of minutes across regions).
const PEERING_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Peering states from which a connection never becomes usable again.
const DEAD_STATES: [&str; 5] = ["deleted", "deleting", "rejected", "failed", "expired"];

pub struct DrNetwork;

fn status_of(p: &VpcPeeringConnection) -> String {
    p.status()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

impl DrNetwork {
    /// The DR region's first `dr.az_count` available zones.
    async fn zones(dr: &StepCtx) -> Result<Vec<String>> {
        let want = usize::from(dr.cfg().dr.az_count.0);
        let out = dr
            .aws()
            .ec2()
            .describe_availability_zones()
            .filters(filter("state", "available"))
            .send()
            .await
            .aws("ec2:DescribeAvailabilityZones", dr.region())?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        zones.sort();
        if zones.len() < want {
            bail!(
                "region {} has {} available zones, dr.az_count asks for {want}",
                dr.region(),
                zones.len()
            );
        }
        zones.truncate(want);
        Ok(zones)
    }

    async fn ensure_vpc(dr: &StepCtx) -> Result<Found> {
        let ec2 = dr.aws().ec2();
        let name = dr.names().with_purpose("vpc", "dr");
        let cidr = dr.cfg().dr.cidr.0.to_string();
        dr.ensure(
            VPC,
            &name,
            || async {
                let out = ec2
                    .describe_vpcs()
                    .set_filters(Some(Network::named(dr, &name)))
                    .send()
                    .await
                    .aws("ec2:DescribeVpcs", &name)?;
                let vpc = out
                    .vpcs()
                    .iter()
                    .find(|v| Network::is_ours(dr, v.tags(), &name));
                if let Some(got) = vpc.and_then(|v| v.cidr_block()).filter(|c| *c != cidr) {
                    bail!(
                        "VPC {name} in {} exists with CIDR {got}, but dr.cidr is {cidr}; a VPC's \
                         CIDR cannot change: run `down` first or keep the old CIDR",
                        dr.region()
                    );
                }
                Ok(vpc.and_then(|v| v.vpc_id()).map(Found::new))
            },
            || async {
                let out = ec2
                    .create_vpc()
                    .cidr_block(&cidr)
                    .tag_specifications(Network::tag_spec(dr, ResourceType::Vpc, &name))
                    .send()
                    .await
                    .aws("ec2:CreateVpc", &name)?;
                let id = out
                    .vpc()
                    .and_then(|v| v.vpc_id())
                    .context("CreateVpc returned no ID")?;
                Ok(Found::new(id))
            },
        )
        .await
    }

    async fn ensure_subnet(dr: &StepCtx, vpc: &Found, index: u8, zone: &str) -> Result<Found> {
        let ec2 = dr.aws().ec2();
        let letter = zone.chars().last().unwrap_or('x');
        let name = dr
            .names()
            .with_purpose("subnet", &format!("dr-private-{letter}"));
        let cidr = dr.cfg().dr.cidr.slice(index).to_string();
        dr.ensure(
            SUBNET,
            &name,
            || async {
                if vpc.is_pending() {
                    return Ok(None);
                }
                let mut filters = Network::named(dr, &name);
                filters.push(filter("vpc-id", &vpc.id));
                let out = ec2
                    .describe_subnets()
                    .set_filters(Some(filters))
                    .send()
                    .await
                    .aws("ec2:DescribeSubnets", &name)?;
                Ok(out
                    .subnets()
                    .iter()
                    .find(|s| {
                        Network::is_ours(dr, s.tags(), &name) && s.vpc_id() == Some(vpc.id.as_str())
                    })
                    .and_then(|s| s.subnet_id())
                    .map(|id| Found::new(id).attr("az", zone)))
            },
            || async {
                let out = ec2
                    .create_subnet()
                    .vpc_id(&vpc.id)
                    .cidr_block(&cidr)
                    .availability_zone(zone)
                    .tag_specifications(Network::tag_spec(dr, ResourceType::Subnet, &name))
                    .send()
                    .await
                    .aws("ec2:CreateSubnet", &name)?;
                let id = out
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .context("CreateSubnet returned no ID")?;
                Ok(Found::new(id).attr("az", zone))
            },
        )
        .await
    }

    /// The DR route table, and its current description when it already existed.
    async fn ensure_route_table(dr: &StepCtx, vpc: &Found) -> Result<(Found, Option<RouteTable>)> {
        let ec2 = dr.aws().ec2();
        let name = dr.names().with_purpose("rt", "dr-private");
        let mut current = None;
        let rt = dr
            .ensure(
                ROUTE_TABLE,
                &name,
                || async {
                    if vpc.is_pending() {
                        return Ok(None);
                    }
                    let mut filters = Network::named(dr, &name);
                    filters.push(filter("vpc-id", &vpc.id));
                    let out = ec2
                        .describe_route_tables()
                        .set_filters(Some(filters))
                        .send()
                        .await
                        .aws("ec2:DescribeRouteTables", &name)?;
                    current = out
                        .route_tables()
                        .iter()
                        .find(|t| {
                            Network::is_ours(dr, t.tags(), &name)
                                && t.vpc_id() == Some(vpc.id.as_str())
                        })
                        .cloned();
                    Ok(current
                        .as_ref()
                        .and_then(|t| t.route_table_id())
                        .map(Found::new))
                },
                || async {
                    let out = ec2
                        .create_route_table()
                        .vpc_id(&vpc.id)
                        .tag_specifications(Network::tag_spec(dr, ResourceType::RouteTable, &name))
                        .send()
                        .await
                        .aws("ec2:CreateRouteTable", &name)?;
                    Ok(Found::new(
                        out.route_table()
                            .and_then(|t| t.route_table_id())
                            .context("CreateRouteTable returned no ID")?,
                    ))
                },
            )
            .await?;
        Ok((rt, current))
    }

    async fn ensure_association(
        dr: &StepCtx,
        rt: &Found,
        table: Option<&RouteTable>,
        subnet: &Found,
    ) -> Result<()> {
        let ec2 = dr.aws().ec2();
        let name = format!("{} -> {}", subnet.id, rt.id);
        let existing = table
            .and_then(|t| {
                t.associations()
                    .iter()
                    .find(|a| a.subnet_id() == Some(subnet.id.as_str()))
            })
            .and_then(|a| a.route_table_association_id())
            .map(|id| Found::new(id).attr("route_table_id", &rt.id));
        dr.ensure(
            ASSOCIATION,
            &name,
            || async { Ok(existing) },
            || async {
                let out = ec2
                    .associate_route_table()
                    .route_table_id(&rt.id)
                    .subnet_id(&subnet.id)
                    .send()
                    .await
                    .aws("ec2:AssociateRouteTable", &name)?;
                Ok(Found::new(
                    out.association_id()
                        .context("AssociateRouteTable returned no ID")?,
                )
                .attr("route_table_id", &rt.id))
            },
        )
        .await?;
        Ok(())
    }

    /// This stack's live peering connection from `vpc_id`, if any. Filters narrow the search
    /// on AWS; every match is checked here too (moto ignores the filters).
    async fn find_peering(ctx: &StepCtx, name: &str, vpc_id: &str) -> Result<Option<Found>> {
        let out = ctx
            .aws()
            .ec2()
            .describe_vpc_peering_connections()
            .set_filters(Some(vec![
                filter("tag:Name", name),
                filter(&format!("tag:{STACK_TAG}"), ctx.suffix()),
                filter("requester-vpc-info.vpc-id", vpc_id),
            ]))
            .send()
            .await
            .aws("ec2:DescribeVpcPeeringConnections", name)?;
        Ok(out
            .vpc_peering_connections()
            .iter()
            .find(|p| {
                Network::is_ours(ctx, p.tags(), name)
                    && p.requester_vpc_info().and_then(|v| v.vpc_id()) == Some(vpc_id)
                    && !DEAD_STATES.contains(&status_of(p).as_str())
            })
            .and_then(|p| p.vpc_peering_connection_id())
            .map(Found::new))
    }

    /// The peering connection as the DR region sees it: `None` until the request arrives.
    async fn peering_in(dr: &StepCtx, id: &str) -> Result<Option<VpcPeeringConnection>> {
        let out = dr
            .aws()
            .ec2()
            .describe_vpc_peering_connections()
            .vpc_peering_connection_ids(id)
            .send()
            .await
            .aws("ec2:DescribeVpcPeeringConnections", id)
            .not_found_ok()?;
        Ok(out.and_then(|o| o.vpc_peering_connections().first().cloned()))
    }

    /// Requests the peering (from the stack's region), accepts it in the DR region, and waits
    /// until it is active.
    async fn ensure_peering(
        ctx: &StepCtx,
        dr: &StepCtx,
        vpc_id: &str,
        dr_vpc: &Found,
    ) -> Result<Found> {
        let name = ctx.names().with_purpose("pcx", "dr");
        let ec2 = ctx.aws().ec2();
        let pcx = ctx
            .ensure(
                PEERING,
                &name,
                || async {
                    if is_pending(vpc_id) {
                        return Ok(None);
                    }
                    Self::find_peering(ctx, &name, vpc_id).await
                },
                || async {
                    let out = ec2
                        .create_vpc_peering_connection()
                        .vpc_id(vpc_id)
                        .peer_vpc_id(&dr_vpc.id)
                        .peer_region(dr.region())
                        .tag_specifications(Network::tag_spec(
                            ctx,
                            ResourceType::VpcPeeringConnection,
                            &name,
                        ))
                        .send()
                        .await
                        .aws("ec2:CreateVpcPeeringConnection", &name)?;
                    let id = out
                        .vpc_peering_connection()
                        .and_then(|p| p.vpc_peering_connection_id())
                        .context("CreateVpcPeeringConnection returned no ID")?;
                    Ok(Found::new(id).attr("peer_region", dr.region()))
                },
            )
            .await?;
        if pcx.is_pending() {
            return Ok(pcx);
        }
        let what = format!("peering {} to reach {}", pcx.id, dr.region());
        let status = dr
            .wait_for(&what, PEERING_TIMEOUT, || async {
                Ok(Self::peering_in(dr, &pcx.id)
                    .await?
                    .map(|p| status_of(&p))
                    .filter(|s| s != "initiating-request"))
            })
            .await?;
        match status.as_str() {
            "active" => return Ok(pcx),
            "pending-acceptance" => {
                let ec2 = dr.aws().ec2();
                let accept = format!("accept in {}", dr.region());
                ctx.change(PEERING, &name, &accept, || async {
                    ec2.accept_vpc_peering_connection()
                        .vpc_peering_connection_id(&pcx.id)
                        .send()
                        .await
                        .aws("ec2:AcceptVpcPeeringConnection", &pcx.id)?;
                    // Tags are per side: the accepter's view gets the stack's tags too.
                    let tags: Vec<Tag> = dr
                        .tags(Some(&name))
                        .into_iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build())
                        .collect();
                    ec2.create_tags()
                        .resources(&pcx.id)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .aws("ec2:CreateTags", &pcx.id)?;
                    Ok(())
                })
                .await?;
            }
            "provisioning" => {}
            other => bail!(
                "VPC peering {} is `{other}` in {}; run `up` again to request a new one",
                pcx.id,
                dr.region()
            ),
        }
        if ctx.is_plan() {
            return Ok(pcx);
        }
        dr.wait_for(
            &format!("peering {} to become active", pcx.id),
            PEERING_TIMEOUT,
            || async {
                let p = Self::peering_in(dr, &pcx.id).await?;
                match p.as_ref().map(status_of).as_deref() {
                    Some("active") => Ok(Some(())),
                    Some(s) if DEAD_STATES.contains(&s) => {
                        bail!("VPC peering {} became `{s}` in {}", pcx.id, dr.region())
                    }
                    _ => Ok(None),
                }
            },
        )
        .await?;
        Ok(pcx)
    }

    /// A route to `dest` through the peering connection in a route table whose routes are
    /// `routes`; a route to `dest` that leads elsewhere (an earlier, deleted peering) is
    /// pointed at this one.
    async fn ensure_route(
        c: &StepCtx,
        rt_id: &str,
        routes: &[Route],
        dest: &str,
        pcx: &Found,
    ) -> Result<()> {
        let ec2 = c.aws().ec2();
        let id = format!("{rt_id}|{dest}");
        let name = format!("{dest} via {} in {rt_id}", pcx.id);
        let current = routes
            .iter()
            .find(|r| r.destination_cidr_block() == Some(dest));
        let found = || {
            Found::new(&id)
                .attr("route_table_id", rt_id)
                .attr("destination", dest)
        };
        c.ensure(
            ROUTE,
            &name,
            || async { Ok(current.is_some().then(found)) },
            || async {
                ec2.create_route()
                    .route_table_id(rt_id)
                    .destination_cidr_block(dest)
                    .vpc_peering_connection_id(&pcx.id)
                    .send()
                    .await
                    .aws("ec2:CreateRoute", &id)?;
                Ok(found())
            },
        )
        .await?;
        let elsewhere =
            current.is_some_and(|r| r.vpc_peering_connection_id() != Some(pcx.id.as_str()));
        if elsewhere && !pcx.is_pending() {
            c.change(
                ROUTE,
                &name,
                &format!("route through {}", pcx.id),
                || async {
                    ec2.replace_route()
                        .route_table_id(rt_id)
                        .destination_cidr_block(dest)
                        .vpc_peering_connection_id(&pcx.id)
                        .send()
                        .await
                        .aws("ec2:ReplaceRoute", &id)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok(())
    }

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

    /// Deletes everything recorded, in every region it was recorded in.
    async fn remove(ctx: &StepCtx) -> Result<()> {
        let regions = ctx.record_regions();
        for region in &regions {
            let c = ctx.in_region(region);
            let ec2 = c.aws().ec2();
            c.delete_recorded(ROUTE, |rec| async move {
                ec2.delete_route()
                    .route_table_id(rec.attrs.get("route_table_id").cloned().unwrap_or_default())
                    .destination_cidr_block(
                        rec.attrs.get("destination").cloned().unwrap_or_default(),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteRoute", &rec.id)
            })
            .await?;
        }
        for region in &regions {
            let c = ctx.in_region(region);
            let ec2 = c.aws().ec2();
            c.delete_recorded(PEERING, |rec| async move {
                ec2.delete_vpc_peering_connection()
                    .vpc_peering_connection_id(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteVpcPeeringConnection", &rec.id)
            })
            .await?;
        }
        for region in &regions {
            let c = ctx.in_region(region);
            let ec2 = c.aws().ec2();
            c.delete_recorded(ASSOCIATION, |rec| async move {
                ec2.disassociate_route_table()
                    .association_id(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DisassociateRouteTable", &rec.id)
            })
            .await?;
            c.delete_recorded(SUBNET, |rec| async move {
                ec2.delete_subnet()
                    .subnet_id(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteSubnet", &rec.id)
            })
            .await?;
            c.delete_recorded(ROUTE_TABLE, |rec| async move {
                ec2.delete_route_table()
                    .route_table_id(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteRouteTable", &rec.id)
            })
            .await?;
            // A peering connection that is still being deleted can hold the VPC for a moment:
            // delete_recorded retries while AWS reports the dependency.
            c.delete_recorded(VPC, |rec| async move {
                ec2.delete_vpc()
                    .vpc_id(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteVpc", &rec.id)
            })
            .await?;
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
            if ctx.sh.state.resources(Some(ctx.step), None).is_empty() {
                return Ok(());
            }
            let name = ctx.names().with_purpose("vpc", "dr");
            return ctx
                .change(VPC, &name, "remove: dr.region is not set", || {
                    Self::remove(ctx)
                })
                .await;
        };
        let dr = ctx.in_region(&region.0);
        let zones = Self::zones(&dr).await?;
        let vpc = Self::ensure_vpc(&dr).await?;
        let mut subnets = Vec::new();
        for (i, zone) in zones.iter().enumerate() {
            subnets.push(Self::ensure_subnet(&dr, &vpc, i as u8, zone).await?);
        }
        let (rt, table) = Self::ensure_route_table(&dr, &vpc).await?;
        for subnet in &subnets {
            Self::ensure_association(&dr, &rt, table.as_ref(), subnet).await?;
        }

        let vpc_id = ctx.input_str(network::OUT_VPC_ID)?;
        let pcx = Self::ensure_peering(ctx, &dr, &vpc_id, &vpc).await?;

        // Both ways: the stack's internal subnets to the DR block, the DR subnets back.
        let main_cidr = ctx.cfg().network.cidr.0.to_string();
        let dr_cidr = ctx.cfg().dr.cidr.0.to_string();
        let internal = ctx.input_list(network::OUT_INTERNAL_ROUTE_TABLE_IDS)?;
        for (rt_id, routes) in Self::routes_of(ctx, &internal).await? {
            Self::ensure_route(ctx, &rt_id, &routes, &dr_cidr, &pcx).await?;
        }
        let dr_routes = table.map(|t| t.routes().to_vec()).unwrap_or_default();
        Self::ensure_route(&dr, &rt.id, &dr_routes, &main_cidr, &pcx).await?;

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

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        Self::remove(ctx).await
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let ec2 = ctx.aws().ec2();
        let id = rec.id.as_str();
        Ok(match rec.kind.as_str() {
            VPC => ec2
                .describe_vpcs()
                .vpc_ids(id)
                .send()
                .await
                .aws("ec2:DescribeVpcs", id)
                .not_found_ok()?
                .and_then(|o| o.vpcs().first().map(|_| "exists".to_string())),
            SUBNET => ec2
                .describe_subnets()
                .subnet_ids(id)
                .send()
                .await
                .aws("ec2:DescribeSubnets", id)
                .not_found_ok()?
                .and_then(|o| o.subnets().first().map(|_| "exists".to_string())),
            PEERING => Self::peering_in(ctx, id)
                .await?
                .map(|p| status_of(&p))
                .filter(|s| !DEAD_STATES.contains(&s.as_str())),
            ROUTE_TABLE | ROUTE | ASSOCIATION => {
                let rt = rec
                    .attrs
                    .get("route_table_id")
                    .map(String::as_str)
                    .unwrap_or(id);
                ec2.describe_route_tables()
                    .route_table_ids(rt)
                    .send()
                    .await
                    .aws("ec2:DescribeRouteTables", rt)
                    .not_found_ok()?
                    .and_then(|o| o.route_tables().first().map(|_| "exists".to_string()))
            }
            _ => Some("exists".to_string()),
        })
    }
}
