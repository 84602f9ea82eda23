//! ALB step: the internet-facing application load balancer in front of the ECS services.
//!
//! An IPv4 ALB `alb-<s>` in the public subnets of every zone (security group `sg_alb_id`,
//! deletion protection off so `down` can remove it, access logs to its own log bucket
//! `fintech-alblogs-<account>-<s>`: SSE-S3, as ALB log delivery supports no KMS key, public
//! access blocked, versioned, a policy letting the region's ELB log delivery write under
//! `alb/` and denying requests without TLS, 90-day expiry, non-current versions expiring after
//! 30 days; every setting read back and repaired by `up`, see `steps/log_bucket.rs`). Blue and green target groups (`tg-blue-<s>`, `tg-green-<s>`, type ip, the first
//! service's port and health check path) receive the default traffic with the configured
//! weights; every service with a `path` gets its own target group `tg-<hash>-<s>` and a
//! listener rule. With an issued certificate: an HTTPS listener (TLS 1.3/1.2 policy) forwards,
//! and the HTTP listener redirects to HTTPS (301). Without one (none configured, or still
//! awaiting DNS validation: AWS refuses an unissued certificate on a listener) the HTTP
//! listener forwards; a later `up` switches over once the certificate is issued.
//!
//! The ALB takes 1.5-3 minutes to provision; the step waits until it is active.
//!
//! Teardown: listener rules, listeners, target groups (refused while a listener uses them),
//! the ALB (waited until DescribeLoadBalancers no longer knows it: its ENIs hold the public
//! subnets, so the network teardown must not start before), then the emptied log bucket.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, ForwardActionConfig, IpAddressType, Listener,
    LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum,
    LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, Rule, RuleCondition, RulePriorityPair, Tag, TargetGroup,
    TargetGroupStickinessConfig, TargetGroupTuple, TargetTypeEnum,
};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::ServiceConfig;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::log_bucket::{self, LogBucketSpec};
use crate::steps::network;
use crate::steps::storage::{self, BUCKET};

pub const LOAD_BALANCER: &str = "elasticloadbalancing:loadbalancer";
pub const TARGET_GROUP: &str = "elasticloadbalancing:targetgroup";
pub const LISTENER: &str = "elasticloadbalancing:listener";
pub const RULE: &str = "elasticloadbalancing:listener-rule";

/// Output keys other steps read.
pub const OUT_ARN: &str = "alb_arn";
pub const OUT_DNS_NAME: &str = "alb_dns_name";
pub const OUT_ZONE_ID: &str = "alb_zone_id";
pub const OUT_HTTPS: &str = "alb_https";
/// The listener holding the forwarding rules (HTTPS with a certificate, else HTTP).
pub const OUT_LISTENER_ARN: &str = "alb_listener_arn";
/// `{blue, green, <path service>: target group ARN}`.
pub const OUT_TARGET_GROUPS: &str = "alb_target_groups";
/// `{service: target group ARN}` for every service the ALB serves: the first service on the
/// blue group, path-routed services on their own.
pub const OUT_SERVICE_TARGET_GROUPS: &str = "alb_service_target_groups";
/// CloudWatch dimension `LoadBalancer`: `app/alb-<s>/<id>`.
pub const OUT_FULL_NAME: &str = "alb_full_name";
/// CloudWatch dimension `TargetGroup` per key of `alb_target_groups`: `targetgroup/<name>/<id>`.
pub const OUT_TARGET_GROUP_FULL_NAMES: &str = "alb_target_group_full_names";
pub const OUT_LOG_BUCKET: &str = "alb_log_bucket";
pub const OUT_HTTP_LISTENER_ARN: &str = "alb_http_listener_arn";
const OUTPUTS: [&str; 11] = [
    OUT_ARN,
    OUT_DNS_NAME,
    OUT_ZONE_ID,
    OUT_HTTPS,
    OUT_LISTENER_ARN,
    OUT_TARGET_GROUPS,
    OUT_SERVICE_TARGET_GROUPS,
    OUT_FULL_NAME,
    OUT_TARGET_GROUP_FULL_NAMES,
    OUT_LOG_BUCKET,
    OUT_HTTP_LISTENER_ARN,
];

/// TLS 1.3 and 1.2 only, forward-secret ciphers: AWS's recommended policy.
pub const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// Health check: every 30 s, 3 failures mark a target unhealthy, 3 successes healthy again.
pub const HEALTH_INTERVAL: i32 = 30;
pub const HEALTH_TIMEOUT: i32 = 5;
pub const HEALTHY_THRESHOLD: i32 = 3;
pub const UNHEALTHY_THRESHOLD: i32 = 3;
pub const MATCHER: &str = "200-399";
/// Prefix of the access log objects in the log bucket.
pub const LOG_PREFIX: &str = "alb";
pub const LOG_EXPIRY_DAYS: i32 = 90;
/// ID of the log bucket's lifecycle rule (logs expire after [`LOG_EXPIRY_DAYS`], non-current
/// versions after [`log_bucket::NONCURRENT_LOG_DAYS`]).
pub const LOG_RULE_ID: &str = "expire-access-logs";

/// AWS: 1.5-3 minutes to provision an ALB; deletion takes a few more.
const ALB_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct Alb;

