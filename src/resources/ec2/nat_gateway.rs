//! `ec2:nat-gateway`: a NAT gateway in a public subnet with an Elastic IP, waited for until
//! it is available (routes through a pending NAT gateway black-hole traffic), and on
//! teardown deleted and waited for until it is gone: its ENI holds the subnet, its EIP
//! cannot be released before, and the internet gateway cannot be detached while its public
//! address is mapped.
//!
//! Deleted NAT gateways stay visible (state `deleted`) for about an hour, so only live ones
//! are found, and a `deleted` one counts as missing.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, NatGatewayState, ResourceType};

use super::{is_ours, named, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:nat-gateway";

/// How long to wait for a NAT gateway (AWS: 1-2 minutes to create, about 1 to delete).
const TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct NatGateway;

/// A NAT gateway the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct NatSpec<'a> {
    /// The `Name` tag.
    pub name: &'a str,
    /// The public subnet it lives in.
    pub subnet: &'a Found,
    /// Its Elastic IP (allocation ID).
    pub eip: &'a Found,
}

/// The NAT gateway `spec`, recorded with its EIP (`allocation_id`) and subnet; waits until
/// it is available.
pub async fn ensure(ctx: &StepCtx, spec: &NatSpec<'_>) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let NatSpec { name, subnet, eip } = *spec;
    let mut state = None;
    let nat = ctx
        .ensure(
            KIND,
            name,
            || async {
                if subnet.is_pending() {
                    return Ok(None);
                }
                // Deleted NAT gateways stay visible for about an hour; only live ones count.
                let mut filters = named(ctx, name);
                filters.push(
                    Filter::builder()
                        .name("state")
                        .values("pending")
                        .values("available")
                        .build(),
                );
                let out = ec2
                    .describe_nat_gateways()
                    .set_filter(Some(filters))
                    .send()
                    .await
                    .aws("ec2:DescribeNatGateways", name)?;
                let live = [NatGatewayState::Pending, NatGatewayState::Available];
                let ours = out.nat_gateways().iter().find(|n| {
                    is_ours(ctx, n.tags(), name) && n.state().is_some_and(|s| live.contains(s))
                });
                Ok(ours.map(|n| {
                    state = n.state().cloned();
                    Found::new(n.nat_gateway_id().unwrap_or_default())
                        .attr("allocation_id", &eip.id)
                        .attr("subnet_id", &subnet.id)
                }))
            },
            || async {
                let out = ec2
                    .create_nat_gateway()
                    .subnet_id(&subnet.id)
                    .allocation_id(&eip.id)
                    .tag_specifications(tag_spec(ctx, ResourceType::Natgateway, name))
                    .send()
                    .await
                    .aws("ec2:CreateNatGateway", name)?;
                let id = out
                    .nat_gateway()
                    .and_then(|n| n.nat_gateway_id())
                    .context("CreateNatGateway returned no ID")?;
                Ok(Found::new(id)
                    .attr("allocation_id", &eip.id)
                    .attr("subnet_id", &subnet.id))
            },
        )
        .await?;
    if !nat.is_pending() && state != Some(NatGatewayState::Available) {
        wait(ctx, &nat.id, NatGatewayState::Available).await?;
    }
    Ok(nat)
}

/// Waits until a NAT gateway reaches `target` (`available` or `deleted`; a vanished one
/// counts as deleted).
pub async fn wait(ctx: &StepCtx, id: &str, target: NatGatewayState) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.wait_for(
        &format!("NAT gateway {id} to be {}", target.as_str()),
        TIMEOUT,
        || async {
            let out = ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .aws("ec2:DescribeNatGateways", id)
                .not_found_ok()?;
            let state = out
                .as_ref()
                .and_then(|o| o.nat_gateways().first())
                .and_then(|n| n.state().cloned());
            match (state, &target) {
                (None, NatGatewayState::Deleted) => Ok(Some(())),
                (Some(s), t) if s == *t => Ok(Some(())),
                (Some(NatGatewayState::Failed), _) => {
                    let reason = out
                        .as_ref()
                        .and_then(|o| o.nat_gateways().first())
                        .and_then(|n| n.failure_message())
                        .unwrap_or("no reason given");
                    bail!("NAT gateway {id} failed: {reason}")
                }
                (None, _) => bail!("NAT gateway {id} disappeared"),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// Asks AWS to delete the NAT gateway `id` ("not found" counts as deleted); it is gone only
/// once [`wait`] for `deleted` returns.
async fn request_delete(ctx: &StepCtx, id: &str) -> Result<()> {
    ctx.check_cancelled()?;
    ctx.aws()
        .ec2()
        .delete_nat_gateway()
        .nat_gateway_id(id)
        .send()
        .await
        .aws("ec2:DeleteNatGateway", id)
        .not_found_ok()?;
    Ok(())
}

/// Deletes the NAT gateway `id` and waits until it is gone.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    request_delete(ctx, id).await?;
    wait(ctx, id, NatGatewayState::Deleted).await
}

#[async_trait]
impl Provider for NatGateway {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await
            .aws("ec2:DescribeNatGateways", id)
            .not_found_ok()?
            .and_then(|o| {
                o.nat_gateways()
                    .first()
                    .and_then(|n| n.state().map(|s| s.as_str().to_string()))
            })
            .filter(|s| s != "deleted"))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
