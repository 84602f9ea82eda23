//! The distribution's desired configuration as a typed value, the signature of the parts this tool
//! manages, and the drift check and merge built on it.

use anyhow::{Context as _, Result};
use aws_sdk_cloudfront::types::{
    AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomOriginConfig,
    DefaultCacheBehavior, DistributionConfig, HttpVersion, LoggingConfig, Method,
    MinimumProtocolVersion, OriginProtocolPolicy, OriginSslProtocols, Origins, PriceClass,
    S3OriginConfig, SslProtocol, SslSupportMethod, ViewerCertificate, ViewerProtocolPolicy,
};

use super::{
    log_bucket_domain, ALB_ORIGIN_ID, ALL_VIEWER_EXCEPT_HOST_HEADER, CACHING_DISABLED,
    CACHING_OPTIMIZED, LOG_PREFIX, S3_ORIGIN_ID,
};

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
