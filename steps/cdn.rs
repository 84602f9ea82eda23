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
//! settings of `steps/log_bucket.rs`: ACLs enabled with `BucketOwnerPreferred`, as standard
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
//! Teardown is the dance CloudFront enforces: get the config and its ETag, disable it (with
//! that ETag: every update needs the current one and returns a new one), wait until the
//! disabled configuration is deployed, delete it with the latest ETag; then the grant in the
//! bucket policy (if the bucket is still there) and the OAC or OAI. A run interrupted while
//! the disabled distribution was deploying resumes with the wait, not a second update.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomOriginConfig,
    DefaultCacheBehavior, DistributionConfig, DistributionConfigWithTags, HttpVersion,
    LoggingConfig, Method, MinimumProtocolVersion, OriginAccessControlConfig,
    OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginProtocolPolicy, OriginSslProtocols, Origins,
    PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod, Tag, Tags, ViewerCertificate,
    ViewerProtocolPolicy,
};
use serde_json::{json, Value};

use crate::aws::{AwsErrorKind, AwsResultExt, NotFoundOk};
use crate::config::OriginAccess;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::log_bucket::{self, LogBucketSpec};
use crate::steps::storage::BUCKET;
use crate::steps::{certificate, iam, kms, storage, waf};

pub const DISTRIBUTION: &str = "cloudfront:distribution";
pub const OAC: &str = "cloudfront:origin-access-control";
pub const OAI: &str = "cloudfront:origin-access-identity";

/// Output keys.
pub const OUT_DISTRIBUTION_ID: &str = "cdn_distribution_id";
pub const OUT_DOMAIN_NAME: &str = "cdn_domain_name";
pub const OUT_OAI_ID: &str = "cdn_oai_id";
/// The DNS record the origin name needs (`{"name", "type": "CNAME", "value": <ALB DNS name>}`),
/// published whenever a certificate is configured.
pub const OUT_ALB_ORIGIN_DNS_RECORD: &str = "alb_origin_dns_record";
/// The access-log bucket's name (with `cdn.access_logs`).
pub const OUT_LOG_BUCKET: &str = "cdn_log_bucket";
const OUTPUTS: [&str; 5] = [
    OUT_DISTRIBUTION_ID,
    OUT_DOMAIN_NAME,
    OUT_OAI_ID,
    OUT_ALB_ORIGIN_DNS_RECORD,
    OUT_LOG_BUCKET,
];

/// Key prefix of the access logs in the log bucket.
pub const LOG_PREFIX: &str = "cdn/";
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

/// The domain name CloudFront's `Logging.Bucket` takes: `<bucket>.s3.amazonaws.com`.
pub fn log_bucket_domain(bucket: &str) -> String {
    format!("{bucket}.s3.amazonaws.com")
}

