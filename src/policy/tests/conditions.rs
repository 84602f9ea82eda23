//! Tests of condition operators, multivalued keys and policy variables.

use super::*;

fn cond(op: &str, key: &str, vals: Value) -> Policy {
    p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"C","Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{op:{key:vals}}}]}),
    )
}
fn holds(pol: &Policy, r: &Request) -> bool {
    id_allows(pol, r)
}

#[test]
fn missing_keys_make_positive_false_and_negated_true() {
    let base = req("s3:GetObject", "*");
    assert!(!holds(
        &cond("StringEquals", "aws:SourceVpce", json!("vpce-1")),
        &base
    ));
    assert!(!holds(
        &cond("StringLike", "aws:SourceVpce", json!("vpce-*")),
        &base
    ));
    assert!(!holds(
        &cond("ArnLike", "aws:SourceArn", json!("arn:*")),
        &base
    ));
    assert!(!holds(
        &cond("Bool", "aws:SecureTransport", json!("true")),
        &base
    ));
    assert!(!holds(
        &cond("NumericLessThan", "s3:max-keys", json!("10")),
        &base
    ));
    assert!(holds(
        &cond("StringNotEquals", "aws:SourceVpce", json!("vpce-1")),
        &base
    ));
    assert!(holds(
        &cond("StringNotLike", "aws:SourceVpce", json!("vpce-*")),
        &base
    ));
    assert!(holds(
        &cond("ArnNotLike", "aws:SourceArn", json!("arn:*")),
        &base
    ));
    assert!(holds(
        &cond("NotIpAddress", "aws:SourceIp", json!("10.0.0.0/8")),
        &base
    ));
    // An empty list counts as missing.
    let empty = base
        .clone()
        .with_values("aws:SourceVpce", Vec::<String>::new());
    assert!(!holds(
        &cond("StringEquals", "aws:SourceVpce", json!("vpce-1")),
        &empty
    ));
}

#[test]
fn if_exists_is_true_when_missing_and_normal_when_present() {
    let pol = cond(
        "StringEqualsIfExists",
        "ec2:InstanceType",
        json!(["t3.micro", "t3.small"]),
    );
    assert!(holds(&pol, &req("ec2:RunInstances", "*")));
    assert!(holds(
        &pol,
        &req("ec2:RunInstances", "*").with("ec2:InstanceType", "t3.small")
    ));
    assert!(!holds(
        &pol,
        &req("ec2:RunInstances", "*").with("ec2:InstanceType", "m5.large")
    ));
    let neg = cond(
        "StringNotEqualsIfExists",
        "ec2:InstanceType",
        json!("t3.micro"),
    );
    assert!(holds(&neg, &req("ec2:RunInstances", "*")));
    assert!(!holds(
        &neg,
        &req("ec2:RunInstances", "*").with("ec2:InstanceType", "t3.micro")
    ));
}

#[test]
fn multiple_values_or_and_multiple_keys_and() {
    let or = cond(
        "StringEquals",
        "aws:RequestedRegion",
        json!(["us-east-1", "us-west-2"]),
    );
    assert!(holds(
        &or,
        &req("ec2:X", "*").with("aws:RequestedRegion", "us-west-2")
    ));
    assert!(!holds(
        &or,
        &req("ec2:X", "*").with("aws:RequestedRegion", "eu-west-1")
    ));
    // Negated with several values: must equal none of them.
    let nor = cond(
        "StringNotEquals",
        "aws:RequestedRegion",
        json!(["us-east-1", "us-west-2"]),
    );
    assert!(!holds(
        &nor,
        &req("ec2:X", "*").with("aws:RequestedRegion", "us-west-2")
    ));
    assert!(holds(
        &nor,
        &req("ec2:X", "*").with("aws:RequestedRegion", "eu-west-1")
    ));
    // Two keys (and two operators) must all hold.
    let and = p(
        json!({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
        "StringEquals":{"aws:SourceAccount":ACCT,"aws:RequestedRegion":"us-east-1"},
        "Bool":{"aws:SecureTransport":"true"}}}]}),
    );
    let full = req("x:y", "*")
        .with("aws:SourceAccount", ACCT)
        .with("aws:RequestedRegion", "us-east-1")
        .with("aws:SecureTransport", "true");
    assert!(holds(&and, &full));
    let mut partial = full.clone();
    partial.context.remove("aws:SecureTransport");
    assert!(!holds(&and, &partial));
    let wrong = full.with("aws:RequestedRegion", "ignored-second-value");
    assert!(
        holds(&and, &wrong),
        "single-valued operators act as ForAnyValue on multi-valued keys"
    );
}

