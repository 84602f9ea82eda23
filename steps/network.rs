//! Network step: the VPC and everything in it that other steps build on.
//!
//! Per availability zone a public subnet (ALB, NAT), a private subnet (ECS tasks, Lambda) and an
//! isolated subnet (Aurora, no route out); an internet gateway; one NAT gateway (or one per
//! zone); route tables; security groups with explicit ingress and egress; gateway endpoints
//! for S3 and DynamoDB.
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
//! [`Network::restrict_default_group`]).
//!
//! Teardown follows the order AWS enforces: routes, NAT gateways (waited until deleted, as
//! their ENIs hold the subnets and their EIPs), EIPs, the IGW (it cannot be detached while a
//! public address in the VPC is mapped), endpoints, the ENIs deleted Lambda functions leave
//! behind (see [`Network::remove_lambda_enis`]), subnets, route tables, security group rules
//! that reference other groups, the groups, and last the VPC.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState,
    NetworkInterfaceStatus, NetworkInterfaceType, PrefixListId, ResourceType, SecurityGroup,
    SecurityGroupRule, Tag, TagSpecification, UserIdGroupPair, VpcEndpointType,
};
use serde_json::json;

use crate::aws::{AwsError, AwsErrorKind, AwsResultExt, NotFoundOk};
use crate::config::NatMode;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{Found, Step, StepCtx};

pub const VPC: &str = "ec2:vpc";
pub const SUBNET: &str = "ec2:subnet";
pub const IGW: &str = "ec2:internet-gateway";
pub const EIP: &str = "ec2:elastic-ip";
pub const NAT: &str = "ec2:nat-gateway";
pub const ROUTE_TABLE: &str = "ec2:route-table";
pub const ASSOCIATION: &str = "ec2:route-table-association";
pub const ROUTE: &str = "ec2:route";
pub const SG: &str = "ec2:security-group";
pub const SG_RULE: &str = "ec2:security-group-rule";
pub const ENDPOINT: &str = "ec2:vpc-endpoint";

/// Output keys other steps read.
pub const OUT_VPC_ID: &str = "vpc_id";
pub const OUT_VPC_CIDR: &str = "vpc_cidr";
/// Route tables of the private and isolated subnets.
pub const OUT_INTERNAL_ROUTE_TABLE_IDS: &str = "internal_route_table_ids";

/// Port the database listens on (Aurora PostgreSQL).
pub const DB_PORT: i32 = 5432;
/// HTTPS: AWS APIs, image registries, interface endpoints.
pub const HTTPS_PORT: i32 = 443;

/// CloudFront's AWS-managed prefix list of the addresses its edge servers connect to origins
/// from. The ALB is reached only through CloudFront, so this list is the ALB's only source.
pub const CLOUDFRONT_PREFIX_LIST: &str = "com.amazonaws.global.cloudfront.origin-facing";

/// `{service name: security group ID}`: the group of each service's tasks.
pub const OUT_SERVICE_SG_IDS: &str = "sg_service_ids";
/// The ID of [`CLOUDFRONT_PREFIX_LIST`] in the stack's region.
pub const OUT_CLOUDFRONT_PREFIX_LIST_ID: &str = "cloudfront_prefix_list_id";
/// The shared group of every service's tasks of earlier versions: removed by `up` once no
/// task uses it any more.
const LEGACY_OUT_APP_SG: &str = "sg_app_id";

/// How long to wait for a NAT gateway (AWS: 1-2 minutes to create, about 1 to delete).
const NAT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct Network;

/// What a route leads through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Igw,
    Nat,
    Peering,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Igw => "igw",
            Via::Nat => "nat",
            Via::Peering => "pcx",
        }
    }
}

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

/// The security groups, by role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Alb,
    /// The tasks of one ECS service (by service name): a group per service, so that each
    /// admits exactly its callers.
    Service(String),
    Db,
    Lambda,
    /// Interface VPC endpoints (only with `network.interface_endpoints`).
    Endpoint,
}

impl Role {
    /// The groups that are not per service (each published as `sg_<role>_id`).
    pub const FIXED: [Role; 4] = [Role::Alb, Role::Db, Role::Lambda, Role::Endpoint];

    /// The groups of the stack `cfg` describes.
    pub fn of(cfg: &crate::config::Config) -> Vec<Role> {
        let mut v = vec![Role::Alb];
        v.extend(
            cfg.services
                .0
                .iter()
                .map(|s| Role::Service(s.name.0.clone())),
        );
        v.push(Role::Db);
        v.push(Role::Lambda);
        if !cfg.network.interface_endpoints.is_empty() {
            v.push(Role::Endpoint);
        }
        v
    }

    /// The part of the group name between `secgroup-` and the suffix. `svc-` keeps service
    /// groups apart from the fixed ones whatever the service is called.
    pub fn purpose(&self) -> String {
        match self {
            Role::Alb => "alb".into(),
            Role::Service(s) => format!("svc-{s}"),
            Role::Db => "db".into(),
            Role::Lambda => "lambda".into(),
            Role::Endpoint => "endpoints".into(),
        }
    }

    /// The group's name: `secgroup-<purpose>-<suffix>` (group names may not start with
    /// `sg-`).
    pub fn group_name(&self, names: &crate::naming::Names) -> String {
        names.with_purpose("secgroup", &self.purpose())
    }

    /// Output key holding the group ID; service groups are in [`OUT_SERVICE_SG_IDS`].
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

/// Where a rule found in AWS points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cidr(String),
    Group(String),
    PrefixList(String),
}

impl Target {
    /// The peer of a described rule (`None` for peers the stack never uses, e.g. IPv6).
    pub fn of(r: &SecurityGroupRule) -> Option<Target> {
        if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
            return Some(Target::Group(g.to_string()));
        }
        if let Some(p) = r.prefix_list_id() {
            return Some(Target::PrefixList(p.to_string()));
        }
        r.cidr_ipv4().map(|c| Target::Cidr(c.to_string()))
    }
}

/// A [`RuleSpec`] with the IDs of this stack filled in.
struct Resolved<'a> {
    spec: &'a RuleSpec,
    /// The rule's name (and `Name` tag): `<group name> <direction> tcp/<port> <peer>`.
    name: String,
    group_id: String,
    target: Target,
}

impl Resolved<'_> {
    fn matches(&self, r: &SecurityGroupRule) -> bool {
        r.group_id() == Some(self.group_id.as_str())
            && r.is_egress() == Some(self.spec.egress)
            && r.ip_protocol() == Some("tcp")
            && r.from_port() == Some(self.spec.port)
            && r.to_port() == Some(self.spec.to_port)
            && Target::of(r).as_ref() == Some(&self.target)
    }
}

/// A group of this stack the config no longer asks for.
#[derive(Debug, Clone)]
struct StaleGroup {
    id: String,
    name: String,
    /// Network interfaces still using it (ECS tasks, Lambda or endpoint ENIs).
    enis: Vec<String>,
}

/// What `up` does with a rule of the stack's groups that no [`RuleSpec`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unwanted {
    Revoke,
    Keep,
    /// Keep, and record it so that `down` revokes it.
    KeepAndRecord,
}

/// The allow-all egress rule AWS gives every new group.
fn is_allow_all_egress(r: &SecurityGroupRule) -> bool {
    r.is_egress() == Some(true)
        && r.ip_protocol() == Some("-1")
        && r.cidr_ipv4() == Some("0.0.0.0/0")
}

/// Whether a rule carries this stack's tag (every rule the stack creates does).
fn rule_is_ours(ctx: &StepCtx, r: &SecurityGroupRule) -> bool {
    r.tags()
        .iter()
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()))
}

/// A described rule's `Name` tag, else a description of it.
fn existing_rule_label(r: &SecurityGroupRule) -> String {
    if let Some(n) = r
        .tags()
        .iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
    {
        return n.to_string();
    }
    let peer = match Target::of(r) {
        Some(Target::Cidr(c)) => c,
        Some(Target::Group(g)) => g,
        Some(Target::PrefixList(p)) => p,
        None => "?".into(),
    };
    format!(
        "{} {} {}/{} {peer} ({})",
        r.group_id().unwrap_or_default(),
        if r.is_egress() == Some(true) {
            "egress"
        } else {
            "ingress"
        },
        r.ip_protocol().unwrap_or_default(),
        r.from_port().unwrap_or_default(),
        r.security_group_rule_id().unwrap_or_default()
    )
}

/// The fate of an unwanted rule `r`: in a group the config asks for (`wanted`) it is revoked
/// when it is ours (or the allow-all egress rule), unless it references a group that ENIs
/// still use (`in_use`: its tasks need the path until they move); in a group about to be
/// deleted (`doomed`) only a reference to another doomed group is revoked (it would block
/// that group's deletion; the rest goes with the group); in a group still in use everything
/// stays.
fn unwanted_action(
    r: &SecurityGroupRule,
    wanted: &BTreeSet<&str>,
    in_use: &BTreeSet<&str>,
    doomed: &BTreeSet<&str>,
    ours: bool,
) -> Unwanted {
    let group = r.group_id().unwrap_or_default();
    let peer = match Target::of(r) {
        Some(Target::Group(g)) => Some(g),
        _ => None,
    };
    let refs = |set: &BTreeSet<&str>| peer.as_deref().is_some_and(|p| set.contains(p));
    let keep = if ours {
        Unwanted::KeepAndRecord
    } else {
        Unwanted::Keep
    };
    if wanted.contains(group) {
        if is_allow_all_egress(r) {
            Unwanted::Revoke
        } else if refs(in_use) {
            keep
        } else if ours {
            Unwanted::Revoke
        } else {
            Unwanted::Keep
        }
    } else if doomed.contains(group) {
        if refs(doomed) && peer.as_deref() != Some(group) {
            Unwanted::Revoke
        } else {
            Unwanted::Keep
        }
    } else {
        keep
    }
}

pub(crate) fn filter(name: &str, value: impl Into<String>) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// Whether an ENI is one of Lambda's VPC ENIs: interface type `lambda`, or (older ENIs) the
/// description `AWS Lambda VPC ENI...` or a requester-managed ENI whose requester is Lambda.
pub fn is_lambda_eni(eni: &aws_sdk_ec2::types::NetworkInterface) -> bool {
    eni.interface_type() == Some(&NetworkInterfaceType::Lambda)
        || eni
            .description()
            .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI"))
        || (eni.requester_managed() == Some(true)
            && eni
                .requester_id()
                .is_some_and(|r| r.to_ascii_lowercase().contains("lambda")))
}

