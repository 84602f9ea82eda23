//! `[alb]`: the application load balancer, owned by the alb step.

use serde::Deserialize;

use crate::config::validated::{FieldError, Validate};
use crate::config::*;

/// The application load balancer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
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

validated!(AlbConfig);

impl Validate for AlbConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        for (field, w) in [
            ("blue_weight", self.blue_weight),
            ("green_weight", self.green_weight),
        ] {
            if !(0..=999).contains(&w) {
                return field_error!(
                    field,
                    "invalid {field} {w}: ALB target group weights are 0 to 999"
                );
            }
        }
        if self.blue_weight == 0 && self.green_weight == 0 {
            return field_error!(
                "blue_weight",
                "blue_weight and green_weight are both 0: no traffic would reach any target; \
                 give at least one a positive weight"
            );
        }
        if let Some(d) = &mut self.origin_domain {
            d.make_ascii_lowercase();
            if d.starts_with("*.") || !is_certificate_domain(d) {
                return field_error!(
                    "origin_domain",
                    "invalid origin_domain `{d}`: one fully qualified host name such as \
                     origin.example.com (no wildcard: CloudFront connects to this very \
                     name), covered by the ALB's certificate"
                );
            }
        }
        Ok(())
    }
}
