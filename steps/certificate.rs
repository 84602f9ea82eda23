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
//! `down` deletes only certificates this step requested (a configured `arn` is never
//! recorded), after the ALB: ACM refuses to delete a certificate it lists as in use
//! (`ResourceInUseException`), and that list follows a listener's deletion only later. The
//! order is the edges' (`src/resources/deps.rs`): listeners and distributions are built on
//! every certificate (`BUILT_ON`), and a `DELETE_RULES` rule puts the load balancer first;
//! the `acm:certificate` provider's delete retries while ACM still says in use.
//!
//! The certificate itself (find, request, validation records, names, delete, probe) is the
//! `acm:certificate` provider in [`crate::resources::acm::certificate`]; this step decides
//! which certificate the config asks for and what to publish.

/// The `[certificate]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_acm::types::CertificateStatus;
use serde_json::Value;

use crate::config::CertificateSource;
use crate::resources::acm::certificate::{
    self as cert, cert_covers, names_of, requested_sans, validation_records,
};
use crate::step::{Step, StepCtx};

pub use crate::outputs::certificate::*;

pub const CERTIFICATE: &str = cert::KIND;

const OUTPUTS: [&str; 5] = [
    OUT_ARN,
    OUT_STATUS,
    OUT_RECORDS,
    OUT_ORIGIN_DOMAIN,
    OUT_PENDING_ARN,
];

pub struct Certificate;

impl Certificate {
    async fn up_requested(
        &self,
        ctx: &StepCtx,
        domain: &str,
        user_sans: &[String],
        origin: &str,
    ) -> Result<()> {
        let sans = &requested_sans(domain, user_sans, Some(origin))[..];
        let existing = cert::find(ctx, domain, sans).await?;
        let tag_name = ctx.names().of("cert");
        let cert = cert::ensure(ctx, domain, sans, &tag_name, existing.as_ref()).await?;
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
        let detail = cert::wait_for_records(ctx, &cert.id, domain, existing).await?;
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
            if let Some(old) = cert::issued_predecessor(ctx, &cert.id, domain, user_sans).await? {
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
        let cert = cert::describe(ctx, arn)
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

}

#[cfg(test)]
mod tests {
    #[test]
    fn the_certificate_kind_is_registered() {
        assert!(crate::resources::provider(super::CERTIFICATE).is_some());
    }
}
