//! `[waf]`: the web ACL in front of the ALB, owned by the waf step.

use serde::Deserialize;


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
