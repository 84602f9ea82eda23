//! The queue and validator steps against the emulator: the SQS transaction queue is encrypted
//! with the stack key, redrives to its DLQ after the configured receives and refuses plain
//! HTTP; the validator Lambda runs the shipped handler in the private subnets with the Lambda
//! security group, its reserved concurrency, its own least-privilege role, an encrypted log
//! group with retention, and an SQS event source mapping reporting batch item failures. A
//! second `up` changes nothing, drift is repaired, `down` leaves nothing. With lingering
//! Lambda ENIs, the network teardown waits for / removes them before deleting subnets and
//! security groups.

use std::collections::BTreeSet;

use aws_sdk_lambda::types::{FunctionResponseType, Runtime};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::util::*;

const CONFIG: &str = "[queue]\nmax_receive_count = 3\n\
                      [validator]\nreserved_concurrency = 7\nbatch_size = 20\nmemory_mb = 512\n";

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    }
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> std::collections::HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default()
}

#[test]
fn queue_and_validator_are_encrypted_least_privilege_and_torn_down() {
    let stack = Stack::new("async");
    let cfg = stack.config(CONFIG);
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    let s = &stack.suffix;

    let out = |k: &str| {
        stack
            .output(k)
            .as_str()
            .unwrap_or_else(|| panic!("output {k} missing"))
            .to_string()
    };
    let (queue_url, queue_arn, dlq_url, dlq_arn) = (
        out("queue_url"),
        out("queue_arn"),
        out("dlq_url"),
        out("dlq_arn"),
    );
    let key_arn = out("kms_key_arn");
    let function = out("validator_function_name");
    assert_eq!(function, format!("fn-validator-{s}"));
    assert!(queue_arn.ends_with(&format!(":queue-transactions-{s}")));
    assert!(dlq_arn.ends_with(&format!(":queue-transactions-dlq-{s}")));
    assert_eq!(
        out("validator_log_group"),
        format!("/aws/lambda/fn-validator-{s}")
    );
    let private: BTreeSet<String> = strings(&stack.output("private_subnet_ids"));
    let sg_lambda = out("sg_lambda_id");

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        // Queues: KMS, redrive, TLS-only policy, tags.
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let q = queue_attributes(&sqs, &queue_url).await;
        assert_eq!(q.get(&QueueAttributeName::QueueArn), Some(&queue_arn));
        assert_eq!(q.get(&QueueAttributeName::KmsMasterKeyId), Some(&key_arn));
        assert_eq!(
            q.get(&QueueAttributeName::VisibilityTimeout)
                .map(String::as_str),
            Some("180"),
            "6 x the validator timeout"
        );
        let redrive: Value = serde_json::from_str(&q[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
        assert_eq!(
            redrive["maxReceiveCount"].to_string().trim_matches('"'),
            "3"
        );
        let policy: Value = serde_json::from_str(&q[&QueueAttributeName::Policy]).unwrap();
        let st = &policy["Statement"][0];
        assert_eq!(st["Effect"], "Deny");
        assert_eq!(st["Condition"]["Bool"]["aws:SecureTransport"], "false");
        let d = queue_attributes(&sqs, &dlq_url).await;
        assert_eq!(d.get(&QueueAttributeName::QueueArn), Some(&dlq_arn));
        assert_eq!(d.get(&QueueAttributeName::KmsMasterKeyId), Some(&key_arn));
        assert_eq!(
            d.get(&QueueAttributeName::MessageRetentionPeriod)
                .map(String::as_str),
            Some("1209600")
        );
        for url in [&queue_url, &dlq_url] {
            let tags = sqs.list_queue_tags().queue_url(url).send().await.unwrap();
            let tags = tags.tags().unwrap();
            assert_eq!(tags.get("fintech-infra:stack"), Some(s), "{url}");
            assert_eq!(tags.get("Team").map(String::as_str), Some("platform"));
        }

        // Function: runtime, handler, code, VPC, concurrency, KMS.
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let f = lambda
            .get_function()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        let c = f.configuration().unwrap();
        assert_eq!(c.runtime(), Some(&Runtime::Python312));
        assert_eq!(c.handler(), Some("handler.handler"));
        assert_eq!((c.memory_size(), c.timeout()), (Some(512), Some(30)));
        let zip = fintech_infra::steps::validator::build_zip().unwrap();
        assert_eq!(
            c.code_sha256(),
            Some(fintech_infra::steps::validator::code_sha256(&zip).as_str())
        );
        assert_eq!(c.kms_key_arn(), Some(key_arn.as_str()));
        let vpc = c.vpc_config().unwrap();
        let subnets: BTreeSet<String> = vpc.subnet_ids().iter().cloned().collect();
        assert_eq!(subnets, private, "function in the private subnets");
        assert_eq!(vpc.security_group_ids(), std::slice::from_ref(&sg_lambda));
        let env = c.environment().and_then(|e| e.variables()).unwrap();
        assert_eq!(
            env.get("SESSIONS_TABLE").map(String::as_str),
            Some(format!("sessions-{s}").as_str())
        );
        // Exponential backoff of failed transactions (handler.py): the queue and the
        // delays, the defaults here.
        assert_eq!(
            env.get("TRANSACTION_QUEUE_URL").map(String::as_str),
            Some(queue_url.as_str())
        );
        assert_eq!(env.get("RETRY_BASE_SECS").map(String::as_str), Some("30"));
        assert_eq!(env.get("RETRY_MAX_SECS").map(String::as_str), Some("900"));
        assert_eq!(f.tags().and_then(|t| t.get("fintech-infra:stack")), Some(s));
        let conc = lambda
            .get_function_concurrency()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        assert_eq!(conc.reserved_concurrent_executions(), Some(7));
        let role_arn = c.role().unwrap().to_string();
        assert!(role_arn.ends_with(&format!(":role/role-validator-{s}")));

        // Event source mapping.
        let m = lambda
            .list_event_source_mappings()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        let m = m.event_source_mappings();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].event_source_arn(), Some(queue_arn.as_str()));
        assert!(m[0]
            .function_response_types()
            .contains(&FunctionResponseType::ReportBatchItemFailures));
        assert_eq!(m[0].batch_size(), Some(20));
        assert_eq!(m[0].maximum_batching_window_in_seconds(), Some(1));
        // One of the 7 reserved executions stays free for the breaker alarm's invocation.
        assert_eq!(
            m[0].scaling_config().and_then(|c| c.maximum_concurrency()),
            Some(6)
        );

        // Role: trusted by Lambda, one customer-managed policy, no inline ones.
        let iam = aws_sdk_iam::Client::new(&sdk);
        let role_name = format!("role-validator-{s}");
        let role = iam
            .get_role()
            .role_name(&role_name)
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        let trust =
            fintech_infra::steps::iam::decode_document(role.assume_role_policy_document().unwrap())
                .unwrap();
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
        let inline = iam
            .list_role_policies()
            .role_name(&role_name)
            .send()
            .await
            .unwrap();
        assert!(inline.policy_names().is_empty());
        let attached = iam
            .list_attached_role_policies()
            .role_name(&role_name)
            .send()
            .await
            .unwrap();
        let names: Vec<_> = attached
            .attached_policies()
            .iter()
            .map(|p| p.policy_name().unwrap().to_string())
            .collect();
        assert_eq!(names, [format!("policy-validator-{s}")]);
        let parn = attached.attached_policies()[0].policy_arn().unwrap();
        let p = iam.get_policy().policy_arn(parn).send().await.unwrap();
        let version = p.policy().unwrap().default_version_id().unwrap();
        let doc = iam
            .get_policy_version()
            .policy_arn(parn)
            .version_id(version)
            .send()
            .await
            .unwrap()
            .policy_version
            .unwrap()
            .document
            .unwrap();
        let doc = fintech_infra::steps::iam::decode_document(&doc).unwrap();
        for st in doc["Statement"].as_array().unwrap() {
            let actions = as_list(&st["Action"]);
            let resources = as_list(&st["Resource"]);
            for a in &actions {
                assert!(
                    !a.contains('*') || a.starts_with("logs:"),
                    "wildcard action {a}"
                );
                if a.starts_with("sqs:") {
                    assert_eq!(resources, std::slice::from_ref(&queue_arn), "{a}");
                }
                if a.starts_with("dynamodb:") {
                    assert_eq!(resources, [out("sessions_table_arn")], "{a}");
                }
                if a.starts_with("logs:") {
                    assert!(
                        resources.iter().all(
                            |r| r.contains(&format!(":log-group:/aws/lambda/fn-validator-{s}"))
                        ),
                        "{resources:?}"
                    );
                }
            }
            // EC2 Describe calls, X-Ray's trace upload and Lambda's ListEventSourceMappings
            // (the breaker) take no resource-level restriction.
            if resources.iter().any(|r| r == "*") {
                assert!(
                    actions.iter().all(|a| a.starts_with("ec2:Describe")
                        || a == "xray:PutTraceSegments"
                        || a == "xray:PutTelemetryRecords"
                        || a == "lambda:ListEventSourceMappings"),
                    "Resource * for {actions:?}"
                );
            }
        }
        for a in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "kms:Decrypt",
        ] {
            assert!(doc.to_string().contains(a), "{a} not granted");
        }

        // Log group: retention and KMS.
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let groups = logs
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/fn-validator-{s}"))
            .send()
            .await
            .unwrap();
        let g = &groups.log_groups()[0];
        assert_eq!(g.retention_in_days(), Some(30));
        assert_eq!(g.kms_key_id(), Some(key_arn.as_str()));
    });

    // No function-level dead-letter queue: SQS invocations are synchronous and the queue's
    // redrive moves failures (and AWS would refuse one the role may not send to). moto drops
    // DeadLetterConfig on read-back, so look at the request.
    if is_faithful(&stack.endpoint) {
        let create = request_log(&stack.endpoint)
            .into_iter()
            .rfind(|r| r.is_from_stack(s) && r.operation == "CreateFunction")
            .expect("CreateFunction in the request log");
        assert!(
            create.params.get("DeadLetterConfig").is_none(),
            "{}",
            create.params
        );
        assert_eq!(create.params["Runtime"], "python3.12");
    }

    // A second up changes nothing.
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");

    // Seed 002's circuit breaker: an alarm on the handler's failure rate whose ALARM and OK
    // actions invoke the function (which pauses or resumes its own mapping), the function's
    // resource policy letting that alarm invoke it, and its role allowed to toggle only its
    // own mappings.
    let breaker = format!("alarm-validator-breaker-{s}");
    let function_arn = out("validator_function_arn");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        let alarms = cw
            .describe_alarms()
            .alarm_names(&breaker)
            .send()
            .await
            .unwrap();
        let a = &alarms.metric_alarms()[0];
        assert!(a.alarm_actions().contains(&function_arn), "{a:?}");
        assert!(a.ok_actions().contains(&function_arn), "{a:?}");
        assert_eq!(a.treat_missing_data(), Some("notBreaching"));
        assert_eq!(a.threshold(), Some(50.0));
        assert_eq!(a.evaluation_periods(), Some(5));
        let expression = a
            .metrics()
            .iter()
            .find_map(|m| m.expression())
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            expression,
            "IF(processed >= 10, 100 * FILL(failed, 0) / processed, 0)"
        );
        let policy = aws_sdk_lambda::Client::new(&sdk)
            .get_policy()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        let policy = policy.policy().unwrap();
        assert!(
            policy.contains("lambda.alarms.cloudwatch.amazonaws.com") && policy.contains(&breaker),
            "{policy}"
        );
        // The breaker's reconciler: a schedule that sends the reconcile input to the
        // function, which lets that rule (and only it) invoke it.
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        let rule_name = format!("sched-validator-breaker-{s}");
        let rule = events
            .describe_rule()
            .name(&rule_name)
            .send()
            .await
            .unwrap();
        assert_eq!(rule.schedule_expression(), Some("rate(5 minutes)"));
        let targets = events
            .list_targets_by_rule()
            .rule(&rule_name)
            .send()
            .await
            .unwrap();
        let t = &targets.targets()[0];
        assert_eq!(
            (t.arn(), t.input()),
            (function_arn.as_str(), Some(r#"{"breaker":"reconcile"}"#))
        );
        assert!(
            policy.contains("events.amazonaws.com") && policy.contains(rule.arn().unwrap()),
            "{policy}"
        );
        // A removed target fails the path in verify; `up` puts it back.
        events
            .remove_targets()
            .rule(&rule_name)
            .ids("validator")
            .send()
            .await
            .unwrap();
    });
    let v = stack.run(&["verify", "--env-suffix", s]);
    assert!(
        v.stdout.contains("does not send the reconcile input"),
        "{}",
        v.stdout
    );
    stack.up(&["--config", cfg]).assert_ok();
    let v = stack.run(&["verify", "--env-suffix", s]);
    assert!(
        !v.stdout.contains("does not send the reconcile input"),
        "{}",
        v.stdout
    );

    // The breaker opened (the handler disabled the mapping on the alarm's ALARM): `up`
    // leaves the mapping disabled. Back to OK (the handler enabled it again, or did not
    // get to), `up` enables it.
    let set_breaker = |state: aws_sdk_cloudwatch::types::StateValue, enabled: bool| {
        block_on(async {
            let sdk = sdk_config(&stack.endpoint).await;
            aws_sdk_cloudwatch::Client::new(&sdk)
                .set_alarm_state()
                .alarm_name(&breaker)
                .state_value(state)
                .state_reason("test")
                .send()
                .await
                .unwrap();
            let lambda = aws_sdk_lambda::Client::new(&sdk);
            let m = lambda
                .list_event_source_mappings()
                .function_name(&function)
                .send()
                .await
                .unwrap();
            let uuid = m.event_source_mappings()[0].uuid().unwrap().to_string();
            lambda
                .update_event_source_mapping()
                .uuid(&uuid)
                .enabled(enabled)
                .send()
                .await
                .unwrap();
        })
    };
    let mapping_state = || {
        block_on(async {
            let sdk = sdk_config(&stack.endpoint).await;
            let m = aws_sdk_lambda::Client::new(&sdk)
                .list_event_source_mappings()
                .function_name(&function)
                .send()
                .await
                .unwrap();
            m.event_source_mappings()[0]
                .state()
                .unwrap_or_default()
                .to_string()
        })
    };
    set_breaker(aws_sdk_cloudwatch::types::StateValue::Alarm, false);
    let open = stack.up(&["--config", cfg]);
    open.assert_ok();
    assert_eq!(
        open.summary()["aws_calls"]["mutating"],
        0,
        "{}",
        open.stdout
    );
    assert!(
        open.stdout.contains("circuit breaker is open"),
        "{}",
        open.stdout
    );
    assert_eq!(mapping_state(), "Disabled");
    // `verify` names the open breaker as the reason the path is paused.
    let v = stack.run(&["verify", "--env-suffix", s]);
    assert_ne!(v.code, 0);
    assert!(
        v.stdout.contains("the circuit breaker is open"),
        "{}",
        v.stdout
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_cloudwatch::Client::new(&sdk)
            .set_alarm_state()
            .alarm_name(&breaker)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("test")
            .send()
            .await
            .unwrap();
    });
    // Back to OK but still disabled: the alarm's resume was lost; `up` repairs it.
    let v = stack.run(&["verify", "--env-suffix", s]);
    assert!(
        v.stdout.contains("its resume never arrived"),
        "{}",
        v.stdout
    );
    stack.up(&["--config", cfg]).assert_ok();
    assert_eq!(mapping_state(), "Enabled");

    // Drift by hand: a shorter visibility timeout and less concurrency are set back.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_sqs::Client::new(&sdk)
            .set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .send()
            .await
            .unwrap();
        aws_sdk_lambda::Client::new(&sdk)
            .put_function_concurrency()
            .function_name(&function)
            .reserved_concurrent_executions(2)
            .send()
            .await
            .unwrap();
    });
    let fix = stack.up(&["--config", cfg]);
    fix.assert_ok();
    let sum = fix.summary();
    assert_eq!(sum["changes"]["changed"], 2, "{sum}");
    assert_eq!(sum["changes"]["created"], 0, "{sum}");
    let ops: BTreeSet<String> = strings(&sum["aws_calls"]["mutating_ops"])
        .into_iter()
        .map(|o| o.rsplit(':').next().unwrap().to_string())
        .collect();
    assert_eq!(
        ops,
        BTreeSet::from([
            "SetQueueAttributes".to_string(),
            "PutFunctionConcurrency".to_string()
        ]),
        "{sum}"
    );

    stack.down(&["--config", cfg]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        for name in [
            format!("queue-transactions-{s}"),
            format!("queue-transactions-dlq-{s}"),
        ] {
            assert!(
                sqs.get_queue_url().queue_name(&name).send().await.is_err(),
                "queue {name} left"
            );
        }
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        assert!(lambda
            .get_function()
            .function_name(&function)
            .send()
            .await
            .is_err());
        let m = lambda
            .list_event_source_mappings()
            .event_source_arn(&queue_arn)
            .send()
            .await
            .unwrap();
        assert!(m.event_source_mappings().is_empty(), "mapping left");
        let iam = aws_sdk_iam::Client::new(&sdk);
        assert!(iam
            .get_role()
            .role_name(format!("role-validator-{s}"))
            .send()
            .await
            .is_err());
        let policies = iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        assert!(
            !policies
                .policies()
                .iter()
                .any(|p| p.policy_name() == Some(format!("policy-validator-{s}").as_str())),
            "policy left"
        );
        let groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/fn-validator-{s}"))
            .send()
            .await
            .unwrap();
        assert!(groups.log_groups().is_empty(), "log group left");
        let tagged = remaining_tagged(&sdk, s).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        let left = remaining_ec2(&sdk, s).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
    });
}

