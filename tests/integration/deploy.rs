//! `fintech-infra deploy`: a rolling, a weighted (blue/green) and a CodeDeploy (linear and
//! canary) service each released,
//! rolled back by failing health and by an alarm, refused for a missing or vulnerable image;
//! `up` keeps what was released; `verify` passes and `down` leaves nothing.

use serde_json::{json, Value};

use crate::util::*;

const ACCOUNT: &str = "123456789012";

/// Images the emulator's tasks fail their health checks with: one list for the whole binary
/// (the emulator keeps one), each test's names made unique by its suffix.
fn set_unhealthy(endpoint: &str, images: &[String]) {
    ureq::post(&format!("{endpoint}/_fintech/config"))
        .send_json(json!({ "unhealthy_images": images }))
        .expect("setting unhealthy_images");
}

/// Pushes a tag into an ECR repository and seeds its scan (moto's API): `counts` are the
/// findings by severity.
fn push(stack: &Stack, repo: &str, tag: &str, counts: Value) -> String {
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecr = aws_sdk_ecr::Client::new(&sdk);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": format!("sha256:{:0>64}", tag.len()), "mediaType": "application/vnd.docker.container.image.v1+json", "size": 1},
            "layers": [{"digest": format!("sha256:{:0>64x}", tag.bytes().map(u64::from).sum::<u64>()), "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1}],
        });
        ecr.put_image()
            .repository_name(repo)
            .image_tag(tag)
            .image_manifest(manifest.to_string())
            .send()
            .await
            .expect("PutImage");
    });
    ureq::post(&format!("{}/moto-api/static/ecr/scan-finding-results", stack.endpoint))
        .send_json(json!({
            "region": REGION,
            "results": [{
                "registryId": ACCOUNT, "repositoryName": repo, "imageId": {"imageTag": tag},
                "imageScanStatus": {"status": "COMPLETE", "description": "The scan was completed successfully."},
                "imageScanFindings": {"findingSeverityCounts": counts},
            }],
        }))
        .expect("seeding scan findings");
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}:{tag}")
}

fn repository(stack: &Stack, service: &str) -> String {
    let state = stack.state();
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "ecr:repository")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .find(|n| n.contains(service))
        .unwrap_or_else(|| panic!("no repository of {service} in the state"))
}

fn deploy(stack: &Stack, args: &[&str]) -> Run {
    let mut all = vec!["deploy", "--env-suffix", stack.suffix.as_str()];
    all.extend_from_slice(args);
    stack
        .command(&all)
        .env(fintech_infra::step::MAX_POLL_ENV, "0.2")
        .output()
        .expect("running deploy")
        .into()
}

/// A deploy during whose bake `alarm` goes to ALARM: an alarm already firing when a deploy
/// starts is not watched (it says nothing about the new version).
fn deploy_alarm_in_bake(stack: &Stack, args: &[&str], alarm: &str) -> Run {
    deploy_alarm_when(stack, args, alarm, ": watching ")
}

/// A deploy during which `alarm` goes to ALARM once a progress line contains `trigger`.
fn deploy_alarm_when(stack: &Stack, args: &[&str], alarm: &str, trigger: &str) -> Run {
    use std::io::{BufRead, BufReader, Read};
    let mut all = vec!["deploy", "--env-suffix", stack.suffix.as_str()];
    all.extend_from_slice(args);
    let mut child = stack
        .command(&all)
        .env(fintech_infra::step::MAX_POLL_ENV, "0.2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running deploy");
    let mut stderr = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains(trigger) {
            set_alarm(stack, alarm, aws_sdk_cloudwatch::types::StateValue::Alarm);
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// The image the ECS service `name` runs.
fn running_image(stack: &Stack, name: &str) -> String {
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let ecs = aws_sdk_ecs::Client::new(&sdk);
        let svc = ecs
            .describe_services()
            .cluster(stack.output_str("ecs_cluster_name"))
            .services(name)
            .send()
            .await
            .unwrap();
        let td = svc.services()[0].task_definition().unwrap().to_string();
        let def = ecs
            .describe_task_definition()
            .task_definition(td)
            .send()
            .await
            .unwrap();
        def.task_definition().unwrap().container_definitions()[0]
            .image()
            .unwrap()
            .to_string()
    })
}

