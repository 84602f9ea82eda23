//! `rds:db-instance`: one instance (writer or reader) of an Aurora cluster, provisioned or
//! Serverless v2, with Performance Insights on, encrypted with the stack key, kept
//! [`PI_RETENTION_DAYS`] days.
//!
//! Created right after CreateDBCluster, without waiting for the cluster: RDS builds them in
//! parallel, and the caller waits for the cluster and its instances together
//! ([`super::cluster::wait_available`]). An instance found is checked to belong to the stack's
//! cluster; one still deleting (an interrupted `down`) is waited out and created again. Its
//! Performance Insights is repaired with ModifyDBInstance, except for the key, which RDS never
//! changes (see [`PiDrift`]); a different instance class is reported (changing it restarts
//! the instance).
//!
//! Teardown: RDS refuses to delete a cluster with members not yet deleting, so every member
//! goes first: the recorded ones as nodes of `down`'s graph (they are built on the cluster),
//! the others from the cluster's delete ([`super::cluster::delete`]); each is waited for
//! until gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Filter};

use super::{check_ours, is_busy, lock, rds_tags, AURORA_TIMEOUT, ENGINE};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "rds:db-instance";

/// Instance class of Serverless v2 instances.
pub const SERVERLESS_CLASS: &str = "db.serverless";
/// Days Performance Insights keeps its data: 7 is the free tier (other values are billed:
/// 31 * months up to 23 months, or 731; RDS API reference, CreateDBInstance
/// `PerformanceInsightsRetentionPeriod`).
pub const PI_RETENTION_DAYS: i32 = 7;

/// Instance states from which Aurora does not recover by itself.
pub const FAILED: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "restore-error",
    "storage-full",
];

pub struct Instance;

/// One of the cluster's two instances.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    /// `writer` or `reader` (the role it is created for; a failover may swap them).
    pub role: &'static str,
    pub zone: String,
    /// Failover priority: the reader is tier 1, first in line to be promoted.
    pub promotion_tier: i32,
    pub class: String,
}

/// The ModifyDBInstance that brings an instance's Performance Insights back to: on, encrypted
/// with the stack key, [`PI_RETENTION_DAYS`] days.
///
/// RDS fixes an instance's PI key the first time PI is turned on: ModifyDBInstance with any
/// other key fails with InvalidParameterCombination "You can't change your Performance
/// Insights KMS key.", even while PI is off (DescribeDBInstances keeps showing the key, and
/// turning PI on again uses it). So PI that is off is turned on with the stack key, or with
/// the instance's own key when it already has another one (the only key RDS accepts there);
/// a key other than the stack's is reported with the fix, never sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PiDrift {
    /// Turn Performance Insights on, with [`PiDrift::enable_key`] and the retention.
    pub enable: bool,
    /// The key to turn PI on with: the stack key, or the key the instance is bound to.
    pub enable_key: Option<String>,
    /// Set the retention only (PI is on with some retention already).
    pub retention: Option<i32>,
    /// PI is (or will be) encrypted with this key, not the stack key: drift ModifyDBInstance
    /// cannot repair (see above); the instance has to be replaced.
    pub foreign_key: Option<String>,
    /// What changes, for the report.
    pub changes: Vec<String>,
}