/// The faithful emulator keeps a deleted VPC function's ENIs `available` for a while and
/// refuses to delete their subnets and security groups meanwhile: the network teardown must
/// wait for them or delete them, before deleting subnets and groups, with no refusal.
#[test]
fn network_teardown_removes_lingering_lambda_enis() {
    // Short linger: the ENIs are waited for or deleted, whichever comes first.
    lingering_enis_are_cleared("3", None);
    // A linger far beyond the allowed wait: only deleting them lets `down` finish in time.
    lingering_enis_are_cleared("3600", Some("[timeouts]\ndependency_violation_secs = 30\n"));
}

fn lingering_enis_are_cleared(linger: &str, config: Option<&str>) {
    let emu = Emulator::start(&["--lambda-eni-linger", linger]);
    let stack = Stack::on(&emu.endpoint, "eni");
    let cfg = config.map(|c| stack.config(c).to_str().unwrap().to_string());
    let extra: Vec<&str> = match &cfg {
        Some(c) => vec!["--config", c.as_str()],
        None => vec![],
    };
    stack.up(&extra).assert_ok();
    let s = stack.suffix.clone();
    let vpc = stack.output("vpc_id").as_str().unwrap().to_string();
    let function = format!("fn-validator-{s}");
    let enis: Vec<String> = block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let out = ec2
            .describe_network_interfaces()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.network_interfaces()
            .iter()
            .filter(|e| e.description().unwrap_or_default().contains(&function))
            .map(|e| e.network_interface_id().unwrap().to_string())
            .collect()
    });
    assert!(!enis.is_empty(), "the VPC function has no ENIs");

    let started = std::time::Instant::now();
    stack.down(&extra).assert_ok();
    assert!(!stack.state_path().exists());
    if config.is_some() {
        assert!(
            started.elapsed().as_secs() < 30,
            "down waited for the linger instead of deleting the ENIs"
        );
    }

    let log: Vec<LoggedRequest> = request_log(&emu.endpoint)
        .into_iter()
        .filter(|r| r.is_from_stack(&s))
        .collect();
    let refused: Vec<_> = log
        .iter()
        .filter(|r| {
            matches!(
                r.operation.as_str(),
                "DeleteSubnet" | "DeleteSecurityGroup" | "DeleteVpc"
            ) && r.status >= 400
        })
        .map(|r| format!("{} {}", r.operation, r.params))
        .collect();
    assert!(
        refused.is_empty(),
        "deletes refused while ENIs lingered: {refused:?}"
    );
    let delete_fn = log
        .iter()
        .find(|r| r.operation == "DeleteFunction")
        .expect("DeleteFunction")
        .ts;
    let first_subnet_delete = log
        .iter()
        .find(|r| r.operation == "DeleteSubnet")
        .expect("DeleteSubnet")
        .ts;
    assert!(delete_fn < first_subnet_delete);
    if config.is_some() {
        for eni in &enis {
            assert!(
                log.iter().any(|r| r.operation == "DeleteNetworkInterface"
                    && r.status == 200
                    && r.params["NetworkInterfaceId"] == eni.as_str()),
                "ENI {eni} not deleted by the network step"
            );
        }
    }
    // Every ENI was gone (deleted by the network step, or lingered out while it waited)
    // before the first subnet delete.
    let events = events(&emu.endpoint);
    for eni in &enis {
        let deleted = events
            .iter()
            .find(|e| {
                e["resource_type"] == "lambda-eni"
                    && e["id"] == eni.as_str()
                    && e["to"] == "deleted"
            })
            .unwrap_or_else(|| panic!("ENI {eni} never deleted: {events:?}"));
        assert!(
            deleted["ts"].as_f64().unwrap() <= first_subnet_delete,
            "ENI {eni} deleted after the first DeleteSubnet"
        );
    }
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let left = remaining_ec2(&sdk, &s).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
        let tagged = remaining_tagged(&sdk, &s).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
    });
}
