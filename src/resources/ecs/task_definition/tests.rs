//! Unit tests of `task_definition`.

use super::*;

fn spec() -> TaskSpec {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-abc";
    TaskSpec {
        family: "task-web-demo".into(),
        container: "web".into(),
        image: "public.ecr.aws/nginx/nginx:stable".into(),
        cpu: "2048".into(),
        memory: "4096".into(),
        port: 80,
        execution_role_arn: "arn:aws:iam::123456789012:role/role-task-execution-demo".into(),
        task_role_arn: "arn:aws:iam::123456789012:role/role-task-web-demo".into(),
        log_group: "/ecs/web-demo".into(),
        region: "us-east-1".into(),
        environment: BTreeMap::from([("DB_HOST".into(), "aurora.example".into())]),
        secrets: BTreeMap::from([("DB_PASSWORD".into(), format!("{arn}:password::"))]),
        read_only_root: true,
        writable_paths: crate::config::PLACEHOLDER_WRITABLE_PATHS
            .iter()
            .map(|p| p.to_string())
            .collect(),
        collector_image: None,
    }
}

fn described(s: &TaskSpec) -> TaskDefinition {
    TaskDefinition::builder()
        .family(&s.family)
        .revision(3)
        .task_definition_arn(format!(
            "arn:aws:ecs:us-east-1:123456789012:task-definition/{}:3",
            s.family
        ))
        .cpu(&s.cpu)
        .memory(&s.memory)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .execution_role_arn(&s.execution_role_arn)
        .task_role_arn(&s.task_role_arn)
        .set_container_definitions(Some(s.container_definitions().unwrap()))
        .set_volumes(Some(s.volumes()))
        .build()
}

#[test]
fn tracing_adds_a_read_only_collector_the_app_starts_after() {
    let mut s = spec();
    s.collector_image = Some(crate::config::COLLECTOR_IMAGE.into());
    let cs = s.container_definitions().unwrap();
    assert_eq!(cs.len(), 2);
    let (app, collector) = (&cs[0], &cs[1]);
    assert_eq!(collector.name(), Some(COLLECTOR));
    assert_eq!(collector.essential(), Some(false));
    assert_eq!(collector.readonly_root_filesystem(), Some(true));
    let config = collector.environment()[0].value().unwrap();
    assert!(config.contains("endpoint: 127.0.0.1:4317") && config.contains("region: us-east-1"));
    assert!(
        !config.contains("0.0.0.0"),
        "the collector listens on loopback only"
    );
    assert_eq!(app.depends_on()[0].container_name(), COLLECTOR);
    // Its own revision compares equal; one without the collector, or another image, not.
    assert!(s.differences(&described(&s)).is_empty());
    assert_eq!(
        s.differences(&described(&spec())),
        vec!["containerDefinitions", "tracing collector", "dependsOn"]
    );
    let mut other = s.clone();
    other.collector_image =
        Some("public.ecr.aws/aws-observability/aws-otel-collector:v0.1.0".into());
    assert_eq!(s.differences(&described(&other)), vec!["tracing collector"]);
    // Tracing off: the collector's revision is replaced by one without it.
    assert_eq!(
        spec().differences(&described(&s)),
        vec!["containerDefinitions", "dependsOn"]
    );
}

