//! Network step: the VPC and everything in it that other steps build on.
//!
//! Per availability zone a public subnet (ALB, NAT), a private subnet (ECS tasks, Lambda) and an
//! isolated subnet (Aurora, no route out); an internet gateway; one NAT gateway (or one per
//! zone); route tables; security groups with explicit ingress and egress; gateway endpoints
//! for S3 and DynamoDB. Each resource type (find, create, waits, delete, probe, AWS quirks)
//! is a provider in [`crate::resources::ec2`]; this step only decides what to build from the
//! `[network]` config, in which order, and what to publish.
//!
//! Security groups: the ALB's, one per ECS service (`secgroup-svc-<service>-<suffix>`), the
//! database's, Lambda's and (with interface endpoints) the endpoints'. AWS checks a path on
//! both ends (the sender's egress and the receiver's ingress), so every allowed path is a pair
//! of rules and nothing else is allowed (see [`rule_specs`]): CloudFront's origin-facing
//! prefix list to the ALB, the ALB to the services behind it, each declared call
//! (`services[].calls`) on the callee's port, the services with the `database` permission to
//! the database, HTTPS out to AWS APIs. `up` converges: it revokes rules the config no longer
//! asks for and deletes groups it no longer asks for once no network interface uses them
//! (one still in use stays recorded, with a note, for the next `up` or `down`).
//! The VPC's default security group keeps no rules at all (Security Hub EC2.2, see
//! [`security_group::restrict_default`]).
//!
//! `down` takes the order AWS enforces from the edges in `src/resources/deps.rs`. `BUILT_ON`:
//! routes before their table, NAT gateway, internet gateway or peering (a route only
//! black-holes once its target goes); NAT gateways before their subnet and EIP (the
//! `ec2:nat-gateway` provider waits until deleted, as their ENIs hold both); associations
//! before their table and subnet; endpoints before the subnets, security groups and route
//! tables; every security group rule before every group (AWS refuses to delete a group a
//! rule still names as its peer); everything in the VPC before the VPC. `DELETE_RULES`: NAT
//! gateways and load balancers before the internet gateway (it cannot be detached while a
//! public address in the VPC is mapped), and Lambda functions before subnets and security
//! groups, with a hook that waits for and deletes the ENIs they leave behind
//! ([`crate::resources::ec2::network_interface::remove_lambda_enis`]).

/// The `[network]` section this step owns (re-exported by `crate::config`).
pub mod config;

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::json;

use crate::config::NatMode;
use crate::resources::ec2::nat_gateway::{self, NatSpec};
use crate::resources::ec2::security_group_rule::{self, DesiredRule, Target};
use crate::resources::ec2::subnet::{self, SubnetSpec};
use crate::resources::ec2::{
    self as ec2, elastic_ip, internet_gateway, route_table, security_group, vpc,
    vpc_endpoint,
};
use crate::resources;
use crate::step::{Found, Step, StepCtx};

pub use crate::outputs::network::*;

pub use crate::resources::ec2::route::Via;
pub use crate::resources::ec2::security_group::Role;

pub const VPC: &str = vpc::KIND;
pub const SUBNET: &str = subnet::KIND;
pub const IGW: &str = internet_gateway::KIND;
pub const EIP: &str = elastic_ip::KIND;
pub const NAT: &str = nat_gateway::KIND;
pub const ROUTE_TABLE: &str = route_table::KIND;
pub const ASSOCIATION: &str = resources::ec2::route_table_association::KIND;
pub const ROUTE: &str = resources::ec2::route::KIND;
pub const SG: &str = security_group::KIND;
pub const SG_RULE: &str = security_group_rule::KIND;
pub const ENDPOINT: &str = vpc_endpoint::KIND;

pub use crate::resources::rds::DB_PORT;
/// HTTPS: AWS APIs, image registries, interface endpoints.
pub const HTTPS_PORT: i32 = 443;

