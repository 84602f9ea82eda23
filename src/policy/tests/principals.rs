//! Tests of principals and resource-based policies (bucket, queue and trust policies).

use super::*;

#[test]
fn resource_policy_alone_allows_the_named_role_in_same_account() {
    // IAM User Guide, "same account": either side's allow is enough.
    let queue = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"ApiSends","Effect":"Allow",
        "Principal":{"AWS":ROLE},"Action":"sqs:SendMessage","Resource":QUEUE}]}),
    );
    let ev = evaluate_detailed(&[], Some(&queue), &req("sqs:SendMessage", QUEUE));
    assert_eq!(ev.identity, Decision::ImplicitDeny);
    assert_eq!(ev.decision.sid(), Some("ApiSends"));
    let other = Request::new(
        PrincipalRef::aws("arn:aws:iam::111122223333:role/other").unwrap(),
        "sqs:SendMessage",
        QUEUE,
    );
    assert_eq!(evaluate(&[], Some(&queue), &other), Decision::ImplicitDeny);
}

#[test]
fn account_principal_delegates_and_does_not_grant_by_itself() {
    for entry in [ACCT, "arn:aws:iam::111122223333:root"] {
        let queue = p(
            json!({"Statement":[{"Sid":"Acct","Effect":"Allow","Principal":{"AWS":entry},
            "Action":"sqs:*","Resource":QUEUE}]}),
        );
        assert_eq!(
            evaluate(&[], Some(&queue), &req("sqs:SendMessage", QUEUE)),
            Decision::ImplicitDeny
        );
        // ... but the root itself is named.
        let r = Request::new(PrincipalRef::root(ACCT), "sqs:SendMessage", QUEUE);
        assert!(evaluate(&[], Some(&queue), &r).is_allowed());
        let id = p(
            json!({"Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":QUEUE}]}),
        );
        assert!(evaluate(&[id], Some(&queue), &req("sqs:SendMessage", QUEUE)).is_allowed());
    }
}

#[test]
fn role_arn_principal_covers_its_sessions() {
    let queue = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":ROLE},"Action":"sqs:SendMessage","Resource":QUEUE}]}),
    );
    let session =
        PrincipalRef::aws("arn:aws:sts::111122223333:assumed-role/api-task/4f2a").unwrap();
    assert!(evaluate(
        &[],
        Some(&queue),
        &Request::new(session, "sqs:SendMessage", QUEUE)
    )
    .is_allowed());
    let other = PrincipalRef::aws("arn:aws:sts::111122223333:assumed-role/worker/4f2a").unwrap();
    assert!(!evaluate(
        &[],
        Some(&queue),
        &Request::new(other, "sqs:SendMessage", QUEUE)
    )
    .is_allowed());
}

