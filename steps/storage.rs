//! Storage step: the S3 buckets of the static tier.
//!
//! - `fintech-assets-<account>-<suffix>`: the web app's static assets, served by CloudFront
//!   (the cdn step adds the statement that lets it read). Versioning; lifecycle: objects move
//!   to Standard-IA after 30 days and non-current versions expire after 30 days; SSE-KMS with
//!   the stack key and an S3 bucket key (one KMS call per bucket key instead of per object).
//! - `fintech-txlog-<account>-<suffix>`: the transaction log. Versioning with Object Lock in
//!   governance mode and a default retention of `storage.object_lock_days`; SSE-S3; objects
//!   move to Standard-IA after 30 days and non-current versions expire after
//!   `storage.object_lock_days` (see [`noncurrent_expiration_days`]).
//!
//! Both block every kind of public access and deny any request not made over TLS
//! (`aws:SecureTransport` = false). Bucket names are global: the account ID keeps them unique.
//!
//! A second `up` reads every setting back (versioning, encryption, lifecycle, public access
//! block, policy, object lock, tags) and repairs only what drifted. The bucket policy is
//! shared with the cdn step: this step owns only its own statement (by `Sid`) and keeps the
//! others (the statement handling is in `src/resources/s3/bucket_policy.rs`, the settings
//! every bucket shares in `src/resources/s3/bucket_settings.rs`).
//!
//! `down` deletes the buckets through the `s3:bucket` provider (`src/resources/s3/bucket.rs`),
//! like every bucket of the stack: the bucket policy first (it could deny the deletes), then
//! every object version and delete marker (bypassing governance retention: compliance mode
//! would make that impossible, which is why the transaction log uses governance), then the
//! bucket. The order is `BUILT_ON`'s (`src/resources/deps.rs`): the ALB, the CloudFront
//! distribution and the DR replication configuration are built on every bucket and go
//! before them, and the buckets are built on the stack key, which goes after them.

/// The `[storage]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;
use crate::resources::s3::bucket;

// The bucket policy statements and bucket settings live in the S3 resource layer; re-exported
// for the steps that read them here.
pub use crate::resources::s3::bucket_policy::{
    bucket_arn, get_policy, set_policy, tls_only_statement, upsert_statement, TLS_ONLY_SID,
};
pub(crate) use crate::resources::s3::bucket_settings::{no_config, s3_tags};
use crate::step::{Step, StepCtx};

pub use crate::outputs::storage::*;

pub const BUCKET: &str = bucket::KIND;

pub use crate::resources::s3::bucket::{
    assets_bucket_name, lifecycle_rules, noncurrent_expiration_days, txlog_bucket_name, BucketSpec, IA_TRANSITION_DAYS,
    NONCURRENT_EXPIRATION_DAYS,
};


pub struct Storage;

#[async_trait]
impl Step for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let account = ctx.account_id().await?;
        let key_arn = ctx.input_str(crate::outputs::kms::OUT_KEY_ARN)?;
        let assets = BucketSpec {
            role: "assets",
            name: assets_bucket_name(&account, ctx.suffix()),
            kms_key_arn: Some(key_arn),
            object_lock_days: None,
            expire_noncurrent: true,
        };
        let txlog = BucketSpec {
            role: "txlog",
            name: txlog_bucket_name(&account, ctx.suffix()),
            kms_key_arn: None,
            object_lock_days: Some(ctx.cfg().storage.object_lock_days.0),
            // After the retention (see `noncurrent_expiration_days`).
            expire_noncurrent: true,
        };
        let (a, t) = futures::try_join!(
            bucket::ensure(ctx, &assets),
            bucket::ensure(ctx, &txlog)
        )?;
        if !a.is_pending() {
            ctx.set_output(OUT_ASSETS_BUCKET, assets.name.clone())?;
            ctx.set_output(OUT_ASSETS_BUCKET_ARN, bucket_arn(&assets.name))?;
        }
        if !t.is_pending() {
            ctx.set_output(OUT_TXLOG_BUCKET, txlog.name.clone())?;
            ctx.set_output(OUT_TXLOG_BUCKET_ARN, bucket_arn(&txlog.name))?;
        }
        Ok(())
    }

}
