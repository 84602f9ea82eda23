//! Network reachability over security groups and route tables, for `fintech-infra verify`.
//!
//! The caller reads security groups and route tables with the EC2 SDK and flattens them into
//! the plain types here. This module decides, with no AWS calls, whether a TCP connection
//! between two sides is admitted, and where a subnet's traffic goes. Every "no" names what is
//! missing, so `verify` can print it as is.
//!
//! AWS rules used (Amazon VPC User Guide, "Security group rules" and "Route tables"):
//! * Security groups are stateful and deny by default. A new connection needs an egress rule on
//!   one of the sender's groups *and* an ingress rule on one of the receiver's groups. Replies
//!   need nothing more. Rules only allow: any one matching rule in any attached group is enough.
//! * A rule whose peer is a security group admits the network interfaces that carry that group
//!   (their private addresses). A self-reference admits members of the group itself.
//! * A route table sends traffic by longest-prefix match. Subnets with no explicit association
//!   use the VPC's main route table. A `blackhole` route (its NAT gateway or endpoint was
//!   deleted) still matches, and drops the traffic.
//!
//! Not modelled: network ACLs, prefix-list *contents* (a prefix-list peer or route is matched by
//! id only), the IPv6 default route, and transit gateways (a route through one is reported as
//! "not via an internet or NAT gateway" rather than followed).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

// ---------------------------------------------------------------------------------------------
// Security groups
// ---------------------------------------------------------------------------------------------

/// The other side of a rule. One EC2 `IpPermission` with several ranges, groups or prefix lists
/// becomes one [`Rule`] per peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// `IpRanges[].CidrIp`.
    Cidr(Ipv4Net),
    /// `Ipv6Ranges[].CidrIpv6`.
    Cidr6(Ipv6Net),
    /// `UserIdGroupPairs[].GroupId`.
    Group(String),
    /// `PrefixListIds[].PrefixListId`, e.g. CloudFront's origin-facing list.
    PrefixList(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Cidr(n) => write!(f, "{n}"),
            Peer::Cidr6(n) => write!(f, "{n}"),
            Peer::Group(g) | Peer::PrefixList(g) => f.write_str(g),
        }
    }
}

/// One security group rule, as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `IpProtocol`: `"tcp"`, `"udp"`, `"icmp"`, a protocol number such as `"6"`, or `"-1"` for
    /// all traffic.
    pub protocol: String,
    /// `FromPort`. EC2 omits it for `-1` rules; pass `-1` then.
    pub from_port: i32,
    /// `ToPort`, likewise.
    pub to_port: i32,
    pub peer: Peer,
}

impl Rule {
    /// A TCP rule for the port range `from..=to`.
    pub fn tcp(from: u16, to: u16, peer: Peer) -> Rule {
        Rule {
            protocol: "tcp".into(),
            from_port: i32::from(from),
            to_port: i32::from(to),
            peer,
        }
    }

    /// An all-traffic rule (`IpProtocol` `-1`), like the default egress rule to `0.0.0.0/0`.
    pub fn all_traffic(peer: Peer) -> Rule {
        Rule {
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            peer,
        }
    }

    /// Whether this rule covers TCP traffic to `port`. `-1` (all protocols) covers every port.
    /// Otherwise the protocol must be TCP (`tcp` or `6`) and the port inside `FromPort..=ToPort`.
    pub fn covers_tcp(&self, port: u16) -> bool {
        let p = self.protocol.trim();
        if p == "-1" || p.eq_ignore_ascii_case("all") {
            return true;
        }
        (p.eq_ignore_ascii_case("tcp") || p == "6")
            && self.from_port <= i32::from(port)
            && i32::from(port) <= self.to_port
    }

    /// Whether this rule's peer admits the other side: a CIDR that contains all of `addr`, or a
    /// group the other side carries. Prefix lists are matched by id elsewhere, never here.
    fn admits(&self, other_groups: &[&SecurityGroup], addr: &IpNet) -> bool {
        match &self.peer {
            Peer::Cidr(n) => IpNet::V4(*n).contains(addr),
            Peer::Cidr6(n) => IpNet::V6(*n).contains(addr),
            Peer::Group(id) => other_groups.iter().any(|g| &g.id == id),
            Peer::PrefixList(_) => false,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = self.protocol.trim();
        if proto == "-1" {
            write!(f, "all traffic {}", self.peer)
        } else if self.from_port == self.to_port {
            write!(f, "{proto}/{} {}", self.from_port, self.peer)
        } else {
            write!(
                f,
                "{proto}/{}-{} {}",
                self.from_port, self.to_port, self.peer
            )
        }
    }
}

/// A security group: its id and its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
}

