//! Services step: per `[[services]]` entry, a KMS-encrypted CloudWatch log group, a Fargate
//! task definition, an ECS service in the private subnets, its Cloud Map registration (when the
//! cluster has a namespace) and target-tracking auto scaling on CPU and memory (and, when
//! configured, ALB requests per task, Aurora connections, the transaction queue's backlog per
//! task and the config's own CloudWatch metrics).
//!
//! The task definition runs the configured image (default: a public placeholder) with the
//! awslogs driver; the database credentials reach the container through `secrets` (ECS reads
//! them from Secrets Manager with the execution role at task start), never through
//! `environment`. The container's root file system is read-only (`services[].read_only_root`,
//! Security Hub ECS.5) and every path the image writes to (`services[].writable_paths`) is an
//! ephemeral task volume mounted read-write: AWS accepts a read-only container that writes
//! elsewhere, and it then exits at start (AWS-CONTRACTS B7). The container is never privileged
//! (ECS.4). With `[tracing]` on (the default), every task also runs an OpenTelemetry
//! collector sidecar (`otel-collector`, AWS Distro for OpenTelemetry) that takes the app's
//! spans on loopback (OTLP on 4317/4318, the X-Ray daemon protocol on UDP 2000; the app is
//! told through `OTEL_EXPORTER_OTLP_ENDPOINT` and `AWS_XRAY_DAEMON_ADDRESS`) and sends them to
//! X-Ray with the task role (the iam step grants the X-Ray calls). The service runs on the capacity provider split of its `capacity` (FARGATE
//! base, Spot share), without public IPs, spread over the private subnets of every zone, with
//! the deployment circuit breaker rolling back failed deployments.
//!
//! The image is the config's `image`, or, while the config still names the image a
//! `fintech-infra deploy` replaced, what that release put on each colour (the state's
//! `releases`), so that `up` never undoes a release. `up` registers a new task definition
//! revision only when the latest ACTIVE one differs from the wanted one in a field this step
//! sets, and updates the service only when it drifted, so a
//! second `up` changes nothing. The services are set up concurrently. Each resource type is a
//! provider: [`crate::resources::ecs`], [`crate::resources::servicediscovery`],
//! [`crate::resources::application_autoscaling`] and the log group's
//! [`crate::resources::logs::log_group`]; this step only decides what to build from the
//! `[[services]]` config and what to publish.
//!
//! A `weighted` service (`services[].deployment`, the first service only) also runs a green
//! twin `svc-<service>-green-<suffix>`: its own task definition family
//! `task-<service>-green-<suffix>` (the same image until `deploy` puts a new one on one
//! colour) behind the green target group, scaled like it on its own CPU, memory and request metrics; the policies on metrics
//! that are not the twin's own (Aurora connections, the queue backlog, the config's custom
//! metrics) stay with blue, or both colours would scale out for the same load. It has no
//! Cloud Map entry. A service
//! that is no longer weighted loses its twin: scaling policies, scalable target, then the
//! ECS service.
//!
//! `down` takes the order from `BUILT_ON` (`src/resources/deps.rs`): a scaling policy is
//! built on its scalable target and the target on its ECS service, so neither scales a
//! service back up while it is deleted; every ECS service is built on its cluster and on every
//! task definition family, Cloud Map service, target group, listener, listener rule, subnet,
//! security group and role (its tasks' ENIs hold subnets and security groups until it has
//! drained); a task definition family is built on the log groups, roles and repositories.
//! The `ecs:service` provider deletes with force and waits until INACTIVE (a DRAINING service
//! still blocks its cluster and its Cloud Map service); the task definition provider
//! deregisters every revision of the family, then deletes them.

