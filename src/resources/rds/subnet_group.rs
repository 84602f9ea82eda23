//! `rds:db-subnet-group`: the DB subnet group an Aurora cluster is placed in, found by name
//! (and checked to be this stack's) or created, and brought back to the wanted subnets with
//! ModifyDBSubnetGroup when they differ.
//!
//! RDS refuses to delete a subnet group while a cluster or instance, even a deleting one,
//! still uses it: the delete is retried while RDS reports it in use.

use std::collections::BTreeSet;

use anyhow::Result;
use async_trait::async_trait;

use super::{check_ours, delete_group, list_tags, rds_tags};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "rds:db-subnet-group";

pub struct SubnetGroup;

/// A DB subnet group the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct SubnetGroupSpec<'a> {
    pub name: &'a str,
    /// Its subnets (plan-mode placeholders until the network exists).
    pub subnets: &'a [String],
    /// The tier of the subnets (`isolated` or `private`), for the description and the report.
    pub tier: &'a str,
}

/// The subnet group `spec`: found (and its subnets repaired) or created.
pub async fn ensure(ctx: &StepCtx, spec: &SubnetGroupSpec<'_>) -> Result<Found> {
    let rds = ctx.aws().rds();
    let SubnetGroupSpec {
        name,
        subnets,
        tier,
    } = *spec;
    let subnets_known = !subnets.iter().any(|s| is_pending(s));
    let mut current: Option<BTreeSet<String>> = None;
    let group = ctx
        .ensure(
            KIND,
            name,
            || async {
                let out = rds
                    .describe_db_subnet_groups()
                    .db_subnet_group_name(name)
                    .send()
                    .await
                    .aws("rds:DescribeDBSubnetGroups", name)
                    .not_found_ok()?;
                let Some(g) = out.and_then(|o| o.db_subnet_groups().first().cloned()) else {
                    return Ok(None);
                };
                let arn = g.db_subnet_group_arn().unwrap_or_default().to_string();
                check_ours(ctx, "DB subnet group", name, &list_tags(ctx, &arn).await?)?;
                current = Some(
                    g.subnets()
                        .iter()
                        .filter_map(|s| s.subnet_identifier().map(str::to_string))
                        .collect(),
                );
                Ok(Some(Found::new(name).arn(arn)))
            },
            || async {
                let out = rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(name)
                    .db_subnet_group_description(format!(
                        "fintech-infra {} database: {tier} subnets of every zone",
                        ctx.suffix()
                    ))
                    .set_subnet_ids(Some(subnets.to_vec()))
                    .set_tags(Some(rds_tags(ctx, name)))
                    .send()
                    .await
                    .aws("rds:CreateDBSubnetGroup", name)?;
                let arn = out
                    .db_subnet_group()
                    .and_then(|g| g.db_subnet_group_arn())
                    .unwrap_or_default();
                Ok(Found::new(name).arn(arn))
            },
        )
        .await?;
    let want: BTreeSet<String> = subnets.iter().cloned().collect();
    if let Some(got) = current.filter(|got| subnets_known && *got != want) {
        ctx.change(
            KIND,
            name,
            &format!("subnets {got:?} -> the {tier} subnets {want:?}"),
            || async {
                rds.modify_db_subnet_group()
                    .db_subnet_group_name(name)
                    .set_subnet_ids(Some(subnets.to_vec()))
                    .send()
                    .await
                    .aws("rds:ModifyDBSubnetGroup", name)?;
                Ok(())
            },
        )
        .await?;
    }
    Ok(group)
}

/// Deletes the subnet group `name`, retrying while RDS reports it in use.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let rds = ctx.aws().rds();
    delete_group(ctx, KIND, name, || async {
        rds.delete_db_subnet_group()
            .db_subnet_group_name(name)
            .send()
            .await
            .map(|_| ())
            .aws("rds:DeleteDBSubnetGroup", name)
    })
    .await
}

#[async_trait]
impl Provider for SubnetGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .rds()
            .describe_db_subnet_groups()
            .db_subnet_group_name(id)
            .send()
            .await
            .aws("rds:DescribeDBSubnetGroups", id)
            .not_found_ok()?
            .and_then(|o| {
                o.db_subnet_groups()
                    .first()
                    .map(|g| g.subnet_group_status().unwrap_or("exists").to_string())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
