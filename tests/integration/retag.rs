//! Issue 12, "every resource tagged": a change of the config's `[tags]` re-tags the whole
//! stack on the next `up`. The default stack (with a Cloud Map namespace, whose Route 53
//! hosted zone the cluster step tags) is built, `team` and `cost_center` change, `verify`
//! names the stale values, `plan` shows the pass as one change without a mutating call,
//! `up` tags every recorded resource (checked through each service's own tag-listing call,
//! `Name` kept), `verify` passes, a third `up` makes no tag call and `down` leaves nothing.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::util::*;
use crate::verify::{checks, failing, verify};

const NAMESPACE: &str = "retag.internal";
const TEAM: &str = "payments";
const COST_CENTER: &str = "cc-42";

/// The first record of `kind` in the state.
fn record(state: &Value, kind: &str) -> Value {
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == kind && r["pending"] != true)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} recorded"))
}

fn records(state: &Value, kind: &str) -> Vec<Value> {
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind && r["pending"] != true)
        .cloned()
        .collect()
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// A record's ARN (or its ID, for the kinds whose ID is their ARN).
fn arn(rec: &Value) -> String {
    rec["arn"]
        .as_str()
        .filter(|a| a.starts_with("arn:"))
        .map(str::to_string)
        .unwrap_or_else(|| s(&rec["id"]))
}

type Tags = BTreeMap<String, String>;

fn tags_of<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Tags {
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect()
}

/// Every resource's tags, by what it is, through each service's own listing call.
async fn all_tags(sdk: &SdkConfig, state: &Value) -> Vec<(String, Tags)> {
    let outputs = &state["outputs"];
    let mut out = Vec::new();

    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpc = s(&outputs["vpc_id"]);
    let subnet = s(&record(state, "ec2:subnet")["id"]);
    let sg = s(&record(state, "ec2:security-group")["id"]);
    for (what, id) in [("VPC", &vpc), ("subnet", &subnet), ("security group", &sg)] {
        let t = ec2
            .describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.push((
            format!("{what} {id}"),
            tags_of(
                t.tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
            ),
        ));
    }

    let rds = aws_sdk_rds::Client::new(sdk);
    let cluster = arn(&record(state, "rds:db-cluster"));
    let t = rds
        .list_tags_for_resource()
        .resource_name(&cluster)
        .send()
        .await
        .unwrap();
    out.push((
        format!("Aurora cluster {cluster}"),
        tags_of(
            t.tag_list()
                .iter()
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
        ),
    ));

    let ecs = aws_sdk_ecs::Client::new(sdk);
    for kind in ["ecs:cluster", "ecs:service"] {
        let a = arn(&record(state, kind));
        let t = ecs
            .list_tags_for_resource()
            .resource_arn(&a)
            .send()
            .await
            .unwrap();
        out.push((
            format!("{kind} {a}"),
            tags_of(
                t.tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
            ),
        ));
    }

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    for kind in [
        "elasticloadbalancing:loadbalancer",
        "elasticloadbalancing:targetgroup",
    ] {
        let a = arn(&record(state, kind));
        let t = elb.describe_tags().resource_arns(&a).send().await.unwrap();
        let set = t
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")));
        out.push((format!("{kind} {a}"), tags_of(set)));
    }

    let function = arn(&record(state, "lambda:function"));
    let t = aws_sdk_lambda::Client::new(sdk)
        .list_tags()
        .resource(&function)
        .send()
        .await
        .unwrap();
    out.push((
        format!("function {function}"),
        tags_of(t.tags().cloned().unwrap_or_default()),
    ));

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queue = s(&record(state, "sqs:queue")["id"]);
    let t = sqs
        .list_queue_tags()
        .queue_url(&queue)
        .send()
        .await
        .unwrap();
    out.push((
        format!("queue {queue}"),
        tags_of(t.tags().cloned().unwrap_or_default()),
    ));

    let topic = arn(&record(state, "sns:topic"));
    let t = aws_sdk_sns::Client::new(sdk)
        .list_tags_for_resource()
        .resource_arn(&topic)
        .send()
        .await
        .unwrap();
    out.push((
        format!("topic {topic}"),
        tags_of(t.tags().iter().map(|t| (t.key(), t.value()))),
    ));

    let key = s(&record(state, "kms:key")["id"]);
    let t = aws_sdk_kms::Client::new(sdk)
        .list_resource_tags()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    out.push((
        format!("KMS key {key}"),
        tags_of(t.tags().iter().map(|t| (t.tag_key(), t.tag_value()))),
    ));

    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    for g in records(state, "logs:log-group") {
        let name = s(&g["id"]);
        let a = format!("arn:aws:logs:{REGION}:123456789012:log-group:{name}");
        let t = logs
            .list_tags_for_resource()
            .resource_arn(&a)
            .send()
            .await
            .unwrap();
        out.push((
            format!("log group {name}"),
            tags_of(t.tags().cloned().unwrap_or_default()),
        ));
    }

    let table = arn(&record(state, "dynamodb:table"));
    let t = aws_sdk_dynamodb::Client::new(sdk)
        .list_tags_of_resource()
        .resource_arn(&table)
        .send()
        .await
        .unwrap();
    out.push((
        format!("table {table}"),
        tags_of(t.tags().iter().map(|t| (t.key(), t.value()))),
    ));

    let secret = s(&outputs["db_secret_arn"]);
    let t = aws_sdk_secretsmanager::Client::new(sdk)
        .describe_secret()
        .secret_id(&secret)
        .send()
        .await
        .unwrap();
    out.push((
        format!("secret {secret}"),
        tags_of(
            t.tags()
                .iter()
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
        ),
    ));

    // Path-style: bucket host names do not resolve on the emulator's loopback address.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    let buckets = records(state, "s3:bucket");
    assert!(
        buckets.len() >= 3,
        "assets, transaction log, log buckets: {buckets:?}"
    );
    for b in buckets {
        let name = s(&b["id"]);
        let t = s3.get_bucket_tagging().bucket(&name).send().await.unwrap();
        out.push((
            format!("bucket {name}"),
            tags_of(t.tag_set().iter().map(|t| (t.key(), t.value()))),
        ));
    }

    let repo = arn(&record(state, "ecr:repository"));
    let t = aws_sdk_ecr::Client::new(sdk)
        .list_tags_for_resource()
        .resource_arn(&repo)
        .send()
        .await
        .unwrap();
    out.push((
        format!("repository {repo}"),
        tags_of(t.tags().iter().map(|t| (t.key(), t.value()))),
    ));

    let iam = aws_sdk_iam::Client::new(sdk);
    let role = s(&record(state, "iam:role")["id"]);
    let t = iam.list_role_tags().role_name(&role).send().await.unwrap();
    out.push((
        format!("role {role}"),
        tags_of(t.tags().iter().map(|t| (t.key(), t.value()))),
    ));

    let ns = record(state, "servicediscovery:namespace");
    let ns_arn = arn(&ns);
    let t = aws_sdk_servicediscovery::Client::new(sdk)
        .list_tags_for_resource()
        .resource_arn(&ns_arn)
        .send()
        .await
        .unwrap();
    out.push((
        format!("namespace {ns_arn}"),
        tags_of(t.tags().iter().map(|t| (t.key(), t.value()))),
    ));
    let zone = s(&ns["attrs"]["hosted_zone_id"]);
    let t = aws_sdk_route53::Client::new(sdk)
        .list_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
        .resource_id(&zone)
        .send()
        .await
        .unwrap();
    out.push((
        format!("hosted zone {zone}"),
        tags_of(
            t.resource_tag_set()
                .map(|s| s.tags())
                .unwrap_or_default()
                .iter()
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
        ),
    ));
    out
}

