//! `ec2:subnet`: a subnet of a VPC, found by name in that VPC or created, recorded with its
//! tier and zone (steps that place workloads read them).
//!
//! Deletion is retried while AWS reports a dependency: the ENIs of a deleted NAT gateway,
//! load balancer or Lambda function are released lazily and hold their subnet for minutes.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;

use super::{filter, is_ours, named, tag_spec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:subnet";

pub struct Subnet;

/// A subnet the stack wants.
#[derive(Debug, Clone)]
pub struct SubnetSpec<'a> {
    /// The `Name` tag.
    pub name: &'a str,
    /// Its block, inside the VPC's.
    pub cidr: &'a str,
    pub zone: &'a str,
    /// Recorded as the `tier` attribute (`public`, `private`, `isolated`).
    pub tier: &'a str,
}

/// The subnet `spec` of `vpc`, recorded with its tier and zone.
pub async fn ensure(ctx: &StepCtx, vpc: &Found, spec: &SubnetSpec<'_>) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let SubnetSpec {
        name,
        cidr,
        zone,
        tier,
    } = *spec;
    ctx.ensure(
        KIND,
        name,
        || async {
            if vpc.is_pending() {
                return Ok(None);
            }
            let mut filters = named(ctx, name);
            filters.push(filter("vpc-id", &vpc.id));
            let out = ec2
                .describe_subnets()
                .set_filters(Some(filters))
                .send()
                .await
                .aws("ec2:DescribeSubnets", name)?;
            Ok(out
                .subnets()
                .iter()
                .find(|s| is_ours(ctx, s.tags(), name) && s.vpc_id() == Some(vpc.id.as_str()))
                .and_then(|s| s.subnet_id())
                .map(|id| Found::new(id).attr("tier", tier).attr("az", zone)))
        },
        || async {
            let out = ec2
                .create_subnet()
                .vpc_id(&vpc.id)
                .cidr_block(cidr)
                .availability_zone(zone)
                .tag_specifications(tag_spec(ctx, ResourceType::Subnet, name))
                .send()
                .await
                .aws("ec2:CreateSubnet", name)?;
            let id = out
                .subnet()
                .and_then(|s| s.subnet_id())
                .context("CreateSubnet returned no ID")?;
            Ok(Found::new(id).attr("tier", tier).attr("az", zone))
        },
    )
    .await
}

/// Deletes the subnet `id`, retrying while lingering ENIs hold it; "not found" counts as
/// deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteSubnet", id)
    })
    .await
}

#[async_trait]
impl Provider for Subnet {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_subnets()
            .subnet_ids(id)
            .send()
            .await
            .aws("ec2:DescribeSubnets", id)
            .not_found_ok()?
            .and_then(|o| {
                o.subnets().first().map(|s| {
                    s.state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                })
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
