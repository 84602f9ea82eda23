//! DR storage step (seed 004): S3 cross-region replication of the assets bucket.
//!
//! In the disaster-recovery region: the stack's KMS key there (the same key step code, so the
//! same alias, policy and rotation) and the replica bucket `fintech-assets-dr-<account>-<s>`
//! built like the assets bucket (versioning, lifecycle, SSE-KMS with the DR key, public
//! access blocked, TLS only). In the stack's region: the role S3 replicates as, with a
//! customer-managed policy that can read the source's versions and write the replicas, and
//! nothing else; and the replication configuration of the assets bucket: every object,
//! delete markers included, KMS-encrypted objects re-encrypted with the DR key.
//!
//! A second `up` reads the replication configuration back and puts it again only if it
//! drifted. Teardown runs in reverse: the replication configuration (before the storage step
//! deletes the source bucket), the role and its policy, the replica bucket emptied of every
//! version, and the DR key scheduled for deletion. Without `dr.region` nothing is built, and
//! what an earlier run recorded is removed by `up` as well.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
    SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::iam::{self, RoleSpec};
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::kms;
use crate::steps::storage::{self, BucketSpec, Storage};

/// The assets bucket's replication configuration (ID: the source bucket's name).
pub const REPLICATION: &str = "s3:replication";
/// ID of the one replication rule.
pub const RULE_ID: &str = "dr-replica";

/// Output keys.
pub const OUT_DR_BUCKET: &str = "dr_assets_bucket";
pub const OUT_DR_KEY_ARN: &str = "dr_kms_key_arn";
pub const OUT_REPLICATION_ROLE_ARN: &str = "replication_role_arn";
const OUTPUTS: [&str; 3] = [OUT_DR_BUCKET, OUT_DR_KEY_ARN, OUT_REPLICATION_ROLE_ARN];

pub struct DrStorage;

/// The bucket's replication configuration; `None` without one or without the bucket.
async fn replication_of(ctx: &StepCtx, bucket: &str) -> Result<Option<ReplicationConfiguration>> {
    let out = storage::no_config(
        ctx.aws()
            .s3()
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetBucketReplication", bucket),
    )
    .not_found_ok()?;
    Ok(out.flatten().and_then(|o| o.replication_configuration))
}

pub fn replica_bucket_name(account: &str, suffix: &str) -> String {
    format!("fintech-assets-dr-{account}-{suffix}")
}

