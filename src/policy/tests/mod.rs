//! The policy evaluator's unit tests: shared fixtures, parsing and the evaluation logic here;
//! conditions, principals and KMS in submodules.

use super::matching::{glob, literal_tokens, resource_matches};
use super::*;
use serde_json::json;

const ACCT: &str = "111122223333";
const ROLE: &str = "arn:aws:iam::111122223333:role/app/api-task";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const QUEUE: &str = "arn:aws:sqs:us-east-1:111122223333:payments";
const DIST: &str = "arn:aws:cloudfront::111122223333:distribution/EDFDVBD6EXAMPLE";

fn p(v: Value) -> Policy {
    Policy::from_value(&v).expect("test policy parses")
}
fn role() -> PrincipalRef {
    PrincipalRef::aws(ROLE).unwrap()
}
fn req(action: &str, resource: &str) -> Request {
    Request::new(role(), action, resource)
}
fn id_allows(policy: &Policy, r: &Request) -> bool {
    policy.decide(r, PolicyKind::Identity).is_allowed()
}

// ---- parsing ----------------------------------------------------------------------------

#[test]
fn parses_string_and_list_forms_and_single_statement_object() {
    let a = p(
        json!({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}),
    );
    let b = p(
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["*"]}]}),
    );
    assert_eq!(a.statements, b.statements);
    assert_eq!(
        a.statements[0].action,
        Patterns::Only(vec!["s3:GetObject".into()])
    );
    let c = p(
        json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333","Service":["a.amazonaws.com","b.amazonaws.com"]},
        "Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":[10, "20"]}}}]}),
    );
    let st = &c.statements[0];
    match &st.principal {
        Some(PrincipalMatch::Only(pr)) => {
            assert_eq!(pr.aws, vec![ACCT.to_string()]);
            assert_eq!(pr.service.len(), 2);
        }
        other => panic!("unexpected principal {other:?}"),
    }
    assert_eq!(st.conditions.len(), 2);
    let nums = st
        .conditions
        .iter()
        .find(|c| c.key == "s3:max-keys")
        .unwrap();
    assert_eq!(nums.values, vec!["10".to_string(), "20".to_string()]);
}

#[test]
fn parses_url_encoded_documents_from_iam() {
    // What GetRolePolicy returns: RFC 3986 percent-encoding of the JSON.
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22Send%22%2C\
%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sqs%3ASendMessage%22%2C%22Resource%22%3A%22arn%3Aaws%3Asqs%3A\
us-east-1%3A111122223333%3Apayments%22%7D%5D%7D";
    let pol = Policy::parse_url_encoded(encoded).unwrap();
    assert_eq!(pol.statements[0].sid.as_deref(), Some("Send"));
    assert!(id_allows(&pol, &req("sqs:SendMessage", QUEUE)));
    assert_eq!(
        Policy::parse_url_encoded("%FF%FE"),
        Err(PolicyError::NotUtf8)
    );
}

