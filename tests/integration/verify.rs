//! `fintech-infra verify` against the emulator: a built stack passes every path; wiring broken
//! on purpose through the SDK (a key-policy statement, the producer's grant, the ALB's
//! CloudFront ingress, the queue's redrive and event source mapping, a service-to-service
//! rule) makes exactly those paths fail with a reason, and `up` repairs them.

use serde_json::Value;

use crate::util::*;

/// The checks of a `verify --output json` run, by path.
pub fn checks(run: &Run) -> Vec<Value> {
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}):\n{}\n{}",
            run.stdout, run.stderr
        )
    });
    v["checks"].as_array().cloned().unwrap_or_default()
}

pub fn verify(stack: &Stack) -> Run {
    stack.run(&["--output", "json", "verify", "--env-suffix", &stack.suffix])
}

pub fn failing(run: &Run) -> Vec<String> {
    checks(run)
        .into_iter()
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

/// Asserts that `verify` passes every path and covers the ones every preset has; returns the
/// checks.
#[track_caller]
pub fn assert_verifies(stack: &Stack) -> Vec<Value> {
    let run = verify(stack);
    assert_eq!(
        run.code,
        0,
        "verify failed: {:#?}\n{}",
        failing(&run),
        run.stderr
    );
    let paths: Vec<String> = checks(&run)
        .iter()
        .map(|c| c["path"].as_str().unwrap_or("").to_string())
        .collect();
    for must in [
        "viewer → CloudFront → assets bucket",
        "CloudFront → ALB (/api/*)",
        "transaction queue → validator",
        "alarms → alert topic",
        "log groups → their KMS key",
    ] {
        assert!(
            paths.iter().any(|p| p == must),
            "no `{must}` check in {paths:#?}"
        );
    }
    assert!(
        paths.iter().any(|p| p.ends_with("→ transaction queue")),
        "no producer check in {paths:#?}"
    );
    checks(&run)
}

#[test]
fn broken_wiring_fails_verify_naming_the_path_and_up_repairs_it() {
    let stack = Stack::new("verify");
    stack.up(&["--preset", "webapp"]).assert_ok();
    assert_verifies(&stack);

    let s = stack.suffix.clone();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        // 1. The key policy loses the statement that lets CloudFront decrypt the assets.
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key = stack.output_str("kms_key_id");
        let policy = kms
            .get_key_policy()
            .key_id(&key)
            .policy_name("default")
            .send()
            .await
            .unwrap();
        let mut doc: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
        let before = doc["Statement"].as_array().unwrap().len();
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|st| st["Principal"]["Service"] != "cloudfront.amazonaws.com");
        assert_eq!(
            doc["Statement"].as_array().unwrap().len(),
            before - 1,
            "{doc}"
        );
        kms.put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(doc.to_string())
            .send()
            .await
            .unwrap();

        // 2. The producer's task role loses its queue grant and its X-Ray grant (a new
        //    default policy version).
        let iam = aws_sdk_iam::Client::new(&sdk);
        let policy_arn = format!("arn:aws:iam::123456789012:policy/policy-task-web-{s}");
        let p = iam
            .get_policy()
            .policy_arn(&policy_arn)
            .send()
            .await
            .unwrap();
        let version = p
            .policy()
            .unwrap()
            .default_version_id()
            .unwrap()
            .to_string();
        let v = iam
            .get_policy_version()
            .policy_arn(&policy_arn)
            .version_id(&version)
            .send()
            .await
            .unwrap();
        let text =
            percent_encoding::percent_decode_str(v.policy_version().unwrap().document().unwrap())
                .decode_utf8()
                .unwrap()
                .to_string();
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|st| st["Sid"] != "SendToTransactionQueue" && st["Sid"] != "SendTracesToXRay");
        iam.create_policy_version()
            .policy_arn(&policy_arn)
            .policy_document(doc.to_string())
            .set_as_default(true)
            .send()
            .await
            .unwrap();

        // 3. The ALB's security group stops admitting CloudFront.
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let sg = stack.output_str("sg_alb_id");
        let rules = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(&sg)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let ingress: Vec<String> = rules
            .security_group_rules()
            .iter()
            .filter(|r| r.is_egress() == Some(false))
            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
            .collect();
        assert!(!ingress.is_empty());
        ec2.revoke_security_group_ingress()
            .group_id(&sg)
            .set_security_group_rule_ids(Some(ingress))
            .send()
            .await
            .unwrap();

        // 4. The queue loses its redrive policy: the validator's failures would be retried
        //    forever instead of landing in the dead-letter queue.
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        sqs.set_queue_attributes()
            .queue_url(stack.output_str("queue_url"))
            .attributes(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, "")
            .send()
            .await
            .unwrap();

        // 5. The queue no longer feeds the validator.
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let maps = lambda
            .list_event_source_mappings()
            .function_name(format!("fn-validator-{s}"))
            .send()
            .await
            .unwrap();
        for m in maps.event_source_mappings() {
            lambda
                .delete_event_source_mapping()
                .uuid(m.uuid().unwrap())
                .send()
                .await
                .unwrap();
        }
    });

    let run = verify(&stack);
    assert_eq!(
        run.code, 1,
        "verify must fail:\n{}\n{}",
        run.stdout, run.stderr
    );
    let failed = failing(&run);
    let has = |path: &str, why: &str| {
        failed
            .iter()
            .any(|f| f.starts_with(&format!("{path}:")) && f.contains(why))
    };
    assert!(
        has("viewer → CloudFront → assets bucket", "key policy"),
        "{failed:#?}"
    );
    assert!(
        has("service web → transaction queue", "sqs:SendMessage"),
        "{failed:#?}"
    );
    assert!(
        has("CloudFront → ALB (/api/*)", "does not admit CloudFront"),
        "{failed:#?}"
    );
    assert!(
        has("transaction queue → validator", "no event source mapping"),
        "{failed:#?}"
    );
    assert!(
        has(
            "validator failures → dead-letter queue",
            "no redrive policy"
        ),
        "{failed:#?}"
    );
    assert!(
        has(
            "service web tasks → X-Ray (traces)",
            "xray:PutTraceSegments"
        ),
        "{failed:#?}"
    );
    assert_eq!(failed.len(), 6, "only the broken paths fail: {failed:#?}");

    // The text form names the same paths with a fix under each.
    let text = stack.run(&["verify", "--env-suffix", &stack.suffix]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout.contains("FAIL transaction queue → validator"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("fix: run `fintech-infra up`"),
        "{}",
        text.stdout
    );

    // `up` repairs every one of them, and says so by verifying at its end.
    let up = stack.up(&[]);
    up.assert_ok();
    let report = up
        .json_lines()
        .into_iter()
        .find(|v| v["event"] == "verify")
        .expect("up verifies at its end");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_verifies(&stack);

    // `--no-verify` skips the checks.
    let quiet = stack.up(&["--no-verify"]);
    quiet.assert_ok();
    assert!(!quiet.json_lines().iter().any(|v| v["event"] == "verify"));

    stack.down(&[]).assert_ok();
}

