//! The TOML configuration file (`--config`): every field optional, every default documented
//! in README.md. Unknown fields and bad values are errors that name the field and the line:
//! values are checked while deserializing, so the TOML parser reports where they are.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::error::UsageError;

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
fn toml_error(text: &str, e: &toml::de::Error) -> String {
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
    let section = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_string());
    let field = match (section, key) {
        (Some(s), Some(k)) => format!("`{s}.{k}`"),
        (None, Some(k)) => format!("`{k}`"),
        (Some(s), None) => format!("[{s}]"),
        (None, None) => String::new(),
    };
    let at = if field.is_empty() {
        format!("line {line_no}")
    } else {
        format!("{field} at line {line_no}")
    };
    format!("{at}: {} (line {line_no}: `{line}`)", e.message().trim())
}

/// Deep-merges `over` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
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
            Preset::Webapp => include_str!("presets/webapp.toml"),
            Preset::Bluegreen => include_str!("presets/bluegreen.toml"),
            Preset::Resilient => include_str!("presets/resilient.toml"),
            Preset::Microservices => include_str!("presets/microservices.toml"),
            Preset::Multiregion => include_str!("presets/multiregion.toml"),
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

/// Disaster recovery in a second region (seed 004).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DrConfig {
    /// The disaster-recovery region. With it, `up` also builds there a VPC peered with the
    /// stack's VPC, a KMS key, a replica of the assets bucket that S3 replicates every object
    /// to, and a backup vault that AWS Backup copies the daily Aurora snapshots into. Without
    /// it (the default), nothing is built outside the stack's region.
    pub region: Option<RegionName>,
    /// The DR VPC's block: must not overlap `network.cidr`, as peered VPCs cannot.
    pub cidr: VpcCidr,
    /// Zones of the DR VPC's private subnets: 2 or 3.
    pub az_count: AzCount,
    /// Days AWS Backup keeps the daily Aurora snapshots, in the stack's vault and their
    /// copies in the DR vault.
    pub snapshot_retention_days: SnapshotRetentionDays,
}

impl Default for DrConfig {
    fn default() -> Self {
        DrConfig {
            region: None,
            cidr: VpcCidr("10.1.0.0/16".parse().expect("valid default")),
            az_count: AzCount(2),
            snapshot_retention_days: SnapshotRetentionDays(7),
        }
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// VPC CIDR block, /16 to /24.
    pub cidr: VpcCidr,
    /// Number of availability zones: 2 or 3.
    pub az_count: AzCount,
    /// Explicit zones (e.g. `["us-east-1a", "us-east-1b", "us-east-1c"]`); default: the
    /// region's first `az_count` available zones.
    pub availability_zones: Option<Vec<String>>,
    /// `single` (one NAT gateway, cheaper) or `per-az` (one per zone, survives a zone loss).
    pub nat_gateways: NatMode,
    /// AWS services reached through interface endpoints in the private subnets instead of
    /// the NAT gateway (S3 and DynamoDB always have gateway endpoints).
    pub interface_endpoints: Vec<InterfaceService>,
    /// VPC flow logs (all traffic) of the stack's VPC and the DR VPC to KMS-encrypted
    /// CloudWatch Logs groups (Security Hub EC2.6). On by default; a switch because flow logs
    /// are billed per GB ingested and stored in CloudWatch Logs, which a busy VPC makes
    /// noticeable in throwaway environments.
    pub flow_logs: bool,
}

/// Services that can get interface VPC endpoints.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum InterfaceService {
    /// ECR: `ecr.api` (registry API) and `ecr.dkr` (image pulls; layers come through the
    /// S3 gateway endpoint).
    Ecr,
    /// CloudWatch Logs (the awslogs driver, Lambda logs).
    Logs,
    /// Secrets Manager (the database secret injected into tasks).
    Secretsmanager,
}

impl InterfaceService {
    /// The endpoint service names (`com.amazonaws.<region>.<name>`) it needs.
    pub fn endpoint_names(self) -> &'static [&'static str] {
        match self {
            InterfaceService::Ecr => &["ecr.api", "ecr.dkr"],
            InterfaceService::Logs => &["logs"],
            InterfaceService::Secretsmanager => &["secretsmanager"],
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            cidr: VpcCidr("10.0.0.0/16".parse().expect("valid default")),
            az_count: AzCount(3),
            availability_zones: None,
            nat_gateways: NatMode::Single,
            interface_endpoints: Vec::new(),
            flow_logs: true,
        }
    }
}

/// The VPC block. Subnets are carved as 16 equal slices (prefix + 4), so /24 is the smallest
/// block whose slices still meet AWS's /28 minimum subnet size.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct VpcCidr(pub Ipv4Net);

impl TryFrom<String> for VpcCidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let net: Ipv4Net = s.parse().map_err(|_| {
            format!("invalid CIDR `{s}`: expected an IPv4 block such as 10.0.0.0/16")
        })?;
        if !(16..=24).contains(&net.prefix_len()) {
            return Err(format!(
                "invalid CIDR `{s}`: the prefix must be /16 to /24 (AWS allows /16 to /28, and \
                 the block is split into 16 subnets of at least /28)"
            ));
        }
        if net.network() != net.addr() {
            return Err(format!(
                "invalid CIDR `{s}`: host bits are set; did you mean {}?",
                net.trunc()
            ));
        }
        let private = [
            "10.0.0.0/8".parse::<Ipv4Net>().unwrap(),
            "172.16.0.0/12".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        if !private.iter().any(|p| p.contains(&net)) {
            return Err(format!(
                "invalid CIDR `{s}`: use a private (RFC 1918) range: 10.0.0.0/8, 172.16.0.0/12 \
                 or 192.168.0.0/16"
            ));
        }
        Ok(VpcCidr(net))
    }
}

impl VpcCidr {
    /// The subnet in `slot` (0..16) of the block.
    pub fn slice(&self, slot: u8) -> Ipv4Net {
        let new_prefix = self.0.prefix_len() + 4;
        let size = 1u32 << (32 - u32::from(new_prefix));
        let base = u32::from(self.0.network());
        Ipv4Net::new(Ipv4Addr::from(base + u32::from(slot) * size), new_prefix)
            .expect("prefix is at most 28")
    }
}

/// How many availability zones the network spans.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "u8")]
pub struct AzCount(pub u8);

impl TryFrom<u8> for AzCount {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if n == 2 || n == 3 {
            Ok(AzCount(n))
        } else {
            Err(format!("invalid az_count {n}: allowed values are 2 and 3"))
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    Single,
    PerAz,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// Days before a scheduled key deletion takes effect: 7 (the minimum, default) to 30.
    pub deletion_window_days: DeletionWindow,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            deletion_window_days: DeletionWindow(7),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "i32")]
pub struct DeletionWindow(pub i32);

impl TryFrom<i32> for DeletionWindow {
    type Error = String;
    fn try_from(n: i32) -> Result<Self, String> {
        if (7..=30).contains(&n) {
            Ok(DeletionWindow(n))
        } else {
            Err(format!(
                "invalid deletion_window_days {n}: KMS allows 7 to 30 days"
            ))
        }
    }
}

/// S3 buckets of the static tier.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Default Object Lock retention (governance mode) of the transaction-log bucket, in days.
    pub object_lock_days: LockDays,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            object_lock_days: LockDays(30),
        }
    }
}

/// The CloudFront distribution in front of the assets bucket (and the ALB).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CdnConfig {
    /// Which edge locations serve the distribution.
    pub price_class: PriceClass,
    /// How CloudFront reads the bucket: origin access control (`oac`, AWS's recommendation).
    /// The legacy origin access identity (`oai`) is refused by [`Config::check`]: the assets
    /// bucket is SSE-KMS with the stack key, and an OAI cannot read SSE-KMS objects at all
    /// (it cannot sign KMS requests; only OAC can, with a key policy grant).
    pub origin_access: OriginAccess,
    /// ACM certificate (in us-east-1) for the viewer side; with it the distribution requires
    /// TLS 1.2 (`TLSv1.2_2021`). Without it CloudFront's default certificate is used, for which
    /// AWS forces the `TLSv1` policy.
    pub certificate_arn: Option<CertificateArn>,
    /// The object CloudFront returns for a request to the root URL (`/`), without a leading
    /// `/` (AWS Security Hub CloudFront.1; without one, `/` is forwarded to the S3 origin,
    /// which answers with an error or, for a public bucket, its listing). Default `index.html`.
    pub default_root_object: String,
    /// CloudFront standard access logs to the log bucket `fintech-cdnlogs-<account>-<s>`
    /// (Security Hub CloudFront.5). On by default; turning it off saves the S3 storage and
    /// request costs of the logs (one object per edge location and hour with traffic).
    pub access_logs: bool,
}

impl Default for CdnConfig {
    fn default() -> Self {
        CdnConfig {
            price_class: PriceClass::PriceClass100,
            origin_access: OriginAccess::Oac,
            certificate_arn: None,
            default_root_object: "index.html".to_string(),
            access_logs: true,
        }
    }
}

/// CloudFront price classes.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum PriceClass {
    /// North America and Europe only (cheapest).
    #[serde(rename = "PriceClass_100")]
    PriceClass100,
    /// Adds Asia, the Middle East and Africa.
    #[serde(rename = "PriceClass_200")]
    PriceClass200,
    /// Every edge location.
    #[serde(rename = "PriceClass_All")]
    PriceClassAll,
}

impl PriceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceClass::PriceClass100 => "PriceClass_100",
            PriceClass::PriceClass200 => "PriceClass_200",
            PriceClass::PriceClassAll => "PriceClass_All",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OriginAccess {
    Oac,
    Oai,
}

/// An ACM certificate ARN; CloudFront only takes certificates from us-east-1.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct CertificateArn(pub String);

impl TryFrom<String> for CertificateArn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if !is_acm_arn(&s) {
            return Err(format!(
                "invalid certificate_arn `{s}`: expected an ACM certificate ARN such as \
                 arn:aws:acm:us-east-1:123456789012:certificate/<id>"
            ));
        }
        let region = s.split(':').nth(3).unwrap_or_default();
        if region != "us-east-1" {
            return Err(format!(
                "invalid certificate_arn `{s}`: CloudFront only uses ACM certificates from \
                 us-east-1, this one is in {region}"
            ));
        }
        Ok(CertificateArn(s))
    }
}

