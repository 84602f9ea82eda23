//! CDN step: the CloudFront distribution in front of the assets bucket (and, when the stack
//! has a load balancer, its API).
//!
//! CloudFront reads the private bucket through an origin access control (`oac-assets-<s>`,
//! SigV4 on every request); the bucket policy gets one statement granting it `s3:GetObject`
//! on behalf of this distribution only (`AWS:SourceArn`). The assets are SSE-KMS with the
//! stack key, and S3 decrypts them only if the requester may `kms:Decrypt`: the step also keeps
//! the statement `CloudFrontDecryptsAssets` in the key's policy (service principal
//! `cloudfront.amazonaws.com`, `kms:Decrypt`, `AWS:SourceArn` = the distribution's ARN: AWS's
//! documented OAC + SSE-KMS statement), read with GetKeyPolicy and written back, every other
//! statement kept, only when it is missing or differs. Without it every object answers 403.
//!
//! A legacy origin access identity (`cdn.origin_access = "oai"`) cannot read SSE-KMS objects
//! at all (AWS: OAI does not support SSE-KMS; only OAC, with the key policy statement above,
//! does): the config check refuses `oai` before any AWS call rather than build assets nobody
//! can read. SSE-S3 for the assets in that mode was the alternative, rejected: objects keep
//! the encryption they were written with, so a stack switching modes would keep unreadable
//! objects, and the assets would leave the stack key's control (rotation, audit, revocation).
//! A stack built in oai mode by an earlier version switches to OAC on its next `up`: the
//! distribution's origin is updated, the OAI's bucket grant replaced and the recorded OAI
//! deleted.
//!
//! `/` serves `cdn.default_root_object` (default `index.html`; Security Hub CloudFront.1:
//! without it a request for the root goes to the S3 origin as is, and answers with an error).
//!
//! Access logs (Security Hub CloudFront.5, `cdn.access_logs`, on by default): CloudFront
//! standard (legacy) logging to the log bucket `fintech-cdnlogs-<account>-<s>`, under `cdn/`,
//! cookies left out. The bucket is created by this step before the distribution (with the
//! settings of `src/resources/s3/log_bucket.rs`: ACLs enabled with `BucketOwnerPreferred`, as standard
//! logging writes each file with an ACL for the `awslogsdelivery` account; private, versioned,
//! SSE-S3, TLS only, logs expiring after 90 days) and deleted by `down` after the
//! distribution. Logging v2 (vended-log deliveries to CloudWatch Logs, S3 or Firehose) was the
//! alternative; standard logging was kept as it needs no us-east-1 delivery resources and
//! the emulator refuses its one pitfall (a bucket without ACLs: `InvalidArgument`). CloudFront
//! does not deliver standard logs to buckets in some opt-in regions
//! ([`NO_LOG_DELIVERY_REGIONS`]): `up` refuses `cdn.access_logs` there. With the switch off,
//! the distribution's logging is turned off; a log bucket made earlier stays until `down`.
//!
//! Viewers are redirected to HTTPS on every behaviour. `/static/*` and the default behaviour go to S3 with the
//! managed CachingOptimized policy; when the alb step has published `alb_dns_name`, `/api/*`
//! goes to the load balancer uncached (CachingDisabled) with every viewer header but Host
//! forwarded (AllViewerExceptHostHeader). How CloudFront reaches the ALB:
//! - With an issued certificate on the ALB (`alb_https`) that covers the origin name
//!   (`certificate_origin_domain`: `alb.origin_domain`, default `origin.<certificate.domain>`):
//!   HTTPS only, TLS 1.2, to that name. CloudFront checks an HTTPS origin's certificate
//!   against the origin domain name it connects to, so the ALB's own `*.elb.amazonaws.com`
//!   name, never on the user's certificate, would fail every request with 502. That name must
//!   resolve to the ALB: the CNAME to create is output as `alb_origin_dns_record`
//!   (`{name, type, value}`), next to the certificate's validation records.
//! - Without a certificate (or while it awaits validation and the ALB only listens on HTTP):
//!   plain HTTP to the ALB's DNS name. That hop is unencrypted (the network step admits only
//!   CloudFront's origin-facing addresses to the ALB); production needs a certificate.
//!
//! CloudFront deploys a new or changed distribution to every edge location in 5-15 minutes;
//! `up` does not wait for that unless `up --wait cdn` (or `--wait all`) asks: the distribution
//! answers from the edges that already have it.
//!
//! Deleting a distribution is the dance CloudFront enforces, in the distribution provider's
//! `delete`: get the config and its ETag, disable it (with that ETag: every update needs the
//! current one and returns a new one), wait until the disabled configuration is deployed,
//! delete it with the latest ETag. A run interrupted while the disabled distribution was
//! deploying resumes with the wait, not a second update. `down` deletes it before what
//! `BUILT_ON` says it is built on: every OAC, OAI, bucket and load balancer, and the web ACLs
//! and certificates of every region (CloudFront refuses to delete an OAC or OAI, and WAF a
//! web ACL, that a distribution still uses). Its grants in the bucket policy and the key
//! policy are not removed: the bucket goes after the distribution and the key after the
//! bucket (`s3:bucket` is built on every `kms:key`), and a grant naming a deleted
//! distribution's ARN grants nothing.
//!
//! Each resource type is a provider: the distribution, OAC and OAI in
//! [`crate::resources::cloudfront`], the web ACL in [`crate::resources::wafv2::web_acl`], the
//! key policy statement in [`crate::resources::kms::key_policy`], the bucket policy grant in
//! [`crate::resources::s3::bucket_policy`], the log bucket in
//! [`crate::resources::s3::log_bucket`]; this step decides what to build from the config, in
//! which order, and what to publish.

