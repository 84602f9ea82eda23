//! `ec2:internet-gateway`: the VPC's internet gateway, created and attached in one go (an
//! existing one found detached is attached), detached and deleted on teardown.
//!
//! Detaching is refused while a public address in the VPC is still mapped, e.g. by a NAT
//! gateway's ENI that is being released: teardown deletes the NAT gateways (and waits until
//! they are gone) and releases their EIPs first, and retries while AWS reports the
//! dependency.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;

use super::{is_ours, named, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:internet-gateway";

pub struct InternetGateway;

/// The internet gateway `name`, attached to `vpc`; recorded with the VPC's ID (`vpc_id`),
/// which the delete needs to detach it.
pub async fn ensure(ctx: &StepCtx, name: &str, vpc: &Found) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    // Attached already (found attached, or attached as part of creating it).
    let attached = AtomicBool::new(false);
    let igw = ctx
        .ensure(
            KIND,
            name,
            || async {
                let out = ec2
                    .describe_internet_gateways()
                    .set_filters(Some(named(ctx, name)))
                    .send()
                    .await
                    .aws("ec2:DescribeInternetGateways", name)?;
                let ours = out
                    .internet_gateways()
                    .iter()
                    .find(|g| is_ours(ctx, g.tags(), name));
                Ok(ours.map(|g| {
                    attached.store(
                        g.attachments()
                            .iter()
                            .any(|a| a.vpc_id() == Some(vpc.id.as_str())),
                        Ordering::Relaxed,
                    );
                    Found::new(g.internet_gateway_id().unwrap_or_default()).attr("vpc_id", &vpc.id)
                }))
            },
            || async {
                let out = ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(ctx, ResourceType::InternetGateway, name))
                    .send()
                    .await
                    .aws("ec2:CreateInternetGateway", name)?;
                let id = out
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .context("CreateInternetGateway returned no ID")?;
                let found = Found::new(id).attr("vpc_id", &vpc.id);
                ctx.record(KIND, name, &found)?;
                attached.store(true, Ordering::Relaxed);
                ec2.attach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(&vpc.id)
                    .send()
                    .await
                    .aws("ec2:AttachInternetGateway", id)?;
                Ok(found)
            },
        )
        .await?;
    if !attached.load(Ordering::Relaxed) && !igw.is_pending() && !vpc.is_pending() {
        ctx.change(KIND, name, "attach to the VPC", || async {
            ec2.attach_internet_gateway()
                .internet_gateway_id(&igw.id)
                .vpc_id(&vpc.id)
                .send()
                .await
                .aws("ec2:AttachInternetGateway", &igw.id)?;
            Ok(())
        })
        .await?;
    }
    Ok(igw)
}

/// Detaches the gateway `id` from `vpc_id` (if known; one already detached is fine) and
/// deletes it, retrying while a mapped public address holds it; "not found" counts as
/// deleted.
pub async fn delete(ctx: &StepCtx, id: &str, vpc_id: Option<&str>) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        if let Some(vpc_id) = vpc_id {
            let detached = ec2
                .detach_internet_gateway()
                .internet_gateway_id(id)
                .vpc_id(vpc_id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DetachInternetGateway", id);
            match detached {
                Err(e) if e.code.as_deref() == Some("Gateway.NotAttached") => {}
                other => other?,
            }
        }
        ec2.delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteInternetGateway", id)
    })
    .await
}

#[async_trait]
impl Provider for InternetGateway {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_internet_gateways()
            .internet_gateway_ids(id)
            .send()
            .await
            .aws("ec2:DescribeInternetGateways", id)
            .not_found_ok()?
            .and_then(|o| {
                o.internet_gateways().first().map(|g| {
                    if g.attachments().is_empty() {
                        "detached".to_string()
                    } else {
                        "attached".to_string()
                    }
                })
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id, rec.attrs.get("vpc_id").map(String::as_str)).await
    }
}
