//! The path checks of `verify`, one function per path of the architecture. Each reads what
//! AWS would consult for that path (through [`Live`]) and decides it with [`eval`]: a path
//! passes only when every hop is allowed on both ends.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::eval::{self, Ctx};
use super::live::Live;
use super::{Finding, Stack};
use crate::aws::AwsResultExt;
use crate::config::{Config, Permission};
use crate::outputs::{
    alb, cdn, cluster, database, dr_backup, dr_network, dr_storage, kms, queue, services, sessions,
    storage, validator,
};
use crate::steps::{alarms, network};

const FIX_UP: &str = "run `fintech-infra up`: it restores what the stack owns";

/// One path being checked: its problems (each with a fix) and what allowed each hop.
struct Check {
    path: String,
    problems: Vec<String>,
    fixes: BTreeSet<String>,
    notes: Vec<String>,
}

impl Check {
    fn new(path: impl Into<String>) -> Check {
        Check {
            path: path.into(),
            problems: Vec::new(),
            fixes: BTreeSet::new(),
            notes: Vec::new(),
        }
    }

    /// Records a hop's verdict: `Ok(what allowed it)` or `Err(what is missing)`.
    fn need(&mut self, verdict: Result<String, String>, fix: &str) {
        match verdict {
            Ok(note) if !note.is_empty() && !self.notes.contains(&note) => self.notes.push(note),
            Ok(_) => {}
            Err(problem) => self.fail(problem, fix),
        }
    }

    fn fail(&mut self, problem: impl Into<String>, fix: &str) {
        self.problems.push(problem.into());
        self.fixes.insert(fix.to_string());
    }

    /// A read that failed: the path cannot be proven.
    fn unreadable(&mut self, err: anyhow::Error) {
        self.fail(format!("could not read: {err:#}"), FIX_UP);
    }

    /// Finishes a check whose reads may have failed: a failed read fails the path.
    fn finish_with(mut self, read: Result<()>) -> Finding {
        if let Err(e) = read {
            self.unreadable(e);
        }
        self.finish()
    }

    fn finish(self) -> Finding {
        let ok = self.problems.is_empty();
        Finding {
            section: "paths",
            path: self.path,
            ok,
            reason: if ok {
                self.notes.join("; ")
            } else {
                self.problems.join("; ")
            },
            fix: (!ok).then(|| self.fixes.into_iter().collect::<Vec<_>>().join("; ")),
        }
    }
}

/// Every path check, in the order the architecture is read: edge, compute, data, async,
/// monitoring, DR.
pub async fn all(live: &Live, st: &Stack, cfg: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let facts = match Facts::read(live, st, cfg).await {
        Ok(f) => f,
        Err(e) => {
            let mut c = Check::new("read the stack");
            c.unreadable(e);
            return vec![c.finish()];
        }
    };
    out.push(cdn_to_assets(live, st, &facts).await);
    out.push(cdn_to_alb(live, st, &facts).await);
    out.push(internet_to_alb(live, st, &facts).await);
    for svc in &facts.services {
        if !svc.target_groups.is_empty() {
            out.push(alb_to_service(live, &facts, svc).await);
        }
    }
    for svc in &facts.services {
        let Some(conf) = cfg.services.0.iter().find(|s| s.name.0 == svc.name) else {
            continue;
        };
        for callee in &conf.calls {
            out.push(service_to_service(live, &facts, svc, &callee.0).await);
        }
    }
    for svc in &facts.services {
        if svc.permissions.contains(&Permission::Database) {
            out.push(service_to_database(live, st, &facts, svc).await);
        }
    }
    for svc in &facts.services {
        if !svc.secrets.is_empty() {
            out.push(execution_role_reads_secrets(live, svc).await);
        }
    }
    if st.out(queue::OUT_QUEUE_URL).is_some() {
        // The customer-facing service is the config's first (the state's map of services
        // is ordered by name, not by the config).
        let first = cfg.services.0.first().map(|s| s.name.0.as_str());
        let producers: Vec<&Service> = facts
            .services
            .iter()
            .filter(|s| {
                Some(s.name.as_str()) == first || s.permissions.contains(&Permission::Queue)
            })
            .collect();
        for svc in producers {
            out.push(producer_to_queue(live, st, svc).await);
        }
        out.push(queue_to_validator(live, st).await);
        out.push(validator_dead_letter(live, st).await);
    }
    if st.out(sessions::OUT_TABLE_ARN).is_some() {
        for svc in &facts.services {
            if svc.permissions.contains(&Permission::Sessions) {
                out.push(
                    role_to_sessions(
                        live,
                        st,
                        &facts,
                        &svc.label(),
                        &svc.task_role,
                        &svc.groups,
                        &svc.subnets,
                    )
                    .await,
                );
            }
        }
        if let Some(f) = &facts.validator {
            out.push(
                role_to_sessions(
                    live,
                    st,
                    &facts,
                    "validator",
                    &f.role,
                    &f.groups,
                    &f.subnets,
                )
                .await,
            );
        }
    }
    for svc in &facts.services {
        out.push(image_pull(live, st, &facts, svc).await);
    }
    if st.out(alarms::OUT_TOPIC_ARN).is_some() {
        out.push(alarms_to_topic(live, st).await);
    }
    out.push(log_groups_keys(live, st).await);
    if st.out(dr_storage::OUT_REPLICATION_ROLE_ARN).is_some() {
        out.push(replication(live, st).await);
    }
    if st.out(dr_backup::OUT_PLAN_ID).is_some() {
        out.push(backup(live, st).await);
    }
    out
}

