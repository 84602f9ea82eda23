//! AWS IAM resource types: roles, customer-managed policies and their attachments, for every
//! step that needs a role (the ECS task roles, the validator's Lambda role, the flow log
//! delivery roles, the DR replication and backup roles), and the policy document helpers
//! they share.
//!
//! Only customer-managed policies, never inline ones (they can be versioned, reviewed and
//! listed; an inline policy found on one of these roles is removed as drift). Every document
//! is checked by [`check_least_privilege_with`] before use.
//!
//! IAM is eventually consistent: a role created here can be refused for several seconds by
//! the service that assumes it ("ECS was unable to assume the role"). Consumers wrap their
//! calls that pass these roles in [`StepCtx::retry_iam`]; nothing here waits.
//!
//! Teardown (`down`: attachments are built on roles and policies, see
//! [`crate::resources::deps`]; [`delete_recorded_roles`] when `up` removes a step's roles): detach the policies, delete their non-default
//! versions, delete the policies (IAM refuses to delete an attached or multi-version policy:
//! DeleteConflict), delete the roles.

use anyhow::{Context as _, Result};
use aws_sdk_iam::types::Tag;
use serde_json::Value;

use crate::naming::STACK_TAG;
use crate::step::{Found, StepCtx};

pub mod attachment;
pub mod policy;
pub mod role;

/// One role and its customer-managed policy, as a step wants them.
pub struct RoleSpec {
    /// The ECS service whose task role this is; `None` for any other role.
    pub service: Option<String>,
    pub role: String,
    pub policy: String,
    pub trust: Value,
    pub document: Option<Value>,
    pub description: String,
    pub policy_description: String,
    /// Actions the policy may grant on `Resource: "*"` (see [`check_least_privilege_with`]).
    pub resource_star_actions: &'static [&'static str],
}

/// The role of a step that has one (the validator's, the flow log delivery, the DR
/// replication and backup roles): the role, its customer-managed policy from
/// `spec.document`, and the attachment. `pending`: some inputs of the document are plan-mode
/// placeholders.
pub async fn ensure_role_with_policy(
    ctx: &StepCtx,
    spec: &RoleSpec,
    partition: &str,
    account: &str,
    pending: bool,
) -> Result<Found> {
    let doc = spec
        .document
        .as_ref()
        .context("a role with a policy needs a policy document")?;
    let role = role::ensure(ctx, spec).await?;
    let policy = policy::ensure(ctx, partition, account, pending, spec, doc).await?;
    attachment::ensure(ctx, &spec.role, &policy.id, &spec.policy, true).await?;
    Ok(role)
}

/// Deletes the step's recorded attachments, policies (with their non-default versions) and
/// roles, in the order IAM requires. Used by every step that records IAM roles.
pub async fn delete_recorded_roles(ctx: &StepCtx) -> Result<()> {
    for kind in [attachment::KIND, policy::KIND, role::KIND] {
        crate::resources::delete_recorded(ctx, kind).await?;
    }
    Ok(())
}

/// The stack's tags for the IAM resource `name`.
fn iam_tags(ctx: &StepCtx, name: &str) -> Result<Vec<Tag>> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building IAM tags")
}

/// The stack tag's value among IAM tags.
fn stack_tag(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key() == STACK_TAG)
        .map(|t| t.value())
}

/// The partition of an ARN (`arn:<partition>:...`), `aws` if it is not an ARN.
pub fn partition_of(arn: &str) -> &str {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", p, ..] if !p.is_empty() => p,
        _ => "aws",
    }
}

/// A string-or-list policy element as a list.
pub fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The rules every identity policy of the stack follows: Allow statements with explicit
/// actions and resources (no NotAction/NotResource), no `*` in an action except CloudWatch
/// Logs actions, and `Resource: "*"` only on a statement granting nothing but
/// `ecr:GetAuthorizationToken`.
pub fn check_least_privilege(doc: &Value) -> Result<(), String> {
    check_least_privilege_with(doc, &["ecr:GetAuthorizationToken"])
}

