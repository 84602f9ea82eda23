//! `[alarms]`, `[logs]` and `[tracing]`: alert routing, alarm thresholds, log retention and
//! the trace collector every task runs.

use super::*;

/// Alert routing and alarm thresholds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
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

validated!(AlarmsConfig);

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            email: None,
            alb_5xx_percent: 5.0,
            p99_latency_secs: 1.0,
            db_cpu_percent: 80.0,
            db_connections: 500,
        }
    }
}

impl Validate for AlarmsConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        for (field, v) in [
            ("alb_5xx_percent", self.alb_5xx_percent),
            ("db_cpu_percent", self.db_cpu_percent),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                return field_error!(
                    field,
                    "invalid {field} {v}: a percentage above 0 and at most 100"
                );
            }
        }
        if !(self.p99_latency_secs > 0.0 && self.p99_latency_secs <= 60.0) {
            return field_error!(
                "p99_latency_secs",
                "invalid p99_latency_secs {}: above 0 and at most 60 seconds",
                self.p99_latency_secs
            );
        }
        if self.db_connections == 0 {
            return field_error!("db_connections", "invalid db_connections 0: at least 1");
        }
        Ok(())
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
