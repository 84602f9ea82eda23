//! KMS step: the stack's customer-managed key (rotation on) and its alias
//! `alias/fintech-<suffix>`. Aurora, CloudWatch Logs, SNS, S3, SQS, DynamoDB, Secrets Manager
//! and ECR encrypt with it. The key and alias themselves (lookup, key policy, rotation,
//! restore, deletion) are the resource layer's: [`crate::resources::kms`].
//!
//! `down` deletes the key last: in `BUILT_ON` (`src/resources/deps.rs`) the alias is built on
//! its key, and everything encrypted with it (log groups, buckets, queues, tables,
//! repositories, topics, backup vaults, the Aurora cluster, Lambda functions) on every key of
//! its region. The `kms:key` provider only schedules the key's deletion
//! (`kms.deletion_window_days`): KMS never deletes a key at once, the shortest window is 7
//! days.

/// The `[kms]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;

use crate::resources::kms::{self as kms_res, alias, key};
use crate::step::{Step, StepCtx};

pub use crate::outputs::kms::*;

/// The KMS kinds, now in the resource layer (kept here for the code that names them so).
pub const KEY: &str = key::KIND;
pub const ALIAS: &str = alias::KIND;

/// The key policy, now in the resource layer (the cdn step's tests build on it from here).
pub use crate::resources::kms::key::key_policy;

pub struct Kms;

#[async_trait]
impl Step for Kms {
    fn name(&self) -> &'static str {
        "kms"
    }

    fn deps(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn estimate_secs(&self) -> u64 {
        5
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let key = kms_res::ensure_stack_key(ctx).await?;
        if !key.is_pending() {
            ctx.set_output(OUT_KEY_ID, key.id.clone())?;
            ctx.set_output(OUT_KEY_ARN, key.arn.clone().unwrap_or_default())?;
            ctx.set_output("kms_alias", ctx.names().kms_alias())?;
        }
        Ok(())
    }

}
