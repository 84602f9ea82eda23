//! Tests of KMS evaluation: key-policy delegation to IAM, direct grants, service principals.

use super::*;

/// The KMS default key policy's first statement, plus a service statement.
fn key_policy(extra: Value) -> Policy {
    let mut statements = vec![json!({"Sid":"Enable IAM User Permissions","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"})];
    if let Value::Array(a) = extra {
        statements.extend(a);
    }
    p(json!({"Version":"2012-10-17","Id":"key-default-1","Statement":statements}))
        .with_label("key policy")
}

#[test]
fn kms_root_delegation_needs_an_identity_policy() {
    let key = key_policy(json!([]));
    let r = req("kms:Decrypt", KEY);
    let ev = evaluate_kms_detailed(&key, &[], &r);
    assert!(ev.delegation.is_allowed());
    assert_eq!(ev.key_policy, Decision::ImplicitDeny);
    assert_eq!(ev.decision, Decision::ImplicitDeny);
    let id = p(json!({"Statement":[{"Sid":"UseKey","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":KEY}]}))
        .with_label("role policy kms");
    let d = evaluate_kms(&key, std::slice::from_ref(&id), &r);
    assert_eq!(
        d.to_string(),
        r#"allowed by statement "UseKey" of role policy kms"#
    );
    assert!(evaluate_kms(
        &key,
        std::slice::from_ref(&id),
        &req("kms:GenerateDataKeyWithoutPlaintext", KEY)
    )
    .is_allowed());
    assert!(!evaluate_kms(
        &key,
        std::slice::from_ref(&id),
        &req("kms:ScheduleKeyDeletion", KEY)
    )
    .is_allowed());
    // The bare account id delegates the same way.
    let bare = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":ACCT},"Action":"kms:*","Resource":"*"}]}),
    );
    assert!(evaluate_kms(&bare, std::slice::from_ref(&id), &r).is_allowed());
}

#[test]
fn kms_identity_policy_is_useless_without_delegation() {
    // A key policy without the root statement: IAM policies cannot grant access.
    let key = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":"kms:*","Resource":"*"}]}),
    );
    let id = p(json!({"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}));
    let ev = evaluate_kms_detailed(&key, &[id], &req("kms:Decrypt", KEY));
    assert!(ev.identity.is_allowed());
    assert_eq!(ev.delegation, Decision::ImplicitDeny);
    assert_eq!(ev.decision, Decision::ImplicitDeny);
    // Whereas the generic evaluation (not KMS) would have allowed.
    assert!(evaluate(
        &[p(
            json!({"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]})
        )],
        Some(&key),
        &req("kms:Decrypt", KEY)
    )
    .is_allowed());
}

#[test]
fn kms_direct_grant_in_key_policy() {
    let key = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"TaskDecrypt","Effect":"Allow",
        "Principal":{"AWS":ROLE},"Action":"kms:Decrypt","Resource":"*"}]}),
    );
    assert_eq!(
        evaluate_kms(&key, &[], &req("kms:Decrypt", KEY)).sid(),
        Some("TaskDecrypt")
    );
    assert!(!evaluate_kms(&key, &[], &req("kms:Encrypt", KEY)).is_allowed());
}

