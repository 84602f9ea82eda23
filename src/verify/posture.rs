//! The `posture` section of `verify`: the security controls a fintech auditor runs (AWS
//! Security Hub's Foundational Security Best Practices, with their control IDs), read back
//! from the live stack. Each is a [`Finding`] like the paths: PASS, or FAIL naming the
//! control, the resource and what is missing.

use std::collections::BTreeSet;

use anyhow::Result;
use futures::future::{BoxFuture, FutureExt};
use serde_json::Value;

use super::live::Live;
use super::{Finding, Stack};
use crate::aws::{AwsResultExt, NotFoundOk};
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

/// One control as a future: `check` runs against the control `c` (bound to the name given),
/// whose finding comes out; a failed read is a finding too.
macro_rules! control {
    ($control:expr, |$c:ident| $check:expr) => {
        async move {
            let mut $c = $control;
            let r = $check.await;
            $c.finish_or(r)
        }
        .boxed()
    };
}

/// Every posture control the stack's resources can be checked against; those a config
/// switch turns off (`network.flow_logs`, `cdn.access_logs`) are left out then.
pub async fn all(live: &Live, st: &Stack, cfg: &crate::config::Config) -> Vec<Finding> {
    // The controls read independent things: all at once (the reads they share are cached
    // once, see `Live`), the findings in this order.
    let mut out: Vec<BoxFuture<'_, Finding>> = Vec::new();
    if cfg.network.flow_logs {
        out.push(control!(
            Control::new("EC2.6", "VPC flow logs", "VPCs"),
            |c| flow_logs(live, st, &mut c)
        ));
    }
    out.push(control!(
        Control::new(
            "EC2.2",
            "the VPC's default security group allows nothing",
            "default groups",
        ),
        |c| default_groups(live, st, &mut c)
    ));
    out.push(control!(
        Control::new("Lambda.7", "the validator traces with X-Ray", "functions"),
        |c| tracing_on(live, st, &mut c)
    ));
    out.push(control!(
        Control::new(
            "CloudFront.1/5",
            "default root object and access logging",
            "distributions",
        ),
        |c| distribution(live, st, cfg.cdn.access_logs, &mut c)
    ));
    out.push(control!(
        Control::new(
            "CloudFront.3/10",
            "viewers on HTTPS, TLS 1.2+ with a certificate, no deprecated TLS to origins",
            "distributions",
        ),
        |c| distribution_tls(live, st, cfg.cdn.certificate_arn.is_some(), &mut c)
    ));
    if cfg.waf.enabled {
        out.push(control!(
            Control::new(
                "CloudFront.6",
                "the distribution has a WAF web ACL",
                "distributions",
            ),
            |c| distribution_waf(live, st, &mut c)
        ));
    }
    out.push(control!(
        Control::new(
            "SecretsManager.1",
            "the master secret rotates automatically",
            "secrets",
        ),
        |c| rotation(live, st, &mut c)
    ));
    out.push(control!(
        Control::new(
            "S3.*",
            "buckets versioned, private, TLS-only, encrypted, lifecycle-managed",
            "buckets",
        ),
        |c| buckets(live, st, &mut c)
    ));
    out.push(control!(
        Control::new(
            "ECS.4/ECS.5",
            "containers unprivileged, read-only root filesystem",
            "task definitions",
        ),
        |c| task_definitions(live, st, &mut c)
    ));
    out.push(control!(
        Control::new(
            "RDS.*",
            "Aurora encrypted, IAM authentication, tags copied to snapshots, Performance Insights \
         with the stack key",
            "clusters and instances",
        ),
        |c| aurora(live, st, &mut c)
    ));
    out.push(control!(
        Control::new(
            "Tags",
            "every tagged resource carries the stack's tags",
            "resources",
        ),
        |c| tags(live, st, &cfg.tags, &mut c)
    ));
    futures::future::join_all(out).await
}

