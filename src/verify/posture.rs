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

/// Every posture control the stack's resources can be checked against; those a config
/// switch turns off (`network.flow_logs`, `cdn.access_logs`) are left out then.
pub async fn all(live: &Live, st: &Stack, cfg: &crate::config::Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if cfg.network.flow_logs {
        let mut c = Control::new("EC2.6", "VPC flow logs", "VPCs");
        let r = flow_logs(live, st, &mut c).await;
        out.push(c.finish_or(r));
    }
    let mut c = Control::new(
        "EC2.2",
        "the VPC's default security group allows nothing",
        "default groups",
    );
    let r = default_groups(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new("Lambda.7", "the validator traces with X-Ray", "functions");
    let r = tracing_on(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "CloudFront.1/5",
        "default root object and access logging",
        "distributions",
    );
    let r = distribution(live, st, cfg.cdn.access_logs, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "SecretsManager.1",
        "the master secret rotates automatically",
        "secrets",
    );
    let r = rotation(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "S3.*",
        "buckets versioned, private, TLS-only, encrypted, lifecycle-managed",
        "buckets",
    );
    let r = buckets(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "ECS.4/ECS.5",
        "containers unprivileged, read-only root filesystem",
        "task definitions",
    );
    let r = task_definitions(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "RDS.*",
        "Aurora encrypted, IAM authentication, tags copied to snapshots",
        "clusters",
    );
    let r = aurora(live, st, &mut c).await;
    out.push(c.finish_or(r));
    let mut c = Control::new(
        "Tags",
        "every tagged resource carries the stack's tags",
        "resources",
    );
    let r = tags(live, st, &mut c).await;
    out.push(c.finish_or(r));
    out
}

/// The stack's VPC and, with disaster recovery, the DR VPC: (VPC ID, region).
fn stack_vpcs(live: &Live, st: &Stack) -> Vec<(String, String)> {
    let mut vpcs = Vec::new();
    if let Some(v) = st.out(crate::steps::network::OUT_VPC_ID) {
        vpcs.push((v.to_string(), live.region().to_string()));
    }
    if let (Some(v), Some(r)) = (
        st.out(crate::steps::dr_network::OUT_DR_VPC_ID),
        st.out(crate::steps::dr_network::OUT_DR_REGION),
    ) {
        vpcs.push((v.to_string(), r.to_string()));
    }
    vpcs
}

/// The stack's VPC (and the DR VPC) delivers flow logs.
async fn flow_logs(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    for (vpc, region) in stack_vpcs(live, st) {
        let aws = live.in_region(&region);
        let out = aws
            .ec2()
            .describe_flow_logs()
            .filter(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(&vpc)
                    .build(),
            )
            .send()
            .await
            .aws("ec2:DescribeFlowLogs", &vpc)?;
        let active = out.flow_logs().iter().any(|f| {
            f.flow_log_status() == Some("ACTIVE") && f.deliver_logs_status() != Some("FAILED")
        });
        if !active {
            c.fail(format!("{vpc} ({region}) has no active flow log"));
        }
        c.checked += 1;
    }
    Ok(())
}

/// The default security group of the stack's VPC (and the DR VPC) has no rule.
async fn default_groups(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    for (vpc, region) in stack_vpcs(live, st) {
        let aws = live.in_region(&region);
        let out = aws
            .ec2()
            .describe_security_groups()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(&vpc)
                    .build(),
            )
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-name")
                    .values("default")
                    .build(),
            )
            .send()
            .await
            .aws("ec2:DescribeSecurityGroups", &vpc)?;
        for g in out.security_groups() {
            let rules = g.ip_permissions().len() + g.ip_permissions_egress().len();
            if rules > 0 {
                c.fail(format!(
                    "{} (default group of {vpc}) has {rules} rule(s)",
                    g.group_id().unwrap_or("?")
                ));
            }
            c.checked += 1;
        }
    }
    Ok(())
}

/// The validator runs with active X-Ray tracing.
async fn tracing_on(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(name) = st.out(crate::steps::validator::OUT_FUNCTION_NAME) else {
        return Ok(());
    };
    let f = live.function(name).await?;
    let mode = f
        .tracing_config()
        .and_then(|t| t.mode())
        .map(|m| m.as_str().to_string());
    if mode.as_deref() != Some("Active") {
        c.fail(format!(
            "{name}: tracing is {}",
            mode.as_deref().unwrap_or("off")
        ));
    }
    c.checked += 1;
    Ok(())
}

/// The distribution has a default root object and, unless switched off, access logging.
async fn distribution(live: &Live, st: &Stack, logs: bool, c: &mut Control) -> Result<()> {
    let Some(id) = st.out(crate::steps::cdn::OUT_DISTRIBUTION_ID) else {
        return Ok(());
    };
    let d = live.distribution(id).await?;
    let conf = d.distribution_config();
    if conf
        .and_then(|c| c.default_root_object())
        .is_none_or(str::is_empty)
    {
        c.fail(format!("{id}: no default root object (CloudFront.1)"));
    }
    if logs && !conf.and_then(|c| c.logging()).is_some_and(|l| l.enabled()) {
        c.fail(format!("{id}: access logging is off (CloudFront.5)"));
    }
    c.checked += 1;
    Ok(())
}

/// The database's master secret has automatic rotation on.
async fn rotation(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(arn) = st.out(crate::steps::database::OUT_SECRET_ARN) else {
        return Ok(());
    };
    let s = live
        .aws
        .secrets()
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .aws("secretsmanager:DescribeSecret", arn)?;
    if s.rotation_enabled() != Some(true) {
        c.fail(format!(
            "{}: automatic rotation is off",
            s.name().unwrap_or(arn)
        ));
    }
    c.checked += 1;
    Ok(())
}

/// Every bucket the stack made: versioning on, public access blocked, a default encryption,
/// a policy that denies requests without TLS, and a lifecycle rule.
async fn buckets(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let names: BTreeSet<(String, String)> = st
        .resources
        .iter()
        .filter(|r| r.kind == storage::BUCKET && !r.pending)
        .map(|r| {
            let region = if r.region.is_empty() {
                live.region().to_string()
            } else {
                r.region.clone()
            };
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
        let blocked = pab
            .ok()
            .and_then(|p| p.public_access_block_configuration().cloned())
            .is_some_and(|b| {
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
            c.fail(format!(
                "{bucket}: the policy does not deny requests without TLS (S3.5)"
            ));
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
            && s["Condition"]["Bool"].as_object().is_some_and(|b| {
                b.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("aws:SecureTransport")
                        && (v == "false" || v == &Value::Bool(false))
                })
            })
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
        for cd in td
            .task_definition()
            .map(|t| t.container_definitions())
            .unwrap_or_default()
        {
            let name = cd.name().unwrap_or("?");
            if cd.privileged() == Some(true) {
                c.fail(format!(
                    "service {svc}: container {name} is privileged (ECS.4)"
                ));
            }
            if cd.readonly_root_filesystem() != Some(true) {
                c.fail(format!(
                    "service {svc}: container {name} has a writable root filesystem (ECS.5)"
                ));
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
