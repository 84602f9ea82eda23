//! `[dr]`: disaster recovery in a second region, read by the DR steps (this one owns the
//! section).

use serde::Deserialize;

use crate::config::*;

/// Disaster recovery in a second region (seed 004).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DrConfig {
    /// The disaster-recovery region. With it, `up` also builds there a VPC peered with the
    /// stack's VPC, a KMS key, a replica of the assets bucket that S3 replicates every object
    /// to, and a backup vault that AWS Backup copies the daily Aurora snapshots into. Without
    /// it (the default), nothing is built outside the stack's region.
    pub region: Option<RegionName>,
    /// The DR VPC's block: must not overlap `network.cidr`, as peered VPCs cannot.
    pub cidr: VpcCidr,
    /// Zones of the DR VPC's private subnets: 2 or 3.
    pub az_count: AzCount,
    /// Days AWS Backup keeps the daily Aurora snapshots, in the stack's vault and their
    /// copies in the DR vault.
    pub snapshot_retention_days: SnapshotRetentionDays,
}

impl Default for DrConfig {
    fn default() -> Self {
        DrConfig {
            region: None,
            cidr: VpcCidr("10.1.0.0/16".parse().expect("valid default")),
            az_count: AzCount(2),
            snapshot_retention_days: SnapshotRetentionDays(7),
        }
    }
}

bounded!(
    /// Days a backup recovery point is kept: 1 to 36500.
    SnapshotRetentionDays(i32), "snapshot_retention_days", 1..=36500,
    "1 to 36500 days"
);
