//! `[deploy]`: how `fintech-infra deploy` releases a new image (strategy settings, the scan
//! gate).

use serde::Deserialize;

use crate::config::*;

/// How `fintech-infra deploy` releases a new image (`[deploy]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// An image of the stack's ECR repositories whose scan reports a finding of this
    /// severity or above is refused (`deploy --allow-vulnerable` overrides): seed 003's
    /// "images scanned before deployment".
    pub block_severity: Severity,
    /// How long the new version's tasks may take to run and pass the load balancer's health
    /// checks before `deploy` rolls it back.
    pub health_timeout_secs: Secs,
    /// How long `deploy` watches the rollback alarms (the ALB's 5xx rate and p99 latency)
    /// once the new version takes traffic; an alarm in ALARM rolls it back.
    pub bake_secs: Secs,
    /// The CodeDeploy configuration of `codedeploy-linear` services: seed 003's 10-minute
    /// shift, 10 % more every minute.
    pub linear_config: String,
    /// The CodeDeploy configuration of `codedeploy-canary` services: 10 % for five minutes,
    /// then the rest.
    pub canary_config: String,
    /// How long CodeDeploy keeps the old tasks after all traffic moved to the new ones: the
    /// window in which a rollback is instant (the alarms still roll back meanwhile).
    pub termination_wait_mins: u32,
    /// The port of the ALB's test listener (HTTP), where CodeDeploy sends test traffic to the
    /// new tasks before production traffic moves. The ALB's security group admits nothing on
    /// it but `test_cidrs`.
    pub test_port: i32,
    /// The networks (IPv4 CIDR blocks, at most 4) the ALB admits on `test_port`: the
    /// testers of a new version before it takes production traffic.
    pub test_cidrs: Vec<Cidr>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            block_severity: Severity::High,
            health_timeout_secs: Secs(900),
            bake_secs: Secs(300),
            linear_config: "CodeDeployDefault.ECSLinear10PercentEvery1Minutes".into(),
            canary_config: "CodeDeployDefault.ECSCanary10Percent5Minutes".into(),
            termination_wait_mins: 5,
            test_port: 9000,
            test_cidrs: Vec::new(),
        }
    }
}

/// An ECR scan finding's severity, by ECR's names, lowest first.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// ECR's name (a key of `findingSeverityCounts`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}