impl PiDrift {
    /// Compares a described instance with what the stack wants; `key` is the stack key's ARN
    /// (a plan-mode placeholder when the key does not exist yet).
    pub fn of(i: &DbInstance, key: &str) -> PiDrift {
        let mut d = PiDrift::default();
        // RDS always describes `PerformanceInsightsEnabled` (false when off), so an answer
        // without it is treated as off: a stack must not pass for having PI because the
        // answer did not say (moto 5.2.5 kept no PI settings; the emulator's fidelity layer
        // now does).
        let enabled = i.performance_insights_enabled().unwrap_or(false);
        // RDS describes the key as its ARN whichever form it was given in; the stack key is
        // an ARN too, so a plain comparison is enough.
        let got_key = i
            .performance_insights_kms_key_id()
            .filter(|k| !k.is_empty());
        if !is_pending(key) {
            d.foreign_key = got_key.filter(|k| *k != key).map(str::to_string);
        }
        if !enabled {
            d.enable = true;
            d.enable_key = Some(d.foreign_key.clone().unwrap_or_else(|| key.to_string()));
            d.changes.push(format!(
                "turn Performance Insights on ({PI_RETENTION_DAYS} days, {})",
                if d.foreign_key.is_some() {
                    "the key the instance is bound to"
                } else {
                    "the stack key"
                }
            ));
            return d;
        }
        let got = i.performance_insights_retention_period();
        if got != Some(PI_RETENTION_DAYS) {
            d.retention = Some(PI_RETENTION_DAYS);
            d.changes.push(format!(
                "Performance Insights retention {} -> {PI_RETENTION_DAYS} days",
                got.map(|g| g.to_string()).unwrap_or_else(|| "unset".into())
            ));
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// DescribeDBInstances of `id`; `None` if there is no such instance.
pub async fn describe(ctx: &StepCtx, id: &str) -> Result<Option<DbInstance>> {
    Ok(ctx
        .aws()
        .rds()
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .aws("rds:DescribeDBInstances", id)
        .not_found_ok()?
        .and_then(|o| o.db_instances().first().cloned()))
}

/// Every instance of a cluster, by identifier, whatever their state.
pub async fn of_cluster(ctx: &StepCtx, cluster: &str) -> Result<Vec<DbInstance>> {
    let rds = ctx.aws().rds();
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let out = rds
            .describe_db_instances()
            .filters(
                Filter::builder()
                    .name("db-cluster-id")
                    .values(cluster)
                    .build(),
            )
            .set_marker(marker)
            .send()
            .await
            .aws("rds:DescribeDBInstances", cluster)?;
        all.extend(
            out.db_instances()
                .iter()
                .filter(|i| i.db_cluster_identifier() == Some(cluster))
                .cloned(),
        );
        marker = out.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(all);
        }
    }
}

/// Waits until the instance `id` no longer exists.
pub async fn wait_gone(ctx: &StepCtx, id: &str) -> Result<()> {
    ctx.wait_for(
        &format!("Aurora instance {id} to be deleted"),
        AURORA_TIMEOUT,
        || async { Ok(describe(ctx, id).await?.is_none().then_some(())) },
    )
    .await
}

/// Finds or creates the instance `spec` of `cluster`, with Performance Insights on and
/// encrypted with `key`; returns it as last described and whether this run created it. Does
/// not wait for it to be available.
pub async fn ensure(
    ctx: &StepCtx,
    cluster: &Found,
    spec: &InstanceSpec,
    key: &str,
) -> Result<(Option<DbInstance>, bool)> {
    let rds = ctx.aws().rds();
    let name = &spec.name;
    let described: Mutex<Option<DbInstance>> = Mutex::new(None);
    let created = AtomicBool::new(false);
    let found_of = |i: &DbInstance| {
        Found::new(i.db_instance_identifier().unwrap_or(name))
            .arn(i.db_instance_arn().unwrap_or_default())
            .attr("cluster_id", &cluster.id)
            .attr("role", spec.role)
    };
    ctx.ensure(
        KIND,
        name,
        || async {
            let mut i = describe(ctx, name).await?;
            if let Some(existing) = &i {
                check_ours(ctx, "Aurora instance", name, existing.tag_list())?;
                let of = existing.db_cluster_identifier().unwrap_or("no cluster");
                if !cluster.is_pending() && of != cluster.id {
                    bail!(
                        "Aurora instance {name} belongs to {of}, not to the stack's cluster {}",
                        cluster.id
                    );
                }
                if existing.db_instance_status() == Some("deleting") && !ctx.is_plan() {
                    wait_gone(ctx, name).await?;
                    i = None;
                }
            }
            *lock(&described) = i.clone();
            Ok(i.as_ref().map(found_of))
        },
        || async {
            // Right after CreateDBCluster: RDS accepts members of a cluster that is still
            // creating; should it refuse one (InvalidDBClusterStateFault), try again.
            let out = ctx
                .wait_for(
                    &format!("Aurora cluster {} to accept instances", cluster.id),
                    AURORA_TIMEOUT,
                    || async {
                        let r = rds
                            .create_db_instance()
                            .db_instance_identifier(name)
                            .db_cluster_identifier(&cluster.id)
                            .engine(ENGINE)
                            .db_instance_class(&spec.class)
                            .availability_zone(&spec.zone)
                            .promotion_tier(spec.promotion_tier)
                            .publicly_accessible(false)
                            .auto_minor_version_upgrade(true)
                            .copy_tags_to_snapshot(true)
                            // Performance Insights is set per instance in Aurora, encrypted
                            // with the stack key rather than RDS's AWS managed key; 7 days
                            // is the free tier (Aurora User Guide, "Turning Performance
                            // Insights on and off for Aurora").
                            .enable_performance_insights(true)
                            .performance_insights_kms_key_id(key)
                            .performance_insights_retention_period(PI_RETENTION_DAYS)
                            .set_tags(Some(rds_tags(ctx, name)))
                            .send()
                            .await
                            .aws("rds:CreateDBInstance", name);
                        match r {
                            Ok(o) => Ok(Some(o)),
                            Err(e) if e.code.as_deref() == Some("InvalidDBClusterStateFault") => {
                                tracing::debug!(error = %e, "cluster not ready for instances");
                                Ok(None)
                            }
                            Err(e) => Err(e.into()),
                        }
                    },
                )
                .await?;
            let i = out
                .db_instance
                .context("CreateDBInstance returned no instance")?;
            let found = found_of(&i);
            *lock(&described) = Some(i);
            created.store(true, Ordering::Relaxed);
            Ok(found)
        },
    )
    .await?;
    let described = lock(&described).take();
    if let Some(i) = &described {
        if let Some(got) = i.db_instance_class().filter(|c| *c != spec.class) {
            // Changing the class restarts the instance: an operator's decision.
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "Aurora instance {name} is {got}, the config asks for {}; change it with \
                     `aws rds modify-db-instance` in a maintenance window (up does not \
                     restart instances)",
                    spec.class
                ),
            );
        }
    }
    Ok((described, created.load(Ordering::Relaxed)))
}

