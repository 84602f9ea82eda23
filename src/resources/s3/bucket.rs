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

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, DefaultRetention, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockRetentionMode, ObjectLockRule, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Transition,
    TransitionStorageClass,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::s3::bucket_policy::{
    bucket_arn, get_policy, set_policy, tls_only_statement, upsert_statement,
};
use crate::resources::s3::bucket_settings::{
    create_bucket_request, ensure_public_access_blocked, ensure_versioning, fix, no_config,
    public_access_blocked, s3_tags, versioning_enabled,
};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::StepCtx;
use crate::step::{is_pending, Found};

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

/// Days before objects move to Standard-IA (S3's minimum for that transition is 30).
pub const IA_TRANSITION_DAYS: i32 = 30;
/// Days a non-current version of an asset (or of the DR replica) is kept.
pub const NONCURRENT_EXPIRATION_DAYS: i32 = 30;

/// Which bucket, and what it must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpec {
    /// `assets` or `txlog` (kept in the record's attrs).
    pub role: &'static str,
    pub name: String,
    /// SSE-KMS with this key (and a bucket key); `None`: SSE-S3.
    pub kms_key_arn: Option<String>,
    /// Object Lock default retention in governance mode, in days.
    pub object_lock_days: Option<i32>,
    /// Expire non-current versions, after [`noncurrent_expiration_days`] days.
    pub expire_noncurrent: bool,
}

/// Days after which S3 expires the non-current versions of a bucket, if it does: the Object
/// Lock retention for a bucket with Object Lock, else [`NONCURRENT_EXPIRATION_DAYS`].
///
/// Why the retention: S3 lifecycle never removes an object version that is still under
/// retention (S3 User Guide, "Object Lock considerations": "protected object versions remain
/// safe from being deleted or overwritten by a lifecycle configuration"), and a version
/// becomes non-current no earlier than it was created, while the default retention runs from
/// its creation. So `NoncurrentDays` of at
/// least the retention days puts every expiry at or after the version's retain-until date:
/// the rule never fights the lock (nothing left pending behind it, no version kept a day
/// longer than the audit period asks), and without it every superseded or deleted
/// transaction-log version would be kept, and billed, for ever.
pub fn noncurrent_expiration_days(spec: &BucketSpec) -> Option<i32> {
    spec.expire_noncurrent
        .then(|| spec.object_lock_days.unwrap_or(NONCURRENT_EXPIRATION_DAYS))
}

pub fn assets_bucket_name(account: &str, suffix: &str) -> String {
    format!("fintech-assets-{account}-{suffix}")
}

pub fn txlog_bucket_name(account: &str, suffix: &str) -> String {
    format!("fintech-txlog-{account}-{suffix}")
}

/// The lifecycle rules a bucket should have.
pub fn lifecycle_rules(spec: &BucketSpec) -> Result<Vec<LifecycleRule>> {
    let id = if spec.expire_noncurrent {
        "standard-ia-and-noncurrent-expiry"
    } else {
        "standard-ia-after-30-days"
    };
    let mut rule = LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .transitions(
            Transition::builder()
                .days(IA_TRANSITION_DAYS)
                .storage_class(TransitionStorageClass::StandardIa)
                .build(),
        );
    if spec.expire_noncurrent {
        rule = rule.noncurrent_version_expiration(
            NoncurrentVersionExpiration::builder()
                .set_noncurrent_days(noncurrent_expiration_days(spec))
                .build(),
        );
    }
    Ok(vec![rule.build().context("building a lifecycle rule")?])
}

/// A comparable summary of a lifecycle rule: the fields this tool sets. (The rule-level
/// `Prefix` is deprecated but still what older configurations, and some emulators, return.)
#[allow(deprecated)]
fn rule_signature(r: &LifecycleRule) -> String {
    let prefix = r
        .filter()
        .and_then(|f| f.prefix())
        .or(r.prefix())
        .unwrap_or("");
    let transitions: Vec<String> = r
        .transitions()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t.days().unwrap_or_default(),
                t.storage_class().map(|c| c.as_str()).unwrap_or("")
            )
        })
        .collect();
    format!(
        "{}|{}|{prefix}|{}|{:?}|{:?}",
        r.id().unwrap_or(""),
        r.status().as_str(),
        transitions.join(","),
        r.noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        r.expiration().and_then(|e| e.days()),
    )
}

