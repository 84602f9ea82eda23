//! `cloudfront:distribution`: the stack's CloudFront distribution. The desired configuration
//! as a typed value ([`DesiredDistribution`]), the comparable signature of the parts this tool
//! manages (drift is repaired, everything else an operator set is kept), find (by record,
//! else by comment and stack tag: distributions have no names), create with tags, update with
//! the current ETag, the deployment wait, and the disable-wait-delete dance CloudFront
//! enforces on teardown.
//!
//! CloudFront deploys a new or changed distribution to every edge location in 5-15 minutes.
//! Teardown: get the config and its ETag, disable it (with that ETag: every update needs the
//! current one and returns a new one), wait until the disabled configuration is deployed,
//! delete it with the latest ETag. A run interrupted while the disabled distribution was
//! deploying resumes with the wait, not a second update.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomOriginConfig,
    DefaultCacheBehavior, DistributionConfig, DistributionConfigWithTags, HttpVersion,
    LoggingConfig, Method, MinimumProtocolVersion, OriginProtocolPolicy, OriginSslProtocols,
    Origins, PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod, ViewerCertificate,
    ViewerProtocolPolicy,
};

use super::cf_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "cloudfront:distribution";

/// Origin IDs inside the distribution.
pub const S3_ORIGIN_ID: &str = "assets-s3";
pub const ALB_ORIGIN_ID: &str = "api-alb";

/// AWS-managed cache and origin request policies (their IDs are the same in every account).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
pub const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Key prefix of the access logs in the log bucket.
pub const LOG_PREFIX: &str = "cdn/";

/// CloudFront takes 5-15 minutes to deploy a change (and to deploy a disable); generous.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(45 * 60);

pub struct Distribution;

/// The domain name CloudFront's `Logging.Bucket` takes: `<bucket>.s3.amazonaws.com`.
pub fn log_bucket_domain(bucket: &str) -> String {
    format!("{bucket}.s3.amazonaws.com")
}

/// A distribution's ARN: `arn:<partition>:cloudfront::<account>:distribution/<id>` (CloudFront
/// is global: no region).
pub fn distribution_arn(partition: &str, account: &str, id: &str) -> String {
    format!("arn:{partition}:cloudfront::{account}:distribution/{id}")
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
pub fn merged(current: &DistributionConfig, want: DistributionConfig) -> DistributionConfig {
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

/// A distribution's configuration and the ETag an update must quote.
pub type ConfigAndEtag = (DistributionConfig, String);

/// The stack's distribution as found: its ID, ARN and domain name, and, when the lookup read
/// it anyway, its configuration and ETag.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    pub config: Option<ConfigAndEtag>,
}

/// The `Name` tag of the stack's distribution.
fn name_tag(ctx: &StepCtx) -> String {
    format!("cdn-{}", ctx.suffix())
}

/// The stack's distribution: the recorded one, else the one with this stack's comment and
/// stack tag. Returns its ID, ARN and domain name, and for the recorded one also its
/// configuration and ETag (GetDistribution carries both, which saves the drift check a
/// GetDistributionConfig).
pub async fn find(ctx: &StepCtx, comment: &str) -> Result<Option<Existing>> {
    let cf = ctx.aws().cloudfront();
    for rec in ctx.records(Some(KIND)) {
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
                return Ok(Some(Existing {
                    id: d.id,
                    arn: d.arn,
                    domain_name: d.domain_name,
                    config,
                }));
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
                return Ok(Some(Existing {
                    id: d.id().to_string(),
                    arn: d.arn().to_string(),
                    domain_name: d.domain_name().to_string(),
                    config: None,
                }));
            }
        }
        match list.next_marker {
            Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m),
            _ => return Ok(None),
        }
    }
}

/// The distribution `existing` recorded as `comment`, else created from `want` with the
/// stack's tags; recorded with its ARN and attribute `domain_name`.
pub async fn ensure(
    ctx: &StepCtx,
    comment: &str,
    existing: Option<&Existing>,
    want: &DesiredDistribution,
) -> Result<Found> {
    let cf = ctx.aws().cloudfront();
    ctx.ensure(
        KIND,
        comment,
        || async {
            Ok(existing.map(|e| {
                Found::new(&e.id)
                    .arn(&e.arn)
                    .attr("domain_name", &e.domain_name)
            }))
        },
        || async {
            let tags = cf_tags(ctx.tags(Some(&name_tag(ctx))))?;
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
                .aws("cloudfront:CreateDistributionWithTags", comment)?;
            let d = out
                .distribution
                .context("CreateDistributionWithTags returned no distribution")?;
            Ok(Found::new(d.id)
                .arn(d.arn)
                .attr("domain_name", d.domain_name))
        },
    )
    .await
}

