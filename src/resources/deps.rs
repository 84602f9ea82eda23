//! What each kind of resource is built on, and the few delete-only rules AWS adds: the
//! edges of the resource graph that `down` walks in reverse.
//!
//! When a step records a resource, [`resolve`] turns its kind's entry in [`BUILT_ON`] into
//! the addresses of the recorded resources it was built on (its VPC, its subnets, its key),
//! and the state keeps them with the record ([`crate::state::ResourceRecord::deps`]). `down`
//! deletes a resource once everything built on it is gone, so it needs neither the config
//! nor the steps' code order; [`DELETE_RULES`] adds what AWS enforces at deletion only
//! (cdkd keeps a table of implicit delete dependencies for the same reason).
//!
//! An entry either narrows to the resources the record names (its attributes, ID or ARN
//! contain theirs: a subnet's VPC) or, where the record does not say which (an ECS
//! service's subnets), takes every recorded resource of that kind in the region. Over-
//! approximating costs some parallelism in `down`, never correctness; the kind-level table
//! is acyclic (a unit test holds it), and edges between resources of one kind only exist
//! where the record names the other (a queue its DLQ), so the resource graph is acyclic too
//! unless two records name each other.

use crate::state::{ResourceRecord, ResourceRef};

/// How a record picks the resources of one needed kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The ones the record names; all of them if it names none (an older record).
    Ref,
    /// Every one.
    All,
}

/// One kind a kind is built on.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub kind: &'static str,
    pub by: By,
    /// Also in other regions: a DR route through a peering connection made from the
    /// stack's region, a CloudFront distribution's us-east-1 web ACL and certificate.
    pub any_region: bool,
}

const fn r(kind: &'static str) -> Need {
    Need {
        kind,
        by: By::Ref,
        any_region: false,
    }
}

const fn all(kind: &'static str) -> Need {
    Need {
        kind,
        by: By::All,
        any_region: false,
    }
}

const fn r_any(kind: &'static str) -> Need {
    Need {
        kind,
        by: By::Ref,
        any_region: true,
    }
}

const fn all_any(kind: &'static str) -> Need {
    Need {
        kind,
        by: By::All,
        any_region: true,
    }
}

const VPC: &str = "ec2:vpc";
const SUBNET: &str = "ec2:subnet";
const IGW: &str = "ec2:internet-gateway";
const EIP: &str = "ec2:elastic-ip";
const NAT: &str = "ec2:nat-gateway";
const ROUTE_TABLE: &str = "ec2:route-table";
const SG: &str = "ec2:security-group";
const PEERING: &str = "ec2:vpc-peering-connection";
const KEY: &str = "kms:key";
const ROLE: &str = "iam:role";
const LOG_GROUP: &str = "logs:log-group";
const BUCKET: &str = "s3:bucket";
const QUEUE: &str = "sqs:queue";
const LB: &str = "elasticloadbalancing:loadbalancer";
const TG: &str = "elasticloadbalancing:targetgroup";
const LISTENER: &str = "elasticloadbalancing:listener";
const CERT: &str = "acm:certificate";
const LAMBDA: &str = "lambda:function";
/// What a role may do comes from its attached policies: whatever acts as the role is built
/// on them too, so its permissions last until it is gone.
const ATTACHMENT: &str = "iam:role-policy-attachment";

