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

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

impl Policy {
    /// Parses a JSON policy document.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        let v: Value = serde_json::from_str(json).map_err(|e| PolicyError::Json(e.to_string()))?;
        Policy::from_value(&v)
    }

    /// Parses a document as IAM returns it from `GetRolePolicy`, `GetPolicyVersion` and
    /// `GetRole` (its `AssumeRolePolicyDocument`): RFC 3986 percent-encoded JSON. `+` is left as
    /// is, because IAM encodes a literal `+` as `%2B`.
    pub fn parse_url_encoded(encoded: &str) -> Result<Policy, PolicyError> {
        let decoded = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .map_err(|_| PolicyError::NotUtf8)?;
        Policy::parse(&decoded)
    }

    /// Builds a policy from an already parsed JSON value.
    pub fn from_value(v: &Value) -> Result<Policy, PolicyError> {
        let obj = v
            .as_object()
            .ok_or_else(|| malformed("document", "must be a JSON object"))?;
        let mut version = None;
        let mut id = None;
        let mut statements = None;
        for (k, val) in obj {
            match k.as_str() {
                "Version" => {
                    let s = val
                        .as_str()
                        .ok_or_else(|| malformed("Version", "must be a string"))?;
                    if s != "2012-10-17" && s != "2008-10-17" {
                        return Err(malformed(
                            "Version",
                            format!("{s:?} is not 2012-10-17 or 2008-10-17"),
                        ));
                    }
                    version = Some(s.to_string());
                }
                "Id" => {
                    id = Some(
                        val.as_str()
                            .ok_or_else(|| malformed("Id", "must be a string"))?
                            .to_string(),
                    )
                }
                "Statement" => {
                    let list: Vec<&Value> = match val {
                        Value::Array(a) => a.iter().collect(),
                        Value::Object(_) => vec![val],
                        _ => {
                            return Err(malformed(
                                "Statement",
                                "must be an object or a list of objects",
                            ))
                        }
                    };
                    let mut out = Vec::with_capacity(list.len());
                    for (i, s) in list.into_iter().enumerate() {
                        out.push(Statement::from_value(s, i)?);
                    }
                    statements = Some(out);
                }
                other => return Err(malformed("document", format!("unknown element {other:?}"))),
            }
        }
        let statements = statements.ok_or_else(|| malformed("document", "has no Statement"))?;
        Ok(Policy {
            version,
            id,
            statements,
            label: None,
        })
    }

    /// Names the policy in explanations (see [`StatementRef`]).
    pub fn with_label(mut self, label: impl Into<String>) -> Policy {
        self.label = Some(label.into());
        self
    }

    /// Whether `${...}` policy variables are replaced (only in version 2012-10-17 documents).
    fn variables(&self) -> bool {
        self.version.as_deref() == Some("2012-10-17")
    }

    /// The decision of this one policy on its own: an applicable `Deny` wins, then an applicable
    /// `Allow`, otherwise no statement applies. `kind` says whether `Principal` is checked.
    pub fn decide(&self, req: &Request, kind: PolicyKind) -> Decision {
        self.decide_as(req, &req.principal, kind)
    }

    fn decide_as(&self, req: &Request, principal: &PrincipalRef, kind: PolicyKind) -> Decision {
        let mut allow = None;
        for (i, s) in self.statements.iter().enumerate() {
            if !s.applies(req, principal, kind, self.variables()) {
                continue;
            }
            let r = StatementRef {
                policy: self.label.clone(),
                index: i,
                sid: s.sid.clone(),
            };
            match s.effect {
                Effect::Deny => return Decision::ExplicitDeny(r),
                Effect::Allow => {
                    allow.get_or_insert(r);
                }
            }
        }
        allow.map_or(Decision::ImplicitDeny, Decision::Allow)
    }
}

impl FromStr for Policy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Policy, PolicyError> {
        Policy::parse(s)
    }
}

