//! `s3:bucket`: existence, emptying and deletion of a bucket, for every step that makes one
//! (the storage step's assets and transaction log, the CDN and ALB log buckets, the DR
//! replica).
//!
//! S3 refuses to delete a bucket that holds anything, object versions and delete markers
//! included, so deletion empties it first (Object Lock governance retention is bypassed;
//! the stack never uses compliance mode, which would make that impossible). The bucket policy
//! goes before the objects: a Deny in it (ours only denies requests without TLS, but an
//! operator's may deny deletes) would make DeleteObjects refuse. A writer still running (a
//! log delivery, a lagging replication) can add objects between the emptying and the
//! DeleteBucket: `BucketNotEmpty` makes it empty and try again, a few times.

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::StepCtx;

pub const KIND: &str = "s3:bucket";

/// How many times DeleteBucket is tried while S3 answers `BucketNotEmpty`.
const NOT_EMPTY_ATTEMPTS: u32 = 5;

pub struct Bucket;

/// Whether the bucket exists (and this account can see it).
pub async fn exists(ctx: &StepCtx, name: &str) -> Result<bool> {
    Ok(ctx
        .aws()
        .s3()
        .head_bucket()
        .bucket(name)
        .send()
        .await
        .aws("s3:HeadBucket", name)
        .not_found_ok()?
        .is_some())
}

/// Deletes every object version and delete marker, a page at a time, until the bucket is
/// empty; returns how many it removed. Governance retention is bypassed.
pub async fn empty(ctx: &StepCtx, name: &str) -> Result<usize> {
    let s3 = ctx.aws().s3();
    let mut removed = 0;
    loop {
        ctx.check_cancelled()?;
        // Always the first page: what was listed before is deleted by now.
        let Some(page) = s3
            .list_object_versions()
            .bucket(name)
            .send()
            .await
            .aws("s3:ListObjectVersions", name)
            .not_found_ok()?
        else {
            return Ok(removed);
        };
        let mut ids = Vec::new();
        for (key, version) in page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
        {
            let Some(key) = key else { continue };
            ids.push(
                ObjectIdentifier::builder()
                    .key(key)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .context("building an object identifier")?,
            );
        }
        if ids.is_empty() {
            return Ok(removed);
        }
        ctx.note(&format!("emptying bucket {name}"));
        for chunk in ids.chunks(1000) {
            let out = s3
                .delete_objects()
                .bucket(name)
                .bypass_governance_retention(true)
                .delete(
                    Delete::builder()
                        .set_objects(Some(chunk.to_vec()))
                        .quiet(true)
                        .build()
                        .context("building a DeleteObjects request")?,
                )
                .send()
                .await
                .aws("s3:DeleteObjects", name)?;
            if let Some(e) = out.errors().first() {
                bail!(
                    "s3:DeleteObjects on {name} refused {} of {} objects, e.g. {} (version \
                     {}): {}: {}",
                    out.errors().len(),
                    chunk.len(),
                    e.key().unwrap_or("?"),
                    e.version_id().unwrap_or("null"),
                    e.code().unwrap_or("(no code)"),
                    e.message().unwrap_or("(no message)")
                );
            }
            removed += chunk.len();
        }
    }
}

/// Drops the policy, empties and deletes the bucket `name`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let s3 = ctx.aws().s3();
    s3.delete_bucket_policy()
        .bucket(name)
        .send()
        .await
        .aws("s3:DeleteBucketPolicy", name)
        .not_found_ok()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let removed = empty(ctx, name).await?;
        if removed > 0 {
            ctx.sh.reporter.message(
                ctx.step,
                &format!("removed {removed} object versions and delete markers from {name}"),
            );
        }
        ctx.check_cancelled()?;
        let r = s3
            .delete_bucket()
            .bucket(name)
            .send()
            .await
            .aws("s3:DeleteBucket", name)
            .not_found_ok();
        match r {
            Ok(_) => return Ok(()),
            Err(e)
                if e.code.as_deref() == Some("BucketNotEmpty") && attempt < NOT_EMPTY_ATTEMPTS =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[async_trait]
impl Provider for Bucket {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(exists(ctx, &rec.id).await?.then(|| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
