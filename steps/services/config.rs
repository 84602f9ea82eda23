//! `[[services]]` and `[tracing]`: the ECS services (sizes, scaling, deployment, permissions,
//! calls, writable paths) and the trace collector every task runs, owned by the services step.

use serde::Deserialize;

use crate::config::validated::{FieldError, Validate};
use crate::config::*;

pub use super::capacity::*;

/// The list of services; never empty.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "Vec<ServiceConfig>")]
pub struct Services(pub Vec<ServiceConfig>);

impl Default for Services {
    fn default() -> Self {
        Services(vec![ServiceConfig::default_web()])
    }
}

impl Services {
    /// The services the ALB sends traffic to: the first one (the default, blue/green target)
    /// and every one with a `path` (its own target group and listener rule). The one place
    /// this rule lives: the config checks, the security groups and the ALB follow it.
    pub fn behind_alb(&self) -> impl Iterator<Item = &ServiceConfig> {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, s)| *i == 0 || s.path.is_some())
            .map(|(_, s)| s)
    }

    /// Whether the ALB sends traffic to the service `name` (see [`Services::behind_alb`]).
    pub fn is_behind_alb(&self, name: &str) -> bool {
        self.behind_alb().any(|s| s.name.0 == name)
    }

    /// The service called `name`.
    pub fn get(&self, name: &str) -> Option<&ServiceConfig> {
        self.0.iter().find(|s| s.name.0 == name)
    }

    /// The services that list `name` in their `calls`, in config order.
    pub fn callers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ServiceConfig> {
        self.0
            .iter()
            .filter(move |s| s.calls.iter().any(|c| c.0 == name))
    }
}

impl TryFrom<Vec<ServiceConfig>> for Services {
    type Error = String;
    fn try_from(v: Vec<ServiceConfig>) -> Result<Self, String> {
        if v.is_empty() {
            return Err("services: at least one [[services]] entry is needed".into());
        }
        Ok(Services(v))
    }
}

/// What a service's task role may use.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read and write the DynamoDB session table.
    Sessions,
    /// Read the database secret and connect with IAM authentication.
    Database,
    /// Send to the transaction queue.
    Queue,
}

/// How a service's new versions reach its traffic (`services[].deployment`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Deployment {
    /// One ECS service: a new task definition replaces the tasks in place, and the
    /// deployment circuit breaker rolls a failing one back.
    #[default]
    Rolling,
    /// Seed 001: a blue and a green ECS service, one behind each of the default target
    /// groups, and the listener splitting the traffic between them by `alb.blue_weight` and
    /// `alb.green_weight`; every target group that gets traffic has tasks registered in it.
    /// Only the default (first) service.
    Weighted,
    /// Seed 003: AWS CodeDeploy blue/green with the traffic shifted linearly
    /// (`deploy.linear_config`, 10 % every minute by default), rolled back on failure and on
    /// the rollback alarms. The service uses the `CODE_DEPLOY` deployment controller; only
    /// the default (first) service, which has the blue and green target groups.
    CodedeployLinear,
    /// Seed 004: like `codedeploy-linear` with a canary shift (`deploy.canary_config`, 10 %
    /// for 5 minutes, then the rest).
    CodedeployCanary,
}

impl Deployment {
    /// Whether AWS CodeDeploy releases the service (the `CODE_DEPLOY` controller).
    pub fn is_code_deploy(self) -> bool {
        matches!(
            self,
            Deployment::CodedeployLinear | Deployment::CodedeployCanary
        )
    }

    /// The config's name of the strategy.
    pub fn name(self) -> &'static str {
        match self {
            Deployment::Rolling => "rolling",
            Deployment::Weighted => "weighted",
            Deployment::CodedeployLinear => "codedeploy-linear",
            Deployment::CodedeployCanary => "codedeploy-canary",
        }
    }
}

/// A target-tracking policy on a CloudWatch metric of the config's choosing: the service's
/// desired count follows it so that the metric stays near `target`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomScaling {
    pub namespace: String,
    pub metric: String,
    #[serde(default)]
    pub dimensions: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub statistic: Statistic,
    pub target: f64,
}

/// A CloudWatch statistic, by AWS's names.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum Statistic {
    #[default]
    Average,
    Minimum,
    Maximum,
    Sum,
    SampleCount,
}

/// The name of the green twin a `weighted` service runs behind the green target group.
pub fn green_twin(service: &str) -> String {
    format!("{service}-green")
}