/// The `[cdn]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::{bail, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::OriginAccess;
use crate::resources::cloudfront::distribution::{
    self, current_api_origin, distribution_arn, DesiredDistribution,
};
use crate::resources::cloudfront::{origin_access_control, origin_access_identity};
use crate::resources::iam::partition_of;
use crate::resources::kms::key_policy::{self, key_statement};
use crate::resources::s3::bucket_policy::{self, bucket_arn, tls_only_statement};
use crate::resources::s3::log_bucket::{self, LogBucketSpec};
use crate::resources::wafv2::{web_acl, CLOUDFRONT_REGION};
use crate::resources::s3;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::outputs::{certificate, kms, storage};

pub use crate::resources::cloudfront::distribution::{
    ALB_ORIGIN_ID, ALL_VIEWER_EXCEPT_HOST_HEADER, CACHING_DISABLED, CACHING_OPTIMIZED, LOG_PREFIX,
    S3_ORIGIN_ID,
};

pub use crate::outputs::cdn::*;
pub use crate::resources::cloudfront::origin_access_identity::{oai_comment, oai_principal};
pub use crate::resources::kms::key_policy::KEY_SID;

pub const DISTRIBUTION: &str = distribution::KIND;
pub const OAC: &str = origin_access_control::KIND;
pub const OAI: &str = origin_access_identity::KIND;
pub const BUCKET: &str = s3::bucket::KIND;


/// Days the access logs are kept.
pub const LOG_EXPIRY_DAYS: i32 = 90;
/// ID of the log bucket's lifecycle rule.
pub const LOG_RULE_ID: &str = "expire-access-logs";

/// Regions whose S3 buckets CloudFront does not deliver standard logs to (AWS: "Don't choose
/// an Amazon S3 bucket in any of the following Regions, because CloudFront doesn't deliver
/// standard logs to buckets in these Regions",
/// <https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html#access-logs-choosing-s3-bucket>).
pub const NO_LOG_DELIVERY_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-west-1",
    "eu-south-1",
    "eu-south-2",
    "eu-central-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
];

/// The access-log bucket: `fintech-cdnlogs-<account>-<suffix>` (global names: the account ID
/// keeps them unique).
pub fn log_bucket_name(account: &str, suffix: &str) -> String {
    format!("fintech-cdnlogs-{account}-{suffix}")
}