/// Every recorded kind and the kinds it is built on: each of its resources is deleted
/// before those. A new resource type adds its line here (a unit test checks every
/// registered provider has one).
pub static BUILT_ON: &[(&str, &[Need])] = &[
    (VPC, &[]),
    (SUBNET, &[r(VPC)]),
    (IGW, &[r(VPC)]),
    (EIP, &[]),
    (NAT, &[r(SUBNET), r(EIP)]),
    (ROUTE_TABLE, &[r(VPC)]),
    ("ec2:route-table-association", &[r(ROUTE_TABLE), r(SUBNET)]),
    // A route through a NAT gateway, the IGW or a peering only black-holes once its target
    // goes: routes go first. The DR side's routes use a peering recorded in the stack's
    // region.
    (
        "ec2:route",
        &[r(ROUTE_TABLE), r(NAT), r(IGW), r_any(PEERING)],
    ),
    (SG, &[r(VPC)]),
    // Every group: a rule names its group and may name a peer group, which AWS refuses to
    // delete while the rule stands (the rule's record does not always name the peer).
    ("ec2:security-group-rule", &[all(SG)]),
    // Interface endpoints put ENIs in subnets under security groups; gateway endpoints sit
    // in route tables.
    (
        "ec2:vpc-endpoint",
        &[r(VPC), all(SUBNET), all(SG), all(ROUTE_TABLE)],
    ),
    // Both VPCs: the DR one is in another region.
    (PEERING, &[r_any(VPC)]),
    (
        "ec2:flow-log",
        &[r(VPC), r(LOG_GROUP), r_any(ROLE), all_any(ATTACHMENT)],
    ),
    (ROLE, &[]),
    ("iam:policy", &[]),
    (ATTACHMENT, &[r_any(ROLE), r_any("iam:policy")]),
    (KEY, &[]),
    ("kms:alias", &[r(KEY)]),
    (LOG_GROUP, &[all(KEY)]),
    (BUCKET, &[all(KEY)]),
    // The source bucket's replication configuration names the replica (in the DR region)
    // and the role S3 replicates as.
    (
        "s3:replication",
        &[all_any(BUCKET), r_any(ROLE), all_any(ATTACHMENT)],
    ),
    ("cloudfront:origin-access-control", &[]),
    ("cloudfront:origin-access-identity", &[]),
    (
        "cloudfront:distribution",
        &[
            all("cloudfront:origin-access-control"),
            all("cloudfront:origin-access-identity"),
            all_any("wafv2:web-acl"),
            all_any(CERT),
            all(BUCKET),
            all(LB),
        ],
    ),
    ("wafv2:web-acl", &[]),
    ("wafv2:web-acl-association", &[r("wafv2:web-acl"), r(LB)]),
    (CERT, &[]),
    (LB, &[all(SUBNET), all(SG), all(BUCKET)]),
    (TG, &[r(VPC)]),
    (LISTENER, &[r(LB), all(TG), all(CERT)]),
    (
        "elasticloadbalancing:listener-rule",
        &[r(LISTENER), all(TG)],
    ),
    // Container Insights writes to the cluster's log group: deleted while the cluster still
    // runs, ECS would recreate it unencrypted, untagged and never expiring.
    ("ecs:cluster", &[all(LOG_GROUP)]),
    (
        "ecs:task-definition",
        &[all_any(ROLE), all(LOG_GROUP), all("ecr:repository")],
    ),
    // A service needs its target groups attached to a listener before it is created, and
    // its tasks' ENIs hold subnets and security groups until it has drained.
    (
        "ecs:service",
        &[
            r("ecs:cluster"),
            all("ecs:task-definition"),
            all(TG),
            all(LISTENER),
            all("elasticloadbalancing:listener-rule"),
            all(SUBNET),
            all(SG),
            all("servicediscovery:service"),
            all_any(ROLE),
            all_any(ATTACHMENT),
        ],
    ),
    // The namespace's private hosted zone is associated with the VPC, which AWS refuses to
    // delete while the association stands.
    ("servicediscovery:namespace", &[r(VPC)]),
    (
        "servicediscovery:service",
        &[r("servicediscovery:namespace")],
    ),
    // A scaling policy must not scale a service back up while it is being deleted.
    (
        "application-autoscaling:scalable-target",
        &[r("ecs:service"), r("dynamodb:table")],
    ),
    (
        "application-autoscaling:scaling-policy",
        &[r("application-autoscaling:scalable-target")],
    ),
    ("rds:db-subnet-group", &[all(SUBNET)]),
    ("rds:db-cluster-parameter-group", &[]),
    // The export's log group is made before the cluster and must outlive it: a running
    // cluster would recreate it, unencrypted, on its next log line.
    (
        "rds:db-cluster",
        &[
            r("rds:db-subnet-group"),
            r("rds:db-cluster-parameter-group"),
            all(SG),
            all(KEY),
            all(LOG_GROUP),
        ],
    ),
    ("rds:db-instance", &[r("rds:db-cluster")]),
    (
        LAMBDA,
        &[
            all_any(ROLE),
            all_any(ATTACHMENT),
            all(SUBNET),
            all(SG),
            all(LOG_GROUP),
            all(KEY),
            all(QUEUE),
        ],
    ),
    ("lambda:event-source-mapping", &[r(LAMBDA), r(QUEUE)]),
    // The transaction queue redrives to the DLQ its record names (`dlq_arn`): deleting the
    // DLQ first would lose what is redriven meanwhile (AWS does not refuse it).
    (QUEUE, &[all(KEY), r(QUEUE)]),
    ("dynamodb:table", &[all(KEY)]),
    ("ecr:repository", &[all(KEY)]),
    ("sns:topic", &[all(KEY)]),
    ("sns:subscription", &[r("sns:topic")]),
    ("cloudwatch:alarm", &[all("sns:topic")]),
    ("cloudwatch:dashboard", &[]),
    ("codedeploy:application", &[]),
    // A schedule invoking a function goes before it: otherwise it fires into nothing.
    ("events:rule", &[r(LAMBDA)]),
    // The group names its application; it acts as the service role (whose permissions must
    // last), shifts the service's listeners between its target groups and watches alarms.
    (
        "codedeploy:deployment-group",
        &[
            r("codedeploy:application"),
            all_any(ROLE),
            all_any(ATTACHMENT),
            all("ecs:service"),
            all(TG),
            all(LISTENER),
            all("cloudwatch:alarm"),
        ],
    ),
    ("backup:vault", &[all(KEY)]),
    // The plan copies recovery points into the DR region's vault.
    ("backup:plan", &[all_any("backup:vault")]),
    (
        "backup:selection",
        &[
            r("backup:plan"),
            all_any(ROLE),
            all_any(ATTACHMENT),
            all("rds:db-cluster"),
        ],
    ),
];

