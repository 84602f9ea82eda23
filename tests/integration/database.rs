//! The database step against the emulator: the Aurora PostgreSQL cluster (provisioned and
//! Serverless v2) with every property the issue names, RDS-managed master credentials that
//! never reach the tool, drift repair, the waits for `available`, and a teardown in the order
//! RDS enforces that leaves nothing behind.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbCluster, DbInstance, ServerlessV2ScalingConfiguration};
use serde_json::Value;

use crate::util::*;

fn list(stack: &Stack, key: &str) -> Vec<String> {
    stack
        .output(key)
        .as_array()
        .unwrap_or_else(|| panic!("output {key} missing or not a list"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn cluster(rds: &aws_sdk_rds::Client, id: &str) -> DbCluster {
    rds.describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap()
        .db_clusters()[0]
        .clone()
}

async fn instance(rds: &aws_sdk_rds::Client, id: &str) -> DbInstance {
    rds.describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone()
}

fn rds_tag<'a>(tags: &'a [aws_sdk_rds::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[track_caller]
fn assert_rds_tags(tags: &[aws_sdk_rds::types::Tag], suffix: &str, name: &str) {
    assert_eq!(rds_tag(tags, "fintech-infra:stack"), Some(suffix), "{name}");
    assert_eq!(rds_tag(tags, "Name"), Some(name));
    assert_eq!(rds_tag(tags, "Environment"), Some(suffix), "{name}");
    assert_eq!(rds_tag(tags, "Team"), Some("platform"), "{name}");
    assert_eq!(rds_tag(tags, "CostCenter"), Some("fintech"), "{name}");
}

/// Everything the provisioned (default) stack's database must be.
async fn check_provisioned(stack: &Stack) {
    let sdk = sdk_config(&stack.endpoint).await;
    let rds = aws_sdk_rds::Client::new(&sdk);
    let s = stack.suffix.as_str();
    let key_arn = stack.output_str("kms_key_arn");
    let sg_db = stack.output_str("sg_db_id");
    let zones = list(stack, "availability_zones");

    let id = stack.output_str("db_cluster_id");
    assert_eq!(id, format!("aurora-{s}"));
    let c = cluster(&rds, &id).await;
    assert_eq!(c.status(), Some("available"));
    assert_eq!(c.engine(), Some("aurora-postgresql"));
    assert_eq!(c.engine_version(), Some("15.8"));
    assert_eq!(c.storage_encrypted(), Some(true));
    assert_eq!(c.kms_key_id(), Some(key_arn.as_str()), "the stack key");
    assert_eq!(c.backup_retention_period(), Some(7));
    assert_eq!(c.preferred_backup_window(), Some("03:00-04:00"));
    assert_eq!(c.deletion_protection(), Some(false));
    assert!(
        c.enabled_cloudwatch_logs_exports()
            .iter()
            .any(|l| l == "postgresql"),
        "{:?}",
        c.enabled_cloudwatch_logs_exports()
    );
    assert_eq!(c.iam_database_authentication_enabled(), Some(true));
    assert_eq!(c.database_name(), Some("fintech"));
    assert_eq!(c.master_username(), Some("fintech_admin"));
    assert_eq!(c.db_subnet_group(), Some(format!("dbsubnet-{s}").as_str()));
    assert_eq!(
        c.db_cluster_parameter_group(),
        Some(format!("dbparams-{s}").as_str())
    );
    let groups: Vec<&str> = c
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, vec![sg_db.as_str()]);
    assert!(
        c.serverless_v2_scaling_configuration().is_none(),
        "provisioned"
    );
    assert_rds_tags(c.tag_list(), s, &id);

    // RDS-managed master credentials, encrypted with the stack key.
    let secret = c.master_user_secret().expect("MasterUserSecret");
    assert_eq!(secret.kms_key_id(), Some(key_arn.as_str()));
    let secret_arn = stack.output_str("db_secret_arn");
    assert_eq!(secret.secret_arn(), Some(secret_arn.as_str()));

    // Outputs.
    assert_eq!(
        stack.output_str("db_cluster_arn"),
        c.db_cluster_arn().unwrap()
    );
    assert_eq!(
        stack.output_str("db_cluster_resource_id"),
        c.db_cluster_resource_id().unwrap()
    );
    assert_eq!(
        stack.output_str("db_writer_endpoint"),
        c.endpoint().unwrap()
    );
    assert_eq!(
        stack.output_str("db_reader_endpoint"),
        c.reader_endpoint().unwrap()
    );
    assert_ne!(
        stack.output_str("db_writer_endpoint"),
        stack.output_str("db_reader_endpoint")
    );
    assert_eq!(stack.output("db_port"), Value::from(5432));
    assert_eq!(stack.output_str("db_name"), "fintech");

    // One writer, one reader, in different zones, of the configured class.
    let writer_id = format!("aurora-writer-{s}");
    let reader_id = format!("aurora-reader-{s}");
    let members: BTreeSet<(String, bool)> = c
        .db_cluster_members()
        .iter()
        .map(|m| {
            (
                m.db_instance_identifier().unwrap().to_string(),
                m.is_cluster_writer().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        BTreeSet::from([(writer_id.clone(), true), (reader_id.clone(), false)])
    );
    let writer = instance(&rds, &writer_id).await;
    let reader = instance(&rds, &reader_id).await;
    for i in [&writer, &reader] {
        assert_eq!(i.db_instance_status(), Some("available"));
        assert_eq!(i.db_instance_class(), Some("db.r6g.large"));
        assert_eq!(i.engine(), Some("aurora-postgresql"));
        assert_eq!(i.db_cluster_identifier(), Some(id.as_str()));
        assert_eq!(i.publicly_accessible(), Some(false));
        assert!(zones
            .iter()
            .any(|z| Some(z.as_str()) == i.availability_zone()));
        assert_rds_tags(i.tag_list(), s, i.db_instance_identifier().unwrap());
    }
    assert_ne!(
        writer.availability_zone(),
        reader.availability_zone(),
        "writer and reader share a zone"
    );
    assert_eq!(reader.promotion_tier(), Some(1), "reader first in line");

    // The subnet group spans the isolated subnet of every zone.
    let g = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(format!("dbsubnet-{s}"))
        .send()
        .await
        .unwrap();
    let g = &g.db_subnet_groups()[0];
    let subnets: BTreeSet<String> = g
        .subnets()
        .iter()
        .map(|x| x.subnet_identifier().unwrap().to_string())
        .collect();
    let isolated: BTreeSet<String> = list(stack, "isolated_subnet_ids").into_iter().collect();
    assert_eq!(subnets, isolated);
    let subnet_zones: BTreeSet<&str> = g
        .subnets()
        .iter()
        .filter_map(|x| x.subnet_availability_zone().and_then(|z| z.name()))
        .collect();
    assert_eq!(subnet_zones.len(), zones.len(), "{subnet_zones:?}");
    assert_eq!(g.vpc_id(), Some(stack.output_str("vpc_id").as_str()));
    let tags = rds
        .list_tags_for_resource()
        .resource_name(g.db_subnet_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_rds_tags(tags.tag_list(), s, &format!("dbsubnet-{s}"));

    // The cluster parameter group: the engine's family, TLS forced.
    let p = rds
        .describe_db_cluster_parameter_groups()
        .db_cluster_parameter_group_name(format!("dbparams-{s}"))
        .send()
        .await
        .unwrap();
    let p = &p.db_cluster_parameter_groups()[0];
    assert_eq!(p.db_parameter_group_family(), Some("aurora-postgresql15"));
    let tags = rds
        .list_tags_for_resource()
        .resource_name(p.db_cluster_parameter_group_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_rds_tags(tags.tag_list(), s, &format!("dbparams-{s}"));
    let params = rds
        .describe_db_cluster_parameters()
        .db_cluster_parameter_group_name(format!("dbparams-{s}"))
        .source("user")
        .send()
        .await
        .unwrap();
    assert!(
        params.parameters().iter().any(
            |p| p.parameter_name() == Some("rds.force_ssl") && p.parameter_value() == Some("1")
        ),
        "{:?}",
        params.parameters()
    );

    // The secret exists, encrypted with the stack key; its password is nowhere in the
    // tool's state or outputs.
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let described = sm
        .describe_secret()
        .secret_id(&secret_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.kms_key_id(), Some(key_arn.as_str()));
    let value = sm
        .get_secret_value()
        .secret_id(&secret_arn)
        .send()
        .await
        .unwrap();
    let value: Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
    let password = value["password"].as_str().expect("password in the secret");
    assert!(password.len() >= 8);
    let state_text = std::fs::read_to_string(stack.state_path()).unwrap();
    assert!(
        !state_text.contains(password),
        "the state file holds the password"
    );
    let outputs = stack.run(&["outputs", "--json", "--env-suffix", s]);
    outputs.assert_ok();
    assert!(
        !outputs.stdout.contains(password),
        "outputs show the password"
    );
    let keys: Vec<String> = stack.state()["outputs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(!keys.iter().any(|k| k.contains("password")), "{keys:?}");
}

/// The create request asked RDS to manage the password and carried none of its own.
fn check_create_request(stack: &Stack) {
    if !is_faithful(&stack.endpoint) {
        return;
    }
    let id = format!("aurora-{}", stack.suffix);
    let log = request_log(&stack.endpoint);
    let create = log
        .iter()
        .find(|r| {
            r.operation == "CreateDBCluster" && r.params["DBClusterIdentifier"] == id.as_str()
        })
        .expect("CreateDBCluster logged");
    assert_eq!(create.params["ManageMasterUserPassword"], "true");
    assert!(create.params.get("MasterUserPassword").is_none());
    assert_eq!(create.params["StorageEncrypted"], "true");
}

/// DeleteDBCluster skipped the final snapshot and dropped the automated backups.
fn check_delete_request(stack: &Stack) {
    if !is_faithful(&stack.endpoint) {
        return;
    }
    let id = format!("aurora-{}", stack.suffix);
    let log = request_log(&stack.endpoint);
    let delete = log
        .iter()
        .find(|r| {
            r.operation == "DeleteDBCluster" && r.params["DBClusterIdentifier"] == id.as_str()
        })
        .expect("DeleteDBCluster logged");
    assert_eq!(delete.params["SkipFinalSnapshot"], "true");
    assert_eq!(delete.params["DeleteAutomatedBackups"], "true");
    assert!(delete.params.get("FinalDBSnapshotIdentifier").is_none());
}

async fn check_nothing_left(stack: &Stack, secret_arn: &str) {
    let sdk = sdk_config(&stack.endpoint).await;
    let left = remaining_rds(&sdk, &stack.suffix).await;
    assert!(left.is_empty(), "left behind in RDS: {left:?}");
    let tagged = remaining_tagged(&sdk, &stack.suffix).await;
    assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
    let ec2 = remaining_ec2(&sdk, &stack.suffix).await;
    assert!(ec2.is_empty(), "left behind in EC2: {ec2:?}");
    // The RDS-managed secret went with the cluster.
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    match sm.describe_secret().secret_id(secret_arn).send().await {
        Err(_) => {}
        Ok(s) => assert!(s.deleted_date().is_some(), "secret {secret_arn} left"),
    }
}

#[test]
fn provisioned_aurora_cluster_is_built_encrypted_and_removed_completely() {
    let stack = Stack::new("db");
    let run = stack.up(&[]);
    run.assert_ok();
    let kinds: BTreeSet<String> = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "rds:db-subnet-group",
        "rds:db-cluster-parameter-group",
        "rds:db-cluster",
        "rds:db-instance",
    ] {
        assert!(kinds.contains(k), "state lacks {k}: {kinds:?}");
    }
    block_on(check_provisioned(&stack));
    check_create_request(&stack);

    let again = stack.up(&[]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0);
    assert_eq!(s["changes"]["changed"], 0);

    let secret_arn = stack.output_str("db_secret_arn");
    stack.down(&[]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    check_delete_request(&stack);
    block_on(check_nothing_left(&stack, &secret_arn));
}

#[test]
fn serverless_v2_cluster_scales_in_the_configured_range_and_drift_is_repaired() {
    let stack = Stack::new("dbsl");
    let cfg = stack.config("[database]\nmode = \"serverless\"\n");
    let cfg = cfg.to_str().unwrap();
    let up = || {
        stack.run(&[
            "--config",
            cfg,
            "--output",
            "json",
            "up",
            "--env-suffix",
            &stack.suffix,
        ])
    };
    up().assert_ok();
    let id = stack.output_str("db_cluster_id");
    let key_arn = stack.output_str("kms_key_arn");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let rds = aws_sdk_rds::Client::new(&sdk);
        let c = cluster(&rds, &id).await;
        let scaling = c
            .serverless_v2_scaling_configuration()
            .expect("ServerlessV2ScalingConfiguration");
        assert_eq!(scaling.min_capacity(), Some(0.5));
        assert_eq!(scaling.max_capacity(), Some(4.0));
        assert_eq!(c.engine_version(), Some("15.8"));
        assert_eq!(c.kms_key_id(), Some(key_arn.as_str()));
        assert_eq!(
            c.master_user_secret().and_then(|s| s.kms_key_id()),
            Some(key_arn.as_str())
        );
        for role in ["writer", "reader"] {
            let i = instance(&rds, &format!("aurora-{role}-{}", stack.suffix)).await;
            assert_eq!(i.db_instance_class(), Some("db.serverless"), "{role}");
            assert_eq!(i.db_instance_status(), Some("available"));
        }
    });

    let again = up();
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");

    // Someone changes the cluster by hand: up puts it back with one ModifyDBCluster.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let rds = aws_sdk_rds::Client::new(&sdk);
        rds.modify_db_cluster()
            .db_cluster_identifier(&id)
            .backup_retention_period(2)
            .deletion_protection(true)
            .serverless_v2_scaling_configuration(
                ServerlessV2ScalingConfiguration::builder()
                    .min_capacity(1.0)
                    .max_capacity(8.0)
                    .build(),
            )
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
    });
    let fix = up();
    fix.assert_ok();
    let s = fix.summary();
    assert_eq!(s["aws_calls"]["mutating"], 1, "{s}");
    assert!(
        s["aws_calls"]["mutating_ops"][0]
            .as_str()
            .unwrap()
            .ends_with("ModifyDBCluster"),
        "{s}"
    );
    assert_eq!(s["changes"]["changed"], 1, "{s}");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let rds = aws_sdk_rds::Client::new(&sdk);
        let c = cluster(&rds, &id).await;
        assert_eq!(c.backup_retention_period(), Some(7));
        assert_eq!(c.deletion_protection(), Some(false));
        let scaling = c.serverless_v2_scaling_configuration().unwrap();
        assert_eq!(
            (scaling.min_capacity(), scaling.max_capacity()),
            (Some(0.5), Some(4.0))
        );
    });
    let third = up();
    third.assert_ok();
    assert_eq!(third.summary()["aws_calls"]["mutating"], 0);

    // Deletion protection turned on again: down turns it off rather than failing.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_rds::Client::new(&sdk)
            .modify_db_cluster()
            .db_cluster_identifier(&id)
            .deletion_protection(true)
            .apply_immediately(true)
            .send()
            .await
            .unwrap();
    });
    let secret_arn = stack.output_str("db_secret_arn");
    stack
        .run(&[
            "--config",
            cfg,
            "--output",
            "json",
            "down",
            "--env-suffix",
            &stack.suffix,
        ])
        .assert_ok();
    assert!(!stack.state_path().exists());
    block_on(check_nothing_left(&stack, &secret_arn));
}