#[test]
fn resource_statement_without_principal_never_applies() {
    let bad = p(json!({"Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}));
    assert_eq!(
        bad.decide(&req("sqs:SendMessage", QUEUE), PolicyKind::Resource),
        Decision::ImplicitDeny
    );
}

#[test]
fn s3_bucket_policy_for_cloudfront_oac() {
    // CloudFront Developer Guide, "Restrict access to an Amazon S3 origin" (OAC).
    let bucket = p(
        json!({"Version":"2012-10-17","Statement":{"Sid":"AllowCloudFrontServicePrincipalReadOnly",
        "Effect":"Allow","Principal":{"Service":"cloudfront.amazonaws.com"},"Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::static-site/*","Condition":{"StringEquals":{"AWS:SourceArn":DIST}}}}),
    );
    let cf = PrincipalRef::service("cloudfront.amazonaws.com");
    let ok = Request::new(
        cf.clone(),
        "s3:GetObject",
        "arn:aws:s3:::static-site/index.html",
    )
    .with("aws:SourceArn", DIST);
    assert_eq!(
        evaluate(&[], Some(&bucket), &ok).sid(),
        Some("AllowCloudFrontServicePrincipalReadOnly")
    );
    // Another distribution (the confused-deputy case the condition exists for).
    let other = Request::new(
        cf.clone(),
        "s3:GetObject",
        "arn:aws:s3:::static-site/index.html",
    )
    .with(
        "aws:SourceArn",
        "arn:aws:cloudfront::444455556666:distribution/EOTHER",
    );
    assert_eq!(evaluate(&[], Some(&bucket), &other), Decision::ImplicitDeny);
    // No SourceArn at all.
    let bare = Request::new(
        cf.clone(),
        "s3:GetObject",
        "arn:aws:s3:::static-site/index.html",
    );
    assert_eq!(evaluate(&[], Some(&bucket), &bare), Decision::ImplicitDeny);
    // Identity policies never speak for a service principal.
    let all = p(json!({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}));
    let put =
        Request::new(cf, "s3:PutObject", "arn:aws:s3:::static-site/x").with("aws:SourceArn", DIST);
    assert_eq!(
        evaluate(&[all], Some(&bucket), &put),
        Decision::ImplicitDeny
    );
    // And a role is not the service.
    assert!(!evaluate(
        &[],
        Some(&bucket),
        &req("s3:GetObject", "arn:aws:s3:::static-site/x").with("aws:SourceArn", DIST)
    )
    .is_allowed());
}

#[test]
fn everyone_principal_constrained_by_conditions() {
    // SQS Developer Guide: a queue policy letting an SNS topic send, with "AWS": "*".
    let topic = "arn:aws:sns:us-east-1:111122223333:payment-events";
    let queue = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"TopicToQueue","Effect":"Allow",
        "Principal":{"AWS":"*"},"Action":"sqs:SendMessage","Resource":QUEUE,
        "Condition":{"ArnEquals":{"aws:SourceArn":topic}}}]}),
    );
    let sns = PrincipalRef::service("sns.amazonaws.com");
    assert!(evaluate(
        &[],
        Some(&queue),
        &Request::new(sns.clone(), "sqs:SendMessage", QUEUE).with("aws:SourceArn", topic)
    )
    .is_allowed());
    assert!(!evaluate(
        &[],
        Some(&queue),
        &Request::new(sns, "sqs:SendMessage", QUEUE)
    )
    .is_allowed());
    assert!(!evaluate(&[], Some(&queue), &req("sqs:SendMessage", QUEUE)).is_allowed());
    // "*" and an automatically filled aws:PrincipalAccount.
    let org = p(
        json!({"Statement":[{"Sid":"Acct","Effect":"Allow","Principal":"*","Action":"sqs:SendMessage",
        "Resource":QUEUE,"Condition":{"StringEquals":{"aws:PrincipalAccount":ACCT}}}]}),
    );
    assert!(evaluate(&[], Some(&org), &req("sqs:SendMessage", QUEUE)).is_allowed());
    let outsider = PrincipalRef::aws("arn:aws:iam::444455556666:role/x").unwrap();
    assert!(!evaluate(
        &[],
        Some(&org),
        &Request::new(outsider, "sqs:SendMessage", QUEUE)
    )
    .is_allowed());
}

#[test]
fn not_principal_with_deny_spares_only_fully_listed_principals() {
    // IAM User Guide, "NotPrincipal with Deny": list the role and its account.
    let doc = |entries: Value| {
        p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"Allow","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},
        {"Sid":"OnlyApi","Effect":"Deny","NotPrincipal":{"AWS":entries},"Action":"s3:*","Resource":"*"}]}))
    };
    let both = doc(json!([ROLE, "arn:aws:iam::111122223333:root"]));
    assert!(both
        .decide(
            &req("s3:GetObject", "arn:aws:s3:::b/k"),
            PolicyKind::Resource
        )
        .is_allowed());
    let other = Request::new(
        PrincipalRef::aws("arn:aws:iam::111122223333:role/other").unwrap(),
        "s3:GetObject",
        "arn:aws:s3:::b/k",
    );
    assert_eq!(
        both.decide(&other, PolicyKind::Resource).sid(),
        Some("OnlyApi")
    );
    // Role listed without its account: AWS may deny the account first, so we say denied.
    let role_only = doc(json!([ROLE]));
    assert_eq!(
        role_only
            .decide(
                &req("s3:GetObject", "arn:aws:s3:::b/k"),
                PolicyKind::Resource
            )
            .sid(),
        Some("OnlyApi")
    );
    // A session needs the session ARN listed too.
    let session = PrincipalRef::aws("arn:aws:sts::111122223333:assumed-role/api-task/s1").unwrap();
    let sr = Request::new(session, "s3:GetObject", "arn:aws:s3:::b/k");
    assert!(matches!(
        both.decide(&sr, PolicyKind::Resource),
        Decision::ExplicitDeny(_)
    ));
    let full = doc(json!([
        ROLE,
        ACCT,
        "arn:aws:sts::111122223333:assumed-role/api-task/s1"
    ]));
    assert!(full.decide(&sr, PolicyKind::Resource).is_allowed());
    // Services are excluded by name.
    let svc = p(
        json!({"Statement":[{"Effect":"Deny","NotPrincipal":{"Service":"cloudfront.amazonaws.com"},"Action":"s3:*","Resource":"*"}]}),
    );
    let cf = Request::new(
        PrincipalRef::service("cloudfront.amazonaws.com"),
        "s3:GetObject",
        "*",
    );
    assert_eq!(
        svc.decide(&cf, PolicyKind::Resource),
        Decision::ImplicitDeny
    );
    assert!(matches!(
        svc.decide(&req("s3:GetObject", "*"), PolicyKind::Resource),
        Decision::ExplicitDeny(_)
    ));
}