/// [`check_least_privilege`] with another set of actions that may (must) use `Resource: "*"`
/// because IAM accepts no narrower resource for them: a statement with `Resource: "*"` may
/// grant only those.
pub fn check_least_privilege_with(
    doc: &Value,
    resource_star_actions: &[&str],
) -> Result<(), String> {
    let statements = doc["Statement"]
        .as_array()
        .ok_or("the policy has no Statement list")?;
    if statements.is_empty() {
        return Err("the policy has no statements".into());
    }
    for s in statements {
        let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
        if s["Effect"] != "Allow" {
            return Err(format!("{sid}: only Allow statements are expected"));
        }
        for k in ["NotAction", "NotResource", "NotPrincipal", "Principal"] {
            if s.get(k).is_some() {
                return Err(format!("{sid}: {k} is not allowed in these policies"));
            }
        }
        let actions = as_list(s.get("Action"));
        if actions.is_empty() {
            return Err(format!("{sid}: no actions"));
        }
        for a in &actions {
            let (service, name) = a.split_once(':').unwrap_or(("", a));
            if (a.contains('*') || name.is_empty()) && service != "logs" {
                return Err(format!(
                    "{sid}: wildcard action `{a}` (only CloudWatch Logs actions may use one)"
                ));
            }
        }
        let resources = as_list(s.get("Resource"));
        if resources.is_empty() || resources.iter().any(|r| r.is_empty()) {
            return Err(format!("{sid}: every statement must name its resources"));
        }
        if resources.iter().any(|r| r == "*")
            && !actions
                .iter()
                .all(|a| resource_star_actions.contains(&a.as_str()))
        {
            return Err(format!(
                "{sid}: `Resource: \"*\"` is only allowed for {} alone",
                resource_star_actions.join(", ")
            ));
        }
    }
    Ok(())
}

/// A policy document as IAM returns it: URL-encoded (RFC 3986) JSON. Some emulators return it
/// as plain JSON, which is accepted too.
pub fn decode_document(raw: &str) -> Result<Value> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_string()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .context("policy document is not UTF-8 after URL-decoding")?
            .into_owned()
    };
    serde_json::from_str(&text).context("policy document is not JSON")
}

/// A document in a canonical form for comparison: single strings in Action, Resource and
/// condition values become one-element lists, and lists whose order IAM ignores are sorted.
pub fn normalize(doc: &Value) -> Value {
    fn list(v: &Value) -> Value {
        let mut l = as_list(Some(v));
        l.sort();
        Value::from(l)
    }
    let mut d = doc.clone();
    if let Some(Value::Object(_)) = d.get("Statement") {
        d["Statement"] = Value::from(vec![d["Statement"].clone()]);
    }
    if let Some(Value::Array(sts)) = d.get_mut("Statement") {
        for s in sts {
            let Value::Object(m) = s else { continue };
            for k in ["Action", "Resource"] {
                if let Some(v) = m.get(k).map(list) {
                    m.insert(k.into(), v);
                }
            }
            if let Some(Value::Object(cond)) = m.get_mut("Condition") {
                for (_, keys) in cond.iter_mut() {
                    if let Value::Object(keys) = keys {
                        for (_, v) in keys.iter_mut() {
                            *v = list(v);
                        }
                    }
                }
            }
            if let Some(Value::Object(p)) = m.get_mut("Principal") {
                for (_, v) in p.iter_mut() {
                    *v = list(v);
                }
            }
        }
    }
    d
}

/// Whether two documents grant the same (compared in canonical form).
pub fn same_document(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_checker_rejects_what_the_rules_forbid() {
        let bad = [
            json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken",
                                   "ecr:BatchGetImage"], "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": []}]}),
            json!({"Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "arn:x"}]}),
            json!({"Statement": []}),
        ];
        for doc in bad {
            assert!(check_least_privilege(&doc).is_err(), "accepted {doc}");
        }
        let ok = json!({"Statement": [
            {"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:us-east-1:1:log-group:/ecs/a:*"},
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
        ]});
        check_least_privilege(&ok).unwrap();
    }

    #[test]
    fn every_iam_kind_is_registered() {
        for kind in [role::KIND, policy::KIND, attachment::KIND] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn partition_of_an_arn() {
        assert_eq!(partition_of("arn:aws-cn:kms:cn-north-1:1:key/x"), "aws-cn");
        assert_eq!(partition_of("not-an-arn"), "aws");
    }
}
