//! The decisions of `verify`'s path checks, each returning `Ok(what allowed it)` or
//! `Err(what is missing)`: policies through [`crate::policy`] (identity, resource and key
//! policies together, as AWS evaluates them in one account), security groups and routes
//! through [`crate::reach`].

use std::collections::BTreeMap;

use crate::policy::{self, Decision, Policy, PrincipalRef, Request};
use crate::reach::{self, RouteTable, SecurityGroup};

use super::live::RolePolicies;

/// Condition context: key -> values.
pub type Ctx = BTreeMap<String, Vec<String>>;

pub type Verdict = Result<String, String>;

fn parse_all(docs: &[(String, serde_json::Value)]) -> Result<Vec<Policy>, String> {
    docs.iter()
        .map(|(name, d)| {
            Policy::from_value(d)
                .map(|p| p.with_label(name.clone()))
                .map_err(|e| format!("policy {name} is malformed: {e}"))
        })
        .collect()
}

fn parse_opt(doc: Option<&serde_json::Value>, what: &str) -> Result<Option<Policy>, String> {
    doc.map(|d| Policy::from_value(d).map_err(|e| format!("{what} is malformed: {e}")))
        .transpose()
}

fn request(principal: PrincipalRef, action: &str, resource: &str, ctx: &Ctx) -> Request {
    Request {
        principal,
        action: action.to_string(),
        resource: resource.to_string(),
        context: ctx.clone(),
    }
}

/// The role as a principal; an unparsable ARN still names it (its account is then unknown, so
/// only statements naming it exactly can match).
fn role_principal(role: &RolePolicies) -> PrincipalRef {
    PrincipalRef::aws(&role.role_arn).unwrap_or_else(|_| PrincipalRef::Aws {
        arn: role.role_arn.clone(),
        account: String::new(),
    })
}

fn explain(d: Decision, what: &str) -> Verdict {
    match d {
        Decision::Allow(_) => Ok(String::new()),
        Decision::ExplicitDeny(r) => Err(format!("{what} is denied by {r}")),
        Decision::ImplicitDeny => Err(format!("no statement allows {what}")),
    }
}

/// The role's own policies allow `action` on `resource`.
pub fn identity(role: &RolePolicies, action: &str, resource: &str, ctx: &Ctx) -> Verdict {
    let ids = parse_all(&role.policies)?;
    let req = request(role_principal(role), action, resource, ctx);
    let what = format!(
        "{action} on {} for {}",
        short(resource),
        short(&role.role_arn)
    );
    explain(policy::evaluate(&ids, None, &req), &what)
}

/// The role's policies and the resource's policy together (same account).
pub fn role_resource(
    role: &RolePolicies,
    resource_policy: Option<&serde_json::Value>,
    action: &str,
    resource: &str,
    ctx: &Ctx,
) -> Verdict {
    let ids = parse_all(&role.policies)?;
    let res = parse_opt(resource_policy, "the resource policy")?;
    let req = request(role_principal(role), action, resource, ctx);
    let what = format!(
        "{action} on {} for {}",
        short(resource),
        short(&role.role_arn)
    );
    explain(policy::evaluate(&ids, res.as_ref(), &req), &what)
}

/// A service principal (e.g. `cloudfront.amazonaws.com`) allowed by the resource policy alone.
pub fn service_resource(
    service: &str,
    resource_policy: Option<&serde_json::Value>,
    action: &str,
    resource: &str,
    ctx: &Ctx,
) -> Verdict {
    let res = parse_opt(resource_policy, "the resource policy")?;
    let Some(res) = res else {
        return Err(format!(
            "there is no resource policy to let {service} {action}"
        ));
    };
    let req = request(PrincipalRef::service(service), action, resource, ctx);
    explain(
        policy::evaluate(&[], Some(&res), &req),
        &format!("{action} for {service}"),
    )
}

/// Another principal by ARN (an OAI's IAM user) allowed by the resource policy alone.
pub fn principal_resource(
    arn: &str,
    resource_policy: Option<&serde_json::Value>,
    action: &str,
    resource: &str,
    ctx: &Ctx,
) -> Verdict {
    let res = parse_opt(resource_policy, "the resource policy")?;
    let Some(res) = res else {
        return Err(format!("there is no resource policy to let {arn} {action}"));
    };
    // An OAI's IAM user lives in the `cloudfront` pseudo-account: not a 12-digit account ID.
    let account = arn.split(':').nth(4).unwrap_or_default().to_string();
    let principal = PrincipalRef::Aws {
        arn: arn.to_string(),
        account,
    };
    let req = request(principal, action, resource, ctx);
    explain(
        policy::evaluate(&[], Some(&res), &req),
        &format!("{action} for {arn}"),
    )
}