/// The AWS accounts of Elastic Load Balancing that deliver access logs in the regions opened
/// before August 2022; newer regions use the `logdelivery.elasticloadbalancing.amazonaws.com`
/// service principal (granted everywhere as well).
pub fn elb_log_account(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "127311923021",
        "us-east-2" => "033677994240",
        "us-west-1" => "027434742980",
        "us-west-2" => "797873946194",
        "af-south-1" => "098369216593",
        "ap-east-1" => "754344448648",
        "ap-southeast-3" => "589379963580",
        "ap-south-1" => "718504428378",
        "ap-northeast-3" => "383597477331",
        "ap-northeast-2" => "600734575887",
        "ap-southeast-1" => "114774131450",
        "ap-southeast-2" => "783225319266",
        "ap-northeast-1" => "582318560864",
        "ca-central-1" => "985666609251",
        "eu-central-1" => "054676820928",
        "eu-west-1" => "156460612806",
        "eu-west-2" => "652711504416",
        "eu-south-1" => "635631232127",
        "eu-west-3" => "009996457667",
        "eu-north-1" => "897822967062",
        "me-south-1" => "076674570225",
        "sa-east-1" => "507241528517",
        "us-gov-west-1" => "048591011584",
        "us-gov-east-1" => "190560391635",
        _ => return None,
    })
}