/// Repairs an existing instance's Performance Insights (see [`PiDrift`]). ModifyDBInstance
/// turns PI on or changes its retention without a restart; applied immediately. A key
/// other than the stack's cannot be changed in place and is reported with the fix.
/// ModifyDBInstance needs the instance available: call this after the wait.
pub async fn repair_performance_insights(ctx: &StepCtx, i: &DbInstance, key: &str) -> Result<()> {
    let id = i.db_instance_identifier().unwrap_or_default();
    let d = PiDrift::of(i, key);
    if let Some(other) = &d.foreign_key {
        ctx.sh.reporter.message(
            ctx.step,
            &format!(
                "Performance Insights of Aurora instance {id} is encrypted with {other}, not \
                 the stack key {key}, and RDS never changes an instance's Performance \
                 Insights key (InvalidParameterCombination, even with PI off): replace the \
                 instance (`aws rds delete-db-instance --db-instance-identifier {id}`, then \
                 `fintech-infra up` creates it again with the stack key; the data stays in \
                 the cluster volume, and deleting the writer fails over to the reader)"
            ),
        );
    }
    if d.is_empty() {
        return Ok(());
    }
    ctx.change(KIND, id, &d.changes.join(", "), || async {
        let mut req = ctx
            .aws()
            .rds()
            .modify_db_instance()
            .db_instance_identifier(id)
            .apply_immediately(true)
            .performance_insights_retention_period(PI_RETENTION_DAYS);
        if d.enable {
            req = req
                .enable_performance_insights(true)
                .set_performance_insights_kms_key_id(d.enable_key.clone());
        }
        req.send().await.aws("rds:ModifyDBInstance", id)?;
        Ok(())
    })
    .await
}

