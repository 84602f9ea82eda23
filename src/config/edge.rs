//! The edge's sections: `[storage]`, `[cdn]`, `[certificate]`, `[alb]` and `[waf]`.

use super::*;

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

/// The TLS certificate of the ALB's HTTPS listener: either ACM issues one for `domain` (DNS
/// validation) or an existing certificate's `arn` is used. Neither: the ALB serves HTTP only.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct CertificateConfig {
    /// The section as written: [`Validate::validate`] checks these three and moves them into
    /// `source`, which is what the rest of the program reads.
    domain: Option<String>,
    arn: Option<String>,
    subject_alternative_names: Vec<String>,
    #[serde(skip)]
    pub source: Option<CertificateSource>,
}

validated!(CertificateConfig);

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

/// A certificate domain name: a DNS name of at least two labels, optionally a wildcard
/// (`*.example.com`); ACM allows 253 characters, 64 for the first name's labels.
pub(super) fn is_certificate_domain(s: &str) -> bool {
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
pub(super) fn is_acm_arn(s: &str) -> bool {
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

impl Validate for CertificateConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        let mut sans = std::mem::take(&mut self.subject_alternative_names);
        self.source = match (self.domain.take(), self.arn.take()) {
            (Some(_), Some(_)) => {
                return field_error!(
                    "arn",
                    "`domain` and `arn` exclude each other: give the domain ACM should issue a \
                     certificate for, or the ARN of an existing certificate"
                )
            }
            (Some(domain), None) => {
                let domain = domain.to_ascii_lowercase();
                for name in std::iter::once(&domain).chain(&sans) {
                    if !is_certificate_domain(name) {
                        return field_error!(
                            if *name == domain {
                                "domain"
                            } else {
                                "subject_alternative_names"
                            },
                            "invalid domain name `{name}`: a fully qualified name such as \
                             app.example.com or *.example.com (lowercase letters, digits, \
                             hyphens)"
                        );
                    }
                }
                if sans.len() > 99 {
                    return field_error!(
                        "subject_alternative_names",
                        "subject_alternative_names: ACM allows at most 100 names in all"
                    );
                }
                sans.retain(|n| n != &domain);
                sans.dedup();
                Some(CertificateSource::Request {
                    domain,
                    subject_alternative_names: sans,
                })
            }
            (None, Some(arn)) => {
                if !sans.is_empty() {
                    return field_error!(
                        "subject_alternative_names",
                        "subject_alternative_names only applies with `domain`: an existing \
                         certificate's names are fixed"
                    );
                }
                if !is_acm_arn(&arn) {
                    return field_error!(
                        "arn",
                        "invalid certificate arn `{arn}`: expected \
                         arn:aws:acm:<region>:<account>:certificate/<id>"
                    );
                }
                Some(CertificateSource::Existing { arn })
            }
            (None, None) => {
                if !sans.is_empty() {
                    return field_error!(
                        "subject_alternative_names",
                        "subject_alternative_names needs a `domain`"
                    );
                }
                None
            }
        };
        Ok(())
    }
}

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
