//! ALB step: the internet-facing application load balancer in front of the ECS services.
//!
//! An IPv4 ALB `alb-<s>` in the public subnets of every zone (security group `sg_alb_id`,
//! deletion protection off so `down` can remove it, access logs to its own log bucket
//! `fintech-alblogs-<account>-<s>`: SSE-S3, as ALB log delivery supports no KMS key, public
//! access blocked, versioned, a policy letting the region's ELB log delivery write under
//! `alb/` and denying requests without TLS, 90-day expiry, non-current versions expiring after
//! 30 days; every setting read back and repaired by `up`, see
//! `src/resources/s3/log_bucket.rs`). Blue and green target groups (`tg-blue-<s>`,
//! `tg-green-<s>`, type ip, the first service's port and health check path) receive the
//! default traffic with the configured weights; every service with a `path` gets its own target group `tg-<hash>-<s>` and a
//! listener rule. With an issued certificate: an HTTPS listener (TLS 1.3/1.2 policy) forwards,
//! and the HTTP listener redirects to HTTPS (301). Without one (none configured, or still
//! awaiting DNS validation: AWS refuses an unissued certificate on a listener) the HTTP
//! listener forwards; a later `up` switches over once the certificate is issued.
//!
//! The ALB takes 1.5-3 minutes to provision; the step waits until it is active.
//!
//! `down` takes the order from the edges in `src/resources/deps.rs`. `BUILT_ON`: a listener
//! rule is built on its listener and every target group, a listener on its ALB, every target
//! group and every certificate, so rules go before listeners and target groups only after
//! both (ELB refuses to delete one a listener or rule still forwards to). The ALB is built on
//! every subnet, security group and bucket: its ENIs hold the public subnets, and its log
//! bucket goes after it. `DELETE_RULES` put it before the internet gateway (its public
//! addresses are mapped in the VPC) and before the ACM certificates (ACM's in-use list lags
//! behind a listener's deletion). The load balancer provider waits until
//! DescribeLoadBalancers no longer knows it; the `s3:bucket` provider empties the log bucket.
//!
//! Each resource type is a provider in [`crate::resources::elasticloadbalancing`] (and the
//! log bucket in [`crate::resources::s3::log_bucket`]); this step decides what to build from
//! the config, in which order, and what to publish.

/// The `[alb]` section this step owns (re-exported by `crate::config`).
pub mod config;

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::resources::elasticloadbalancing::listener_rule::{self, PathRule};
use crate::resources::elasticloadbalancing::load_balancer::{self, LoadBalancerSpec};
use crate::resources::elasticloadbalancing::target_group::{self, TargetGroupSpec};
use crate::resources::elasticloadbalancing::{listener, pair_forward, pair_weights, ListenerDefault};
use crate::resources::s3::bucket_policy::{bucket_arn, tls_only_statement};
use crate::resources::s3::log_bucket::{self, LogBucketSpec};
use crate::resources::s3;
use crate::config::ServiceConfig;
use crate::step::{Found, Step, StepCtx};
use crate::outputs::network;

pub use crate::outputs::alb::*;

pub use crate::resources::elasticloadbalancing::load_balancer::lb_full_name;
pub use crate::resources::elasticloadbalancing::target_group::tg_full_name;

pub const LOAD_BALANCER: &str = load_balancer::KIND;
pub const TARGET_GROUP: &str = target_group::KIND;
pub const LISTENER: &str = listener::KIND;
pub const RULE: &str = listener_rule::KIND;
pub const BUCKET: &str = s3::bucket::KIND;


/// Prefix of the access log objects in the log bucket.
pub const LOG_PREFIX: &str = "alb";
pub const LOG_EXPIRY_DAYS: i32 = 90;
/// ID of the log bucket's lifecycle rule (logs expire after [`LOG_EXPIRY_DAYS`], non-current
/// versions after [`crate::resources::s3::log_bucket::NONCURRENT_LOG_DAYS`]).
pub const LOG_RULE_ID: &str = "expire-access-logs";

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
    let objects = format!("{}/{LOG_PREFIX}/AWSLogs/{account}/*", bucket_arn(bucket));
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
    statements.push(tls_only_statement(bucket));
    json!({"Version": "2012-10-17", "Statement": statements})
}