/// What the replication role may do: read the source bucket's configuration and object
/// versions, write replicas into the DR bucket, decrypt with the stack key and encrypt with
/// the DR key, each only through S3 in its own region.
pub fn replication_policy(
    source: &str,
    source_key: &str,
    source_region: &str,
    replica: &str,
    replica_key: &str,
    replica_region: &str,
) -> Value {
    let (src, dst) = (storage::bucket_arn(source), storage::bucket_arn(replica));
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadSourceConfiguration",
                "Effect": "Allow",
                "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                "Resource": [src]
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                           "s3:GetObjectVersionTagging"],
                "Resource": [format!("{src}/*")]
            },
            {
                "Sid": "WriteReplicas",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": [format!("{dst}/*")]
            },
            {
                "Sid": "DecryptSourceObjects",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [source_key],
                "Condition": {"StringLike": {
                    "kms:ViaService": format!("s3.{source_region}.amazonaws.com")}}
            },
            {
                "Sid": "EncryptReplicas",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": [replica_key],
                "Condition": {"StringLike": {
                    "kms:ViaService": format!("s3.{replica_region}.amazonaws.com")}}
            }
        ]
    })
}

/// The configuration `up` puts on the assets bucket.
fn wanted_configuration(
    role_arn: &str,
    replica: &str,
    replica_key: &str,
) -> Result<ReplicationConfiguration> {
    let rule = ReplicationRule::builder()
        .id(RULE_ID)
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        // An empty filter: every object.
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder()
                .status(DeleteMarkerReplicationStatus::Enabled)
                .build(),
        )
        // Without this S3 skips objects encrypted with KMS, i.e. every asset.
        .source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .context("building SseKmsEncryptedObjects")?,
                )
                .build(),
        )
        .destination(
            Destination::builder()
                .bucket(storage::bucket_arn(replica))
                .encryption_configuration(
                    EncryptionConfiguration::builder()
                        .replica_kms_key_id(replica_key)
                        .build(),
                )
                .build()
                .context("building the replication destination")?,
        )
        .build()
        .context("building the replication rule")?;
    ReplicationConfiguration::builder()
        .role(role_arn)
        .rules(rule)
        .build()
        .context("building the replication configuration")
}

/// Whether a configuration read back does what `wanted_configuration` asks.
fn matches(current: &ReplicationConfiguration, role_arn: &str, replica: &str, key: &str) -> bool {
    let [rule] = current.rules() else {
        return false;
    };
    let dest = rule.destination();
    current.role() == role_arn
        && rule.status() == &ReplicationRuleStatus::Enabled
        && dest.is_some_and(|d| d.bucket() == storage::bucket_arn(replica))
        && dest
            .and_then(|d| d.encryption_configuration())
            .and_then(|e| e.replica_kms_key_id())
            == Some(key)
        && rule.delete_marker_replication().and_then(|d| d.status())
            == Some(&DeleteMarkerReplicationStatus::Enabled)
        && rule
            .source_selection_criteria()
            .and_then(|c| c.sse_kms_encrypted_objects())
            .map(|o| o.status())
            == Some(&SseKmsEncryptedObjectsStatus::Enabled)
}

impl DrStorage {
    async fn ensure_role(
        ctx: &StepCtx,
        partition: &str,
        account: &str,
        doc: Value,
        pending: bool,
    ) -> Result<Found> {
        let s = ctx.suffix();
        let spec = RoleSpec {
            service: None,
            role: format!("role-s3-replication-{s}"),
            policy: format!("policy-s3-replication-{s}"),
            trust: json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}}
                }]
            }),
            document: Some(doc),
            description: format!("fintech-infra {s}: S3 replication of the assets bucket"),
            policy_description: format!("fintech-infra {s}: S3 replication to the DR region"),
            resource_star_actions: &[],
        };
        iam::ensure_role_with_policy(ctx, &spec, partition, account, pending).await
    }

    async fn ensure_replication(
        ctx: &StepCtx,
        source: &str,
        role_arn: &str,
        replica: &str,
        key: &str,
    ) -> Result<()> {
        let s3 = ctx.aws().s3();
        let current = if is_pending(source) {
            None
        } else {
            replication_of(ctx, source).await?
        };
        let put = || async {
            s3.put_bucket_replication()
                .bucket(source)
                .replication_configuration(wanted_configuration(role_arn, replica, key)?)
                .send()
                .await
                .aws("s3:PutBucketReplication", source)?;
            Ok(())
        };
        let name = format!("replication of {source}");
        let exists = current.is_some();
        ctx.ensure(
            REPLICATION,
            &name,
            || async { Ok(exists.then(|| Found::new(source))) },
            || async {
                put().await?;
                Ok(Found::new(source))
            },
        )
        .await?;
        if let Some(c) = current {
            if !matches(&c, role_arn, replica, key) {
                ctx.change(REPLICATION, &name, "replicate to the DR bucket", put)
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes everything recorded, in every region it was recorded in.
    async fn remove(ctx: &StepCtx) -> Result<()> {
        let regions = ctx.record_regions();
        for region in &regions {
            let c = ctx.in_region(region);
            let s3 = c.aws().s3();
            // First, so that the storage step can delete the source bucket afterwards (and
            // nothing is replicated into a bucket being emptied).
            c.delete_recorded(REPLICATION, |rec| async move {
                s3.delete_bucket_replication()
                    .bucket(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("s3:DeleteBucketReplication", &rec.id)
            })
            .await?;
            iam::delete_recorded_roles(&c).await?;
        }
        for region in &regions {
            let c = ctx.in_region(region);
            crate::resources::delete_recorded(&c, storage::BUCKET).await?;
            crate::resources::kms::delete_stack_keys(&c).await?;
        }
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for DrStorage {
    fn name(&self) -> &'static str {
        "dr_storage"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["storage"]
    }

    fn estimate_secs(&self) -> u64 {
        15
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let Some(region) = ctx.cfg().dr.region.clone() else {
            if !ctx.has_records() {
                return Ok(());
            }
            return ctx
                .change(
                    REPLICATION,
                    "assets bucket",
                    "remove: dr.region is not set",
                    || Self::remove(ctx),
                )
                .await;
        };
        let dr = ctx.in_region(&region.0);
        let account = ctx.account_id().await?;
        let key = crate::resources::kms::ensure_stack_key(&dr).await?;
        let key_arn = key.arn.clone().unwrap_or_else(|| key.id.clone());
        let replica = BucketSpec {
            role: "replica",
            name: replica_bucket_name(&account, ctx.suffix()),
            kms_key_arn: Some(key_arn.clone()),
            object_lock_days: None,
            expire_noncurrent: true,
        };
        Storage.ensure_bucket(&dr, &replica).await?;

        let source = ctx.input_str(storage::OUT_ASSETS_BUCKET)?;
        let source_key = ctx.input_str(kms::OUT_KEY_ARN)?;
        let doc = replication_policy(
            &source,
            &source_key,
            ctx.region(),
            &replica.name,
            &key_arn,
            dr.region(),
        );
        let pending = is_pending(&source) || is_pending(&source_key) || key.is_pending();
        let partition = if pending {
            "aws"
        } else {
            iam::partition_of(&source_key)
        };
        let role = Self::ensure_role(ctx, partition, &account, doc, pending).await?;
        let role_arn = role.arn.clone().unwrap_or_default();
        Self::ensure_replication(ctx, &source, &role_arn, &replica.name, &key_arn).await?;

        if pending || role.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_DR_BUCKET, replica.name.clone())?;
        ctx.set_output(OUT_DR_KEY_ARN, key_arn)?;
        ctx.set_output(OUT_REPLICATION_ROLE_ARN, role_arn)?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        Self::remove(ctx).await
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        match rec.kind.as_str() {
            REPLICATION => Ok(replication_of(ctx, &rec.id)
                .await?
                .map(|_| "enabled".to_string())),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_policy_is_least_privilege() {
        let doc = replication_policy(
            "src",
            "arn:aws:kms:us-east-2:1:key/a",
            "us-east-2",
            "dst",
            "arn:aws:kms:us-west-2:1:key/b",
            "us-west-2",
        );
        iam::check_least_privilege(&doc).expect("no wildcards");
        let s = doc.to_string();
        assert!(s.contains("arn:aws:s3:::src/*") && s.contains("arn:aws:s3:::dst/*"));
        assert!(s.contains("s3.us-west-2.amazonaws.com"));
    }

    #[test]
    fn configuration_read_back_is_compared_field_by_field() {
        let c = wanted_configuration("role", "dst", "key").unwrap();
        assert!(matches(&c, "role", "dst", "key"));
        assert!(!matches(&c, "role", "dst", "other-key"));
        assert!(!matches(&c, "other-role", "dst", "key"));
    }
}