/// What the nginx placeholder image writes at run time, so what needs a writable volume when
/// its root file system is read-only: the proxy/cache temp directories, the pid file
/// (`/var/run/nginx.pid`) and `/tmp`. (Its entrypoint also tries to edit
/// `/etc/nginx/conf.d/default.conf` for IPv6, and skips that when the file is not writable.)
pub const PLACEHOLDER_WRITABLE_PATHS: [&str; 3] = ["/var/cache/nginx", "/var/run", "/tmp"];

/// At most this many writable paths per service: each is a task volume, and ECS also limits
/// the volumes of a task definition; a handful is what images need.
pub const MAX_WRITABLE_PATHS: usize = 20;

/// The task volume name for a writable path: `rw` plus the path with `/` as `-` (ECS volume
/// names take letters, digits, `-` and `_`, up to 255), e.g. `rw-var-cache-nginx`.
pub fn writable_volume_name(path: &str) -> String {
    let mut name = String::from("rw");
    for c in path.trim_end_matches('/').chars() {
        name.push(match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        });
    }
    name
}

/// A service name: 1 to 30 lowercase letters, digits and single hyphens, starting with a
/// letter (30 keeps `role-task-<service>-<suffix>` within IAM's 64-character role names).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(try_from = "String")]
pub struct ServiceName(pub String);

impl TryFrom<String> for ServiceName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 30
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "invalid service name `{s}`: 1 to 30 lowercase letters, digits and single \
                 hyphens, starting with a letter"
            ));
        }
        if s == "execution" {
            // `role-task-<service>-<suffix>` would be the task execution role's name.
            return Err(
                "invalid service name `execution`: reserved (the ECS task execution role is \
                 `role-task-execution-<suffix>`)"
                    .into(),
            );
        }
        Ok(ServiceName(s))
    }
}

/// One ECS service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(
    remote = "Self",
    deny_unknown_fields,
    default = "ServiceConfig::unwritten"
)]
pub struct ServiceConfig {
    /// Required: [`ServiceConfig::unwritten`] leaves it empty, which no written name can be
    /// (see [`ServiceName`]), and the check refuses an empty one.
    pub name: ServiceName,
    /// CPU units (1024 = 1 vCPU), a Fargate size.
    pub cpu: u32,
    /// Memory in MiB, valid for `cpu` on Fargate.
    pub memory: u32,
    pub image: String,
    pub port: u16,
    pub desired_count: u32,
    pub min_count: u32,
    pub max_count: u32,
    pub cpu_target: f64,
    pub memory_target: f64,
    /// Target of a third policy: ALB requests per task per minute (`ALBRequestCountPerTarget`
    /// on the service's target group); only for services behind the ALB.
    pub request_count_target: Option<u32>,
    /// Target of a fourth policy: the Aurora cluster's average `DatabaseConnections`.
    pub db_connections_target: Option<u32>,
    /// Target of a policy on the work backlog: messages visible in the transaction queue per
    /// running task (metric math over SQS and Container Insights), for queue consumers.
    pub queue_backlog_target: Option<u32>,
    /// Target-tracking policies on any CloudWatch metric (`[[services.scaling]]`).
    pub scaling: Vec<CustomScaling>,
    pub health_check_grace_secs: u32,
    /// The split, from the written `capacity` table (see `written_capacity`).
    #[serde(skip)]
    pub capacity: CapacityConfig,
    /// `capacity.min_spot_percent`: the share of tasks (percent) that must be on Spot at
    /// min_count and at max_count; `capacity` was checked to meet it (see
    /// [`CapacityConfig::meets_spot_percent`]).
    #[serde(skip)]
    pub min_spot_percent: Option<u32>,
    /// The `capacity` table as written, split into `capacity` and `min_spot_percent` by the
    /// check (and then `None`). Left out: the web split with seed 000's floor.
    #[serde(rename = "capacity", deserialize_with = "capacity_and_floor")]
    written_capacity: Option<(CapacityConfig, Option<u32>)>,
    /// Whether the container's root file system is read-only (`readonlyRootFilesystem`,
    /// Security Hub ECS.5). On by default; the switch exists for images that cannot run
    /// read-only (they write outside any path a volume can cover).
    pub read_only_root: bool,
    /// Absolute paths the image writes to, each an ephemeral task volume (a Fargate bind
    /// mount without a host path, gone with the task) mounted read-write: with a read-only
    /// root the container exits at start if it writes anywhere else (AWS-CONTRACTS B7).
    #[serde(skip)]
    pub writable_paths: Vec<String>,
    /// `writable_paths` as written, moved there by the check (and then `None`). Left out: the
    /// default for the image (the placeholder's paths, or none for other images).
    #[serde(rename = "writable_paths")]
    written_paths: Option<Vec<String>>,
    pub permissions: Vec<Permission>,
    /// Path the ALB health check requests (`/` by default).
    pub health_check_path: String,
    /// Path pattern routed to this service by an ALB listener rule (e.g. `/api/*`); the first
    /// service without a path is the default (blue/green) target.
    pub path: Option<String>,
    /// How new versions reach the traffic: `rolling` (default) or `weighted` (blue and green
    /// services behind the two default target groups; the first service only).
    pub deployment: Deployment,
    /// Other services this one calls (by name, sorted, without repeats), at
    /// `<callee>.<cluster.namespace>` on the callee's port: each call gets the caller's egress
    /// rule and the callee's ingress rule (AWS needs both), and nothing else is allowed
    /// between services.
    pub calls: Vec<ServiceName>,
}

