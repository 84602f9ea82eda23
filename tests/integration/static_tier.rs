//! The storage and cdn steps against the emulator: both buckets with every property the issue
//! names (versioning, lifecycle, encryption, public access block, TLS-only policy, Object
//! Lock, tags), the CloudFront distribution with its OAC and the bucket policy grant, the
//! key policy statement that lets the distribution decrypt the SSE-KMS assets (restored by
//! `up` when removed), a second `up` that changes nothing, and a `down` that empties versioned
//! and governance-locked buckets and goes through CloudFront's disable / deploy / delete
//! dance, also when a previous `down` was interrupted while the disabled distribution
//! deployed. `cdn.origin_access = "oai"` is refused before any AWS call (an OAI cannot read
//! SSE-KMS objects), and a stack an earlier version built with an OAI moves to OAC.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectLockEnabled, ObjectLockMode, ObjectLockRetentionMode, ServerSideEncryption,
    TransitionStorageClass,
};
use serde_json::Value;

use crate::util::*;

pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

fn up_ok(stack: &Stack, args: &[&str]) -> Value {
    let run = stack.up(args);
    run.assert_ok();
    run.summary()
}

fn statements(policy: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(policy).expect("policy JSON");
    v["Statement"].as_array().cloned().unwrap_or_default()
}

/// The stack key's policy document.
async fn key_policy(stack: &Stack) -> Value {
    let sdk = sdk_config(&stack.endpoint).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let p = kms
        .get_key_policy()
        .key_id(stack.output_str("kms_key_arn"))
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    serde_json::from_str(&p).expect("key policy JSON")
}

