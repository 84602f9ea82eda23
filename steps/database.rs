//! Database step: the Aurora PostgreSQL cluster that holds the transactions.
//!
//! A DB subnet group over the isolated (or private) subnets of every zone; a cluster parameter
//! group that forces TLS; the cluster, encrypted with the stack's KMS key, with automated
//! backups, PostgreSQL log export to CloudWatch, IAM database authentication, deletion
//! protection off (the stack must be removable by `down`), and master credentials that RDS
//! generates and keeps in Secrets Manager, encrypted with the stack key: the tool never
//! chooses, sees or stores the password. One writer and one reader instance in different zones,
//! either provisioned (`instance_class`) or Serverless v2 (`db.serverless`, min/max ACUs).
//! Each resource type (find, create, drift repair, waits, delete, probe, AWS quirks) is a
//! provider in [`crate::resources::rds`] (the master secret's posture in
//! [`crate::resources::secretsmanager::secret`]); this step only decides what to build from
//! the `[database]` config, in which order, and what to publish.
//!
//! The cluster and both instances are created back to back and then waited for together: each
//! takes 5-10 minutes on AWS, and RDS builds them in parallel.
//!
//! Posture the step also keeps: Performance Insights on for both instances, encrypted with the
//! stack key, 7 days (the free tier), repaired with ModifyDBInstance (PI that is off or not
//! described is turned on; a key other than the stack's is reported, since RDS never changes
//! an instance's PI key, see [`instance::PiDrift`]); the log group of the
//! PostgreSQL log export (`/aws/rds/cluster/<cluster>/postgresql`) created before the cluster
//! with the stack key, retention and tags, since RDS would create it unencrypted and never
//! expiring (AWS-CONTRACTS B10); and the RDS-managed master secret rotating every
//! `database.secret_rotation_days` days and carrying the stack's tags (B11).
//!
//! `down` takes what RDS enforces from `BUILT_ON` (`src/resources/deps.rs`): an instance is
//! built on its cluster, so the instances go first (RDS refuses to delete a cluster with
//! members not yet deleting); the cluster is built on its subnet and parameter groups, the
//! security groups, the key and the log groups, so the export's log group outlives it (a
//! running cluster would recreate it unencrypted) and the subnet and parameter groups, which
//! RDS refuses to delete while a cluster, even a deleting one, uses them, go after it. The
//! `rds:db-cluster` provider deletes members the state does not know first, deletes the
//! cluster without a final snapshot (RDS deletes its managed secret and automated backups
//! with it) and waits until it is gone; the instance provider waits too, and the group
//! providers retry while RDS reports them in use.

/// The `[database]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::DbCluster;
use serde_json::json;

use crate::config::{DbMode, SubnetTier};
use crate::resources::logs::log_group;
use crate::resources::rds::cluster::{self, log_export_group, ClusterSpec, DesiredCluster};
use crate::resources::rds::cluster_parameter_group::{self, ParameterGroupSpec};
use crate::resources::rds::instance::{self, InstanceSpec, SERVERLESS_CLASS};
use crate::resources::rds::subnet_group::{self, SubnetGroupSpec};
use crate::resources::secretsmanager::secret;
use crate::step::{is_pending, Step, StepCtx};

pub use crate::outputs::database::*;

pub const SUBNET_GROUP: &str = subnet_group::KIND;
pub const PARAMETER_GROUP: &str = cluster_parameter_group::KIND;
pub const CLUSTER: &str = cluster::KIND;
pub const INSTANCE: &str = instance::KIND;
/// The kind of the RDS-managed master secret in plan items. It is not recorded: RDS owns it
/// and deletes it with the cluster.
pub const SECRET: &str = secret::KIND;


pub struct Database;

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

impl Database {
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
            json!(c.port().unwrap_or(crate::resources::rds::DB_PORT)),
        )?;
        ctx.set_output(
            OUT_NAME,
            c.database_name().unwrap_or(db.database_name.as_str()),
        )?;
        ctx.set_output(OUT_SECRET_ARN, secret)?;
        Ok(())
    }
}