impl Network {
    /// The stack's tags (and `Name`) as EC2 tags.
    pub(crate) fn ec2_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
        ctx.tags(Some(name))
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    pub(crate) fn tag_spec(ctx: &StepCtx, rt: ResourceType, name: &str) -> TagSpecification {
        TagSpecification::builder()
            .resource_type(rt)
            .set_tags(Some(Self::ec2_tags(ctx, name)))
            .build()
    }

    /// Whether a resource's tags mark it as this stack's resource `name`. Server-side filters
    /// narrow the search, but every match is checked here too: moto, for one, ignores tag
    /// filters on DescribeNatGateways when a `state` filter is also given, and adopting
    /// another stack's resource would be far worse than a duplicate.
    pub(crate) fn is_ours(ctx: &StepCtx, tags: &[Tag], name: &str) -> bool {
        let tag = |k: &str| {
            tags.iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
        };
        tag("Name") == Some(name) && tag(STACK_TAG) == Some(ctx.suffix())
    }

    /// Filters that find this stack's resource with the given Name tag.
    pub(crate) fn named(ctx: &StepCtx, name: &str) -> Vec<Filter> {
        vec![
            filter("tag:Name", name),
            filter(&format!("tag:{STACK_TAG}"), ctx.suffix()),
        ]
    }

    /// The zones to use: from config, or the region's first `az_count` available zones.
    async fn zones(&self, ctx: &StepCtx) -> Result<Vec<String>> {
        let net = &ctx.cfg().network;
        let listed = net.availability_zones.as_deref();
        Self::zones_in(ctx, usize::from(net.az_count.0), listed, "network").await
    }

    /// `listed` (each checked to be an available zone of the context's region), else the
    /// region's first `want` available zones. `section` names the config section in errors.
    pub(crate) async fn zones_in(
        ctx: &StepCtx,
        want: usize,
        listed: Option<&[String]>,
        section: &str,
    ) -> Result<Vec<String>> {
        let out = ctx
            .aws()
            .ec2()
            .describe_availability_zones()
            .filters(filter("state", "available"))
            .send()
            .await
            .aws("ec2:DescribeAvailabilityZones", ctx.region())?;
        let mut available: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        available.sort();
        if let Some(listed) = listed {
            if let Some(bad) = listed.iter().find(|z| !available.contains(z)) {
                bail!(
                    "{section}.availability_zones: `{bad}` is not an available zone of {}; \
                     available: {}",
                    ctx.region(),
                    available.join(", ")
                );
            }
            return Ok(listed.to_vec());
        }
        if available.len() < want {
            bail!(
                "region {} has {} available zones, {section}.az_count asks for {want}",
                ctx.region(),
                available.len()
            );
        }
        available.truncate(want);
        Ok(available)
    }

    async fn ensure_vpc(&self, ctx: &StepCtx) -> Result<Found> {
        let name = ctx.names().of("vpc");
        let cidr = ctx.cfg().network.cidr.0.to_string();
        Self::ensure_vpc_named(ctx, &name, &cidr, "network.cidr").await
    }

    /// The VPC `name` with block `cidr` (`field`: the config field it comes from, for the
    /// error when an existing VPC has another block), DNS support and hostnames on.
    pub(crate) async fn ensure_vpc_named(
        ctx: &StepCtx,
        name: &str,
        cidr: &str,
        field: &str,
    ) -> Result<Found> {
        let ec2 = ctx.aws().ec2();
        let name = name.to_string();
        ctx.ensure(
            VPC,
            &name,
            || async {
                let out = ec2
                    .describe_vpcs()
                    .set_filters(Some(Self::named(ctx, &name)))
                    .send()
                    .await
                    .aws("ec2:DescribeVpcs", &name)?;
                let vpc = out
                    .vpcs()
                    .iter()
                    .find(|v| Self::is_ours(ctx, v.tags(), &name));
                let found = vpc.and_then(|v| v.vpc_id()).map(Found::new);
                if let (Some(v), Some(got)) = (&found, vpc.and_then(|v| v.cidr_block())) {
                    if got != cidr {
                        bail!(
                            "VPC {name} ({}) in {} exists with CIDR {got}, but {field} is \
                             {cidr}; a VPC's CIDR cannot change: run `down` first or keep the \
                             old CIDR",
                            v.id,
                            ctx.region()
                        );
                    }
                }
                Ok(found)
            },
            || async {
                let out = ec2
                    .create_vpc()
                    .cidr_block(cidr)
                    .tag_specifications(Self::tag_spec(ctx, ResourceType::Vpc, &name))
                    .send()
                    .await
                    .aws("ec2:CreateVpc", &name)?;
                let id = out
                    .vpc()
                    .and_then(|v| v.vpc_id())
                    .context("CreateVpc returned no ID")?;
                ctx.record(VPC, &name, &Found::new(id))?;
                // Interface endpoints and service discovery need DNS hostnames; the two
                // attributes must be set in separate calls.
                ec2.modify_vpc_attribute()
                    .vpc_id(id)
                    .enable_dns_support(AttributeBooleanValue::builder().value(true).build())
                    .send()
                    .await
                    .aws("ec2:ModifyVpcAttribute", id)?;
                ec2.modify_vpc_attribute()
                    .vpc_id(id)
                    .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
                    .send()
                    .await
                    .aws("ec2:ModifyVpcAttribute", id)?;
                Ok(Found::new(id))
            },
        )
        .await
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
        Self::ensure_subnet_named(ctx, vpc, &name, &cidr, zone, tier.as_str()).await
    }

    /// The subnet `name` (block `cidr`, in `zone`) of `vpc`, recorded with its tier and zone.
    pub(crate) async fn ensure_subnet_named(
        ctx: &StepCtx,
        vpc: &Found,
        name: &str,
        cidr: &str,
        zone: &str,
        tier: &str,
    ) -> Result<Found> {
        let ec2 = ctx.aws().ec2();
        ctx.ensure(
            SUBNET,
            name,
            || async {
                if vpc.is_pending() {
                    return Ok(None);
                }
                let mut filters = Self::named(ctx, name);
                filters.push(filter("vpc-id", &vpc.id));
                let out = ec2
                    .describe_subnets()
                    .set_filters(Some(filters))
                    .send()
                    .await
                    .aws("ec2:DescribeSubnets", name)?;
                Ok(out
                    .subnets()
                    .iter()
                    .find(|s| {
                        Self::is_ours(ctx, s.tags(), name) && s.vpc_id() == Some(vpc.id.as_str())
                    })
                    .and_then(|s| s.subnet_id())
                    .map(|id| Found::new(id).attr("tier", tier).attr("az", zone)))
            },
            || async {
                let out = ec2
                    .create_subnet()
                    .vpc_id(&vpc.id)
                    .cidr_block(cidr)
                    .availability_zone(zone)
                    .tag_specifications(Self::tag_spec(ctx, ResourceType::Subnet, name))
                    .send()
                    .await
                    .aws("ec2:CreateSubnet", name)?;
                let id = out
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .context("CreateSubnet returned no ID")?;
                Ok(Found::new(id).attr("tier", tier).attr("az", zone))
            },
        )
        .await
    }

