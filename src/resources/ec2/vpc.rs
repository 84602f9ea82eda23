//! `ec2:vpc`: the stack's VPC and the DR region's, found by name, created with DNS support
//! and hostnames on, deleted last (once everything in it is gone).
//!
//! A VPC's CIDR block cannot change: an existing VPC with another block is an error rather
//! than a replacement, which would take every resource in it along.

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};

use super::{is_ours, named, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:vpc";

pub struct Vpc;

/// The VPC `name` with block `cidr` (`field`: the config field it comes from, for the
/// error when an existing VPC has another block), DNS support and hostnames on.
pub async fn ensure(ctx: &StepCtx, name: &str, cidr: &str, field: &str) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let name = name.to_string();
    ctx.ensure(
        KIND,
        &name,
        || async {
            let out = ec2
                .describe_vpcs()
                .set_filters(Some(named(ctx, &name)))
                .send()
                .await
                .aws("ec2:DescribeVpcs", &name)?;
            let vpc = out.vpcs().iter().find(|v| is_ours(ctx, v.tags(), &name));
            let found = vpc.and_then(|v| v.vpc_id()).map(Found::new);
            if let (Some(v), Some(got)) = (&found, vpc.and_then(|v| v.cidr_block())) {
                if got != cidr {
                    bail!(
                        "VPC {name} ({}) in {} exists with CIDR {got}, but {field} is \
                         {cidr}; a VPC's CIDR cannot change: run `down` first or keep the \
                         old CIDR",
                        v.id,
                        ctx.region()
                    );
                }
            }
            Ok(found)
        },
        || async {
            let out = ec2
                .create_vpc()
                .cidr_block(cidr)
                .tag_specifications(tag_spec(ctx, ResourceType::Vpc, &name))
                .send()
                .await
                .aws("ec2:CreateVpc", &name)?;
            let id = out
                .vpc()
                .and_then(|v| v.vpc_id())
                .context("CreateVpc returned no ID")?;
            ctx.record(KIND, &name, &Found::new(id))?;
            // Interface endpoints and service discovery need DNS hostnames; the two
            // attributes must be set in separate calls.
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_support(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .aws("ec2:ModifyVpcAttribute", id)?;
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
                .send()
                .await
                .aws("ec2:ModifyVpcAttribute", id)?;
            Ok(Found::new(id))
        },
    )
    .await
}

/// Deletes the VPC `id`, retrying while something still holds it (a peering connection
/// being deleted, ENIs being released); "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteVpc", id)
    })
    .await
}

#[async_trait]
impl Provider for Vpc {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_vpcs()
            .vpc_ids(id)
            .send()
            .await
            .aws("ec2:DescribeVpcs", id)
            .not_found_ok()?
            .and_then(|o| {
                o.vpcs().first().map(|v| {
                    v.state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                })
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
