//! IAM policy evaluation, done the way AWS does it inside one account, for `fintech-infra verify`.
//!
//! `verify` reads the live policies back (role policies, key policies, bucket/queue/topic
//! policies) and asks "would AWS allow this principal to do this action on this resource?".
//! This module answers that question from the policy documents alone: no AWS calls, no I/O.
//!
//! Scope, following the IAM User Guide's "Policy evaluation logic" page for a request inside
//! one account: identity-based policies and one resource-based policy. Not modelled: SCPs/RCPs,
//! permissions boundaries, session policies, KMS grants, ACLs, cross-account evaluation (which
//! needs *both* sides to allow), and anonymous callers.
//!
//! Why not the `iam-rs` crate (0.8.0, which was reviewed): its per-statement matching is
//! reasonable, but it evaluates one flat list of policies, without the identity vs resource
//! policy split that same-account evaluation needs, nor KMS's rule that IAM policies count only
//! when the key policy delegates to the account. It reports no deciding statement unless it
//! collects per-statement details, and it treats a wildcard *request* principal as matching
//! every policy principal. We would have had to write the evaluation layer anyway, and that
//! layer is most of the work. What we need fits in one module we control.
//!
//! Limits, each chosen so that `verify` says "not proven" rather than a wrong "yes":
//! * Policy variables (`${aws:username}`, `${aws:PrincipalTag/x, 'default'}`, `${*}`) are
//!   replaced in `Resource`/`NotResource` and in condition values when `Version` is
//!   `2012-10-17`, from the request context only. If a variable's key is missing (or has several
//!   values) and no default is given, that pattern matches nothing.
//! * Principal ARNs are compared exactly, as AWS does. AWS does not allow wildcards in a principal
//!   ARN; only `"*"` on its own means everyone.
//! * `NotPrincipal` is evaluated conservatively. With `Deny`, AWS may check the account, then the
//!   role, then the session, so a principal is spared only if every entity in its chain is
//!   listed. With `Allow`, a principal is excluded if any entity in its chain is listed.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use thiserror::Error;

/// What is wrong with a policy document or an ARN given to this module.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The document is not JSON at all.
    #[error("policy is not valid JSON: {0}")]
    Json(String),
    /// A URL-encoded document (as IAM returns them) decoded to bytes that are not UTF-8.
    #[error("URL-encoded policy document does not decode to UTF-8")]
    NotUtf8,
    /// The JSON is valid but is not a policy AWS would accept; `at` locates the element, e.g.
    /// `Statement[1] (Sid "AllowCloudFront").Condition.StringEquals`.
    #[error("invalid policy at {at}: {reason}")]
    Malformed { at: String, reason: String },
    /// A principal ARN that is not `arn:partition:service:region:account:resource`.
    #[error("not a principal ARN: {0:?}")]
    BadArn(String),
}

