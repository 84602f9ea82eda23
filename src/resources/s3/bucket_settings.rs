//! The settings every bucket of the stack gets, read back and repaired one at a time: the
//! create request (S3's location constraint quirk), tags, the public access block and
//! versioning, and [`fix`], which applies one setting either as part of creating the bucket
//! or as a change `plan` reports. Used by the storage step's buckets, the log buckets
//! ([`super::log_bucket`]) and the DR replica.
//!
//! S3 reports a bucket without some configuration with a per-configuration error code
//! (`NoSuchTagSet`, `NoSuchLifecycleConfiguration`, ...), not with an empty answer:
//! [`no_config`] reads those as `None`.

use anyhow::{Context as _, Result};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    PublicAccessBlockConfiguration, Tag, Tagging, VersioningConfiguration,
};

use super::bucket::KIND;
use crate::aws::{AwsError, AwsResultExt};
use crate::step::StepCtx;

/// S3 error codes meaning "this bucket has no such configuration" (not "no such bucket").
const NO_CONFIG: &[&str] = &[
    "NoSuchTagSet",
    "NoSuchLifecycleConfiguration",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "ObjectLockConfigurationNotFoundError",
    "ReplicationConfigurationNotFoundError",
    "OwnershipControlsNotFoundError",
];

/// Treats "no such configuration" as `None`.
pub fn no_config<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if NO_CONFIG.contains(&e.code.as_deref().unwrap_or("")) => Ok(None),
        Err(e) => Err(e),
    }
}

/// CreateBucket for `name` in the stack's region. us-east-1 is S3's default location and
/// rejects an explicit constraint for itself.
pub fn create_bucket_request(
    ctx: &StepCtx,
    name: &str,
) -> aws_sdk_s3::operation::create_bucket::builders::CreateBucketFluentBuilder {
    let req = ctx.aws().s3().create_bucket().bucket(name);
    if ctx.region() == "us-east-1" {
        return req;
    }
    req.create_bucket_configuration(
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(ctx.region()))
            .build(),
    )
}

/// Blocks every kind of public access to the bucket (ACLs and policies).
pub async fn block_public_access(ctx: &StepCtx, name: &str) -> Result<()> {
    ctx.aws()
        .s3()
        .put_public_access_block()
        .bucket(name)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .aws("s3:PutPublicAccessBlock", name)?;
    Ok(())
}

pub fn s3_tags(pairs: &[(String, String)]) -> Result<Tagging> {
    let tags = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building S3 tags")?;
    Tagging::builder()
        .set_tag_set(Some(tags))
        .build()
        .context("building S3 tagging")
}

/// The bucket's versioning status (`Enabled`, `Suspended`), `None` if never enabled.
pub async fn versioning_status(ctx: &StepCtx, name: &str) -> Result<Option<String>> {
    Ok(ctx
        .aws()
        .s3()
        .get_bucket_versioning()
        .bucket(name)
        .send()
        .await
        .aws("s3:GetBucketVersioning", name)?
        .status()
        .map(|s| s.as_str().to_string()))
}

/// Applies one setting of a bucket: as part of creating it (`created`), else as a change
/// `plan` reports; nothing when it is not `needed`.
pub async fn fix<C, CF>(
    ctx: &StepCtx,
    name: &str,
    created: bool,
    needed: bool,
    what: &str,
    apply: C,
) -> Result<()>
where
    C: FnOnce() -> CF,
    CF: std::future::Future<Output = Result<()>>,
{
    if !needed {
        return Ok(());
    }
    if created {
        ctx.check_cancelled()?;
        apply().await
    } else {
        ctx.change(KIND, name, what, apply).await
    }
}

/// Whether versioning is enabled on the bucket `name`.
pub async fn versioning_enabled(ctx: &StepCtx, name: &str) -> Result<bool> {
    Ok(versioning_status(ctx, name).await?.as_deref() == Some("Enabled"))
}

/// Versioning on unless `versioning_ok` (read back by the caller, [`versioning_enabled`];
/// `false` on a bucket this run just `created`).
pub async fn ensure_versioning(
    ctx: &StepCtx,
    name: &str,
    created: bool,
    versioning_ok: bool,
) -> Result<()> {
    fix(
        ctx,
        name,
        created,
        !versioning_ok,
        "enable versioning",
        || async {
            ctx.aws()
                .s3()
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .aws("s3:PutBucketVersioning", name)?;
            Ok(())
        },
    )
    .await
}

/// Whether every kind of public access is blocked on the bucket `name`.
pub async fn public_access_blocked(ctx: &StepCtx, name: &str) -> Result<bool> {
    Ok(no_config(
        ctx.aws()
            .s3()
            .get_public_access_block()
            .bucket(name)
            .send()
            .await
            .aws("s3:GetPublicAccessBlock", name),
    )?
    .and_then(|o| o.public_access_block_configuration)
    .is_some_and(|c| {
        c.block_public_acls() == Some(true)
            && c.ignore_public_acls() == Some(true)
            && c.block_public_policy() == Some(true)
            && c.restrict_public_buckets() == Some(true)
    }))
}

/// Blocks every kind of public access on the bucket `name` unless `ok` (read back by the
/// caller, [`public_access_blocked`]; `false` on a bucket this run just `created`). It goes
/// before any bucket policy: a policy written afterwards must pass it.
pub async fn ensure_public_access_blocked(
    ctx: &StepCtx,
    name: &str,
    created: bool,
    ok: bool,
) -> Result<()> {
    fix(ctx, name, created, !ok, "block all public access", || {
        block_public_access(ctx, name)
    })
    .await
}
