//! `ecs:service`: an ECS service on Fargate capacity providers in the private subnets, with
//! the deployment circuit breaker rolling back failed deployments, optionally registered in
//! Cloud Map and behind an ALB target group.
//!
//! CreateService carries one client token for every attempt of a create: a retry after a lost
//! answer returns the service the first attempt made. A second `up` updates the service only
//! when it drifted ([`ServiceSpec::differences`]); auto scaling owns the desired count between
//! min and max.
//!
//! A deleted service stays DRAINING until its tasks stopped, and a DRAINING service still
//! blocks its cluster and its Cloud Map service; its name cannot be reused until it is
//! INACTIVE. So `ensure` waits out a DRAINING service of the same name, and teardown deletes
//! with force (no need to scale to zero first) and waits until INACTIVE.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AvailabilityZoneRebalancing, AwsVpcConfiguration, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentController, DeploymentControllerType, LoadBalancer,
    NetworkConfiguration, PropagateTags, Service, ServiceField, ServiceRegistry,
};

use super::{ecs_tags, from_sdk, to_sdk, MapAws as _, StrategyItem};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ecs:service";

/// The record's attribute naming the service's deployment controller (`ECS`,
/// `CODE_DEPLOY`).
pub const ATTR_CONTROLLER: &str = "controller";

/// How long a deleted service may stay DRAINING (AWS: its tasks get `stopTimeout`, 30 s by
/// default, plus a load balancer's deregistration delay once one is attached, 300 s default).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

pub struct EcsService;

/// What the ECS service should look like.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub name: String,
    pub cluster: String,
    pub task_definition_arn: String,
    pub desired_count: i32,
    pub min_count: i32,
    pub max_count: i32,
    pub strategy: Vec<StrategyItem>,
    pub subnets: Vec<String>,
    pub security_group: String,
    pub registry_arn: Option<String>,
    /// The ALB target group the service's tasks register in (alb output
    /// `alb_service_target_groups`), with the container and port the ALB sends to.
    pub load_balancer: Option<LbAttachment>,
    /// Seconds ECS ignores failing ALB health checks of a new task (only valid, and only sent,
    /// with a load balancer).
    pub health_check_grace_secs: i32,
    /// The `CODE_DEPLOY` deployment controller (a `codedeploy-*` service): AWS CodeDeploy,
    /// not UpdateService, changes its task definition and target group (AWS-CONTRACTS A14),
    /// so neither is compared or updated once the service exists.
    pub code_deploy: bool,
}

/// Where the ALB sends a service's traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct LbAttachment {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
}

impl ServiceSpec {
    fn load_balancers(&self) -> Option<Vec<LoadBalancer>> {
        self.load_balancer.as_ref().map(|l| {
            vec![LoadBalancer::builder()
                .target_group_arn(&l.target_group_arn)
                .container_name(&l.container_name)
                .container_port(l.container_port)
                .build()]
        })
    }

    /// The grace period, when there is a load balancer to apply it to.
    fn grace(&self) -> Option<i32> {
        self.load_balancer
            .as_ref()
            .map(|_| self.health_check_grace_secs)
    }

