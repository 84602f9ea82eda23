//! Who may talk to whom, end to end: each ECS service runs in its own security group, which
//! admits exactly the callers the config declares (`services[].calls`) on its port; the
//! database admits exactly the services with the `database` permission; the ALB admits only
//! CloudFront's origin-facing prefix list. AWS needs both ends of a path (the sender's egress
//! and the receiver's ingress), so every check looks at both. `up` converges: a second run
//! changes nothing, dropping a call revokes exactly its two rules, a group the config no
//! longer asks for goes once nothing uses it; `down` leaves nothing.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, SecurityGroupRule};
use serde_json::Value;

use crate::util::*;

const CLOUDFRONT_LIST: &str = "com.amazonaws.global.cloudfront.origin-facing";
const SERVICES: [&str; 3] = [
    "payment-api",
    "transaction-processor",
    "notification-service",
];

/// The preset's services again (a `[[services]]` list replaces the preset's whole list),
/// with payment-api calling only transaction-processor.
const WITHOUT_NOTIFY_CALL: &str = r#"
preset = "microservices"

[[services]]
name = "payment-api"
cpu = 2048
memory = 4096
capacity = { fargate_base = 2, fargate_weight = 1, spot_weight = 0 }
permissions = ["sessions", "database", "queue"]
deployment = "codedeploy-linear"
calls = ["transaction-processor"]

[[services]]
name = "transaction-processor"
cpu = 1024
memory = 2048
path = "/transactions/*"
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
permissions = ["database", "queue"]
queue_backlog_target = 100

[[services]]
name = "notification-service"
cpu = 1024
memory = 2048
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
permissions = ["queue"]
"#;

/// One rule as (egress, port, peer: group ID, prefix list ID or CIDR).
type Edge = (bool, i32, String);

fn edge(r: &SecurityGroupRule) -> Edge {
    let peer = r
        .referenced_group_info()
        .and_then(|g| g.group_id())
        .or(r.prefix_list_id())
        .or(r.cidr_ipv4())
        .unwrap_or("?");
    (
        r.is_egress().unwrap_or_default(),
        r.from_port().unwrap_or_default(),
        peer.to_string(),
    )
}

/// Every rule of `groups`, by group ID.
async fn rules_of(sdk: &SdkConfig, groups: &[String]) -> BTreeMap<String, Vec<SecurityGroupRule>> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let out = ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(groups.to_vec()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut by_group: BTreeMap<String, Vec<SecurityGroupRule>> =
        groups.iter().map(|g| (g.clone(), Vec::new())).collect();
    for r in out.security_group_rules() {
        by_group
            .entry(r.group_id().unwrap_or_default().to_string())
            .or_default()
            .push(r.clone());
    }
    by_group
}

fn edges(rules: &BTreeMap<String, Vec<SecurityGroupRule>>, group: &str) -> BTreeSet<Edge> {
    rules[group].iter().map(edge).collect()
}

fn ingress(rules: &BTreeMap<String, Vec<SecurityGroupRule>>, group: &str) -> BTreeSet<Edge> {
    edges(rules, group).into_iter().filter(|e| !e.0).collect()
}

/// The IDs the network step published.
struct Groups {
    alb: String,
    db: String,
    lambda: String,
    services: BTreeMap<String, String>,
    cloudfront: String,
}

impl Groups {
    fn of(stack: &Stack) -> Groups {
        let services: BTreeMap<String, String> = stack
            .output("sg_service_ids")
            .as_object()
            .expect("output sg_service_ids is a map")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        Groups {
            alb: stack.output_str("sg_alb_id"),
            db: stack.output_str("sg_db_id"),
            lambda: stack.output_str("sg_lambda_id"),
            services,
            cloudfront: stack.output_str("cloudfront_prefix_list_id"),
        }
    }

    fn svc(&self, name: &str) -> String {
        self.services[name].clone()
    }

    fn all(&self) -> Vec<String> {
        let mut v = vec![self.alb.clone(), self.db.clone(), self.lambda.clone()];
        v.extend(self.services.values().cloned());
        v
    }
}