/// Defect 4 of the verify issue: services reach each other exactly as `calls` declares. A
/// callee's ingress rule removed by hand fails that path, and `up` restores it.
#[test]
fn microservices_calls_verify_and_a_removed_rule_is_named_and_repaired() {
    let stack = Stack::new("vermic");
    stack.up(&["--preset", "microservices"]).assert_ok();
    let checks = assert_verifies(&stack);
    let path = "service payment-api → service transaction-processor";
    assert!(checks.iter().any(|c| c["path"] == path), "{checks:#?}");
    assert!(
        checks
            .iter()
            .any(|c| c["path"] == "service payment-api → service notification-service"),
        "{checks:#?}"
    );
    assert!(
        !checks
            .iter()
            .any(|c| c["path"] == "service transaction-processor → service notification-service"),
        "only declared calls are checked"
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let groups = stack.output("sg_service_ids");
        let callee = groups["transaction-processor"].as_str().unwrap();
        let caller = groups["payment-api"].as_str().unwrap();
        let rules = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(callee)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let from_caller: Vec<String> = rules
            .security_group_rules()
            .iter()
            .filter(|r| {
                r.is_egress() == Some(false)
                    && r.referenced_group_info().and_then(|g| g.group_id()) == Some(caller)
            })
            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
            .collect();
        assert_eq!(from_caller.len(), 1, "{rules:?}");
        ec2.revoke_security_group_ingress()
            .group_id(callee)
            .set_security_group_rule_ids(Some(from_caller))
            .send()
            .await
            .unwrap();
    });
    let run = verify(&stack);
    assert_eq!(run.code, 1);
    let failed = failing(&run);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].starts_with(&format!("{path}: no ingress on")),
        "{failed:#?}"
    );
    stack.up(&["--preset", "microservices"]).assert_ok();
    assert_verifies(&stack);
    stack.down(&[]).assert_ok();
}

#[test]
fn resilient_preset_verifies() {
    let stack = Stack::new("verres");
    stack.up(&["--preset", "resilient"]).assert_ok();
    assert_verifies(&stack);
    stack.down(&[]).assert_ok();
}

#[test]
fn verify_needs_a_stack() {
    let stack = Stack::new("vernone");
    let run = stack.run(&["verify", "--env-suffix", &stack.suffix]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no state for stack"), "{}", run.stderr);
}

/// The posture section: a control turned off through the SDK fails naming its control ID,
/// and `up` turns it back on.
#[test]
fn a_control_turned_off_fails_posture_naming_it_and_up_restores_it() {
    let stack = Stack::new("verpos");
    stack.up(&["--no-verify"]).assert_ok();
    let checks = assert_verifies(&stack);
    assert!(
        checks.iter().any(|c| c["section"] == "posture"
            && c["path"].as_str().is_some_and(|p| p.starts_with("S3."))),
        "{checks:#?}"
    );
    let bucket = stack.output_str("assets_bucket");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        s3.put_bucket_versioning()
            .bucket(&bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let run = verify(&stack);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let failed = failing(&run);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].contains(&format!("{bucket}: versioning is not enabled (S3.14)")),
        "{failed:#?}"
    );
    stack.up(&[]).assert_ok();
    assert_verifies(&stack);
    stack.down(&[]).assert_ok();
}