/// The rule that admitted one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admit {
    /// The group holding the rule.
    pub group: String,
    /// The rule's position in that group's `ingress` or `egress` list.
    pub index: usize,
    pub rule: Rule,
}

/// What is missing for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No egress rule on any of the sender's `groups` admits the receiver (`to`) on the port.
    Egress {
        groups: Vec<String>,
        to: String,
        port: u16,
    },
    /// No ingress rule on any of the receiver's `groups` admits the sender (`from`) on the port.
    Ingress {
        groups: Vec<String>,
        from: String,
        port: u16,
    },
}

fn group_list(groups: &[String]) -> String {
    if groups.is_empty() {
        "(no security groups)".to_string()
    } else {
        groups.join(",")
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Egress { groups, to, port } => {
                write!(f, "no egress on {} to {to} tcp/{port}", group_list(groups))
            }
            Missing::Ingress { groups, from, port } => {
                write!(
                    f,
                    "no ingress on {} from {from} tcp/{port}",
                    group_list(groups)
                )
            }
        }
    }
}

/// Whether a connection is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Both directions are admitted, by these rules.
    Open { egress: Admit, ingress: Admit },
    /// What is missing: the egress side, the ingress side, or both (in that order).
    Blocked(Vec<Missing>),
}

impl Verdict {
    pub fn is_open(&self) -> bool {
        matches!(self, Verdict::Open { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Open { egress, ingress } => write!(
                f,
                "open: egress {} on {}, ingress {} on {}",
                egress.rule, egress.group, ingress.rule, ingress.group
            ),
            Verdict::Blocked(missing) => {
                let parts: Vec<String> = missing.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join("; "))
            }
        }
    }
}

/// Names a side for messages: its groups and, in parentheses, its address (without `/32`).
fn describe(groups: &[&SecurityGroup], addr: &IpNet) -> String {
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let addr = if addr.prefix_len() == addr.max_prefix_len() {
        addr.addr().to_string()
    } else {
        addr.to_string()
    };
    if ids.is_empty() {
        addr
    } else {
        format!("{} ({addr})", ids.join(","))
    }
}

fn find_admit(
    groups: &[&SecurityGroup],
    rules: impl Fn(&SecurityGroup) -> &[Rule],
    port: u16,
    other_groups: &[&SecurityGroup],
    other_addr: &IpNet,
) -> Option<Admit> {
    groups.iter().find_map(|g| {
        rules(g).iter().enumerate().find_map(|(i, r)| {
            (r.covers_tcp(port) && r.admits(other_groups, other_addr)).then(|| Admit {
                group: g.id.clone(),
                index: i,
                rule: r.clone(),
            })
        })
    })
}

/// Whether a new TCP connection from the sender to the receiver's `port` is admitted by the
/// security groups: an egress rule on one of `src_groups` must admit the receiver, and an
/// ingress rule on one of `dst_groups` must admit the sender. `src` and `dst` are each side's
/// address. A single host is a /32 (`IpNet::from(ip)`), or use a subnet's CIDR when only that is
/// known. A CIDR rule admits a side only if it contains the whole of that side's range, so a
/// subnet-wide answer holds for every address in it.
pub fn can_connect(
    src_groups: &[&SecurityGroup],
    dst_groups: &[&SecurityGroup],
    port: u16,
    src: IpNet,
    dst: IpNet,
) -> Verdict {
    let egress = find_admit(src_groups, |g| &g.egress, port, dst_groups, &dst);
    let ingress = find_admit(dst_groups, |g| &g.ingress, port, src_groups, &src);
    match (egress, ingress) {
        (Some(egress), Some(ingress)) => Verdict::Open { egress, ingress },
        (e, i) => {
            let ids = |gs: &[&SecurityGroup]| gs.iter().map(|g| g.id.clone()).collect::<Vec<_>>();
            let mut missing = Vec::new();
            if e.is_none() {
                missing.push(Missing::Egress {
                    groups: ids(src_groups),
                    to: describe(dst_groups, &dst),
                    port,
                });
            }
            if i.is_none() {
                missing.push(Missing::Ingress {
                    groups: ids(dst_groups),
                    from: describe(src_groups, &src),
                    port,
                });
            }
            Verdict::Blocked(missing)
        }
    }
}

/// Whether `group` admits inbound TCP `port` from the addresses of managed prefix list `pl_id`
/// (e.g. `com.amazonaws.global.cloudfront.origin-facing`): a rule naming that prefix list, or an
/// IPv4 `0.0.0.0/0` rule, which contains any list's IPv4 entries. Use [`open_to_world`] to tell
/// the two apart when the point is that *only* the list gets in.
pub fn admits_prefix_list(group: &SecurityGroup, pl_id: &str, port: u16) -> bool {
    prefix_list_rule(&group.ingress, pl_id, port).is_some()
}