#[async_trait]
impl Step for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    fn deps(&self) -> Vec<&'static str> {
        // The subnets and security groups, not the NAT gateways.
        vec!["~network", "kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // Cluster and instances are created in parallel: 5-10 minutes in all.
        600
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let db = &ctx.cfg().database;
        let (subnets, tier) = match db.subnets {
            SubnetTier::Isolated => (ctx.input_list("isolated_subnet_ids")?, "isolated"),
            SubnetTier::Private => (ctx.input_list("private_subnet_ids")?, "private"),
        };
        let zones = ctx.input_list("availability_zones")?;
        let parameter_group = ctx.names().of("dbparams");
        let want = DesiredCluster {
            backup_retention_days: db.backup_retention_days,
            preferred_backup_window: db.preferred_backup_window.clone(),
            scaling: (db.mode == DbMode::Serverless).then_some((db.min_capacity, db.max_capacity)),
            security_group: ctx.input_str("sg_db_id")?,
            parameter_group: parameter_group.clone(),
            kms_key_arn: ctx.input_str(crate::outputs::kms::OUT_KEY_ARN)?,
        };
        let specs = instance_specs(
            ctx.names().with_purpose("aurora", "writer"),
            ctx.names().with_purpose("aurora", "reader"),
            &zones,
            db.mode,
            &db.instance_class,
        )?;

        let subnet_group_name = ctx.names().of("dbsubnet");
        let cluster_name = ctx.names().of("aurora");
        // Before the cluster: RDS would otherwise create the export's group on the first log
        // line, unencrypted and never expiring.
        let export_group = log_export_group(&cluster_name);
        // The subnet group, the parameter group and the log group need nothing of each
        // other: all at once.
        let subnet_group_spec = SubnetGroupSpec {
            name: &subnet_group_name,
            subnets: &subnets,
            tier,
        };
        let parameter_group_spec = ParameterGroupSpec {
            name: &parameter_group,
            engine_version: &db.engine_version,
        };
        let (subnet_group, _, ()) = tokio::try_join!(
            subnet_group::ensure(ctx, &subnet_group_spec),
            cluster_parameter_group::ensure(ctx, &parameter_group_spec),
            async {
                let group = log_group::ensure(
                    ctx,
                    &export_group,
                    &want.kms_key_arn,
                    &[("purpose", "aurora-log-export")],
                )
                .await?;
                log_group::ensure_tags(ctx, &group).await
            },
        )?;
        let (cluster, described, created_now) = cluster::ensure(
            ctx,
            &ClusterSpec {
                name: &cluster_name,
                engine_version: &db.engine_version,
                database_name: &db.database_name,
                master_username: &db.master_username,
                subnet_group: &subnet_group.id,
                want: &want,
            },
        )
        .await?;
        let mut instance_states = Vec::new();
        // Instances found (not created) by this run: their Performance Insights is checked
        // once they are available.
        let mut existing_instances = Vec::new();
        let mut created_any = created_now;
        for spec in &specs {
            let (i, created) = instance::ensure(ctx, &cluster, spec, &want.kms_key_arn).await?;
            created_any |= created;
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

        cluster::check_unfixable(ctx, &current, &want, &db.engine_version)?;
        // The endpoints, the secret's ARN and the resource ID are known from the create call:
        // the IAM step (which grants access to them) need not wait the minutes Aurora takes
        // to become available. The services do wait: their tasks connect to it.
        if !ctx.is_plan() && current.master_user_secret().is_some() {
            self.set_outputs(ctx, &current)?;
            ctx.release();
        }
        cluster::start_if_stopped(ctx, &cluster.id, &current).await?;

        let instance_ids: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let all_available = current.status() == Some("available")
            && instance_states
                .iter()
                .all(|s| s.as_deref() == Some("available"));
        if !all_available && ctx.no_wait() && created_any && !ctx.is_plan() {
            // `up --no-wait` on what this run created: nothing later creates needs Aurora
            // available (the endpoints and the secret are published above). The drift checks
            // below need it available; the next `up` waits and makes them. An existing
            // cluster that is merely busy (backing up, modifying) is waited for as always,
            // so that its checks are not skipped.
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "Aurora cluster {} is still becoming available (--no-wait): \
                     `fintech-infra status` shows it, the next `up` waits for it",
                    cluster.id
                ),
            );
            return Ok(());
        }
        if !all_available && !ctx.is_plan() {
            current = cluster::wait_available(ctx, &cluster.id, &instance_ids).await?;
        }

        // Drift on a cluster this run did not just create (ModifyDBCluster needs it available,
        // hence after the wait).
        if !created_now
            && cluster::repair(ctx, &cluster.id, &current, &want).await?
            && !ctx.is_plan()
        {
            current = cluster::wait_available(ctx, &cluster.id, &instance_ids).await?;
        }
        // ModifyDBInstance needs the instance available, hence after the waits.
        for i in &existing_instances {
            instance::repair_performance_insights(ctx, i, &want.kms_key_arn).await?;
        }
        if let Some(arn) = current.master_user_secret().and_then(|s| s.secret_arn()) {
            secret::ensure_posture(ctx, arn, db.secret_rotation_days).await?;
        }
        if ctx.is_plan() {
            return Ok(());
        }
        self.set_outputs(ctx, &current)
    }

}

#[cfg(test)]
mod tests {
    use super::*;

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
