//! The foundation's end-to-end life cycle against the emulator: `up` builds the network and the
//! KMS key with every property the requirements name; a second `up` makes no mutating call;
//! `plan`, `status` and `outputs` work; `down` (without --env-suffix) leaves nothing behind.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::Filter;
use serde_json::Value;

use crate::util::*;

fn vpc_filter(vpc: &str) -> Filter {
    Filter::builder().name("vpc-id").values(vpc).build()
}

#[test]
fn up_builds_the_network_and_key_then_down_removes_everything() {
    let stack = Stack::new("life");
    let run = stack.up(&[]);
    run.assert_ok();
    let summary = run.summary();
    assert_eq!(summary["ok"], true);
    assert!(
        summary["changes"]["created"].as_u64().unwrap() >= 40,
        "{summary}"
    );

    // State file: private, records the resources, no secrets.
    let state_path = stack.state_path();
    assert_eq!(mode_of(&state_path), 0o600);
    assert_eq!(mode_of(state_path.parent().unwrap()), 0o700);
    let state = stack.state();
    assert_eq!(state["schema_version"], 1);
    assert_eq!(state["suffix"], stack.suffix.as_str());
    let kinds: BTreeSet<String> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "ec2:vpc",
        "ec2:subnet",
        "ec2:internet-gateway",
        "ec2:elastic-ip",
        "ec2:nat-gateway",
        "ec2:route-table",
        "ec2:route-table-association",
        "ec2:route",
        "ec2:security-group",
        "ec2:security-group-rule",
        "ec2:vpc-endpoint",
        "kms:key",
        "kms:alias",
    ] {
        assert!(kinds.contains(k), "state lacks {k}: {kinds:?}");
    }

    let vpc_id = stack.output("vpc_id").as_str().unwrap().to_string();
    block_on(check_network(&stack, &vpc_id));
    block_on(check_key(&stack));

    // A second up finds everything and changes nothing.
    let log_before = is_faithful(&stack.endpoint).then(|| request_log(&stack.endpoint).len());
    let again = stack.up(&[]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0);
    assert_eq!(s["changes"]["changed"], 0);
    assert!(s["aws_calls"]["total"].as_u64().unwrap() > 0);
    if let Some(before) = log_before {
        // The emulator's own log agrees: this stack's second run sent only reads. (Other tests
        // share the emulator; the SDK app name in the user agent tells this run's requests.)
        let after = request_log(&stack.endpoint);
        let ours: Vec<_> = after[before..]
            .iter()
            .filter(|r| r.is_from_stack(&stack.suffix))
            .collect();
        assert!(
            !ours.is_empty(),
            "no requests of this stack in the emulator's log"
        );
        let writes: Vec<_> = ours.iter().filter(|r| r.is_mutating()).collect();
        assert!(
            writes.is_empty(),
            "second up sent mutating requests: {writes:?}"
        );
    }

    // plan: nothing to do.
    let plan = stack.run(&["--output", "json", "plan", "--env-suffix", &stack.suffix]);
    plan.assert_ok();
    let p = plan.summary();
    assert_eq!(p["changes"]["create"], 0, "{p}");
    assert_eq!(p["changes"]["change"], 0, "{p}");
    assert_eq!(p["aws_calls"]["mutating"], 0);

    // status and outputs work without --env-suffix (one stack in the directory).
    let status = stack.run(&["--output", "json", "status"]);
    status.assert_ok();
    let st: Value = serde_json::from_str(status.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(st["missing"], 0, "{st}");
    assert!(st["resources"].as_array().unwrap().len() >= 40);
    let outputs = stack.run(&["outputs", "--json"]);
    outputs.assert_ok();
    let o: Value = serde_json::from_str(outputs.stdout.trim()).unwrap();
    assert_eq!(o["vpc_id"], vpc_id.as_str());
    assert!(o["kms_key_arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:kms:"));
    let text = stack.run(&["outputs"]);
    text.assert_ok();
    assert!(!text.stdout.contains(&vpc_id), "IDs only with --all");
    assert!(text.stdout.contains("more IDs"), "{}", text.stdout);
    let all = stack.run(&["outputs", "--all"]);
    all.assert_ok();
    assert!(all.stdout.contains(&vpc_id));

    // down without --env-suffix: exactly one stack here.
    let key_id = stack.output("kms_key_id").as_str().unwrap().to_string();
    let down = stack.run(&["--output", "json", "down"]);
    down.assert_ok();
    assert!(
        down.stdout.contains("scheduled for deletion"),
        "down must say the key is scheduled for deletion: {}",
        down.stdout
    );
    assert!(!state_path.exists(), "state file left after down");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind in EC2: {left:?}");
        let tagged = remaining_tagged(&sdk, &stack.suffix).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
        let rds = remaining_rds(&sdk, &stack.suffix).await;
        assert!(rds.is_empty(), "left behind in RDS: {rds:?}");
        let kms = aws_sdk_kms::Client::new(&sdk);
        let key = kms.describe_key().key_id(&key_id).send().await.unwrap();
        assert_eq!(
            key.key_metadata().unwrap().key_state().unwrap().as_str(),
            "PendingDeletion"
        );
        let alias = format!("alias/fintech-{}", stack.suffix);
        assert!(
            kms.describe_key().key_id(&alias).send().await.is_err(),
            "alias left"
        );
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        assert!(
            ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.is_err() || {
                ec2.describe_vpcs()
                    .vpc_ids(&vpc_id)
                    .send()
                    .await
                    .unwrap()
                    .vpcs()
                    .is_empty()
            }
        );
    });
}