/// The egress counterpart of [`admits_prefix_list`], e.g. tasks reaching S3 through a gateway
/// endpoint (whose prefix list is `pl-...` for `com.amazonaws.REGION.s3`).
pub fn egress_admits_prefix_list(group: &SecurityGroup, pl_id: &str, port: u16) -> bool {
    prefix_list_rule(&group.egress, pl_id, port).is_some()
}

fn prefix_list_rule<'a>(rules: &'a [Rule], pl_id: &str, port: u16) -> Option<&'a Rule> {
    rules.iter().find(|r| {
        r.covers_tcp(port)
            && match &r.peer {
                Peer::PrefixList(id) => id == pl_id,
                Peer::Cidr(n) => n.prefix_len() == 0,
                _ => false,
            }
    })
}

/// An ingress rule admitting TCP `port` from anywhere (`0.0.0.0/0` or `::/0`), if there is one.
pub fn open_to_world(group: &SecurityGroup, port: u16) -> Option<&Rule> {
    group.ingress.iter().find(|r| {
        r.covers_tcp(port)
            && match &r.peer {
                Peer::Cidr(n) => n.prefix_len() == 0,
                Peer::Cidr6(n) => n.prefix_len() == 0,
                _ => false,
            }
    })
}

// ---------------------------------------------------------------------------------------------
// Route tables
// ---------------------------------------------------------------------------------------------

/// A route's destination: `DestinationCidrBlock`/`DestinationIpv6CidrBlock`, or
/// `DestinationPrefixListId` (what a gateway endpoint adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Cidr(IpNet),
    PrefixList(String),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Cidr(n) => write!(f, "{n}"),
            Destination::PrefixList(p) => f.write_str(p),
        }
    }
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `GatewayId` `local`: the VPC itself.
    Local,
    /// `GatewayId` `igw-...`.
    Igw(String),
    /// `NatGatewayId`.
    Nat(String),
    /// `GatewayId` `vpce-...` (gateway endpoint).
    VpcEndpoint(String),
    /// `VpcPeeringConnectionId`.
    Peering(String),
    /// Anything else (transit gateway, network interface, ...), described for messages.
    Other(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::Igw(id)
            | Target::Nat(id)
            | Target::VpcEndpoint(id)
            | Target::Peering(id)
            | Target::Other(id) => f.write_str(id),
        }
    }
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Destination,
    pub target: Target,
    /// EC2 `State` `blackhole`: the target is gone and the route drops traffic.
    pub blackhole: bool,
}

impl Route {
    /// An active route.
    pub fn new(destination: Destination, target: Target) -> Route {
        Route {
            destination,
            target,
            blackhole: false,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.destination, self.target)?;
        if self.blackhole {
            f.write_str(" (blackhole)")?;
        }
        Ok(())
    }
}

/// A route table with its explicit subnet associations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    /// Subnets explicitly associated with this table.
    pub subnet_ids: Vec<String>,
    /// Whether this is the VPC's main table (used by subnets with no explicit association).
    pub is_main: bool,
    pub routes: Vec<Route>,
}

/// What [`route_for`] looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A destination address: longest-prefix match over the CIDR routes.
    Ip(IpAddr),
    /// A managed prefix list id: the route whose destination is that list.
    PrefixList(String),
}

impl From<IpAddr> for Lookup {
    fn from(ip: IpAddr) -> Lookup {
        Lookup::Ip(ip)
    }
}

impl From<Ipv4Addr> for Lookup {
    fn from(ip: Ipv4Addr) -> Lookup {
        Lookup::Ip(IpAddr::V4(ip))
    }
}

/// The route `table` uses for `destination`. For an address, this is the most specific CIDR
/// route containing it. Prefix-list routes are left out, because their entries are not known
/// here. For a prefix list, it is the route naming that list. A blackhole route is returned like
/// any other (it does match).
pub fn route_for(table: &RouteTable, destination: impl Into<Lookup>) -> Option<&Route> {
    match destination.into() {
        Lookup::Ip(ip) => table
            .routes
            .iter()
            .filter_map(|r| match &r.destination {
                Destination::Cidr(n) if n.contains(&ip) => Some((n.prefix_len(), r)),
                _ => None,
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, r)| r),
        Lookup::PrefixList(id) => table
            .routes
            .iter()
            .find(|r| matches!(&r.destination, Destination::PrefixList(p) if *p == id)),
    }
}