/// What the log bucket must look like: ACLs enabled (`BucketOwnerPreferred`), as CloudFront
/// standard logging writes every log file with an ACL granting its `awslogsdelivery` account
/// (and fails `InvalidArgument` "... does not enable ACL access" on a bucket without ACLs);
/// with `BucketOwnerPreferred` those objects still belong to the bucket owner. Private,
/// versioned, SSE-S3, TLS only, logs expiring after [`LOG_EXPIRY_DAYS`] (see `log_bucket`).
/// No delivery statement in the policy: legacy delivery works through the bucket ACL, which
/// CloudFront itself adds when the distribution is created or updated.
pub fn log_bucket_spec(bucket: &str) -> Result<LogBucketSpec> {
    Ok(LogBucketSpec {
        name: bucket.to_string(),
        purpose: "cdn-logs",
        statements: vec![storage::tls_only_statement(bucket)],
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

/// `Sid` of this step's statement in the stack key's policy. The kms step sets the key policy
/// only when it creates the key; anything that ever rewrites that policy must keep this one.
pub const KEY_SID: &str = "CloudFrontDecryptsAssets";

/// Origin IDs inside the distribution.
pub const S3_ORIGIN_ID: &str = "assets-s3";
pub const ALB_ORIGIN_ID: &str = "api-alb";

/// AWS-managed cache and origin request policies (their IDs are the same in every account).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
pub const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// `Sid`s of this step's statements in the assets bucket policy.
pub const OAC_SID: &str = "AllowCloudFrontOacRead";
pub const OAI_SID: &str = "AllowCloudFrontOaiRead";

/// CloudFront takes 5-15 minutes to deploy a change (and to deploy a disable); generous.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(45 * 60);

pub struct Cdn;

/// The comment that identifies the stack's distribution (CloudFront has no names).
pub fn distribution_comment(suffix: &str) -> String {
    format!("fintech-infra {suffix}: static assets and API")
}

/// The OAI's comment (and caller reference suffix): OAIs have no names either.
pub fn oai_comment(suffix: &str) -> String {
    format!("oai-assets-{suffix}")
}

/// The principal an OAI has in bucket policies.
pub fn oai_principal(oai_id: &str) -> String {
    format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai_id}")
}

/// The bucket policy statement that lets CloudFront read the assets.
pub fn grant_statement(bucket: &str, access: &Access) -> Value {
    let objects = format!("{}/*", storage::bucket_arn(bucket));
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

/// A distribution's ARN: `arn:<partition>:cloudfront::<account>:distribution/<id>` (CloudFront
/// is global: no region).
pub fn distribution_arn(partition: &str, account: &str, id: &str) -> String {
    format!("arn:{partition}:cloudfront::{account}:distribution/{id}")
}

/// The key policy statement that lets this distribution's OAC have S3 decrypt the SSE-KMS
/// assets (AWS's documented statement for OAC with SSE-KMS; reads need only `kms:Decrypt`).
pub fn key_statement(distribution_arn: &str) -> Value {
    json!({
        "Sid": KEY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    })
}

/// A policy document's statements as a list (IAM also allows a single object).
fn policy_statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The key policy with `stmt` in place of the statement(s) with its `Sid` (or appended);
/// every other statement and top-level field is kept as it is. `None` when the policy already
/// holds exactly that statement once: nothing to write.
pub fn merge_key_policy(current: &str, stmt: &Value) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(current).context("the key policy is not JSON")?;
    let sid = &stmt["Sid"];
    let mut statements = policy_statements(&doc);
    let same: Vec<&Value> = statements.iter().filter(|s| &s["Sid"] == sid).collect();
    if same.len() == 1 && same[0] == stmt {
        return Ok(None);
    }
    match statements.iter().position(|s| &s["Sid"] == sid) {
        Some(i) => {
            statements[i] = stmt.clone();
            let mut first = true;
            statements.retain(|s| {
                if &s["Sid"] != sid {
                    return true;
                }
                std::mem::replace(&mut first, false)
            });
        }
        None => statements.push(stmt.clone()),
    }
    let obj = doc
        .as_object_mut()
        .context("the key policy is not a JSON object")?;
    obj.entry("Version").or_insert_with(|| json!("2012-10-17"));
    obj.insert("Statement".into(), Value::Array(statements));
    Ok(Some(doc.to_string()))
}

/// The key policy without the statements with `sid`; `None` if it has none (nothing to do).
/// Never empty: the key's administration statements stay.
pub fn key_policy_without(current: &str, sid: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(current).context("the key policy is not JSON")?;
    let statements = policy_statements(&doc);
    let kept: Vec<Value> = statements
        .iter()
        .filter(|s| s["Sid"] != sid)
        .cloned()
        .collect();
    if kept.len() == statements.len() {
        return Ok(None);
    }
    let obj = doc
        .as_object_mut()
        .context("the key policy is not a JSON object")?;
    obj.insert("Statement".into(), Value::Array(kept));
    Ok(Some(doc.to_string()))
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

/// The distribution's `/api/*` origin as it is: `(domain name, https-only)`.
pub fn current_api_origin(c: &DistributionConfig) -> Option<(String, bool)> {
    let o = c
        .origins()?
        .items()
        .iter()
        .find(|o| o.id() == ALB_ORIGIN_ID)?;
    let custom = o.custom_origin_config()?;
    Some((
        o.domain_name().to_string(),
        custom.origin_protocol_policy() == &OriginProtocolPolicy::HttpsOnly,
    ))
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

/// What the distribution must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDistribution {
    pub caller_reference: String,
    pub comment: String,
    /// `<bucket>.s3.<region>.amazonaws.com`
    pub bucket_domain: String,
    /// OAC ID (oac mode) or OAI ID (oai mode).
    pub oac_id: Option<String>,
    pub oai_id: Option<String>,
    pub price_class: &'static str,
    /// The ALB origin: DNS name and whether it listens on HTTPS.
    pub alb: Option<(String, bool)>,
    pub certificate_arn: Option<String>,
    /// What `/` serves (`cdn.default_root_object`).
    pub default_root_object: String,
    /// Standard access logging to this bucket (its name), under [`LOG_PREFIX`]; `None`: off.
    pub log_bucket: Option<String>,
    /// The CLOUDFRONT-scope web ACL's ARN (`[waf] enabled`); `None`: no web ACL.
    pub web_acl_arn: Option<String>,
}

fn methods(m: &[Method]) -> Result<AllowedMethods> {
    AllowedMethods::builder()
        .quantity(m.len() as i32)
        .set_items(Some(m.to_vec()))
        .cached_methods(
            CachedMethods::builder()
                .quantity(2)
                .items(Method::Get)
                .items(Method::Head)
                .build()
                .context("building cached methods")?,
        )
        .build()
        .context("building allowed methods")
}

impl DesiredDistribution {
    /// The `Logging` element: standard logging to the log bucket, or off (CloudFront wants
    /// every field even then, with an empty bucket and prefix).
    pub fn logging(&self) -> LoggingConfig {
        let (enabled, bucket, prefix) = match &self.log_bucket {
            Some(b) => (true, log_bucket_domain(b), LOG_PREFIX.to_string()),
            None => (false, String::new(), String::new()),
        };
        LoggingConfig::builder()
            .enabled(enabled)
            // Cookies can carry session tokens: not in the logs.
            .include_cookies(false)
            .bucket(bucket)
            .prefix(prefix)
            .build()
    }

    /// The full distribution config.
    pub fn config(&self) -> Result<DistributionConfig> {
        let read_only = [Method::Get, Method::Head];
        let mut origins = vec![aws_sdk_cloudfront::types::Origin::builder()
            .id(S3_ORIGIN_ID)
            .domain_name(&self.bucket_domain)
            .set_origin_access_control_id(self.oac_id.clone())
            .s3_origin_config(
                S3OriginConfig::builder()
                    // Empty with OAC; `origin-access-identity/cloudfront/<id>` with an OAI.
                    .origin_access_identity(
                        self.oai_id
                            .as_ref()
                            .map(|id| format!("origin-access-identity/cloudfront/{id}"))
                            .unwrap_or_default(),
                    )
                    .build(),
            )
            .build()
            .context("building the S3 origin")?];
        let static_behavior = CacheBehavior::builder()
            .path_pattern("/static/*")
            .target_origin_id(S3_ORIGIN_ID)
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
            .cache_policy_id(CACHING_OPTIMIZED)
            .compress(true)
            .allowed_methods(methods(&read_only)?)
            .build()
            .context("building the /static/* behaviour")?;
        let mut behaviors = vec![static_behavior];
        if let Some((dns, https)) = &self.alb {
            let policy = if *https {
                OriginProtocolPolicy::HttpsOnly
            } else {
                // An ALB without a certificate only listens on HTTP.
                OriginProtocolPolicy::HttpOnly
            };
            origins.push(
                aws_sdk_cloudfront::types::Origin::builder()
                    .id(ALB_ORIGIN_ID)
                    .domain_name(dns)
                    .custom_origin_config(
                        CustomOriginConfig::builder()
                            .http_port(80)
                            .https_port(443)
                            .origin_protocol_policy(policy)
                            .origin_ssl_protocols(
                                OriginSslProtocols::builder()
                                    .quantity(1)
                                    .items(SslProtocol::TlSv12)
                                    .build()
                                    .context("building origin TLS protocols")?,
                            )
                            .build()
                            .context("building the ALB origin config")?,
                    )
                    .build()
                    .context("building the ALB origin")?,
            );
            behaviors.push(
                CacheBehavior::builder()
                    .path_pattern("/api/*")
                    .target_origin_id(ALB_ORIGIN_ID)
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .cache_policy_id(CACHING_DISABLED)
                    .origin_request_policy_id(ALL_VIEWER_EXCEPT_HOST_HEADER)
                    .compress(true)
                    .allowed_methods(methods(&[
                        Method::Get,
                        Method::Head,
                        Method::Options,
                        Method::Put,
                        Method::Patch,
                        Method::Post,
                        Method::Delete,
                    ])?)
                    .build()
                    .context("building the /api/* behaviour")?,
            );
        }
        // With CloudFront's default certificate (*.cloudfront.net) AWS forces the TLSv1
        // security policy whatever is asked; TLS 1.2 as the minimum needs a custom certificate.
        let cert = match &self.certificate_arn {
            Some(arn) => ViewerCertificate::builder()
                .acm_certificate_arn(arn)
                .ssl_support_method(SslSupportMethod::SniOnly)
                .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
                .cloud_front_default_certificate(false)
                .build(),
            None => ViewerCertificate::builder()
                .cloud_front_default_certificate(true)
                .minimum_protocol_version(MinimumProtocolVersion::TlSv1)
                .build(),
        };
        DistributionConfig::builder()
            .caller_reference(&self.caller_reference)
            .comment(&self.comment)
            .enabled(true)
            .price_class(PriceClass::from(self.price_class))
            .http_version(HttpVersion::Http2and3)
            .is_ipv6_enabled(true)
            .default_root_object(&self.default_root_object)
            .logging(self.logging())
            // WAFv2 takes the ACL's ARN here (WAF Classic took its ID); "" means none.
            .web_acl_id(self.web_acl_arn.clone().unwrap_or_default())
            .origins(
                Origins::builder()
                    .quantity(origins.len() as i32)
                    .set_items(Some(origins))
                    .build()
                    .context("building origins")?,
            )
            .default_cache_behavior(
                DefaultCacheBehavior::builder()
                    .target_origin_id(S3_ORIGIN_ID)
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .cache_policy_id(CACHING_OPTIMIZED)
                    .compress(true)
                    .allowed_methods(methods(&read_only)?)
                    .build()
                    .context("building the default behaviour")?,
            )
            .cache_behaviors(
                CacheBehaviors::builder()
                    .quantity(behaviors.len() as i32)
                    .set_items(Some(behaviors))
                    .build()
                    .context("building cache behaviours")?,
            )
            .viewer_certificate(cert)
            .build()
            .context("building the distribution config")
    }
}

/// A comparable summary of the parts of a distribution config this tool manages.
pub fn signature(c: &DistributionConfig) -> String {
    let mut origins: Vec<String> = c
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            format!(
                "{}>{} oac={} oai={} custom={}",
                o.id(),
                o.domain_name(),
                o.origin_access_control_id().unwrap_or(""),
                o.s3_origin_config()
                    .map(|s| s.origin_access_identity())
                    .unwrap_or(""),
                o.custom_origin_config()
                    .map(|x| {
                        let mut tls: Vec<&str> = x
                            .origin_ssl_protocols()
                            .map(|p| p.items().iter().map(|i| i.as_str()).collect())
                            .unwrap_or_default();
                        tls.sort();
                        format!(
                            "{} {}/{} {}",
                            x.origin_protocol_policy().as_str(),
                            x.http_port(),
                            x.https_port(),
                            tls.join(",")
                        )
                    })
                    .unwrap_or_default()
            )
        })
        .collect();
    origins.sort();
    let d = c.default_cache_behavior();
    let default = d.map(|d| {
        format!(
            "{} {} {}",
            d.target_origin_id(),
            d.viewer_protocol_policy().as_str(),
            d.cache_policy_id().unwrap_or("")
        )
    });
    let mut behaviors: Vec<String> = c
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
        .iter()
        .map(|b| {
            format!(
                "{}>{} {} {} {}",
                b.path_pattern(),
                b.target_origin_id(),
                b.viewer_protocol_policy().as_str(),
                b.cache_policy_id().unwrap_or(""),
                b.origin_request_policy_id().unwrap_or("")
            )
        })
        .collect();
    behaviors.sort();
    let cert = c.viewer_certificate().map(|v| {
        format!(
            "{} {} {}",
            v.cloud_front_default_certificate().unwrap_or(false),
            v.acm_certificate_arn().unwrap_or(""),
            v.minimum_protocol_version()
                .map(|m| m.as_str())
                .unwrap_or("")
        )
    });
    let logging = c.logging().map(|l| {
        format!(
            "{} {} {} {}",
            l.enabled(),
            l.include_cookies(),
            l.bucket(),
            l.prefix()
        )
    });
    format!(
        "enabled={} price={} comment={} root={} origins={origins:?} default={default:?} \
         behaviors={behaviors:?} cert={cert:?} logging={logging:?} acl={}",
        c.enabled(),
        c.price_class().map(|p| p.as_str()).unwrap_or(""),
        c.comment(),
        c.default_root_object().unwrap_or(""),
        c.web_acl_id().unwrap_or(""),
    )
}

/// Whether the distribution's managed parts differ from what is wanted. An origin read back
/// with neither `S3OriginConfig` nor `CustomOriginConfig` (AWS always returns one of them;
/// moto's GetDistributionConfig drops `S3OriginConfig`) is compared as if it had the wanted
/// one, rather than being "repaired" on every run.
pub fn drifted(current: &DistributionConfig, desired: &DistributionConfig) -> bool {
    let mut current = current.clone();
    let wanted = desired.origins().map(|o| o.items()).unwrap_or_default();
    if let Some(origins) = current.origins.as_mut() {
        for o in origins.items.iter_mut() {
            if o.s3_origin_config.is_none() && o.custom_origin_config.is_none() {
                o.s3_origin_config = wanted
                    .iter()
                    .find(|w| w.id() == o.id())
                    .and_then(|w| w.s3_origin_config.clone());
            }
        }
    }
    signature(&current) != signature(desired)
}

/// `current` with the managed parts replaced by `want`'s (the default root object, the
/// standard logging and the web ACL included); everything else (aliases, geo restrictions)
/// is kept, and so is the caller reference, which cannot change.
fn merged(current: &DistributionConfig, want: DistributionConfig) -> DistributionConfig {
    let mut c = current.clone();
    c.comment = want.comment;
    c.enabled = want.enabled;
    c.price_class = want.price_class;
    c.origins = want.origins;
    c.default_cache_behavior = want.default_cache_behavior;
    c.cache_behaviors = want.cache_behaviors;
    c.viewer_certificate = want.viewer_certificate;
    c.default_root_object = want.default_root_object;
    c.logging = want.logging;
    c.web_acl_id = want.web_acl_id;
    c
}

fn cf_tags(pairs: Vec<(String, String)>) -> Result<Tags> {
    let items = pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building CloudFront tags")?;
    Ok(Tags::builder().set_items(Some(items)).build())
}

/// A distribution's configuration and the ETag an update must quote.
type ConfigAndEtag = (aws_sdk_cloudfront::types::DistributionConfig, String);

impl Cdn {
    /// The stack's distribution: the recorded one, else the one with this stack's comment and
    /// stack tag. Returns its ID, ARN and domain name, and for the recorded one also its
    /// configuration and ETag (GetDistribution carries both, which saves the drift check a
    /// GetDistributionConfig).
    async fn find_distribution(
        ctx: &StepCtx,
        comment: &str,
    ) -> Result<Option<(String, String, String, Option<ConfigAndEtag>)>> {
        let cf = ctx.aws().cloudfront();
        for rec in ctx.records(Some(DISTRIBUTION)) {
            let out = cf
                .get_distribution()
                .id(&rec.id)
                .send()
                .await
                .aws("cloudfront:GetDistribution", &rec.id)
                .not_found_ok()?;
            if let Some(o) = out {
                let etag = o.e_tag;
                if let Some(d) = o.distribution {
                    let config = d.distribution_config.zip(etag);
                    return Ok(Some((d.id, d.arn, d.domain_name, config)));
                }
            }
        }
        let mut marker: Option<String> = None;
        loop {
            let out = cf
                .list_distributions()
                .set_marker(marker.clone())
                .send()
                .await
                .aws("cloudfront:ListDistributions", comment)?;
            let Some(list) = out.distribution_list else {
                return Ok(None);
            };
            for d in list.items() {
                if d.comment() != comment {
                    continue;
                }
                let tags = cf
                    .list_tags_for_resource()
                    .resource(d.arn())
                    .send()
                    .await
                    .aws("cloudfront:ListTagsForResource", d.id())?;
                let ours = tags
                    .tags()
                    .map(|t| t.items())
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t.key() == STACK_TAG && t.value() == Some(ctx.suffix()));
                if ours {
                    return Ok(Some((
                        d.id().to_string(),
                        d.arn().to_string(),
                        d.domain_name().to_string(),
                        None,
                    )));
                }
            }
            match list.next_marker {
                Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m),
                _ => return Ok(None),
            }
        }
    }

    /// The origin access control `oac-assets-<s>`, created if missing, drift repaired.
    async fn ensure_oac(ctx: &StepCtx) -> Result<Found> {
        let cf = ctx.aws().cloudfront();
        let name = ctx.names().with_purpose("oac", "assets");
        let mut existing = None;
        let mut marker: Option<String> = None;
        loop {
            let out = cf
                .list_origin_access_controls()
                .set_marker(marker.clone())
                .send()
                .await
                .aws("cloudfront:ListOriginAccessControls", &name)?;
            let Some(list) = out.origin_access_control_list else {
                break;
            };
            if let Some(o) = list.items().iter().find(|o| o.name() == name) {
                existing = Some(o.clone());
                break;
            }
            match list.next_marker {
                Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m),
                _ => break,
            }
        }
        let config = || {
            OriginAccessControlConfig::builder()
                .name(&name)
                .description(format!(
                    "fintech-infra {}: CloudFront reads the assets bucket",
                    ctx.suffix()
                ))
                .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
                .signing_behavior(OriginAccessControlSigningBehaviors::Always)
                .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
                .build()
                .context("building the origin access control config")
        };
        let drifted = existing.as_ref().is_some_and(|o| {
            o.signing_protocol() != &OriginAccessControlSigningProtocols::Sigv4
                || o.signing_behavior() != &OriginAccessControlSigningBehaviors::Always
                || o.origin_access_control_origin_type() != &OriginAccessControlOriginTypes::S3
        });
        let found = ctx
            .ensure(
                OAC,
                &name,
                || async { Ok(existing.as_ref().map(|o| Found::new(o.id()))) },
                || async {
                    let out = cf
                        .create_origin_access_control()
                        .origin_access_control_config(config()?)
                        .send()
                        .await
                        .aws("cloudfront:CreateOriginAccessControl", &name)?;
                    let oac = out
                        .origin_access_control
                        .context("CreateOriginAccessControl returned nothing")?;
                    Ok(Found::new(oac.id))
                },
            )
            .await?;
        if drifted {
            ctx.change(
                OAC,
                &name,
                "sign every request with SigV4 (S3 origin)",
                || async {
                    let etag = cf
                        .get_origin_access_control()
                        .id(&found.id)
                        .send()
                        .await
                        .aws("cloudfront:GetOriginAccessControl", &found.id)?
                        .e_tag;
                    cf.update_origin_access_control()
                        .id(&found.id)
                        .set_if_match(etag)
                        .origin_access_control_config(config()?)
                        .send()
                        .await
                        .aws("cloudfront:UpdateOriginAccessControl", &found.id)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok(found)
    }

    /// Deletes an OAC or OAI (needs its current ETag). Not found counts as deleted.
    async fn delete_access(ctx: &StepCtx, kind: &str, id: &str) -> Result<()> {
        let cf = ctx.aws().cloudfront();
        if kind == OAC {
            let got = cf
                .get_origin_access_control()
                .id(id)
                .send()
                .await
                .aws("cloudfront:GetOriginAccessControl", id)
                .not_found_ok()?;
            if let Some(o) = got {
                cf.delete_origin_access_control()
                    .id(id)
                    .set_if_match(o.e_tag)
                    .send()
                    .await
                    .aws("cloudfront:DeleteOriginAccessControl", id)
                    .not_found_ok()?;
            }
        } else {
            let got = cf
                .get_cloud_front_origin_access_identity()
                .id(id)
                .send()
                .await
                .aws("cloudfront:GetCloudFrontOriginAccessIdentity", id)
                .not_found_ok()?;
            if let Some(o) = got {
                cf.delete_cloud_front_origin_access_identity()
                    .id(id)
                    .set_if_match(o.e_tag)
                    .send()
                    .await
                    .aws("cloudfront:DeleteCloudFrontOriginAccessIdentity", id)
                    .not_found_ok()?;
            }
        }
        Ok(())
    }

    /// Waits until the distribution's configuration is deployed everywhere; returns its
    /// current ETag, or `None` if it is gone.
    async fn wait_deployed(ctx: &StepCtx, id: &str) -> Result<Option<String>> {
        let cf = ctx.aws().cloudfront();
        ctx.wait_for(
            &format!("CloudFront distribution {id} to be deployed"),
            DEPLOY_TIMEOUT,
            || async {
                let out = cf
                    .get_distribution()
                    .id(id)
                    .send()
                    .await
                    .aws("cloudfront:GetDistribution", id)
                    .not_found_ok()?;
                Ok(match out {
                    None => Some(None),
                    Some(o) => {
                        let deployed = o
                            .distribution
                            .as_ref()
                            .is_some_and(|d| d.status() == "Deployed");
                        deployed.then_some(o.e_tag)
                    }
                })
            },
        )
        .await
    }

    /// Disables (unless already disabled), waits for the disable to deploy, deletes. Safe to
    /// rerun at any point.
    async fn delete_distribution(ctx: &StepCtx, id: &str) -> Result<()> {
        let cf = ctx.aws().cloudfront();
        for _attempt in 0..5 {
            ctx.check_cancelled()?;
            let Some(out) = cf
                .get_distribution_config()
                .id(id)
                .send()
                .await
                .aws("cloudfront:GetDistributionConfig", id)
                .not_found_ok()?
            else {
                return Ok(());
            };
            let config = out
                .distribution_config
                .context("GetDistributionConfig returned no config")?;
            if config.enabled {
                let mut disabled = config.clone();
                disabled.enabled = false;
                ctx.note("disabling the CloudFront distribution");
                let r = cf
                    .update_distribution()
                    .id(id)
                    .set_if_match(out.e_tag.clone())
                    .distribution_config(disabled)
                    .send()
                    .await
                    .aws("cloudfront:UpdateDistribution", id);
                match r {
                    Ok(_) => {}
                    // Changed between our read and update: read again.
                    Err(e) if e.code.as_deref() == Some("PreconditionFailed") => continue,
                    Err(e) if e.is_not_found() => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
            // Disabled (now or by an earlier run): CloudFront deletes it only once the
            // disabled configuration is deployed.
            let Some(etag) = Self::wait_deployed(ctx, id).await? else {
                return Ok(());
            };
            ctx.check_cancelled()?;
            let r = cf
                .delete_distribution()
                .id(id)
                .if_match(etag)
                .send()
                .await
                .aws("cloudfront:DeleteDistribution", id);
            match r {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                // Re-enabled or changed meanwhile: start over.
                Err(e)
                    if matches!(
                        e.code.as_deref(),
                        Some("PreconditionFailed" | "DistributionNotDisabled")
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
        bail!("CloudFront distribution {id} kept changing while being deleted; run down again")
    }

    /// Removes this step's grants from the assets bucket policy, if the bucket is still there.
    async fn remove_grant(ctx: &StepCtx, bucket: &str) -> Result<()> {
        let policy = match storage::get_policy(ctx, bucket).await {
            Ok(p) => p,
            Err(e) if crate::aws::find_aws_error(&e).is_some_and(|a| a.is_not_found()) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        if let Some(new) = storage::remove_statements(policy.as_deref(), &[OAC_SID, OAI_SID])? {
            ctx.check_cancelled()?;
            storage::set_policy(ctx, bucket, new).await?;
        }
        Ok(())
    }

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

    /// Makes sure the stack key's policy has [`key_statement`] for this distribution (every
    /// other statement kept): without it S3 cannot decrypt the SSE-KMS assets for CloudFront
    /// and every object answers 403. Written only when missing or different; `up` restores
    /// it if someone removed it. `as_change`: report it as a change (an existing distribution)
    /// rather than as part of creating one.
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
        let edge = ctx.in_region(waf::CLOUDFRONT_REGION);
        let name = ctx.names().of("waf-cdn");
        waf::ensure_web_acl(
            &edge,
            aws_sdk_wafv2::types::Scope::Cloudfront,
            &name,
            "CloudFront",
            cfg.rate_limit.0,
        )
        .await
        .map(Some)
    }

    async fn ensure_key_grant(
        ctx: &StepCtx,
        key_arn: &str,
        distribution_id: &str,
        as_change: bool,
    ) -> Result<()> {
        let account = ctx.account_id().await?;
        let arn = distribution_arn(iam::partition_of(key_arn), &account, distribution_id);
        let kms = ctx.aws().kms();
        let current = kms
            .get_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .send()
            .await
            .aws("kms:GetKeyPolicy", key_arn)?
            .policy
            .unwrap_or_default();
        let Some(policy) = merge_key_policy(&current, &key_statement(&arn))? else {
            return Ok(());
        };
        let apply = || async {
            kms.put_key_policy()
                .key_id(key_arn)
                .policy_name("default")
                .policy(policy)
                .send()
                .await
                .aws("kms:PutKeyPolicy", key_arn)?;
            Ok(())
        };
        let key_name = format!("fintech-{}", ctx.suffix());
        if as_change {
            ctx.change(
                kms::KEY,
                &key_name,
                &format!("key policy: let CloudFront decrypt the assets for {arn} ({KEY_SID})"),
                apply,
            )
            .await
        } else {
            ctx.check_cancelled()?;
            apply().await
        }
    }

    /// Removes this step's statement from the key policy, if the key is still there and
    /// usable (the kms step schedules its deletion after this step's `down`).
    async fn remove_key_grant(ctx: &StepCtx, key_arn: &str) -> Result<()> {
        let kms = ctx.aws().kms();
        let got = kms
            .get_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .send()
            .await
            .aws("kms:GetKeyPolicy", key_arn);
        let current = match got {
            Ok(o) => o.policy.unwrap_or_default(),
            Err(e)
                if matches!(
                    e.kind(),
                    AwsErrorKind::NotFound | AwsErrorKind::InvalidState
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(e.into()),
        };
        let Some(policy) = key_policy_without(&current, KEY_SID)? else {
            return Ok(());
        };
        ctx.check_cancelled()?;
        match kms
            .put_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .aws("kms:PutKeyPolicy", key_arn)
        {
            Ok(_) => Ok(()),
            // Gone or pending deletion already: nothing is granted any more.
            Err(e)
                if matches!(
                    e.kind(),
                    AwsErrorKind::NotFound | AwsErrorKind::InvalidState
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
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
        let cf = ctx.aws().cloudfront();
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
        let oac = Self::ensure_oac(ctx).await?;
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

        let existing = Self::find_distribution(ctx, &comment).await?;
        let existed = existing.is_some();
        let read_config = existing.as_ref().and_then(|e| e.3.clone());
        let dist = ctx
            .ensure(
                DISTRIBUTION,
                &comment,
                || async {
                    Ok(existing.map(|(id, arn, domain, _)| {
                        Found::new(id).arn(arn).attr("domain_name", domain)
                    }))
                },
                || async {
                    let tags = cf_tags(ctx.tags(Some(&format!("cdn-{}", ctx.suffix()))))?;
                    let out = cf
                        .create_distribution_with_tags()
                        .distribution_config_with_tags(
                            DistributionConfigWithTags::builder()
                                .distribution_config(want.config()?)
                                .tags(tags)
                                .build(),
                        )
                        .send()
                        .await
                        .aws("cloudfront:CreateDistributionWithTags", &comment)?;
                    let d = out
                        .distribution
                        .context("CreateDistributionWithTags returned no distribution")?;
                    Ok(Found::new(d.id)
                        .arn(d.arn)
                        .attr("domain_name", d.domain_name))
                },
            )
            .await?;
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
            let tags = cf
                .list_tags_for_resource()
                .resource(&arn)
                .send()
                .await
                .aws("cloudfront:ListTagsForResource", &dist.id)?;
            let have: Vec<(String, String)> = tags
                .tags()
                .map(|t| t.items())
                .unwrap_or_default()
                .iter()
                .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
                .collect();
            let want_tags = ctx.tags(Some(&format!("cdn-{}", ctx.suffix())));
            if !want_tags.iter().all(|t| have.contains(t)) {
                ctx.change(DISTRIBUTION, &comment, "set tags", || async {
                    cf.tag_resource()
                        .resource(&arn)
                        .tags(cf_tags(want_tags.clone())?)
                        .send()
                        .await
                        .aws("cloudfront:TagResource", &dist.id)?;
                    Ok(())
                })
                .await?;
            }
            // Configuration drift.
            if inputs_known {
                let (current, etag) = match read_config {
                    Some((config, etag)) => (config, Some(etag)),
                    None => {
                        let out = cf
                            .get_distribution_config()
                            .id(&dist.id)
                            .send()
                            .await
                            .aws("cloudfront:GetDistributionConfig", &dist.id)?;
                        let config = out
                            .distribution_config
                            .context("GetDistributionConfig returned no config")?;
                        (config, out.e_tag)
                    }
                };
                let mut want = want.clone();
                if let Some(a) = &alb_inputs {
                    let now = current_api_origin(&current);
                    want.alb = Some(a.origin(now.as_ref().map(|(d, h)| (d.as_str(), *h))));
                }
                let desired = merged(&current, want.config()?);
                if drifted(&current, &desired) {
                    ctx.change(
                        DISTRIBUTION,
                        &comment,
                        "update origins, cache behaviours, price class, certificate, default root object, \
                         access logging or web ACL",
                        || async {
                            cf.update_distribution()
                                .id(&dist.id)
                                .set_if_match(etag)
                                .distribution_config(desired)
                                .send()
                                .await
                                .aws("cloudfront:UpdateDistribution", &dist.id)?;
                            Ok(())
                        },
                    )
                    .await?;
                }
            }
        }

        // The bucket policy grant for this distribution's OAC (replacing the grant of an OAI
        // an earlier version made).
        if !is_pending(&bucket) {
            let access = Access::Oac {
                distribution_arn: arn.clone(),
            };
            let grant = grant_statement(&bucket, &access);
            let current = storage::get_policy(ctx, &bucket).await?;
            let without_stale = match storage::remove_statements(current.as_deref(), &[OAI_SID])? {
                Some(p) => p,
                None => current.clone(),
            };
            let new = storage::upsert_statement(without_stale.as_deref(), &grant)?.or_else(|| {
                (without_stale != current).then(|| without_stale.clone().unwrap_or_default())
            });
            if let Some(policy) = new {
                let what = "bucket policy: grant CloudFront read access";
                let apply = || storage::set_policy(ctx, &bucket, Some(policy));
                if existed {
                    ctx.change(storage::BUCKET, &bucket, what, apply).await?;
                } else {
                    apply().await?;
                }
            }
        }

        // `[waf] enabled` turned off: the distribution no longer names the ACL (updated
        // above), so it can go (WAF refuses to delete an ACL a distribution uses).
        if web_acl.is_none() {
            let edge = ctx.in_region(waf::CLOUDFRONT_REGION);
            if let Some(rec) = edge.records(Some(waf::WEB_ACL)).first() {
                edge.change(
                    waf::WEB_ACL,
                    &rec.name,
                    "remove: [waf] is not enabled",
                    || waf::delete_web_acls(&edge),
                )
                .await?;
            }
        }

        // A stack built in oai mode by an earlier version leaves its OAI unused: remove it now
        // that neither the distribution nor the policy refers to it.
        let unused = OAI;
        for rec in ctx.records(Some(unused)) {
            ctx.change(unused, &rec.name, "delete (no longer used)", || async {
                Self::delete_access(ctx, unused, &rec.id).await
            })
            .await?;
            if !ctx.is_plan() {
                ctx.deleted(unused, &rec.id)?;
            }
        }

        if ctx.should_wait("cdn") {
            Self::wait_deployed(ctx, &dist.id).await?;
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

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        for rec in ctx.records(Some(DISTRIBUTION)) {
            Self::delete_distribution(ctx, &rec.id)
                .await
                .with_context(|| format!("deleting CloudFront distribution {}", rec.id))?;
            ctx.deleted(DISTRIBUTION, &rec.id)?;
        }
        // The storage step deletes the bucket after this; should it survive (its step failed,
        // or it is kept), it must not go on granting a deleted distribution or identity.
        if let Some(bucket) = ctx
            .output(storage::OUT_ASSETS_BUCKET)
            .and_then(|v| v.as_str().map(str::to_string))
        {
            Self::remove_grant(ctx, &bucket).await?;
        }
        // Likewise the key (the kms step schedules its deletion next, but it may survive).
        if let Some(key_arn) = ctx
            .output(kms::OUT_KEY_ARN)
            .and_then(|v| v.as_str().map(str::to_string))
        {
            Self::remove_key_grant(ctx, &key_arn).await?;
        }
        for kind in [OAC, OAI] {
            for rec in ctx.records(Some(kind)) {
                ctx.check_cancelled()?;
                Self::delete_access(ctx, kind, &rec.id).await?;
                ctx.deleted(kind, &rec.id)?;
            }
        }
        // The web ACL, once no distribution names it.
        waf::delete_web_acls(&ctx.in_region(waf::CLOUDFRONT_REGION)).await?;
        // The access-log bucket, once no distribution delivers to it: every log version
        // and delete marker, then the bucket.
        crate::resources::delete_recorded(ctx, BUCKET).await?;
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let cf = ctx.aws().cloudfront();
        Ok(match rec.kind.as_str() {
            waf::WEB_ACL => waf::probe_web_acl(&ctx.in_region(&rec.region), rec).await?,
            DISTRIBUTION => cf
                .get_distribution()
                .id(&rec.id)
                .send()
                .await
                .aws("cloudfront:GetDistribution", &rec.id)
                .not_found_ok()?
                .and_then(|o| o.distribution)
                .map(|d| {
                    let enabled = d
                        .distribution_config()
                        .map(|c| if c.enabled() { "enabled" } else { "disabled" })
                        .unwrap_or("");
                    format!("{} ({enabled})", d.status())
                }),
            OAC => cf
                .get_origin_access_control()
                .id(&rec.id)
                .send()
                .await
                .aws("cloudfront:GetOriginAccessControl", &rec.id)
                .not_found_ok()?
                .map(|_| "exists".to_string()),
            BUCKET => crate::resources::s3::bucket::exists(ctx, &rec.id)
                .await?
                .then(|| "exists".to_string()),
            _ => cf
                .get_cloud_front_origin_access_identity()
                .id(&rec.id)
                .send()
                .await
                .aws("cloudfront:GetCloudFrontOriginAccessIdentity", &rec.id)
                .not_found_ok()?
                .map(|_| "exists".to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(alb: Option<(String, bool)>, cert: Option<&str>) -> DesiredDistribution {
        DesiredDistribution {
            caller_reference: "ref".into(),
            comment: distribution_comment("s"),
            bucket_domain: "b.s3.us-east-1.amazonaws.com".into(),
            oac_id: Some("OAC1".into()),
            oai_id: None,
            price_class: "PriceClass_100",
            alb,
            certificate_arn: cert.map(str::to_string),
            default_root_object: "index.html".into(),
            log_bucket: Some("fintech-cdnlogs-1-s".into()),
            web_acl_arn: None,
        }
    }

    #[test]
    fn default_root_object_and_logging_are_wanted_and_checked() {
        let c = desired(None, None).config().unwrap();
        assert_eq!(c.default_root_object(), Some("index.html"));
        let l = c.logging().unwrap();
        assert!(l.enabled());
        assert!(!l.include_cookies());
        assert_eq!(l.bucket(), "fintech-cdnlogs-1-s.s3.amazonaws.com");
        assert_eq!(l.prefix(), LOG_PREFIX);

        // Off: the Logging element stays, disabled, with empty bucket and prefix.
        let mut off = desired(None, None);
        off.log_bucket = None;
        let c_off = off.config().unwrap();
        let l = c_off.logging().unwrap();
        assert!(!l.enabled());
        assert_eq!((l.bucket(), l.prefix()), ("", ""));

        // Both are managed: a changed root object or logging is drift, and `merged` puts the
        // wanted ones back (someone else's root object included).
        assert!(drifted(&c_off, &c));
        let mut other_root = c.clone();
        other_root.default_root_object = Some("home.html".into());
        assert!(drifted(&other_root, &c));
        let fixed = merged(&other_root, desired(None, None).config().unwrap());
        assert_eq!(fixed.default_root_object(), Some("index.html"));
        assert!(!drifted(&fixed, &c));
        let fixed = merged(&c_off, desired(None, None).config().unwrap());
        assert!(fixed.logging().unwrap().enabled());
        assert!(!drifted(&fixed, &c));

        let mut custom = desired(None, None);
        custom.default_root_object = "app/index.html".into();
        assert_eq!(
            custom.config().unwrap().default_root_object(),
            Some("app/index.html")
        );

        assert!(check_default_root_object("index.html").is_ok());
        assert!(check_default_root_object("").is_err());
        assert!(check_default_root_object("/index.html").is_err());
        assert!(check_default_root_object(&"a".repeat(256)).is_err());
    }

    #[test]
    fn every_behaviour_redirects_viewers_to_https() {
        for (alb, cert) in [
            (None, None),
            (Some(("alb.example".to_string(), false)), None),
            (
                Some(("origin.example.com".to_string(), true)),
                Some("arn:aws:acm:us-east-1:1:certificate/x"),
            ),
        ] {
            let c = desired(alb, cert).config().unwrap();
            assert_eq!(
                c.default_cache_behavior().unwrap().viewer_protocol_policy(),
                &ViewerProtocolPolicy::RedirectToHttps
            );
            for b in c.cache_behaviors().unwrap().items() {
                assert_eq!(
                    b.viewer_protocol_policy(),
                    &ViewerProtocolPolicy::RedirectToHttps,
                    "{}",
                    b.path_pattern()
                );
            }
        }
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
        assert_eq!(spec.statements, vec![storage::tls_only_statement("b")]);
        let r = &spec.rules[0];
        assert_eq!(r.expiration().and_then(|e| e.days()), Some(LOG_EXPIRY_DAYS));
        assert!(r.noncurrent_version_expiration().is_some());
    }

    #[test]
    fn config_without_alb_has_s3_only() {
        let c = desired(None, None).config().unwrap();
        let origins = c.origins().unwrap().items();
        assert_eq!(origins.len(), 1);
        assert_eq!(origins[0].origin_access_control_id(), Some("OAC1"));
        assert_eq!(
            origins[0]
                .s3_origin_config()
                .unwrap()
                .origin_access_identity(),
            ""
        );
        let b = c.cache_behaviors().unwrap().items();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].path_pattern(), "/static/*");
        assert_eq!(b[0].cache_policy_id(), Some(CACHING_OPTIMIZED));
        let d = c.default_cache_behavior().unwrap();
        assert_eq!(
            d.viewer_protocol_policy(),
            &ViewerProtocolPolicy::RedirectToHttps
        );
        assert_eq!(
            c.viewer_certificate().unwrap().minimum_protocol_version(),
            Some(&MinimumProtocolVersion::TlSv1)
        );
    }

    #[test]
    fn alb_origin_and_api_behaviour() {
        for (https, policy) in [
            (true, OriginProtocolPolicy::HttpsOnly),
            (false, OriginProtocolPolicy::HttpOnly),
        ] {
            let c = desired(Some(("alb.example".into(), https)), None)
                .config()
                .unwrap();
            let alb = c
                .origins()
                .unwrap()
                .items()
                .iter()
                .find(|o| o.id() == ALB_ORIGIN_ID)
                .unwrap();
            assert_eq!(
                alb.custom_origin_config().unwrap().origin_protocol_policy(),
                &policy
            );
            let api = c
                .cache_behaviors()
                .unwrap()
                .items()
                .iter()
                .find(|b| b.path_pattern() == "/api/*")
                .unwrap();
            assert_eq!(api.cache_policy_id(), Some(CACHING_DISABLED));
            assert_eq!(
                api.origin_request_policy_id(),
                Some(ALL_VIEWER_EXCEPT_HOST_HEADER)
            );
            assert_eq!(api.allowed_methods().unwrap().quantity(), 7);
        }
    }

    #[test]
    fn custom_certificate_gets_tls12() {
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/x";
        let c = desired(None, Some(arn)).config().unwrap();
        let v = c.viewer_certificate().unwrap();
        assert_eq!(
            v.minimum_protocol_version(),
            Some(&MinimumProtocolVersion::TlSv122021)
        );
        assert_eq!(v.acm_certificate_arn(), Some(arn));
    }

    #[test]
    fn signature_sees_managed_changes_only() {
        let a = desired(None, None).config().unwrap();
        let same = merged(&a, desired(None, None).config().unwrap());
        assert_eq!(signature(&a), signature(&same));
        let with_alb = merged(
            &a,
            desired(Some(("x".into(), true)), None).config().unwrap(),
        );
        assert_ne!(signature(&a), signature(&with_alb));
        // The web ACL is managed: a foreign one is drift, and `[waf] enabled` sets ours.
        let mut foreign = a.clone();
        foreign.web_acl_id = Some("acl".into());
        let dropped = merged(&foreign, desired(None, None).config().unwrap());
        assert_eq!(dropped.web_acl_id(), Some(""));
        assert!(drifted(&foreign, &dropped));
        let acl = "arn:aws:wafv2:us-east-1:1:global/webacl/waf-cdn-s/i";
        let mut with_acl = desired(None, None);
        with_acl.web_acl_arn = Some(acl.into());
        let set = merged(&a, with_acl.config().unwrap());
        assert_eq!(set.web_acl_id(), Some(acl));
        assert!(drifted(&a, &set));
        // An origin read back without its S3 config is not drift; a wrong one is.
        let mut oai = desired(None, None);
        oai.oac_id = None;
        oai.oai_id = Some("E1".into());
        let want = oai.config().unwrap();
        let mut read_back = want.clone();
        read_back.origins.as_mut().unwrap().items[0].s3_origin_config = None;
        assert!(!drifted(&read_back, &want));
        assert!(drifted(&a, &want));
    }

    #[test]
    fn key_policy_gets_the_distribution_statement_and_keeps_the_others() {
        let arn = distribution_arn("aws", "123456789012", "E2ABC");
        assert_eq!(arn, "arn:aws:cloudfront::123456789012:distribution/E2ABC");
        assert_eq!(
            distribution_arn("aws-cn", "1", "D"),
            "arn:aws-cn:cloudfront::1:distribution/D"
        );
        let stmt = key_statement(&arn);
        assert_eq!(stmt["Sid"], KEY_SID);
        assert_eq!(stmt["Principal"]["Service"], "cloudfront.amazonaws.com");
        assert_eq!(stmt["Action"], "kms:Decrypt");
        assert_eq!(stmt["Resource"], "*");
        assert_eq!(stmt["Condition"]["StringEquals"]["AWS:SourceArn"], arn);

        // The kms step's policy: every statement kept, ours appended.
        let base = kms::key_policy("123456789012", "us-east-1");
        let merged: Value =
            serde_json::from_str(&merge_key_policy(&base.to_string(), &stmt).unwrap().unwrap())
                .unwrap();
        let st = merged["Statement"].as_array().unwrap();
        let before = base["Statement"].as_array().unwrap();
        assert_eq!(st.len(), before.len() + 1);
        assert_eq!(&st[..before.len()], &before[..]);
        assert_eq!(st.last().unwrap(), &stmt);
        assert_eq!(merged["Version"], "2012-10-17");
        // Already there: nothing to write, whatever the whitespace KMS hands back.
        let pretty = serde_json::to_string_pretty(&merged).unwrap();
        assert_eq!(merge_key_policy(&pretty, &stmt).unwrap(), None);

        // Another distribution's (or a hand-edited) statement with our Sid is replaced in
        // place; duplicates of the Sid collapse; other fields (an Id) stay.
        let other = key_statement(&distribution_arn("aws", "123456789012", "EOLD"));
        let doc = json!({
            "Version": "2012-10-17",
            "Id": "key-policy",
            "Statement": [other.clone(), before[0].clone(), other]
        });
        let fixed: Value =
            serde_json::from_str(&merge_key_policy(&doc.to_string(), &stmt).unwrap().unwrap())
                .unwrap();
        assert_eq!(fixed["Id"], "key-policy");
        assert_eq!(fixed["Statement"], json!([stmt.clone(), before[0].clone()]));
        // A single statement object (allowed by the policy grammar) becomes a list.
        let single = json!({"Version": "2012-10-17", "Statement": before[0].clone()});
        let fixed: Value = serde_json::from_str(
            &merge_key_policy(&single.to_string(), &stmt)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(fixed["Statement"], json!([before[0].clone(), stmt.clone()]));
        assert!(merge_key_policy("not json", &stmt).is_err());

        // Removal takes ours only.
        let left: Value = serde_json::from_str(
            &key_policy_without(&merged.to_string(), KEY_SID)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(left["Statement"], base["Statement"]);
        assert_eq!(
            key_policy_without(&base.to_string(), KEY_SID).unwrap(),
            None
        );
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

        let c = desired(
            Some(api_origin(alb, true, Some("origin.example.com"), None)),
            None,
        )
        .config()
        .unwrap();
        let o = c
            .origins()
            .unwrap()
            .items()
            .iter()
            .find(|o| o.id() == ALB_ORIGIN_ID)
            .unwrap();
        assert_eq!(o.domain_name(), "origin.example.com");
        let custom = o.custom_origin_config().unwrap();
        assert_eq!(
            custom.origin_protocol_policy(),
            &OriginProtocolPolicy::HttpsOnly
        );
        assert_eq!(custom.https_port(), 443);
        assert_eq!(
            custom.origin_ssl_protocols().unwrap().items(),
            &[SslProtocol::TlSv12]
        );
        assert_eq!(
            current_api_origin(&c),
            Some(("origin.example.com".to_string(), true))
        );
        assert_eq!(
            current_api_origin(&desired(None, None).config().unwrap()),
            None
        );
        // Moving the origin is drift the next `up` repairs.
        let before = desired(Some((alb.to_string(), true)), None)
            .config()
            .unwrap();
        assert!(drifted(&before, &c));
        let mut tls10 = c.clone();
        tls10.origins.as_mut().unwrap().items[1]
            .custom_origin_config
            .as_mut()
            .unwrap()
            .origin_ssl_protocols = Some(
            OriginSslProtocols::builder()
                .quantity(1)
                .items(SslProtocol::TlSv1)
                .build()
                .unwrap(),
        );
        assert!(drifted(&tls10, &c));

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