    async fn ensure_igw(&self, ctx: &StepCtx, vpc: &Found) -> Result<Found> {
        let ec2 = ctx.aws().ec2();
        let name = ctx.names().of("igw");
        // Attached already (found attached, or attached as part of creating it).
        let attached = std::sync::atomic::AtomicBool::new(false);
        let igw = ctx
            .ensure(
                IGW,
                &name,
                || async {
                    let out = ec2
                        .describe_internet_gateways()
                        .set_filters(Some(Self::named(ctx, &name)))
                        .send()
                        .await
                        .aws("ec2:DescribeInternetGateways", &name)?;
                    let ours = out
                        .internet_gateways()
                        .iter()
                        .find(|g| Self::is_ours(ctx, g.tags(), &name));
                    Ok(ours.map(|g| {
                        attached.store(
                            g.attachments()
                                .iter()
                                .any(|a| a.vpc_id() == Some(vpc.id.as_str())),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        Found::new(g.internet_gateway_id().unwrap_or_default())
                            .attr("vpc_id", &vpc.id)
                    }))
                },
                || async {
                    let out = ec2
                        .create_internet_gateway()
                        .tag_specifications(Self::tag_spec(
                            ctx,
                            ResourceType::InternetGateway,
                            &name,
                        ))
                        .send()
                        .await
                        .aws("ec2:CreateInternetGateway", &name)?;
                    let id = out
                        .internet_gateway()
                        .and_then(|g| g.internet_gateway_id())
                        .context("CreateInternetGateway returned no ID")?;
                    let found = Found::new(id).attr("vpc_id", &vpc.id);
                    ctx.record(IGW, &name, &found)?;
                    attached.store(true, std::sync::atomic::Ordering::Relaxed);
                    ec2.attach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(&vpc.id)
                        .send()
                        .await
                        .aws("ec2:AttachInternetGateway", id)?;
                    Ok(found)
                },
            )
            .await?;
        if !attached.load(std::sync::atomic::Ordering::Relaxed)
            && !igw.is_pending()
            && !vpc.is_pending()
        {
            ctx.change(IGW, &name, "attach to the VPC", || async {
                ec2.attach_internet_gateway()
                    .internet_gateway_id(&igw.id)
                    .vpc_id(&vpc.id)
                    .send()
                    .await
                    .aws("ec2:AttachInternetGateway", &igw.id)?;
                Ok(())
            })
            .await?;
        }
        Ok(igw)
    }

    /// An EIP and a NAT gateway in a public subnet; waits until the NAT gateway is available,
    /// since routes through a pending NAT gateway black-hole traffic.
    async fn ensure_nat(&self, ctx: &StepCtx, public_subnet: &Found, zone: &str) -> Result<Found> {
        let ec2 = ctx.aws().ec2();
        let letter = zone.chars().last().unwrap_or('x');
        let eip_name = ctx.names().with_purpose("eip", &format!("nat-{letter}"));
        let nat_name = ctx.names().with_purpose("nat", &letter.to_string());

        let eip = ctx
            .ensure(
                EIP,
                &eip_name,
                || async {
                    let out = ec2
                        .describe_addresses()
                        .set_filters(Some(Self::named(ctx, &eip_name)))
                        .send()
                        .await
                        .aws("ec2:DescribeAddresses", &eip_name)?;
                    Ok(out
                        .addresses()
                        .iter()
                        .find(|a| Self::is_ours(ctx, a.tags(), &eip_name))
                        .and_then(|a| a.allocation_id())
                        .map(Found::new))
                },
                || async {
                    let out = ec2
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(Self::tag_spec(ctx, ResourceType::ElasticIp, &eip_name))
                        .send()
                        .await
                        .aws("ec2:AllocateAddress", &eip_name)?;
                    Ok(Found::new(
                        out.allocation_id()
                            .context("AllocateAddress returned no ID")?,
                    ))
                },
            )
            .await?;

        let mut state = None;
        let nat = ctx
            .ensure(
                NAT,
                &nat_name,
                || async {
                    if public_subnet.is_pending() {
                        return Ok(None);
                    }
                    // Deleted NAT gateways stay visible for about an hour; only live ones count.
                    let mut filters = Self::named(ctx, &nat_name);
                    filters.push(
                        Filter::builder()
                            .name("state")
                            .values("pending")
                            .values("available")
                            .build(),
                    );
                    let out = ec2
                        .describe_nat_gateways()
                        .set_filter(Some(filters))
                        .send()
                        .await
                        .aws("ec2:DescribeNatGateways", &nat_name)?;
                    let live = [NatGatewayState::Pending, NatGatewayState::Available];
                    let ours = out.nat_gateways().iter().find(|n| {
                        Self::is_ours(ctx, n.tags(), &nat_name)
                            && n.state().is_some_and(|s| live.contains(s))
                    });
                    Ok(ours.map(|n| {
                        state = n.state().cloned();
                        Found::new(n.nat_gateway_id().unwrap_or_default())
                            .attr("allocation_id", &eip.id)
                            .attr("subnet_id", &public_subnet.id)
                    }))
                },
                || async {
                    let out = ec2
                        .create_nat_gateway()
                        .subnet_id(&public_subnet.id)
                        .allocation_id(&eip.id)
                        .tag_specifications(Self::tag_spec(
                            ctx,
                            ResourceType::Natgateway,
                            &nat_name,
                        ))
                        .send()
                        .await
                        .aws("ec2:CreateNatGateway", &nat_name)?;
                    let id = out
                        .nat_gateway()
                        .and_then(|n| n.nat_gateway_id())
                        .context("CreateNatGateway returned no ID")?;
                    Ok(Found::new(id)
                        .attr("allocation_id", &eip.id)
                        .attr("subnet_id", &public_subnet.id))
                },
            )
            .await?;
        if !nat.is_pending() && state != Some(NatGatewayState::Available) {
            self.wait_nat(ctx, &nat.id, NatGatewayState::Available)
                .await?;
        }
        Ok(nat)
    }

    /// Waits for, and deletes, the ENIs VPC-attached Lambda functions left in the VPC.
    ///
    /// Lambda's Hyperplane ENIs (interface type `lambda`, requester `...:AWSLambdaVPCENI...`,
    /// description `AWS Lambda VPC ENI-<function>-...`) outlive the function for 5 to 30
    /// minutes on AWS, and while they exist AWS refuses to delete their subnets and security
    /// groups. `available` ones are deleted at once; `in-use` ones (a function being deleted,
    /// or one not managed by this stack) are waited for, up to
    /// `timeouts.dependency_violation_secs`; then the error names the ENIs still held.
    pub(crate) async fn remove_lambda_enis(ctx: &StepCtx, vpc_id: &str) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let timeout = Duration::from_secs(ctx.cfg().timeouts.dependency_violation_secs.0);
        let held = std::sync::Mutex::new(Vec::<String>::new());
        let result = ctx
            .wait_for(
                &format!("the Lambda ENIs in {vpc_id} to be released"),
                timeout,
                || async {
                    let out = ec2
                        .describe_network_interfaces()
                        .filters(filter("vpc-id", vpc_id))
                        .send()
                        .await
                        .aws("ec2:DescribeNetworkInterfaces", vpc_id)?;
                    let mut still = Vec::new();
                    for eni in out.network_interfaces().iter().filter(|e| is_lambda_eni(e)) {
                        let id = eni.network_interface_id().unwrap_or_default();
                        if eni.status() == Some(&NetworkInterfaceStatus::Available) {
                            ctx.check_cancelled()?;
                            match ec2
                                .delete_network_interface()
                                .network_interface_id(id)
                                .send()
                                .await
                                .aws("ec2:DeleteNetworkInterface", id)
                            {
                                Ok(_) => {
                                    ctx.sh.reporter.message(
                                        ctx.step,
                                        &format!(
                                            "deleted Lambda ENI {id} left by a deleted function"
                                        ),
                                    );
                                    continue;
                                }
                                Err(e) if e.is_not_found() => continue,
                                // Taken again or still being released: wait for it.
                                Err(e) if e.code.as_deref() == Some("InvalidParameterValue") => {}
                                Err(e) if e.kind() == AwsErrorKind::DependencyViolation => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                        still.push(format!(
                            "{id} ({}, {})",
                            eni.status().map(|s| s.as_str()).unwrap_or("?"),
                            eni.description().unwrap_or_default()
                        ));
                    }
                    let done = still.is_empty();
                    *held.lock().unwrap_or_else(|p| p.into_inner()) = still;
                    Ok(done.then_some(()))
                },
            )
            .await;
        result.map_err(|e| {
            let held = held.into_inner().unwrap_or_else(|p| p.into_inner());
            if held.is_empty() {
                e
            } else {
                e.context(format!(
                    "Lambda ENIs still hold subnets and security groups of {vpc_id}: {}; AWS \
                     releases them up to ~30 minutes after their function is deleted: run \
                     `down` again later, or raise timeouts.dependency_violation_secs",
                    held.join(", ")
                ))
            }
        })
    }

    /// Waits until a NAT gateway reaches `target` (`available` or `deleted`; a vanished one
    /// counts as deleted).
    async fn wait_nat(&self, ctx: &StepCtx, id: &str, target: NatGatewayState) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        ctx.wait_for(
            &format!("NAT gateway {id} to be {}", target.as_str()),
            NAT_TIMEOUT,
            || async {
                let out = ec2
                    .describe_nat_gateways()
                    .nat_gateway_ids(id)
                    .send()
                    .await
                    .aws("ec2:DescribeNatGateways", id)
                    .not_found_ok()?;
                let state = out
                    .as_ref()
                    .and_then(|o| o.nat_gateways().first())
                    .and_then(|n| n.state().cloned());
                match (state, &target) {
                    (None, NatGatewayState::Deleted) => Ok(Some(())),
                    (Some(s), t) if s == *t => Ok(Some(())),
                    (Some(NatGatewayState::Failed), _) => {
                        let reason = out
                            .as_ref()
                            .and_then(|o| o.nat_gateways().first())
                            .and_then(|n| n.failure_message())
                            .unwrap_or("no reason given");
                        bail!("NAT gateway {id} failed: {reason}")
                    }
                    (None, _) => bail!("NAT gateway {id} disappeared"),
                    _ => Ok(None),
                }
            },
        )
        .await
    }

    /// Deletes the recorded routes (in the context's region).
    pub(crate) async fn delete_routes(ctx: &StepCtx) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let attr = |rec: &ResourceRecord, k: &str| rec.attrs.get(k).cloned().unwrap_or_default();
        ctx.delete_recorded(ROUTE, |rec| async move {
            ec2.delete_route()
                .route_table_id(attr(&rec, "route_table_id"))
                .destination_cidr_block(attr(&rec, "destination"))
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteRoute", &rec.id)
        })
        .await
    }