/// CloudFront's AWS-managed prefix list of the addresses its edge servers connect to origins
/// from. The ALB is reached only through CloudFront, so this list is the ALB's only source.
pub const CLOUDFRONT_PREFIX_LIST: &str = "com.amazonaws.global.cloudfront.origin-facing";

/// The shared group of every service's tasks of earlier versions: removed by `up` once no
/// task uses it any more.
const LEGACY_OUT_APP_SG: &str = "sg_app_id";

pub struct Network;

/// Subnet tiers: where each kind of workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Public,
    Private,
    Isolated,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Public, Tier::Private, Tier::Isolated];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Public => "public",
            Tier::Private => "private",
            Tier::Isolated => "isolated",
        }
    }

    /// Which 16th of the VPC block a tier's subnets start at: public 0-3, private 4-7,
    /// isolated 8-11.
    fn first_slot(self) -> u8 {
        match self {
            Tier::Public => 0,
            Tier::Private => 4,
            Tier::Isolated => 8,
        }
    }
}

impl Role {
    /// Output key holding the group ID (`sg_<role>_id`); service groups are in
    /// [`OUT_SERVICE_SG_IDS`].
    pub fn output_key(&self) -> Option<String> {
        match self {
            Role::Service(_) => None,
            r => Some(format!("sg_{}_id", r.purpose())),
        }
    }
}

/// Where a rule lets traffic come from or go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Cidr(&'static str),
    /// A block the config names (`deploy.test_cidrs`: the testers of CodeDeploy's test
    /// listener).
    Network(String),
    /// The VPC's own block.
    Vpc,
    Group(Role),
    /// An AWS-managed prefix list, by name (its ID is looked up in the region).
    PrefixList(&'static str),
}

/// One security group rule the stack needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub group: Role,
    pub egress: bool,
    /// The first port of the rule's range.
    pub port: i32,
    /// The last port of the range (`port` for a single port).
    pub to_port: i32,
    pub peer: Peer,
    pub description: String,
}

/// The ports CloudFront may connect to the ALB on: plain HTTP (80) without a certificate;
/// with one, 80 to 443, since CloudFront uses HTTP (80) until ACM has issued the certificate
/// and the HTTPS listener exists, then HTTPS (443). One range, not two rules: see
/// [`rule_specs`]. The ALB answers only on its listeners' ports, so the range opens nothing
/// else.
pub fn alb_origin_ports(cfg: &crate::config::Config) -> (i32, i32) {
    if cfg.certificate.source.is_some() {
        (80, HTTPS_PORT)
    } else {
        (80, 80)
    }
}

