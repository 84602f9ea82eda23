//! Decisions: combining statements and policies into allow / explicit deny / implicit deny, for
//! plain and KMS evaluation.

use super::*;

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