/// The `[[services]]` and `[tracing]` sections this step owns (re-exported by `crate::config`),
/// and the capacity split's reader.
pub mod capacity;
pub mod config;

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{MetricStatistic, MetricType};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::config::{Deployment, Permission, ServiceConfig};
use crate::resources::application_autoscaling::scalable_target::{self, TargetSpec};
use crate::resources::application_autoscaling::scaling_policy::{
    self, request_count_label, Metric, PolicySpec,
};
use crate::resources::ecs;
use crate::resources::ecs::service::{self as ecs_service, LbAttachment, ServiceSpec};
use crate::resources::ecs::task_definition::{self, TaskSpec};
use crate::resources::logs::log_group;
use crate::resources::servicediscovery::service::{self as discovery, DiscoverySpec};
use crate::state::Colour;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::outputs::cluster;

pub use crate::outputs::services::*;

pub use crate::resources::logs::log_group::KIND as LOG_GROUP;
pub const TASK_DEFINITION: &str = task_definition::KIND;
pub const SERVICE: &str = ecs_service::KIND;
pub const SCALABLE_TARGET: &str = scalable_target::KIND;
pub const SCALING_POLICY: &str = scaling_policy::KIND;
pub const DISCOVERY_SERVICE: &str = discovery::KIND;

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
    pub backlog_policy: String,
    /// `<service>-<suffix>`: what every policy name ends with.
    policy_tail: String,
}

impl ServiceNames {
    pub fn new(ctx: &StepCtx, svc: &str) -> ServiceNames {
        let s = ctx.suffix();
        ServiceNames {
            service: svc.to_string(),
            log_group: format!("/ecs/{svc}-{s}"),
            family: crate::naming::task_family(svc, s),
            ecs_service: crate::naming::ecs_service_name(svc, s),
            cpu_policy: format!("scale-cpu-{svc}-{s}"),
            memory_policy: format!("scale-memory-{svc}-{s}"),
            requests_policy: format!("scale-requests-{svc}-{s}"),
            db_connections_policy: format!("scale-dbconn-{svc}-{s}"),
            backlog_policy: format!("scale-backlog-{svc}-{s}"),
            policy_tail: format!("{svc}-{s}"),
        }
    }

    /// The names of the green twin of a `weighted` service: its own ECS service, task
    /// definition family and scaling policies (`service` is the twin's name, which scopes
    /// them), the original's log group. Its own family because `deploy` puts a new image on
    /// one colour at a time: each colour's latest revision is the one it runs.
    pub fn twin(&self, ctx: &StepCtx) -> ServiceNames {
        let twin = ServiceNames::new(ctx, &crate::config::green_twin(&self.service));
        ServiceNames {
            log_group: self.log_group.clone(),
            ..twin
        }
    }

    /// The name of the `i`-th (0-based) `[[services.scaling]]` policy.
    pub fn custom_policy(&self, i: usize) -> String {
        format!("scale-custom{}-{}", i + 1, self.policy_tail)
    }

    /// Application Auto Scaling's ID of the service's desired count.
    pub fn resource_id(&self, cluster: &str) -> String {
        format!("service/{cluster}/{}", self.ecs_service)
    }
}

/// What a requests policy follows: ALB requests per target of the service's one target
/// group (the label, see [`request_count_label`]), or, for a CodeDeploy blue/green service,
/// the requests of both target groups of its pair per running task.
pub enum Requests {
    PerTarget(String),
    PerTask {
        load_balancer: String,
        target_groups: [String; 2],
        cluster: String,
    },
}