/// Alert routing and alarm thresholds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawAlarmsConfig")]
pub struct AlarmsConfig {
    /// Where the alert topic sends email (the address must confirm the subscription).
    pub email: Option<Email>,
    /// ALB 5xx responses as a percentage of requests.
    pub alb_5xx_percent: f64,
    /// ALB target p99 response time, seconds.
    pub p99_latency_secs: f64,
    /// Aurora CPU, percent.
    pub db_cpu_percent: f64,
    /// Aurora connections.
    pub db_connections: u32,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig::try_from(RawAlarmsConfig::default()).expect("defaults are valid")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAlarmsConfig {
    email: Option<Email>,
    alb_5xx_percent: f64,
    p99_latency_secs: f64,
    db_cpu_percent: f64,
    db_connections: u32,
}

impl Default for RawAlarmsConfig {
    fn default() -> Self {
        RawAlarmsConfig {
            email: None,
            alb_5xx_percent: 5.0,
            p99_latency_secs: 1.0,
            db_cpu_percent: 80.0,
            db_connections: 500,
        }
    }
}

impl TryFrom<RawAlarmsConfig> for AlarmsConfig {
    type Error = String;
    fn try_from(r: RawAlarmsConfig) -> Result<Self, String> {
        for (field, v) in [
            ("alb_5xx_percent", r.alb_5xx_percent),
            ("db_cpu_percent", r.db_cpu_percent),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!(
                    "invalid {field} {v}: a percentage above 0 and at most 100"
                ));
            }
        }
        if !(r.p99_latency_secs > 0.0 && r.p99_latency_secs <= 60.0) {
            return Err(format!(
                "invalid p99_latency_secs {}: above 0 and at most 60 seconds",
                r.p99_latency_secs
            ));
        }
        if r.db_connections == 0 {
            return Err("invalid db_connections 0: at least 1".into());
        }
        Ok(AlarmsConfig {
            email: r.email,
            alb_5xx_percent: r.alb_5xx_percent,
            p99_latency_secs: r.p99_latency_secs,
            db_cpu_percent: r.db_cpu_percent,
            db_connections: r.db_connections,
        })
    }
}

/// An email address: one `@`, a non-empty local part and a dotted domain, no spaces.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Email(pub String);

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
                    && s.len() <= 254
            }
            None => false,
        };
        if ok {
            Ok(Email(s))
        } else {
            Err(format!(
                "invalid email address `{s}`: expected name@example.com"
            ))
        }
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

bounded!(
    /// Days a backup recovery point is kept: 1 to 36500.
    SnapshotRetentionDays(i32), "snapshot_retention_days", 1..=36500,
    "1 to 36500 days"
);

bounded!(
    /// An Object Lock default retention in days: 1 to 36500 (S3 allows up to 100 years).
    LockDays(i32), "object_lock_days", 1..=36500,
    "1 to 36500 days (S3 allows at most 100 years)"
);

bounded!(
    /// Receives of a message before SQS moves it to the dead-letter queue.
    MaxReceiveCount(i32), "max_receive_count", 1..=1000, "SQS allows 1 to 1000 receives"
);
bounded!(
    /// Seconds a received message stays invisible to other consumers.
    VisibilityTimeout(i32), "visibility_timeout_secs", 0..=43200,
    "SQS allows 0 to 43200 seconds (12 hours)"
);
bounded!(
    /// Days SQS keeps an unconsumed message.
    QueueRetentionDays(i32), "message_retention_days", 1..=14, "SQS keeps messages 1 to 14 days"
);
bounded!(
    /// Concurrent executions reserved for (and capping) the validator function.
    ReservedConcurrency(i32), "reserved_concurrency", 1..=900,
    "1 to 900: Lambda refuses a reservation that leaves fewer than 100 of the account's \
     (default 1000) concurrent executions unreserved"
);
bounded!(
    /// Memory of the validator function in MB.
    LambdaMemory(i32), "memory_mb", 128..=10240, "Lambda allows 128 to 10240 MB"
);
bounded!(
    /// Timeout of the validator function in seconds.
    LambdaTimeout(i32), "timeout_secs", 1..=900, "Lambda allows 1 to 900 seconds"
);
bounded!(
    /// Messages per invocation of the validator.
    BatchSize(i32), "batch_size", 1..=10000, "an SQS event source takes 1 to 10000 messages"
);

/// The SQS transaction queue and its dead-letter queue.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Receives before a message goes to the dead-letter queue.
    pub max_receive_count: MaxReceiveCount,
    /// Visibility timeout; default 6 x `validator.timeout_secs` (AWS's advice for queues
    /// feeding a Lambda function), and never less.
    pub visibility_timeout_secs: Option<VisibilityTimeout>,
    /// Days a message is kept in the transaction queue (the DLQ keeps 14, the maximum).
    pub message_retention_days: QueueRetentionDays,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_receive_count: MaxReceiveCount(5),
            visibility_timeout_secs: None,
            message_retention_days: QueueRetentionDays(4),
        }
    }
}

impl Config {
    /// The queue's visibility timeout: as configured, else 6 x the validator's timeout.
    pub fn queue_visibility_timeout(&self) -> i32 {
        self.queue
            .visibility_timeout_secs
            .map(|v| v.0)
            .unwrap_or(self.validator.timeout_secs.0 * 6)
    }
}

/// The Lambda transaction validator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidatorConfig {
    pub reserved_concurrency: ReservedConcurrency,
    pub memory_mb: LambdaMemory,
    pub timeout_secs: LambdaTimeout,
    pub batch_size: BatchSize,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            reserved_concurrency: ReservedConcurrency(5),
            memory_mb: LambdaMemory(256),
            timeout_secs: LambdaTimeout(30),
            batch_size: BatchSize(10),
        }
    }
}

/// Subnet tier a resource is placed in.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SubnetTier {
    Private,
    Isolated,
}

/// Aurora capacity model.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DbMode {
    /// One writer and one reader instance of `instance_class`.
    Provisioned,
    /// Serverless v2: `db.serverless` writer and reader scaling between min and max ACUs.
    Serverless,
}

/// Aurora PostgreSQL cluster settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawDatabaseConfig")]
pub struct DatabaseConfig {
    pub mode: DbMode,
    pub engine_version: String,
    pub instance_class: String,
    pub min_capacity: f64,
    pub max_capacity: f64,
    pub backup_retention_days: i32,
    pub preferred_backup_window: String,
    pub subnets: SubnetTier,
    pub database_name: String,
    pub master_username: String,
    /// Days between automatic rotations of the RDS-managed master secret (1 to 365).
    pub secret_rotation_days: i64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig::try_from(RawDatabaseConfig::default()).expect("defaults are valid")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabaseConfig {
    mode: DbMode,
    engine_version: String,
    instance_class: String,
    min_capacity: f64,
    max_capacity: f64,
    backup_retention_days: i32,
    preferred_backup_window: String,
    subnets: SubnetTier,
    database_name: String,
    master_username: String,
    secret_rotation_days: i64,
}

impl Default for RawDatabaseConfig {
    fn default() -> Self {
        RawDatabaseConfig {
            mode: DbMode::Provisioned,
            engine_version: "15.8".into(),
            instance_class: "db.r6g.large".into(),
            min_capacity: 0.5,
            max_capacity: 4.0,
            backup_retention_days: 7,
            preferred_backup_window: "03:00-04:00".into(),
            subnets: SubnetTier::Isolated,
            database_name: "fintech".into(),
            master_username: "fintech_admin".into(),
            // RDS's own default schedule for the secrets it manages.
            secret_rotation_days: 7,
        }
    }
}

/// Checks `HH:MM-HH:MM` in UTC, at least 30 minutes long (RDS's rule).
fn parse_window(w: &str) -> Option<u32> {
    let (a, b) = w.split_once('-')?;
    let mins = |t: &str| -> Option<u32> {
        let (h, m) = t.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (start, end) = (mins(a)?, mins(b)?);
    Some((end + 24 * 60 - start) % (24 * 60))
}

/// A URL path (`/...`, printable ASCII without spaces); `wildcards` allows `*` and `?` as in
/// ALB path patterns.
fn is_url_path(s: &str, max: usize, wildcards: bool) -> bool {
    s.starts_with('/')
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_graphic() && (wildcards || (c != '*' && c != '?')) && c != '"')
}

/// The TLS certificate of the ALB's HTTPS listener: either ACM issues one for `domain` (DNS
/// validation) or an existing certificate's `arn` is used. Neither: the ALB serves HTTP only.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(try_from = "RawCertificateConfig")]
pub struct CertificateConfig {
    pub source: Option<CertificateSource>,
}

/// Where the ALB's certificate comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CertificateSource {
    /// ACM issues a certificate for the domain (and the alternative names) with DNS validation.
    Request {
        domain: String,
        subject_alternative_names: Vec<String>,
    },
    /// A certificate the user manages (issued or imported in ACM); never deleted by `down`.
    Existing { arn: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCertificateConfig {
    domain: Option<String>,
    arn: Option<String>,
    subject_alternative_names: Vec<String>,
}

/// A certificate domain name: a DNS name of at least two labels, optionally a wildcard
/// (`*.example.com`); ACM allows 253 characters, 64 for the first name's labels.
fn is_certificate_domain(s: &str) -> bool {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    rest.contains('.')
        && s.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Whether a certificate name (`DomainName` or a subject alternative name) covers the host
/// `host`: the same name, or a wildcard `*.<rest>` and `host` is one label more than `rest`
/// (TLS wildcards cover exactly one label: `*.example.com` covers `origin.example.com`, not
/// `example.com` nor `a.origin.example.com`). DNS names compare case-insensitively.
pub fn certificate_name_covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        None => name == host,
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && label != "*" && tail == rest),
    }
}

/// The default `alb.origin_domain` for a requested certificate's domain: `origin.<domain>`,
/// with a wildcard's `*.` dropped (`*.example.com` -> `origin.example.com`, which the
/// wildcard already covers; `app.example.com` -> `origin.app.example.com`, which the
/// certificate step adds as a subject alternative name).
pub fn default_origin_domain(domain: &str) -> String {
    format!("origin.{}", domain.strip_prefix("*.").unwrap_or(domain))
}

