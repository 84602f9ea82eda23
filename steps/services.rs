//! Services step: per `[[services]]` entry, a KMS-encrypted CloudWatch log group, a Fargate
//! task definition, an ECS service in the private subnets, its Cloud Map registration (when the
//! cluster has a namespace) and target-tracking auto scaling on CPU and memory.
//!
//! The task definition runs the configured image (default: a public placeholder) with the
//! awslogs driver; the database credentials reach the container through `secrets` (ECS reads
//! them from Secrets Manager with the execution role at task start), never through
//! `environment`. The container's root file system is read-only (`services[].read_only_root`,
//! Security Hub ECS.5) and every path the image writes to (`services[].writable_paths`) is an
//! ephemeral task volume mounted read-write: AWS accepts a read-only container that writes
//! elsewhere, and it then exits at start (AWS-CONTRACTS B7). The container is never privileged
//! (ECS.4). The service runs on the capacity provider split of its `capacity` (FARGATE
//! base, Spot share), without public IPs, spread over the private subnets of every zone, with
//! the deployment circuit breaker rolling back failed deployments.
//!
//! `up` registers a new task definition revision only when the latest ACTIVE one differs from
//! the wanted one in a field this step sets, and updates the service only when it drifted, so a
//! second `up` changes nothing. The services are set up concurrently.
//!
//! Teardown per service: scaling policies and the scalable target, the ECS service (deleted
//! with force, then waited until INACTIVE: a DRAINING service still blocks its cluster and its
//! Cloud Map service), the Cloud Map service, every revision of the task definition family
//! (deregistered, then deleted), the log group.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{
    CustomizedMetricSpecification, MetricDimension, MetricStatistic, MetricType, PolicyType,
    PredefinedMetricSpecification, ScalableDimension, ScalingPolicy, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_ecs::types::{
    AssignPublicIp, AvailabilityZoneRebalancing, AwsVpcConfiguration, Compatibility,
    ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, KeyValuePair,
    LoadBalancer, LogConfiguration, LogDriver, MountPoint, NetworkConfiguration, NetworkMode,
    PortMapping, PropagateTags, Secret, Service, ServiceField, ServiceRegistry, TaskDefinition,
    TaskDefinitionField, TaskDefinitionStatus, TransportProtocol, Volume,
};
use aws_sdk_servicediscovery::types::{
    DnsConfig, DnsRecord, FilterCondition, HealthCheckCustomConfig, RecordType, RoutingPolicy,
    ServiceFilter, ServiceFilterName,
};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::{Permission, ServiceConfig};
use crate::naming::STACK_TAG;
use crate::resources::logs::log_group;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::cluster::{self, StrategyItem};

pub use crate::resources::logs::log_group::KIND as LOG_GROUP;
pub const TASK_DEFINITION: &str = "ecs:task-definition";
pub const SERVICE: &str = "ecs:service";
pub const SCALABLE_TARGET: &str = "application-autoscaling:scalable-target";
pub const SCALING_POLICY: &str = "application-autoscaling:scaling-policy";
pub const DISCOVERY_SERVICE: &str = "servicediscovery:service";

pub const OUT_SERVICE_NAMES: &str = "ecs_service_names";
pub const OUT_LOG_GROUPS: &str = "ecs_log_groups";
pub const OUT_TASK_DEFINITION_ARNS: &str = "ecs_task_definition_arns";

/// How long a deleted service may stay DRAINING (AWS: its tasks get `stopTimeout`, 30 s by
/// default, plus a load balancer's deregistration delay once one is attached, 300 s default).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Seconds after a scale-in / scale-out before the next one: scale out fast, in slowly.
const SCALE_IN_COOLDOWN: i32 = 300;
const SCALE_OUT_COOLDOWN: i32 = 60;
/// TTL of the Cloud Map A records: short, so callers stop using a replaced task quickly.
const DNS_TTL: i64 = 10;
/// DeleteTaskDefinitions takes at most 10 revisions per call.
const DELETE_TASK_DEFINITIONS_BATCH: usize = 10;

pub struct Services;

/// The deterministic names of one service's resources.
#[derive(Debug, Clone)]
pub struct ServiceNames {
    pub service: String,
    pub log_group: String,
    pub family: String,
    pub ecs_service: String,
    pub cpu_policy: String,
    pub memory_policy: String,
    pub requests_policy: String,
    pub db_connections_policy: String,
}

impl ServiceNames {
    pub fn new(ctx: &StepCtx, svc: &str) -> ServiceNames {
        let s = ctx.suffix();
        ServiceNames {
            service: svc.to_string(),
            log_group: format!("/ecs/{svc}-{s}"),
            family: format!("task-{svc}-{s}"),
            ecs_service: format!("svc-{svc}-{s}"),
            cpu_policy: format!("scale-cpu-{svc}-{s}"),
            memory_policy: format!("scale-memory-{svc}-{s}"),
            requests_policy: format!("scale-requests-{svc}-{s}"),
            db_connections_policy: format!("scale-dbconn-{svc}-{s}"),
        }
    }

    /// Application Auto Scaling's ID of the service's desired count.
    pub fn resource_id(&self, cluster: &str) -> String {
        format!("service/{cluster}/{}", self.ecs_service)
    }
}

/// Everything one task definition revision is made of: the fields this step sets, compared
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
}

impl TaskSpec {
    /// The awslogs options: one stream per task under the service's prefix.
    fn log_options(&self) -> HashMap<String, String> {
        HashMap::from([
            ("awslogs-group".to_string(), self.log_group.clone()),
            ("awslogs-region".to_string(), self.region.clone()),
            ("awslogs-stream-prefix".to_string(), self.container.clone()),
        ])
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
        Ok(ContainerDefinition::builder()
            .name(&self.container)
            .image(&self.image)
            .essential(true)
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
        let [c] = td.container_definitions() else {
            d.push("containerDefinitions");
            return d;
        };
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
        let env: BTreeMap<String, String> = c
            .environment()
            .iter()
            .map(|kv| {
                (
                    kv.name().unwrap_or_default().to_string(),
                    kv.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
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

/// What the ECS service should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub cluster: String,
    pub task_definition_arn: String,
    pub desired_count: i32,
    pub min_count: i32,
    pub max_count: i32,
    pub strategy: Vec<StrategyItem>,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub registry_arn: Option<String>,
    /// The ALB target group the service's tasks register in (alb output
    /// `alb_service_target_groups`), with the container and port the ALB sends to.
    pub load_balancer: Option<LbAttachment>,
    /// Seconds ECS ignores failing ALB health checks of a new task (only valid, and only sent,
    /// with a load balancer).
    pub health_check_grace_secs: i32,
}

/// Where the ALB sends a service's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct LbAttachment {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
}

impl ServiceSpec {
    fn load_balancers(&self) -> Option<Vec<LoadBalancer>> {
        self.load_balancer.as_ref().map(|l| {
            vec![LoadBalancer::builder()
                .target_group_arn(&l.target_group_arn)
                .container_name(&l.container_name)
                .container_port(l.container_port)
                .build()]
        })
    }

    /// The grace period, when there is a load balancer to apply it to.
    fn grace(&self) -> Option<i32> {
        self.load_balancer
            .as_ref()
            .map(|_| self.health_check_grace_secs)
    }

    fn network(&self) -> Result<NetworkConfiguration> {
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.subnets.clone()))
                    .security_groups(&self.security_group)
                    // Private subnets: tasks reach out through the NAT gateway only.
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .context("building the awsvpc configuration")?,
            )
            .build())
    }