/// The log bucket's policy: ELB log delivery may put objects under `alb/AWSLogs/<account>/`;
/// nothing may use the bucket without TLS.
pub fn log_bucket_policy(bucket: &str, account: &str, region: &str) -> Value {
    let objects = format!(
        "{}/{LOG_PREFIX}/AWSLogs/{account}/*",
        storage::bucket_arn(bucket)
    );
    let mut statements = Vec::new();
    if let Some(elb) = elb_log_account(region) {
        statements.push(json!({
            "Sid": "ElbAccountWritesAccessLogs",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{elb}:root")},
            "Action": "s3:PutObject",
            "Resource": objects
        }));
    }
    statements.push(json!({
        "Sid": "ElbLogDeliveryWritesAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": objects
    }));
    statements.push(storage::tls_only_statement(bucket));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Listener rule priorities for the path-routed services: more specific patterns (more literal
/// characters) are evaluated first; ties in path order. Deterministic for a given config.
pub fn rule_priorities(paths: &[(&str, &str)]) -> BTreeMap<String, i32> {
    let mut v: Vec<(&str, &str)> = paths.to_vec();
    let literal = |p: &str| p.chars().filter(|c| *c != '*' && *c != '?').count();
    v.sort_by(|a, b| literal(b.1).cmp(&literal(a.1)).then(a.1.cmp(b.1)));
    v.into_iter()
        .enumerate()
        .map(|(i, (svc, _))| (svc.to_string(), 10 * (i as i32 + 1)))
        .collect()
}

/// `app/alb-<s>/<id>` from a load balancer ARN: CloudWatch's `LoadBalancer` dimension.
pub fn lb_full_name(arn: &str) -> String {
    arn.split_once(":loadbalancer/")
        .map(|(_, n)| n.to_string())
        .unwrap_or_default()
}

/// `targetgroup/<name>/<id>` from a target group ARN: CloudWatch's `TargetGroup` dimension.
pub fn tg_full_name(arn: &str) -> String {
    arn.rsplit_once(':')
        .map(|(_, n)| n.to_string())
        .unwrap_or_default()
}

/// (target group ARN, weight) pairs an action forwards to, sorted.
fn forward_targets(a: &Action) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = match a.forward_config() {
        Some(f) if !f.target_groups().is_empty() => f
            .target_groups()
            .iter()
            .map(|t| {
                (
                    t.target_group_arn().unwrap_or_default().to_string(),
                    t.weight().unwrap_or(1),
                )
            })
            .collect(),
        _ => a
            .target_group_arn()
            .map(|t| vec![(t.to_string(), 1)])
            .unwrap_or_default(),
    };
    v.sort();
    v
}

/// What a listener's default action should be.
#[derive(Debug, Clone, PartialEq)]
enum ListenerDefault {
    Forward(Vec<(String, i32)>),
    RedirectHttps,
}

impl ListenerDefault {
    fn action(&self) -> Action {
        match self {
            ListenerDefault::Forward(targets) => Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(
                            targets
                                .iter()
                                .map(|(arn, w)| {
                                    TargetGroupTuple::builder()
                                        .target_group_arn(arn)
                                        .weight(*w)
                                        .build()
                                })
                                .collect(),
                        ))
                        .target_group_stickiness_config(
                            TargetGroupStickinessConfig::builder()
                                .enabled(false)
                                .build(),
                        )
                        .build(),
                )
                .build(),
            ListenerDefault::RedirectHttps => Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .host("#{host}")
                        .path("/#{path}")
                        .query("#{query}")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
        }
    }

    fn matches(&self, actions: &[Action]) -> bool {
        let [a] = actions else { return false };
        match self {
            ListenerDefault::Forward(targets) => {
                a.r#type() == Some(&ActionTypeEnum::Forward) && forward_targets(a) == *targets
            }
            ListenerDefault::RedirectHttps => {
                a.r#type() == Some(&ActionTypeEnum::Redirect)
                    && a.redirect_config().is_some_and(|r| {
                        r.protocol() == Some("HTTPS")
                            && r.port() == Some("443")
                            && r.status_code() == Some(&RedirectActionStatusCodeEnum::Http301)
                    })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            ListenerDefault::Forward(t) => format!(
                "forward to {}",
                t.iter()
                    .map(|(arn, w)| format!("{} ({w})", tg_name_of(arn)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ListenerDefault::RedirectHttps => "redirect to HTTPS (301)".into(),
        }
    }
}

fn tg_name_of(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

/// A target group the stack needs.
struct TgSpec {
    /// Key in `alb_target_groups`: `blue`, `green` or the service name.
    key: String,
    name: String,
    port: i32,
    health_check_path: String,
}

fn elb_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn path_pattern(rule: &Rule) -> Option<&str> {
    rule.conditions()
        .iter()
        .find(|c| c.field() == Some("path-pattern"))
        .and_then(|c| {
            c.path_pattern_config()
                .and_then(|p| p.values().first())
                .or_else(|| c.values().first())
        })
        .map(String::as_str)
}

impl Alb {
    async fn find_lb(&self, ctx: &StepCtx, name: &str) -> Result<Option<LoadBalancer>> {
        let out = ctx
            .aws()
            .elb()
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeLoadBalancers", name)
            .not_found_ok()?;
        Ok(out.and_then(|o| o.load_balancers().first().cloned()))
    }

    async fn find_tg(&self, ctx: &StepCtx, name: &str) -> Result<Option<TargetGroup>> {
        let out = ctx
            .aws()
            .elb()
            .describe_target_groups()
            .names(name)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeTargetGroups", name)
            .not_found_ok()?;
        Ok(out.and_then(|o| o.target_groups().first().cloned()))
    }

    /// The access-log bucket, created if missing and every setting read back and repaired
    /// (see [`log_bucket`]): versioned, SSE-S3, private, TLS only, logs and their non-current
    /// versions expiring. ACLs stay disabled (BucketOwnerEnforced): ELB log delivery writes
    /// through the bucket policy, not ACLs.
    async fn ensure_log_bucket(&self, ctx: &StepCtx, bucket: &str) -> Result<Found> {
        let account = ctx.account_id().await?;
        let policy = log_bucket_policy(bucket, &account, ctx.region());
        let spec = LogBucketSpec {
            name: bucket.to_string(),
            purpose: "alb-logs",
            statements: policy["Statement"].as_array().cloned().unwrap_or_default(),
            rules: vec![log_bucket::expiry_rule(LOG_RULE_ID, LOG_EXPIRY_DAYS)?],
            ownership: None,
        };
        log_bucket::ensure(ctx, &spec).await
    }

    async fn ensure_tg(&self, ctx: &StepCtx, vpc_id: &str, spec: &TgSpec) -> Result<Found> {
        let elb = ctx.aws().elb();
        let mut existing = self.find_tg(ctx, &spec.name).await?;
        if let (Some(tg), false) = (existing.clone(), is_pending(vpc_id)) {
            if tg.vpc_id() != Some(vpc_id) {
                let arn = tg.target_group_arn().unwrap_or_default().to_string();
                let old_vpc = tg.vpc_id().unwrap_or("?").to_string();
                // A target group of this stack left in its old VPC (a run that died after
                // creating it, then a `down` that removed the VPC it did not know about the
                // group): nothing can use it, and its name is this stack's. Anything else is
                // someone else's.
                let tags = elb
                    .describe_tags()
                    .resource_arns(&arn)
                    .send()
                    .await
                    .aws("elasticloadbalancing:DescribeTags", &arn)?;
                let ours = tags
                    .tag_descriptions()
                    .iter()
                    .flat_map(|d| d.tags())
                    .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()));
                let vpc_gone = ctx
                    .aws()
                    .ec2()
                    .describe_vpcs()
                    .vpc_ids(&old_vpc)
                    .send()
                    .await
                    .aws("ec2:DescribeVpcs", &old_vpc)
                    .not_found_ok()?
                    .is_none_or(|o| o.vpcs().is_empty());
                if !(ours && (vpc_gone || tg.load_balancer_arns().is_empty())) {
                    bail!(
                        "target group {} exists in VPC {old_vpc}, not in the stack's VPC \
                         {vpc_id}: it belongs to something else; delete or rename it",
                        spec.name
                    );
                }
                ctx.change(
                    TARGET_GROUP,
                    &spec.name,
                    &format!("delete: left by this stack in its old VPC {old_vpc}"),
                    || async {
                        elb.delete_target_group()
                            .target_group_arn(&arn)
                            .send()
                            .await
                            .aws("elasticloadbalancing:DeleteTargetGroup", &arn)?;
                        Ok(())
                    },
                )
                .await?;
                if !ctx.is_plan() {
                    ctx.forget(TARGET_GROUP, &arn)?;
                }
                existing = None;
            }
        }
        let found = ctx
            .ensure(
                TARGET_GROUP,
                &spec.name,
                || async {
                    Ok(existing.as_ref().and_then(|t| {
                        t.target_group_arn()
                            .map(|a| Found::new(a).arn(a).attr("key", &spec.key))
                    }))
                },
                || async {
                    let out = elb
                        .create_target_group()
                        .name(&spec.name)
                        .protocol(ProtocolEnum::Http)
                        .port(spec.port)
                        .vpc_id(vpc_id)
                        .target_type(TargetTypeEnum::Ip)
                        .health_check_enabled(true)
                        .health_check_protocol(ProtocolEnum::Http)
                        .health_check_path(&spec.health_check_path)
                        .health_check_interval_seconds(HEALTH_INTERVAL)
                        .health_check_timeout_seconds(HEALTH_TIMEOUT)
                        .healthy_threshold_count(HEALTHY_THRESHOLD)
                        .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                        .matcher(Matcher::builder().http_code(MATCHER).build())
                        .set_tags(Some(elb_tags(ctx, &spec.name)))
                        .send()
                        .await
                        .aws("elasticloadbalancing:CreateTargetGroup", &spec.name)?;
                    let arn = out
                        .target_groups()
                        .first()
                        .and_then(|t| t.target_group_arn())
                        .context("CreateTargetGroup returned no ARN")?;
                    Ok(Found::new(arn).arn(arn).attr("key", &spec.key))
                },
            )
            .await?;
        // Drift of the health check (ports cannot change: that needs a new group).
        if let Some(tg) = &existing {
            let ok = tg.health_check_path() == Some(spec.health_check_path.as_str())
                && tg.health_check_interval_seconds() == Some(HEALTH_INTERVAL)
                && tg.healthy_threshold_count() == Some(HEALTHY_THRESHOLD)
                && tg.unhealthy_threshold_count() == Some(UNHEALTHY_THRESHOLD)
                && tg.matcher().and_then(|m| m.http_code()) == Some(MATCHER);
            if !ok {
                ctx.change(
                    TARGET_GROUP,
                    &spec.name,
                    &format!(
                        "health check: path {}, every {HEALTH_INTERVAL}s, healthy after \
                         {HEALTHY_THRESHOLD}, unhealthy after {UNHEALTHY_THRESHOLD}, codes {MATCHER}",
                        spec.health_check_path
                    ),
                    || async {
                        elb.modify_target_group()
                            .target_group_arn(&found.id)
                            .health_check_path(&spec.health_check_path)
                            .health_check_interval_seconds(HEALTH_INTERVAL)
                            .health_check_timeout_seconds(HEALTH_TIMEOUT)
                            .healthy_threshold_count(HEALTHY_THRESHOLD)
                            .unhealthy_threshold_count(UNHEALTHY_THRESHOLD)
                            .matcher(Matcher::builder().http_code(MATCHER).build())
                            .send()
                            .await
                            .aws("elasticloadbalancing:ModifyTargetGroup", &spec.name)?;
                        Ok(())
                    },
                )
                .await?;
            }
            if tg.port() != Some(spec.port) {
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!(
                        "target group {} listens on port {}, the config says {}: a target \
                         group's port cannot change; tasks register with their own port, so \
                         traffic still flows",
                        spec.name,
                        tg.port().unwrap_or_default(),
                        spec.port
                    ),
                );
            }
        }
        Ok(found)
    }

    fn lb_attributes(bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("deletion_protection.enabled", "false".into()),
            ("access_logs.s3.enabled", "true".into()),
            ("access_logs.s3.bucket", bucket.to_string()),
            ("access_logs.s3.prefix", LOG_PREFIX.into()),
            // Requests with malformed headers are dropped rather than passed to the app.
            (
                "routing.http.drop_invalid_header_fields.enabled",
                "true".into(),
            ),
        ]
    }

    async fn set_lb_attributes(
        &self,
        ctx: &StepCtx,
        arn: &str,
        attrs: &[(&'static str, String)],
    ) -> Result<()> {
        ctx.aws()
            .elb()
            .modify_load_balancer_attributes()
            .load_balancer_arn(arn)
            .set_attributes(Some(
                attrs
                    .iter()
                    .map(|(k, v)| LoadBalancerAttribute::builder().key(*k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .aws("elasticloadbalancing:ModifyLoadBalancerAttributes", arn)?;
        Ok(())
    }

    async fn ensure_lb(
        &self,
        ctx: &StepCtx,
        vpc_id: &str,
        subnets: &[String],
        sg: &str,
        bucket: &str,
    ) -> Result<(Found, bool)> {
        let elb = ctx.aws().elb();
        let name = ctx.names().of("alb");
        let existing = self.find_lb(ctx, &name).await?;
        // Found active: no need to describe it again to wait for it.
        let active = existing.as_ref().is_some_and(|l| {
            l.state().and_then(|s| s.code()) == Some(&LoadBalancerStateEnum::Active)
        });
        if let (Some(lb), false) = (&existing, is_pending(vpc_id)) {
            if lb.vpc_id() != Some(vpc_id) {
                bail!(
                    "load balancer {name} exists in VPC {}, not in the stack's VPC {vpc_id}",
                    lb.vpc_id().unwrap_or("?")
                );
            }
        }
        let attrs = Self::lb_attributes(bucket);
        let lb = ctx
            .ensure(
                LOAD_BALANCER,
                &name,
                || async {
                    Ok(existing.as_ref().and_then(|l| {
                        l.load_balancer_arn().map(|a| {
                            Found::new(a)
                                .arn(a)
                                .attr("dns_name", l.dns_name().unwrap_or_default())
                                .attr("zone_id", l.canonical_hosted_zone_id().unwrap_or_default())
                        })
                    }))
                },
                || async {
                    let out = elb
                        .create_load_balancer()
                        .name(&name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::InternetFacing)
                        .ip_address_type(IpAddressType::Ipv4)
                        .set_subnets(Some(subnets.to_vec()))
                        .security_groups(sg)
                        .set_tags(Some(elb_tags(ctx, &name)))
                        .send()
                        .await
                        .aws("elasticloadbalancing:CreateLoadBalancer", &name)?;
                    let l = out
                        .load_balancers()
                        .first()
                        .context("CreateLoadBalancer returned no load balancer")?;
                    let arn = l
                        .load_balancer_arn()
                        .context("CreateLoadBalancer returned no ARN")?;
                    let found = Found::new(arn)
                        .arn(arn)
                        .attr("dns_name", l.dns_name().unwrap_or_default())
                        .attr("zone_id", l.canonical_hosted_zone_id().unwrap_or_default());
                    ctx.record(LOAD_BALANCER, &name, &found)?;
                    self.set_lb_attributes(ctx, arn, &attrs).await?;
                    Ok(found)
                },
            )
            .await?;
        let Some(l) = existing else {
            return Ok((lb, active));
        };
        // Drift: attributes, subnets, security groups.
        let current = elb
            .describe_load_balancer_attributes()
            .load_balancer_arn(&lb.id)
            .send()
            .await
            .aws(
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                &lb.id,
            )?;
        let differing: Vec<(&'static str, String)> = attrs
            .iter()
            .filter(|(k, v)| {
                !current
                    .attributes()
                    .iter()
                    .any(|a| a.key() == Some(*k) && a.value() == Some(v.as_str()))
            })
            .cloned()
            .collect();
        if !differing.is_empty() {
            let what = differing
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            ctx.change(LOAD_BALANCER, &name, &what, || {
                self.set_lb_attributes(ctx, &lb.id, &differing)
            })
            .await?;
        }
        if !subnets.iter().any(|s| is_pending(s)) {
            let mut have: Vec<&str> = l
                .availability_zones()
                .iter()
                .filter_map(|z| z.subnet_id())
                .collect();
            have.sort();
            let mut want: Vec<&str> = subnets.iter().map(String::as_str).collect();
            want.sort();
            if have != want {
                ctx.change(
                    LOAD_BALANCER,
                    &name,
                    &format!("subnets {}", want.join(", ")),
                    || async {
                        elb.set_subnets()
                            .load_balancer_arn(&lb.id)
                            .set_subnets(Some(subnets.to_vec()))
                            .send()
                            .await
                            .aws("elasticloadbalancing:SetSubnets", &name)?;
                        Ok(())
                    },
                )
                .await?;
            }
        }
        if !is_pending(sg) && l.security_groups() != [sg.to_string()] {
            ctx.change(
                LOAD_BALANCER,
                &name,
                &format!("security group {sg}"),
                || async {
                    elb.set_security_groups()
                        .load_balancer_arn(&lb.id)
                        .security_groups(sg)
                        .send()
                        .await
                        .aws("elasticloadbalancing:SetSecurityGroups", &name)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok((lb, active))
    }

    async fn wait_active(&self, ctx: &StepCtx, arn: &str) -> Result<()> {
        let elb = ctx.aws().elb();
        ctx.wait_for("the load balancer to be active", ALB_TIMEOUT, || async {
            let lb = elb
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeLoadBalancers", arn)?
                .load_balancers()
                .first()
                .cloned()
                .with_context(|| format!("load balancer {arn} disappeared"))?;
            match lb.state().and_then(|s| s.code()) {
                Some(LoadBalancerStateEnum::Active) => Ok(Some(())),
                Some(LoadBalancerStateEnum::Failed) => bail!(
                    "load balancer {arn} failed to provision: {}",
                    lb.state()
                        .and_then(|s| s.reason())
                        .unwrap_or("no reason given")
                ),
                _ => Ok(None),
            }
        })
        .await
    }

    /// Creates the listener on `port` or brings its default action (and certificate) in line.
    async fn ensure_listener(
        &self,
        ctx: &StepCtx,
        lb_arn: &str,
        existing: Option<&Listener>,
        port: i32,
        cert: Option<&str>,
        default: &ListenerDefault,
    ) -> Result<Found> {
        let elb = ctx.aws().elb();
        let name = format!("{}:{port}", ctx.names().of("alb"));
        let protocol = if cert.is_some() {
            ProtocolEnum::Https
        } else {
            ProtocolEnum::Http
        };
        let found = ctx
            .ensure(
                LISTENER,
                &name,
                || async {
                    Ok(existing.and_then(|l| {
                        l.listener_arn()
                            .map(|a| Found::new(a).arn(a).attr("port", port.to_string()))
                    }))
                },
                || async {
                    let out = elb
                        .create_listener()
                        .load_balancer_arn(lb_arn)
                        .protocol(protocol.clone())
                        .port(port)
                        .set_ssl_policy(cert.map(|_| SSL_POLICY.to_string()))
                        .set_certificates(
                            cert.map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                        )
                        .default_actions(default.action())
                        .set_tags(Some(elb_tags(ctx, &name)))
                        .send()
                        .await
                        .aws("elasticloadbalancing:CreateListener", &name)?;
                    let arn = out
                        .listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .context("CreateListener returned no ARN")?;
                    Ok(Found::new(arn).arn(arn).attr("port", port.to_string()))
                },
            )
            .await?;
        if let Some(l) = existing {
            let cert_ok = match cert {
                None => l.protocol() == Some(&ProtocolEnum::Http),
                Some(c) => {
                    l.protocol() == Some(&ProtocolEnum::Https)
                        && l.ssl_policy() == Some(SSL_POLICY)
                        && l.certificates()
                            .iter()
                            .any(|x| x.certificate_arn() == Some(c))
                }
            };
            if !cert_ok || !default.matches(l.default_actions()) {
                let what = match cert {
                    Some(c) => format!("HTTPS with {SSL_POLICY} and {c}; {}", default.describe()),
                    None => default.describe(),
                };
                ctx.change(LISTENER, &name, &what, || async {
                    elb.modify_listener()
                        .listener_arn(&found.id)
                        .protocol(protocol.clone())
                        .port(port)
                        .set_ssl_policy(cert.map(|_| SSL_POLICY.to_string()))
                        .set_certificates(
                            cert.map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                        )
                        .default_actions(default.action())
                        .send()
                        .await
                        .aws("elasticloadbalancing:ModifyListener", &name)?;
                    Ok(())
                })
                .await?;
            }
        }
        Ok(found)
    }

    async fn rules(&self, ctx: &StepCtx, listener: &str) -> Result<Vec<Rule>> {
        if is_pending(listener) {
            return Ok(Vec::new());
        }
        let out = ctx
            .aws()
            .elb()
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeRules", listener)
            .not_found_ok()?;
        Ok(out
            .map(|o| o.rules().to_vec())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.is_default() != Some(true))
            .collect())
    }

    async fn delete_rule(&self, ctx: &StepCtx, arn: &str, why: &str) -> Result<()> {
        let elb = ctx.aws().elb();
        ctx.change(RULE, arn, why, || async {
            elb.delete_rule()
                .rule_arn(arn)
                .send()
                .await
                .aws("elasticloadbalancing:DeleteRule", arn)
                .not_found_ok()?;
            ctx.forget(RULE, arn)?; // a no-op when it was not recorded
            Ok(())
        })
        .await
    }

    /// The path rules on the forwarding listener; rules anywhere else on the ALB (left on the
    /// HTTP listener when HTTPS took over, or for services no longer routed) are removed.
    async fn ensure_rules(
        &self,
        ctx: &StepCtx,
        forwarding: &str,
        other: Option<&str>,
        wanted: &[(&ServiceConfig, String)],
    ) -> Result<()> {
        let elb = ctx.aws().elb();
        if let Some(other) = other {
            for r in self.rules(ctx, other).await? {
                let arn = r.rule_arn().unwrap_or_default().to_string();
                self.delete_rule(
                    ctx,
                    &arn,
                    "remove: path rules belong on the forwarding listener",
                )
                .await?;
            }
        }
        let paths: Vec<(&str, &str)> = wanted
            .iter()
            .filter_map(|(s, _)| s.path.as_deref().map(|p| (s.name.0.as_str(), p)))
            .collect();
        let priorities = rule_priorities(&paths);
        let existing = self.rules(ctx, forwarding).await?;
        // Rules for paths no longer configured, or for a path now routed elsewhere.
        let mut kept: BTreeMap<String, Rule> = BTreeMap::new();
        for r in existing {
            let arn = r.rule_arn().unwrap_or_default().to_string();
            let svc = wanted.iter().find(|(s, _)| {
                s.path
                    .as_deref()
                    .is_some_and(|p| Some(p) == path_pattern(&r))
            });
            match svc {
                Some((s, _)) if !kept.contains_key(&s.name.0) => {
                    kept.insert(s.name.0.clone(), r);
                }
                _ => {
                    self.delete_rule(ctx, &arn, "remove: no service is routed by this path")
                        .await?
                }
            }
        }
        // Priorities first (one atomic call), so that new rules find their numbers free.
        let moves: Vec<RulePriorityPair> = kept
            .iter()
            .filter(|(svc, r)| r.priority() != Some(priorities[*svc].to_string().as_str()))
            .map(|(svc, r)| {
                RulePriorityPair::builder()
                    .rule_arn(r.rule_arn().unwrap_or_default())
                    .priority(priorities[svc])
                    .build()
            })
            .collect();
        if !moves.is_empty() {
            ctx.change(RULE, forwarding, "reorder path rule priorities", || async {
                elb.set_rule_priorities()
                    .set_rule_priorities(Some(moves.clone()))
                    .send()
                    .await
                    .aws("elasticloadbalancing:SetRulePriorities", forwarding)?;
                Ok(())
            })
            .await?;
        }
        for (svc, tg) in wanted {
            let Some(path) = svc.path.as_deref() else {
                continue;
            };
            let n = &svc.name.0;
            let name = format!("rule-{n}-{}", ctx.suffix());
            let forward = ListenerDefault::Forward(vec![(tg.clone(), 1)]);
            let current = kept.get(n);
            let found = ctx
                .ensure(
                    RULE,
                    &name,
                    || async {
                        Ok(current.and_then(|r| {
                            r.rule_arn().map(|a| {
                                Found::new(a)
                                    .arn(a)
                                    .attr("path", path)
                                    .attr("listener_arn", forwarding)
                            })
                        }))
                    },
                    || async {
                        let out = elb
                            .create_rule()
                            .listener_arn(forwarding)
                            .priority(priorities[n])
                            .conditions(
                                RuleCondition::builder()
                                    .field("path-pattern")
                                    .path_pattern_config(
                                        PathPatternConditionConfig::builder().values(path).build(),
                                    )
                                    .build(),
                            )
                            .actions(forward.action())
                            .set_tags(Some(elb_tags(ctx, &name)))
                            .send()
                            .await
                            .aws("elasticloadbalancing:CreateRule", &name)?;
                        let arn = out
                            .rules()
                            .first()
                            .and_then(|r| r.rule_arn())
                            .context("CreateRule returned no ARN")?;
                        Ok(Found::new(arn)
                            .arn(arn)
                            .attr("path", path)
                            .attr("listener_arn", forwarding))
                    },
                )
                .await?;
            if let Some(r) = current {
                if !is_pending(tg) && !forward.matches(r.actions()) {
                    ctx.change(RULE, &name, &forward.describe(), || async {
                        elb.modify_rule()
                            .rule_arn(&found.id)
                            .actions(forward.action())
                            .send()
                            .await
                            .aws("elasticloadbalancing:ModifyRule", &name)?;
                        Ok(())
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Step for Alb {
    fn name(&self) -> &'static str {
        "alb"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["network", "certificate"]
    }

    fn estimate_secs(&self) -> u64 {
        180
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = ctx.cfg();
        let vpc_id = ctx.input_str(network::OUT_VPC_ID)?;
        let subnets = ctx.input_list("public_subnet_ids")?;
        let sg = ctx.input_str("sg_alb_id")?;
        let cert = ctx.output(crate::steps::certificate::OUT_ARN);
        let cert_arn = cert.as_ref().and_then(|v| v.as_str()).map(str::to_string);
        let cert_issued = ctx
            .output(crate::steps::certificate::OUT_STATUS)
            .is_some_and(|s| s == "ISSUED");
        let https_cert = cert_arn.as_deref().filter(|_| cert_issued);
        if cert_arn.is_none() && cfg.certificate.source.is_some() && ctx.is_plan() {
            ctx.sh.reporter.message(
                ctx.step,
                "the certificate is requested by this run: the ALB starts on HTTP and switches \
                 to HTTPS on the `up` after ACM has issued it",
            );
        } else if https_cert.is_none() {
            ctx.sh.reporter.message(
                ctx.step,
                "the ALB serves plain HTTP: no issued certificate (see [certificate])",
            );
        }

        let services = &cfg.services.0;
        let first = services.first().context("no services configured")?;
        let mut specs = vec![
            TgSpec {
                key: "blue".into(),
                name: ctx.names().of("tg-blue"),
                port: i32::from(first.port),
                health_check_path: first.health_check_path.clone(),
            },
            TgSpec {
                key: "green".into(),
                name: ctx.names().of("tg-green"),
                port: i32::from(first.port),
                health_check_path: first.health_check_path.clone(),
            },
        ];
        for s in services.iter().filter(|s| s.path.is_some()) {
            let name = ctx.names().service_target_group(&s.name.0);
            if let Some(clash) = specs.iter().find(|t| t.name == name) {
                bail!(
                    "services `{}` and `{}` hash to the same target group name {name}; rename \
                     one of them",
                    s.name.0,
                    clash.key
                );
            }
            specs.push(TgSpec {
                key: s.name.0.clone(),
                name,
                port: i32::from(s.port),
                health_check_path: s.health_check_path.clone(),
            });
        }

        let account = ctx.account_id().await?;
        let bucket = format!("fintech-alblogs-{account}-{}", ctx.suffix());
        self.ensure_log_bucket(ctx, &bucket).await?;

        let mut tgs: BTreeMap<String, String> = BTreeMap::new();
        for spec in &specs {
            let found = self.ensure_tg(ctx, &vpc_id, spec).await?;
            tgs.insert(spec.key.clone(), found.id);
        }

        let (lb, active) = self.ensure_lb(ctx, &vpc_id, &subnets, &sg, &bucket).await?;
        if lb.is_pending() {
            return Ok(());
        }
        if !active {
            self.wait_active(ctx, &lb.id).await?;
        }

        let listeners = ctx
            .aws()
            .elb()
            .describe_listeners()
            .load_balancer_arn(&lb.id)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeListeners", &lb.id)?
            .listeners()
            .to_vec();
        let on = |port: i32| listeners.iter().find(|l| l.port() == Some(port));
        let weights = ListenerDefault::Forward({
            let mut v = vec![
                (tgs["blue"].clone(), cfg.alb.blue_weight),
                (tgs["green"].clone(), cfg.alb.green_weight),
            ];
            v.sort();
            v
        });
        let (forwarding, http, other) = match https_cert {
            Some(c) => {
                let https = self
                    .ensure_listener(ctx, &lb.id, on(443), 443, Some(c), &weights)
                    .await?;
                let http = self
                    .ensure_listener(
                        ctx,
                        &lb.id,
                        on(80),
                        80,
                        None,
                        &ListenerDefault::RedirectHttps,
                    )
                    .await?;
                (https.id, http.id.clone(), Some(http.id))
            }
            None => {
                let http = self
                    .ensure_listener(ctx, &lb.id, on(80), 80, None, &weights)
                    .await?;
                // An HTTPS listener whose certificate is no longer configured.
                if let Some(l) = on(443) {
                    let arn = l.listener_arn().unwrap_or_default().to_string();
                    let elb = ctx.aws().elb();
                    ctx.change(LISTENER, &arn, "remove: no issued certificate", || async {
                        elb.delete_listener()
                            .listener_arn(&arn)
                            .send()
                            .await
                            .aws("elasticloadbalancing:DeleteListener", &arn)
                            .not_found_ok()?;
                        ctx.forget(LISTENER, &arn)?; // a no-op when it was not recorded
                        for r in ctx.records(Some(RULE)) {
                            if r.attrs.get("listener_arn") == Some(&arn) {
                                ctx.forget(RULE, &r.id)?;
                            }
                        }
                        Ok(())
                    })
                    .await?;
                }
                (http.id.clone(), http.id, None)
            }
        };
        let wanted: Vec<(&ServiceConfig, String)> = services
            .iter()
            .filter(|s| s.path.is_some())
            .map(|s| (s, tgs[&s.name.0].clone()))
            .collect();
        self.ensure_rules(ctx, &forwarding, other.as_deref(), &wanted)
            .await?;

        let mut by_service = BTreeMap::new();
        by_service.insert(first.name.0.clone(), tgs["blue"].clone());
        for (s, tg) in &wanted {
            by_service.insert(s.name.0.clone(), tg.clone());
        }
        let full_names: BTreeMap<&String, String> =
            tgs.iter().map(|(k, arn)| (k, tg_full_name(arn))).collect();
        ctx.set_output(OUT_ARN, lb.id.clone())?;
        ctx.set_output(
            OUT_DNS_NAME,
            lb.attrs.get("dns_name").cloned().unwrap_or_default(),
        )?;
        ctx.set_output(
            OUT_ZONE_ID,
            lb.attrs.get("zone_id").cloned().unwrap_or_default(),
        )?;
        ctx.set_output(OUT_HTTPS, https_cert.is_some())?;
        ctx.set_output(OUT_LISTENER_ARN, forwarding)?;
        ctx.set_output(OUT_HTTP_LISTENER_ARN, http)?;
        ctx.set_output(OUT_TARGET_GROUPS, json!(tgs))?;
        ctx.set_output(OUT_SERVICE_TARGET_GROUPS, json!(by_service))?;
        ctx.set_output(OUT_FULL_NAME, lb_full_name(&lb.id))?;
        ctx.set_output(OUT_TARGET_GROUP_FULL_NAMES, json!(full_names))?;
        ctx.set_output(OUT_LOG_BUCKET, bucket)?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let elb = ctx.aws().elb();
        ctx.delete_recorded(RULE, |rec| async move {
            elb.delete_rule()
                .rule_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("elasticloadbalancing:DeleteRule", &rec.id)
        })
        .await?;
        ctx.delete_recorded(LISTENER, |rec| async move {
            elb.delete_listener()
                .listener_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("elasticloadbalancing:DeleteListener", &rec.id)
        })
        .await?;
        // Refused (ResourceInUse) while a listener or rule still forwards to the group.
        ctx.delete_recorded(TARGET_GROUP, |rec| async move {
            elb.delete_target_group()
                .target_group_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("elasticloadbalancing:DeleteTargetGroup", &rec.id)
        })
        .await?;
        for rec in ctx.records(Some(LOAD_BALANCER)) {
            ctx.check_cancelled()?;
            // Succeeds for an unknown ARN, as on AWS.
            elb.delete_load_balancer()
                .load_balancer_arn(&rec.id)
                .send()
                .await
                .aws("elasticloadbalancing:DeleteLoadBalancer", &rec.id)
                .not_found_ok()?;
            // Its ENIs hold the public subnets until it is gone: the network teardown after
            // this step must find them free.
            ctx.wait_for("the load balancer to be deleted", ALB_TIMEOUT, || async {
                let out = elb
                    .describe_load_balancers()
                    .load_balancer_arns(&rec.id)
                    .send()
                    .await
                    .aws("elasticloadbalancing:DescribeLoadBalancers", &rec.id)
                    .not_found_ok()?;
                Ok(out
                    .is_none_or(|o| o.load_balancers().is_empty())
                    .then_some(()))
            })
            .await?;
            ctx.deleted(LOAD_BALANCER, &rec.id)?;
        }
        // Every object version and delete marker (the bucket is versioned), then the bucket.
        crate::resources::delete_recorded(ctx, BUCKET).await?;
        for key in OUTPUTS {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let elb = ctx.aws().elb();
        let id = rec.id.as_str();
        Ok(match rec.kind.as_str() {
            LOAD_BALANCER => elb
                .describe_load_balancers()
                .load_balancer_arns(id)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeLoadBalancers", id)
                .not_found_ok()?
                .and_then(|o| o.load_balancers().first().cloned())
                .map(|l| {
                    l.state()
                        .and_then(|s| s.code())
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_else(|| "exists".into())
                }),
            TARGET_GROUP => elb
                .describe_target_groups()
                .target_group_arns(id)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeTargetGroups", id)
                .not_found_ok()?
                .filter(|o| !o.target_groups().is_empty())
                .map(|_| "exists".into()),
            LISTENER => elb
                .describe_listeners()
                .listener_arns(id)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeListeners", id)
                .not_found_ok()?
                .filter(|o| !o.listeners().is_empty())
                .map(|_| "exists".into()),
            RULE => elb
                .describe_rules()
                .rule_arns(id)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeRules", id)
                .not_found_ok()?
                .filter(|o| !o.rules().is_empty())
                .map(|_| "exists".into()),
            BUCKET => crate::resources::s3::bucket::exists(ctx, id)
                .await?
                .then(|| "exists".into()),
            other => bail!("alb step does not know resource type {other}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_specific_paths_come_first() {
        let p = rule_priorities(&[("api", "/api/*"), ("v2", "/api/v2/*"), ("img", "/i/*")]);
        assert_eq!(p["v2"], 10);
        assert_eq!(p["api"], 20);
        assert_eq!(p["img"], 30);
        // Independent of the order given.
        let q = rule_priorities(&[("img", "/i/*"), ("api", "/api/*"), ("v2", "/api/v2/*")]);
        assert_eq!(p, q);
    }

    #[test]
    fn cloudwatch_dimensions_come_from_the_arns() {
        assert_eq!(
            lb_full_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb-p/50dc6c495c0c9188"
            ),
            "app/alb-p/50dc6c495c0c9188"
        );
        assert_eq!(
            tg_full_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg-blue-p/73e2d6bc24d8a067"
            ),
            "targetgroup/tg-blue-p/73e2d6bc24d8a067"
        );
    }

    #[test]
    fn log_policy_lets_elb_write_under_the_prefix_only() {
        let p = log_bucket_policy("b", "123456789012", "us-east-1").to_string();
        assert!(p.contains("arn:aws:iam::127311923021:root"), "{p}");
        assert!(p.contains("logdelivery.elasticloadbalancing.amazonaws.com"));
        assert!(p.contains("arn:aws:s3:::b/alb/AWSLogs/123456789012/*"));
        let q = log_bucket_policy("b", "123456789012", "xx-new-1").to_string();
        assert!(!q.contains(":root"), "{q}");
    }

    #[test]
    fn forward_action_matches_itself() {
        let d = ListenerDefault::Forward(vec![("arn:a".into(), 80), ("arn:b".into(), 20)]);
        assert!(d.matches(&[d.action()]));
        let other = ListenerDefault::Forward(vec![("arn:a".into(), 100), ("arn:b".into(), 0)]);
        assert!(!other.matches(&[d.action()]));
        assert!(ListenerDefault::RedirectHttps.matches(&[ListenerDefault::RedirectHttps.action()]));
        assert!(!ListenerDefault::RedirectHttps.matches(&[d.action()]));
    }
}
