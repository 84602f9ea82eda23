//! Security Hub posture controls (issue 12) against the emulator: EC2.6, the stack's VPC (and,
//! on the `multiregion` preset, the DR VPC) has an ACTIVE flow log of all traffic to a
//! KMS-encrypted log group with the configured retention, delivered through a role trusted by
//! `vpc-flow-logs.amazonaws.com` for this account only and allowed exactly the four delivery
//! actions on that group; EC2.2, the VPC's default security group has no rules, and a rule
//! re-added by hand is revoked by the next `up`. A second `up` makes no mutating call and
//! `down` leaves nothing (flow logs, log groups, roles, policies).

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, IpPermission, UserIdGroupPair};
use serde_json::{json, Value};

use crate::util::*;

const ACCOUNT: &str = "123456789012";
const DELIVERY_ACTIONS: [&str; 4] = [
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
];

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

/// `Action`/`Resource` as a sorted list whether IAM returns a string or a list.
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    out.sort();
    out
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The VPC's default security group ID.
async fn default_group(sdk: &SdkConfig, vpc: &str) -> String {
    let out = aws_sdk_ec2::Client::new(sdk)
        .describe_security_groups()
        .filters(filter("vpc-id", vpc))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .unwrap();
    out.security_groups()
        .iter()
        .find(|g| g.vpc_id() == Some(vpc) && g.group_name() == Some("default"))
        .and_then(|g| g.group_id())
        .expect("the VPC has a default security group")
        .to_string()
}

/// Rule IDs of a group, ingress and egress.
async fn rules_of(sdk: &SdkConfig, group: &str) -> Vec<String> {
    let out = aws_sdk_ec2::Client::new(sdk)
        .describe_security_group_rules()
        .filters(filter("group-id", group))
        .send()
        .await
        .unwrap();
    out.security_group_rules()
        .iter()
        .filter(|r| r.group_id() == Some(group))
        .map(|r| {
            format!(
                "{} {} {:?}",
                r.security_group_rule_id().unwrap_or_default(),
                if r.is_egress() == Some(true) {
                    "egress"
                } else {
                    "ingress"
                },
                r.cidr_ipv4()
                    .or(r.referenced_group_info().and_then(|g| g.group_id()))
            )
        })
        .collect()
}