/// Whether a request is one of the tag-add calls the stack makes.
fn is_tag_call(operation: &str) -> bool {
    matches!(
        operation,
        "CreateTags"
            | "TagResource"
            | "AddTags"
            | "AddTagsToResource"
            | "AddTagsToCertificate"
            | "TagQueue"
            | "TagRole"
            | "TagPolicy"
            | "PutBucketTagging"
            | "ChangeTagsForResource"
    )
}

#[test]
fn a_tags_change_retags_every_resource_on_the_next_up() {
    let stack = Stack::new("retag");
    let suffix = stack.suffix.clone();
    let before = format!("[cluster]\nnamespace = \"{NAMESPACE}\"\n");
    let cfg = stack.config(&before);
    let cfg = cfg.to_str().unwrap().to_string();
    stack.up(&["--config", &cfg]).assert_ok();
    let first = stack.state();
    let fingerprint = first["tags_fingerprint"].clone();
    assert!(
        fingerprint.as_str().is_some_and(|f| f.starts_with("v1:")),
        "a new stack records its tag fingerprint: {fingerprint}"
    );
    let zone = s(&record(&first, "servicediscovery:namespace")["attrs"]["hosted_zone_id"]);

    // Cloud Map made the zone untagged; the cluster step tagged it with the namespace's name.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let (_, zone_tags) = all_tags(&sdk, &first)
            .await
            .into_iter()
            .find(|(what, _)| what.starts_with("hosted zone"))
            .unwrap();
        assert_eq!(zone_tags.get("Name").map(String::as_str), Some(NAMESPACE));
        assert_eq!(zone_tags.get("Team").map(String::as_str), Some("platform"));
        assert_eq!(
            zone_tags.get("fintech-infra:stack"),
            Some(&suffix),
            "{zone_tags:?}"
        );
    });

    let after = format!("[tags]\nteam = \"{TEAM}\"\ncost_center = \"{COST_CENTER}\"\n\n{before}");
    let cfg = stack.config(&after);
    let cfg = cfg.to_str().unwrap().to_string();

    // Before the `up`, verify with the new config names the stale values.
    let stale = stack.run(&[
        "--config",
        &cfg,
        "--output",
        "json",
        "verify",
        "--env-suffix",
        &suffix,
    ]);
    assert_eq!(stale.code, 1, "{}\n{}", stale.stdout, stale.stderr);
    let fails = failing(&stale);
    assert!(
        fails.iter().all(|f| f.starts_with("Tags ")),
        "only the tag control fails: {fails:#?}"
    );
    let tag_check = checks(&stale)
        .into_iter()
        .find(|c| c["path"].as_str().is_some_and(|p| p.starts_with("Tags ")))
        .unwrap();
    let reason = tag_check["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("has Team=platform, the config wants Team={TEAM}"))
            && reason.contains(&format!(
                "has CostCenter=fintech, the config wants CostCenter={COST_CENTER}"
            ))
            && reason.contains("arn:aws:"),
        "{reason}"
    );

    // `plan`: the pass is one change, nothing is called that changes anything.
    let plan = stack.run(&[
        "--config",
        &cfg,
        "--output",
        "json",
        "plan",
        "--env-suffix",
        &suffix,
    ]);
    plan.assert_ok();
    let sum = plan.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "{sum}");
    let items: Vec<Value> = sum["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["step"] == "retag")
        .cloned()
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["action"], "change");
    let planned: usize = items[0]["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("re-tag "))
        .and_then(|n| n.strip_suffix(" resources"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", items[0]));
    assert!(planned > 50, "every taggable record: {planned}");
    let detail = items[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("Team={TEAM}"))
            && detail.contains(&format!("CostCenter={COST_CENTER}")),
        "{detail}"
    );
    assert_eq!(
        stack.state()["tags_fingerprint"],
        fingerprint,
        "plan wrote nothing"
    );

    // `up` tags them all.
    let up = stack.up(&["--config", &cfg]);
    up.assert_ok();
    let sum = up.summary();
    let retag = sum["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "retag")
        .unwrap_or_else(|| panic!("no retag pass: {sum}"));
    assert_eq!(retag["status"], "done", "{retag}");
    let state = stack.state();
    assert_ne!(state["tags_fingerprint"], fingerprint);
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let all = all_tags(&sdk, &state).await;
        let mut wrong = Vec::new();
        for (what, tags) in &all {
            for (k, v) in [
                ("Team", TEAM),
                ("CostCenter", COST_CENTER),
                ("Environment", suffix.as_str()),
                ("fintech-infra:stack", suffix.as_str()),
            ] {
                if tags.get(k).map(String::as_str) != Some(v) {
                    wrong.push(format!("{what}: {k}={:?}, want {v}", tags.get(k)));
                }
            }
        }
        assert!(wrong.is_empty(), "not re-tagged: {wrong:#?}");
        // `Name` is left alone.
        let (_, vpc) = all.iter().find(|(w, _)| w.starts_with("VPC")).unwrap();
        assert!(
            vpc.get("Name").is_some_and(|n| n.ends_with(&suffix)),
            "{vpc:?}"
        );
        let (_, zone_tags) = all
            .iter()
            .find(|(w, _)| w.starts_with("hosted zone"))
            .unwrap();
        assert_eq!(zone_tags.get("Name").map(String::as_str), Some(NAMESPACE));
    });

    // verify (with the config the last `up` recorded) passes, the tag control included.
    let ok = verify(&stack);
    assert_eq!(
        ok.code,
        0,
        "verify failed: {:#?}\n{}",
        failing(&ok),
        ok.stderr
    );

    // A third `up` has nothing to tag.
    let faithful = is_faithful(&stack.endpoint);
    let logged = if faithful {
        request_log(&stack.endpoint).len()
    } else {
        0
    };
    let third = stack.up(&["--config", &cfg]);
    third.assert_ok();
    let sum = third.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "third up mutated: {sum}");
    assert!(
        !sum["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "retag"),
        "{sum}"
    );
    if faithful {
        let tag_calls: Vec<String> = request_log(&stack.endpoint)
            .into_iter()
            .skip(logged)
            .filter(|r| r.is_from_stack(&suffix) && is_tag_call(&r.operation))
            .map(|r| format!("{} {}", r.service, r.operation))
            .collect();
        assert!(tag_calls.is_empty(), "third up tagged: {tag_calls:?}");
    }

    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_tagged(&sdk, &suffix).await;
        assert!(left.is_empty(), "left behind (tagging API): {left:?}");
        let left = remaining_ec2(&sdk, &suffix).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
        // The hosted zone went with the namespace.
        let gone = aws_sdk_route53::Client::new(&sdk)
            .get_hosted_zone()
            .id(&zone)
            .send()
            .await;
        assert!(gone.is_err(), "hosted zone {zone} left: {gone:?}");
    });
}