/// The table a subnet uses: the one explicitly associated with it, else the main table. Pass
/// the tables of the subnet's VPC only, since each VPC has its own main table.
pub fn table_for_subnet<'a>(tables: &'a [RouteTable], subnet_id: &str) -> Option<&'a RouteTable> {
    tables
        .iter()
        .find(|t| t.subnet_ids.iter().any(|s| s == subnet_id))
        .or_else(|| tables.iter().find(|t| t.is_main))
}

/// Where a subnet's traffic for some destination goes, from [`reaches_internet`] and
/// [`reaches_prefix_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach<'a> {
    /// Reached, through this route.
    Yes {
        subnet: String,
        table: &'a RouteTable,
        route: &'a Route,
    },
    /// The subnet has no explicit association and the VPC has no main table among those given.
    NoTable { subnet: String },
    /// The table has no route for the destination. `fallback` is the route the traffic would
    /// take instead, if any (for a prefix list: the `0.0.0.0/0` route).
    NoRoute {
        subnet: String,
        table: &'a RouteTable,
        wanted: String,
        fallback: Option<&'a Route>,
    },
    /// The route exists but is a blackhole.
    Blackhole {
        subnet: String,
        table: &'a RouteTable,
        route: &'a Route,
    },
    /// The route goes somewhere other than what was expected.
    WrongTarget {
        subnet: String,
        table: &'a RouteTable,
        route: &'a Route,
        expected: &'static str,
    },
}

impl Reach<'_> {
    pub fn is_reached(&self) -> bool {
        matches!(self, Reach::Yes { .. })
    }
}

impl fmt::Display for Reach<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::Yes {
                subnet,
                table,
                route,
            } => write!(
                f,
                "{subnet} reaches {} via {} ({route})",
                route.destination, table.id
            ),
            Reach::NoTable { subnet } => write!(
                f,
                "{subnet} has no route table (no association and no main table)"
            ),
            Reach::NoRoute {
                subnet,
                table,
                wanted,
                fallback,
            } => {
                write!(f, "{subnet}: no route to {wanted} in {}", table.id)?;
                if let Some(r) = fallback {
                    write!(f, "; traffic would take {r}")?;
                }
                Ok(())
            }
            Reach::Blackhole {
                subnet,
                table,
                route,
            } => write!(f, "{subnet}: route {route} in {} is a blackhole", table.id),
            Reach::WrongTarget {
                subnet,
                table,
                route,
                expected,
            } => {
                write!(
                    f,
                    "{subnet}: route {route} in {} is not via {expected}",
                    table.id
                )
            }
        }
    }
}

fn default_v4() -> IpNet {
    IpNet::V4(Ipv4Net::default())
}

/// Whether a subnet's `0.0.0.0/0` route goes to an internet gateway (public subnet) or a NAT
/// gateway (private subnet with egress). This is the first hop only. For a NAT gateway, check
/// its own subnet the same way, expecting an internet gateway. Reaching the internet through an
/// internet gateway also needs a public IP on the interface, which is not checked here.
pub fn reaches_internet<'a>(tables: &'a [RouteTable], subnet_id: &str) -> Reach<'a> {
    let subnet = subnet_id.to_string();
    let Some(table) = table_for_subnet(tables, subnet_id) else {
        return Reach::NoTable { subnet };
    };
    let default = table
        .routes
        .iter()
        .find(|r| r.destination == Destination::Cidr(default_v4()));
    match default {
        None => Reach::NoRoute {
            subnet,
            table,
            wanted: "0.0.0.0/0".into(),
            fallback: None,
        },
        Some(route) if route.blackhole => Reach::Blackhole {
            subnet,
            table,
            route,
        },
        Some(route) => match route.target {
            Target::Igw(_) | Target::Nat(_) => Reach::Yes {
                subnet,
                table,
                route,
            },
            _ => Reach::WrongTarget {
                subnet,
                table,
                route,
                expected: "an internet or NAT gateway",
            },
        },
    }
}