/// When the emulator served the first `op` whose `key` parameter is `id`.
fn ts_of(log: &[LoggedRequest], op: &str, key: &str, id: &str) -> f64 {
    log.iter()
        .find(|r| r.operation == op && r.params[key] == id)
        .unwrap_or_else(|| panic!("{op} {id} not logged"))
        .ts
}

fn event_ts(events: &[Value], kind: &str, id: &str, to: &str) -> f64 {
    events
        .iter()
        .find(|e| e["resource_type"] == kind && e["id"] == id && e["to"] == to)
        .and_then(|e| e["ts"].as_f64())
        .unwrap_or_else(|| panic!("no event {kind} {id} -> {to} in {events:?}"))
}

#[test]
fn up_waits_for_aurora_and_down_deletes_instances_before_the_cluster() {
    // Aurora create 450 s and instance delete 600 s on AWS: about 1 s each at this scale.
    let emu = Emulator::start(&["--time-scale", "0.002"]);
    let stack = Stack::on(&emu.endpoint, "dbwait");
    let s = stack.suffix.clone();
    let (cluster_id, writer, reader) = (
        format!("aurora-{s}"),
        format!("aurora-writer-{s}"),
        format!("aurora-reader-{s}"),
    );
    stack.up(&[]).assert_ok();
    let up_done = now();

    let log = request_log(&emu.endpoint);
    let events = events(&emu.endpoint);
    let created = ts_of(&log, "CreateDBCluster", "DBClusterIdentifier", &cluster_id);
    // The instances were created right after the cluster, not after waiting for it.
    let cluster_available = event_ts(&events, "db-cluster", &cluster_id, "available");
    for id in [&writer, &reader] {
        let t = ts_of(&log, "CreateDBInstance", "DBInstanceIdentifier", id);
        assert!(
            t < cluster_available,
            "{id} created only after the cluster was available"
        );
    }
    // And up finished only once all three were available.
    let mut last_available = cluster_available;
    for id in [&writer, &reader] {
        last_available = last_available.max(event_ts(&events, "db-instance", id, "available"));
    }
    assert!(
        last_available - created >= 0.5,
        "the emulator made Aurora wait ({}s)",
        last_available - created
    );
    assert!(
        up_done >= last_available,
        "up returned at {up_done}, before Aurora was available at {last_available}"
    );
    let saw_available = log.iter().any(|r| {
        r.operation == "DescribeDBClusters"
            && r.params["DBClusterIdentifier"] == cluster_id.as_str()
            && r.ts >= last_available
    });
    assert!(
        saw_available,
        "up never polled the cluster after it became available"
    );

    // A teardown already under way (e.g. a `down` that was interrupted): the writer is
    // `deleting` when down starts, which is progress to wait for, not an error.
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        aws_sdk_rds::Client::new(&sdk)
            .delete_db_instance()
            .db_instance_identifier(&writer)
            .send()
            .await
            .unwrap();
    });
    stack.down(&[]).assert_ok();

    let log = request_log(&emu.endpoint);
    let events = crate::util::events(&emu.endpoint);
    let ok = |op: &str| {
        let rs: Vec<_> = log.iter().filter(|r| r.operation == op).collect();
        assert!(!rs.is_empty(), "{op} not logged");
        for r in &rs {
            assert!(r.status < 400, "{op} refused: {r:?}");
        }
        rs
    };
    let delete_cluster = ok("DeleteDBCluster")[0].ts;
    let delete_reader = ts_of(&log, "DeleteDBInstance", "DBInstanceIdentifier", &reader);
    assert!(delete_reader < delete_cluster);
    for id in [&writer, &reader] {
        let gone = event_ts(&events, "db-instance", id, "gone");
        assert!(
            delete_cluster >= gone,
            "DeleteDBCluster at {delete_cluster} before instance {id} was gone at {gone}"
        );
    }
    let cluster_gone = event_ts(&events, "db-cluster", &cluster_id, "gone");
    for op in ["DeleteDBSubnetGroup", "DeleteDBClusterParameterGroup"] {
        let t = ok(op)[0].ts;
        assert!(
            t >= cluster_gone,
            "{op} at {t} before the cluster was gone at {cluster_gone}"
        );
    }
    // Our down did not ask to delete the writer again (the one request is the test's own).
    let writer_deletes = log
        .iter()
        .filter(|r| {
            r.operation == "DeleteDBInstance" && r.params["DBInstanceIdentifier"] == writer.as_str()
        })
        .count();
    assert_eq!(writer_deletes, 1, "down deleted the deleting writer again");
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let left = remaining_rds(&sdk, &s).await;
        assert!(left.is_empty(), "left behind: {left:?}");
        let ec2 = remaining_ec2(&sdk, &s).await;
        assert!(ec2.is_empty(), "left behind: {ec2:?}");
    });
}
