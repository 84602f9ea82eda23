//! The `posture` section of `verify`: the security controls a fintech auditor runs (AWS
//! Security Hub's Foundational Security Best Practices, with their control IDs), read back
//! from the live stack. Each is a [`Finding`] like the paths: PASS, or FAIL naming the
//! control, the resource and what is missing.

use std::collections::BTreeSet;

use anyhow::Result;
use serde_json::Value;

use super::live::Live;
use super::{Finding, Stack};
use crate::aws::AwsResultExt;
use crate::steps::storage;

const FIX_UP: &str = "run `fintech-infra up`: it restores what the stack owns";

struct Control {
    path: String,
    problems: Vec<String>,
    checked: usize,
    what: &'static str,
}

impl Control {
    fn new(id: &str, title: &str, what: &'static str) -> Control {
        Control {
            path: format!("{id} {title}"),
            problems: Vec::new(),
            checked: 0,
            what,
        }
    }

    fn fail(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn finish(self) -> Finding {
        let ok = self.problems.is_empty();
        Finding {
            section: "posture",
            path: self.path,
            ok,
            reason: if ok {
                format!("{} {}", self.checked, self.what)
            } else {
                self.problems.join("; ")
            },
            fix: (!ok).then(|| FIX_UP.to_string()),
        }
    }

    fn finish_or(self, err: Result<()>) -> Finding {
        let mut c = self;
        if let Err(e) = err {
            c.fail(format!("could not read: {e:#}"));
        }
        c.finish()
    }
}

/// Every posture control the stack's resources can be checked against.
pub async fn all(live: &Live, st: &Stack) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut c = Control::new("S3.*", "buckets versioned, private, TLS-only, encrypted, lifecycle-managed", "buckets");
    let r = buckets(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new("ECS.4/ECS.5", "containers unprivileged, read-only root filesystem", "task definitions");
    let r = task_definitions(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new("RDS.*", "Aurora encrypted, IAM authentication, tags copied to snapshots", "clusters");
    let r = aurora(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new("Tags", "every tagged resource carries the stack's tags", "resources");
    let r = tags(live, st, &mut c).await;
    out.push(c.finish_or(r));
    out
}

/// Every bucket the stack made: versioning on, public access blocked, a default encryption,
/// a policy that denies requests without TLS, and a lifecycle rule.
async fn buckets(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let names: BTreeSet<(String, String)> = st
        .resources
        .iter()
        .filter(|r| r.kind == storage::BUCKET && !r.pending)
        .map(|r| {
            let region = if r.region.is_empty() { live.region().to_string() } else { r.region.clone() };
            (r.id.clone(), region)
        })
        .collect();
    for (bucket, region) in &names {
        let aws = live.in_region(region);
        let s3 = aws.s3();
        let v = s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetBucketVersioning", bucket)?;
        if v.status().map(|s| s.as_str()) != Some("Enabled") {
            c.fail(format!("{bucket}: versioning is not enabled (S3.14)"));
        }
        let pab = s3
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetPublicAccessBlock", bucket);
        let blocked = pab.ok().and_then(|p| p.public_access_block_configuration().cloned()).is_some_and(|b| {
            b.block_public_acls() == Some(true)
                && b.ignore_public_acls() == Some(true)
                && b.block_public_policy() == Some(true)
                && b.restrict_public_buckets() == Some(true)
        });
        if !blocked {
            c.fail(format!("{bucket}: public access is not blocked (S3.8)"));
        }
        let facts = live.bucket(bucket, region).await?;
        if facts.sse_algorithm.is_empty() {
            c.fail(format!("{bucket}: no default encryption"));
        }
        if !denies_plain_http(facts.policy.as_ref()) {
            c.fail(format!("{bucket}: the policy does not deny requests without TLS (S3.5)"));
        }
        let lc = s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetBucketLifecycleConfiguration", bucket);
        let has_rule = lc.ok().is_some_and(|l| !l.rules().is_empty());
        if !has_rule {
            c.fail(format!("{bucket}: no lifecycle rule (S3.13)"));
        }
        c.checked += 1;
    }
    Ok(())
}

/// A statement that denies every request with `aws:SecureTransport` false.
fn denies_plain_http(policy: Option<&Value>) -> bool {
    let Some(p) = policy else { return false };
    let statements = match &p["Statement"] {
        Value::Array(a) => a.clone(),
        v @ Value::Object(_) => vec![v.clone()],
        _ => return false,
    };
    statements.iter().any(|s| {
        s["Effect"] == "Deny"
            && s["Condition"]["Bool"]
                .as_object()
                .is_some_and(|b| b.iter().any(|(k, v)| k.eq_ignore_ascii_case("aws:SecureTransport") && (v == "false" || v == &Value::Bool(false))))
    })
}

/// The services' current task definitions: no privileged container, read-only root
/// filesystems.
async fn task_definitions(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    for (svc, arn) in st.out_map(crate::steps::services::OUT_TASK_DEFINITION_ARNS) {
        let td = live
            .aws
            .ecs()
            .describe_task_definition()
            .task_definition(&arn)
            .send()
            .await
            .aws("ecs:DescribeTaskDefinition", &arn)?;
        for cd in td.task_definition().map(|t| t.container_definitions()).unwrap_or_default() {
            let name = cd.name().unwrap_or("?");
            if cd.privileged() == Some(true) {
                c.fail(format!("service {svc}: container {name} is privileged (ECS.4)"));
            }
            if cd.readonly_root_filesystem() != Some(true) {
                c.fail(format!("service {svc}: container {name} has a writable root filesystem (ECS.5)"));
            }
        }
        c.checked += 1;
    }
    Ok(())
}

/// The Aurora cluster: encrypted, IAM database authentication, tags copied to snapshots.
async fn aurora(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(id) = st.out(crate::steps::database::OUT_CLUSTER_ID) else {
        return Ok(());
    };
    let out = live
        .aws
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .aws("rds:DescribeDBClusters", id)?;
    for cl in out.db_clusters() {
        if cl.storage_encrypted() != Some(true) {
            c.fail(format!("{id}: storage not encrypted (RDS.27)"));
        }
        if cl.iam_database_authentication_enabled() != Some(true) {
            c.fail(format!("{id}: IAM database authentication is off (RDS.12)"));
        }
        if cl.copy_tags_to_snapshot() != Some(true) {
            c.fail(format!("{id}: tags are not copied to snapshots (RDS.16)"));
        }
        c.checked += 1;
    }
    Ok(())
}

/// Every resource the tagging API lists with the stack tag also has the other standard tags.
async fn tags(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let mut regions = vec![live.region().to_string()];
    for r in &st.resources {
        if !r.region.is_empty() && !regions.contains(&r.region) {
            regions.push(r.region.clone());
        }
    }
    for region in regions {
        let aws = live.in_region(&region);
        for (arn, tags) in crate::sweep::tagged_resources(&aws, &st.suffix).await? {
            let missing: Vec<&str> = ["Environment", "Team", "CostCenter"]
                .into_iter()
                .filter(|k| !tags.iter().any(|(t, _)| t == k))
                .collect();
            if !missing.is_empty() {
                c.fail(format!("{arn} lacks the tag(s) {}", missing.join(", ")));
            }
            c.checked += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tls_only_policy_denies_plain_http() {
        let p = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(denies_plain_http(Some(&p)));
        let allow = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
            "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        assert!(!denies_plain_http(Some(&allow)));
        assert!(!denies_plain_http(None));
    }
}
