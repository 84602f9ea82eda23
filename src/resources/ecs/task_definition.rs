//! `ecs:task-definition`: a Fargate task definition family (one per ECS service), recorded by
//! family name with the ARN of the revision in use.
//!
//! A revision is immutable: `ensure` registers a new one only when the latest ACTIVE revision
//! differs from the wanted one in a field the stack sets ([`TaskSpec::differences`]), so a
//! second `up` registers nothing. RegisterTaskDefinition is retried while a just-created IAM
//! role is not usable yet.
//!
//! Teardown deregisters every ACTIVE revision of the family, then deletes the INACTIVE ones
//! (DeleteTaskDefinitions, at most 10 per call; where an endpoint lacks it, deregistered
//! revisions stay INACTIVE, which costs nothing).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    Compatibility, ContainerCondition, ContainerDefinition, ContainerDependency, KeyValuePair,
    LogConfiguration, LogDriver, MountPoint, NetworkMode, PortMapping, Secret, TaskDefinition,
    TaskDefinitionField, TaskDefinitionStatus, TransportProtocol, Volume,
};

use super::{ecs_tags, MapAws as _};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ecs:task-definition";

/// DeleteTaskDefinitions takes at most 10 revisions per call.
const DELETE_BATCH: usize = 10;

pub struct TaskDefinitionFamily;

/// Everything one task definition revision is made of: the fields the stack sets, compared
/// against the latest ACTIVE revision to decide whether a new one is needed.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub family: String,
    pub container: String,
    pub image: String,
    pub cpu: String,
    pub memory: String,
    pub port: i32,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
    pub region: String,
    pub environment: BTreeMap<String, String>,
    /// Variable name -> `valueFrom` (a Secrets Manager ARN, optionally `:json-key::`).
    pub secrets: BTreeMap<String, String>,
    /// `readonlyRootFilesystem`.
    pub read_only_root: bool,
    /// Paths mounted from ephemeral task volumes, read-write.
    pub writable_paths: Vec<String>,
    /// `[tracing]`: the image of the OpenTelemetry collector sidecar (see [`COLLECTOR`]).
    pub collector_image: Option<String>,
}

/// The name of the tracing sidecar container.
pub const COLLECTOR: &str = "otel-collector";

/// Where the app sends its traces: the collector in the same task (awsvpc tasks share one
/// network namespace, so loopback reaches it and nothing outside the task can).
pub const TRACE_ENVIRONMENT: &[(&str, &str)] = &[
    ("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:2000"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ("OTEL_PROPAGATORS", "xray,tracecontext,baggage"),
];

/// The collector's configuration (`AOT_CONFIG_CONTENT`): OTLP and X-Ray daemon protocol in on
/// loopback only, traces out to X-Ray in the task's region. Traces only: the default ECS
/// configuration also exports metrics through CloudWatch Logs (EMF), which would need log
/// permissions in every task role.
fn collector_config(region: &str) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
      http:
        endpoint: 127.0.0.1:4318
  awsxray:
    endpoint: 127.0.0.1:2000
    transport: udp
processors:
  batch/traces:
    timeout: 1s
    send_batch_size: 50
exporters:
  awsxray:
    region: {region}
service:
  pipelines:
    traces:
      receivers: [otlp, awsxray]
      processors: [batch/traces]
      exporters: [awsxray]
"
    )
}

impl TaskSpec {
    /// The awslogs options: one stream per task under the service's prefix.
    fn log_options(&self) -> HashMap<String, String> {
        self.log_options_for(&self.container)
    }

    fn log_options_for(&self, container: &str) -> HashMap<String, String> {
        HashMap::from([
            ("awslogs-group".to_string(), self.log_group.clone()),
            ("awslogs-region".to_string(), self.region.clone()),
            ("awslogs-stream-prefix".to_string(), container.to_string()),
        ])
    }

