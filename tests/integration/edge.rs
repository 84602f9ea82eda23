//! The edge steps against the emulator: the ACM certificate (DNS validation, records as
//! outputs), the ALB with its log bucket, blue/green and path target groups, listeners and
//! rules, the WAF web ACL, the wait for the ALB to be active, and a teardown that leaves
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Listener, LoadBalancer, ProtocolEnum, TargetGroup,
};
use serde_json::Value;

use crate::util::*;

fn out_map(stack: &Stack, key: &str) -> BTreeMap<String, String> {
    stack
        .output(key)
        .as_object()
        .unwrap_or_else(|| panic!("output {key} missing or not a map"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Runs a command with the config file and `--output json`.
fn run_cfg(stack: &Stack, cfg: &str, cmd: &str) -> Run {
    stack.run(&[
        "--config",
        cfg,
        "--output",
        "json",
        cmd,
        "--env-suffix",
        &stack.suffix,
    ])
}

/// The messages a run printed for one step.
fn messages(run: &Run, step: &str) -> Vec<String> {
    run.json_lines()
        .into_iter()
        .filter(|l| l["step"] == step)
        .filter_map(|l| l["message"].as_str().map(str::to_string))
        .collect()
}

async fn lb(elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> LoadBalancer {
    elb.describe_load_balancers()
        .names(name)
        .send()
        .await
        .unwrap()
        .load_balancers()[0]
        .clone()
}

async fn tg(elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> TargetGroup {
    elb.describe_target_groups()
        .names(name)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .clone()
}

/// CloudFront's `/api/*` origin: (domain name, protocol policy, HTTPS port, TLS protocols).
async fn api_origin(stack: &Stack) -> (String, String, i32, Vec<String>) {
    let sdk = sdk_config(&stack.endpoint).await;
    let cf = aws_sdk_cloudfront::Client::new(&sdk);
    let d = cf
        .get_distribution()
        .id(stack.output_str("cdn_distribution_id"))
        .send()
        .await
        .unwrap();
    let c = d.distribution().unwrap().distribution_config().unwrap();
    let o = c
        .origins()
        .unwrap()
        .items()
        .iter()
        .find(|o| o.id() == "api-alb")
        .expect("the ALB origin")
        .clone();
    let custom = o.custom_origin_config().expect("a custom origin").clone();
    (
        o.domain_name().to_string(),
        custom.origin_protocol_policy().as_str().to_string(),
        custom.https_port(),
        custom
            .origin_ssl_protocols()
            .map(|p| p.items().iter().map(|i| i.as_str().to_string()).collect())
            .unwrap_or_default(),
    )
}

/// Waits until ACM (moto, after `MOTO_ACM_VALIDATION_WAIT`) has issued the certificate.
async fn wait_issued(endpoint: &str, arn: &str, within: Duration) {
    let sdk = sdk_config(endpoint).await;
    let acm = aws_sdk_acm::Client::new(&sdk);
    let deadline = Instant::now() + within;
    loop {
        let c = acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .unwrap();
        if c.certificate().and_then(|c| c.status()).map(|s| s.as_str()) == Some("ISSUED") {
            return;
        }
        assert!(Instant::now() < deadline, "certificate {arn} never issued");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listeners(elb: &aws_sdk_elasticloadbalancingv2::Client, lb_arn: &str) -> Vec<Listener> {
    elb.describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .unwrap()
        .listeners()
        .to_vec()
}

/// (target group ARN, weight) of a forward action, sorted.
fn weights(a: &Action) -> Vec<(String, i32)> {
    assert_eq!(a.r#type(), Some(&ActionTypeEnum::Forward), "{a:?}");
    let mut v: Vec<(String, i32)> = a
        .forward_config()
        .expect("ForwardConfig")
        .target_groups()
        .iter()
        .map(|t| {
            (
                t.target_group_arn().unwrap().to_string(),
                t.weight().unwrap_or(1),
            )
        })
        .collect();
    v.sort();
    v
}

/// The `verify --output json` check that every routed target group has a service's tasks.
fn served_check(run: &Run) -> Value {
    let v: Value = serde_json::from_str(run.stdout.trim()).expect("verify JSON");
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "ALB → a service behind every target group it routes to")
        .cloned()
        .unwrap_or_else(|| panic!("no such check: {v}"))
}

fn sorted(mut v: Vec<(String, i32)>) -> Vec<(String, i32)> {
    v.sort();
    v
}

/// The ALB, its attributes, target groups and log bucket, as every configuration has them.
async fn check_alb_basics(stack: &Stack, health_path: &str) {
    let sdk = sdk_config(&stack.endpoint).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let s = stack.suffix.as_str();
    let name = format!("alb-{s}");
    let l = lb(&elb, &name).await;
    let arn = l.load_balancer_arn().unwrap();
    assert_eq!(stack.output_str("alb_arn"), arn);
    assert_eq!(stack.output_str("alb_dns_name"), l.dns_name().unwrap());
    assert_eq!(l.scheme().unwrap().as_str(), "internet-facing");
    assert_eq!(l.r#type().unwrap().as_str(), "application");
    assert_eq!(l.ip_address_type().unwrap().as_str(), "ipv4");
    assert_eq!(l.state().and_then(|s| s.code()).unwrap().as_str(), "active");
    assert_eq!(l.vpc_id(), Some(stack.output_str("vpc_id").as_str()));
    let subnets: BTreeSet<String> = l
        .availability_zones()
        .iter()
        .map(|z| z.subnet_id().unwrap().to_string())
        .collect();
    let public: BTreeSet<String> = stack
        .output("public_subnet_ids")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(subnets, public, "the public subnet of every zone");
    assert_eq!(l.security_groups(), [stack.output_str("sg_alb_id")]);
    // CloudWatch dimensions for the alarms step.
    let full = stack.output_str("alb_full_name");
    assert!(full.starts_with(&format!("app/{name}/")), "{full}");
    assert!(
        arn.ends_with(&format!(":loadbalancer/{full}")),
        "{arn} {full}"
    );

    let attrs: BTreeMap<String, String> = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .unwrap()
        .attributes()
        .iter()
        .map(|a| (a.key().unwrap().to_string(), a.value().unwrap().to_string()))
        .collect();
    let bucket = format!("fintech-alblogs-123456789012-{s}");
    assert_eq!(stack.output_str("alb_log_bucket"), bucket);
    assert_eq!(attrs["deletion_protection.enabled"], "false");
    assert_eq!(attrs["access_logs.s3.enabled"], "true");
    assert_eq!(attrs["access_logs.s3.bucket"], bucket);
    assert_eq!(attrs["access_logs.s3.prefix"], "alb");
    let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
    let tags: BTreeMap<&str, &str> = tags.tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags["fintech-infra:stack"], s);
    assert_eq!(tags["Name"], name);
    assert_eq!(tags["Team"], "platform");

    // Blue and green target groups.
    let tgs = out_map(stack, "alb_target_groups");
    let full_names = out_map(stack, "alb_target_group_full_names");
    for color in ["blue", "green"] {
        let t = tg(&elb, &format!("tg-{color}-{s}")).await;
        assert_eq!(tgs[color], t.target_group_arn().unwrap());
        assert_eq!(t.target_type().unwrap().as_str(), "ip");
        assert_eq!(t.protocol(), Some(&ProtocolEnum::Http));
        assert_eq!(t.port(), Some(80), "the first service's port");
        assert_eq!(t.vpc_id(), Some(stack.output_str("vpc_id").as_str()));
        assert_eq!(t.health_check_path(), Some(health_path));
        assert_eq!(t.health_check_interval_seconds(), Some(30));
        assert_eq!(t.unhealthy_threshold_count(), Some(3));
        assert_eq!(t.healthy_threshold_count(), Some(3));
        assert_eq!(t.matcher().and_then(|m| m.http_code()), Some("200-399"));
        let fname = &full_names[color];
        assert!(
            fname.starts_with(&format!("targetgroup/tg-{color}-{s}/")),
            "{fname}"
        );
        assert!(tgs[color].ends_with(&format!(":{fname}")));
    }

    // The log bucket: SSE-S3, public access blocked, ELB may write, versioned, logs and their
    // non-current versions expire.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let enc = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let pab = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let text = policy.to_string();
    assert!(text.contains("arn:aws:iam::127311923021:root"), "{text}");
    assert!(text.contains("logdelivery.elasticloadbalancing.amazonaws.com"));
    assert!(text.contains(&format!("arn:aws:s3:::{bucket}/alb/AWSLogs/123456789012/*")));
    let lc = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(lc.rules()[0].expiration().and_then(|e| e.days()), Some(90));
    // Non-current versions expire too (the bucket is versioned: S3.14 / S3.10).
    assert_eq!(
        lc.rules()[0]
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        Some(30)
    );
    assert_eq!(
        crate::static_tier::versioning(&s3, &bucket)
            .await
            .as_deref(),
        Some("Enabled"),
        "the ALB log bucket is versioned"
    );
    // Every request is TLS only.
    assert!(
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|st| st["Sid"] == "DenyInsecureTransport"),
        "{text}"
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(tags
        .tag_set()
        .iter()
        .any(|t| t.key() == "fintech-infra:stack" && t.value() == s));
}

/// Nothing of the edge steps is left (plus the usual tagging API and EC2 checks).
async fn check_nothing_left(stack: &Stack, cert_arn: Option<&str>) {
    let sdk = sdk_config(&stack.endpoint).await;
    let s = stack.suffix.as_str();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let left: Vec<&str> = lbs
        .load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_name())
        .filter(|n| n.ends_with(s))
        .collect();
    assert!(left.is_empty(), "load balancers left: {left:?}");
    let tgs = elb.describe_target_groups().send().await.unwrap();
    let left: Vec<&str> = tgs
        .target_groups()
        .iter()
        .filter_map(|t| t.target_group_name())
        .filter(|n| n.ends_with(&format!("-{s}")))
        .collect();
    assert!(left.is_empty(), "target groups left: {left:?}");
    let waf = aws_sdk_wafv2::Client::new(&sdk);
    let acls = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    assert!(
        !acls
            .web_acls()
            .iter()
            .any(|a| a.name() == Some(format!("waf-{s}").as_str())),
        "web ACL left"
    );
    if let Some(arn) = cert_arn {
        let acm = aws_sdk_acm::Client::new(&sdk);
        let r = acm.describe_certificate().certificate_arn(arn).send().await;
        assert!(r.is_err(), "certificate {arn} left");
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("fintech-alblogs-123456789012-{s}");
    assert!(
        s3.head_bucket().bucket(&bucket).send().await.is_err(),
        "log bucket left"
    );
    let tagged = remaining_tagged(&sdk, s).await;
    assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
    let ec2 = remaining_ec2(&sdk, s).await;
    assert!(ec2.is_empty(), "left behind in EC2: {ec2:?}");
}

/// The services' ECS load balancer attachments and health check grace period.
async fn check_attached(stack: &Stack, tgs: &BTreeMap<String, String>) {
    let sdk = sdk_config(&stack.endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let s = stack.suffix.as_str();
    let out = ecs
        .describe_services()
        .cluster(format!("cluster-{s}"))
        .services(format!("svc-web-{s}"))
        .services(format!("svc-payment-api-{s}"))
        .send()
        .await
        .unwrap();
    let attached: BTreeMap<String, (String, String, i32)> = out
        .services()
        .iter()
        .map(|svc| {
            let lbs = svc.load_balancers();
            assert_eq!(lbs.len(), 1, "{svc:?}");
            (
                svc.service_name().unwrap().to_string(),
                (
                    lbs[0].target_group_arn().unwrap().to_string(),
                    lbs[0].container_name().unwrap().to_string(),
                    lbs[0].container_port().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(
        attached,
        BTreeMap::from([
            (
                format!("svc-web-{s}"),
                (tgs["blue"].clone(), "web".to_string(), 80)
            ),
            (
                format!("svc-payment-api-{s}"),
                (tgs["payment-api"].clone(), "payment-api".to_string(), 8080)
            ),
        ])
    );
    // moto does not return the grace period: the request carried it.
    if is_faithful(&stack.endpoint) {
        for r in request_log(&stack.endpoint)
            .iter()
            .filter(|r| r.operation == "CreateService" && r.is_from_stack(s))
        {
            assert_eq!(
                r.params["healthCheckGracePeriodSeconds"], 60,
                "{:?}",
                r.params
            );
            assert!(r.params["loadBalancers"][0]["targetGroupArn"].is_string());
        }
    }
}

const TWO_SERVICES: &str = r#"
[waf]
enabled = true
rate_limit = 1500

[[services]]
name = "web"
health_check_path = "/healthz"

[[services]]
name = "payment-api"
path = "/api/*"
cpu = 1024
memory = 2048
port = 8080
"#;

#[test]
fn http_alb_with_path_rule_and_waf_is_built_and_removed_completely() {
    let stack = Stack::new("edge");
    let cfg = stack.config(TWO_SERVICES);
    let cfg = cfg.to_str().unwrap();

    let plan = run_cfg(&stack, cfg, "plan");
    plan.assert_ok();
    assert!(
        messages(&plan, "certificate")
            .iter()
            .any(|m| m.contains("HTTP only")),
        "plan says the ALB serves HTTP only: {}",
        plan.stdout
    );

    let up = run_cfg(&stack, cfg, "up");
    up.assert_ok();
    assert!(
        messages(&up, "certificate")
            .iter()
            .any(|m| m.contains("HTTP only")),
        "{}",
        up.stdout
    );
    let s = stack.suffix.clone();
    block_on(check_alb_basics(&stack, "/healthz"));
    assert_eq!(stack.output("alb_https"), Value::Bool(false));
    assert!(stack.output("certificate_arn").is_null());

    let tgs = out_map(&stack, "alb_target_groups");
    let api_tg_name = fintech_infra::naming::Names::new(&s).service_target_group("payment-api");
    assert!(api_tg_name.len() <= 32);
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let lb_arn = stack.output_str("alb_arn");
        // The path service's target group: its own port and the default health check path.
        let api = tg(&elb, &api_tg_name).await;
        assert_eq!(tgs["payment-api"], api.target_group_arn().unwrap());
        assert_eq!(api.port(), Some(8080));
        assert_eq!(api.health_check_path(), Some("/"));
        assert_eq!(api.target_type().unwrap().as_str(), "ip");
        assert_eq!(
            out_map(&stack, "alb_service_target_groups"),
            BTreeMap::from([
                ("web".to_string(), tgs["blue"].clone()),
                ("payment-api".to_string(), tgs["payment-api"].clone()),
            ])
        );

        // Without a certificate: one HTTP listener forwarding 100/0 to blue/green.
        let ls = listeners(&elb, &lb_arn).await;
        assert_eq!(ls.len(), 1, "{ls:?}");
        let http = &ls[0];
        assert_eq!(http.port(), Some(80));
        assert_eq!(http.protocol(), Some(&ProtocolEnum::Http));
        assert_eq!(
            stack.output_str("alb_listener_arn"),
            http.listener_arn().unwrap()
        );
        assert_eq!(
            weights(&http.default_actions()[0]),
            sorted(vec![(tgs["blue"].clone(), 100), (tgs["green"].clone(), 0)])
        );

        // The path rule for payment-api.
        let rules = elb
            .describe_rules()
            .listener_arn(http.listener_arn().unwrap())
            .send()
            .await
            .unwrap();
        let rules: Vec<_> = rules
            .rules()
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .collect();
        assert_eq!(rules.len(), 1, "{rules:?}");
        let r = rules[0];
        assert_eq!(r.priority(), Some("10"));
        let cond = &r.conditions()[0];
        assert_eq!(cond.field(), Some("path-pattern"));
        let values: Vec<&str> = cond
            .path_pattern_config()
            .map(|p| p.values().iter().map(String::as_str).collect())
            .filter(|v: &Vec<&str>| !v.is_empty())
            .unwrap_or_else(|| cond.values().iter().map(String::as_str).collect());
        assert_eq!(values, ["/api/*"]);
        let action = &r.actions()[0];
        let target = action
            .target_group_arn()
            .map(str::to_string)
            .or_else(|| weights(action).first().map(|t| t.0.clone()));
        assert_eq!(target.as_deref(), Some(tgs["payment-api"].as_str()));

        // WAF: the managed groups and the rate limit, associated with the ALB.
        let waf = aws_sdk_wafv2::Client::new(&sdk);
        let acl_arn = stack.output_str("waf_web_acl_arn");
        let acl = waf
            .get_web_acl()
            .name(format!("waf-{s}"))
            .scope(aws_sdk_wafv2::types::Scope::Regional)
            .id(stack.output_str("waf_web_acl_id"))
            .send()
            .await
            .unwrap();
        let acl = acl.web_acl().unwrap();
        assert_eq!(acl.arn(), acl_arn);
        assert!(acl.default_action().unwrap().allow().is_some());
        let groups: Vec<&str> = acl
            .rules()
            .iter()
            .filter_map(|r| r.statement()?.managed_rule_group_statement())
            .map(|m| {
                assert_eq!(m.vendor_name(), "AWS");
                m.name()
            })
            .collect();
        assert_eq!(
            groups,
            [
                "AWSManagedRulesCommonRuleSet",
                "AWSManagedRulesKnownBadInputsRuleSet"
            ]
        );
        let rate = acl
            .rules()
            .iter()
            .find_map(|r| r.statement()?.rate_based_statement())
            .expect("rate-based rule");
        assert_eq!(rate.limit(), 1500);
        assert_eq!(rate.aggregate_key_type().as_str(), "IP");
        let for_alb = waf
            .get_web_acl_for_resource()
            .resource_arn(&lb_arn)
            .send()
            .await
            .unwrap();
        assert_eq!(for_alb.web_acl().map(|a| a.arn()), Some(acl_arn.as_str()));
    });

    // The ECS services are attached: web to blue, payment-api to its own group.
    block_on(check_attached(&stack, &tgs));

    let again = run_cfg(&stack, cfg, "up");
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");
    assert_eq!(sum["changes"]["created"], 0, "{sum}");
    assert_eq!(sum["changes"]["changed"], 0, "{sum}");

    // A service without its load balancer (e.g. created before the ALB existed): `up`
    // attaches it with one UpdateService.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        ecs.update_service()
            .cluster(format!("cluster-{s}"))
            .service(format!("svc-web-{s}"))
            .set_load_balancers(Some(vec![]))
            .send()
            .await
            .unwrap();
    });
    let attach = run_cfg(&stack, cfg, "up");
    attach.assert_ok();
    let sum = attach.summary();
    assert_eq!(
        sum["aws_calls"]["mutating_ops"],
        serde_json::json!(["ECS:UpdateService"]),
        "{sum}"
    );
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let upd = log
            .iter()
            .rev()
            .find(|r| r.operation == "UpdateService" && r.is_from_stack(&s))
            .unwrap();
        assert_eq!(
            upd.params["loadBalancers"][0]["targetGroupArn"],
            tgs["blue"].as_str()
        );
        assert_eq!(upd.params["healthCheckGracePeriodSeconds"], 60);
    }
    block_on(check_attached(&stack, &tgs));

    // Weights changed to 50/50 with `web` weighted. The first `up` creates web's green twin
    // (same revision) behind the green target group and keeps all traffic on blue, since the
    // twin's tasks are not there yet (AWS-CONTRACTS B8); the next `up` applies the split:
    // one ModifyListener.
    let weighted = TWO_SERVICES.replacen(
        "name = \"web\"\n",
        "name = \"web\"\ndeployment = \"weighted\"\n",
        1,
    );
    let cfg2 = stack.config(&format!(
        "{weighted}\n[alb]\nblue_weight = 50\ngreen_weight = 50\n"
    ));
    let shift = run_cfg(&stack, cfg2.to_str().unwrap(), "up");
    shift.assert_ok();
    let sum = shift.summary();
    let ops: Vec<String> = sum["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    assert!(ops.iter().any(|o| o.ends_with("CreateService")), "{sum}");
    assert!(!ops.iter().any(|o| o.ends_with("ModifyListener")), "{sum}");
    assert!(
        shift
            .stdout
            .contains("the green share (50) starts with the next `up`"),
        "{}",
        shift.stdout
    );
    let split = run_cfg(&stack, cfg2.to_str().unwrap(), "up");
    split.assert_ok();
    let sum = split.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 1, "{sum}");
    assert!(
        sum["aws_calls"]["mutating_ops"][0]
            .as_str()
            .unwrap()
            .ends_with("ModifyListener"),
        "{sum}"
    );
    let twin = format!("svc-web-green-{s}");
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let create = log
            .iter()
            .find(|r| r.operation == "CreateService" && r.params["serviceName"] == twin.as_str())
            .unwrap_or_else(|| panic!("no CreateService of {twin}"));
        assert_eq!(
            create.params["loadBalancers"][0]["targetGroupArn"],
            tgs["green"].as_str()
        );
    }
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &stack.output_str("alb_arn")).await;
        assert_eq!(
            weights(&ls[0].default_actions()[0]),
            sorted(vec![(tgs["blue"].clone(), 50), (tgs["green"].clone(), 50)])
        );
    });
    let names = stack.output("ecs_service_names");
    assert_eq!(names["web-green"], twin.as_str(), "{names}");
    // (This config's `web` may not send to the queue: verify fails on that path alone.)
    let verify = run_cfg(&stack, cfg2.to_str().unwrap(), "verify");
    assert_eq!(served_check(&verify)["result"], "PASS", "{}", verify.stdout);

    // Back to `rolling` and 100/0: the twin goes (scaling first, then the service).
    let cfg = stack.config(TWO_SERVICES);
    let cfg = cfg.to_str().unwrap();
    let back = run_cfg(&stack, cfg, "up");
    back.assert_ok();
    let sum = back.summary();
    let ops = sum["aws_calls"]["mutating_ops"].to_string();
    assert!(ops.contains("DeleteService"), "{sum}");
    // Its running-tasks alarm goes too: it would watch a service that is gone.
    assert!(ops.contains("DeleteAlarms"), "{sum}");
    assert!(
        stack.output("ecs_service_names").get("web-green").is_none(),
        "{}",
        stack.output("ecs_service_names")
    );
    // A listener sending traffic by hand to the green group, which nothing serves now:
    // `verify` fails and names it.
    block_on(async {
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ForwardActionConfig, TargetGroupTuple,
        };
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &stack.output_str("alb_arn")).await;
        let tuple = |tg: &str, w: i32| {
            TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(w)
                .build()
        };
        elb.modify_listener()
            .listener_arn(ls[0].listener_arn().unwrap())
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .forward_config(
                        ForwardActionConfig::builder()
                            .target_groups(tuple(&tgs["blue"], 50))
                            .target_groups(tuple(&tgs["green"], 50))
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    let broken = run_cfg(&stack, cfg, "verify");
    assert_eq!(broken.code, 1, "{}", broken.stdout);
    let check = served_check(&broken);
    let reason = check["reason"].as_str().unwrap_or_default();
    assert_eq!(check["result"], "FAIL", "{check}");
    assert!(
        reason.contains(&format!("tg-green-{s}")) && reason.contains("no ECS service registers"),
        "{check}"
    );
    // `up` puts the configured weights back.
    run_cfg(&stack, cfg, "up").assert_ok();

    // WAF switched off in the config: `down` still removes the recorded web ACL.
    let no_waf = stack.config(&TWO_SERVICES.replace("enabled = true", "enabled = false"));
    let down = run_cfg(&stack, no_waf.to_str().unwrap(), "down");
    down.assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let ops: Vec<&str> = log
            .iter()
            .filter(|r| r.is_from_stack(&s) && r.is_mutating())
            .map(|r| r.operation.as_str())
            .collect();
        let pos = |op: &str| {
            ops.iter()
                .rposition(|o| *o == op)
                .unwrap_or_else(|| panic!("{op} not sent: {ops:?}"))
        };
        assert!(pos("DisassociateWebACL") < pos("DeleteWebACL"));
        assert!(pos("DeleteListener") < pos("DeleteTargetGroup"));
        assert!(pos("DeleteLoadBalancer") < pos("DeleteBucket"));
        assert!(pos("DeleteLoadBalancer") < pos("DeleteSubnet"));
    }
    block_on(check_nothing_left(&stack, None));
}

/// With `[certificate] domain`: ACM's certificate is requested with DNS validation and its
/// records published; while it awaits validation the ALB serves HTTP (AWS refuses an unissued
/// certificate on a listener), and the `up` after it is issued switches to HTTPS with the TLS
/// 1.3 policy, weighted 80/20 by the bluegreen preset, and a 301 redirect from HTTP. The
/// certificate also names `origin.<domain>`, the name CloudFront's `/api/*` origin connects to
/// over HTTPS (TLS 1.2) once the ALB serves it (plain HTTP to the ALB's name before), and the
/// CNAME it needs is an output. Changing `alb.origin_domain` needs a new certificate (ACM's
/// names are immutable): the ALB keeps the issued one and CloudFront its origin until the
/// new one is issued, then both switch. On an emulator of its own at a small time scale,
/// which also shows `up` waiting for the ALB.
#[test]
fn domain_certificate_switches_the_alb_to_https_once_issued() {
    // moto issues a DNS-validated certificate this many seconds after the request.
    const ISSUE_AFTER: u64 = 5;
    let emu = Emulator::start_with_env(
        &["--time-scale", "0.005"],
        &[("MOTO_ACM_VALIDATION_WAIT", &ISSUE_AFTER.to_string())],
    );
    assert!(
        emu.is_faithful(),
        "the dedicated emulator must be the project's own"
    );
    let stack = Stack::on(&emu.endpoint, "tls");
    let s = stack.suffix.clone();
    let cfg = stack.config(
        "preset = \"bluegreen\"\n[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [\"www.example.com\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let up = run_cfg(&stack, cfg, "up");
    up.assert_ok();

    // Requested with DNS validation, tagged, with an idempotency token.
    let log = request_log(&emu.endpoint);
    let req = log
        .iter()
        .find(|r| r.operation == "RequestCertificate" && r.is_from_stack(&s))
        .expect("RequestCertificate sent");
    assert_eq!(req.params["DomainName"], "app.example.com");
    assert_eq!(req.params["ValidationMethod"], "DNS");
    assert_eq!(
        req.params["SubjectAlternativeNames"],
        serde_json::json!(["www.example.com", "origin.app.example.com"]),
        "the ALB origin name is on the certificate"
    );
    assert!(req.params["IdempotencyToken"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(req.params["Tags"]
        .to_string()
        .contains("fintech-infra:stack"));

    let cert_arn = stack.output_str("certificate_arn");
    let records = stack.output("certificate_validation_records");
    let records = records.as_array().expect("validation records");
    assert!(!records.is_empty());
    for r in records {
        assert_eq!(r["type"], "CNAME", "{r}");
        assert!(r["name"].as_str().unwrap().contains("example.com"), "{r}");
        assert!(!r["value"].as_str().unwrap().is_empty(), "{r}");
    }
    let outputs = stack.run(&["outputs", "--json", "--env-suffix", &s]);
    outputs.assert_ok();
    assert!(outputs.stdout.contains("certificate_validation_records"));
    let msgs = messages(&up, "certificate");
    assert!(
        msgs.iter()
            .any(|m| m.contains("PENDING_VALIDATION") && m.contains("CNAME")),
        "{msgs:?}"
    );

    // The listeners were created while the ALB provisioned (AWS allows it; the console's
    // wizard does the same), and `up` waited for it to be active before it went on to the
    // services.
    let events = events(&emu.endpoint);
    let lb_arn = stack.output_str("alb_arn");
    let active_at = events
        .iter()
        .find(|e| {
            e["resource_type"] == "load-balancer"
                && e["id"] == lb_arn.as_str()
                && e["to"] == "active"
        })
        .and_then(|e| e["ts"].as_f64())
        .expect("load balancer became active");
    let create_lb = log
        .iter()
        .find(|r| r.operation == "CreateLoadBalancer" && r.is_from_stack(&s))
        .unwrap();
    let first_listener = log
        .iter()
        .find(|r| r.operation == "CreateListener" && r.is_from_stack(&s))
        .expect("CreateListener sent");
    assert!(
        active_at - create_lb.ts >= 135.0 * 0.005 * 0.9,
        "the ALB took its scaled provisioning time"
    );
    assert!(
        first_listener.ts < active_at,
        "listener created at {}, after the ALB was active at {active_at}: it need not wait",
        first_listener.ts
    );
    let first_service = log
        .iter()
        .find(|r| r.operation == "CreateService" && r.is_from_stack(&s))
        .expect("CreateService sent");
    assert!(
        first_service.ts >= active_at,
        "service created at {} before the ALB was active at {active_at}",
        first_service.ts
    );

    // The origin name: covered by the certificate, its CNAME to the ALB an output at once (to
    // create with the validation records); CloudFront uses plain HTTP to the ALB's own name
    // while the ALB has no HTTPS listener.
    let alb_dns = stack.output_str("alb_dns_name");
    assert_eq!(
        stack.output_str("certificate_origin_domain"),
        "origin.app.example.com"
    );
    assert_eq!(
        stack.output("alb_origin_dns_record"),
        serde_json::json!({"name": "origin.app.example.com", "type": "CNAME", "value": alb_dns})
    );
    let (domain, policy, _, _) = block_on(api_origin(&stack));
    assert_eq!(
        (domain.as_str(), policy.as_str()),
        (alb_dns.as_str(), "http-only")
    );

    // Pending validation: HTTP only, forwarding 80/20.
    assert_eq!(stack.output("alb_https"), Value::Bool(false));
    let tgs = out_map(&stack, "alb_target_groups");
    let want = sorted(vec![(tgs["blue"].clone(), 80), (tgs["green"].clone(), 20)]);
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &lb_arn).await;
        assert_eq!(ls.len(), 1);
        assert_eq!(weights(&ls[0].default_actions()[0]), want);
    });

    // Once ACM has issued it, `up` adds HTTPS and turns HTTP into a redirect.
    // (The user creates the DNS records; moto issues the certificate ISSUE_AFTER seconds
    // after the request.)
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let acm = aws_sdk_acm::Client::new(&sdk);
        let deadline = Instant::now() + Duration::from_secs(ISSUE_AFTER + 30);
        loop {
            let c = acm
                .describe_certificate()
                .certificate_arn(&cert_arn)
                .send()
                .await
                .unwrap();
            if c.certificate().and_then(|c| c.status()).map(|s| s.as_str()) == Some("ISSUED") {
                break;
            }
            assert!(Instant::now() < deadline, "certificate never issued");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let up2 = run_cfg(&stack, cfg, "up");
    up2.assert_ok();
    assert_eq!(
        stack.output("alb_https"),
        Value::Bool(true),
        "{}",
        up2.stdout
    );
    assert_eq!(stack.output_str("certificate_status"), "ISSUED");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &lb_arn).await;
        assert_eq!(ls.len(), 2, "{ls:?}");
        let https = ls
            .iter()
            .find(|l| l.port() == Some(443))
            .expect("HTTPS listener");
        assert_eq!(https.protocol(), Some(&ProtocolEnum::Https));
        assert_eq!(
            https.ssl_policy(),
            Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
        );
        assert_eq!(
            https.certificates()[0].certificate_arn(),
            Some(cert_arn.as_str())
        );
        assert_eq!(weights(&https.default_actions()[0]), want);
        assert_eq!(
            stack.output_str("alb_listener_arn"),
            https.listener_arn().unwrap()
        );
        let http = ls
            .iter()
            .find(|l| l.port() == Some(80))
            .expect("HTTP listener");
        let a = &http.default_actions()[0];
        assert_eq!(a.r#type(), Some(&ActionTypeEnum::Redirect));
        let r = a.redirect_config().unwrap();
        assert_eq!(r.protocol(), Some("HTTPS"));
        assert_eq!(r.port(), Some("443"));
        assert_eq!(r.status_code().unwrap().as_str(), "HTTP_301");
    });
    block_on(check_alb_basics(&stack, "/"));
    // CloudFront now reaches the ALB over HTTPS by the name its certificate covers.
    assert_eq!(
        block_on(api_origin(&stack)),
        (
            "origin.app.example.com".to_string(),
            "https-only".to_string(),
            443,
            vec!["TLSv1.2".to_string()]
        )
    );
    // And `verify` proves that hop: HTTPS, by a name the listener's certificate covers.
    let v = crate::verify::assert_verifies(&stack);
    let hop = v
        .iter()
        .find(|c| c["path"] == "CloudFront → ALB (/api/*)")
        .expect("the CloudFront → ALB check");
    assert!(
        hop["reason"]
            .as_str()
            .is_some_and(|r| r.contains("HTTPS to origin.app.example.com")),
        "{hop}"
    );

    let again = run_cfg(&stack, cfg, "up");
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");

    // Another origin name, not on the certificate: a new certificate is requested; until it
    // is issued the ALB keeps the old one (no fall back to HTTP) and CloudFront its origin.
    let cfg2 = stack.config(
        "preset = \"bluegreen\"\n[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [\"www.example.com\"]\n[alb]\norigin_domain = \"api.example.com\"\n",
    );
    let cfg2 = cfg2.to_str().unwrap();
    let up3 = run_cfg(&stack, cfg2, "up");
    up3.assert_ok();
    let log = request_log(&emu.endpoint);
    let reqs: Vec<_> = log
        .iter()
        .filter(|r| r.operation == "RequestCertificate" && r.is_from_stack(&s))
        .collect();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        reqs[1].params["SubjectAlternativeNames"],
        serde_json::json!(["www.example.com", "api.example.com"])
    );
    let new_arn = stack.output_str("certificate_pending_arn");
    assert_ne!(new_arn, cert_arn);
    assert_eq!(stack.output_str("certificate_arn"), cert_arn);
    assert_eq!(stack.output_str("certificate_status"), "ISSUED");
    assert_eq!(stack.output("alb_https"), Value::Bool(true));
    assert!(stack.output("certificate_origin_domain").is_null());
    assert_eq!(
        stack.output("alb_origin_dns_record")["name"],
        "api.example.com"
    );
    let msgs = messages(&up3, "certificate");
    assert!(
        msgs.iter()
            .any(|m| m.contains("cannot change") && m.contains("api.example.com")),
        "{msgs:?}"
    );
    let ops = up3.summary()["aws_calls"]["mutating_ops"].to_string();
    assert!(ops.contains("RequestCertificate"), "{ops}");
    assert!(!ops.contains("UpdateDistribution"), "{ops}");
    assert!(!ops.contains("Listener"), "{ops}");
    assert_eq!(
        block_on(api_origin(&stack)).0,
        "origin.app.example.com",
        "CloudFront keeps its origin meanwhile"
    );
    // Issued: the ALB and CloudFront switch over.
    block_on(wait_issued(
        &emu.endpoint,
        &new_arn,
        Duration::from_secs(ISSUE_AFTER + 30),
    ));
    let up4 = run_cfg(&stack, cfg2, "up");
    up4.assert_ok();
    assert_eq!(stack.output_str("certificate_arn"), new_arn);
    assert!(stack.output("certificate_pending_arn").is_null());
    assert_eq!(
        stack.output_str("certificate_origin_domain"),
        "api.example.com"
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &lb_arn).await;
        let https = ls.iter().find(|l| l.port() == Some(443)).expect("HTTPS");
        assert_eq!(
            https.certificates()[0].certificate_arn(),
            Some(new_arn.as_str())
        );
    });
    let (domain, policy, _, tls) = block_on(api_origin(&stack));
    assert_eq!(
        (domain.as_str(), policy.as_str(), tls),
        ("api.example.com", "https-only", vec!["TLSv1.2".to_string()])
    );
    let again = run_cfg(&stack, cfg2, "up");
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(
        sum["aws_calls"]["mutating"], 0,
        "up after the switch mutated: {sum}"
    );
    let cfg = cfg2;

    run_cfg(&stack, cfg, "down").assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    let log = request_log(&emu.endpoint);
    let del = log
        .iter()
        .find(|r| r.operation == "DeleteCertificate" && r.status == 200)
        .expect("certificate deleted");
    let lb_gone = log
        .iter()
        .rposition(|r| r.operation == "DeleteLoadBalancer")
        .unwrap();
    assert!(del.ts >= log[lb_gone].ts);
    block_on(check_nothing_left(&stack, Some(&cert_arn)));
    block_on(check_nothing_left(&stack, Some(&new_arn)));
}