/// Checks the flow log of `vpc` in `sdk`'s region and everything it depends on: the group
/// (KMS key `key_arn`, 30 days, the config's default), the role's trust and its one policy.
async fn assert_flow_log(
    sdk: &SdkConfig,
    region: &str,
    vpc: &str,
    key_arn: &str,
    suffix: &str,
    dr: bool,
) {
    let s_group = format!("/vpc/flow-logs-{suffix}");
    let role = &if dr {
        format!("role-flow-logs-dr-{suffix}")
    } else {
        format!("role-flow-logs-{suffix}")
    };
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let out = ec2
        .describe_flow_logs()
        .filter(filter("resource-id", vpc))
        .send()
        .await
        .unwrap();
    let logs: Vec<_> = out
        .flow_logs()
        .iter()
        .filter(|f| f.resource_id() == Some(vpc))
        .collect();
    assert_eq!(
        logs.len(),
        1,
        "one flow log on {vpc} in {region}: {logs:#?}"
    );
    let fl = logs[0];
    assert_eq!(fl.flow_log_status(), Some("ACTIVE"), "{fl:#?}");
    assert_ne!(
        fl.deliver_logs_status(),
        Some("FAILED"),
        "delivery fails: {fl:#?}"
    );
    assert_eq!(fl.traffic_type().map(|t| t.as_str()), Some("ALL"));
    assert_eq!(fl.log_group_name(), Some(s_group.as_str()));
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
    assert_eq!(fl.deliver_logs_permission_arn(), Some(role_arn.as_str()));
    assert!(
        ec2_tag(fl.tags(), "fintech-infra:stack").is_some(),
        "flow log tagged at creation: {:?}",
        fl.tags()
    );

    let groups = aws_sdk_cloudwatchlogs::Client::new(sdk)
        .describe_log_groups()
        .log_group_name_prefix(&s_group)
        .send()
        .await
        .unwrap();
    let g = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(s_group.as_str()))
        .unwrap_or_else(|| panic!("log group {s_group} in {region}"));
    assert_eq!(
        g.kms_key_id(),
        Some(key_arn),
        "{s_group} encrypted with the stack key"
    );
    assert_eq!(g.retention_in_days(), Some(30), "{s_group} retention");

    let iam = aws_sdk_iam::Client::new(sdk);
    let r = iam.get_role().role_name(role).send().await.unwrap();
    let trust = decode(r.role().unwrap().assume_role_policy_document().unwrap());
    let st = trust["Statement"].as_array().unwrap();
    assert_eq!(st.len(), 1, "{trust}");
    assert_eq!(st[0]["Effect"], "Allow");
    assert_eq!(
        st[0]["Principal"],
        json!({"Service": "vpc-flow-logs.amazonaws.com"})
    );
    assert_eq!(sorted(&st[0]["Action"]), ["sts:AssumeRole"]);
    assert_eq!(
        st[0]["Condition"],
        json!({"StringEquals": {"aws:SourceAccount": ACCOUNT}}),
        "{trust}"
    );
    let inline = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    assert!(inline.policy_names().is_empty(), "{role}: inline policies");
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    let policy = role.replacen("role-", "policy-", 1);
    let policy_arn = format!("arn:aws:iam::{ACCOUNT}:policy/{policy}");
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [policy_arn.as_str()], "{role}: exactly its policy");
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
        .version_id(version)
        .send()
        .await
        .unwrap();
    let doc = decode(v.policy_version().unwrap().document().unwrap());
    let st = doc["Statement"].as_array().unwrap();
    assert_eq!(st.len(), 1, "{doc}");
    assert_eq!(st[0]["Effect"], "Allow");
    assert!(st[0].get("NotAction").is_none() && st[0].get("NotResource").is_none());
    let mut want_actions: Vec<String> = DELIVERY_ACTIONS.iter().map(|a| a.to_string()).collect();
    want_actions.sort();
    assert_eq!(sorted(&st[0]["Action"]), want_actions, "{doc}");
    let arn = format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:{s_group}");
    let mut want_resources = vec![arn.clone(), format!("{arn}:*")];
    want_resources.sort();
    assert_eq!(sorted(&st[0]["Resource"]), want_resources, "{doc}");
}

/// Nothing of the flow logs step is left in `sdk`'s region.
async fn assert_flow_logs_gone(sdk: &SdkConfig, suffix: &str) {
    let group = format!("/vpc/flow-logs-{suffix}");
    let groups = aws_sdk_cloudwatchlogs::Client::new(sdk)
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty(), "log group left: {groups:?}");
    let fls = aws_sdk_ec2::Client::new(sdk)
        .describe_flow_logs()
        .filter(stack_filter(suffix))
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = fls
        .flow_logs()
        .iter()
        .filter(|f| ec2_tag(f.tags(), "fintech-infra:stack") == Some(suffix))
        .collect();
    assert!(ours.is_empty(), "flow logs left: {ours:?}");
    let iam = aws_sdk_iam::Client::new(sdk);
    for role in [
        format!("role-flow-logs-{suffix}"),
        format!("role-flow-logs-dr-{suffix}"),
    ] {
        assert!(
            iam.get_role().role_name(&role).send().await.is_err(),
            "{role} left"
        );
    }
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = policies
        .policies()
        .iter()
        .filter_map(|p| p.policy_name())
        .filter(|n| n.starts_with("policy-flow-logs-") && n.ends_with(suffix))
        .collect();
    assert!(left.is_empty(), "policies left: {left:?}");
}

