//! `s3:replication`: the replication configuration of a versioned source bucket (ID: the
//! source bucket's name): one rule replicating every object, delete markers included, into a
//! bucket in another region, KMS-encrypted objects re-encrypted there with the replica key.
//!
//! A second `up` reads the configuration back and puts it again only if it drifted. It is
//! deleted before the source bucket (and before the replica bucket is emptied, so nothing is
//! replicated into a bucket being emptied).

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
    SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::s3::bucket_policy::bucket_arn;
use crate::resources::s3::bucket_settings::no_config;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "s3:replication";
/// ID of the one replication rule.
pub const RULE_ID: &str = "dr-replica";

pub struct Replication;

/// A replication configuration the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct ReplicationSpec<'a> {
    /// The source bucket (a plan-mode placeholder until it exists).
    pub source: &'a str,
    /// The role S3 replicates as.
    pub role_arn: &'a str,
    /// The replica bucket and the key its replicas are encrypted with.
    pub replica: &'a str,
    pub replica_key: &'a str,
}

/// The bucket's replication configuration; `None` without one or without the bucket.
pub async fn get(ctx: &StepCtx, bucket: &str) -> Result<Option<ReplicationConfiguration>> {
    let out = no_config(
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

/// The configuration [`ensure`] puts on the source bucket.
pub fn wanted_configuration(
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
                .bucket(bucket_arn(replica))
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
pub fn matches(
    current: &ReplicationConfiguration,
    role_arn: &str,
    replica: &str,
    key: &str,
) -> bool {
    let [rule] = current.rules() else {
        return false;
    };
    let dest = rule.destination();
    current.role() == role_arn
        && rule.status() == &ReplicationRuleStatus::Enabled
        && dest.is_some_and(|d| d.bucket() == bucket_arn(replica))
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

/// Puts the replication configuration `spec` on its source bucket, or puts it again if the
/// one read back drifted. Recorded by the source bucket's name.
pub async fn ensure(ctx: &StepCtx, spec: &ReplicationSpec<'_>) -> Result<()> {
    let ReplicationSpec {
        source,
        role_arn,
        replica,
        replica_key: key,
    } = *spec;
    let s3 = ctx.aws().s3();
    let current = if is_pending(source) {
        None
    } else {
        get(ctx, source).await?
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
        KIND,
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
            ctx.change(KIND, &name, "replicate to the DR bucket", put)
                .await?;
        }
    }
    Ok(())
}

/// Deletes the replication configuration of the bucket `bucket`; "not found" counts as
/// deleted.
pub async fn delete(ctx: &StepCtx, bucket: &str) -> Result<()> {
    let s3 = ctx.aws().s3();
    ctx.retry_dependency(&format!("{KIND} {bucket}"), || async {
        s3.delete_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .aws("s3:DeleteBucketReplication", bucket)
    })
    .await
}

#[async_trait]
impl Provider for Replication {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(get(ctx, &rec.id).await?.map(|_| "enabled".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_read_back_is_compared_field_by_field() {
        let c = wanted_configuration("role", "dst", "key").unwrap();
        assert!(matches(&c, "role", "dst", "key"));
        assert!(!matches(&c, "role", "dst", "other-key"));
        assert!(!matches(&c, "other-role", "dst", "key"));
    }
}