/// A role using a key: the key policy allows it directly, or delegates to IAM (the account
/// root) and the role's policies allow it.
pub fn kms_role(
    key_policy: &serde_json::Value,
    role: &RolePolicies,
    action: &str,
    key_arn: &str,
    ctx: &Ctx,
) -> Verdict {
    let kp = Policy::from_value(key_policy).map_err(|e| format!("key policy is malformed: {e}"))?;
    let ids = parse_all(&role.policies)?;
    let req = request(role_principal(role), action, key_arn, ctx);
    let what = format!(
        "{action} on key {} for {}",
        short(key_arn),
        short(&role.role_arn)
    );
    explain(policy::evaluate_kms(&kp, &ids, &req), &what)
}

/// A service principal using a key: only the key policy can allow it.
pub fn kms_service(
    key_policy: &serde_json::Value,
    service: &str,
    action: &str,
    key_arn: &str,
    ctx: &Ctx,
) -> Verdict {
    let kp = Policy::from_value(key_policy).map_err(|e| format!("key policy is malformed: {e}"))?;
    let req = request(PrincipalRef::service(service), action, key_arn, ctx);
    explain(
        policy::evaluate_kms(&kp, &[], &req),
        &format!("{action} for {service}"),
    )
}

/// The role's trust policy lets `service` assume it; `ctx` is what the service sends along
/// (`aws:SourceAccount`, `aws:SourceArn`), which confused-deputy conditions check.
pub fn trusts(role: &RolePolicies, service: &str, ctx: &Ctx) -> Verdict {
    let trust = Policy::from_value(&role.trust).map_err(|e| {
        format!(
            "trust policy of {} is malformed: {e}",
            short(&role.role_arn)
        )
    })?;
    let req = request(
        PrincipalRef::service(service),
        "sts:AssumeRole",
        &role.role_arn,
        ctx,
    );
    match policy::evaluate(&[], Some(&trust), &req) {
        Decision::Allow(_) => Ok(String::new()),
        _ => Err(format!(
            "{service} may not assume {}",
            short(&role.role_arn)
        )),
    }
}