/// The key policy lets this distribution, and only it, decrypt (OAC + SSE-KMS), and still
/// has the kms step's own statements.
async fn check_key_grant(stack: &Stack, dist_arn: &str) {
    let doc = key_policy(stack).await;
    let st = doc["Statement"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = st
        .iter()
        .filter(|x| x["Sid"] == "CloudFrontDecryptsAssets")
        .collect();
    assert_eq!(ours.len(), 1, "{st:?}");
    let g = ours[0];
    assert_eq!(g["Effect"], "Allow");
    assert_eq!(g["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(g["Action"], "kms:Decrypt");
    assert_eq!(g["Resource"], "*");
    assert_eq!(g["Condition"]["StringEquals"]["AWS:SourceArn"], dist_arn);
    assert!(
        dist_arn.starts_with("arn:aws:cloudfront::123456789012:distribution/"),
        "{dist_arn}"
    );
    for sid in [
        "AccountAdministersKeyThroughIam",
        "AwsServicesUseKeyForAccount",
        "CloudWatchLogsEncryptsLogGroups",
    ] {
        assert!(st.iter().any(|x| x["Sid"] == sid), "{sid} lost: {st:?}");
    }
}

async fn policy(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Value> {
    let p = s3
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    statements(&p)
}

/// A bucket's versioning status. moto answers with the root element
/// `GetBucketVersioningResponse`, which the SDK cannot decode: read the raw body then.
pub async fn versioning(s3: &aws_sdk_s3::Client, bucket: &str) -> Option<String> {
    match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => v.status().map(|s| s.as_str().to_string()),
        Err(e) => {
            let body = e
                .raw_response()
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| panic!("GetBucketVersioning {bucket}: {e:?}"));
            let start = body.find("<Status>")? + "<Status>".len();
            let end = start + body[start..].find("</Status>")?;
            Some(body[start..end].to_string())
        }
    }
}

/// Everything both buckets must be.
async fn check_buckets(stack: &Stack, lock_days: i32) {
    let sdk = sdk_config(&stack.endpoint).await;
    let s3 = s3_client(&sdk);
    let s = stack.suffix.as_str();
    let assets = stack.output_str("assets_bucket");
    let txlog = stack.output_str("txlog_bucket");
    assert_eq!(assets, format!("fintech-assets-123456789012-{s}"));
    assert_eq!(txlog, format!("fintech-txlog-123456789012-{s}"));
    assert_eq!(
        stack.output_str("assets_bucket_arn"),
        format!("arn:aws:s3:::{assets}")
    );
    assert_eq!(
        stack.output_str("txlog_bucket_arn"),
        format!("arn:aws:s3:::{txlog}")
    );
    let key_arn = stack.output_str("kms_key_arn");

    for b in [&assets, &txlog] {
        assert_eq!(versioning(&s3, b).await.as_deref(), Some("Enabled"), "{b}");

        let pab = s3.get_public_access_block().bucket(b).send().await.unwrap();
        let c = pab.public_access_block_configuration().unwrap();
        assert_eq!(
            (
                c.block_public_acls(),
                c.ignore_public_acls(),
                c.block_public_policy(),
                c.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true)),
            "{b}"
        );

        let st = policy(&s3, b).await;
        let tls = st
            .iter()
            .find(|x| x["Sid"] == "DenyInsecureTransport")
            .unwrap_or_else(|| panic!("{b}: no TLS-only statement in {st:?}"));
        assert_eq!(tls["Effect"], "Deny");
        assert_eq!(tls["Principal"], "*");
        assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
        let res = tls["Resource"].to_string();
        assert!(
            res.contains(&format!("arn:aws:s3:::{b}\"")) && res.contains(&format!("{b}/*")),
            "{res}"
        );

        let tags = s3.get_bucket_tagging().bucket(b).send().await.unwrap();
        let tag = |k: &str| {
            tags.tag_set()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value().to_string())
        };
        assert_eq!(tag("fintech-infra:stack").as_deref(), Some(s));
        assert_eq!(tag("Name").as_deref(), Some(b.as_str()));
        assert_eq!(tag("Environment").as_deref(), Some(s));
        assert_eq!(tag("Team").as_deref(), Some("platform"));
        assert_eq!(tag("CostCenter").as_deref(), Some("fintech"));

        let lc = s3
            .get_bucket_lifecycle_configuration()
            .bucket(b)
            .send()
            .await
            .unwrap();
        assert_eq!(lc.rules().len(), 1, "{b}: {:?}", lc.rules());
        let r = &lc.rules()[0];
        assert_eq!(r.status().as_str(), "Enabled");
        assert_eq!(r.transitions().len(), 1);
        assert_eq!(r.transitions()[0].days(), Some(30));
        assert_eq!(
            r.transitions()[0].storage_class(),
            Some(&TransitionStorageClass::StandardIa)
        );
        let noncurrent = r
            .noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days());
        if b == &assets {
            assert_eq!(noncurrent, Some(30), "assets: non-current versions expire");
        } else {
            // As long as the Object Lock retention (storage.object_lock_days).
            assert_eq!(
                noncurrent,
                Some(lock_days),
                "txlog: non-current versions expire after the retention"
            );
        }
    }

    // Encryption: assets with the stack key and a bucket key, the log with SSE-S3.
    let enc = s3
        .get_bucket_encryption()
        .bucket(&assets)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    let d = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(d.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_eq!(d.kms_master_key_id(), Some(key_arn.as_str()));
    assert_eq!(rule.bucket_key_enabled(), Some(true));
    let enc = s3
        .get_bucket_encryption()
        .bucket(&txlog)
        .send()
        .await
        .unwrap();
    let d = enc.server_side_encryption_configuration().unwrap().rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .clone();
    assert_eq!(d.sse_algorithm(), &ServerSideEncryption::Aes256);

    // Object Lock on the log only.
    let lock = s3
        .get_object_lock_configuration()
        .bucket(&txlog)
        .send()
        .await
        .unwrap();
    let lock = lock.object_lock_configuration().unwrap();
    assert_eq!(
        lock.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    let r = lock.rule().unwrap().default_retention().unwrap();
    assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Governance));
    assert_eq!(r.days(), Some(lock_days));
    assert!(s3
        .get_object_lock_configuration()
        .bucket(&assets)
        .send()
        .await
        .is_err_and(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(&e)
            == Some("ObjectLockConfigurationNotFoundError")));
}

