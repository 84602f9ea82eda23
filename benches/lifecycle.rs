//! Benchmark of a whole stack's life cycle against the project's emulator: wall time of
//! `plan` (of an empty account), `up`, a no-op second `up`, `down`, and `up --no-wait` of a
//! second stack, the AWS calls each makes, and the tool's peak memory. At a non-zero time scale the emulator makes resources
//! take that fraction of their real-AWS time, so `elapsed / scale` estimates the wall time
//! against AWS, and `up` and `down` are compared with their bound: the longest path through
//! the resource graph (the state's `deps`), each resource weighted by the emulator's modeled
//! duration of the wait it imposes, which no tool can beat.
//!
//!     cargo bench --bench lifecycle                      # time scale 0 (tool overhead)
//!     BENCH_TIME_SCALE=0.1 cargo bench --bench lifecycle   # up/down against their bound
//!     BENCH_ITERATIONS=5 BENCH_CONFIG=examples/x.toml cargo bench --bench lifecycle
//!
//! Prints figures and the targets next to them; asserts nothing (targets belong here, not in
//! timed tests) except its own graph math ([`self_check`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Peak resident set size (KiB) of the largest child process waited for so far.
fn children_max_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer we own.
    unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss
    }
}

/// The emulator's duration keys (`localstack/fidelity/timeline.py` DURATIONS) of the wait each
/// resource kind imposes: (when `up` creates it, when `down` deletes it). Kinds not listed, and
/// `None`s, have no modeled wait and weigh 0.
const WAITS: &[(&str, Option<&str>, Option<&str>)] = &[
    (
        "ec2:nat-gateway",
        Some("nat-gateway.create"),
        Some("nat-gateway.delete"),
    ),
    // The emulator models no load balancer deletion time.
    (
        "elasticloadbalancing:loadbalancer",
        Some("load-balancer.create"),
        None,
    ),
    (
        "rds:db-cluster",
        Some("db-cluster.create"),
        Some("db-cluster.delete"),
    ),
    (
        "rds:db-instance",
        Some("db-instance.create"),
        Some("db-instance.delete"),
    ),
    // `up` does not wait for a new distribution to deploy (src/resources/cloudfront: only the
    // teardown waits, for the disabling update to deploy before DeleteDistribution), so it
    // weighs 0 on the way up.
    (
        "cloudfront:distribution",
        None,
        Some("distribution.disable"),
    ),
    ("ecs:service", None, Some("ecs-service.drain")),
    (
        "dynamodb:table",
        Some("dynamodb-table.create"),
        Some("dynamodb-table.delete"),
    ),
    // A new role is assumable by services only once IAM has propagated it: what is built on
    // it waits for that.
    ("iam:role", Some("iam-role.propagate"), None),
];

/// Seconds of modeled wait a `kind` resource imposes when created (`up`) or deleted, given the
/// emulator's `durations` (real-AWS seconds) and time scale.
fn weight(kind: &str, up: bool, durations: &Value, scale: f64) -> f64 {
    let Some(&(_, create, delete)) = WAITS.iter().find(|w| w.0 == kind) else {
        return 0.0;
    };
    let Some(key) = (if up { create } else { delete }) else {
        return 0.0;
    };
    let seconds = durations[key]
        .as_f64()
        .unwrap_or_else(|| panic!("the emulator models no duration {key:?}"));
    seconds * scale
}

/// The graph with every edge turned around: for each node, the nodes that depend on it.
fn reversed(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); deps.len()];
    for (node, ds) in deps.iter().enumerate() {
        for &d in ds {
            out[d].push(node);
        }
    }
    out
}

/// Kinds whose consumers must wait until they are ready, not only until they exist: a new
/// role is assumable only once IAM has propagated it, and the tool routes through a NAT
/// gateway once it is available. Everything else can be built on as soon as its create call
/// has returned (an Aurora instance joins a cluster still creating; a listener goes on a
/// load balancer still provisioning), so on the way up its wait weighs only on itself.
const READY_FOR_CONSUMERS: &[&str] = &["iam:role", "ec2:nat-gateway"];

/// Length of the longest weighted path: a node starts once each of its `deps` has finished
/// (if `needs_ready(dep)`) or started (otherwise), and finishes its weight later. `None` if the
/// graph has a cycle.
fn longest_path(
    weights: &[f64],
    deps: &[Vec<usize>],
    needs_ready: &dyn Fn(usize) -> bool,
) -> Option<f64> {
    let dependents = reversed(deps);
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut start = vec![0.0_f64; weights.len()];
    let mut ready: Vec<usize> = (0..weights.len()).filter(|&n| waiting[n] == 0).collect();
    let (mut settled, mut longest) = (0, 0.0_f64);
    while let Some(n) = ready.pop() {
        settled += 1;
        let finish = start[n] + weights[n];
        longest = longest.max(finish);
        let after = if needs_ready(n) { finish } else { start[n] };
        for &m in &dependents[n] {
            start[m] = start[m].max(after);
            waiting[m] -= 1;
            if waiting[m] == 0 {
                ready.push(m);
            }
        }
    }
    (settled == weights.len()).then_some(longest)
}