async fn check_network(stack: &Stack, vpc_id: &str) {
    let sdk = sdk_config(&stack.endpoint).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let suffix = stack.suffix.as_str();

    let vpcs = ec2.describe_vpcs().vpc_ids(vpc_id).send().await.unwrap();
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    assert_standard_ec2_tags(vpc.tags(), suffix, "vpc");
    assert_eq!(
        ec2_tag(vpc.tags(), "Name"),
        Some(format!("vpc-{suffix}").as_str())
    );

    // 3 AZs x (public, private, isolated), each /20 inside the VPC, distinct CIDRs.
    let subnets = ec2
        .describe_subnets()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let subnets = subnets.subnets();
    assert_eq!(subnets.len(), 9);
    let azs: BTreeSet<_> = subnets
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    assert_eq!(azs.len(), 3, "{azs:?}");
    let cidrs: BTreeSet<_> = subnets.iter().filter_map(|s| s.cidr_block()).collect();
    assert_eq!(cidrs.len(), 9);
    for s in subnets {
        assert!(
            s.cidr_block().unwrap().starts_with("10.0.")
                && s.cidr_block().unwrap().ends_with("/20")
        );
        assert_standard_ec2_tags(s.tags(), suffix, "subnet");
        assert_eq!(
            s.map_public_ip_on_launch(),
            Some(false),
            "no public IPs on launch"
        );
    }
    let ids_of = |key: &str| -> Vec<String> {
        stack
            .output(key)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let (public, private, isolated) = (
        ids_of("public_subnet_ids"),
        ids_of("private_subnet_ids"),
        ids_of("isolated_subnet_ids"),
    );
    for tier in [&public, &private, &isolated] {
        let zones: BTreeSet<_> = tier
            .iter()
            .map(|id| {
                subnets
                    .iter()
                    .find(|s| s.subnet_id() == Some(id))
                    .unwrap()
                    .availability_zone()
                    .unwrap()
            })
            .collect();
        assert_eq!(zones.len(), 3, "each tier spans the three zones");
    }

    // Internet gateway attached.
    let igws = ec2
        .describe_internet_gateways()
        .filters(
            Filter::builder()
                .name("attachment.vpc-id")
                .values(vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = &igws.internet_gateways()[0];
    assert_standard_ec2_tags(igw.tags(), suffix, "igw");
    let igw_id = igw.internet_gateway_id().unwrap();

    // A single NAT gateway by default, available, in a public subnet, with an EIP.
    let nats = ec2
        .describe_nat_gateways()
        .filter(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let nats: Vec<_> = nats
        .nat_gateways()
        .iter()
        .filter(|n| n.state().map(|s| s.as_str()) != Some("deleted"))
        .collect();
    assert_eq!(nats.len(), 1);
    let nat = nats[0];
    assert_eq!(nat.state().unwrap().as_str(), "available");
    assert!(public.contains(&nat.subnet_id().unwrap().to_string()));
    assert!(!nat.nat_gateway_addresses().is_empty());
    assert_standard_ec2_tags(nat.tags(), suffix, "nat");
    let nat_id = nat.nat_gateway_id().unwrap();

    // Routes: public -> IGW, private -> NAT, isolated has no way out.
    let rts = ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let table_of = |subnet: &str| {
        rts.route_tables()
            .iter()
            .find(|t| {
                t.associations()
                    .iter()
                    .any(|a| a.subnet_id() == Some(subnet))
            })
            .unwrap_or_else(|| panic!("subnet {subnet} has no route table"))
    };
    let default_route = |t: &aws_sdk_ec2::types::RouteTable| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .cloned()
    };
    for s in &public {
        let r = default_route(table_of(s)).expect("public default route");
        assert_eq!(r.gateway_id(), Some(igw_id));
    }
    for s in &private {
        let r = default_route(table_of(s)).expect("private default route");
        assert_eq!(r.nat_gateway_id(), Some(nat_id));
    }
    for s in &isolated {
        assert!(
            default_route(table_of(s)).is_none(),
            "isolated subnet has a route out"
        );
    }
    for t in rts
        .route_tables()
        .iter()
        .filter(|t| !t.associations().iter().any(|a| a.main() == Some(true)))
    {
        assert_standard_ec2_tags(t.tags(), suffix, "route table");
    }

    // Security groups and their rules: the web service has its own group; no shared one.
    let sg = |key: &str| stack.output(key).as_str().unwrap().to_string();
    let (alb, app, db, lambda) = (
        sg("sg_alb_id"),
        stack.output("sg_service_ids")["web"]
            .as_str()
            .unwrap()
            .to_string(),
        sg("sg_db_id"),
        sg("sg_lambda_id"),
    );
    assert!(stack.output("sg_app_id").is_null(), "no shared app group");
    let cloudfront = sg("cloudfront_prefix_list_id");
    let rules = ec2
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(&alb)
                .values(&app)
                .values(&db)
                .values(&lambda)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rules = rules.security_group_rules();
    let has = |group: &str, egress: bool, port: i32, peer: &str| {
        rules.iter().any(|r| {
            r.group_id() == Some(group)
                && r.is_egress() == Some(egress)
                && r.from_port() == Some(port)
                && r.to_port() == Some(port)
                && (r.cidr_ipv4() == Some(peer)
                    || r.prefix_list_id() == Some(peer)
                    || r.referenced_group_info().and_then(|g| g.group_id()) == Some(peer))
        })
    };
    // The ALB admits CloudFront's origin-facing servers only (HTTP: no certificate here).
    assert!(has(&alb, false, 80, &cloudfront));
    assert!(has(&alb, true, 80, &app));
    assert!(has(&app, false, 80, &alb));
    assert!(has(&db, false, 5432, &app));
    assert!(has(&app, true, 5432, &db));
    // The validator does not use the database: no rule either way.
    assert!(!has(&db, false, 5432, &lambda));
    assert!(!has(&lambda, true, 5432, &db));
    // The web tasks admit only the ALB; the database only the web tasks; the ALB only
    // CloudFront.
    let ingress_peers = |group: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| r.group_id() == Some(group) && r.is_egress() == Some(false))
            .map(|r| {
                r.referenced_group_info()
                    .and_then(|g| g.group_id())
                    .or(r.prefix_list_id())
                    .or(r.cidr_ipv4())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(ingress_peers(&app), BTreeSet::from([alb.clone()]));
    assert_eq!(ingress_peers(&db), BTreeSet::from([app.clone()]));
    assert_eq!(ingress_peers(&alb), BTreeSet::from([cloudfront.clone()]));
    assert!(ingress_peers(&lambda).is_empty());
    // Explicit egress: no group keeps the allow-all rule.
    for g in [&alb, &app, &db, &lambda] {
        assert!(
            !rules.iter().any(|r| r.group_id() == Some(g)
                && r.is_egress() == Some(true)
                && r.ip_protocol() == Some("-1")),
            "group {g} still allows all egress"
        );
        assert!(
            rules
                .iter()
                .any(|r| r.group_id() == Some(g) && r.is_egress() == Some(true)),
            "{g} has no egress"
        );
    }
    let groups = ec2
        .describe_security_groups()
        .group_ids(&alb)
        .group_ids(&db)
        .send()
        .await
        .unwrap();
    for g in groups.security_groups() {
        assert_standard_ec2_tags(g.tags(), suffix, "security group");
    }

    // Gateway endpoints for S3 and DynamoDB on the private and isolated route tables.
    let eps = ec2
        .describe_vpc_endpoints()
        .filters(vpc_filter(vpc_id))
        .send()
        .await
        .unwrap();
    let services: BTreeSet<_> = eps
        .vpc_endpoints()
        .iter()
        .filter_map(|e| e.service_name())
        .collect();
    assert!(
        services.contains("com.amazonaws.us-east-1.s3"),
        "{services:?}"
    );
    assert!(
        services.contains("com.amazonaws.us-east-1.dynamodb"),
        "{services:?}"
    );
    for e in eps.vpc_endpoints() {
        assert_eq!(e.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
        let rt_ids: BTreeSet<&str> = e.route_table_ids().iter().map(String::as_str).collect();
        for s in private.iter().chain(&isolated) {
            let t = table_of(s).route_table_id().unwrap();
            assert!(rt_ids.contains(t), "endpoint not on route table {t}");
        }
    }
}

async fn check_key(stack: &Stack) {
    let sdk = sdk_config(&stack.endpoint).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let alias = format!("alias/fintech-{}", stack.suffix);
    let key = kms.describe_key().key_id(&alias).send().await.unwrap();
    let meta = key.key_metadata().unwrap();
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(meta.key_manager().unwrap().as_str(), "CUSTOMER");
    assert_eq!(Some(meta.key_id()), stack.output("kms_key_id").as_str());
    let rotation = kms
        .get_key_rotation_status()
        .key_id(meta.key_id())
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled(), "rotation must be on");
    let policy = kms
        .get_key_policy()
        .key_id(meta.key_id())
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let policy = policy.policy().unwrap();
    for svc in [
        "rds.us-east-1",
        "logs.us-east-1",
        "sns.us-east-1",
        "s3.us-east-1",
        "dynamodb.us-east-1",
    ] {
        assert!(policy.contains(svc), "key policy does not name {svc}");
    }
    let tags = kms
        .list_resource_tags()
        .key_id(meta.key_id())
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        tags.tags()
            .iter()
            .find(|t| t.tag_key() == k)
            .map(|t| t.tag_value().to_string())
    };
    assert_eq!(
        tag("fintech-infra:stack").as_deref(),
        Some(stack.suffix.as_str())
    );
    assert_eq!(tag("Team").as_deref(), Some("platform"));
    assert_eq!(tag("CostCenter").as_deref(), Some("fintech"));
    assert_eq!(tag("Environment").as_deref(), Some(stack.suffix.as_str()));
}

#[test]
fn two_zones_with_a_nat_gateway_each_and_custom_tags() {
    let stack = Stack::new("peraz");
    let cfg = stack.config(
        r#"
[tags]
environment = "staging"
team = "payments"
cost_center = "cc-42"

[network]
cidr = "10.42.0.0/16"
az_count = 2
nat_gateways = "per-az"
"#,
    );
    let cfg = cfg.to_str().unwrap();
    stack
        .run(&[
            "--config",
            cfg,
            "--output",
            "json",
            "up",
            "--env-suffix",
            &stack.suffix,
        ])
        .assert_ok();
    let vpc_id = stack.output("vpc_id").as_str().unwrap().to_string();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let subnets = ec2
            .describe_subnets()
            .filters(vpc_filter(&vpc_id))
            .send()
            .await
            .unwrap();
        assert_eq!(subnets.subnets().len(), 6);
        let vpc = ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.unwrap();
        let vpc = &vpc.vpcs()[0];
        assert_eq!(vpc.cidr_block(), Some("10.42.0.0/16"));
        assert_eq!(ec2_tag(vpc.tags(), "Environment"), Some("staging"));
        assert_eq!(ec2_tag(vpc.tags(), "Team"), Some("payments"));
        assert_eq!(ec2_tag(vpc.tags(), "CostCenter"), Some("cc-42"));
        let nats = ec2
            .describe_nat_gateways()
            .filter(vpc_filter(&vpc_id))
            .send()
            .await
            .unwrap();
        let live: Vec<_> = nats
            .nat_gateways()
            .iter()
            .filter(|n| n.state().map(|s| s.as_str()) == Some("available"))
            .collect();
        assert_eq!(live.len(), 2, "one NAT gateway per zone");
        let nat_subnets: BTreeSet<_> = live.iter().filter_map(|n| n.subnet_id()).collect();
        assert_eq!(nat_subnets.len(), 2);
        // Each private subnet routes through the NAT gateway of its own zone.
        let rts = ec2
            .describe_route_tables()
            .filters(vpc_filter(&vpc_id))
            .send()
            .await
            .unwrap();
        let targets: BTreeSet<_> = rts
            .route_tables()
            .iter()
            .flat_map(|t| t.routes())
            .filter_map(|r| r.nat_gateway_id())
            .collect();
        assert_eq!(targets.len(), 2);
    });
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
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}

#[test]
fn up_adopts_everything_after_the_state_file_is_lost() {
    // A crash can lose records (e.g. killed during a create call); up must find resources by
    // name and tag rather than create duplicates.
    let stack = Stack::new("adopt");
    stack.up(&[]).assert_ok();
    let before = stack.state()["resources"].as_array().unwrap().len();
    std::fs::remove_file(stack.state_path()).unwrap();
    // `plan` finds everything too. Its first pass runs every step at once; here the upstream
    // steps adopt and publish what their dependents read too early, so it must plan again
    // in dependency order (`engine::plan`), or the dependents would plan creates.
    let plan = stack.run(&["--output", "json", "plan", "--env-suffix", &stack.suffix]);
    plan.assert_ok();
    let p = plan.summary();
    assert_eq!(p["changes"]["create"], 0, "{p}");
    assert_eq!(p["aws_calls"]["mutating"], 0, "{p}");
    let again = stack.up(&[]);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(
        s["aws_calls"]["mutating"], 0,
        "adoption must not create: {s}"
    );
    assert_eq!(s["changes"]["created"], 0);
    assert_eq!(stack.state()["resources"].as_array().unwrap().len(), before);
    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
        let rds = remaining_rds(&sdk, &stack.suffix).await;
        assert!(rds.is_empty(), "left behind in RDS: {rds:?}");
    });
}