/// Asks RDS to delete one instance (unless it is already going), retrying while RDS says it
/// cannot be deleted yet (e.g. still creating); it is gone only once [`wait_gone`] returns.
pub async fn request_delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let rds = ctx.aws().rds();
    ctx.check_cancelled()?;
    ctx.wait_for(
        &format!("Aurora instance {id} to accept deletion"),
        AURORA_TIMEOUT,
        || async {
            match describe(ctx, id).await? {
                None => return Ok(Some(())),
                Some(i) if i.db_instance_status() == Some("deleting") => return Ok(Some(())),
                Some(_) => {}
            }
            // Instances of an Aurora cluster have no snapshot of their own (the cluster
            // holds the data), so there is no final-snapshot choice to make here.
            match rds
                .delete_db_instance()
                .db_instance_identifier(id)
                .send()
                .await
                .aws("rds:DeleteDBInstance", id)
            {
                Ok(_) => Ok(Some(())),
                Err(e) if e.is_not_found() => Ok(Some(())),
                Err(e) if is_busy(&e) => {
                    tracing::debug!(error = %e, "instance not deletable yet; retrying");
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
}

/// Deletes the instance `id` and waits until it is gone.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    request_delete(ctx, id).await?;
    wait_gone(ctx, id).await
}

#[async_trait]
impl Provider for Instance {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id)
            .await?
            .map(|i| i.db_instance_status().unwrap_or("exists").to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k";

    fn pi(enabled: Option<bool>, retention: Option<i32>, key: Option<&str>) -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier("aurora-writer-dev")
            .set_performance_insights_enabled(enabled)
            .set_performance_insights_retention_period(retention)
            .set_performance_insights_kms_key_id(key.map(str::to_string))
            .build()
    }

    #[test]
    fn performance_insights_on_with_the_stack_key_is_no_drift() {
        assert!(PiDrift::of(&pi(Some(true), Some(7), Some(KEY)), KEY).is_empty());
    }

    #[test]
    fn performance_insights_off_or_not_described_is_turned_on_with_key_and_retention() {
        let d = PiDrift::of(&pi(Some(false), None, None), KEY);
        assert!(d.enable, "{d:?}");
        assert_eq!(d.enable_key.as_deref(), Some(KEY));
        assert_eq!(d.changes.len(), 1);
        // Not described at all: RDS always describes it, so this is off, not "unknown".
        assert_eq!(PiDrift::of(&pi(None, None, None), KEY), d);
        // Off with the stack key still bound (turned off by hand): on again with it.
        let d = PiDrift::of(&pi(Some(false), None, Some(KEY)), KEY);
        assert!(d.enable && d.foreign_key.is_none(), "{d:?}");
        assert_eq!(d.enable_key.as_deref(), Some(KEY));
        let d = PiDrift::of(&pi(Some(true), Some(731), Some(KEY)), KEY);
        assert!(!d.enable);
        assert_eq!(d.retention, Some(PI_RETENTION_DAYS));
    }

    #[test]
    fn a_foreign_performance_insights_key_is_reported_never_sent() {
        let d = PiDrift::of(&pi(Some(true), Some(7), Some("arn:other")), KEY);
        assert!(d.is_empty(), "RDS cannot change the key: {d:?}");
        assert_eq!(d.foreign_key.as_deref(), Some("arn:other"));
        // Off with another key bound: turned on with that key (RDS refuses any other one),
        // and still reported.
        let d = PiDrift::of(&pi(Some(false), None, Some("arn:other")), KEY);
        assert!(d.enable, "{d:?}");
        assert_eq!(d.enable_key.as_deref(), Some("arn:other"));
        assert_eq!(d.foreign_key.as_deref(), Some("arn:other"));
        // Plan mode before the key exists: nothing to compare with.
        let pending = format!("{} output kms_key_arn)", crate::step::PENDING_PREFIX);
        let d = PiDrift::of(&pi(Some(true), Some(7), Some("arn:other")), &pending);
        assert_eq!(d.foreign_key, None);
        assert!(d.is_empty());
    }
}