    fn network(&self) -> Result<NetworkConfiguration> {
        Ok(NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(self.subnets.clone()))
                    .security_groups(&self.security_group)
                    // Private subnets: tasks reach out through the NAT gateway only.
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .context("building the awsvpc configuration")?,
            )
            .build())
    }

    fn deployment() -> DeploymentConfiguration {
        DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            // Start the new tasks before stopping old ones: capacity never drops.
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .build()
    }

    fn controller(&self) -> Result<DeploymentController> {
        let kind = if self.code_deploy {
            DeploymentControllerType::CodeDeploy
        } else {
            DeploymentControllerType::Ecs
        };
        DeploymentController::builder()
            .r#type(kind)
            .build()
            .context("building the deployment controller")
    }

    /// The circuit breaker and the rolling percentages: only for the ECS controller (AWS
    /// refuses a circuit breaker on a `CODE_DEPLOY` service; CodeDeploy rolls back itself).
    fn deployment_config(&self) -> Option<DeploymentConfiguration> {
        (!self.code_deploy).then(ServiceSpec::deployment)
    }

    /// Availability Zone rebalancing: not supported with the `CODE_DEPLOY` controller.
    fn rebalancing(&self) -> Option<AvailabilityZoneRebalancing> {
        (!self.code_deploy).then_some(AvailabilityZoneRebalancing::Enabled)
    }

    fn registries(&self) -> Option<Vec<ServiceRegistry>> {
        self.registry_arn
            .as_ref()
            .map(|arn| vec![ServiceRegistry::builder().registry_arn(arn).build()])
    }

    /// How the described service differs from this spec. Fields an emulator leaves out of
    /// DescribeServices (moto drops the capacity provider strategy and the deployment
    /// configuration) are compared only when present: AWS always returns them.
    pub fn differences(&self, s: &Service) -> Vec<&'static str> {
        let mut d = Vec::new();
        if s.task_definition() != Some(self.task_definition_arn.as_str()) && !self.code_deploy {
            d.push("task definition");
        }
        // Auto scaling owns the desired count between min and max; only a count outside that
        // range (e.g. after min/max changed) is drift.
        if s.desired_count() < self.min_count || s.desired_count() > self.max_count {
            d.push("desired count");
        }
        let strategy = from_sdk(s.capacity_provider_strategy());
        if !strategy.is_empty() && strategy != self.strategy {
            d.push("capacity provider strategy");
        }
        if s.launch_type().is_some_and(|l| l.as_str() == "FARGATE") {
            // A service on a launch type rather than capacity providers: switch it.
            d.push("capacity provider strategy");
        }
        match s
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
        {
            Some(v) => {
                let mut subnets = v.subnets().to_vec();
                subnets.sort();
                let mut want = self.subnets.clone();
                want.sort();
                if subnets != want
                    || v.security_groups() != [self.security_group.clone()]
                    || v.assign_public_ip() != Some(&AssignPublicIp::Disabled)
                {
                    d.push("network configuration");
                }
            }
            None => d.push("network configuration"),
        }
        if s.enable_execute_command() {
            d.push("enableExecuteCommand");
        }
        if let Some(cb) = s
            .deployment_configuration()
            .and_then(|c| c.deployment_circuit_breaker())
            .filter(|_| !self.code_deploy)
        {
            if !(cb.enable() && cb.rollback()) {
                d.push("deployment circuit breaker");
            }
        }
        let registries: Vec<&str> = s
            .service_registries()
            .iter()
            .filter_map(|r| r.registry_arn())
            .collect();
        let want: Vec<&str> = self.registry_arn.iter().map(String::as_str).collect();
        if registries != want {
            d.push("service registries");
        }
        if s.availability_zone_rebalancing()
            .is_some_and(|r| r != &AvailabilityZoneRebalancing::Enabled)
            && !self.code_deploy
        {
            d.push("availabilityZoneRebalancing");
        }
        let attached: Vec<(Option<&str>, Option<&str>, Option<i32>)> = s
            .load_balancers()
            .iter()
            .map(|l| (l.target_group_arn(), l.container_name(), l.container_port()))
            .collect();
        let want: Vec<(Option<&str>, Option<&str>, Option<i32>)> = self
            .load_balancer
            .iter()
            .map(|l| {
                (
                    Some(l.target_group_arn.as_str()),
                    Some(l.container_name.as_str()),
                    Some(l.container_port),
                )
            })
            .collect();
        // CodeDeploy attaches the task set it makes primary to the other group of the pair.
        if attached != want && !self.code_deploy {
            d.push("load balancers");
        }
        // moto leaves the grace period out of DescribeServices; AWS always returns it.
        if let (Some(want), Some(got)) = (self.grace(), s.health_check_grace_period_seconds()) {
            if want != got {
                d.push("health check grace period");
            }
        }
        d
    }
}

/// The service `name` of `cluster` as DescribeServices shows it, whatever its status.
async fn describe(
    ctx: &StepCtx,
    cluster: &str,
    name: &str,
    include_tags: bool,
) -> Result<Option<Service>> {
    let mut call = ctx
        .aws()
        .ecs()
        .describe_services()
        .cluster(cluster)
        .services(name);
    if include_tags {
        call = call.include(ServiceField::Tags);
    }
    let out = call
        .send()
        .await
        .aws("ecs:DescribeServices", name)
        .not_found_ok()?;
    Ok(out.and_then(|o| {
        o.services()
            .iter()
            .find(|s| s.service_name() == Some(name))
            .cloned()
    }))
}