/// What AWS enforces at deletion only: before any `then` resource of a region is deleted,
/// every `first` resource of that region is gone and the hook (if any) has run.
pub struct DeleteRule {
    pub first: &'static [&'static str],
    pub then: &'static [&'static str],
    pub why: &'static str,
    pub hook: Option<Hook>,
}

/// Work a rule does between its `first` and `then` resources, in one region, given that
/// region's records.
pub type Hook = for<'a> fn(
    &'a crate::step::StepCtx,
    &'a [ResourceRecord],
) -> futures::future::BoxFuture<'a, anyhow::Result<()>>;

pub static DELETE_RULES: &[DeleteRule] = &[
    DeleteRule {
        first: &[NAT, LB],
        then: &[IGW],
        why: "an internet gateway cannot be detached while a NAT gateway's or a load \
              balancer's public address is mapped in its VPC",
        hook: None,
    },
    DeleteRule {
        first: &[LB],
        then: &[CERT],
        why: "ACM refuses to delete a certificate it lists as in use (ResourceInUseException), \
              and its in-use list follows a listener's deletion only later: the load balancer \
              goes first",
        hook: None,
    },
    DeleteRule {
        first: &[LAMBDA],
        then: &[SUBNET, SG],
        why: "a deleted VPC function's ENIs linger for minutes and hold its subnets and \
              security groups: they are removed once the functions are gone",
        hook: Some(remove_lambda_enis),
    },
];

fn remove_lambda_enis<'a>(
    ctx: &'a crate::step::StepCtx,
    records: &'a [ResourceRecord],
) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
    Box::pin(async move {
        for vpc in records.iter().filter(|r| r.kind == VPC) {
            crate::resources::ec2::network_interface::remove_lambda_enis(ctx, &vpc.id).await?;
        }
        Ok(())
    })
}

/// The kinds `kind` is built on (none for a kind missing from the table).
pub fn needs(kind: &str) -> &'static [Need] {
    BUILT_ON
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, n)| *n)
        .unwrap_or(&[])
}

/// IAM is global: a role recorded from another region's context is the same role.
fn is_global(kind: &str) -> bool {
    kind.starts_with("iam:")
}

