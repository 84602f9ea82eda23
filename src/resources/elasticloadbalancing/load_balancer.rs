//! `elasticloadbalancing:loadbalancer`: the internet-facing IPv4 application load balancer,
//! found by name, created with its attributes, its attributes, subnets and security group
//! kept in line, waited for until active; on teardown deleted and waited for until
//! DescribeLoadBalancers no longer knows it, as its ENIs hold the public subnets (the network
//! teardown must find them free).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum,
};

use super::elb_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "elasticloadbalancing:loadbalancer";

/// AWS: 1.5-3 minutes to provision an ALB; deletion takes a few more.
const ALB_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct LoadBalancerProvider;

/// A load balancer the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct LoadBalancerSpec<'a> {
    pub name: &'a str,
    pub vpc_id: &'a str,
    pub subnets: &'a [String],
    pub sg: &'a str,
    /// The attributes it must have (`key`, `value`).
    pub attributes: &'a [(&'static str, String)],
}

/// `app/alb-<s>/<id>` from a load balancer ARN: CloudWatch's `LoadBalancer` dimension.
pub fn lb_full_name(arn: &str) -> String {
    arn.split_once(":loadbalancer/")
        .map(|(_, n)| n.to_string())
        .unwrap_or_default()
}

/// The load balancer named `name`, if it exists.
pub async fn find(ctx: &StepCtx, name: &str) -> Result<Option<LoadBalancer>> {
    let out = ctx
        .aws()
        .elb()
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeLoadBalancers", name)
        .not_found_ok()?;
    Ok(out.and_then(|o| o.load_balancers().first().cloned()))
}