/// The distribution: origins, behaviours, price class, enabled; returns (id, arn).
async fn check_distribution(stack: &Stack, oai: Option<&str>, price: &str) -> (String, String) {
    let sdk = sdk_config(&stack.endpoint).await;
    let cf = aws_sdk_cloudfront::Client::new(&sdk);
    let id = stack.output_str("cdn_distribution_id");
    let d = cf.get_distribution().id(&id).send().await.unwrap();
    let d = d.distribution().unwrap();
    assert_eq!(stack.output_str("cdn_domain_name"), d.domain_name());
    let c = d.distribution_config().unwrap();
    assert!(c.enabled());
    assert_eq!(c.price_class().map(|p| p.as_str()), Some(price));
    assert_eq!(
        c.comment(),
        format!("fintech-infra {}: static assets and API", stack.suffix)
    );
    let origins = c.origins().unwrap().items();
    assert_eq!(
        origins.len(),
        2,
        "the assets bucket and the ALB: {origins:?}"
    );
    let o = origins
        .iter()
        .find(|o| o.id() != "api-alb")
        .expect("the S3 origin");
    // The ALB: HTTP to it (this stack has no certificate), the API uncached.
    let alb = origins
        .iter()
        .find(|o| o.id() == "api-alb")
        .expect("ALB origin");
    assert_eq!(alb.domain_name(), stack.output_str("alb_dns_name"));
    assert_eq!(
        alb.custom_origin_config()
            .map(|c| c.origin_protocol_policy().as_str()),
        Some("http-only")
    );
    let bucket = stack.output_str("assets_bucket");
    assert_eq!(
        o.domain_name(),
        format!("{bucket}.s3.us-east-1.amazonaws.com")
    );
    match oai {
        None => {
            let oac = cf
                .list_origin_access_controls()
                .send()
                .await
                .unwrap()
                .origin_access_control_list
                .unwrap()
                .items
                .unwrap_or_default()
                .into_iter()
                .find(|x| x.name() == format!("oac-assets-{}", stack.suffix))
                .expect("OAC oac-assets-<s>");
            assert_eq!(oac.signing_protocol().as_str(), "sigv4");
            assert_eq!(oac.signing_behavior().as_str(), "always");
            assert_eq!(oac.origin_access_control_origin_type().as_str(), "s3");
            assert_eq!(o.origin_access_control_id(), Some(oac.id()));
            // moto omits an empty S3OriginConfig; AWS returns it with an empty identity.
            assert_eq!(
                o.s3_origin_config()
                    .map(|c| c.origin_access_identity())
                    .unwrap_or(""),
                ""
            );
        }
        Some(oai_id) => {
            // moto drops S3OriginConfig on read-back (the OAI test proves the origin uses the
            // identity through CloudFrontOriginAccessIdentityInUse instead).
            if let Some(c) = o.s3_origin_config() {
                assert_eq!(
                    c.origin_access_identity(),
                    format!("origin-access-identity/cloudfront/{oai_id}")
                );
            }
            assert!(o.origin_access_control_id().unwrap_or("").is_empty());
        }
    }
    let def = c.default_cache_behavior().unwrap();
    assert_eq!(def.target_origin_id(), o.id());
    assert_eq!(def.viewer_protocol_policy().as_str(), "redirect-to-https");
    assert_eq!(
        def.cache_policy_id(),
        Some("658327ea-f89d-4fab-a63d-7e88639e58f6")
    );
    let behaviors = c.cache_behaviors().unwrap().items();
    assert_eq!(behaviors.len(), 2, "{behaviors:?}");
    let api = behaviors
        .iter()
        .find(|b| b.path_pattern() == "/api/*")
        .expect("/api/* behaviour");
    assert_eq!(api.target_origin_id(), "api-alb");
    assert_eq!(api.viewer_protocol_policy().as_str(), "redirect-to-https");
    assert_eq!(
        api.cache_policy_id(),
        Some("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"),
        "CachingDisabled"
    );
    assert_eq!(
        api.origin_request_policy_id(),
        Some("b689b0a8-53d0-40ab-baf2-68738e2966ac"),
        "AllViewerExceptHostHeader"
    );
    let stat = behaviors
        .iter()
        .find(|b| b.path_pattern() == "/static/*")
        .expect("/static/* behaviour");
    assert_eq!(stat.path_pattern(), "/static/*");
    assert_eq!(stat.target_origin_id(), o.id());
    assert_eq!(stat.viewer_protocol_policy().as_str(), "redirect-to-https");
    assert_eq!(
        stat.cache_policy_id(),
        Some("658327ea-f89d-4fab-a63d-7e88639e58f6"),
        "CachingOptimized"
    );
    // The default certificate: AWS forces TLSv1 with it (TLS 1.2 needs a custom one).
    let v = c.viewer_certificate().unwrap();
    assert_eq!(v.cloud_front_default_certificate(), Some(true));

    let tags = cf
        .list_tags_for_resource()
        .resource(d.arn())
        .send()
        .await
        .unwrap();
    let items = tags.tags().unwrap().items();
    assert!(items
        .iter()
        .any(|t| t.key() == "fintech-infra:stack" && t.value() == Some(stack.suffix.as_str())));
    (id, d.arn().to_string())
}