/// Whether `s` looks like an ACM certificate ARN.
fn is_acm_arn(s: &str) -> bool {
    let p: Vec<&str> = s.splitn(6, ':').collect();
    p.len() == 6
        && p[0] == "arn"
        && p[1].starts_with("aws")
        && p[2] == "acm"
        && !p[3].is_empty()
        && p[4].len() == 12
        && p[4].chars().all(|c| c.is_ascii_digit())
        && p[5].strip_prefix("certificate/").is_some_and(|id| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl TryFrom<RawCertificateConfig> for CertificateConfig {
    type Error = String;
    fn try_from(r: RawCertificateConfig) -> Result<Self, String> {
        let source = match (r.domain, r.arn) {
            (Some(_), Some(_)) => {
                return Err(
                    "`domain` and `arn` exclude each other: give the domain ACM should \
                            issue a certificate for, or the ARN of an existing certificate"
                        .into(),
                )
            }
            (Some(domain), None) => {
                let domain = domain.to_ascii_lowercase();
                for name in std::iter::once(&domain).chain(&r.subject_alternative_names) {
                    if !is_certificate_domain(name) {
                        return Err(format!(
                            "invalid domain name `{name}`: a fully qualified name such as \
                             app.example.com or *.example.com (lowercase letters, digits, \
                             hyphens)"
                        ));
                    }
                }
                if r.subject_alternative_names.len() > 99 {
                    return Err(
                        "subject_alternative_names: ACM allows at most 100 names in all".into(),
                    );
                }
                let mut sans = r.subject_alternative_names;
                sans.retain(|n| n != &domain);
                sans.dedup();
                Some(CertificateSource::Request {
                    domain,
                    subject_alternative_names: sans,
                })
            }
            (None, Some(arn)) => {
                if !r.subject_alternative_names.is_empty() {
                    return Err("subject_alternative_names only applies with `domain`: an \
                                existing certificate's names are fixed"
                        .into());
                }
                if !is_acm_arn(&arn) {
                    return Err(format!(
                        "invalid certificate arn `{arn}`: expected \
                         arn:aws:acm:<region>:<account>:certificate/<id>"
                    ));
                }
                Some(CertificateSource::Existing { arn })
            }
            (None, None) => {
                if !r.subject_alternative_names.is_empty() {
                    return Err("subject_alternative_names needs a `domain`".into());
                }
                None
            }
        };
        Ok(CertificateConfig { source })
    }
}

/// The application load balancer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "RawAlbConfig")]
pub struct AlbConfig {
    /// Share of the default service's traffic sent to the blue target group (0 to 999).
    pub blue_weight: i32,
    /// Share sent to the green target group (0 to 999).
    pub green_weight: i32,
    /// The host name CloudFront reaches the ALB by over HTTPS (its `/api/*` origin), which
    /// the ALB's certificate must cover: CloudFront checks the origin's certificate against
    /// the name it connects to, and the ALB's own `*.elb.amazonaws.com` name is never on the
    /// user's certificate (HTTP 502). A CNAME from it to the ALB is an output
    /// (`alb_origin_dns_record`). Default with `certificate.domain`: `origin.<domain>` (see
    /// [`default_origin_domain`]); required with `certificate.arn`; refused without a
    /// certificate. Read it through [`AlbConfig::api_origin_domain`].
    pub origin_domain: Option<String>,
}

impl Default for AlbConfig {
    fn default() -> Self {
        AlbConfig {
            blue_weight: 100,
            green_weight: 0,
            origin_domain: None,
        }
    }
}

impl AlbConfig {
    /// The host name CloudFront's `/api/*` origin connects to when the ALB has a certificate:
    /// `alb.origin_domain`, else `origin.<certificate.domain>`; `None` without a certificate
    /// (CloudFront then reaches the ALB over HTTP at its AWS DNS name).
    pub fn api_origin_domain(&self, certificate: &CertificateConfig) -> Option<String> {
        match (&self.origin_domain, &certificate.source) {
            (_, None) => None,
            (Some(d), Some(_)) => Some(d.clone()),
            (None, Some(CertificateSource::Request { domain, .. })) => {
                Some(default_origin_domain(domain))
            }
            (None, Some(CertificateSource::Existing { .. })) => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAlbConfig {
    blue_weight: i32,
    green_weight: i32,
    origin_domain: Option<String>,
}

impl Default for RawAlbConfig {
    fn default() -> Self {
        let d = AlbConfig::default();
        RawAlbConfig {
            blue_weight: d.blue_weight,
            green_weight: d.green_weight,
            origin_domain: d.origin_domain,
        }
    }
}

impl TryFrom<RawAlbConfig> for AlbConfig {
    type Error = String;
    fn try_from(r: RawAlbConfig) -> Result<Self, String> {
        for (field, w) in [
            ("blue_weight", r.blue_weight),
            ("green_weight", r.green_weight),
        ] {
            if !(0..=999).contains(&w) {
                return Err(format!(
                    "invalid {field} {w}: ALB target group weights are 0 to 999"
                ));
            }
        }
        if r.blue_weight == 0 && r.green_weight == 0 {
            return Err(
                "blue_weight and green_weight are both 0: no traffic would reach any \
                        target; give at least one a positive weight"
                    .into(),
            );
        }
        let origin_domain = match r.origin_domain {
            None => None,
            Some(d) => {
                let d = d.to_ascii_lowercase();
                if d.starts_with("*.") || !is_certificate_domain(&d) {
                    return Err(format!(
                        "invalid origin_domain `{d}`: one fully qualified host name such as \
                         origin.example.com (no wildcard: CloudFront connects to this very name), \
                         covered by the ALB's certificate"
                    ));
                }
                Some(d)
            }
        };
        Ok(AlbConfig {
            blue_weight: r.blue_weight,
            green_weight: r.green_weight,
            origin_domain,
        })
    }
}

/// The WAF web ACL in front of the ALB.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WafConfig {
    /// Create the web ACL and associate it with the ALB.
    pub enabled: bool,
    /// Requests one client IP may send per 5-minute window before it is blocked.
    pub rate_limit: RateLimit,
}

impl Default for WafConfig {
    fn default() -> Self {
        WafConfig {
            enabled: false,
            rate_limit: RateLimit(2000),
        }
    }
}

bounded!(
    /// A WAF rate-based rule limit: 10 to 2,000,000,000 requests per 5 minutes (AWS's range).
    RateLimit(i64), "rate_limit", 10..=2_000_000_000,
    "WAF rate-based rules allow 10 to 2000000000 requests per 5 minutes per IP"
);

fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl TryFrom<RawDatabaseConfig> for DatabaseConfig {
    type Error = String;
    fn try_from(r: RawDatabaseConfig) -> Result<Self, String> {
        let v: Vec<&str> = r.engine_version.split('.').collect();
        if v.len() != 2
            || v.iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!(
                "invalid engine_version `{}`: expected an Aurora PostgreSQL version such as 15.8",
                r.engine_version
            ));
        }
        if !r.instance_class.starts_with("db.") || r.instance_class == "db.serverless" {
            return Err(format!(
                "invalid instance_class `{}`: expected a provisioned class such as db.r6g.large \
                 (serverless mode uses db.serverless by itself)",
                r.instance_class
            ));
        }
        let half_steps = |x: f64| (x * 2.0).fract() == 0.0;
        if !(0.5..=256.0).contains(&r.min_capacity) || !half_steps(r.min_capacity) {
            return Err(format!(
                "invalid min_capacity {}: Aurora Serverless v2 takes 0.5 to 256 ACUs in steps of 0.5",
                r.min_capacity
            ));
        }
        if !(0.5..=256.0).contains(&r.max_capacity) || !half_steps(r.max_capacity) {
            return Err(format!(
                "invalid max_capacity {}: Aurora Serverless v2 takes 0.5 to 256 ACUs in steps of 0.5",
                r.max_capacity
            ));
        }
        if r.min_capacity > r.max_capacity {
            return Err(format!(
                "min_capacity {} is above max_capacity {}",
                r.min_capacity, r.max_capacity
            ));
        }
        if !(1..=35).contains(&r.backup_retention_days) {
            return Err(format!(
                "invalid backup_retention_days {}: RDS keeps automated backups 1 to 35 days",
                r.backup_retention_days
            ));
        }
        match parse_window(&r.preferred_backup_window) {
            Some(len) if len >= 30 => {}
            Some(_) => {
                return Err(format!(
                    "invalid preferred_backup_window `{}`: the window must be at least 30 minutes",
                    r.preferred_backup_window
                ))
            }
            None => {
                return Err(format!(
                    "invalid preferred_backup_window `{}`: expected HH:MM-HH:MM in UTC, e.g. 03:00-04:00",
                    r.preferred_backup_window
                ))
            }
        }
        if !is_identifier(&r.database_name, 63) {
            return Err(format!(
                "invalid database_name `{}`: 1 to 63 letters, digits and underscores, starting with a letter",
                r.database_name
            ));
        }
        if !is_identifier(&r.master_username, 63)
            || ["postgres", "rdsadmin", "admin"].contains(&r.master_username.as_str())
        {
            return Err(format!(
                "invalid master_username `{}`: 1 to 63 letters, digits and underscores, starting \
                 with a letter, and not a reserved name (postgres, rdsadmin, admin)",
                r.master_username
            ));
        }
        // Managed rotation takes schedules in days up to a year (Secrets Manager rotation
        // schedules: `rate(N days)` with N at most 365).
        if !(1..=365).contains(&r.secret_rotation_days) {
            return Err(format!(
                "invalid secret_rotation_days {}: the master secret rotates every 1 to 365 days",
                r.secret_rotation_days
            ));
        }
        Ok(DatabaseConfig {
            mode: r.mode,
            engine_version: r.engine_version,
            instance_class: r.instance_class,
            min_capacity: r.min_capacity,
            max_capacity: r.max_capacity,
            backup_retention_days: r.backup_retention_days,
            preferred_backup_window: r.preferred_backup_window,
            subnets: r.subnets,
            database_name: r.database_name,
            master_username: r.master_username,
            secret_rotation_days: r.secret_rotation_days,
        })
    }
}

/// DynamoDB session table settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Attribute holding each item's expiry time (epoch seconds) for DynamoDB TTL.
    pub ttl_attribute: AttributeName,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            ttl_attribute: AttributeName("expires_at".into()),
        }
    }
}

/// A DynamoDB attribute name we define: 1 to 255 letters, digits, `_`, `-` or `.`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct AttributeName(pub String);

