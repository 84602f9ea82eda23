//! The TOML configuration file (`--config`): every field optional, every default documented
//! in README.md. Unknown fields and bad values are errors that name the field and the line:
//! values are checked while deserializing, so the TOML parser reports where they are.
//!
//! Each step owns its section (`steps/<step>/config.rs`: schema, defaults, rules); this module
//! holds `Config`, the presets, merging, the checks that span sections, and re-exports the
//! sections so that callers name them `crate::config::X`.

use std::path::Path;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::error::UsageError;
use validated::split_field_error;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A reference architecture whose settings are the base this file overrides.
    pub preset: Option<Preset>,
    /// The stack's region. `--region` overrides it; without either, the profile's or the
    /// environment's region, else us-east-1. A stack stays in the region it was created in.
    pub region: Option<RegionName>,
    pub tags: TagsConfig,
    pub network: NetworkConfig,
    pub kms: KmsConfig,
    pub database: DatabaseConfig,
    pub sessions: SessionsConfig,
    pub cluster: ClusterConfig,
    pub logs: LogsConfig,
    /// The ECS services; default: one `web` service of 2 vCPU / 4 GB.
    pub services: Services,
    pub timeouts: TimeoutsConfig,
    pub certificate: CertificateConfig,
    pub alb: AlbConfig,
    pub waf: WafConfig,
    pub queue: QueueConfig,
    pub validator: ValidatorConfig,
    pub storage: StorageConfig,
    pub cdn: CdnConfig,
    pub alarms: AlarmsConfig,
    pub dr: DrConfig,
    pub deploy: DeployConfig,
    pub tracing: TracingConfig,
}