/// Every rule of every group of the stack `cfg` describes. Traffic needs both the sender's
/// egress rule and the receiver's ingress rule (security groups are checked on both ends), so
/// every path comes as a pair; nothing else is allowed. Egress is explicit everywhere: the
/// allow-all egress rule AWS adds to each new group is removed.
pub fn rule_specs(cfg: &crate::config::Config) -> Vec<RuleSpec> {
    use crate::config::Permission;
    use Peer::*;
    let groups = Role::of(cfg);
    let mut rules: Vec<RuleSpec> = Vec::new();
    // The ALB is reached only through CloudFront, on the ports CloudFront's origin uses. ONE
    // rule: AWS counts a rule that references a prefix list as the list's max entries (55
    // for this one) against the group's quota of 60 inbound rules, so a second one (80 and
    // 443) would exceed it and be refused (RulesPerSecurityGroupLimitExceeded).
    let (from, to) = alb_origin_ports(cfg);
    rules.push(RuleSpec {
        group: Role::Alb,
        egress: false,
        port: from,
        to_port: to,
        peer: Peer::PrefixList(CLOUDFRONT_PREFIX_LIST),
        description: "from CloudFront origin-facing servers only".into(),
    });
    let mut r = |group: Role, egress: bool, port: i32, peer: Peer, description: String| {
        let spec = RuleSpec {
            group,
            egress,
            port,
            to_port: port,
            peer,
            description,
        };
        if !rules.iter().any(|x| {
            (&x.group, x.egress, x.port, &x.peer)
                == (&spec.group, spec.egress, spec.port, &spec.peer)
        }) {
            rules.push(spec);
        }
    };
    let svc = |name: &str| Role::Service(name.to_string());

    for s in cfg.services.behind_alb() {
        let port = i32::from(s.port);
        r(
            Role::Alb,
            true,
            port,
            Group(svc(&s.name.0)),
            format!("to the {} tasks", s.name.0),
        );
        r(
            svc(&s.name.0),
            false,
            port,
            Group(Role::Alb),
            "from the ALB".into(),
        );
    }
    // CodeDeploy's test listener serves the new version before production traffic moves:
    // only the config's testers reach it (the ALB's one CloudFront rule counts as 55 of the
    // group's 60 inbound rules, so `deploy.test_cidrs` has at most 4 entries).
    if cfg
        .services
        .0
        .first()
        .is_some_and(|s| s.deployment.is_code_deploy())
    {
        for cidr in &cfg.deploy.test_cidrs {
            r(
                Role::Alb,
                false,
                cfg.deploy.test_port,
                Network(cidr.to_string()),
                "testers, to CodeDeploy's test listener".into(),
            );
        }
    }
    for s in &cfg.services.0 {
        let me = &s.name.0;
        r(
            svc(me),
            true,
            HTTPS_PORT,
            Cidr("0.0.0.0/0"),
            "HTTPS to AWS APIs and image registries".into(),
        );
        for callee in &s.calls {
            let Some(c) = cfg.services.get(&callee.0) else {
                continue; // Config::check refuses unknown callees
            };
            let port = i32::from(c.port);
            r(
                svc(me),
                true,
                port,
                Group(svc(&c.name.0)),
                format!("calls {}", c.name.0),
            );
            r(
                svc(&c.name.0),
                false,
                port,
                Group(svc(me)),
                format!("called by {me}"),
            );
        }
        if s.permissions.contains(&Permission::Database) {
            r(
                svc(me),
                true,
                DB_PORT,
                Group(Role::Db),
                "to the database".into(),
            );
            r(
                Role::Db,
                false,
                DB_PORT,
                Group(svc(me)),
                format!("PostgreSQL from {me}"),
            );
        }
    }
    r(
        Role::Db,
        true,
        DB_PORT,
        Vpc,
        "replication inside the VPC only".into(),
    );
    // The validator only reads the queue and the session table: no database rules.
    r(
        Role::Lambda,
        true,
        HTTPS_PORT,
        Cidr("0.0.0.0/0"),
        "HTTPS to AWS APIs".into(),
    );
    if groups.contains(&Role::Endpoint) {
        // Interface endpoints only answer: no egress rule at all.
        for s in &cfg.services.0 {
            r(
                Role::Endpoint,
                false,
                HTTPS_PORT,
                Group(svc(&s.name.0)),
                format!("AWS APIs from {}", s.name.0),
            );
        }
        r(
            Role::Endpoint,
            false,
            HTTPS_PORT,
            Group(Role::Lambda),
            "AWS APIs from the Lambda functions".into(),
        );
    }
    rules
}

/// The name and AWS service name of the endpoint of `service` (e.g. `s3`, `ecr.api`).
fn endpoint_names(ctx: &StepCtx, service: &str) -> (String, String) {
    (
        ctx.names().with_purpose("vpce", service),
        format!("com.amazonaws.{}.{service}", ctx.region()),
    )
}

impl Network {
    /// The zones to use: from config, or the region's first `az_count` available zones.
    async fn zones(&self, ctx: &StepCtx) -> Result<Vec<String>> {
        let net = &ctx.cfg().network;
        let listed = net.availability_zones.as_deref();
        ec2::zones(ctx, usize::from(net.az_count.0), listed, "network").await
    }

