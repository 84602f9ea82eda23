//! Statements in the stack key's policy that other resources need, merged by `Sid` into the
//! policy the `kms:key` provider sets at creation (GetKeyPolicy, then PutKeyPolicy of the
//! whole document with every other statement kept): today `CloudFrontDecryptsAssets`
//! ([`KEY_SID`]), which lets the distribution's OAC have S3 decrypt the SSE-KMS assets (AWS's
//! documented OAC + SSE-KMS statement; without it every object answers 403).
//!
//! KMS has one policy per key (`default`) and no per-statement API, so every writer must
//! read, merge by `Sid` and write the whole document back; anything that ever rewrites the
//! key policy must keep these statements.

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::key::KIND;
use crate::aws::{AwsErrorKind, AwsResultExt};
use crate::step::StepCtx;

/// `Sid` of the cdn step's statement in the stack key's policy. The kms step sets the key
/// policy only when it creates the key; anything that ever rewrites that policy must keep this
/// one.
pub const KEY_SID: &str = "CloudFrontDecryptsAssets";

/// The key policy statement that lets the distribution `distribution_arn`'s OAC have S3
/// decrypt the SSE-KMS assets (AWS's documented statement for OAC with SSE-KMS; reads need
/// only `kms:Decrypt`).
pub fn key_statement(distribution_arn: &str) -> Value {
    json!({
        "Sid": KEY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    })
}

/// A policy document's statements as a list (IAM also allows a single object).
fn policy_statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The key policy with `stmt` in place of the statement(s) with its `Sid` (or appended);
/// every other statement and top-level field is kept as it is. `None` when the policy already
/// holds exactly that statement once: nothing to write.
pub fn merge_key_policy(current: &str, stmt: &Value) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(current).context("the key policy is not JSON")?;
    let sid = &stmt["Sid"];
    let mut statements = policy_statements(&doc);
    let same: Vec<&Value> = statements.iter().filter(|s| &s["Sid"] == sid).collect();
    if same.len() == 1 && same[0] == stmt {
        return Ok(None);
    }
    match statements.iter().position(|s| &s["Sid"] == sid) {
        Some(i) => {
            statements[i] = stmt.clone();
            let mut first = true;
            statements.retain(|s| {
                if &s["Sid"] != sid {
                    return true;
                }
                std::mem::replace(&mut first, false)
            });
        }
        None => statements.push(stmt.clone()),
    }
    let obj = doc
        .as_object_mut()
        .context("the key policy is not a JSON object")?;
    obj.entry("Version").or_insert_with(|| json!("2012-10-17"));
    obj.insert("Statement".into(), Value::Array(statements));
    Ok(Some(doc.to_string()))
}

/// The key policy without the statements with `sid`; `None` if it has none (nothing to do).
/// Never empty: the key's administration statements stay.
pub fn key_policy_without(current: &str, sid: &str) -> Result<Option<String>> {
    let mut doc: Value = serde_json::from_str(current).context("the key policy is not JSON")?;
    let statements = policy_statements(&doc);
    let kept: Vec<Value> = statements
        .iter()
        .filter(|s| s["Sid"] != sid)
        .cloned()
        .collect();
    if kept.len() == statements.len() {
        return Ok(None);
    }
    let obj = doc
        .as_object_mut()
        .context("the key policy is not a JSON object")?;
    obj.insert("Statement".into(), Value::Array(kept));
    Ok(Some(doc.to_string()))
}

/// Makes sure the policy of the key `key_arn` holds `stmt` (by its `Sid`, every other
/// statement kept). Written only when missing or different, so `up` restores it if someone
/// removed it. `as_change`: report it as a change (`what`) rather than as part of creating the
/// resource the statement is for.
pub async fn ensure_statement(
    ctx: &StepCtx,
    key_arn: &str,
    stmt: &Value,
    what: &str,
    as_change: bool,
) -> Result<()> {
    let kms = ctx.aws().kms();
    let current = kms
        .get_key_policy()
        .key_id(key_arn)
        .policy_name("default")
        .send()
        .await
        .aws("kms:GetKeyPolicy", key_arn)?
        .policy
        .unwrap_or_default();
    let Some(policy) = merge_key_policy(&current, stmt)? else {
        return Ok(());
    };
    let apply = || async {
        kms.put_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .aws("kms:PutKeyPolicy", key_arn)?;
        Ok(())
    };
    let key_name = format!("fintech-{}", ctx.suffix());
    if as_change {
        ctx.change(KIND, &key_name, what, apply).await
    } else {
        ctx.check_cancelled()?;
        apply().await
    }
}

