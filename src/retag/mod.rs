//! Re-tagging the whole stack after a change of the config's `[tags]`: the steps tag what
//! they create, but only a few of them (buckets, the distribution, the master secret, log
//! groups found untagged) compare the tags of what already exists. So `up` keeps, in the
//! state, a fingerprint of the tag set every recorded resource carries; when the config gives
//! another one, it tags every recorded taggable resource again, after the steps succeeded and
//! before `verify`, each with its own service's tag-add call in its own region (`plan` shows
//! it as one change). The fingerprint is only updated when every call succeeded, so an `up`
//! that failed part-way tags again next time.
//!
//! Only the standard tags (`Environment`, `Team`, `CostCenter`, the stack tag) are set: the
//! tag-add calls of every service overwrite the keys they are given and leave the others
//! alone, so `Name` and whatever an operator added stay. S3 is the exception: PutBucketTagging
//! replaces the whole set, so the bucket's tags are read and merged first. A resource that no
//! longer exists (not found) is skipped: the next `up` re-creates it with the current tags.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use sha2::Digest as _;

use crate::aws::{Aws, AwsError, AwsResultExt};
use crate::engine::{RootCause, StepResult, StepStatus};
use crate::state::{ResourceRecord, StateFile};
use crate::step::{Shared, StepCtx};
use crate::steps::{
    alarms, alb, cdn, certificate, cluster, codedeploy, database, dr_backup, dr_network,
    dr_storage, flow_logs, iam, kms, network, queue, registry, services, sessions, storage,
    validator, waf,
};

mod calls;
use calls::Tagger;

/// The name the pass reports under (progress, plan, the run's summary).
pub const STEP: &str = "retag";

/// The kind of the pass's one plan item.
const PLAN_KIND: &str = "tags";

/// EC2 CreateTags takes up to 1000 resource IDs per call.
const EC2_BATCH: usize = 1000;

/// The kinds the steps record that carry no tags of their own: AWS has no tagging for them
/// (route-table associations, routes, KMS aliases, WAF associations, policy attachments, SNS
/// subscriptions, CloudWatch dashboards, S3 replication configurations, backup selections,
/// scaling policies, CloudFront origin access controls and identities).
pub const SKIPPED: &[&str] = &[
    network::ASSOCIATION,
    network::ROUTE,
    kms::ALIAS,
    waf::ASSOCIATION,
    iam::ATTACHMENT,
    alarms::SUBSCRIPTION,
    alarms::DASHBOARD,
    dr_storage::REPLICATION,
    dr_backup::SELECTION,
    services::SCALING_POLICY,
    cdn::OAC,
    cdn::OAI,
];

/// The tagging API a resource is tagged through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Api {
    Ec2,
    Rds,
    Ecs,
    Elbv2,
    Lambda,
    Sqs,
    Sns,
    Kms,
    Logs,
    DynamoDb,
    SecretsManager,
    S3,
    CloudFront,
    Ecr,
    IamRole,
    IamPolicy,
    Wafv2,
    CloudMap,
    Backup,
    CloudWatch,
    Acm,
    AppAutoScaling,
    CodeDeploy,
    Events,
    /// The Route 53 private hosted zone behind a Cloud Map namespace (its record's attribute
    /// [`cluster::ATTR_HOSTED_ZONE`]).
    HostedZone,
}

