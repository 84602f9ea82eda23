//! Runs against a dedicated faithful emulator whose resources take (scaled) real time to
//! become ready or go away: proves the tool waits where AWS makes it wait, and that Ctrl-C in
//! the middle of `up` leaves a state from which `down` removes everything.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// NAT gateway create (90 s on AWS) takes 0.9 s at this scale.
const TIME_SCALE: &str = "0.01";

fn event_ts(events: &[Value], id: &str, to: &str) -> f64 {
    events
        .iter()
        .find(|e| e["id"] == id && e["to"] == to)
        .and_then(|e| e["ts"].as_f64())
        .unwrap_or_else(|| panic!("no event {id} -> {to} in {events:?}"))
}

#[test]
fn up_and_down_wait_for_nat_gateways_at_real_time_scale() {
    let emu = Emulator::start(&["--time-scale", TIME_SCALE]);
    assert!(
        emu.is_faithful(),
        "the dedicated emulator must be the project's own"
    );
    let stack = Stack::on(&emu.endpoint, "wait");
    stack.up(&[]).assert_ok();
    let nat_id = stack.output("nat_gateway_ids")[0]
        .as_str()
        .unwrap()
        .to_string();
    let alloc = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "ec2:nat-gateway")
        .map(|r| r["attrs"]["allocation_id"].as_str().unwrap().to_string())
        .unwrap();

    // Routes through the NAT gateway were created only once it was available.
    let log = request_log(&emu.endpoint);
    let events = events(&emu.endpoint);
    let available_at = event_ts(&events, &nat_id, "available");
    let routes: Vec<_> = log
        .iter()
        .filter(|r| r.service == "ec2" && r.operation == "CreateRoute")
        .filter(|r| r.params.to_string().contains(&nat_id))
        .collect();
    assert!(!routes.is_empty(), "no CreateRoute through {nat_id}");
    for r in &routes {
        assert!(
            r.ts >= available_at,
            "CreateRoute at {} before NAT gateway available at {available_at}",
            r.ts
        );
    }
    let nat_created = log
        .iter()
        .find(|r| r.operation == "CreateNatGateway")
        .expect("CreateNatGateway logged");
    assert!(
        available_at - nat_created.ts >= 0.5,
        "the emulator made the NAT gateway wait ({}s)",
        available_at - nat_created.ts
    );

    stack.down(&[]).assert_ok();
    let log = request_log(&emu.endpoint);
    let events = crate::util::events(&emu.endpoint);
    let deleted_at = event_ts(&events, &nat_id, "deleted");
    let release = log
        .iter()
        .find(|r| r.operation == "ReleaseAddress" && r.params.to_string().contains(&alloc))
        .expect("ReleaseAddress logged");
    assert!(
        release.ts >= deleted_at,
        "EIP released at {} before the NAT gateway was deleted at {deleted_at}",
        release.ts
    );
    assert!(release.status < 400, "ReleaseAddress refused: {release:?}");
    // The IGW was detached only after the NAT gateway (and its public address) was gone.
    let detach = log
        .iter()
        .find(|r| r.operation == "DetachInternetGateway")
        .expect("DetachInternetGateway logged");
    assert!(detach.ts >= deleted_at);
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}

#[test]
fn ctrl_c_during_up_saves_state_and_down_removes_what_was_made() {
    // Slow enough (NAT gateway: 9 s) to interrupt while waiting for it.
    let emu = Emulator::start(&["--time-scale", "0.1"]);
    let stack = Stack::on(&emu.endpoint, "intr");
    let child = stack
        .command(&["up", "--env-suffix", &stack.suffix])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn up");
    // Wait until the NAT gateway is recorded (the step is now waiting for it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(stack.state_path()).unwrap_or_default();
        if text.contains("ec2:nat-gateway") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "up never recorded the NAT gateway"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "up did not stop promptly on Ctrl-C"
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupt"), "{stderr}");
    // The state kept everything made so far, and was not left locked.
    let state = stack.state();
    let kinds: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"ec2:vpc") && kinds.contains(&"ec2:nat-gateway"),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&"ec2:route"),
        "no route should exist yet: {kinds:?}"
    );
    stack.down(&[]).assert_ok();
    assert!(!stack.state_path().exists());
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let left = remaining_ec2(&sdk, &stack.suffix).await;
        assert!(left.is_empty(), "left behind: {left:?}");
    });
}