    /// Removes the recorded subnet associations of route tables.
    pub(crate) async fn delete_associations(ctx: &StepCtx) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        ctx.delete_recorded(ASSOCIATION, |rec| async move {
            ec2.disassociate_route_table()
                .association_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DisassociateRouteTable", &rec.id)
        })
        .await
    }

    /// Deletes the recorded subnets, then the route tables (a table with associations left
    /// cannot be deleted).
    pub(crate) async fn delete_subnets_and_route_tables(ctx: &StepCtx) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        ctx.delete_recorded(SUBNET, |rec| async move {
            ec2.delete_subnet()
                .subnet_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteSubnet", &rec.id)
        })
        .await?;
        ctx.delete_recorded(ROUTE_TABLE, |rec| async move {
            ec2.delete_route_table()
                .route_table_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteRouteTable", &rec.id)
        })
        .await
    }

    /// Deletes the recorded VPCs, retrying while something still holds them.
    pub(crate) async fn delete_vpcs(ctx: &StepCtx) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        ctx.delete_recorded(VPC, |rec| async move {
            ec2.delete_vpc()
                .vpc_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteVpc", &rec.id)
        })
        .await
    }

    pub(crate) async fn ensure_route_table(
        ctx: &StepCtx,
        vpc: &Found,
        purpose: &str,
    ) -> Result<(Found, Vec<aws_sdk_ec2::types::RouteTable>)> {
        let ec2 = ctx.aws().ec2();
        let name = ctx.names().with_purpose("rt", purpose);
        let mut tables = Vec::new();
        let rt = ctx
            .ensure(
                ROUTE_TABLE,
                &name,
                || async {
                    if vpc.is_pending() {
                        return Ok(None);
                    }
                    let mut filters = Self::named(ctx, &name);
                    filters.push(filter("vpc-id", &vpc.id));
                    let out = ec2
                        .describe_route_tables()
                        .set_filters(Some(filters))
                        .send()
                        .await
                        .aws("ec2:DescribeRouteTables", &name)?;
                    tables = out
                        .route_tables()
                        .iter()
                        .filter(|t| {
                            Self::is_ours(ctx, t.tags(), &name)
                                && t.vpc_id() == Some(vpc.id.as_str())
                        })
                        .cloned()
                        .collect();
                    Ok(tables
                        .first()
                        .and_then(|t| t.route_table_id())
                        .map(Found::new))
                },
                || async {
                    let out = ec2
                        .create_route_table()
                        .vpc_id(&vpc.id)
                        .tag_specifications(Self::tag_spec(ctx, ResourceType::RouteTable, &name))
                        .send()
                        .await
                        .aws("ec2:CreateRouteTable", &name)?;
                    Ok(Found::new(
                        out.route_table()
                            .and_then(|t| t.route_table_id())
                            .context("CreateRouteTable returned no ID")?,
                    ))
                },
            )
            .await?;
        Ok((rt, tables))
    }

    /// Associates subnets with a route table and adds its default route, if any.
    pub(crate) async fn wire_route_table(
        ctx: &StepCtx,
        rt: &Found,
        current: &[aws_sdk_ec2::types::RouteTable],
        subnets: &[&Found],
        default_route: Option<(Via, &Found)>,
    ) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let table = current.first();
        for subnet in subnets {
            let assoc_name = format!("{} -> {}", subnet.id, rt.id);
            let existing = table.and_then(|t| {
                t.associations()
                    .iter()
                    .find(|a| a.subnet_id() == Some(subnet.id.as_str()))
                    .and_then(|a| a.route_table_association_id())
                    .map(|id| {
                        Found::new(id)
                            .attr("route_table_id", &rt.id)
                            .attr("subnet_id", &subnet.id)
                    })
            });
            ctx.ensure(
                ASSOCIATION,
                &assoc_name,
                || async { Ok(existing) },
                || async {
                    let out = ec2
                        .associate_route_table()
                        .route_table_id(&rt.id)
                        .subnet_id(&subnet.id)
                        .send()
                        .await
                        .aws("ec2:AssociateRouteTable", &assoc_name)?;
                    Ok(Found::new(
                        out.association_id()
                            .context("AssociateRouteTable returned no ID")?,
                    )
                    .attr("route_table_id", &rt.id)
                    .attr("subnet_id", &subnet.id))
                },
            )
            .await?;
        }
        if let Some((via, target)) = default_route {
            let routes = table.map(|t| t.routes()).unwrap_or_default();
            Self::ensure_route(ctx, &rt.id, routes, "0.0.0.0/0", via, target).await?;
        }
        Ok(())
    }

    /// A route to `dest` in the route table `rt_id` (whose current routes are `routes`)
    /// through `target`; one to `dest` that leads elsewhere (e.g. `nat_gateways` went from
    /// single to per-az, or a NAT gateway or peering was replaced) is pointed at `target`.
    pub(crate) async fn ensure_route(
        ctx: &StepCtx,
        rt_id: &str,
        routes: &[aws_sdk_ec2::types::Route],
        dest: &str,
        via: Via,
        target: &Found,
    ) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let route_id = format!("{rt_id}|{dest}");
        let route_name = format!("{dest} via {} in {rt_id}", via.as_str());
        let current = routes
            .iter()
            .find(|r| r.destination_cidr_block() == Some(dest));
        let points_at_target = current.is_some_and(|r| {
            let t = Some(target.id.as_str());
            r.gateway_id() == t || r.nat_gateway_id() == t || r.vpc_peering_connection_id() == t
        });
        let found = || {
            Found::new(&route_id)
                .attr("route_table_id", rt_id)
                .attr("destination", dest)
        };
        ctx.ensure(
            ROUTE,
            &route_name,
            || async { Ok(current.is_some().then(found)) },
            || async {
                let req = ec2
                    .create_route()
                    .route_table_id(rt_id)
                    .destination_cidr_block(dest);
                let req = match via {
                    Via::Nat => req.nat_gateway_id(&target.id),
                    Via::Igw => req.gateway_id(&target.id),
                    Via::Peering => req.vpc_peering_connection_id(&target.id),
                };
                req.send().await.aws("ec2:CreateRoute", &route_id)?;
                Ok(found())
            },
        )
        .await?;
        if current.is_some() && !points_at_target && !target.is_pending() {
            ctx.change(
                ROUTE,
                &route_name,
                &format!("route through {}", target.id),
                || async {
                    let req = ec2
                        .replace_route()
                        .route_table_id(rt_id)
                        .destination_cidr_block(dest);
                    let req = match via {
                        Via::Nat => req.nat_gateway_id(&target.id),
                        Via::Igw => req.gateway_id(&target.id),
                        Via::Peering => req.vpc_peering_connection_id(&target.id),
                    };
                    req.send().await.aws("ec2:ReplaceRoute", &route_id)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Every security group in `vpc` (none while the VPC is a plan-mode placeholder).
    async fn vpc_groups(ctx: &StepCtx, vpc: &Found) -> Result<Vec<SecurityGroup>> {
        if vpc.is_pending() {
            return Ok(Vec::new());
        }
        let mut pages = ctx
            .aws()
            .ec2()
            .describe_security_groups()
            .filters(filter("vpc-id", &vpc.id))
            .into_paginator()
            .send();
        let mut groups = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.aws("ec2:DescribeSecurityGroups", &vpc.id)?;
            groups.extend(
                page.security_groups()
                    .iter()
                    .filter(|g| g.vpc_id() == Some(vpc.id.as_str()))
                    .cloned(),
            );
        }
        Ok(groups)
    }

    /// The groups the config asks for (see [`Role::of`]), found by name among `listed` (the
    /// VPC's groups) or created.
    async fn ensure_security_groups(
        &self,
        ctx: &StepCtx,
        vpc: &Found,
        listed: &[SecurityGroup],
    ) -> Result<BTreeMap<Role, Found>> {
        let ec2 = ctx.aws().ec2();
        let mut groups = BTreeMap::new();
        for role in Role::of(ctx.cfg()) {
            let name = role.group_name(ctx.names());
            let found_of = |id: &str| {
                let f = Found::new(id).attr("vpc_id", &vpc.id);
                match &role {
                    Role::Service(s) => f.attr("service", s),
                    _ => f,
                }
            };
            let sg = ctx
                .ensure(
                    SG,
                    &name,
                    || async {
                        Ok(listed
                            .iter()
                            .find(|g| g.group_name() == Some(name.as_str()))
                            .and_then(|g| g.group_id())
                            .map(found_of))
                    },
                    || async {
                        let what = match &role {
                            Role::Service(s) => format!("service {s}"),
                            r => r.purpose(),
                        };
                        let out = ec2
                            .create_security_group()
                            .group_name(&name)
                            .description(format!("fintech-infra {what} ({})", ctx.suffix()))
                            .vpc_id(&vpc.id)
                            .tag_specifications(Self::tag_spec(
                                ctx,
                                ResourceType::SecurityGroup,
                                &name,
                            ))
                            .send()
                            .await
                            .aws("ec2:CreateSecurityGroup", &name)?;
                        let id = out
                            .group_id()
                            .context("CreateSecurityGroup returned no ID")?;
                        let found = found_of(id);
                        ctx.record(SG, &name, &found)?;
                        // AWS gives every new group an allow-all egress rule; the stack's
                        // egress is explicit, so remove it as part of creating the group.
                        ec2.revoke_security_group_egress()
                            .group_id(id)
                            .ip_permissions(
                                IpPermission::builder()
                                    .ip_protocol("-1")
                                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                                    .build(),
                            )
                            .send()
                            .await
                            .aws("ec2:RevokeSecurityGroupEgress", id)?;
                        Ok(found)
                    },
                )
                .await?;
            groups.insert(role, sg);
        }
        Ok(groups)
    }

    /// The groups of this stack in the VPC that the config no longer asks for: recorded ones
    /// (a removed service's, the shared `secgroup-app-<suffix>` of earlier versions) and ones
    /// only tagged as this stack's (a state that lost them). Each with the network interfaces
    /// still using it. Records of groups that are gone are dropped.
    async fn stale_groups(
        ctx: &StepCtx,
        vpc: &Found,
        listed: &[SecurityGroup],
        wanted: &BTreeMap<Role, Found>,
    ) -> Result<Vec<StaleGroup>> {
        if vpc.is_pending() {
            return Ok(Vec::new());
        }
        let wanted_ids: BTreeSet<&str> = wanted.values().map(|f| f.id.as_str()).collect();
        let recorded = ctx.records(Some(SG));
        let mut stale = Vec::new();
        for g in listed {
            let (Some(id), Some(name)) = (g.group_id(), g.group_name()) else {
                continue;
            };
            if wanted_ids.contains(id) {
                continue;
            }
            let is_recorded = recorded.iter().any(|r| r.id == id);
            let tagged = Self::is_ours(ctx, g.tags(), name) && name.starts_with("secgroup-");
            if !(is_recorded || tagged) {
                // The VPC's default group, or one made by hand: not the stack's to delete.
                continue;
            }
            let enis: Vec<String> = ctx
                .aws()
                .ec2()
                .describe_network_interfaces()
                .filters(filter("group-id", id))
                .send()
                .await
                .aws("ec2:DescribeNetworkInterfaces", id)?
                .network_interfaces()
                .iter()
                .filter_map(|e| e.network_interface_id().map(str::to_string))
                .collect();
            stale.push(StaleGroup {
                id: id.to_string(),
                name: name.to_string(),
                enis,
            });
        }
        // `listed` predates the groups this run created (they are in `wanted`).
        let live: BTreeSet<&str> = listed.iter().filter_map(|g| g.group_id()).collect();
        for rec in recorded {
            let in_this_vpc = rec.attrs.get("vpc_id").is_none_or(|v| *v == vpc.id);
            let gone = !live.contains(rec.id.as_str()) && !wanted_ids.contains(rec.id.as_str());
            if in_this_vpc && gone {
                // Deleted outside the stack: nothing to reconcile, nothing for `down`.
                ctx.forget(SG, &rec.id)?;
            }
        }
        Ok(stale)
    }

    /// The ID of CloudFront's origin-facing prefix list in the region; an error naming the
    /// list when the region (or the emulator) does not have it.
    async fn cloudfront_prefix_list(ctx: &StepCtx) -> Result<String> {
        let out = ctx
            .aws()
            .ec2()
            .describe_managed_prefix_lists()
            .filters(filter("prefix-list-name", CLOUDFRONT_PREFIX_LIST))
            .send()
            .await
            .aws("ec2:DescribeManagedPrefixLists", CLOUDFRONT_PREFIX_LIST)?;
        let lists: Vec<_> = out
            .prefix_lists()
            .iter()
            .filter(|p| p.prefix_list_name() == Some(CLOUDFRONT_PREFIX_LIST))
            .collect();
        // AWS-managed lists are owned by `AWS`; a customer list of the same name would let
        // whoever edits it reach the ALB.
        let list = lists
            .iter()
            .find(|p| p.owner_id() == Some("AWS"))
            .or(lists.first());
        match list.and_then(|p| p.prefix_list_id()) {
            Some(id) => Ok(id.to_string()),
            None => bail!(
                "the AWS-managed prefix list {CLOUDFRONT_PREFIX_LIST} does not exist in {} \
                 (ec2:DescribeManagedPrefixLists filtered by prefix-list-name found none): the \
                 ALB admits only CloudFront's origin-facing servers, through that list, and \
                 cannot be set up without it",
                ctx.region()
            ),
        }
    }

    /// The rules of `group_ids`, in one paginated call.
    async fn group_rules(ctx: &StepCtx, group_ids: &[String]) -> Result<Vec<SecurityGroupRule>> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pages = ctx
            .aws()
            .ec2()
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(group_ids.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        let mut rules = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.aws("ec2:DescribeSecurityGroupRules", group_ids.join(","))?;
            rules.extend(page.security_group_rules().iter().cloned());
        }
        Ok(rules)
    }

    /// Revokes one rule by its ID ("not found" counts as revoked).
    async fn revoke_rule(ctx: &StepCtx, group_id: &str, rule_id: &str, egress: bool) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let r = if egress {
            ec2.revoke_security_group_egress()
                .group_id(group_id)
                .security_group_rule_ids(rule_id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:RevokeSecurityGroupEgress", rule_id)
        } else {
            ec2.revoke_security_group_ingress()
                .group_id(group_id)
                .security_group_rule_ids(rule_id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:RevokeSecurityGroupIngress", rule_id)
        };
        r.not_found_ok()?;
        Ok(())
    }

    /// Security Hub EC2.2: the VPC's default security group allows nothing. AWS gives every
    /// VPC a default group that admits traffic from its own members and allows all egress
    /// (<https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html>); it
    /// cannot be deleted, and anything launched without a group lands in it. Every rule it
    /// has (the defaults, or one added by hand later) is revoked through [`StepCtx::change`],
    /// so `plan` shows it and a second `up` finds nothing to do. Nothing is recorded: the
    /// group goes with the VPC.
    pub(crate) async fn restrict_default_group(ctx: &StepCtx, vpc: &Found) -> Result<()> {
        if vpc.is_pending() {
            return Ok(());
        }
        let out = ctx
            .aws()
            .ec2()
            .describe_security_groups()
            .filters(filter("vpc-id", &vpc.id))
            .filters(filter("group-name", "default"))
            .send()
            .await
            .aws("ec2:DescribeSecurityGroups", &vpc.id)?;
        // Checked here too: emulators may ignore the filters.
        let Some(group_id) = out
            .security_groups()
            .iter()
            .find(|g| g.vpc_id() == Some(vpc.id.as_str()) && g.group_name() == Some("default"))
            .and_then(|g| g.group_id())
            .map(str::to_string)
        else {
            return Ok(());
        };
        let name = format!("default security group {group_id} of {}", vpc.id);
        for r in Self::group_rules(ctx, std::slice::from_ref(&group_id)).await? {
            let Some(rule_id) = r.security_group_rule_id().map(str::to_string) else {
                continue;
            };
            let egress = r.is_egress() == Some(true);
            let what = format!(
                "revoke {} (the default group allows nothing: Security Hub EC2.2)",
                existing_rule_label(&r)
            );
            ctx.change(SG, &name, &what, || {
                Self::revoke_rule(ctx, &group_id, &rule_id, egress)
            })
            .await?;
        }
        Ok(())
    }

    /// Makes the rules of the stack's groups exactly [`rule_specs`]: creates the missing ones,
    /// revokes the ones the config no longer asks for (recorded or tagged as this stack's; a
    /// rule added by hand is left alone, except an allow-all egress rule), then deletes the
    /// `stale` groups nothing uses any more.
    async fn ensure_rules(
        &self,
        ctx: &StepCtx,
        vpc_cidr: &str,
        groups: &BTreeMap<Role, Found>,
        stale: &[StaleGroup],
        prefix_lists: &BTreeMap<&str, String>,
    ) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let specs = rule_specs(ctx.cfg());
        let mut listed_ids: Vec<String> = groups
            .values()
            .filter(|g| !g.is_pending())
            .map(|g| g.id.clone())
            .collect();
        listed_ids.extend(stale.iter().map(|g| g.id.clone()));
        let existing = Self::group_rules(ctx, &listed_ids).await?;

        // Records of rules that no longer exist (revoked by hand, or gone with their group).
        let existing_ids: BTreeSet<&str> = existing
            .iter()
            .filter_map(|r| r.security_group_rule_id())
            .collect();
        let recorded_groups: BTreeSet<String> =
            ctx.records(Some(SG)).into_iter().map(|g| g.id).collect();
        for rec in ctx.records(Some(SG_RULE)) {
            let group = rec.attrs.get("group_id").map(String::as_str).unwrap_or("");
            // Its group's rules were just listed, or its group is no longer the stack's.
            let group_known =
                listed_ids.iter().any(|g| g == group) || !recorded_groups.contains(group);
            if group_known && !existing_ids.contains(rec.id.as_str()) {
                ctx.forget(SG_RULE, &rec.id)?;
            }
        }
        let recorded: BTreeSet<String> = ctx
            .records(Some(SG_RULE))
            .into_iter()
            .map(|r| r.id)
            .collect();

        let resolved: Vec<Resolved> = specs
            .iter()
            .map(|spec| {
                let target = match &spec.peer {
                    Peer::Cidr(c) => Target::Cidr(c.to_string()),
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
                Resolved {
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
                    spec,
                    target,
                }
            })
            .collect();

        let wanted_groups: BTreeSet<&str> = groups.values().map(|g| g.id.as_str()).collect();
        let in_use: BTreeSet<&str> = stale
            .iter()
            .filter(|g| !g.enis.is_empty())
            .map(|g| g.id.as_str())
            .collect();
        let doomed: BTreeSet<&str> = stale
            .iter()
            .filter(|g| g.enis.is_empty())
            .map(|g| g.id.as_str())
            .collect();
        let mut revoke: Vec<&SecurityGroupRule> = Vec::new();
        for r in &existing {
            if resolved.iter().any(|w| w.matches(r)) {
                continue;
            }
            let id = r.security_group_rule_id().unwrap_or_default();
            let ours = recorded.contains(id) || rule_is_ours(ctx, r);
            match unwanted_action(r, &wanted_groups, &in_use, &doomed, ours) {
                Unwanted::Revoke => revoke.push(r),
                Unwanted::Keep => {}
                Unwanted::KeepAndRecord => {
                    // Kept while a group it references (or its own) is still in use; recorded
                    // so that `down` revokes it before deleting that group.
                    let found = Found::new(id)
                        .attr("group_id", r.group_id().unwrap_or_default())
                        .attr("egress", r.is_egress().unwrap_or_default().to_string());
                    ctx.record(SG_RULE, &existing_rule_label(r), &found)?;
                }
            }
        }
        // Rules that reference a prefix list first: AWS counts each as the list's max entries
        // (55 for CloudFront's) against the 60-rule quota, so a new one fits only once the old
        // one is gone (the ALB's port moving from 80 to 443). Other rules are revoked after
        // the new ones exist, so that no path is cut in between.
        let (heavy, light): (Vec<&SecurityGroupRule>, Vec<&SecurityGroupRule>) = revoke
            .into_iter()
            .partition(|r| r.prefix_list_id().is_some());
        self.revoke_unwanted(ctx, &heavy).await?;

        for w in &resolved {
            let found = existing.iter().find(|r| w.matches(r));
            let existing_found = found.and_then(|r| r.security_group_rule_id()).map(|id| {
                Found::new(id)
                    .attr("group_id", &w.group_id)
                    .attr("egress", w.spec.egress.to_string())
            });
            let spec = w.spec;
            ctx.ensure(
                SG_RULE,
                &w.name,
                || async { Ok(existing_found) },
                || async {
                    let description = spec.description.as_str();
                    let perm = IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(spec.port)
                        .to_port(spec.to_port);
                    let perm = match &w.target {
                        Target::Cidr(c) => perm.ip_ranges(
                            IpRange::builder()
                                .cidr_ip(c)
                                .description(description)
                                .build(),
                        ),
                        Target::Group(g) => perm.user_id_group_pairs(
                            UserIdGroupPair::builder()
                                .group_id(g)
                                .description(description)
                                .build(),
                        ),
                        Target::PrefixList(p) => perm.prefix_list_ids(
                            PrefixListId::builder()
                                .prefix_list_id(p)
                                .description(description)
                                .build(),
                        ),
                    };
                    let tags = Self::tag_spec(ctx, ResourceType::SecurityGroupRule, &w.name);
                    let ids: Vec<String> = if spec.egress {
                        ec2.authorize_security_group_egress()
                            .group_id(&w.group_id)
                            .ip_permissions(perm.build())
                            .tag_specifications(tags)
                            .send()
                            .await
                            .aws("ec2:AuthorizeSecurityGroupEgress", &w.name)?
                            .security_group_rules()
                            .iter()
                            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
                            .collect()
                    } else {
                        ec2.authorize_security_group_ingress()
                            .group_id(&w.group_id)
                            .ip_permissions(perm.build())
                            .tag_specifications(tags)
                            .send()
                            .await
                            .aws("ec2:AuthorizeSecurityGroupIngress", &w.name)?
                            .security_group_rules()
                            .iter()
                            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
                            .collect()
                    };
                    let id = ids.into_iter().next().unwrap_or_else(|| w.name.clone());
                    Ok(Found::new(id)
                        .attr("group_id", &w.group_id)
                        .attr("egress", spec.egress.to_string()))
                },
            )
            .await?;
        }

        self.revoke_unwanted(ctx, &light).await?;

        for g in stale {
            if !g.enis.is_empty() {
                // ECS tasks (or Lambda or endpoint ENIs) still run in it: deleting would be
                // refused (DependencyViolation), and revoking the rules that let them work
                // would cut them off before ECS has moved them to their new group.
                Self::keep_stale(ctx, g, &format!("still used by {}", g.enis.join(", ")))?;
                continue;
            }
            ctx.change(SG, &g.name, "delete: no longer configured", || async {
                let deleted = ec2
                    .delete_security_group()
                    .group_id(&g.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DeleteSecurityGroup", &g.id);
                match deleted {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    // Something took it meanwhile (a task starting, a rule added by hand).
                    Err(e) if e.kind() == AwsErrorKind::DependencyViolation => {
                        return Self::keep_stale(ctx, g, &format!("AWS refused: {e}"));
                    }
                    Err(e) => return Err(e.into()),
                }
                ctx.deleted(SG, &g.id)?;
                // Its own rules went with it.
                for rec in ctx.records(Some(SG_RULE)) {
                    if rec.attrs.get("group_id") == Some(&g.id) {
                        ctx.forget(SG_RULE, &rec.id)?;
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Leaves a group the config no longer asks for in place, recorded with why, and says so.
    fn keep_stale(ctx: &StepCtx, g: &StaleGroup, why: &str) -> Result<()> {
        let note = format!(
            "no longer configured, not deleted yet ({why}); the next `up` or `down` removes it"
        );
        let vpc = ctx
            .records(Some(SG))
            .into_iter()
            .find(|r| r.id == g.id)
            .and_then(|r| r.attrs.get("vpc_id").cloned())
            .unwrap_or_default();
        ctx.record(
            SG,
            &g.name,
            &Found::new(&g.id).attr("vpc_id", vpc).attr("note", &note),
        )?;
        ctx.sh.reporter.message(
            ctx.step,
            &format!("security group {} ({}): {note}", g.name, g.id),
        );
        Ok(())
    }

    /// Revokes rules the config no longer asks for, forgetting each.
    async fn revoke_unwanted(&self, ctx: &StepCtx, rules: &[&SecurityGroupRule]) -> Result<()> {
        for r in rules {
            let id = r.security_group_rule_id().unwrap_or_default().to_string();
            let group = r.group_id().unwrap_or_default().to_string();
            let egress = r.is_egress() == Some(true);
            let what = if is_allow_all_egress(r) {
                "revoke: the allow-all egress rule (egress is explicit)"
            } else {
                "revoke: no longer configured"
            };
            ctx.change(SG_RULE, &existing_rule_label(r), what, || async {
                Self::revoke_rule(ctx, &group, &id, egress).await?;
                ctx.deleted(SG_RULE, &id)
            })
            .await?;
        }
        Ok(())
    }

    /// The live endpoint of `service_name` in `vpc`, if any.
    async fn find_endpoint(
        ctx: &StepCtx,
        vpc: &Found,
        service_name: &str,
    ) -> Result<Option<aws_sdk_ec2::types::VpcEndpoint>> {
        if vpc.is_pending() {
            return Ok(None);
        }
        let out = ctx
            .aws()
            .ec2()
            .describe_vpc_endpoints()
            .filters(filter("vpc-id", &vpc.id))
            .filters(filter("service-name", service_name))
            .send()
            .await
            .aws("ec2:DescribeVpcEndpoints", service_name)?;
        Ok(out
            .vpc_endpoints()
            .iter()
            .find(|e| {
                e.vpc_id() == Some(vpc.id.as_str())
                    && e.service_name() == Some(service_name)
                    && !matches!(
                        e.state().map(|s| s.as_str()),
                        Some("deleted" | "deleting" | "Deleted" | "Deleting")
                    )
            })
            .cloned())
    }

    /// An interface endpoint of `service` (e.g. `ecr.api`) in the private subnets, behind the
    /// endpoints' security group, with private DNS so that the SDKs' default hostnames
    /// resolve to it.
    async fn ensure_interface_endpoint(
        &self,
        ctx: &StepCtx,
        vpc: &Found,
        service: &str,
        subnets: &[&Found],
        sg: &Found,
    ) -> Result<Found> {
        let ec2 = ctx.aws().ec2();
        let name = ctx.names().with_purpose("vpce", service);
        let service_name = format!("com.amazonaws.{}.{service}", ctx.region());
        ctx.ensure(
            ENDPOINT,
            &name,
            || async {
                let live = Self::find_endpoint(ctx, vpc, &service_name).await?;
                Ok(live.map(|e| {
                    Found::new(e.vpc_endpoint_id().unwrap_or_default()).attr("type", "interface")
                }))
            },
            || async {
                let out = ec2
                    .create_vpc_endpoint()
                    .vpc_id(&vpc.id)
                    .service_name(&service_name)
                    .vpc_endpoint_type(VpcEndpointType::Interface)
                    .set_subnet_ids(Some(subnets.iter().map(|s| s.id.clone()).collect()))
                    .security_group_ids(&sg.id)
                    .private_dns_enabled(true)
                    .tag_specifications(Self::tag_spec(ctx, ResourceType::VpcEndpoint, &name))
                    .send()
                    .await
                    .aws("ec2:CreateVpcEndpoint", &name)?;
                let id = out
                    .vpc_endpoint()
                    .and_then(|e| e.vpc_endpoint_id())
                    .context("CreateVpcEndpoint returned no ID")?;
                Ok(Found::new(id).attr("type", "interface"))
            },
        )
        .await
    }

    async fn ensure_endpoint(
        &self,
        ctx: &StepCtx,
        vpc: &Found,
        service: &str,
        route_tables: &[&Found],
    ) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let name = ctx.names().with_purpose("vpce", service);
        let service_name = format!("com.amazonaws.{}.{service}", ctx.region());
        // Route tables the endpoint already serves (set by whichever closure runs).
        let attached: std::sync::Mutex<Vec<String>> = Default::default();
        let ep = ctx
            .ensure(
                ENDPOINT,
                &name,
                || async {
                    let live = Self::find_endpoint(ctx, vpc, &service_name).await?;
                    Ok(live.map(|e| {
                        *attached.lock().expect("not poisoned") = e.route_table_ids().to_vec();
                        Found::new(e.vpc_endpoint_id().unwrap_or_default())
                    }))
                },
                || async {
                    let out = ec2
                        .create_vpc_endpoint()
                        .vpc_id(&vpc.id)
                        .service_name(&service_name)
                        .vpc_endpoint_type(VpcEndpointType::Gateway)
                        .set_route_table_ids(Some(
                            route_tables.iter().map(|r| r.id.clone()).collect(),
                        ))
                        .tag_specifications(Self::tag_spec(ctx, ResourceType::VpcEndpoint, &name))
                        .send()
                        .await
                        .aws("ec2:CreateVpcEndpoint", &name)?;
                    let id = out
                        .vpc_endpoint()
                        .and_then(|e| e.vpc_endpoint_id())
                        .context("CreateVpcEndpoint returned no ID")?;
                    *attached.lock().expect("not poisoned") =
                        route_tables.iter().map(|r| r.id.clone()).collect();
                    Ok(Found::new(id))
                },
            )
            .await?;
        let missing: Vec<String> = route_tables
            .iter()
            .filter(|r| !r.is_pending() && !attached.lock().expect("not poisoned").contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        if !missing.is_empty() && !ep.is_pending() {
            ctx.change(ENDPOINT, &name, "add route tables", || async {
                ec2.modify_vpc_endpoint()
                    .vpc_endpoint_id(&ep.id)
                    .set_add_route_table_ids(Some(missing.clone()))
                    .send()
                    .await
                    .aws("ec2:ModifyVpcEndpoint", &ep.id)?;
                Ok(())
            })
            .await?;
        }
        Ok(())
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
        let vpc = self.ensure_vpc(ctx).await?;

        let mut subnets: BTreeMap<(u8, usize), Found> = BTreeMap::new();
        for (tier_i, tier) in Tier::ALL.iter().enumerate() {
            for (i, zone) in zones.iter().enumerate() {
                let s = self.ensure_subnet(ctx, &vpc, *tier, i as u8, zone).await?;
                subnets.insert((tier_i as u8, i), s);
            }
        }
        let tier_subnets = |t: Tier| -> Vec<&Found> {
            let ti = Tier::ALL.iter().position(|x| *x == t).expect("tier") as u8;
            (0..zones.len()).map(|i| &subnets[&(ti, i)]).collect()
        };

        let igw = self.ensure_igw(ctx, &vpc).await?;

        // NAT gateways are the slow part (1-2 minutes each on AWS): create them concurrently.
        let nat_zones: Vec<usize> = match net.nat_gateways {
            NatMode::Single => vec![0],
            NatMode::PerAz => (0..zones.len()).collect(),
        };
        let public = tier_subnets(Tier::Public);
        let nats: Vec<Found> = futures::future::try_join_all(
            nat_zones
                .iter()
                .map(|&i| self.ensure_nat(ctx, public[i], &zones[i])),
        )
        .await?;

        let (public_rt, public_tables) = Self::ensure_route_table(ctx, &vpc, "public").await?;
        Self::wire_route_table(
            ctx,
            &public_rt,
            &public_tables,
            &public,
            Some((Via::Igw, &igw)),
        )
        .await?;

        let private = tier_subnets(Tier::Private);
        let mut private_rts = Vec::new();
        for (i, zone) in zones.iter().enumerate() {
            let letter = zone.chars().last().unwrap_or('x');
            let (rt, tables) =
                Self::ensure_route_table(ctx, &vpc, &format!("private-{letter}")).await?;
            let nat = &nats[if nats.len() == 1 { 0 } else { i }];
            Self::wire_route_table(ctx, &rt, &tables, &[private[i]], Some((Via::Nat, nat))).await?;
            private_rts.push(rt);
        }

        let (isolated_rt, isolated_tables) =
            Self::ensure_route_table(ctx, &vpc, "isolated").await?;
        Self::wire_route_table(
            ctx,
            &isolated_rt,
            &isolated_tables,
            &tier_subnets(Tier::Isolated),
            None,
        )
        .await?;

        let listed = Self::vpc_groups(ctx, &vpc).await?;
        let groups = self.ensure_security_groups(ctx, &vpc, &listed).await?;
        let stale = Self::stale_groups(ctx, &vpc, &listed, &groups).await?;
        let cloudfront = Self::cloudfront_prefix_list(ctx).await?;
        let prefix_lists = BTreeMap::from([(CLOUDFRONT_PREFIX_LIST, cloudfront.clone())]);
        self.ensure_rules(ctx, &net.cidr.0.to_string(), &groups, &stale, &prefix_lists)
            .await?;
        Self::restrict_default_group(ctx, &vpc).await?;

        // Gateway endpoints keep S3 and DynamoDB traffic off the NAT gateway (and reachable
        // from the isolated subnets, which have no route out).
        let mut endpoint_rts: Vec<&Found> = private_rts.iter().collect();
        endpoint_rts.push(&isolated_rt);
        self.ensure_endpoint(ctx, &vpc, "s3", &endpoint_rts).await?;
        self.ensure_endpoint(ctx, &vpc, "dynamodb", &endpoint_rts)
            .await?;
        if let Some(sg) = groups.get(&Role::Endpoint) {
            let private = tier_subnets(Tier::Private);
            for svc in &net.interface_endpoints {
                for service in svc.endpoint_names() {
                    self.ensure_interface_endpoint(ctx, &vpc, service, &private, sg)
                        .await?;
                }
            }
        }

        if vpc.is_pending() {
            return Ok(());
        }
        let ids =
            |t: Tier| -> Vec<String> { tier_subnets(t).iter().map(|s| s.id.clone()).collect() };
        ctx.set_output(OUT_VPC_ID, vpc.id.clone())?;
        ctx.set_output(OUT_VPC_CIDR, net.cidr.0.to_string())?;
        ctx.set_output("availability_zones", json!(zones))?;
        ctx.set_output("public_subnet_ids", json!(ids(Tier::Public)))?;
        ctx.set_output("private_subnet_ids", json!(ids(Tier::Private)))?;
        ctx.set_output("isolated_subnet_ids", json!(ids(Tier::Isolated)))?;
        // The dr_network step routes the DR region's block through the peering connection
        // from these tables (the subnets with no internet route reach it too).
        let mut internal_rts: Vec<String> = private_rts.iter().map(|r| r.id.clone()).collect();
        internal_rts.push(isolated_rt.id.clone());
        ctx.set_output(OUT_INTERNAL_ROUTE_TABLE_IDS, json!(internal_rts))?;
        ctx.set_output(
            "nat_gateway_ids",
            json!(nats.iter().map(|n| n.id.clone()).collect::<Vec<_>>()),
        )?;
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
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let attr = |rec: &ResourceRecord, k: &str| rec.attrs.get(k).cloned().unwrap_or_default();

        // Routes through the NAT gateways and the IGW first: they would only black-hole.
        Self::delete_routes(ctx).await?;

        // NAT gateways: delete all, then wait for each to be gone; their ENIs hold the
        // subnets and their EIPs cannot be released before.
        let nats = ctx.records(Some(NAT));
        for rec in &nats {
            ctx.check_cancelled()?;
            ec2.delete_nat_gateway()
                .nat_gateway_id(&rec.id)
                .send()
                .await
                .aws("ec2:DeleteNatGateway", &rec.id)
                .not_found_ok()?;
        }
        futures::future::try_join_all(
            nats.iter()
                .map(|rec| self.wait_nat(ctx, &rec.id, NatGatewayState::Deleted)),
        )
        .await?;
        for rec in &nats {
            ctx.deleted(NAT, &rec.id)?;
        }

        ctx.delete_recorded(EIP, |rec| async move {
            ec2.release_address()
                .allocation_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:ReleaseAddress", &rec.id)
        })
        .await?;

        // Detaching is refused while a public address in the VPC is still mapped, e.g. by a
        // NAT gateway's ENI that is being released; an IGW already detached is fine.
        ctx.delete_recorded(IGW, |rec| async move {
            if let Some(vpc_id) = rec.attrs.get("vpc_id") {
                let detached = ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(&rec.id)
                    .vpc_id(vpc_id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:DetachInternetGateway", &rec.id);
                match detached {
                    Err(e) if e.code.as_deref() == Some("Gateway.NotAttached") => {}
                    other => other?,
                }
            }
            ec2.delete_internet_gateway()
                .internet_gateway_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteInternetGateway", &rec.id)
        })
        .await?;

        // One call per endpoint so that a missing one does not fail the others; the call
        // reports per-endpoint failures in its response rather than as an error.
        ctx.delete_recorded(ENDPOINT, |rec| async move {
            let out = ec2
                .delete_vpc_endpoints()
                .vpc_endpoint_ids(&rec.id)
                .send()
                .await
                .aws("ec2:DeleteVpcEndpoints", &rec.id)?;
            match out.unsuccessful().iter().find_map(|u| u.error()) {
                Some(e) if !e.code().unwrap_or_default().contains("NotFound") => Err(AwsError {
                    operation: "ec2:DeleteVpcEndpoints",
                    resource: rec.id.clone(),
                    code: e.code().map(str::to_string),
                    message: e.message().map(str::to_string),
                    source: format!("{e:?}").into(),
                }),
                _ => Ok(()),
            }
        })
        .await?;

        Self::delete_associations(ctx).await?;

        // Lambda functions' ENIs linger after the functions are deleted and hold the subnets
        // and security groups.
        for rec in ctx.records(Some(VPC)) {
            Self::remove_lambda_enis(ctx, &rec.id).await?;
        }

        Self::delete_subnets_and_route_tables(ctx).await?;

        // Rules first: a group referenced by another group's rule cannot be deleted.
        ctx.delete_recorded(SG_RULE, |rec| async move {
            let group = attr(&rec, "group_id");
            if rec.attrs.get("egress").is_some_and(|e| e == "true") {
                ec2.revoke_security_group_egress()
                    .group_id(group)
                    .security_group_rule_ids(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:RevokeSecurityGroupEgress", &rec.id)
            } else {
                ec2.revoke_security_group_ingress()
                    .group_id(group)
                    .security_group_rule_ids(&rec.id)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:RevokeSecurityGroupIngress", &rec.id)
            }
        })
        .await?;

        ctx.delete_recorded(SG, |rec| async move {
            ec2.delete_security_group()
                .group_id(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteSecurityGroup", &rec.id)
        })
        .await?;

        Self::delete_vpcs(ctx).await?;

        for key in [
            OUT_VPC_ID,
            OUT_VPC_CIDR,
            "availability_zones",
            "public_subnet_ids",
            "private_subnet_ids",
            "isolated_subnet_ids",
            "nat_gateway_ids",
            OUT_INTERNAL_ROUTE_TABLE_IDS,
            OUT_SERVICE_SG_IDS,
            OUT_CLOUDFRONT_PREFIX_LIST_ID,
            LEGACY_OUT_APP_SG,
        ] {
            ctx.remove_output(key)?;
        }
        for key in Role::FIXED.iter().filter_map(Role::output_key) {
            ctx.remove_output(&key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let ec2 = ctx.aws().ec2();
        let id = rec.id.as_str();
        let found: Option<String> = match rec.kind.as_str() {
            VPC => ec2
                .describe_vpcs()
                .vpc_ids(id)
                .send()
                .await
                .aws("ec2:DescribeVpcs", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.vpcs().first().map(|v| {
                        v.state()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default()
                    })
                }),
            SUBNET => ec2
                .describe_subnets()
                .subnet_ids(id)
                .send()
                .await
                .aws("ec2:DescribeSubnets", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.subnets().first().map(|s| {
                        s.state()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default()
                    })
                }),
            IGW => ec2
                .describe_internet_gateways()
                .internet_gateway_ids(id)
                .send()
                .await
                .aws("ec2:DescribeInternetGateways", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.internet_gateways().first().map(|g| {
                        if g.attachments().is_empty() {
                            "detached".to_string()
                        } else {
                            "attached".to_string()
                        }
                    })
                }),
            EIP => ec2
                .describe_addresses()
                .allocation_ids(id)
                .send()
                .await
                .aws("ec2:DescribeAddresses", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.addresses()
                        .first()
                        .map(|a| a.public_ip().unwrap_or_default().to_string())
                }),
            NAT => ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .aws("ec2:DescribeNatGateways", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.nat_gateways()
                        .first()
                        .and_then(|n| n.state().map(|s| s.as_str().to_string()))
                })
                .filter(|s| s != "deleted"),
            ROUTE_TABLE | ROUTE | ASSOCIATION => {
                let rt = if rec.kind == ROUTE_TABLE {
                    id.to_string()
                } else {
                    rec.attrs.get("route_table_id").cloned().unwrap_or_default()
                };
                let table = ec2
                    .describe_route_tables()
                    .route_table_ids(&rt)
                    .send()
                    .await
                    .aws("ec2:DescribeRouteTables", &rt)
                    .not_found_ok()?
                    .and_then(|o| o.route_tables().first().cloned());
                match (rec.kind.as_str(), table) {
                    (_, None) => None,
                    (ROUTE_TABLE, Some(_)) => Some("exists".into()),
                    (ROUTE, Some(t)) => t
                        .routes()
                        .iter()
                        .find(|r| {
                            r.destination_cidr_block()
                                == rec.attrs.get("destination").map(String::as_str)
                        })
                        .map(|r| {
                            r.state()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default()
                        }),
                    (_, Some(t)) => t
                        .associations()
                        .iter()
                        .any(|a| a.route_table_association_id() == Some(id))
                        .then(|| "associated".to_string()),
                }
            }
            SG => {
                // A group the config no longer asks for (a removed service's, the shared app
                // group of earlier versions) says so: `up` deletes it once nothing uses it.
                let wanted = Role::of(ctx.cfg())
                    .iter()
                    .any(|r| r.group_name(ctx.names()) == rec.name);
                ec2.describe_security_groups()
                    .group_ids(id)
                    .send()
                    .await
                    .aws("ec2:DescribeSecurityGroups", id)
                    .not_found_ok()?
                    .and_then(|o| {
                        o.security_groups()
                            .first()
                            .map(|_| match rec.attrs.get("note") {
                                Some(note) if !wanted => format!("exists; {note}"),
                                _ if !wanted => "exists; no longer configured: the next `up` \
                                             deletes it once nothing uses it"
                                    .to_string(),
                                _ => "exists".to_string(),
                            })
                    })
            }
            SG_RULE => ec2
                .describe_security_group_rules()
                .security_group_rule_ids(id)
                .send()
                .await
                .aws("ec2:DescribeSecurityGroupRules", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.security_group_rules().first().map(|r| {
                        let peer = match Target::of(r) {
                            Some(Target::Cidr(c)) => c,
                            Some(Target::Group(g)) => g,
                            Some(Target::PrefixList(p)) => p,
                            None => "?".into(),
                        };
                        format!(
                            "{} tcp/{} {} {peer}",
                            if r.is_egress() == Some(true) {
                                "egress"
                            } else {
                                "ingress"
                            },
                            r.from_port().unwrap_or_default(),
                            if r.is_egress() == Some(true) {
                                "to"
                            } else {
                                "from"
                            },
                        )
                    })
                }),
            ENDPOINT => ec2
                .describe_vpc_endpoints()
                .vpc_endpoint_ids(id)
                .send()
                .await
                .aws("ec2:DescribeVpcEndpoints", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.vpc_endpoints()
                        .first()
                        .and_then(|e| e.state().map(|s| s.as_str().to_string()))
                })
                .filter(|s| !s.eq_ignore_ascii_case("deleted")),
            other => bail!("network step does not know resource type {other}"),
        };
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Preset};

    fn svc(n: &str) -> Role {
        Role::Service(n.to_string())
    }

    fn microservices() -> Vec<RuleSpec> {
        rule_specs(&Config::preset(Preset::Microservices))
    }

    /// Ingress rules of `group` as (port, peer).
    fn ingress(specs: &[RuleSpec], group: &Role) -> Vec<(i32, Peer)> {
        specs
            .iter()
            .filter(|r| &r.group == group && !r.egress)
            .map(|r| (r.port, r.peer.clone()))
            .collect()
    }

    fn egress(specs: &[RuleSpec], group: &Role) -> Vec<(i32, Peer)> {
        specs
            .iter()
            .filter(|r| &r.group == group && r.egress)
            .map(|r| (r.port, r.peer.clone()))
            .collect()
    }

    #[test]
    fn every_group_but_the_endpoints_has_explicit_egress() {
        let cfg = Config::parse("[network]\ninterface_endpoints = [\"ecr\"]\n").unwrap();
        let specs = rule_specs(&cfg);
        for role in Role::of(&cfg) {
            let has = specs.iter().any(|r| r.group == role && r.egress);
            assert_eq!(has, role != Role::Endpoint, "{role:?}");
        }
    }

    #[test]
    fn each_service_has_its_own_group_and_the_old_shared_one_is_gone() {
        let cfg = Config::preset(Preset::Microservices);
        let roles = Role::of(&cfg);
        let names: Vec<String> = roles
            .iter()
            .map(|r| r.group_name(&crate::naming::Names::new("t")))
            .collect();
        assert_eq!(
            names,
            [
                "secgroup-alb-t",
                "secgroup-svc-payment-api-t",
                "secgroup-svc-transaction-processor-t",
                "secgroup-svc-notification-service-t",
                "secgroup-db-t",
                "secgroup-lambda-t",
            ]
        );
        assert_eq!(svc("x").output_key(), None);
        assert_eq!(Role::Alb.output_key().as_deref(), Some("sg_alb_id"));
        assert_eq!(
            Role::Endpoint.output_key().as_deref(),
            Some("sg_endpoints_id")
        );
    }

    #[test]
    fn endpoints_answer_every_service_and_lambda_on_https_only() {
        let cfg = Config::parse(
            "[network]\ninterface_endpoints = [\"ecr\"]\n[[services]]\nname = \"a\"\n\
             [[services]]\nname = \"b\"\n",
        )
        .unwrap();
        let specs = rule_specs(&cfg);
        assert!(egress(&specs, &Role::Endpoint).is_empty());
        let mut got = ingress(&specs, &Role::Endpoint);
        got.sort_by_key(|(p, peer)| (*p, format!("{peer:?}")));
        assert_eq!(
            got,
            [
                (443, Peer::Group(Role::Lambda)),
                (443, Peer::Group(svc("a"))),
                (443, Peer::Group(svc("b"))),
            ]
        );
        // Without interface endpoints there is no such group, hence no rules for it.
        assert!(!microservices()
            .iter()
            .any(|r| r.group == Role::Endpoint || r.peer == Peer::Group(Role::Endpoint)));
    }

    #[test]
    fn the_database_admits_exactly_the_services_with_the_database_permission() {
        let specs = microservices();
        let got = ingress(&specs, &Role::Db);
        assert_eq!(
            got,
            [
                (DB_PORT, Peer::Group(svc("payment-api"))),
                (DB_PORT, Peer::Group(svc("transaction-processor"))),
            ]
        );
        // Their egress matches; notification-service and the validator have none.
        for (s, to_db) in [
            ("payment-api", true),
            ("transaction-processor", true),
            ("notification-service", false),
        ] {
            assert_eq!(
                egress(&specs, &svc(s)).contains(&(DB_PORT, Peer::Group(Role::Db))),
                to_db,
                "{s}"
            );
        }
        assert_eq!(
            egress(&specs, &Role::Lambda),
            [(443, Peer::Cidr("0.0.0.0/0"))]
        );
    }

    #[test]
    fn the_alb_admits_only_cloudfront_in_one_rule_on_the_origin_port() {
        let plain = rule_specs(&Config::default());
        assert_eq!(
            ingress(&plain, &Role::Alb),
            [(80, Peer::PrefixList(CLOUDFRONT_PREFIX_LIST))]
        );
        let tls =
            rule_specs(&Config::parse("[certificate]\ndomain = \"*.example.com\"\n").unwrap());
        // With a certificate: 80 to 443 in one rule (HTTP until the certificate is issued).
        let alb_in: Vec<_> = tls
            .iter()
            .filter(|r| r.group == Role::Alb && !r.egress)
            .collect();
        assert_eq!(alb_in.len(), 1, "{alb_in:?}");
        assert_eq!((alb_in[0].port, alb_in[0].to_port), (80, 443));
        assert_eq!(alb_in[0].peer, Peer::PrefixList(CLOUDFRONT_PREFIX_LIST));
        // Nothing anywhere admits the internet.
        for specs in [&plain, &tls, &microservices()] {
            assert!(
                !specs
                    .iter()
                    .any(|r| !r.egress && matches!(r.peer, Peer::Cidr(_) | Peer::Vpc)),
                "{specs:?}"
            );
        }
    }

    #[test]
    fn only_services_behind_the_alb_admit_it() {
        let cfg = Config::parse(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\nport = 8080\n\
             path = \"/api/*\"\n[[services]]\nname = \"worker\"\nport = 9000\n",
        )
        .unwrap();
        let specs = rule_specs(&cfg);
        assert_eq!(
            egress(&specs, &Role::Alb),
            [
                (80, Peer::Group(svc("web"))),
                (8080, Peer::Group(svc("api")))
            ]
        );
        assert_eq!(ingress(&specs, &svc("web")), [(80, Peer::Group(Role::Alb))]);
        assert_eq!(
            ingress(&specs, &svc("api")),
            [(8080, Peer::Group(Role::Alb))]
        );
        assert!(ingress(&specs, &svc("worker")).is_empty());
    }

    #[test]
    fn a_call_is_a_pair_of_rules_on_the_callee_port_and_nothing_more() {
        let specs = microservices();
        let api = svc("payment-api");
        let tp = svc("transaction-processor");
        let ns = svc("notification-service");
        for callee in [&tp, &ns] {
            assert!(egress(&specs, &api).contains(&(80, Peer::Group(callee.clone()))));
            assert_eq!(ingress(&specs, callee), [(80, Peer::Group(api.clone()))]);
        }
        // The workers call nobody: their egress is HTTPS out and (transaction-processor) the
        // database only, so notification-service admits nothing from transaction-processor.
        assert_eq!(
            egress(&specs, &tp),
            [
                (443, Peer::Cidr("0.0.0.0/0")),
                (DB_PORT, Peer::Group(Role::Db))
            ]
        );
        assert_eq!(egress(&specs, &ns), [(443, Peer::Cidr("0.0.0.0/0"))]);

        // The callee's port, not the caller's.
        let cfg = Config::parse(
            "[cluster]\nnamespace = \"x.internal\"\n[[services]]\nname = \"api\"\n\
             calls = [\"ledger\"]\n[[services]]\nname = \"ledger\"\nport = 8443\n",
        )
        .unwrap();
        let specs = rule_specs(&cfg);
        assert!(egress(&specs, &svc("api")).contains(&(8443, Peer::Group(svc("ledger")))));
        assert_eq!(
            ingress(&specs, &svc("ledger")),
            [(8443, Peer::Group(svc("api")))]
        );
        assert!(!ingress(&specs, &svc("api")).contains(&(80, Peer::Group(svc("ledger")))));
    }

    /// AWS checks both ends (B6): every ingress from a group has that group's egress (to this
    /// group, or HTTPS to anywhere), and every egress to a group has its ingress.
    #[test]
    fn every_path_has_both_ends() {
        let cfgs = [
            Config::preset(Preset::Microservices),
            Config::parse("[network]\ninterface_endpoints = [\"ecr\", \"logs\"]\n").unwrap(),
        ];
        for cfg in &cfgs {
            let specs = rule_specs(cfg);
            for r in &specs {
                let Peer::Group(other) = &r.peer else {
                    continue;
                };
                let mirror = specs.iter().any(|m| {
                    &m.group == other
                        && m.egress != r.egress
                        && m.port == r.port
                        && (m.peer == Peer::Group(r.group.clone())
                            || (m.egress && m.peer == Peer::Cidr("0.0.0.0/0")))
                });
                assert!(mirror, "{r:?} has no other end");
            }
        }
    }

    fn rule(group: &str, egress: bool, peer: Option<&str>) -> SecurityGroupRule {
        let b = SecurityGroupRule::builder()
            .security_group_rule_id(format!("sgr-{group}-{egress}"))
            .group_id(group)
            .is_egress(egress)
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(80);
        match peer {
            Some(p) => b
                .referenced_group_info(
                    aws_sdk_ec2::types::ReferencedSecurityGroup::builder()
                        .group_id(p)
                        .build(),
                )
                .build(),
            None => b.cidr_ipv4("0.0.0.0/0").build(),
        }
    }

    #[test]
    fn unwanted_rules_go_unless_a_group_still_in_use_needs_them() {
        let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<&str>>();
        let wanted = set(&["sg-alb", "sg-db"]);
        let in_use = set(&["sg-app"]);
        let doomed = set(&["sg-old", "sg-older"]);
        let act = |r: &SecurityGroupRule, ours| unwanted_action(r, &wanted, &in_use, &doomed, ours);
        // Ours and no longer configured (the ALB's old internet ingress): revoked.
        assert_eq!(act(&rule("sg-alb", false, None), true), Unwanted::Revoke);
        // Added by hand: left alone.
        assert_eq!(act(&rule("sg-alb", false, None), false), Unwanted::Keep);
        // The allow-all egress is drift whoever added it.
        let all = SecurityGroupRule::builder()
            .group_id("sg-db")
            .is_egress(true)
            .ip_protocol("-1")
            .cidr_ipv4("0.0.0.0/0")
            .build();
        assert_eq!(act(&all, false), Unwanted::Revoke);
        // The database's ingress from the old shared group, while tasks still use it: kept
        // (and recorded, for `down`), so that they keep working until they move.
        assert_eq!(
            act(&rule("sg-db", false, Some("sg-app")), true),
            Unwanted::KeepAndRecord
        );
        assert_eq!(
            act(&rule("sg-db", false, Some("sg-old")), true),
            Unwanted::Revoke
        );
        // In a group about to go: only a reference to another doomed group is revoked.
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-older")), true),
            Unwanted::Revoke
        );
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-db")), true),
            Unwanted::Keep
        );
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-old")), true),
            Unwanted::Keep
        );
        // In a group still in use everything stays.
        assert_eq!(
            act(&rule("sg-app", true, Some("sg-db")), true),
            Unwanted::KeepAndRecord
        );
    }

    #[test]
    fn a_prefix_list_rule_is_matched_by_its_list() {
        let spec = RuleSpec {
            group: Role::Alb,
            egress: false,
            port: 443,
            to_port: 443,
            peer: Peer::PrefixList(CLOUDFRONT_PREFIX_LIST),
            description: String::new(),
        };
        let w = Resolved {
            spec: &spec,
            name: String::new(),
            group_id: "sg-alb".into(),
            target: Target::PrefixList("pl-cf".into()),
        };
        let described = |pl: &str, port: i32| {
            SecurityGroupRule::builder()
                .group_id("sg-alb")
                .is_egress(false)
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .prefix_list_id(pl)
                .build()
        };
        assert!(w.matches(&described("pl-cf", 443)));
        assert!(!w.matches(&described("pl-cf", 80)));
        assert!(!w.matches(&described("pl-other", 443)));
        assert!(!w.matches(&rule("sg-alb", false, None)));
    }
}