impl Statement {
    fn from_value(v: &Value, index: usize) -> Result<Statement, PolicyError> {
        let obj = v
            .as_object()
            .ok_or_else(|| malformed(format!("Statement[{index}]"), "must be a JSON object"))?;
        let sid = match obj.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(malformed(
                    format!("Statement[{index}].Sid"),
                    "must be a string",
                ))
            }
        };
        let at = match &sid {
            Some(s) => format!("Statement[{index}] (Sid {s:?})"),
            None => format!("Statement[{index}]"),
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Principal"
                    | "NotPrincipal"
                    | "Condition"
            ) {
                return Err(malformed(&at, format!("unknown element {k:?}")));
            }
        }
        let effect = match obj.get("Effect") {
            Some(Value::String(s)) if s == "Allow" => Effect::Allow,
            Some(Value::String(s)) if s == "Deny" => Effect::Deny,
            Some(other) => {
                return Err(malformed(
                    format!("{at}.Effect"),
                    format!("must be \"Allow\" or \"Deny\", not {other}"),
                ))
            }
            None => return Err(malformed(&at, "has no Effect")),
        };
        let action = pair(obj, "Action", "NotAction", &at)?
            .ok_or_else(|| malformed(&at, "has neither Action nor NotAction"))?;
        let resource = pair(obj, "Resource", "NotResource", &at)?;
        let principal = match (obj.get("Principal"), obj.get("NotPrincipal")) {
            (Some(_), Some(_)) => {
                return Err(malformed(&at, "has both Principal and NotPrincipal"))
            }
            (Some(p), None) => Some(PrincipalMatch::Only(Principal::from_value(
                p,
                &format!("{at}.Principal"),
            )?)),
            (None, Some(p)) => Some(PrincipalMatch::Not(Principal::from_value(
                p,
                &format!("{at}.NotPrincipal"),
            )?)),
            (None, None) => None,
        };
        let mut conditions = Vec::new();
        if let Some(c) = obj.get("Condition") {
            let block = c
                .as_object()
                .ok_or_else(|| malformed(format!("{at}.Condition"), "must be an object"))?;
            for (op_name, keys) in block {
                let here = format!("{at}.Condition.{op_name}");
                let op = Operator::parse(op_name)
                    .ok_or_else(|| malformed(&here, "unknown condition operator"))?;
                let keys = keys
                    .as_object()
                    .ok_or_else(|| malformed(&here, "must map condition keys to values"))?;
                for (key, vals) in keys {
                    let values = scalar_list(vals, &format!("{here}.{key}"))?;
                    if op.base == Base::Null {
                        for v in &values {
                            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                                return Err(malformed(
                                    format!("{here}.{key}"),
                                    "Null takes true or false",
                                ));
                            }
                        }
                    }
                    conditions.push(Condition {
                        operator: op_name.clone(),
                        key: key.clone(),
                        values,
                        op,
                    });
                }
            }
        }
        Ok(Statement {
            sid,
            effect,
            action,
            resource,
            principal,
            conditions,
        })
    }
}

/// Reads `Action`/`NotAction` or `Resource`/`NotResource`: at most one of the two.
fn pair(
    obj: &serde_json::Map<String, Value>,
    pos: &str,
    neg: &str,
    at: &str,
) -> Result<Option<Patterns>, PolicyError> {
    match (obj.get(pos), obj.get(neg)) {
        (Some(_), Some(_)) => Err(malformed(at, format!("has both {pos} and {neg}"))),
        (Some(v), None) => Ok(Some(Patterns::Only(string_list(
            v,
            &format!("{at}.{pos}"),
        )?))),
        (None, Some(v)) => Ok(Some(Patterns::Not(string_list(v, &format!("{at}.{neg}"))?))),
        (None, None) => Ok(None),
    }
}

fn string_list(v: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| malformed(at, format!("list item {x} is not a string")))
            })
            .collect(),
        other => Err(malformed(
            at,
            format!("must be a string or a list of strings, not {other}"),
        )),
    }
}

/// Condition values may be strings, booleans or numbers, alone or in a list.
fn scalar_list(v: &Value, at: &str) -> Result<Vec<String>, PolicyError> {
    fn one(x: &Value, at: &str) -> Result<String, PolicyError> {
        match x {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(malformed(
                at,
                format!("{other} is not a string, boolean or number"),
            )),
        }
    }
    match v {
        Value::Array(a) => a.iter().map(|x| one(x, at)).collect(),
        x => Ok(vec![one(x, at)?]),
    }
}

