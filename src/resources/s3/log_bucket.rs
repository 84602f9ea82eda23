//! Log buckets (`s3:bucket` records of the alb and cdn steps): the S3 buckets AWS services
//! deliver access logs to (the ALB's `fintech-alblogs-<account>-<s>`, CloudFront's
//! `fintech-cdnlogs-<account>-<s>`), created and kept in line by the step that owns the
//! logging resource; deleted by the `s3:bucket` provider ([`super::bucket`]).
//!
//! Every log bucket gets the same baseline (AWS Foundational Security Best Practices,
//! S3.1/S3.2/S3.5/S3.8/S3.10/S3.14): every kind of public access blocked, versioning on,
//! default encryption SSE-S3 (neither ALB nor CloudFront standard log delivery writes with a
//! customer KMS key without extra key-policy grants; SSE-S3 is what their guides document),
//! a bucket policy holding the delivery grants plus the TLS-only statement, and
//! a lifecycle rule expiring the logs and their non-current versions (a versioned log bucket
//! would otherwise keep every overwritten or deleted log version for ever). Object ownership
//! is set only where the delivering service needs it: CloudFront standard (legacy) logging
//! writes each log file with an ACL granting the `awslogsdelivery` account, so its bucket must
//! have ACLs enabled (`BucketOwnerPreferred`; AWS: "the bucket must have ACLs enabled",
//! <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html#AccessLogsBucketAndFileOwnership>).
//!
//! A second `up` reads every setting back (tags, public access block, ownership, versioning,
//! encryption, lifecycle, policy) and changes only what drifted, so an unchanged stack makes
//! no mutating call. The storage step's bucket routine (`Storage::ensure_bucket`) is not used
//! because its lifecycle rule (Standard-IA transition) and missing ownership controls do not
//! fit log buckets; the shared helpers ([`super::bucket_settings`], [`super::bucket_policy`])
//! are.

use anyhow::{Context as _, Result};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use serde_json::Value;

use super::bucket::KIND as BUCKET;
use super::bucket_policy::{self, bucket_arn};
use super::bucket_settings::{self as settings, fix};
use crate::aws::AwsResultExt;
use crate::naming::STACK_TAG;
use crate::step::{Found, StepCtx};

/// Days a non-current version of a log object is kept (a log is never rewritten: these are
/// only deletes or accidental overwrites).
pub const NONCURRENT_LOG_DAYS: i32 = 30;

/// What a log bucket must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBucketSpec {
    pub name: String,
    /// Kept in the record's attrs (`purpose`), e.g. `alb-logs`.
    pub purpose: &'static str,
    /// The policy statements this step owns (by `Sid`); others in the policy are kept.
    pub statements: Vec<Value>,
    /// The whole lifecycle configuration (this tool owns it).
    pub rules: Vec<LifecycleRule>,
    /// Object ownership to enforce; `None`: left as S3 made it (`BucketOwnerEnforced`).
    pub ownership: Option<ObjectOwnership>,
}

/// One rule over the whole bucket: objects expire after `days`, non-current versions after
/// [`NONCURRENT_LOG_DAYS`].
pub fn expiry_rule(id: &str, days: i32) -> Result<LifecycleRule> {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .noncurrent_days(NONCURRENT_LOG_DAYS)
                .build(),
        )
        .build()
        .context("building a lifecycle rule")
}

/// A comparable summary of the fields of a lifecycle rule this module sets. (The rule-level
/// `Prefix` is deprecated but still what some emulators return.)
#[allow(deprecated)]
fn rule_signature(r: &LifecycleRule) -> String {
    let prefix = r
        .filter()
        .and_then(|f| f.prefix())
        .or(r.prefix())
        .unwrap_or("");
    format!(
        "{}|{}|{prefix}|{:?}|{:?}|{}",
        r.id().unwrap_or(""),
        r.status().as_str(),
        r.expiration().and_then(|e| e.days()),
        r.noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        r.transitions().len(),
    )
}

/// Whether two rule sets are the same (order ignored).
pub fn rules_match(got: &[LifecycleRule], want: &[LifecycleRule]) -> bool {
    let mut a: Vec<String> = got.iter().map(rule_signature).collect();
    let mut b: Vec<String> = want.iter().map(rule_signature).collect();
    a.sort();
    b.sort();
    a == b
}