/// What the log bucket must look like: ACLs enabled (`BucketOwnerPreferred`), as CloudFront
/// standard logging writes every log file with an ACL granting its `awslogsdelivery` account
/// (and fails `InvalidArgument` "... does not enable ACL access" on a bucket without ACLs);
/// with `BucketOwnerPreferred` those objects still belong to the bucket owner. Private,
/// versioned, SSE-S3, TLS only, logs expiring after [`LOG_EXPIRY_DAYS`] (see [`log_bucket`]).
/// No delivery statement in the policy: legacy delivery works through the bucket ACL, which
/// CloudFront itself adds when the distribution is created or updated.
pub fn log_bucket_spec(bucket: &str) -> Result<LogBucketSpec> {
    Ok(LogBucketSpec {
        name: bucket.to_string(),
        purpose: "cdn-logs",
        statements: vec![tls_only_statement(bucket)],
        rules: vec![log_bucket::expiry_rule(LOG_RULE_ID, LOG_EXPIRY_DAYS)?],
        ownership: Some(aws_sdk_s3::types::ObjectOwnership::BucketOwnerPreferred),
    })
}

/// Refuses a default root object CloudFront would not take: empty (Security Hub
/// CloudFront.1 wants one), with a leading `/` (AWS: "Don't add a / before the object name"),
/// or longer than 255 characters.
pub fn check_default_root_object(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("cdn.default_root_object is empty: set the object `/` serves, e.g. \"index.html\"");
    }
    if name.starts_with('/') {
        bail!("cdn.default_root_object = {name:?}: give the object name without a leading `/`");
    }
    if name.len() > 255 {
        bail!("cdn.default_root_object is longer than CloudFront's 255 characters");
    }
    Ok(())
}

/// Outputs of the alb step this step uses when present.
pub const IN_ALB_DNS_NAME: &str = "alb_dns_name";
pub const IN_ALB_HTTPS: &str = "alb_https";
/// The origin name the ALB's certificate covers (certificate step).
pub const IN_ORIGIN_DOMAIN: &str = certificate::OUT_ORIGIN_DOMAIN;

/// `Sid`s of this step's statements in the assets bucket policy.
pub const OAC_SID: &str = "AllowCloudFrontOacRead";
pub const OAI_SID: &str = "AllowCloudFrontOaiRead";

pub struct Cdn;

/// The comment that identifies the stack's distribution (CloudFront has no names).
pub fn distribution_comment(suffix: &str) -> String {
    format!("fintech-infra {suffix}: static assets and API")
}

/// The bucket policy statement that lets CloudFront read the assets.
pub fn grant_statement(bucket: &str, access: &Access) -> Value {
    let objects = format!("{}/*", bucket_arn(bucket));
    match access {
        Access::Oac { distribution_arn } => json!({
            "Sid": OAC_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": objects,
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}
        }),
        Access::Oai { oai_id } => json!({
            "Sid": OAI_SID,
            "Effect": "Allow",
            "Principal": {"AWS": oai_principal(oai_id)},
            "Action": "s3:GetObject",
            "Resource": objects
        }),
    }
}

/// Where CloudFront's `/api/*` origin connects: `(domain name, https)`. HTTPS only when the
/// ALB serves an issued certificate (`alb_https`); then by the origin name that certificate
/// covers (`covered_origin`), as CloudFront checks the origin's certificate against the name
/// it connects to. Without that name (the certificate naming it is a replacement still
/// awaiting validation), the distribution's current HTTPS origin (`current`) is kept as it
/// is, else the ALB's own name over HTTPS, which CloudFront cannot verify: the caller warns.
/// Without a certificate, plain HTTP to the ALB's name (the only listener it has).
pub fn api_origin(
    alb_dns: &str,
    alb_https: bool,
    covered_origin: Option<&str>,
    current: Option<(&str, bool)>,
) -> (String, bool) {
    match (alb_https, covered_origin, current) {
        (true, Some(origin), _) => (origin.to_string(), true),
        (true, None, Some((domain, true))) => (domain.to_string(), true),
        (true, None, _) => (alb_dns.to_string(), true),
        (false, _, _) => (alb_dns.to_string(), false),
    }
}