impl Principal {
    fn from_value(v: &Value, at: &str) -> Result<Principal, PolicyError> {
        match v {
            Value::String(s) if s == "*" => Ok(Principal {
                everyone: true,
                ..Principal::default()
            }),
            Value::Object(o) => {
                let mut p = Principal::default();
                for (k, vals) in o {
                    let list = string_list(vals, &format!("{at}.{k}"))?;
                    match k.as_str() {
                        "AWS" => p.aws = list,
                        "Service" => p.service = list,
                        "Federated" => p.federated = list,
                        "CanonicalUser" => p.canonical_user = list,
                        other => {
                            return Err(malformed(at, format!("unknown principal type {other:?}")))
                        }
                    }
                }
                Ok(p)
            }
            other => Err(malformed(
                at,
                format!("must be \"*\" or an object, not {other}"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// Who makes the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalRef {
    /// An IAM identity: a role (`arn:aws:iam::A:role/path/Name`), an assumed-role session
    /// (`arn:aws:sts::A:assumed-role/Name/session`), a user, or the account root
    /// (`arn:aws:iam::A:root`).
    Aws { arn: String, account: String },
    /// An AWS service principal, e.g. `cloudfront.amazonaws.com`, `logs.us-east-1.amazonaws.com`.
    Service(String),
}

impl PrincipalRef {
    /// An IAM identity from its ARN. The account is taken from the ARN's fifth field.
    pub fn aws(arn: &str) -> Result<PrincipalRef, PolicyError> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && (parts[2] == "iam" || parts[2] == "sts")
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && !parts[5].is_empty();
        if !ok {
            return Err(PolicyError::BadArn(arn.to_string()));
        }
        Ok(PrincipalRef::Aws {
            arn: arn.to_string(),
            account: parts[4].to_string(),
        })
    }

    /// The root principal of an account in the `aws` partition.
    pub fn root(account: &str) -> PrincipalRef {
        PrincipalRef::Aws {
            arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_string(),
        }
    }

    /// A service principal such as `cloudfront.amazonaws.com`.
    pub fn service(name: impl Into<String>) -> PrincipalRef {
        PrincipalRef::Service(name.into())
    }

    /// The account of an IAM identity; `None` for a service principal.
    pub fn account(&self) -> Option<&str> {
        match self {
            PrincipalRef::Aws { account, .. } => Some(account),
            PrincipalRef::Service(_) => None,
        }
    }

    /// The same account's root, which is what a key policy's "Enable IAM policies" statement
    /// names (KMS Developer Guide, "Default key policy").
    fn account_root(&self) -> Option<PrincipalRef> {
        match self {
            PrincipalRef::Aws { arn, account } => {
                let partition = arn.split(':').nth(1).unwrap_or("aws");
                Some(PrincipalRef::Aws {
                    arn: format!("arn:{partition}:iam::{account}:root"),
                    account: account.clone(),
                })
            }
            PrincipalRef::Service(_) => None,
        }
    }
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalRef::Aws { arn, .. } => f.write_str(arn),
            PrincipalRef::Service(s) => f.write_str(s),
        }
    }
}

/// One API call to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub principal: PrincipalRef,
    /// `service:Action`, e.g. `sqs:SendMessage`.
    pub action: String,
    /// The resource ARN (`*` for actions that take none).
    pub resource: String,
    /// Condition keys and their values, e.g. `aws:SourceArn`, `kms:ViaService`,
    /// `aws:SecureTransport` (`"true"`), `kms:EncryptionContext:aws:logs:arn`. Keys are looked up
    /// case-insensitively. A key with an empty list counts as missing. When these keys are not
    /// given, they are filled in from the principal: `aws:PrincipalArn` and `aws:PrincipalAccount`
    /// (IAM identities, except that `aws:PrincipalArn` is left out for an assumed-role session,
    /// whose role ARN path is not known), `aws:PrincipalServiceName` (service principals), and
    /// `kms:CallerAccount` (`kms:` actions by an IAM identity).
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(
        principal: PrincipalRef,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> Request {
        Request {
            principal,
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// Adds one value to a context key (making it multi-valued if called again for the same key).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Request {
        self.context
            .entry(key.into())
            .or_default()
            .push(value.into());
        self
    }

    /// Sets a (possibly multi-valued) context key, e.g. `aws:TagKeys`.
    pub fn with_values<I, S>(mut self, key: impl Into<String>, values: I) -> Request
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// The values of a condition key; `None` when absent or empty. Condition key names are
    /// case-insensitive (IAM User Guide, "IAM JSON policy elements: Condition").
    fn lookup(&self, key: &str) -> Option<Vec<String>> {
        if let Some((_, v)) = self
            .context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            return if v.is_empty() { None } else { Some(v.clone()) };
        }
        let key = key.to_ascii_lowercase();
        match &self.principal {
            PrincipalRef::Aws { arn, account } => match key.as_str() {
                "aws:principalarn" if !arn.contains(":assumed-role/") => Some(vec![arn.clone()]),
                "aws:principalaccount" => Some(vec![account.clone()]),
                "kms:calleraccount" if self.action.to_ascii_lowercase().starts_with("kms:") => {
                    Some(vec![account.clone()])
                }
                _ => None,
            },
            PrincipalRef::Service(s) => match key.as_str() {
                "aws:principalservicename" => Some(vec![s.clone()]),
                _ => None,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

/// Which kind of policy a document is. That decides whether its `Principal` is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Attached to a role or user. It has no `Principal`; it speaks for its holder.
    Identity,
    /// Attached to a resource (bucket, queue, topic, key). A statement applies only if its
    /// `Principal`/`NotPrincipal` admits the caller, and a statement with neither never applies.
    Resource,
}

/// The statement that decided, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The [`Policy::label`] of the policy holding the statement.
    pub policy: Option<String>,
    /// The statement's position in its policy (0-based).
    pub index: usize,
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement {sid:?}")?,
            None => write!(f, "statement #{}", self.index)?,
        }
        if let Some(p) = &self.policy {
            write!(f, " of {p}")?;
        }
        Ok(())
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by this statement.
    Allow(StatementRef),
    /// Denied by this statement (an explicit deny overrides every allow).
    ExplicitDeny(StatementRef),
    /// No applicable statement allows. AWS's default.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The deciding statement, if one decided.
    pub fn statement(&self) -> Option<&StatementRef> {
        match self {
            Decision::Allow(r) | Decision::ExplicitDeny(r) => Some(r),
            Decision::ImplicitDeny => None,
        }
    }

    /// The Sid of the deciding statement, if it has one.
    pub fn sid(&self) -> Option<&str> {
        self.statement().and_then(|r| r.sid.as_deref())
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(r) => write!(f, "allowed by {r}"),
            Decision::ExplicitDeny(r) => write!(f, "denied by {r}"),
            Decision::ImplicitDeny => f.write_str("no statement allows"),
        }
    }
}

/// Combines the decisions of several policies of one kind: any explicit deny wins, then the
/// first allow.
fn combine(decisions: impl IntoIterator<Item = Decision>) -> Decision {
    let mut allow = None;
    for d in decisions {
        match d {
            Decision::ExplicitDeny(_) => return d,
            Decision::Allow(_) if allow.is_none() => allow = Some(d),
            _ => {}
        }
    }
    allow.unwrap_or(Decision::ImplicitDeny)
}

/// What each kind of policy said, from [`evaluate_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The final decision.
    pub decision: Decision,
    /// The combined identity policies. Always `ImplicitDeny` for a service principal, which has
    /// no identity policies.
    pub identity: Decision,
    /// The resource policy, if one was given.
    pub resource: Option<Decision>,
}

/// Same-account evaluation (IAM User Guide, "Policy evaluation logic" → "Evaluating
/// identity-based and resource-based policies"): an explicit deny in any policy wins. Otherwise
/// the request is allowed if the identity policies allow it *or* the resource policy allows
/// this principal. A resource policy that names only the account (`"AWS": "123456789012"` or
/// `...:root`) grants nothing by itself. It leaves the decision to the identity policies.
///
/// For a service principal, `identity_policies` are ignored. Only the resource policy can let
/// a service in.
pub fn evaluate(
    identity_policies: &[Policy],
    resource_policy: Option<&Policy>,
    req: &Request,
) -> Decision {
    evaluate_detailed(identity_policies, resource_policy, req).decision
}

/// [`evaluate`], also returning what the identity and resource policies each said.
pub fn evaluate_detailed(
    identity_policies: &[Policy],
    resource_policy: Option<&Policy>,
    req: &Request,
) -> Evaluation {
    let identity = identity_decision(identity_policies, req);
    let resource = resource_policy.map(|p| p.decide(req, PolicyKind::Resource));
    let decision = match (&identity, &resource) {
        (Decision::ExplicitDeny(_), _) => identity.clone(),
        (_, Some(d @ Decision::ExplicitDeny(_))) => d.clone(),
        (Decision::Allow(_), _) => identity.clone(),
        (_, Some(d @ Decision::Allow(_))) => d.clone(),
        _ => Decision::ImplicitDeny,
    };
    Evaluation {
        decision,
        identity,
        resource,
    }
}

fn identity_decision(identity_policies: &[Policy], req: &Request) -> Decision {
    match req.principal {
        PrincipalRef::Service(_) => Decision::ImplicitDeny,
        PrincipalRef::Aws { .. } => combine(
            identity_policies
                .iter()
                .map(|p| p.decide(req, PolicyKind::Identity)),
        ),
    }
}

/// What each part of a KMS evaluation said, from [`evaluate_kms_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsEvaluation {
    /// The final decision.
    pub decision: Decision,
    /// The key policy for the caller itself.
    pub key_policy: Decision,
    /// The key policy for the caller's account root, that is, whether IAM policies may grant
    /// this request at all. `ImplicitDeny` for a service principal.
    pub delegation: Decision,
    /// The caller's identity policies. `ImplicitDeny` for a service principal.
    pub identity: Decision,
}

