//! `[storage]`: the static tier's S3 buckets, owned by the storage step.

use serde::Deserialize;


/// S3 buckets of the static tier.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Default Object Lock retention (governance mode) of the transaction-log bucket, in days.
    pub object_lock_days: LockDays,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            object_lock_days: LockDays(30),
        }
    }
}

bounded!(
    /// An Object Lock default retention in days: 1 to 36500 (S3 allows up to 100 years).
    LockDays(i32), "object_lock_days", 1..=36500,
    "1 to 36500 days (S3 allows at most 100 years)"
);
