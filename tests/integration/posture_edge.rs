//! Security Hub posture controls of the edge (issue 12) against the emulator: CloudFront.1,
//! the distribution serves a default root object (`cdn.default_root_object`); CloudFront.5,
//! standard access logging to the stack's log bucket `fintech-cdnlogs-<account>-<s>` (ACLs
//! enabled with BucketOwnerPreferred, as CloudFront writes the logs with an ACL; private,
//! versioned, SSE-S3, TLS only, logs and non-current versions expiring); CloudFront.3, every
//! behaviour redirects viewers to HTTPS; S3, the ALB's log bucket is versioned with
//! non-current versions expiring. A second `up` makes no mutating call, drift in a log bucket
//! is repaired with one call, `cdn.access_logs = false` turns the logging off, and `down`
//! leaves no bucket with the stack's suffix.

use serde_json::Value;

use crate::static_tier::{s3_client, versioning};
use crate::util::*;

const ACCOUNT: &str = "123456789012";

/// The mutating calls of a run on the edge's services (S3, CloudFront, ELB, KMS). The other
/// steps' idempotence is their own tests' business: this test must not fail on theirs.
fn edge_mutations(summary: &Value) -> Vec<String> {
    let mut ops: Vec<String> = summary["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .filter(|op| {
            [
                "S3:",
                "CloudFront:",
                "KMS:",
                "Elastic Load Balancing",
                "ElasticLoadBalancing",
            ]
            .iter()
            .any(|p| op.starts_with(p))
        })
        .collect();
    ops.sort();
    ops
}

fn up_ok(stack: &Stack, cfg: &str) -> Value {
    let run = stack.up(&["--config", cfg]);
    run.assert_ok();
    run.summary()
}

/// The properties every log bucket of the stack has.
async fn check_log_bucket(s3: &aws_sdk_s3::Client, bucket: &str, suffix: &str) {
    assert_eq!(
        versioning(s3, bucket).await.as_deref(),
        Some("Enabled"),
        "{bucket} versioned"
    );
    let enc = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256",
        "{bucket} SSE-S3"
    );
    let pab = s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true)),
        "{bucket} private"
    );
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let tls = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "DenyInsecureTransport")
        .unwrap_or_else(|| panic!("{bucket}: no TLS-only statement in {policy}"));
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
    let lc = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let r = &lc.rules()[0];
    assert_eq!(r.expiration().and_then(|e| e.days()), Some(90), "{bucket}");
    assert_eq!(
        r.noncurrent_version_expiration()
            .and_then(|n| n.noncurrent_days()),
        Some(30),
        "{bucket}"
    );
    let tags = s3.get_bucket_tagging().bucket(bucket).send().await.unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "fintech-infra:stack" && t.value() == suffix),
        "{bucket} tagged"
    );
}

async fn buckets_with(s3: &aws_sdk_s3::Client, suffix: &str) -> Vec<String> {
    s3.list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.ends_with(&format!("-{suffix}")))
        .map(str::to_string)
        .collect()
}

