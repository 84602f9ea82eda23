//! Amazon RDS resource types (the database step's Aurora PostgreSQL cluster, its instances,
//! its subnet and cluster parameter groups), plus what they share: the stack's tags as RDS
//! tags, the ownership check, the "busy, retry" test of an RDS error and the wait for a group
//! that a cluster going away still uses.
//!
//! RDS names are unique per account and region, so every kind here is found by its name and
//! then checked to carry this stack's tag (see [`check_ours`]).

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_sdk_rds::types::Tag;

use crate::aws::{AwsError, AwsErrorKind, AwsResultExt};
use crate::naming::STACK_TAG;
use crate::step::StepCtx;

pub mod cluster;
pub mod cluster_parameter_group;
pub mod instance;
pub mod subnet_group;

/// Port the database listens on (Aurora PostgreSQL).
pub const DB_PORT: i32 = 5432;

/// The Aurora engine the stack runs.
pub const ENGINE: &str = "aurora-postgresql";

/// Aurora creates a cluster or instance in 5-10 minutes and deletes an instance in up to ~12;
/// generous, so a slow day does not fail a run that would have finished.
pub const AURORA_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// The stack's tags (and `Name`) as RDS tags.
pub fn rds_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The tags of the RDS resource `arn`.
pub async fn list_tags(ctx: &StepCtx, arn: &str) -> Result<Vec<Tag>> {
    Ok(ctx
        .aws()
        .rds()
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .aws("rds:ListTagsForResource", arn)?
        .tag_list()
        .to_vec())
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// RDS names are unique per account and region; see [`StepCtx::check_ours`].
pub fn check_ours(ctx: &StepCtx, what: &str, name: &str, tags: &[Tag]) -> Result<()> {
    ctx.check_ours(what, name, tag_value(tags, STACK_TAG))
}

/// Whether an AWS error says the resource is in the wrong state for the call right now (still
/// creating, being modified, already deleting, still in use): waiting and retrying helps.
pub fn is_busy(e: &AwsError) -> bool {
    e.kind() == AwsErrorKind::InvalidState
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes a subnet or parameter group (`kind` `name`) with `call`, retrying while RDS
/// reports it in use: RDS refuses to delete one while a cluster or instance, even a deleting
/// one, still uses it.
pub async fn delete_group<F, Fut>(ctx: &StepCtx, kind: &str, name: &str, call: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), AwsError>>,
{
    ctx.check_cancelled()?;
    // How long a subnet or parameter group may be refused as in use (by a cluster that is
    // going away): the configured dependency timeout, like every other delete.
    let in_use = Duration::from_secs(ctx.cfg().timeouts.dependency_violation_secs.0);
    ctx.wait_for(&format!("{kind} {name} to be free"), in_use, || async {
        match call().await {
            Ok(()) => Ok(Some(())),
            Err(e) if e.is_not_found() => Ok(Some(())),
            Err(e) if is_busy(&e) => {
                tracing::debug!(error = %e, "still in use; retrying");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
    .with_context(|| format!("deleting {kind} {name}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rds_kind_is_registered() {
        for kind in [
            super::subnet_group::KIND,
            super::cluster_parameter_group::KIND,
            super::cluster::KIND,
            super::instance::KIND,
        ] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