    fn deployment() -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            // Start the new tasks before stopping old ones: capacity never drops.
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .build()
    }

    fn registries(&self) -> Option<Vec<ServiceRegistry>> {
        self.registry_arn
            .as_ref()
            .map(|arn| vec![ServiceRegistry::builder().registry_arn(arn).build()])
    }

    /// How the described service differs from this spec. Fields an emulator leaves out of
    /// DescribeServices (moto drops the capacity provider strategy and the deployment
    /// configuration) are compared only when present: AWS always returns them.
    pub fn differences(&self, s: &Service) -> Vec<&'static str> {
        let mut d = Vec::new();
        if s.task_definition() != Some(self.task_definition_arn.as_str()) {
            d.push("task definition");
        }
        // Auto scaling owns the desired count between min and max; only a count outside that
        // range (e.g. after min/max changed) is drift.
        if s.desired_count() < self.min_count || s.desired_count() > self.max_count {
            d.push("desired count");
        }
        let strategy = cluster::from_sdk(s.capacity_provider_strategy());
        if !strategy.is_empty() && strategy != self.strategy {
            d.push("capacity provider strategy");
        }
        if s.launch_type().is_some_and(|l| l.as_str() == "FARGATE") {
            // A service on a launch type rather than capacity providers: switch it.
            d.push("capacity provider strategy");
        }
        match s
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
        {
            Some(v) => {
                let mut subnets = v.subnets().to_vec();
                subnets.sort();
                let mut want = self.subnets.clone();
                want.sort();
                if subnets != want
                    || v.security_groups() != [self.security_group.clone()]
                    || v.assign_public_ip() != Some(&AssignPublicIp::Disabled)
                {
                    d.push("network configuration");
                }
            }
            None => d.push("network configuration"),
        }
        if s.enable_execute_command() {
            d.push("enableExecuteCommand");
        }
        if let Some(cb) = s
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker())
        {
            if !(cb.enable() && cb.rollback()) {
                d.push("deployment circuit breaker");
            }
        }
        let registries: Vec<&str> = s
            .service_registries()
            .iter()
            .filter_map(|r| r.registry_arn())
            .collect();
        let want: Vec<&str> = self.registry_arn.iter().map(String::as_str).collect();
        if registries != want {
            d.push("service registries");
        }
        if s.availability_zone_rebalancing()
            .is_some_and(|r| r != &AvailabilityZoneRebalancing::Enabled)
        {
            d.push("availabilityZoneRebalancing");
        }
        let attached: Vec<(Option<&str>, Option<&str>, Option<i32>)> = s
            .load_balancers()
            .iter()
            .map(|l| (l.target_group_arn(), l.container_name(), l.container_port()))
            .collect();
        let want: Vec<(Option<&str>, Option<&str>, Option<i32>)> = self
            .load_balancer
            .iter()
            .map(|l| {
                (
                    Some(l.target_group_arn.as_str()),
                    Some(l.container_name.as_str()),
                    Some(l.container_port),
                )
            })
            .collect();
        if attached != want {
            d.push("load balancers");
        }
        // moto leaves the grace period out of DescribeServices; AWS always returns it.
        if let (Some(want), Some(got)) = (self.grace(), s.health_check_grace_period_seconds()) {
            if want != got {
                d.push("health check grace period");
            }
        }
        d
    }
}

/// What a target-tracking policy follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// One of Application Auto Scaling's predefined ECS metrics; `ALBRequestCountPerTarget`
    /// needs the label `app/<lb>/<id>/targetgroup/<tg>/<id>`.
    Predefined(MetricType, Option<String>),
    /// The Aurora cluster's `DatabaseConnections` (average), by cluster identifier.
    DbConnections(String),
}

impl Metric {
    fn describe(&self) -> &str {
        match self {
            Metric::Predefined(m, _) => m.as_str(),
            Metric::DbConnections(_) => "AWS/RDS DatabaseConnections",
        }
    }
}

/// One target-tracking policy of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    pub name: String,
    pub metric: Metric,
    pub target: f64,
}

impl PolicySpec {
    pub fn configuration(&self) -> Result<TargetTrackingScalingPolicyConfiguration> {
        let b = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(self.target)
            .scale_in_cooldown(SCALE_IN_COOLDOWN)
            .scale_out_cooldown(SCALE_OUT_COOLDOWN)
            .disable_scale_in(false);
        let b = match &self.metric {
            Metric::Predefined(m, label) => b.predefined_metric_specification(
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(m.clone())
                    .set_resource_label(label.clone())
                    .build()
                    .context("building the predefined metric")?,
            ),
            Metric::DbConnections(cluster) => b.customized_metric_specification(
                CustomizedMetricSpecification::builder()
                    .namespace("AWS/RDS")
                    .metric_name("DatabaseConnections")
                    .dimensions(
                        MetricDimension::builder()
                            .name("DBClusterIdentifier")
                            .value(cluster)
                            .build()
                            .context("building the metric dimension")?,
                    )
                    .statistic(MetricStatistic::Average)
                    .build(),
            ),
        };
        b.build()
            .context("building the target tracking configuration")
    }

    /// Whether a described policy is this one.
    pub fn matches(&self, p: &ScalingPolicy) -> bool {
        let Some(c) = p.target_tracking_scaling_policy_configuration() else {
            return false;
        };
        let metric = match &self.metric {
            Metric::Predefined(m, label) => c.predefined_metric_specification().is_some_and(|s| {
                s.predefined_metric_type() == m && s.resource_label() == label.as_deref()
            }),
            Metric::DbConnections(cluster) => {
                c.customized_metric_specification().is_some_and(|s| {
                    s.namespace() == Some("AWS/RDS")
                        && s.metric_name() == Some("DatabaseConnections")
                        && s.statistic() == Some(&MetricStatistic::Average)
                        && s.dimensions().len() == 1
                        && s.dimensions()[0].name() == "DBClusterIdentifier"
                        && s.dimensions()[0].value() == cluster
                })
            }
        };
        p.policy_type() == &PolicyType::TargetTrackingScaling
            && (c.target_value() - self.target).abs() < 1e-9
            && metric
            && c.scale_in_cooldown() == Some(SCALE_IN_COOLDOWN)
            && c.scale_out_cooldown() == Some(SCALE_OUT_COOLDOWN)
            && c.disable_scale_in() != Some(true)
    }
}

