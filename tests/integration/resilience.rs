//! Never lose a resource: the tool killed right after AWS carried out its k-th mutating call
//! (the emulator's kill hook: the resource exists, the answer never arrives), then `down`, or
//! `up` then `down`, leaves nothing; and a flaky AWS (throttling, 500/503, resets, before and
//! after the request is carried out) is survived by `up` and `down` on the first try,
//! without creating anything twice.
//!
//! Each test has an emulator of its own: the kill hook and the fault settings are global to
//! an emulator.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::util::*;

fn configure(endpoint: &str, body: Value) {
    ureq::post(&format!("{endpoint}/_fintech/config"))
        .send_json(body)
        .expect("emulator config");
}

/// What the emulator and the tagging API still show of the stack.
fn leftovers(stack: &Stack) -> Vec<String> {
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let mut left = remaining_ec2(&sdk, &stack.suffix).await;
        left.extend(remaining_tagged(&sdk, &stack.suffix).await);
        left
    })
}

/// Runs `up` and has the emulator kill it right after carrying out its `k`-th mutating call.
/// Returns whether the kill happened (a `k` past the last call lets `up` finish).
fn up_killed_at(stack: &Stack, k: u32) -> bool {
    let bin = env!("CARGO_BIN_EXE_fintech-infra");
    // `bash` waits for a line, then becomes the tool (same pid): the hook is armed for that
    // pid before the tool makes its first call.
    let mut child = Command::new("bash")
        .arg("-c")
        .arg("read -r _; exec \"$0\" \"$@\"")
        .arg(bin)
        .args(["--output", "json", "up", "--env-suffix", &stack.suffix])
        .current_dir(stack.dir.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", &stack.endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the tool");
    configure(
        &stack.endpoint,
        json!({"kill_after_mutations": {
            "count": k,
            "pid": child.id(),
            "user_agent_contains": format!("app/{}", fintech_infra::app::app_name(&stack.suffix)),
        }}),
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("releasing the tool");
    let status = child.wait().expect("waiting for the tool");
    configure(&stack.endpoint, json!({"kill_after_mutations": null}));
    use std::os::unix::process::ExitStatusExt as _;
    status.signal() == Some(9)
}

#[test]
fn a_kill_after_any_create_is_recovered_by_down_or_by_up_then_down() {
    let emu = Emulator::start(&[]);
    // A spread over the default stack's ~130 mutating calls: network, key, database,
    // registry, queue, roles, load balancer, services, validator, buckets, CDN, alarms.
    let points = [
        1, 2, 4, 7, 11, 16, 23, 31, 40, 50, 61, 73, 86, 100, 115, 128,
    ];
    let mut killed = 0;
    for (n, k) in points.into_iter().enumerate() {
        let stack = Stack::on(&emu.endpoint, &format!("kill{n}"));
        let was_killed = up_killed_at(&stack, k);
        killed += u32::from(was_killed);
        // Every third point also resumes with `up` first: it must adopt what the kill left.
        if n % 3 == 2 {
            stack.up(&["--no-verify"]).assert_ok();
        }
        let down = stack.down(&[]);
        assert_eq!(
            down.code, 0,
            "k={k}: down failed:\n{}\n{}",
            down.stdout, down.stderr
        );
        let left = leftovers(&stack);
        assert!(left.is_empty(), "k={k}: left behind: {left:#?}");
        assert!(
            !stack.state_path().exists(),
            "k={k}: the state file remains:\n{}\n{}",
            std::fs::read_to_string(stack.state_path()).unwrap_or_default(),
            down.stderr
        );
    }
    assert!(
        killed >= 14,
        "the hook fired at only {killed} of the points"
    );
}

#[test]
fn a_flaky_aws_is_survived_without_creating_anything_twice() {
    let emu = Emulator::start(&[]);
    let stack = Stack::on(&emu.endpoint, "flaky");
    configure(
        &emu.endpoint,
        json!({"faults": {
            "rate": 0.1,
            "seed": 11,
            "kinds": ["throttle", "500", "503", "reset"],
            "when": "both",
            "user_agent_contains": format!("app/{}", fintech_infra::app::app_name(&stack.suffix)),
        }}),
    );
    let up = stack.up(&["--no-verify"]);
    let log = raw_log(&emu.endpoint);
    let faults = log.iter().filter(|r| !r["fault"].is_null()).count();
    assert!(faults >= 5, "only {faults} faults were injected");
    up.assert_ok();

    // Nothing created twice: per resource (operation, path, name or whole request), at most
    // one create that AWS carried out (`moto_status`: what the emulator did, whatever answer
    // the tool got), however often it was retried.
    let ua = format!("app/{}", fintech_infra::app::app_name(&stack.suffix));
    let mut creates: BTreeMap<String, u32> = BTreeMap::new();
    for r in &log {
        let op = r["operation"].as_str().unwrap_or_default();
        let from_stack = r["user_agent"].as_str().is_some_and(|u| u.contains(&ua));
        // Creates AWS answers idempotently by name (the same resource again, no second one)
        // are left out: S3 in us-east-1, SNS, SQS, ELBv2 load balancers, target groups and
        // listeners, ECS clusters; and ECS services, unique by name in their cluster (the tool
        // sends a client token, so a retry returns the first one).
        let idempotent = matches!(
            op,
            "CreateBucket"
                | "CreateTopic"
                | "CreateQueue"
                | "CreateLoadBalancer"
                | "CreateTargetGroup"
                | "CreateCluster"
                | "CreateListener"
        ) || (op == "CreateService" && r["service"] == "ecs");
        let create = (op.starts_with("Create") && op != "CreateTags" && !idempotent)
            || op == "AllocateAddress";
        let carried_out = r["moto_status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s));
        if !(from_stack && create && carried_out) {
            continue;
        }
        let params = &r["params"];
        let name = [
            "Name",
            "name",
            "GroupName",
            "TableName",
            "QueueName",
            "FunctionName",
            "repositoryName",
            "RoleName",
            "PolicyName",
            "DBInstanceIdentifier",
            "DBClusterIdentifier",
            "DBSubnetGroupName",
            "AliasName",
            "CidrBlock",
            "clusterName",
            "serviceName",
            "logGroupName",
            "BackupVaultName",
        ]
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| params.to_string());
        let path = r["path"].as_str().unwrap_or_default();
        *creates.entry(format!("{op} {path} {name}")).or_default() += 1;
    }
    let twice: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created twice: {twice:#?}");
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let vpcs = ec2
            .describe_vpcs()
            .filters(stack_filter(&stack.suffix))
            .send()
            .await
            .unwrap();
        assert_eq!(vpcs.vpcs().len(), 1, "one VPC");
        let igws = ec2
            .describe_internet_gateways()
            .filters(stack_filter(&stack.suffix))
            .send()
            .await
            .unwrap();
        assert_eq!(igws.internet_gateways().len(), 1, "one internet gateway");
        let kms = aws_sdk_kms::Client::new(&sdk);
        let keys = kms.list_keys().send().await.unwrap();
        assert_eq!(keys.keys().len(), 1, "one KMS key");
    });

    let down = stack.down(&[]);
    if down.code != 0 {
        // What the tool asked of IAM, with the faults it got: the first thing to read when
        // this fails.
        for r in raw_log(&emu.endpoint)
            .iter()
            .filter(|r| r["user_agent"].as_str().is_some_and(|u| u.contains(&ua)))
            .filter(|r| r["service"] == "iam" && r["operation"] != "GetRole")
        {
            eprintln!(
                "{} {} status={} moto={} fault={} {}",
                r["operation"],
                r["params"]["RoleName"],
                r["status"],
                r["moto_status"],
                r["fault"],
                r["params"]["PolicyArn"]
            );
        }
    }
    down.assert_ok();
    configure(&emu.endpoint, json!({"faults": null}));
    let left = leftovers(&stack);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

fn raw_log(endpoint: &str) -> Vec<Value> {
    let body: Value = ureq::get(&format!("{endpoint}/_fintech/requests"))
        .call()
        .expect("request log")
        .into_json()
        .expect("request log is JSON");
    body.as_array().cloned().unwrap_or_default()
}

/// An orphan a dead run left: a target group tagged with the stack in a VPC that no longer
/// exists. `up` replaces it in the stack's VPC instead of refusing it as someone else's.
#[test]
fn a_target_group_left_in_the_stacks_old_vpc_is_replaced() {
    let stack = Stack::new("oldtg");
    let old_tg = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.9.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let tg = elb
            .create_target_group()
            .name(format!("tg-blue-{}", stack.suffix))
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&vpc_id)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .tags(
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key("fintech-infra:stack")
                    .value(&stack.suffix)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ec2.delete_vpc().vpc_id(&vpc_id).send().await.unwrap();
        tg.target_groups()[0]
            .target_group_arn()
            .unwrap()
            .to_string()
    });
    stack.up(&["--no-verify"]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let out = elb
            .describe_target_groups()
            .names(format!("tg-blue-{}", stack.suffix))
            .send()
            .await
            .unwrap();
        let tg = &out.target_groups()[0];
        assert_ne!(
            tg.target_group_arn(),
            Some(old_tg.as_str()),
            "the orphan was replaced"
        );
        assert_eq!(tg.vpc_id(), Some(stack.output_str("vpc_id").as_str()));
    });
    stack.down(&[]).assert_ok();
}
