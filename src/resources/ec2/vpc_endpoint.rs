//! `ec2:vpc-endpoint`: gateway endpoints (S3, DynamoDB: entries in route tables) and
//! interface endpoints (ENIs in subnets, behind a security group, with private DNS so that
//! the SDKs' default hostnames resolve to them). An endpoint is found by its service in the
//! VPC, not by name: AWS allows one per service and VPC that matters, and a deleted one
//! stays visible for a while.

use std::sync::Mutex;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};

use super::{filter, tag_spec};
use crate::aws::{AwsError, AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:vpc-endpoint";

pub struct Endpoint;

/// The live endpoint of `service_name` in `vpc`, if any.
pub async fn find(ctx: &StepCtx, vpc: &Found, service_name: &str) -> Result<Option<VpcEndpoint>> {
    if vpc.is_pending() {
        return Ok(None);
    }
    let out = ctx
        .aws()
        .ec2()
        .describe_vpc_endpoints()
        .filters(filter("vpc-id", &vpc.id))
        .filters(filter("service-name", service_name))
        .send()
        .await
        .aws("ec2:DescribeVpcEndpoints", service_name)?;
    Ok(out
        .vpc_endpoints()
        .iter()
        .find(|e| {
            e.vpc_id() == Some(vpc.id.as_str())
                && e.service_name() == Some(service_name)
                && !matches!(
                    e.state().map(|s| s.as_str()),
                    Some("deleted" | "deleting" | "Deleted" | "Deleting")
                )
        })
        .cloned())
}

/// An interface endpoint `name` of `service_name` (e.g. `com.amazonaws.<region>.ecr.api`)
/// in `subnets`, behind the security group `sg`, with private DNS.
pub async fn ensure_interface(
    ctx: &StepCtx,
    vpc: &Found,
    name: &str,
    service_name: &str,
    subnets: &[&Found],
    sg: &Found,
) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    ctx.ensure(
        KIND,
        name,
        || async {
            let live = find(ctx, vpc, service_name).await?;
            Ok(live.map(|e| {
                Found::new(e.vpc_endpoint_id().unwrap_or_default()).attr("type", "interface")
            }))
        },
        || async {
            let out = ec2
                .create_vpc_endpoint()
                .vpc_id(&vpc.id)
                .service_name(service_name)
                .vpc_endpoint_type(VpcEndpointType::Interface)
                .set_subnet_ids(Some(subnets.iter().map(|s| s.id.clone()).collect()))
                .security_group_ids(&sg.id)
                .private_dns_enabled(true)
                .tag_specifications(tag_spec(ctx, ResourceType::VpcEndpoint, name))
                .send()
                .await
                .aws("ec2:CreateVpcEndpoint", name)?;
            let id = out
                .vpc_endpoint()
                .and_then(|e| e.vpc_endpoint_id())
                .context("CreateVpcEndpoint returned no ID")?;
            Ok(Found::new(id).attr("type", "interface"))
        },
    )
    .await
}

/// A gateway endpoint `name` of `service_name` serving `route_tables`; tables it does not
/// serve yet are added to an existing one.
pub async fn ensure_gateway(
    ctx: &StepCtx,
    vpc: &Found,
    name: &str,
    service_name: &str,
    route_tables: &[&Found],
) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    // Route tables the endpoint already serves (set by whichever closure runs).
    let attached: Mutex<Vec<String>> = Default::default();
    let ep = ctx
        .ensure(
            KIND,
            name,
            || async {
                let live = find(ctx, vpc, service_name).await?;
                Ok(live.map(|e| {
                    *attached.lock().expect("not poisoned") = e.route_table_ids().to_vec();
                    Found::new(e.vpc_endpoint_id().unwrap_or_default())
                }))
            },
            || async {
                let out = ec2
                    .create_vpc_endpoint()
                    .vpc_id(&vpc.id)
                    .service_name(service_name)
                    .vpc_endpoint_type(VpcEndpointType::Gateway)
                    .set_route_table_ids(Some(route_tables.iter().map(|r| r.id.clone()).collect()))
                    .tag_specifications(tag_spec(ctx, ResourceType::VpcEndpoint, name))
                    .send()
                    .await
                    .aws("ec2:CreateVpcEndpoint", name)?;
                let id = out
                    .vpc_endpoint()
                    .and_then(|e| e.vpc_endpoint_id())
                    .context("CreateVpcEndpoint returned no ID")?;
                *attached.lock().expect("not poisoned") =
                    route_tables.iter().map(|r| r.id.clone()).collect();
                Ok(Found::new(id))
            },
        )
        .await?;
    let missing: Vec<String> = route_tables
        .iter()
        .filter(|r| !r.is_pending() && !attached.lock().expect("not poisoned").contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    if !missing.is_empty() && !ep.is_pending() {
        ctx.change(KIND, name, "add route tables", || async {
            ec2.modify_vpc_endpoint()
                .vpc_endpoint_id(&ep.id)
                .set_add_route_table_ids(Some(missing.clone()))
                .send()
                .await
                .aws("ec2:ModifyVpcEndpoint", &ep.id)?;
            Ok(())
        })
        .await?;
    }
    Ok(ep)
}

/// Deletes the endpoint `id`, retrying while AWS reports a dependency; "not found" counts
/// as deleted. One call per endpoint so that a missing one does not fail the others; the
/// call reports per-endpoint failures in its response rather than as an error.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        let out = ec2
            .delete_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .aws("ec2:DeleteVpcEndpoints", id)?;
        match out.unsuccessful().iter().find_map(|u| u.error()) {
            Some(e) if !e.code().unwrap_or_default().contains("NotFound") => Err(AwsError {
                operation: "ec2:DeleteVpcEndpoints",
                resource: id.to_string(),
                code: e.code().map(str::to_string),
                message: e.message().map(str::to_string),
                source: format!("{e:?}").into(),
            }),
            _ => Ok(()),
        }
    })
    .await
}

#[async_trait]
impl Provider for Endpoint {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(id)
            .send()
            .await
            .aws("ec2:DescribeVpcEndpoints", id)
            .not_found_ok()?
            .and_then(|o| {
                o.vpc_endpoints()
                    .first()
                    .and_then(|e| e.state().map(|s| s.as_str().to_string()))
            })
            .filter(|s| !s.eq_ignore_ascii_case("deleted")))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
