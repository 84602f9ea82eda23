//! Amazon EC2 networking resource types (the network and DR network steps' VPCs, subnets,
//! gateways, route tables, security groups and endpoints), plus what they share: the stack's
//! tags as EC2 tags, the by-name lookup, the region's availability zones.
//!
//! EC2 resources have no name of their own: the stack finds its resources by their `Name`
//! and stack tags, and checks every match itself (see [`is_ours`]).

use anyhow::{bail, Result};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::aws::AwsResultExt;
use crate::naming::STACK_TAG;
use crate::step::StepCtx;

pub mod elastic_ip;
pub mod flow_log;
pub mod internet_gateway;
pub mod nat_gateway;
pub mod network_interface;
pub mod route;
pub mod route_table;
pub mod route_table_association;
pub mod security_group;
pub mod security_group_rule;
pub mod subnet;
pub mod vpc;
pub mod vpc_endpoint;
pub mod vpc_peering_connection;

/// A filter on `name` with one value.
pub fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The stack's tags (and `Name`) as EC2 tags.
pub fn ec2_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The stack's tags (and `Name`) for a create call of resource type `rt`.
pub fn tag_spec(ctx: &StepCtx, rt: ResourceType, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(ec2_tags(ctx, name)))
        .build()
}

/// Whether a resource's tags mark it as this stack's resource `name`. Server-side filters
/// narrow the search, but every match is checked here too: moto, for one, ignores tag
/// filters on DescribeNatGateways when a `state` filter is also given, and adopting
/// another stack's resource would be far worse than a duplicate.
pub fn is_ours(ctx: &StepCtx, tags: &[Tag], name: &str) -> bool {
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
    };
    tag("Name") == Some(name) && tag(STACK_TAG) == Some(ctx.suffix())
}

/// Filters that find this stack's resource with the given Name tag.
pub fn named(ctx: &StepCtx, name: &str) -> Vec<Filter> {
    vec![
        filter("tag:Name", name),
        filter(&format!("tag:{STACK_TAG}"), ctx.suffix()),
    ]
}

/// `listed` (each checked to be an available zone of the context's region), else the
/// region's first `want` available zones. `section` names the config section in errors.
pub async fn zones(
    ctx: &StepCtx,
    want: usize,
    listed: Option<&[String]>,
    section: &str,
) -> Result<Vec<String>> {
    let out = ctx
        .aws()
        .ec2()
        .describe_availability_zones()
        .filters(filter("state", "available"))
        .send()
        .await
        .aws("ec2:DescribeAvailabilityZones", ctx.region())?;
    let mut available: Vec<String> = out
        .availability_zones()
        .iter()
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    available.sort();
    if let Some(listed) = listed {
        if let Some(bad) = listed.iter().find(|z| !available.contains(z)) {
            bail!(
                "{section}.availability_zones: `{bad}` is not an available zone of {}; \
                 available: {}",
                ctx.region(),
                available.join(", ")
            );
        }
        return Ok(listed.to_vec());
    }
    if available.len() < want {
        bail!(
            "region {} has {} available zones, {section}.az_count asks for {want}",
            ctx.region(),
            available.len()
        );
    }
    available.truncate(want);
    Ok(available)
}

/// The ID of the AWS-managed prefix list `name` (e.g. CloudFront's origin-facing servers)
/// in the region; an error naming the list when the region (or the emulator) does not have
/// it. `why` says what needs it.
pub async fn managed_prefix_list(ctx: &StepCtx, name: &str, why: &str) -> Result<String> {
    let out = ctx
        .aws()
        .ec2()
        .describe_managed_prefix_lists()
        .filters(filter("prefix-list-name", name))
        .send()
        .await
        .aws("ec2:DescribeManagedPrefixLists", name)?;
    let lists: Vec<_> = out
        .prefix_lists()
        .iter()
        .filter(|p| p.prefix_list_name() == Some(name))
        .collect();
    // AWS-managed lists are owned by `AWS`; a customer list of the same name would let
    // whoever edits it in.
    let list = lists
        .iter()
        .find(|p| p.owner_id() == Some("AWS"))
        .or(lists.first());
    match list.and_then(|p| p.prefix_list_id()) {
        Some(id) => Ok(id.to_string()),
        None => bail!(
            "the AWS-managed prefix list {name} does not exist in {} \
             (ec2:DescribeManagedPrefixLists filtered by prefix-list-name found none): {why}",
            ctx.region()
        ),
    }
}
