//! Reachability unit tests: security group admission, then route tables.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

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
    assert!(can_connect(&[&mesh], &[&mesh], 8080, host("10.0.1.1"), host("10.0.1.2")).is_open());
    assert!(!can_connect(&[&mesh], &[&mesh], 8081, host("10.0.1.1"), host("10.0.1.2")).is_open());
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
    assert!(can_connect(&[&src], &[&dst], 5432, net("10.0.1.0/24"), host("10.0.9.9")).is_open());
    assert!(can_connect(&[&src], &[&dst], 5432, host("10.0.255.1"), host("10.0.9.9")).is_open());
    assert!(!can_connect(&[&src], &[&dst], 5432, net("10.1.0.0/24"), host("10.0.9.9")).is_open());
    // A range only partly inside the rule is not proven.
    assert!(!can_connect(&[&src], &[&dst], 5432, net("10.0.0.0/15"), host("10.0.9.9")).is_open());
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
