//! Database step: the Aurora PostgreSQL cluster that holds the transactions.
//!
//! A DB subnet group over the isolated (or private) subnets of every zone; a cluster parameter
//! group that forces TLS; the cluster, encrypted with the stack's KMS key, with automated
//! backups, PostgreSQL log export to CloudWatch, IAM database authentication, deletion
//! protection off (the stack must be removable by `down`), and master credentials that RDS
//! generates and keeps in Secrets Manager, encrypted with the stack key: the tool never
//! chooses, sees or stores the password. One writer and one reader instance in different zones,
//! either provisioned (`instance_class`) or Serverless v2 (`db.serverless`, min/max ACUs).
//!
//! The cluster and both instances are created back to back and then waited for together: each
//! takes 5-10 minutes on AWS, and RDS builds them in parallel.
//!
//! Posture the step also keeps: Performance Insights on for both instances, encrypted with the
//! stack key, 7 days (the free tier), repaired with ModifyDBInstance (PI that is off or not
//! described is turned on; a key other than the stack's is reported, since RDS never changes
//! an instance's PI key, see [`PiDrift`]); the log group of the
//! PostgreSQL log export (`/aws/rds/cluster/<cluster>/postgresql`) created before the cluster
//! with the stack key, retention and tags, since RDS would create it unencrypted and never
//! expiring (AWS-CONTRACTS B10); and the RDS-managed master secret rotating every
//! `database.secret_rotation_days` days and carrying the stack's tags (B11).
//!
//! Teardown follows what RDS enforces: the instances (waited until gone), then the cluster
//! without a final snapshot (RDS deletes its managed secret and automated backups with it),
//! then the export's log group, then the subnet and parameter groups, which RDS refuses to
//! delete while a cluster or instance, even a deleting one, still uses them.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::{
    ApplyMethod, CloudwatchLogsExportConfiguration, DbCluster, DbInstance, Filter, Parameter,
    ServerlessV2ScalingConfiguration, Tag,
};
use serde_json::json;

use crate::aws::{AwsError, AwsErrorKind, AwsResultExt, NotFoundOk};
use crate::config::{DbMode, SubnetTier};
use crate::naming::STACK_TAG;
use crate::resources::logs::log_group;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};

pub const SUBNET_GROUP: &str = "rds:db-subnet-group";
pub const PARAMETER_GROUP: &str = "rds:db-cluster-parameter-group";
pub const CLUSTER: &str = "rds:db-cluster";
pub const INSTANCE: &str = "rds:db-instance";

/// The Aurora engine the stack runs.
pub const ENGINE: &str = "aurora-postgresql";
/// Instance class of Serverless v2 instances.
pub const SERVERLESS_CLASS: &str = "db.serverless";
/// The log type Aurora PostgreSQL exports to CloudWatch Logs.
pub const LOG_EXPORT: &str = "postgresql";
/// Cluster parameters the stack sets: TLS only, as a payments database must.
/// (`rds.force_ssl` is dynamic in Aurora PostgreSQL, so it applies without a reboot.)
pub const PARAMETERS: &[(&str, &str)] = &[("rds.force_ssl", "1")];
/// Days Performance Insights keeps its data: 7 is the free tier (other values are billed:
/// 31 * months up to 23 months, or 731; RDS API reference, CreateDBInstance
/// `PerformanceInsightsRetentionPeriod`).
pub const PI_RETENTION_DAYS: i32 = 7;
/// The kind of the RDS-managed master secret in plan items. It is not recorded: RDS owns it
/// and deletes it with the cluster.
pub const SECRET: &str = "secretsmanager:secret";

/// The log group Aurora exports the cluster's PostgreSQL log to. RDS creates it itself on the
/// first export, unencrypted and never expiring (Aurora User Guide, "Publishing Aurora
/// PostgreSQL logs to Amazon CloudWatch Logs"), so the step creates it first with the stack
/// key and retention, and deletes it in `down` (AWS-CONTRACTS B10).
pub fn log_export_group(cluster_id: &str) -> String {
    format!("/aws/rds/cluster/{cluster_id}/{LOG_EXPORT}")
}

/// Output keys other steps read.
pub const OUT_CLUSTER_ID: &str = "db_cluster_id";
pub const OUT_CLUSTER_ARN: &str = "db_cluster_arn";
pub const OUT_RESOURCE_ID: &str = "db_cluster_resource_id";
pub const OUT_WRITER_ENDPOINT: &str = "db_writer_endpoint";
pub const OUT_READER_ENDPOINT: &str = "db_reader_endpoint";
pub const OUT_PORT: &str = "db_port";
pub const OUT_NAME: &str = "db_name";
pub const OUT_SECRET_ARN: &str = "db_secret_arn";
const OUTPUTS: [&str; 8] = [
    OUT_CLUSTER_ID,
    OUT_CLUSTER_ARN,
    OUT_RESOURCE_ID,
    OUT_WRITER_ENDPOINT,
    OUT_READER_ENDPOINT,
    OUT_PORT,
    OUT_NAME,
    OUT_SECRET_ARN,
];