/// Objects the teardown has to remove: several versions, a delete marker, and in the
/// transaction log an object under (default and explicit) governance retention.
async fn upload_objects(stack: &Stack) {
    let sdk = sdk_config(&stack.endpoint).await;
    let s3 = s3_client(&sdk);
    let assets = stack.output_str("assets_bucket");
    let txlog = stack.output_str("txlog_bucket");
    // moto evaluates bucket policies on object requests but ignores conditions, so the
    // TLS-only Deny refuses every object request: lift the policies while uploading, and put
    // them back so that `down` meets them.
    let mut saved = Vec::new();
    for b in [&assets, &txlog] {
        let p = s3.get_bucket_policy().bucket(b).send().await.unwrap();
        saved.push((b.clone(), p.policy.unwrap()));
        s3.delete_bucket_policy().bucket(b).send().await.unwrap();
    }
    for body in ["v1", "v2", "v3"] {
        s3.put_object()
            .bucket(&assets)
            .key("static/app.js")
            .body(ByteStream::from_static(body.as_bytes()))
            .send()
            .await
            .unwrap();
    }
    s3.put_object()
        .bucket(&assets)
        .key("index.html")
        .body(ByteStream::from_static(b"<html/>"))
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(&assets)
        .key("index.html")
        .send()
        .await
        .unwrap();
    let until = aws_smithy_types::DateTime::from_secs(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 86_400,
    );
    let locked = s3
        .put_object()
        .bucket(&txlog)
        .key("2024/01/01/tx-0001.json")
        .body(ByteStream::from_static(b"{\"amount\": 1}"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&txlog)
        .key("2024/01/01/tx-0002.json")
        .body(ByteStream::from_static(b"{\"amount\": 2}"))
        .send()
        .await
        .unwrap();
    // The retention is real: deleting the version without bypassing it is refused.
    let refused = s3
        .delete_object()
        .bucket(&txlog)
        .key("2024/01/01/tx-0001.json")
        .version_id(locked.version_id().unwrap())
        .send()
        .await;
    assert!(refused.is_err(), "governance retention did not hold");
    let versions = s3
        .list_object_versions()
        .bucket(&assets)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 4);
    assert_eq!(versions.delete_markers().len(), 1);
    for (b, p) in saved {
        s3.put_bucket_policy()
            .bucket(b)
            .policy(p)
            .send()
            .await
            .unwrap();
    }
}