#[test]
fn malformed_policies_are_errors_naming_the_place() {
    let err = |s: &str| Policy::parse(s).unwrap_err().to_string();
    assert!(err("{").contains("not valid JSON"));
    assert!(err(r#"{"Version":"2012-10-17"}"#).contains("has no Statement"));
    assert!(err(r#"{"Version":"2011-01-01","Statement":[]}"#).contains("Version"));
    let e = err(r#"{"Statement":[{"Sid":"S1","Effect":"allow","Action":"s3:*","Resource":"*"}]}"#);
    assert!(e.contains(r#"Statement[0] (Sid "S1").Effect"#), "{e}");
    let e = err(r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#);
    assert!(e.contains("neither Action nor NotAction"), "{e}");
    let e = err(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","NotAction":"c:d","Resource":"*"}]}"#,
    );
    assert!(e.contains("both Action and NotAction"), "{e}");
    let e = err(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}]}"#,
    );
    assert!(
        e.contains("Condition.StringEqualz") && e.contains("unknown condition operator"),
        "{e}"
    );
    let e = err(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}]}"#,
    );
    assert!(e.contains("unknown condition operator"), "{e}");
    let e = err(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Null":{"k":"maybe"}}}]}"#,
    );
    assert!(e.contains("Null takes true or false"), "{e}");
    let e = err(r#"{"Statement":[{"Effect":"Allow","Action":["a:b", 3],"Resource":"*"}]}"#);
    assert!(e.contains("Statement[0].Action"), "{e}");
    let e =
        err(r#"{"Statement":[{"Effect":"Allow","Principal":"me","Action":"a:b","Resource":"*"}]}"#);
    assert!(e.contains("Statement[0].Principal"), "{e}");
    let e = err(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"a:b","Resource":"*"}]}"#,
    );
    assert!(e.contains("unknown principal type"), "{e}");
    let e = err(r#"{"Statement":[{"Effect":"Allow","Actions":"a:b","Resource":"*"}]}"#);
    assert!(e.contains("unknown element \"Actions\""), "{e}");
    assert!(matches!(
        Policy::parse("[1]"),
        Err(PolicyError::Malformed { .. })
    ));
    assert!(matches!(
        PrincipalRef::aws("role/x"),
        Err(PolicyError::BadArn(_))
    ));
    assert!(matches!(
        PrincipalRef::aws("arn:aws:s3:::bucket"),
        Err(PolicyError::BadArn(_))
    ));
}

// ---- IAM User Guide: evaluation logic ---------------------------------------------------

#[test]
fn explicit_deny_wins_over_allow_in_same_and_other_policies() {
    // IAM User Guide, "Policy evaluation logic": an explicit deny overrides any allow.
    let allow_all = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"AllowS3","Effect":"Allow","Action":"s3:*","Resource":"*"}]}))
    .with_label("role policy s3-all");
    let deny_delete = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"NoDelete","Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}))
    .with_label("role policy guard");
    let r = req("s3:DeleteBucket", "arn:aws:s3:::ledger");
    let d = evaluate(&[allow_all.clone(), deny_delete.clone()], None, &r);
    assert_eq!(d.sid(), Some("NoDelete"));
    assert!(matches!(d, Decision::ExplicitDeny(_)));
    assert_eq!(
        d.to_string(),
        r#"denied by statement "NoDelete" of role policy guard"#
    );
    let ok = evaluate(
        &[allow_all, deny_delete],
        None,
        &req("s3:GetObject", "arn:aws:s3:::ledger/k"),
    );
    assert_eq!(
        ok.to_string(),
        r#"allowed by statement "AllowS3" of role policy s3-all"#
    );
    // Deny in the resource policy beats the identity allow, too.
    let bucket = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"DenyAll","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}]}));
    let allow = p(json!({"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}));
    let ev = evaluate_detailed(&[allow], Some(&bucket), &r);
    assert!(ev.identity.is_allowed());
    assert_eq!(ev.decision.sid(), Some("DenyAll"));
}

#[test]
fn implicit_deny_when_nothing_applies() {
    let pol =
        p(json!({"Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":QUEUE}]}));
    let d = evaluate(&[pol], None, &req("sqs:SendMessage", QUEUE));
    assert_eq!(d, Decision::ImplicitDeny);
    assert_eq!(d.to_string(), "no statement allows");
    assert_eq!(
        evaluate(&[], None, &req("sqs:SendMessage", QUEUE)),
        Decision::ImplicitDeny
    );
}

#[test]
fn statement_without_sid_is_named_by_index() {
    let pol = p(json!({"Statement":[
        {"Effect":"Allow","Action":"a:x","Resource":"*"},
        {"Effect":"Deny","Action":"a:y","Resource":"*"}]}));
    let d = pol.decide(&req("a:y", "*"), PolicyKind::Identity);
    assert_eq!(d.to_string(), "denied by statement #1");
    assert_eq!(d.statement().unwrap().index, 1);
}

#[test]
fn wildcard_actions_are_case_insensitive() {
    let pol = p(
        json!({"Statement":[{"Effect":"Allow","Action":["sqs:Send*","S3:Get?bject"],"Resource":"*"}]}),
    );
    assert!(id_allows(&pol, &req("sqs:SendMessage", QUEUE)));
    assert!(id_allows(&pol, &req("SQS:sendmessagebatch", QUEUE)));
    assert!(id_allows(&pol, &req("s3:GetObject", "arn:aws:s3:::b/k")));
    assert!(!id_allows(
        &pol,
        &req("s3:GetObjectAcl", "arn:aws:s3:::b/k")
    ));
    assert!(!id_allows(&pol, &req("sqs:ReceiveMessage", QUEUE)));
    let all = p(json!({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}));
    assert!(id_allows(&all, &req("kms:Decrypt", KEY)));
}