#[test]
fn condition_keys_are_case_insensitive_values_are_not() {
    let pol = cond("StringEquals", "AWS:SourceArn", json!(DIST));
    assert!(holds(
        &pol,
        &req("s3:GetObject", "*").with("aws:sourcearn", DIST)
    ));
    assert!(holds(
        &pol,
        &req("s3:GetObject", "*").with("aws:SourceArn", DIST)
    ));
    assert!(!holds(
        &pol,
        &req("s3:GetObject", "*").with("aws:SourceArn", DIST.to_lowercase())
    ));
    let ci = cond("StringEqualsIgnoreCase", "aws:SourceArn", json!(DIST));
    assert!(holds(
        &ci,
        &req("s3:GetObject", "*").with("aws:SourceArn", DIST.to_lowercase())
    ));
    let neg_ci = cond("StringNotEqualsIgnoreCase", "aws:SourceArn", json!(DIST));
    assert!(!holds(
        &neg_ci,
        &req("s3:GetObject", "*").with("aws:SourceArn", DIST.to_uppercase())
    ));
}

#[test]
fn for_any_value_and_for_all_values() {
    // IAM User Guide, "Multivalued context keys", aws:TagKeys examples.
    let any = cond(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        json!(["environment", "cost-center"]),
    );
    let all = cond(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        json!(["environment", "cost-center"]),
    );
    let some = req("ec2:CreateTags", "*").with_values("aws:TagKeys", ["environment", "owner"]);
    let subset = req("ec2:CreateTags", "*").with_values("aws:TagKeys", ["environment"]);
    let none = req("ec2:CreateTags", "*");
    assert!(holds(&any, &some));
    assert!(!holds(&all, &some));
    assert!(holds(&all, &subset));
    assert!(
        holds(&all, &none),
        "ForAllValues is true when the key is missing"
    );
    assert!(
        !holds(&any, &none),
        "ForAnyValue is false when the key is missing"
    );
    assert!(holds(
        &cond(
            "ForAnyValue:StringEqualsIfExists",
            "aws:TagKeys",
            json!("x")
        ),
        &none
    ));
    // Negated set operators: per request value.
    let any_not = cond(
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        json!(["environment"]),
    );
    assert!(holds(&any_not, &some));
    assert!(!holds(&any_not, &subset));
    let all_not = cond("ForAllValues:StringNotLike", "aws:TagKeys", json!(["env*"]));
    assert!(!holds(&all_not, &some));
    assert!(holds(
        &all_not,
        &req("x:y", "*").with_values("aws:TagKeys", ["owner", "team"])
    ));
}

#[test]
fn null_checks_presence() {
    let absent = cond("Null", "aws:TokenIssueTime", json!("true"));
    let present = cond("Null", "aws:TokenIssueTime", json!(false));
    let with = req("x:y", "*").with("aws:TokenIssueTime", "2026-01-01T00:00:00Z");
    assert!(holds(&absent, &req("x:y", "*")));
    assert!(!holds(&absent, &with));
    assert!(holds(&present, &with));
    assert!(!holds(&present, &req("x:y", "*")));
}

