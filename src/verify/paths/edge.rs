//! The edge paths: viewer → CloudFront → the assets bucket, CloudFront → the ALB, the internet →
//! the ALB's listeners.

use anyhow::{Context as _, Result};

use super::{ctx, Check, Facts, FIX_UP};
use crate::aws::AwsResultExt;
use crate::outputs::{alb, cdn, storage};
use crate::verify::eval::{self};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// viewer → CloudFront → assets bucket: the bucket policy grants the distribution's OAC (or
/// OAI), and an SSE-KMS bucket's key lets CloudFront decrypt for that distribution.
pub(super) async fn cdn_to_assets(live: &Live, st: &Stack, _f: &Facts) -> Finding {
    let mut c = Check::new("viewer → CloudFront → assets bucket");
    if let Err(e) = cdn_to_assets_inner(live, st, &mut c).await {
        c.unreadable(e);
    }
    c.finish()
}

async fn cdn_to_assets_inner(live: &Live, st: &Stack, c: &mut Check) -> Result<()> {
    let (Some(dist_id), Some(bucket)) = (
        st.out(cdn::OUT_DISTRIBUTION_ID),
        st.out(storage::OUT_ASSETS_BUCKET),
    ) else {
        c.fail("the distribution or the assets bucket is not built", FIX_UP);
        return Ok(());
    };
    let d = live.distribution(dist_id).await?;
    let dist_arn = d.arn().to_string();
    let conf = d.distribution_config().context("no distribution config")?;
    let origin = conf
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .find(|o| o.domain_name().starts_with(&format!("{bucket}.")))
        .cloned();
    let Some(origin) = origin else {
        c.fail(
            format!("no origin of {dist_id} is the bucket {bucket}"),
            FIX_UP,
        );
        return Ok(());
    };
    let facts = live.bucket(bucket, live.region()).await?;
    let object = format!("arn:aws:s3:::{bucket}/static/index.html");
    let oai = origin
        .s3_origin_config()
        .map(|s| s.origin_access_identity())
        .filter(|s| !s.is_empty())
        .and_then(|s| s.rsplit('/').next())
        .map(str::to_string);
    let oac = origin
        .origin_access_control_id()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let account = live.account.clone();
    match (&oac, &oai) {
        (Some(oac), _) => {
            c.notes.push(format!(
                "the bucket policy grants OAC {oac} of this distribution"
            ));
            c.need(
                eval::service_resource(
                    "cloudfront.amazonaws.com",
                    facts.policy.as_ref(),
                    "s3:GetObject",
                    &object,
                    &ctx(&[
                        ("aws:SourceArn", &dist_arn),
                        ("aws:SourceAccount", &account),
                        ("aws:SecureTransport", "true"),
                    ]),
                )
                .map_err(|e| format!("bucket policy of {bucket}: {e}")),
                FIX_UP,
            );
        }
        (None, Some(oai)) => {
            c.notes.push(format!("OAI {oai}"));
            let principal =
                format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai}");
            c.need(
                eval::principal_resource(
                    &principal,
                    facts.policy.as_ref(),
                    "s3:GetObject",
                    &object,
                    &ctx(&[("aws:SecureTransport", "true")]),
                )
                .map_err(|e| format!("bucket policy of {bucket}: {e}")),
                FIX_UP,
            );
        }
        (None, None) => c.fail(
            format!(
                "origin {} has neither an OAC nor an OAI: the private bucket refuses CloudFront",
                origin.id()
            ),
            FIX_UP,
        ),
    }
    if facts.sse_algorithm.starts_with("aws:kms") {
        let key = facts.kms_key.clone().unwrap_or_default();
        if oac.is_none() {
            c.fail(
                format!("{bucket} is SSE-KMS and an origin access identity can never decrypt KMS objects"),
                "use origin access control (`cdn.origin_access = \"oac\"`)",
            );
        } else {
            let (key_arn, policy) = live.key(&key, live.region()).await?;
            c.need(
                eval::kms_service(
                    &policy,
                    "cloudfront.amazonaws.com",
                    "kms:Decrypt",
                    &key_arn,
                    &ctx(&[
                        ("aws:SourceArn", &dist_arn),
                        ("aws:SourceAccount", &account),
                    ]),
                )
                .map(|_| "the key policy lets CloudFront decrypt for this distribution".to_string())
                .map_err(|e| {
                    format!("key policy of {key_arn} does not let CloudFront decrypt: {e}")
                }),
                FIX_UP,
            );
        }
    }
    Ok(())
}