validated!(ServiceConfig);

/// The placeholder image services run until the user names their own: public, so a fresh
/// stack starts without pushing anything.
pub const PLACEHOLDER_IMAGE: &str = "public.ecr.aws/nginx/nginx:stable";

impl ServiceConfig {
    /// The default web app: 2 vCPU / 4 GB, at least half on Spot (see
    /// [`CapacityConfig::default`]). As
    /// the customer-facing service it also produces to the transaction queue, or the async
    /// tier would never get work.
    pub fn default_web() -> ServiceConfig {
        let mut web = ServiceConfig {
            name: ServiceName("web".into()),
            permissions: vec![
                Permission::Sessions,
                Permission::Database,
                Permission::Queue,
            ],
            ..ServiceConfig::unwritten()
        };
        web.validate().expect("default service is valid");
        web
    }

    /// What a `[[services]]` entry leaves out gets (its name excepted, which it must give).
    fn unwritten() -> ServiceConfig {
        ServiceConfig {
            name: ServiceName(String::new()),
            cpu: 2048,
            memory: 4096,
            image: PLACEHOLDER_IMAGE.into(),
            port: 80,
            desired_count: 2,
            min_count: 2,
            max_count: 10,
            cpu_target: 70.0,
            memory_target: 75.0,
            request_count_target: None,
            db_connections_target: None,
            queue_backlog_target: None,
            scaling: Vec::new(),
            health_check_grace_secs: 60,
            // The omitted table: the web split with seed 000's floor. A written table has no
            // floor unless it states one: a service that names its own split states its own.
            capacity: CapacityConfig::default(),
            min_spot_percent: Some(WEB_MIN_SPOT_PERCENT),
            written_capacity: None,
            read_only_root: true,
            writable_paths: Vec::new(),
            written_paths: None,
            permissions: vec![Permission::Sessions, Permission::Database],
            health_check_path: "/".into(),
            path: None,
            deployment: Deployment::Rolling,
            calls: Vec::new(),
        }
    }
}

/// The memory sizes (MiB) Fargate allows for a CPU size.
pub fn fargate_memory_options(cpu: u32) -> Option<Vec<u32>> {
    let (lo, hi, step) = match cpu {
        256 => return Some(vec![512, 1024, 2048]),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return None,
    };
    Some((lo..=hi).step_by(step as usize).collect())
}