#[test]
fn string_like_arn_like_and_arn_equals() {
    let like = cond("StringLike", "s3:prefix", json!(["home/*", "shared/??/x"]));
    assert!(holds(
        &like,
        &req("s3:ListBucket", "*").with("s3:prefix", "home/a/b:c")
    ));
    assert!(holds(
        &like,
        &req("s3:ListBucket", "*").with("s3:prefix", "shared/ab/x")
    ));
    assert!(!holds(
        &like,
        &req("s3:ListBucket", "*").with("s3:prefix", "shared/abc/x")
    ));
    let arn = cond(
        "ArnLike",
        "aws:SourceArn",
        json!("arn:aws:sns:*:111122223333:alerts-*"),
    );
    assert!(holds(
        &arn,
        &req("sqs:SendMessage", "*").with(
            "aws:SourceArn",
            "arn:aws:sns:us-east-1:111122223333:alerts-high"
        )
    ));
    assert!(!holds(
        &arn,
        &req("sqs:SendMessage", "*").with(
            "aws:SourceArn",
            "arn:aws:sns:us-east-1:999988887777:alerts-high"
        )
    ));
    assert!(!holds(
        &arn,
        &req("sqs:SendMessage", "*").with("aws:SourceArn", "not-an-arn")
    ));
    // ArnEquals also takes wildcards per segment; a `*` never spans segments.
    let eq = cond(
        "ArnEquals",
        "aws:SourceArn",
        json!("arn:aws:sns:us-east-1:*:alerts"),
    );
    assert!(holds(
        &eq,
        &req("x:y", "*").with("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:alerts")
    ));
    let seg = cond("ArnLike", "aws:SourceArn", json!("arn:aws:sns:us-*:alerts"));
    assert!(!holds(
        &seg,
        &req("x:y", "*").with("aws:SourceArn", "arn:aws:sns:us-east-1:111122223333:alerts")
    ));
    let neg = cond("ArnNotEquals", "aws:SourceArn", json!(DIST));
    assert!(!holds(&neg, &req("x:y", "*").with("aws:SourceArn", DIST)));
    assert!(holds(
        &neg,
        &req("x:y", "*").with(
            "aws:SourceArn",
            "arn:aws:cloudfront::111122223333:distribution/OTHER"
        )
    ));
}

#[test]
fn numeric_date_ip_and_bool() {
    let n = cond("NumericLessThanEquals", "s3:max-keys", json!(10));
    assert!(holds(&n, &req("x:y", "*").with("s3:max-keys", "10")));
    assert!(!holds(&n, &req("x:y", "*").with("s3:max-keys", "11")));
    assert!(!holds(&n, &req("x:y", "*").with("s3:max-keys", "ten")));
    assert!(holds(
        &cond("NumericNotEquals", "k", json!("3")),
        &req("x:y", "*").with("k", "4")
    ));
    assert!(holds(
        &cond("NumericGreaterThan", "k", json!("3")),
        &req("x:y", "*").with("k", "3.5")
    ));
    let d = cond(
        "DateLessThan",
        "aws:CurrentTime",
        json!("2026-06-01T00:00:00Z"),
    );
    assert!(holds(
        &d,
        &req("x:y", "*").with("aws:CurrentTime", "2026-05-31T23:59:59Z")
    ));
    assert!(!holds(
        &d,
        &req("x:y", "*").with("aws:CurrentTime", "2026-06-01")
    ));
    assert!(holds(
        &cond(
            "DateGreaterThanEquals",
            "aws:EpochTime",
            json!("2026-01-01")
        ),
        &req("x:y", "*").with("aws:EpochTime", "1767225600")
    ));
    let ip = cond(
        "IpAddress",
        "aws:SourceIp",
        json!(["203.0.113.0/24", "2001:db8::/32"]),
    );
    assert!(holds(
        &ip,
        &req("x:y", "*").with("aws:SourceIp", "203.0.113.7")
    ));
    assert!(holds(
        &ip,
        &req("x:y", "*").with("aws:SourceIp", "2001:db8::1")
    ));
    assert!(!holds(
        &ip,
        &req("x:y", "*").with("aws:SourceIp", "198.51.100.1")
    ));
    assert!(!holds(
        &cond("NotIpAddress", "aws:SourceIp", json!("203.0.113.0/24")),
        &req("x:y", "*").with("aws:SourceIp", "203.0.113.9")
    ));
    let b = cond("Bool", "aws:SecureTransport", json!(true));
    assert!(holds(
        &b,
        &req("x:y", "*").with("aws:SecureTransport", "true")
    ));
    assert!(holds(
        &b,
        &req("x:y", "*").with("aws:SecureTransport", "TRUE")
    ));
    assert!(!holds(
        &b,
        &req("x:y", "*").with("aws:SecureTransport", "false")
    ));
}

