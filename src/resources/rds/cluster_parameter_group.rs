//! `rds:db-cluster-parameter-group`: the Aurora PostgreSQL cluster parameter group that
//! forces TLS ([`PARAMETERS`]), found by name (checked to be this stack's and of the engine
//! version's family) or created with its parameters set; a second `up` sets only parameters
//! whose value differs.
//!
//! A family cannot change: a group of another family is an error, not something `up`
//! replaces. RDS refuses to delete the group while a cluster, even a deleting one, uses it:
//! the delete is retried while RDS reports it in use.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::{ApplyMethod, Parameter};

use super::{check_ours, delete_group, list_tags, rds_tags, ENGINE};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "rds:db-cluster-parameter-group";

/// Cluster parameters the stack sets: TLS only, as a payments database must.
/// (`rds.force_ssl` is dynamic in Aurora PostgreSQL, so it applies without a reboot.)
pub const PARAMETERS: &[(&str, &str)] = &[("rds.force_ssl", "1")];

pub struct ClusterParameterGroup;

/// The parameter group family of an Aurora PostgreSQL engine version: `15.8` ->
/// `aurora-postgresql15` (families are per major version).
pub fn parameter_group_family(engine_version: &str) -> String {
    let major = engine_version.split('.').next().unwrap_or(engine_version);
    format!("{ENGINE}{major}")
}

/// A cluster parameter group the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct ParameterGroupSpec<'a> {
    pub name: &'a str,
    /// `database.engine_version`: the group's family follows its major version.
    pub engine_version: &'a str,
}

fn parameter(name: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_name(name)
        .parameter_value(value)
        .apply_method(ApplyMethod::Immediate)
        .build()
}

/// The parameters of [`PARAMETERS`] whose value in the group differs.
async fn parameters_to_set(ctx: &StepCtx, group: &str) -> Result<Vec<Parameter>> {
    let rds = ctx.aws().rds();
    let mut set = BTreeMap::new();
    let mut marker = None;
    loop {
        // `user`: only the parameters changed from the family's defaults, a handful
        // rather than the ~400 of the family.
        let out = rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .source("user")
            .set_marker(marker)
            .send()
            .await
            .aws("rds:DescribeDBClusterParameters", group)?;
        for p in out.parameters() {
            if let (Some(n), Some(v)) = (p.parameter_name(), p.parameter_value()) {
                set.insert(n.to_string(), v.to_string());
            }
        }
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    Ok(PARAMETERS
        .iter()
        .filter(|(n, v)| set.get(*n).map(String::as_str) != Some(*v))
        .map(|(n, v)| parameter(n, v))
        .collect())
}

async fn set_parameters(ctx: &StepCtx, group: &str, params: Vec<Parameter>) -> Result<()> {
    ctx.aws()
        .rds()
        .modify_db_cluster_parameter_group()
        .db_cluster_parameter_group_name(group)
        .set_parameters(Some(params))
        .send()
        .await
        .aws("rds:ModifyDBClusterParameterGroup", group)?;
    Ok(())
}

/// The parameter group `spec`, recorded with its family: found (and its [`PARAMETERS`]
/// repaired) or created with them.
pub async fn ensure(ctx: &StepCtx, spec: &ParameterGroupSpec<'_>) -> Result<Found> {
    let rds = ctx.aws().rds();
    let ParameterGroupSpec {
        name,
        engine_version,
    } = *spec;
    let family = parameter_group_family(engine_version);
    let mut created = false;
    let group = ctx
        .ensure(
            KIND,
            name,
            || async {
                let out = rds
                    .describe_db_cluster_parameter_groups()
                    .db_cluster_parameter_group_name(name)
                    .send()
                    .await
                    .aws("rds:DescribeDBClusterParameterGroups", name)
                    .not_found_ok()?;
                let Some(g) = out.and_then(|o| o.db_cluster_parameter_groups().first().cloned())
                else {
                    return Ok(None);
                };
                let arn = g
                    .db_cluster_parameter_group_arn()
                    .unwrap_or_default()
                    .to_string();
                check_ours(
                    ctx,
                    "DB cluster parameter group",
                    name,
                    &list_tags(ctx, &arn).await?,
                )?;
                if let Some(got) = g.db_parameter_group_family().filter(|f| *f != family) {
                    // A family cannot change; a new major version needs a new group and
                    // an engine upgrade, which `up` does not do behind anyone's back.
                    bail!(
                        "DB cluster parameter group {name} is of family {got}, but \
                         database.engine_version {engine_version} needs {family}: major \
                         version upgrades are not done by `up`"
                    );
                }
                Ok(Some(Found::new(name).arn(arn).attr("family", &family)))
            },
            || async {
                let out = rds
                    .create_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(name)
                    .db_parameter_group_family(&family)
                    .description(format!(
                        "fintech-infra {} Aurora PostgreSQL cluster parameters (TLS only)",
                        ctx.suffix()
                    ))
                    .set_tags(Some(rds_tags(ctx, name)))
                    .send()
                    .await
                    .aws("rds:CreateDBClusterParameterGroup", name)?;
                let arn = out
                    .db_cluster_parameter_group()
                    .and_then(|g| g.db_cluster_parameter_group_arn())
                    .unwrap_or_default();
                let found = Found::new(name).arn(arn).attr("family", &family);
                ctx.record(KIND, name, &found)?;
                created = true;
                // Part of creating the group: a new group has the family defaults.
                let params = PARAMETERS.iter().map(|(n, v)| parameter(n, v)).collect();
                set_parameters(ctx, name, params).await?;
                Ok(found)
            },
        )
        .await?;
    if !created && !group.is_pending() {
        let params = parameters_to_set(ctx, name).await?;
        if !params.is_empty() {
            let what = params
                .iter()
                .map(|p| {
                    format!(
                        "{} = {}",
                        p.parameter_name().unwrap_or_default(),
                        p.parameter_value().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            ctx.change(KIND, name, &format!("set {what}"), || {
                set_parameters(ctx, name, params)
            })
            .await?;
        }
    }
    Ok(group)
}

/// Deletes the parameter group `name`, retrying while RDS reports it in use.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let rds = ctx.aws().rds();
    delete_group(ctx, KIND, name, || async {
        rds.delete_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .send()
            .await
            .map(|_| ())
            .aws("rds:DeleteDBClusterParameterGroup", name)
    })
    .await
}

#[async_trait]
impl Provider for ClusterParameterGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .rds()
            .describe_db_cluster_parameter_groups()
            .db_cluster_parameter_group_name(id)
            .send()
            .await
            .aws("rds:DescribeDBClusterParameterGroups", id)
            .not_found_ok()?
            .and_then(|o| {
                o.db_cluster_parameter_groups()
                    .first()
                    .map(|_| "exists".to_string())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_follows_the_major_version() {
        assert_eq!(parameter_group_family("15.8"), "aurora-postgresql15");
        assert_eq!(parameter_group_family("16.4"), "aurora-postgresql16");
    }
}
