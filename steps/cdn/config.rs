//! `[cdn]`: the CloudFront distribution, owned by the cdn step.

use serde::Deserialize;

use crate::config::*;

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