/// How a recorded kind is tagged; `None` for the [`SKIPPED`] kinds (and any kind this build
/// does not know, e.g. from a newer one).
fn api_of(kind: &str) -> Option<Api> {
    Some(match kind {
        network::VPC
        | network::SUBNET
        | network::IGW
        | network::EIP
        | network::NAT
        | network::ROUTE_TABLE
        | network::SG
        // Security group rules take tags (their IDs, `sgr-...`, are EC2 resources), and the
        // network step tags them when it authorizes them.
        | network::SG_RULE
        | network::ENDPOINT
        | flow_logs::FLOW_LOG
        | dr_network::PEERING => Api::Ec2,
        database::SUBNET_GROUP
        | database::PARAMETER_GROUP
        | database::CLUSTER
        | database::INSTANCE => Api::Rds,
        database::SECRET => Api::SecretsManager,
        cluster::CLUSTER | services::SERVICE | services::TASK_DEFINITION => Api::Ecs,
        alb::LOAD_BALANCER | alb::TARGET_GROUP | alb::LISTENER | alb::RULE => Api::Elbv2,
        // Event source mappings take tags since November 2024 (Lambda TagResource with the
        // mapping's ARN), and the validator step tags its mapping when it creates it.
        validator::FUNCTION | validator::MAPPING => Api::Lambda,
        queue::QUEUE => Api::Sqs,
        alarms::TOPIC => Api::Sns,
        kms::KEY => Api::Kms,
        crate::resources::logs::log_group::KIND => Api::Logs,
        sessions::TABLE => Api::DynamoDb,
        storage::BUCKET => Api::S3,
        cdn::DISTRIBUTION => Api::CloudFront,
        registry::REPOSITORY => Api::Ecr,
        iam::ROLE => Api::IamRole,
        iam::POLICY => Api::IamPolicy,
        waf::WEB_ACL => Api::Wafv2,
        cluster::NAMESPACE | services::DISCOVERY_SERVICE => Api::CloudMap,
        dr_backup::VAULT | dr_backup::PLAN => Api::Backup,
        alarms::ALARM => Api::CloudWatch,
        certificate::CERTIFICATE => Api::Acm,
        services::SCALABLE_TARGET => Api::AppAutoScaling,
        codedeploy::APPLICATION | codedeploy::DEPLOYMENT_GROUP => Api::CodeDeploy,
        crate::resources::events::rule::KIND => Api::Events,
        _ => return None,
    })
}

/// One tag call's subject: the record and the API to tag it through (a record may give more
/// than one: a namespace and its hosted zone, a peering connection on both sides).
#[derive(Debug, Clone, PartialEq)]
struct Target {
    api: Api,
    rec: ResourceRecord,
}

/// The fingerprint of a tag set: order-independent, `Name` left out (each resource has its
/// own, and the pass never changes it).
pub fn fingerprint(tags: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = tags.iter().filter(|(k, _)| k != "Name").collect();
    pairs.sort();
    // JSON keeps keys and values apart whatever characters they hold.
    let text = serde_json::to_string(&pairs).expect("strings serialize");
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("v1:{hex}")
}