/// What the `/api/*` origin depends on: the ALB's DNS name, whether it serves HTTPS, and the
/// origin name its certificate covers.
#[derive(Debug, Clone, PartialEq)]
pub struct AlbInputs {
    pub dns: String,
    pub https: bool,
    pub covered_origin: Option<String>,
}

impl AlbInputs {
    /// The origin, given the distribution's current one (see [`api_origin`]).
    pub fn origin(&self, current: Option<(&str, bool)>) -> (String, bool) {
        api_origin(
            &self.dns,
            self.https,
            self.covered_origin.as_deref(),
            current,
        )
    }
}

/// The DNS record that makes the origin name reach the ALB.
pub fn origin_dns_record(origin: &str, alb_dns: &str) -> Value {
    json!({"name": origin, "type": "CNAME", "value": alb_dns})
}

/// Who reads the bucket. `up` only grants OAC (oai mode is refused); `Oai` describes the
/// grant a stack built in oai mode by an earlier version has, which `up` replaces.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Oac { distribution_arn: String },
    Oai { oai_id: String },
}

impl Cdn {
    /// With `cdn.access_logs`: the log bucket, created if missing and every setting kept in
    /// line; returns its name. Without: `None` (the distribution's logging is turned off; a
    /// log bucket an earlier run made is kept, its logs expiring, until `down`).
    async fn ensure_log_bucket(ctx: &StepCtx) -> Result<Option<String>> {
        if !ctx.cfg().cdn.access_logs {
            if let Some(rec) = ctx.records(Some(BUCKET)).first() {
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!(
                        "cdn.access_logs is off: the distribution no longer logs; the log \
                         bucket {} is kept (its logs expire after {LOG_EXPIRY_DAYS} days) \
                         until `down`",
                        rec.id
                    ),
                );
            }
            return Ok(None);
        }
        if NO_LOG_DELIVERY_REGIONS.contains(&ctx.region()) {
            bail!(
                "cdn.access_logs: CloudFront does not deliver standard logs to S3 buckets in {}; \
                 set cdn.access_logs = false or build the stack in another region",
                ctx.region()
            );
        }
        let account = ctx.account_id().await?;
        let name = log_bucket_name(&account, ctx.suffix());
        log_bucket::ensure(ctx, &log_bucket_spec(&name)?).await?;
        Ok(Some(name))
    }

    /// The ALB's DNS name, when the alb step published it.
    fn alb_dns(ctx: &StepCtx) -> Option<String> {
        let dns = ctx.output(IN_ALB_DNS_NAME)?.as_str()?.to_string();
        (!dns.is_empty() && !is_pending(&dns)).then_some(dns)
    }

    /// What the ALB origin depends on, when the alb step published its DNS name.
    fn alb_inputs(ctx: &StepCtx) -> Option<AlbInputs> {
        let dns = Self::alb_dns(ctx)?;
        let https = ctx
            .output(IN_ALB_HTTPS)
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let covered_origin = ctx
            .output(IN_ORIGIN_DOMAIN)
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|d| !d.is_empty() && !is_pending(d));
        if https && covered_origin.is_none() {
            ctx.sh.reporter.message(
                ctx.step,
                "the certificate the ALB serves does not cover the origin name CloudFront should \
                 reach it by (see the certificate step's messages): /api/* keeps its current \
                 HTTPS origin (a new distribution gets the ALB's own DNS name, which CloudFront \
                 cannot verify: 502) until a certificate covering it is issued and `up` runs \
                 again",
            );
        }
        Some(AlbInputs {
            dns,
            https,
            covered_origin,
        })
    }

    /// With `[waf] enabled`, the distribution's web ACL (Security Hub CloudFront.6):
    /// `waf-cdn-<s>`, Scope CLOUDFRONT, in us-east-1 whatever the stack's region (AWS serves
    /// that scope there only, and a distribution refuses a REGIONAL ACL: InvalidWebACLId).
    /// The rules are the regional ACL's (managed common + known bad inputs, the rate limit).
    /// Kept by this step, not by the waf step: the distribution must drop the ACL before it
    /// can be deleted, and only this step orders the two.
    async fn ensure_web_acl(ctx: &StepCtx) -> Result<Option<Found>> {
        let cfg = &ctx.cfg().waf;
        if !cfg.enabled {
            return Ok(None);
        }
        let edge = ctx.in_region(CLOUDFRONT_REGION);
        let name = ctx.names().of("waf-cdn");
        web_acl::ensure(
            &edge,
            aws_sdk_wafv2::types::Scope::Cloudfront,
            &name,
            "CloudFront",
            cfg.rate_limit.0,
        )
        .await
        .map(Some)
    }

    /// Makes sure the stack key's policy has [`key_statement`] for this distribution (every
    /// other statement kept): without it S3 cannot decrypt the SSE-KMS assets for CloudFront
    /// and every object answers 403. Written only when missing or different; `up` restores
    /// it if someone removed it. `as_change`: report it as a change (an existing distribution)
    /// rather than as part of creating one.
    async fn ensure_key_grant(
        ctx: &StepCtx,
        key_arn: &str,
        distribution_id: &str,
        as_change: bool,
    ) -> Result<()> {
        let account = ctx.account_id().await?;
        let arn = distribution_arn(partition_of(key_arn), &account, distribution_id);
        key_policy::ensure_statement(
            ctx,
            key_arn,
            &key_statement(&arn),
            &format!("key policy: let CloudFront decrypt the assets for {arn} ({KEY_SID})"),
            as_change,
        )
        .await
    }
}