fn lifecycle_matches(got: &[LifecycleRule], want: &[LifecycleRule]) -> bool {
    let mut a: Vec<String> = got.iter().map(rule_signature).collect();
    let mut b: Vec<String> = want.iter().map(rule_signature).collect();
    a.sort();
    b.sort();
    a == b
}

async fn tags_of(ctx: &StepCtx, name: &str) -> Result<Vec<(String, String)>> {
    let out = no_config(
        ctx.aws()
            .s3()
            .get_bucket_tagging()
            .bucket(name)
            .send()
            .await
            .aws("s3:GetBucketTagging", name),
    )?;
    Ok(out
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default())
}

async fn create(ctx: &StepCtx, spec: &BucketSpec) -> Result<Found> {
    let mut req = create_bucket_request(ctx, &spec.name);
    if spec.object_lock_days.is_some() {
        // Also turns versioning on, which Object Lock requires.
        req = req.object_lock_enabled_for_bucket(true);
    }
    req.send().await.aws("s3:CreateBucket", &spec.name)?;
    Ok(Found::new(&spec.name)
        .arn(bucket_arn(&spec.name))
        .attr("role", spec.role))
}

/// Creates the bucket if missing and brings every setting in line. Settings of a bucket
/// created in this run are part of creating it; on an existing bucket each is read back
/// and only a drifted one is changed.
pub async fn ensure(ctx: &StepCtx, spec: &BucketSpec) -> Result<Found> {
    let name = spec.name.as_str();
    let exists = exists(ctx, name).await?;
    let mut current_tags = Vec::new();
    if exists {
        current_tags = tags_of(ctx, name).await?;
        // A bucket this stack recorded is adopted even if its tags were lost (they are
        // repaired below); any other must carry the stack tag.
        let recorded = ctx.records(Some(KIND)).iter().any(|r| r.id == name);
        if !recorded {
            let tag = current_tags
                .iter()
                .find(|(k, _)| k == STACK_TAG)
                .map(|(_, v)| v.as_str());
            ctx.check_ours("S3 bucket", name, tag)?;
        }
    }
    let found = ctx
        .ensure(
            KIND,
            name,
            || async {
                Ok(exists.then(|| {
                    Found::new(name)
                        .arn(bucket_arn(name))
                        .attr("role", spec.role)
                }))
            },
            || create(ctx, spec),
        )
        .await?;
    if found.is_pending() {
        return Ok(found);
    }
    let created = !exists;
    configure(ctx, spec, created, current_tags).await?;
    Ok(found)
}

/// An existing bucket's settings, read all at once: the reads do not depend on each other.
/// The fixes then go one after another ([`configure`]): S3 may answer `OperationAborted` to
/// concurrent changes of one bucket, and the public access block must precede the policy.
#[derive(Default)]
struct Settings {
    public_access_blocked: bool,
    versioned: bool,
    encryption: Option<aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput>,
    lifecycle: Option<
        aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput,
    >,
    object_lock: Option<aws_sdk_s3::types::ObjectLockConfiguration>,
    policy: Option<String>,
}

impl Settings {
    async fn read(ctx: &StepCtx, name: &str, object_lock: bool) -> Result<Settings> {
        let s3 = ctx.aws().s3();
        let encryption = async {
            Ok(no_config(
                s3.get_bucket_encryption()
                    .bucket(name)
                    .send()
                    .await
                    .aws("s3:GetBucketEncryption", name),
            )?)
        };
        let lifecycle = async {
            Ok(no_config(
                s3.get_bucket_lifecycle_configuration()
                    .bucket(name)
                    .send()
                    .await
                    .aws("s3:GetBucketLifecycleConfiguration", name),
            )?)
        };
        let lock = async {
            if !object_lock {
                return Ok(None);
            }
            Ok(no_config(
                s3.get_object_lock_configuration()
                    .bucket(name)
                    .send()
                    .await
                    .aws("s3:GetObjectLockConfiguration", name),
            )?
            .and_then(|o| o.object_lock_configuration))
        };
        let (public_access_blocked, versioned, encryption, lifecycle, object_lock, policy) = tokio::try_join!(
            public_access_blocked(ctx, name),
            versioning_enabled(ctx, name),
            encryption,
            lifecycle,
            lock,
            get_policy(ctx, name),
        )?;
        Ok(Settings {
            public_access_blocked,
            versioned,
            encryption,
            lifecycle,
            object_lock,
            policy,
        })
    }
}

