//! Benchmark of a whole stack's life cycle against the project's emulator: wall time of
//! `up`, a no-op second `up`, and `down`, the AWS calls each makes, and the tool's peak memory.
//! At a non-zero time scale the emulator makes resources take that fraction of their real-AWS
//! time, so `elapsed / scale` estimates the wall time against AWS.
//!
//!     cargo bench --bench lifecycle                      # time scale 0 (tool overhead)
//!     BENCH_TIME_SCALE=0.01 cargo bench --bench lifecycle  # estimate real-AWS wall time
//!     BENCH_ITERATIONS=5 BENCH_CONFIG=examples/x.toml cargo bench --bench lifecycle
//!
//! Prints figures; asserts nothing (targets belong here, not in timed tests).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

struct Phase {
    name: &'static str,
    times: Vec<Duration>,
    calls: u64,
    mutating: u64,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn main() {
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
    let work = tempfile::tempdir().expect("temp dir");

    let mut phases = vec![
        Phase {
            name: "up",
            times: vec![],
            calls: 0,
            mutating: 0,
        },
        Phase {
            name: "up (no-op)",
            times: vec![],
            calls: 0,
            mutating: 0,
        },
        Phase {
            name: "down",
            times: vec![],
            calls: 0,
            mutating: 0,
        },
    ];
    for i in 0..iterations {
        let suffix = format!("bench-{i}");
        for (p, cmd) in [(0, "up"), (1, "up"), (2, "down")] {
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
            c.args([cmd, "--env-suffix", &suffix]);
            let start = Instant::now();
            let out = c.output().expect("fintech-infra");
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{cmd} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: serde_json::Value = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .rfind(|v| v["event"] == "summary")
                .expect("summary");
            let ph = &mut phases[p];
            ph.times.push(elapsed);
            ph.calls = summary["aws_calls"]["total"].as_u64().unwrap_or(0);
            ph.mutating = summary["aws_calls"]["mutating"].as_u64().unwrap_or(0);
        }
    }
    let _ = Command::new("bash")
        .arg(root().join("localstack/stop"))
        .arg("--run-dir")
        .arg(&run_dir)
        .output();

    println!("fintech-infra life cycle, {iterations} iteration(s), emulator time scale {scale}");
    println!(
        "{:<12} {:>12} {:>12} {:>10} {:>10} {:>18}",
        "phase", "median ms", "min ms", "AWS calls", "mutating", "est. on AWS (s)"
    );
    for p in &phases {
        let med = median(&p.times);
        let min = *p.times.iter().min().unwrap();
        let est = if scale > 0.0 {
            format!("{:.0}", med.as_secs_f64() / scale)
        } else {
            "-".into()
        };
        println!(
            "{:<12} {:>12.1} {:>12.1} {:>10} {:>10} {:>18}",
            p.name,
            med.as_secs_f64() * 1000.0,
            min.as_secs_f64() * 1000.0,
            p.calls,
            p.mutating,
            est
        );
    }
    println!(
        "peak RSS of the tool: {:.1} MiB",
        children_max_rss_kib() as f64 / 1024.0
    );
}