impl Alb {
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
}

impl Alb {
    /// The listener's blue and green weights. The green share goes to the green twin of the
    /// default service (`deployment = "weighted"`), which the services step makes after this
    /// one: on a live stack whose blue service runs and whose twin does not yet, sending the
    /// share now would answer it with 503 (AWS-CONTRACTS B8), so all of it stays on blue
    /// until the next `up`. A new stack serves nothing before its services run anyway.
    ///
    /// A release `deploy` made (the state's `releases`) sets the weights while it holds:
    /// `up` leaves a deploy's split, promotion or rollback alone.
    ///
    /// A `codedeploy-*` default service: CodeDeploy moves the traffic between blue and green,
    /// so the listener's split (`current`, read back) is kept as it is; a new listener sends
    /// everything to blue, where the service starts.
    fn weights(
        &self,
        ctx: &StepCtx,
        default_service: &ServiceConfig,
        code_deploy: bool,
        current: Option<&aws_sdk_elasticloadbalancingv2::types::Listener>,
        tgs: &BTreeMap<String, String>,
    ) -> (i32, i32) {
        if code_deploy {
            return current
                .and_then(|l| pair_weights(l.default_actions(), &tgs["blue"], &tgs["green"]))
                .unwrap_or((100, 0));
        }
        let weighted = default_service.deployment == crate::config::Deployment::Weighted;
        let release = ctx.sh.state.release_holding(
            &default_service.name.0,
            &default_service.image,
            weighted,
        );
        let default_service = default_service.name.0.as_str();
        let alb = &ctx.cfg().alb;
        let suffix = ctx.suffix();
        let blue = crate::naming::ecs_service_name(default_service, suffix);
        let twin = crate::naming::ecs_service_name(&crate::config::green_twin(default_service), suffix);
        // Another step's records: read from the state, not through that step.
        let recorded = |name: &str| {
            ctx.sh.state.with_resources(|all| {
                all.iter()
                    .any(|r| {
                        r.kind == crate::resources::ecs::service::KIND && r.name == name && !r.pending
                    })
            })
        };
        // A release's weights only while the twin runs: a twin gone (a partial `down`)
        // must not be sent the share the release gave it.
        if let Some(w) = release.and_then(|r| r.weights).filter(|_| recorded(&twin)) {
            return w;
        }
        if alb.green_weight == 0 {
            return (alb.blue_weight, 0);
        }
        if recorded(&blue) && !recorded(&twin) {
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "the green share ({}) starts with the next `up`, once {twin} runs behind \
                     the green target group; until then all traffic goes to blue",
                    alb.green_weight
                ),
            );
            return (alb.blue_weight + alb.green_weight, 0);
        }
        (alb.blue_weight, alb.green_weight)
    }
}

