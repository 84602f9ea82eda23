//! Certificate step: the TLS certificate of the ALB's HTTPS listener.
//!
//! With `[certificate] domain`, ACM issues a certificate for the domain (and the optional
//! alternative names) with DNS validation. The step does not wait for it to be issued: that
//! needs CNAME records in the user's DNS, which this tool does not manage. It publishes the
//! validation records (output `certificate_validation_records`) and the certificate's status;
//! AWS refuses a listener with a certificate that is not yet issued, so the ALB serves HTTP
//! until a later `up` finds the certificate issued. With `[certificate] arn`, an existing
//! certificate (issued or imported, managed by the user) is used and never deleted. With
//! neither, the ALB serves HTTP only, and `plan`/`up` say so.
//!
//! The certificate also has to cover the name CloudFront reaches the ALB by (`alb.origin_domain`,
//! default `origin.<domain>`; see the cdn step): CloudFront checks an HTTPS origin's
//! certificate against the origin's domain name, and the ALB's `*.elb.amazonaws.com` name is
//! never on the user's certificate (HTTP 502). A requested certificate gets that name as an
//! extra subject alternative name unless one of its names already covers it (a wildcard
//! covers one label); a configured `arn` is checked and refused with an error naming its names
//! if it does not cover it. Output `certificate_origin_domain` is that name while the
//! certificate the ALB serves covers it.
//!
//! ACM certificates' names are immutable, so a stack whose certificate lacks a name it now
//! needs (an older stack without the origin name, or a new subject alternative name) gets a
//! new certificate. While that one awaits validation, the stack's earlier certificate stays
//! the one the ALB serves if it is issued and still names the domain and every configured
//! alternative name, so HTTPS never drops back to HTTP; the new one is output as
//! `certificate_pending_arn` with its validation records, and the `up` after ACM issues it
//! switches the ALB over. Superseded certificates stay recorded until `down` deletes them.
//!
//! Teardown deletes only certificates this step requested, after the ALB is gone (ACM refuses
//! to delete a certificate a listener still serves: `ResourceInUseException`, retried).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, Tag, ValidationMethod};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::{certificate_name_covers, CertificateSource};
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{Found, Step, StepCtx};

pub const CERTIFICATE: &str = "acm:certificate";

/// Output keys other steps read.
pub const OUT_ARN: &str = "certificate_arn";
/// `ISSUED`, `PENDING_VALIDATION`, ...: the ALB attaches only an issued certificate.
pub const OUT_STATUS: &str = "certificate_status";
pub const OUT_RECORDS: &str = "certificate_validation_records";
/// The host name CloudFront's `/api/*` origin connects to, published while the certificate in
/// `certificate_arn` covers it (the cdn step connects over HTTPS by this name only then).
pub const OUT_ORIGIN_DOMAIN: &str = "certificate_origin_domain";
/// A newly requested certificate awaiting validation while the ALB keeps the earlier one.
pub const OUT_PENDING_ARN: &str = "certificate_pending_arn";
const OUTPUTS: [&str; 5] = [
    OUT_ARN,
    OUT_STATUS,
    OUT_RECORDS,
    OUT_ORIGIN_DOMAIN,
    OUT_PENDING_ARN,
];

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

