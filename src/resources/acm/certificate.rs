//! `acm:certificate`: a DNS-validated ACM certificate the stack requests (never one the user
//! configured by ARN: that one is only described). Find it (by record, else by the stack tag
//! among the account's pending and issued certificates: a run that died between the request
//! and the state write), request it with an idempotency token, wait for its DNS validation
//! records, read its names, delete it, probe its status.
//!
//! ACM certificates' names are immutable: a certificate that lacks a name the stack now
//! needs is not usable ([`usable`]) and a new one is requested. ACM adds the DNS validation
//! records a few seconds after the request ([`wait_for_records`]). ACM refuses to delete a
//! certificate a listener still serves (`ResourceInUseException`): the delete is retried.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, Tag, ValidationMethod};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::certificate_name_covers;
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "acm:certificate";

/// ACM adds the DNS validation records to a new certificate a few seconds after the request.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Certificate;

/// RequestCertificate's idempotency token (`\w{1,32}`): the stack and a hash of the names, so
/// a retried request within the hour returns the same certificate, and a changed domain does
/// not.
pub fn idempotency_token(suffix: &str, domain: &str, sans: &[String]) -> String {
    let h = crate::naming::fnv1a32(
        std::iter::once(domain)
            .chain(sans.iter().map(String::as_str))
            .flat_map(|s| s.bytes().chain([0])),
    );
    let mut t = format!("fi{}_{:06x}", suffix.replace('-', "_"), h & 0xff_ffff);
    t.truncate(32);
    t
}

/// The subject alternative names to request: the configured ones, plus the ALB origin name
/// (`origin`) unless the domain or one of them already covers it.
pub fn requested_sans(domain: &str, sans: &[String], origin: Option<&str>) -> Vec<String> {
    let mut out = sans.to_vec();
    if let Some(o) = origin {
        let covered = std::iter::once(domain)
            .chain(sans.iter().map(String::as_str))
            .any(|n| certificate_name_covers(n, o));
        if !covered {
            out.push(o.to_string());
        }
    }
    out
}