    /// The collector sidecar's environment: its configuration.
    fn collector_environment(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "AOT_CONFIG_CONTENT".to_string(),
            collector_config(&self.region),
        )])
    }

    /// The tracing sidecar: not essential (the app keeps serving if it stops; its traces are
    /// lost meanwhile), read-only root (ECS.5: it writes nothing), its logs beside the app's.
    fn collector_definition(&self, image: &str) -> Result<ContainerDefinition> {
        let log = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .set_options(Some(self.log_options_for(COLLECTOR)))
            .build()
            .context("building the collector's log configuration")?;
        Ok(ContainerDefinition::builder()
            .name(COLLECTOR)
            .image(image)
            .essential(false)
            .readonly_root_filesystem(true)
            .command("--config=env:AOT_CONFIG_CONTENT")
            .set_environment(Some(
                self.collector_environment()
                    .into_iter()
                    .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
                    .collect(),
            ))
            .log_configuration(log)
            .build())
    }

    /// Every container of the revision: the app, then the collector when tracing is on.
    pub fn container_definitions(&self) -> Result<Vec<ContainerDefinition>> {
        let mut v = vec![self.container_definition()?];
        if let Some(image) = &self.collector_image {
            v.push(self.collector_definition(image)?);
        }
        Ok(v)
    }

    /// (volume name, container path) per writable path, sorted by volume name.
    fn writable_mounts(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .writable_paths
            .iter()
            .map(|p| (crate::config::writable_volume_name(p), p.clone()))
            .collect();
        v.sort();
        v
    }

    /// The task's volumes: one per writable path, with neither a host path nor a Docker,
    /// EFS or FSx configuration. On Fargate such a bind mount lives in the task's ephemeral
    /// storage and goes with the task, so nothing written there outlives it.
    pub fn volumes(&self) -> Vec<Volume> {
        self.writable_mounts()
            .into_iter()
            .map(|(name, _)| Volume::builder().name(name).build())
            .collect()
    }

    pub fn container_definition(&self) -> Result<ContainerDefinition> {
        let log = LogConfiguration::builder()
            .log_driver(LogDriver::Awslogs)
            .set_options(Some(self.log_options()))
            .build()
            .context("building the log configuration")?;
        let secrets = self
            .secrets
            .iter()
            .map(|(k, v)| Secret::builder().name(k).value_from(v).build())
            .collect::<Result<Vec<_>, _>>()
            .context("building container secrets")?;
        let env = self
            .environment
            .iter()
            .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let mounts = self
            .writable_mounts()
            .into_iter()
            .map(|(volume, path)| {
                MountPoint::builder()
                    .source_volume(volume)
                    .container_path(path)
                    .read_only(false)
                    .build()
            })
            .collect();
        // `privileged` is never set (ECS.4): Fargate refuses privileged containers anyway, and
        // leaving the field out keeps it false on every launch type; `differences` treats a
        // revision that has it as drift.
        // With tracing, the app starts once its collector has: early spans are not lost.
        let depends = match &self.collector_image {
            Some(_) => Some(vec![ContainerDependency::builder()
                .container_name(COLLECTOR)
                .condition(ContainerCondition::Start)
                .build()
                .context("building dependsOn")?]),
            None => None,
        };
        Ok(ContainerDefinition::builder()
            .name(&self.container)
            .image(&self.image)
            .essential(true)
            .set_depends_on(depends)
            .readonly_root_filesystem(self.read_only_root)
            .set_mount_points(Some(mounts))
            .port_mappings(
                PortMapping::builder()
                    .container_port(self.port)
                    .protocol(TransportProtocol::Tcp)
                    .build(),
            )
            .log_configuration(log)
            .set_environment(Some(env))
            .set_secrets(Some(secrets))
            .build())
    }

    /// The fields of `td` that differ from this spec (empty: the revision is what we want).
    pub fn differences(&self, td: &TaskDefinition) -> Vec<&'static str> {
        let mut d = Vec::new();
        if td.family() != Some(self.family.as_str()) {
            d.push("family");
        }
        if td.cpu() != Some(self.cpu.as_str()) {
            d.push("cpu");
        }
        if td.memory() != Some(self.memory.as_str()) {
            d.push("memory");
        }
        if td.network_mode() != Some(&NetworkMode::Awsvpc) {
            d.push("networkMode");
        }
        if td.requires_compatibilities() != [Compatibility::Fargate] {
            d.push("requiresCompatibilities");
        }
        if td.execution_role_arn() != Some(self.execution_role_arn.as_str()) {
            d.push("executionRoleArn");
        }
        if td.task_role_arn() != Some(self.task_role_arn.as_str()) {
            d.push("taskRoleArn");
        }
        let containers = td.container_definitions();
        let Some(c) = containers
            .iter()
            .find(|c| c.name() == Some(self.container.as_str()))
        else {
            d.push("containerDefinitions");
            return d;
        };
        let collector = containers.iter().find(|c| c.name() == Some(COLLECTOR));
        if containers.len() != 1 + usize::from(self.collector_image.is_some()) {
            d.push("containerDefinitions");
        }
        match (&self.collector_image, collector) {
            (None, _) => {}
            (Some(_), None) => d.push("tracing collector"),
            (Some(image), Some(t)) => {
                let env = env_map(t.environment());
                let log_ok = t.log_configuration().is_some_and(|l| {
                    l.log_driver() == &LogDriver::Awslogs
                        && l.options() == Some(&self.log_options_for(COLLECTOR))
                });
                if t.image() != Some(image.as_str())
                    || t.readonly_root_filesystem() != Some(true)
                    || t.privileged() == Some(true)
                    || t.command() != ["--config=env:AOT_CONFIG_CONTENT"]
                    || env != self.collector_environment()
                    || !log_ok
                {
                    d.push("tracing collector");
                }
            }
        }
        let depends: Vec<(&str, &str)> = c
            .depends_on()
            .iter()
            .map(|x| (x.container_name(), x.condition().as_str()))
            .collect();
        let want_depends: Vec<(&str, &str)> = match &self.collector_image {
            Some(_) => vec![(COLLECTOR, "START")],
            None => vec![],
        };
        if depends != want_depends {
            d.push("dependsOn");
        }
        if c.name() != Some(self.container.as_str()) {
            d.push("container name");
        }
        if c.image() != Some(self.image.as_str()) {
            d.push("image");
        }
        if c.essential() == Some(false) {
            d.push("essential");
        }
        if c.readonly_root_filesystem().unwrap_or(false) != self.read_only_root {
            d.push("readonlyRootFilesystem");
        }
        if c.privileged() == Some(true) {
            d.push("privileged");
        }
        // Volumes: exactly ours, each without host path or driver configuration (an empty
        // `host` is how some endpoints describe "no host path").
        let mut volumes: Vec<(String, bool)> = td
            .volumes()
            .iter()
            .map(|v| {
                let plain = v.host().and_then(|h| h.source_path()).is_none()
                    && v.docker_volume_configuration().is_none()
                    && v.efs_volume_configuration().is_none()
                    && v.fsx_windows_file_server_volume_configuration().is_none()
                    && v.configured_at_launch() != Some(true);
                (v.name().unwrap_or_default().to_string(), plain)
            })
            .collect();
        volumes.sort();
        let wanted = self.writable_mounts();
        let want_volumes: Vec<(String, bool)> =
            wanted.iter().map(|(n, _)| (n.clone(), true)).collect();
        if volumes != want_volumes {
            d.push("volumes");
        }
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
        let want_mounts: Vec<(String, String, bool)> =
            wanted.into_iter().map(|(n, p)| (n, p, false)).collect();
        if mounts != want_mounts || !c.volumes_from().is_empty() {
            d.push("mountPoints");
        }
        let ports: Vec<(Option<i32>, &str)> = c
            .port_mappings()
            .iter()
            .map(|p| {
                (
                    p.container_port(),
                    p.protocol().map(|p| p.as_str()).unwrap_or("tcp"),
                )
            })
            .collect();
        if ports != [(Some(self.port), "tcp")] {
            d.push("portMappings");
        }
        let log_ok = c.log_configuration().is_some_and(|l| {
            l.log_driver() == &LogDriver::Awslogs && l.options() == Some(&self.log_options())
        });
        if !log_ok {
            d.push("logConfiguration");
        }
        let env = env_map(c.environment());
        if env != self.environment {
            d.push("environment");
        }
        let secrets: BTreeMap<String, String> = c
            .secrets()
            .iter()
            .map(|s| (s.name().to_string(), s.value_from().to_string()))
            .collect();
        if secrets != self.secrets {
            d.push("secrets");
        }
        d
    }
}

