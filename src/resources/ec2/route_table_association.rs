//! `ec2:route-table-association`: a subnet's association with a route table, recorded
//! under `<subnet> -> <table>` with both IDs; removed (disassociated) on teardown before
//! the subnets and tables.
//!
//! The association is found in the route table as described when it was ensured, so it
//! costs no read of its own.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::RouteTable;

use super::route_table;
use crate::aws::AwsResultExt;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:route-table-association";

pub struct Association;

/// `subnet` associated with the route table `rt`, whose current state (if it existed) is
/// `table`.
pub async fn ensure(
    ctx: &StepCtx,
    rt: &Found,
    table: Option<&RouteTable>,
    subnet: &Found,
) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let assoc_name = format!("{} -> {}", subnet.id, rt.id);
    let existing = table.and_then(|t| {
        t.associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet.id.as_str()))
            .and_then(|a| a.route_table_association_id())
            .map(|id| {
                Found::new(id)
                    .attr("route_table_id", &rt.id)
                    .attr("subnet_id", &subnet.id)
            })
    });
    ctx.ensure(
        KIND,
        &assoc_name,
        || async { Ok(existing) },
        || async {
            let out = ec2
                .associate_route_table()
                .route_table_id(&rt.id)
                .subnet_id(&subnet.id)
                .send()
                .await
                .aws("ec2:AssociateRouteTable", &assoc_name)?;
            Ok(Found::new(
                out.association_id()
                    .context("AssociateRouteTable returned no ID")?,
            )
            .attr("route_table_id", &rt.id)
            .attr("subnet_id", &subnet.id))
        },
    )
    .await
}

/// Removes the association `id`, retrying while AWS reports a dependency; "not found"
/// counts as removed.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.disassociate_route_table()
            .association_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DisassociateRouteTable", id)
    })
    .await
}

#[async_trait]
impl Provider for Association {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let rt = rec.attrs.get("route_table_id").cloned().unwrap_or_default();
        Ok(route_table::describe(ctx, &rt).await?.and_then(|t| {
            t.associations()
                .iter()
                .any(|a| a.route_table_association_id() == Some(rec.id.as_str()))
                .then(|| "associated".to_string())
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
