//! The IAM step against the emulator: the task execution role and one task role per service,
//! trusted by ECS tasks of this account only, each with a customer-managed policy (never an
//! inline one) naming the stack's real table, secret, repositories and key, without wildcard
//! actions beyond CloudWatch Logs. Drift (a hand-edited policy with IAM's 5 versions used up,
//! an inline policy) is repaired; a second `up` changes nothing; `down` removes roles and
//! policies. IAM is invisible to the tagging API, so they are listed by name.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::util::*;

const SERVICES: &str = r#"
[[services]]
name = "web"
permissions = ["sessions", "database"]

[[services]]
name = "session-api"
cpu = 1024
memory = 2048
permissions = ["sessions"]

[[services]]
name = "notifier"
cpu = 512
memory = 1024
permissions = ["queue"]
"#;

const ACCOUNT: &str = "123456789012";

/// A policy document as IAM returns it (URL-encoded JSON; moto sometimes sends it plain).
fn decode(raw: &str) -> Value {
    let text = if raw.starts_with('{') {
        raw.to_string()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .unwrap()
            .into_owned()
    };
    serde_json::from_str(&text).unwrap()
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    }
}

/// The default version's document of a policy.
async fn document(iam: &aws_sdk_iam::Client, arn: &str) -> Value {
    let p = iam.get_policy().policy_arn(arn).send().await.unwrap();
    let version = p
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    let v = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&version)
        .send()
        .await
        .unwrap();
    decode(v.policy_version().unwrap().document().unwrap())
}

/// Every action with the resources it is granted on.
fn grants(doc: &Value) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in doc["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow", "{s}");
        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
        let resources = list(&s["Resource"]);
        assert!(!resources.is_empty(), "statement without resources: {s}");
        for a in list(&s["Action"]) {
            m.entry(a).or_default().extend(resources.clone());
        }
    }
    m
}

/// The rules: no `*` in an action except CloudWatch Logs, `Resource: "*"` only for
/// ecr:GetAuthorizationToken.
#[track_caller]
fn assert_least_privilege(doc: &Value, what: &str) {
    for (action, resources) in grants(doc) {
        assert!(
            !action.contains('*') || action.starts_with("logs:"),
            "{what}: wildcard action {action}"
        );
        if resources.iter().any(|r| r == "*") {
            // X-Ray's trace and sampling actions (the tracing collector) have no resource
            // type; neither has ecr:GetAuthorizationToken.
            assert!(
                action == "ecr:GetAuthorizationToken"
                    || fintech_infra::steps::iam::XRAY_ACTIONS.contains(&action.as_str()),
                "{what}: Resource * on {action}"
            );
        }
    }
}

fn role_names(suffix: &str) -> Vec<String> {
    ["execution", "web", "session-api", "notifier"]
        .iter()
        .map(|s| format!("role-task-{s}-{suffix}"))
        .collect()
}

/// This stack's roles and local policies still in IAM, listed by name.
async fn remaining_iam(iam: &aws_sdk_iam::Client, suffix: &str) -> Vec<String> {
    let ours = |n: &str, prefix: &str| n.starts_with(prefix) && n.ends_with(&format!("-{suffix}"));
    let mut left = Vec::new();
    let mut marker = None;
    loop {
        let page = iam.list_roles().set_marker(marker).send().await.unwrap();
        for r in page.roles() {
            if ours(r.role_name(), "role-task-") {
                left.push(format!("role {}", r.role_name()));
            }
        }
        marker = page.marker().map(str::to_string);
        if !page.is_truncated() || marker.is_none() {
            break;
        }
    }
    let mut marker = None;
    loop {
        let page = iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        for p in page.policies() {
            let name = p.policy_name().unwrap_or_default();
            if ours(name, "policy-task-") {
                left.push(format!("policy {name}"));
            }
        }
        marker = page.marker().map(str::to_string);
        if !page.is_truncated() || marker.is_none() {
            break;
        }
    }
    left
}