/// The last part of an ARN, enough to name it in a reason.
fn short(arn: &str) -> &str {
    arn.rsplit(['/', ':'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(arn)
}

fn any_v4() -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::default()
}

fn port16(port: i32) -> u16 {
    u16::try_from(port).unwrap_or(0)
}

/// TCP from members of `src` to members of `dst` on `port` inside the VPC whose block is
/// `vpc`: egress on one side, ingress on the other (AWS-CONTRACTS B6: both are needed). Each
/// side's address is the VPC's block, so a CIDR rule counts only if it covers the whole VPC;
/// group references match by membership.
pub fn connects(
    src: &[SecurityGroup],
    dst: &[SecurityGroup],
    port: i32,
    vpc: ipnet::IpNet,
) -> Verdict {
    let (s, d): (Vec<&SecurityGroup>, Vec<&SecurityGroup>) =
        (src.iter().collect(), dst.iter().collect());
    match reach::can_connect(&s, &d, port16(port), vpc, vpc) {
        reach::Verdict::Open { .. } => Ok(String::new()),
        blocked => Err(blocked.to_string()),
    }
}

/// One of `groups` admits the prefix list `pl` on `port`.
pub fn admits_prefix_list(groups: &[SecurityGroup], pl: &str, port: i32) -> Verdict {
    if groups
        .iter()
        .any(|g| reach::admits_prefix_list(g, pl, port16(port)))
    {
        Ok(format!(
            "ingress from CloudFront's origin-facing prefix list on {port}"
        ))
    } else {
        Err(format!(
            "no ingress rule from prefix list {pl} on tcp/{port}"
        ))
    }
}

/// One of `groups` admits 0.0.0.0/0 on `port` (where no CloudFront prefix list exists).
pub fn admits_anywhere(groups: &[SecurityGroup], port: i32) -> Verdict {
    if groups
        .iter()
        .any(|g| reach::open_to_world(g, port16(port)).is_some())
    {
        Ok(format!("ingress from anywhere on {port}"))
    } else {
        Err(format!("no ingress on tcp/{port}"))
    }
}

/// None of `groups` admits the whole internet: the ALB is reached through CloudFront only.
pub fn no_open_ingress(groups: &[SecurityGroup]) -> Verdict {
    for g in groups {
        for r in &g.ingress {
            let open = match &r.peer {
                reach::Peer::Cidr(c) => c.prefix_len() == 0,
                reach::Peer::Cidr6(c) => c.prefix_len() == 0,
                _ => false,
            };
            if open {
                return Err(format!(
                    "{} admits {r} from anywhere: requests can bypass CloudFront (and its WAF)",
                    g.id
                ));
            }
        }
    }
    Ok(String::new())
}

/// Egress on `port` to anywhere from one of `groups`.
pub fn egress_anywhere(groups: &[SecurityGroup], port: i32) -> Verdict {
    let all = any_v4();
    if groups.iter().any(|g| {
        g.egress.iter().any(|r| {
            r.covers_tcp(port16(port)) && matches!(&r.peer, reach::Peer::Cidr(c) if *c == all)
        })
    }) {
        Ok(String::new())
    } else {
        Err(format!(
            "no egress on tcp/{port} to the internet (0.0.0.0/0)"
        ))
    }
}

/// `subnet`'s route table sends 0.0.0.0/0 to an internet gateway (`public`), or to a NAT or
/// internet gateway.
pub fn internet_route(tables: &[RouteTable], subnet: &str, public: bool) -> Verdict {
    let reach = reach::reaches_internet(tables, subnet);
    match &reach {
        reach::Reach::Yes { route, .. } => match route.target {
            reach::Target::Nat(_) if public => Err(format!("{reach}, not an internet gateway")),
            _ => Ok(String::new()),
        },
        _ => Err(reach.to_string()),
    }
}

/// `subnet` reaches an AWS service with a gateway endpoint (`pl`, its prefix list) or through
/// NAT, and the groups let HTTPS out that way.
pub fn service_route(
    tables: &[RouteTable],
    subnet: &str,
    pl: Option<&str>,
    groups: &[SecurityGroup],
    port: i32,
) -> Verdict {
    if let Some(pl) = pl {
        if reach::reaches_prefix_list(tables, subnet, pl).is_reached() {
            if groups
                .iter()
                .any(|g| reach::egress_admits_prefix_list(g, pl, port16(port)))
            {
                return Ok("routed through the gateway endpoint".into());
            }
            return Err(format!(
                "no egress on tcp/{port} to the endpoint's prefix list {pl} (or 0.0.0.0/0)"
            ));
        }
    }
    internet_route(tables, subnet, false)?;
    egress_anywhere(groups, port).map(|_| "through NAT".into())
}

/// `subnet` reaches ECR: NAT, or the `ecr.api` and `ecr.dkr` interface endpoints (private DNS,
/// their groups admitting the tasks) plus the S3 gateway endpoint for the layers
/// (AWS-CONTRACTS B4).
// Every argument is one independent fact read from the account; a struct would only name
// them twice.
#[allow(clippy::too_many_arguments)]
pub fn ecr_route(
    tables: &[RouteTable],
    subnet: &str,
    endpoints: &[aws_sdk_ec2::types::VpcEndpoint],
    task_groups: &[SecurityGroup],
    endpoint_groups: &[SecurityGroup],
    region: &str,
    s3_pl: Option<&str>,
    vpc: ipnet::IpNet,
) -> Verdict {
    let interface = |svc: &str| {
        let name = format!("com.amazonaws.{region}.{svc}");
        endpoints.iter().find(|e| {
            e.service_name() == Some(name.as_str())
                && e.vpc_endpoint_type() == Some(&aws_sdk_ec2::types::VpcEndpointType::Interface)
        })
    };
    if let (Some(api), Some(dkr)) = (interface("ecr.api"), interface("ecr.dkr")) {
        for e in [api, dkr] {
            if e.private_dns_enabled() != Some(true) {
                return Err(format!(
                    "endpoint {} has no private DNS: tasks resolve ECR's public name",
                    e.vpc_endpoint_id().unwrap_or_default()
                ));
            }
            let ids: Vec<&str> = e.groups().iter().filter_map(|g| g.group_id()).collect();
            let groups: Vec<SecurityGroup> = endpoint_groups
                .iter()
                .filter(|g| ids.contains(&g.id.as_str()))
                .cloned()
                .collect();
            connects(task_groups, &groups, 443, vpc)?;
        }
        return service_route(tables, subnet, s3_pl, task_groups, 443)
            .map(|_| "ECR interface endpoints".into());
    }
    internet_route(tables, subnet, false)?;
    egress_anywhere(task_groups, 443).map(|_| "through NAT".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_cover_one_label_with_a_wildcard() {
        use crate::config::certificate_name_covers as name_covers;
        assert!(name_covers("origin.example.com", "origin.example.com"));
        assert!(name_covers("*.example.com", "origin.example.com"));
        assert!(!name_covers("*.example.com", "a.origin.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers(
            "app.example.com",
            "alb-1.us-east-1.elb.amazonaws.com"
        ));
    }

    #[test]
    fn short_names_the_last_part_of_an_arn() {
        assert_eq!(short("arn:aws:iam::1:role/role-web"), "role-web");
        assert_eq!(short("arn:aws:sqs:us-east-1:1:queue-x"), "queue-x");
    }
}
