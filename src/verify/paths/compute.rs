//! The compute paths: the ALB → each service, declared service-to-service calls, secrets for the
//! execution role, image pulls from the registry, traces to X-Ray.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::{ctx, through, Check, Facts, Service, FIX_UP};
use crate::aws::AwsResultExt;
use crate::verify::eval::{self, Ctx};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// ALB → a service's tasks: the target group is forwarded to, targets by IP on the service's
/// port, and the security groups on both ends allow it.
pub(super) async fn alb_to_service(live: &Live, f: &Facts, svc: &Service) -> Finding {
    let mut c = Check::new(format!("ALB → {} tasks", svc.label()));
    let r: Result<()> = async {
        let alb = live.groups(&f.alb_groups).await?;
        let own = live.groups(&svc.groups).await?;
        for (tg, port) in &svc.target_groups {
            let tgs = live
                .aws
                .elb()
                .describe_target_groups()
                .target_group_arns(tg)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeTargetGroups", tg)?;
            let Some(t) = tgs.target_groups().first() else {
                c.fail(format!("target group {tg} is gone"), FIX_UP);
                continue;
            };
            use aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum;
            if t.target_type() != Some(&TargetTypeEnum::Ip) {
                c.fail(
                    format!(
                        "{} does not target IPs (Fargate tasks need `ip`)",
                        t.target_group_name().unwrap_or(tg)
                    ),
                    FIX_UP,
                );
            }
            if t.load_balancer_arns().is_empty() {
                c.fail(
                    format!(
                        "no listener forwards to {}",
                        t.target_group_name().unwrap_or(tg)
                    ),
                    FIX_UP,
                );
            }
            c.need(eval::connects(&alb, &own, *port, f.vpc_cidr), FIX_UP);
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{} target group(s), port {}",
                svc.target_groups.len(),
                svc.port.unwrap_or_default()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A declared call from one service to another: both security groups on the callee's port,
/// and the callee registered in Cloud Map (that is how the caller finds it).
pub(super) async fn service_to_service(
    live: &Live,
    f: &Facts,
    from: &Service,
    to: &str,
) -> Finding {
    let mut c = Check::new(format!("{} → service {to}", from.label()));
    let Some(callee) = f.services.iter().find(|s| s.name == to) else {
        c.fail(format!("service {to} is not running"), FIX_UP);
        return c.finish();
    };
    let Some(port) = callee.port else {
        c.fail(format!("service {to} exposes no port"), FIX_UP);
        return c.finish();
    };
    let r: Result<()> = async {
        let src = live.groups(&from.groups).await?;
        let dst = live.groups(&callee.groups).await?;
        c.need(eval::connects(&src, &dst, port, f.vpc_cidr), FIX_UP);
        if !callee.discoverable {
            c.fail(
                format!("service {to} is not registered in Cloud Map"),
                FIX_UP,
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// The execution role reads every secret the task definition injects, and decrypts it.
pub(super) async fn execution_role_reads_secrets(live: &Live, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} execution role → its secrets", svc.label()));
    let r: Result<()> = async {
        let Some(role) = &svc.execution_role else {
            c.fail("secrets need an execution role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        for value_from in &svc.secrets {
            // `arn:aws:secretsmanager:region:acct:secret:name-AbCdEf[:json-key:stage:version]`
            let arn: String = value_from
                .splitn(8, ':')
                .take(7)
                .collect::<Vec<_>>()
                .join(":");
            c.need(
                eval::identity(&role, "secretsmanager:GetSecretValue", &arn, &Ctx::new()),
                FIX_UP,
            );
            let secret = live
                .aws
                .secrets()
                .describe_secret()
                .secret_id(&arn)
                .send()
                .await
                .aws("secretsmanager:DescribeSecret", &arn)?;
            if let Some(key) = secret.kms_key_id() {
                let (key_arn, policy) = live.key(key, live.region()).await?;
                let via = format!("secretsmanager.{}.amazonaws.com", live.region());
                c.need(
                    eval::kms_role(
                        &policy,
                        &role,
                        "kms:Decrypt",
                        &key_arn,
                        &through(live, &via),
                    ),
                    FIX_UP,
                );
            }
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{} secret(s), each readable and decryptable through Secrets Manager",
                svc.secrets.len()
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A service's tasks → their image registry: the execution role may pull from the stack's
/// repositories, and the tasks' subnets reach the registry (NAT, or the ECR interface
/// endpoints plus the S3 gateway endpoint the layers come from).
pub(super) async fn image_pull(live: &Live, st: &Stack, f: &Facts, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} tasks → image registry", svc.label()));
    let r: Result<()> = async {
        let Some(exec) = &svc.execution_role else {
            c.fail("the task definition has no execution role", FIX_UP);
            return Ok(());
        };
        let role = live.role(exec).await?;
        let task_arn = format!(
            "arn:aws:ecs:{}:{}:task/{}/0",
            live.region(),
            live.account,
            svc.name
        );
        c.need(
            eval::trusts(
                &role,
                "ecs-tasks.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &task_arn),
                ]),
            ),
            FIX_UP,
        );
        let repos = st.out_map(crate::outputs::registry::OUT_ARNS);
        let uris = st.out_map(crate::outputs::registry::OUT_URIS);
        let sgs = live.groups(&svc.groups).await?;
        let endpoints = live.endpoints(&f.vpc_id).await?;
        let region = live.region().to_string();
        for image in &svc.images {
            let private = uris.iter().find(|(_, u)| image.starts_with(u.as_str()));
            if let Some((repo, _)) = private {
                let repo_arn = repos.get(repo).cloned().unwrap_or_default();
                c.need(
                    eval::identity(&role, "ecr:GetAuthorizationToken", "*", &Ctx::new()),
                    FIX_UP,
                );
                for a in ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] {
                    c.need(eval::identity(&role, a, &repo_arn, &Ctx::new()), FIX_UP);
                }
                for s in &svc.subnets {
                    c.need(
                        eval::ecr_route(
                            &f.route_tables,
                            s,
                            &endpoints,
                            &sgs,
                            &live.groups(&endpoint_groups(&endpoints)).await?,
                            &region,
                            f.prefix_list(&format!("com.amazonaws.{region}.s3")),
                            f.vpc_cidr,
                        )
                        .map_err(|e| format!("subnet {s} to ECR: {e}")),
                        FIX_UP,
                    );
                }
            } else {
                // Public registries (public.ecr.aws, Docker Hub) are on the internet.
                for s in &svc.subnets {
                    c.need(
                        eval::internet_route(&f.route_tables, s, false)
                            .map_err(|e| format!("subnet {s} to {image}: {e}")),
                        FIX_UP,
                    );
                }
                c.need(
                    eval::egress_anywhere(&sgs, 443).map_err(|e| format!("{image}: {e}")),
                    FIX_UP,
                );
                c.notes
                    .push(format!("{image} is public: pulled through NAT"));
            }
        }
        if c.problems.is_empty() && private_images(&svc.images, &uris) > 0 {
            c.notes
                .push("the execution role may pull from the stack's repositories".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

fn private_images(images: &[String], uris: &BTreeMap<String, String>) -> usize {
    images
        .iter()
        .filter(|i| uris.values().any(|u| i.starts_with(u.as_str())))
        .count()
}

fn endpoint_groups(endpoints: &[aws_sdk_ec2::types::VpcEndpoint]) -> Vec<String> {
    endpoints
        .iter()
        .flat_map(|e| e.groups())
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A service's tasks → X-Ray (`[tracing]`): the task runs the collector sidecar, its task
/// role (which the collector runs with) may send traces, and its subnets reach X-Ray (NAT, or
/// an X-Ray interface endpoint).
pub(super) async fn traces_to_xray(
    live: &Live,
    f: &Facts,
    svc: &Service,
    collector_image: &str,
) -> Finding {
    let mut c = Check::new(format!("{} tasks → X-Ray (traces)", svc.label()));
    let r: Result<()> = async {
        if !svc.images.iter().any(|i| i == collector_image) {
            c.fail(
                format!("the task definition runs no tracing collector ({collector_image})"),
                FIX_UP,
            );
            return Ok(());
        }
        let Some(role) = &svc.task_role else {
            c.fail(
                "the collector needs a task role to send traces with",
                FIX_UP,
            );
            return Ok(());
        };
        let role = live.role(role).await?;
        for a in ["xray:PutTraceSegments", "xray:GetSamplingRules"] {
            c.need(eval::identity(&role, a, "*", &Ctx::new()), FIX_UP);
        }
        let endpoints = live.endpoints(&f.vpc_id).await?;
        let xray = format!("com.amazonaws.{}.xray", live.region());
        if endpoints
            .iter()
            .any(|e| e.service_name() == Some(xray.as_str()))
        {
            c.notes
                .push(format!("through the {xray} interface endpoint"));
        } else {
            for s in &svc.subnets {
                c.need(
                    eval::internet_route(&f.route_tables, s, false)
                        .map_err(|e| format!("subnet {s} to X-Ray: {e}")),
                    FIX_UP,
                );
            }
            let sgs = live.groups(&svc.groups).await?;
            c.need(
                eval::egress_anywhere(&sgs, 443).map_err(|e| format!("X-Ray: {e}")),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push("the collector sidecar may send the app's traces to X-Ray".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