/// Whether a subnet reaches a prefix-listed service (S3, DynamoDB) through a gateway endpoint:
/// its table needs a route whose destination is `pl_id` and whose target is a VPC endpoint.
/// AWS adds that route to each table associated with the endpoint.
pub fn reaches_prefix_list<'a>(
    tables: &'a [RouteTable],
    subnet_id: &str,
    pl_id: &str,
) -> Reach<'a> {
    let subnet = subnet_id.to_string();
    let Some(table) = table_for_subnet(tables, subnet_id) else {
        return Reach::NoTable { subnet };
    };
    match route_for(table, Lookup::PrefixList(pl_id.to_string())) {
        None => Reach::NoRoute {
            subnet,
            table,
            wanted: pl_id.to_string(),
            fallback: table
                .routes
                .iter()
                .find(|r| r.destination == Destination::Cidr(default_v4())),
        },
        Some(route) if route.blackhole => Reach::Blackhole {
            subnet,
            table,
            route,
        },
        Some(route) => match route.target {
            Target::VpcEndpoint(_) => Reach::Yes {
                subnet,
                table,
                route,
            },
            _ => Reach::WrongTarget {
                subnet,
                table,
                route,
                expected: "a VPC endpoint",
            },
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn host(s: &str) -> IpNet {
        IpNet::from(s.parse::<IpAddr>().unwrap())
    }
    fn sg(id: &str, ingress: Vec<Rule>, egress: Vec<Rule>) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            ingress,
            egress,
        }
    }
    fn group(id: &str) -> Peer {
        Peer::Group(id.into())
    }
    /// AWS's default egress rule on a new group.
    fn default_egress() -> Vec<Rule> {
        vec![Rule::all_traffic(Peer::Cidr(v4("0.0.0.0/0")))]
    }

    // ---- security groups ---------------------------------------------------------------------

    #[test]
    fn app_to_database_by_group_reference() {
        let app = sg("sg-app", vec![], default_egress());
        let db = sg(
            "sg-db",
            vec![Rule::tcp(5432, 5432, group("sg-app"))],
            vec![],
        );
        let v = can_connect(&[&app], &[&db], 5432, net("10.0.1.0/24"), host("10.0.20.5"));
        match &v {
            Verdict::Open { egress, ingress } => {
                assert_eq!((egress.group.as_str(), egress.index), ("sg-app", 0));
                assert_eq!((ingress.group.as_str(), ingress.index), ("sg-db", 0));
            }
            other => panic!("expected open, got {other}"),
        }
        assert!(v.is_open());
        assert_eq!(
            v.to_string(),
            "open: egress all traffic 0.0.0.0/0 on sg-app, ingress tcp/5432 sg-app on sg-db"
        );
        // Another port is not admitted.
        let v = can_connect(&[&app], &[&db], 3306, net("10.0.1.0/24"), host("10.0.20.5"));
        assert_eq!(
            v.to_string(),
            "no ingress on sg-db from sg-app (10.0.1.0/24) tcp/3306"
        );
    }

    #[test]
    fn missing_egress_and_missing_ingress_are_named() {
        let app = sg(
            "sg-1",
            vec![],
            vec![Rule::tcp(443, 443, Peer::Cidr(v4("0.0.0.0/0")))],
        );
        let db = sg("sg-2", vec![], vec![]);
        let v = can_connect(&[&app], &[&db], 5432, host("10.0.1.7"), host("10.0.2.9"));
        assert_eq!(
            v,
            Verdict::Blocked(vec![
                Missing::Egress {
                    groups: vec!["sg-1".into()],
                    to: "sg-2 (10.0.2.9)".into(),
                    port: 5432
                },
                Missing::Ingress {
                    groups: vec!["sg-2".into()],
                    from: "sg-1 (10.0.1.7)".into(),
                    port: 5432
                },
            ])
        );
        assert_eq!(
            v.to_string(),
            "no egress on sg-1 to sg-2 (10.0.2.9) tcp/5432; no ingress on sg-2 from sg-1 (10.0.1.7) tcp/5432"
        );
        // Only the egress side missing: egress to a group the receiver does not carry.
        let app = sg(
            "sg-1",
            vec![],
            vec![Rule::tcp(5432, 5432, group("sg-other"))],
        );
        let db = sg("sg-2", vec![Rule::tcp(5432, 5432, group("sg-1"))], vec![]);
        let v = can_connect(&[&app], &[&db], 5432, host("10.0.1.7"), host("10.0.2.9"));
        assert_eq!(
            v.to_string(),
            "no egress on sg-1 to sg-2 (10.0.2.9) tcp/5432"
        );
        // A sender without groups.
        let v = can_connect(&[], &[&db], 5432, host("10.0.1.7"), host("10.0.2.9"));
        assert!(
            v.to_string()
                .starts_with("no egress on (no security groups) to sg-2"),
            "{v}"
        );
    }

    #[test]
    fn egress_by_group_reference_and_self_reference() {
        // Tasks and their peers in one group that references itself.
        let mesh = sg(
            "sg-mesh",
            vec![Rule::tcp(8080, 8080, group("sg-mesh"))],
            vec![Rule::tcp(8080, 8080, group("sg-mesh"))],
        );
        assert!(
            can_connect(&[&mesh], &[&mesh], 8080, host("10.0.1.1"), host("10.0.1.2")).is_open()
        );
        assert!(
            !can_connect(&[&mesh], &[&mesh], 8081, host("10.0.1.1"), host("10.0.1.2")).is_open()
        );
    }

    #[test]
    fn any_of_several_groups_suffices() {
        let base = sg("sg-base", vec![], vec![]);
        let out = sg("sg-out", vec![], default_egress());
        let db_a = sg("sg-db-a", vec![], vec![]);
        let db_b = sg(
            "sg-db-b",
            vec![Rule::tcp(5432, 5432, group("sg-base"))],
            vec![],
        );
        let v = can_connect(
            &[&base, &out],
            &[&db_a, &db_b],
            5432,
            host("10.0.1.1"),
            host("10.0.2.2"),
        );
        match v {
            Verdict::Open { egress, ingress } => {
                assert_eq!(egress.group, "sg-out");
                assert_eq!(ingress.group, "sg-db-b");
            }
            other => panic!("{other}"),
        }
        let v = can_connect(
            &[&base],
            &[&db_a, &db_b],
            5432,
            host("10.0.1.1"),
            host("10.0.2.2"),
        );
        assert_eq!(
            v.to_string(),
            "no egress on sg-base to sg-db-a,sg-db-b (10.0.2.2) tcp/5432"
        );
    }

    #[test]
    fn cidr_rules_must_contain_the_whole_side() {
        let src = sg("sg-s", vec![], default_egress());
        let dst = sg(
            "sg-d",
            vec![Rule::tcp(5432, 5432, Peer::Cidr(v4("10.0.0.0/16")))],
            vec![],
        );
        assert!(
            can_connect(&[&src], &[&dst], 5432, net("10.0.1.0/24"), host("10.0.9.9")).is_open()
        );
        assert!(
            can_connect(&[&src], &[&dst], 5432, host("10.0.255.1"), host("10.0.9.9")).is_open()
        );
        assert!(
            !can_connect(&[&src], &[&dst], 5432, net("10.1.0.0/24"), host("10.0.9.9")).is_open()
        );
        // A range only partly inside the rule is not proven.
        assert!(
            !can_connect(&[&src], &[&dst], 5432, net("10.0.0.0/15"), host("10.0.9.9")).is_open()
        );
        // IPv6 rule does not admit an IPv4 side, and vice versa.
        let dst6 = sg(
            "sg-d6",
            vec![Rule::tcp(443, 443, Peer::Cidr6("::/0".parse().unwrap()))],
            vec![],
        );
        assert!(!can_connect(&[&src], &[&dst6], 443, host("10.0.1.1"), host("10.0.9.9")).is_open());
        let src6 = sg(
            "sg-s6",
            vec![],
            vec![Rule::all_traffic(Peer::Cidr6("::/0".parse().unwrap()))],
        );
        assert!(can_connect(
            &[&src6],
            &[&dst6],
            443,
            host("2001:db8::1"),
            host("2001:db8::2")
        )
        .is_open());
    }

    #[test]
    fn protocols_and_port_ranges() {
        let any = Peer::Cidr(v4("0.0.0.0/0"));
        assert!(Rule::tcp(1024, 65535, any.clone()).covers_tcp(5432));
        assert!(!Rule::tcp(1024, 65535, any.clone()).covers_tcp(443));
        assert!(Rule::tcp(0, 65535, any.clone()).covers_tcp(0));
        assert!(Rule::all_traffic(any.clone()).covers_tcp(22));
        let numbered = Rule {
            protocol: "6".into(),
            from_port: 443,
            to_port: 443,
            peer: any.clone(),
        };
        assert!(numbered.covers_tcp(443));
        let upper = Rule {
            protocol: "TCP".into(),
            from_port: 443,
            to_port: 443,
            peer: any.clone(),
        };
        assert!(upper.covers_tcp(443));
        let udp = Rule {
            protocol: "udp".into(),
            from_port: 0,
            to_port: 65535,
            peer: any.clone(),
        };
        assert!(!udp.covers_tcp(53));
        let icmp = Rule {
            protocol: "icmp".into(),
            from_port: -1,
            to_port: -1,
            peer: any.clone(),
        };
        assert!(!icmp.covers_tcp(0));
        let inverted = Rule {
            protocol: "tcp".into(),
            from_port: 500,
            to_port: 400,
            peer: any,
        };
        assert!(!inverted.covers_tcp(450));
        assert_eq!(
            Rule::tcp(1024, 65535, group("sg-x")).to_string(),
            "tcp/1024-65535 sg-x"
        );
    }

    #[test]
    fn prefix_list_rules() {
        const CF: &str = "pl-3b927c52"; // CloudFront origin-facing list (us-east-1)
        let alb = sg(
            "sg-alb",
            vec![Rule::tcp(443, 443, Peer::PrefixList(CF.into()))],
            default_egress(),
        );
        assert!(admits_prefix_list(&alb, CF, 443));
        assert!(!admits_prefix_list(&alb, CF, 80));
        assert!(!admits_prefix_list(&alb, "pl-other", 443));
        assert_eq!(open_to_world(&alb, 443), None);
        // can_connect does not know the list's addresses, so a CloudFront edge address is not
        // proven to be admitted through it.
        let edge = sg("sg-edge", vec![], default_egress());
        assert!(!can_connect(
            &[&edge],
            &[&alb],
            443,
            host("130.176.0.1"),
            host("10.0.0.10")
        )
        .is_open());
        // An open 0.0.0.0/0 rule admits the list's addresses too, and is reported as open.
        let open = sg(
            "sg-open",
            vec![Rule::tcp(443, 443, Peer::Cidr(v4("0.0.0.0/0")))],
            vec![],
        );
        assert!(admits_prefix_list(&open, CF, 443));
        assert!(open_to_world(&open, 443).is_some());
        let open6 = sg(
            "sg-open6",
            vec![Rule::all_traffic(Peer::Cidr6("::/0".parse().unwrap()))],
            vec![],
        );
        assert!(open_to_world(&open6, 8080).is_some());
        // Egress to a gateway endpoint's list.
        let task = sg(
            "sg-task",
            vec![],
            vec![Rule::tcp(443, 443, Peer::PrefixList("pl-63a5400a".into()))],
        );
        assert!(egress_admits_prefix_list(&task, "pl-63a5400a", 443));
        assert!(!egress_admits_prefix_list(&task, "pl-63a5400a", 80));
        assert!(egress_admits_prefix_list(
            &sg("sg-d", vec![], default_egress()),
            "pl-63a5400a",
            443
        ));
    }

    // ---- route tables ------------------------------------------------------------------------

    fn private_table() -> RouteTable {
        RouteTable {
            id: "rtb-private".into(),
            subnet_ids: vec!["subnet-priv-a".into(), "subnet-priv-b".into()],
            is_main: false,
            routes: vec![
                Route::new(Destination::Cidr(net("10.0.0.0/16")), Target::Local),
                Route::new(
                    Destination::Cidr(net("0.0.0.0/0")),
                    Target::Nat("nat-1".into()),
                ),
                Route::new(
                    Destination::Cidr(net("10.0.5.0/24")),
                    Target::Peering("pcx-1".into()),
                ),
                Route::new(
                    Destination::PrefixList("pl-63a5400a".into()),
                    Target::VpcEndpoint("vpce-s3".into()),
                ),
            ],
        }
    }
    fn public_table() -> RouteTable {
        RouteTable {
            id: "rtb-public".into(),
            subnet_ids: vec!["subnet-pub-a".into()],
            is_main: false,
            routes: vec![
                Route::new(Destination::Cidr(net("10.0.0.0/16")), Target::Local),
                Route::new(
                    Destination::Cidr(net("0.0.0.0/0")),
                    Target::Igw("igw-1".into()),
                ),
            ],
        }
    }
    fn main_table() -> RouteTable {
        RouteTable {
            id: "rtb-main".into(),
            subnet_ids: vec![],
            is_main: true,
            routes: vec![Route::new(
                Destination::Cidr(net("10.0.0.0/16")),
                Target::Local,
            )],
        }
    }

    #[test]
    fn route_for_uses_longest_prefix() {
        let t = private_table();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            route_for(&t, ip("10.0.5.4")).unwrap().target,
            Target::Peering("pcx-1".into())
        );
        assert_eq!(route_for(&t, ip("10.0.1.1")).unwrap().target, Target::Local);
        assert_eq!(
            route_for(&t, ip("8.8.8.8")).unwrap().target,
            Target::Nat("nat-1".into())
        );
        assert_eq!(
            route_for(&t, "52.216.0.1".parse::<Ipv4Addr>().unwrap())
                .unwrap()
                .target,
            Target::Nat("nat-1".into())
        );
        assert_eq!(route_for(&t, ip("2001:db8::1")), None);
        assert_eq!(route_for(&main_table(), ip("8.8.8.8")), None);
        // Order of routes does not matter.
        let mut rev = private_table();
        rev.routes.reverse();
        assert_eq!(
            route_for(&rev, ip("10.0.5.4")).unwrap().target,
            Target::Peering("pcx-1".into())
        );
    }

    #[test]
    fn route_for_prefix_list() {
        let t = private_table();
        let r = route_for(&t, Lookup::PrefixList("pl-63a5400a".into())).unwrap();
        assert_eq!(r.target, Target::VpcEndpoint("vpce-s3".into()));
        assert_eq!(r.to_string(), "pl-63a5400a -> vpce-s3");
        assert_eq!(
            route_for(&t, Lookup::PrefixList("pl-02cd2c6b".into())),
            None
        );
    }

    #[test]
    fn subnets_use_their_table_or_the_main_one() {
        let tables = vec![main_table(), private_table(), public_table()];
        assert_eq!(
            table_for_subnet(&tables, "subnet-priv-b").unwrap().id,
            "rtb-private"
        );
        assert_eq!(
            table_for_subnet(&tables, "subnet-pub-a").unwrap().id,
            "rtb-public"
        );
        assert_eq!(
            table_for_subnet(&tables, "subnet-unassociated").unwrap().id,
            "rtb-main"
        );
        assert_eq!(table_for_subnet(&tables[1..], "subnet-unassociated"), None);
    }

    #[test]
    fn internet_reachability() {
        let mut tables = vec![main_table(), private_table(), public_table()];
        let r = reaches_internet(&tables, "subnet-priv-a");
        assert!(r.is_reached());
        assert_eq!(
            r.to_string(),
            "subnet-priv-a reaches 0.0.0.0/0 via rtb-private (0.0.0.0/0 -> nat-1)"
        );
        assert!(reaches_internet(&tables, "subnet-pub-a").is_reached());
        let iso = reaches_internet(&tables, "subnet-isolated");
        assert!(matches!(iso, Reach::NoRoute { .. }));
        assert_eq!(
            iso.to_string(),
            "subnet-isolated: no route to 0.0.0.0/0 in rtb-main"
        );
        assert!(matches!(
            reaches_internet(&tables[1..], "subnet-x"),
            Reach::NoTable { .. }
        ));
        // A deleted NAT gateway leaves a blackhole.
        tables[1].routes[1].blackhole = true;
        let bh = reaches_internet(&tables, "subnet-priv-a");
        assert!(matches!(bh, Reach::Blackhole { .. }));
        assert_eq!(
            bh.to_string(),
            "subnet-priv-a: route 0.0.0.0/0 -> nat-1 (blackhole) in rtb-private is a blackhole"
        );
        // A default route to somewhere else (transit gateway) is not proven.
        tables[1].routes[1] = Route::new(
            Destination::Cidr(net("0.0.0.0/0")),
            Target::Other("tgw-1".into()),
        );
        let wt = reaches_internet(&tables, "subnet-priv-a");
        assert!(matches!(wt, Reach::WrongTarget { .. }));
        assert_eq!(wt.to_string(), "subnet-priv-a: route 0.0.0.0/0 -> tgw-1 in rtb-private is not via an internet or NAT gateway");
    }

    #[test]
    fn prefix_list_service_reachability() {
        let tables = vec![main_table(), private_table(), public_table()];
        let s3 = reaches_prefix_list(&tables, "subnet-priv-a", "pl-63a5400a");
        assert!(s3.is_reached());
        // The public table has no endpoint route: traffic would go out through the IGW.
        let pubr = reaches_prefix_list(&tables, "subnet-pub-a", "pl-63a5400a");
        assert!(!pubr.is_reached());
        assert_eq!(pubr.to_string(), "subnet-pub-a: no route to pl-63a5400a in rtb-public; traffic would take 0.0.0.0/0 -> igw-1");
        // DynamoDB's list is not routed anywhere.
        assert!(matches!(
            reaches_prefix_list(&tables, "subnet-priv-a", "pl-02cd2c6b"),
            Reach::NoRoute { .. }
        ));
        // A prefix-list route to a NAT instead of an endpoint.
        let mut odd = private_table();
        odd.routes[3].target = Target::Nat("nat-1".into());
        let odd = [odd];
        assert!(matches!(
            reaches_prefix_list(&odd, "subnet-priv-a", "pl-63a5400a"),
            Reach::WrongTarget {
                expected: "a VPC endpoint",
                ..
            }
        ));
        let mut bh = private_table();
        bh.routes[3].blackhole = true;
        let bh = [bh];
        assert!(matches!(
            reaches_prefix_list(&bh, "subnet-priv-a", "pl-63a5400a"),
            Reach::Blackhole { .. }
        ));
    }
}
