//! Network step: the VPC and everything in it that other steps build on.
//!
//! Per availability zone a public subnet (ALB, NAT), a private subnet (ECS tasks, Lambda) and an
//! isolated subnet (Aurora, no route out); an internet gateway; one NAT gateway (or one per
//! zone); route tables; the security groups of the ALB, the app, the database and Lambda with
//! explicit ingress and egress; gateway endpoints for S3 and DynamoDB.
//!
//! Teardown follows the order AWS enforces: routes, NAT gateways (waited until deleted, as
//! their ENIs hold the subnets and their EIPs), EIPs, the IGW (it cannot be detached while a
//! public address in the VPC is mapped), endpoints, the ENIs deleted Lambda functions leave
//! behind (see [`Network::remove_lambda_enis`]), subnets, route tables, security group rules
//! that reference other groups, the groups, and last the VPC.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, NatGatewayState,
    NetworkInterfaceStatus, NetworkInterfaceType, ResourceType, SecurityGroupRule, Tag,
    TagSpecification, UserIdGroupPair, VpcEndpointType,
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
/// The ports the app containers listen on behind the ALB: every configured service's port,
/// sorted and without repeats (the ALB must reach each, and nothing else).
pub fn app_ports(cfg: &crate::config::Config) -> Vec<i32> {
    let ports: std::collections::BTreeSet<i32> =
        cfg.services.0.iter().map(|s| i32::from(s.port)).collect();
    ports.into_iter().collect()
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Alb,
    App,
    Db,
    Lambda,
    /// Interface VPC endpoints (only with `network.interface_endpoints`).
    Endpoint,
}

impl Role {
    /// The groups every stack has.
    pub const ALL: [Role; 4] = [Role::Alb, Role::App, Role::Db, Role::Lambda];

    /// The groups of the stack `cfg` describes.
    pub fn of(cfg: &crate::config::Config) -> Vec<Role> {
        let mut v = Role::ALL.to_vec();
        if !cfg.network.interface_endpoints.is_empty() {
            v.push(Role::Endpoint);
        }
        v
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Alb => "alb",
            Role::App => "app",
            Role::Db => "db",
            Role::Lambda => "lambda",
            Role::Endpoint => "endpoints",
        }
    }

    /// Output key holding the group ID.
    pub fn output_key(self) -> String {
        format!("sg_{}_id", self.as_str())
    }
}

/// Where a rule lets traffic come from or go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Cidr(&'static str),
    /// The VPC's own block.
    Vpc,
    Group(Role),
}

/// One security group rule the stack needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    pub group: Role,
    pub egress: bool,
    pub port: i32,
    pub peer: Peer,
    pub description: &'static str,
}

