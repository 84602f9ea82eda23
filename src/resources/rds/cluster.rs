//! `rds:db-cluster`: the Aurora PostgreSQL cluster, encrypted with the stack's KMS key, with
//! automated backups, PostgreSQL log export to CloudWatch, IAM database authentication,
//! deletion protection off (the stack must be removable by `down`), and master credentials
//! that RDS generates and keeps in Secrets Manager, encrypted with the stack key: the tool
//! never chooses, sees or stores the password.
//!
//! [`ensure`] does not wait: the caller creates the instances right after it and waits for
//! the cluster and its instances together ([`wait_available`]), since each takes 5-10 minutes
//! on AWS and RDS builds them in parallel. Drift on an existing cluster is repaired with one
//! ModifyDBCluster ([`ClusterDrift`], [`repair`]); what cannot change in place (engine,
//! encryption, storage key, engine version) is refused or reported ([`check_unfixable`]).
//!
//! Teardown: after its recorded instances (they are built on it, so `down` deletes them
//! first, concurrently), and after any member the state does not know, the cluster is
//! deleted without a final snapshot (RDS deletes its managed secret and automated backups
//! with it) and waited for until gone, as the subnet and parameter groups cannot be deleted
//! while it exists, even deleting.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::{
    CloudwatchLogsExportConfiguration, DbCluster, ServerlessV2ScalingConfiguration,
};

use super::{check_ours, instance, is_busy, lock, rds_tags, AURORA_TIMEOUT, ENGINE};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "rds:db-cluster";

/// The log type Aurora PostgreSQL exports to CloudWatch Logs.
pub const LOG_EXPORT: &str = "postgresql";

/// Cluster states from which Aurora does not recover by itself: waiting is pointless.
const FAILED: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-parameters",
    "incompatible-restore",
    "migration-failed",
];

pub struct Cluster;

/// The log group Aurora exports the cluster's PostgreSQL log to. RDS creates it itself on the
/// first export, unencrypted and never expiring (Aurora User Guide, "Publishing Aurora
/// PostgreSQL logs to Amazon CloudWatch Logs"), so the step creates it first with the stack
/// key and retention, and deletes it in `down` (AWS-CONTRACTS B10).
pub fn log_export_group(cluster_id: &str) -> String {
    format!("/aws/rds/cluster/{cluster_id}/{LOG_EXPORT}")
}

/// What the cluster should look like, from the config and the upstream outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredCluster {
    pub backup_retention_days: i32,
    pub preferred_backup_window: String,
    /// Serverless v2 min and max ACUs (serverless mode only).
    pub scaling: Option<(f64, f64)>,
    /// The database security group (a plan-mode placeholder until the network exists).
    pub security_group: String,
    pub parameter_group: String,
    pub kms_key_arn: String,
}

/// The cluster the stack wants: what is set only at creation, plus [`DesiredCluster`].
#[derive(Debug, Clone, Copy)]
pub struct ClusterSpec<'a> {
    pub name: &'a str,
    pub engine_version: &'a str,
    pub database_name: &'a str,
    pub master_username: &'a str,
    pub subnet_group: &'a str,
    pub want: &'a DesiredCluster,
}

/// The ModifyDBCluster that brings an existing cluster back to [`DesiredCluster`]: only what
/// can be changed in place, cheaply and without a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterDrift {
    pub backup_retention_days: Option<i32>,
    pub preferred_backup_window: Option<String>,
    pub disable_deletion_protection: bool,
    pub enable_log_export: bool,
    pub enable_iam_auth: bool,
    pub scaling: Option<(f64, f64)>,
    pub security_groups: Option<Vec<String>>,
    pub parameter_group: Option<String>,
    /// The master password was taken out of Secrets Manager: hand it back to RDS.
    pub manage_master_password: bool,
    /// What changes, for the report.
    pub changes: Vec<String>,
}

