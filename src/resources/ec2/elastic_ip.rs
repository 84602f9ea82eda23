//! `ec2:elastic-ip`: an Elastic IP address (the public address of a NAT gateway), found by
//! name or allocated, released on teardown.
//!
//! An address still associated with a NAT gateway cannot be released: teardown deletes the
//! NAT gateways and waits until they are gone first (see [`super::nat_gateway`]).

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};

use super::{is_ours, named, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:elastic-ip";

pub struct ElasticIp;

/// The VPC address `name` (its allocation ID).
pub async fn ensure(ctx: &StepCtx, name: &str) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    ctx.ensure(
        KIND,
        name,
        || async {
            let out = ec2
                .describe_addresses()
                .set_filters(Some(named(ctx, name)))
                .send()
                .await
                .aws("ec2:DescribeAddresses", name)?;
            Ok(out
                .addresses()
                .iter()
                .find(|a| is_ours(ctx, a.tags(), name))
                .and_then(|a| a.allocation_id())
                .map(Found::new))
        },
        || async {
            let out = ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tag_spec(ctx, ResourceType::ElasticIp, name))
                .send()
                .await
                .aws("ec2:AllocateAddress", name)?;
            Ok(Found::new(
                out.allocation_id()
                    .context("AllocateAddress returned no ID")?,
            ))
        },
    )
    .await
}

/// Releases the address `allocation_id`, retrying while AWS reports it still in use;
/// "not found" counts as released.
pub async fn delete(ctx: &StepCtx, allocation_id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {allocation_id}"), || async {
        ec2.release_address()
            .allocation_id(allocation_id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:ReleaseAddress", allocation_id)
    })
    .await
}

#[async_trait]
impl Provider for ElasticIp {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_addresses()
            .allocation_ids(id)
            .send()
            .await
            .aws("ec2:DescribeAddresses", id)
            .not_found_ok()?
            .and_then(|o| {
                o.addresses()
                    .first()
                    .map(|a| a.public_ip().unwrap_or_default().to_string())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
