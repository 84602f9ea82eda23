//! Route tables: longest-prefix lookup, the main-table fallback, and where a subnet's traffic to
//! the internet or to a prefix list goes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

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