fn set_alarm(stack: &Stack, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) {
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_cloudwatch::Client::new(&sdk)
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("test")
            .send()
            .await
            .expect("SetAlarmState");
    });
}

/// The (blue, green) weights of the stack's listener.
fn weights(stack: &Stack) -> (i64, i64) {
    listener_weights(stack, "alb_listener_arn")
}

/// The (blue, green) weights of the listener an output names: a weighted forward's, or 1
/// for the group a plain forward names (CodeDeploy writes those on the test listener).
fn listener_weights(stack: &Stack, output: &str) -> (i64, i64) {
    let tgs = stack.output("alb_target_groups");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let out = elb
            .describe_listeners()
            .listener_arns(stack.output_str(output))
            .send()
            .await
            .unwrap();
        let action = &out.listeners()[0].default_actions()[0];
        let groups = action
            .forward_config()
            .map(|f| f.target_groups().to_vec())
            .unwrap_or_default();
        let w = |k: &str| {
            groups
                .iter()
                .find(|t| t.target_group_arn() == tgs[k].as_str())
                .map(|t| t.weight().unwrap_or(1) as i64)
                .or_else(|| (action.target_group_arn() == tgs[k].as_str()).then_some(1))
                .unwrap_or(0)
        };
        (w("blue"), w("green"))
    })
}

/// The mutating operations of the stack's runs since `from` (an index into the log).
fn mutations_since(stack: &Stack, from: usize) -> Vec<String> {
    request_log(&stack.endpoint)[from..]
        .iter()
        .filter(|r| r.is_from_stack(&stack.suffix) && r.is_mutating() && r.status < 400)
        .map(|r| r.operation.clone())
        .collect()
}

fn finish(stack: &Stack) {
    let verify = stack.run(&["verify", "--env-suffix", &stack.suffix]);
    assert_eq!(
        verify.code, 0,
        "verify:\n{}\n{}",
        verify.stdout, verify.stderr
    );
    stack.down(&[]).assert_ok();
    let left = block_on(remaining_anywhere(&stack.endpoint, &stack.suffix));
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[test]
fn rolling_deploy_releases_refuses_bad_images_and_rolls_back_on_health_and_alarm() {
    let stack = Stack::new("dpr");
    if !is_faithful(&stack.endpoint) {
        return; // seeds scans and failing images through the project's emulator
    }
    let cfg = stack.config("[deploy]\nbake_secs = 4\nhealth_timeout_secs = 60\n");
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    let web = format!("svc-web-{}", stack.suffix);
    let repo = repository(&stack, "web");

    // Refused before any change: bad input (2), a missing image, a vulnerable one.
    let before = request_log(&stack.endpoint).len();
    let r = deploy(&stack, &["--service", "nope", "--image", "x:1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("its services: web"), "{}", r.stderr);
    let r = deploy(&stack, &["--service", "web", "--promote"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("`weighted`"), "{}", r.stderr);
    let missing = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}:absent");
    let r = deploy(&stack, &["--service", "web", "--image", &missing]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let vulnerable = push(&stack, &repo, "v-bad", json!({"CRITICAL": 1, "LOW": 3}));
    let r = deploy(&stack, &["--service", "web", "--image", &vulnerable]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 CRITICAL") && r.stderr.contains("--allow-vulnerable"),
        "{}",
        r.stderr
    );
    assert_eq!(mutations_since(&stack, before), Vec::<String>::new());

    // A release: the new revision serves, the state records it, `up` keeps it.
    // An alarm already in ALARM when the deploy starts (the incident the release may fix)
    // is not watched: it says nothing about the new version.
    let v2 = push(&stack, &repo, "v2", json!({"LOW": 2}));
    let latency = format!("alarm-alb-p99-latency-{}", stack.suffix);
    set_alarm(
        &stack,
        &latency,
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    );
    let r = deploy(&stack, &["--service", "web", "--image", &v2]);
    set_alarm(&stack, &latency, aws_sdk_cloudwatch::types::StateValue::Ok);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("done:"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "already in ALARM, not watched during this deploy: {latency}"
        )),
        "{}",
        r.stderr
    );
    assert_eq!(running_image(&stack, &web), v2);
    assert_eq!(stack.state()["releases"]["web"]["blue"], v2.as_str());
    let before = request_log(&stack.endpoint).len();
    stack.up(&["--config", cfg]).assert_ok();
    let ops = mutations_since(&stack, before);
    assert!(
        !ops.iter()
            .any(|o| o == "RegisterTaskDefinition" || o == "UpdateService"),
        "up undid the release: {ops:?}"
    );

    // Failing health: ECS's circuit breaker rolls back; the failed revision is deregistered.
    let broken = push(&stack, &repo, "v3-broken", json!({}));
    set_unhealthy(&stack.endpoint, std::slice::from_ref(&broken));
    let r = deploy(&stack, &["--service", "web", "--image", &broken]);
    set_unhealthy(&stack.endpoint, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("rolled back") && r.stderr.contains("circuit breaker"),
        "{}",
        r.stderr
    );
    assert_eq!(running_image(&stack, &web), v2);
    assert_eq!(stack.state()["releases"]["web"]["blue"], v2.as_str());

    // An alarm: the deploy puts the previous revision back itself.
    let v4 = push(&stack, &repo, "v4", json!({}));
    let alarm = format!("alarm-alb-5xx-rate-{}", stack.suffix);
    let r = deploy_alarm_in_bake(&stack, &["--service", "web", "--image", &v4], &alarm);
    set_alarm(&stack, &alarm, aws_sdk_cloudwatch::types::StateValue::Ok);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&alarm), "{}", r.stderr);
    assert_eq!(running_image(&stack, &web), v2);
    let before = request_log(&stack.endpoint).len();
    stack.up(&["--config", cfg]).assert_ok();
    let ops = mutations_since(&stack, before);
    assert!(
        !ops.iter().any(|o| o == "RegisterTaskDefinition"),
        "{ops:?}"
    );
    finish(&stack);
}