fn malformed(at: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Malformed {
        at: at.into(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Policy document model
// ---------------------------------------------------------------------------------------------

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `Version`. Absent means `2008-10-17`, in which policy variables are plain text
    /// (IAM User Guide, "IAM JSON policy elements: Version").
    pub version: Option<String>,
    /// `Id`, if the document has one.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
    /// A caller-chosen name used in explanations ("key policy of alias/app"). Not part of the
    /// document.
    pub label: Option<String>,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// An element that comes as a positive or a negated list: `Action`/`NotAction`,
/// `Resource`/`NotResource`. Both forms accept a single string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    /// `Action` / `Resource`: the statement covers these.
    Only(Vec<String>),
    /// `NotAction` / `NotResource`: the statement covers everything except these.
    Not(Vec<String>),
}

/// The value of a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// `"Principal": "*"`: everyone.
    pub everyone: bool,
    /// `{"AWS": ...}`: ARNs, bare 12-digit account ids, or `"*"`.
    pub aws: Vec<String>,
    /// `{"Service": ...}`: service principals such as `cloudfront.amazonaws.com`.
    pub service: Vec<String>,
    /// `{"Federated": ...}`: parsed, but never matches a [`PrincipalRef`].
    pub federated: Vec<String>,
    /// `{"CanonicalUser": ...}`: parsed, but never matches a [`PrincipalRef`].
    pub canonical_user: Vec<String>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalMatch {
    Only(Principal),
    Not(Principal),
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `Action` or `NotAction` (exactly one is required).
    pub action: Patterns,
    /// `Resource` or `NotResource`. `None` when neither is given, which AWS accepts only in role
    /// trust policies. We treat it as covering the resource the policy is attached to.
    pub resource: Option<Patterns>,
    /// `Principal` or `NotPrincipal`. Only resource-based policies have one.
    pub principal: Option<PrincipalMatch>,
    /// Each (operator, key) pair of the `Condition` block. All of them must hold.
    pub conditions: Vec<Condition>,
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator as written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    /// The condition key as written. Keys are matched case-insensitively, as AWS does.
    pub key: String,
    /// The policy values. JSON booleans and numbers are kept as their text (`true`, `5`).
    pub values: Vec<String>,
    op: Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// The positive comparison an operator performs. Negated operators (`StringNotEquals`,
/// `NotIpAddress`, ...) are this comparison with the result flipped (see [`Operator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumEq,
    NumLt,
    NumLe,
    NumGt,
    NumGe,
    DateEq,
    DateLt,
    DateLe,
    DateGt,
    DateGe,
    Bool,
    Binary,
    Ip,
    ArnEquals,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    base: Base,
    negated: bool,
    if_exists: bool,
    set: SetQualifier,
}

impl Operator {
    /// Parses an operator name. AWS's names are listed in the IAM User Guide, "IAM JSON policy
    /// elements: Condition operators". We accept them case-insensitively.
    fn parse(name: &str) -> Option<Operator> {
        let mut rest = name;
        let mut set = SetQualifier::None;
        if let Some(r) = strip_prefix_ci(rest, "ForAnyValue:") {
            set = SetQualifier::ForAnyValue;
            rest = r;
        } else if let Some(r) = strip_prefix_ci(rest, "ForAllValues:") {
            set = SetQualifier::ForAllValues;
            rest = r;
        }
        let mut if_exists = false;
        if rest.len() > "IfExists".len() && rest.to_ascii_lowercase().ends_with("ifexists") {
            if_exists = true;
            rest = &rest[..rest.len() - "IfExists".len()];
        }
        use Base::*;
        let (base, negated) = match rest.to_ascii_lowercase().as_str() {
            "stringequals" => (StringEquals, false),
            "stringnotequals" => (StringEquals, true),
            "stringequalsignorecase" => (StringEqualsIgnoreCase, false),
            "stringnotequalsignorecase" => (StringEqualsIgnoreCase, true),
            "stringlike" => (StringLike, false),
            "stringnotlike" => (StringLike, true),
            "numericequals" => (NumEq, false),
            "numericnotequals" => (NumEq, true),
            "numericlessthan" => (NumLt, false),
            "numericlessthanequals" => (NumLe, false),
            "numericgreaterthan" => (NumGt, false),
            "numericgreaterthanequals" => (NumGe, false),
            "dateequals" => (DateEq, false),
            "datenotequals" => (DateEq, true),
            "datelessthan" => (DateLt, false),
            "datelessthanequals" => (DateLe, false),
            "dategreaterthan" => (DateGt, false),
            "dategreaterthanequals" => (DateGe, false),
            "bool" => (Bool, false),
            "binaryequals" => (Binary, false),
            "ipaddress" => (Ip, false),
            "notipaddress" => (Ip, true),
            "arnequals" => (ArnEquals, false),
            "arnnotequals" => (ArnEquals, true),
            "arnlike" => (ArnLike, false),
            "arnnotlike" => (ArnLike, true),
            "null" => (Null, false),
            _ => return None,
        };
        // `Null` tests whether a key exists, so `NullIfExists` and `ForAnyValue:Null` are
        // meaningless. AWS rejects them, and so do we.
        if base == Null && (if_exists || set != SetQualifier::None) {
            return None;
        }
        Some(Operator {
            base,
            negated,
            if_exists,
            set,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

mod condition;
mod decision;
mod matching;
mod parse;
mod request;

pub use decision::{
    evaluate, evaluate_detailed, evaluate_kms, evaluate_kms_detailed, Decision, Evaluation,
    KmsEvaluation, PolicyKind, StatementRef,
};
pub use request::{PrincipalRef, Request};

#[cfg(test)]
mod tests;
