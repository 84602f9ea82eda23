//! `[alarms]`: alert routing and alarm thresholds, owned by the alarms step.

use serde::Deserialize;

use crate::config::validated::{FieldError, Validate};

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