/// A container's `environment` as a map.
fn env_map(kvs: &[KeyValuePair]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_string(),
                kv.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// `task-web-demo` from `arn:aws:ecs:...:task-definition/task-web-demo:3`.
fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit('/').next()?.rsplit_once(':').map(|(f, _)| f)
}

/// The revision number of a task definition ARN (0 if it has none).
fn revision_of(arn: &str) -> u32 {
    arn.rsplit_once(':')
        .and_then(|(_, r)| r.parse().ok())
        .unwrap_or(0)
}

/// Every revision of `family` in `status` (ListTaskDefinitions' `familyPrefix` is the
/// full family name; checked again here).
async fn arns(ctx: &StepCtx, family: &str, status: TaskDefinitionStatus) -> Result<Vec<String>> {
    let mut pages = ctx
        .aws()
        .ecs()
        .list_task_definitions()
        .family_prefix(family)
        .status(status)
        .into_paginator()
        .send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.aws("ecs:ListTaskDefinitions", family)?;
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| family_of(a) == Some(family))
                .cloned(),
        );
    }
    Ok(arns)
}

/// The latest ACTIVE revision of a family, if any.
async fn latest(ctx: &StepCtx, family: &str) -> Result<Option<TaskDefinition>> {
    let ecs = ctx.aws().ecs();
    let arns = arns(ctx, family, TaskDefinitionStatus::Active).await?;
    let Some(latest) = arns.iter().max_by_key(|a| revision_of(a)) else {
        return Ok(None);
    };
    let out = ecs
        .describe_task_definition()
        .task_definition(latest)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .aws("ecs:DescribeTaskDefinition", latest)?;
    Ok(out.task_definition)
}

