//! `ec2:vpc-peering-connection`: a peering connection between a VPC in one region and a VPC
//! in another, recorded in the requester's region with the peer's region (`peer_region`).
//!
//! The peering connection is requested from the requester's region and accepted in the
//! accepter's: AWS refuses to accept a cross-region peering from the requester's side, and a
//! new request takes a moment to appear in the accepter's region, so it is polled for there.
//! Tags are per side: the accepter's view is tagged when it is accepted. A connection in a
//! dead state (deleted, rejected, failed, expired) never becomes usable again and counts as
//! missing.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcPeeringConnection};

use super::{ec2_tags, filter, is_ours, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "ec2:vpc-peering-connection";

/// How long a new peering request may take to reach the DR region and become active (AWS:
/// seconds to a couple of minutes across regions).
const PEERING_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Peering states from which a connection never becomes usable again.
const DEAD_STATES: [&str; 5] = ["deleted", "deleting", "rejected", "failed", "expired"];

pub struct PeeringConnection;

fn status_of(p: &VpcPeeringConnection) -> String {
    p.status()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

/// This stack's live peering connection from `vpc_id`, if any. Filters narrow the search
/// on AWS; every match is checked here too (moto ignores the filters).
async fn find(ctx: &StepCtx, name: &str, vpc_id: &str) -> Result<Option<Found>> {
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
            is_ours(ctx, p.tags(), name)
                && p.requester_vpc_info().and_then(|v| v.vpc_id()) == Some(vpc_id)
                && !DEAD_STATES.contains(&status_of(p).as_str())
        })
        .and_then(|p| p.vpc_peering_connection_id())
        .map(Found::new))
}

/// The peering connection as the DR region sees it: `None` until the request arrives.
pub async fn get(dr: &StepCtx, id: &str) -> Result<Option<VpcPeeringConnection>> {
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

/// The peering connection `name` from `vpc_id` (in `ctx`'s region) to `dr_vpc` (in `dr`'s):
/// requested from the requester's region, accepted in the accepter's, and waited for until
/// it is active.
pub async fn ensure(
    ctx: &StepCtx,
    dr: &StepCtx,
    name: &str,
    vpc_id: &str,
    dr_vpc: &Found,
) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let pcx = ctx
        .ensure(
            KIND,
            name,
            || async {
                if is_pending(vpc_id) {
                    return Ok(None);
                }
                find(ctx, name, vpc_id).await
            },
            || async {
                let out = ec2
                    .create_vpc_peering_connection()
                    .vpc_id(vpc_id)
                    .peer_vpc_id(&dr_vpc.id)
                    .peer_region(dr.region())
                    .tag_specifications(tag_spec(ctx, ResourceType::VpcPeeringConnection, name))
                    .send()
                    .await
                    .aws("ec2:CreateVpcPeeringConnection", name)?;
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
            Ok(get(dr, &pcx.id)
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
            ctx.change(KIND, name, &accept, || async {
                ec2.accept_vpc_peering_connection()
                    .vpc_peering_connection_id(&pcx.id)
                    .send()
                    .await
                    .aws("ec2:AcceptVpcPeeringConnection", &pcx.id)?;
                // Tags are per side: the accepter's view gets the stack's tags too.
                ec2.create_tags()
                    .resources(&pcx.id)
                    .set_tags(Some(ec2_tags(dr, name)))
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
            let p = get(dr, &pcx.id).await?;
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

/// Deletes the peering connection `id`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.delete_vpc_peering_connection()
            .vpc_peering_connection_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteVpcPeeringConnection", id)
    })
    .await
}

#[async_trait]
impl Provider for PeeringConnection {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(get(ctx, &rec.id)
            .await?
            .map(|p| status_of(&p))
            .filter(|s| !DEAD_STATES.contains(&s.as_str())))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
