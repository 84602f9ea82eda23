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

mod route;
mod security_group;

pub use route::{
    reaches_internet, reaches_prefix_list, route_for, table_for_subnet, Destination, Lookup, Reach,
    Route, RouteTable, Target,
};
pub use security_group::{
    admits_prefix_list, can_connect, egress_admits_prefix_list, open_to_world, Admit, Missing,
    Peer, Rule, SecurityGroup, Verdict,
};

#[cfg(test)]
mod tests;