/// Whether `hay` contains `needle` as a whole token (not `vpc-1` inside `vpc-12`).
fn contains_token(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Whether `rec` names `other` in its ID, ARN or attributes.
fn names(rec: &ResourceRecord, other: &ResourceRecord) -> bool {
    let hay = std::iter::once(rec.id.as_str())
        .chain(rec.arn.as_deref())
        .chain(rec.attrs.values().map(String::as_str));
    let needles: Vec<&str> = std::iter::once(other.id.as_str())
        .chain(other.arn.as_deref())
        .collect();
    hay.into_iter()
        .any(|h| needles.iter().any(|n| contains_token(h, n)))
}

/// The resources `rec` is built on among `all` (the state's records, in creation order;
/// `rec` itself may be among them).
pub fn resolve(rec: &ResourceRecord, all: &[ResourceRecord]) -> Vec<ResourceRef> {
    let me = all
        .iter()
        .position(|r| r.kind == rec.kind && r.id == rec.id && r.region == rec.region);
    let mut out = Vec::new();
    for need in needs(&rec.kind) {
        let candidates: Vec<&ResourceRecord> = all
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                r.kind == need.kind
                    && !r.pending
                    && Some(*i) != me
                    && (need.any_region
                        || is_global(&r.kind)
                        || r.region == rec.region
                        || r.region.is_empty()
                        || rec.region.is_empty())
            })
            .map(|(_, r)| r)
            .collect();
        let named: Vec<&ResourceRecord> = match need.by {
            By::Ref => candidates
                .iter()
                .copied()
                .filter(|c| names(rec, c))
                .collect(),
            By::All => Vec::new(),
        };
        // Within one kind only what the record names: "every earlier one" would order
        // records by when they happened to be recorded, not by what they use.
        let chosen = if named.is_empty() && need.kind != rec.kind {
            candidates
        } else {
            named
        };
        out.extend(chosen.into_iter().map(ResourceRecord::address));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    fn rec(kind: &str, id: &str, attrs: &[(&str, &str)]) -> ResourceRecord {
        ResourceRecord {
            step: "network".into(),
            kind: kind.into(),
            id: id.into(),
            arn: None,
            name: id.into(),
            region: "us-east-1".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            created_at: chrono::Utc::now(),
            pending: false,
            deps: None,
        }
    }

    #[test]
    fn every_registered_kind_has_an_entry_and_needs_only_registered_kinds() {
        for kind in crate::resources::kinds() {
            assert!(
                BUILT_ON.iter().any(|(k, _)| *k == kind),
                "{kind} is missing from BUILT_ON"
            );
        }
        for (kind, needs) in BUILT_ON {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
            for n in *needs {
                assert!(
                    crate::resources::provider(n.kind).is_some(),
                    "{kind} needs {}",
                    n.kind
                );
            }
        }
        for rule in DELETE_RULES {
            for k in rule.first.iter().chain(rule.then) {
                assert!(crate::resources::provider(k).is_some(), "{k}");
            }
        }
    }

    #[test]
    fn the_kind_graph_with_the_delete_rules_is_acyclic() {
        // Edge: kind -> a kind it must be deleted before. Same-kind edges are allowed (they
        // only point to earlier records).
        let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
        for (kind, needs) in BUILT_ON {
            for n in *needs {
                if n.kind != *kind {
                    edges.entry(kind).or_default().push(n.kind);
                }
            }
        }
        for rule in DELETE_RULES {
            for f in rule.first {
                edges
                    .entry(f)
                    .or_default()
                    .extend(rule.then.iter().copied());
            }
        }
        fn visit<'a>(
            k: &'a str,
            edges: &HashMap<&'a str, Vec<&'a str>>,
            path: &mut Vec<&'a str>,
            done: &mut Vec<&'a str>,
        ) {
            if done.contains(&k) {
                return;
            }
            assert!(!path.contains(&k), "cycle: {path:?} -> {k}");
            path.push(k);
            for n in edges.get(k).into_iter().flatten() {
                visit(n, edges, path, done);
            }
            path.pop();
            done.push(k);
        }
        let mut done = Vec::new();
        for (kind, _) in BUILT_ON {
            visit(kind, &edges, &mut Vec::new(), &mut done);
        }
    }

    #[test]
    fn a_named_resource_narrows_the_edge_and_an_unnamed_one_takes_all() {
        let vpc1 = rec(VPC, "vpc-1", &[]);
        let vpc12 = rec(VPC, "vpc-12", &[]);
        let subnet = rec(SUBNET, "subnet-a", &[("vpc_id", "vpc-1")]);
        let legacy = rec(SUBNET, "subnet-b", &[]);
        let all = vec![vpc1.clone(), vpc12.clone(), subnet.clone(), legacy.clone()];
        assert_eq!(resolve(&subnet, &all), vec![vpc1.address()]);
        assert_eq!(
            resolve(&legacy, &all),
            vec![vpc1.address(), vpc12.address()]
        );
    }

    #[test]
    fn one_kind_depends_only_on_what_a_record_names_and_regions_stay_apart() {
        let mut dlq = rec(QUEUE, "https://q/dlq", &[]);
        dlq.arn = Some("arn:aws:sqs:us-east-1:1:dlq".into());
        let main = rec(
            QUEUE,
            "https://q/main",
            &[("dlq_arn", "arn:aws:sqs:us-east-1:1:dlq")],
        );
        // Named: the main queue is built on its DLQ, in either record order.
        assert_eq!(
            resolve(&main, &[dlq.clone(), main.clone()]),
            vec![dlq.address()]
        );
        assert_eq!(
            resolve(&main, &[main.clone(), dlq.clone()]),
            vec![dlq.address()]
        );
        // Not named: no edge within the kind at all.
        assert!(resolve(&dlq, &[main.clone(), dlq.clone()]).is_empty());
        let other = rec(QUEUE, "https://q/other", &[]);
        assert!(resolve(&other, &[dlq.clone(), other.clone()]).is_empty());

        let mut far = rec(VPC, "vpc-dr", &[]);
        far.region = "us-west-2".into();
        let here = rec(SG, "sg-1", &[]);
        assert!(resolve(&here, &[far.clone(), here.clone()]).is_empty());
        let peering = rec(PEERING, "pcx-1", &[("peer_vpc_id", "vpc-dr")]);
        assert_eq!(
            resolve(&peering, &[far.clone(), peering.clone()]),
            vec![far.address()]
        );
    }

    #[test]
    fn tokens_match_whole_ids_only() {
        assert!(contains_token("rtb-1|0.0.0.0/0", "rtb-1"));
        assert!(contains_token("arn:aws:x:::thing/vpc-1", "vpc-1"));
        assert!(!contains_token("vpc-12", "vpc-1"));
        assert!(!contains_token("avpc-1", "vpc-1"));
    }
}