/// Nothing of the static tier is left: no bucket, distribution, OAC or OAI, nothing tagged.
async fn check_gone(stack: &Stack, bucket_names: &[String], dist_id: &str) {
    let sdk = sdk_config(&stack.endpoint).await;
    let s3 = s3_client(&sdk);
    let cf = aws_sdk_cloudfront::Client::new(&sdk);
    let buckets: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    for b in bucket_names {
        assert!(!buckets.contains(b), "bucket {b} left behind");
    }
    assert!(cf.get_distribution().id(dist_id).send().await.is_err());
    let dists = cf.list_distributions().send().await.unwrap();
    let comment = format!("fintech-infra {}: static assets and API", stack.suffix);
    assert!(
        !dists
            .distribution_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .any(|d| d.comment() == comment),
        "distribution left behind"
    );
    let oacs = cf.list_origin_access_controls().send().await.unwrap();
    let name = format!("oac-assets-{}", stack.suffix);
    assert!(
        !oacs
            .origin_access_control_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .any(|o| o.name() == name),
        "OAC left behind"
    );
    let oais = cf
        .list_cloud_front_origin_access_identities()
        .send()
        .await
        .unwrap();
    let comment = format!("oai-assets-{}", stack.suffix);
    assert!(
        !oais
            .cloud_front_origin_access_identity_list()
            .map(|l| l.items())
            .unwrap_or_default()
            .iter()
            .any(|o| o.comment() == comment),
        "OAI left behind"
    );
    let left = remaining_tagged(&sdk, &stack.suffix).await;
    assert!(left.is_empty(), "tagged resources left: {left:?}");
    assert!(!stack.state_path().exists());
}

