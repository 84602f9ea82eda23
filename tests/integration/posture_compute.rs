//! Security Hub posture controls of the compute tier (issue 12) against the emulator: ECS.5,
//! the default stack's container has a read-only root file system and one ephemeral task
//! volume (no host path) mounted read-write per path the nginx placeholder writes
//! (`/var/cache/nginx`, `/var/run`, `/tmp`); ECS.4, it is not privileged; Lambda.7, the
//! validator has Active X-Ray tracing, and tracing turned off by hand is turned on again by
//! the next `up`. A second `up` makes no mutating call; turning `read_only_root` off
//! registers a new revision the service moves to, and `down` leaves nothing.

use aws_config::SdkConfig;

use crate::util::*;

/// (volume, container path, read-only) of the wanted mounts, sorted by volume.
const MOUNTS: [(&str, &str, bool); 3] = [
    ("rw-tmp", "/tmp", false),
    ("rw-var-cache-nginx", "/var/cache/nginx", false),
    ("rw-var-run", "/var/run", false),
];

/// The live task definition of the `web` service (the revision the outputs name).
async fn web_task_definition(sdk: &SdkConfig, stack: &Stack) -> aws_sdk_ecs::types::TaskDefinition {
    let arn = stack.output("ecs_task_definition_arns")["web"]
        .as_str()
        .expect("web task definition ARN")
        .to_string();
    aws_sdk_ecs::Client::new(sdk)
        .describe_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap()
}

fn assert_read_only_with_volumes(td: &aws_sdk_ecs::types::TaskDefinition, read_only: bool) {
    let c = &td.container_definitions()[0];
    assert_eq!(
        c.readonly_root_filesystem().unwrap_or(false),
        read_only,
        "readonlyRootFilesystem"
    );
    assert_ne!(c.privileged(), Some(true), "privileged container");
    let mut mounts: Vec<(String, String, bool)> = c
        .mount_points()
        .iter()
        .map(|m| {
            (
                m.source_volume().unwrap_or_default().to_string(),
                m.container_path().unwrap_or_default().to_string(),
                m.read_only().unwrap_or(false),
            )
        })
        .collect();
    mounts.sort();
    let want: Vec<(String, String, bool)> = MOUNTS
        .iter()
        .map(|(v, p, r)| (v.to_string(), p.to_string(), *r))
        .collect();
    assert_eq!(mounts, want, "mount points");
    let mut volumes: Vec<&str> = td.volumes().iter().filter_map(|v| v.name()).collect();
    volumes.sort();
    assert_eq!(volumes, ["rw-tmp", "rw-var-cache-nginx", "rw-var-run"]);
    for v in td.volumes() {
        assert!(
            v.host().and_then(|h| h.source_path()).is_none()
                && v.efs_volume_configuration().is_none()
                && v.docker_volume_configuration().is_none(),
            "volume {v:?} is not an ephemeral task volume"
        );
    }
}

fn assert_no_mutation(run: &Run) {
    let s = run.summary();
    assert_eq!(s["aws_calls"]["mutating"], 0, "second up mutated: {s}");
    assert_eq!(s["changes"]["created"], 0, "{s}");
    assert_eq!(s["changes"]["changed"], 0, "{s}");
}

#[test]
fn default_stack_runs_read_only_unprivileged_and_traced() {
    let stack = Stack::new("pcmp");
    stack.up(&[]).assert_ok();
    let sdk = block_on(sdk_config(&stack.endpoint));

    // ECS.5 / ECS.4.
    let td = block_on(web_task_definition(&sdk, &stack));
    assert_read_only_with_volumes(&td, true);

    // Lambda.7: Active tracing.
    let function = stack.output_str("validator_function_name");
    let cfg = block_on(
        aws_sdk_lambda::Client::new(&sdk)
            .get_function_configuration()
            .function_name(&function)
            .send(),
    )
    .unwrap();
    assert_eq!(
        cfg.tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str()),
        Some("Active"),
        "{function} tracing"
    );

    let again = stack.up(&[]);
    again.assert_ok();
    assert_no_mutation(&again);

    // Tracing turned off by hand is configuration drift: the next `up` turns it on again.
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    block_on(
        lambda
            .update_function_configuration()
            .function_name(&function)
            .tracing_config(
                aws_sdk_lambda::types::TracingConfig::builder()
                    .mode(aws_sdk_lambda::types::TracingMode::PassThrough)
                    .build(),
            )
            .send(),
    )
    .unwrap();
    let run = stack.up(&[]);
    run.assert_ok();
    let s = run.summary();
    let ops: Vec<&str> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        ops.iter()
            .any(|o| o.ends_with(":UpdateFunctionConfiguration")),
        "{ops:?}"
    );
    let cfg = block_on(
        lambda
            .get_function_configuration()
            .function_name(&function)
            .send(),
    )
    .unwrap();
    assert_eq!(
        cfg.tracing_config()
            .and_then(|t| t.mode())
            .map(|m| m.as_str()),
        Some("Active"),
        "tracing restored"
    );

    // An image that cannot run read-only: the switch registers a new revision (volumes kept)
    // and moves the service to it, nothing created.
    let writable = stack.config("[[services]]\nname = \"web\"\nread_only_root = false\n");
    let writable = writable.to_str().unwrap();
    let run = stack.up(&["--config", writable]);
    run.assert_ok();
    let s = run.summary();
    assert_eq!(s["changes"]["created"], 0, "{s}");
    let ops: Vec<&str> = s["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for op in ["ECS:RegisterTaskDefinition", "ECS:UpdateService"] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    let td2 = block_on(web_task_definition(&sdk, &stack));
    assert!(
        td2.revision() > td.revision(),
        "new revision: {:?} after {:?}",
        td2.revision(),
        td.revision()
    );
    assert_read_only_with_volumes(&td2, false);
    let again = stack.up(&["--config", writable]);
    again.assert_ok();
    assert_no_mutation(&again);

    stack.down(&[]).assert_ok();
    let left = block_on(remaining_tagged(&sdk, &stack.suffix));
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[test]
fn a_split_below_its_spot_floor_is_a_usage_error_before_any_call() {
    let stack = Stack::new("pspt");
    let bad = stack.config(
        "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 1, fargate_weight = 1, \
         spot_weight = 1, min_spot_percent = 50 }\n",
    );
    let run = stack.up(&["--config", bad.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    for part in ["min_spot_percent 50", "min_count 2", "0 of 2 tasks (0%)"] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    // Refused while reading the config: no state written, nothing created.
    assert!(!stack.state_path().exists(), "a state was written");
}