/// KMS evaluation (KMS Developer Guide, "Key policies" → "Default key policy" and "Allows
/// access to the AWS account and enables IAM policies"). Unlike other services, an identity
/// policy alone never grants access to a KMS key. The request is allowed when no applicable
/// statement denies it, and either:
/// * the key policy allows the caller directly, or
/// * the key policy allows the caller's account (`arn:aws:iam::ACCOUNT:root` or the bare
///   account id), which delegates to IAM, **and** an identity policy allows it.
///
/// A service principal (`cloudfront.amazonaws.com`, `logs.REGION.amazonaws.com`,
/// `cloudwatch.amazonaws.com`) can only be allowed by the key policy itself.
pub fn evaluate_kms(key_policy: &Policy, identity_policies: &[Policy], req: &Request) -> Decision {
    evaluate_kms_detailed(key_policy, identity_policies, req).decision
}

/// [`evaluate_kms`], also returning what each part said.
pub fn evaluate_kms_detailed(
    key_policy: &Policy,
    identity_policies: &[Policy],
    req: &Request,
) -> KmsEvaluation {
    let key = key_policy.decide(req, PolicyKind::Resource);
    let identity = identity_decision(identity_policies, req);
    // The delegation check runs the key policy with the account root as the principal. The
    // context (e.g. kms:ViaService, kms:CallerAccount) is still the real caller's, because a
    // condition on the delegating statement applies to the real request.
    let delegation = match req.principal.account_root() {
        Some(root) => key_policy.decide_as(req, &root, PolicyKind::Resource),
        None => Decision::ImplicitDeny,
    };
    let decision = if let Decision::ExplicitDeny(_) = key {
        key.clone()
    } else if let Decision::ExplicitDeny(_) = identity {
        identity.clone()
    } else if key.is_allowed() {
        key.clone()
    } else if delegation.is_allowed() && identity.is_allowed() {
        identity.clone()
    } else {
        Decision::ImplicitDeny
    };
    KmsEvaluation {
        decision,
        key_policy: key,
        delegation,
        identity,
    }
}

