//! `[cluster]`: the ECS cluster and its Cloud Map namespace, owned by the cluster step.

use serde::Deserialize;

use crate::config::is_dns_label;


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
            && s.split('.').all(is_dns_label);
        if !ok {
            return Err(format!(
                "invalid DNS name `{s}`: dot-separated labels of lowercase letters, digits and \
                 hyphens, e.g. payments.internal"
            ));
        }
        Ok(DnsName(s))
    }
}
