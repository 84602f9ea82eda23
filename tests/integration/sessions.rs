//! The sessions step against the emulator: the DynamoDB table is on-demand, encrypted with the
//! stack key, has PITR, TTL on the configured attribute and the `by-user` index; drift (PITR
//! switched off by hand) is repaired; a second `up` changes nothing; `down` waits the table
//! out. At a real time scale, PITR and TTL are only set once the table is ACTIVE.

use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus,
    ProjectionType, ScalarAttributeType, SseType, TableStatus, TimeToLiveStatus,
};
use serde_json::Value;

use crate::util::*;

/// Asserts the standard tags on a DynamoDB table (tags are read with ListTagsOfResource:
/// DescribeTable does not return them).
async fn assert_table_tags(ddb: &aws_sdk_dynamodb::Client, arn: &str, suffix: &str) {
    let tags = ddb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        tags.tags()
            .iter()
            .find(|t| t.key() == k)
            .map(|t| t.value().to_string())
    };
    assert_eq!(tag("fintech-infra:stack").as_deref(), Some(suffix));
    assert_eq!(tag("Name"), Some(format!("sessions-{suffix}")));
    assert_eq!(tag("Environment").as_deref(), Some(suffix));
    assert_eq!(tag("Team").as_deref(), Some("platform"));
    assert_eq!(tag("CostCenter").as_deref(), Some("fintech"));
}

async fn pitr_status(ddb: &aws_sdk_dynamodb::Client, table: &str) -> PointInTimeRecoveryStatus {
    ddb.describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .cloned()
        .expect("PITR status")
}

#[test]
fn sessions_table_is_on_demand_encrypted_with_pitr_ttl_and_user_index() {
    let stack = Stack::new("sess");
    let cfg = stack.config("[sessions]\nttl_attribute = \"expires_at_epoch\"\n");
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();

    let table = format!("sessions-{}", stack.suffix);
    assert_eq!(stack.output("sessions_table_name"), table.as_str());
    let arn = stack
        .output("sessions_table_arn")
        .as_str()
        .unwrap()
        .to_string();
    let key_arn = stack.output("kms_key_arn").as_str().unwrap().to_string();
    let recorded = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["kind"] == "dynamodb:table" && r["id"] == table.as_str());
    assert!(recorded, "table not recorded in the state");

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let t = ddb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        assert_eq!(t.table_arn(), Some(arn.as_str()));
        assert_eq!(t.table_status(), Some(&TableStatus::Active));
        assert_eq!(
            t.billing_mode_summary().and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest)
        );
        // Hash key session_id (S); the index's user_id (S).
        let ks = t.key_schema();
        assert_eq!(ks.len(), 1);
        assert_eq!(
            (ks[0].attribute_name(), ks[0].key_type()),
            ("session_id", &KeyType::Hash)
        );
        for a in t.attribute_definitions() {
            assert_eq!(a.attribute_type(), &ScalarAttributeType::S, "{a:?}");
        }
        let sse = t.sse_description().expect("SSE description");
        assert_eq!(sse.sse_type(), Some(&SseType::Kms));
        assert_eq!(sse.kms_master_key_arn(), Some(key_arn.as_str()));
        let gsi = t.global_secondary_indexes();
        assert_eq!(gsi.len(), 1);
        assert_eq!(gsi[0].index_name(), Some("by-user"));
        let gks = gsi[0].key_schema();
        assert_eq!(gks.len(), 1);
        assert_eq!(
            (gks[0].attribute_name(), gks[0].key_type()),
            ("user_id", &KeyType::Hash)
        );
        assert_eq!(
            gsi[0].projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All)
        );

        assert_eq!(
            pitr_status(&ddb, &table).await,
            PointInTimeRecoveryStatus::Enabled
        );
        let ttl = ddb
            .describe_time_to_live()
            .table_name(&table)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
        assert_eq!(ttl.attribute_name(), Some("expires_at_epoch"));
        assert_table_tags(&ddb, &arn, &stack.suffix).await;
    });

    // A second up changes nothing.
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");

    // Drift: PITR switched off by hand is switched on again, as a change.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        ddb.update_continuous_backups()
            .table_name(&table)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(false)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    let fix = stack.up(&["--config", cfg]);
    fix.assert_ok();
    let s = fix.summary();
    assert_eq!(s["changes"]["changed"], 1, "{s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    let ops: Vec<Value> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        ops.iter().all(|o| o
            .as_str()
            .unwrap_or("")
            .ends_with("UpdateContinuousBackups")),
        "{ops:?}"
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        assert_eq!(
            pitr_status(&ddb, &table).await,
            PointInTimeRecoveryStatus::Enabled
        );
    });

    stack.down(&["--config", cfg]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let err = ddb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect_err("table still there after down");
        assert!(
            format!("{err:?}").contains("ResourceNotFoundException"),
            "{err:?}"
        );
        let tagged = remaining_tagged(&sdk, &stack.suffix).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
    });
}

/// At this scale the table is CREATING for 0.5 s and DELETING for 0.5 s (kept small: the
/// whole stack, Aurora included, waits at this scale).
const TIME_SCALE: &str = "0.025";

#[test]
fn pitr_and_ttl_wait_for_an_active_table_and_down_waits_until_it_is_gone() {
    let emu = Emulator::start(&["--time-scale", TIME_SCALE]);
    assert!(emu.is_faithful());
    let stack = Stack::on(&emu.endpoint, "sesswait");
    stack.up(&[]).assert_ok();
    let table = format!("sessions-{}", stack.suffix);

    let log = request_log(&emu.endpoint);
    let at = |to: &str| {
        let events = events(&emu.endpoint);
        events
            .iter()
            .find(|e| {
                e["resource_type"] == "dynamodb-table" && e["id"] == table.as_str() && e["to"] == to
            })
            .and_then(|e| e["ts"].as_f64())
            .unwrap_or_else(|| panic!("no {to} event for {table}: {events:?}"))
    };
    let active_at = at("ACTIVE");
    let created = log
        .iter()
        .find(|r| r.operation == "CreateTable" && r.params["TableName"] == table.as_str())
        .expect("CreateTable logged");
    assert!(active_at - created.ts >= 0.4, "the table did not wait");
    for op in ["UpdateContinuousBackups", "UpdateTimeToLive"] {
        let r = log
            .iter()
            .find(|r| r.operation == op && r.params["TableName"] == table.as_str())
            .unwrap_or_else(|| panic!("{op} not logged"));
        assert!(
            r.ts >= active_at,
            "{op} at {} before the table was ACTIVE at {active_at}",
            r.ts
        );
        assert_eq!(r.status, 200, "{r:?}");
    }

    stack.down(&[]).assert_ok();
    let gone_at = at("gone");
    let log = request_log(&emu.endpoint);
    let delete = log
        .iter()
        .find(|r| r.operation == "DeleteTable" && r.params["TableName"] == table.as_str())
        .expect("DeleteTable logged");
    assert!(gone_at - delete.ts >= 0.4, "the delete did not wait");
    // down saw the table gone (DescribeTable refused, ResourceNotFoundException, after `gone`).
    let saw_gone = log.iter().any(|r| {
        r.operation == "DescribeTable"
            && r.params["TableName"] == table.as_str()
            && r.ts >= gone_at
            && r.status == 400
    });
    assert!(saw_gone, "down did not wait until the table was gone");
    assert!(!stack.state_path().exists());
}