// ---------------------------------------------------------------------------------------------
// Statement matching
// ---------------------------------------------------------------------------------------------

impl Statement {
    /// Whether this statement covers the request (its effect is not considered here).
    fn applies(
        &self,
        req: &Request,
        principal: &PrincipalRef,
        kind: PolicyKind,
        vars: bool,
    ) -> bool {
        if kind == PolicyKind::Resource {
            let ok = match &self.principal {
                None => false,
                Some(PrincipalMatch::Only(p)) => principal_matches(p, principal),
                Some(PrincipalMatch::Not(p)) => !not_principal_excludes(p, principal, self.effect),
            };
            if !ok {
                return false;
            }
        }
        let action_ok = match &self.action {
            Patterns::Only(list) => list.iter().any(|p| action_matches(p, &req.action)),
            Patterns::Not(list) => !list.iter().any(|p| action_matches(p, &req.action)),
        };
        if !action_ok {
            return false;
        }
        let resource_ok = match &self.resource {
            None => true,
            Some(Patterns::Only(list)) => list
                .iter()
                .any(|p| resource_matches(p, &req.resource, req, vars)),
            Some(Patterns::Not(list)) => !list
                .iter()
                .any(|p| resource_matches(p, &req.resource, req, vars)),
        };
        resource_ok && self.conditions.iter().all(|c| c.holds(req, vars))
    }
}

/// One entity a principal can be recognised as.
enum Entity<'a> {
    /// The account itself (`arn:*:iam::A:root` or bare `A`).
    Root(&'a str),
    /// Exactly this ARN.
    Arn(&'a str),
    /// The role behind an assumed-role session. Any path, this name, this account.
    RoleOfSession { account: &'a str, name: &'a str },
}

/// The entities a policy `Principal` may name to grant to this caller directly. The account
/// root is among them only when the caller *is* the root: naming the account delegates to the
/// account's IAM policies, it does not grant to every identity in it (IAM User Guide, "AWS JSON
/// policy elements: Principal" → "AWS account principals").
fn direct_entities(p: &PrincipalRef) -> Vec<Entity<'_>> {
    match p {
        PrincipalRef::Service(_) => Vec::new(),
        PrincipalRef::Aws { arn, account } => {
            let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
            if resource == "root" {
                return vec![Entity::Root(account)];
            }
            let mut v = vec![Entity::Arn(arn)];
            // A policy naming a role ARN covers all of that role's sessions ("Role session
            // principals" in the same doc). The session ARN has the role name but no path.
            if let Some(rest) = resource.strip_prefix("assumed-role/") {
                if let Some(name) = rest.split('/').next() {
                    v.push(Entity::RoleOfSession { account, name });
                }
            }
            v
        }
    }
}

