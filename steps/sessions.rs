//! Sessions step: the DynamoDB table `sessions-<suffix>` holding the web app's sessions.
//!
//! On-demand billing (PAY_PER_REQUEST: session traffic follows user traffic, nothing to size),
//! point-in-time recovery, server-side encryption with the stack's KMS key, TTL on the
//! configured attribute (`sessions.ttl_attribute`, epoch seconds) so expired sessions delete
//! themselves, and a global secondary index `by-user` for "all sessions of this user" (log out
//! everywhere). Hash key `session_id` (S); the index is keyed on `user_id` (S), projection ALL.
//!
//! The table's find, create, waits (CREATING before PITR and TTL, DELETING on teardown) and
//! repairs are in [`crate::resources::dynamodb::table`]; this step says which table it wants.

/// The `[sessions]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;

use crate::resources::dynamodb::table::{self, TableSpec};
use crate::step::{Step, StepCtx};

pub use crate::outputs::sessions::*;

pub const TABLE: &str = table::KIND;

/// The table's hash key.
pub const HASH_KEY: &str = "session_id";
/// The index for lookups by user, and its hash key.
pub use crate::naming::SESSIONS_USER_INDEX as USER_INDEX;
pub const USER_KEY: &str = "user_id";

pub struct Sessions;

#[async_trait]
impl Step for Sessions {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // CREATING lasts ~20 s; PITR and TTL follow.
        30
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let name = ctx.names().of("sessions");
        let key_arn = ctx.input_str(crate::outputs::kms::OUT_KEY_ARN)?;
        let spec = TableSpec {
            name: &name,
            key_arn: &key_arn,
            hash_key: HASH_KEY,
            index_name: USER_INDEX,
            index_key: USER_KEY,
            ttl_attribute: &ctx.cfg().sessions.ttl_attribute.0,
        };
        let table = table::ensure(ctx, &spec).await?;
        if table.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_TABLE_NAME, name.clone())?;
        ctx.set_output(OUT_TABLE_ARN, table.arn.clone().unwrap_or_default())?;
        Ok(())
    }

}
