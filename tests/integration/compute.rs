//! The compute tier end to end: the ECS cluster (Container Insights, FARGATE and FARGATE_SPOT
//! with the default strategy, the Cloud Map namespace) and per service the log group, task
//! definition, ECS service, Cloud Map registration and auto scaling. Each test: up, describe
//! everything, a second up makes no mutating call, down leaves nothing.
//!
//! moto's DescribeServices leaves out the capacity provider strategy, the deployment circuit
//! breaker and other CreateService fields: the tests read them from the CreateService request
//! in the emulator's request log (skipped against an endpoint without one).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::util::*;

/// What one service should look like.
struct Expect {
    name: &'static str,
    cpu: &'static str,
    memory: &'static str,
    /// (provider, base, weight), sorted by provider.
    strategy: Vec<(&'static str, i64, i64)>,
    /// Whether the task gets the database credentials.
    database: bool,
}

fn strategy_of(v: &Value) -> Vec<(String, i64, i64)> {
    let mut s: Vec<(String, i64, i64)> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["capacityProvider"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                i["base"].as_i64().unwrap_or(0),
                i["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    s.sort();
    s
}

fn owned(v: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    v.iter().map(|(p, b, w)| (p.to_string(), *b, *w)).collect()
}

/// The stack's state outputs as a JSON object.
fn outputs(stack: &Stack) -> Value {
    stack.state()["outputs"].clone()
}

fn out_str(o: &Value, key: &str) -> String {
    o[key]
        .as_str()
        .unwrap_or_else(|| panic!("output {key} missing: {o}"))
        .to_string()
}

async fn check_cluster(sdk: &SdkConfig, stack: &Stack, default_strategy: &[(&str, i64, i64)]) {
    let o = outputs(stack);
    let name = out_str(&o, "ecs_cluster_name");
    assert_eq!(name, format!("cluster-{}", stack.suffix));
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let out = ecs
        .describe_clusters()
        .clusters(&name)
        .include(aws_sdk_ecs::types::ClusterField::Settings)
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .send()
        .await
        .unwrap();
    let c = &out.clusters()[0];
    assert_eq!(c.status(), Some("ACTIVE"));
    assert_eq!(c.cluster_arn(), o["ecs_cluster_arn"].as_str());
    let insights = c
        .settings()
        .iter()
        .find(|s| s.name().map(|n| n.as_str()) == Some("containerInsights"))
        .and_then(|s| s.value());
    assert_eq!(insights, Some("enabled"), "Container Insights");
    let mut providers = c.capacity_providers().to_vec();
    providers.sort();
    assert_eq!(providers, ["FARGATE", "FARGATE_SPOT"]);
    let mut strategy: Vec<(String, i64, i64)> = c
        .default_capacity_provider_strategy()
        .iter()
        .map(|i| {
            (
                i.capacity_provider().to_string(),
                i64::from(i.base()),
                i64::from(i.weight()),
            )
        })
        .collect();
    strategy.sort();
    assert_eq!(
        strategy,
        owned(default_strategy),
        "cluster default strategy"
    );
    assert!(
        c.tags()
            .iter()
            .any(|t| t.key() == Some("fintech-infra:stack") && t.value() == Some(&stack.suffix)),
        "cluster tags"
    );
}

/// The CreateService request the emulator received for `service_name`.
fn create_service_request(stack: &Stack, service_name: &str) -> Option<Value> {
    if !is_faithful(&stack.endpoint) {
        return None;
    }
    let req = request_log(&stack.endpoint)
        .into_iter()
        .find(|r| {
            r.is_from_stack(&stack.suffix)
                && r.service == "ecs"
                && r.operation == "CreateService"
                && r.status == 200
                && r.params["serviceName"] == service_name
        })
        .unwrap_or_else(|| panic!("no CreateService request for {service_name}"));
    Some(req.params)
}

/// Checks one service's log group, task definition, ECS service and scaling; returns its
/// ECS service's Cloud Map registry ARNs.
async fn check_service(sdk: &SdkConfig, stack: &Stack, e: &Expect) -> Vec<String> {
    let s = &stack.suffix;
    let o = outputs(stack);
    let cluster = out_str(&o, "ecs_cluster_name");
    let log_group = format!("/ecs/{}-{s}", e.name);
    let family = format!("task-{}-{s}", e.name);
    let svc_name = format!("svc-{}-{s}", e.name);
    assert_eq!(o["ecs_log_groups"][e.name], log_group.as_str());
    assert_eq!(o["ecs_service_names"][e.name], svc_name.as_str());

    // Log group: retention from config, encrypted with the stack key.
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(&log_group)
        .send()
        .await
        .unwrap();
    let g = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(log_group.as_str()))
        .unwrap_or_else(|| panic!("log group {log_group} missing"));
    assert_eq!(g.retention_in_days(), Some(30), "{log_group} retention");
    assert_eq!(g.kms_key_id(), o["kms_key_arn"].as_str(), "{log_group} key");

    // Task definition.
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let td_arn = o["ecs_task_definition_arns"][e.name]
        .as_str()
        .unwrap()
        .to_string();
    let td = ecs
        .describe_task_definition()
        .task_definition(&td_arn)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    assert_eq!(td.family(), Some(family.as_str()));
    assert_eq!(td.status().map(|s| s.as_str()), Some("ACTIVE"));
    assert_eq!(
        td.requires_compatibilities()
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["FARGATE"]
    );
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(td.cpu(), Some(e.cpu), "{family} cpu");
    assert_eq!(td.memory(), Some(e.memory), "{family} memory");
    assert_eq!(
        td.execution_role_arn(),
        o["iam_task_execution_role_arn"].as_str()
    );
    assert_eq!(td.task_role_arn(), o["iam_task_role_arns"][e.name].as_str());
    let c = &td.container_definitions()[0];
    assert_eq!(c.image(), Some("public.ecr.aws/nginx/nginx:stable"));
    // Tracing (on by default): the collector sidecar, read-only, the app told where it is.
    let collector = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("otel-collector"))
        .unwrap_or_else(|| panic!("{family}: no otel-collector sidecar"));
    assert_eq!(
        collector.image(),
        Some(fintech_infra::config::COLLECTOR_IMAGE)
    );
    assert_eq!(collector.readonly_root_filesystem(), Some(true));
    assert_eq!(collector.essential(), Some(false));
    let app_env: BTreeMap<&str, &str> = c
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap(), kv.value().unwrap()))
        .collect();
    assert_eq!(
        app_env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        Some(&"http://127.0.0.1:4317")
    );
    assert_eq!(app_env.get("OTEL_SERVICE_NAME"), Some(&e.name));
    let log = c.log_configuration().expect("log configuration");
    assert_eq!(log.log_driver().as_str(), "awslogs");
    let opts = log.options().unwrap();
    assert_eq!(
        opts.get("awslogs-group").map(String::as_str),
        Some(log_group.as_str())
    );
    assert_eq!(opts.get("awslogs-region").map(String::as_str), Some(REGION));
    assert_eq!(
        opts.get("awslogs-stream-prefix").map(String::as_str),
        Some(e.name)
    );
    // The DB credentials come through `secrets` from the database's secret; nothing in
    // `environment` carries the password.
    let secret_arn = out_str(&o, "db_secret_arn");
    let secrets: BTreeMap<&str, &str> = c
        .secrets()
        .iter()
        .map(|s| (s.name(), s.value_from()))
        .collect();
    if e.database {
        assert!(!secrets.is_empty(), "{family}: no secrets");
        assert!(
            secrets.values().all(|v| v.starts_with(&secret_arn)),
            "{family}: {secrets:?}"
        );
        assert!(
            secrets
                .values()
                .any(|v| *v == format!("{secret_arn}:password::")),
            "{family}: password key {secrets:?}"
        );
    } else {
        assert!(secrets.is_empty(), "{family} has no database permission");
    }
    let password = secret_password(sdk, &secret_arn).await;
    for kv in c.environment() {
        let (k, v) = (kv.name().unwrap_or(""), kv.value().unwrap_or(""));
        assert!(
            !k.to_ascii_uppercase().contains("PASSWORD") && !k.contains("SECRET"),
            "{family}: environment {k}"
        );
        if let Some(p) = &password {
            assert!(
                !v.contains(p.as_str()),
                "{family}: password in environment {k}"
            );
        }
    }

    // The ECS service.
    let out = ecs
        .describe_services()
        .cluster(&cluster)
        .services(&svc_name)
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    let svc = &out.services()[0];
    assert_eq!(svc.status(), Some("ACTIVE"));
    assert_eq!(svc.desired_count(), 2, "{svc_name} desired count");
    assert_eq!(svc.task_definition(), Some(td_arn.as_str()));
    let net = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .expect("awsvpc configuration");
    let mut subnets = net.subnets().to_vec();
    subnets.sort();
    let mut private: Vec<String> = o["private_subnet_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    private.sort();
    assert_eq!(
        subnets, private,
        "{svc_name}: the private subnets of every zone"
    );
    // The service's own group, not one shared with the other services.
    assert_eq!(
        net.security_groups(),
        [out_str(&o["sg_service_ids"], e.name)],
        "{svc_name} security group"
    );
    assert_eq!(net.assign_public_ip().map(|a| a.as_str()), Some("DISABLED"));
    assert!(!svc.enable_execute_command());
    assert!(svc
        .tags()
        .iter()
        .any(|t| t.key() == Some("fintech-infra:stack") && t.value() == Some(s)));
    if let Some(req) = create_service_request(stack, &svc_name) {
        assert_eq!(
            strategy_of(&req["capacityProviderStrategy"]),
            owned(&e.strategy),
            "{svc_name} strategy"
        );
        assert!(req.get("launchType").is_none(), "{svc_name}: {req}");
        assert_eq!(
            req["deploymentConfiguration"]["deploymentCircuitBreaker"],
            json!({"enable": true, "rollback": true})
        );
        assert_eq!(req["enableExecuteCommand"], false);
        assert_eq!(req["availabilityZoneRebalancing"], "ENABLED");
        assert_eq!(req["desiredCount"], 2);
        assert_eq!(
            req["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
            "DISABLED"
        );
        // The ALB serves the first service (and any with a `path`): its target group and the
        // grace period, which is only valid with a load balancer.
        let routed = o["alb_service_target_groups"]
            .get(e.name)
            .and_then(Value::as_str);
        match routed {
            Some(tg) => {
                assert_eq!(req["loadBalancers"][0]["targetGroupArn"], tg, "{svc_name}");
                assert_eq!(req["loadBalancers"][0]["containerName"], e.name);
                assert_eq!(req["healthCheckGracePeriodSeconds"], 60, "{svc_name}");
            }
            None => {
                assert!(req.get("loadBalancers").is_none(), "{svc_name}: {req}");
                assert!(req.get("healthCheckGracePeriodSeconds").is_none());
            }
        }
    }

    // Auto scaling: 2..10 tasks, tracking CPU at 70 % and memory at 75 %.
    let aas = aws_sdk_applicationautoscaling::Client::new(sdk);
    use aws_sdk_applicationautoscaling::types::ServiceNamespace;
    let resource_id = format!("service/{cluster}/{svc_name}");
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource_id)
        .send()
        .await
        .unwrap();
    let t = &targets.scalable_targets()[0];
    assert_eq!(
        (t.min_capacity(), t.max_capacity()),
        (2, 10),
        "{resource_id}"
    );
    assert_eq!(t.scalable_dimension().as_str(), "ecs:service:DesiredCount");
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource_id)
        .send()
        .await
        .unwrap();
    // The predefined CPU and memory policies (a backlog or custom metric policy is checked
    // where the config asks for one).
    let mut tracked: Vec<(String, f64)> = policies
        .scaling_policies()
        .iter()
        .filter_map(|p| {
            assert_eq!(p.policy_type().as_str(), "TargetTrackingScaling");
            let c = p.target_tracking_scaling_policy_configuration().unwrap();
            Some((
                c.predefined_metric_specification()?
                    .predefined_metric_type()
                    .as_str()
                    .to_string(),
                c.target_value(),
            ))
        })
        .collect();
    tracked.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        tracked,
        [
            ("ECSServiceAverageCPUUtilization".to_string(), 70.0),
            ("ECSServiceAverageMemoryUtilization".to_string(), 75.0)
        ]
    );

    svc.service_registries()
        .iter()
        .filter_map(|r| r.registry_arn().map(str::to_string))
        .collect()
}