/// A service's policies: CPU and memory, and, when configured, ALB requests
/// (`requests`), the database's connections (`db_cluster`), the
/// transaction queue's messages per running task (`backlog`: the queue, the ECS cluster)
/// and the config's own metrics.
pub fn policy_specs(
    names: &ServiceNames,
    svc: &ServiceConfig,
    requests: Option<Requests>,
    db_cluster: Option<String>,
    backlog: Option<(String, String)>,
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
    match (svc.request_count_target, requests) {
        (Some(target), Some(Requests::PerTarget(label))) => v.push(PolicySpec {
            name: names.requests_policy.clone(),
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some(label)),
            target: f64::from(target),
        }),
        (
            Some(target),
            Some(Requests::PerTask {
                load_balancer,
                target_groups,
                cluster,
            }),
        ) => v.push(PolicySpec {
            name: names.requests_policy.clone(),
            metric: Metric::RequestsPerTask {
                load_balancer,
                target_groups,
                cluster,
                service: names.ecs_service.clone(),
            },
            target: f64::from(target),
        }),
        _ => {}
    }
    if let (Some(target), Some(cluster)) = (svc.db_connections_target, db_cluster) {
        v.push(PolicySpec {
            name: names.db_connections_policy.clone(),
            metric: Metric::DbConnections(cluster),
            target: f64::from(target),
        });
    }
    if let (Some(target), Some((queue, cluster))) = (svc.queue_backlog_target, backlog) {
        v.push(PolicySpec {
            name: names.backlog_policy.clone(),
            metric: Metric::BacklogPerTask {
                queue,
                cluster,
                service: names.ecs_service.clone(),
            },
            target: f64::from(target),
        });
    }
    for (i, s) in svc.scaling.iter().enumerate() {
        use crate::config::Statistic as S;
        v.push(PolicySpec {
            name: names.custom_policy(i),
            metric: Metric::Custom {
                namespace: s.namespace.clone(),
                name: s.metric.clone(),
                dimensions: s.dimensions.clone().into_iter().collect(),
                statistic: match s.statistic {
                    S::Average => MetricStatistic::Average,
                    S::Minimum => MetricStatistic::Minimum,
                    S::Maximum => MetricStatistic::Maximum,
                    S::Sum => MetricStatistic::Sum,
                    S::SampleCount => MetricStatistic::SampleCount,
                },
            },
            target: s.target,
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
    /// The green target group (the default service's green twin serves it).
    green_target_group: Option<String>,
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
            security_groups: ctx.input_map(crate::outputs::network::OUT_SERVICE_SG_IDS)?,
            kms_key_arn: ctx.input_str(crate::outputs::kms::OUT_KEY_ARN)?,
            execution_role: ctx.input_str("iam_task_execution_role_arn")?,
            task_roles: ctx.input_map("iam_task_role_arns")?,
            db_secret_arn,
            db_env,
            sessions_table,
            target_groups: ctx.input_map(crate::outputs::alb::OUT_SERVICE_TARGET_GROUPS)?,
            green_target_group: ctx
                .input_map(crate::outputs::alb::OUT_TARGET_GROUPS)?
                .remove("green"),
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
                crate::outputs::network::OUT_SERVICE_SG_IDS
            )),
            None => bail!(
                "output {} has no security group for service `{service}`: has the network \
                 step run with this config?",
                crate::outputs::network::OUT_SERVICE_SG_IDS
            ),
        }
    }

    /// The task definition of one colour of `svc`, running `image`.
    fn task_spec(
        &self,
        ctx: &StepCtx,
        names: &ServiceNames,
        svc: &ServiceConfig,
        image: &str,
    ) -> TaskSpec {
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
        let tracing = &ctx.cfg().tracing;
        if tracing.enabled {
            for (k, v) in task_definition::TRACE_ENVIRONMENT {
                environment.insert(k.to_string(), v.to_string());
            }
            environment.insert("OTEL_SERVICE_NAME".to_string(), svc.name.0.clone());
        }
        TaskSpec {
            family: names.family.clone(),
            container: svc.name.0.clone(),
            image: image.to_string(),
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
            collector_image: tracing
                .enabled
                .then(|| tracing.collector_image.clone()),
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
    /// A service (and, when `weighted`, its green twin): what `up` built for each.
    async fn up_one(
        &self,
        ctx: &StepCtx,
        inputs: &Inputs,
        svc: &ServiceConfig,
    ) -> Result<Vec<Built>> {
        let names = ServiceNames::new(ctx, &svc.name.0);
        let pending = inputs.pending();
        let log_group = log_group::ensure(
            ctx,
            &names.log_group,
            &inputs.kms_key_arn,
            &[("service", names.service.as_str())],
        )
        .await?;
        // What `deploy` released holds while the config still names the image it replaced.
        let release = ctx.sh.state.release_holding(
            &svc.name.0,
            &svc.image,
            svc.deployment == Deployment::Weighted,
        );
        let image_of = |c: Colour| {
            release
                .as_ref()
                .map_or(svc.image.clone(), |r| r.image(c).to_string())
        };
        let spec = inputs.task_spec(ctx, &names, svc, &image_of(Colour::Blue));
        if spec.task_role_arn.is_empty() && !ctx.is_plan() {
            bail!(
                "output iam_task_role_arns has no role for service `{}`: has the iam step run \
                 with this config?",
                svc.name.0
            );
        }
        let td = task_definition::ensure(ctx, &spec, &names.service, pending).await?;
        let registry = match &inputs.namespace_id {
            Some(ns) => Some(
                discovery::ensure(
                    ctx,
                    &DiscoverySpec {
                        name: &names.service,
                        namespace_id: ns,
                        ecs_service: &names.ecs_service,
                    },
                )
                .await?,
            ),
            None => None,
        };
        let colour = ColourSpec {
            twin: false,
            names: &names,
            registry: registry.as_ref(),
            target_group: inputs.target_groups.get(&svc.name.0),
        };
        let pending = pending || registry.as_ref().is_some_and(Found::is_pending);
        self.run_colour(ctx, inputs, svc, &spec, &td, &colour, pending)
            .await?;
        let built = |n: &ServiceNames| Built {
            service: n.service.clone(),
            ecs_service: n.ecs_service.clone(),
            log_group: log_group.id.clone(),
            task_definition_arn: td.arn.clone().unwrap_or_default(),
        };
        let mut out = vec![built(&names)];
        // `weighted`: the green twin, the same revision behind the green target group, so
        // that the share the listener sends there is served (AWS-CONTRACTS B8). It has no
        // Cloud Map registration: callers inside the VPC reach the blue service.
        let twin = names.twin(ctx);
        if svc.deployment == Deployment::Weighted {
            let twin_spec = inputs.task_spec(ctx, &twin, svc, &image_of(Colour::Green));
            let twin_td = task_definition::ensure(ctx, &twin_spec, &twin.service, pending)
                .await
                .context("its green twin")?;
            let colour = ColourSpec {
                twin: true,
                names: &twin,
                registry: None,
                target_group: inputs.green_target_group.as_ref(),
            };
            self.run_colour(ctx, inputs, svc, &twin_spec, &twin_td, &colour, pending)
                .await
                .context("its green twin")?;
            out.push(Built {
                task_definition_arn: twin_td.arn.clone().unwrap_or_default(),
                ..built(&twin)
            });
        } else {
            remove_twin(ctx, &twin).await?;
        }
        Ok(out)
    }

    /// One colour of a service: its ECS service on `td`, attached to the colour's target
    /// group, and its auto scaling.
    #[allow(clippy::too_many_arguments)]
    async fn run_colour(
        &self,
        ctx: &StepCtx,
        inputs: &Inputs,
        svc: &ServiceConfig,
        spec: &TaskSpec,
        td: &Found,
        colour: &ColourSpec<'_>,
        pending: bool,
    ) -> Result<()> {
        let names = colour.names;
        let service_spec = ServiceSpec {
            name: names.ecs_service.clone(),
            cluster: inputs.cluster.clone(),
            task_definition_arn: td.arn.clone().unwrap_or_else(|| td.id.clone()),
            desired_count: svc.desired_count as i32,
            min_count: svc.min_count as i32,
            max_count: svc.max_count as i32,
            strategy: ecs::strategy(&svc.capacity),
            subnets: inputs.subnets.clone(),
            security_group: inputs.security_group(ctx, &svc.name.0)?,
            registry_arn: colour.registry.and_then(|r| r.arn.clone()),
            load_balancer: colour
                .target_group
                .filter(|arn| !is_pending(arn))
                .map(|arn| LbAttachment {
                    target_group_arn: arn.clone(),
                    container_name: spec.container.clone(),
                    container_port: i32::from(svc.port),
                }),
            health_check_grace_secs: svc.health_check_grace_secs as i32,
            code_deploy: svc.deployment.is_code_deploy(),
        };
        let service_pending = pending || td.is_pending();
        let service =
            ecs_service::ensure(ctx, &service_spec, &names.service, service_pending).await?;
        // Requests per target on the service's target group, and the database's connections,
        // when the config asks for them.
        let requests = if svc.deployment.is_code_deploy() {
            // AWS does not support ALBRequestCountPerTarget with CodeDeploy's blue/green:
            // the requests of both groups of the pair, per running task.
            let full = ctx
                .output(crate::outputs::alb::OUT_TARGET_GROUP_FULL_NAMES)
                .unwrap_or_default();
            let tg = |k: &str| full.get(k).and_then(|v| v.as_str()).map(str::to_string);
            ctx.output(crate::outputs::alb::OUT_FULL_NAME)
                .as_ref()
                .and_then(output_text)
                .zip(tg("blue").zip(tg("green")))
                .map(|(lb, (blue, green))| Requests::PerTask {
                    load_balancer: lb,
                    target_groups: [blue, green],
                    cluster: inputs.cluster.clone(),
                })
        } else {
            ctx.output_str(crate::outputs::alb::OUT_ARN)
                .ok()
                .zip(colour.target_group)
                .and_then(|(lb, tg)| request_count_label(&lb, tg))
                .map(Requests::PerTarget)
        };
        let db_cluster = ctx
            .output(crate::outputs::database::OUT_CLUSTER_ID)
            .as_ref()
            .and_then(output_text);
        // The Aurora connections, the queue backlog and the config's own metrics are not the
        // twin's own: on both colours they would scale both out together, twice the tasks for
        // the same load. Blue alone scales on them.
        let db_cluster = db_cluster.filter(|_| !colour.twin);
        let backlog = (!colour.twin).then(|| {
            (
                crate::naming::queue_name(ctx.suffix()),
                inputs.cluster.clone(),
            )
        });
        let mut specs = policy_specs(names, svc, requests, db_cluster, backlog);
        if colour.twin {
            specs.retain(|p| !matches!(p.metric, Metric::Custom { .. }));
        }
        let resource_id = names.resource_id(&inputs.cluster);
        let scaling_pending = service_pending || service.is_pending();
        let target = TargetSpec {
            resource_id: &resource_id,
            service: &names.service,
            tag_name: &names.ecs_service,
            min: svc.min_count as i32,
            max: svc.max_count as i32,
        };
        scalable_target::ensure(ctx, &target, scaling_pending).await?;
        scaling_policy::ensure_all(ctx, &resource_id, &names.service, &specs, scaling_pending)
            .await?;
        Ok(())
    }
}

/// One colour of a service: the names of its ECS service and policies, its Cloud Map
/// registration and its target group.
struct ColourSpec<'a> {
    /// The green twin of a `weighted` service (not the service itself).
    twin: bool,
    names: &'a ServiceNames,
    registry: Option<&'a Found>,
    target_group: Option<&'a String>,
}

/// Removes the green twin of a service that is no longer `weighted`, if an earlier `up` made
/// one: its scaling policies, its scalable target, the ECS service (which drains), then its
/// task definition family.
async fn remove_twin(ctx: &StepCtx, twin: &ServiceNames) -> Result<()> {
    for kind in [SCALING_POLICY, SCALABLE_TARGET, SERVICE, TASK_DEFINITION] {
        let recs: Vec<_> = ctx
            .records(Some(kind))
            .into_iter()
            .filter(|r| r.attrs.get("service") == Some(&twin.service))
            .collect();
        for rec in recs {
            let provider = crate::resources::provider(kind)
                .with_context(|| format!("no provider for {kind}"))?;
            ctx.change(kind, &rec.name, "remove: the service is no longer weighted", || async {
                provider.delete(ctx, &rec).await?;
                ctx.deleted(kind, &rec.id)
            })
            .await?;
        }
    }
    Ok(())
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
            built.extend(r?);
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

}
