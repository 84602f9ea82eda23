//! Parsing policy documents (JSON, or URL-encoded as IAM returns them) into the [`Policy`] model,
//! rejecting what AWS would reject.

use super::*;

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

    pub(super) fn decide_as(
        &self,
        req: &Request,
        principal: &PrincipalRef,
        kind: PolicyKind,
    ) -> Decision {
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