#[test]
fn cdn_root_object_access_logs_and_versioned_log_buckets() {
    let stack = Stack::new("pedge");
    let s = stack.suffix.clone();
    let cfg = stack.config("[cdn]\ndefault_root_object = \"app.html\"\n");
    let cfg = cfg.to_str().unwrap();
    up_ok(&stack, cfg);
    let log_bucket = format!("fintech-cdnlogs-{ACCOUNT}-{s}");
    let alb_bucket = format!("fintech-alblogs-{ACCOUNT}-{s}");
    assert_eq!(stack.output_str("cdn_log_bucket"), log_bucket);

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        let s3 = s3_client(&sdk);
        let id = stack.output_str("cdn_distribution_id");
        let out = cf.get_distribution_config().id(&id).send().await.unwrap();
        let c = out.distribution_config().unwrap();
        assert_eq!(c.default_root_object(), Some("app.html"));
        let l = c.logging().expect("logging configured");
        assert!(l.enabled());
        assert!(!l.include_cookies());
        assert_eq!(l.bucket(), format!("{log_bucket}.s3.amazonaws.com"));
        assert_eq!(l.prefix(), "cdn/");
        assert_eq!(
            c.default_cache_behavior()
                .unwrap()
                .viewer_protocol_policy()
                .as_str(),
            "redirect-to-https"
        );
        for b in c.cache_behaviors().unwrap().items() {
            assert_eq!(
                b.viewer_protocol_policy().as_str(),
                "redirect-to-https",
                "{}",
                b.path_pattern()
            );
        }

        // The CDN log bucket: ACLs enabled for CloudFront's log delivery, and the baseline.
        let own = s3
            .get_bucket_ownership_controls()
            .bucket(&log_bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(
            own.ownership_controls().unwrap().rules()[0]
                .object_ownership()
                .as_str(),
            "BucketOwnerPreferred"
        );
        check_log_bucket(&s3, &log_bucket, &s).await;
        // The ALB's log bucket: the same baseline (versioned now, non-current versions expire).
        check_log_bucket(&s3, &alb_bucket, &s).await;
    });

    // A second up changes nothing.
    let again = up_ok(&stack, cfg);
    assert_eq!(
        edge_mutations(&again),
        Vec::<String>::new(),
        "second up mutated: {}",
        again["aws_calls"]["mutating_ops"]
    );

    // Drift: the ALB log bucket's versioning suspended and the CDN log bucket's lifecycle
    // removed by hand: `up` repairs exactly those, and the `up` after it changes nothing.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let s3 = s3_client(&sdk);
        s3.put_bucket_versioning()
            .bucket(&alb_bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        s3.delete_bucket_lifecycle()
            .bucket(&log_bucket)
            .send()
            .await
            .unwrap();
    });
    let repaired = up_ok(&stack, cfg);
    assert_eq!(
        edge_mutations(&repaired),
        [
            "S3:PutBucketLifecycleConfiguration",
            "S3:PutBucketVersioning"
        ],
        "{repaired}"
    );
    let again = up_ok(&stack, cfg);
    assert_eq!(
        edge_mutations(&again),
        Vec::<String>::new(),
        "up after the repair mutated: {}",
        again["aws_calls"]["mutating_ops"]
    );

    // The switch off: the distribution stops logging; the bucket stays until `down`.
    let off = stack.config("[cdn]\ndefault_root_object = \"app.html\"\naccess_logs = false\n");
    let off = off.to_str().unwrap();
    let changed = up_ok(&stack, off);
    let ops = changed["aws_calls"]["mutating_ops"].to_string();
    assert!(ops.contains("UpdateDistribution"), "{ops}");
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cf = aws_sdk_cloudfront::Client::new(&sdk);
        let id = stack.output_str("cdn_distribution_id");
        let out = cf.get_distribution_config().id(&id).send().await.unwrap();
        let l = out.distribution_config().unwrap().logging().unwrap();
        assert!(!l.enabled());
    });
    assert!(stack.output("cdn_log_bucket").is_null());

    // `down` leaves no bucket with the stack's suffix.
    stack.down(&["--config", off]).assert_ok();
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let left = buckets_with(&s3_client(&sdk), &s).await;
        assert!(left.is_empty(), "buckets left: {left:?}");
    });
    assert!(!stack.state_path().exists());
    // The log bucket goes only once no distribution delivers to it.
    if is_faithful(&stack.endpoint) {
        let log = request_log(&stack.endpoint);
        let ours: Vec<&LoggedRequest> = log.iter().filter(|r| r.is_from_stack(&s)).collect();
        let pos = |pred: &dyn Fn(&LoggedRequest) -> bool| {
            ours.iter().rposition(|r| pred(r)).unwrap_or_else(|| {
                let seen: Vec<(&str, &str)> = ours
                    .iter()
                    .filter(|r| r.is_mutating())
                    .map(|r| (r.operation.as_str(), r.path.as_str()))
                    .collect();
                panic!("operation not in the request log: {seen:?}")
            })
        };
        let dist_deleted = pos(&|r| r.operation == "DeleteDistribution");
        let bucket_deleted =
            pos(&|r| r.operation == "DeleteBucket" && r.path.trim_matches('/') == log_bucket);
        assert!(dist_deleted < bucket_deleted, "log bucket deleted first");
    }
}

/// The distribution's web ACL ARN ("" for none).
async fn distribution_acl(cf: &aws_sdk_cloudfront::Client, id: &str) -> String {
    let out = cf.get_distribution_config().id(id).send().await.unwrap();
    out.distribution_config()
        .unwrap()
        .web_acl_id()
        .unwrap_or_default()
        .to_string()
}

/// The CLOUDFRONT-scope web ACLs (us-east-1) whose name carries `suffix`.
async fn edge_acls(waf: &aws_sdk_wafv2::Client, suffix: &str) -> Vec<String> {
    let out = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Cloudfront)
        .limit(100)
        .send()
        .await
        .unwrap();
    out.web_acls()
        .iter()
        .filter_map(|a| a.name())
        .filter(|n| n.contains(suffix))
        .map(str::to_string)
        .collect()
}