/// The ECS service, if it is ACTIVE; waits out a DRAINING one (a name cannot be reused
/// until the old service is INACTIVE).
async fn find(ctx: &StepCtx, cluster: &str, name: &str) -> Result<Option<Service>> {
    let mut current = describe(ctx, cluster, name, true).await?;
    if current.as_ref().and_then(|s| s.status()) == Some("DRAINING") && !ctx.is_plan() {
        ctx.wait_for(
            &format!("the old service {name} to finish draining"),
            DRAIN_TIMEOUT,
            || async {
                let s = describe(ctx, cluster, name, true).await?;
                Ok((s.as_ref().and_then(|s| s.status()) != Some("DRAINING")).then_some(s))
            },
        )
        .await
        .map(|s| current = s)?;
    }
    let Some(s) = current.filter(|s| s.status() == Some("ACTIVE")) else {
        return Ok(None);
    };
    let ours = s
        .tags()
        .iter()
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()));
    if !ours {
        bail!(
            "ECS service {name} in cluster {cluster} is not tagged {STACK_TAG}={}: it \
             belongs to something else",
            ctx.suffix()
        );
    }
    Ok(Some(s))
}

/// The service `spec`, recorded with its cluster and the stack's service name (`service`);
/// updated in place when it drifted. `pending`: some input is a plan-mode placeholder, so
/// nothing is looked up.
pub async fn ensure(
    ctx: &StepCtx,
    spec: &ServiceSpec,
    service: &str,
    pending: bool,
) -> Result<Found> {
    let ecs = ctx.aws().ecs();
    let name = &spec.name;
    let existing = if pending {
        None
    } else {
        find(ctx, &spec.cluster, name).await?
    };
    // The controller the service has (fixed at creation): the ALB step reads it from the
    // record, to leave CodeDeploy's listeners alone while a CODE_DEPLOY service exists even
    // when the config asks for another strategy.
    let found_of = |arn: &str, controller: &str| {
        Found::new(name)
            .arn(arn)
            .attr("service", service)
            .attr("cluster", &spec.cluster)
            .attr(ATTR_CONTROLLER, controller)
    };
    let wanted_controller = if spec.code_deploy {
        "CODE_DEPLOY"
    } else {
        "ECS"
    };
    let found = ctx
        .ensure(
            KIND,
            name,
            || async {
                Ok(existing.as_ref().map(|s| {
                    let controller = s
                        .deployment_controller()
                        .map_or("ECS", |c| c.r#type().as_str());
                    found_of(s.service_arn().unwrap_or_default(), controller)
                }))
            },
            || async {
                let strategy = to_sdk(&spec.strategy)?;
                let network = spec.network()?;
                let controller = spec.controller()?;
                let tags = ecs_tags(ctx, name);
                // One token for every attempt of this create: a retry after a lost
                // answer returns the service the first attempt made (without it ECS
                // answers "Creation of service was not idempotent").
                let token = crate::step::idempotency_token(&format!("ecs-service {name}"));
                let out = ctx
                    .retry_iam(&format!("ECS service {name}"), || {
                        ecs.create_service()
                            .client_token(&token)
                            .cluster(&spec.cluster)
                            .service_name(name)
                            .task_definition(&spec.task_definition_arn)
                            .desired_count(spec.desired_count)
                            // No launch type: the capacity providers decide (FARGATE
                            // base, Spot share).
                            .set_capacity_provider_strategy(Some(strategy.clone()))
                            .platform_version("LATEST")
                            .network_configuration(network.clone())
                            .deployment_controller(controller.clone())
                            .set_deployment_configuration(spec.deployment_config())
                            // Fargate spreads tasks over the subnets' zones itself
                            // (placement strategies are not supported on Fargate);
                            // rebalancing moves tasks back after a zone recovers.
                            .set_availability_zone_rebalancing(spec.rebalancing())
                            .set_service_registries(spec.registries())
                            // The ALB's target group; ECS registers each task's IP.
                            .set_load_balancers(spec.load_balancers())
                            // Only valid with a load balancer.
                            .set_health_check_grace_period_seconds(spec.grace())
                            .enable_execute_command(false)
                            .enable_ecs_managed_tags(true)
                            .propagate_tags(PropagateTags::Service)
                            .set_tags(Some(tags.clone()))
                            .send()
                            .map_aws("ecs:CreateService", name)
                    })
                    .await?;
                let arn = out
                    .service
                    .and_then(|s| s.service_arn)
                    .context("CreateService returned no service ARN")?;
                Ok(found_of(&arn, wanted_controller))
            },
        )
        .await?;
    if let Some(s) = &existing {
        // The controller is fixed at creation: switching between ECS rolling updates and
        // CodeDeploy means a new service (and, for CodeDeploy, its deployment group).
        let controller = s
            .deployment_controller()
            .map(|c| c.r#type().clone())
            .unwrap_or(DeploymentControllerType::Ecs);
        let wanted = spec.controller()?.r#type().clone();
        if controller != wanted {
            bail!(
                "ECS service {name} uses the {} deployment controller and the config now asks \
                 for {}: ECS cannot switch an existing service's controller in place. Set \
                 services[].deployment back, or remove the service (`fintech-infra down`, or \
                 take it out of the config and run `up`) and add it again",
                controller.as_str(),
                wanted.as_str()
            );
        }
        let diff = spec.differences(s);
        if spec.code_deploy {
            if s.task_definition() != Some(spec.task_definition_arn.as_str()) && !pending {
                ctx.sh.reporter.message(
                    ctx.step,
                    &format!(
                        "ECS service {name} runs {}; the config's revision {} reaches it only \
                         through CodeDeploy: `fintech-infra deploy --service {service} --image \
                         <image>` releases it",
                        s.task_definition().unwrap_or("no revision"),
                        spec.task_definition_arn
                    ),
                );
            }
            return update_code_deploy(ctx, spec, diff).await.map(|()| found);
        }
        if !diff.is_empty() {
            let new_deployment = diff.iter().any(|d| {
                d.contains("capacity") || d.contains("registries") || *d == "load balancers"
            });
            let out_of_range = diff.contains(&"desired count");
            ctx.change(
                KIND,
                name,
                &format!("update {}", diff.join(", ")),
                || async {
                    ecs.update_service()
                        .cluster(&spec.cluster)
                        .service(name)
                        .task_definition(&spec.task_definition_arn)
                        .set_desired_count(out_of_range.then_some(spec.desired_count))
                        .set_capacity_provider_strategy(Some(to_sdk(&spec.strategy)?))
                        // A new security group (the service's own, replacing the shared
                        // group of earlier versions) takes effect this way: ECS starts new
                        // tasks with the new network configuration and stops the old ones.
                        .network_configuration(spec.network()?)
                        .deployment_configuration(ServiceSpec::deployment())
                        .availability_zone_rebalancing(AvailabilityZoneRebalancing::Enabled)
                        .set_service_registries(Some(spec.registries().unwrap_or_default()))
                        // Attaches (or detaches) the ALB target group in place: ECS
                        // allows changing load balancers of a rolling-update service.
                        .set_load_balancers(Some(spec.load_balancers().unwrap_or_default()))
                        .set_health_check_grace_period_seconds(spec.grace())
                        .enable_execute_command(false)
                        // ECS requires a new deployment to move running tasks to another
                        // capacity provider or registry.
                        .force_new_deployment(new_deployment)
                        .send()
                        .await
                        .aws("ecs:UpdateService", name)?;
                    Ok(())
                },
            )
            .await?;
        }
    }
    Ok(found)
}

/// Brings a `CODE_DEPLOY` service in line as far as UpdateService may: the desired count and
/// the health check grace period. The rest (network configuration, capacity providers,
/// Cloud Map) only changes with a CodeDeploy deployment or a new service: it is reported,
/// not sent (ECS would refuse it).
async fn update_code_deploy(
    ctx: &StepCtx,
    spec: &ServiceSpec,
    diff: Vec<&'static str>,
) -> Result<()> {
    let name = &spec.name;
    let (updatable, fixed): (Vec<&str>, Vec<&str>) = diff
        .into_iter()
        .partition(|d| matches!(*d, "desired count" | "health check grace period"));
    if !fixed.is_empty() {
        ctx.sh.reporter.message(
            ctx.step,
            &format!(
                "ECS service {name} differs in {}: with the CODE_DEPLOY controller ECS changes \
                 that only through a CodeDeploy deployment or a new service, so it is left as \
                 it is",
                fixed.join(", ")
            ),
        );
    }
    if updatable.is_empty() {
        return Ok(());
    }
    let out_of_range = updatable.contains(&"desired count");
    ctx.change(
        KIND,
        name,
        &format!("update {}", updatable.join(", ")),
        || async {
            ctx.aws()
                .ecs()
                .update_service()
                .cluster(&spec.cluster)
                .service(name)
                .set_desired_count(out_of_range.then_some(spec.desired_count))
                .set_health_check_grace_period_seconds(spec.grace())
                .send()
                .await
                .aws("ecs:UpdateService", name)?;
            Ok(())
        },
    )
    .await
}

/// The status of a recorded service (`ACTIVE`, `DRAINING`, `INACTIVE`), `None` if ECS does
/// not know it.
async fn status(ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
    let cluster = rec.attrs.get("cluster").cloned().unwrap_or_default();
    Ok(describe(ctx, &cluster, &rec.id, false)
        .await?
        .and_then(|s| s.status().map(str::to_string)))
}

/// Deletes an ECS service (with force: no need to scale to zero first) and waits until it
/// is INACTIVE. A service already DRAINING or INACTIVE (a rerun) is only waited for.
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    delete_and_drain(ctx, rec)
        .await
        .with_context(|| format!("deleting ECS service {}", rec.id))
}

async fn delete_and_drain(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let ecs = ctx.aws().ecs();
    let name = rec.id.as_str();
    let cluster = rec.attrs.get("cluster").cloned().unwrap_or_default();
    if status(ctx, rec).await?.as_deref() == Some("ACTIVE") {
        ctx.check_cancelled()?;
        let r = ecs
            .delete_service()
            .cluster(&cluster)
            .service(name)
            .force(true)
            .send()
            .await
            .aws("ecs:DeleteService", name)
            .not_found_ok();
        match r {
            Ok(_) => {}
            // Deleted concurrently (e.g. an earlier run whose response was lost).
            Err(e) if e.code.as_deref() == Some("ServiceNotActiveException") => {}
            Err(e) => return Err(e.into()),
        }
    }
    ctx.wait_for(
        &format!("service {name} to drain"),
        DRAIN_TIMEOUT,
        || async {
            let s = status(ctx, rec).await?;
            Ok(matches!(s.as_deref(), None | Some("INACTIVE")).then_some(()))
        },
    )
    .await
}

#[async_trait]
impl Provider for EcsService {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(status(ctx, rec).await?.filter(|s| s != "INACTIVE"))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_spec() -> ServiceSpec {
        ServiceSpec {
            name: "svc-web-demo".into(),
            cluster: "cluster-demo".into(),
            task_definition_arn: "arn:td:3".into(),
            desired_count: 2,
            min_count: 2,
            max_count: 10,
            strategy: super::super::strategy(&Default::default()),
            subnets: vec!["subnet-b".into(), "subnet-a".into()],
            security_group: "sg-app".into(),
            registry_arn: None,
            load_balancer: None,
            health_check_grace_secs: 60,
            code_deploy: false,
        }
    }

    fn described_service(s: &ServiceSpec, desired: i32) -> Service {
        let mut subnets = s.subnets.clone();
        subnets.reverse();
        Service::builder()
            .service_name(&s.name)
            .task_definition(&s.task_definition_arn)
            .desired_count(desired)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(
                        AwsVpcConfiguration::builder()
                            .set_subnets(Some(subnets))
                            .security_groups(&s.security_group)
                            .assign_public_ip(AssignPublicIp::Disabled)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn autoscaled_desired_count_is_not_drift_and_missing_fields_are_not_compared() {
        let s = service_spec();
        // moto leaves the strategy and the deployment configuration out.
        assert!(s.differences(&described_service(&s, 7)).is_empty());
        assert_eq!(
            s.differences(&described_service(&s, 12)),
            vec!["desired count"]
        );
        let mut other = s.clone();
        other.task_definition_arn = "arn:td:4".into();
        other.registry_arn = Some("arn:sd".into());
        assert_eq!(
            other.differences(&described_service(&s, 2)),
            vec!["task definition", "service registries"]
        );
    }

    #[test]
    fn a_missing_or_different_load_balancer_is_drift() {
        let mut s = service_spec();
        s.load_balancer = Some(LbAttachment {
            target_group_arn: "arn:tg:blue".into(),
            container_name: "web".into(),
            container_port: 80,
        });
        let bare = described_service(&s, 2);
        assert_eq!(s.differences(&bare), vec!["load balancers"]);
        let mut attached = bare.clone();
        attached.load_balancers = s.load_balancers();
        assert!(s.differences(&attached).is_empty());
        let mut graced = attached.clone();
        graced.health_check_grace_period_seconds = Some(10);
        assert_eq!(s.differences(&graced), vec!["health check grace period"]);
        // Without a load balancer no grace period is sent at all (ECS would refuse it).
        assert_eq!(service_spec().grace(), None);
        assert_eq!(s.grace(), Some(60));
    }

    #[test]
    fn a_service_still_in_the_old_shared_group_moves_to_its_own() {
        let old = described_service(&service_spec(), 2);
        let mut s = service_spec();
        s.security_group = "sg-payment-api".into();
        assert_eq!(s.differences(&old), vec!["network configuration"]);
        assert!(s.differences(&described_service(&s, 2)).is_empty());
        let net = s.network().unwrap();
        let groups = net.awsvpc_configuration().unwrap().security_groups();
        assert_eq!(groups, ["sg-payment-api"]);
    }
}