fn aws_entry_matches(entry: &str, entity: &Entity<'_>) -> bool {
    if entry == "*" {
        return true;
    }
    let is_account_id = entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    let arn_fields =
        (parts.len() == 6 && parts[0] == "arn").then(|| (parts[2], parts[4], parts[5]));
    match entity {
        Entity::Root(account) => {
            (is_account_id && entry == *account)
                || matches!(arn_fields, Some(("iam", a, "root")) if a == *account)
        }
        Entity::Arn(arn) => entry == *arn,
        Entity::RoleOfSession { account, name } => match arn_fields {
            Some(("iam", a, res)) if a == *account => {
                res.starts_with("role/") && res.rsplit('/').next() == Some(*name)
            }
            _ => false,
        },
    }
}

fn principal_matches(p: &Principal, caller: &PrincipalRef) -> bool {
    // `"*"` and `{"AWS": "*"}` are equivalent: everyone (IAM User Guide, "All principals").
    if p.everyone || p.aws.iter().any(|e| e == "*") {
        return true;
    }
    match caller {
        PrincipalRef::Service(s) => p.service.iter().any(|e| e.eq_ignore_ascii_case(s)),
        PrincipalRef::Aws { .. } => {
            let ents = direct_entities(caller);
            p.aws
                .iter()
                .any(|e| ents.iter().any(|ent| aws_entry_matches(e, ent)))
        }
    }
}

/// Whether `NotPrincipal` spares the caller (see the module doc for why this is conservative).
fn not_principal_excludes(p: &Principal, caller: &PrincipalRef, effect: Effect) -> bool {
    if p.everyone || p.aws.iter().any(|e| e == "*") {
        return true;
    }
    match caller {
        PrincipalRef::Service(s) => p.service.iter().any(|e| e.eq_ignore_ascii_case(s)),
        PrincipalRef::Aws { account, .. } => {
            let mut chain = direct_entities(caller);
            if !chain.iter().any(|e| matches!(e, Entity::Root(_))) {
                chain.push(Entity::Root(account));
            }
            let listed = |ent: &Entity<'_>| p.aws.iter().any(|e| aws_entry_matches(e, ent));
            match effect {
                // IAM User Guide, "NotPrincipal with Deny": AWS may check the account, then the
                // role, then the session, so each must be listed to escape the deny.
                Effect::Deny => chain.iter().all(listed),
                Effect::Allow => chain.iter().any(listed),
            }
        }
    }
}

/// Actions match case-insensitively, with `*` and `?` wildcards across the whole
/// `service:Action` string (IAM User Guide, "IAM JSON policy elements: Action").
fn action_matches(pattern: &str, action: &str) -> bool {
    let pat = literal_tokens(&pattern.to_lowercase());
    let text: Vec<char> = action.to_lowercase().chars().collect();
    glob(&pat, &text, false)
}

/// Resources match case-sensitively. `*` and `?` work within an ARN segment, and a `*` that ends
/// a segment (followed by `:` or at the end) may also match past colons (IAM User Guide,
/// "IAM JSON policy elements: Resource" → "Using wildcards in resource ARNs"). So
/// `arn:aws:logs:r:a:log-group:*` covers `...:log-group:x:log-stream:y`, while `a*b` inside a
/// segment never crosses a `:`.
fn resource_matches(pattern: &str, resource: &str, req: &Request, vars: bool) -> bool {
    let Some(pat) = tokens(pattern, req, vars) else {
        return false;
    };
    let text: Vec<char> = resource.chars().collect();
    glob(&pat, &text, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    One,
}

fn literal_tokens(s: &str) -> Vec<Tok> {
    s.chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        })
        .collect()
}

/// Turns a pattern into tokens, replacing `${...}` policy variables when `vars` is set (IAM User
/// Guide, "IAM policy elements: Variables and tags"). Text that a variable stands for is
/// literal. `${*}`, `${?}` and `${$}` stand for those characters. `None` means a variable could
/// not be resolved, and then the pattern matches nothing.
fn tokens(s: &str, req: &Request, vars: bool) -> Option<Vec<Tok>> {
    if !vars || !s.contains("${") {
        return Some(literal_tokens(s));
    }
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.extend(literal_tokens(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // An unterminated `${` is plain text.
            out.extend(literal_tokens(&rest[start..]));
            return Some(out);
        };
        let inner = after[..end].trim();
        let value = match inner {
            "*" | "?" | "$" => inner.to_string(),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => {
                        let d = d.trim();
                        let d = d
                            .strip_prefix('\'')
                            .and_then(|d| d.strip_suffix('\''))
                            .unwrap_or(d);
                        (k.trim(), Some(d))
                    }
                    None => (inner, None),
                };
                match req.lookup(key) {
                    Some(v) if v.len() == 1 => v[0].clone(),
                    _ => default?.to_string(),
                }
            }
        };
        out.extend(value.chars().map(Tok::Lit));
        rest = &after[end + 1..];
    }
    out.extend(literal_tokens(rest));
    Some(out)
}