/// CloudFront → ALB for `/api/*`: the origin's protocol, the listener on that port, the
/// certificate covering the origin name, and the ALB's security group admitting CloudFront.
pub(super) async fn cdn_to_alb(live: &Live, st: &Stack, f: &Facts) -> Finding {
    let mut c = Check::new("CloudFront → ALB (/api/*)");
    if let Err(e) = cdn_to_alb_inner(live, st, f, &mut c).await {
        c.unreadable(e);
    }
    c.finish()
}

async fn cdn_to_alb_inner(live: &Live, st: &Stack, f: &Facts, c: &mut Check) -> Result<()> {
    let (Some(dist_id), Some(lb_arn)) = (st.out(cdn::OUT_DISTRIBUTION_ID), st.out(alb::OUT_ARN))
    else {
        c.fail("the distribution or the load balancer is not built", FIX_UP);
        return Ok(());
    };
    let d = live.distribution(dist_id).await?;
    let conf = d.distribution_config().context("no distribution config")?;
    let behavior = conf
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
        .iter()
        .find(|b| b.path_pattern() == "/api/*")
        .cloned();
    let Some(behavior) = behavior else {
        c.fail(format!("{dist_id} has no /api/* behaviour"), FIX_UP);
        return Ok(());
    };
    let origin = conf
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .find(|o| o.id() == behavior.target_origin_id())
        .cloned()
        .context("the /api/* behaviour's origin is missing")?;
    let Some(custom) = origin.custom_origin_config() else {
        c.fail(
            "the /api/* origin is not a custom (load balancer) origin",
            FIX_UP,
        );
        return Ok(());
    };
    use aws_sdk_cloudfront::types::OriginProtocolPolicy as P;
    let https = match custom.origin_protocol_policy() {
        P::HttpsOnly => true,
        P::HttpOnly => false,
        other => {
            c.fail(
                format!(
                    "origin protocol policy {} depends on the viewer: pin https-only or http-only",
                    other.as_str()
                ),
                FIX_UP,
            );
            return Ok(());
        }
    };
    let port = if https { 443 } else { 80 };
    let domain = origin.domain_name().to_string();
    let elb = live.aws.elb();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeListeners", lb_arn)?;
    let listener = listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(port));
    let Some(listener) = listener else {
        c.fail(
            format!("the load balancer has no listener on {port}"),
            FIX_UP,
        );
        return Ok(());
    };
    use aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum;
    if listener
        .default_actions()
        .iter()
        .any(|a| a.r#type() == Some(&ActionTypeEnum::Redirect))
    {
        c.fail(
            format!("CloudFront connects on {port}, where the listener only redirects (to HTTPS): every API request loops"),
            FIX_UP,
        );
    }
    if https {
        if domain.ends_with(".elb.amazonaws.com") {
            c.fail(
                format!("CloudFront connects over HTTPS to {domain}, which the load balancer's certificate cannot cover (HTTP 502)"),
                "configure `alb.origin_domain` (a name the certificate covers) and run `fintech-infra up`",
            );
        }
        let certs: Vec<String> = listener
            .certificates()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_string))
            .collect();
        let mut covered = false;
        for arn in &certs {
            let d = live
                .aws
                .acm()
                .describe_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .aws("acm:DescribeCertificate", arn)?;
            if let Some(cert) = d.certificate() {
                let mut names: Vec<String> = cert.subject_alternative_names().to_vec();
                names.extend(cert.domain_name().map(str::to_string));
                if names
                    .iter()
                    .any(|n| crate::config::certificate_name_covers(n, &domain))
                {
                    covered = true;
                }
            }
        }
        if !covered {
            c.fail(
                format!("no certificate of the HTTPS listener covers the origin name {domain} (CloudFront answers 502)"),
                "request the origin name in the certificate (`certificate.subject_alternative_names`) or set `alb.origin_domain` to a covered name",
            );
        } else {
            c.notes.push(format!(
                "HTTPS to {domain}, covered by the listener's certificate"
            ));
        }
    } else {
        c.notes
            .push(format!("HTTP to {domain} (no certificate configured)"));
    }
    let groups = live.groups(&f.alb_groups).await?;
    match f.prefix_list("com.amazonaws.global.cloudfront.origin-facing") {
        Some(pl) => c.need(
            eval::admits_prefix_list(&groups, pl, port).map_err(|e| {
                format!(
                    "the load balancer's security group does not admit CloudFront on {port}: {e}"
                )
            }),
            FIX_UP,
        ),
        None => c.need(eval::admits_anywhere(&groups, port), FIX_UP),
    }
    Ok(())
}