#[async_trait]
impl Step for Alb {
    fn name(&self) -> &'static str {
        "alb"
    }

    fn deps(&self) -> Vec<&'static str> {
        // The public subnets and the ALB's group: not the NAT gateways.
        vec!["~network", "certificate"]
    }

    fn estimate_secs(&self) -> u64 {
        180
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = ctx.cfg();
        let vpc_id = ctx.input_str(network::OUT_VPC_ID)?;
        let subnets = ctx.input_list("public_subnet_ids")?;
        let sg = ctx.input_str("sg_alb_id")?;
        let cert = ctx.output(crate::outputs::certificate::OUT_ARN);
        let cert_arn = cert.as_ref().and_then(|v| v.as_str()).map(str::to_string);
        let cert_issued = ctx
            .output(crate::outputs::certificate::OUT_STATUS)
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
        // CodeDeploy owns the default listener's split while the default service deploys
        // through it, and also while a CODE_DEPLOY service of that name still exists after
        // the config asked for another strategy (ECS cannot switch it; the services step
        // refuses): rewriting the split then would send the traffic to a group CodeDeploy
        // emptied.
        let default_service = crate::naming::ecs_service_name(&first.name.0, ctx.suffix());
        let code_deploy = first.deployment.is_code_deploy()
            || ctx.sh.state.with_resources(|all| {
                all.iter().any(|r| {
                    r.kind == crate::resources::ecs::service::KIND
                        && r.name == default_service
                        && r.attrs.get(crate::resources::ecs::service::ATTR_CONTROLLER)
                            .is_some_and(|c| c == "CODE_DEPLOY")
                })
            });
        let mut specs = vec![
            TargetGroupSpec {
                key: "blue".into(),
                name: ctx.names().of("tg-blue"),
                port: i32::from(first.port),
                health_check_path: first.health_check_path.clone(),
            },
            TargetGroupSpec {
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
            specs.push(TargetGroupSpec {
                key: s.name.0.clone(),
                name,
                port: i32::from(s.port),
                health_check_path: s.health_check_path.clone(),
            });
        }

        let account = ctx.account_id().await?;
        let bucket = format!("fintech-alblogs-{account}-{}", ctx.suffix());
        let name = ctx.names().of("alb");
        let attributes = Self::lb_attributes(&bucket);
        let spec = LoadBalancerSpec {
            name: &name,
            vpc_id: &vpc_id,
            subnets: &subnets,
            sg: &sg,
            attributes: &attributes,
        };
        // The target groups need only the VPC; the load balancer needs its log bucket (its
        // access-log attribute is checked against the bucket's policy). Both at once.
        let target_groups = futures::future::try_join_all(specs.iter().map(|spec| {
            let vpc_id = &vpc_id;
            async move {
                let found = target_group::ensure(ctx, vpc_id, spec).await?;
                anyhow::Ok((spec.key.clone(), found.id))
            }
        }));
        let load_balancer = async {
            self.ensure_log_bucket(ctx, &bucket).await?;
            load_balancer::ensure(ctx, &spec).await
        };
        let (tgs, (lb, active)) = tokio::try_join!(target_groups, load_balancer)?;
        let tgs: BTreeMap<String, String> = tgs.into_iter().collect();
        if lb.is_pending() {
            return Ok(());
        }
        // Listeners and rules go on while the load balancer is still provisioning (the
        // console's wizard adds them right after CreateLoadBalancer too); only serving needs it
        // active, which is waited for at the end of this step.
        let listeners = listener::list(ctx, &lb.id).await?;
        let on = |port: i32| listeners.iter().find(|l| l.port() == Some(port));
        let port_now = if https_cert.is_some() { 443 } else { 80 };
        // The listener that forwards now: the HTTP one until HTTPS takes over.
        let forwarding_now = on(port_now).or_else(|| on(80));
        let (blue_weight, green_weight) =
            self.weights(ctx, first, code_deploy, forwarding_now, &tgs);
        let split = |(blue, green): (i32, i32)| {
            ListenerDefault::Forward({
                let mut v = vec![(tgs["blue"].clone(), blue), (tgs["green"].clone(), green)];
                v.sort();
                v
            })
        };
        // CodeDeploy's listeners are kept exactly as CodeDeploy left them.
        let kept = |l: Option<&aws_sdk_elasticloadbalancingv2::types::Listener>| {
            l.filter(|_| code_deploy)
                .and_then(|l| pair_forward(l.default_actions(), &tgs["blue"], &tgs["green"]))
        };
        let weights = kept(forwarding_now).unwrap_or_else(|| split((blue_weight, green_weight)));
        let (forwarding, http, other) = match https_cert {
            Some(c) => {
                let https = listener::ensure(ctx, &lb.id, on(443), 443, Some(c), &weights).await?;
                let http = listener::ensure(
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
                let http = listener::ensure(ctx, &lb.id, on(80), 80, None, &weights).await?;
                // An HTTPS listener whose certificate is no longer configured.
                if let Some(l) = on(443) {
                    let arn = l.listener_arn().unwrap_or_default().to_string();
                    listener::remove(ctx, &arn, "remove: no issued certificate").await?;
                }
                (http.id.clone(), http.id, None)
            }
        };
        let wanted: Vec<PathRule> = services
            .iter()
            .filter_map(|s| {
                s.path.as_ref().map(|p| PathRule {
                    service: s.name.0.clone(),
                    path: p.clone(),
                    target_group: tgs[&s.name.0].clone(),
                })
            })
            .collect();
        listener_rule::ensure_all(ctx, &forwarding, other.as_deref(), &wanted).await?;

        // CodeDeploy's test listener: it sends test traffic to the new tasks before the
        // production listener moves any (CodeDeploy switches it, the split it has is kept).
        let test_port = cfg.deploy.test_port;
        let test_listener = if code_deploy {
            let wanted = kept(on(test_port)).unwrap_or_else(|| split((blue_weight, green_weight)));
            let test = listener::ensure(ctx, &lb.id, on(test_port), test_port, None, &wanted)
                .await
                .context("the test listener")?;
            Some(test.id)
        } else {
            if let Some(arn) = on(test_port)
                .filter(|_| {
                    // Only the listener this step made: another on that port is not ours.
                    let name = format!("{}:{test_port}", ctx.names().of("alb"));
                    ctx.records(Some(LISTENER)).iter().any(|r| r.name == name)
                })
                .and_then(|l| l.listener_arn())
            {
                listener::remove(ctx, arn, "remove: the default service no longer deploys through CodeDeploy")
                    .await?;
            }
            None
        };

        // The group the default service's tasks serve from: blue, or for a `codedeploy-*`
        // service whichever CodeDeploy moved the traffic to.
        let live = if green_weight > blue_weight && code_deploy {
            "green"
        } else {
            "blue"
        };
        let mut by_service = BTreeMap::new();
        by_service.insert(first.name.0.clone(), tgs[live].clone());
        for w in &wanted {
            by_service.insert(w.service.clone(), w.target_group.clone());
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
        match test_listener {
            Some(arn) => ctx.set_output(OUT_TEST_LISTENER_ARN, arn)?,
            None => ctx.set_output(OUT_TEST_LISTENER_ARN, Value::Null)?,
        }
        ctx.set_output(OUT_TARGET_GROUPS, json!(tgs))?;
        ctx.set_output(OUT_SERVICE_TARGET_GROUPS, json!(by_service))?;
        ctx.set_output(OUT_FULL_NAME, lb_full_name(&lb.id))?;
        ctx.set_output(OUT_TARGET_GROUP_FULL_NAMES, json!(full_names))?;
        ctx.set_output(OUT_LOG_BUCKET, bucket)?;
        if !active && !ctx.is_plan() {
            if ctx.no_wait() {
                // `up --no-wait`: the services can register their tasks in the target groups
                // of a provisioning load balancer; the next `up` waits for it.
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!(
                        "load balancer {name} is still provisioning (--no-wait): \
                         `fintech-infra status` shows it, the next `up` waits for it"
                    ),
                );
            } else {
                load_balancer::wait_active(ctx, &lb.id).await?;
            }
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_policy_lets_elb_write_under_the_prefix_only() {
        let p = log_bucket_policy("b", "123456789012", "us-east-1").to_string();
        assert!(p.contains("arn:aws:iam::127311923021:root"), "{p}");
        assert!(p.contains("logdelivery.elasticloadbalancing.amazonaws.com"));
        assert!(p.contains("arn:aws:s3:::b/alb/AWSLogs/123456789012/*"));
        let q = log_bucket_policy("b", "123456789012", "xx-new-1").to_string();
        assert!(!q.contains(":root"), "{q}");
    }
}