#[test]
fn default_stack_has_flow_logs_and_a_closed_default_group_and_removes_them() {
    let stack = Stack::new("posture");
    let s = stack.suffix.clone();
    stack.up(&[]).assert_ok();
    let vpc = stack.output_str("vpc_id");
    let key = stack.output_str("kms_key_arn");
    assert!(!stack.output_str("flow_log_id").is_empty());

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        assert_flow_log(&sdk, REGION, &vpc, &key, &s, false).await;
        let sg = default_group(&sdk, &vpc).await;
        let rules = rules_of(&sdk, &sg).await;
        assert!(
            rules.is_empty(),
            "default group {sg} still has rules: {rules:?}"
        );
    });

    // Converged: nothing to do, not a single mutating call.
    let again = stack.up(&[]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");

    // Someone re-opens the default group: `plan` shows the revoke, `up` makes it.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let sg = default_group(&sdk, &vpc).await;
        aws_sdk_ec2::Client::new(&sdk)
            .authorize_security_group_ingress()
            .group_id(&sg)
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("-1")
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id(&sg).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(rules_of(&sdk, &sg).await.len(), 1);
    });
    let plan = stack.run(&["--output", "json", "plan", "--env-suffix", &s]);
    plan.assert_ok();
    let changes: Vec<Value> = plan.summary()["plan"]
        .as_array()
        .expect("plan items")
        .iter()
        .filter(|i| i["action"] == "change")
        .cloned()
        .collect();
    assert!(
        changes.iter().any(|i| i["step"] == "network"
            && i["name"]
                .as_str()
                .is_some_and(|n| n.contains("default security group"))),
        "plan shows the revoke: {changes:?}"
    );
    stack.up(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let sg = default_group(&sdk, &vpc).await;
        let rules = rules_of(&sdk, &sg).await;
        assert!(rules.is_empty(), "re-added rule not revoked: {rules:?}");
    });

    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &s).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
        let tagged = remaining_tagged(&sdk, &s).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        assert_flow_logs_gone(&sdk, &s).await;
        let left = remaining_anywhere(&stack.endpoint, &s).await;
        assert!(left.is_empty(), "left behind: {left:#?}");
    });
}

#[test]
fn flow_logs_switched_off_builds_none_and_removes_what_was_built() {
    let stack = Stack::new("nofl");
    let s = stack.suffix.clone();
    stack.up(&[]).assert_ok();
    let cfg = stack.config("[network]\nflow_logs = false\n");
    let cfg = cfg.to_str().unwrap().to_string();
    let off = stack.up(&["--config", &cfg]);
    off.assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        assert_flow_logs_gone(&sdk, &s).await;
    });
    assert!(stack.output("flow_log_id").is_null());
    stack.down(&[]).assert_ok();
}

#[test]
fn multiregion_preset_has_a_flow_log_on_the_dr_vpc_too() {
    const PRIMARY: &str = "us-east-2";
    const DR: &str = "us-west-2";
    let stack = Stack::new("dfl");
    let s = stack.suffix.clone();
    stack.up(&["--preset", "multiregion"]).assert_ok();
    let vpc = stack.output_str("vpc_id");
    let key = stack.output_str("kms_key_arn");
    let dr_vpc = stack.output_str("dr_vpc_id");
    let dr_key = stack.output_str("dr_kms_key_arn");
    block_on(async {
        let main = sdk_config_in(&stack.endpoint, PRIMARY).await;
        assert_flow_log(&main, PRIMARY, &vpc, &key, &s, false).await;
        let dr = sdk_config_in(&stack.endpoint, DR).await;
        assert_flow_log(&dr, DR, &dr_vpc, &dr_key, &s, true).await;
        let sg = default_group(&dr, &dr_vpc).await;
        let rules = rules_of(&dr, &sg).await;
        assert!(
            rules.is_empty(),
            "DR default group {sg} still has rules: {rules:?}"
        );
    });
    let again = stack.up(&["--preset", "multiregion"]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");
    stack.down(&[]).assert_ok();
    block_on(async {
        for region in [PRIMARY, DR] {
            let sdk = sdk_config_in(&stack.endpoint, region).await;
            assert_flow_logs_gone(&sdk, &s).await;
        }
        // Nothing with the suffix anywhere: log groups (flow logs, Aurora's, Container
        // Insights', the services'), roles, buckets (CDN and ALB logs, the DR replica), web
        // ACLs of both scopes, keys' aliases, tagged resources, in every region.
        let left = remaining_anywhere(&stack.endpoint, &s).await;
        assert!(left.is_empty(), "left behind: {left:#?}");
    });
}