#[test]
fn plan_on_a_new_stack_lists_creates_and_touches_nothing() {
    let stack = Stack::new("plan");
    let run = stack.run(&["--output", "json", "plan", "--env-suffix", &stack.suffix]);
    run.assert_ok();
    let s = run.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0);
    assert!(s["changes"]["create"].as_u64().unwrap() >= 40, "{s}");
    let plan = s["plan"].as_array().unwrap();
    assert!(plan
        .iter()
        .any(|i| i["kind"] == "ec2:vpc" && i["action"] == "create"));
    assert!(plan
        .iter()
        .any(|i| i["kind"] == "kms:key" && i["action"] == "create"));
    assert!(!stack.state_path().exists(), "plan wrote a state file");
    // A new stack: one read of what is tagged with it answers for every regional kind
    // tagged at create (step::fresh); nothing of them is looked up one by one.
    if is_faithful(&stack.endpoint) {
        let ours: Vec<_> = request_log(&stack.endpoint)
            .into_iter()
            .filter(|r| r.is_from_stack(&stack.suffix))
            .collect();
        let count = |op: &str| ours.iter().filter(|r| r.operation == op).count();
        assert_eq!(count("GetResources"), 1, "{ours:?}");
        for op in [
            "DescribeVpcs",
            "DescribeInternetGateways",
            "DescribeLogGroups",
            "DescribeDBClusters",
            "DescribeRepositories",
            "GetFunction",
        ] {
            assert_eq!(count(op), 0, "a new stack's plan looked up {op}");
        }
    }
    // Text form names what would be created.
    let text = stack.run(&["plan", "--env-suffix", &stack.suffix]);
    text.assert_ok();
    assert!(
        text.stdout.contains(&format!("vpc-{}", stack.suffix)),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("to create"));
}

