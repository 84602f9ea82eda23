//! `[certificate]`: where the ALB's TLS certificate comes from, owned by the certificate step,
//! and the name rules ACM and TLS apply.

use serde::Deserialize;

use crate::config::is_dns_label;

use crate::config::validated::{FieldError, Validate};

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
pub(crate) fn is_certificate_domain(s: &str) -> bool {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    rest.contains('.')
        && s.len() <= 253
        && rest.split('.').all(is_dns_label)
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
pub(crate) fn is_acm_arn(s: &str) -> bool {
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
