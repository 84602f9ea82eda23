//! Condition blocks: the operators, set qualifiers and `...IfExists`, evaluated against the request
//! context.

use super::matching::{glob, literal_tokens, tokens, Tok};
use super::*;

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
    pub(super) fn holds(&self, req: &Request, vars: bool) -> bool {
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