/// Every rule of every group, with the ALB-to-app rules for each of `app_ports`. Egress is
/// explicit everywhere: the allow-all egress rule AWS adds to each new group is removed.
pub fn rule_specs(app_ports: &[i32]) -> Vec<RuleSpec> {
    use Peer::*;
    use Role::*;
    let r = |group, egress, port, peer, description| RuleSpec {
        group,
        egress,
        port,
        peer,
        description,
    };
    let mut rules = vec![
        r(
            Alb,
            false,
            80,
            Cidr("0.0.0.0/0"),
            "HTTP from the internet (redirected to HTTPS)",
        ),
        r(
            Alb,
            false,
            443,
            Cidr("0.0.0.0/0"),
            "HTTPS from the internet",
        ),
        r(
            App,
            true,
            443,
            Cidr("0.0.0.0/0"),
            "HTTPS to AWS APIs and image registries",
        ),
        r(App, true, DB_PORT, Group(Db), "to the database"),
        r(
            Db,
            false,
            DB_PORT,
            Group(App),
            "PostgreSQL from the app tasks",
        ),
        r(
            Db,
            false,
            DB_PORT,
            Group(Lambda),
            "PostgreSQL from the Lambda functions",
        ),
        r(Db, true, DB_PORT, Vpc, "replication inside the VPC only"),
        r(Lambda, true, 443, Cidr("0.0.0.0/0"), "HTTPS to AWS APIs"),
        r(Lambda, true, DB_PORT, Group(Db), "to the database"),
        // Interface endpoints only answer: no egress rule at all.
        r(
            Endpoint,
            false,
            443,
            Group(App),
            "AWS APIs from the app tasks",
        ),
        r(
            Endpoint,
            false,
            443,
            Group(Lambda),
            "AWS APIs from the Lambda functions",
        ),
    ];
    for &port in app_ports {
        rules.push(r(Alb, true, port, Group(App), "to the app tasks"));
        rules.push(r(App, false, port, Group(Alb), "from the ALB only"));
    }
    rules
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

    async fn ensure_security_groups(
        &self,
        ctx: &StepCtx,
        vpc: &Found,
    ) -> Result<BTreeMap<Role, Found>> {
        let ec2 = ctx.aws().ec2();
        let mut groups = BTreeMap::new();
        for role in Role::of(ctx.cfg()) {
            let name = ctx.names().with_purpose("secgroup", role.as_str());
            let sg = ctx
                .ensure(
                    SG,
                    &name,
                    || async {
                        if vpc.is_pending() {
                            return Ok(None);
                        }
                        let out = ec2
                            .describe_security_groups()
                            .filters(filter("vpc-id", &vpc.id))
                            .filters(filter("group-name", &name))
                            .send()
                            .await
                            .aws("ec2:DescribeSecurityGroups", &name)?;
                        Ok(out
                            .security_groups()
                            .iter()
                            .find(|g| {
                                g.group_name() == Some(name.as_str())
                                    && g.vpc_id() == Some(vpc.id.as_str())
                            })
                            .and_then(|g| g.group_id())
                            .map(|id| Found::new(id).attr("vpc_id", &vpc.id)))
                    },
                    || async {
                        // Group names may not start with `sg-`, hence `secgroup-`.
                        let out = ec2
                            .create_security_group()
                            .group_name(&name)
                            .description(format!(
                                "fintech-infra {} ({})",
                                role.as_str(),
                                ctx.suffix()
                            ))
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
                        let found = Found::new(id).attr("vpc_id", &vpc.id);
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

    async fn ensure_rules(
        &self,
        ctx: &StepCtx,
        vpc_cidr: &str,
        groups: &BTreeMap<Role, Found>,
    ) -> Result<()> {
        let ec2 = ctx.aws().ec2();
        let all_rules = rule_specs(&app_ports(ctx.cfg()));
        for role in Role::of(ctx.cfg()) {
            let sg = &groups[&role];
            let existing: Vec<SecurityGroupRule> = if sg.is_pending() {
                Vec::new()
            } else {
                ec2.describe_security_group_rules()
                    .filters(filter("group-id", &sg.id))
                    .send()
                    .await
                    .aws("ec2:DescribeSecurityGroupRules", &sg.id)?
                    .security_group_rules()
                    .to_vec()
            };
            let specs: Vec<&RuleSpec> = all_rules.iter().filter(|r| r.group == role).collect();
            for spec in &specs {
                let peer_id = match spec.peer {
                    Peer::Group(r) => Some(groups[&r].id.clone()),
                    _ => None,
                };
                let cidr = match spec.peer {
                    Peer::Cidr(c) => Some(c.to_string()),
                    Peer::Vpc => Some(vpc_cidr.to_string()),
                    Peer::Group(_) => None,
                };
                let rule_name = format!(
                    "{} {} tcp/{} {}",
                    ctx.names().with_purpose("secgroup", role.as_str()),
                    if spec.egress { "egress" } else { "ingress" },
                    spec.port,
                    match spec.peer {
                        Peer::Group(r) => format!("secgroup-{}", r.as_str()),
                        _ => cidr.clone().unwrap_or_default(),
                    }
                );
                let found = existing.iter().find(|r| {
                    r.is_egress() == Some(spec.egress)
                        && r.ip_protocol() == Some("tcp")
                        && r.from_port() == Some(spec.port)
                        && r.to_port() == Some(spec.port)
                        && r.cidr_ipv4().map(str::to_string) == cidr
                        && r.referenced_group_info()
                            .and_then(|g| g.group_id())
                            .map(str::to_string)
                            == peer_id
                });
                let existing_found = found.and_then(|r| r.security_group_rule_id()).map(|id| {
                    Found::new(id)
                        .attr("group_id", &sg.id)
                        .attr("egress", spec.egress.to_string())
                });
                ctx.ensure(
                    SG_RULE,
                    &rule_name,
                    || async { Ok(existing_found) },
                    || async {
                        let mut perm = IpPermission::builder()
                            .ip_protocol("tcp")
                            .from_port(spec.port)
                            .to_port(spec.port);
                        perm = match (&cidr, &peer_id) {
                            (Some(c), _) => perm.ip_ranges(
                                IpRange::builder()
                                    .cidr_ip(c)
                                    .description(spec.description)
                                    .build(),
                            ),
                            (None, Some(g)) => perm.user_id_group_pairs(
                                UserIdGroupPair::builder()
                                    .group_id(g)
                                    .description(spec.description)
                                    .build(),
                            ),
                            (None, None) => unreachable!("a rule has a CIDR or a group"),
                        };
                        let tags = Self::tag_spec(ctx, ResourceType::SecurityGroupRule, &rule_name);
                        let ids: Vec<String> = if spec.egress {
                            ec2.authorize_security_group_egress()
                                .group_id(&sg.id)
                                .ip_permissions(perm.build())
                                .tag_specifications(tags)
                                .send()
                                .await
                                .aws("ec2:AuthorizeSecurityGroupEgress", &rule_name)?
                                .security_group_rules()
                                .iter()
                                .filter_map(|r| r.security_group_rule_id().map(str::to_string))
                                .collect()
                        } else {
                            ec2.authorize_security_group_ingress()
                                .group_id(&sg.id)
                                .ip_permissions(perm.build())
                                .tag_specifications(tags)
                                .send()
                                .await
                                .aws("ec2:AuthorizeSecurityGroupIngress", &rule_name)?
                                .security_group_rules()
                                .iter()
                                .filter_map(|r| r.security_group_rule_id().map(str::to_string))
                                .collect()
                        };
                        let id = ids.into_iter().next().unwrap_or_else(|| rule_name.clone());
                        Ok(Found::new(id)
                            .attr("group_id", &sg.id)
                            .attr("egress", spec.egress.to_string()))
                    },
                )
                .await?;
            }
            // An allow-all egress rule on an existing group (re-added by hand, or left by a
            // run that died right after creating the group) is drift: remove it.
            if let Some(default) = existing.iter().find(|r| {
                r.is_egress() == Some(true)
                    && r.ip_protocol() == Some("-1")
                    && r.cidr_ipv4() == Some("0.0.0.0/0")
            }) {
                let rule_id = default
                    .security_group_rule_id()
                    .unwrap_or_default()
                    .to_string();
                let group_name = ctx.names().with_purpose("secgroup", role.as_str());
                ctx.change(
                    SG,
                    &group_name,
                    "remove the allow-all egress rule",
                    || async {
                        ec2.revoke_security_group_egress()
                            .group_id(&sg.id)
                            .security_group_rule_ids(&rule_id)
                            .send()
                            .await
                            .aws("ec2:RevokeSecurityGroupEgress", &rule_id)?;
                        Ok(())
                    },
                )
                .await?;
            }
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

        let groups = self.ensure_security_groups(ctx, &vpc).await?;
        self.ensure_rules(ctx, &net.cidr.0.to_string(), &groups)
            .await?;

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
        for (role, sg) in &groups {
            ctx.set_output(&role.output_key(), sg.id.clone())?;
        }
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
        ] {
            ctx.remove_output(key)?;
        }
        for role in Role::ALL.iter().chain(&[Role::Endpoint]) {
            ctx.remove_output(&role.output_key())?;
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
            SG => ec2
                .describe_security_groups()
                .group_ids(id)
                .send()
                .await
                .aws("ec2:DescribeSecurityGroups", id)
                .not_found_ok()?
                .and_then(|o| o.security_groups().first().map(|_| "exists".to_string())),
            SG_RULE => ec2
                .describe_security_group_rules()
                .security_group_rule_ids(id)
                .send()
                .await
                .aws("ec2:DescribeSecurityGroupRules", id)
                .not_found_ok()?
                .and_then(|o| {
                    o.security_group_rules()
                        .first()
                        .map(|_| "exists".to_string())
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

    #[test]
    fn every_group_has_explicit_egress_or_none_needed() {
        let specs = rule_specs(&[80]);
        for role in Role::ALL {
            assert!(
                specs.iter().any(|r| r.group == role && r.egress),
                "{role:?} has no explicit egress"
            );
        }
    }

    #[test]
    fn endpoints_answer_the_app_and_lambda_on_https_only() {
        let specs = rule_specs(&[80]);
        let rules: Vec<_> = specs.iter().filter(|r| r.group == Role::Endpoint).collect();
        assert!(rules.iter().all(|r| !r.egress && r.port == 443));
        assert!(rules.iter().any(|r| r.peer == Peer::Group(Role::App)));
        assert!(rules.iter().any(|r| r.peer == Peer::Group(Role::Lambda)));
    }

    #[test]
    fn database_is_reachable_only_from_app_and_lambda() {
        let ingress: Vec<_> = rule_specs(&[80])
            .into_iter()
            .filter(|r| r.group == Role::Db && !r.egress)
            .collect();
        assert_eq!(ingress.len(), 2);
        for r in ingress {
            assert_eq!(r.port, DB_PORT);
            assert!(matches!(r.peer, Peer::Group(Role::App | Role::Lambda)));
        }
    }

    #[test]
    fn app_accepts_only_the_alb_on_the_service_ports() {
        let ingress: Vec<_> = rule_specs(&[80, 8080])
            .into_iter()
            .filter(|r| r.group == Role::App && !r.egress)
            .collect();
        assert_eq!(ingress.len(), 2);
        assert!(ingress.iter().all(|r| r.peer == Peer::Group(Role::Alb)));
        let ports: Vec<i32> = ingress.iter().map(|r| r.port).collect();
        assert_eq!(ports, [80, 8080]);
    }
}
