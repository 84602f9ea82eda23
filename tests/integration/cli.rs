//! Bad input gets a clear error and exit code 2 before any AWS call. The endpoint here is a
//! closed port: had the tool called AWS, it would fail with a connection error and exit 1.

use crate::util::*;

const DEAD_ENDPOINT: &str = "http://127.0.0.1:9";

fn offline(prefix: &str) -> Stack {
    Stack::on(DEAD_ENDPOINT, prefix)
}

#[test]
fn bad_env_suffix_is_refused_with_the_rule() {
    let s = offline("cli");
    for bad in [
        "Prod",
        "1dev",
        "dev_x",
        "dev-",
        "a-very-long-suffix-that-is-too-long",
        "dev--x",
    ] {
        let r = s.run(&["up", "--env-suffix", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid env suffix"),
            "{bad}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("lowercase letters, digits"),
            "{}",
            r.stderr
        );
    }
    let long = s.run(&["up", "--env-suffix", "abcdefghijklmnopqrstuvwx"]);
    assert_eq!(long.code, 2);
    assert!(
        long.stderr.contains("32"),
        "names the target-group limit: {}",
        long.stderr
    );
}

#[test]
fn bad_config_names_the_field_and_line() {
    let s = offline("cli");
    let cfg = s.config("[network]\ncidr = \"10.0.0.0/16\"\naz_count = 5\n");
    let r = s.run(&[
        "--config",
        cfg.to_str().unwrap(),
        "up",
        "--env-suffix",
        &s.suffix,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("az_count") && r.stderr.contains("line 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("allowed values are 2 and 3"),
        "{}",
        r.stderr
    );

    let cfg = s.config("[network]\nnat = \"single\"\n");
    let r = s.run(&[
        "--config",
        cfg.to_str().unwrap(),
        "plan",
        "--env-suffix",
        &s.suffix,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown field `nat`"), "{}", r.stderr);

    let r = s.run(&[
        "--config",
        "/nonexistent.toml",
        "up",
        "--env-suffix",
        &s.suffix,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read config file"), "{}", r.stderr);
}

#[test]
fn bad_flags_exit_2() {
    let s = offline("cli");
    let r = s.run(&["--parallelism", "0", "up", "--env-suffix", "dev"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = s.run(&["--output", "yaml", "up", "--env-suffix", "dev"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = s.run(&["up"]);
    assert_eq!(r.code, 2, "up requires --env-suffix: {}", r.stderr);
}

#[test]
fn a_locked_state_is_refused_naming_the_holder() {
    let s = offline("lock");
    let lock = fintech_infra::state::StateLock::acquire(&s.state_path(), "up").unwrap();
    for cmd in ["up", "down"] {
        let r = s.run(&[cmd, "--env-suffix", &s.suffix]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("locked"), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("pid {}", std::process::id())),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("host"), "{}", r.stderr);
    }
    drop(lock);
}

#[test]
fn commands_without_a_suffix_need_exactly_one_stack() {
    let s = offline("none");
    let r = s.run(&["down"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("needs --env-suffix"), "{}", r.stderr);
    let dir = s.dir.path().join(".fintech-infra");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["aa", "bb"] {
        let f = fintech_infra::state::StateFile::new(name, "us-east-1");
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec(&f).unwrap(),
        )
        .unwrap();
    }
    let r = s.run(&["status"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("aa, bb"), "{}", r.stderr);
}

#[test]
fn newer_or_broken_state_is_refused_and_left_alone() {
    let s = offline("schema");
    let path = s.state_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let newer = format!(r#"{{"schema_version": 7, "suffix": "{}"}}"#, s.suffix);
    std::fs::write(&path, &newer).unwrap();
    let r = s.run(&["down", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("schema version 7"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);
    std::fs::write(&path, "{ not json").unwrap();
    let r = s.run(&["up", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot be read"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
}

#[test]
fn outputs_without_state_says_to_run_up() {
    let s = offline("out");
    let r = s.run(&["outputs", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("run `fintech-infra up"), "{}", r.stderr);
}

#[test]
fn unreachable_aws_fails_the_steps_with_exit_1_and_names_the_operation() {
    let s = offline("dead");
    // A refused connection is retried like any transient fault: two attempts keep it short.
    let r = s.run(&["--max-attempts", "2", "up", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("ec2:DescribeAvailabilityZones"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("kms:DescribeKey"), "{}", r.stderr);
}

#[test]
fn presets_are_named_and_must_agree_with_the_config_file() {
    let s = offline("preset");
    let r = s.run(&["--preset", "huge", "up", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("webapp") && r.stderr.contains("microservices"),
        "{}",
        r.stderr
    );
    let cfg = s.config("preset = \"microservices\"\n");
    let r = s.run(&[
        "--config",
        cfg.to_str().unwrap(),
        "--preset",
        "resilient",
        "up",
        "--env-suffix",
        &s.suffix,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("contradicts"), "{}", r.stderr);
}

/// The bad inputs of issue 11 item 5: each exits 2 before any AWS call (the endpoint is a
/// closed port, or not a URL at all) and leaves the state as it was.
#[test]
fn bad_places_are_refused_before_any_call_and_leave_the_state_alone() {
    let s = offline("cliplace");
    // An endpoint that is not an http(s) URL, given as a flag or in the environment.
    for bad in [
        "not-a-url",
        "ftp://127.0.0.1:21",
        "http://",
        "http://host:port",
    ] {
        let r = s.run(&["--endpoint-url", bad, "up", "--env-suffix", &s.suffix]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid --endpoint-url"),
            "{bad}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("http(s) URL"), "{bad}: {}", r.stderr);
        assert!(!s.state_path().exists(), "{bad}: a state file was written");
        assert!(
            !s.dir.path().join(".fintech-infra").exists(),
            "{bad}: state dir made"
        );
    }
    // A poll cap out of range is refused the same way.
    let r = s
        .command(&["up", "--env-suffix", &s.suffix])
        .env("FINTECH_INFRA_MAX_POLL_SECS", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("FINTECH_INFRA_MAX_POLL_SECS") && err.contains("0.1 to 60"),
        "{err}"
    );
    assert!(!s.state_path().exists(), "a state file was written");
    let r = s
        .command(&["up", "--env-suffix", &s.suffix])
        .env("AWS_ENDPOINT_URL", "ftp://x")
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    // `--state` naming a directory.
    let dir = s.dir.path().join("states");
    std::fs::create_dir_all(&dir).unwrap();
    let r = s.run(&[
        "--state",
        dir.to_str().unwrap(),
        "up",
        "--env-suffix",
        &s.suffix,
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written into it"
    );

    // A state file of schema version 0: refused, byte for byte untouched, by every command.
    let state = s.dir.path().join("zero.json");
    let text = format!(
        "{{\"schema_version\":0,\"suffix\":\"{}\",\"region\":\"us-east-1\",\"tool_version\":\"0\",\
         \"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\",\
         \"resources\":[],\"outputs\":{{}}}}",
        s.suffix
    );
    std::fs::write(&state, &text).unwrap();
    for cmd in ["up", "down", "plan", "status", "verify"] {
        let r = s.run(&[
            "--state",
            state.to_str().unwrap(),
            cmd,
            "--env-suffix",
            &s.suffix,
        ]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("schema version 0"), "{cmd}: {}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(&state).unwrap(),
            text,
            "{cmd} rewrote it"
        );
    }
}

/// A killed run's temp files beside the state are removed by the next run that holds the
/// stack's lock.
#[test]
fn temp_files_of_a_killed_run_are_cleaned_up() {
    let s = offline("clitmp");
    let dir = s.dir.path().join(".fintech-infra");
    std::fs::create_dir_all(&dir).unwrap();
    let stale = dir.join(format!(".{}.json.abc123.tmp", s.suffix));
    std::fs::write(&stale, "{").unwrap();
    let other = dir.join(".other.json.abc123.tmp");
    std::fs::write(&other, "{").unwrap();
    // `up` takes the lock, then fails at its first AWS call (the endpoint is closed).
    let r = s.run(&["--max-attempts", "1", "up", "--env-suffix", &s.suffix]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        !stale.exists(),
        "the stack's own stale temp file is removed"
    );
    assert!(
        other.exists(),
        "another stack's temp file is not ours to remove"
    );
}