/// A record's (or a dep's) identity: kind, region, ID.
fn key(v: &Value) -> (&str, &str, &str) {
    let field = |f: &str| v[f].as_str().unwrap_or_default();
    (field("kind"), field("region"), field("id"))
}

/// The resource graph of a state file: each record's kind, and the indices of the records its
/// `deps` name (a dep that names no record, e.g. a resource the tool does not own, is dropped).
fn resource_graph(state: &Value) -> (Vec<&str>, Vec<Vec<usize>>) {
    let records = state["resources"].as_array().map_or(&[][..], Vec::as_slice);
    let index: HashMap<_, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (key(r), i))
        .collect();
    let deps = records
        .iter()
        .map(|r| {
            r["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| index.get(&key(d)).copied())
                .collect()
        })
        .collect();
    (records.iter().map(|r| key(r).0).collect(), deps)
}

/// The bounds of `up` and `down` (seconds) and the graph they were computed over.
#[derive(Clone, Copy)]
struct Bound {
    up: f64,
    down: f64,
    resources: usize,
    edges: usize,
}

/// The bounds of `up` and `down` for the stack recorded in `state`, or why there are none.
fn bounds(state: &Value, durations: &Value, scale: f64) -> Result<Bound, &'static str> {
    let (kinds, deps) = resource_graph(state);
    let edges = deps.iter().map(Vec::len).sum();
    if edges == 0 {
        return Err("state has no dependency edges");
    }
    let weights = |up: bool| -> Vec<f64> {
        kinds
            .iter()
            .map(|k| weight(k, up, durations, scale))
            .collect()
    };
    let up = longest_path(&weights(true), &deps, &|n| {
        READY_FOR_CONSUMERS.contains(&kinds[n])
    });
    // `down` deletes a resource only once everything built on it is gone.
    let down = longest_path(&weights(false), &reversed(&deps), &|_| true);
    match (up, down) {
        (Some(up), Some(down)) => Ok(Bound {
            up,
            down,
            resources: kinds.len(),
            edges,
        }),
        _ => Err("the state's dependencies form a cycle"),
    }
}

/// Fails the bench loudly if the graph math is wrong: a diamond b -> a, c -> a, d -> {b, c}
/// (x -> y: x is built on y), and a cycle.
fn self_check() {
    let deps = [vec![], vec![0], vec![0], vec![1, 2]];
    // Up: a 1, b 1 + 2 = 3, c 1 + 5 = 6, d max(3, 6) + 3 = 9.
    let all = |_: usize| true;
    assert_eq!(longest_path(&[1.0, 2.0, 5.0, 3.0], &deps, &all), Some(9.0));
    // Only c needs to be ready for d: a and b just exist. d starts at max(b's start 0,
    // c's finish 5) = 5 and ends at 8; c ends at 0 + 5.
    assert_eq!(
        longest_path(&[1.0, 2.0, 5.0, 3.0], &deps, &|n| n == 2),
        Some(8.0)
    );
    // Down: d 2, b 2 + 0 = 2, c 2 + 1 = 3, a max(2, 3) + 4 = 7.
    assert_eq!(
        longest_path(&[4.0, 0.0, 1.0, 2.0], &reversed(&deps), &all),
        Some(7.0)
    );
    assert_eq!(longest_path(&[1.0, 1.0], &[vec![1], vec![0]], &all), None);
}

struct Phase {
    name: &'static str,
    target: &'static str,
    times: Vec<Duration>,
    calls: u64,
    mutating: u64,
}