impl ClusterDrift {
    /// Compares a described cluster with what the config asks for.
    pub fn of(c: &DbCluster, want: &DesiredCluster) -> ClusterDrift {
        let mut d = ClusterDrift::default();
        if c.backup_retention_period() != Some(want.backup_retention_days) {
            d.backup_retention_days = Some(want.backup_retention_days);
            d.changes.push(format!(
                "backup retention {} -> {} days",
                c.backup_retention_period().unwrap_or_default(),
                want.backup_retention_days
            ));
        }
        if c.preferred_backup_window() != Some(want.preferred_backup_window.as_str()) {
            d.preferred_backup_window = Some(want.preferred_backup_window.clone());
            d.changes.push(format!(
                "backup window {} -> {}",
                c.preferred_backup_window().unwrap_or("none"),
                want.preferred_backup_window
            ));
        }
        if c.deletion_protection() == Some(true) {
            d.disable_deletion_protection = true;
            d.changes.push("turn deletion protection off".into());
        }
        if !c
            .enabled_cloudwatch_logs_exports()
            .iter()
            .any(|l| l == LOG_EXPORT)
        {
            d.enable_log_export = true;
            d.changes
                .push(format!("export `{LOG_EXPORT}` logs to CloudWatch"));
        }
        if c.iam_database_authentication_enabled() != Some(true) {
            d.enable_iam_auth = true;
            d.changes.push("turn IAM database authentication on".into());
        }
        if let Some((min, max)) = want.scaling {
            let got = c
                .serverless_v2_scaling_configuration()
                .map(|s| (s.min_capacity(), s.max_capacity()));
            if got != Some((Some(min), Some(max))) {
                d.scaling = Some((min, max));
                let was = match got {
                    Some((Some(a), Some(b))) => format!("{a}-{b}"),
                    _ => "none".into(),
                };
                d.changes
                    .push(format!("Serverless v2 capacity {was} -> {min}-{max} ACUs"));
            }
        }
        if !is_pending(&want.security_group) {
            let got: BTreeSet<&str> = c
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id())
                .collect();
            if got != BTreeSet::from([want.security_group.as_str()]) {
                d.security_groups = Some(vec![want.security_group.clone()]);
                d.changes.push(format!(
                    "security groups {:?} -> [{}]",
                    got, want.security_group
                ));
            }
        }
        if c.db_cluster_parameter_group() != Some(want.parameter_group.as_str()) {
            d.parameter_group = Some(want.parameter_group.clone());
            d.changes.push(format!(
                "parameter group {} -> {}",
                c.db_cluster_parameter_group().unwrap_or("none"),
                want.parameter_group
            ));
        }
        if c.master_user_secret().is_none() {
            d.manage_master_password = true;
            d.changes
                .push("let RDS manage the master password in Secrets Manager".into());
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// DescribeDBClusters of `id`; `None` if there is no such cluster.
pub async fn describe(ctx: &StepCtx, id: &str) -> Result<Option<DbCluster>> {
    Ok(ctx
        .aws()
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .aws("rds:DescribeDBClusters", id)
        .not_found_ok()?
        .and_then(|o| o.db_clusters().first().cloned()))
}

/// Waits until the cluster `id` no longer exists.
pub async fn wait_gone(ctx: &StepCtx, id: &str) -> Result<()> {
    ctx.wait_for(
        &format!("Aurora cluster {id} to be deleted"),
        AURORA_TIMEOUT,
        || async { Ok(describe(ctx, id).await?.is_none().then_some(())) },
    )
    .await
}

/// Finds the cluster `spec` (waiting out a deletion left by an interrupted `down`) or creates
/// it, without waiting for it. Returns the record, the cluster as last described (None in
/// plan mode for a new one) and whether this run created it.
pub async fn ensure(
    ctx: &StepCtx,
    spec: &ClusterSpec<'_>,
) -> Result<(Found, Option<DbCluster>, bool)> {
    let rds = ctx.aws().rds();
    let ClusterSpec {
        name,
        engine_version,
        database_name,
        master_username,
        subnet_group,
        want,
    } = *spec;
    // Set by whichever closure runs.
    let described: Mutex<Option<DbCluster>> = Mutex::new(None);
    let created = AtomicBool::new(false);
    let found_of = |c: &DbCluster| {
        Found::new(c.db_cluster_identifier().unwrap_or(name))
            .arn(c.db_cluster_arn().unwrap_or_default())
            .attr(
                "resource_id",
                c.db_cluster_resource_id().unwrap_or_default(),
            )
    };
    let cluster = ctx
        .ensure(
            KIND,
            name,
            || async {
                let mut c = describe(ctx, name).await?;
                if let Some(existing) = &c {
                    check_ours(ctx, "Aurora cluster", name, existing.tag_list())?;
                    if existing.status() == Some("deleting") && !ctx.is_plan() {
                        // An interrupted `down`: it cannot be stopped, so let it finish
                        // and build a new one.
                        wait_gone(ctx, name).await?;
                        c = None;
                    }
                }
                *lock(&described) = c.clone();
                Ok(c.as_ref().map(found_of))
            },
            || async {
                let mut req = rds
                    .create_db_cluster()
                    .db_cluster_identifier(name)
                    .engine(ENGINE)
                    .engine_version(engine_version)
                    .database_name(database_name)
                    .master_username(master_username)
                    // RDS generates the password and keeps it in Secrets Manager,
                    // encrypted with the stack key: the tool never sees it.
                    .manage_master_user_password(true)
                    .master_user_secret_kms_key_id(&want.kms_key_arn)
                    .storage_encrypted(true)
                    .kms_key_id(&want.kms_key_arn)
                    .backup_retention_period(want.backup_retention_days)
                    .preferred_backup_window(&want.preferred_backup_window)
                    .deletion_protection(false)
                    .enable_cloudwatch_logs_exports(LOG_EXPORT)
                    .enable_iam_database_authentication(true)
                    .copy_tags_to_snapshot(true)
                    .db_subnet_group_name(subnet_group)
                    .db_cluster_parameter_group_name(&want.parameter_group)
                    .vpc_security_group_ids(&want.security_group)
                    .set_tags(Some(rds_tags(ctx, name)));
                if let Some((min, max)) = want.scaling {
                    req = req.serverless_v2_scaling_configuration(
                        ServerlessV2ScalingConfiguration::builder()
                            .min_capacity(min)
                            .max_capacity(max)
                            .build(),
                    );
                }
                let out = req.send().await.aws("rds:CreateDBCluster", name)?;
                let c = out
                    .db_cluster
                    .context("CreateDBCluster returned no cluster")?;
                let found = found_of(&c);
                *lock(&described) = Some(c);
                created.store(true, Ordering::Relaxed);
                Ok(found)
            },
        )
        .await?;
    let described = lock(&described).take();
    Ok((cluster, described, created.load(Ordering::Relaxed)))
}

/// Starts the cluster `id`, described as `c`, if it is stopped: a stopped cluster (stopped
/// by hand to save money) never becomes available by itself.
pub async fn start_if_stopped(ctx: &StepCtx, id: &str, c: &DbCluster) -> Result<()> {
    if c.status() != Some("stopped") {
        return Ok(());
    }
    ctx.change(KIND, id, "start the stopped cluster", || async {
        ctx.aws()
            .rds()
            .start_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .aws("rds:StartDBCluster", id)?;
        Ok(())
    })
    .await
}

/// Polls until the cluster and the given instances are all `available`; returns the cluster.
/// Fails at once on a state Aurora does not recover from by itself.
pub async fn wait_available(
    ctx: &StepCtx,
    cluster_id: &str,
    instances: &[String],
) -> Result<DbCluster> {
    ctx.wait_for(
        &format!("Aurora cluster {cluster_id} and its instances to be available"),
        AURORA_TIMEOUT,
        || async {
            let c = describe(ctx, cluster_id)
                .await?
                .with_context(|| format!("Aurora cluster {cluster_id} disappeared"))?;
            let status = c.status().unwrap_or_default();
            if FAILED.contains(&status) {
                bail!("Aurora cluster {cluster_id} is `{status}`");
            }
            let members = instance::of_cluster(ctx, cluster_id).await?;
            let mut ready = status == "available";
            for id in instances {
                let i = members
                    .iter()
                    .find(|i| i.db_instance_identifier() == Some(id.as_str()))
                    .with_context(|| format!("Aurora instance {id} disappeared"))?;
                let s = i.db_instance_status().unwrap_or_default();
                if instance::FAILED.contains(&s) {
                    bail!("Aurora instance {id} is `{s}`");
                }
                ready &= s == "available";
            }
            Ok(ready.then_some(c))
        },
    )
    .await
}

/// Repairs the drift of the cluster `id`, described as `c`, from `want` with one
/// ModifyDBCluster (a plan item in plan mode); whether there was any. ModifyDBCluster needs
/// the cluster available: call this after [`wait_available`], and wait again when it returns
/// true.
pub async fn repair(ctx: &StepCtx, id: &str, c: &DbCluster, want: &DesiredCluster) -> Result<bool> {
    let drift = ClusterDrift::of(c, want);
    if drift.is_empty() {
        return Ok(false);
    }
    ctx.change(KIND, id, &drift.changes.join(", "), || {
        modify(ctx, id, &drift, &want.kms_key_arn)
    })
    .await?;
    Ok(true)
}

async fn modify(ctx: &StepCtx, id: &str, d: &ClusterDrift, key: &str) -> Result<()> {
    let mut req = ctx
        .aws()
        .rds()
        .modify_db_cluster()
        .db_cluster_identifier(id)
        .apply_immediately(true)
        .set_backup_retention_period(d.backup_retention_days)
        .set_preferred_backup_window(d.preferred_backup_window.clone())
        .set_vpc_security_group_ids(d.security_groups.clone())
        .set_db_cluster_parameter_group_name(d.parameter_group.clone());
    if d.disable_deletion_protection {
        req = req.deletion_protection(false);
    }
    if d.enable_log_export {
        req = req.cloudwatch_logs_export_configuration(
            CloudwatchLogsExportConfiguration::builder()
                .enable_log_types(LOG_EXPORT)
                .build(),
        );
    }
    if d.enable_iam_auth {
        req = req.enable_iam_database_authentication(true);
    }
    if let Some((min, max)) = d.scaling {
        req = req.serverless_v2_scaling_configuration(
            ServerlessV2ScalingConfiguration::builder()
                .min_capacity(min)
                .max_capacity(max)
                .build(),
        );
    }
    if d.manage_master_password {
        req = req
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(key);
    }
    req.send().await.aws("rds:ModifyDBCluster", id)?;
    Ok(())
}

/// What `up` cannot repair in place on an existing cluster: refuse a foreign engine or an
/// unencrypted cluster, and tell the operator about a different key or engine version
/// (`engine_version` is the configured one).
pub fn check_unfixable(
    ctx: &StepCtx,
    c: &DbCluster,
    want: &DesiredCluster,
    engine_version: &str,
) -> Result<()> {
    let id = c.db_cluster_identifier().unwrap_or_default();
    if c.engine() != Some(ENGINE) {
        bail!(
            "Aurora cluster {} runs {}, not {ENGINE}",
            id,
            c.engine().unwrap_or("an unknown engine")
        );
    }
    if c.storage_encrypted() != Some(true) {
        bail!(
            "Aurora cluster {} is not encrypted, and encryption cannot be turned on in \
             place: restore it from an encrypted snapshot copy, or `down` and `up`",
            id
        );
    }
    let key = c.kms_key_id().unwrap_or_default();
    if !is_pending(&want.kms_key_arn) && key != want.kms_key_arn {
        ctx.sh.reporter.message(
            ctx.step,
            &format!(
                "Aurora cluster {} is encrypted with {key}, not the stack key {} \
                 (a storage key cannot change in place)",
                id, want.kms_key_arn
            ),
        );
    }
    if c.engine_version() != Some(engine_version) {
        ctx.sh.reporter.message(
            ctx.step,
            &format!(
                "Aurora cluster {} runs engine {}, the config asks for {}; engine \
                 upgrades are not done by `up`",
                id,
                c.engine_version().unwrap_or("?"),
                engine_version
            ),
        );
    }
    Ok(())
}

/// Asks RDS to delete the cluster without a final snapshot, turning deletion protection off
/// first if someone turned it on; it is gone only once [`wait_gone`] returns.
pub async fn request_delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let rds = ctx.aws().rds();
    ctx.check_cancelled()?;
    ctx.wait_for(
        &format!("Aurora cluster {id} to accept deletion"),
        AURORA_TIMEOUT,
        || async {
            let c = match describe(ctx, id).await? {
                None => return Ok(Some(())),
                Some(c) if c.status() == Some("deleting") => return Ok(Some(())),
                Some(c) => c,
            };
            if c.deletion_protection() == Some(true) {
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!("turning deletion protection of Aurora cluster {id} off"),
                );
                let r = rds
                    .modify_db_cluster()
                    .db_cluster_identifier(id)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .aws("rds:ModifyDBCluster", id);
                match r {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => return Ok(Some(())),
                    Err(e) if is_busy(&e) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            // No final snapshot: `down` removes the stack. Automated backups go too
            // (RDS's default, spelled out), and with the cluster the RDS-managed secret.
            match rds
                .delete_db_cluster()
                .db_cluster_identifier(id)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await
                .aws("rds:DeleteDBCluster", id)
            {
                Ok(_) => Ok(Some(())),
                Err(e) if e.is_not_found() => Ok(Some(())),
                Err(e) if is_busy(&e) => {
                    tracing::debug!(error = %e, "cluster not deletable yet; retrying");
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        },
    )
    .await
}

/// Deletes the cluster `id` and waits until it is gone. RDS refuses to delete a cluster
/// with members not yet deleting: members the state does not know (added by hand, or a
/// record lost in a crash) are deleted first and waited for together; the recorded ones are
/// gone already (`down` deletes them before the cluster they are built on).
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let members: Vec<String> = describe(ctx, id)
        .await?
        .map(|c| {
            c.db_cluster_members()
                .iter()
                .filter_map(|m| m.db_instance_identifier().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for m in &members {
        instance::request_delete(ctx, m).await?;
    }
    futures::future::try_join_all(members.iter().map(|m| instance::wait_gone(ctx, m))).await?;
    for m in &members {
        ctx.sh.reporter.deleted(ctx.step, instance::KIND, m);
    }
    request_delete(ctx, id).await?;
    wait_gone(ctx, id).await
}

#[async_trait]
impl Provider for Cluster {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id)
            .await?
            .map(|c| c.status().unwrap_or("exists").to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::{
        MasterUserSecret, ServerlessV2ScalingConfigurationInfo, VpcSecurityGroupMembership,
    };

    fn want(scaling: Option<(f64, f64)>) -> DesiredCluster {
        DesiredCluster {
            backup_retention_days: 7,
            preferred_backup_window: "03:00-04:00".into(),
            scaling,
            security_group: "sg-db".into(),
            parameter_group: "dbparams-dev".into(),
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        }
    }

    fn matching() -> aws_sdk_rds::types::builders::DbClusterBuilder {
        DbCluster::builder()
            .backup_retention_period(7)
            .preferred_backup_window("03:00-04:00")
            .deletion_protection(false)
            .enabled_cloudwatch_logs_exports("postgresql")
            .iam_database_authentication_enabled(true)
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-db")
                    .build(),
            )
            .db_cluster_parameter_group("dbparams-dev")
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:s").build())
    }

    #[test]
    fn the_log_export_group_is_the_one_rds_writes_to() {
        assert_eq!(
            log_export_group("aurora-dev"),
            "/aws/rds/cluster/aurora-dev/postgresql"
        );
    }

    #[test]
    fn a_matching_cluster_has_no_drift() {
        let d = ClusterDrift::of(&matching().build(), &want(None));
        assert!(d.is_empty(), "{d:?}");
        let serverless = matching()
            .serverless_v2_scaling_configuration(
                ServerlessV2ScalingConfigurationInfo::builder()
                    .min_capacity(0.5)
                    .max_capacity(4.0)
                    .build(),
            )
            .build();
        assert!(ClusterDrift::of(&serverless, &want(Some((0.5, 4.0)))).is_empty());
    }

    #[test]
    fn drift_is_detected_field_by_field() {
        let c = matching()
            .backup_retention_period(1)
            .preferred_backup_window("01:00-01:30")
            .deletion_protection(true)
            .set_enabled_cloudwatch_logs_exports(Some(vec![]))
            .iam_database_authentication_enabled(false)
            .set_master_user_secret(None)
            .build();
        let d = ClusterDrift::of(&c, &want(Some((0.5, 4.0))));
        assert_eq!(d.backup_retention_days, Some(7));
        assert_eq!(d.preferred_backup_window.as_deref(), Some("03:00-04:00"));
        assert!(d.disable_deletion_protection);
        assert!(d.enable_log_export);
        assert!(d.enable_iam_auth);
        assert!(d.manage_master_password);
        assert_eq!(d.scaling, Some((0.5, 4.0)));
        assert_eq!(d.security_groups, None);
        assert_eq!(d.changes.len(), 7, "{:?}", d.changes);
    }

    #[test]
    fn unknown_security_group_in_plan_mode_is_not_drift() {
        let mut w = want(None);
        w.security_group = format!("{} output sg_db_id)", crate::step::PENDING_PREFIX);
        let c = matching().set_vpc_security_groups(Some(vec![])).build();
        assert!(ClusterDrift::of(&c, &w).is_empty());
        let d = ClusterDrift::of(&c, &want(None));
        assert_eq!(d.security_groups, Some(vec!["sg-db".to_string()]));
    }
}