/// Creates the bucket if missing (recorded by the calling step) and brings every setting in
/// line with `spec`.
pub async fn ensure(ctx: &StepCtx, spec: &LogBucketSpec) -> Result<Found> {
    let s3 = ctx.aws().s3();
    let name = spec.name.as_str();
    let exists = crate::resources::s3::bucket::exists(ctx, name).await?;
    let mut current_tags: Vec<(String, String)> = Vec::new();
    if exists {
        current_tags = settings::no_config(
            s3.get_bucket_tagging()
                .bucket(name)
                .send()
                .await
                .aws("s3:GetBucketTagging", name),
        )?
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
        // A bucket this step recorded is adopted even if its tags were lost (repaired below);
        // any other must carry the stack tag: bucket names are global.
        if !ctx.records(Some(BUCKET)).iter().any(|r| r.id == name) {
            let tag = current_tags
                .iter()
                .find(|(k, _)| k == STACK_TAG)
                .map(|(_, v)| v.as_str());
            ctx.check_ours("S3 bucket", name, tag)?;
        }
    }
    let found = ctx
        .ensure(
            BUCKET,
            name,
            || async {
                Ok(exists.then(|| {
                    Found::new(name)
                        .arn(bucket_arn(name))
                        .attr("purpose", spec.purpose)
                }))
            },
            || async {
                let mut req = settings::create_bucket_request(ctx, name);
                if let Some(o) = &spec.ownership {
                    // Set at creation: S3 makes new buckets BucketOwnerEnforced (ACLs off).
                    req = req.object_ownership(o.clone());
                }
                req.send().await.aws("s3:CreateBucket", name)?;
                Ok(Found::new(name)
                    .arn(bucket_arn(name))
                    .attr("purpose", spec.purpose))
            },
        )
        .await?;
    if found.is_pending() {
        return Ok(found);
    }
    let created = !exists;

    // Tags: ours set, anyone else's kept (PutBucketTagging replaces the whole set).
    let want_tags = ctx.tags(Some(name));
    let tags_ok = !created && want_tags.iter().all(|t| current_tags.contains(t));
    fix(ctx, name, created, !tags_ok, "set tags", || async {
        let mut all: Vec<(String, String)> = current_tags
            .iter()
            .filter(|(k, _)| !want_tags.iter().any(|(wk, _)| wk == k))
            .cloned()
            .collect();
        all.extend(want_tags.iter().cloned());
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(settings::s3_tags(&all)?)
            .send()
            .await
            .aws("s3:PutBucketTagging", name)?;
        Ok(())
    })
    .await?;

    // Public access block first: the policy written below must pass it. Log delivery ACL
    // grants (to the awslogsdelivery account) are not public, so blocking public ACLs keeps
    // CloudFront's delivery working.
    let blocked = !created && settings::public_access_blocked(ctx, name).await?;
    settings::ensure_public_access_blocked(ctx, name, created, blocked).await?;

    // Object ownership (ACLs enabled for CloudFront standard logging). Set at creation, so
    // only an existing bucket is read back.
    if let Some(want) = &spec.ownership {
        let ownership_ok = created
            || settings::no_config(
                s3.get_bucket_ownership_controls()
                    .bucket(name)
                    .send()
                    .await
                    .aws("s3:GetBucketOwnershipControls", name),
            )?
            .and_then(|o| o.ownership_controls)
            .is_some_and(|c| c.rules().iter().any(|r| r.object_ownership() == want));
        let what = format!("object ownership {}", want.as_str());
        fix(ctx, name, false, !ownership_ok, &what, || async {
            s3.put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(
                    OwnershipControls::builder()
                        .rules(
                            OwnershipControlsRule::builder()
                                .object_ownership(want.clone())
                                .build()
                                .context("building the ownership rule")?,
                        )
                        .build()
                        .context("building the ownership controls")?,
                )
                .send()
                .await
                .aws("s3:PutBucketOwnershipControls", name)?;
            Ok(())
        })
        .await?;
    }

    // Versioning.
    let versioned = !created && settings::versioning_enabled(ctx, name).await?;
    settings::ensure_versioning(ctx, name, created, versioned).await?;

    // Default encryption: SSE-S3.
    let encryption_ok = !created
        && settings::no_config(
            s3.get_bucket_encryption()
                .bucket(name)
                .send()
                .await
                .aws("s3:GetBucketEncryption", name),
        )?
        .as_ref()
        .and_then(|o| o.server_side_encryption_configuration())
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .is_some_and(|d| d.sse_algorithm() == &ServerSideEncryption::Aes256);
    fix(
        ctx,
        name,
        created,
        !encryption_ok,
        "encrypt with S3-managed keys (SSE-S3)",
        || async {
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(
                            ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(
                                    ServerSideEncryptionByDefault::builder()
                                        .sse_algorithm(ServerSideEncryption::Aes256)
                                        .build()
                                        .context("building the bucket encryption")?,
                                )
                                .build(),
                        )
                        .build()
                        .context("building the bucket encryption")?,
                )
                .send()
                .await
                .aws("s3:PutBucketEncryption", name)?;
            Ok(())
        },
    )
    .await?;

    // Lifecycle (owned as a whole).
    let lifecycle_ok = !created
        && settings::no_config(
            s3.get_bucket_lifecycle_configuration()
                .bucket(name)
                .send()
                .await
                .aws("s3:GetBucketLifecycleConfiguration", name),
        )?
        .is_some_and(|o| rules_match(o.rules(), &spec.rules));
    fix(
        ctx,
        name,
        created,
        !lifecycle_ok,
        "lifecycle: expire logs and their non-current versions",
        || async {
            s3.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .set_rules(Some(spec.rules.clone()))
                        .build()
                        .context("building the lifecycle configuration")?,
                )
                .send()
                .await
                .aws("s3:PutBucketLifecycleConfiguration", name)?;
            Ok(())
        },
    )
    .await?;

    // Policy: our statements by Sid (delivery grants, TLS only), others kept.
    let current = if created {
        None
    } else {
        bucket_policy::get_policy(ctx, name).await?
    };
    let policy = bucket_policy::upsert_statements(current.as_deref(), &spec.statements)?;
    fix(
        ctx,
        name,
        created,
        policy.is_some(),
        "bucket policy: log delivery, deny requests without TLS",
        || bucket_policy::set_policy(ctx, name, policy.clone()),
    )
    .await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rule_expires_current_and_noncurrent_versions() {
        let r = expiry_rule("expire-access-logs", 90).unwrap();
        assert_eq!(r.expiration().and_then(|e| e.days()), Some(90));
        assert_eq!(
            r.noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days()),
            Some(NONCURRENT_LOG_DAYS)
        );
        assert_eq!(r.status(), &ExpirationStatus::Enabled);
        let other = expiry_rule("expire-access-logs", 30).unwrap();
        assert!(rules_match(
            std::slice::from_ref(&r),
            std::slice::from_ref(&r)
        ));
        assert!(!rules_match(std::slice::from_ref(&r), &[other]));
        assert!(!rules_match(&[], &[r]));
    }
}