#[test]
fn static_tier_with_origin_access_control() {
    let stack = Stack::new("stat");
    let cfg =
        stack.config("[storage]\nobject_lock_days = 7\n[cdn]\nprice_class = \"PriceClass_200\"\n");
    let cfg = cfg.to_str().unwrap();
    up_ok(&stack, &["--config", cfg]);
    let (dist_id, dist_arn) = block_on(async {
        check_buckets(&stack, 7).await;
        check_distribution(&stack, None, "PriceClass_200").await
    });
    assert!(stack.output("cdn_oai_id").is_null());

    // The bucket policy grants this distribution, through OAC, read access.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let st = policy(&s3_client(&sdk), &stack.output_str("assets_bucket")).await;
        let grant = st
            .iter()
            .find(|x| x["Principal"]["Service"] == "cloudfront.amazonaws.com")
            .unwrap_or_else(|| panic!("no CloudFront grant in {st:?}"));
        assert_eq!(grant["Effect"], "Allow");
        assert_eq!(grant["Action"], "s3:GetObject");
        assert_eq!(
            grant["Resource"],
            format!("arn:aws:s3:::{}/*", stack.output_str("assets_bucket"))
        );
        assert_eq!(
            grant["Condition"]["StringEquals"]["AWS:SourceArn"],
            dist_arn
        );
        assert_eq!(st.len(), 2, "TLS-only + grant: {st:?}");
        // The assets are SSE-KMS: the key policy lets the distribution decrypt them.
        check_key_grant(&stack, &dist_arn).await;
    });

    // The create request carried the OAC ID (moto's read-back is patched; check the source).
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let create = log
            .iter()
            .filter(|r| r.is_from_stack(&stack.suffix))
            .find(|r| r.operation == "CreateDistributionWithTags")
            .expect("CreateDistributionWithTags logged");
        assert!(create.status < 400, "{create:?}");
    }

    // `status` shows the distribution's deployment status.
    let st = stack.run(&["--output", "json", "status", "--env-suffix", &stack.suffix]);
    st.assert_ok();
    let rows: Value = serde_json::from_str(st.stdout.lines().last().unwrap()).unwrap();
    let row = rows["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "cloudfront:distribution")
        .expect("distribution in status");
    assert_eq!(row["presence"], "exists");
    assert!(row["status"].as_str().unwrap().contains("enabled"), "{row}");

    // A second up changes nothing. It reads the recorded distribution's configuration with
    // GetDistribution (which carries it), not again with GetDistributionConfig.
    let calls = |op: &str| {
        request_log(&stack.endpoint)
            .iter()
            .filter(|r| r.is_from_stack(&stack.suffix) && r.operation == op)
            .count()
    };
    let config_reads = calls("GetDistributionConfig");
    let again = up_ok(&stack, &["--config", cfg]);
    if is_faithful(&stack.endpoint) {
        assert_eq!(calls("GetDistributionConfig"), config_reads);
        assert!(
            calls("GetDistribution") > 0,
            "the log names CloudFront operations"
        );
    }
    assert_eq!(
        again["aws_calls"]["mutating"], 0,
        "second up mutated: {}",
        again["aws_calls"]["mutating_ops"]
    );
    // Someone removes the CloudFront statement from the key policy: `plan` reports it, `up`
    // puts it back (and nothing else), and the `up` after that changes nothing.
    block_on(async {
        let mut doc = key_policy(&stack).await;
        let st = doc["Statement"].as_array_mut().unwrap();
        let n = st.len();
        st.retain(|x| x["Sid"] != "CloudFrontDecryptsAssets");
        assert_eq!(st.len(), n - 1);
        let sdk = sdk_config(&stack.endpoint).await;
        aws_sdk_kms::Client::new(&sdk)
            .put_key_policy()
            .key_id(stack.output_str("kms_key_arn"))
            .policy_name("default")
            .policy(doc.to_string())
            .send()
            .await
            .unwrap();
    });
    let plan = stack.run(&[
        "--config",
        cfg,
        "--output",
        "json",
        "plan",
        "--env-suffix",
        &stack.suffix,
    ]);
    plan.assert_ok();
    let planned = plan.summary()["plan"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        planned.iter().any(|l| l["step"] == "cdn"
            && l["action"] == "change"
            && l["kind"] == "kms:key"
            && l["detail"]
                .as_str()
                .unwrap_or("")
                .contains("CloudFrontDecryptsAssets")),
        "plan does not report the key policy repair: {planned:?}"
    );
    assert_eq!(plan.summary()["aws_calls"]["mutating"], 0);
    let repaired = up_ok(&stack, &["--config", cfg]);
    assert_eq!(
        repaired["aws_calls"]["mutating_ops"],
        serde_json::json!(["KMS:PutKeyPolicy"]),
        "{repaired}"
    );
    block_on(check_key_grant(&stack, &dist_arn));
    let again = up_ok(&stack, &["--config", cfg]);
    assert_eq!(
        again["aws_calls"]["mutating"], 0,
        "up after the repair mutated: {}",
        again["aws_calls"]["mutating_ops"]
    );
    // Drift: another price class in the config is applied to the existing distribution.
    let cfg_all =
        stack.config("[storage]\nobject_lock_days = 7\n[cdn]\nprice_class = \"PriceClass_All\"\n");
    let changed = up_ok(&stack, &["--config", cfg_all.to_str().unwrap()]);
    let ops = changed["aws_calls"]["mutating_ops"].to_string();
    assert!(ops.contains("UpdateDistribution"), "{ops}");
    block_on(check_distribution(&stack, None, "PriceClass_All"));

    block_on(upload_objects(&stack));
    let buckets = [
        stack.output_str("assets_bucket"),
        stack.output_str("txlog_bucket"),
    ];
    stack
        .down(&["--config", cfg_all.to_str().unwrap()])
        .assert_ok();
    block_on(check_gone(&stack, &buckets, &dist_id));
}