#[test]
fn kms_explicit_deny_anywhere_wins() {
    let key = key_policy(
        json!([{"Sid":"NoDeleteEver","Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion","Resource":"*"}]),
    );
    let admin = p(json!({"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}));
    assert_eq!(
        evaluate_kms(
            &key,
            std::slice::from_ref(&admin),
            &req("kms:ScheduleKeyDeletion", KEY)
        )
        .sid(),
        Some("NoDeleteEver")
    );
    let guard = p(
        json!({"Statement":[{"Sid":"IdDeny","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}),
    );
    let direct = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":ROLE},"Action":"kms:*","Resource":"*"}]}),
    );
    assert_eq!(
        evaluate_kms(&direct, &[admin, guard], &req("kms:Decrypt", KEY)).sid(),
        Some("IdDeny")
    );
}

#[test]
fn kms_service_principals_only_through_key_policy() {
    // CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS".
    let lg = "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/api";
    let key = key_policy(json!([
        {"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},
         "Action":["kms:Encrypt*","kms:Decrypt*","kms:ReEncrypt*","kms:GenerateDataKey*","kms:Describe*"],"Resource":"*",
         "Condition":{"ArnLike":{"kms:EncryptionContext:aws:logs:arn":"arn:aws:logs:us-east-1:111122223333:log-group:*"}}},
        {"Sid":"CloudFrontOAC","Effect":"Allow","Principal":{"Service":"cloudfront.amazonaws.com"},
         "Action":["kms:Decrypt","kms:Encrypt","kms:GenerateDataKey*"],"Resource":"*",
         "Condition":{"StringEquals":{"AWS:SourceArn":DIST}}},
        {"Sid":"Alarms","Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},
         "Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}
    ]));
    let logs = PrincipalRef::service("logs.us-east-1.amazonaws.com");
    let ok = Request::new(logs.clone(), "kms:GenerateDataKey", KEY)
        .with("kms:EncryptionContext:aws:logs:arn", lg);
    assert_eq!(evaluate_kms(&key, &[], &ok).sid(), Some("Logs"));
    assert!(!evaluate_kms(
        &key,
        &[],
        &Request::new(logs.clone(), "kms:GenerateDataKey", KEY)
    )
    .is_allowed());
    let foreign = Request::new(logs, "kms:GenerateDataKey", KEY).with(
        "kms:encryptioncontext:aws:logs:arn",
        "arn:aws:logs:us-east-1:444455556666:log-group:x",
    );
    assert!(!evaluate_kms(&key, &[], &foreign).is_allowed());
    let cf = Request::new(
        PrincipalRef::service("cloudfront.amazonaws.com"),
        "kms:Decrypt",
        KEY,
    )
    .with("aws:sourcearn", DIST);
    assert_eq!(evaluate_kms(&key, &[], &cf).sid(), Some("CloudFrontOAC"));
    let cw = Request::new(
        PrincipalRef::service("cloudwatch.amazonaws.com"),
        "kms:Decrypt",
        KEY,
    );
    assert_eq!(evaluate_kms(&key, &[], &cw).sid(), Some("Alarms"));
    // Root delegation does not extend to services, whatever identity policies say.
    let sns = Request::new(
        PrincipalRef::service("sns.amazonaws.com"),
        "kms:Decrypt",
        KEY,
    );
    let all = p(json!({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}));
    let ev = evaluate_kms_detailed(&key, &[all], &sns);
    assert_eq!(ev.delegation, Decision::ImplicitDeny);
    assert_eq!(ev.decision, Decision::ImplicitDeny);
}

#[test]
fn kms_via_service_for_sqs_encrypted_queue() {
    // KMS Developer Guide, "kms:ViaService": the producer may use the key only through SQS.
    let key = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"ProducerViaSqs","Effect":"Allow",
        "Principal":{"AWS":ROLE},"Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*",
        "Condition":{"StringEquals":{"kms:ViaService":"sqs.us-east-1.amazonaws.com","kms:CallerAccount":ACCT}}}]}),
    );
    let via = req("kms:GenerateDataKey", KEY).with("kms:ViaService", "sqs.us-east-1.amazonaws.com");
    assert_eq!(evaluate_kms(&key, &[], &via).sid(), Some("ProducerViaSqs"));
    // Direct call (no ViaService): implicitly denied.
    assert_eq!(
        evaluate_kms(&key, &[], &req("kms:GenerateDataKey", KEY)),
        Decision::ImplicitDeny
    );
    let other =
        req("kms:GenerateDataKey", KEY).with("kms:ViaService", "s3.us-east-1.amazonaws.com");
    assert_eq!(evaluate_kms(&key, &[], &other), Decision::ImplicitDeny);
    // The AWS-managed-key pattern: "AWS": "*" with CallerAccount + ViaService.
    let managed = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"Managed","Effect":"Allow","Principal":{"AWS":"*"},
        "Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*",
        "Condition":{"StringEquals":{"kms:CallerAccount":ACCT,"kms:ViaService":"sqs.us-east-1.amazonaws.com"}}}]}),
    );
    assert!(evaluate_kms(&managed, &[], &via).is_allowed());
    let outsider = Request::new(
        PrincipalRef::aws("arn:aws:iam::444455556666:role/x").unwrap(),
        "kms:Decrypt",
        KEY,
    )
    .with("kms:ViaService", "sqs.us-east-1.amazonaws.com");
    assert!(!evaluate_kms(&managed, &[], &outsider).is_allowed());
    // The delegating statement's conditions apply to the real request.
    let cond_root = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":ACCT},"Action":"kms:*","Resource":"*",
        "Condition":{"StringEquals":{"kms:ViaService":"sqs.us-east-1.amazonaws.com"}}}]}),
    );
    let id = p(json!({"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}));
    assert!(evaluate_kms(&cond_root, std::slice::from_ref(&id), &via).is_allowed());
    assert!(!evaluate_kms(
        &cond_root,
        std::slice::from_ref(&id),
        &req("kms:Decrypt", KEY)
    )
    .is_allowed());
}