/// Removes the statements with `sid` from the policy of the key `key_arn`, if the key is still
/// there and usable (a key gone or pending deletion grants nothing any more).
pub async fn remove_statement(ctx: &StepCtx, key_arn: &str, sid: &str) -> Result<()> {
    let kms = ctx.aws().kms();
    let got = kms
        .get_key_policy()
        .key_id(key_arn)
        .policy_name("default")
        .send()
        .await
        .aws("kms:GetKeyPolicy", key_arn);
    let current = match got {
        Ok(o) => o.policy.unwrap_or_default(),
        Err(e)
            if matches!(
                e.kind(),
                AwsErrorKind::NotFound | AwsErrorKind::InvalidState
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    };
    let Some(policy) = key_policy_without(&current, sid)? else {
        return Ok(());
    };
    ctx.check_cancelled()?;
    match kms
        .put_key_policy()
        .key_id(key_arn)
        .policy_name("default")
        .policy(policy)
        .send()
        .await
        .aws("kms:PutKeyPolicy", key_arn)
    {
        Ok(_) => Ok(()),
        // Gone or pending deletion already: nothing is granted any more.
        Err(e)
            if matches!(
                e.kind(),
                AwsErrorKind::NotFound | AwsErrorKind::InvalidState
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_policy_gets_the_distribution_statement_and_keeps_the_others() {
        let arn = "arn:aws:cloudfront::123456789012:distribution/E2ABC";
        let stmt = key_statement(arn);
        assert_eq!(stmt["Sid"], KEY_SID);
        assert_eq!(stmt["Principal"]["Service"], "cloudfront.amazonaws.com");
        assert_eq!(stmt["Action"], "kms:Decrypt");
        assert_eq!(stmt["Resource"], "*");
        assert_eq!(stmt["Condition"]["StringEquals"]["AWS:SourceArn"], arn);

        // The kms step's policy: every statement kept, ours appended.
        let base = super::super::key::key_policy("123456789012", "us-east-1");
        let merged: Value =
            serde_json::from_str(&merge_key_policy(&base.to_string(), &stmt).unwrap().unwrap())
                .unwrap();
        let st = merged["Statement"].as_array().unwrap();
        let before = base["Statement"].as_array().unwrap();
        assert_eq!(st.len(), before.len() + 1);
        assert_eq!(&st[..before.len()], &before[..]);
        assert_eq!(st.last().unwrap(), &stmt);
        assert_eq!(merged["Version"], "2012-10-17");
        // Already there: nothing to write, whatever the whitespace KMS hands back.
        let pretty = serde_json::to_string_pretty(&merged).unwrap();
        assert_eq!(merge_key_policy(&pretty, &stmt).unwrap(), None);

        // Another distribution's (or a hand-edited) statement with our Sid is replaced in
        // place; duplicates of the Sid collapse; other fields (an Id) stay.
        let other = key_statement("arn:aws:cloudfront::123456789012:distribution/EOLD");
        let doc = json!({
            "Version": "2012-10-17",
            "Id": "key-policy",
            "Statement": [other.clone(), before[0].clone(), other]
        });
        let fixed: Value =
            serde_json::from_str(&merge_key_policy(&doc.to_string(), &stmt).unwrap().unwrap())
                .unwrap();
        assert_eq!(fixed["Id"], "key-policy");
        assert_eq!(fixed["Statement"], json!([stmt.clone(), before[0].clone()]));
        // A single statement object (allowed by the policy grammar) becomes a list.
        let single = json!({"Version": "2012-10-17", "Statement": before[0].clone()});
        let fixed: Value = serde_json::from_str(
            &merge_key_policy(&single.to_string(), &stmt)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(fixed["Statement"], json!([before[0].clone(), stmt.clone()]));
        assert!(merge_key_policy("not json", &stmt).is_err());

        // Removal takes ours only.
        let left: Value = serde_json::from_str(
            &key_policy_without(&merged.to_string(), KEY_SID)
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(left["Statement"], base["Statement"]);
        assert_eq!(
            key_policy_without(&base.to_string(), KEY_SID).unwrap(),
            None
        );
    }
}