impl Config {
    /// Reads and checks a config file; `preset` (from `--preset`) applies when the file names
    /// none, and must agree with it when it does.
    pub fn load(path: Option<&Path>, preset: Option<Preset>) -> Result<Config, UsageError> {
        let Some(path) = path else {
            return Ok(preset.map(Config::preset).unwrap_or_default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::parse_with(&text, preset)
            .map_err(|e| UsageError::new(format!("config file {}: {}", path.display(), e.0)))
    }

    /// The config an earlier `up` recorded in the state (its file's text and `--preset`).
    pub fn from_source(source: &crate::state::ConfigSource) -> Result<Config, UsageError> {
        let preset = match &source.preset {
            Some(name) => Some(Preset::from_name(name).ok_or_else(|| {
                UsageError::new(format!(
                    "the state records preset `{name}`, which this fintech-infra does not know"
                ))
            })?),
            None => None,
        };
        match &source.text {
            Some(text) => Self::parse_with(text, preset)
                .map_err(|e| UsageError::new(format!("the config recorded in the state: {}", e.0))),
            None => Ok(preset.map(Config::preset).unwrap_or_default()),
        }
    }

    /// Parses config text; errors name the field and the line. See [`Config::parse_with`].
    pub fn parse(text: &str) -> Result<Config, UsageError> {
        Self::parse_with(text, None)
    }

    /// Parses config text, with the preset of `--preset` if any; errors name the field and the
    /// line. With `preset = "..."` the
    /// preset's settings are the base and the file's override them (tables merge key by key,
    /// lists such as `[[services]]` replace the preset's whole list).
    pub fn parse_with(text: &str, flag: Option<Preset>) -> Result<Config, UsageError> {
        // The file alone first: its own mistakes are reported with their line numbers.
        let own: Config =
            toml::from_str(text).map_err(|e| UsageError::new(toml_error(text, &e)))?;
        let preset = match (own.preset, flag) {
            (Some(a), Some(b)) if a != b => {
                return Err(UsageError::new(format!(
                    "--preset {} contradicts `preset = \"{}\"` in the config file",
                    b.name(),
                    a.name()
                )))
            }
            (a, b) => a.or(b),
        };
        let cfg = match preset {
            None => own,
            Some(preset) => {
                let mut merged: toml::Table = toml::from_str(preset.toml())
                    .unwrap_or_else(|e| panic!("preset {} is invalid TOML: {e}", preset.name()));
                let overrides: toml::Table =
                    toml::from_str(text).map_err(|e| UsageError::new(toml_error(text, &e)))?;
                merge(&mut merged, overrides);
                merged.insert("preset".into(), toml::Value::String(preset.name().into()));
                Config::deserialize(merged).map_err(|e| {
                    UsageError::new(format!("preset `{}` with this file: {e}", preset.name()))
                })?
            }
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// The settings of a preset alone.
    pub fn preset(preset: Preset) -> Config {
        Config::parse(&format!("preset = \"{}\"", preset.name()))
            .unwrap_or_else(|e| panic!("preset {} is invalid: {e}", preset.name()))
    }

    /// Checks that span several fields (single-field rules are enforced while parsing).
    fn check(&self) -> Result<(), UsageError> {
        let mut seen = std::collections::BTreeSet::new();
        for svc in &self.services.0 {
            if !seen.insert(svc.name.0.as_str()) {
                return Err(UsageError::new(format!(
                    "services: the name `{}` is used twice; service names must be unique",
                    svc.name.0
                )));
            }
        }
        if let Some(first) = self.services.0.first() {
            if first.path.is_some() {
                return Err(UsageError::new(format!(
                    "services: the first service (`{}`) is the ALB's default (blue/green) target \
                     and cannot have a `path`; list a path-routed service after it",
                    first.name.0
                )));
            }
        }
        // SQS counts a visibility's 12 hours from the receive, not from the change: the
        // handler sets it at most a function timeout (plus the 1 s batching window) later.
        let latest = 43200 - self.validator.timeout_secs.0 - 1;
        if self.validator.retry_max_secs.0 > latest {
            return Err(UsageError::new(format!(
                "validator.retry_max_secs {} is too long: SQS counts a message's 12-hour \
                 visibility limit from its receive, and the handler sets the delay up to \
                 validator.timeout_secs ({}) later; allowed: at most {latest}",
                self.validator.retry_max_secs.0, self.validator.timeout_secs.0
            )));
        }
        // Every retry but the last waits its delay: all of them must fit in the queue's
        // retention, or messages expire instead of reaching the dead-letter queue.
        let waits: i64 = (1..self.queue.max_receive_count.0)
            .map(|k| {
                let d = i64::from(self.validator.retry_base_secs.0) << (k - 1).min(32);
                d.min(i64::from(self.validator.retry_max_secs.0))
            })
            .sum();
        let retention = i64::from(self.queue.message_retention_days.0) * 86400;
        if waits > retention {
            return Err(UsageError::new(format!(
                "the retries of a failed transaction wait {waits} s in all \
                 (queue.max_receive_count {} with validator.retry_base_secs {} and \
                 retry_max_secs {}), longer than queue.message_retention_days {} keeps it: it \
                 would expire instead of reaching the dead-letter queue; lower the count or the \
                 delays, or keep messages longer",
                self.queue.max_receive_count.0,
                self.validator.retry_base_secs.0,
                self.validator.retry_max_secs.0,
                self.queue.message_retention_days.0
            )));
        }
        if self.validator.retry_base_secs.0 > self.validator.retry_max_secs.0 {
            return Err(UsageError::new(format!(
                "validator.retry_base_secs {} is above validator.retry_max_secs {}: the first \
                 retry's delay must not exceed the longest",
                self.validator.retry_base_secs.0, self.validator.retry_max_secs.0
            )));
        }
        // Blue/green by weight: the default service runs a green twin behind the green target
        // group. An ALB that sends the green group traffic with nothing registered in it
        // answers those requests with 503 (AWS-CONTRACTS B8).
        // CodeDeploy's blue/green needs a pair of target groups behind the production
        // listener: the default service has one (blue and green).
        for (i, svc) in self.services.0.iter().enumerate() {
            if (svc.deployment == Deployment::Weighted || svc.deployment.is_code_deploy()) && i > 0
            {
                return Err(UsageError::new(format!(
                    "services: `{}` has deployment = \"{}\", which only the first service \
                     (the ALB's default, with the blue and green target groups) can have; \
                     path-routed and internal services use \"rolling\"",
                    svc.name.0,
                    svc.deployment.name()
                )));
            }
        }
        for (field, name) in [
            ("deploy.linear_config", &self.deploy.linear_config),
            ("deploy.canary_config", &self.deploy.canary_config),
        ] {
            if !name.starts_with("CodeDeployDefault.ECS") {
                return Err(UsageError::new(format!(
                    "{field} = \"{name}\": an ECS deployment needs one of CodeDeploy's ECS \
                     configurations, e.g. CodeDeployDefault.ECSLinear10PercentEvery1Minutes, \
                     CodeDeployDefault.ECSLinear10PercentEvery3Minutes, \
                     CodeDeployDefault.ECSCanary10Percent5Minutes, \
                     CodeDeployDefault.ECSCanary10Percent15Minutes or \
                     CodeDeployDefault.ECSAllAtOnce"
                )));
            }
        }
        if self.deploy.test_cidrs.len() > 4 {
            return Err(UsageError::new(format!(
                "deploy.test_cidrs has {} blocks: at most 4 (the ALB's security group holds \
                 60 inbound rules and its CloudFront rule counts as 55)",
                self.deploy.test_cidrs.len()
            )));
        }
        if let Some(open) = self.deploy.test_cidrs.iter().find(|c| c.0.prefix_len() < 8) {
            return Err(UsageError::new(format!(
                "deploy.test_cidrs has {open}: the test listener serves versions not yet \
                 released; name your testers' networks (a /8 or narrower), not the internet"
            )));
        }
        if self.deploy.termination_wait_mins > 2880 {
            return Err(UsageError::new(format!(
                "deploy.termination_wait_mins = {}: CodeDeploy keeps the old tasks at most \
                 2880 minutes (2 days) after the traffic moved",
                self.deploy.termination_wait_mins
            )));
        }
        if [80, 443].contains(&self.deploy.test_port)
            || !(1..=65535).contains(&self.deploy.test_port)
        {
            return Err(UsageError::new(format!(
                "deploy.test_port = {}: the test listener needs a port of its own (1-65535, \
                 not the production listeners' 80 and 443)",
                self.deploy.test_port
            )));
        }
        if let Some(first) = self.services.0.first() {
            if self.alb.green_weight > 0 && first.deployment != Deployment::Weighted {
                return Err(UsageError::new(format!(
                    "alb.green_weight is {} but the default service `{}` has deployment = \
                     \"{}\": nothing would serve the green target group and the ALB would \
                     answer {}% of the requests with 503; set deployment = \"weighted\" on \
                     `{}` (a green twin serves that share) or alb.green_weight = 0 (CodeDeploy \
                     moves the traffic itself)",
                    self.alb.green_weight,
                    first.name.0,
                    first.deployment.name(),
                    self.alb.green_weight * 100 / (self.alb.blue_weight + self.alb.green_weight),
                    first.name.0
                )));
            }
            let twin = green_twin(&first.name.0);
            if first.deployment == Deployment::Weighted
                && self.services.0.iter().any(|s| s.name.0 == twin)
            {
                return Err(UsageError::new(format!(
                    "services: `{twin}` is the name of the green twin of `{}` (deployment = \
                     \"weighted\"); rename the service",
                    first.name.0
                )));
            }
        }
        for svc in &self.services.0 {
            if svc.request_count_target.is_some()
                && svc.deployment.is_code_deploy()
                && !self.cluster.container_insights
            {
                return Err(UsageError::new(format!(
                    "services: `{}` has a request_count_target and deployment = \"{}\": AWS \
                     does not support ALBRequestCountPerTarget with CodeDeploy's blue/green, so \
                     the policy divides both target groups' requests by Container Insights' \
                     RunningTaskCount, which cluster.container_insights = false turns off: \
                     turn Container Insights on or drop request_count_target",
                    svc.name.0,
                    svc.deployment.name()
                )));
            }
            if svc.queue_backlog_target.is_some() && svc.min_count == 0 {
                return Err(UsageError::new(format!(
                    "services: `{}` has a queue_backlog_target and min_count 0: messages per \
                     running task has no value without a running task, so it could never \
                     scale out from 0; set min_count to at least 1",
                    svc.name.0
                )));
            }
            if svc.queue_backlog_target.is_some() && !self.cluster.container_insights {
                return Err(UsageError::new(format!(
                    "services: `{}` has a queue_backlog_target, which divides the queue's \
                     messages by Container Insights' RunningTaskCount; with \
                     cluster.container_insights = false that metric does not exist: turn \
                     Container Insights on or drop queue_backlog_target",
                    svc.name.0
                )));
            }
        }
        for svc in &self.services.0 {
            if svc.request_count_target.is_some() && !self.services.is_behind_alb(&svc.name.0) {
                return Err(UsageError::new(format!(
                    "services: `{}` has a request_count_target but no ALB target group (only \
                     the first service and services with a `path` are behind the ALB); give it \
                     a `path` or drop request_count_target",
                    svc.name.0
                )));
            }
        }
        // services[].calls: each name another configured service, and a Cloud Map namespace
        // to find it by (`<callee>.<namespace>`: the callee's tasks come and go, their IPs
        // with them, so DNS is the only stable address a caller has).
        let names: Vec<&str> = self.services.0.iter().map(|s| s.name.0.as_str()).collect();
        for svc in &self.services.0 {
            let me = svc.name.0.as_str();
            for callee in &svc.calls {
                if callee.0 == me {
                    return Err(UsageError::new(format!(
                        "services: `{me}` lists itself in services[].calls; calls name other \
                         services (a service's own tasks need no rule to reach each other \
                         through it)"
                    )));
                }
                if !names.contains(&callee.0.as_str()) {
                    let others: Vec<&str> = names.iter().copied().filter(|n| *n != me).collect();
                    return Err(UsageError::new(format!(
                        "services: `{me}` calls `{}` in services[].calls, which is not a \
                         configured service; allowed: {}",
                        callee.0,
                        if others.is_empty() {
                            "none (no other service is configured)".to_string()
                        } else {
                            others.join(", ")
                        }
                    )));
                }
            }
            if !svc.calls.is_empty() && self.cluster.namespace.is_none() {
                return Err(UsageError::new(format!(
                    "services: `{me}` has services[].calls but cluster.namespace is not set: a \
                     service finds another by its Cloud Map name `<service>.<namespace>`; set \
                     cluster.namespace (e.g. \"payments.internal\") or drop calls"
                )));
            }
        }
        let mut paths = std::collections::BTreeSet::new();
        for svc in &self.services.0 {
            if let Some(p) = &svc.path {
                if !paths.insert(p.as_str()) {
                    return Err(UsageError::new(format!(
                        "services: the path `{p}` is routed to two services; paths must be unique"
                    )));
                }
            }
        }
        let timeout = self.validator.timeout_secs.0;
        if let Some(v) = self.queue.visibility_timeout_secs {
            if v.0 < timeout * 6 {
                return Err(UsageError::new(format!(
                    "queue.visibility_timeout_secs {} is below 6 x validator.timeout_secs ({timeout} \
                     x 6 = {}): AWS requires at least the function timeout for a Lambda-triggered \
                     queue and recommends six times it, or messages are redelivered while a batch \
                     is still being processed; raise it or leave it out (default: 6 x the timeout)",
                    v.0,
                    timeout * 6
                )));
            }
        }
        if let Some(dr) = &self.dr.region {
            if self.region.as_ref() == Some(dr) {
                return Err(UsageError::new(format!(
                    "dr.region {dr} is the stack's own region; the disaster-recovery region must \
                     be another one (e.g. us-west-2 for a stack in us-east-2)"
                )));
            }
            let (main, other) = (self.network.cidr.0, self.dr.cidr.0);
            if main.contains(&other) || other.contains(&main) {
                return Err(UsageError::new(format!(
                    "dr.cidr {other} overlaps network.cidr {main}: peered VPCs need disjoint \
                     blocks; pick another private block for dr.cidr (default 10.1.0.0/16)"
                )));
            }
        }
        self.check_edge()?;
        if let Some(azs) = &self.network.availability_zones {
            if azs.len() != usize::from(self.network.az_count.0) {
                return Err(UsageError::new(format!(
                    "network.availability_zones lists {} zones but network.az_count is {}; \
                     list exactly az_count zones or leave availability_zones out",
                    azs.len(),
                    self.network.az_count.0
                )));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The cross-field rules of the edge (certificate, ALB, CDN), part of [`Config::check`]:
    /// refused here, before any AWS call, rather than failing (or silently not working) at
    /// run time.
    fn check_edge(&self) -> Result<(), UsageError> {
        crate::steps::cdn::check_default_root_object(&self.cdn.default_root_object)
            .map_err(|e| UsageError::new(e.to_string()))?;
        if self.cdn.origin_access == OriginAccess::Oai {
            return Err(UsageError::new(
                "cdn.origin_access = \"oai\" cannot work with this stack: the assets bucket is \
                 encrypted with the stack's KMS key (SSE-KMS), and a CloudFront origin access \
                 identity cannot read SSE-KMS objects at all (every object answers 403); use \
                 \"oac\" (the default, AWS's recommendation), for which the cdn step lets the \
                 distribution decrypt with the key. A stack built with \"oai\" switches over on \
                 the next `up`: the identity and its bucket grant are removed",
            ));
        }
        match (&self.certificate.source, &self.alb.origin_domain) {
            (None, Some(d)) => {
                return Err(UsageError::new(format!(
                    "alb.origin_domain `{d}` needs a [certificate] (domain or arn) covering it: \
                     it is the name CloudFront reaches the ALB by over HTTPS. Without a \
                     certificate the ALB serves HTTP only and CloudFront reaches it at its AWS \
                     DNS name; drop alb.origin_domain or configure a certificate"
                )))
            }
            (Some(CertificateSource::Existing { arn }), None) => {
                return Err(UsageError::new(format!(
                    "certificate.arn {arn} needs alb.origin_domain: a host name the certificate \
                     covers (e.g. origin.example.com under *.example.com) by which CloudFront \
                     reaches the ALB over HTTPS. CloudFront checks the origin's certificate \
                     against the name it connects to, and the ALB's own *.elb.amazonaws.com \
                     name is not on your certificate (HTTP 502 on /api/*); `outputs` lists the \
                     CNAME record to create for it (alb_origin_dns_record)"
                )))
            }
            (
                Some(CertificateSource::Request {
                    domain,
                    subject_alternative_names,
                }),
                _,
            ) => {
                let origin = self
                    .alb
                    .api_origin_domain(&self.certificate)
                    .unwrap_or_default();
                let covered = std::iter::once(domain)
                    .chain(subject_alternative_names)
                    .any(|n| certificate_name_covers(n, &origin));
                if !covered {
                    if !is_certificate_domain(&origin) {
                        return Err(UsageError::new(format!(
                            "the default alb.origin_domain `{origin}` (origin.<certificate.domain>) \
                             is not a valid DNS name (253 characters at most); set \
                             alb.origin_domain to a shorter name under your domain"
                        )));
                    }
                    if subject_alternative_names.len() + 2 > 100 {
                        return Err(UsageError::new(format!(
                            "certificate: the ALB origin name `{origin}` would be a 101st name on \
                             the certificate (ACM allows 100); set alb.origin_domain to one of \
                             the certificate's names or drop a subject alternative name"
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A TOML error as a person reads it: the line and the key first, then the rule that was
/// broken, then the line itself. (The parser's own text starts with "TOML parse error at
/// line N" even when the TOML parsed and a value broke a rule, and puts the reason last.)
/// A section's own check ([`Validate`]) fails at the section's line, and names its field:
/// "`database.min_capacity` in [database] at line 3: ...".
pub(super) fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().to_string();
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"'))
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    // A span that starts at a table header is that table's (a section that broke its own
    // rules); otherwise the value is in the table of the nearest header above it.
    let header = line.starts_with('[').then_some(line);
    let section = header
        .or_else(|| {
            text[..start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
        })
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let message = e.message().trim();
    if let Some((field, rule)) = split_field_error(message) {
        let path: Vec<&str> = [section.as_deref(), key, Some(field)]
            .into_iter()
            .flatten()
            .collect();
        let path = path.join(".");
        return match header {
            Some(h) => format!("`{path}` in {h} at line {line_no}: {rule}"),
            None => format!("`{path}` at line {line_no}: {rule} (line {line_no}: `{line}`)"),
        };
    }
    let field = match (section, key) {
        (Some(s), Some(k)) => format!("`{s}.{k}`"),
        (None, Some(k)) => format!("`{k}`"),
        (Some(s), None) => header.map_or_else(|| format!("[{s}]"), str::to_string),
        (None, None) => String::new(),
    };
    let at = if field.is_empty() {
        format!("line {line_no}")
    } else {
        format!("{field} at line {line_no}")
    };
    format!("{at}: {message} (line {line_no}: `{line}`)")
}

/// Deep-merges `over` into `base`: tables key by key, anything else replaced.
pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The reference architectures of `../shared/seeds`, as configuration presets.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Seed 000: HA web app (the defaults).
    Webapp,
    /// Seed 001: blue/green web app.
    Bluegreen,
    /// Seed 002: resilient app on Aurora Serverless v2 over two AZs.
    Resilient,
    /// Seed 003: three-service payment system with service discovery.
    Microservices,
    /// Seed 004: primary us-east-2 with a disaster-recovery region (us-west-2), WAF on.
    Multiregion,
}

impl Preset {
    pub const ALL: [Preset; 5] = [
        Preset::Webapp,
        Preset::Bluegreen,
        Preset::Resilient,
        Preset::Microservices,
        Preset::Multiregion,
    ];

    /// The preset of a name as [`Preset::name`] gives it.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Webapp => "webapp",
            Preset::Bluegreen => "bluegreen",
            Preset::Resilient => "resilient",
            Preset::Microservices => "microservices",
            Preset::Multiregion => "multiregion",
        }
    }

    fn toml(self) -> &'static str {
        match self {
            Preset::Webapp => include_str!("../presets/webapp.toml"),
            Preset::Bluegreen => include_str!("../presets/bluegreen.toml"),
            Preset::Resilient => include_str!("../presets/resilient.toml"),
            Preset::Microservices => include_str!("../presets/microservices.toml"),
            Preset::Multiregion => include_str!("../presets/multiregion.toml"),
        }
    }
}

/// An AWS region name such as `us-east-2`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct RegionName(pub String);

impl TryFrom<String> for RegionName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        // `<area>[-gov|-iso...]-<direction>-<number>`: us-east-2, eu-central-1,
        // us-gov-west-1, ap-southeast-4.
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts.len() <= 4
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1]
                .parse::<u8>()
                .is_ok_and(|n| (1..=20).contains(&n));
        if !ok {
            return Err(format!(
                "invalid region `{s}`: expected an AWS region name such as us-east-2 or \
                 eu-west-1"
            ));
        }
        Ok(RegionName(s))
    }
}

impl std::fmt::Display for RegionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Tag values put on every taggable resource.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TagsConfig {
    /// `Environment` tag; defaults to the env suffix.
    pub environment: Option<TagValue>,
    /// `Team` tag.
    pub team: TagValue,
    /// `CostCenter` tag.
    pub cost_center: TagValue,
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            environment: None,
            team: TagValue("platform".into()),
            cost_center: TagValue("fintech".into()),
        }
    }
}

/// A tag value: 1 to 256 characters (AWS's limit), no control characters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct TagValue(pub String);

impl TryFrom<String> for TagValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
            return Err(format!(
                "invalid tag value `{s}`: must be 1 to 256 characters without control characters"
            ));
        }
        Ok(TagValue(s))
    }
}

/// How long to keep retrying.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// How long a delete may keep failing with `DependencyViolation` (or `ResourceInUse`)
    /// before the step fails: AWS releases the ENIs of deleted NAT gateways, load balancers and
    /// Lambda functions lazily, which holds subnets and security groups for minutes.
    pub dependency_violation_secs: Secs,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            dependency_violation_secs: Secs(300),
        }
    }
}

/// A duration in seconds, 1 to 3600.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "u64")]
pub struct Secs(pub u64);

impl TryFrom<u64> for Secs {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        if (1..=3600).contains(&n) {
            Ok(Secs(n))
        } else {
            Err(format!("invalid duration {n}: 1 to 3600 seconds"))
        }
    }
}