#[track_caller]
fn assert_tags(tags: &[aws_sdk_iam::types::Tag], suffix: &str, name: &str) {
    let tag = |k: &str| {
        tags.iter()
            .find(|t| t.key() == k)
            .map(|t| t.value().to_string())
    };
    assert_eq!(
        tag("fintech-infra:stack").as_deref(),
        Some(suffix),
        "{name}"
    );
    assert_eq!(tag("Name").as_deref(), Some(name));
    assert_eq!(tag("Environment").as_deref(), Some(suffix), "{name}");
    assert_eq!(tag("Team").as_deref(), Some("platform"), "{name}");
    assert_eq!(tag("CostCenter").as_deref(), Some("fintech"), "{name}");
}

async fn check_roles(stack: &Stack) {
    let sdk = sdk_config(&stack.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let s = stack.suffix.as_str();
    let out = |k: &str| stack.output(k).as_str().unwrap().to_string();
    let (key_arn, table_arn, secret_arn, resource_id) = (
        out("kms_key_arn"),
        out("sessions_table_arn"),
        out("db_secret_arn"),
        out("db_cluster_resource_id"),
    );
    let repo_arns: Vec<String> = stack
        .output("ecr_repository_arns")
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(repo_arns.len(), 3);
    let task_roles = stack.output("iam_task_role_arns");
    assert_eq!(task_roles.as_object().unwrap().len(), 3, "{task_roles}");

    for name in role_names(s) {
        let role = iam.get_role().role_name(&name).send().await.unwrap();
        let role = role.role().unwrap();
        if name.contains("-execution-") {
            assert_eq!(stack.output("iam_task_execution_role_arn"), role.arn());
        } else {
            let svc = name
                .trim_start_matches("role-task-")
                .trim_end_matches(&format!("-{s}"));
            assert_eq!(task_roles[svc], role.arn(), "{svc}");
        }
        assert_tags(role.tags(), s, &name);

        // Trust: ECS tasks of this account only.
        let trust = decode(role.assume_role_policy_document().unwrap());
        let st = trust["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 1, "{trust}");
        assert_eq!(st[0]["Principal"]["Service"], "ecs-tasks.amazonaws.com");
        assert_eq!(st[0]["Action"], "sts:AssumeRole");
        assert_eq!(
            st[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
            ACCOUNT
        );

        // No inline policies, only customer-managed ones.
        let inline = iam
            .list_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        assert!(inline.policy_names().is_empty(), "{name}: inline policies");
        let attached = iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        let attached: Vec<String> = attached
            .attached_policies()
            .iter()
            .map(|p| p.policy_arn().unwrap().to_string())
            .collect();
        let policy = name.replacen("role-", "policy-", 1);
        assert_eq!(
            attached,
            [format!("arn:aws:iam::{ACCOUNT}:policy/{policy}")],
            "{name}"
        );
        let arn = &attached[0];
        let tags = iam.list_policy_tags().policy_arn(arn).send().await.unwrap();
        assert_tags(tags.tags(), s, &policy);

        let doc = document(&iam, arn).await;
        assert_least_privilege(&doc, &policy);
        let g = grants(&doc);
        let on = |action: &str| -> Vec<String> {
            let mut r = g.get(action).cloned().unwrap_or_default();
            r.sort();
            r
        };
        let text = doc.to_string();
        if name.contains("-execution-") {
            assert_eq!(on("ecr:GetAuthorizationToken"), ["*"]);
            let mut repos = repo_arns.clone();
            repos.sort();
            assert_eq!(on("ecr:BatchGetImage"), repos);
            assert_eq!(on("ecr:GetDownloadUrlForLayer"), repos);
            assert_eq!(
                on("secretsmanager:GetSecretValue"),
                std::slice::from_ref(&secret_arn)
            );
            assert_eq!(on("kms:Decrypt"), std::slice::from_ref(&key_arn));
            for svc in ["web", "session-api", "notifier"] {
                assert!(
                    on("logs:PutLogEvents")
                        .iter()
                        .any(|r| r.contains(&format!(":log-group:/ecs/{svc}-{s}:"))),
                    "{text}"
                );
            }
        } else if name.starts_with("role-task-web-") {
            // `[tracing]` is on by default: the collector sidecar sends with the task role.
            assert_eq!(on("xray:PutTraceSegments"), ["*"]);
            assert_eq!(on("dynamodb:PutItem"), std::slice::from_ref(&table_arn));
            assert_eq!(
                on("dynamodb:Query"),
                [table_arn.clone(), format!("{table_arn}/index/by-user")]
            );
            assert_eq!(
                on("secretsmanager:GetSecretValue"),
                std::slice::from_ref(&secret_arn)
            );
            assert_eq!(
                on("rds-db:connect"),
                [format!(
                    "arn:aws:rds-db:us-east-1:{ACCOUNT}:dbuser:{resource_id}/fintech_admin"
                )]
            );
            assert_eq!(on("kms:Decrypt"), std::slice::from_ref(&key_arn));
            assert!(on("dynamodb:Scan").is_empty() && on("dynamodb:DeleteTable").is_empty());
        } else if name.starts_with("role-task-notifier-") {
            // Only `queue`: send to the transaction queue (the queue step is a dependency).
            let queue_arn = stack.output("queue_arn").as_str().unwrap().to_string();
            assert_eq!(on("sqs:SendMessage"), std::slice::from_ref(&queue_arn));
            assert!(on("sqs:ReceiveMessage").is_empty() && on("sqs:DeleteMessage").is_empty());
            assert!(
                !text.contains("dynamodb") && !text.contains("secretsmanager"),
                "{text}"
            );
        } else {
            // session-api: the table only.
            assert_eq!(on("dynamodb:GetItem"), std::slice::from_ref(&table_arn));
            assert!(
                !text.contains("secretsmanager") && !text.contains("rds-db"),
                "{text}"
            );
        }
    }
}

#[test]
fn task_roles_have_least_privilege_managed_policies_and_down_removes_them() {
    let stack = Stack::new("iam");
    let cfg = stack.config(SERVICES);
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    block_on(check_roles(&stack));

    // A second up changes nothing.
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    assert_eq!(s["changes"]["changed"], 0, "{s}");

    // Drift: the web policy edited by hand until IAM's 5 versions are used up (the last one
    // grants Scan), and an inline policy put on the session-api role.
    let web_policy = format!(
        "arn:aws:iam::{ACCOUNT}:policy/policy-task-web-{}",
        stack.suffix
    );
    let session_api_role = format!("role-task-session-api-{}", stack.suffix);
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let mut doc = document(&iam, &web_policy).await;
        doc["Statement"][0]["Action"]
            .as_array_mut()
            .unwrap()
            .push(json!("dynamodb:Scan"));
        for _ in 0..4 {
            iam.create_policy_version()
                .policy_arn(&web_policy)
                .policy_document(doc.to_string())
                .set_as_default(true)
                .send()
                .await
                .unwrap();
        }
        iam.put_role_policy()
            .role_name(&session_api_role)
            .policy_name("by-hand")
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "dynamodb:*", "Resource": "*"}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    });
    let fix = stack.up(&["--config", cfg]);
    fix.assert_ok();
    let s = fix.summary();
    assert_eq!(s["changes"]["changed"], 2, "{s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    let ops: Vec<&str> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for op in [
        "DeletePolicyVersion",
        "CreatePolicyVersion",
        "DeleteRolePolicy",
    ] {
        assert!(ops.iter().any(|o| o.ends_with(op)), "{op} not in {ops:?}");
    }
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let versions = iam
            .list_policy_versions()
            .policy_arn(&web_policy)
            .send()
            .await
            .unwrap();
        assert_eq!(versions.versions().len(), 5, "oldest version deleted");
        assert!(
            !versions
                .versions()
                .iter()
                .any(|v| v.version_id() == Some("v1")),
            "v1 (the oldest) should be gone"
        );
    });
    block_on(check_roles(&stack));
    let again = stack.up(&["--config", cfg]);
    assert_eq!(
        again.summary()["aws_calls"]["mutating"],
        0,
        "{}",
        again.summary()
    );

    // down: roles and policies (with their extra versions) are gone.
    stack.down(&["--config", cfg]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let left = remaining_iam(&iam, &stack.suffix).await;
        assert!(left.is_empty(), "left in IAM: {left:?}");
        let tagged = remaining_tagged(&sdk, &stack.suffix).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        let ec2 = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(ec2.is_empty(), "left behind in EC2: {ec2:?}");
    });
}