impl TryFrom<String> for AttributeName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty()
            || s.len() > 255
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(format!(
                "invalid attribute name `{s}`: 1 to 255 letters, digits, `_`, `-` or `.`"
            ));
        }
        Ok(AttributeName(s))
    }
}

/// ECS cluster settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// CloudWatch Container Insights.
    pub container_insights: bool,
    /// Cloud Map private DNS namespace for service-to-service discovery (e.g.
    /// `payments.internal`); none by default.
    pub namespace: Option<DnsName>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            container_insights: true,
            namespace: None,
        }
    }
}

/// A DNS name: dot-separated labels of lowercase letters, digits and hyphens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct DnsName(pub String);

impl TryFrom<String> for DnsName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        if !ok {
            return Err(format!(
                "invalid DNS name `{s}`: dot-separated labels of lowercase letters, digits and \
                 hyphens, e.g. payments.internal"
            ));
        }
        Ok(DnsName(s))
    }
}

/// CloudWatch Logs settings for the stack's log groups.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    pub retention_days: RetentionDays,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            retention_days: RetentionDays(30),
        }
    }
}

/// The retention periods CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "i32")]
pub struct RetentionDays(pub i32);

impl TryFrom<i32> for RetentionDays {
    type Error = String;
    fn try_from(n: i32) -> Result<Self, String> {
        if LOG_RETENTION_DAYS.contains(&n) {
            Ok(RetentionDays(n))
        } else {
            Err(format!(
                "invalid retention_days {n}: CloudWatch Logs accepts {}",
                LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
            ))
        }
    }
}

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

#[cfg(test)]
mod services_calls_tests {
    use super::*;

    const TWO: &str = r#"
[cluster]
namespace = "payments.internal"
[[services]]
name = "api"
calls = ["worker", "worker"]
[[services]]
name = "worker"
port = 8080
"#;

    #[test]
    fn calls_parse_sorted_without_repeats_and_callers_are_found() {
        let c = Config::parse(TWO).unwrap();
        let api = c.services.get("api").unwrap();
        assert_eq!(api.calls, [ServiceName("worker".into())]);
        let callers: Vec<&str> = c
            .services
            .callers_of("worker")
            .map(|s| s.name.0.as_str())
            .collect();
        assert_eq!(callers, ["api"]);
        assert!(c.services.get("worker").unwrap().calls.is_empty());
        // Only the first service has no path here: it alone is behind the ALB.
        assert!(c.services.is_behind_alb("api"));
        assert!(!c.services.is_behind_alb("worker"));
    }

    #[test]
    fn a_path_puts_a_service_behind_the_alb() {
        let c = Config::parse(&format!("{TWO}path = \"/jobs/*\"\n")).unwrap();
        let behind: Vec<&str> = c.services.behind_alb().map(|s| s.name.0.as_str()).collect();
        assert_eq!(behind, ["api", "worker"]);
    }

