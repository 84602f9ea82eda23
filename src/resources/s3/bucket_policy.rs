//! Bucket policies as sets of statements owned by `Sid`: every step that writes a statement
//! into a bucket policy (the storage step's TLS-only deny, the CDN's grant to its
//! distribution, the log buckets' delivery grants) replaces only its own statements and keeps
//! everyone else's, as several steps share one policy (the assets bucket's).
//!
//! S3 answers GetBucketPolicy on a bucket without one with `NoSuchBucketPolicy` (a "no such
//! configuration", not a missing bucket): read as "no policy". A policy left without any
//! statement is deleted rather than written empty (S3 refuses an empty statement list).

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::bucket_settings::no_config;
use crate::aws::AwsResultExt;
use crate::step::StepCtx;

/// `Sid` of the statement that denies requests without TLS (the storage step's).
pub const TLS_ONLY_SID: &str = "DenyInsecureTransport";

pub fn bucket_arn(name: &str) -> String {
    format!("arn:aws:s3:::{name}")
}

/// The statement that denies every request not made over TLS.
pub fn tls_only_statement(bucket: &str) -> Value {
    let arn = bucket_arn(bucket);
    json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, format!("{arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

/// A policy document's statements as a list (the policy grammar also allows one object).
pub fn statements(policy: Option<&str>) -> Result<Vec<Value>> {
    let Some(text) = policy.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let doc: Value = serde_json::from_str(text).context("the bucket policy is not JSON")?;
    Ok(match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    })
}

fn policy_doc(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The policy with `stmt` in place of any statement with the same `Sid` (others kept, in
/// order), or `None` when the policy already holds exactly that statement.
pub fn upsert_statement(policy: Option<&str>, stmt: &Value) -> Result<Option<String>> {
    let sid = stmt["Sid"].as_str().unwrap_or_default();
    let mut st = statements(policy)?;
    if st.iter().any(|s| s == stmt) && st.iter().filter(|s| s["Sid"] == sid).count() == 1 {
        return Ok(None);
    }
    match st.iter().position(|s| s["Sid"] == sid) {
        Some(i) => {
            st[i] = stmt.clone();
            let mut seen = false;
            st.retain(|s| {
                if s["Sid"] != sid {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
        }
        None => st.push(stmt.clone()),
    }
    Ok(Some(policy_doc(st)))
}

/// The policy with every statement of `wanted` in place (by `Sid`), others kept; `None`
/// when it already holds them all.
pub fn upsert_statements(current: Option<&str>, wanted: &[Value]) -> Result<Option<String>> {
    let mut policy = current.map(str::to_string);
    let mut changed = false;
    for s in wanted {
        if let Some(p) = upsert_statement(policy.as_deref(), s)? {
            policy = Some(p);
            changed = true;
        }
    }
    Ok(changed.then(|| policy.unwrap_or_default()))
}

/// What is left of the policy without the statements named `sids`: `None` if none of them
/// was there (nothing to do), `Some(None)` if nothing is left (delete the policy),
/// `Some(Some(doc))` otherwise.
pub fn remove_statements(policy: Option<&str>, sids: &[&str]) -> Result<Option<Option<String>>> {
    let st = statements(policy)?;
    let kept: Vec<Value> = st
        .iter()
        .filter(|s| !sids.iter().any(|sid| s["Sid"] == *sid))
        .cloned()
        .collect();
    if kept.len() == st.len() {
        return Ok(None);
    }
    Ok(Some((!kept.is_empty()).then(|| policy_doc(kept))))
}

/// The bucket's policy document, if it has one.
pub async fn get_policy(ctx: &StepCtx, bucket: &str) -> Result<Option<String>> {
    let out = no_config(
        ctx.aws()
            .s3()
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetBucketPolicy", bucket),
    )?;
    Ok(out.and_then(|o| o.policy))
}

/// Writes the policy, or deletes it when `None`.
pub async fn set_policy(ctx: &StepCtx, bucket: &str, policy: Option<String>) -> Result<()> {
    let s3 = ctx.aws().s3();
    match policy {
        Some(p) => {
            s3.put_bucket_policy()
                .bucket(bucket)
                .policy(p)
                .send()
                .await
                .aws("s3:PutBucketPolicy", bucket)?;
        }
        None => {
            s3.delete_bucket_policy()
                .bucket(bucket)
                .send()
                .await
                .aws("s3:DeleteBucketPolicy", bucket)?;
        }
    }
    Ok(())
}

/// Removes the statements named `sids` from the bucket's policy (deleting the policy if
/// nothing is left); a bucket that is gone has nothing to remove.
pub async fn remove_from(ctx: &StepCtx, bucket: &str, sids: &[&str]) -> Result<()> {
    let policy = match get_policy(ctx, bucket).await {
        Ok(p) => p,
        Err(e) if crate::aws::find_aws_error(&e).is_some_and(|a| a.is_not_found()) => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(new) = remove_statements(policy.as_deref(), sids)? {
        ctx.check_cancelled()?;
        set_policy(ctx, bucket, new).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_statement_denies_insecure_transport() {
        let s = tls_only_statement("b");
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert_eq!(s["Resource"], json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]));
    }

    #[test]
    fn upsert_keeps_other_statements_and_is_idempotent() {
        let tls = tls_only_statement("b");
        let p = upsert_statement(None, &tls).unwrap().unwrap();
        assert_eq!(upsert_statement(Some(&p), &tls).unwrap(), None);
        let grant = json!({"Sid": "Cdn", "Effect": "Allow"});
        let p2 = upsert_statement(Some(&p), &grant).unwrap().unwrap();
        assert_eq!(upsert_statement(Some(&p2), &tls).unwrap(), None);
        let changed = json!({"Sid": "Cdn", "Effect": "Allow", "Action": "s3:GetObject"});
        let p3 = upsert_statement(Some(&p2), &changed).unwrap().unwrap();
        let st = statements(Some(&p3)).unwrap();
        assert_eq!(st, vec![tls.clone(), changed]);
        // Removing the grant keeps the TLS statement; removing everything deletes the policy.
        let left = remove_statements(Some(&p3), &["Cdn"]).unwrap().unwrap();
        assert_eq!(statements(left.as_deref()).unwrap(), vec![tls]);
        assert_eq!(remove_statements(left.as_deref(), &["Cdn"]).unwrap(), None);
        assert_eq!(
            remove_statements(left.as_deref(), &[TLS_ONLY_SID]).unwrap(),
            Some(None)
        );
    }

    #[test]
    fn policy_gets_our_statements_once() {
        let tls = tls_only_statement("b");
        let grant = json!({"Sid": "Delivery", "Effect": "Allow"});
        let p = upsert_statements(None, &[grant.clone(), tls.clone()])
            .unwrap()
            .unwrap();
        assert_eq!(upsert_statements(Some(&p), &[grant, tls]).unwrap(), None);
    }
}
