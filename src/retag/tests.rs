//! The re-tagging pass's unit tests: the fingerprint, which records are taggable, the plan text.

use super::*;
use chrono::Utc;
use serde_json::json;

fn rec(kind: &str, id: &str) -> ResourceRecord {
    ResourceRecord {
        step: "s".into(),
        kind: kind.into(),
        id: id.into(),
        arn: None,
        name: id.into(),
        region: "us-east-1".into(),
        attrs: BTreeMap::new(),
        created_at: Utc::now(),
        pending: false,
        deps: None,
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every `pub const X: &str = "service:type"` in `steps/` and in the resource layer
/// (`src/resources/`, where the kinds of the providers live): the kinds the steps record.
fn kind_constants() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("steps"), root.join("src/resources")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut kinds = Vec::new();
    for path in files {
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub const ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let value = value.trim_end_matches("\";");
            let kind_like = value.split_once(':').is_some_and(|(svc, ty)| {
                !svc.is_empty()
                    && !ty.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-:".contains(c))
                    && value.matches(':').count() == 1
            });
            if kind_like {
                let file = path.file_name().unwrap().to_string_lossy();
                kinds.push((format!("{file}: {name}"), value.to_string()));
            }
        }
    }
    kinds
}

#[test]
fn every_kind_the_steps_record_is_tagged_or_explicitly_skipped() {
    let kinds = kind_constants();
    // The scan finds the kinds (a change of the constants' layout must not make it pass
    // vacuously).
    assert!(kinds.len() > 40, "{kinds:?}");
    assert!(kinds.iter().any(|(_, v)| v == "ec2:vpc"));
    let mut forgotten = Vec::new();
    for (at, kind) in &kinds {
        match (api_of(kind).is_some(), SKIPPED.contains(&kind.as_str())) {
            (true, true) => panic!("{at} ({kind}) is both tagged and skipped"),
            (false, false) => forgotten.push(format!("{at} ({kind})")),
            _ => {}
        }
    }
    assert!(
        forgotten.is_empty(),
        "kinds neither tagged by retag nor in retag::SKIPPED: {forgotten:?}"
    );
    // And the skip list names only real kinds.
    for s in SKIPPED {
        assert!(
            kinds.iter().any(|(_, v)| v == s),
            "{s} is no kind of steps/"
        );
    }
}

#[test]
fn fingerprint_ignores_order_and_name_and_follows_values() {
    let a = pairs(&[
        ("Name", "vpc-dev"),
        ("Environment", "dev"),
        ("Team", "platform"),
        ("CostCenter", "fintech"),
        ("fintech-infra:stack", "dev"),
    ]);
    let mut b = a.clone();
    b.reverse();
    b.retain(|(k, _)| k != "Name");
    assert_eq!(fingerprint(&a), fingerprint(&b));
    assert!(fingerprint(&a).starts_with("v1:"));
    let mut c = b.clone();
    c[1].1 = "payments".into();
    assert_ne!(fingerprint(&b), fingerprint(&c));
    // A value cannot pass for a neighbouring key.
    let d = pairs(&[("Team", "a=b")]);
    let e = pairs(&[("Team=a", "b")]);
    assert_ne!(fingerprint(&d), fingerprint(&e));
}

#[test]
fn targets_are_the_live_taggable_records_plus_secret_zone_and_peer_side() {
    let mut state = StateFile::new("dev", "us-east-1");
    let mut pending = rec(network::VPC, "(pending) vpc-dev");
    pending.pending = true;
    let mut ns = rec(cluster::NAMESPACE, "ns-1");
    ns.attrs
        .insert(cluster::ATTR_HOSTED_ZONE.into(), "Z123".into());
    let mut pcx = rec(dr_network::PEERING, "pcx-1");
    pcx.attrs.insert("peer_region".into(), "us-west-2".into());
    let mut no_region = rec(storage::BUCKET, "assets-dev");
    no_region.region = String::new();
    state.resources = vec![
        rec(network::VPC, "vpc-1"),
        pending,
        rec(network::ROUTE, "r-1"),
        rec(kms::ALIAS, "alias/fintech-dev"),
        ns,
        pcx,
        no_region,
        rec("future:kind", "x"),
    ];
    state.outputs.insert(
        database::OUT_SECRET_ARN.into(),
        json!("arn:aws:secretsmanager:us-east-1:1:secret:rds!cluster-1"),
    );
    let t = targets(&state, "us-east-1");
    let seen: Vec<(Api, &str, &str)> = t
        .iter()
        .map(|t| (t.api, t.rec.id.as_str(), t.rec.region.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Api::Ec2, "vpc-1", "us-east-1"),
            (Api::HostedZone, "ns-1", "us-east-1"),
            (Api::CloudMap, "ns-1", "us-east-1"),
            (Api::Ec2, "pcx-1", "us-west-2"),
            (Api::Ec2, "pcx-1", "us-east-1"),
            (Api::S3, "assets-dev", "us-east-1"),
            (
                Api::SecretsManager,
                "arn:aws:secretsmanager:us-east-1:1:secret:rds!cluster-1",
                "us-east-1"
            ),
        ]
    );
}

