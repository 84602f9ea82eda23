//! The section and value types no single step owns: `[logs]` (every step's log groups) and
//! `Cidr` (networks the config admits, e.g. `deploy.test_cidrs`). The steps' own sections live
//! next to their steps (`steps/<step>/config.rs`) and are re-exported by `crate::config`.

use super::*;

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

/// A network the config admits somewhere (`deploy.test_cidrs`): an IPv4 block, host bits
/// clear.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct Cidr(pub Ipv4Net);

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let net: Ipv4Net = s.parse().map_err(|_| {
            format!("invalid CIDR `{s}`: expected an IPv4 block such as 203.0.113.0/24")
        })?;
        if net.network() != net.addr() {
            return Err(format!(
                "invalid CIDR `{s}`: host bits are set; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A lowercase DNS label: 1 to 63 letters, digits and hyphens, not starting or ending with a
/// hyphen (RFC 1035 as Route 53, Cloud Map and ACM apply it). Shared by the namespace name
/// and the certificate domain.
pub fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