/// What the pass tags, in the state's order: every live record of a taggable kind (in its
/// region, `stack_region` for records without one), the master secret RDS made (published as
/// an output, not recorded: it goes with the cluster), a namespace's hosted zone, and a
/// peering connection once more on the accepter's side (EC2 keeps tags per side).
fn targets(state: &StateFile, stack_region: &str) -> Vec<Target> {
    let mut out = Vec::new();
    let mut records: Vec<ResourceRecord> = state
        .resources
        .iter()
        .filter(|r| !r.pending)
        .cloned()
        .collect();
    if let Some(arn) = state
        .outputs
        .get(database::OUT_SECRET_ARN)
        .and_then(|v| v.as_str())
        .filter(|a| !a.is_empty())
    {
        let recorded = records
            .iter()
            .any(|r| r.kind == database::SECRET && (r.id == arn || r.arn.as_deref() == Some(arn)));
        if !recorded {
            records.push(ResourceRecord {
                step: "database".into(),
                kind: database::SECRET.into(),
                id: arn.to_string(),
                arn: Some(arn.to_string()),
                name: arn.to_string(),
                region: String::new(),
                attrs: BTreeMap::new(),
                created_at: state.updated_at,
                pending: false,
                deps: None,
            });
        }
    }
    for mut rec in records {
        if rec.region.is_empty() {
            rec.region = stack_region.to_string();
        }
        let Some(api) = api_of(&rec.kind) else {
            continue;
        };
        if rec.kind == cluster::NAMESPACE
            && rec
                .attrs
                .get(cluster::ATTR_HOSTED_ZONE)
                .is_some_and(|z| !z.is_empty())
        {
            out.push(Target {
                api: Api::HostedZone,
                rec: rec.clone(),
            });
        }
        if rec.kind == dr_network::PEERING {
            if let Some(peer) = rec
                .attrs
                .get("peer_region")
                .filter(|p| !p.is_empty() && **p != rec.region)
            {
                let mut other = rec.clone();
                other.region = peer.clone();
                out.push(Target {
                    api: Api::Ec2,
                    rec: other,
                });
            }
        }
        out.push(Target { api, rec });
    }
    out
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`), for the ARNs the pass builds.
fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A recorded ARN, if it has a usable one.
fn recorded_arn(rec: &ResourceRecord) -> Option<&str> {
    rec.arn.as_deref().filter(|a| a.starts_with("arn:"))
}

/// The ARN of a resource that the tag call needs but its record may lack (older records,
/// resources recorded before the create call returned one): built from the region, the
/// account and the record's ID, as each service documents its ARNs.
fn arn_of(rec: &ResourceRecord, account: &str) -> String {
    if let Some(arn) = recorded_arn(rec) {
        // DescribeLogGroups gives a group's ARN with a trailing `:*`; TagResource takes it
        // without (CloudWatch Logs API reference, TagResource).
        return arn.strip_suffix(":*").unwrap_or(arn).to_string();
    }
    if rec.id.starts_with("arn:") {
        return rec.id.clone();
    }
    let (p, r, id) = (partition_of_region(&rec.region), &rec.region, &rec.id);
    match rec.kind.as_str() {
        crate::resources::logs::log_group::KIND => {
            format!("arn:{p}:logs:{r}:{account}:log-group:{id}")
        }
        alarms::ALARM => format!("arn:{p}:cloudwatch:{r}:{account}:alarm:{id}"),
        validator::MAPPING => format!("arn:{p}:lambda:{r}:{account}:event-source-mapping:{id}"),
        validator::FUNCTION => format!("arn:{p}:lambda:{r}:{account}:function:{id}"),
        sessions::TABLE => format!("arn:{p}:dynamodb:{r}:{account}:table/{id}"),
        registry::REPOSITORY => format!("arn:{p}:ecr:{r}:{account}:repository/{id}"),
        cluster::CLUSTER => format!("arn:{p}:ecs:{r}:{account}:cluster/{id}"),
        services::SERVICE => {
            let cluster = rec.attrs.get("cluster").map(String::as_str).unwrap_or("");
            format!("arn:{p}:ecs:{r}:{account}:service/{cluster}/{id}")
        }
        cluster::NAMESPACE => format!("arn:{p}:servicediscovery:{r}:{account}:namespace/{id}"),
        services::DISCOVERY_SERVICE => {
            format!("arn:{p}:servicediscovery:{r}:{account}:service/{id}")
        }
        dr_backup::VAULT => format!("arn:{p}:backup:{r}:{account}:backup-vault:{id}"),
        dr_backup::PLAN => format!("arn:{p}:backup:{r}:{account}:backup-plan:{id}"),
        cdn::DISTRIBUTION => format!("arn:{p}:cloudfront::{account}:distribution/{id}"),
        database::CLUSTER => format!("arn:{p}:rds:{r}:{account}:cluster:{id}"),
        database::INSTANCE => format!("arn:{p}:rds:{r}:{account}:db:{id}"),
        database::SUBNET_GROUP => format!("arn:{p}:rds:{r}:{account}:subgrp:{id}"),
        database::PARAMETER_GROUP => format!("arn:{p}:rds:{r}:{account}:cluster-pg:{id}"),
        iam::ROLE => format!("arn:{p}:iam::{account}:role/{id}"),
        codedeploy::APPLICATION => format!("arn:{p}:codedeploy:{r}:{account}:application:{id}"),
        // Recorded as `<application>|<group>`.
        codedeploy::DEPLOYMENT_GROUP => format!(
            "arn:{p}:codedeploy:{r}:{account}:deploymentgroup:{}",
            id.replacen('|', "/", 1)
        ),
        _ => id.clone(),
    }
}

/// A hosted zone ID as Route 53's tag calls take it: without the `/hostedzone/` prefix that
/// some answers (and moto's Cloud Map) put in front of it.
pub fn bare_zone_id(id: &str) -> &str {
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

/// S3's PutBucketTagging replaces the whole set: the bucket's tags with `base` laid over them
/// (`Name` and other keys kept, the standard keys set to the new values), or `None` when they
/// already carry `base`.
fn merged_bucket_tags(
    current: &[(String, String)],
    base: &[(String, String)],
) -> Option<Vec<(String, String)>> {
    if base.iter().all(|t| current.contains(t)) {
        return None;
    }
    let mut all: Vec<(String, String)> = current
        .iter()
        .filter(|(k, _)| !base.iter().any(|(b, _)| b == k))
        .cloned()
        .collect();
    all.extend(base.iter().cloned());
    Some(all)
}

/// Whether a tag call failed because its resource is gone: skipped, not a failure.
fn is_gone(e: &AwsError) -> bool {
    e.is_not_found()
        || matches!(
            e.code.as_deref(),
            // WAFv2's not-found; ECS answers an unknown service or task definition ARN in
            // TagResource with InvalidParameterException naming it as missing.
            Some("WAFNonexistentItemException")
        )
        || (e.code.as_deref() == Some("InvalidParameterException")
            && e.operation == "ecs:TagResource"
            && e.message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("not found")))
}

/// What one call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    tagged: usize,
    gone: usize,
}

fn tally(r: Result<(), AwsError>, n: usize) -> Result<Tally> {
    match r {
        Ok(()) => Ok(Tally { tagged: n, gone: 0 }),
        Err(e) if is_gone(&e) => Ok(Tally { tagged: 0, gone: n }),
        Err(e) => Err(e.into()),
    }
}

/// Tags every target; the counts of what was tagged and what was gone, or the first failure
/// (every call is made; each failure is reported).
async fn apply(ctx: &StepCtx, base: Vec<(String, String)>, targets: &[Target]) -> Result<Tally> {
    let tagger = Tagger { ctx, base };
    let mut ec2: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut others = Vec::new();
    for t in targets {
        if t.api == Api::Ec2 {
            ec2.entry(t.rec.region.clone())
                .or_default()
                .push(t.rec.id.clone());
        } else {
            others.push(t);
        }
    }
    let ec2_calls = ec2
        .iter()
        .map(|(region, ids)| tagger.ec2(region, ids))
        .collect::<Vec<_>>();
    // All at once: the HTTP layer bounds the requests in flight (`--parallelism`).
    let (ec2_results, other_results) = futures::future::join(
        futures::future::join_all(ec2_calls),
        futures::future::join_all(others.iter().map(|t| tagger.one(t))),
    )
    .await;
    let mut total = Tally::default();
    let mut errors = Vec::new();
    for (t, errs) in ec2_results {
        total.tagged += t.tagged;
        total.gone += t.gone;
        errors.extend(errs);
    }
    for r in other_results {
        match r {
            Ok(t) => {
                total.tagged += t.tagged;
                total.gone += t.gone;
            }
            Err(e) => errors.push(e),
        }
    }
    let failed = errors.len();
    let mut errors = errors.into_iter();
    let Some(first) = errors.next() else {
        return Ok(total);
    };
    // The first is the pass's error (reported as its root cause); the others are named here.
    for e in errors {
        ctx.sh.reporter.message(
            STEP,
            &format!("tag call failed too: {}", crate::report::render(&e)),
        );
    }
    Err(first.context(format!(
        "{failed} tag call(s) failed; the next `up` tags again"
    )))
}

/// The tag set as the plan item's detail: `Environment=prod, Team=payments, ...`.
fn describe(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stack with nothing recorded yet: everything the steps create gets the config's tags,
/// so its fingerprint is the config's from the start (an `up` that fails part-way keeps it:
/// what it created is tagged with it).
pub fn stamp_new_stack(sh: &Arc<Shared>) -> Result<()> {
    if !sh.state.snapshot().resources.is_empty() {
        return Ok(());
    }
    let ctx = StepCtx::new(STEP, sh.clone());
    sh.state
        .set_tags_fingerprint(&fingerprint(&ctx.tags(None)))
        .context("recording the tag fingerprint in the state")
}

/// The pass: after the steps of `up` (or `plan`) succeeded, tags every recorded taggable
/// resource when the state's fingerprint is not the config's, then stores the new one.
/// `None` when there is nothing to do; else the pass's result, reported like a step's.
pub async fn run(sh: &Arc<Shared>) -> Option<StepResult> {
    let ctx = StepCtx::new(STEP, sh.clone());
    let base = ctx.tags(None);
    let want = fingerprint(&base);
    let state = sh.state.snapshot();
    if state.tags_fingerprint.as_deref() == Some(want.as_str()) {
        return None;
    }
    let targets = targets(&state, sh.aws.region());
    if targets.is_empty() {
        if !ctx.is_plan() {
            // Nothing to tag: every (no) resource carries the set.
            if let Err(e) = sh.state.set_tags_fingerprint(&want) {
                tracing::warn!(error = %e, "could not record the tag fingerprint");
            }
        }
        return None;
    }
    let start = Instant::now();
    sh.reporter.step_started(STEP);
    let name = format!("re-tag {} resources", targets.len());
    let tally = std::sync::Mutex::new(Tally::default());
    let result = ctx
        .change(PLAN_KIND, &name, &describe(&base), || async {
            let t = apply(&ctx, base.clone(), &targets).await?;
            *tally.lock().unwrap_or_else(|e| e.into_inner()) = t;
            if !ctx.is_plan() {
                sh.state
                    .set_tags_fingerprint(&want)
                    .context("recording the tag fingerprint in the state")?;
            }
            Ok(())
        })
        .await;
    let elapsed = start.elapsed();
    let t = *tally.lock().unwrap_or_else(|e| e.into_inner());
    Some(match result {
        Ok(()) => {
            let detail = (!ctx.is_plan()).then(|| {
                format!(
                    "{} resources tagged{}",
                    t.tagged,
                    if t.gone > 0 {
                        format!(", {} no longer exist", t.gone)
                    } else {
                        String::new()
                    }
                )
            });
            sh.reporter
                .step_finished(STEP, "done", elapsed, detail.as_deref());
            StepResult {
                step: STEP.to_string(),
                status: StepStatus::Done,
                elapsed_secs: elapsed.as_secs_f64(),
                error: None,
                root_cause: None,
            }
        }
        Err(err) => {
            let text = crate::report::render(&err);
            let root_cause = crate::aws::find_aws_error(&err).map(|a| RootCause {
                operation: a.operation.to_string(),
                resource: a.resource.clone(),
                code: a.code.clone(),
                message: a
                    .message
                    .clone()
                    .or_else(|| Some(crate::report::chain(&*a.source))),
            });
            let status = if err
                .chain()
                .any(|e| e.downcast_ref::<crate::error::Interrupted>().is_some())
            {
                StepStatus::Interrupted
            } else {
                StepStatus::Failed
            };
            sh.reporter
                .step_finished(STEP, status.label(), elapsed, Some(&text));
            StepResult {
                step: STEP.to_string(),
                status,
                elapsed_secs: elapsed.as_secs_f64(),
                error: Some(text),
                root_cause,
            }
        }
    })
}

#[cfg(test)]
mod tests;
