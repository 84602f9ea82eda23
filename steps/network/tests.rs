//! Unit tests of `network`.

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
    }
    assert_eq!(ingress(&specs, &ns), [(80, Peer::Group(api.clone()))]);
    // transaction-processor also serves the ALB's /transactions/* (path-based routing).
    assert_eq!(
        ingress(&specs, &tp),
        [(80, Peer::Group(Role::Alb)), (80, Peer::Group(api.clone()))]
    );
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
