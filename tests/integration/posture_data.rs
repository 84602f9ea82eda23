//! Data-tier posture on the default stack (issue 12): Performance Insights on both Aurora
//! instances with the stack key and the free 7-day retention; the log groups AWS would create
//! itself (Aurora's PostgreSQL log export, Container Insights) created first by the tool,
//! encrypted, with retention and the stack's tags, and removed by `down`; the RDS-managed master
//! secret rotating every 7 days and tagged (AWS-CONTRACTS B10, B11); a second `up` that
//! changes nothing; a group AWS made before the tool managed it, adopted and repaired; and
//! Performance Insights turned off by hand failing `verify` (RDS.PI) until `up` turns it on.

use crate::util::*;

/// Every log group of the account whose name contains `needle`.
async fn log_groups_with(
    logs: &aws_sdk_cloudwatchlogs::Client,
    needle: &str,
) -> Vec<aws_sdk_cloudwatchlogs::types::LogGroup> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = logs
            .describe_log_groups()
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        all.extend(
            out.log_groups()
                .iter()
                .filter(|g| g.log_group_name().is_some_and(|n| n.contains(needle)))
                .cloned(),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return all;
        }
    }
}

/// The stack's tags (the Name tag is the resource's own name).
#[track_caller]
fn assert_stack_tags(tags: &std::collections::HashMap<String, String>, suffix: &str, what: &str) {
    let get = |k: &str| tags.get(k).map(String::as_str);
    assert_eq!(get("fintech-infra:stack"), Some(suffix), "{what}: {tags:?}");
    assert_eq!(get("Environment"), Some(suffix), "{what}: {tags:?}");
    assert_eq!(get("Team"), Some("platform"), "{what}: {tags:?}");
    assert_eq!(get("CostCenter"), Some("fintech"), "{what}: {tags:?}");
}

/// The log group `name`: exists, encrypted with `key`, the default 30-day retention, tagged.
async fn check_log_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    name: &str,
    key: &str,
    suffix: &str,
) {
    let g = logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .unwrap()
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("log group {name} missing"));
    assert_eq!(g.kms_key_id(), Some(key), "{name}: the stack key");
    assert_eq!(
        g.retention_in_days(),
        Some(30),
        "{name}: logs.retention_days"
    );
    let arn = g.log_group_arn().expect("log group ARN");
    // ListTagsForResource takes the ARN without the trailing `:*` DescribeLogGroups shows.
    let arn = arn.strip_suffix(":*").unwrap_or(arn);
    let tags = logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap()
        .tags()
        .cloned()
        .unwrap_or_default();
    assert_stack_tags(&tags, suffix, name);
    assert_eq!(tags.get("Name").map(String::as_str), Some(name));
}

/// When the stack's run first sent `op` with `key` = `value` (the emulator's request log).
fn first_ts(log: &[LoggedRequest], suffix: &str, op: &str, key: &str, value: &str) -> f64 {
    log.iter()
        .filter(|r| r.is_from_stack(suffix) && r.status < 300)
        .find(|r| r.operation == op && r.params[key] == value)
        .unwrap_or_else(|| panic!("no successful {op} with {key}={value} in the request log"))
        .ts
}

async fn check_posture(stack: &Stack) {
    let sdk = sdk_config(&stack.endpoint).await;
    let s = stack.suffix.as_str();
    let key = stack.output_str("kms_key_arn");

    // Performance Insights on both instances, with the stack key, 7 days.
    let rds = aws_sdk_rds::Client::new(&sdk);
    for role in ["writer", "reader"] {
        let id = format!("aurora-{role}-{s}");
        let i = rds
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await
            .unwrap()
            .db_instances()[0]
            .clone();
        // AWS always describes PerformanceInsightsEnabled, and so does the emulator's fidelity
        // layer (moto 5.2.5 alone kept no PI settings); the key as its ARN.
        assert_eq!(i.performance_insights_enabled(), Some(true), "{id}: PI on");
        assert_eq!(
            i.performance_insights_kms_key_id(),
            Some(key.as_str()),
            "{id}: PI with the stack key"
        );
        assert_eq!(
            i.performance_insights_retention_period(),
            Some(7),
            "{id}: PI free tier"
        );
    }

    // The log groups AWS would create itself, made by the tool first.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let db_group = format!("/aws/rds/cluster/aurora-{s}/postgresql");
    let ecs_group = format!("/aws/ecs/containerinsights/cluster-{s}/performance");
    check_log_group(&logs, &db_group, &key, s).await;
    check_log_group(&logs, &ecs_group, &key, s).await;

    // The RDS-managed master secret: rotation every 7 days, the stack's tags.
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let arn = stack.output_str("db_secret_arn");
    let d = sm.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(
        d.rotation_enabled(),
        Some(true),
        "secret rotation on: {d:?}"
    );
    assert_eq!(
        d.rotation_rules()
            .and_then(|r| r.automatically_after_days()),
        Some(7),
        "rotation every 7 days: {d:?}"
    );
    let tags = d
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    assert_stack_tags(&tags, s, "master secret");
}

