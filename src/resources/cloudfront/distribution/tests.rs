//! Unit tests of the distribution's desired configuration and its signature.

use aws_sdk_cloudfront::types::{
    MinimumProtocolVersion, OriginProtocolPolicy, OriginSslProtocols, SslProtocol,
    ViewerProtocolPolicy,
};

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