/// One ECS service as it runs.
struct Service {
    name: String,
    port: Option<i32>,
    permissions: Vec<Permission>,
    groups: Vec<String>,
    subnets: Vec<String>,
    task_role: Option<String>,
    execution_role: Option<String>,
    images: Vec<String>,
    /// Secrets the task definition injects (`valueFrom` ARNs).
    secrets: Vec<String>,
    /// (target group ARN, container port) of its load balancer attachments.
    target_groups: Vec<(String, i32)>,
    /// Whether it is registered in Cloud Map.
    discoverable: bool,
}

impl Service {
    fn label(&self) -> String {
        format!("service {}", self.name)
    }
}

struct Function {
    role: Option<String>,
    groups: Vec<String>,
    subnets: Vec<String>,
}

/// What several paths share, read once.
struct Facts {
    vpc_id: String,
    vpc_cidr: ipnet::IpNet,
    services: Vec<Service>,
    validator: Option<Function>,
    alb_groups: Vec<String>,
    db_groups: Vec<String>,
    route_tables: Vec<crate::reach::RouteTable>,
    prefix_lists: BTreeMap<String, String>,
}

impl Facts {
    async fn read(live: &Live, st: &Stack, cfg: &Config) -> Result<Facts> {
        let vpc_id = st
            .out(network::OUT_VPC_ID)
            .context("the state has no VPC: run `fintech-infra up` first")?
            .to_string();
        let mut services = Vec::new();
        let names = st.out_map(services::OUT_SERVICE_NAMES);
        if let (Some(cluster_arn), false) = (st.out(cluster::OUT_CLUSTER_ARN), names.is_empty()) {
            let ecs = live.aws.ecs();
            let out = ecs
                .describe_services()
                .cluster(cluster_arn)
                .set_services(Some(names.values().cloned().collect()))
                .send()
                .await
                .aws("ecs:DescribeServices", cluster_arn)?;
            for (svc_name, ecs_name) in &names {
                let Some(s) = out
                    .services()
                    .iter()
                    .find(|s| s.service_name() == Some(ecs_name.as_str()))
                else {
                    continue;
                };
                let vpc = s
                    .network_configuration()
                    .and_then(|n| n.awsvpc_configuration());
                let td_arn = s.task_definition().unwrap_or_default();
                let td = ecs
                    .describe_task_definition()
                    .task_definition(td_arn)
                    .send()
                    .await
                    .aws("ecs:DescribeTaskDefinition", td_arn)?;
                let td = td.task_definition();
                let containers = td.map(|t| t.container_definitions()).unwrap_or_default();
                services.push(Service {
                    name: svc_name.clone(),
                    port: containers
                        .iter()
                        .flat_map(|c| c.port_mappings())
                        .find_map(|p| p.container_port()),
                    permissions: permissions_of(cfg, svc_name),
                    groups: vpc
                        .map(|v| v.security_groups().to_vec())
                        .unwrap_or_default(),
                    subnets: vpc.map(|v| v.subnets().to_vec()).unwrap_or_default(),
                    task_role: td.and_then(|t| t.task_role_arn().map(str::to_string)),
                    execution_role: td.and_then(|t| t.execution_role_arn().map(str::to_string)),
                    images: containers
                        .iter()
                        .filter_map(|c| c.image().map(str::to_string))
                        .collect(),
                    secrets: containers
                        .iter()
                        .flat_map(|c| c.secrets())
                        .map(|s| s.value_from().to_string())
                        .collect(),
                    target_groups: s
                        .load_balancers()
                        .iter()
                        .filter_map(|l| {
                            Some((l.target_group_arn()?.to_string(), l.container_port()?))
                        })
                        .collect(),
                    discoverable: !s.service_registries().is_empty(),
                });
            }
        }
        let validator = match st.out(validator::OUT_FUNCTION_NAME) {
            Some(name) => {
                let f = live.function(name).await?;
                Some(Function {
                    role: f.role().map(str::to_string),
                    groups: f
                        .vpc_config()
                        .map(|v| v.security_group_ids().to_vec())
                        .unwrap_or_default(),
                    subnets: f
                        .vpc_config()
                        .map(|v| v.subnet_ids().to_vec())
                        .unwrap_or_default(),
                })
            }
            None => None,
        };
        let alb_groups = match st.out(alb::OUT_ARN) {
            Some(arn) => live.load_balancer(arn).await?.security_groups().to_vec(),
            None => Vec::new(),
        };
        let db_groups = match st.out(database::OUT_CLUSTER_ID) {
            Some(id) => live
                .aws
                .rds()
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .aws("rds:DescribeDBClusters", id)?
                .db_clusters()
                .first()
                .map(|c| {
                    c.vpc_security_groups()
                        .iter()
                        .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let route_tables = live.route_tables(&vpc_id).await?;
        let prefix_lists = live.prefix_lists().await?;
        let vpc_cidr = st
            .out(network::OUT_VPC_CIDR)
            .and_then(|c| c.parse().ok())
            .context("the state has no valid VPC CIDR")?;
        Ok(Facts {
            vpc_id,
            vpc_cidr,
            services,
            validator,
            alb_groups,
            db_groups,
            route_tables,
            prefix_lists,
        })
    }

    fn prefix_list(&self, name: &str) -> Option<&str> {
        self.prefix_lists.get(name).map(String::as_str)
    }
}

/// A service's permissions in the config: they decide which paths it needs.
fn permissions_of(cfg: &Config, name: &str) -> Vec<Permission> {
    cfg.services
        .0
        .iter()
        .find(|s| s.name.0 == name)
        .map(|s| s.permissions.clone())
        .unwrap_or_default()
}

/// The condition context of a call KMS sees through another service (`via`, e.g.
/// `sqs.us-east-1.amazonaws.com`) on behalf of a principal of the stack's account.
fn through(live: &Live, via: &str) -> Ctx {
    ctx(&[
        ("kms:ViaService", via),
        ("kms:CallerAccount", &live.account),
    ])
}

fn ctx(pairs: &[(&str, &str)]) -> Ctx {
    let mut c = Ctx::new();
    for (k, v) in pairs {
        c.insert(k.to_string(), vec![v.to_string()]);
    }
    c
}

/// viewer → CloudFront → assets bucket: the bucket policy grants the distribution's OAC (or
/// OAI), and an SSE-KMS bucket's key lets CloudFront decrypt for that distribution.
async fn cdn_to_assets(live: &Live, st: &Stack, _f: &Facts) -> Finding {
    let mut c = Check::new("viewer → CloudFront → assets bucket");
    if let Err(e) = cdn_to_assets_inner(live, st, &mut c).await {
        c.unreadable(e);
    }
    c.finish()
}

async fn cdn_to_assets_inner(live: &Live, st: &Stack, c: &mut Check) -> Result<()> {
    let (Some(dist_id), Some(bucket)) = (
        st.out(cdn::OUT_DISTRIBUTION_ID),
        st.out(storage::OUT_ASSETS_BUCKET),
    ) else {
        c.fail("the distribution or the assets bucket is not built", FIX_UP);
        return Ok(());
    };
    let d = live.distribution(dist_id).await?;
    let dist_arn = d.arn().to_string();
    let conf = d.distribution_config().context("no distribution config")?;
    let origin = conf
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .find(|o| o.domain_name().starts_with(&format!("{bucket}.")))
        .cloned();
    let Some(origin) = origin else {
        c.fail(
            format!("no origin of {dist_id} is the bucket {bucket}"),
            FIX_UP,
        );
        return Ok(());
    };
    let facts = live.bucket(bucket, live.region()).await?;
    let object = format!("arn:aws:s3:::{bucket}/static/index.html");
    let oai = origin
        .s3_origin_config()
        .map(|s| s.origin_access_identity())
        .filter(|s| !s.is_empty())
        .and_then(|s| s.rsplit('/').next())
        .map(str::to_string);
    let oac = origin
        .origin_access_control_id()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let account = live.account.clone();
    match (&oac, &oai) {
        (Some(oac), _) => {
            c.notes.push(format!(
                "the bucket policy grants OAC {oac} of this distribution"
            ));
            c.need(
                eval::service_resource(
                    "cloudfront.amazonaws.com",
                    facts.policy.as_ref(),
                    "s3:GetObject",
                    &object,
                    &ctx(&[
                        ("aws:SourceArn", &dist_arn),
                        ("aws:SourceAccount", &account),
                        ("aws:SecureTransport", "true"),
                    ]),
                )
                .map_err(|e| format!("bucket policy of {bucket}: {e}")),
                FIX_UP,
            );
        }
        (None, Some(oai)) => {
            c.notes.push(format!("OAI {oai}"));
            let principal =
                format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai}");
            c.need(
                eval::principal_resource(
                    &principal,
                    facts.policy.as_ref(),
                    "s3:GetObject",
                    &object,
                    &ctx(&[("aws:SecureTransport", "true")]),
                )
                .map_err(|e| format!("bucket policy of {bucket}: {e}")),
                FIX_UP,
            );
        }
        (None, None) => c.fail(
            format!(
                "origin {} has neither an OAC nor an OAI: the private bucket refuses CloudFront",
                origin.id()
            ),
            FIX_UP,
        ),
    }
    if facts.sse_algorithm.starts_with("aws:kms") {
        let key = facts.kms_key.clone().unwrap_or_default();
        if oac.is_none() {
            c.fail(
                format!("{bucket} is SSE-KMS and an origin access identity can never decrypt KMS objects"),
                "use origin access control (`cdn.origin_access = \"oac\"`)",
            );
        } else {
            let (key_arn, policy) = live.key(&key, live.region()).await?;
            c.need(
                eval::kms_service(
                    &policy,
                    "cloudfront.amazonaws.com",
                    "kms:Decrypt",
                    &key_arn,
                    &ctx(&[
                        ("aws:SourceArn", &dist_arn),
                        ("aws:SourceAccount", &account),
                    ]),
                )
                .map(|_| "the key policy lets CloudFront decrypt for this distribution".to_string())
                .map_err(|e| {
                    format!("key policy of {key_arn} does not let CloudFront decrypt: {e}")
                }),
                FIX_UP,
            );
        }
    }
    Ok(())
}

/// CloudFront → ALB for `/api/*`: the origin's protocol, the listener on that port, the
/// certificate covering the origin name, and the ALB's security group admitting CloudFront.
async fn cdn_to_alb(live: &Live, st: &Stack, f: &Facts) -> Finding {
    let mut c = Check::new("CloudFront → ALB (/api/*)");
    if let Err(e) = cdn_to_alb_inner(live, st, f, &mut c).await {
        c.unreadable(e);
    }
    c.finish()
}

async fn cdn_to_alb_inner(live: &Live, st: &Stack, f: &Facts, c: &mut Check) -> Result<()> {
    let (Some(dist_id), Some(lb_arn)) = (st.out(cdn::OUT_DISTRIBUTION_ID), st.out(alb::OUT_ARN))
    else {
        c.fail("the distribution or the load balancer is not built", FIX_UP);
        return Ok(());
    };
    let d = live.distribution(dist_id).await?;
    let conf = d.distribution_config().context("no distribution config")?;
    let behavior = conf
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
        .iter()
        .find(|b| b.path_pattern() == "/api/*")
        .cloned();
    let Some(behavior) = behavior else {
        c.fail(format!("{dist_id} has no /api/* behaviour"), FIX_UP);
        return Ok(());
    };
    let origin = conf
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .find(|o| o.id() == behavior.target_origin_id())
        .cloned()
        .context("the /api/* behaviour's origin is missing")?;
    let Some(custom) = origin.custom_origin_config() else {
        c.fail(
            "the /api/* origin is not a custom (load balancer) origin",
            FIX_UP,
        );
        return Ok(());
    };
    use aws_sdk_cloudfront::types::OriginProtocolPolicy as P;
    let https = match custom.origin_protocol_policy() {
        P::HttpsOnly => true,
        P::HttpOnly => false,
        other => {
            c.fail(
                format!(
                    "origin protocol policy {} depends on the viewer: pin https-only or http-only",
                    other.as_str()
                ),
                FIX_UP,
            );
            return Ok(());
        }
    };
    let port = if https { 443 } else { 80 };
    let domain = origin.domain_name().to_string();
    let elb = live.aws.elb();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeListeners", lb_arn)?;
    let listener = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port));
    let Some(listener) = listener else {
        c.fail(
            format!("the load balancer has no listener on {port}"),
            FIX_UP,
        );
        return Ok(());
    };
    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;
    if listener
        .default_actions()
        .iter()
        .any(|a| a.r#type() == Some(&ActionTypeEnum::Redirect))
    {
        c.fail(
            format!("CloudFront connects on {port}, where the listener only redirects (to HTTPS): every API request loops"),
            FIX_UP,
        );
    }
    if https {
        if domain.ends_with(".elb.amazonaws.com") {
            c.fail(
                format!("CloudFront connects over HTTPS to {domain}, which the load balancer's certificate cannot cover (HTTP 502)"),
                "configure `alb.origin_domain` (a name the certificate covers) and run `fintech-infra up`",
            );
        }
        let certs: Vec<String> = listener
            .certificates()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_string))
            .collect();
        let mut covered = false;
        for arn in &certs {
            let d = live
                .aws
                .acm()
                .describe_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .aws("acm:DescribeCertificate", arn)?;
            if let Some(cert) = d.certificate() {
                let mut names: Vec<String> = cert.subject_alternative_names().to_vec();
                names.extend(cert.domain_name().map(str::to_string));
                if names
                    .iter()
                    .any(|n| crate::config::certificate_name_covers(n, &domain))
                {
                    covered = true;
                }
            }
        }
        if !covered {
            c.fail(
                format!("no certificate of the HTTPS listener covers the origin name {domain} (CloudFront answers 502)"),
                "request the origin name in the certificate (`certificate.subject_alternative_names`) or set `alb.origin_domain` to a covered name",
            );
        } else {
            c.notes.push(format!(
                "HTTPS to {domain}, covered by the listener's certificate"
            ));
        }
    } else {
        c.notes
            .push(format!("HTTP to {domain} (no certificate configured)"));
    }
    let groups = live.groups(&f.alb_groups).await?;
    match f.prefix_list("com.amazonaws.global.cloudfront.origin-facing") {
        Some(pl) => c.need(
            eval::admits_prefix_list(&groups, pl, port).map_err(|e| {
                format!(
                    "the load balancer's security group does not admit CloudFront on {port}: {e}"
                )
            }),
            FIX_UP,
        ),
        None => c.need(eval::admits_anywhere(&groups, port), FIX_UP),
    }
    Ok(())
}