#[async_trait]
impl Step for Cdn {
    fn name(&self) -> &'static str {
        "cdn"
    }

    fn deps(&self) -> Vec<&'static str> {
        // The ALB's DNS name is the `/api/*` origin; without the dependency a first `up` could
        // create the distribution S3-only and need a second run to add the API behaviour.
        // kms: this step adds the distribution's statement to the key's policy.
        vec!["kms", "storage", "alb"]
    }

    fn estimate_secs(&self) -> u64 {
        // Creating the distribution returns at once; the global deploy is not waited for.
        15
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let bucket = ctx.input_str(storage::OUT_ASSETS_BUCKET)?;
        let key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        if ctx.cfg().cdn.origin_access == OriginAccess::Oai {
            // The config check refuses this before any AWS call; never build it anyway.
            bail!(
                "cdn.origin_access = \"oai\": an origin access identity cannot read the SSE-KMS \
                 assets bucket; use \"oac\""
            );
        }
        let root_object = ctx.cfg().cdn.default_root_object.clone();
        check_default_root_object(&root_object)?;
        let log_bucket = Self::ensure_log_bucket(ctx).await?;
        let web_acl = Self::ensure_web_acl(ctx).await?;
        let oac = origin_access_control::ensure(
            ctx,
            &ctx.names().with_purpose("oac", "assets"),
            &format!(
                "fintech-infra {}: CloudFront reads the assets bucket",
                ctx.suffix()
            ),
        )
        .await?;
        let alb_inputs = Self::alb_inputs(ctx);
        let comment = distribution_comment(ctx.suffix());
        let want = DesiredDistribution {
            caller_reference: format!("fintech-infra-cdn-{}", ctx.suffix()),
            comment: comment.clone(),
            bucket_domain: format!("{bucket}.s3.{}.amazonaws.com", ctx.region()),
            oac_id: Some(oac.id.clone()),
            oai_id: None,
            price_class: ctx.cfg().cdn.price_class.as_str(),
            alb: alb_inputs.as_ref().map(|a| a.origin(None)),
            certificate_arn: ctx.cfg().cdn.certificate_arn.as_ref().map(|c| c.0.clone()),
            default_root_object: root_object,
            log_bucket: log_bucket.clone(),
            web_acl_arn: web_acl.as_ref().map(|a| a.id.clone()),
        };
        let inputs_known = !is_pending(&bucket)
            && !oac.is_pending()
            && !web_acl.as_ref().is_some_and(|a| a.is_pending());

        let existing = distribution::find(ctx, &comment).await?;
        let existed = existing.is_some();
        let dist = distribution::ensure(ctx, &comment, existing.as_ref(), &want).await?;
        if dist.is_pending() {
            return Ok(());
        }
        let arn = dist.arn.clone().unwrap_or_default();

        // The key policy grant: S3 decrypts the SSE-KMS assets for CloudFront only with it.
        if !is_pending(&key_arn) {
            Self::ensure_key_grant(ctx, &key_arn, &dist.id, existed).await?;
        }

        if existed {
            // Tags (CreateDistributionWithTags set them on a new one).
            distribution::ensure_tags(ctx, &comment, &dist.id, &arn).await?;
            // Configuration drift.
            if inputs_known {
                let known = existing.and_then(|e| e.config);
                let (current, etag) = distribution::current_config(ctx, &dist.id, known).await?;
                let mut want = want.clone();
                if let Some(a) = &alb_inputs {
                    let now = current_api_origin(&current);
                    want.alb = Some(a.origin(now.as_ref().map(|(d, h)| (d.as_str(), *h))));
                }
                distribution::update_if_drifted(
                    ctx,
                    &comment,
                    &dist.id,
                    &current,
                    etag,
                    want.config()?,
                )
                .await?;
            }
        }

        // The bucket policy grant for this distribution's OAC (replacing the grant of an OAI
        // an earlier version made).
        if !is_pending(&bucket) {
            let access = Access::Oac {
                distribution_arn: arn.clone(),
            };
            let grant = grant_statement(&bucket, &access);
            let current = bucket_policy::get_policy(ctx, &bucket).await?;
            let without_stale =
                match bucket_policy::remove_statements(current.as_deref(), &[OAI_SID])? {
                    Some(p) => p,
                    None => current.clone(),
                };
            let new =
                bucket_policy::upsert_statement(without_stale.as_deref(), &grant)?.or_else(|| {
                    (without_stale != current).then(|| without_stale.clone().unwrap_or_default())
                });
            if let Some(policy) = new {
                let what = "bucket policy: grant CloudFront read access";
                let apply = || bucket_policy::set_policy(ctx, &bucket, Some(policy));
                if existed {
                    ctx.change(BUCKET, &bucket, what, apply).await?;
                } else {
                    apply().await?;
                }
            }
        }

        // `[waf] enabled` turned off: the distribution no longer names the ACL (updated
        // above), so it can go (WAF refuses to delete an ACL a distribution uses).
        if web_acl.is_none() {
            let edge = ctx.in_region(CLOUDFRONT_REGION);
            if let Some(rec) = edge.records(Some(web_acl::KIND)).first() {
                edge.change(
                    web_acl::KIND,
                    &rec.name,
                    "remove: [waf] is not enabled",
                    || web_acl::delete_recorded(&edge),
                )
                .await?;
            }
        }

        // A stack built in oai mode by an earlier version leaves its OAI unused: remove it now
        // that neither the distribution nor the policy refers to it.
        let unused = OAI;
        for rec in ctx.records(Some(unused)) {
            ctx.change(unused, &rec.name, "delete (no longer used)", || async {
                origin_access_identity::delete(ctx, &rec.id).await
            })
            .await?;
            if !ctx.is_plan() {
                ctx.deleted(unused, &rec.id)?;
            }
        }

        if ctx.should_wait("cdn") {
            distribution::wait_deployed(ctx, &dist.id).await?;
        }

        ctx.set_output(OUT_DISTRIBUTION_ID, dist.id.clone())?;
        ctx.set_output(
            OUT_DOMAIN_NAME,
            dist.attrs.get("domain_name").cloned().unwrap_or_default(),
        )?;
        ctx.remove_output(OUT_OAI_ID)?;
        match &log_bucket {
            Some(b) => ctx.set_output(OUT_LOG_BUCKET, b.clone())?,
            None => ctx.remove_output(OUT_LOG_BUCKET)?,
        }
        // The record the origin name needs, published as soon as a certificate is configured
        // so that it can be created together with the certificate's validation records.
        let cfg = ctx.cfg();
        match (
            cfg.alb.api_origin_domain(&cfg.certificate),
            Self::alb_dns(ctx),
        ) {
            (Some(origin), Some(dns)) => {
                ctx.set_output(OUT_ALB_ORIGIN_DNS_RECORD, origin_dns_record(&origin, &dns))?
            }
            _ => ctx.remove_output(OUT_ALB_ORIGIN_DNS_RECORD)?,
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_object_is_checked() {
        assert!(check_default_root_object("index.html").is_ok());
        assert!(check_default_root_object("").is_err());
        assert!(check_default_root_object("/index.html").is_err());
        assert!(check_default_root_object(&"a".repeat(256)).is_err());
    }

    #[test]
    fn log_bucket_is_private_versioned_acl_enabled_and_expiring() {
        let name = log_bucket_name("123456789012", "abcdefghij-klmnopqrstuv");
        assert!(name.len() <= 63, "{name}");
        assert_eq!(log_bucket_name("1", "s"), "fintech-cdnlogs-1-s");
        let spec = log_bucket_spec("b").unwrap();
        assert_eq!(
            spec.ownership,
            Some(aws_sdk_s3::types::ObjectOwnership::BucketOwnerPreferred)
        );
        assert_eq!(spec.statements, vec![tls_only_statement("b")]);
        let r = &spec.rules[0];
        assert_eq!(r.expiration().and_then(|e| e.days()), Some(LOG_EXPIRY_DAYS));
        assert!(r.noncurrent_version_expiration().is_some());
    }

    #[test]
    fn api_origin_is_the_certificate_name_over_https() {
        let alb = "fintech-alb-s-1.us-east-1.elb.amazonaws.com";
        let old = Some(("origin.example.com", true));
        // Certificate issued and covering the origin name: HTTPS to that name.
        assert_eq!(
            api_origin(alb, true, Some("origin.example.com"), None),
            ("origin.example.com".to_string(), true)
        );
        assert_eq!(
            api_origin(alb, true, Some("api.example.com"), old),
            ("api.example.com".to_string(), true)
        );
        // No certificate (or not issued yet): plain HTTP to the ALB's name.
        assert_eq!(api_origin(alb, false, None, None), (alb.to_string(), false));
        assert_eq!(
            api_origin(alb, false, Some("origin.example.com"), old),
            (alb.to_string(), false)
        );
        // HTTPS on a certificate not covering the origin name (its replacement pending):
        // the current HTTPS origin stays; never an HTTP one (the ALB redirects HTTP then).
        assert_eq!(
            api_origin(alb, true, None, old),
            ("origin.example.com".to_string(), true)
        );
        assert_eq!(
            api_origin(alb, true, None, Some((alb, false))),
            (alb.to_string(), true)
        );
        assert_eq!(api_origin(alb, true, None, None), (alb.to_string(), true));

        assert_eq!(
            origin_dns_record("origin.example.com", alb),
            json!({"name": "origin.example.com", "type": "CNAME", "value": alb})
        );
    }

    #[test]
    fn grants() {
        let s = grant_statement(
            "b",
            &Access::Oac {
                distribution_arn: "arn:aws:cloudfront::1:distribution/D".into(),
            },
        );
        assert_eq!(s["Principal"]["Service"], "cloudfront.amazonaws.com");
        assert_eq!(
            s["Condition"]["StringEquals"]["AWS:SourceArn"],
            "arn:aws:cloudfront::1:distribution/D"
        );
        assert_eq!(s["Resource"], "arn:aws:s3:::b/*");
        let s = grant_statement(
            "b",
            &Access::Oai {
                oai_id: "E1".into(),
            },
        );
        assert_eq!(
            s["Principal"]["AWS"],
            "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E1"
        );
    }
}
