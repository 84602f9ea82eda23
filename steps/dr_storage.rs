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
//! drifted (see [`crate::resources::s3::replication`]). Without `dr.region` nothing is
//! built, and what an earlier run recorded is removed by `up` as well.
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): the replication
//! configuration names the replica bucket and the role S3 replicates as, and is built on the
//! buckets of every region and on the role, so it goes before the source bucket, the replica
//! and the role; the replica bucket is built on its region's key, which goes after it. The
//! `s3:bucket` provider empties the replica of every version, and the `kms:key` provider
//! schedules the DR key's deletion (KMS never deletes a key at once).

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::resources::delete_recorded;
use crate::resources::iam::{self, RoleSpec};
use crate::resources::s3::replication::{self, ReplicationSpec};
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::outputs::kms;
use crate::outputs::storage::OUT_ASSETS_BUCKET;
use crate::resources::s3::bucket::{self, BucketSpec};
use crate::resources::s3::bucket_policy::bucket_arn;

pub use crate::outputs::dr_storage::*;

/// The assets bucket's replication configuration (ID: the source bucket's name).
pub const REPLICATION: &str = replication::KIND;
pub use crate::resources::s3::replication::RULE_ID;

const OUTPUTS: [&str; 3] = [OUT_DR_BUCKET, OUT_DR_KEY_ARN, OUT_REPLICATION_ROLE_ARN];

pub struct DrStorage;

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
    let (src, dst) = (bucket_arn(source), bucket_arn(replica));
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

    /// Deletes everything recorded, in every region it was recorded in.
    async fn remove(ctx: &StepCtx) -> Result<()> {
        let regions = ctx.record_regions();
        for region in &regions {
            let c = ctx.in_region(region);
            // First, so that the storage step can delete the source bucket afterwards (and
            // nothing is replicated into a bucket being emptied).
            delete_recorded(&c, REPLICATION).await?;
            iam::delete_recorded_roles(&c).await?;
        }
        for region in &regions {
            let c = ctx.in_region(region);
            delete_recorded(&c, bucket::KIND).await?;
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
        bucket::ensure(&dr, &replica).await?;

        let source = ctx.input_str(OUT_ASSETS_BUCKET)?;
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
        let replication = ReplicationSpec {
            source: &source,
            role_arn: &role_arn,
            replica: &replica.name,
            replica_key: &key_arn,
        };
        replication::ensure(ctx, &replication).await?;

        if pending || role.is_pending() {
            return Ok(());
        }
        ctx.set_output(OUT_DR_BUCKET, replica.name.clone())?;
        ctx.set_output(OUT_DR_KEY_ARN, key_arn)?;
        ctx.set_output(OUT_REPLICATION_ROLE_ARN, role_arn)?;
        Ok(())
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
}
