//! AWS KMS resource types: the stack's customer-managed key and its alias, in the primary
//! region (the kms step) and the DR region (the dr_storage step).

use anyhow::Result;

use crate::step::{Found, StepCtx};

pub mod alias;
pub mod key;
pub mod key_policy;

/// Creates (or finds, or restores from pending deletion) the stack's key in the context's
/// region, with rotation on and the alias `alias/fintech-<suffix>`. The key is looked up by
/// its alias first, then by an earlier run's record (a run that died before creating the
/// alias), then by the stack tag (a run whose CreateKey answer was lost).
pub async fn ensure_stack_key(ctx: &StepCtx) -> Result<Found> {
    let alias = ctx.names().kms_alias();
    let by_alias = key::find_by_alias(ctx, &alias).await?;
    let alias_exists = by_alias.is_some();
    let key_name = format!("fintech-{}", ctx.suffix());
    let existing = match by_alias {
        Some(k) => Some(k),
        None => match key::find_recorded(ctx).await? {
            Some(k) => Some(k),
            // A new stack has no tagged key (`step::fresh`); a CreateKey of this run whose
            // answer was lost left a write-ahead record, and then the tags are read.
            None => {
                ctx.look_up(key::KIND, &key_name, key::find_tagged(ctx))
                    .await?
            }
        },
    };
    let key = key::ensure(ctx, &key_name, existing).await?;
    alias::ensure(ctx, &alias, &key.id, alias_exists).await?;
    Ok(key)
}

/// Deletes the recorded aliases and schedules the recorded keys' deletion (in the context's
/// region).
pub async fn delete_stack_keys(ctx: &StepCtx) -> Result<()> {
    crate::resources::delete_recorded(ctx, alias::KIND).await?;
    crate::resources::delete_recorded(ctx, key::KIND).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kms_kind_is_registered() {
        for kind in [key::KIND, alias::KIND] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