fn phase(name: &'static str, target: &'static str) -> Phase {
    Phase {
        name,
        target,
        times: vec![],
        calls: 0,
        mutating: 0,
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn main() {
    self_check();
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` builds and runs this target too; only `cargo bench`
        // passes --bench.
        println!("lifecycle benchmark: run with `cargo bench --bench lifecycle`");
        return;
    }
    let scale: f64 = std::env::var("BENCH_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let config = std::env::var("BENCH_CONFIG").ok();

    let run_dir = root()
        .join("target")
        .join("emulators")
        .join(format!("bench-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(root().join("localstack/start"))
        .args([
            "--time-scale",
            &scale.to_string(),
            "--watch-pid",
            &std::process::id().to_string(),
        ])
        .arg("--run-dir")
        .arg(&run_dir)
        .stdin(Stdio::null())
        .output()
        .expect("localstack/start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endpoint = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    // The durations the emulator models, and the time scale it applies to them.
    let emulator: Value = ureq::get(&format!("{endpoint}/_fintech/config"))
        .call()
        .expect("GET /_fintech/config")
        .into_json()
        .expect("emulator config JSON");
    let emulator_scale = emulator["time_scale"].as_f64().unwrap_or(scale);
    let work = tempfile::tempdir().expect("temp dir");

    let up_target = "<= 1.05x bound at scale 0.1";
    let mut phases = vec![
        phase("plan (empty)", "<= 0.06 s at scale 0"),
        phase("up", up_target),
        phase("up (no-op)", "<= 0.15 s at scale 0"),
        phase("down", up_target),
        phase("up --no-wait", "<= 0.15x up"),
    ];
    let mut bound = Err("no iteration ran");
    for i in 0..iterations {
        let suffix = format!("bench-{i}");
        // The main cycle, then `up --no-wait` of a second stack (and its `down`, not timed).
        let runs = [
            (Some(0), "plan", &suffix, None),
            (Some(1), "up", &suffix, None),
            (Some(2), "up", &suffix, None),
            (Some(3), "down", &suffix, None),
            (Some(4), "up", &format!("{suffix}-nw"), Some("--no-wait")),
            (None, "down", &format!("{suffix}-nw"), None),
        ];
        for (p, cmd, suffix, flag) in runs {
            let mut c = Command::new(env!("CARGO_BIN_EXE_fintech-infra"));
            c.current_dir(work.path())
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                // Polls at most every second: at a time scale the resources are ready in a
                // fraction of their AWS time, and the default 10 s cap would time the polls.
                .env("FINTECH_INFRA_MAX_POLL_SECS", "1")
                .args(["--endpoint-url", &endpoint, "--output", "json"]);
            if let Some(cfg) = &config {
                c.args(["--config", cfg]);
            }
            c.args([cmd, "--env-suffix", suffix]);
            c.args(flag);
            let start = Instant::now();
            let out = c.output().expect("fintech-infra");
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{cmd} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: Value = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .rfind(|v| v["event"] == "summary")
                .expect("summary");
            let Some(p) = p else { continue };
            let ph = &mut phases[p];
            ph.times.push(elapsed);
            ph.calls = summary["aws_calls"]["total"].as_u64().unwrap_or(0);
            ph.mutating = summary["aws_calls"]["mutating"].as_u64().unwrap_or(0);
            if p == 1 {
                // The tool runs in `work`, so its state is at the default path relative to it.
                let path = fintech_infra::state::path_for(
                    &work.path().join(fintech_infra::state::DEFAULT_DIR),
                    suffix,
                );
                let text = std::fs::read_to_string(&path).expect("the state file after up");
                let state: Value = serde_json::from_str(&text).expect("state JSON");
                bound = bounds(&state, &emulator["durations"], emulator_scale);
            }
        }
    }
    let _ = Command::new("bash")
        .arg(root().join("localstack/stop"))
        .arg("--run-dir")
        .arg(&run_dir)
        .output();

    println!("fintech-infra life cycle, {iterations} iteration(s), emulator time scale {scale}");
    println!(
        "{:<13} {:>10} {:>10} {:>9} {:>8} {:>15} {:>9} {:>7}  target",
        "phase",
        "median ms",
        "min ms",
        "AWS calls",
        "mutating",
        "est. on AWS (s)",
        "bound (s)",
        "x bound"
    );
    for p in &phases {
        let med = median(&p.times);
        let min = *p.times.iter().min().unwrap();
        let est = if scale > 0.0 {
            format!("{:.0}", med.as_secs_f64() / scale)
        } else {
            "-".into()
        };
        let b = match (p.name, bound) {
            ("up", Ok(b)) => Some(b.up),
            ("down", Ok(b)) => Some(b.down),
            _ => None,
        };
        let (b, x) = match b {
            Some(b) if scale > 0.0 => (format!("{b:.1}"), format!("{:.2}", med.as_secs_f64() / b)),
            _ => ("-".into(), "-".into()),
        };
        println!(
            "{:<13} {:>10.1} {:>10.1} {:>9} {:>8} {:>15} {:>9} {:>7}  {}",
            p.name,
            med.as_secs_f64() * 1000.0,
            min.as_secs_f64() * 1000.0,
            p.calls,
            p.mutating,
            est,
            b,
            x,
            p.target
        );
    }
    let up = median(&phases[1].times).as_secs_f64();
    if scale > 0.0 && up > 0.0 {
        println!(
            "up --no-wait / up: {:.2} (target <= 0.15)",
            median(&phases[4].times).as_secs_f64() / up
        );
    }
    match bound {
        Ok(b) => println!(
            "bound: longest modeled-wait path over {} resources, {} dependency edges",
            b.resources, b.edges
        ),
        Err(why) => println!("bound: {why}"),
    }
    println!(
        "peak RSS of the tool: {:.1} MiB",
        children_max_rss_kib() as f64 / 1024.0
    );
}