#[test]
fn a_failing_step_reports_the_aws_error_code_and_independent_steps_finish() {
    // Something outside the stack (a security group made by hand) holds the VPC: `down` must
    // fail the network step with EC2's own refusal, still tear down the KMS key, keep what
    // could not be deleted in the state, exit 1, and finish once the obstacle is gone.
    let stack = Stack::new("fail");
    let cfg = stack.config("[timeouts]\ndependency_violation_secs = 1\n");
    let cfg = cfg.to_str().unwrap();
    stack.up(&[]).assert_ok();
    let vpc_id = stack.output("vpc_id").as_str().unwrap().to_string();
    let foreign = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        ec2.create_security_group()
            .group_name("made-by-hand")
            .description("not the stack's")
            .vpc_id(&vpc_id)
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_string()
    });
    let down = stack.down(&["--config", cfg]);
    assert_eq!(down.code, 1, "{}\n{}", down.stdout, down.stderr);
    let summary = down.summary();
    let steps = summary["steps"].as_array().unwrap();
    let network = steps.iter().find(|s| s["step"] == "network").unwrap();
    assert_eq!(network["status"], "failed");
    let cause = &network["root_cause"];
    assert_eq!(cause["operation"], "ec2:DeleteVpc", "{network}");
    assert_eq!(cause["code"], "DependencyViolation", "{cause}");
    assert!(
        !cause["message"].as_str().unwrap_or_default().is_empty(),
        "{cause}"
    );
    let kms = steps.iter().find(|s| s["step"] == "kms").unwrap();
    assert_eq!(kms["status"], "done");
    let left: Vec<_> = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert_eq!(
        left,
        vec![serde_json::json!("ec2:vpc")],
        "only the VPC stays recorded"
    );

    // The text report names the code and message as well.
    let again = stack.run(&["--config", cfg, "down"]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("DependencyViolation"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("ec2:DeleteVpc"), "{}", again.stderr);

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        ec2.delete_security_group()
            .group_id(&foreign)
            .send()
            .await
            .unwrap();
    });
    stack.run(&["down"]).assert_ok();
    assert!(!stack.state_path().exists());
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}