/// Every name of a certificate: its `DomainName` and subject alternative names.
pub fn names_of(cert: &CertificateDetail) -> Vec<&str> {
    // ACM lists the DomainName again among the subject alternative names.
    let mut names: Vec<&str> = Vec::new();
    for n in cert
        .domain_name()
        .into_iter()
        .chain(cert.subject_alternative_names().iter().map(String::as_str))
    {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Whether one of the certificate's names covers `host`.
pub fn cert_covers(cert: &CertificateDetail, host: &str) -> bool {
    names_of(cert)
        .iter()
        .any(|n| certificate_name_covers(n, host))
}

/// The DNS validation records of a certificate (`{name, type, value}`), and whether every
/// name has its record yet.
pub fn validation_records(cert: &CertificateDetail) -> (Vec<Value>, bool) {
    let opts = cert.domain_validation_options();
    let mut records: Vec<Value> = opts
        .iter()
        .filter_map(|o| o.resource_record())
        .map(|r| json!({"name": r.name(), "type": r.r#type().as_str(), "value": r.value()}))
        .collect();
    // Names under one domain share a record: list each once.
    records.dedup();
    let complete = opts.iter().all(|o| o.resource_record().is_some());
    (records, complete)
}

/// DescribeCertificate of `arn`; `None` if there is no such certificate.
pub async fn describe(ctx: &StepCtx, arn: &str) -> Result<Option<CertificateDetail>> {
    Ok(ctx
        .aws()
        .acm()
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await
        .aws("acm:DescribeCertificate", arn)
        .not_found_ok()?
        .and_then(|o| o.certificate))
}

/// A certificate usable for the configured names: not failed, revoked or expired.
pub fn usable(cert: &CertificateDetail, domain: &str, sans: &[String]) -> bool {
    let dead = matches!(
        cert.status(),
        Some(
            CertificateStatus::Failed
                | CertificateStatus::Revoked
                | CertificateStatus::Expired
                | CertificateStatus::ValidationTimedOut
                | CertificateStatus::Inactive
        )
    );
    let mut want: Vec<&str> = std::iter::once(domain)
        .chain(sans.iter().map(String::as_str))
        .collect();
    want.sort();
    want.dedup();
    let mut got: Vec<&str> = cert
        .subject_alternative_names()
        .iter()
        .map(String::as_str)
        .chain(cert.domain_name())
        .collect();
    got.sort();
    got.dedup();
    !dead && cert.domain_name() == Some(domain) && got == want
}

/// This stack's requested certificate for the names: a recorded one first, else one
/// tagged with the stack (a run that died between the request and the state write).
pub async fn find(
    ctx: &StepCtx,
    domain: &str,
    sans: &[String],
) -> Result<Option<CertificateDetail>> {
    for rec in ctx.records(Some(KIND)) {
        if let Some(c) = describe(ctx, &rec.id).await? {
            if usable(&c, domain, sans) {
                return Ok(Some(c));
            }
        }
    }
    let acm = ctx.aws().acm();
    let mut token = None;
    loop {
        let out = acm
            .list_certificates()
            .set_next_token(token)
            .certificate_statuses(CertificateStatus::PendingValidation)
            .certificate_statuses(CertificateStatus::Issued)
            .send()
            .await
            .aws("acm:ListCertificates", domain)?;
        for s in out.certificate_summary_list() {
            let Some(arn) = s.certificate_arn() else {
                continue;
            };
            if s.domain_name() != Some(domain) {
                continue;
            }
            let tags = acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .aws("acm:ListTagsForCertificate", arn)
                .not_found_ok()?;
            let ours = tags.is_some_and(|t| {
                t.tags()
                    .iter()
                    .any(|t| t.key() == STACK_TAG && t.value() == Some(ctx.suffix()))
            });
            if !ours {
                continue;
            }
            if let Some(c) = describe(ctx, arn).await? {
                if usable(&c, domain, sans) {
                    return Ok(Some(c));
                }
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// An earlier certificate of this stack the ALB can keep serving while a new one awaits
/// validation: recorded, issued, and naming the domain and every configured alternative
/// name (`user_sans`; it may lack the origin name, which is why a new one was requested).
pub async fn issued_predecessor(
    ctx: &StepCtx,
    current: &str,
    domain: &str,
    user_sans: &[String],
) -> Result<Option<CertificateDetail>> {
    for rec in ctx.records(Some(KIND)) {
        if rec.id == current {
            continue;
        }
        let Some(c) = describe(ctx, &rec.id).await? else {
            continue;
        };
        let names = names_of(&c);
        let names_all = std::iter::once(domain)
            .chain(user_sans.iter().map(String::as_str))
            .all(|n| names.contains(&n));
        if c.status() == Some(&CertificateStatus::Issued)
            && c.domain_name() == Some(domain)
            && names_all
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The certificate for `domain` and `sans` (subject alternative names): `existing` (found by
/// [`find`]) recorded as `domain`, else requested with DNS validation and the stack's tags
/// (`Name` = `tag_name`).
pub async fn ensure(
    ctx: &StepCtx,
    domain: &str,
    sans: &[String],
    tag_name: &str,
    existing: Option<&CertificateDetail>,
) -> Result<Found> {
    let acm = ctx.aws().acm();
    ctx.ensure(
        KIND,
        domain,
        || async {
            Ok(existing.and_then(|c| {
                c.certificate_arn()
                    .map(|a| Found::new(a).arn(a).attr("domain", domain))
            }))
        },
        || async {
            let tags = ctx
                .tags(Some(tag_name))
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .context("building ACM tags")?;
            let out = acm
                .request_certificate()
                .domain_name(domain)
                .validation_method(ValidationMethod::Dns)
                .set_subject_alternative_names((!sans.is_empty()).then(|| sans.to_vec()))
                .idempotency_token(idempotency_token(ctx.suffix(), domain, sans))
                .set_tags(Some(tags))
                .send()
                .await
                .aws("acm:RequestCertificate", domain)?;
            let arn = out
                .certificate_arn
                .context("RequestCertificate returned no ARN")?;
            Ok(Found::new(&arn).arn(&arn).attr("domain", domain))
        },
    )
    .await
}

/// The certificate `arn` once it is issued or has every DNS validation record (ACM fills
/// them in shortly after the request). `known` is a description already read: if it is of
/// `arn` and ready, no second DescribeCertificate is made.
pub async fn wait_for_records(
    ctx: &StepCtx,
    arn: &str,
    domain: &str,
    known: Option<CertificateDetail>,
) -> Result<CertificateDetail> {
    let ready = |c: &CertificateDetail| {
        c.status() == Some(&CertificateStatus::Issued) || validation_records(c).1
    };
    if let Some(c) = known.filter(|c| c.certificate_arn() == Some(arn) && ready(c)) {
        return Ok(c);
    }
    ctx.wait_for(
        &format!("the DNS validation records of the certificate for {domain}"),
        RECORDS_TIMEOUT,
        || async {
            let c = describe(ctx, arn)
                .await?
                .with_context(|| format!("certificate {arn} disappeared"))?;
            Ok(ready(&c).then_some(c))
        },
    )
    .await
}

/// Deletes the certificate `arn`, retried while a listener still serves it; "not found"
/// counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let acm = ctx.aws().acm();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        acm.delete_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("acm:DeleteCertificate", arn)
    })
    .await
}

#[async_trait]
impl Provider for Certificate {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id).await?.map(|c| {
            c.status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default()
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_a_word_of_at_most_32_chars_and_follows_the_names() {
        let s = "abcdefghij-klmnopqrstuvw";
        let t = idempotency_token(s, "app.example.com", &[]);
        assert!(t.len() <= 32, "{t}");
        assert!(
            t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{t}"
        );
        assert_ne!(
            t,
            idempotency_token(s, "app.example.com", &["www.example.com".into()])
        );
        assert_eq!(t, idempotency_token(s, "app.example.com", &[]));
    }

    #[test]
    fn the_origin_name_is_requested_unless_covered() {
        let www = vec!["www.example.com".to_string()];
        assert_eq!(
            requested_sans("app.example.com", &www, Some("origin.app.example.com")),
            vec!["www.example.com", "origin.app.example.com"]
        );
        // A wildcard covers one label; the domain itself or a configured name need nothing.
        assert!(requested_sans("*.example.com", &[], Some("origin.example.com")).is_empty());
        assert_eq!(
            requested_sans("app.example.com", &www, Some("www.example.com")),
            www
        );
        assert_eq!(
            requested_sans("*.example.com", &[], Some("a.origin.example.com")),
            vec!["a.origin.example.com"]
        );
        assert_eq!(requested_sans("app.example.com", &www, None), www);
    }

    #[test]
    fn certificate_names_cover_the_origin() {
        let c = CertificateDetail::builder()
            .domain_name("*.example.com")
            .subject_alternative_names("*.example.com")
            .subject_alternative_names("example.com")
            .build();
        assert_eq!(names_of(&c), vec!["*.example.com", "example.com"]);
        assert!(cert_covers(&c, "origin.example.com"));
        assert!(cert_covers(&c, "example.com"));
        assert!(!cert_covers(&c, "origin.app.example.com"));
    }
}