/// The `ALBRequestCountPerTarget` label of a target group behind a load balancer:
/// `app/<lb>/<id>/targetgroup/<tg>/<id>`, from the two ARNs.
pub fn request_count_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.split_once(":targetgroup/")?.1;
    Some(format!("{lb}/targetgroup/{tg}"))
}

/// A service's policies: CPU and memory, and, when configured, ALB requests per target
/// (`label`: see [`request_count_label`]) and the database's connections (`db_cluster`).
pub fn policy_specs(
    names: &ServiceNames,
    svc: &ServiceConfig,
    label: Option<String>,
    db_cluster: Option<String>,
) -> Vec<PolicySpec> {
    let mut v = vec![
        PolicySpec {
            name: names.cpu_policy.clone(),
            metric: Metric::Predefined(MetricType::EcsServiceAverageCpuUtilization, None),
            target: svc.cpu_target,
        },
        PolicySpec {
            name: names.memory_policy.clone(),
            metric: Metric::Predefined(MetricType::EcsServiceAverageMemoryUtilization, None),
            target: svc.memory_target,
        },
    ];
    if let (Some(target), Some(label)) = (svc.request_count_target, label) {
        v.push(PolicySpec {
            name: names.requests_policy.clone(),
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some(label)),
            target: f64::from(target),
        });
    }
    if let (Some(target), Some(cluster)) = (svc.db_connections_target, db_cluster) {
        v.push(PolicySpec {
            name: names.db_connections_policy.clone(),
            metric: Metric::DbConnections(cluster),
            target: f64::from(target),
        });
    }
    v
}