/// Wildcard match by dynamic programming (no backtracking blow-up). With `arn_segments`, `?` and
/// a mid-segment `*` do not match `:`.
fn glob(pat: &[Tok], text: &[char], arn_segments: bool) -> bool {
    let n = text.len();
    let mut prev = vec![false; n + 1];
    prev[0] = true;
    for (i, t) in pat.iter().enumerate() {
        let mut cur = vec![false; n + 1];
        match t {
            Tok::Star => {
                let spans = !arn_segments || matches!(pat.get(i + 1), None | Some(Tok::Lit(':')));
                cur[0] = prev[0];
                for j in 1..=n {
                    cur[j] = prev[j] || (cur[j - 1] && (spans || text[j - 1] != ':'));
                }
            }
            Tok::One => {
                for j in 1..=n {
                    cur[j] = prev[j - 1] && (!arn_segments || text[j - 1] != ':');
                }
            }
            Tok::Lit(c) => {
                for j in 1..=n {
                    cur[j] = prev[j - 1] && text[j - 1] == *c;
                }
            }
        }
        prev = cur;
    }
    prev[n]
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

impl Condition {
    /// Whether the condition holds for the request. The rules come from the IAM User Guide,
    /// "Condition operators" and "Multivalued context keys":
    /// * several values for one key are ORed. A negated operator is the negation of that OR, so
    ///   `StringNotEquals` with `[a, b]` needs the value to be neither.
    /// * a missing key makes a positive operator false and a negated one true. `...IfExists`
    ///   makes either true. `ForAllValues:` is true when the key is missing (or empty), and
    ///   `ForAnyValue:` is false.
    /// * without a set qualifier, a multi-valued key behaves as `ForAnyValue` for positive
    ///   operators (and the negation of that for negated ones).
    fn holds(&self, req: &Request, vars: bool) -> bool {
        let op = self.op;
        let present = req.lookup(&self.key);
        if op.base == Base::Null {
            let is_null = present.is_none();
            return self
                .values
                .iter()
                .any(|v| v.eq_ignore_ascii_case("true") == is_null);
        }
        let Some(request_values) = present else {
            return match op.set {
                _ if op.if_exists => true,
                SetQualifier::ForAllValues => true,
                SetQualifier::ForAnyValue => false,
                SetQualifier::None => op.negated,
            };
        };
        // Policy values after variable substitution. An unresolvable one never matches.
        let policy_values: Vec<Option<Vec<Tok>>> = self
            .values
            .iter()
            .map(|v| {
                if vars {
                    tokens(v, req, true)
                } else {
                    Some(literal_tokens(v))
                }
            })
            .collect();
        let matches_any = |rv: &str| {
            policy_values
                .iter()
                .flatten()
                .any(|pv| compare(op.base, &tokens_text(pv), pv, rv))
        };
        match op.set {
            SetQualifier::None => request_values.iter().any(|rv| matches_any(rv)) != op.negated,
            SetQualifier::ForAnyValue => request_values
                .iter()
                .any(|rv| matches_any(rv) != op.negated),
            SetQualifier::ForAllValues => request_values
                .iter()
                .all(|rv| matches_any(rv) != op.negated),
        }
    }
}

/// The text of a token list, with wildcards as the characters `*` and `?`. Operators that
/// don't use wildcards compare against this.
fn tokens_text(t: &[Tok]) -> String {
    t.iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

/// One positive comparison of a request value against one policy value.
fn compare(base: Base, policy: &str, policy_tokens: &[Tok], request: &str) -> bool {
    match base {
        Base::StringEquals | Base::Binary => policy == request,
        Base::StringEqualsIgnoreCase => policy.to_lowercase() == request.to_lowercase(),
        Base::StringLike => glob(policy_tokens, &request.chars().collect::<Vec<_>>(), false),
        Base::NumEq | Base::NumLt | Base::NumLe | Base::NumGt | Base::NumGe => {
            match (policy.trim().parse::<f64>(), request.trim().parse::<f64>()) {
                (Ok(p), Ok(r)) => match base {
                    Base::NumEq => r == p,
                    Base::NumLt => r < p,
                    Base::NumLe => r <= p,
                    Base::NumGt => r > p,
                    _ => r >= p,
                },
                _ => false,
            }
        }
        Base::DateEq | Base::DateLt | Base::DateLe | Base::DateGt | Base::DateGe => {
            match (parse_date(policy), parse_date(request)) {
                (Some(p), Some(r)) => match base {
                    Base::DateEq => r == p,
                    Base::DateLt => r < p,
                    Base::DateLe => r <= p,
                    Base::DateGt => r > p,
                    _ => r >= p,
                },
                _ => false,
            }
        }
        Base::Bool => policy.eq_ignore_ascii_case(request),
        Base::Ip => {
            let net = policy.parse::<ipnet::IpNet>().ok().or_else(|| {
                policy
                    .parse::<std::net::IpAddr>()
                    .ok()
                    .map(ipnet::IpNet::from)
            });
            let addr = request
                .parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
                .or_else(|| request.parse::<ipnet::IpNet>().ok());
            matches!((net, addr), (Some(n), Some(a)) if n.contains(&a))
        }
        Base::ArnEquals | Base::ArnLike => arn_like(policy_tokens, request),
        Base::Null => false, // handled in `holds`
    }
}

/// `ArnEquals`/`ArnLike`: each of the six colon-separated ARN parts is matched on its own, and
/// each may hold `*`/`?` (the doc gives both operators the same behaviour). A request value that
/// is not an ARN does not match. A policy value with no colon (e.g. `*`) is matched against the
/// whole string. One with some colons but fewer than six parts matches nothing.
fn arn_like(policy: &[Tok], request: &str) -> bool {
    let req_parts: Vec<Vec<char>> = request
        .splitn(6, ':')
        .map(|p| p.chars().collect())
        .collect();
    let mut pol_parts: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in policy {
        if *t == Tok::Lit(':') && pol_parts.len() < 6 {
            pol_parts.push(Vec::new());
        } else if let Some(last) = pol_parts.last_mut() {
            last.push(*t);
        }
    }
    if pol_parts.len() == 1 {
        // No colon at all, e.g. `*`: match the whole value.
        return glob(policy, &request.chars().collect::<Vec<_>>(), false);
    }
    if pol_parts.len() < 6 {
        // Not an ARN pattern: AWS compares six parts, so this matches nothing.
        return false;
    }
    req_parts.len() == 6
        && pol_parts
            .iter()
            .zip(&req_parts)
            .all(|(p, r)| glob(p, r, false))
}

/// Dates as AWS accepts them in conditions: ISO 8601 date-times (`2026-01-01T00:00:00Z`), plain
/// dates (`2026-01-01`, taken as midnight UTC), or epoch seconds.
fn parse_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    }
    s.parse::<i64>()
        .ok()
        .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
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
        let e =
            err(r#"{"Statement":[{"Sid":"S1","Effect":"allow","Action":"s3:*","Resource":"*"}]}"#);
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
        let e = err(
            r#"{"Statement":[{"Effect":"Allow","Principal":"me","Action":"a:b","Resource":"*"}]}"#,
        );
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
        let pol = p(
            json!({"Statement":[{"Effect":"Allow","Action":"sqs:ReceiveMessage","Resource":QUEUE}]}),
        );
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

    // ---- conditions -------------------------------------------------------------------------

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
        let plain =
            req("s3:GetObject", "arn:aws:s3:::ledger/k").with("aws:SecureTransport", "false");
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

    // ---- principals and resource policies ---------------------------------------------------

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
        let other =
            PrincipalRef::aws("arn:aws:sts::111122223333:assumed-role/worker/4f2a").unwrap();
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
        let put = Request::new(cf, "s3:PutObject", "arn:aws:s3:::static-site/x")
            .with("aws:SourceArn", DIST);
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
        let session =
            PrincipalRef::aws("arn:aws:sts::111122223333:assumed-role/api-task/s1").unwrap();
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

    // ---- KMS --------------------------------------------------------------------------------

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
        let via =
            req("kms:GenerateDataKey", KEY).with("kms:ViaService", "sqs.us-east-1.amazonaws.com");
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

    #[test]
    fn glob_handles_pathological_patterns_quickly() {
        let pat = literal_tokens(&"*a".repeat(50));
        let text: Vec<char> = "a".repeat(2000).chars().chain("b".chars()).collect();
        assert!(!glob(&pat, &text, false));
        assert!(glob(&literal_tokens(""), &[], false));
        assert!(!glob(&literal_tokens(""), &['a'], false));
    }
}