    async fn ensure_subnet(
        &self,
        ctx: &StepCtx,
        vpc: &Found,
        tier: Tier,
        index: u8,
        zone: &str,
    ) -> Result<Found> {
        let letter = zone.chars().last().unwrap_or('x');
        let name = ctx
            .names()
            .with_purpose("subnet", &format!("{}-{letter}", tier.as_str()));
        let cidr = ctx
            .cfg()
            .network
            .cidr
            .slice(tier.first_slot() + index)
            .to_string();
        let spec = SubnetSpec {
            name: &name,
            cidr: &cidr,
            zone,
            tier: tier.as_str(),
        };
        subnet::ensure(ctx, vpc, &spec).await
    }

    /// An EIP and a NAT gateway in a public subnet; waits until the NAT gateway is available,
    /// since routes through a pending NAT gateway black-hole traffic.
    async fn ensure_nat(&self, ctx: &StepCtx, public_subnet: &Found, zone: &str) -> Result<Found> {
        let letter = zone.chars().last().unwrap_or('x');
        let eip_name = ctx.names().with_purpose("eip", &format!("nat-{letter}"));
        let nat_name = ctx.names().with_purpose("nat", &letter.to_string());
        let eip = elastic_ip::ensure(ctx, &eip_name).await?;
        let spec = NatSpec {
            name: &nat_name,
            subnet: public_subnet,
            eip: &eip,
        };
        nat_gateway::ensure(ctx, &spec).await
    }

    /// [`rule_specs`] with the IDs of this stack filled in: the groups' (`groups`), the VPC's
    /// block and the prefix lists' (by name).
    fn desired_rules(
        ctx: &StepCtx,
        vpc_cidr: &str,
        groups: &BTreeMap<Role, Found>,
        prefix_lists: &BTreeMap<&str, String>,
    ) -> Vec<DesiredRule> {
        rule_specs(ctx.cfg())
            .into_iter()
            .map(|spec| {
                let target = match &spec.peer {
                    Peer::Cidr(c) => Target::Cidr(c.to_string()),
                    Peer::Network(c) => Target::Cidr(c.clone()),
                    Peer::Vpc => Target::Cidr(vpc_cidr.to_string()),
                    Peer::Group(r) => Target::Group(groups[r].id.clone()),
                    Peer::PrefixList(name) => {
                        Target::PrefixList(prefix_lists.get(name).cloned().unwrap_or_default())
                    }
                };
                let peer_label = match &spec.peer {
                    Peer::Group(r) => format!("secgroup-{}", r.purpose()),
                    Peer::PrefixList(name) => name.to_string(),
                    _ => match &target {
                        Target::Cidr(c) => c.clone(),
                        _ => String::new(),
                    },
                };
                DesiredRule {
                    name: format!(
                        "{} {} tcp/{} {peer_label}",
                        spec.group.group_name(ctx.names()),
                        if spec.egress { "egress" } else { "ingress" },
                        if spec.to_port == spec.port {
                            spec.port.to_string()
                        } else {
                            format!("{}-{}", spec.port, spec.to_port)
                        },
                    ),
                    group_id: groups[&spec.group].id.clone(),
                    egress: spec.egress,
                    port: spec.port,
                    to_port: spec.to_port,
                    target,
                    description: spec.description,
                }
            })
            .collect()
    }
}