#[test]
fn not_action_allows_everything_else() {
    // IAM User Guide, "NotAction" example: everything except IAM.
    let pol = p(json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}));
    assert!(id_allows(&pol, &req("s3:PutObject", "arn:aws:s3:::b/k")));
    assert!(!id_allows(&pol, &req("iam:CreateUser", "*")));
    // Deny with NotAction and BoolIfExists: deny everything but IAM without MFA.
    let mfa = p(json!({"Version":"2012-10-17","Statement":[
        {"Sid":"DenyAllButIamWithoutMfa","Effect":"Deny","NotAction":"iam:*","Resource":"*",
         "Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}));
    let allow = p(json!({"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}));
    let no_mfa =
        req("s3:GetObject", "arn:aws:s3:::b/k").with("aws:MultiFactorAuthPresent", "false");
    assert_eq!(
        evaluate(&[allow.clone(), mfa.clone()], None, &no_mfa).sid(),
        Some("DenyAllButIamWithoutMfa")
    );
    // A missing key with IfExists is true, so the deny applies to long-term creds too.
    let missing = req("s3:GetObject", "arn:aws:s3:::b/k");
    assert!(matches!(
        evaluate(&[allow.clone(), mfa.clone()], None, &missing),
        Decision::ExplicitDeny(_)
    ));
    let with_mfa =
        req("s3:GetObject", "arn:aws:s3:::b/k").with("aws:MultiFactorAuthPresent", "true");
    assert!(evaluate(&[allow.clone(), mfa.clone()], None, &with_mfa).is_allowed());
    // iam:* is outside the deny.
    assert!(evaluate(
        &[allow, mfa],
        None,
        &req("iam:ListRoles", "*").with("aws:MultiFactorAuthPresent", "false")
    )
    .is_allowed());
}

#[test]
fn not_resource_denies_everything_outside_the_list() {
    // IAM User Guide, "NotResource": deny S3 except one bucket.
    let pol = p(json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Sid":"OnlyLedger","Effect":"Deny","Action":"s3:*",
         "NotResource":["arn:aws:s3:::ledger","arn:aws:s3:::ledger/*"]}]}));
    assert!(id_allows(
        &pol,
        &req("s3:GetObject", "arn:aws:s3:::ledger/2026/01/x.json")
    ));
    assert!(id_allows(
        &pol,
        &req("s3:ListBucket", "arn:aws:s3:::ledger")
    ));
    let d = pol.decide(
        &req("s3:GetObject", "arn:aws:s3:::other/x"),
        PolicyKind::Identity,
    );
    assert_eq!(d.sid(), Some("OnlyLedger"));
    // Allow with NotResource.
    let nr = p(json!({"Statement":[{"Effect":"Allow","Action":"sqs:*","NotResource":QUEUE}]}));
    assert!(!id_allows(&nr, &req("sqs:SendMessage", QUEUE)));
    assert!(id_allows(
        &nr,
        &req(
            "sqs:SendMessage",
            "arn:aws:sqs:us-east-1:111122223333:other"
        )
    ));
}

#[test]
fn resource_wildcards_follow_segment_rules() {
    let m = |pat: &str, res: &str| resource_matches(pat, res, &req("a:b", res), false);
    assert!(m("*", "arn:aws:s3:::b/k"));
    assert!(m("arn:aws:s3:::ledger/*", "arn:aws:s3:::ledger/a/b/c"));
    assert!(!m("arn:aws:s3:::ledger/*", "arn:aws:s3:::ledger"));
    assert!(!m("arn:aws:s3:::Ledger/*", "arn:aws:s3:::ledger/x")); // case-sensitive
                                                                   // A `*` ending a segment crosses colons: log group ARN covers its streams.
    assert!(m(
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/api:*",
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/api:log-stream:x"
    ));
    assert!(m("arn:aws:sqs:*:111122223333:payments", QUEUE));
    assert!(m("arn:aws:sqs:us-east-?:111122223333:pay*", QUEUE));
    // A `*` in the middle of a segment does not cross a colon.
    assert!(!m(
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/a*x",
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/a:log-stream:x"
    ));
    assert!(m(
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/a*x",
        "arn:aws:logs:us-east-1:111122223333:log-group:/ecs/a-x"
    ));
    // `?` is one character, not a colon.
    assert!(!m("arn:aws:s3:::a?b", "arn:aws:s3:::a:b"));
    assert!(m("arn:aws:s3:::a?b", "arn:aws:s3:::a-b"));
}

#[test]
fn missing_resource_element_covers_the_attached_resource() {
    let trust = p(
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}),
    );
    let r = Request::new(
        PrincipalRef::service("ecs-tasks.amazonaws.com"),
        "sts:AssumeRole",
        ROLE,
    );
    assert!(trust.decide(&r, PolicyKind::Resource).is_allowed());
    let other = Request::new(
        PrincipalRef::service("lambda.amazonaws.com"),
        "sts:AssumeRole",
        ROLE,
    );
    assert!(!trust.decide(&other, PolicyKind::Resource).is_allowed());
}

#[test]
fn glob_handles_pathological_patterns_quickly() {
    let pat = literal_tokens(&"*a".repeat(50));
    let text: Vec<char> = "a".repeat(2000).chars().chain("b".chars()).collect();
    assert!(!glob(&pat, &text, false));
    assert!(glob(&literal_tokens(""), &[], false));
    assert!(!glob(&literal_tokens(""), &['a'], false));
}

mod conditions;
mod kms;
mod principals;