/// Sets the VPC's tags for the failure test: without `CostCenter` and with `junk` more keys.
async fn crowd_vpc(sdk: &SdkConfig, vpc: &str, junk: usize) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    ec2.delete_tags()
        .resources(vpc)
        .tags(aws_sdk_ec2::types::Tag::builder().key("CostCenter").build())
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = (0..junk)
        .map(|i| {
            aws_sdk_ec2::types::Tag::builder()
                .key(format!("junk-{i}"))
                .value("x")
                .build()
        })
        .collect();
    ec2.create_tags()
        .resources(vpc)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

#[test]
fn a_failed_tag_call_keeps_the_old_fingerprint_and_the_next_up_tags_again() {
    let stack = Stack::new("retagf");
    let suffix = stack.suffix.clone();
    stack.up(&["--no-verify"]).assert_ok();
    let fingerprint = stack.state()["tags_fingerprint"].clone();
    let vpc = stack.output_str("vpc_id");
    // EC2 allows 50 tags: the VPC has Name, Environment, Team and the stack tag, 46 more fill
    // it, and adding CostCenter back is refused (TagLimitExceeded).
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        crowd_vpc(&sdk, &vpc, 46).await;
    });
    let cfg = stack.config(&format!("[tags]\nteam = \"{TEAM}\"\n"));
    let cfg = cfg.to_str().unwrap().to_string();
    let failed = stack.up(&["--config", &cfg, "--no-verify"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let sum = failed.summary();
    let retag = sum["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "retag")
        .cloned()
        .unwrap_or_else(|| panic!("{sum}"));
    assert_eq!(retag["status"], "failed", "{retag}");
    assert_eq!(
        retag["root_cause"]["operation"], "ec2:CreateTags",
        "{retag}"
    );
    assert_eq!(retag["root_cause"]["code"], "TagLimitExceeded", "{retag}");
    // The batch was tagged ID by ID: the error names the one resource EC2 refused.
    assert_eq!(retag["root_cause"]["resource"], vpc.as_str(), "{retag}");
    assert_eq!(
        stack.state()["tags_fingerprint"],
        fingerprint,
        "a failed pass keeps the old fingerprint"
    );
    // Everything else was tagged all the same: the VPC's subnets, the other services.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let subnet = s(&record(&stack.state(), "ec2:subnet")["id"]);
        let t = aws_sdk_ec2::Client::new(&sdk)
            .describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(&subnet)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            t.tags()
                .iter()
                .any(|t| t.key() == Some("Team") && t.value() == Some(TEAM)),
            "{t:?}"
        );
        let role = s(&record(&stack.state(), "iam:role")["id"]);
        let t = aws_sdk_iam::Client::new(&sdk)
            .list_role_tags()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        assert!(
            t.tags()
                .iter()
                .any(|t| t.key() == "Team" && t.value() == TEAM),
            "{t:?}"
        );
        // Room again: the next `up` tags again and succeeds.
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let junk: Vec<_> = (0..46)
            .map(|i| {
                aws_sdk_ec2::types::Tag::builder()
                    .key(format!("junk-{i}"))
                    .build()
            })
            .collect();
        ec2.delete_tags()
            .resources(&vpc)
            .set_tags(Some(junk))
            .send()
            .await
            .unwrap();
    });
    let again = stack.up(&["--config", &cfg, "--no-verify"]);
    again.assert_ok();
    let state = stack.state();
    assert_ne!(state["tags_fingerprint"], fingerprint);
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let t = aws_sdk_ec2::Client::new(&sdk)
            .describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(&vpc)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let tags = tags_of(
            t.tags()
                .iter()
                .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or(""))),
        );
        assert_eq!(tags.get("Team").map(String::as_str), Some(TEAM), "{tags:?}");
        assert_eq!(
            tags.get("CostCenter").map(String::as_str),
            Some("fintech"),
            "{tags:?}"
        );
    });
    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_tagged(&sdk, &suffix).await;
        assert!(left.is_empty(), "left behind (tagging API): {left:?}");
    });
}