impl Certificate {
    async fn describe(&self, ctx: &StepCtx, arn: &str) -> Result<Option<CertificateDetail>> {
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
    fn usable(cert: &CertificateDetail, domain: &str, sans: &[String]) -> bool {
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
    async fn find(
        &self,
        ctx: &StepCtx,
        domain: &str,
        sans: &[String],
    ) -> Result<Option<CertificateDetail>> {
        for rec in ctx.records(Some(CERTIFICATE)) {
            if let Some(c) = self.describe(ctx, &rec.id).await? {
                if Self::usable(&c, domain, sans) {
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
                if let Some(c) = self.describe(ctx, arn).await? {
                    if Self::usable(&c, domain, sans) {
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
    async fn issued_predecessor(
        &self,
        ctx: &StepCtx,
        current: &str,
        domain: &str,
        user_sans: &[String],
    ) -> Result<Option<CertificateDetail>> {
        for rec in ctx.records(Some(CERTIFICATE)) {
            if rec.id == current {
                continue;
            }
            let Some(c) = self.describe(ctx, &rec.id).await? else {
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

    async fn up_requested(
        &self,
        ctx: &StepCtx,
        domain: &str,
        user_sans: &[String],
        origin: &str,
    ) -> Result<()> {
        let acm = ctx.aws().acm();
        let sans = &requested_sans(domain, user_sans, Some(origin))[..];
        let existing = self.find(ctx, domain, sans).await?;
        let cert = ctx
            .ensure(
                CERTIFICATE,
                domain,
                || async {
                    Ok(existing.as_ref().and_then(|c| {
                        c.certificate_arn()
                            .map(|a| Found::new(a).arn(a).attr("domain", domain))
                    }))
                },
                || async {
                    let tags = ctx
                        .tags(Some(&ctx.names().of("cert")))
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
            .await?;
        if cert.is_pending() {
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "ACM will issue a certificate for {domain} once its DNS validation records \
                     exist (listed by `outputs` after `up`); until then the ALB serves HTTP only \
                     (or keeps serving this stack's issued earlier certificate, if it still \
                     names {domain} and every subject alternative name)"
                ),
            );
            return Ok(());
        }
        // ACM fills in the validation records shortly after the request. A certificate found
        // above that already has them (or is issued) needs no second DescribeCertificate.
        let ready = |c: &CertificateDetail| {
            c.status() == Some(&CertificateStatus::Issued) || validation_records(c).1
        };
        let known = existing.filter(|c| c.certificate_arn() == Some(cert.id.as_str()) && ready(c));
        let detail = match known {
            Some(c) => c,
            None => {
                ctx.wait_for(
                    &format!("the DNS validation records of the certificate for {domain}"),
                    RECORDS_TIMEOUT,
                    || async {
                        let c = self
                            .describe(ctx, &cert.id)
                            .await?
                            .with_context(|| format!("certificate {} disappeared", cert.id))?;
                        Ok(ready(&c).then_some(c))
                    },
                )
                .await?
            }
        };
        let (records, _) = validation_records(&detail);
        let status = detail
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status != CertificateStatus::Issued.as_str() {
            let list = records
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["type"].as_str().unwrap_or_default(),
                        r["value"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            // ACM certificates' names cannot change: a stack whose certificate lacks a name
            // it now needs got a new one above. Keep serving the old one meanwhile, so that
            // the ALB does not fall back to HTTP (AWS refuses an unissued certificate on a
            // listener).
            if let Some(old) = self
                .issued_predecessor(ctx, &cert.id, domain, user_sans)
                .await?
            {
                let old_arn = old.certificate_arn().unwrap_or_default().to_string();
                let missing: Vec<&str> = sans
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !names_of(&old).contains(n))
                    .collect();
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!(
                        "the certificate for {domain} must also name {} (ACM certificates' \
                         names cannot change), so a new one was requested: {} is {status}. \
                         Create these DNS records to validate it: {list}. Until ACM issues it \
                         the ALB keeps serving {old_arn}{}; run `up` again once it is issued \
                         to switch over",
                        missing.join(", "),
                        cert.id,
                        if cert_covers(&old, origin) {
                            String::new()
                        } else {
                            format!(
                                ", which does not cover {origin}: CloudFront's /api/* origin \
                                 stays as it is until the switch"
                            )
                        }
                    ),
                );
                ctx.set_output(OUT_ARN, old_arn)?;
                ctx.set_output(OUT_STATUS, CertificateStatus::Issued.as_str())?;
                ctx.set_output(OUT_RECORDS, Value::Array(records))?;
                ctx.set_output(OUT_PENDING_ARN, cert.id.clone())?;
                if cert_covers(&old, origin) {
                    ctx.set_output(OUT_ORIGIN_DOMAIN, origin)?;
                } else {
                    ctx.remove_output(OUT_ORIGIN_DOMAIN)?;
                }
                return Ok(());
            }
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "certificate for {domain} is {status}: create these DNS records to validate \
                     it: {list}. AWS refuses a listener with an unissued certificate, so the ALB \
                     serves HTTP until then; run `up` again once ACM has issued it to switch to \
                     HTTPS"
                ),
            );
        }
        ctx.set_output(OUT_ARN, cert.id.clone())?;
        ctx.set_output(OUT_STATUS, status)?;
        ctx.set_output(OUT_RECORDS, Value::Array(records))?;
        // Requested with the origin name (or a name covering it): covered by construction.
        ctx.set_output(OUT_ORIGIN_DOMAIN, origin)?;
        ctx.remove_output(OUT_PENDING_ARN)?;
        Ok(())
    }

    async fn up_existing(&self, ctx: &StepCtx, arn: &str, origin: Option<&str>) -> Result<()> {
        let region = arn.split(':').nth(3).unwrap_or_default();
        if region != ctx.region() {
            bail!(
                "certificate.arn {arn} is in {region}, but the stack is in {}: an ALB can only \
                 use an ACM certificate of its own region",
                ctx.region()
            );
        }
        let cert = self
            .describe(ctx, arn)
            .await?
            .with_context(|| format!("certificate.arn {arn} does not exist"))?;
        // CloudFront connects to the ALB by the origin name and checks the certificate
        // against it (a mismatch is HTTP 502 on every /api/* request): refuse it here.
        if let Some(o) = origin {
            if !cert_covers(&cert, o) {
                bail!(
                    "certificate.arn {arn} names {}, none of which covers alb.origin_domain \
                     {o}: CloudFront reaches the ALB over HTTPS by that name and refuses a \
                     certificate that does not cover it (HTTP 502). Set alb.origin_domain to a \
                     name the certificate covers (a wildcard covers one label: *.example.com \
                     covers origin.example.com) or use a certificate that names it",
                    names_of(&cert).join(", ")
                );
            }
        }
        let status = cert
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status != CertificateStatus::Issued.as_str() {
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "certificate {arn} is {status}, not ISSUED: the ALB serves HTTP until it is \
                     issued"
                ),
            );
        }
        let (records, _) = validation_records(&cert);
        ctx.set_output(OUT_ARN, arn.to_string())?;
        ctx.set_output(OUT_STATUS, status)?;
        ctx.set_output(OUT_RECORDS, Value::Array(records))?;
        match origin {
            Some(o) => ctx.set_output(OUT_ORIGIN_DOMAIN, o)?,
            None => ctx.remove_output(OUT_ORIGIN_DOMAIN)?,
        }
        ctx.remove_output(OUT_PENDING_ARN)?;
        Ok(())
    }
}

#[async_trait]
impl Step for Certificate {
    fn name(&self) -> &'static str {
        "certificate"
    }

    fn deps(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn estimate_secs(&self) -> u64 {
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = ctx.cfg();
        let origin = cfg.alb.api_origin_domain(&cfg.certificate);
        match &cfg.certificate.source {
            Some(CertificateSource::Request {
                domain,
                subject_alternative_names,
            }) => {
                // Always set with a requested certificate (origin.<domain> by default).
                let origin = origin.unwrap_or_else(|| crate::config::default_origin_domain(domain));
                self.up_requested(ctx, domain, subject_alternative_names, &origin)
                    .await
            }
            Some(CertificateSource::Existing { arn }) => {
                self.up_existing(ctx, arn, origin.as_deref()).await
            }
            None => {
                ctx.sh.reporter.message(
                    ctx.step,
                    "no [certificate] configured: the ALB serves HTTP only (set \
                     certificate.domain or certificate.arn for HTTPS)",
                );
                // A certificate an earlier run requested stays recorded (the ALB may still
                // serve it until its step runs); `down` deletes it.
                for key in OUTPUTS {
                    ctx.remove_output(key)?;
                }
                Ok(())
            }
        }
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let acm = ctx.aws().acm();
        // Only certificates this step requested are recorded: never a configured ARN.
        ctx.delete_recorded(CERTIFICATE, |rec| async move {
            acm.delete_certificate()
                .certificate_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("acm:DeleteCertificate", &rec.id)
        })
        .await?;
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(self.describe(ctx, &rec.id).await?.map(|c| {
            c.status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default()
        }))
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