/// The stack's VPC and, with disaster recovery, the DR VPC: (VPC ID, region).
fn stack_vpcs(live: &Live, st: &Stack) -> Vec<(String, String)> {
    let mut vpcs = Vec::new();
    if let Some(v) = st.out(crate::outputs::network::OUT_VPC_ID) {
        vpcs.push((v.to_string(), live.region().to_string()));
    }
    if let (Some(v), Some(r)) = (
        st.out(crate::outputs::dr_network::OUT_DR_VPC_ID),
        st.out(crate::outputs::dr_network::OUT_DR_REGION),
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
    let Some(name) = st.out(crate::outputs::validator::OUT_FUNCTION_NAME) else {
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
    let Some(id) = st.out(crate::outputs::cdn::OUT_DISTRIBUTION_ID) else {
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

/// Every behaviour sends viewers to HTTPS (CloudFront.3); custom origins speak no SSLv3,
/// TLS 1.0 or 1.1 (CloudFront.10); with a certificate of the user's, viewers need TLS 1.2 and
/// the API origin is reached over HTTPS only (with CloudFront's default certificate AWS
/// forces the TLSv1 policy, and the ALB has no certificate to offer).
async fn distribution_tls(live: &Live, st: &Stack, cert: bool, c: &mut Control) -> Result<()> {
    use aws_sdk_cloudfront::types::{OriginProtocolPolicy, SslProtocol, ViewerProtocolPolicy};
    let Some(id) = st.out(crate::outputs::cdn::OUT_DISTRIBUTION_ID) else {
        return Ok(());
    };
    let d = live.distribution(id).await?;
    let Some(conf) = d.distribution_config() else {
        c.fail(format!("{id}: no configuration"));
        return Ok(());
    };
    let https = |p: &ViewerProtocolPolicy| {
        matches!(
            p,
            ViewerProtocolPolicy::RedirectToHttps | ViewerProtocolPolicy::HttpsOnly
        )
    };
    if let Some(b) = conf.default_cache_behavior() {
        if !https(b.viewer_protocol_policy()) {
            c.fail(format!(
                "{id}: the default behaviour allows plain HTTP (CloudFront.3)"
            ));
        }
    }
    for b in conf
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
    {
        if !https(b.viewer_protocol_policy()) {
            c.fail(format!(
                "{id}: {} allows plain HTTP (CloudFront.3)",
                b.path_pattern()
            ));
        }
    }
    for o in conf.origins().map(|o| o.items()).unwrap_or_default() {
        let Some(custom) = o.custom_origin_config() else {
            continue;
        };
        let old: Vec<&str> = custom
            .origin_ssl_protocols()
            .map(|p| p.items())
            .unwrap_or_default()
            .iter()
            .filter(|p| !matches!(p, SslProtocol::TlSv12))
            .map(|p| p.as_str())
            .collect();
        if !old.is_empty() {
            c.fail(format!(
                "{id}: origin {} allows {} (CloudFront.10)",
                o.id(),
                old.join(", ")
            ));
        }
        if cert && custom.origin_protocol_policy() != &OriginProtocolPolicy::HttpsOnly {
            c.fail(format!(
                "{id}: origin {} is reached with {} although a certificate is configured",
                o.id(),
                custom.origin_protocol_policy().as_str()
            ));
        }
    }
    if cert {
        let min = conf
            .viewer_certificate()
            .and_then(|v| v.minimum_protocol_version())
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        if !min.starts_with("TLSv1.2") && !min.starts_with("TLSv1.3") {
            c.fail(format!(
                "{id}: viewers may use {min} (TLS 1.2 is the minimum)"
            ));
        }
    }
    c.checked += 1;
    Ok(())
}

/// With `[waf] enabled`, the distribution names an existing CLOUDFRONT-scope web ACL.
async fn distribution_waf(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(id) = st.out(crate::outputs::cdn::OUT_DISTRIBUTION_ID) else {
        return Ok(());
    };
    let d = live.distribution(id).await?;
    let acl = d
        .distribution_config()
        .and_then(|c| c.web_acl_id())
        .unwrap_or_default()
        .to_string();
    if acl.is_empty() {
        c.fail(format!("{id}: no web ACL"));
    } else if !acl.contains(":global/webacl/") {
        c.fail(format!("{id}: {acl} is not a CLOUDFRONT-scope web ACL"));
    } else {
        let parts: Vec<&str> = acl.rsplit('/').take(2).collect();
        let (acl_id, name) = (parts[0], parts.get(1).copied().unwrap_or_default());
        let found = live
            .in_region(crate::steps::waf::CLOUDFRONT_REGION)
            .waf()
            .get_web_acl()
            .scope(aws_sdk_wafv2::types::Scope::Cloudfront)
            .name(name)
            .id(acl_id)
            .send()
            .await
            .aws("wafv2:GetWebACL", &acl)
            .not_found_ok()?;
        if found.is_none() {
            c.fail(format!("{id}: its web ACL {acl} does not exist"));
        }
    }
    c.checked += 1;
    Ok(())
}

/// The database's master secret has automatic rotation on.
async fn rotation(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(arn) = st.out(crate::outputs::database::OUT_SECRET_ARN) else {
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
/// a policy that denies requests without TLS, and a lifecycle rule, which on a versioned
/// bucket also expires non-current versions (else every overwritten or deleted version is
/// kept, and billed, for ever).
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
    // Each bucket's four reads at once, and the buckets at once.
    let read = |bucket: String, region: String| async move {
        let (bucket, region) = (&bucket, &region);
        let aws = live.in_region(region);
        let s3 = aws.s3();
        let (v, pab, facts, lc) = tokio::join!(
            s3.get_bucket_versioning().bucket(bucket).send(),
            s3.get_public_access_block().bucket(bucket).send(),
            live.bucket(bucket, region),
            s3.get_bucket_lifecycle_configuration()
                .bucket(bucket)
                .send(),
        );
        let mut problems = Vec::new();
        let v = v.aws("s3:GetBucketVersioning", bucket)?;
        let versioning = v.status().map(|s| s.as_str().to_string());
        if versioning.as_deref() != Some("Enabled") {
            problems.push(format!("{bucket}: versioning is not enabled (S3.14)"));
        }
        let pab = pab.aws("s3:GetPublicAccessBlock", bucket);
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
            problems.push(format!("{bucket}: public access is not blocked (S3.8)"));
        }
        let facts = facts?;
        if facts.sse_algorithm.is_empty() {
            problems.push(format!("{bucket}: no default encryption"));
        }
        if !denies_plain_http(facts.policy.as_ref()) {
            problems.push(format!(
                "{bucket}: the policy does not deny requests without TLS (S3.5)"
            ));
        }
        let lc = lc.aws("s3:GetBucketLifecycleConfiguration", bucket);
        let rules = lc.ok().map(|l| l.rules().to_vec()).unwrap_or_default();
        if rules.is_empty() {
            problems.push(format!("{bucket}: no lifecycle rule (S3.13)"));
        } else if versioning.is_some() && !expires_noncurrent(&rules) {
            // Versioning once on (Enabled, or Suspended later) keeps non-current versions.
            problems.push(format!(
                "{bucket}: versioned, but no enabled lifecycle rule expires non-current \
                 versions (S3.13)"
            ));
        }
        anyhow::Ok(problems)
    };
    let found =
        futures::future::join_all(names.iter().map(|(b, r)| read(b.clone(), r.clone()))).await;
    for problems in found {
        for p in problems? {
            c.fail(p);
        }
        c.checked += 1;
    }
    Ok(())
}

/// Whether an enabled rule expires non-current versions after some days.
fn expires_noncurrent(rules: &[aws_sdk_s3::types::LifecycleRule]) -> bool {
    rules.iter().any(|r| {
        r.status() == &aws_sdk_s3::types::ExpirationStatus::Enabled
            && r.noncurrent_version_expiration()
                .and_then(|n| n.noncurrent_days())
                .is_some_and(|d| d > 0)
    })
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
    for (svc, arn) in st.out_map(crate::outputs::services::OUT_TASK_DEFINITION_ARNS) {
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

/// The Aurora cluster: encrypted, IAM database authentication, tags copied to snapshots; and
/// every instance of it: Performance Insights on, encrypted with the stack key (RDS.PI: PI
/// keeps samples of the queries run, statement text included, so a fintech auditor wants it
/// under the stack's customer managed key rather than the AWS managed `aws/rds` key).
async fn aurora(live: &Live, st: &Stack, c: &mut Control) -> Result<()> {
    let Some(id) = st.out(crate::outputs::database::OUT_CLUSTER_ID) else {
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
    // Every member of the cluster, those added by hand included (the database step's `down`
    // removes them too). RDS describes the PI key as its ARN, as the kms step records it.
    let key = st.out(crate::outputs::kms::OUT_KEY_ARN).unwrap_or_default();
    let out = live
        .aws
        .rds()
        .describe_db_instances()
        .filters(
            aws_sdk_rds::types::Filter::builder()
                .name("db-cluster-id")
                .values(id)
                .build(),
        )
        .send()
        .await
        .aws("rds:DescribeDBInstances", id)?;
    for i in out.db_instances() {
        if let Some(p) = performance_insights_problem(i, key) {
            c.fail(p);
        }
        c.checked += 1;
    }
    Ok(())
}

/// What is wrong with an instance's Performance Insights (RDS.PI), if anything: off (or not
/// described, which RDS never does for an instance with PI on) or encrypted with another key.
fn performance_insights_problem(i: &aws_sdk_rds::types::DbInstance, key: &str) -> Option<String> {
    let id = i.db_instance_identifier().unwrap_or("?");
    if i.performance_insights_enabled() != Some(true) {
        return Some(format!("{id}: Performance Insights is off (RDS.PI)"));
    }
    match i.performance_insights_kms_key_id() {
        Some(k) if k == key => None,
        other => Some(format!(
            "{id}: Performance Insights is encrypted with {}, not the stack key (RDS.PI)",
            other.unwrap_or("no key")
        )),
    }
}

/// Every resource the tagging API lists with the stack tag also has the other standard tags,
/// with the config's values (`Environment` defaults to the env suffix; snapshots aside, see
/// below): a change of `[tags]` that `up` has not applied yet shows as the found and the
/// wanted value.
async fn tags(
    live: &Live,
    st: &Stack,
    want: &crate::config::TagsConfig,
    c: &mut Control,
) -> Result<()> {
    let env = want
        .environment
        .as_ref()
        .map_or(st.suffix.as_str(), |e| e.0.as_str());
    let wanted = [
        ("Environment", env),
        ("Team", want.team.0.as_str()),
        ("CostCenter", want.cost_center.0.as_str()),
    ];
    let mut regions = vec![live.region().to_string()];
    for r in &st.resources {
        if !r.region.is_empty() && !regions.contains(&r.region) {
            regions.push(r.region.clone());
        }
    }
    for region in regions {
        let aws = live.in_region(&region);
        for (arn, tags) in crate::sweep::tagged_resources(&aws, &st.suffix).await? {
            let found = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
            let missing: Vec<&str> = wanted
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| found(k).is_none())
                .collect();
            if !missing.is_empty() {
                c.fail(format!("{arn} lacks the tag(s) {}", missing.join(", ")));
            }
            // Point-in-time copies (RDS snapshots, AWS Backup recovery points) keep the tags
            // of the day they were taken (CopyTagsToSnapshot copies the cluster's then) and
            // age out with the retention: their keys are checked, not their values.
            let copy = [":snapshot:", ":cluster-snapshot:", ":recovery-point:"]
                .iter()
                .any(|p| arn.contains(p));
            for (k, v) in wanted.into_iter().filter(|_| !copy) {
                if let Some(got) = found(k).filter(|got| *got != v) {
                    c.fail(format!("{arn} has {k}={got}, the config wants {k}={v}"));
                }
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
    fn performance_insights_must_be_on_with_the_stack_key() {
        let key = "arn:aws:kms:us-east-1:123456789012:key/k";
        let pi = |on: Option<bool>, k: Option<&str>| {
            aws_sdk_rds::types::DbInstance::builder()
                .db_instance_identifier("aurora-writer-dev")
                .set_performance_insights_enabled(on)
                .set_performance_insights_kms_key_id(k.map(str::to_string))
                .build()
        };
        assert_eq!(
            performance_insights_problem(&pi(Some(true), Some(key)), key),
            None
        );
        for (i, what) in [
            (pi(Some(false), Some(key)), "is off"),
            (pi(None, None), "is off"),
            (
                pi(Some(true), Some("arn:other")),
                "encrypted with arn:other",
            ),
            (pi(Some(true), None), "encrypted with no key"),
        ] {
            let p = performance_insights_problem(&i, key).expect("a problem");
            assert!(p.contains(what) && p.ends_with("(RDS.PI)"), "{p}");
        }
    }

    #[test]
    fn versioned_buckets_need_an_enabled_noncurrent_expiry() {
        use aws_sdk_s3::types::{ExpirationStatus, LifecycleRule, NoncurrentVersionExpiration};
        let rule = |status: ExpirationStatus, days: Option<i32>| {
            let mut b = LifecycleRule::builder().id("r").status(status);
            if let Some(d) = days {
                b = b.noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(d)
                        .build(),
                );
            }
            b.build().unwrap()
        };
        assert!(expires_noncurrent(&[rule(
            ExpirationStatus::Enabled,
            Some(30)
        )]));
        assert!(expires_noncurrent(&[
            rule(ExpirationStatus::Enabled, None),
            rule(ExpirationStatus::Enabled, Some(1)),
        ]));
        assert!(!expires_noncurrent(&[rule(
            ExpirationStatus::Enabled,
            None
        )]));
        assert!(!expires_noncurrent(&[rule(
            ExpirationStatus::Disabled,
            Some(30)
        )]));
        assert!(!expires_noncurrent(&[]));
    }

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