/// internet → ALB listeners: internet-facing in public subnets with an internet route, and the
/// security group admitting only CloudFront (the distribution is the stack's front door).
async fn internet_to_alb(live: &Live, st: &Stack, f: &Facts) -> Finding {
    let mut c = Check::new("internet → CloudFront → ALB listeners");
    let r: Result<()> = async {
        let Some(lb_arn) = st.out(alb::OUT_ARN) else {
            c.fail("the load balancer is not built", FIX_UP);
            return Ok(());
        };
        let lb = live.load_balancer(lb_arn).await?;
        use aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum;
        if lb.scheme() != Some(&LoadBalancerSchemeEnum::InternetFacing) {
            c.fail("the load balancer is not internet-facing", FIX_UP);
        }
        let subnets: Vec<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect();
        for s in &subnets {
            c.need(
                eval::internet_route(&f.route_tables, s, true)
                    .map_err(|e| format!("ALB subnet {s}: {e}")),
                FIX_UP,
            );
        }
        let groups = live.groups(&f.alb_groups).await?;
        c.need(eval::no_open_ingress(&groups), FIX_UP);
        if c.problems.is_empty() {
            c.notes.push(format!(
                "internet-facing in {} public subnets; ingress only from CloudFront",
                subnets.len()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// ALB → a service's tasks: the target group is forwarded to, targets by IP on the service's
/// port, and the security groups on both ends allow it.
async fn alb_to_service(live: &Live, f: &Facts, svc: &Service) -> Finding {
    let mut c = Check::new(format!("ALB → {} tasks", svc.label()));
    let r: Result<()> = async {
        let alb = live.groups(&f.alb_groups).await?;
        let own = live.groups(&svc.groups).await?;
        for (tg, port) in &svc.target_groups {
            let tgs = live
                .aws
                .elb()
                .describe_target_groups()
                .target_group_arns(tg)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeTargetGroups", tg)?;
            let Some(t) = tgs.target_groups().first() else {
                c.fail(format!("target group {tg} is gone"), FIX_UP);
                continue;
            };
            use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
            if t.target_type() != Some(&TargetTypeEnum::Ip) {
                c.fail(
                    format!(
                        "{} does not target IPs (Fargate tasks need `ip`)",
                        t.target_group_name().unwrap_or(tg)
                    ),
                    FIX_UP,
                );
            }
            if t.load_balancer_arns().is_empty() {
                c.fail(
                    format!(
                        "no listener forwards to {}",
                        t.target_group_name().unwrap_or(tg)
                    ),
                    FIX_UP,
                );
            }
            c.need(eval::connects(&alb, &own, *port, f.vpc_cidr), FIX_UP);
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{} target group(s), port {}",
                svc.target_groups.len(),
                svc.port.unwrap_or_default()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A declared call from one service to another: both security groups on the callee's port,
/// and the callee registered in Cloud Map (that is how the caller finds it).
async fn service_to_service(live: &Live, f: &Facts, from: &Service, to: &str) -> Finding {
    let mut c = Check::new(format!("{} → service {to}", from.label()));
    let Some(callee) = f.services.iter().find(|s| s.name == to) else {
        c.fail(format!("service {to} is not running"), FIX_UP);
        return c.finish();
    };
    let Some(port) = callee.port else {
        c.fail(format!("service {to} exposes no port"), FIX_UP);
        return c.finish();
    };
    let r: Result<()> = async {
        let src = live.groups(&from.groups).await?;
        let dst = live.groups(&callee.groups).await?;
        c.need(eval::connects(&src, &dst, port, f.vpc_cidr), FIX_UP);
        if !callee.discoverable {
            c.fail(
                format!("service {to} is not registered in Cloud Map"),
                FIX_UP,
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A service with the `database` permission → Aurora on 5432: security groups, and the task
/// role's `rds-db:connect` and secret read.
async fn service_to_database(live: &Live, st: &Stack, f: &Facts, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} → Aurora :{}", svc.label(), network::DB_PORT));
    let r: Result<()> = async {
        let src = live.groups(&svc.groups).await?;
        let dst = live.groups(&f.db_groups).await?;
        c.need(
            eval::connects(&src, &dst, network::DB_PORT, f.vpc_cidr),
            FIX_UP,
        );
        let Some(role) = &svc.task_role else {
            c.fail("the task definition has no task role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        if let Some(secret) = st.out(database::OUT_SECRET_ARN) {
            c.need(
                eval::identity(&role, "secretsmanager:GetSecretValue", secret, &Ctx::new()),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes.push(
                "security groups admit it both ways; the task role may read the master secret"
                    .into(),
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// The execution role reads every secret the task definition injects, and decrypts it.
async fn execution_role_reads_secrets(live: &Live, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} execution role → its secrets", svc.label()));
    let r: Result<()> = async {
        let Some(role) = &svc.execution_role else {
            c.fail("secrets need an execution role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        for value_from in &svc.secrets {
            // `arn:aws:secretsmanager:region:acct:secret:name-AbCdEf[:json-key:stage:version]`
            let arn: String = value_from
                .splitn(8, ':')
                .take(7)
                .collect::<Vec<_>>()
                .join(":");
            c.need(
                eval::identity(&role, "secretsmanager:GetSecretValue", &arn, &Ctx::new()),
                FIX_UP,
            );
            let secret = live
                .aws
                .secrets()
                .describe_secret()
                .secret_id(&arn)
                .send()
                .await
                .aws("secretsmanager:DescribeSecret", &arn)?;
            if let Some(key) = secret.kms_key_id() {
                let (key_arn, policy) = live.key(key, live.region()).await?;
                let via = format!("secretsmanager.{}.amazonaws.com", live.region());
                c.need(
                    eval::kms_role(
                        &policy,
                        &role,
                        "kms:Decrypt",
                        &key_arn,
                        &through(live, &via),
                    ),
                    FIX_UP,
                );
            }
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{} secret(s), each readable and decryptable through Secrets Manager",
                svc.secrets.len()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A producer service → the transaction queue: the task role and the queue policy allow
/// SendMessage, and the queue's key lets the role generate data keys through SQS.
async fn producer_to_queue(live: &Live, st: &Stack, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} → transaction queue", svc.label()));
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let q = live.queue(url).await?;
        let Some(role) = &svc.task_role else {
            c.fail("the task definition has no task role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        c.need(
            eval::role_resource(&role, q.policy.as_ref(), "sqs:SendMessage", &q.arn, &sec),
            "give the service the `queue` permission (`services[].permissions`) and run `fintech-infra up`",
        );
        if let Some(key) = &q.kms_key {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("sqs.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:GenerateDataKey", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes.push("the task role and the queue policy allow SendMessage; the key allows GenerateDataKey through SQS".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// transaction queue → validator: an enabled mapping, and the function's role may receive,
/// delete and read attributes (and decrypt through SQS).
async fn queue_to_validator(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("transaction queue → validator");
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let Some(name) = st.out(validator::OUT_FUNCTION_NAME) else {
            c.fail("the validator is not built", FIX_UP);
            return Ok(());
        };
        let q = live.queue(url).await?;
        let maps = live
            .aws
            .lambda()
            .list_event_source_mappings()
            .function_name(name)
            .send()
            .await
            .aws("lambda:ListEventSourceMappings", name)?;
        let mapping = maps
            .event_source_mappings()
            .iter()
            .find(|m| m.event_source_arn() == Some(q.arn.as_str()));
        match mapping {
            None => c.fail(
                format!("no event source mapping feeds {name} from the queue"),
                FIX_UP,
            ),
            Some(m)
                if !matches!(
                    m.state(),
                    Some("Enabled" | "Creating" | "Updating" | "Enabling")
                ) =>
            {
                c.fail(
                    format!(
                        "the mapping {} is {}",
                        m.uuid().unwrap_or_default(),
                        m.state().unwrap_or("in no state")
                    ),
                    FIX_UP,
                )
            }
            Some(_) => {}
        }
        let f = live.function(name).await?;
        let role = live.role(f.role().unwrap_or_default()).await?;
        let fn_arn = f.function_arn().unwrap_or_default().to_string();
        c.need(
            eval::trusts(
                &role,
                "lambda.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &fn_arn),
                ]),
            ),
            FIX_UP,
        );
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ] {
            c.need(
                eval::role_resource(&role, q.policy.as_ref(), action, &q.arn, &sec),
                FIX_UP,
            );
        }
        if let Some(key) = &q.kms_key {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("sqs.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:Decrypt", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push("mapping enabled; the role may receive, delete and decrypt".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// validator → its dead-letter target: none by design (the queue's redrive moves failures);
/// one that exists must be writable by the role, or Lambda refuses the configuration.
async fn validator_dead_letter(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("validator failures → dead-letter queue");
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let q = live.queue(url).await?;
        match &q.redrive_target {
            Some(t) => c.notes.push(format!(
                "the queue redrives to {}",
                t.rsplit(':').next().unwrap_or(t)
            )),
            None => c.fail(
                "the transaction queue has no redrive policy: failing messages are retried forever",
                FIX_UP,
            ),
        }
        if let Some(name) = st.out(validator::OUT_FUNCTION_NAME) {
            let f = live.function(name).await?;
            if let Some(target) = f
                .dead_letter_config()
                .and_then(|d| d.target_arn())
                .filter(|t| !t.is_empty())
            {
                let role = live.role(f.role().unwrap_or_default()).await?;
                let action = if target.contains(":sns:") {
                    "sns:Publish"
                } else {
                    "sqs:SendMessage"
                };
                c.need(eval::identity(&role, action, target, &Ctx::new()), FIX_UP);
            }
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A role → the session table: the role reads items, the table's key lets it decrypt through
/// DynamoDB, and the subnets route to DynamoDB (gateway endpoint or NAT).
#[allow(clippy::too_many_arguments)]
async fn role_to_sessions(
    live: &Live,
    st: &Stack,
    f: &Facts,
    who: &str,
    role: &Option<String>,
    groups: &[String],
    subnets: &[String],
) -> Finding {
    let mut c = Check::new(format!("{who} → session table"));
    let r: Result<()> = async {
        let table_arn = st.out(sessions::OUT_TABLE_ARN).context("no table ARN")?;
        let Some(role) = role else {
            c.fail("no role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        c.need(
            eval::identity(&role, "dynamodb:GetItem", table_arn, &Ctx::new()),
            FIX_UP,
        );
        let name = st.out(sessions::OUT_TABLE_NAME).unwrap_or_default();
        let t = live
            .aws
            .dynamodb()
            .describe_table()
            .table_name(name)
            .send()
            .await
            .aws("dynamodb:DescribeTable", name)?;
        if let Some(key) = t
            .table()
            .and_then(|t| t.sse_description())
            .and_then(|s| s.kms_master_key_arn())
        {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("dynamodb.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:Decrypt", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push("the role may read items and decrypt through DynamoDB".into());
        }
        let pl_name = format!("com.amazonaws.{}.dynamodb", live.region());
        let sgs = live.groups(groups).await?;
        for s in subnets {
            c.need(
                eval::service_route(&f.route_tables, s, f.prefix_list(&pl_name), &sgs, 443)
                    .map_err(|e| format!("subnet {s} to DynamoDB: {e}")),
                FIX_UP,
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A service's tasks → their image registry: the execution role may pull from the stack's
/// repositories, and the tasks' subnets reach the registry (NAT, or the ECR interface
/// endpoints plus the S3 gateway endpoint the layers come from).
async fn image_pull(live: &Live, st: &Stack, f: &Facts, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} tasks → image registry", svc.label()));
    let r: Result<()> = async {
        let Some(exec) = &svc.execution_role else {
            c.fail("the task definition has no execution role", FIX_UP);
            return Ok(());
        };
        let role = live.role(exec).await?;
        let task_arn = format!(
            "arn:aws:ecs:{}:{}:task/{}/0",
            live.region(),
            live.account,
            svc.name
        );
        c.need(
            eval::trusts(
                &role,
                "ecs-tasks.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &task_arn),
                ]),
            ),
            FIX_UP,
        );
        let repos = st.out_map(crate::outputs::registry::OUT_ARNS);
        let uris = st.out_map(crate::outputs::registry::OUT_URIS);
        let sgs = live.groups(&svc.groups).await?;
        let endpoints = live.endpoints(&f.vpc_id).await?;
        let region = live.region().to_string();
        for image in &svc.images {
            let private = uris.iter().find(|(_, u)| image.starts_with(u.as_str()));
            if let Some((repo, _)) = private {
                let repo_arn = repos.get(repo).cloned().unwrap_or_default();
                c.need(
                    eval::identity(&role, "ecr:GetAuthorizationToken", "*", &Ctx::new()),
                    FIX_UP,
                );
                for a in ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] {
                    c.need(eval::identity(&role, a, &repo_arn, &Ctx::new()), FIX_UP);
                }
                for s in &svc.subnets {
                    c.need(
                        eval::ecr_route(
                            &f.route_tables,
                            s,
                            &endpoints,
                            &sgs,
                            &live.groups(&endpoint_groups(&endpoints)).await?,
                            &region,
                            f.prefix_list(&format!("com.amazonaws.{region}.s3")),
                            f.vpc_cidr,
                        )
                        .map_err(|e| format!("subnet {s} to ECR: {e}")),
                        FIX_UP,
                    );
                }
            } else {
                // Public registries (public.ecr.aws, Docker Hub) are on the internet.
                for s in &svc.subnets {
                    c.need(
                        eval::internet_route(&f.route_tables, s, false)
                            .map_err(|e| format!("subnet {s} to {image}: {e}")),
                        FIX_UP,
                    );
                }
                c.need(
                    eval::egress_anywhere(&sgs, 443).map_err(|e| format!("{image}: {e}")),
                    FIX_UP,
                );
                c.notes
                    .push(format!("{image} is public: pulled through NAT"));
            }
        }
        if c.problems.is_empty() && private_images(&svc.images, &uris) > 0 {
            c.notes
                .push("the execution role may pull from the stack's repositories".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

fn private_images(images: &[String], uris: &BTreeMap<String, String>) -> usize {
    images
        .iter()
        .filter(|i| uris.values().any(|u| i.starts_with(u.as_str())))
        .count()
}

fn endpoint_groups(endpoints: &[aws_sdk_ec2::types::VpcEndpoint]) -> Vec<String> {
    endpoints
        .iter()
        .flat_map(|e| e.groups())
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// every alarm → the alert topic: each alarm's action is the topic, the topic policy lets
/// CloudWatch publish, and the topic's key lets CloudWatch use it.
async fn alarms_to_topic(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("alarms → alert topic");
    let r: Result<()> = async {
        let topic = st.out(alarms::OUT_TOPIC_ARN).context("no topic")?;
        let names = st.ids_of(alarms::ALARM);
        let mut found = Vec::new();
        for chunk in names.chunks(100) {
            let out = live
                .aws
                .cloudwatch()
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .max_records(100)
                .send()
                .await
                .aws("cloudwatch:DescribeAlarms", "the stack's alarms")?;
            found.extend(out.metric_alarms().iter().cloned());
        }
        let attrs = live
            .aws
            .sns()
            .get_topic_attributes()
            .topic_arn(topic)
            .send()
            .await
            .aws("sns:GetTopicAttributes", topic)?;
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let policy: Option<Value> = attrs.get("Policy").and_then(|p| serde_json::from_str(p).ok());
        for name in &names {
            let Some(a) = found.iter().find(|a| a.alarm_name() == Some(name.as_str())) else {
                c.fail(format!("alarm {name} is gone"), FIX_UP);
                continue;
            };
            if !a.alarm_actions().iter().any(|x| x == topic) {
                c.fail(format!("alarm {name} does not notify the topic"), FIX_UP);
            }
            let alarm_arn = a.alarm_arn().unwrap_or_default();
            if policy.is_some() {
                c.need(
                    eval::service_resource(
                        "cloudwatch.amazonaws.com",
                        policy.as_ref(),
                        "sns:Publish",
                        topic,
                        &ctx(&[("aws:SourceArn", alarm_arn), ("aws:SourceAccount", &live.account), ("aws:SourceOwner", &live.account)]),
                    )
                    .map_err(|e| format!("topic policy refuses alarm {name}: {e}")),
                    FIX_UP,
                );
                break_after_first(&mut c);
            }
        }
        if let Some(key) = attrs.get("KmsMasterKeyId").filter(|k| !k.is_empty()) {
            let (key_arn, kp) = live.key(key, live.region()).await?;
            for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
                c.need(
                    eval::kms_service(&kp, "cloudwatch.amazonaws.com", action, &key_arn, &Ctx::new())
                        .map_err(|e| format!("the topic's key does not let CloudWatch {action}: {e} (alarms fire, nobody is notified)")),
                    FIX_UP,
                );
            }
        }
        if c.problems.is_empty() {
            c.notes.truncate(0);
            c.notes.push(format!("{} alarms notify the topic; CloudWatch may publish and use its key", names.len()));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// Keeps the alarm loop's notes short: one topic-policy note is enough.
fn break_after_first(c: &mut Check) {
    if c.notes.len() > 1 {
        c.notes.truncate(1);
    }
}

/// every log group's key lets CloudWatch Logs use it for that group.
async fn log_groups_keys(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("log groups → their KMS key");
    let r: Result<()> = async {
        let mut names: BTreeSet<(String, String)> = st
            .resources
            .iter()
            .filter(|r| r.kind == crate::resources::logs::log_group::KIND)
            .map(|r| {
                (
                    r.id.clone(),
                    if r.region.is_empty() {
                        live.region().to_string()
                    } else {
                        r.region.clone()
                    },
                )
            })
            .collect();
        for g in st.out_map(services::OUT_LOG_GROUPS).into_values() {
            names.insert((g, live.region().to_string()));
        }
        let mut checked = 0;
        for (name, region) in &names {
            let aws = live.in_region(region);
            let out = aws
                .logs()
                .describe_log_groups()
                .log_group_name_prefix(name)
                .send()
                .await
                .aws("logs:DescribeLogGroups", name)?;
            let Some(g) = out
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(name.as_str()))
            else {
                c.fail(format!("log group {name} is gone"), FIX_UP);
                continue;
            };
            let Some(key) = g.kms_key_id() else {
                c.fail(format!("log group {name} is not KMS-encrypted"), FIX_UP);
                continue;
            };
            let (key_arn, kp) = live.key(key, region).await?;
            let group_arn = format!("arn:aws:logs:{region}:{}:log-group:{name}", live.account);
            let principal = format!("logs.{region}.amazonaws.com");
            for action in ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"] {
                c.need(
                    eval::kms_service(
                        &kp,
                        &principal,
                        action,
                        &key_arn,
                        &ctx(&[("kms:EncryptionContext:aws:logs:arn", &group_arn)]),
                    )
                    .map_err(|e| {
                        format!("{name}: the key does not let CloudWatch Logs {action}: {e}")
                    }),
                    FIX_UP,
                );
            }
            checked += 1;
        }
        if c.problems.is_empty() {
            c.notes.truncate(0);
            c.notes.push(format!(
                "{checked} log groups; each key lets CloudWatch Logs use it"
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// DR: the replication role may read the source, write the replica and use both keys.
async fn replication(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("assets bucket → DR replica (replication role)");
    let r: Result<()> = async {
        let role_arn = st
            .out(dr_storage::OUT_REPLICATION_ROLE_ARN)
            .context("no role")?;
        let src = st
            .out(storage::OUT_ASSETS_BUCKET)
            .context("no assets bucket")?;
        let dst = st
            .out(dr_storage::OUT_DR_BUCKET)
            .context("no replica bucket")?;
        let dr_region = st.out(dr_network::OUT_DR_REGION).context("no DR region")?;
        let role = live.role(role_arn).await?;
        let src_bucket = format!("arn:aws:s3:::{src}");
        c.need(
            eval::trusts(
                &role,
                "s3.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &src_bucket),
                ]),
            ),
            FIX_UP,
        );
        let src_facts = live.bucket(src, live.region()).await?;
        let dst_facts = live.bucket(dst, dr_region).await?;
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        let src_arn = format!("arn:aws:s3:::{src}");
        let dst_arn = format!("arn:aws:s3:::{dst}");
        for (action, res, pol) in [
            (
                "s3:GetReplicationConfiguration",
                src_arn.clone(),
                &src_facts.policy,
            ),
            ("s3:ListBucket", src_arn.clone(), &src_facts.policy),
            (
                "s3:GetObjectVersionForReplication",
                format!("{src_arn}/k"),
                &src_facts.policy,
            ),
            (
                "s3:ReplicateObject",
                format!("{dst_arn}/k"),
                &dst_facts.policy,
            ),
            (
                "s3:ReplicateDelete",
                format!("{dst_arn}/k"),
                &dst_facts.policy,
            ),
        ] {
            c.need(
                eval::role_resource(&role, pol.as_ref(), action, &res, &sec),
                FIX_UP,
            );
        }
        if let Some(key) = &src_facts.kms_key {
            let (arn, kp) = live.key(key, live.region()).await?;
            let via = format!("s3.{}.amazonaws.com", live.region());
            c.need(
                eval::kms_role(&kp, &role, "kms:Decrypt", &arn, &through(live, &via)),
                FIX_UP,
            );
        }
        if let Some(key) = &dst_facts.kms_key {
            let (arn, kp) = live.key(key, dr_region).await?;
            let via = format!("s3.{dr_region}.amazonaws.com");
            c.need(
                eval::kms_role(&kp, &role, "kms:Encrypt", &arn, &through(live, &via)),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push(format!("{src} → {dst} ({dr_region}); both keys usable"));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// DR: the backup role may snapshot the cluster, copy into the DR vault and use both keys.
async fn backup(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("Aurora → backup vaults (backup role)");
    let r: Result<()> = async {
        let plan = st.out(dr_backup::OUT_PLAN_ID).context("no plan")?;
        let cluster = st.out(database::OUT_CLUSTER_ARN).context("no cluster")?;
        let dr_vault = st.out(dr_backup::OUT_DR_VAULT_ARN).context("no DR vault")?;
        let dr_region = st.out(dr_network::OUT_DR_REGION).context("no DR region")?;
        let b = live.aws.backup();
        let sels = b
            .list_backup_selections()
            .backup_plan_id(plan)
            .send()
            .await
            .aws("backup:ListBackupSelections", plan)?;
        let Some(sel) = sels.backup_selections_list().first() else {
            c.fail("the backup plan selects nothing", FIX_UP);
            return Ok(());
        };
        let role = live.role(sel.iam_role_arn().unwrap_or_default()).await?;
        let vault = st.out(dr_backup::OUT_VAULT_ARN).unwrap_or_default();
        c.need(
            eval::trusts(
                &role,
                "backup.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", vault),
                ]),
            ),
            FIX_UP,
        );
        c.need(
            eval::identity(&role, "rds:CreateDBClusterSnapshot", cluster, &Ctx::new()),
            FIX_UP,
        );
        c.need(
            eval::identity(&role, "backup:CopyIntoBackupVault", dr_vault, &Ctx::new()),
            FIX_UP,
        );
        for (key_out, region) in [
            (kms::OUT_KEY_ARN, live.region().to_string()),
            (dr_storage::OUT_DR_KEY_ARN, dr_region.to_string()),
        ] {
            if let Some(key) = st.out(key_out) {
                let (arn, kp) = live.key(key, &region).await?;
                let via = format!("backup.{region}.amazonaws.com");
                for action in ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"] {
                    c.need(
                        eval::kms_role(&kp, &role, action, &arn, &through(live, &via)),
                        FIX_UP,
                    );
                }
            }
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "daily snapshots of the cluster, copied to {dr_region}"
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