/// An output value as text (endpoints are strings, ports may be numbers).
fn output_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !is_pending(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The inputs every service shares.
struct Inputs {
    cluster: String,
    namespace_id: Option<String>,
    namespace_name: Option<String>,
    subnets: Vec<String>,
    /// `{service: security group ID}`: each service's tasks run in their own group (network
    /// output `sg_service_ids`), which admits exactly its callers.
    security_groups: BTreeMap<String, String>,
    kms_key_arn: String,
    execution_role: String,
    task_roles: BTreeMap<String, String>,
    db_secret_arn: Option<String>,
    db_env: BTreeMap<String, String>,
    sessions_table: Option<String>,
    /// `{service: target group ARN}` of the services the ALB serves.
    target_groups: BTreeMap<String, String>,
}

impl Inputs {
    fn load(ctx: &StepCtx) -> Result<Inputs> {
        let uses = |p: Permission| {
            ctx.cfg()
                .services
                .0
                .iter()
                .any(|s| s.permissions.contains(&p))
        };
        let (namespace_id, namespace_name) = match &ctx.cfg().cluster.namespace {
            Some(ns) => (
                Some(ctx.input_str(cluster::OUT_NAMESPACE_ID)?),
                Some(ns.0.clone()),
            ),
            None => (None, None),
        };
        let db_secret_arn = if uses(Permission::Database) {
            Some(ctx.input_str("db_secret_arn")?)
        } else {
            None
        };
        // Where the database is: plain configuration, fine in `environment`.
        let mut db_env = BTreeMap::new();
        for (var, key) in [
            ("DB_HOST", "db_writer_endpoint"),
            ("DB_READER_HOST", "db_reader_endpoint"),
            ("DB_PORT", "db_port"),
            ("DB_NAME", "db_name"),
        ] {
            if let Some(v) = ctx.output(key).as_ref().and_then(output_text) {
                db_env.insert(var.to_string(), v);
            }
        }
        let sessions_table = ctx
            .output("sessions_table_name")
            .as_ref()
            .and_then(output_text);
        Ok(Inputs {
            cluster: ctx.input_str(cluster::OUT_CLUSTER_NAME)?,
            namespace_id,
            namespace_name,
            subnets: ctx.input_list("private_subnet_ids")?,
            security_groups: ctx.input_map(crate::steps::network::OUT_SERVICE_SG_IDS)?,
            kms_key_arn: ctx.input_str(crate::steps::kms::OUT_KEY_ARN)?,
            execution_role: ctx.input_str("iam_task_execution_role_arn")?,
            task_roles: ctx.input_map("iam_task_role_arns")?,
            db_secret_arn,
            db_env,
            sessions_table,
            target_groups: ctx.input_map(crate::steps::alb::OUT_SERVICE_TARGET_GROUPS)?,
        })
    }

    /// True when some input is a plan-mode placeholder: lookups and comparisons that need it
    /// are skipped.
    fn pending(&self) -> bool {
        is_pending(&self.cluster)
            || self.subnets.iter().any(|s| is_pending(s))
            || is_pending(&self.execution_role)
            || self.namespace_id.as_deref().is_some_and(is_pending)
    }

    /// The security group of `service`'s tasks. In plan mode a group the network step has
    /// not made yet is a placeholder: an existing service then shows as changing its network
    /// configuration, which is what `up` will do.
    fn security_group(&self, ctx: &StepCtx, service: &str) -> Result<String> {
        match self.security_groups.get(service) {
            Some(id) => Ok(id.clone()),
            None if ctx.is_plan() => Ok(format!(
                "{} output {}.{service})",
                crate::step::PENDING_PREFIX,
                crate::steps::network::OUT_SERVICE_SG_IDS
            )),
            None => bail!(
                "output {} has no security group for service `{service}`: has the network \
                 step run with this config?",
                crate::steps::network::OUT_SERVICE_SG_IDS
            ),
        }
    }

    fn task_spec(&self, ctx: &StepCtx, names: &ServiceNames, svc: &ServiceConfig) -> TaskSpec {
        let mut environment = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        if svc.permissions.contains(&Permission::Database) {
            environment.extend(self.db_env.clone());
            if let Some(arn) = &self.db_secret_arn {
                // Individual keys of the JSON secret; ECS resolves them at task start with the
                // execution role, so the password never appears in the task definition.
                secrets.insert("DB_USERNAME".to_string(), format!("{arn}:username::"));
                secrets.insert("DB_PASSWORD".to_string(), format!("{arn}:password::"));
            }
        }
        if svc.permissions.contains(&Permission::Sessions) {
            if let Some(t) = &self.sessions_table {
                environment.insert("SESSIONS_TABLE".to_string(), t.clone());
            }
        }
        if let Some(ns) = &self.namespace_name {
            environment.insert("SERVICE_DISCOVERY_NAMESPACE".to_string(), ns.clone());
        }
        TaskSpec {
            family: names.family.clone(),
            container: svc.name.0.clone(),
            image: svc.image.clone(),
            cpu: svc.cpu.to_string(),
            memory: svc.memory.to_string(),
            port: i32::from(svc.port),
            execution_role_arn: self.execution_role.clone(),
            task_role_arn: self
                .task_roles
                .get(&svc.name.0)
                .cloned()
                .unwrap_or_default(),
            log_group: names.log_group.clone(),
            region: ctx.region().to_string(),
            environment,
            secrets,
            read_only_root: svc.read_only_root,
            writable_paths: svc.writable_paths.clone(),
        }
    }
}

/// What `up` produced for one service, for the outputs.
struct Built {
    service: String,
    ecs_service: String,
    log_group: String,
    task_definition_arn: String,
}

impl Services {
    fn ecs_tags(ctx: &StepCtx, name: &str) -> Vec<aws_sdk_ecs::types::Tag> {
        ctx.tags(Some(name))
            .into_iter()
            .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
            .collect()
    }

    fn map_tags(ctx: &StepCtx, name: &str) -> HashMap<String, String> {
        ctx.tags(Some(name)).into_iter().collect()
    }

    /// The latest ACTIVE revision of a family, if any.
    async fn latest_task_definition(
        &self,
        ctx: &StepCtx,
        family: &str,
    ) -> Result<Option<TaskDefinition>> {
        let ecs = ctx.aws().ecs();
        let arns = self
            .task_definition_arns(ctx, family, TaskDefinitionStatus::Active)
            .await?;
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

    /// Every revision of `family` in `status` (ListTaskDefinitions' `familyPrefix` is the
    /// full family name; checked again here).
    async fn task_definition_arns(
        &self,
        ctx: &StepCtx,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> Result<Vec<String>> {
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

    async fn register_task_definition(&self, ctx: &StepCtx, spec: &TaskSpec) -> Result<String> {
        let ecs = ctx.aws().ecs();
        let container = spec.container_definition()?;
        let volumes = spec.volumes();
        let tags = Self::ecs_tags(ctx, &spec.family);
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
                    .container_definitions(container.clone())
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

    async fn ensure_task_definition(
        &self,
        ctx: &StepCtx,
        names: &ServiceNames,
        spec: &TaskSpec,
        inputs_pending: bool,
    ) -> Result<Found> {
        let family = &names.family;
        let latest = self.latest_task_definition(ctx, family).await?;
        let found = ctx
            .ensure(
                TASK_DEFINITION,
                family,
                || async {
                    Ok(latest.as_ref().map(|t| {
                        Found::new(family)
                            .arn(t.task_definition_arn().unwrap_or_default())
                            .attr("service", &names.service)
                    }))
                },
                || async {
                    let arn = self.register_task_definition(ctx, spec).await?;
                    Ok(Found::new(family).arn(arn).attr("service", &names.service))
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
            TASK_DEFINITION,
            family,
            &format!("register a new revision ({} changed)", diff.join(", ")),
            || async {
                let arn = self.register_task_definition(ctx, spec).await?;
                let updated = found.clone().arn(arn);
                ctx.record(TASK_DEFINITION, family, &updated)?;
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

    async fn ensure_discovery_service(
        &self,
        ctx: &StepCtx,
        names: &ServiceNames,
        namespace_id: &str,
    ) -> Result<Found> {
        let sd = ctx.aws().cloudmap();
        let name = &names.service;
        ctx.ensure(
            DISCOVERY_SERVICE,
            name,
            || async {
                if is_pending(namespace_id) {
                    return Ok(None);
                }
                let mut pages = sd
                    .list_services()
                    .filters(
                        ServiceFilter::builder()
                            .name(ServiceFilterName::NamespaceId)
                            .values(namespace_id)
                            .condition(FilterCondition::Eq)
                            .build()?,
                    )
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.aws("servicediscovery:ListServices", name)?;
                    // The namespace is the stack's own, and names are unique in it. The
                    // namespace is re-checked (the summary does not carry it): moto ignores
                    // the filter and lists other stacks' services of the same name.
                    for s in page
                        .services()
                        .iter()
                        .filter(|s| s.name() == Some(name.as_str()))
                    {
                        let id = s.id().unwrap_or_default();
                        let full = sd
                            .get_service()
                            .id(id)
                            .send()
                            .await
                            .aws("servicediscovery:GetService", id)
                            .not_found_ok()?
                            .and_then(|o| o.service);
                        if full.is_some_and(|f| f.namespace_id() == Some(namespace_id)) {
                            return Ok(Some(
                                Found::new(id)
                                    .arn(s.arn().unwrap_or_default())
                                    .attr("service", name)
                                    .attr("namespace_id", namespace_id),
                            ));
                        }
                    }
                }
                Ok(None)
            },
            || async {
                let tags = crate::steps::cluster::cloudmap_tags(ctx, name)?;
                let out = sd
                    .create_service()
                    .name(name)
                    .namespace_id(namespace_id)
                    .description(format!("ECS service {}", names.ecs_service))
                    // One A record per task (awsvpc: each task has its own IP).
                    .dns_config(
                        DnsConfig::builder()
                            .routing_policy(RoutingPolicy::Multivalue)
                            .dns_records(
                                DnsRecord::builder()
                                    .r#type(RecordType::A)
                                    .ttl(DNS_TTL)
                                    .build()?,
                            )
                            .build()?,
                    )
                    // ECS reports task health to Cloud Map (Route 53 health checks cannot
                    // reach private IPs).
                    .health_check_custom_config(HealthCheckCustomConfig::builder().build())
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws("servicediscovery:CreateService", name)?;
                let s = out.service.context("CreateService returned no service")?;
                Ok(Found::new(s.id.unwrap_or_default())
                    .arn(s.arn.unwrap_or_default())
                    .attr("service", name)
                    .attr("namespace_id", namespace_id))
            },
        )
        .await
    }

    /// The ECS service, if it is ACTIVE; waits out a DRAINING one (a name cannot be reused
    /// until the old service is INACTIVE).
    async fn find_service(
        &self,
        ctx: &StepCtx,
        cluster: &str,
        name: &str,
    ) -> Result<Option<Service>> {
        let ecs = ctx.aws().ecs();
        let describe = || async {
            let out = ecs
                .describe_services()
                .cluster(cluster)
                .services(name)
                .include(ServiceField::Tags)
                .send()
                .await
                .aws("ecs:DescribeServices", name)
                .not_found_ok()?;
            Ok::<_, anyhow::Error>(out.and_then(|o| {
                o.services()
                    .iter()
                    .find(|s| s.service_name() == Some(name))
                    .cloned()
            }))
        };
        let mut current = describe().await?;
        if current.as_ref().and_then(|s| s.status()) == Some("DRAINING") && !ctx.is_plan() {
            ctx.wait_for(
                &format!("the old service {name} to finish draining"),
                DRAIN_TIMEOUT,
                || async {
                    let s = describe().await?;
                    Ok((s.as_ref().and_then(|s| s.status()) != Some("DRAINING")).then_some(s))
                },
            )
            .await
            .map(|s| current = s)?;
        }
        let Some(s) = current.filter(|s| s.status() == Some("ACTIVE")) else {
            return Ok(None);
        };
        let ours = s
            .tags()
            .iter()
            .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()));
        if !ours {
            bail!(
                "ECS service {name} in cluster {cluster} is not tagged {STACK_TAG}={}: it \
                 belongs to something else",
                ctx.suffix()
            );
        }
        Ok(Some(s))
    }

    async fn ensure_service(
        &self,
        ctx: &StepCtx,
        names: &ServiceNames,
        spec: &ServiceSpec,
        pending: bool,
    ) -> Result<Found> {
        let ecs = ctx.aws().ecs();
        let name = &names.ecs_service;
        let existing = if pending {
            None
        } else {
            self.find_service(ctx, &spec.cluster, name).await?
        };
        let found_of = |arn: &str| {
            Found::new(name)
                .arn(arn)
                .attr("service", &names.service)
                .attr("cluster", &spec.cluster)
        };
        let found = ctx
            .ensure(
                SERVICE,
                name,
                || async {
                    Ok(existing
                        .as_ref()
                        .map(|s| found_of(s.service_arn().unwrap_or_default())))
                },
                || async {
                    let strategy = cluster::to_sdk(&spec.strategy)?;
                    let network = spec.network()?;
                    let tags = Self::ecs_tags(ctx, name);
                    // One token for every attempt of this create: a retry after a lost
                    // answer returns the service the first attempt made (without it ECS
                    // answers "Creation of service was not idempotent").
                    let token = crate::step::idempotency_token(&format!("ecs-service {name}"));
                    let out = ctx
                        .retry_iam(&format!("ECS service {name}"), || {
                            ecs.create_service()
                                .client_token(&token)
                                .cluster(&spec.cluster)
                                .service_name(name)
                                .task_definition(&spec.task_definition_arn)
                                .desired_count(spec.desired_count)
                                // No launch type: the capacity providers decide (FARGATE
                                // base, Spot share).
                                .set_capacity_provider_strategy(Some(strategy.clone()))
                                .platform_version("LATEST")
                                .network_configuration(network.clone())
                                .deployment_configuration(ServiceSpec::deployment())
                                // Fargate spreads tasks over the subnets' zones itself
                                // (placement strategies are not supported on Fargate);
                                // rebalancing moves tasks back after a zone recovers.
                                .availability_zone_rebalancing(AvailabilityZoneRebalancing::Enabled)
                                .set_service_registries(spec.registries())
                                // The ALB's target group; ECS registers each task's IP.
                                .set_load_balancers(spec.load_balancers())
                                // Only valid with a load balancer.
                                .set_health_check_grace_period_seconds(spec.grace())
                                .enable_execute_command(false)
                                .enable_ecs_managed_tags(true)
                                .propagate_tags(PropagateTags::Service)
                                .set_tags(Some(tags.clone()))
                                .send()
                                .map_aws("ecs:CreateService", name)
                        })
                        .await?;
                    let arn = out
                        .service
                        .and_then(|s| s.service_arn)
                        .context("CreateService returned no service ARN")?;
                    Ok(found_of(&arn))
                },
            )
            .await?;
        if let Some(s) = &existing {
            let diff = spec.differences(s);
            if !diff.is_empty() {
                let new_deployment = diff.iter().any(|d| {
                    d.contains("capacity") || d.contains("registries") || *d == "load balancers"
                });
                let out_of_range = diff.contains(&"desired count");
                ctx.change(
                    SERVICE,
                    name,
                    &format!("update {}", diff.join(", ")),
                    || async {
                        ecs.update_service()
                            .cluster(&spec.cluster)
                            .service(name)
                            .task_definition(&spec.task_definition_arn)
                            .set_desired_count(out_of_range.then_some(spec.desired_count))
                            .set_capacity_provider_strategy(Some(cluster::to_sdk(&spec.strategy)?))
                            // A new security group (the service's own, replacing the shared
                            // group of earlier versions) takes effect this way: ECS starts new
                            // tasks with the new network configuration and stops the old ones.
                            .network_configuration(spec.network()?)
                            .deployment_configuration(ServiceSpec::deployment())
                            .availability_zone_rebalancing(AvailabilityZoneRebalancing::Enabled)
                            .set_service_registries(Some(spec.registries().unwrap_or_default()))
                            // Attaches (or detaches) the ALB target group in place: ECS
                            // allows changing load balancers of a rolling-update service.
                            .set_load_balancers(Some(spec.load_balancers().unwrap_or_default()))
                            .set_health_check_grace_period_seconds(spec.grace())
                            .enable_execute_command(false)
                            // ECS requires a new deployment to move running tasks to another
                            // capacity provider or registry.
                            .force_new_deployment(new_deployment)
                            .send()
                            .await
                            .aws("ecs:UpdateService", name)?;
                        Ok(())
                    },
                )
                .await?;
            }
        }
        Ok(found)
    }

    async fn ensure_scaling(
        &self,
        ctx: &StepCtx,
        names: &ServiceNames,
        svc: &ServiceConfig,
        specs: &[PolicySpec],
        cluster: &str,
        service_pending: bool,
    ) -> Result<()> {
        let aas = ctx.aws().autoscaling();
        let resource_id = names.resource_id(cluster);
        let (min, max) = (svc.min_count as i32, svc.max_count as i32);
        let register = || async {
            aas.register_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .min_capacity(min)
                .max_capacity(max)
                .set_tags(Some(Self::map_tags(ctx, &names.ecs_service)))
                .send()
                .await
                .aws(
                    "application-autoscaling:RegisterScalableTarget",
                    &resource_id,
                )
        };
        let existing = if service_pending {
            None
        } else {
            aas.describe_scalable_targets()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_ids(&resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send()
                .await
                .aws(
                    "application-autoscaling:DescribeScalableTargets",
                    &resource_id,
                )?
                .scalable_targets()
                .iter()
                .find(|t| t.resource_id() == resource_id)
                .cloned()
        };
        let found_of = |arn: Option<&str>| {
            let f = Found::new(&resource_id)
                .attr("service", &names.service)
                .attr("min", min.to_string())
                .attr("max", max.to_string());
            match arn {
                Some(a) => f.arn(a),
                None => f,
            }
        };
        ctx.ensure(
            SCALABLE_TARGET,
            &resource_id,
            || async { Ok(existing.as_ref().map(|t| found_of(t.scalable_target_arn()))) },
            || async {
                let out = register().await?;
                Ok(found_of(out.scalable_target_arn()))
            },
        )
        .await?;
        if let Some(t) = &existing {
            if t.min_capacity() != min || t.max_capacity() != max {
                ctx.change(
                    SCALABLE_TARGET,
                    &resource_id,
                    &format!("set capacity {min}..{max}"),
                    || async {
                        register().await?;
                        Ok(())
                    },
                )
                .await?;
            }
        }

        let described: Vec<ScalingPolicy> = if service_pending {
            Vec::new()
        } else {
            aas.describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .set_policy_names(Some(specs.iter().map(|p| p.name.clone()).collect()))
                .send()
                .await
                .aws(
                    "application-autoscaling:DescribeScalingPolicies",
                    &resource_id,
                )?
                .scaling_policies()
                .to_vec()
        };
        for spec in specs {
            let put = || async {
                let out = aas
                    .put_scaling_policy()
                    .policy_name(&spec.name)
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&resource_id)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .policy_type(PolicyType::TargetTrackingScaling)
                    .target_tracking_scaling_policy_configuration(spec.configuration()?)
                    .send()
                    .await
                    .aws("application-autoscaling:PutScalingPolicy", &spec.name)?;
                Ok::<_, anyhow::Error>(out.policy_arn)
            };
            let current = described
                .iter()
                .find(|p| p.policy_name() == spec.name && p.resource_id() == resource_id);
            let found_of = |arn: &str| {
                Found::new(&spec.name)
                    .arn(arn)
                    .attr("service", &names.service)
                    .attr("resource_id", &resource_id)
            };
            ctx.ensure(
                SCALING_POLICY,
                &spec.name,
                || async { Ok(current.map(|p| found_of(p.policy_arn()))) },
                || async { Ok(found_of(&put().await?)) },
            )
            .await?;
            if let Some(p) = current {
                if !spec.matches(p) {
                    ctx.change(
                        SCALING_POLICY,
                        &spec.name,
                        &format!("target {} on {}", spec.target, spec.metric.describe()),
                        || async {
                            put().await?;
                            Ok(())
                        },
                    )
                    .await?;
                }
            }
        }
        // A policy the config no longer asks for (e.g. request_count_target removed).
        for rec in ctx.records(Some(SCALING_POLICY)) {
            let this_service = rec.attrs.get("service") == Some(&names.service);
            if !this_service || specs.iter().any(|s| s.name == rec.id) {
                continue;
            }
            ctx.change(
                SCALING_POLICY,
                &rec.id,
                "remove: no longer configured",
                || Self::delete_policy(ctx, &rec),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes a recorded scaling policy ("not found" counts as deleted).
    async fn delete_policy(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        let resource_id = rec.attrs.get("resource_id").cloned().unwrap_or_default();
        ctx.aws()
            .autoscaling()
            .delete_scaling_policy()
            .policy_name(&rec.id)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .aws("application-autoscaling:DeleteScalingPolicy", &rec.id)
            .not_found_ok()?;
        ctx.deleted(SCALING_POLICY, &rec.id)
    }

    async fn up_one(&self, ctx: &StepCtx, inputs: &Inputs, svc: &ServiceConfig) -> Result<Built> {
        let names = ServiceNames::new(ctx, &svc.name.0);
        let pending = inputs.pending();
        let log_group = log_group::ensure(
            ctx,
            &names.log_group,
            &inputs.kms_key_arn,
            &[("service", names.service.as_str())],
        )
        .await?;
        let spec = inputs.task_spec(ctx, &names, svc);
        if spec.task_role_arn.is_empty() && !ctx.is_plan() {
            bail!(
                "output iam_task_role_arns has no role for service `{}`: has the iam step run \
                 with this config?",
                svc.name.0
            );
        }
        let td = self
            .ensure_task_definition(ctx, &names, &spec, pending)
            .await?;
        let registry = match &inputs.namespace_id {
            Some(ns) => Some(self.ensure_discovery_service(ctx, &names, ns).await?),
            None => None,
        };
        let service_spec = ServiceSpec {
            name: names.ecs_service.clone(),
            cluster: inputs.cluster.clone(),
            task_definition_arn: td.arn.clone().unwrap_or_else(|| td.id.clone()),
            desired_count: svc.desired_count as i32,
            min_count: svc.min_count as i32,
            max_count: svc.max_count as i32,
            strategy: cluster::strategy(&svc.capacity),
            subnets: inputs.subnets.clone(),
            security_group: inputs.security_group(ctx, &svc.name.0)?,
            registry_arn: registry.as_ref().and_then(|r| r.arn.clone()),
            load_balancer: inputs
                .target_groups
                .get(&svc.name.0)
                .filter(|arn| !is_pending(arn))
                .map(|arn| LbAttachment {
                    target_group_arn: arn.clone(),
                    container_name: spec.container.clone(),
                    container_port: i32::from(svc.port),
                }),
            health_check_grace_secs: svc.health_check_grace_secs as i32,
        };
        let service_pending =
            pending || td.is_pending() || registry.as_ref().is_some_and(Found::is_pending);
        let service = self
            .ensure_service(ctx, &names, &service_spec, service_pending)
            .await?;
        // Requests per target on the service's target group, and the database's connections,
        // when the config asks for them.
        let label = ctx
            .output_str(crate::steps::alb::OUT_ARN)
            .ok()
            .zip(inputs.target_groups.get(&svc.name.0))
            .and_then(|(lb, tg)| request_count_label(&lb, tg));
        let db_cluster = ctx
            .output(crate::steps::database::OUT_CLUSTER_ID)
            .as_ref()
            .and_then(output_text);
        let specs = policy_specs(&names, svc, label, db_cluster);
        self.ensure_scaling(
            ctx,
            &names,
            svc,
            &specs,
            &inputs.cluster,
            service_pending || service.is_pending(),
        )
        .await?;
        Ok(Built {
            service: svc.name.0.clone(),
            ecs_service: names.ecs_service.clone(),
            log_group: log_group.id,
            task_definition_arn: td.arn.unwrap_or_default(),
        })
    }

    /// Deletes an ECS service (with force: no need to scale to zero first) and waits until it
    /// is INACTIVE. A service already DRAINING or INACTIVE (a rerun) is only waited for.
    async fn delete_service(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        let ecs = ctx.aws().ecs();
        let name = rec.id.as_str();
        let cluster = rec.attrs.get("cluster").cloned().unwrap_or_default();
        let status = || async {
            let out = ecs
                .describe_services()
                .cluster(&cluster)
                .services(name)
                .send()
                .await
                .aws("ecs:DescribeServices", name)
                .not_found_ok()?;
            Ok::<_, anyhow::Error>(out.and_then(|o| {
                o.services()
                    .iter()
                    .find(|s| s.service_name() == Some(name))
                    .and_then(|s| s.status().map(str::to_string))
            }))
        };
        if status().await?.as_deref() == Some("ACTIVE") {
            ctx.check_cancelled()?;
            let r = ecs
                .delete_service()
                .cluster(&cluster)
                .service(name)
                .force(true)
                .send()
                .await
                .aws("ecs:DeleteService", name)
                .not_found_ok();
            match r {
                Ok(_) => {}
                // Deleted concurrently (e.g. an earlier run whose response was lost).
                Err(e) if e.code.as_deref() == Some("ServiceNotActiveException") => {}
                Err(e) => return Err(e.into()),
            }
        }
        ctx.wait_for(
            &format!("service {name} to drain"),
            DRAIN_TIMEOUT,
            || async {
                let s = status().await?;
                Ok(matches!(s.as_deref(), None | Some("INACTIVE")).then_some(()))
            },
        )
        .await
    }

    /// Deregisters every ACTIVE revision of the family, then deletes the INACTIVE ones
    /// (DeleteTaskDefinitions; where an endpoint lacks it, deregistered revisions stay
    /// INACTIVE, which costs nothing).
    async fn delete_family(&self, ctx: &StepCtx, family: &str) -> Result<()> {
        let ecs = ctx.aws().ecs();
        for arn in self
            .task_definition_arns(ctx, family, TaskDefinitionStatus::Active)
            .await?
        {
            ctx.check_cancelled()?;
            ecs.deregister_task_definition()
                .task_definition(&arn)
                .send()
                .await
                .aws("ecs:DeregisterTaskDefinition", &arn)
                .not_found_ok()?;
        }
        let inactive = self
            .task_definition_arns(ctx, family, TaskDefinitionStatus::Inactive)
            .await?;
        for batch in inactive.chunks(DELETE_TASK_DEFINITIONS_BATCH) {
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
                        if !reason.contains("does not exist")
                            && !reason.contains("DELETE_IN_PROGRESS")
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

    /// Deletes a Cloud Map service: refused (ResourceInUse) while instances are registered,
    /// which ECS removes as the service's tasks stop.
    async fn delete_discovery_service(&self, ctx: &StepCtx, id: &str) -> Result<()> {
        let sd = ctx.aws().cloudmap();
        ctx.retry_dependency(&format!("Cloud Map service {id}"), || async {
            sd.delete_service()
                .id(id)
                .send()
                .await
                .map(|_| ())
                .aws("servicediscovery:DeleteService", id)
        })
        .await
    }
}

/// Maps SDK send futures to [`crate::aws::AwsError`] (for closures that must return one).
trait MapAws<T> {
    fn map_aws(
        self,
        operation: &'static str,
        resource: &str,
    ) -> impl std::future::Future<Output = Result<T, crate::aws::AwsError>>;
}

impl<T, E, R, F> MapAws<T> for F
where
    F: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn map_aws(
        self,
        operation: &'static str,
        resource: &str,
    ) -> impl std::future::Future<Output = Result<T, crate::aws::AwsError>> {
        let resource = resource.to_string();
        async move { self.await.aws(operation, resource) }
    }
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

#[async_trait]
impl Step for Services {
    fn name(&self) -> &'static str {
        "services"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec![
            "cluster", "iam", "network", "database", "kms", "registry", "sessions", "alb",
        ]
    }

    fn estimate_secs(&self) -> u64 {
        // Registering, creating and scaling take seconds; ECS returns before tasks start.
        30
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let inputs = Inputs::load(ctx)?;
        let results = join_all(ctx.cfg().services.0.iter().map(|svc| async {
            self.up_one(ctx, &inputs, svc)
                .await
                .with_context(|| format!("service `{}`", svc.name.0))
        }))
        .await;
        let mut built = Vec::new();
        for r in results {
            built.push(r?);
        }
        if ctx.is_plan() {
            return Ok(());
        }
        let map = |f: fn(&Built) -> &String| -> Value {
            Value::Object(
                built
                    .iter()
                    .map(|b| (b.service.clone(), json!(f(b))))
                    .collect(),
            )
        };
        ctx.set_output(OUT_SERVICE_NAMES, map(|b| &b.ecs_service))?;
        ctx.set_output(OUT_LOG_GROUPS, map(|b| &b.log_group))?;
        ctx.set_output(OUT_TASK_DEFINITION_ARNS, map(|b| &b.task_definition_arn))?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let aas = ctx.aws().autoscaling();
        // Scaling first: a policy must not scale a service back up while it is deleted.
        for rec in ctx.records(Some(SCALING_POLICY)) {
            ctx.check_cancelled()?;
            Self::delete_policy(ctx, &rec).await?;
        }
        for rec in ctx.records(Some(SCALABLE_TARGET)) {
            ctx.check_cancelled()?;
            aas.deregister_scalable_target()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(&rec.id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send()
                .await
                .aws("application-autoscaling:DeregisterScalableTarget", &rec.id)
                .not_found_ok()?;
            ctx.deleted(SCALABLE_TARGET, &rec.id)?;
        }

        // The services drain concurrently: each takes about a minute on AWS.
        let services = ctx.records(Some(SERVICE));
        let results = join_all(services.iter().map(|rec| async move {
            self.delete_service(ctx, rec)
                .await
                .with_context(|| format!("deleting ECS service {}", rec.id))?;
            ctx.deleted(SERVICE, &rec.id)
        }))
        .await;
        results.into_iter().collect::<Result<Vec<_>>>()?;

        for rec in ctx.records(Some(DISCOVERY_SERVICE)) {
            self.delete_discovery_service(ctx, &rec.id).await?;
            ctx.deleted(DISCOVERY_SERVICE, &rec.id)?;
        }
        for rec in ctx.records(Some(TASK_DEFINITION)) {
            self.delete_family(ctx, &rec.id)
                .await
                .with_context(|| format!("deleting task definition family {}", rec.id))?;
            ctx.deleted(TASK_DEFINITION, &rec.id)?;
        }
        crate::resources::delete_recorded(ctx, LOG_GROUP).await?;
        for key in [OUT_SERVICE_NAMES, OUT_LOG_GROUPS, OUT_TASK_DEFINITION_ARNS] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        match rec.kind.as_str() {
            TASK_DEFINITION => {
                let active = self
                    .task_definition_arns(ctx, id, TaskDefinitionStatus::Active)
                    .await?;
                Ok((!active.is_empty()).then(|| format!("{} active revision(s)", active.len())))
            }
            SERVICE => {
                let cluster = rec.attrs.get("cluster").cloned().unwrap_or_default();
                let out = ctx
                    .aws()
                    .ecs()
                    .describe_services()
                    .cluster(&cluster)
                    .services(id)
                    .send()
                    .await
                    .aws("ecs:DescribeServices", id)
                    .not_found_ok()?;
                Ok(out
                    .and_then(|o| {
                        o.services()
                            .iter()
                            .find(|s| s.service_name() == Some(id))
                            .and_then(|s| s.status().map(str::to_string))
                    })
                    .filter(|s| s != "INACTIVE"))
            }
            DISCOVERY_SERVICE => Ok(ctx
                .aws()
                .cloudmap()
                .get_service()
                .id(id)
                .send()
                .await
                .aws("servicediscovery:GetService", id)
                .not_found_ok()?
                .map(|_| "exists".to_string())),
            SCALABLE_TARGET => {
                let out = ctx
                    .aws()
                    .autoscaling()
                    .describe_scalable_targets()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_ids(id)
                    .send()
                    .await
                    .aws("application-autoscaling:DescribeScalableTargets", id)?;
                Ok(out
                    .scalable_targets()
                    .iter()
                    .find(|t| t.resource_id() == id)
                    .map(|t| format!("{}..{}", t.min_capacity(), t.max_capacity())))
            }
            SCALING_POLICY => {
                let resource_id = rec.attrs.get("resource_id").cloned().unwrap_or_default();
                let out = ctx
                    .aws()
                    .autoscaling()
                    .describe_scaling_policies()
                    .service_namespace(ServiceNamespace::Ecs)
                    .resource_id(&resource_id)
                    .policy_names(id)
                    .send()
                    .await
                    .aws("application-autoscaling:DescribeScalingPolicies", id)?;
                Ok(out
                    .scaling_policies()
                    .iter()
                    .any(|p| p.policy_name() == id)
                    .then(|| "exists".to_string()))
            }
            other => bail!("services step does not know resource type {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
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
            .container_definitions(s.container_definition().unwrap())
            .set_volumes(Some(s.volumes()))
            .build()
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

    fn service_spec() -> ServiceSpec {
        ServiceSpec {
            name: "svc-web-demo".into(),
            cluster: "cluster-demo".into(),
            task_definition_arn: "arn:td:3".into(),
            desired_count: 2,
            min_count: 2,
            max_count: 10,
            strategy: cluster::strategy(&Default::default()),
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            security_group: "sg-app".into(),
            registry_arn: None,
            load_balancer: None,
            health_check_grace_secs: 60,
        }
    }

    fn described_service(s: &ServiceSpec, desired: i32) -> Service {
        let mut subnets = s.subnets.clone();
        subnets.reverse();
        Service::builder()
            .service_name(&s.name)
            .task_definition(&s.task_definition_arn)
            .desired_count(desired)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .set_subnets(Some(subnets))
                            .security_groups(&s.security_group)
                            .assign_public_ip(AssignPublicIp::Disabled)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn autoscaled_desired_count_is_not_drift_and_missing_fields_are_not_compared() {
        let s = service_spec();
        // moto leaves the strategy and the deployment configuration out.
        assert!(s.differences(&described_service(&s, 7)).is_empty());
        assert_eq!(
            s.differences(&described_service(&s, 12)),
            vec!["desired count"]
        );
        let mut other = s.clone();
        other.task_definition_arn = "arn:td:4".into();
        other.registry_arn = Some("arn:sd".into());
        assert_eq!(
            other.differences(&described_service(&s, 2)),
            vec!["task definition", "service registries"]
        );
    }

    #[test]
    fn a_missing_or_different_load_balancer_is_drift() {
        let mut s = service_spec();
        s.load_balancer = Some(LbAttachment {
            target_group_arn: "arn:tg:blue".into(),
            container_name: "web".into(),
            container_port: 80,
        });
        let bare = described_service(&s, 2);
        assert_eq!(s.differences(&bare), vec!["load balancers"]);
        let mut attached = bare.clone();
        attached.load_balancers = s.load_balancers();
        assert!(s.differences(&attached).is_empty());
        let mut graced = attached.clone();
        graced.health_check_grace_period_seconds = Some(10);
        assert_eq!(s.differences(&graced), vec!["health check grace period"]);
        // Without a load balancer no grace period is sent at all (ECS would refuse it).
        assert_eq!(service_spec().grace(), None);
        assert_eq!(s.grace(), Some(60));
    }

    #[test]
    fn a_service_still_in_the_old_shared_group_moves_to_its_own() {
        let old = described_service(&service_spec(), 2);
        let mut s = service_spec();
        s.security_group = "sg-payment-api".into();
        assert_eq!(s.differences(&old), vec!["network configuration"]);
        assert!(s.differences(&described_service(&s, 2)).is_empty());
        let net = s.network().unwrap();
        let groups = net.awsvpc_configuration().unwrap().security_groups();
        assert_eq!(groups, ["sg-payment-api"]);
    }

    #[test]
    fn policies_compare_target_and_metric() {
        let described = |p: &PolicySpec| {
            ScalingPolicy::builder()
                .policy_arn("arn:p")
                .policy_name(&p.name)
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id("service/c/s")
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(p.configuration().unwrap())
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .unwrap()
        };
        let p = PolicySpec {
            name: "scale-cpu-web-demo".into(),
            metric: Metric::Predefined(MetricType::EcsServiceAverageCpuUtilization, None),
            target: 70.0,
        };
        assert!(p.matches(&described(&p)));
        let other = PolicySpec {
            target: 60.0,
            ..p.clone()
        };
        assert!(!other.matches(&described(&p)));

        let label = request_count_label(
            "arn:aws:elasticloadbalancing:us-east-2:1:loadbalancer/app/alb-demo/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/tg-blue-demo/73e2d6bc24d8a067",
        )
        .unwrap();
        assert_eq!(
            label,
            "app/alb-demo/50dc6c495c0c9188/targetgroup/tg-blue-demo/73e2d6bc24d8a067"
        );
        let requests = PolicySpec {
            name: "scale-requests-web-demo".into(),
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some(label)),
            target: 1000.0,
        };
        assert!(requests.matches(&described(&requests)));
        let relabelled = PolicySpec {
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some("x".into())),
            ..requests.clone()
        };
        assert!(!relabelled.matches(&described(&requests)));
        let db = PolicySpec {
            name: "scale-dbconn-web-demo".into(),
            metric: Metric::DbConnections("aurora-demo".into()),
            target: 400.0,
        };
        assert!(db.matches(&described(&db)));
        assert!(!PolicySpec {
            metric: Metric::DbConnections("aurora-other".into()),
            ..db.clone()
        }
        .matches(&described(&db)));
        assert!(!db.matches(&described(&p)));
    }

    #[test]
    fn arn_parts() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/task-web-demo:12";
        assert_eq!(family_of(arn), Some("task-web-demo"));
        assert_eq!(revision_of(arn), 12);
    }
}