/// The order the faithful emulator saw: each log group before the resource that writes to it;
/// the rotation schedule set without rotating the password now.
fn check_requests(stack: &Stack) {
    if !is_faithful(&stack.endpoint) {
        return;
    }
    let s = stack.suffix.as_str();
    let log = request_log(&stack.endpoint);
    let db_group = format!("/aws/rds/cluster/aurora-{s}/postgresql");
    let ecs_group = format!("/aws/ecs/containerinsights/cluster-{s}/performance");
    assert!(
        first_ts(&log, s, "CreateLogGroup", "logGroupName", &db_group)
            < first_ts(
                &log,
                s,
                "CreateDBCluster",
                "DBClusterIdentifier",
                &format!("aurora-{s}")
            ),
        "the export's log group must exist before the cluster"
    );
    assert!(
        first_ts(&log, s, "CreateLogGroup", "logGroupName", &ecs_group)
            < first_ts(
                &log,
                s,
                "CreateCluster",
                "clusterName",
                &format!("cluster-{s}")
            ),
        "the Container Insights log group must exist before the ECS cluster"
    );
    // What the tool asked for, besides what the emulator keeps of it (`check_posture`).
    let key = stack.output_str("kms_key_arn");
    for role in ["writer", "reader"] {
        let id = format!("aurora-{role}-{s}");
        let create = log
            .iter()
            .find(|r| r.operation == "CreateDBInstance" && r.params["DBInstanceIdentifier"] == id)
            .unwrap_or_else(|| panic!("CreateDBInstance {id} not logged"));
        assert_eq!(create.params["EnablePerformanceInsights"], "true", "{id}");
        assert_eq!(
            create.params["PerformanceInsightsKMSKeyId"],
            key.as_str(),
            "{id}"
        );
        assert_eq!(
            create.params["PerformanceInsightsRetentionPeriod"], "7",
            "{id}"
        );
    }
    let rotate = log
        .iter()
        .find(|r| r.is_from_stack(s) && r.operation == "RotateSecret")
        .expect("RotateSecret sent");
    assert_eq!(rotate.params["RotationRules"]["AutomaticallyAfterDays"], 7);
    assert_eq!(
        rotate.params["RotateImmediately"], false,
        "{:?}",
        rotate.params
    );
}

#[test]
fn data_tier_posture_is_built_kept_and_removed() {
    let stack = Stack::new("pd");
    stack.up(&[]).assert_ok();
    check_requests(&stack);
    block_on(check_posture(&stack));

    let again = stack.up(&[]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");

    stack.down(&[]).assert_ok();
    let left = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        log_groups_with(&logs, &stack.suffix).await
    });
    let names: Vec<_> = left.iter().filter_map(|g| g.log_group_name()).collect();
    assert!(names.is_empty(), "log groups left after down: {names:?}");
}

/// A stack from before this control: AWS already made the export's group, unencrypted, never
/// expiring and untagged. `up` adopts it: the stack key, the retention, the stack's tags; and
/// `down` removes it.
#[test]
fn a_log_group_aws_made_first_is_encrypted_tagged_and_removed() {
    let stack = Stack::new("pda");
    let s = stack.suffix.clone();
    let db_group = format!("/aws/rds/cluster/aurora-{s}/postgresql");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_cloudwatchlogs::Client::new(&sdk)
            .create_log_group()
            .log_group_name(&db_group)
            .send()
            .await
            .unwrap();
    });
    stack.up(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        check_log_group(&logs, &db_group, &stack.output_str("kms_key_arn"), &s).await;
    });
    let again = stack.up(&[]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");
    stack.down(&[]).assert_ok();
    let left = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        log_groups_with(&aws_sdk_cloudwatchlogs::Client::new(&sdk), &s).await
    });
    assert!(left.is_empty(), "log groups left after down: {left:?}");
}

/// The `verify --output json` run's failing checks as "path: reason".
fn failing_checks(run: &Run) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}):\n{}\n{}",
            run.stdout, run.stderr
        )
    });
    v["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|c| c["result"] == "FAIL")
        .map(|c| {
            format!(
                "{}: {}",
                c["path"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// RDS.PI: Performance Insights turned off by hand (ModifyDBInstance
/// EnablePerformanceInsights=false, as the console's "turn off" does) fails `verify`, naming
/// the control and the instance; `up` turns it on again with the stack key (RDS keeps the
/// instance bound to the key it had, so that is the key it accepts), then `verify` passes and
/// a further `up` changes nothing.
#[test]
fn performance_insights_turned_off_fails_verify_and_up_turns_it_on_again() {
    let stack = Stack::new("ppi");
    stack.up(&["--no-verify"]).assert_ok();
    crate::verify::assert_verifies(&stack);
    let s = stack.suffix.clone();
    let key = stack.output_str("kms_key_arn");
    let reader = format!("aurora-reader-{s}");
    let sdk = block_on(sdk_config(&stack.endpoint));
    let rds = aws_sdk_rds::Client::new(&sdk);
    block_on(
        rds.modify_db_instance()
            .db_instance_identifier(&reader)
            .enable_performance_insights(false)
            .apply_immediately(true)
            .send(),
    )
    .unwrap();

    let run = stack.run(&["--output", "json", "verify", "--env-suffix", &s]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let failed = failing_checks(&run);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].starts_with("RDS.")
            && failed[0].contains(&format!("{reader}: Performance Insights is off (RDS.PI)")),
        "{failed:#?}"
    );

    let up = stack.up(&[]);
    up.assert_ok();
    let sum = up.summary();
    let ops: Vec<&str> = sum["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.as_str())
        .collect();
    assert!(
        ops.iter().any(|o| o.ends_with(":ModifyDBInstance")),
        "{ops:?}"
    );
    let i = block_on(
        rds.describe_db_instances()
            .db_instance_identifier(&reader)
            .send(),
    )
    .unwrap()
    .db_instances()[0]
        .clone();
    assert_eq!(
        i.performance_insights_enabled(),
        Some(true),
        "{reader}: PI on"
    );
    assert_eq!(
        i.performance_insights_kms_key_id(),
        Some(key.as_str()),
        "{reader}: the stack key"
    );
    assert_eq!(i.performance_insights_retention_period(), Some(7));
    crate::verify::assert_verifies(&stack);

    let again = stack.up(&[]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");
    stack.down(&[]).assert_ok();
}
