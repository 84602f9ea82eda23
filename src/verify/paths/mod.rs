//! The path checks of `verify`, one function per path of the architecture. Each reads what AWS
//! would consult for that path (through [`Live`]) and decides it with [`eval`](super::eval): a path
//! passes only when every hop is allowed on both ends.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use futures::future::{BoxFuture, FutureExt};

use super::eval::Ctx;
use super::live::Live;
use super::{Finding, Stack};
use crate::aws::AwsResultExt;
use crate::config::{Config, Permission};
use crate::outputs::{
    alb, cluster, database, dr_backup, dr_storage, queue, services, sessions, validator,
};
use crate::steps::{alarms, network};

mod compute;
mod data;
mod dr;
mod edge;
mod messaging;
mod monitoring;

use compute::{
    alb_to_service, execution_role_reads_secrets, image_pull, service_to_service, traces_to_xray,
};
use data::{role_to_sessions, service_to_database};
use dr::{backup, replication};
use edge::{cdn_to_alb, cdn_to_assets, internet_to_alb, routed_traffic_is_served};
use messaging::{
    producer_to_queue, queue_to_validator, reconciler_to_validator, validator_dead_letter,
};
use monitoring::{alarms_to_topic, log_groups_keys};

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
    let facts = match Facts::read(live, st, cfg).await {
        Ok(f) => f,
        Err(e) => {
            let mut c = Check::new("read the stack");
            c.unreadable(e);
            return vec![c.finish()];
        }
    };
    // The paths run at once (the reads they share are made once, see `Live`); the findings
    // come in this order.
    let mut out: Vec<BoxFuture<'_, Finding>> = Vec::new();
    out.push(cdn_to_assets(live, st, &facts).boxed());
    out.push(cdn_to_alb(live, st, &facts).boxed());
    out.push(internet_to_alb(live, st, &facts).boxed());
    if st.out(crate::outputs::alb::OUT_ARN).is_some() {
        out.push(routed_traffic_is_served(live, st, &facts).boxed());
    }
    for svc in &facts.services {
        if !svc.target_groups.is_empty() {
            out.push(alb_to_service(live, &facts, svc).boxed());
        }
    }
    for svc in &facts.services {
        let Some(conf) = cfg.services.0.iter().find(|s| s.name.0 == svc.name) else {
            continue;
        };
        for callee in &conf.calls {
            out.push(service_to_service(live, &facts, svc, &callee.0).boxed());
        }
    }
    for svc in &facts.services {
        if svc.permissions.contains(&Permission::Database) {
            out.push(service_to_database(live, st, &facts, svc).boxed());
        }
    }
    for svc in &facts.services {
        if !svc.secrets.is_empty() {
            out.push(execution_role_reads_secrets(live, svc).boxed());
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
            out.push(producer_to_queue(live, st, svc).boxed());
        }
        out.push(queue_to_validator(live, st).boxed());
        if cfg.validator.breaker {
            out.push(reconciler_to_validator(live, st).boxed());
        }
        out.push(validator_dead_letter(live, st).boxed());
    }
    if st.out(sessions::OUT_TABLE_ARN).is_some() {
        for svc in &facts.services {
            if svc.permissions.contains(&Permission::Sessions) {
                let facts = &facts;
                out.push(
                    async move {
                        let label = svc.label();
                        role_to_sessions(
                            live,
                            st,
                            facts,
                            &label,
                            &svc.task_role,
                            &svc.groups,
                            &svc.subnets,
                        )
                        .await
                    }
                    .boxed(),
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
                .boxed(),
            );
        }
    }
    for svc in &facts.services {
        out.push(image_pull(live, st, &facts, svc).boxed());
    }
    if cfg.tracing.enabled {
        for svc in &facts.services {
            out.push(traces_to_xray(live, &facts, svc, &cfg.tracing.collector_image).boxed());
        }
    }
    if st.out(alarms::OUT_TOPIC_ARN).is_some() {
        out.push(alarms_to_topic(live, st).boxed());
    }
    out.push(log_groups_keys(live, st).boxed());
    if st.out(dr_storage::OUT_REPLICATION_ROLE_ARN).is_some() {
        out.push(replication(live, st).boxed());
    }
    if st.out(dr_backup::OUT_PLAN_ID).is_some() {
        out.push(backup(live, st).boxed());
    }
    futures::future::join_all(out).await
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
            // DescribeServices takes at most 10 services per call.
            let wanted: Vec<String> = names.values().cloned().collect();
            let mut described = Vec::new();
            for chunk in wanted.chunks(10) {
                let out = ecs
                    .describe_services()
                    .cluster(cluster_arn)
                    .set_services(Some(chunk.to_vec()))
                    .send()
                    .await
                    .aws("ecs:DescribeServices", cluster_arn)?;
                described.extend(out.services().iter().cloned());
            }
            for (svc_name, ecs_name) in &names {
                let Some(s) = described
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
                    // A CODE_DEPLOY service's tasks run in task sets, each behind its own
                    // group of the pair (the service's own `loadBalancers` keep naming the
                    // group it was created with).
                    target_groups: {
                        let mut v: Vec<(String, i32)> = s
                            .load_balancers()
                            .iter()
                            .chain(s.task_sets().iter().flat_map(|t| t.load_balancers()))
                            .filter_map(|l| {
                                Some((l.target_group_arn()?.to_string(), l.container_port()?))
                            })
                            .collect();
                        v.sort();
                        v.dedup();
                        v
                    },
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
/// What the service `name` may use (a `weighted` service's green twin: the same).
fn permissions_of(cfg: &Config, name: &str) -> Vec<Permission> {
    cfg.services
        .0
        .iter()
        .find(|s| {
            s.name.0 == name
                || (s.deployment == crate::config::Deployment::Weighted
                    && crate::config::green_twin(&s.name.0) == name)
        })
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
