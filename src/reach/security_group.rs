//! Security groups: their rules as plain types, and whether a TCP connection between two sides is
//! admitted (egress on the sender, ingress on the receiver).

use std::fmt;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

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