/// CloudFront.6: with `[waf] enabled`, on a stack in us-east-2, the distribution gets a
/// CLOUDFRONT-scope web ACL made in us-east-1 with the regional ACL's rules; `verify` fails
/// naming CloudFront.6 when it is taken off the distribution, and `up` puts it back; turning
/// WAF off drops it from the distribution and deletes it; `down` leaves no ACL.
#[test]
fn waf_enabled_puts_a_cloudfront_scope_web_acl_on_the_distribution() {
    let stack = Stack::new("pwaf");
    let s = stack.suffix.clone();
    let on = stack.config("region = \"us-east-2\"\n[waf]\nenabled = true\n");
    let on = on.to_str().unwrap();
    up_ok(&stack, on);
    let id = stack.output_str("cdn_distribution_id");
    let acl_name = format!("waf-cdn-{s}");

    block_on(async {
        let cf = aws_sdk_cloudfront::Client::new(&sdk_config(&stack.endpoint).await);
        let waf = aws_sdk_wafv2::Client::new(&sdk_config_in(&stack.endpoint, "us-east-1").await);
        let acl = distribution_acl(&cf, &id).await;
        assert!(
            acl.starts_with("arn:aws:wafv2:us-east-1:")
                && acl.contains(&format!(":global/webacl/{acl_name}/")),
            "distribution's web ACL: {acl:?}"
        );
        let acl_id = acl.rsplit('/').next().unwrap();
        let got = waf
            .get_web_acl()
            .scope(aws_sdk_wafv2::types::Scope::Cloudfront)
            .name(&acl_name)
            .id(acl_id)
            .send()
            .await
            .unwrap();
        let rules: Vec<&str> = got
            .web_acl()
            .unwrap()
            .rules()
            .iter()
            .map(|r| r.name())
            .collect();
        assert_eq!(
            rules,
            [
                "AWS-AWSManagedRulesCommonRuleSet",
                "AWS-AWSManagedRulesKnownBadInputsRuleSet",
                "rate-limit-per-ip"
            ]
        );
        // The regional ACL stays on the ALB, in the stack's region.
        let regional =
            aws_sdk_wafv2::Client::new(&sdk_config_in(&stack.endpoint, "us-east-2").await);
        let alb = stack.output_str("alb_arn");
        let on_alb = regional
            .get_web_acl_for_resource()
            .resource_arn(&alb)
            .send()
            .await
            .unwrap();
        assert_eq!(
            on_alb.web_acl().map(|a| a.name()),
            Some(format!("waf-{s}").as_str())
        );
    });
    let checks = crate::verify::assert_verifies(&stack);
    assert!(
        checks.iter().any(|c| c["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("CloudFront.6 "))
            && c["result"] == "PASS"),
        "no passing CloudFront.6 check: {checks:#?}"
    );

    // Someone takes the ACL off the distribution: verify fails naming CloudFront.6, up
    // puts it back.
    block_on(async {
        let cf = aws_sdk_cloudfront::Client::new(&sdk_config(&stack.endpoint).await);
        let out = cf.get_distribution_config().id(&id).send().await.unwrap();
        let mut c = out.distribution_config().unwrap().clone();
        c.web_acl_id = Some(String::new());
        cf.update_distribution()
            .id(&id)
            .set_if_match(out.e_tag().map(str::to_string))
            .distribution_config(c)
            .send()
            .await
            .unwrap();
    });
    let run = crate::verify::verify(&stack);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let failing = crate::verify::failing(&run);
    assert!(
        failing
            .iter()
            .any(|f| f.starts_with("CloudFront.6 ") && f.contains("no web ACL")),
        "{failing:#?}"
    );
    let repaired = up_ok(&stack, on);
    assert!(
        repaired["aws_calls"]["mutating_ops"]
            .to_string()
            .contains("UpdateDistribution"),
        "{repaired}"
    );
    crate::verify::assert_verifies(&stack);
    // Converged: no CloudFront or WAF call changes anything.
    let again = up_ok(&stack, on);
    let edge: Vec<&Value> = again["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| {
            op.as_str()
                .is_some_and(|o| o.starts_with("CloudFront") || o.to_lowercase().starts_with("waf"))
        })
        .collect();
    assert!(edge.is_empty(), "second up mutated: {edge:?}");

    // WAF off: the distribution drops the ACL, then the ACL is deleted.
    let off = stack.config("region = \"us-east-2\"\n[waf]\nenabled = false\n");
    let off = off.to_str().unwrap();
    up_ok(&stack, off);
    block_on(async {
        let cf = aws_sdk_cloudfront::Client::new(&sdk_config(&stack.endpoint).await);
        let waf = aws_sdk_wafv2::Client::new(&sdk_config_in(&stack.endpoint, "us-east-1").await);
        assert_eq!(distribution_acl(&cf, &id).await, "");
        assert_eq!(edge_acls(&waf, &s).await, Vec::<String>::new());
    });

    // On again, then down: no ACL of the stack's is left in us-east-1.
    up_ok(&stack, on);
    stack.down(&["--config", on]).assert_ok();
    block_on(async {
        let waf = aws_sdk_wafv2::Client::new(&sdk_config_in(&stack.endpoint, "us-east-1").await);
        assert_eq!(edge_acls(&waf, &s).await, Vec::<String>::new());
    });
}