async fn configure(
    ctx: &StepCtx,
    spec: &BucketSpec,
    created: bool,
    current_tags: Vec<(String, String)>,
) -> Result<()> {
    let s3 = ctx.aws().s3();
    let name = spec.name.as_str();

    let read = if created {
        Settings::default()
    } else {
        Settings::read(ctx, name, spec.object_lock_days.is_some()).await?
    };

    // Tags: ours set, anyone else's kept (PutBucketTagging replaces the whole set).
    let want_tags = ctx.tags(Some(name));
    let tags_ok = want_tags.iter().all(|t| current_tags.contains(t));
    fix(ctx, name, created, !tags_ok, "set tags", || async {
        let mut all: Vec<(String, String)> = current_tags
            .iter()
            .filter(|(k, _)| !want_tags.iter().any(|(wk, _)| wk == k))
            .cloned()
            .collect();
        all.extend(want_tags.iter().cloned());
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(s3_tags(&all)?)
            .send()
            .await
            .aws("s3:PutBucketTagging", name)?;
        Ok(())
    })
    .await?;

    // Public access block first: the policy written below must pass it.
    ensure_public_access_blocked(ctx, name, created, read.public_access_blocked).await?;

    // Versioning (a bucket created with Object Lock has it already; setting it again is
    // harmless and keeps creation uniform).
    ensure_versioning(ctx, name, created, read.versioned).await?;

    // Default encryption.
    let kms = spec.kms_key_arn.as_deref();
    let encryption_ok = if created {
        false
    } else {
        let rule = read
            .encryption
            .as_ref()
            .and_then(|o| o.server_side_encryption_configuration())
            .and_then(|c| c.rules().first());
        let default = rule.and_then(|r| r.apply_server_side_encryption_by_default());
        match (kms, default) {
            // Unknown until the kms step has run (plan of a partial stack): leave it.
            (Some(k), _) if is_pending(k) => true,
            (Some(k), Some(d)) => {
                d.sse_algorithm() == &ServerSideEncryption::AwsKms
                    && d.kms_master_key_id()
                        .is_some_and(|id| id == k || k.ends_with(&format!("/{id}")))
                    && rule.and_then(|r| r.bucket_key_enabled()) == Some(true)
            }
            (None, Some(d)) => d.sse_algorithm() == &ServerSideEncryption::Aes256,
            (_, None) => false,
        }
    };
    let what = match kms {
        Some(_) => "encrypt with the stack's KMS key (SSE-KMS, bucket key)",
        None => "encrypt with S3-managed keys (SSE-S3)",
    };
    fix(ctx, name, created, !encryption_ok, what, || async {
        let default = match kms {
            Some(k) => ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(k),
            None => {
                ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
            }
        }
        .build()
        .context("building the default encryption")?;
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(kms.is_some())
            .build();
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .context("building the encryption configuration")?,
            )
            .send()
            .await
            .aws("s3:PutBucketEncryption", name)?;
        Ok(())
    })
    .await?;

    // Lifecycle: this tool owns the bucket's lifecycle configuration as a whole.
    let want_rules = lifecycle_rules(spec)?;
    let lifecycle_ok = !created
        && read
            .lifecycle
            .as_ref()
            .is_some_and(|o| lifecycle_matches(o.rules(), &want_rules));
    let what = match noncurrent_expiration_days(spec) {
        Some(days) => format!(
            "lifecycle: Standard-IA after {IA_TRANSITION_DAYS} days, expire non-current \
             versions after {days} days"
        ),
        None => format!("lifecycle: Standard-IA after {IA_TRANSITION_DAYS} days"),
    };
    fix(ctx, name, created, !lifecycle_ok, &what, || async {
        s3.put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .set_rules(Some(want_rules.clone()))
                    .build()
                    .context("building the lifecycle configuration")?,
            )
            .send()
            .await
            .aws("s3:PutBucketLifecycleConfiguration", name)?;
        Ok(())
    })
    .await?;

    // Object Lock default retention (governance: removable by a principal allowed to
    // bypass it, which `down` relies on).
    if let Some(days) = spec.object_lock_days {
        let lock_ok = !created && {
            let got = read.object_lock.clone();
            got.is_some_and(|c| {
                let r = c.rule().and_then(|r| r.default_retention());
                c.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled)
                    && r.and_then(|r| r.mode()) == Some(&ObjectLockRetentionMode::Governance)
                    && r.and_then(|r| r.days()) == Some(days)
                    // moto reports `Years` 0 next to `Days`.
                    && r.and_then(|r| r.years()).unwrap_or(0) == 0
            })
        };
        let what = format!("Object Lock: governance retention of {days} days by default");
        fix(ctx, name, created, !lock_ok, &what, || async {
            s3.put_object_lock_configuration()
                .bucket(name)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .rule(
                            ObjectLockRule::builder()
                                .default_retention(
                                    DefaultRetention::builder()
                                        .mode(ObjectLockRetentionMode::Governance)
                                        .days(days)
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .aws("s3:PutObjectLockConfiguration", name)?;
            Ok(())
        })
        .await?;
    }

    // TLS-only policy statement (other statements, e.g. the CDN's grant, are kept).
    let new_policy = upsert_statement(read.policy.as_deref(), &tls_only_statement(name))?;
    fix(
        ctx,
        name,
        created,
        new_policy.is_some(),
        "bucket policy: deny requests without TLS",
        || set_policy(ctx, name, new_policy.clone()),
    )
    .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_s3_limits() {
        let a = assets_bucket_name("123456789012", "abcdefghij-klmnopqrstuv");
        assert!(a.len() <= 63, "{a}");
        assert_eq!(txlog_bucket_name("1", "x"), "fintech-txlog-1-x");
    }

    #[test]
    fn lifecycle_rules_follow_the_spec() {
        let mut spec = BucketSpec {
            role: "assets",
            name: "b".into(),
            kms_key_arn: None,
            object_lock_days: None,
            expire_noncurrent: true,
        };
        let r = &lifecycle_rules(&spec).unwrap()[0];
        assert_eq!(r.transitions()[0].days(), Some(30));
        assert_eq!(
            r.transitions()[0].storage_class(),
            Some(&TransitionStorageClass::StandardIa)
        );
        assert_eq!(
            r.noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days()),
            Some(30)
        );
        let assets = lifecycle_rules(&spec).unwrap();
        spec.expire_noncurrent = false;
        let none = lifecycle_rules(&spec).unwrap();
        assert!(none[0].noncurrent_version_expiration().is_none());
        assert!(lifecycle_matches(&none, &lifecycle_rules(&spec).unwrap()));
        assert!(!lifecycle_matches(&none, &assets));
    }

    #[test]
    fn txlog_noncurrent_versions_expire_after_the_object_lock_retention() {
        let txlog = |days| BucketSpec {
            role: "txlog",
            name: "t".into(),
            kms_key_arn: None,
            object_lock_days: Some(days),
            expire_noncurrent: true,
        };
        for days in [1, 30, 400, 36500] {
            let spec = txlog(days);
            assert_eq!(noncurrent_expiration_days(&spec), Some(days));
            let r = &lifecycle_rules(&spec).unwrap()[0];
            assert_eq!(
                r.noncurrent_version_expiration()
                    .and_then(|n| n.noncurrent_days()),
                Some(days),
                "never before the retention ends"
            );
            assert_eq!(r.transitions()[0].days(), Some(IA_TRANSITION_DAYS));
            assert!(r.expiration().is_none(), "current versions are kept");
        }
        // Drift: a rule without the expiry (a stack from before it) or with a shorter one
        // differs from what is wanted, so `up` puts the configuration back.
        let want = lifecycle_rules(&txlog(30)).unwrap();
        let old = lifecycle_rules(&BucketSpec {
            expire_noncurrent: false,
            ..txlog(30)
        })
        .unwrap();
        assert!(!lifecycle_matches(&old, &want));
        assert!(!lifecycle_matches(
            &lifecycle_rules(&txlog(7)).unwrap(),
            &want
        ));
        assert!(lifecycle_matches(
            &lifecycle_rules(&txlog(30)).unwrap(),
            &want
        ));
        // Buckets without Object Lock keep the 30 days.
        let assets = BucketSpec {
            object_lock_days: None,
            ..txlog(400)
        };
        assert_eq!(
            noncurrent_expiration_days(&assets),
            Some(NONCURRENT_EXPIRATION_DAYS)
        );
    }
}