/// With `[certificate] arn` (here a certificate imported into ACM): `alb.origin_domain` is
/// required (exit 2 before any AWS call without it) and must be covered by the certificate
/// (a clear error naming its names otherwise); the HTTPS listener serves it at once,
/// CloudFront reaches the ALB over HTTPS by the origin name, and `down` leaves the
/// certificate alone, as the user owns it.
#[test]
fn configured_certificate_arn_is_served_and_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, crt) = (dir.path().join("key.pem"), dir.path().join("crt.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=imported.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: openssl is not available to make a certificate");
        return;
    }
    let stack = Stack::new("cert");
    let cert_arn = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let acm = aws_sdk_acm::Client::new(&sdk);
        acm.import_certificate()
            .certificate(aws_sdk_acm::primitives::Blob::new(
                std::fs::read(&crt).unwrap(),
            ))
            .private_key(aws_sdk_acm::primitives::Blob::new(
                std::fs::read(&key).unwrap(),
            ))
            .send()
            .await
            .unwrap()
            .certificate_arn()
            .unwrap()
            .to_string()
    });
    let cfg = stack.config(&format!("[certificate]\narn = \"{cert_arn}\"\n"));
    let run = run_cfg(&stack, cfg.to_str().unwrap(), "up");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("alb.origin_domain"), "{}", run.stderr);
    assert!(!stack.state_path().exists());
    let cfg = stack.config(&format!(
        "[certificate]\narn = \"{cert_arn}\"\n[alb]\norigin_domain = \"origin.example.com\"\n"
    ));
    let run = run_cfg(&stack, cfg.to_str().unwrap(), "up");
    assert_ne!(run.code, 0);
    assert!(
        run.stdout
            .contains("none of which covers alb.origin_domain origin.example.com")
            && run.stdout.contains("imported.example.com"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let cfg = stack.config(&format!(
        "[certificate]\narn = \"{cert_arn}\"\n[alb]\norigin_domain = \"imported.example.com\"\n"
    ));
    let cfg = cfg.to_str().unwrap();
    run_cfg(&stack, cfg, "up").assert_ok();
    assert_eq!(stack.output("alb_https"), Value::Bool(true));
    let (domain, policy, _, _) = block_on(api_origin(&stack));
    assert_eq!(
        (domain.as_str(), policy.as_str()),
        ("imported.example.com", "https-only")
    );
    assert_eq!(
        stack.output("alb_origin_dns_record"),
        serde_json::json!({
            "name": "imported.example.com",
            "type": "CNAME",
            "value": stack.output_str("alb_dns_name")
        })
    );
    assert_eq!(stack.output_str("certificate_arn"), cert_arn);
    assert!(
        !stack.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "acm:certificate"),
        "a configured certificate is not the stack's resource"
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let ls = listeners(&elb, &stack.output_str("alb_arn")).await;
        let https = ls.iter().find(|l| l.port() == Some(443)).expect("HTTPS");
        assert_eq!(
            https.certificates()[0].certificate_arn(),
            Some(cert_arn.as_str())
        );
    });
    let again = run_cfg(&stack, cfg, "up");
    again.assert_ok();
    assert_eq!(again.summary()["aws_calls"]["mutating"], 0);
    run_cfg(&stack, cfg, "down").assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let acm = aws_sdk_acm::Client::new(&sdk);
        acm.describe_certificate()
            .certificate_arn(&cert_arn)
            .send()
            .await
            .expect("the configured certificate survives down");
        acm.delete_certificate()
            .certificate_arn(&cert_arn)
            .send()
            .await
            .unwrap();
    });
    block_on(check_nothing_left(&stack, None));
}