impl Validate for ServiceConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        if self.name.0.is_empty() {
            return field_error!("name", "a service needs a `name`");
        }
        let n = &self.name.0;
        let Some(mems) = fargate_memory_options(self.cpu) else {
            return field_error!(
                "cpu",
                "service `{n}`: invalid cpu {}: Fargate sizes are 256, 512, 1024, 2048, \
                 4096, 8192 and 16384",
                self.cpu
            );
        };
        if !mems.contains(&self.memory) {
            return field_error!(
                "memory",
                "service `{n}`: memory {} MiB is not valid with cpu {} on Fargate; allowed: \
                 {} to {} MiB{}",
                self.memory,
                self.cpu,
                mems[0],
                mems[mems.len() - 1],
                if self.cpu == 256 {
                    " (512, 1024 or 2048)".to_string()
                } else {
                    format!(" in steps of {}", mems[1] - mems[0])
                }
            );
        }
        if self.image.trim().is_empty() || self.image.chars().any(char::is_whitespace) {
            return field_error!("image", "service `{n}`: invalid image `{}`", self.image);
        }
        if self.port == 0 {
            return field_error!("port", "service `{n}`: port must be 1 to 65535");
        }
        if self.min_count > self.max_count || self.max_count == 0 {
            return field_error!(
                "min_count",
                "service `{n}`: min_count {} and max_count {}: need 0 <= min_count <= \
                 max_count and max_count >= 1",
                self.min_count,
                self.max_count
            );
        }
        if self.desired_count < self.min_count || self.desired_count > self.max_count {
            return field_error!(
                "desired_count",
                "service `{n}`: desired_count {} must be between min_count {} and \
                 max_count {}",
                self.desired_count,
                self.min_count,
                self.max_count
            );
        }
        for (field, v) in [
            ("cpu_target", self.cpu_target),
            ("memory_target", self.memory_target),
        ] {
            if !(10.0..=95.0).contains(&v) {
                return field_error!(
                    field,
                    "service `{n}`: {field} {v} must be a utilisation percentage from 10 to 95"
                );
            }
        }
        for (field, v, max) in [
            ("request_count_target", self.request_count_target, 1_000_000),
            ("db_connections_target", self.db_connections_target, 100_000),
            ("queue_backlog_target", self.queue_backlog_target, 1_000_000),
        ] {
            if v.is_some_and(|v| v == 0 || v > max) {
                return field_error!(
                    field,
                    "service `{n}`: {field} {} must be from 1 to {max}",
                    v.unwrap_or_default()
                );
            }
        }
        if self.scaling.len() > 10 {
            return field_error!(
                "scaling",
                "service `{n}`: {} scaling entries; at most 10 custom metrics per service",
                self.scaling.len()
            );
        }
        for s in &self.scaling {
            let bad_name = |v: &str| v.is_empty() || v.len() > 255;
            if bad_name(&s.namespace) || bad_name(&s.metric) {
                return field_error!(
                    "scaling",
                    "service `{n}`: a scaling entry needs a namespace and a metric (1 to 255 \
                     characters each), got `{}` / `{}`",
                    s.namespace,
                    s.metric
                );
            }
            if s.dimensions.len() > 30
                || s.dimensions
                    .iter()
                    .any(|(k, v)| bad_name(k) || v.len() > 1024 || v.is_empty())
            {
                return field_error!(
                    "scaling",
                    "service `{n}`: metric {} {}: at most 30 dimensions, names 1 to 255 and \
                     values 1 to 1024 characters",
                    s.namespace,
                    s.metric
                );
            }
            if !(s.target.is_finite() && s.target > 0.0) {
                return field_error!(
                    "scaling",
                    "service `{n}`: metric {} {}: target {} must be a number above 0",
                    s.namespace,
                    s.metric,
                    s.target
                );
            }
        }
        if let Some((split, floor)) = self.written_capacity.take() {
            (self.capacity, self.min_spot_percent) = (split, floor);
        }
        let c = &self.capacity;
        if c.fargate_base < 0
            || c.fargate_weight < 0
            || c.spot_weight < 0
            || c.fargate_base > 100_000
        {
            return field_error!(
                "capacity",
                "service `{n}`: capacity values must not be negative"
            );
        }
        if c.fargate_weight == 0 && c.spot_weight == 0 {
            return field_error!(
                "capacity",
                "service `{n}`: capacity needs a non-zero fargate_weight or spot_weight"
            );
        }
        if c.fargate_weight == 0 && c.fargate_base > 0 {
            return field_error!(
                "capacity",
                "service `{n}`: a fargate_base needs a non-zero fargate_weight (ECS rule)"
            );
        }
        if let Some(p) = self.min_spot_percent {
            check_spot_share(n, c, p, self.min_count, self.max_count)?;
        }
        self.writable_paths = match self.written_paths.take() {
            Some(paths) => paths,
            None if self.image == PLACEHOLDER_IMAGE => PLACEHOLDER_WRITABLE_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            // An image of the user's: only they know where it writes.
            None => Vec::new(),
        };
        check_writable_paths(n, &self.writable_paths)
            .map_err(|e| FieldError::new("writable_paths", e))?;
        if !is_url_path(&self.health_check_path, 1024, false) {
            return field_error!(
                "health_check_path",
                "service `{n}`: invalid health_check_path `{}`: a URL path starting with \
                 `/`, at most 1024 characters, without spaces or wildcards",
                self.health_check_path
            );
        }
        if let Some(p) = &self.path {
            if !is_url_path(p, 128, true) || p == "/*" || p == "/" {
                return field_error!(
                    "path",
                    "service `{n}`: invalid path `{p}`: a path pattern such as `/api/*` \
                     starting with `/`, at most 128 characters (ALB's limit), `*` and `?` \
                     as wildcards; `/` and `/*` would take all traffic from the default \
                     service"
                );
            }
        }
        self.permissions.sort();
        self.permissions.dedup();
        self.calls.sort();
        self.calls.dedup();
        Ok(())
    }
}