/// Aurora creates a cluster or instance in 5-10 minutes and deletes an instance in up to ~12;
/// generous, so a slow day does not fail a run that would have finished.
const AURORA_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// Cluster states from which Aurora does not recover by itself: waiting is pointless.
const CLUSTER_FAILED: &[&str] = &[
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-parameters",
    "incompatible-restore",
    "migration-failed",
];
/// Instance states from which Aurora does not recover by itself.
const INSTANCE_FAILED: &[&str] = &[
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

pub struct Database;

/// The parameter group family of an Aurora PostgreSQL engine version: `15.8` ->
/// `aurora-postgresql15` (families are per major version).
pub fn parameter_group_family(engine_version: &str) -> String {
    let major = engine_version.split('.').next().unwrap_or(engine_version);
    format!("{ENGINE}{major}")
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

/// Whether a described secret rotates automatically every `days` days. Managed rotation may
/// be described by `AutomaticallyAfterDays` or by the schedule expression `rate(N days)`
/// (Secrets Manager API reference, RotationRulesType).
pub fn rotation_ok(
    enabled: Option<bool>,
    rules: Option<&aws_sdk_secretsmanager::types::RotationRulesType>,
    days: i64,
) -> bool {
    if enabled != Some(true) {
        return false;
    }
    let Some(r) = rules else {
        return false;
    };
    let expr = r.schedule_expression().map(|e| e.replace(' ', ""));
    r.automatically_after_days() == Some(days)
        || expr.as_deref() == Some(format!("rate({days}days)").as_str())
        || (days == 1 && expr.as_deref() == Some("rate(1day)"))
}

/// The tags of `want` that `got` lacks or has with another value.
pub fn missing_tags(
    got: &[aws_sdk_secretsmanager::types::Tag],
    want: &[(String, String)],
) -> Vec<(String, String)> {
    want.iter()
        .filter(|(k, v)| {
            !got.iter()
                .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
        })
        .cloned()
        .collect()
}

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

/// The writer in the first zone, the reader in the second: a zone outage leaves one of them.
pub fn instance_specs(
    writer: String,
    reader: String,
    zones: &[String],
    mode: DbMode,
    class: &str,
) -> Result<Vec<InstanceSpec>> {
    if zones.len() < 2 && !zones.iter().any(|z| is_pending(z)) {
        bail!(
            "the database needs two availability zones for its writer and reader, the network \
             has {}",
            zones.len()
        );
    }
    let zone = |i: usize| zones.get(i).or(zones.first()).cloned().unwrap_or_default();
    let class = match mode {
        DbMode::Provisioned => class.to_string(),
        DbMode::Serverless => SERVERLESS_CLASS.to_string(),
    };
    Ok(vec![
        InstanceSpec {
            name: writer,
            role: "writer",
            zone: zone(0),
            promotion_tier: 0,
            class: class.clone(),
        },
        InstanceSpec {
            name: reader,
            role: "reader",
            zone: zone(1),
            promotion_tier: 1,
            class,
        },
    ])
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// RDS names are unique per account and region; see [`StepCtx::check_ours`].
fn check_ours(ctx: &StepCtx, what: &str, name: &str, tags: &[Tag]) -> Result<()> {
    ctx.check_ours(what, name, tag_value(tags, STACK_TAG))
}

/// Whether an AWS error says the resource is in the wrong state for the call right now (still
/// creating, being modified, already deleting, still in use): waiting and retrying helps.
fn is_busy(e: &AwsError) -> bool {
    e.kind() == AwsErrorKind::InvalidState
}

impl Database {
    fn tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
        ctx.tags(Some(name))
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    async fn list_tags(ctx: &StepCtx, arn: &str) -> Result<Vec<Tag>> {
        Ok(ctx
            .aws()
            .rds()
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .aws("rds:ListTagsForResource", arn)?
            .tag_list()
            .to_vec())
    }

    async fn describe_cluster(ctx: &StepCtx, id: &str) -> Result<Option<DbCluster>> {
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

    async fn describe_instance(ctx: &StepCtx, id: &str) -> Result<Option<DbInstance>> {
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
    async fn cluster_instances(ctx: &StepCtx, cluster: &str) -> Result<Vec<DbInstance>> {
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

    /// Waits until a cluster (`kind` [`CLUSTER`]) or an instance no longer exists.
    async fn wait_gone(&self, ctx: &StepCtx, kind: &str, id: &str) -> Result<()> {
        let what = if kind == CLUSTER {
            "Aurora cluster"
        } else {
            "Aurora instance"
        };
        ctx.wait_for(
            &format!("{what} {id} to be deleted"),
            AURORA_TIMEOUT,
            || async {
                let exists = if kind == CLUSTER {
                    Self::describe_cluster(ctx, id).await?.is_some()
                } else {
                    Self::describe_instance(ctx, id).await?.is_some()
                };
                Ok((!exists).then_some(()))
            },
        )
        .await
    }

    async fn ensure_subnet_group(&self, ctx: &StepCtx, subnets: &[String]) -> Result<Found> {
        let rds = ctx.aws().rds();
        let name = ctx.names().of("dbsubnet");
        let tier = match ctx.cfg().database.subnets {
            SubnetTier::Isolated => "isolated",
            SubnetTier::Private => "private",
        };
        let subnets_known = !subnets.iter().any(|s| is_pending(s));
        let mut current: Option<BTreeSet<String>> = None;
        let group = ctx
            .ensure(
                SUBNET_GROUP,
                &name,
                || async {
                    let out = rds
                        .describe_db_subnet_groups()
                        .db_subnet_group_name(&name)
                        .send()
                        .await
                        .aws("rds:DescribeDBSubnetGroups", &name)
                        .not_found_ok()?;
                    let Some(g) = out.and_then(|o| o.db_subnet_groups().first().cloned()) else {
                        return Ok(None);
                    };
                    let arn = g.db_subnet_group_arn().unwrap_or_default().to_string();
                    check_ours(
                        ctx,
                        "DB subnet group",
                        &name,
                        &Self::list_tags(ctx, &arn).await?,
                    )?;
                    current = Some(
                        g.subnets()
                            .iter()
                            .filter_map(|s| s.subnet_identifier().map(str::to_string))
                            .collect(),
                    );
                    Ok(Some(Found::new(&name).arn(arn)))
                },
                || async {
                    let out = rds
                        .create_db_subnet_group()
                        .db_subnet_group_name(&name)
                        .db_subnet_group_description(format!(
                            "fintech-infra {} database: {tier} subnets of every zone",
                            ctx.suffix()
                        ))
                        .set_subnet_ids(Some(subnets.to_vec()))
                        .set_tags(Some(Self::tags(ctx, &name)))
                        .send()
                        .await
                        .aws("rds:CreateDBSubnetGroup", &name)?;
                    let arn = out
                        .db_subnet_group()
                        .and_then(|g| g.db_subnet_group_arn())
                        .unwrap_or_default();
                    Ok(Found::new(&name).arn(arn))
                },
            )
            .await?;
        let want: BTreeSet<String> = subnets.iter().cloned().collect();
        if let Some(got) = current.filter(|got| subnets_known && *got != want) {
            ctx.change(
                SUBNET_GROUP,
                &name,
                &format!("subnets {got:?} -> the {tier} subnets {want:?}"),
                || async {
                    rds.modify_db_subnet_group()
                        .db_subnet_group_name(&name)
                        .set_subnet_ids(Some(subnets.to_vec()))
                        .send()
                        .await
                        .aws("rds:ModifyDBSubnetGroup", &name)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok(group)
    }

    /// The parameters of [`PARAMETERS`] whose value in the group differs.
    async fn parameters_to_set(&self, ctx: &StepCtx, group: &str) -> Result<Vec<Parameter>> {
        let rds = ctx.aws().rds();
        let mut set = std::collections::BTreeMap::new();
        let mut marker = None;
        loop {
            // `user`: only the parameters changed from the family's defaults, a handful
            // rather than the ~400 of the family.
            let out = rds
                .describe_db_cluster_parameters()
                .db_cluster_parameter_group_name(group)
                .source("user")
                .set_marker(marker)
                .send()
                .await
                .aws("rds:DescribeDBClusterParameters", group)?;
            for p in out.parameters() {
                if let (Some(n), Some(v)) = (p.parameter_name(), p.parameter_value()) {
                    set.insert(n.to_string(), v.to_string());
                }
            }
            marker = out.marker().map(str::to_string);
            if marker.is_none() {
                break;
            }
        }
        Ok(PARAMETERS
            .iter()
            .filter(|(n, v)| set.get(*n).map(String::as_str) != Some(*v))
            .map(|(n, v)| {
                Parameter::builder()
                    .parameter_name(*n)
                    .parameter_value(*v)
                    .apply_method(ApplyMethod::Immediate)
                    .build()
            })
            .collect())
    }

    async fn set_parameters(ctx: &StepCtx, group: &str, params: Vec<Parameter>) -> Result<()> {
        ctx.aws()
            .rds()
            .modify_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(group)
            .set_parameters(Some(params))
            .send()
            .await
            .aws("rds:ModifyDBClusterParameterGroup", group)?;
        Ok(())
    }

    async fn ensure_parameter_group(&self, ctx: &StepCtx) -> Result<Found> {
        let rds = ctx.aws().rds();
        let name = ctx.names().of("dbparams");
        let family = parameter_group_family(&ctx.cfg().database.engine_version);
        let mut created = false;
        let group = ctx
            .ensure(
                PARAMETER_GROUP,
                &name,
                || async {
                    let out = rds
                        .describe_db_cluster_parameter_groups()
                        .db_cluster_parameter_group_name(&name)
                        .send()
                        .await
                        .aws("rds:DescribeDBClusterParameterGroups", &name)
                        .not_found_ok()?;
                    let Some(g) =
                        out.and_then(|o| o.db_cluster_parameter_groups().first().cloned())
                    else {
                        return Ok(None);
                    };
                    let arn = g
                        .db_cluster_parameter_group_arn()
                        .unwrap_or_default()
                        .to_string();
                    check_ours(
                        ctx,
                        "DB cluster parameter group",
                        &name,
                        &Self::list_tags(ctx, &arn).await?,
                    )?;
                    if let Some(got) = g.db_parameter_group_family().filter(|f| *f != family) {
                        // A family cannot change; a new major version needs a new group and
                        // an engine upgrade, which `up` does not do behind anyone's back.
                        bail!(
                            "DB cluster parameter group {name} is of family {got}, but \
                             database.engine_version {} needs {family}: major version upgrades \
                             are not done by `up`",
                            ctx.cfg().database.engine_version
                        );
                    }
                    Ok(Some(Found::new(&name).arn(arn).attr("family", &family)))
                },
                || async {
                    let out = rds
                        .create_db_cluster_parameter_group()
                        .db_cluster_parameter_group_name(&name)
                        .db_parameter_group_family(&family)
                        .description(format!(
                            "fintech-infra {} Aurora PostgreSQL cluster parameters (TLS only)",
                            ctx.suffix()
                        ))
                        .set_tags(Some(Self::tags(ctx, &name)))
                        .send()
                        .await
                        .aws("rds:CreateDBClusterParameterGroup", &name)?;
                    let arn = out
                        .db_cluster_parameter_group()
                        .and_then(|g| g.db_cluster_parameter_group_arn())
                        .unwrap_or_default();
                    let found = Found::new(&name).arn(arn).attr("family", &family);
                    ctx.record(PARAMETER_GROUP, &name, &found)?;
                    created = true;
                    // Part of creating the group: a new group has the family defaults.
                    let params = PARAMETERS
                        .iter()
                        .map(|(n, v)| {
                            Parameter::builder()
                                .parameter_name(*n)
                                .parameter_value(*v)
                                .apply_method(ApplyMethod::Immediate)
                                .build()
                        })
                        .collect();
                    Self::set_parameters(ctx, &name, params).await?;
                    Ok(found)
                },
            )
            .await?;
        if !created && !group.is_pending() {
            let params = self.parameters_to_set(ctx, &name).await?;
            if !params.is_empty() {
                let what = params
                    .iter()
                    .map(|p| {
                        format!(
                            "{} = {}",
                            p.parameter_name().unwrap_or_default(),
                            p.parameter_value().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                ctx.change(PARAMETER_GROUP, &name, &format!("set {what}"), || {
                    Self::set_parameters(ctx, &name, params)
                })
                .await?;
            }
        }
        Ok(group)
    }

    /// Finds the cluster (waiting out a deletion left by an interrupted `down`) or creates it.
    /// Returns the record and the cluster as last described (None in plan mode for a new one).
    async fn ensure_cluster(
        &self,
        ctx: &StepCtx,
        subnet_group: &str,
        want: &DesiredCluster,
    ) -> Result<(Found, Option<DbCluster>, bool)> {
        let rds = ctx.aws().rds();
        let db = &ctx.cfg().database;
        let name = ctx.names().of("aurora");
        // Set by whichever closure runs.
        let described: Mutex<Option<DbCluster>> = Mutex::new(None);
        let created = AtomicBool::new(false);
        let found_of = |c: &DbCluster| {
            Found::new(c.db_cluster_identifier().unwrap_or(&name))
                .arn(c.db_cluster_arn().unwrap_or_default())
                .attr(
                    "resource_id",
                    c.db_cluster_resource_id().unwrap_or_default(),
                )
        };
        let cluster = ctx
            .ensure(
                CLUSTER,
                &name,
                || async {
                    let mut c = Self::describe_cluster(ctx, &name).await?;
                    if let Some(existing) = &c {
                        check_ours(ctx, "Aurora cluster", &name, existing.tag_list())?;
                        if existing.status() == Some("deleting") && !ctx.is_plan() {
                            // An interrupted `down`: it cannot be stopped, so let it finish
                            // and build a new one.
                            self.wait_gone(ctx, CLUSTER, &name).await?;
                            c = None;
                        }
                    }
                    *lock(&described) = c.clone();
                    Ok(c.as_ref().map(found_of))
                },
                || async {
                    let mut req = rds
                        .create_db_cluster()
                        .db_cluster_identifier(&name)
                        .engine(ENGINE)
                        .engine_version(&db.engine_version)
                        .database_name(&db.database_name)
                        .master_username(&db.master_username)
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
                        .set_tags(Some(Self::tags(ctx, &name)));
                    if let Some((min, max)) = want.scaling {
                        req = req.serverless_v2_scaling_configuration(
                            ServerlessV2ScalingConfiguration::builder()
                                .min_capacity(min)
                                .max_capacity(max)
                                .build(),
                        );
                    }
                    let out = req.send().await.aws("rds:CreateDBCluster", &name)?;
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

    /// Finds or creates one instance of the cluster, with Performance Insights on and encrypted
    /// with `key`; returns it as last described and whether this run created it.
    async fn ensure_instance(
        &self,
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
            INSTANCE,
            name,
            || async {
                let mut i = Self::describe_instance(ctx, name).await?;
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
                        self.wait_gone(ctx, INSTANCE, name).await?;
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
                                .set_tags(Some(Self::tags(ctx, name)))
                                .send()
                                .await
                                .aws("rds:CreateDBInstance", name);
                            match r {
                                Ok(o) => Ok(Some(o)),
                                Err(e)
                                    if e.code.as_deref() == Some("InvalidDBClusterStateFault") =>
                                {
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
    async fn repair_performance_insights(
        &self,
        ctx: &StepCtx,
        i: &DbInstance,
        key: &str,
    ) -> Result<()> {
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
        ctx.change(INSTANCE, id, &d.changes.join(", "), || async {
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

    /// The RDS-managed master secret: rotated automatically every `database.secret_rotation_days`
    /// days and tagged like the stack (AWS-CONTRACTS B11). RDS turns managed rotation on with a
    /// 7-day schedule; RotateSecret with RotationRules changes the schedule of a managed secret
    /// (Secrets Manager User Guide, "Managed rotation for AWS Secrets Manager secrets"), and
    /// with RotateImmediately=false it does not rotate the password now, which would make
    /// every running task reconnect for nothing. Called only when DescribeSecret shows a
    /// different schedule or rotation off, so a second `up` changes nothing.
    async fn ensure_secret_posture(&self, ctx: &StepCtx, arn: &str) -> Result<()> {
        let sm = ctx.aws().secrets();
        let days = ctx.cfg().database.secret_rotation_days;
        let desc = sm
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .aws("secretsmanager:DescribeSecret", arn)?;
        if !rotation_ok(desc.rotation_enabled(), desc.rotation_rules(), days) {
            let was = match (desc.rotation_enabled(), desc.rotation_rules()) {
                (Some(true), Some(r)) => r
                    .schedule_expression()
                    .map(str::to_string)
                    .or(r
                        .automatically_after_days()
                        .map(|d| format!("every {d} days")))
                    .unwrap_or_else(|| "on".into()),
                _ => "off".into(),
            };
            let what = format!("rotation {was} -> every {days} days");
            ctx.change(SECRET, arn, &what, || async {
                sm.rotate_secret()
                    .secret_id(arn)
                    .rotation_rules(
                        aws_sdk_secretsmanager::types::RotationRulesType::builder()
                            .automatically_after_days(days)
                            .build(),
                    )
                    .rotate_immediately(false)
                    .send()
                    .await
                    .aws("secretsmanager:RotateSecret", arn)?;
                Ok(())
            })
            .await?;
        }
        let name = desc.name().unwrap_or(arn);
        let missing = missing_tags(desc.tags(), &ctx.tags(Some(name)));
        if !missing.is_empty() {
            let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
            let what = format!("tag {}", keys.join(", "));
            ctx.change(SECRET, arn, &what, || async {
                let tags = missing
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_secretsmanager::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                sm.tag_resource()
                    .secret_id(arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws("secretsmanager:TagResource", arn)?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Polls until the cluster and the given instances are all `available`; returns the cluster.
    async fn wait_available(
        &self,
        ctx: &StepCtx,
        cluster_id: &str,
        instances: &[String],
    ) -> Result<DbCluster> {
        ctx.wait_for(
            &format!("Aurora cluster {cluster_id} and its instances to be available"),
            AURORA_TIMEOUT,
            || async {
                let c = Self::describe_cluster(ctx, cluster_id)
                    .await?
                    .with_context(|| format!("Aurora cluster {cluster_id} disappeared"))?;
                let status = c.status().unwrap_or_default();
                if CLUSTER_FAILED.contains(&status) {
                    bail!("Aurora cluster {cluster_id} is `{status}`");
                }
                let members = Self::cluster_instances(ctx, cluster_id).await?;
                let mut ready = status == "available";
                for id in instances {
                    let i = members
                        .iter()
                        .find(|i| i.db_instance_identifier() == Some(id.as_str()))
                        .with_context(|| format!("Aurora instance {id} disappeared"))?;
                    let s = i.db_instance_status().unwrap_or_default();
                    if INSTANCE_FAILED.contains(&s) {
                        bail!("Aurora instance {id} is `{s}`");
                    }
                    ready &= s == "available";
                }
                Ok(ready.then_some(c))
            },
        )
        .await
    }

    async fn modify_cluster(ctx: &StepCtx, id: &str, d: &ClusterDrift, key: &str) -> Result<()> {
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
    /// unencrypted cluster, and tell the operator about a different key or engine version.
    fn check_unfixable(&self, ctx: &StepCtx, c: &DbCluster, want: &DesiredCluster) -> Result<()> {
        let db = &ctx.cfg().database;
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
        if c.engine_version() != Some(db.engine_version.as_str()) {
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "Aurora cluster {} runs engine {}, the config asks for {}; engine \
                     upgrades are not done by `up`",
                    id,
                    c.engine_version().unwrap_or("?"),
                    db.engine_version
                ),
            );
        }
        Ok(())
    }

    fn set_outputs(&self, ctx: &StepCtx, c: &DbCluster) -> Result<()> {
        let db = &ctx.cfg().database;
        let id = c.db_cluster_identifier().unwrap_or_default();
        let secret = c
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .with_context(|| format!("Aurora cluster {id} has no RDS-managed master secret"))?;
        ctx.set_output(OUT_CLUSTER_ID, id)?;
        ctx.set_output(OUT_CLUSTER_ARN, c.db_cluster_arn().unwrap_or_default())?;
        ctx.set_output(
            OUT_RESOURCE_ID,
            c.db_cluster_resource_id().unwrap_or_default(),
        )?;
        ctx.set_output(OUT_WRITER_ENDPOINT, c.endpoint().unwrap_or_default())?;
        ctx.set_output(OUT_READER_ENDPOINT, c.reader_endpoint().unwrap_or_default())?;
        ctx.set_output(
            OUT_PORT,
            json!(c.port().unwrap_or(crate::steps::network::DB_PORT)),
        )?;
        ctx.set_output(
            OUT_NAME,
            c.database_name().unwrap_or(db.database_name.as_str()),
        )?;
        ctx.set_output(OUT_SECRET_ARN, secret)?;
        Ok(())
    }

    /// Deletes one instance (unless it is already going), retrying while RDS says it cannot be
    /// deleted yet (e.g. still creating).
    async fn delete_instance(&self, ctx: &StepCtx, id: &str) -> Result<()> {
        let rds = ctx.aws().rds();
        ctx.check_cancelled()?;
        ctx.wait_for(
            &format!("Aurora instance {id} to accept deletion"),
            AURORA_TIMEOUT,
            || async {
                match Self::describe_instance(ctx, id).await? {
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

    /// Deletes the cluster without a final snapshot, turning deletion protection off first if
    /// someone turned it on.
    async fn delete_cluster(&self, ctx: &StepCtx, id: &str) -> Result<()> {
        let rds = ctx.aws().rds();
        ctx.check_cancelled()?;
        ctx.wait_for(
            &format!("Aurora cluster {id} to accept deletion"),
            AURORA_TIMEOUT,
            || async {
                let c = match Self::describe_cluster(ctx, id).await? {
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

    /// Deletes a subnet or parameter group, retrying while RDS reports it in use.
    async fn delete_group(&self, ctx: &StepCtx, kind: &str, name: &str) -> Result<()> {
        let rds = ctx.aws().rds();
        ctx.check_cancelled()?;
        // How long a subnet or parameter group may be refused as in use (by a cluster that is
        // going away): the configured dependency timeout, like every other delete.
        let in_use = Duration::from_secs(ctx.cfg().timeouts.dependency_violation_secs.0);
        ctx.wait_for(&format!("{kind} {name} to be free"), in_use, || async {
            let r = if kind == SUBNET_GROUP {
                rds.delete_db_subnet_group()
                    .db_subnet_group_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("rds:DeleteDBSubnetGroup", name)
            } else {
                rds.delete_db_cluster_parameter_group()
                    .db_cluster_parameter_group_name(name)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("rds:DeleteDBClusterParameterGroup", name)
            };
            match r {
                Ok(()) => Ok(Some(())),
                Err(e) if e.is_not_found() => Ok(Some(())),
                Err(e) if is_busy(&e) => {
                    tracing::debug!(error = %e, "still in use; retrying");
                    Ok(None)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
        .with_context(|| format!("deleting {kind} {name}"))
    }

    fn deleted(&self, ctx: &StepCtx, kind: &str, id: &str) -> Result<()> {
        ctx.forget(kind, id)?;
        ctx.sh.reporter.deleted(ctx.step, kind, id);
        Ok(())
    }
}

#[async_trait]
impl Step for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["network", "kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // Cluster and instances are created in parallel: 5-10 minutes in all.
        600
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let db = &ctx.cfg().database;
        let subnets = ctx.input_list(match db.subnets {
            SubnetTier::Isolated => "isolated_subnet_ids",
            SubnetTier::Private => "private_subnet_ids",
        })?;
        let zones = ctx.input_list("availability_zones")?;
        let want = DesiredCluster {
            backup_retention_days: db.backup_retention_days,
            preferred_backup_window: db.preferred_backup_window.clone(),
            scaling: (db.mode == DbMode::Serverless).then_some((db.min_capacity, db.max_capacity)),
            security_group: ctx.input_str("sg_db_id")?,
            parameter_group: ctx.names().of("dbparams"),
            kms_key_arn: ctx.input_str(crate::steps::kms::OUT_KEY_ARN)?,
        };
        let specs = instance_specs(
            ctx.names().with_purpose("aurora", "writer"),
            ctx.names().with_purpose("aurora", "reader"),
            &zones,
            db.mode,
            &db.instance_class,
        )?;

        let subnet_group = self.ensure_subnet_group(ctx, &subnets).await?;
        self.ensure_parameter_group(ctx).await?;
        // Before the cluster: RDS would otherwise create the export's group on the first log
        // line, unencrypted and never expiring.
        let export_group = log_export_group(&ctx.names().of("aurora"));
        let group = log_group::ensure(
            ctx,
            &export_group,
            &want.kms_key_arn,
            &[("purpose", "aurora-log-export")],
        )
        .await?;
        log_group::ensure_tags(ctx, &group).await?;
        let (cluster, described, created_now) =
            self.ensure_cluster(ctx, &subnet_group.id, &want).await?;
        let mut instance_states = Vec::new();
        // Instances found (not created) by this run: their Performance Insights is checked
        // once they are available.
        let mut existing_instances = Vec::new();
        for spec in &specs {
            let (i, created) = self
                .ensure_instance(ctx, &cluster, spec, &want.kms_key_arn)
                .await?;
            instance_states.push(
                i.as_ref()
                    .and_then(|i| i.db_instance_status().map(str::to_string)),
            );
            if let (Some(i), false) = (i, created) {
                existing_instances.push(i);
            }
        }
        let Some(mut current) = described else {
            // Plan mode, new cluster: nothing more to look at.
            return Ok(());
        };

        self.check_unfixable(ctx, &current, &want)?;

        // A stopped cluster (stopped by hand to save money) never becomes available by itself.
        if current.status() == Some("stopped") {
            ctx.change(
                CLUSTER,
                &cluster.id,
                "start the stopped cluster",
                || async {
                    ctx.aws()
                        .rds()
                        .start_db_cluster()
                        .db_cluster_identifier(&cluster.id)
                        .send()
                        .await
                        .aws("rds:StartDBCluster", &cluster.id)?;
                    Ok(())
                },
            )
            .await?;
        }

        let instance_ids: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let all_available = current.status() == Some("available")
            && instance_states
                .iter()
                .all(|s| s.as_deref() == Some("available"));
        if !all_available && !ctx.is_plan() {
            current = self.wait_available(ctx, &cluster.id, &instance_ids).await?;
        }

        // Drift on a cluster this run did not just create (ModifyDBCluster needs it available,
        // hence after the wait).
        if !created_now {
            let drift = ClusterDrift::of(&current, &want);
            if !drift.is_empty() {
                ctx.change(CLUSTER, &cluster.id, &drift.changes.join(", "), || {
                    Self::modify_cluster(ctx, &cluster.id, &drift, &want.kms_key_arn)
                })
                .await?;
                if !ctx.is_plan() {
                    current = self.wait_available(ctx, &cluster.id, &instance_ids).await?;
                }
            }
        }
        // ModifyDBInstance needs the instance available, hence after the waits.
        for i in &existing_instances {
            self.repair_performance_insights(ctx, i, &want.kms_key_arn)
                .await?;
        }
        if let Some(arn) = current.master_user_secret().and_then(|s| s.secret_arn()) {
            self.ensure_secret_posture(ctx, arn).await?;
        }
        if ctx.is_plan() {
            return Ok(());
        }
        self.set_outputs(ctx, &current)
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        // Instances first: RDS refuses to delete a cluster with members not yet deleting.
        // Members of the stack's cluster that the state does not know (added by hand, or a
        // record lost in a crash) must go too, or the cluster cannot.
        let mut instances: Vec<String> = ctx
            .records(Some(INSTANCE))
            .into_iter()
            .map(|r| r.id)
            .collect();
        for rec in ctx.records(Some(CLUSTER)) {
            if let Some(c) = Self::describe_cluster(ctx, &rec.id).await? {
                for m in c.db_cluster_members() {
                    if let Some(id) = m.db_instance_identifier() {
                        if !instances.iter().any(|i| i == id) {
                            instances.push(id.to_string());
                        }
                    }
                }
            }
        }
        for id in &instances {
            self.delete_instance(ctx, id).await?;
        }
        futures::future::try_join_all(instances.iter().map(|id| self.wait_gone(ctx, INSTANCE, id)))
            .await?;
        for id in &instances {
            if ctx.records(Some(INSTANCE)).iter().any(|r| &r.id == id) {
                self.deleted(ctx, INSTANCE, id)?;
            } else {
                ctx.sh.reporter.deleted(ctx.step, INSTANCE, id);
            }
        }

        for rec in ctx.records(Some(CLUSTER)) {
            self.delete_cluster(ctx, &rec.id).await?;
            self.wait_gone(ctx, CLUSTER, &rec.id).await?;
            self.deleted(ctx, CLUSTER, &rec.id)?;
        }

        // The export's log group once the cluster that writes to it is gone (a running cluster
        // would recreate it, unencrypted, on its next log line).
        crate::resources::delete_recorded(ctx, log_group::KIND).await?;

        for kind in [SUBNET_GROUP, PARAMETER_GROUP] {
            for rec in ctx.records(Some(kind)) {
                self.delete_group(ctx, kind, &rec.id).await?;
                self.deleted(ctx, kind, &rec.id)?;
            }
        }
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let rds = ctx.aws().rds();
        let id = rec.id.as_str();
        Ok(match rec.kind.as_str() {
            CLUSTER => Self::describe_cluster(ctx, id)
                .await?
                .map(|c| c.status().unwrap_or("exists").to_string()),
            INSTANCE => Self::describe_instance(ctx, id)
                .await?
                .map(|i| i.db_instance_status().unwrap_or("exists").to_string()),
            SUBNET_GROUP => rds
                .describe_db_subnet_groups()
                .db_subnet_group_name(id)
                .send()
                .await
                .aws("rds:DescribeDBSubnetGroups", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.db_subnet_groups()
                        .first()
                        .map(|g| g.subnet_group_status().unwrap_or("exists").to_string())
                }),
            PARAMETER_GROUP => rds
                .describe_db_cluster_parameter_groups()
                .db_cluster_parameter_group_name(id)
                .send()
                .await
                .aws("rds:DescribeDBClusterParameterGroups", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.db_cluster_parameter_groups()
                        .first()
                        .map(|_| "exists".to_string())
                }),
            other => bail!("database step does not know resource type {other}"),
        })
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

    #[test]
    fn rotation_schedule_is_read_from_days_or_a_rate_expression() {
        use aws_sdk_secretsmanager::types::RotationRulesType;
        let days = |n| {
            RotationRulesType::builder()
                .automatically_after_days(n)
                .build()
        };
        let rate = |e: &str| RotationRulesType::builder().schedule_expression(e).build();
        assert!(rotation_ok(Some(true), Some(&days(7)), 7));
        assert!(rotation_ok(Some(true), Some(&rate("rate(7 days)")), 7));
        assert!(rotation_ok(Some(true), Some(&rate("rate(1 day)")), 1));
        assert!(!rotation_ok(Some(true), Some(&days(30)), 7));
        assert!(!rotation_ok(Some(false), Some(&days(7)), 7), "rotation off");
        assert!(
            !rotation_ok(None, None, 7),
            "never configured (moto's fresh secret)"
        );
        assert!(!rotation_ok(
            Some(true),
            Some(&rate("cron(0 4 ? * SUN *)")),
            7
        ));
    }

    #[test]
    fn only_missing_or_different_tags_are_added() {
        use aws_sdk_secretsmanager::types::Tag as SmTag;
        let got = vec![
            SmTag::builder().key("Team").value("platform").build(),
            SmTag::builder().key("Environment").value("old").build(),
        ];
        let want = vec![
            ("Team".to_string(), "platform".to_string()),
            ("Environment".to_string(), "dev".to_string()),
            ("fintech-infra:stack".to_string(), "dev".to_string()),
        ];
        let m = missing_tags(&got, &want);
        assert_eq!(m, want[1..].to_vec());
        assert!(missing_tags(&got, &want[..1]).is_empty());
    }

    #[test]
    fn secret_rotation_days_defaults_to_seven_and_is_bounded() {
        use crate::config::DatabaseConfig;
        assert_eq!(DatabaseConfig::default().secret_rotation_days, 7);
        let parse = |t: &str| toml::from_str::<DatabaseConfig>(t);
        assert_eq!(
            parse("secret_rotation_days = 30")
                .unwrap()
                .secret_rotation_days,
            30
        );
        assert_eq!(
            parse("secret_rotation_days = 365")
                .unwrap()
                .secret_rotation_days,
            365
        );
        for bad in ["secret_rotation_days = 0", "secret_rotation_days = 366"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("secret_rotation_days"), "{e}");
        }
    }

    #[test]
    fn the_log_export_group_is_the_one_rds_writes_to() {
        assert_eq!(
            log_export_group("aurora-dev"),
            "/aws/rds/cluster/aurora-dev/postgresql"
        );
    }

    #[test]
    fn family_follows_the_major_version() {
        assert_eq!(parameter_group_family("15.8"), "aurora-postgresql15");
        assert_eq!(parameter_group_family("16.4"), "aurora-postgresql16");
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

    #[test]
    fn writer_and_reader_go_to_different_zones() {
        let zones = vec!["us-east-1a".to_string(), "us-east-1b".to_string()];
        let specs = instance_specs(
            "aurora-writer-x".into(),
            "aurora-reader-x".into(),
            &zones,
            DbMode::Provisioned,
            "db.r6g.large",
        )
        .unwrap();
        assert_eq!(specs[0].zone, "us-east-1a");
        assert_eq!(specs[1].zone, "us-east-1b");
        assert_eq!(specs[0].class, "db.r6g.large");
        assert_eq!((specs[0].promotion_tier, specs[1].promotion_tier), (0, 1));
        let specs = instance_specs(
            "w".into(),
            "r".into(),
            &zones,
            DbMode::Serverless,
            "db.r6g.large",
        )
        .unwrap();
        assert!(specs.iter().all(|s| s.class == SERVERLESS_CLASS));
        assert!(instance_specs(
            "w".into(),
            "r".into(),
            &zones[..1],
            DbMode::Provisioned,
            "db.r6g.large"
        )
        .is_err());
    }
}