/// internet → ALB listeners: internet-facing in public subnets with an internet route, and the
/// security group admitting only CloudFront (the distribution is the stack's front door).
pub(super) async fn internet_to_alb(live: &Live, st: &Stack, f: &Facts) -> Finding {
    let mut c = Check::new("internet → CloudFront → ALB listeners");
    let r: Result<()> = async {
        let Some(lb_arn) = st.out(alb::OUT_ARN) else {
            c.fail("the load balancer is not built", FIX_UP);
            return Ok(());
        };
        let lb = live.load_balancer(lb_arn).await?;
        use aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum;
        if lb.scheme() != Some(&LoadBalancerSchemeEnum::InternetFacing) {
            c.fail("the load balancer is not internet-facing", FIX_UP);
        }
        let subnets: Vec<String> = lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect();
        for s in &subnets {
            c.need(
                eval::internet_route(&f.route_tables, s, true)
                    .map_err(|e| format!("ALB subnet {s}: {e}")),
                FIX_UP,
            );
        }
        let groups = live.groups(&f.alb_groups).await?;
        c.need(eval::no_open_ingress(&groups), FIX_UP);
        if c.problems.is_empty() {
            c.notes.push(format!(
                "internet-facing in {} public subnets; ingress only from CloudFront",
                subnets.len()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// ALB → the target groups it routes to: each one that gets traffic (a forward with a weight
/// above 0, by default or by a path rule) has an ECS service registering its tasks in it. A
/// target group without targets answers every request routed to it with 503
/// (AWS-CONTRACTS B8): a weighted split whose green share nothing serves.
pub(super) async fn routed_traffic_is_served(live: &Live, st: &Stack, f: &Facts) -> Finding {
    let mut c = Check::new("ALB → a service behind every target group it routes to");
    let r: Result<()> = async {
        let Some(listener) = st.out(alb::OUT_LISTENER_ARN) else {
            c.fail("the load balancer's listener is not built", FIX_UP);
            return Ok(());
        };
        let elb = live.aws.elb();
        let rules = elb
            .describe_rules()
            .listener_arn(listener)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeRules", listener)?;
        let listeners = elb
            .describe_listeners()
            .listener_arns(listener)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeListeners", listener)?;
        let actions = listeners
            .listeners()
            .iter()
            .flat_map(|l| l.default_actions())
            .chain(rules.rules().iter().flat_map(|r| r.actions()));
        let mut routed = std::collections::BTreeSet::new();
        for a in actions {
            routed.extend(a.target_group_arn().map(str::to_string));
            for t in a
                .forward_config()
                .map(|f| f.target_groups())
                .unwrap_or_default()
            {
                if t.weight().unwrap_or(1) > 0 {
                    routed.extend(t.target_group_arn().map(str::to_string));
                }
            }
        }
        let served: std::collections::BTreeSet<&str> = f
            .services
            .iter()
            .flat_map(|s| s.target_groups.iter().map(|(tg, _)| tg.as_str()))
            .collect();
        for tg in &routed {
            if !served.contains(tg.as_str()) {
                let name = tg.rsplit('/').nth(1).unwrap_or(tg);
                c.fail(
                    format!(
                        "target group {name} gets traffic but no ECS service registers tasks \
                         in it: the ALB answers those requests with 503"
                    ),
                    "for the green group: give the default service deployment = \"weighted\" \
                     (its green twin serves it) or set alb.green_weight = 0; for a path's group: \
                     check that its service is configured; then run `fintech-infra up`",
                );
            }
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{} target group(s) get traffic, each with a service's tasks",
                routed.len()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