#[test]
fn deny_insecure_transport_bucket_policy() {
    // The S3 User Guide's "require TLS" bucket policy.
    let bucket = p(
        json!({"Version":"2012-10-17","Statement":[{"Sid":"AllowSSLRequestsOnly","Effect":"Deny",
        "Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::ledger","arn:aws:s3:::ledger/*"],
        "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}),
    );
    let allow = p(
        json!({"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::ledger/*"}]}),
    );
    let plain = req("s3:GetObject", "arn:aws:s3:::ledger/k").with("aws:SecureTransport", "false");
    let tls = req("s3:GetObject", "arn:aws:s3:::ledger/k").with("aws:SecureTransport", "true");
    assert_eq!(
        evaluate(std::slice::from_ref(&allow), Some(&bucket), &plain).sid(),
        Some("AllowSSLRequestsOnly")
    );
    assert!(evaluate(&[allow], Some(&bucket), &tls).is_allowed());
}

#[test]
fn policy_variables_are_substituted_in_2012_documents_only() {
    let doc = |v: Option<&str>| {
        let mut j = json!({"Statement":[{"Effect":"Allow","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::home/${aws:username}/*"}]});
        if let Some(v) = v {
            j["Version"] = json!(v);
        }
        p(j)
    };
    let r = req("s3:GetObject", "arn:aws:s3:::home/alice/notes").with("aws:username", "alice");
    assert!(id_allows(&doc(Some("2012-10-17")), &r));
    assert!(!id_allows(
        &doc(Some("2012-10-17")),
        &req("s3:GetObject", "arn:aws:s3:::home/alice/notes").with("aws:username", "bob")
    ));
    // Missing key, no default: matches nothing (not even a literal "${aws:username}").
    assert!(!id_allows(
        &doc(Some("2012-10-17")),
        &req("s3:GetObject", "arn:aws:s3:::home/${aws:username}/x")
    ));
    // 2008-10-17 (or no Version): literal text.
    assert!(!id_allows(&doc(None), &r));
    assert!(id_allows(
        &doc(None),
        &req("s3:GetObject", "arn:aws:s3:::home/${aws:username}/x")
    ));
    // Defaults, escapes, and a substituted `*` being literal.
    let dflt = p(
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",
        "Resource":"arn:aws:s3:::home/${aws:PrincipalTag/team, 'shared'}/${*}"}]}),
    );
    assert!(id_allows(
        &dflt,
        &req("s3:GetObject", "arn:aws:s3:::home/shared/*")
    ));
    assert!(!id_allows(
        &dflt,
        &req("s3:GetObject", "arn:aws:s3:::home/shared/x")
    ));
    assert!(id_allows(
        &dflt,
        &req("s3:GetObject", "arn:aws:s3:::home/pay/*").with("aws:PrincipalTag/team", "pay")
    ));
    let star = req("s3:GetObject", "arn:aws:s3:::home/alice/notes").with("aws:username", "*");
    assert!(!id_allows(&doc(Some("2012-10-17")), &star));
    // In condition values.
    let c = p(
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}}]}),
    );
    assert!(id_allows(
        &c,
        &req("s3:ListBucket", "*")
            .with("aws:username", "alice")
            .with("s3:prefix", "home/alice/x")
    ));
    assert!(!id_allows(
        &c,
        &req("s3:ListBucket", "*")
            .with("aws:username", "alice")
            .with("s3:prefix", "home/bob/x")
    ));
}