#[async_trait]
impl Step for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn deps(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn estimate_secs(&self) -> u64 {
        150
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let net = &ctx.cfg().network;
        let zones = self.zones(ctx).await?;
        let vpc = vpc::ensure(
            ctx,
            &ctx.names().of("vpc"),
            &net.cidr.0.to_string(),
            "network.cidr",
        )
        .await?;

        // The subnets, the internet gateway and the security groups need only the VPC: look
        // them up (or create them) at once, not one after another.
        let slots: Vec<(u8, usize, Tier)> = Tier::ALL
            .iter()
            .enumerate()
            .flat_map(|(ti, t)| (0..zones.len()).map(move |i| (ti as u8, i, *t)))
            .collect();
        let subnets_built = futures::future::try_join_all(slots.iter().map(|&(ti, i, tier)| {
            let vpc = &vpc;
            let zone = &zones[i];
            async move {
                let s = self.ensure_subnet(ctx, vpc, tier, i as u8, zone).await?;
                anyhow::Ok(((ti, i), s))
            }
        }));
        let igw_name = ctx.names().of("igw");
        let (subnets_built, igw, listed) = tokio::try_join!(
            subnets_built,
            internet_gateway::ensure(ctx, &igw_name, &vpc),
            security_group::list_in_vpc(ctx, &vpc),
        )?;
        let subnets: BTreeMap<(u8, usize), Found> = subnets_built.into_iter().collect();
        let tier_subnets = |t: Tier| -> Vec<&Found> {
            let ti = Tier::ALL.iter().position(|x| *x == t).expect("tier") as u8;
            (0..zones.len()).map(|i| &subnets[&(ti, i)]).collect()
        };

        let groups: BTreeMap<Role, Found> =
            futures::future::try_join_all(Role::of(ctx.cfg()).into_iter().map(|role| {
                let (vpc, listed) = (&vpc, &listed);
                async move {
                    let sg = security_group::ensure(ctx, vpc, listed, &role).await?;
                    anyhow::Ok((role, sg))
                }
            }))
            .await?
            .into_iter()
            .collect();
        let wanted: Vec<&Found> = groups.values().collect();
        let stale = security_group::stale(ctx, &vpc, &listed, &wanted).await?;
        let why = "the ALB admits only CloudFront's origin-facing servers, through that list, and \
                   cannot be set up without it";
        let cloudfront = ec2::managed_prefix_list(ctx, CLOUDFRONT_PREFIX_LIST, why).await?;
        let prefix_lists = BTreeMap::from([(CLOUDFRONT_PREFIX_LIST, cloudfront.clone())]);
        let desired = Self::desired_rules(ctx, &net.cidr.0.to_string(), &groups, &prefix_lists);
        security_group_rule::converge(ctx, &desired, &wanted, &stale).await?;
        security_group::delete_stale(ctx, &stale).await?;
        security_group::restrict_default(ctx, &vpc).await?;

        // What the database, the cluster and the ALB need is out: they start now, while
        // the NAT gateways take their minute or two (see StepCtx::release).
        if !vpc.is_pending() {
            let ids =
                |t: Tier| -> Vec<String> { tier_subnets(t).iter().map(|s| s.id.clone()).collect() };
            ctx.set_output(OUT_VPC_ID, vpc.id.clone())?;
            ctx.set_output(OUT_VPC_CIDR, net.cidr.0.to_string())?;
            ctx.set_output("availability_zones", json!(zones))?;
            ctx.set_output("public_subnet_ids", json!(ids(Tier::Public)))?;
            ctx.set_output("private_subnet_ids", json!(ids(Tier::Private)))?;
            ctx.set_output("isolated_subnet_ids", json!(ids(Tier::Isolated)))?;
            let mut service_groups = serde_json::Map::new();
            for (role, sg) in &groups {
                match (role, role.output_key()) {
                    (Role::Service(name), _) => {
                        service_groups.insert(name.clone(), json!(sg.id));
                    }
                    (_, Some(key)) => ctx.set_output(&key, sg.id.clone())?,
                    (_, None) => {}
                }
            }
            ctx.set_output(
                OUT_SERVICE_SG_IDS,
                serde_json::Value::Object(service_groups),
            )?;
            ctx.set_output(OUT_CLOUDFRONT_PREFIX_LIST_ID, cloudfront)?;
            // Outputs of groups the config no longer asks for (no interface endpoints; the
            // shared app group of earlier versions).
            for role in Role::FIXED.iter().filter(|r| !groups.contains_key(r)) {
                if let Some(key) = role.output_key() {
                    ctx.remove_output(&key)?;
                }
            }
            ctx.remove_output(LEGACY_OUT_APP_SG)?;
        }
        ctx.release();
        // NAT gateways are the slow part (1-2 minutes each on AWS): create them concurrently,
        // and meanwhile build every route table and wire all but the private tables' default
        // routes, the only part that needs an available NAT gateway.
        let nat_zones: Vec<usize> = match net.nat_gateways {
            NatMode::Single => vec![0],
            NatMode::PerAz => (0..zones.len()).collect(),
        };
        let public = tier_subnets(Tier::Public);
        let private = tier_subnets(Tier::Private);
        let isolated = tier_subnets(Tier::Isolated);
        let nats = futures::future::try_join_all(
            nat_zones
                .iter()
                .map(|&i| self.ensure_nat(ctx, public[i], &zones[i])),
        );
        let rt_name = |purpose: &str| ctx.names().with_purpose("rt", purpose);
        let vpc_ref = &vpc;
        let (public_name, isolated_name) = (rt_name("public"), rt_name("isolated"));
        let public_rt = async {
            let (rt, tables) = route_table::ensure(ctx, vpc_ref, &public_name).await?;
            route_table::wire(ctx, &rt, &tables, &public, Some((Via::Igw, &igw))).await?;
            anyhow::Ok(rt)
        };
        let isolated_rt = async {
            let (rt, tables) = route_table::ensure(ctx, vpc_ref, &isolated_name).await?;
            route_table::wire(ctx, &rt, &tables, &isolated, None).await?;
            anyhow::Ok(rt)
        };
        let private_tables = futures::future::try_join_all(zones.iter().enumerate().map(|(i, zone)| {
            let letter = zone.chars().last().unwrap_or('x');
            let name = rt_name(&format!("private-{letter}"));
            let subnet = private[i];
            async move {
                let (rt, tables) = route_table::ensure(ctx, vpc_ref, &name).await?;
                route_table::wire(ctx, &rt, &tables, &[subnet], None).await?;
                anyhow::Ok::<(Found, Vec<_>)>((rt, tables))
            }
        }));
        let (nats, _public_rt, isolated_rt, private_tables) =
            tokio::try_join!(nats, public_rt, isolated_rt, private_tables)?;
        let nats: Vec<Found> = nats;
        let private_rts: Vec<Found> = futures::future::try_join_all(
            private_tables.into_iter().enumerate().map(|(i, (rt, tables))| {
                let nat = &nats[if nats.len() == 1 { 0 } else { i }];
                async move {
                    route_table::wire(ctx, &rt, &tables, &[], Some((Via::Nat, nat))).await?;
                    anyhow::Ok(rt)
                }
            }),
        )
        .await?;

        // Gateway endpoints keep S3 and DynamoDB traffic off the NAT gateway (and reachable
        // from the isolated subnets, which have no route out).
        let mut endpoint_rts: Vec<&Found> = private_rts.iter().collect();
        endpoint_rts.push(&isolated_rt);
        for service in ["s3", "dynamodb"] {
            let (name, service_name) = endpoint_names(ctx, service);
            vpc_endpoint::ensure_gateway(ctx, &vpc, &name, &service_name, &endpoint_rts).await?;
        }
        if let Some(sg) = groups.get(&Role::Endpoint) {
            for svc in &net.interface_endpoints {
                for service in svc.endpoint_names() {
                    let (name, service_name) = endpoint_names(ctx, service);
                    vpc_endpoint::ensure_interface(ctx, &vpc, &name, &service_name, &private, sg)
                        .await?;
                }
            }
        }

        if vpc.is_pending() {
            return Ok(());
        }
        // The dr_network step routes the DR region's block through the peering connection
        // from these tables (the subnets with no internet route reach it too).
        let mut internal_rts: Vec<String> = private_rts.iter().map(|r| r.id.clone()).collect();
        internal_rts.push(isolated_rt.id.clone());
        ctx.set_output(OUT_INTERNAL_ROUTE_TABLE_IDS, json!(internal_rts))?;
        ctx.set_output(
            "nat_gateway_ids",
            json!(nats.iter().map(|n| n.id.clone()).collect::<Vec<_>>()),
        )?;
        Ok(())
    }

}

#[cfg(test)]
mod tests;
