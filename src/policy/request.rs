//! The request being evaluated: who calls ([`PrincipalRef`]), the action, the resource and the
//! condition context.

use super::*;

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
    pub(super) fn account_root(&self) -> Option<PrincipalRef> {
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
    pub(super) fn lookup(&self, key: &str) -> Option<Vec<String>> {
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