async fn register(ctx: &StepCtx, spec: &TaskSpec) -> Result<String> {
    let ecs = ctx.aws().ecs();
    let containers = spec.container_definitions()?;
    let volumes = spec.volumes();
    let tags = ecs_tags(ctx, &spec.family);
    let out = ctx
        .retry_iam(&format!("task definition {}", spec.family), || {
            ecs.register_task_definition()
                .family(&spec.family)
                .requires_compatibilities(Compatibility::Fargate)
                .network_mode(NetworkMode::Awsvpc)
                .cpu(&spec.cpu)
                .memory(&spec.memory)
                .execution_role_arn(&spec.execution_role_arn)
                .task_role_arn(&spec.task_role_arn)
                .set_container_definitions(Some(containers.clone()))
                .set_volumes(Some(volumes.clone()))
                .set_tags(Some(tags.clone()))
                .send()
                .map_aws("ecs:RegisterTaskDefinition", &spec.family)
        })
        .await?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .context("RegisterTaskDefinition returned no ARN")
}

/// Registers a revision of `current`'s family that differs from it only in the image of
/// `container` (`fintech-infra deploy`): every other field is copied, so the next `up`, whose
/// spec names the released image, finds the latest revision as it wants it. Returns the new
/// revision's ARN.
pub async fn register_with_image(
    aws: &crate::aws::Aws,
    current: &str,
    container: &str,
    image: &str,
) -> Result<String> {
    let ecs = aws.ecs();
    let out = ecs
        .describe_task_definition()
        .task_definition(current)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .aws("ecs:DescribeTaskDefinition", current)?;
    let td = out
        .task_definition
        .with_context(|| format!("DescribeTaskDefinition returned no {current}"))?;
    let mut containers = td.container_definitions.clone().unwrap_or_default();
    let app = containers
        .iter_mut()
        .find(|c| c.name.as_deref() == Some(container))
        .with_context(|| format!("task definition {current} has no container `{container}`"))?;
    app.image = Some(image.to_string());
    let family = td.family().context("the task definition has no family")?;
    let out = ecs
        .register_task_definition()
        .family(family)
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_container_definitions(Some(containers))
        .set_volumes(td.volumes.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_tags(out.tags.filter(|t| !t.is_empty()))
        .send()
        .await
        .aws("ecs:RegisterTaskDefinition", family)?;
    out.task_definition
        .and_then(|t| t.task_definition_arn)
        .context("RegisterTaskDefinition returned no ARN")
}

/// Deregisters one revision (a release that was rolled back), so that the family's latest
/// ACTIVE revision is again the one the service runs and the next `up` registers nothing.
pub async fn deregister(aws: &crate::aws::Aws, arn: &str) -> Result<()> {
    aws.ecs()
        .deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .aws("ecs:DeregisterTaskDefinition", arn)?;
    Ok(())
}

/// The family `spec.family`, recorded with the ARN of the revision to run and the ECS
/// service it belongs to (`service`); registers a new revision when the latest differs from
/// `spec`. `inputs_pending`: some of the spec's inputs are plan-mode placeholders, so
/// nothing is compared.
pub async fn ensure(
    ctx: &StepCtx,
    spec: &TaskSpec,
    service: &str,
    inputs_pending: bool,
) -> Result<Found> {
    let family = &spec.family;
    let latest = latest(ctx, family).await?;
    let found = ctx
        .ensure(
            KIND,
            family,
            || async {
                Ok(latest.as_ref().map(|t| {
                    Found::new(family)
                        .arn(t.task_definition_arn().unwrap_or_default())
                        .attr("service", service)
                }))
            },
            || async {
                let arn = register(ctx, spec).await?;
                Ok(Found::new(family).arn(arn).attr("service", service))
            },
        )
        .await?;
    let Some(latest) = latest else {
        return Ok(found);
    };
    // In plan mode before the iam step ran, the roles are unknown: nothing to compare.
    if inputs_pending || spec.task_role_arn.is_empty() {
        return Ok(found);
    }
    let diff = spec.differences(&latest);
    if diff.is_empty() {
        return Ok(found);
    }
    let registered = std::sync::Mutex::new(None::<Found>);
    ctx.change(
        KIND,
        family,
        &format!("register a new revision ({} changed)", diff.join(", ")),
        || async {
            let arn = register(ctx, spec).await?;
            let updated = found.clone().arn(arn);
            ctx.record(KIND, family, &updated)?;
            *registered.lock().unwrap_or_else(|e| e.into_inner()) = Some(updated);
            Ok(())
        },
    )
    .await?;
    // In plan mode nothing was registered: the service still names the current revision.
    Ok(registered
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(found))
}

/// Deregisters every ACTIVE revision of the family, then deletes the INACTIVE ones
/// (DeleteTaskDefinitions; where an endpoint lacks it, deregistered revisions stay
/// INACTIVE, which costs nothing).
pub async fn delete_family(ctx: &StepCtx, family: &str) -> Result<()> {
    let ecs = ctx.aws().ecs();
    for arn in arns(ctx, family, TaskDefinitionStatus::Active).await? {
        ctx.check_cancelled()?;
        ecs.deregister_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .aws("ecs:DeregisterTaskDefinition", &arn)
            .not_found_ok()?;
    }
    let inactive = arns(ctx, family, TaskDefinitionStatus::Inactive).await?;
    for batch in inactive.chunks(DELETE_BATCH) {
        ctx.check_cancelled()?;
        let r = ecs
            .delete_task_definitions()
            .set_task_definitions(Some(batch.to_vec()))
            .send()
            .await
            .aws("ecs:DeleteTaskDefinitions", family);
        match r {
            Ok(out) => {
                for f in out.failures() {
                    // Already being deleted, or gone: fine. Anything else is reported
                    // but does not fail the teardown (the revision is deregistered).
                    let reason = f.reason().unwrap_or_default();
                    if !reason.contains("does not exist") && !reason.contains("DELETE_IN_PROGRESS")
                    {
                        ctx.sh.reporter.message(
                            ctx.step,
                            &format!(
                                "task definition {} stays INACTIVE: {reason}",
                                f.arn().unwrap_or_default()
                            ),
                        );
                    }
                }
            }
            Err(e)
                if matches!(
                    e.code.as_deref(),
                    Some("UnknownOperationException" | "InvalidAction" | "NotImplemented")
                ) =>
            {
                tracing::debug!(error = %e, "DeleteTaskDefinitions unsupported here");
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[async_trait]
impl Provider for TaskDefinitionFamily {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let active = arns(ctx, &rec.id, TaskDefinitionStatus::Active).await?;
        Ok((!active.is_empty()).then(|| format!("{} active revision(s)", active.len())))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete_family(ctx, &rec.id)
            .await
            .with_context(|| format!("deleting task definition family {}", rec.id))
    }
}

#[cfg(test)]
mod tests;