/// Refuses a capacity split that cannot keep `percent` % of the tasks on Spot at min_count or
/// at max_count (counted as in [`CapacityConfig::min_spot_tasks`]), naming the numbers.
pub(crate) fn check_spot_share(
    n: &str,
    c: &CapacityConfig,
    percent: u32,
    min_count: u32,
    max_count: u32,
) -> Result<(), FieldError> {
    if percent > 100 {
        return field_error!(
            "capacity.min_spot_percent",
            "service `{n}`: capacity.min_spot_percent {percent} must be from 0 to 100"
        );
    }
    for (which, tasks) in [("min_count", min_count), ("max_count", max_count)] {
        if !c.meets_spot_percent(tasks, percent) {
            let spot = c.min_spot_tasks(tasks);
            return field_error!(
                "capacity",
                "service `{n}`: capacity {{ fargate_base = {}, fargate_weight = {}, spot_weight = \
                 {} }} cannot keep min_spot_percent {percent} % on Spot at {which} {tasks}: ECS \
                 puts the base on FARGATE first and splits the rest by weight, so only {spot} of \
                 {tasks} tasks ({}%) are sure to run on FARGATE_SPOT; raise spot_weight or lower \
                 fargate_base",
                c.fargate_base,
                c.fargate_weight,
                c.spot_weight,
                u64::from(spot) * 100 / u64::from(tasks)
            );
        }
    }
    Ok(())
}

/// Checks `writable_paths`: absolute, no `.`/`..` parts, not `/` itself, no repeats, and
/// distinct volume names (see [`writable_volume_name`]).
pub(crate) fn check_writable_paths(n: &str, paths: &[String]) -> Result<(), String> {
    if paths.len() > MAX_WRITABLE_PATHS {
        return Err(format!(
            "service `{n}`: {} writable_paths, at most {MAX_WRITABLE_PATHS}",
            paths.len()
        ));
    }
    let mut names = std::collections::BTreeMap::new();
    for p in paths {
        let parts_ok = p
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
        let ok = p.starts_with('/')
            && p.trim_end_matches('/').len() > 1
            && p.len() <= 1024
            && parts_ok
            && !p.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(format!(
                "service `{n}`: invalid writable path `{p}`: an absolute path such as `/tmp`, \
                 not `/`, without spaces or `.`/`..` parts"
            ));
        }
        let name = writable_volume_name(p);
        if let Some(other) = names.insert(name.clone(), p.clone()) {
            return Err(format!(
                "service `{n}`: writable paths `{other}` and `{p}` are the same path or map to \
                 the same volume name `{name}`"
            ));
        }
    }
    Ok(())
}

/// The collector image `[tracing]` runs by default: the AWS Distro for OpenTelemetry
/// collector, pinned (a tag that moves would change every task definition behind the
/// config's back). The X-Ray daemon it replaces reaches end of support on 2027-02-25.
pub const COLLECTOR_IMAGE: &str = "public.ecr.aws/aws-observability/aws-otel-collector:v0.45.0";

/// Tracing (seed 003): every task runs an OpenTelemetry collector sidecar that sends the
/// app's traces to AWS X-Ray.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct TracingConfig {
    pub enabled: bool,
    /// The collector's image (default [`COLLECTOR_IMAGE`]).
    pub collector_image: String,
}

validated!(TracingConfig);

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: true,
            collector_image: COLLECTOR_IMAGE.to_string(),
        }
    }
}

impl Validate for TracingConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        let i = &self.collector_image;
        if i.is_empty() || i.len() > 255 || i.chars().any(char::is_whitespace) {
            return field_error!(
                "collector_image",
                "invalid collector_image `{i}`: an image reference of 1 to 255 characters \
                 without whitespace, e.g. {COLLECTOR_IMAGE}"
            );
        }
        Ok(())
    }
}
