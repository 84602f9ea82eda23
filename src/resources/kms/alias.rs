//! `kms:alias`: the alias that names the stack's key (`alias/fintech-<suffix>`): create,
//! probe and delete it. KMS aliases carry no tags; deleting one leaves its key alone.

use anyhow::Result;
use async_trait::async_trait;

use crate::aws::AwsResultExt;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "kms:alias";

pub struct Alias;

/// Records the alias `alias` of the key `key_id` (`exists`: it was found pointing at the key)
/// or creates it.
pub async fn ensure(ctx: &StepCtx, alias: &str, key_id: &str, exists: bool) -> Result<Found> {
    ctx.ensure(
        KIND,
        alias,
        || async { Ok(exists.then(|| Found::new(alias).attr("key_id", key_id))) },
        || async {
            ctx.aws()
                .kms()
                .create_alias()
                .alias_name(alias)
                .target_key_id(key_id)
                .send()
                .await
                .aws("kms:CreateAlias", alias)?;
            Ok(Found::new(alias).attr("key_id", key_id))
        },
    )
    .await
}

/// Deletes the alias `alias`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, alias: &str) -> Result<()> {
    let kms = ctx.aws().kms();
    ctx.retry_dependency(&format!("{KIND} {alias}"), || async {
        kms.delete_alias()
            .alias_name(alias)
            .send()
            .await
            .map(|_| ())
            .aws("kms:DeleteAlias", alias)
    })
    .await
}

#[async_trait]
impl Provider for Alias {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// DescribeKey accepts an alias name: the alias exists while it resolves, and its status
    /// is the state of the key it points at.
    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        super::key::state(ctx, &rec.id).await
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
