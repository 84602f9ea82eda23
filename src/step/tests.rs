//! Unit tests of the step context's helpers.

use std::time::Duration;

use super::*;

#[test]
fn poll_cap_takes_0_1_to_60_seconds_and_names_the_range_otherwise() {
    assert_eq!(parse_max_poll("1"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_max_poll("0.5"), Ok(Duration::from_millis(500)));
    for bad in ["0", "-1", "61", "x", ""] {
        let e = parse_max_poll(bad).unwrap_err();
        assert!(e.contains("0.1 to 60"), "{bad}: {e}");
    }
}

/// A context of step `network` in `mode`, over a read-only state in `dir` holding `records`;
/// its AWS endpoint answers nothing, so a test fails if the context calls AWS.
async fn ctx_with(dir: &std::path::Path, mode: Mode, records: &[(&str, &str, bool)]) -> StepCtx {
    use crate::aws::{Aws, AwsOptions};
    let aws = Aws::connect(&AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
        parallelism: 1,
        max_attempts: 1,
        ..AwsOptions::default()
    })
    .await;
    let store = StateStore::open_read_only(&dir.join("t.json"), "t", "us-east-1").unwrap();
    for (kind, name, pending) in records {
        store
            .record(ResourceRecord {
                step: "network".into(),
                kind: kind.to_string(),
                id: format!("id-{name}"),
                arn: None,
                name: name.to_string(),
                region: "us-east-1".into(),
                attrs: BTreeMap::new(),
                created_at: Utc::now(),
                pending: *pending,
                deps: None,
            })
            .unwrap();
    }
    let sh = Shared::new(
        mode,
        crate::naming::Names::new("t"),
        Arc::new(Config::default()),
        Arc::new(aws),
        store,
        Reporter::silent(),
        CancellationToken::new(),
    );
    StepCtx::new("network", Arc::new(sh))
}

/// The new-stack skip (`fresh`) only applies where nothing can exist: every case below is
/// answered without a call to AWS (there is none to answer it).
#[tokio::test]
async fn known_absent_holds_back_wherever_the_resource_may_exist() {
    let dir = tempfile::tempdir().unwrap();
    // A stack with records when the run began: every lookup asks AWS.
    let ctx = ctx_with(dir.path(), Mode::Plan, &[("ec2:subnet", "subnet-a", false)]).await;
    assert!(!ctx.known_absent("ec2:vpc", "vpc-t").await.unwrap());
    // `down`'s adoption pass and `status` never skip.
    let dir = tempfile::tempdir().unwrap();
    for mode in [Mode::Refresh, Mode::Status, Mode::Down] {
        let ctx = ctx_with(dir.path(), mode, &[]).await;
        assert!(
            !ctx.known_absent("ec2:vpc", "vpc-t").await.unwrap(),
            "{mode:?}"
        );
    }
    let ctx = ctx_with(dir.path(), Mode::Up, &[]).await;
    // Kinds whose create would hand back or overwrite someone else's resource, and global
    // or untagged ones.
    for kind in [
        "sqs:queue",
        "ecs:cluster",
        "iam:role",
        "s3:bucket",
        "cloudwatch:alarm",
    ] {
        assert!(!ctx.known_absent(kind, "x").await.unwrap(), "{kind}");
    }
    // Another region (the DR region's context).
    let dr = ctx.in_region("us-west-2");
    assert!(!dr.known_absent("ec2:vpc", "vpc-t").await.unwrap());
    // A name that collided in this run.
    ctx.collided("ec2:vpc", "vpc-t");
    assert!(!ctx.known_absent("ec2:vpc", "vpc-t").await.unwrap());
    // A write-ahead record of this very resource (a create whose answer was lost), recorded
    // after the run began.
    ctx.record_pending("ec2:subnet", "subnet-b").unwrap();
    assert!(!ctx.known_absent("ec2:subnet", "subnet-b").await.unwrap());
    // Otherwise the stack's tagged resources are read, which here fails: the error is
    // returned, never taken for "absent".
    assert!(ctx.known_absent("ec2:subnet", "subnet-c").await.is_err());
}