/// `up --no-wait` returns once the create calls have returned: Aurora (9 s at this scale)
/// is still being created when it ends, `status` says so, and the next `up` waits for it.
#[test]
fn up_no_wait_leaves_aurora_becoming_available_and_the_next_up_waits_for_it() {
    // Aurora's cluster and instances take 450 s on AWS: 9 s here, far longer than the
    // create calls and the waits a later create needs (NAT gateway 1.8 s, ALB 2.7 s).
    let emu = Emulator::start(&["--time-scale", "0.02"]);
    assert!(emu.is_faithful());
    let stack = Stack::on(&emu.endpoint, "nowait");
    // With WAF: its association is the one consumer of the load balancer's readiness.
    let cfg = stack.config("[waf]\nenabled = true\n");
    let cfg = cfg.to_str().unwrap();
    let started = Instant::now();
    let up = stack.run(&[
        "--config",
        cfg,
        "--output",
        "json",
        "up",
        "--env-suffix",
        &stack.suffix,
        "--no-wait",
    ]);
    up.assert_ok();
    let took = started.elapsed();
    assert!(
        up.stdout.contains("still becoming available"),
        "no notice that Aurora is left settling: {}",
        up.stdout
    );
    assert!(
        up.stdout.contains("still provisioning (--no-wait)"),
        "no notice that the load balancer is left provisioning: {}",
        up.stdout
    );
    // The listeners and the services did not wait for the load balancer; the WAF association
    // did (WAF refuses a provisioning one), and was made once, at the first try.
    let lb_arn = stack.output_str("alb_arn");
    let active_at = event_ts(&events(&emu.endpoint), &lb_arn, "active");
    let log: Vec<LoggedRequest> = request_log(&emu.endpoint)
        .into_iter()
        .filter(|r| r.is_from_stack(&stack.suffix))
        .collect();
    let first = |op: &str| {
        log.iter()
            .find(|r| r.operation == op)
            .unwrap_or_else(|| panic!("no {op}"))
            .ts
    };
    assert!(
        first("CreateListener") < active_at,
        "the listener waited for the ALB"
    );
    assert!(
        first("CreateService") < active_at,
        "the services waited for the ALB"
    );
    let associations: Vec<&LoggedRequest> = log
        .iter()
        .filter(|r| r.operation == "AssociateWebACL")
        .collect();
    assert_eq!(associations.len(), 1, "{associations:?}");
    assert_eq!(associations[0].status, 200);
    assert!(associations[0].ts >= active_at);
    // Nothing reached `available` for the database before `up` returned.
    let instances: Vec<String> = stack.state()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "rds:db-instance")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!instances.is_empty());
    let status = stack.run(&["--output", "json", "status", "--env-suffix", &stack.suffix]);
    status.assert_ok();
    let st: Value = serde_json::from_str(status.stdout.lines().last().unwrap()).unwrap();
    let creating = st["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "rds:db-instance" && r["status"] == "creating")
        .count();
    assert!(
        creating > 0,
        "status right after `up --no-wait` ({took:?}) shows no instance creating: {st}"
    );
    // The next `up` waits for Aurora: when it returns every instance is available, and it
    // changed nothing.
    let again = stack.run(&[
        "--config",
        cfg,
        "--output",
        "json",
        "up",
        "--env-suffix",
        &stack.suffix,
    ]);
    again.assert_ok();
    assert_eq!(again.summary()["changes"]["created"], 0, "{}", again.stdout);
    let events = events(&emu.endpoint);
    for id in &instances {
        event_ts(&events, id, "available");
    }
}
