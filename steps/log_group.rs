//! Not a step: what is left of the log group helpers, now [`crate::resources::logs::log_group`],
//! for the code that still reaches them here (the cluster step, `retag`, `verify`).

pub use crate::resources::logs::log_group::{ensure, ensure_tags, KIND as LOG_GROUP};

use anyhow::Result;

use crate::step::StepCtx;

/// Deletes every log group the step recorded, through the provider.
pub async fn delete_recorded(ctx: &StepCtx) -> Result<()> {
    crate::resources::delete_recorded(ctx, LOG_GROUP).await
}

/// `status` of a recorded log group: "exists", or `None` once it is gone.
pub async fn probe(ctx: &StepCtx, name: &str) -> Result<Option<String>> {
    Ok(crate::resources::logs::log_group::exists(ctx, name)
        .await?
        .then(|| "exists".to_string()))
}