#[test]
fn arns_come_from_the_record_or_are_built_as_each_service_documents_them() {
    let mut g = rec(crate::resources::logs::log_group::KIND, "/ecs/web-dev");
    g.arn = Some("arn:aws:logs:us-east-1:1:log-group:/ecs/web-dev:*".into());
    assert_eq!(
        arn_of(&g, "1"),
        "arn:aws:logs:us-east-1:1:log-group:/ecs/web-dev"
    );
    g.arn = None;
    assert_eq!(
        arn_of(&g, "2"),
        "arn:aws:logs:us-east-1:2:log-group:/ecs/web-dev"
    );
    let mut alarm = rec(alarms::ALARM, "alb-5xx-dev");
    alarm.region = "cn-north-1".into();
    assert_eq!(
        arn_of(&alarm, "3"),
        "arn:aws-cn:cloudwatch:cn-north-1:3:alarm:alb-5xx-dev"
    );
    assert_eq!(
        arn_of(&rec(validator::MAPPING, "uuid-1"), "4"),
        "arn:aws:lambda:us-east-1:4:event-source-mapping:uuid-1"
    );
    let mut svc = rec(services::SERVICE, "web-dev");
    svc.attrs.insert("cluster".into(), "cluster-dev".into());
    assert_eq!(
        arn_of(&svc, "5"),
        "arn:aws:ecs:us-east-1:5:service/cluster-dev/web-dev"
    );
    // An ID that is an ARN (policies, target groups, topics) is used as it is.
    let tg = rec(
        alb::TARGET_GROUP,
        "arn:aws:elasticloadbalancing:us-east-1:1:tg/x",
    );
    assert_eq!(arn_of(&tg, "9"), tg.id);
    let mut vault = rec(dr_backup::VAULT, "vault-dev");
    vault.region = "us-gov-west-1".into();
    assert_eq!(
        arn_of(&vault, "6"),
        "arn:aws-us-gov:backup:us-gov-west-1:6:backup-vault:vault-dev"
    );
}

#[test]
fn bucket_tags_are_merged_because_put_replaces_them() {
    let base = pairs(&[("Team", "payments"), ("CostCenter", "cc-42")]);
    let current = pairs(&[("Name", "assets"), ("Team", "platform"), ("Owner", "ops")]);
    let merged = merged_bucket_tags(&current, &base).unwrap();
    assert_eq!(
        merged,
        pairs(&[
            ("Name", "assets"),
            ("Owner", "ops"),
            ("Team", "payments"),
            ("CostCenter", "cc-42"),
        ])
    );
    // Already carrying them: no write.
    assert_eq!(merged_bucket_tags(&merged, &base), None);
    assert_eq!(merged_bucket_tags(&[], &base), Some(base.clone()));
}

#[test]
fn hosted_zone_ids_lose_route53s_prefix() {
    assert_eq!(bare_zone_id("/hostedzone/Z123"), "Z123");
    assert_eq!(bare_zone_id("Z123"), "Z123");
}

fn aws_err(operation: &'static str, code: &str, message: &str) -> AwsError {
    AwsError {
        operation,
        resource: "r".into(),
        code: Some(code.into()),
        message: Some(message.into()),
        source: Box::new(std::io::Error::other("x")),
    }
}

#[test]
fn a_resource_that_is_gone_is_skipped_other_errors_count() {
    for (op, code) in [
        ("ec2:CreateTags", "InvalidVpcID.NotFound"),
        ("s3:GetBucketTagging", "NoSuchBucket"),
        ("iam:TagRole", "NoSuchEntity"),
        ("sqs:TagQueue", "AWS.SimpleQueueService.NonExistentQueue"),
        ("wafv2:TagResource", "WAFNonexistentItemException"),
        ("route53:ChangeTagsForResource", "NoSuchHostedZone"),
        ("rds:AddTagsToResource", "DBClusterNotFoundFault"),
    ] {
        assert!(is_gone(&aws_err(op, code, "")), "{op} {code}");
    }
    assert!(is_gone(&aws_err(
        "ecs:TagResource",
        "InvalidParameterException",
        "The specified service was not found"
    )));
    for (op, code) in [
        ("ec2:CreateTags", "UnauthorizedOperation"),
        ("kms:TagResource", "KMSInvalidStateException"),
        ("lambda:TagResource", "InvalidParameterException"),
    ] {
        assert!(!is_gone(&aws_err(op, code, "not found")), "{op} {code}");
    }
    assert_eq!(
        tally(Err(aws_err("iam:TagRole", "NoSuchEntity", "")), 1).unwrap(),
        Tally { tagged: 0, gone: 1 }
    );
    assert!(tally(Err(aws_err("iam:TagRole", "AccessDenied", "")), 1).is_err());
}

#[test]
fn the_plan_detail_lists_the_tag_set() {
    let base = pairs(&[("Environment", "prod"), ("Team", "payments")]);
    assert_eq!(describe(&base), "Environment=prod, Team=payments");
}