#[test]
fn weighted_deploy_goes_to_the_idle_colour_then_promotes_and_rolls_back() {
    // Its own emulator at a time scale: a deployment rolls out in 3.6 s (180 s on AWS), so
    // the order of weight changes and healthy targets is observed, not instantaneous.
    if !is_faithful(endpoint()) {
        return;
    }
    let emu = Emulator::start(&["--time-scale", "0.02"]);
    let stack = Stack::on(&emu.endpoint, "dpw");
    let cfg =
        stack.config("preset = \"bluegreen\"\n[deploy]\nbake_secs = 4\nhealth_timeout_secs = 60\n");
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    stack.up(&["--config", cfg]).assert_ok(); // the split starts once the twin runs
    assert_eq!(weights(&stack), (80, 20));
    let blue = format!("svc-web-{}", stack.suffix);
    let green = format!("svc-web-green-{}", stack.suffix);
    let original = running_image(&stack, &blue);
    let repo = repository(&stack, "web");

    // The release goes to green (the smaller share): first all traffic to blue, then green
    // is replaced, then the split, which gives green weight only once its deployment is done.
    let v2 = push(&stack, &repo, "v2", json!({}));
    let from = request_log(&stack.endpoint).len();
    let r = deploy(&stack, &["--service", "web", "--image", &v2]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("green: deployment IN_PROGRESS") && r.stderr.contains("starting"),
        "the progress shows green rolling out: {}",
        r.stderr
    );
    assert_eq!(weights(&stack), (80, 20));
    assert_eq!(running_image(&stack, &green), v2);
    assert_eq!(running_image(&stack, &blue), original);
    let log = request_log(&stack.endpoint)[from..].to_vec();
    let modifies: Vec<_> = log
        .iter()
        .filter(|r| r.operation == "ModifyListener" && r.is_from_stack(&stack.suffix))
        .collect();
    // The query protocol's flat form: `DefaultActions.member.1.ForwardConfig.TargetGroups
    // .member.N.TargetGroupArn` and `....Weight`.
    let green_tg = stack.output("alb_target_groups")["green"].clone();
    let green_weight = |r: &LoggedRequest| {
        let params = r.params.as_object().expect("flat params");
        let (key, _) = params
            .iter()
            .find(|(k, v)| k.ends_with(".TargetGroupArn") && **v == green_tg)
            .unwrap_or_else(|| panic!("no green target group in {params:?}"));
        let weight = key.replace(".TargetGroupArn", ".Weight");
        params[&weight].as_str().unwrap().parse::<i64>().unwrap()
    };
    assert_eq!(
        modifies.iter().map(|r| green_weight(r)).collect::<Vec<_>>(),
        vec![0, 20],
        "one listener gets all traffic to blue, then the split"
    );
    let update = log
        .iter()
        .find(|r| r.operation == "UpdateService" && r.params["service"] == green.as_str())
        .expect("green's UpdateService");
    let green_done = events(&stack.endpoint)
        .into_iter()
        .filter(|e| e["resource_type"] == "ecs-deployment" && e["to"] == "COMPLETED")
        .filter(|e| e["id"].as_str().unwrap().starts_with(&format!("{green}:")))
        .filter(|e| e["ts"].as_f64().unwrap() > update.ts)
        .map(|e| e["ts"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert!(
        modifies[0].ts < update.ts,
        "green kept traffic while replaced"
    );
    assert!(
        green_done < modifies[1].ts,
        "green got traffic before its tasks were healthy"
    );
    let before = request_log(&stack.endpoint).len();
    stack.up(&["--config", cfg]).assert_ok();
    let ops = mutations_since(&stack, before);
    assert!(
        !ops.iter()
            .any(|o| o == "ModifyListener" || o == "RegisterTaskDefinition"),
        "up undid the release: {ops:?}"
    );

    // --promote: all to green; --rollback: all back to blue.
    let r = deploy(&stack, &["--service", "web", "--promote"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(weights(&stack), (0, 100));
    let r = deploy(&stack, &["--service", "web", "--rollback"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(weights(&stack), (100, 0));

    // Failing health on the idle colour (green, at 0): no traffic moves, green goes back.
    let broken = push(&stack, &repo, "v3-broken", json!({}));
    set_unhealthy(&stack.endpoint, std::slice::from_ref(&broken));
    let r = deploy(&stack, &["--service", "web", "--image", &broken]);
    set_unhealthy(&stack.endpoint, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    assert_eq!(weights(&stack), (100, 0));
    assert_eq!(running_image(&stack, &green), v2);

    // An alarm while the new version takes its share: all traffic back to blue.
    let v4 = push(&stack, &repo, "v4", json!({}));
    let alarm = format!("alarm-alb-p99-latency-{}", stack.suffix);
    let r = deploy_alarm_in_bake(&stack, &["--service", "web", "--image", &v4], &alarm);
    set_alarm(&stack, &alarm, aws_sdk_cloudwatch::types::StateValue::Ok);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&alarm), "{}", r.stderr);
    assert_eq!(weights(&stack), (100, 0));
    assert_eq!(running_image(&stack, &green), v2);
    assert_eq!(stack.state()["releases"]["web"]["weights"], json!([100, 0]));
    let status = stack.run(&["status", "--env-suffix", &stack.suffix]);
    assert!(
        status.stdout.contains(&format!(
            "release web: blue {original}, green {v2}; traffic blue 100 %, green 0 %"
        )),
        "{}",
        status.stdout
    );

    // A release holds only for its strategy: promoted (all traffic on green), then switched
    // to `rolling`, `up` removes the twin and sends all traffic to blue, not to the empty
    // green group the release weighted.
    let r = deploy(&stack, &["--service", "web", "--promote"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(weights(&stack), (0, 100));
    let rolling = stack.config(
        "preset = \"bluegreen\"\n[deploy]\nbake_secs = 1\n[alb]\nblue_weight = 100\ngreen_weight = 0\n\
         [[services]]\nname = \"web\"\ndeployment = \"rolling\"\ncpu = 2048\nmemory = 4096\n\
         permissions = [\"sessions\", \"database\", \"queue\"]\n",
    );
    stack
        .up(&["--config", rolling.to_str().unwrap()])
        .assert_ok();
    assert_eq!(weights(&stack), (100, 0));
    assert_eq!(running_image(&stack, &blue), original);
    finish(&stack);
}

/// The traffic steps and the end of the stack's CodeDeploy deployments, in order, as the
/// emulator's timeline recorded them.
fn codedeploy_steps(stack: &Stack, deployment: &str) -> Vec<String> {
    events(&stack.endpoint)
        .into_iter()
        .filter(|e| e["resource_type"] == "codedeploy-deployment" && e["id"] == deployment)
        .map(|e| e["to"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The ID of the CodeDeploy deployment a deploy printed (`CodeDeploy deployment <id> of`).
fn deployment_id(run: &Run) -> String {
    run.stderr
        .split("CodeDeploy deployment ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no deployment ID in {}", run.stderr))
        .to_string()
}

/// The (blue, green) weights of the ALB's test listener.
fn test_weights(stack: &Stack) -> (i64, i64) {
    listener_weights(stack, "alb_test_listener_arn")
}

#[test]
fn codedeploy_linear_deploy_shifts_ten_percent_a_step_and_rolls_back_on_health_and_alarm() {
    // Its own emulator at a time scale: the 10-minute linear shift takes 12 s, the
    // replacement tasks 1.2 s to become healthy.
    if !is_faithful(endpoint()) {
        return;
    }
    let emu = Emulator::start(&["--time-scale", "0.02"]);
    let stack = Stack::on(&emu.endpoint, "dpc");
    let cfg = stack.config(
        "[deploy]\ntermination_wait_mins = 1\nhealth_timeout_secs = 60\n\
         test_cidrs = [\"203.0.113.0/24\"]\n\
         [[services]]\nname = \"web\"\ndeployment = \"codedeploy-linear\"\n\
         permissions = [\"sessions\", \"database\", \"queue\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    let web = format!("svc-web-{}", stack.suffix);
    let original = running_image(&stack, &web);
    assert_eq!(weights(&stack), (100, 0));
    assert_eq!(test_weights(&stack).1, 0);
    // The testers' network reaches the test listener, and only it.
    let admitted: Vec<(i32, String)> = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let out = aws_sdk_ec2::Client::new(&sdk)
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(stack.output_str("sg_alb_id"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        out.security_group_rules()
            .iter()
            .filter(|r| r.is_egress() == Some(false) && r.cidr_ipv4().is_some())
            .map(|r| {
                (
                    r.from_port().unwrap_or(0),
                    r.cidr_ipv4().unwrap().to_string(),
                )
            })
            .collect()
    });
    assert_eq!(admitted, vec![(9000, "203.0.113.0/24".to_string())]);
    // A second `up` changes nothing: not the group, not the CODE_DEPLOY service.
    let before = request_log(&stack.endpoint).len();
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    assert_eq!(
        mutations_since(&stack, before),
        Vec::<String>::new(),
        "{}",
        again.stderr
    );
    let repo = repository(&stack, "web");

    // Refused before any change: --promote, a vulnerable image.
    let before = request_log(&stack.endpoint).len();
    let r = deploy(&stack, &["--service", "web", "--promote"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("codedeploy-linear"), "{}", r.stderr);
    let vulnerable = push(&stack, &repo, "v-bad", json!({"HIGH": 1}));
    let r = deploy(&stack, &["--service", "web", "--image", &vulnerable]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("1 HIGH"), "{}", r.stderr);
    assert_eq!(mutations_since(&stack, before), Vec::<String>::new());

    // A release: CodeDeploy moves 10 % a step to the replacement, which serves at the end.
    // An alarm already in ALARM (the incident the release may fix) is left out of the
    // deployment's alarms, or CodeDeploy would stop it at once.
    let v2 = push(&stack, &repo, "v2", json!({}));
    let latency = format!("alarm-alb-p99-latency-{}", stack.suffix);
    set_alarm(
        &stack,
        &latency,
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    );
    let r = deploy(&stack, &["--service", "web", "--image", &v2]);
    set_alarm(&stack, &latency, aws_sdk_cloudwatch::types::StateValue::Ok);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("already in ALARM"), "{}", r.stderr);
    assert!(r.stderr.contains("done:"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Green 10%"),
        "the progress shows the split: {}",
        r.stderr
    );
    let steps = codedeploy_steps(&stack, &deployment_id(&r));
    let traffic: Vec<&str> = steps
        .iter()
        .filter(|s| s.starts_with("traffic-") && *s != "traffic-0")
        .map(String::as_str)
        .collect();
    assert_eq!(
        traffic,
        (1..=10)
            .map(|i| format!("traffic-{}", i * 10))
            .collect::<Vec<_>>(),
        "{steps:?}"
    );
    assert_eq!(
        steps.last().map(String::as_str),
        Some("Succeeded"),
        "{steps:?}"
    );
    assert_eq!(running_image(&stack, &web), v2);
    assert_eq!(weights(&stack), (0, 100));
    assert_eq!(stack.state()["releases"]["web"]["blue"], v2.as_str());
    // `up` keeps the release: no revision, no service or listener change (A14).
    let before = request_log(&stack.endpoint).len();
    stack.up(&["--config", cfg]).assert_ok();
    assert_eq!(mutations_since(&stack, before), Vec::<String>::new());
    assert_eq!(
        stack.output("alb_service_target_groups")["web"],
        stack.output("alb_target_groups")["green"],
        "the service's live target group is green now"
    );

    // Failing health: the deployment fails before any traffic moves.
    let broken = push(&stack, &repo, "v3-broken", json!({}));
    set_unhealthy(&stack.endpoint, std::slice::from_ref(&broken));
    let r = deploy(&stack, &["--service", "web", "--image", &broken]);
    set_unhealthy(&stack.endpoint, &[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("rolled back"), "{}", r.stderr);
    let steps = codedeploy_steps(&stack, &deployment_id(&r));
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("traffic-") && s != "traffic-0"),
        "{steps:?}"
    );
    assert_eq!(running_image(&stack, &web), v2);
    assert_eq!(weights(&stack), (0, 100));

    // An alarm while the traffic shifts: CodeDeploy stops and puts all traffic back.
    let v4 = push(&stack, &repo, "v4", json!({}));
    let alarm = format!("alarm-alb-5xx-rate-{}", stack.suffix);
    let r = deploy_alarm_when(
        &stack,
        &["--service", "web", "--image", &v4],
        &alarm,
        "Green 20%",
    );
    set_alarm(&stack, &alarm, aws_sdk_cloudwatch::types::StateValue::Ok);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ALARM_ACTIVE"), "{}", r.stderr);
    assert_eq!(running_image(&stack, &web), v2);
    assert_eq!(weights(&stack), (0, 100));
    assert_eq!(stack.state()["releases"]["web"]["blue"], v2.as_str());
    assert_ne!(original, v2);
    let verify = stack.run(&["verify", "--env-suffix", &stack.suffix]);
    assert_eq!(
        verify.code, 0,
        "verify:\n{}\n{}",
        verify.stdout, verify.stderr
    );

    // A built CODE_DEPLOY service cannot become `rolling` in place: `up` refuses, and the
    // traffic stays where CodeDeploy put it (not sent to the blue group it emptied).
    let rolling = stack.config(
        "[[services]]\nname = \"web\"\npermissions = [\"sessions\", \"database\", \"queue\"]\n",
    );
    let r = stack.up(&["--config", rolling.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("cannot switch an existing service's controller"),
        "{}",
        r.stdout
    );
    assert_eq!(weights(&stack), (0, 100));
    stack.down(&[]).assert_ok();
    let left = block_on(remaining_anywhere(&stack.endpoint, &stack.suffix));
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[test]
fn codedeploy_canary_deploy_sends_ten_percent_then_the_rest() {
    if !is_faithful(endpoint()) {
        return;
    }
    let emu = Emulator::start(&["--time-scale", "0.02"]);
    let stack = Stack::on(&emu.endpoint, "dpk");
    let cfg = stack.config(
        "[deploy]\ntermination_wait_mins = 1\nhealth_timeout_secs = 60\n\
         [[services]]\nname = \"web\"\ndeployment = \"codedeploy-canary\"\n\
         permissions = [\"sessions\", \"database\", \"queue\"]\n",
    );
    stack.up(&["--config", cfg.to_str().unwrap()]).assert_ok();
    let repo = repository(&stack, "web");
    let v2 = push(&stack, &repo, "v2", json!({}));
    let r = deploy(&stack, &["--service", "web", "--image", &v2]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let steps = codedeploy_steps(&stack, &deployment_id(&r));
    let traffic: Vec<&str> = steps
        .iter()
        .filter(|s| s.starts_with("traffic-") && *s != "traffic-0")
        .map(String::as_str)
        .collect();
    assert_eq!(traffic, vec!["traffic-10", "traffic-100"], "{steps:?}");
    assert_eq!(
        running_image(&stack, &format!("svc-web-{}", stack.suffix)),
        v2
    );
    assert_eq!(weights(&stack), (0, 100));
    finish(&stack);
}