/// The database password, to prove it appears nowhere in a task definition's environment.
async fn secret_password(sdk: &SdkConfig, arn: &str) -> Option<String> {
    let sm = aws_sdk_secretsmanager::Client::new(sdk);
    let v = sm.get_secret_value().secret_id(arn).send().await.ok()?;
    let json: Value = serde_json::from_str(v.secret_string()?).ok()?;
    json["password"].as_str().map(str::to_string)
}

/// Runs a second `up` and asserts it changed nothing.
fn assert_second_up_is_idempotent(stack: &Stack, extra: &[&str]) {
    let again = stack.up(extra);
    again.assert_ok();
    let s = again.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    assert_eq!(s["changes"]["changed"], 0, "{s}");
}

/// After `down`: no cluster, service, task definition, log group, scalable target or Cloud
/// Map resource of the stack is left, and the tagging API lists nothing.
async fn check_nothing_left(sdk: &SdkConfig, stack: &Stack, services: &[&str]) {
    let s = &stack.suffix;
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let cluster = format!("cluster-{s}");
    let clusters = ecs.list_clusters().send().await.unwrap();
    for arn in clusters.cluster_arns() {
        if arn.ends_with(&format!("/{cluster}")) {
            assert!(!ecs_is_live(sdk, arn).await, "cluster {arn} left");
            // moto keeps INACTIVE clusters: their services must be INACTIVE too.
            let listed = ecs.list_services().cluster(arn).send().await.unwrap();
            for svc in listed.service_arns() {
                assert!(!ecs_is_live(sdk, svc).await, "service {svc} left");
            }
        }
    }
    let aas = aws_sdk_applicationautoscaling::Client::new(sdk);
    let targets = aas
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    for t in targets.scalable_targets() {
        assert!(
            !t.resource_id().starts_with(&format!("service/{cluster}/")),
            "scalable target {} left",
            t.resource_id()
        );
    }
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    for p in policies.scaling_policies() {
        assert!(
            !p.resource_id().starts_with(&format!("service/{cluster}/")),
            "scaling policy {} left",
            p.policy_name()
        );
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/ecs/")
        .send()
        .await
        .unwrap();
    for g in groups.log_groups() {
        let n = g.log_group_name().unwrap_or_default();
        assert!(!n.ends_with(&format!("-{s}")), "log group {n} left");
    }
    for svc in services {
        let family = format!("task-{svc}-{s}");
        for status in [
            aws_sdk_ecs::types::TaskDefinitionStatus::Active,
            aws_sdk_ecs::types::TaskDefinitionStatus::Inactive,
        ] {
            let l = ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(status.clone())
                .send()
                .await
                .unwrap();
            assert!(
                l.task_definition_arns().is_empty(),
                "{family} {status:?}: {:?}",
                l.task_definition_arns()
            );
        }
    }
    // Cloud Map is not covered by the tagging API: namespaces carrying the stack tag.
    let sd = aws_sdk_servicediscovery::Client::new(sdk);
    let namespaces = sd.list_namespaces().send().await.unwrap();
    for ns in namespaces.namespaces() {
        let tags = sd
            .list_tags_for_resource()
            .resource_arn(ns.arn().unwrap_or_default())
            .send()
            .await;
        if let Ok(t) = tags {
            assert!(
                !t.tags()
                    .iter()
                    .any(|t| t.key() == "fintech-infra:stack" && t.value() == s.as_str()),
                "namespace {:?} left",
                ns.id()
            );
        }
    }
    let tagged = remaining_tagged(sdk, s).await;
    assert!(tagged.is_empty(), "still tagged: {tagged:?}");
    assert!(!stack.state_path().exists(), "state file left");
}

/// The Cloud Map service IDs (by name) carrying the stack tag.
async fn discovery_services(sdk: &SdkConfig, namespace_id: &str) -> BTreeMap<String, String> {
    let sd = aws_sdk_servicediscovery::Client::new(sdk);
    let mut found = BTreeMap::new();
    for summary in sd.list_services().send().await.unwrap().services() {
        let id = summary.id().unwrap_or_default();
        let Ok(full) = sd.get_service().id(id).send().await else {
            continue;
        };
        let svc = full.service.unwrap();
        if svc.namespace_id() == Some(namespace_id) {
            found.insert(
                svc.name().unwrap_or_default().to_string(),
                svc.arn().unwrap_or_default().to_string(),
            );
            let records = svc.dns_config().unwrap().dns_records();
            assert_eq!(records.len(), 1);
            assert_eq!(records[0].r#type().as_str(), "A");
        }
    }
    found
}

#[test]
fn default_web_service_runs_on_the_cluster_then_down_removes_it() {
    let stack = Stack::new("cmp");
    stack.up(&[]).assert_ok();
    let sdk = block_on(sdk_config(&stack.endpoint));
    // The default split: no FARGATE base, FARGATE : SPOT = 1 : 2 (at least half on Spot).
    let web_strategy = vec![("FARGATE", 0, 1), ("FARGATE_SPOT", 0, 2)];
    block_on(check_cluster(&sdk, &stack, &web_strategy));
    let registries = block_on(check_service(
        &sdk,
        &stack,
        &Expect {
            name: "web",
            cpu: "2048",
            memory: "4096",
            strategy: web_strategy.clone(),
            database: true,
        },
    ));
    assert!(registries.is_empty(), "no namespace, no registration");
    assert!(outputs(&stack).get("cloudmap_namespace_id").is_none());

    assert_second_up_is_idempotent(&stack, &[]);

    // Drift from the config: a new image and scaling target, longer log retention, a bigger
    // Spot share. Changed in place (a new task definition revision, UpdateService, the
    // policy and the retention), nothing created.
    let changed = stack.config(
        r#"
[logs]
retention_days = 90

[[services]]
name = "web"
image = "public.ecr.aws/nginx/nginx:1.27"
cpu_target = 60
capacity = { fargate_base = 1, fargate_weight = 1, spot_weight = 3 }
"#,
    );
    let changed = changed.to_str().unwrap();
    let run = stack.up(&["--config", changed]);
    run.assert_ok();
    let s = run.summary();
    assert_eq!(s["changes"]["created"], 0, "{s}");
    let ops: Vec<&str> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for op in [
        "ECS:RegisterTaskDefinition",
        "ECS:UpdateService",
        "ECS:PutClusterCapacityProviders",
        "Application Auto Scaling:PutScalingPolicy",
        "CloudWatch Logs:PutRetentionPolicy",
    ] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    assert!(
        !ops.iter().any(|o| o.ends_with(":CreateService")),
        "{ops:?}"
    );
    let o = outputs(&stack);
    let td_arn = out_str(&o["ecs_task_definition_arns"], "web");
    assert!(td_arn.ends_with(":2"), "new revision: {td_arn}");
    block_on(async {
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let svc = ecs
            .describe_services()
            .cluster(out_str(&o, "ecs_cluster_name"))
            .services(format!("svc-web-{}", stack.suffix))
            .send()
            .await
            .unwrap();
        assert_eq!(svc.services()[0].task_definition(), Some(td_arn.as_str()));
    });
    assert_second_up_is_idempotent(&stack, &["--config", changed]);

    // Down removes every revision of the family, not just the latest.
    stack.down(&[]).assert_ok();
    block_on(check_nothing_left(&sdk, &stack, &["web"]));
}

#[test]
fn microservices_example_goes_up_and_down() {
    let stack = Stack::new("msv");
    // The example file itself, as a user would run it.
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/microservices.toml");
    let example = example.to_str().unwrap();
    let run = |command: &str| {
        stack.run(&[
            "--output",
            "json",
            "--config",
            example,
            command,
            "--env-suffix",
            stack.suffix.as_str(),
        ])
    };
    run("up").assert_ok();

    let sdk = block_on(sdk_config(&stack.endpoint));
    let payment = vec![("FARGATE", 2, 1), ("FARGATE_SPOT", 0, 1)];
    let spot_only = vec![("FARGATE_SPOT", 0, 1)];
    // The cluster's default strategy is the first service's.
    block_on(check_cluster(&sdk, &stack, &payment));

    let o = outputs(&stack);
    let ns_id = out_str(&o, "cloudmap_namespace_id");
    assert_eq!(o["cloudmap_namespace_name"], "payments.internal");
    let sd = aws_sdk_servicediscovery::Client::new(&sdk);
    let ns = block_on(sd.get_namespace().id(&ns_id).send())
        .unwrap()
        .namespace
        .unwrap();
    assert_eq!(ns.name(), Some("payments.internal"));
    assert_eq!(ns.r#type().map(|t| t.as_str()), Some("DNS_PRIVATE"));
    let discovery = block_on(discovery_services(&sdk, &ns_id));

    let expect = [
        Expect {
            name: "payment-api",
            cpu: "2048",
            memory: "4096",
            strategy: payment,
            database: true,
        },
        Expect {
            name: "transaction-processor",
            cpu: "1024",
            memory: "2048",
            strategy: spot_only.clone(),
            database: true,
        },
        Expect {
            name: "notification-service",
            cpu: "1024",
            memory: "2048",
            strategy: spot_only,
            database: false,
        },
    ];
    for e in &expect {
        let registries = block_on(check_service(&sdk, &stack, e));
        let arn = discovery
            .get(e.name)
            .unwrap_or_else(|| panic!("no Cloud Map service {} in {discovery:?}", e.name));
        assert_eq!(
            registries,
            std::slice::from_ref(arn),
            "{} registers in Cloud Map",
            e.name
        );
    }
    assert_eq!(discovery.len(), 3, "{discovery:?}");

    // transaction-processor also scales on its backlog: the queue's visible messages per
    // running task, by metric math (seed 003).
    let policies = block_on(async {
        aws_sdk_applicationautoscaling::Client::new(&sdk)
            .describe_scaling_policies()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .unwrap()
    });
    let name = format!("scale-backlog-transaction-processor-{}", stack.suffix);
    let backlog = policies
        .scaling_policies()
        .iter()
        .find(|p| p.policy_name() == name)
        .unwrap_or_else(|| panic!("no policy {name}"));
    let spec = backlog
        .target_tracking_scaling_policy_configuration()
        .and_then(|c| c.customized_metric_specification())
        .expect("a customized metric");
    let queries: Vec<(String, Option<String>, Option<String>)> = spec
        .metrics()
        .iter()
        .map(|q| {
            (
                q.id().to_string(),
                q.expression().map(str::to_string),
                q.metric_stat()
                    .and_then(|m| m.metric())
                    .and_then(|m| m.metric_name())
                    .map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        queries,
        vec![
            (
                "m1".into(),
                None,
                Some("ApproximateNumberOfMessagesVisible".into())
            ),
            ("m2".into(), None, Some("RunningTaskCount".into())),
            ("e1".into(), Some("m1 / m2".into()), None),
        ]
    );
    assert_eq!(
        backlog
            .target_tracking_scaling_policy_configuration()
            .unwrap()
            .target_value(),
        100.0
    );

    let again = run("up");
    again.assert_ok();
    let summary = again.summary();
    assert_eq!(
        summary["aws_calls"]["mutating"], 0,
        "second up mutated: {summary}"
    );
    assert_eq!(summary["changes"]["changed"], 0, "{summary}");

    run("down").assert_ok();
    block_on(check_nothing_left(
        &sdk,
        &stack,
        &[
            "payment-api",
            "transaction-processor",
            "notification-service",
        ],
    ));
    // The namespace went only after its services, the cluster only after its services
    // stopped draining (the emulator refuses otherwise; this proves the order held).
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let pos = |op: &str, needle: &str| {
            log.iter()
                .rposition(|r| r.operation == op && r.params.to_string().contains(needle))
                .unwrap_or_else(|| panic!("no {op} for {needle}"))
        };
        let ns_delete = pos("DeleteNamespace", &ns_id);
        let cluster_delete = pos("DeleteCluster", &format!("cluster-{}", stack.suffix));
        for svc in [
            "payment-api",
            "transaction-processor",
            "notification-service",
        ] {
            let svc_delete = pos("DeleteService", &format!("svc-{svc}-{}", stack.suffix));
            assert!(
                svc_delete < cluster_delete,
                "{svc} deleted after the cluster"
            );
        }
        // Each ECS service before the namespace its Cloud Map service is in (the cluster
        // and the namespace are independent of each other: AWS orders neither).
        for svc in [
            "payment-api",
            "transaction-processor",
            "notification-service",
        ] {
            let svc_delete = pos("DeleteService", &format!("svc-{svc}-{}", stack.suffix));
            assert!(svc_delete < ns_delete, "{svc} deleted after the namespace");
        }
        // And nothing was refused on the way.
        let cluster = format!("cluster-{}", stack.suffix);
        for r in log.iter().filter(|r| {
            (r.operation == "DeleteNamespace" && r.params.to_string().contains(&ns_id))
                || (r.operation == "DeleteCluster" && r.params.to_string().contains(&cluster))
        }) {
            assert_eq!(r.status, 200, "{} refused: {}", r.operation, r.params);
        }
    }
}

/// Against an emulator where a deleted ECS service stays DRAINING for a (scaled) while, as on
/// AWS: `down` waits for it to become INACTIVE before deleting the cluster, which ECS refuses
/// until then (ClusterContainsServicesException).
#[test]
fn down_waits_for_the_service_to_drain_before_deleting_the_cluster() {
    // A drain takes 60 s on AWS: 3 s here; the database waits scale alike.
    let emu = Emulator::start(&["--time-scale", "0.05"]);
    assert!(emu.is_faithful());
    let stack = Stack::on(&emu.endpoint, "drain");
    stack.up(&[]).assert_ok();
    let service_arn = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "ecs:service")
        .and_then(|r| r["arn"].as_str().map(str::to_string))
        .expect("ecs:service recorded with its ARN");
    stack.down(&[]).assert_ok();

    let log = request_log(&emu.endpoint);
    let events = events(&emu.endpoint);
    let inactive_at = events
        .iter()
        .find(|e| e["id"] == service_arn.as_str() && e["to"] == "INACTIVE")
        .and_then(|e| e["ts"].as_f64())
        .unwrap_or_else(|| panic!("service never became INACTIVE: {events:?}"));
    let delete_cluster: Vec<_> = log
        .iter()
        .filter(|r| r.operation == "DeleteCluster")
        .collect();
    assert_eq!(delete_cluster.len(), 1, "one DeleteCluster, never refused");
    assert_eq!(delete_cluster[0].status, 200);
    assert!(
        delete_cluster[0].ts >= inactive_at,
        "DeleteCluster at {} before the service was INACTIVE at {inactive_at}",
        delete_cluster[0].ts
    );
    // Aurora is not built on the services: its instances start deleting at once, while the
    // service drains (the old step-by-step teardown waited for the drain first).
    let delete_instance = log
        .iter()
        .find(|r| r.operation == "DeleteDBInstance")
        .expect("DeleteDBInstance sent");
    assert!(
        delete_instance.ts < inactive_at,
        "DeleteDBInstance at {} only after the service's drain ended at {inactive_at}",
        delete_instance.ts
    );
    let sdk = block_on(sdk_config(&emu.endpoint));
    block_on(check_nothing_left(&sdk, &stack, &["web"]));
}