/// Sets the given load balancer attributes.
pub async fn set_attributes(
    ctx: &StepCtx,
    arn: &str,
    attrs: &[(&'static str, String)],
) -> Result<()> {
    ctx.aws()
        .elb()
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(
            attrs
                .iter()
                .map(|(k, v)| LoadBalancerAttribute::builder().key(*k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .aws("elasticloadbalancing:ModifyLoadBalancerAttributes", arn)?;
    Ok(())
}

/// The load balancer `spec`, created if missing (with its attributes set at once), its
/// attributes, subnets and security group kept in line. Returns it and whether it was found
/// active already (no need to describe it again to wait for it).
pub async fn ensure(ctx: &StepCtx, spec: &LoadBalancerSpec<'_>) -> Result<(Found, bool)> {
    let elb = ctx.aws().elb();
    let LoadBalancerSpec {
        name,
        vpc_id,
        subnets,
        sg,
        attributes: attrs,
    } = *spec;
    let existing = find(ctx, name).await?;
    // Found active: no need to describe it again to wait for it.
    let active = existing
        .as_ref()
        .is_some_and(|l| l.state().and_then(|s| s.code()) == Some(&LoadBalancerStateEnum::Active));
    if let (Some(lb), false) = (&existing, is_pending(vpc_id)) {
        if lb.vpc_id() != Some(vpc_id) {
            bail!(
                "load balancer {name} exists in VPC {}, not in the stack's VPC {vpc_id}",
                lb.vpc_id().unwrap_or("?")
            );
        }
    }
    let lb = ctx
        .ensure(
            KIND,
            name,
            || async {
                Ok(existing.as_ref().and_then(|l| {
                    l.load_balancer_arn().map(|a| {
                        Found::new(a)
                            .arn(a)
                            .attr("dns_name", l.dns_name().unwrap_or_default())
                            .attr("zone_id", l.canonical_hosted_zone_id().unwrap_or_default())
                    })
                }))
            },
            || async {
                let out = elb
                    .create_load_balancer()
                    .name(name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(LoadBalancerSchemeEnum::InternetFacing)
                    .ip_address_type(IpAddressType::Ipv4)
                    .set_subnets(Some(subnets.to_vec()))
                    .security_groups(sg)
                    .set_tags(Some(elb_tags(ctx, name)))
                    .send()
                    .await
                    .aws("elasticloadbalancing:CreateLoadBalancer", name)?;
                let l = out
                    .load_balancers()
                    .first()
                    .context("CreateLoadBalancer returned no load balancer")?;
                let arn = l
                    .load_balancer_arn()
                    .context("CreateLoadBalancer returned no ARN")?;
                let found = Found::new(arn)
                    .arn(arn)
                    .attr("dns_name", l.dns_name().unwrap_or_default())
                    .attr("zone_id", l.canonical_hosted_zone_id().unwrap_or_default());
                ctx.record(KIND, name, &found)?;
                set_attributes(ctx, arn, attrs).await?;
                Ok(found)
            },
        )
        .await?;
    let Some(l) = existing else {
        return Ok((lb, active));
    };
    // Drift: attributes, subnets, security groups.
    let current = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&lb.id)
        .send()
        .await
        .aws(
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            &lb.id,
        )?;
    let differing: Vec<(&'static str, String)> = attrs
        .iter()
        .filter(|(k, v)| {
            !current
                .attributes()
                .iter()
                .any(|a| a.key() == Some(*k) && a.value() == Some(v.as_str()))
        })
        .cloned()
        .collect();
    if !differing.is_empty() {
        let what = differing
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        ctx.change(KIND, name, &what, || {
            set_attributes(ctx, &lb.id, &differing)
        })
        .await?;
    }
    if !subnets.iter().any(|s| is_pending(s)) {
        let mut have: Vec<&str> = l
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id())
            .collect();
        have.sort();
        let mut want: Vec<&str> = subnets.iter().map(String::as_str).collect();
        want.sort();
        if have != want {
            ctx.change(
                KIND,
                name,
                &format!("subnets {}", want.join(", ")),
                || async {
                    elb.set_subnets()
                        .load_balancer_arn(&lb.id)
                        .set_subnets(Some(subnets.to_vec()))
                        .send()
                        .await
                        .aws("elasticloadbalancing:SetSubnets", name)?;
                    Ok(())
                },
            )
            .await?;
        }
    }
    if !is_pending(sg) && l.security_groups() != [sg.to_string()] {
        ctx.change(KIND, name, &format!("security group {sg}"), || async {
            elb.set_security_groups()
                .load_balancer_arn(&lb.id)
                .security_groups(sg)
                .send()
                .await
                .aws("elasticloadbalancing:SetSecurityGroups", name)?;
            Ok(())
        })
        .await?;
    }
    Ok((lb, active))
}

/// Waits until the load balancer is active (AWS: 1.5-3 minutes to provision).
pub async fn wait_active(ctx: &StepCtx, arn: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.wait_for("the load balancer to be active", ALB_TIMEOUT, || async {
        let lb = elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeLoadBalancers", arn)?
            .load_balancers()
            .first()
            .cloned()
            .with_context(|| format!("load balancer {arn} disappeared"))?;
        match lb.state().and_then(|s| s.code()) {
            Some(LoadBalancerStateEnum::Active) => Ok(Some(())),
            Some(LoadBalancerStateEnum::Failed) => bail!(
                "load balancer {arn} failed to provision: {}",
                lb.state()
                    .and_then(|s| s.reason())
                    .unwrap_or("no reason given")
            ),
            _ => Ok(None),
        }
    })
    .await
}

/// Deletes the load balancer `arn` and waits until it is gone (its ENIs hold the public
/// subnets until then). Succeeds for an unknown ARN, as on AWS.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    elb.delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
        .aws("elasticloadbalancing:DeleteLoadBalancer", arn)
        .not_found_ok()?;
    ctx.wait_for("the load balancer to be deleted", ALB_TIMEOUT, || async {
        let out = elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeLoadBalancers", arn)
            .not_found_ok()?;
        Ok(out
            .is_none_or(|o| o.load_balancers().is_empty())
            .then_some(()))
    })
    .await
}

#[async_trait]
impl Provider for LoadBalancerProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .elb()
            .describe_load_balancers()
            .load_balancer_arns(id)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeLoadBalancers", id)
            .not_found_ok()?
            .and_then(|o| o.load_balancers().first().cloned())
            .map(|l| {
                l.state()
                    .and_then(|s| s.code())
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_else(|| "exists".into())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_dimension_comes_from_the_arn() {
        assert_eq!(
            lb_full_name(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb-p/50dc6c495c0c9188"
            ),
            "app/alb-p/50dc6c495c0c9188"
        );
    }
}
