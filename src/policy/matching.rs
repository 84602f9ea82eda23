//! Statement matching: principals, actions and resources, with AWS's wildcard and policy-variable
//! rules.

use super::*;

impl Statement {
    /// Whether this statement covers the request (its effect is not considered here).
    pub(super) fn applies(
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
pub(super) fn resource_matches(pattern: &str, resource: &str, req: &Request, vars: bool) -> bool {
    let Some(pat) = tokens(pattern, req, vars) else {
        return false;
    };
    let text: Vec<char> = resource.chars().collect();
    glob(&pat, &text, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    Lit(char),
    Star,
    One,
}

pub(super) fn literal_tokens(s: &str) -> Vec<Tok> {
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
pub(super) fn tokens(s: &str, req: &Request, vars: bool) -> Option<Vec<Tok>> {
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
pub(super) fn glob(pat: &[Tok], text: &[char], arn_segments: bool) -> bool {
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
