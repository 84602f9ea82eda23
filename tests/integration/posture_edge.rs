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