/// `cdn.origin_access = "oai"` is refused before any AWS call: the assets bucket is SSE-KMS
/// with the stack key, and an origin access identity cannot read SSE-KMS objects (B1). A stack
/// an earlier version built in oai mode (an OAI recorded in the state, used by the
/// distribution's S3 origin and granted in the bucket policy) moves to OAC on its next `up`:
/// the origin uses the OAC, the bucket grant names the distribution, the key policy lets it
/// decrypt, and the OAI is deleted; the `up` after that changes nothing and `down` leaves
/// nothing behind.
#[test]
fn origin_access_identity_is_refused_and_an_oai_stack_moves_to_oac() {
    let stack = Stack::new("stoai");
    let oai_cfg = stack.config("[cdn]\norigin_access = \"oai\"\n");
    let run = stack.up(&["--config", oai_cfg.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SSE-KMS") && run.stderr.contains("\"oac\""),
        "{}",
        run.stderr
    );
    assert!(!stack.state_path().exists(), "refused before any state");
    if is_faithful(&stack.endpoint) {
        let sent = request_log(&stack.endpoint)
            .iter()
            .filter(|r| r.is_from_stack(&stack.suffix))
            .count();
        assert_eq!(sent, 0, "refused before any AWS call");
    }

    // A stack as an earlier version built it in oai mode.
    let cfg = stack.config("");
    let cfg = cfg.to_str().unwrap();
    up_ok(&stack, &["--config", cfg]);
    let dist_id = stack.output_str("cdn_distribution_id");
    let bucket = stack.output_str("assets_bucket");
    let s = stack.suffix.clone();
    let oai = block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        let comment = format!("oai-assets-{s}");
        let oai = cf
            .create_cloud_front_origin_access_identity()
            .cloud_front_origin_access_identity_config(
                aws_sdk_cloudfront::types::CloudFrontOriginAccessIdentityConfig::builder()
                    .caller_reference(format!("fintech-infra-{comment}"))
                    .comment(&comment)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .cloud_front_origin_access_identity
            .unwrap()
            .id;
        let got = cf
            .get_distribution_config()
            .id(&dist_id)
            .send()
            .await
            .unwrap();
        let mut c = got.distribution_config.unwrap();
        for o in c.origins.as_mut().unwrap().items.iter_mut() {
            if o.id == "assets-s3" {
                o.origin_access_control_id = Some(String::new());
                o.s3_origin_config = Some(
                    aws_sdk_cloudfront::types::S3OriginConfig::builder()
                        .origin_access_identity(format!("origin-access-identity/cloudfront/{oai}"))
                        .build(),
                );
            }
        }
        cf.update_distribution()
            .id(&dist_id)
            .set_if_match(got.e_tag)
            .distribution_config(c)
            .send()
            .await
            .unwrap();
        let s3 = s3_client(&sdk);
        let mut st = policy(&s3, &bucket).await;
        st.retain(|x| x["Sid"] != "AllowCloudFrontOacRead");
        st.push(serde_json::json!({
            "Sid": "AllowCloudFrontOaiRead",
            "Effect": "Allow",
            "Principal": {"AWS": format!(
                "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai}")},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")
        }));
        s3.put_bucket_policy()
            .bucket(&bucket)
            .policy(serde_json::json!({"Version": "2012-10-17", "Statement": st}).to_string())
            .send()
            .await
            .unwrap();
        oai
    });
    let mut state = stack.state();
    state["resources"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "step": "cdn",
            "kind": "cloudfront:origin-access-identity",
            "id": oai,
            "name": format!("oai-assets-{s}"),
            "region": "us-east-1",
            "created_at": "2024-01-01T00:00:00Z"
        }));
    state["outputs"]["cdn_oai_id"] = Value::String(oai.clone());
    std::fs::write(stack.state_path(), state.to_string()).unwrap();

    // The next `up` moves it to OAC.
    let moved = up_ok(&stack, &["--config", cfg]);
    let ops = moved["aws_calls"]["mutating_ops"].to_string();
    for op in [
        "UpdateDistribution",
        "PutBucketPolicy",
        "DeleteCloudFrontOriginAccessIdentity",
    ] {
        assert!(ops.contains(op), "{op} not in {ops}");
    }
    assert!(stack.output("cdn_oai_id").is_null());
    assert!(
        !stack.state()["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "cloudfront:origin-access-identity"),
        "the OAI is no longer recorded"
    );
    let (_, dist_arn) = block_on(check_distribution(&stack, None, "PriceClass_100"));
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        assert!(
            cf.get_cloud_front_origin_access_identity()
                .id(&oai)
                .send()
                .await
                .is_err(),
            "the OAI was deleted"
        );
        let st = policy(&s3_client(&sdk), &bucket).await;
        assert!(
            !st.iter().any(|x| x["Sid"] == "AllowCloudFrontOaiRead"),
            "{st:?}"
        );
        let grant = st
            .iter()
            .find(|x| x["Sid"] == "AllowCloudFrontOacRead")
            .unwrap_or_else(|| panic!("no OAC grant in {st:?}"));
        assert_eq!(
            grant["Condition"]["StringEquals"]["AWS:SourceArn"],
            dist_arn
        );
        check_key_grant(&stack, &dist_arn).await;
    });
    let again = up_ok(&stack, &["--config", cfg]);
    assert_eq!(
        again["aws_calls"]["mutating"], 0,
        "second up mutated: {}",
        again["aws_calls"]["mutating_ops"]
    );
    let buckets = [bucket, stack.output_str("txlog_bucket")];
    stack.down(&["--config", cfg]).assert_ok();
    block_on(check_gone(&stack, &buckets, &dist_id));
}

