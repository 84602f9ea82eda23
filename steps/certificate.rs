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
//! Teardown deletes only certificates this step requested, after the ALB is gone (ACM refuses
//! to delete a certificate a listener still serves: `ResourceInUseException`, retried).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_acm::types::{CertificateDetail, CertificateStatus, Tag, ValidationMethod};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::CertificateSource;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{Found, Step, StepCtx};

pub const CERTIFICATE: &str = "acm:certificate";

/// Output keys other steps read.
pub const OUT_ARN: &str = "certificate_arn";
/// `ISSUED`, `PENDING_VALIDATION`, ...: the ALB attaches only an issued certificate.
pub const OUT_STATUS: &str = "certificate_status";
pub const OUT_RECORDS: &str = "certificate_validation_records";
const OUTPUTS: [&str; 3] = [OUT_ARN, OUT_STATUS, OUT_RECORDS];

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

    async fn up_requested(&self, ctx: &StepCtx, domain: &str, sans: &[String]) -> Result<()> {
        let acm = ctx.aws().acm();
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
                     exist (listed by `outputs` after `up`); until then the ALB serves HTTP only"
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
        Ok(())
    }

    async fn up_existing(&self, ctx: &StepCtx, arn: &str) -> Result<()> {
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
        match &ctx.cfg().certificate.source {
            Some(CertificateSource::Request {
                domain,
                subject_alternative_names,
            }) => {
                self.up_requested(ctx, domain, subject_alternative_names)
                    .await
            }
            Some(CertificateSource::Existing { arn }) => self.up_existing(ctx, arn).await,
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
}