/// The names of the mutating calls a JSON run made.
fn mutating_ops(run: &Run) -> Vec<String> {
    run.summary()["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

#[track_caller]
fn assert_nothing_mutated(run: &Run) {
    run.assert_ok();
    let s = run.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    assert_eq!(s["changes"]["changed"], 0, "{s}");
}

async fn check_nothing_left(sdk: &SdkConfig, stack: &Stack) {
    let left = remaining_ec2(sdk, &stack.suffix).await;
    assert!(left.is_empty(), "left in EC2: {left:?}");
    let tagged = remaining_tagged(sdk, &stack.suffix).await;
    assert!(tagged.is_empty(), "still tagged: {tagged:?}");
    assert!(!stack.state_path().exists(), "state file left");
}

#[test]
fn microservices_admit_exactly_the_declared_calls_and_up_converges() {
    let stack = Stack::new("sgs");
    stack.up(&["--preset", "microservices"]).assert_ok();
    let sdk = block_on(sdk_config(&stack.endpoint));
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let g = Groups::of(&stack);
    assert!(stack.output("sg_app_id").is_null(), "no shared app group");
    let names: BTreeSet<&str> = g.services.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(SERVICES), "one group per service");
    let distinct: BTreeSet<&String> = g.services.values().collect();
    assert_eq!(distinct.len(), 3, "{:?}", g.services);
    // Recorded by the run that made them (`down` deletes what the state holds).
    let recorded_groups: BTreeSet<String> = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ec2:security-group")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        recorded_groups,
        g.all().into_iter().collect::<BTreeSet<_>>()
    );
    let (pa, tp, ns) = (
        g.svc("payment-api"),
        g.svc("transaction-processor"),
        g.svc("notification-service"),
    );

    // The prefix list is CloudFront's, and each group carries the stack's tags and name.
    let lists = block_on(
        ec2.describe_managed_prefix_lists()
            .prefix_list_ids(&g.cloudfront)
            .send(),
    )
    .unwrap();
    assert_eq!(
        lists.prefix_lists()[0].prefix_list_name(),
        Some(CLOUDFRONT_LIST)
    );
    let described = block_on(
        ec2.describe_security_groups()
            .set_group_ids(Some(g.services.values().cloned().collect()))
            .send(),
    )
    .unwrap();
    for group in described.security_groups() {
        assert_standard_ec2_tags(group.tags(), &stack.suffix, "service group");
        let service = g
            .services
            .iter()
            .find(|(_, id)| group.group_id() == Some(id.as_str()))
            .map(|(s, _)| s.clone())
            .unwrap();
        assert_eq!(
            group.group_name(),
            Some(format!("secgroup-svc-{service}-{}", stack.suffix).as_str())
        );
    }

    let rules = block_on(rules_of(&sdk, &g.all()));
    let e = |egress: bool, port: i32, peer: &str| (egress, port, peer.to_string());
    // payment-api -> transaction-processor on its port (80), both ends.
    assert!(edges(&rules, &pa).contains(&e(true, 80, &tp)), "{rules:?}");
    // transaction-processor also serves the ALB's /transactions/* (seed 003's path-based
    // routing).
    assert_eq!(
        ingress(&rules, &tp),
        BTreeSet::from([e(false, 80, &pa), e(false, 80, &g.alb)])
    );
    // notification-service admits payment-api, and nothing from transaction-processor.
    assert_eq!(ingress(&rules, &ns), BTreeSet::from([e(false, 80, &pa)]));
    assert!(!edges(&rules, &tp).iter().any(|x| x.2 == ns), "{rules:?}");
    // payment-api (behind the ALB) admits the ALB only.
    assert_eq!(ingress(&rules, &pa), BTreeSet::from([e(false, 80, &g.alb)]));
    assert_eq!(
        edges(&rules, &g.alb)
            .into_iter()
            .filter(|x| x.0)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([e(true, 80, &pa), e(true, 80, &tp)]),
        "the ALB sends to payment-api and, by path, transaction-processor only"
    );
    // The database admits exactly the services with the `database` permission, and they
    // have the egress to it; notification-service and the validator do not.
    assert_eq!(
        ingress(&rules, &g.db),
        BTreeSet::from([e(false, 5432, &pa), e(false, 5432, &tp)])
    );
    for (group, to_db) in [(&pa, true), (&tp, true), (&ns, false), (&g.lambda, false)] {
        assert_eq!(
            edges(&rules, group).contains(&e(true, 5432, &g.db)),
            to_db,
            "{group} -> database"
        );
    }
    // The ALB admits one rule: CloudFront's origin-facing list, on 80 (no certificate).
    let alb_in: Vec<&SecurityGroupRule> = rules[&g.alb]
        .iter()
        .filter(|r| r.is_egress() == Some(false))
        .collect();
    assert_eq!(alb_in.len(), 1, "{alb_in:?}");
    assert_eq!(alb_in[0].prefix_list_id(), Some(g.cloudfront.as_str()));
    assert_eq!(
        (alb_in[0].from_port(), alb_in[0].to_port()),
        (Some(80), Some(80))
    );
    // Nothing admits the internet; no group keeps AWS's allow-all egress.
    for (group, rs) in &rules {
        for r in rs {
            assert!(
                r.is_egress() == Some(true) || r.cidr_ipv4().is_none(),
                "{group} admits a CIDR: {r:?}"
            );
            assert_ne!(r.ip_protocol(), Some("-1"), "{group}: {r:?}");
        }
    }

    // Each ECS service's tasks run in the service's own group.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = stack.output_str("ecs_cluster_name");
    for s in SERVICES {
        let out = block_on(
            ecs.describe_services()
                .cluster(&cluster)
                .services(format!("svc-{s}-{}", stack.suffix))
                .send(),
        )
        .unwrap();
        let net = out.services()[0]
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .unwrap();
        assert_eq!(net.security_groups(), [g.svc(s)], "{s}");
    }

    // A second up changes nothing.
    let log_before = is_faithful(&stack.endpoint).then(|| request_log(&stack.endpoint).len());
    assert_nothing_mutated(&stack.up(&["--preset", "microservices"]));
    if let Some(before) = log_before {
        let writes: Vec<_> = request_log(&stack.endpoint)[before..]
            .iter()
            .filter(|r| r.is_from_stack(&stack.suffix) && r.is_mutating())
            .map(|r| r.operation.clone())
            .collect();
        assert!(writes.is_empty(), "second up sent {writes:?}");
    }

    // Dropping payment-api's call to notification-service revokes exactly that path: the
    // caller's egress and the callee's ingress, nothing else.
    let cfg = stack.config(WITHOUT_NOTIFY_CALL);
    let cfg = cfg.to_str().unwrap();
    let run = stack.up(&["--config", cfg]);
    run.assert_ok();
    let mut ops = mutating_ops(&run);
    ops.sort();
    assert_eq!(
        ops,
        [
            "EC2:RevokeSecurityGroupEgress",
            "EC2:RevokeSecurityGroupIngress"
        ],
        "{}",
        run.stdout
    );
    let after = block_on(rules_of(&sdk, &g.all()));
    let ids = |rs: &BTreeMap<String, Vec<SecurityGroupRule>>| -> BTreeSet<(String, Edge)> {
        rs.iter()
            .flat_map(|(group, v)| v.iter().map(move |r| (group.clone(), edge(r))))
            .collect()
    };
    let gone: BTreeSet<(String, Edge)> = ids(&rules).difference(&ids(&after)).cloned().collect();
    assert_eq!(
        gone,
        BTreeSet::from([
            (pa.clone(), e(true, 80, &ns)),
            (ns.clone(), e(false, 80, &pa))
        ])
    );
    assert!(ids(&after).is_subset(&ids(&rules)), "nothing was added");
    assert!(ingress(&after, &ns).is_empty(), "{after:?}");
    assert!(edges(&after, &pa).contains(&e(true, 80, &tp)));
    // The revoked rules are no longer recorded; steady again.
    let recorded: BTreeSet<String> = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ec2:security-group-rule")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let live: BTreeSet<String> = after
        .values()
        .flatten()
        .filter_map(|r| r.security_group_rule_id().map(str::to_string))
        .collect();
    assert!(
        recorded.is_subset(&live),
        "stale rule records: {recorded:?}"
    );
    assert_nothing_mutated(&stack.up(&["--config", cfg]));

    // `status` knows every group and rule.
    let status = stack.run(&["--output", "json", "status"]);
    status.assert_ok();
    let st: Value = serde_json::from_str(status.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(st["missing"], 0, "{st}");

    stack.down(&[]).assert_ok();
    block_on(check_nothing_left(&sdk, &stack));
}

/// A stack built before services had their own groups has one shared `secgroup-app-<suffix>`
/// (here made by hand with the stack's tags, and a rule of the database's group admitting
/// it). While a network interface uses it, `up` leaves it and the database rule in place and
/// says so; once nothing does, `up` revokes the rule and deletes the group.
#[test]
fn the_old_shared_group_goes_once_nothing_uses_it() {
    let stack = Stack::new("sgold");
    stack.up(&[]).assert_ok();
    let sdk = block_on(sdk_config(&stack.endpoint));
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let g = Groups::of(&stack);
    let vpc = stack.output_str("vpc_id");
    let name = format!("secgroup-app-{}", stack.suffix);
    let tags = |n: &str| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value(n)
                    .build(),
            )
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("fintech-infra:stack")
                    .value(&stack.suffix)
                    .build(),
            )
            .build()
    };
    let (old, old_rule, eni) = block_on(async {
        let old = ec2
            .create_security_group()
            .group_name(&name)
            .description("fintech-infra app (shared, earlier version)")
            .vpc_id(&vpc)
            .tag_specifications(tags(&name))
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string();
        let rule = ec2
            .authorize_security_group_ingress()
            .group_id(&g.db)
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(5432)
                    .to_port(5432)
                    .user_id_group_pairs(
                        aws_sdk_ec2::types::UserIdGroupPair::builder()
                            .group_id(&old)
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroupRule)
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("fintech-infra:stack")
                            .value(&stack.suffix)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .security_group_rules()[0]
            .security_group_rule_id()
            .unwrap()
            .to_string();
        // A task still running in the old group.
        let subnet = stack.output("private_subnet_ids")[0]
            .as_str()
            .unwrap()
            .to_string();
        let eni = ec2
            .create_network_interface()
            .subnet_id(subnet)
            .groups(&old)
            .description("a task still in the old group")
            .send()
            .await
            .unwrap()
            .network_interface()
            .unwrap()
            .network_interface_id()
            .unwrap()
            .to_string();
        (old, rule, eni)
    });
    let rule_exists = |id: &str| {
        block_on(
            ec2.describe_security_group_rules()
                .filters(Filter::builder().name("group-id").values(&g.db).build())
                .send(),
        )
        .unwrap()
        .security_group_rules()
        .iter()
        .any(|r| r.security_group_rule_id() == Some(id))
    };
    let group_exists = |id: &str| {
        block_on(
            ec2.describe_security_groups()
                .filters(Filter::builder().name("vpc-id").values(&vpc).build())
                .send(),
        )
        .unwrap()
        .security_groups()
        .iter()
        .any(|s| s.group_id() == Some(id))
    };

    // In use: kept, with the database rule its tasks need; recorded so `down` removes it.
    let run = stack.up(&[]);
    run.assert_ok();
    assert!(
        run.stdout.contains(&name) && run.stdout.contains("still used by"),
        "{}",
        run.stdout
    );
    assert!(
        !mutating_ops(&run)
            .iter()
            .any(|o| o.contains("SecurityGroup")),
        "{:?}",
        mutating_ops(&run)
    );
    assert!(group_exists(&old) && rule_exists(&old_rule));
    let recorded = |id: &str| {
        stack.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id)
    };
    assert!(recorded(&old) && recorded(&old_rule));
    let status = stack.run(&["--output", "json", "status"]);
    status.assert_ok();
    assert!(
        status.stdout.contains("no longer configured"),
        "{}",
        status.stdout
    );

    // Nothing uses it any more: the rule is revoked, then the group deleted.
    block_on(
        ec2.delete_network_interface()
            .network_interface_id(&eni)
            .send(),
    )
    .unwrap();
    let run = stack.up(&[]);
    run.assert_ok();
    assert_eq!(
        mutating_ops(&run),
        ["EC2:RevokeSecurityGroupIngress", "EC2:DeleteSecurityGroup"]
    );
    assert!(!group_exists(&old) && !rule_exists(&old_rule));
    assert!(!recorded(&old) && !recorded(&old_rule));
    assert_nothing_mutated(&stack.up(&[]));

    stack.down(&[]).assert_ok();
    block_on(check_nothing_left(&sdk, &stack));
}