#[test]
fn the_root_is_read_only_with_a_volume_per_writable_path_and_nothing_privileged() {
    let s = spec();
    let c = s.container_definition().unwrap();
    assert_eq!(c.readonly_root_filesystem(), Some(true));
    assert_eq!(c.privileged(), None, "privileged is never set");
    let mut mounts: Vec<(&str, &str, Option<bool>)> = c
        .mount_points()
        .iter()
        .map(|m| {
            (
                m.source_volume().unwrap(),
                m.container_path().unwrap(),
                m.read_only(),
            )
        })
        .collect();
    mounts.sort();
    assert_eq!(
        mounts,
        [
            ("rw-tmp", "/tmp", Some(false)),
            ("rw-var-cache-nginx", "/var/cache/nginx", Some(false)),
            ("rw-var-run", "/var/run", Some(false)),
        ]
    );
    let volumes = s.volumes();
    let names: Vec<&str> = volumes.iter().map(|v| v.name().unwrap()).collect();
    assert_eq!(names, ["rw-tmp", "rw-var-cache-nginx", "rw-var-run"]);
    // Ephemeral: no host path, no driver, no EFS.
    assert!(volumes.iter().all(|v| v.host().is_none()
        && v.docker_volume_configuration().is_none()
        && v.efs_volume_configuration().is_none()));
    let mut none = s.clone();
    none.writable_paths.clear();
    assert!(none.volumes().is_empty());
    assert!(none
        .container_definition()
        .unwrap()
        .mount_points()
        .is_empty());
}

#[test]
fn a_revision_without_the_read_only_settings_is_replaced() {
    let s = spec();
    // A revision registered before this change: writable root, no volumes.
    let mut old = s.clone();
    old.read_only_root = false;
    old.writable_paths.clear();
    let td = described(&old);
    assert_eq!(
        s.differences(&td),
        vec!["readonlyRootFilesystem", "volumes", "mountPoints"]
    );
    // Turning the switch off (an image that cannot run read-only) is a change too.
    let mut off = s.clone();
    off.read_only_root = false;
    assert_eq!(
        off.differences(&described(&s)),
        vec!["readonlyRootFilesystem"]
    );
    // One path more or less changes both the volumes and the mounts.
    let mut more = s.clone();
    more.writable_paths.push("/app/cache".into());
    assert_eq!(
        more.differences(&described(&s)),
        vec!["volumes", "mountPoints"]
    );
    // A privileged container (set by hand) or a volume with a host path is drift.
    let mut c = s.container_definition().unwrap();
    c.privileged = Some(true);
    let td = TaskDefinition::builder()
        .family(&s.family)
        .cpu(&s.cpu)
        .memory(&s.memory)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .execution_role_arn(&s.execution_role_arn)
        .task_role_arn(&s.task_role_arn)
        .container_definitions(c)
        .set_volumes(Some(
            s.volumes()
                .into_iter()
                .map(|v| {
                    let name = v.name().unwrap().to_string();
                    Volume::builder()
                        .name(name)
                        .host(
                            aws_sdk_ecs::types::HostVolumeProperties::builder()
                                .source_path("/host")
                                .build(),
                        )
                        .build()
                })
                .collect(),
        ))
        .build();
    assert_eq!(s.differences(&td), vec!["privileged", "volumes"]);
}

#[test]
fn an_identical_revision_has_no_differences() {
    let s = spec();
    assert!(s.differences(&described(&s)).is_empty());
}

#[test]
fn changed_fields_are_named() {
    let s = spec();
    let td = described(&s);
    let mut other = s.clone();
    other.image = "repo/app:2".into();
    other.memory = "8192".into();
    other
        .secrets
        .insert("DB_USERNAME".into(), "arn:...:username::".into());
    assert_eq!(other.differences(&td), vec!["memory", "image", "secrets"]);
}

#[test]
fn the_password_travels_as_a_secret_not_in_the_environment() {
    let c = spec().container_definition().unwrap();
    assert!(c
        .secrets()
        .iter()
        .any(|s| s.name() == "DB_PASSWORD" && s.value_from().ends_with(":password::")));
    assert!(c
        .environment()
        .iter()
        .all(|kv| !kv.name().unwrap_or_default().contains("PASSWORD")));
    let log = c.log_configuration().unwrap();
    assert_eq!(log.log_driver(), &LogDriver::Awslogs);
    assert_eq!(
        log.options()
            .unwrap()
            .get("awslogs-group")
            .map(String::as_str),
        Some("/ecs/web-demo")
    );
}

#[test]
fn arn_parts() {
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/task-web-demo:12";
    assert_eq!(family_of(arn), Some("task-web-demo"));
    assert_eq!(revision_of(arn), 12);
}