    #[test]
    fn calls_name_another_configured_service() {
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"api\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`api` lists itself") && e.contains("services[].calls"),
            "{e}"
        );
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"ledger\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`ledger`")
                && e.contains("not a configured service")
                && e.contains("allowed: worker"),
            "{e}"
        );
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"Bad_Name\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid service name"), "{e}");
    }

    #[test]
    fn calls_need_a_namespace() {
        let e = Config::parse(&TWO.replace("namespace = \"payments.internal\"", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster.namespace")
                && e.contains("services[].calls")
                && e.contains("`api`"),
            "{e}"
        );
    }

    #[test]
    fn the_microservices_preset_declares_the_api_calls() {
        let c = Config::preset(Preset::Microservices);
        let calls = |n: &str| -> Vec<String> {
            c.services
                .get(n)
                .unwrap()
                .calls
                .iter()
                .map(|s| s.0.clone())
                .collect()
        };
        assert_eq!(
            calls("payment-api"),
            ["notification-service", "transaction-processor"]
        );
        assert!(calls("transaction-processor").is_empty());
        assert!(calls("notification-service").is_empty());
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

/// How a service's tasks are split between FARGATE and FARGATE_SPOT: `fargate_base` tasks
/// always on FARGATE, the rest in the ratio of the weights.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityConfig {
    pub fargate_base: i32,
    pub fargate_weight: i32,
    pub spot_weight: i32,
}

impl Default for CapacityConfig {
    /// The web app's rule (seed 000: at least half of the capacity on Spot): no FARGATE base,
    /// then FARGATE : FARGATE_SPOT = 1 : 2. ECS places the base first, then the rest in the
    /// ratio of the weights; how it rounds a share that is not a whole number of tasks is not
    /// documented, so [`CapacityConfig::min_spot_tasks`] assumes the worst (Spot gets the
    /// share rounded down). Under that rule 1 : 2 keeps Spot at >= 50 % at every count from
    /// 2 up: 1 of 2 at min_count, 6 of 10 at max_count, 2 of 3, 2 of 4, 3 of 5 and so on.
    /// Why not the earlier `fargate_base = 1` with 1 : 1: the base task is on FARGATE, so at
    /// 2 tasks Spot gets at most the second one, and rounded down 0 of 1 (0 %); even at best
    /// 1 of 2 only when ECS rounds in Spot's favour. Why not 1 : 1 without a base: it meets
    /// 50 % at 2 and 10 but not at odd counts in between (1 of 3). The price of 1 : 2 is that
    /// no task is guaranteed to be on FARGATE (a base needs one); at 2 tasks ECS's split
    /// normally puts one on each.
    fn default() -> Self {
        CapacityConfig {
            fargate_base: 0,
            fargate_weight: 1,
            spot_weight: 2,
        }
    }
}

impl CapacityConfig {
    /// The fewest of `tasks` running tasks this split is sure to put on FARGATE_SPOT: the
    /// base goes to FARGATE first (ECS fills the base before weighing), the rest is shared by
    /// weight and Spot's share rounded down, since ECS does not document its rounding.
    pub fn min_spot_tasks(&self, tasks: u32) -> u32 {
        let base = u64::try_from(self.fargate_base.max(0)).unwrap_or(0);
        let rest = u64::from(tasks).saturating_sub(base);
        let spot = u64::try_from(self.spot_weight.max(0)).unwrap_or(0);
        let total = spot + u64::try_from(self.fargate_weight.max(0)).unwrap_or(0);
        if total == 0 {
            return 0;
        }
        u32::try_from(rest * spot / total).unwrap_or(tasks)
    }

    /// Whether at least `percent` % of `tasks` tasks are sure to run on Spot (no tasks: yes).
    pub fn meets_spot_percent(&self, tasks: u32, percent: u32) -> bool {
        u64::from(self.min_spot_tasks(tasks)) * 100 >= u64::from(percent) * u64::from(tasks)
    }
}

/// `[services.capacity]` as written: the split plus the optional Spot floor, which is checked
/// against the service's counts and kept in [`ServiceConfig::min_spot_percent`].
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
struct RawCapacityConfig {
    fargate_base: i32,
    fargate_weight: i32,
    spot_weight: i32,
    min_spot_percent: Option<u32>,
}

impl Default for RawCapacityConfig {
    /// The fields a written `capacity` table leaves out. No Spot floor: a service that names
    /// its own split states its own floor (the built-in `web` service has 50, see
    /// [`RawServiceConfig::default`]).
    fn default() -> Self {
        let c = CapacityConfig::default();
        RawCapacityConfig {
            fargate_base: c.fargate_base,
            fargate_weight: c.fargate_weight,
            spot_weight: c.spot_weight,
            min_spot_percent: None,
        }
    }
}

impl RawCapacityConfig {
    fn split(&self) -> CapacityConfig {
        CapacityConfig {
            fargate_base: self.fargate_base,
            fargate_weight: self.fargate_weight,
            spot_weight: self.spot_weight,
        }
    }
}

/// Seed 000's Spot floor for the web app: at least half of its tasks on FARGATE_SPOT.
pub const WEB_MIN_SPOT_PERCENT: u32 = 50;

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
#[serde(try_from = "RawServiceConfig")]
pub struct ServiceConfig {
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
    pub health_check_grace_secs: u32,
    pub capacity: CapacityConfig,
    /// `capacity.min_spot_percent`: the share of tasks (percent) that must be on Spot at
    /// min_count and at max_count; `capacity` was checked to meet it (see
    /// [`CapacityConfig::meets_spot_percent`]).
    pub min_spot_percent: Option<u32>,
    /// Whether the container's root file system is read-only (`readonlyRootFilesystem`,
    /// Security Hub ECS.5). On by default; the switch exists for images that cannot run
    /// read-only (they write outside any path a volume can cover).
    pub read_only_root: bool,
    /// Absolute paths the image writes to, each an ephemeral task volume (a Fargate bind
    /// mount without a host path, gone with the task) mounted read-write: with a read-only
    /// root the container exits at start if it writes anywhere else (AWS-CONTRACTS B7).
    pub writable_paths: Vec<String>,
    pub permissions: Vec<Permission>,
    /// Path the ALB health check requests (`/` by default).
    pub health_check_path: String,
    /// Path pattern routed to this service by an ALB listener rule (e.g. `/api/*`); the first
    /// service without a path is the default (blue/green) target.
    pub path: Option<String>,
    /// Other services this one calls (by name, sorted, without repeats), at
    /// `<callee>.<cluster.namespace>` on the callee's port: each call gets the caller's egress
    /// rule and the callee's ingress rule (AWS needs both), and nothing else is allowed
    /// between services.
    pub calls: Vec<ServiceName>,
}

/// The placeholder image services run until the user names their own: public, so a fresh
/// stack starts without pushing anything.
pub const PLACEHOLDER_IMAGE: &str = "public.ecr.aws/nginx/nginx:stable";

impl ServiceConfig {
    /// The default web app: 2 vCPU / 4 GB, at least half on Spot (see
    /// [`CapacityConfig::default`]). As
    /// the customer-facing service it also produces to the transaction queue, or the async
    /// tier would never get work.
    pub fn default_web() -> ServiceConfig {
        let raw = RawServiceConfig {
            name: Some("web".into()),
            permissions: vec![
                Permission::Sessions,
                Permission::Database,
                Permission::Queue,
            ],
            ..RawServiceConfig::default()
        };
        ServiceConfig::try_from(raw).expect("default service is valid")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServiceConfig {
    name: Option<String>,
    cpu: u32,
    memory: u32,
    image: String,
    port: u16,
    desired_count: u32,
    min_count: u32,
    max_count: u32,
    cpu_target: f64,
    memory_target: f64,
    request_count_target: Option<u32>,
    db_connections_target: Option<u32>,
    health_check_grace_secs: u32,
    capacity: RawCapacityConfig,
    read_only_root: bool,
    /// None: the default for the image (the placeholder's paths, or none for other images).
    writable_paths: Option<Vec<String>>,
    permissions: Vec<Permission>,
    health_check_path: String,
    path: Option<String>,
    calls: Vec<ServiceName>,
}

impl Default for RawServiceConfig {
    fn default() -> Self {
        RawServiceConfig {
            name: None,
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
            health_check_grace_secs: 60,
            // The omitted table: the web split with seed 000's floor.
            capacity: RawCapacityConfig {
                min_spot_percent: Some(WEB_MIN_SPOT_PERCENT),
                ..RawCapacityConfig::default()
            },
            read_only_root: true,
            writable_paths: None,
            permissions: vec![Permission::Sessions, Permission::Database],
            health_check_path: "/".into(),
            path: None,
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

impl TryFrom<RawServiceConfig> for ServiceConfig {
    type Error = String;
    fn try_from(r: RawServiceConfig) -> Result<Self, String> {
        let name = ServiceName::try_from(r.name.ok_or("a service needs a `name`")?)?;
        let n = &name.0;
        let Some(mems) = fargate_memory_options(r.cpu) else {
            return Err(format!(
                "service `{n}`: invalid cpu {}: Fargate sizes are 256, 512, 1024, 2048, 4096, 8192 and 16384",
                r.cpu
            ));
        };
        if !mems.contains(&r.memory) {
            return Err(format!(
                "service `{n}`: memory {} MiB is not valid with cpu {} on Fargate; allowed: {} to {} MiB{}",
                r.memory,
                r.cpu,
                mems[0],
                mems[mems.len() - 1],
                if r.cpu == 256 { " (512, 1024 or 2048)".to_string() } else { format!(" in steps of {}", mems[1] - mems[0]) }
            ));
        }
        if r.image.trim().is_empty() || r.image.chars().any(char::is_whitespace) {
            return Err(format!("service `{n}`: invalid image `{}`", r.image));
        }
        if r.port == 0 {
            return Err(format!("service `{n}`: port must be 1 to 65535"));
        }
        if r.min_count > r.max_count || r.max_count == 0 {
            return Err(format!(
                "service `{n}`: min_count {} and max_count {}: need 0 <= min_count <= max_count and max_count >= 1",
                r.min_count, r.max_count
            ));
        }
        if r.desired_count < r.min_count || r.desired_count > r.max_count {
            return Err(format!(
                "service `{n}`: desired_count {} must be between min_count {} and max_count {}",
                r.desired_count, r.min_count, r.max_count
            ));
        }
        for (field, v) in [
            ("cpu_target", r.cpu_target),
            ("memory_target", r.memory_target),
        ] {
            if !(10.0..=95.0).contains(&v) {
                return Err(format!(
                    "service `{n}`: {field} {v} must be a utilisation percentage from 10 to 95"
                ));
            }
        }
        for (field, v, max) in [
            ("request_count_target", r.request_count_target, 1_000_000),
            ("db_connections_target", r.db_connections_target, 100_000),
        ] {
            if v.is_some_and(|v| v == 0 || v > max) {
                return Err(format!(
                    "service `{n}`: {field} {} must be from 1 to {max}",
                    v.unwrap_or_default()
                ));
            }
        }
        let min_spot_percent = r.capacity.min_spot_percent;
        let c = r.capacity.split();
        if c.fargate_base < 0
            || c.fargate_weight < 0
            || c.spot_weight < 0
            || c.fargate_base > 100_000
        {
            return Err(format!(
                "service `{n}`: capacity values must not be negative"
            ));
        }
        if c.fargate_weight == 0 && c.spot_weight == 0 {
            return Err(format!(
                "service `{n}`: capacity needs a non-zero fargate_weight or spot_weight"
            ));
        }
        if c.fargate_weight == 0 && c.fargate_base > 0 {
            return Err(format!(
                "service `{n}`: a fargate_base needs a non-zero fargate_weight (ECS rule)"
            ));
        }
        if let Some(p) = min_spot_percent {
            check_spot_share(n, &c, p, r.min_count, r.max_count)?;
        }
        let writable_paths = match r.writable_paths {
            Some(paths) => paths,
            None if r.image == PLACEHOLDER_IMAGE => PLACEHOLDER_WRITABLE_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            // An image of the user's: only they know where it writes.
            None => Vec::new(),
        };
        check_writable_paths(n, &writable_paths)?;
        if !is_url_path(&r.health_check_path, 1024, false) {
            return Err(format!(
                "service `{n}`: invalid health_check_path `{}`: a URL path starting with `/`, at \
                 most 1024 characters, without spaces or wildcards",
                r.health_check_path
            ));
        }
        if let Some(p) = &r.path {
            if !is_url_path(p, 128, true) || p == "/*" || p == "/" {
                return Err(format!(
                    "service `{n}`: invalid path `{p}`: a path pattern such as `/api/*` starting \
                     with `/`, at most 128 characters (ALB's limit), `*` and `?` as wildcards; \
                     `/` and `/*` would take all traffic from the default service"
                ));
            }
        }
        let mut permissions = r.permissions;
        permissions.sort();
        permissions.dedup();
        let mut calls = r.calls;
        calls.sort();
        calls.dedup();
        Ok(ServiceConfig {
            name,
            cpu: r.cpu,
            memory: r.memory,
            image: r.image,
            port: r.port,
            desired_count: r.desired_count,
            min_count: r.min_count,
            max_count: r.max_count,
            cpu_target: r.cpu_target,
            memory_target: r.memory_target,
            request_count_target: r.request_count_target,
            db_connections_target: r.db_connections_target,
            health_check_grace_secs: r.health_check_grace_secs,
            capacity: c,
            min_spot_percent,
            read_only_root: r.read_only_root,
            writable_paths,
            permissions,
            health_check_path: r.health_check_path,
            path: r.path,
            calls,
        })
    }
}

/// Refuses a capacity split that cannot keep `percent` % of the tasks on Spot at min_count or
/// at max_count (counted as in [`CapacityConfig::min_spot_tasks`]), naming the numbers.
fn check_spot_share(
    n: &str,
    c: &CapacityConfig,
    percent: u32,
    min_count: u32,
    max_count: u32,
) -> Result<(), String> {
    if percent > 100 {
        return Err(format!(
            "service `{n}`: capacity.min_spot_percent {percent} must be from 0 to 100"
        ));
    }
    for (which, tasks) in [("min_count", min_count), ("max_count", max_count)] {
        if !c.meets_spot_percent(tasks, percent) {
            let spot = c.min_spot_tasks(tasks);
            return Err(format!(
                "service `{n}`: capacity {{ fargate_base = {}, fargate_weight = {}, spot_weight = {} }} \
                 cannot keep min_spot_percent {percent} % on Spot at {which} {tasks}: ECS puts \
                 the base on FARGATE first and splits the rest by weight, so only {spot} of \
                 {tasks} tasks ({}%) are sure to run on FARGATE_SPOT; raise spot_weight or lower \
                 fargate_base",
                c.fargate_base,
                c.fargate_weight,
                c.spot_weight,
                u64::from(spot) * 100 / u64::from(tasks),
            ));
        }
    }
    Ok(())
}

/// Checks `writable_paths`: absolute, no `.`/`..` parts, not `/` itself, no repeats, and
/// distinct volume names (see [`writable_volume_name`]).
fn check_writable_paths(n: &str, paths: &[String]) -> Result<(), String> {
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

#[cfg(test)]
mod service_posture_tests {
    //! The Spot share arithmetic and the services' read-only root settings.
    use super::*;

    fn split(fargate_base: i32, fargate_weight: i32, spot_weight: i32) -> CapacityConfig {
        CapacityConfig {
            fargate_base,
            fargate_weight,
            spot_weight,
        }
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn spot_tasks_count_the_base_first_then_round_spots_share_down() {
        let old = split(1, 1, 1);
        assert_eq!(
            old.min_spot_tasks(2),
            0,
            "base 1, then 1 task at 1:1 rounds to 0"
        );
        assert_eq!(
            old.min_spot_tasks(10),
            4,
            "base 1, then 9 at 1:1: 4.5 rounds to 4"
        );
        assert!(!old.meets_spot_percent(2, 50) && !old.meets_spot_percent(10, 50));
        let even = split(0, 1, 1);
        assert!(even.meets_spot_percent(2, 50) && even.meets_spot_percent(10, 50));
        assert!(!even.meets_spot_percent(3, 50), "1 of 3 at 1:1");
        assert_eq!(split(3, 1, 1).min_spot_tasks(2), 0, "all within the base");
        assert_eq!(split(0, 0, 1).min_spot_tasks(7), 7);
        assert_eq!(split(2, 1, 0).min_spot_tasks(7), 0);
        assert!(
            split(2, 1, 0).meets_spot_percent(0, 100),
            "no tasks, nothing to miss"
        );
    }

    #[test]
    fn the_default_split_keeps_half_on_spot_at_every_count() {
        let c = CapacityConfig::default();
        for n in 2..=10 {
            assert!(
                c.meets_spot_percent(n, 50),
                "{n} tasks: {}",
                c.min_spot_tasks(n)
            );
        }
        assert_eq!(c.min_spot_tasks(2), 1);
        assert_eq!(c.min_spot_tasks(10), 6);
        let web = ServiceConfig::default_web();
        assert_eq!(web.capacity, c);
        assert_eq!(web.min_spot_percent, Some(WEB_MIN_SPOT_PERCENT));
        assert_eq!(Config::preset(Preset::Webapp).services.0[0], web);
    }

    #[test]
    fn a_split_that_cannot_meet_its_spot_floor_is_refused_with_the_numbers() {
        let e = err(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 1, fargate_weight = 1, \
             spot_weight = 1, min_spot_percent = 50 }\n",
        );
        assert!(e.contains("min_count 2"), "{e}");
        assert!(e.contains("0 of 2 tasks (0%)"), "{e}");
        assert!(e.contains("min_spot_percent 50"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        // Fine at min_count (2 of 4), short at an odd max_count (1:1 rounds 4.5 down to 4).
        let e = err(
            "[[services]]\nname = \"web\"\nmin_count = 4\ndesired_count = 4\ncapacity = { \
             fargate_base = 0, fargate_weight = 1, spot_weight = 1, min_spot_percent = 50 }\n\
             max_count = 9\n",
        );
        assert!(
            e.contains("max_count 9") && e.contains("4 of 9 tasks (44%)"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ncapacity = { min_spot_percent = 101 }\n");
        assert!(e.contains("0 to 100"), "{e}");
        // The webapp preset with a split of the user's that breaks its floor.
        let e = Config::parse(
            "preset = \"webapp\"\n[[services]]\nname = \"web\"\ncapacity = { fargate_base = 2, \
             min_spot_percent = 50 }\n",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("min_count 2"), "{e}");
        // A written split without a floor is accepted as before; one that meets it too.
        let c = Config::parse(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 1, fargate_weight = 1, \
             spot_weight = 3 }\n",
        )
        .unwrap();
        assert_eq!(c.services.0[0].min_spot_percent, None);
        let c = Config::parse(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 0, fargate_weight = 1, \
             spot_weight = 1, min_spot_percent = 50 }\n",
        )
        .unwrap();
        assert_eq!(c.services.0[0].min_spot_percent, Some(50));
    }

    #[test]
    fn writable_paths_default_to_the_placeholders_and_are_checked() {
        let web = ServiceConfig::default_web();
        assert!(web.read_only_root);
        assert_eq!(web.writable_paths, PLACEHOLDER_WRITABLE_PATHS);
        // Another image: its writable paths are the user's to name.
        let c = Config::parse("[[services]]\nname = \"api\"\nimage = \"repo/api:1\"\n").unwrap();
        assert!(c.services.0[0].writable_paths.is_empty());
        assert!(c.services.0[0].read_only_root);
        let c = Config::parse(
            "[[services]]\nname = \"api\"\nwritable_paths = []\nread_only_root = false\n",
        )
        .unwrap();
        assert!(c.services.0[0].writable_paths.is_empty());
        assert!(!c.services.0[0].read_only_root);
        for bad in ["tmp", "/", "/a/../b", "/a b", "//x"] {
            let e = err(&format!(
                "[[services]]\nname = \"api\"\nwritable_paths = [\"{bad}\"]\n"
            ));
            assert!(e.contains("invalid writable path"), "{bad}: {e}");
        }
        let e = err("[[services]]\nname = \"api\"\nwritable_paths = [\"/tmp\", \"/tmp/\"]\n");
        assert!(e.contains("same volume name `rw-tmp`"), "{e}");
        assert_eq!(
            writable_volume_name("/var/cache/nginx"),
            "rw-var-cache-nginx"
        );
        assert_eq!(writable_volume_name("/var/run"), "rw-var-run");
        assert_eq!(writable_volume_name("/app/.cache"), "rw-app-_cache");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_root_object_cloudfront_would_refuse_is_a_usage_error() {
        for bad in ["", "/index.html"] {
            let e = Config::parse(&format!("[cdn]\ndefault_root_object = \"{bad}\"\n"))
                .unwrap_err()
                .0;
            assert!(e.contains("cdn.default_root_object"), "{bad}: {e}");
        }
        assert!(Config::parse("[cdn]\ndefault_root_object = \"home.html\"\n").is_ok());
    }

    #[test]
    fn value_errors_lead_with_the_field_the_line_and_the_rule() {
        let e = Config::parse("[network]\naz_count = 3\n[validator]\nreserved_concurrency = 0\n")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("`validator.reserved_concurrency` at line 4: "),
            "{e}"
        );
        assert!(e.contains("1 to 900"), "{e}");
        assert!(!e.starts_with("TOML parse error"), "{e}");
        // A syntax error still names its line.
        let e = Config::parse("[network\n").unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.network.az_count.0, 3);
        assert_eq!(c.network.nat_gateways, NatMode::Single);
        assert_eq!(c.kms.deletion_window_days.0, 7);
    }

    #[test]
    fn parses_fields() {
        let c = Config::parse(
            r#"
[tags]
team = "payments"
[network]
cidr = "10.20.0.0/20"
az_count = 2
nat_gateways = "per-az"
"#,
        )
        .unwrap();
        assert_eq!(c.tags.team.0, "payments");
        assert_eq!(c.network.az_count.0, 2);
        assert_eq!(c.network.nat_gateways, NatMode::PerAz);
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.20.0.0/24");
        assert_eq!(c.network.cidr.slice(9).to_string(), "10.20.9.0/24");
    }

    #[test]
    fn default_cidr_slices_are_slash_20() {
        let c = Config::default();
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.0.0.0/20");
        assert_eq!(c.network.cidr.slice(4).to_string(), "10.0.64.0/20");
        assert_eq!(c.network.cidr.slice(15).to_string(), "10.0.240.0/20");
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let e = err("[network]\ncidr = \"10.0.0.0/16\"\nazs = 3\n");
        assert!(e.contains("unknown field `azs`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("[netwrk]\n");
        assert!(e.contains("unknown field `netwrk`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_rule_and_line() {
        let e = err("[network]\naz_count = 4\n");
        assert!(
            e.contains("allowed values are 2 and 3") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[network]\ncidr = \"10.0.0.0/8\"\n");
        assert!(e.contains("/16 to /24"), "{e}");
        let e = err("[network]\ncidr = \"8.8.0.0/16\"\n");
        assert!(e.contains("RFC 1918"), "{e}");
        let e = err("[network]\ncidr = \"10.0.1.0/16\"\n");
        assert!(e.contains("host bits"), "{e}");
        let e = err("[network]\nnat_gateways = \"two\"\n");
        assert!(e.contains("single") && e.contains("per-az"), "{e}");
        let e = err("[kms]\ndeletion_window_days = 3\n");
        assert!(e.contains("7 to 30"), "{e}");
        let e = err("[tags]\nteam = \"\"\n");
        assert!(e.contains("1 to 256"), "{e}");
        let e = err("[network]\naz_count = 2\navailability_zones = [\"us-east-1a\"]\n");
        assert!(e.contains("lists 1 zones"), "{e}");
    }

    /// Seed 004 puts "non-critical workloads" on Fargate Spot. Spot tasks can be stopped at
    /// two minutes' notice, so the payment path (the queue's producers, the ALB's default
    /// target) must have no task on Spot at any count, and the non-critical service must be
    /// on Spot entirely at every count from min to max.
    #[test]
    fn multiregion_keeps_the_payment_path_off_spot_and_the_rest_on_it() {
        let m = Config::preset(Preset::Multiregion);
        let services = &m.services.0;
        let names: Vec<&str> = services.iter().map(|s| s.name.0.as_str()).collect();
        assert_eq!(names, ["web", "reports"]);
        for s in services {
            let n = &s.name.0;
            let payment_path = s.permissions.contains(&Permission::Queue) || s.path.is_none();
            for tasks in s.min_count..=s.max_count {
                let spot = s.capacity.min_spot_tasks(tasks);
                if payment_path {
                    // spot_weight 0: ECS puts nothing on FARGATE_SPOT, whatever it rounds.
                    assert_eq!(s.capacity.spot_weight, 0, "{n}: {:?}", s.capacity);
                    assert_eq!(spot, 0, "{n} at {tasks} tasks");
                } else {
                    assert_eq!(spot, tasks, "{n}: {spot} of {tasks} on Spot");
                }
            }
            if payment_path {
                assert!(s.min_spot_percent.unwrap_or(0) == 0, "{n}: no Spot floor");
            } else {
                assert_eq!(s.min_spot_percent, Some(100), "{n}");
                assert_eq!(
                    (s.capacity.fargate_base, s.capacity.fargate_weight),
                    (0, 0),
                    "{n}: nothing on FARGATE"
                );
            }
        }
        let web = &services[0];
        assert!(web.permissions.contains(&Permission::Queue), "web produces");
        assert_eq!(
            (web.request_count_target, web.db_connections_target),
            (Some(1000), Some(400))
        );
        let reports = &services[1];
        assert_eq!(reports.path.as_deref(), Some("/reports/*"));
        assert!(!reports.permissions.contains(&Permission::Queue));
        // A file that keeps the preset but writes its own split for the Spot service is
        // still held to the floor it states.
        let e = err(
            "preset = \"multiregion\"\n[[services]]\nname = \"web\"\n[[services]]\n\
             name = \"reports\"\npath = \"/reports/*\"\ncapacity = { fargate_base = 1, \
             fargate_weight = 1, spot_weight = 1, min_spot_percent = 100 }\n",
        );
        assert!(e.contains("min_spot_percent 100"), "{e}");
        // The webapp preset keeps seed 000's floor.
        let w = &Config::preset(Preset::Webapp).services.0[0];
        assert_eq!(w.min_spot_percent, Some(WEB_MIN_SPOT_PERCENT));
    }
}

#[cfg(test)]
mod tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn data_and_compute_defaults() {
        let c = Config::default();
        assert_eq!(c.database.mode, DbMode::Provisioned);
        assert_eq!(c.database.engine_version, "15.8");
        assert_eq!(c.database.backup_retention_days, 7);
        assert_eq!(c.logs.retention_days.0, 30);
        assert_eq!(c.services.0.len(), 1);
        let web = &c.services.0[0];
        assert_eq!(
            (web.name.0.as_str(), web.cpu, web.memory),
            ("web", 2048, 4096)
        );
        assert_eq!(
            (web.min_count, web.desired_count, web.max_count),
            (2, 2, 10)
        );
        assert!(c.cluster.container_insights);
    }

    #[test]
    fn three_services_parse() {
        let c = Config::parse(
            r#"
[database]
mode = "serverless"
min_capacity = 0.5
max_capacity = 4

[cluster]
namespace = "payments.internal"

[[services]]
name = "payment-api"
cpu = 2048
memory = 4096

[[services]]
name = "transaction-processor"
cpu = 1024
memory = 2048
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
permissions = ["database", "queue"]
"#,
        );
        let c = c.unwrap();
        assert_eq!(c.services.0[1].name.0, "transaction-processor");
        assert_eq!(c.cluster.namespace.as_ref().unwrap().0, "payments.internal");
        let e = Config::parse("[[services]]\nname = \"a-service-name-longer-than-thirty\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 30"), "{e}");
        let c = Config::parse(
            r#"
[[services]]
name = "payment-api"
[[services]]
name = "tx-processor"
cpu = 1024
memory = 2048
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
"#,
        )
        .unwrap();
        assert_eq!(c.services.0.len(), 2);
        assert_eq!(c.services.0[1].capacity.spot_weight, 1);
    }

    #[test]
    fn bad_tier_values_name_field_and_line() {
        let e = err("[database]\nbackup_retention_days = 40\n");
        assert!(e.contains("1 to 35") && e.contains("line 1"), "{e}");
        let e = err("[database]\nmin_capacity = 8\nmax_capacity = 4\n");
        assert!(e.contains("above max_capacity"), "{e}");
        let e = err("[database]\nmin_capacity = 0.7\n");
        assert!(e.contains("steps of 0.5"), "{e}");
        let e = err("[database]\npreferred_backup_window = \"03:00-03:10\"\n");
        assert!(e.contains("30 minutes"), "{e}");
        let e = err("[database]\nmaster_username = \"postgres\"\n");
        assert!(e.contains("reserved"), "{e}");
        let e = err("[database]\nmode = \"huge\"\n");
        assert!(e.contains("provisioned") && e.contains("serverless"), "{e}");
        let e = err("[logs]\nretention_days = 10\n");
        assert!(e.contains("14, 30"), "{e}");
        let e = err("\n\n[[services]]\nname = \"api\"\ncpu = 1024\nmemory = 1024\n");
        assert!(
            e.contains("not valid with cpu 1024") && e.contains("line 3"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"api\"\ndesired_count = 20\n");
        assert!(e.contains("desired_count 20"), "{e}");
        let e = err("[[services]]\nname = \"api\"\nflavour = 1\n");
        assert!(e.contains("unknown field `flavour`"), "{e}");
        let e = err("[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n");
        assert!(e.contains("used twice"), "{e}");
        let e = err("services = []\n");
        assert!(e.contains("at least one"), "{e}");
        let e = err("[cluster]\nnamespace = \"Bad_Name\"\n");
        assert!(e.contains("invalid DNS name"), "{e}");
        let e = err("[[services]]\nname = \"execution\"\n");
        assert!(e.contains("reserved") && e.contains("line 1"), "{e}");
        let e = err("[[services]]\nname = \"api\"\npermissions = [\"everything\"]\n");
        assert!(e.contains("sessions"), "{e}");
    }

    #[test]
    fn presets_load_and_files_override_them() {
        for p in Preset::ALL {
            let c = Config::preset(p);
            assert_eq!(c.preset, Some(p));
        }
        assert_eq!(
            Config::preset(Preset::Webapp).services,
            Config::default().services
        );
        let m = Config::preset(Preset::Microservices);
        let names: Vec<_> = m.services.0.iter().map(|s| s.name.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "payment-api",
                "transaction-processor",
                "notification-service"
            ]
        );
        assert_eq!(m.database.mode, DbMode::Serverless);
        assert_eq!(Config::preset(Preset::Resilient).network.az_count.0, 2);
        // Tables merge key by key; lists replace.
        let c = Config::parse(
            "preset = \"microservices\"\n[logs]\nretention_days = 90\n[database]\nmax_capacity = 8\n",
        )
        .unwrap();
        assert_eq!(c.logs.retention_days.0, 90);
        assert_eq!(c.database.max_capacity, 8.0);
        assert_eq!(c.database.mode, DbMode::Serverless, "kept from the preset");
        assert_eq!(c.services.0.len(), 3);
        let c =
            Config::parse("preset = \"microservices\"\n[[services]]\nname = \"only\"\n").unwrap();
        assert_eq!(c.services.0.len(), 1);
        let e = err("preset = \"huge\"\n");
        assert!(e.contains("webapp") && e.contains("multiregion"), "{e}");
    }

    #[test]
    fn multiregion_preset_turns_waf_and_dr_on() {
        let m = Config::preset(Preset::Multiregion);
        assert!(
            m.waf.enabled,
            "WAF is on by default for the multi-region preset"
        );
        assert_eq!(m.region.as_ref().map(|r| r.0.as_str()), Some("us-east-2"));
        assert_eq!(
            m.dr.region.as_ref().map(|r| r.0.as_str()),
            Some("us-west-2")
        );
        assert_eq!((m.alb.blue_weight, m.alb.green_weight), (80, 20));
        assert_eq!(m.logs.retention_days.0, 30);
        // WAF stays optional everywhere else.
        for p in [
            Preset::Webapp,
            Preset::Bluegreen,
            Preset::Resilient,
            Preset::Microservices,
        ] {
            assert!(!Config::preset(p).waf.enabled, "{p:?}");
            assert!(Config::preset(p).dr.region.is_none(), "{p:?}");
        }
        // ...and the multi-region preset can turn it off.
        let c = Config::parse("preset = \"multiregion\"\n[waf]\nenabled = false\n").unwrap();
        assert!(!c.waf.enabled);
    }

    #[test]
    fn regions_and_the_dr_block_are_checked() {
        let e = err("region = \"us-east\"\n");
        assert!(
            e.contains("invalid region `us-east`") && e.contains("us-east-2"),
            "{e}"
        );
        let e = err("region = \"US-EAST-1\"\n");
        assert!(e.contains("invalid region"), "{e}");
        assert!(Config::parse("region = \"us-gov-west-1\"\n").is_ok());
        let e = err("region = \"us-west-2\"\n[dr]\nregion = \"us-west-2\"\n");
        assert!(
            e.contains("dr.region us-west-2 is the stack's own region"),
            "{e}"
        );
        let e = err("[dr]\nregion = \"us-west-2\"\ncidr = \"10.0.0.0/20\"\n");
        assert!(e.contains("overlaps network.cidr 10.0.0.0/16"), "{e}");
        let e = err("[dr]\naz_count = 4\n");
        assert!(e.contains("az_count"), "{e}");
        let e = err(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"worker\"\nrequest_count_target = 500\n",
        );
        assert!(
            e.contains("`worker` has a request_count_target but no ALB target group"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ndb_connections_target = 0\n");
        assert!(
            e.contains("db_connections_target 0 must be from 1 to 100000"),
            "{e}"
        );
        let c = Config::parse(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/api/*\"\nrequest_count_target = 500\n",
        )
        .unwrap();
        assert_eq!(c.services.0[1].request_count_target, Some(500));
        let e = err("[network]\ninterface_endpoints = [\"ecr\", \"ec2\"]\n");
        assert!(
            e.contains("unknown variant `ec2`") && e.contains("`ecr`, `logs`, `secretsmanager`"),
            "{e}"
        );
        let e = err("[dr]\nsnapshot_retention_days = 0\n");
        assert!(
            e.contains("snapshot_retention_days 0") && e.contains("1 to 36500"),
            "{e}"
        );
    }

    #[test]
    fn edge_defaults() {
        let c = Config::default();
        assert_eq!(c.certificate.source, None);
        assert_eq!((c.alb.blue_weight, c.alb.green_weight), (100, 0));
        assert!(!c.waf.enabled);
        assert_eq!(c.waf.rate_limit.0, 2000);
        assert_eq!(c.services.0[0].health_check_path, "/");
        assert_eq!(c.services.0[0].path, None);
        let b = Config::preset(Preset::Bluegreen);
        assert_eq!((b.alb.blue_weight, b.alb.green_weight), (80, 20));
    }

    #[test]
    fn edge_sections_parse() {
        let c = Config::parse(
            r#"
[certificate]
domain = "App.Example.com"
subject_alternative_names = ["www.example.com", "*.api.example.com"]
[alb]
blue_weight = 50
green_weight = 50
[waf]
enabled = true
rate_limit = 500
[[services]]
name = "web"
health_check_path = "/healthz"
[[services]]
name = "payment-api"
path = "/api/*"
"#,
        )
        .unwrap();
        assert_eq!(
            c.certificate.source,
            Some(CertificateSource::Request {
                domain: "app.example.com".into(),
                subject_alternative_names: vec![
                    "www.example.com".into(),
                    "*.api.example.com".into()
                ],
            })
        );
        assert_eq!(c.alb.green_weight, 50);
        assert_eq!(c.waf.rate_limit.0, 500);
        assert_eq!(c.services.0[0].health_check_path, "/healthz");
        assert_eq!(c.services.0[1].path.as_deref(), Some("/api/*"));
        let arn =
            "arn:aws:acm:us-east-1:123456789012:certificate/0b6a4f5c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";
        let c = Config::parse(&format!(
            "[certificate]\narn = \"{arn}\"\n[alb]\norigin_domain = \"Origin.Example.com\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.certificate.source,
            Some(CertificateSource::Existing { arn: arn.into() })
        );
        assert_eq!(
            c.alb.api_origin_domain(&c.certificate).as_deref(),
            Some("origin.example.com")
        );
    }

    #[test]
    fn alb_origin_domain_defaults_and_cross_field_rules() {
        let origin = |text: &str| {
            let c = Config::parse(text).unwrap();
            c.alb.api_origin_domain(&c.certificate)
        };
        assert_eq!(origin(""), None);
        assert_eq!(
            origin("[certificate]\ndomain = \"app.example.com\"\n").as_deref(),
            Some("origin.app.example.com")
        );
        assert_eq!(
            origin("[certificate]\ndomain = \"*.example.com\"\n").as_deref(),
            Some("origin.example.com")
        );
        assert_eq!(
            origin(
                "[certificate]\ndomain = \"app.example.com\"\n[alb]\norigin_domain = \"api.example.com\"\n"
            )
            .as_deref(),
            Some("api.example.com")
        );
        // Required with an existing certificate, refused without any.
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let e = err(&format!("[certificate]\narn = \"{arn}\"\n"));
        assert!(
            e.contains("needs alb.origin_domain") && e.contains("502"),
            "{e}"
        );
        let e = err("[alb]\norigin_domain = \"origin.example.com\"\n");
        assert!(e.contains("needs a [certificate]"), "{e}");
        let cfg = "[certificate]\ndomain = \"a.example.com\"\n[alb]\norigin_domain = ";
        let e = err(&format!("{cfg}\"*.example.com\"\n"));
        assert!(
            e.contains("invalid origin_domain") && e.contains("line 3"),
            "{e}"
        );
        let e = err(&format!("{cfg}\"localhost\"\n"));
        assert!(e.contains("invalid origin_domain"), "{e}");
        // The extra name must fit ACM's 100 names.
        let sans: Vec<String> = (0..99).map(|i| format!("\"n{i}.example.com\"")).collect();
        let e = err(&format!(
            "[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [{}]\n",
            sans.join(", ")
        ));
        assert!(e.contains("101st name"), "{e}");
        Config::parse(&format!(
            "[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [{}]\n\
             [alb]\norigin_domain = \"n1.example.com\"\n",
            sans.join(", ")
        ))
        .unwrap();
    }

    #[test]
    fn certificate_names_cover_hosts() {
        for (name, host, covers) in [
            ("origin.example.com", "origin.example.com", true),
            ("Origin.Example.com", "origin.example.COM", true),
            ("*.example.com", "origin.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.origin.example.com", false),
            ("*.example.com", ".example.com", false),
            ("app.example.com", "origin.app.example.com", false),
        ] {
            assert_eq!(certificate_name_covers(name, host), covers, "{name} {host}");
        }
        assert_eq!(default_origin_domain("*.example.com"), "origin.example.com");
        assert_eq!(default_origin_domain("example.com"), "origin.example.com");
    }

    #[test]
    fn bad_edge_values_name_field_and_line() {
        let e = err("[certificate]\ndomain = \"a.example.com\"\narn = \"arn:aws:acm:us-east-1:123456789012:certificate/x\"\n");
        assert!(
            e.contains("exclude each other") && e.contains("line 1"),
            "{e}"
        );
        let e = err("[certificate]\ndomain = \"localhost\"\n");
        assert!(e.contains("invalid domain name"), "{e}");
        let e = err("[certificate]\ndomain = \"a.example.com\"\nsubject_alternative_names = [\"bad name\"]\n");
        assert!(e.contains("`bad name`"), "{e}");
        let e = err("[certificate]\narn = \"arn:aws:iam::123456789012:server-certificate/x\"\n");
        assert!(e.contains("invalid certificate arn"), "{e}");
        let e = err("[certificate]\nsubject_alternative_names = [\"a.example.com\"]\n");
        assert!(e.contains("needs a `domain`"), "{e}");
        let e = err("[certificate]\nhost = \"a\"\n");
        assert!(e.contains("unknown field `host`"), "{e}");
        let e = err("\n[alb]\nblue_weight = 1000\n");
        assert!(e.contains("0 to 999") && e.contains("line 2"), "{e}");
        let e = err("[alb]\nblue_weight = 0\ngreen_weight = 0\n");
        assert!(e.contains("both 0"), "{e}");
        let e = err("[waf]\nrate_limit = 5\n");
        assert!(
            e.contains("10 to 2000000000") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[waf]\nenable = true\n");
        assert!(e.contains("unknown field `enable`"), "{e}");
        let e = err("[[services]]\nname = \"web\"\nhealth_check_path = \"health\"\n");
        assert!(e.contains("invalid health_check_path"), "{e}");
        let e =
            err("[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"api/*\"\n");
        assert!(e.contains("invalid path `api/*`"), "{e}");
        let e = err("[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/*\"\n");
        assert!(e.contains("all traffic"), "{e}");
        let e = err("[[services]]\nname = \"web\"\npath = \"/web/*\"\n");
        assert!(e.contains("first service"), "{e}");
        let e = err("[[services]]\nname = \"web\"\n[[services]]\nname = \"a\"\npath = \"/x/*\"\n[[services]]\nname = \"b\"\npath = \"/x/*\"\n");
        assert!(e.contains("routed to two services"), "{e}");
    }

    #[test]
    fn alarm_settings_are_checked() {
        let c =
            Config::parse("[alarms]\nemail = \"ops@example.com\"\ndb_connections = 200\n").unwrap();
        assert_eq!(c.alarms.email.unwrap().0, "ops@example.com");
        assert_eq!(c.alarms.db_connections, 200);
        let e = err("[alarms]\nemail = \"not-an-address\"\n");
        assert!(e.contains("invalid email") && e.contains("line 2"), "{e}");
        let e = err("[alarms]\nalb_5xx_percent = 150\n");
        assert!(e.contains("percentage"), "{e}");
        let e = err("[alarms]\np99_latency_secs = 0\n");
        assert!(e.contains("p99_latency_secs"), "{e}");
    }

    #[test]
    fn fargate_sizes() {
        assert_eq!(fargate_memory_options(256).unwrap(), vec![512, 1024, 2048]);
        assert!(fargate_memory_options(1024).unwrap().contains(&2048));
        assert!(fargate_memory_options(300).is_none());
    }
}

#[cfg(test)]
mod async_tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn queue_and_validator_defaults() {
        let c = Config::default();
        assert_eq!(c.queue.max_receive_count.0, 5);
        assert_eq!(c.queue.message_retention_days.0, 4);
        assert_eq!(c.validator.reserved_concurrency.0, 5);
        assert_eq!(c.validator.memory_mb.0, 256);
        assert_eq!(c.validator.timeout_secs.0, 30);
        assert_eq!(c.validator.batch_size.0, 10);
        assert_eq!(
            c.queue_visibility_timeout(),
            180,
            "6 x the function timeout"
        );
        let c = Config::parse("[validator]\ntimeout_secs = 60\n").unwrap();
        assert_eq!(c.queue_visibility_timeout(), 360);
    }

    #[test]
    fn queue_and_validator_values_parse() {
        let c = Config::parse(
            "[queue]\nmax_receive_count = 3\nvisibility_timeout_secs = 600\n\
             message_retention_days = 14\n[validator]\nreserved_concurrency = 20\n\
             memory_mb = 512\ntimeout_secs = 100\nbatch_size = 100\n",
        )
        .unwrap();
        assert_eq!(c.queue.max_receive_count.0, 3);
        assert_eq!(c.queue_visibility_timeout(), 600);
        assert_eq!(c.queue.message_retention_days.0, 14);
        assert_eq!(
            (
                c.validator.reserved_concurrency.0,
                c.validator.memory_mb.0,
                c.validator.timeout_secs.0,
                c.validator.batch_size.0
            ),
            (20, 512, 100, 100)
        );
    }

    #[test]
    fn bad_queue_and_validator_values_name_field_and_line() {
        for (text, want) in [
            ("[queue]\nmax_receive_count = 0\n", "1 to 1000"),
            ("[queue]\nmax_receive_count = 1001\n", "1 to 1000"),
            ("[queue]\nvisibility_timeout_secs = 43201\n", "0 to 43200"),
            ("[queue]\nmessage_retention_days = 15\n", "1 to 14"),
            ("[queue]\nmessage_retention_days = 0\n", "1 to 14"),
            ("[validator]\nreserved_concurrency = 0\n", "1 to 900"),
            ("[validator]\nmemory_mb = 64\n", "128 to 10240"),
            ("[validator]\ntimeout_secs = 901\n", "1 to 900"),
            ("[validator]\nbatch_size = 10001\n", "1 to 10000"),
            ("[validator]\nbatch_size = -1\n", "1 to 10000"),
        ] {
            let e = err(text);
            assert!(e.contains(want) && e.contains("line 2"), "{text}: {e}");
        }
        let e = err("[queue]\nvisibility_tmeout = 5\n");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn visibility_timeout_must_cover_six_function_timeouts() {
        let e = err("[queue]\nvisibility_timeout_secs = 60\n");
        assert!(
            e.contains("6 x validator.timeout_secs") && e.contains("180"),
            "{e}"
        );
        let e = err("[queue]\nvisibility_timeout_secs = 200\n[validator]\ntimeout_secs = 40\n");
        assert!(e.contains("240"), "{e}");
        Config::parse("[queue]\nvisibility_timeout_secs = 240\n[validator]\ntimeout_secs = 40\n")
            .unwrap();
    }
}

#[cfg(test)]
mod static_tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn storage_and_cdn_defaults() {
        let c = Config::default();
        assert_eq!(c.storage.object_lock_days.0, 30);
        assert_eq!(c.cdn.price_class, PriceClass::PriceClass100);
        assert_eq!(c.cdn.origin_access, OriginAccess::Oac);
        assert!(c.cdn.certificate_arn.is_none());
    }

    #[test]
    fn storage_and_cdn_parse() {
        let c = Config::parse(
            "[storage]\nobject_lock_days = 365\n[cdn]\nprice_class = \"PriceClass_All\"\n\
             origin_access = \"oac\"\n\
             certificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc-123\"\n",
        )
        .unwrap();
        assert_eq!(c.storage.object_lock_days.0, 365);
        assert_eq!(c.cdn.price_class.as_str(), "PriceClass_All");
        assert_eq!(c.cdn.origin_access, OriginAccess::Oac);
        assert!(c.cdn.certificate_arn.is_some());
    }

    #[test]
    fn origin_access_identity_is_refused_with_the_sse_kms_assets_bucket() {
        let e = err("[cdn]\norigin_access = \"oai\"\n");
        assert!(
            e.contains("SSE-KMS") && e.contains("\"oac\"") && e.contains("403"),
            "{e}"
        );
    }

    #[test]
    fn bad_storage_and_cdn_values_name_field_and_line() {
        let e = err("[storage]\nobject_lock_days = 0\n");
        assert!(e.contains("1 to 36500") && e.contains("line 2"), "{e}");
        let e = err("[storage]\nobject_lock_days = 40000\n");
        assert!(e.contains("1 to 36500"), "{e}");
        let e = err("[cdn]\nprice_class = \"PriceClass_50\"\n");
        assert!(e.contains("PriceClass_100") && e.contains("line 2"), "{e}");
        let e = err("[cdn]\norigin_access = \"public\"\n");
        assert!(e.contains("oac") && e.contains("oai"), "{e}");
        let e =
            err("[cdn]\ncertificate_arn = \"arn:aws:acm:eu-west-1:123456789012:certificate/x\"\n");
        assert!(e.contains("us-east-1"), "{e}");
        let e = err("[cdn]\ncertificate_arn = \"not-an-arn\"\n");
        assert!(e.contains("ACM certificate ARN"), "{e}");
        let e = err("[cdn]\nprice = 1\n");
        assert!(e.contains("unknown field `price`"), "{e}");
    }
}