/// Defines a whole-number setting checked against an inclusive range while parsing, so the
/// error names the field and the line.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($t:ty), $field:literal, $lo:literal..=$hi:literal, $why:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
        #[serde(try_from = "i64")]
        pub struct $name(pub $t);

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(n: i64) -> Result<Self, String> {
                if ($lo..=$hi).contains(&n) {
                    Ok($name(n as $t))
                } else {
                    Err(format!(concat!("invalid ", $field, " {}: ", $why), n))
                }
            }
        }
    };
}

/// A URL path (`/...`, printable ASCII without spaces); `wildcards` allows `*` and `?` as in
/// ALB path patterns.
pub(super) fn is_url_path(s: &str, max: usize, wildcards: bool) -> bool {
    s.starts_with('/')
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_graphic() && (wildcards || (c != '*' && c != '?')) && c != '"')
}

#[macro_use]
pub(crate) mod validated;

mod shared;

pub use shared::*;

// The steps' own sections, each next to its step, and `[deploy]` next to the command.
pub use crate::deploy::config::*;
pub use crate::steps::alarms::config::*;
pub use crate::steps::alb::config::*;
pub use crate::steps::cdn::config::*;
pub use crate::steps::certificate::config::*;
pub use crate::steps::cluster::config::*;
pub use crate::steps::database::config::*;
pub use crate::steps::dr_network::config::*;
pub use crate::steps::kms::config::*;
pub use crate::steps::network::config::*;
pub use crate::steps::queue::config::*;
pub use crate::steps::services::config::*;
pub use crate::steps::sessions::config::*;
pub use crate::steps::storage::config::*;
pub use crate::steps::validator::config::*;
pub use crate::steps::waf::config::*;

#[cfg(test)]
mod tests;