/// Sets the stack's tags on the existing distribution `id` (ARN `arn`) if any is missing
/// (CreateDistributionWithTags set them on a new one).
pub async fn ensure_tags(ctx: &StepCtx, comment: &str, id: &str, arn: &str) -> Result<()> {
    let cf = ctx.aws().cloudfront();
    let tags = cf
        .list_tags_for_resource()
        .resource(arn)
        .send()
        .await
        .aws("cloudfront:ListTagsForResource", id)?;
    let have: Vec<(String, String)> = tags
        .tags()
        .map(|t| t.items())
        .unwrap_or_default()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
        .collect();
    let want_tags = ctx.tags(Some(&name_tag(ctx)));
    if !want_tags.iter().all(|t| have.contains(t)) {
        ctx.change(KIND, comment, "set tags", || async {
            cf.tag_resource()
                .resource(arn)
                .tags(cf_tags(want_tags.clone())?)
                .send()
                .await
                .aws("cloudfront:TagResource", id)?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The distribution's configuration and ETag: `known` (read by [`find`]) or read now.
pub async fn current_config(
    ctx: &StepCtx,
    id: &str,
    known: Option<ConfigAndEtag>,
) -> Result<(DistributionConfig, Option<String>)> {
    if let Some((config, etag)) = known {
        return Ok((config, Some(etag)));
    }
    let out = ctx
        .aws()
        .cloudfront()
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .aws("cloudfront:GetDistributionConfig", id)?;
    let config = out
        .distribution_config
        .context("GetDistributionConfig returned no config")?;
    Ok((config, out.e_tag))
}

/// Puts `want`'s managed parts into the distribution `id` (its `current` config, read with
/// `etag`) when they drifted; everything else in it is kept (see [`merged`]).
pub async fn update_if_drifted(
    ctx: &StepCtx,
    comment: &str,
    id: &str,
    current: &DistributionConfig,
    etag: Option<String>,
    want: DistributionConfig,
) -> Result<()> {
    let desired = merged(current, want);
    if !drifted(current, &desired) {
        return Ok(());
    }
    let cf = ctx.aws().cloudfront();
    ctx.change(
        KIND,
        comment,
        "update origins, cache behaviours, price class, certificate, default root object, \
         access logging or web ACL",
        || async {
            cf.update_distribution()
                .id(id)
                .set_if_match(etag)
                .distribution_config(desired)
                .send()
                .await
                .aws("cloudfront:UpdateDistribution", id)?;
            Ok(())
        },
    )
    .await
}

/// Waits until the distribution's configuration is deployed everywhere; returns its
/// current ETag, or `None` if it is gone.
pub async fn wait_deployed(ctx: &StepCtx, id: &str) -> Result<Option<String>> {
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
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
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
        let Some(etag) = wait_deployed(ctx, id).await? else {
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

#[async_trait]
impl Provider for Distribution {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .cloudfront()
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
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id)
            .await
            .with_context(|| format!("deleting CloudFront distribution {}", rec.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(alb: Option<(String, bool)>, cert: Option<&str>) -> DesiredDistribution {
        DesiredDistribution {
            caller_reference: "ref".into(),
            comment: "fintech-infra s: static assets and API".into(),
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
    fn default_root_object_and_logging_are_managed() {
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
    fn distribution_arns_have_no_region() {
        assert_eq!(
            distribution_arn("aws", "123456789012", "E2ABC"),
            "arn:aws:cloudfront::123456789012:distribution/E2ABC"
        );
        assert_eq!(
            distribution_arn("aws-cn", "1", "D"),
            "arn:aws-cn:cloudfront::1:distribution/D"
        );
    }

    #[test]
    fn api_origin_over_https_by_the_origin_name() {
        let alb = "fintech-alb-s-1.us-east-1.elb.amazonaws.com";
        let c = desired(Some(("origin.example.com".to_string(), true)), None)
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
    }
}