/// `up --wait cdn` waits for the deployment; a `down` interrupted while the disabled
/// distribution is still deploying is resumed by the next `down` without a second update.
#[test]
fn cdn_waits_on_request_and_down_resumes_a_deploying_disable() {
    // Distribution deploy 540 s -> 5.4 s, disable 300 s -> 3 s.
    let emu = Emulator::start(&["--time-scale", "0.01"]);
    assert!(emu.is_faithful());
    let stack = Stack::on(&emu.endpoint, "cdnw");
    up_ok(&stack, &["--wait", "cdn"]);
    let dist_id = stack.output_str("cdn_distribution_id");
    let buckets = [
        stack.output_str("assets_bucket"),
        stack.output_str("txlog_bucket"),
    ];
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        let d = cf.get_distribution().id(&dist_id).send().await.unwrap();
        assert_eq!(
            d.distribution().unwrap().status(),
            "Deployed",
            "--wait cdn returned before the deployment finished"
        );
    });

    let child = stack
        .command(&["down", "--env-suffix", &stack.suffix])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn down");
    // Wait until the disabling update went out, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = request_log(&emu.endpoint);
        if log.iter().any(|r| {
            r.is_from_stack(&stack.suffix) && r.operation == "UpdateDistribution" && r.status < 400
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "down never disabled the distribution"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out_child = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out_child.stderr);
    assert_eq!(out_child.status.code(), Some(130), "{stderr}");
    block_on(async {
        let sdk = sdk_config(&emu.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        let d = cf.get_distribution().id(&dist_id).send().await.unwrap();
        let d = d.distribution().unwrap();
        assert!(!d.distribution_config().unwrap().enabled());
        assert_eq!(
            d.status(),
            "InProgress",
            "interrupted while deploying the disable"
        );
    });
    let text = std::fs::read_to_string(stack.state_path()).unwrap();
    assert!(text.contains("cloudfront:distribution"), "still recorded");

    stack.down(&[]).assert_ok();
    let log = request_log(&emu.endpoint);
    let ours: Vec<_> = log
        .iter()
        .filter(|r| r.is_from_stack(&stack.suffix) && r.service == "cloudfront")
        .collect();
    let updates = ours
        .iter()
        .filter(|r| r.operation == "UpdateDistribution")
        .count();
    assert_eq!(updates, 1, "the resumed down must not update again");
    let deletes: Vec<_> = ours
        .iter()
        .filter(|r| r.operation == "DeleteDistribution")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].status < 400, "{:?}", deletes[0]);
    // Deleted only once the disable was deployed.
    let events = events(&emu.endpoint);
    let deployed_at = events
        .iter()
        .filter(|e| e["id"] == dist_id.as_str() && e["to"] == "Deployed")
        .filter_map(|e| e["ts"].as_f64())
        .fold(0.0, f64::max);
    assert!(deletes[0].ts >= deployed_at);
    block_on(check_gone(&stack, &buckets, &dist_id));
}

#[test]
fn up_rejects_an_unknown_wait_target_before_any_aws_call() {
    let stack = Stack::new("waitx");
    let run = stack.run(&["up", "--env-suffix", &stack.suffix, "--wait", "dns"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cdn") && run.stderr.contains("all"),
        "{}",
        run.stderr
    );
    assert!(!stack.state_path().exists());
}