#[test]
fn switching_to_a_nat_gateway_per_zone_reroutes_private_subnets() {
    let stack = Stack::new("natsw");
    stack.up(&[]).assert_ok();
    let per_az = stack.config("[network]\nnat_gateways = \"per-az\"\n");
    let run = stack.run(&[
        "--config",
        per_az.to_str().unwrap(),
        "--output",
        "json",
        "up",
        "--env-suffix",
        &stack.suffix,
    ]);
    run.assert_ok();
    let s = run.summary();
    assert_eq!(
        s["changes"]["changed"], 2,
        "two private routes move to their zone's NAT: {s}"
    );
    let nats: Vec<String> = stack
        .output("nat_gateway_ids")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(nats.len(), 3);
    let vpc_id = stack.output("vpc_id").as_str().unwrap().to_string();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let rts = ec2
            .describe_route_tables()
            .filters(vpc_filter(&vpc_id))
            .send()
            .await
            .unwrap();
        let used: BTreeSet<_> = rts
            .route_tables()
            .iter()
            .flat_map(|t| t.routes())
            .filter_map(|r| r.nat_gateway_id())
            .map(str::to_string)
            .collect();
        assert_eq!(
            used,
            nats.iter().cloned().collect::<BTreeSet<_>>(),
            "each private subnet uses its zone's NAT"
        );
    });
    // Steady again: nothing to change.
    let again = stack.run(&[
        "--config",
        per_az.to_str().unwrap(),
        "--output",
        "json",
        "up",
        "--env-suffix",
        &stack.suffix,
    ]);
    again.assert_ok();
    assert_eq!(again.summary()["aws_calls"]["mutating"], 0);
    stack.down(&[]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}

#[test]
fn a_preset_shapes_the_plan() {
    // `resilient` (seed 002) spans two zones: six subnets instead of nine.
    let stack = Stack::new("pre");
    let run = stack.run(&[
        "--preset",
        "resilient",
        "--output",
        "json",
        "plan",
        "--env-suffix",
        &stack.suffix,
    ]);
    run.assert_ok();
    let plan = run.summary()["plan"].as_array().unwrap().clone();
    let subnets = plan
        .iter()
        .filter(|i| i["kind"] == "ec2:subnet" && i["action"] == "create")
        .count();
    assert_eq!(subnets, 6, "{plan:?}");
}
