//! The resource layer: one provider per AWS resource type, registered by kind.
//!
//! A provider holds what one kind of resource needs wherever a step uses it: how to tell
//! whether a recorded one still exists (`status`), and how to delete it with that type's
//! AWS quirks and waits (an S3 bucket must be emptied of every version first, and its
//! policy can deny the deletes). Steps compose providers; `status` and teardown find the
//! provider by the record's kind, so a kind's delete and probe live in one place instead of
//! in each step that happens to create one. Modelled on the provider registries of cdkd and
//! Terraform (a provider interface kept apart from the graph walker).
//!
//! Every kind a step records has a provider and a line in [`deps::BUILT_ON`] (a unit test
//! there keeps the two lists equal), and `down` ([`crate::teardown`]) deletes each record
//! through its provider in the order of those edges; no step has teardown code.
//! (`secretsmanager:secret` has no provider: RDS owns that secret and nothing records it.)

use anyhow::Result;
use async_trait::async_trait;

use crate::state::ResourceRecord;
use crate::step::StepCtx;

pub mod acm;
pub mod application_autoscaling;
pub mod backup;
pub mod cloudfront;
pub mod cloudwatch;
pub mod codedeploy;
pub mod deps;
pub mod dynamodb;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod elasticloadbalancing;
pub mod events;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod logs;
pub mod rds;
pub mod s3;
pub mod secretsmanager;
pub mod servicediscovery;
pub mod sns;
pub mod sqs;
pub mod wafv2;

/// Read and delete of one AWS resource type.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The kind recorded in the state, e.g. `s3:bucket`.
    fn kind(&self) -> &'static str;
    /// Whether the recorded resource still exists: `Some(status)` if it does. `ctx` is in
    /// the record's region.
    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>>;
    /// Deletes the recorded resource; "not found" counts as deleted. Leaves the state
    /// alone: [`delete_recorded`] forgets the record once this returns.
    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()>;
}

/// Every provider, one per kind. A new resource type adds one line here.
static PROVIDERS: &[&dyn Provider] = &[
    &s3::bucket::Bucket,
    &ec2::vpc::Vpc,
    &ec2::subnet::Subnet,
    &ec2::internet_gateway::InternetGateway,
    &ec2::elastic_ip::ElasticIp,
    &ec2::nat_gateway::NatGateway,
    &ec2::route_table::RouteTableProvider,
    &ec2::route_table_association::Association,
    &ec2::route::RouteProvider,
    &ec2::security_group::Group,
    &ec2::security_group_rule::Rule,
    &ec2::vpc_endpoint::Endpoint,
    &iam::role::Role,
    &iam::policy::Policy,
    &iam::attachment::Attachment,
    &logs::log_group::LogGroup,
    &kms::key::Key,
    &kms::alias::Alias,
    &cloudfront::distribution::Distribution,
    &cloudfront::origin_access_control::OriginAccessControl,
    &cloudfront::origin_access_identity::OriginAccessIdentity,
    &elasticloadbalancing::load_balancer::LoadBalancerProvider,
    &elasticloadbalancing::target_group::TargetGroupProvider,
    &elasticloadbalancing::listener::ListenerProvider,
    &elasticloadbalancing::listener_rule::ListenerRule,
    &wafv2::web_acl::WebAclProvider,
    &wafv2::association::Association,
    &acm::certificate::Certificate,
    &ecs::cluster::Cluster,
    &ecs::service::EcsService,
    &ecs::task_definition::TaskDefinitionFamily,
    &servicediscovery::namespace::Namespace,
    &servicediscovery::service::DiscoveryService,
    &application_autoscaling::scalable_target::ScalableTarget,
    &application_autoscaling::scaling_policy::Policy,
    &rds::subnet_group::SubnetGroup,
    &rds::cluster_parameter_group::ClusterParameterGroup,
    &rds::cluster::Cluster,
    &rds::instance::Instance,
    &lambda::function::Function,
    &lambda::event_source_mapping::EventSourceMapping,
    &sqs::queue::Queue,
    &dynamodb::table::Table,
    &ecr::repository::EcrRepository,
    &sns::topic::Topic,
    &sns::subscription::Subscription,
    &cloudwatch::alarm::Alarm,
    &cloudwatch::dashboard::Dashboard,
    &backup::vault::Vault,
    &backup::plan::Plan,
    &backup::selection::Selection,
    &s3::replication::Replication,
    &ec2::vpc_peering_connection::PeeringConnection,
    &ec2::flow_log::FlowLogProvider,
    &codedeploy::application::Application,
    &codedeploy::deployment_group::DeploymentGroup,
    &events::rule::Rule,
];

/// Every registered kind.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|p| p.kind())
}

/// The provider of `kind`, if one is registered (every kind a step records has one).
pub fn provider(kind: &str) -> Option<&'static dyn Provider> {
    PROVIDERS.iter().copied().find(|p| p.kind() == kind)
}

/// Deletes every resource of `kind` the calling step recorded in `ctx`'s region, in creation
/// order, through the kind's provider, and forgets each as soon as it is gone. `plan` only
/// reports each deletion: it changes nothing.
pub async fn delete_recorded(ctx: &StepCtx, kind: &str) -> Result<()> {
    let p =
        provider(kind).ok_or_else(|| anyhow::anyhow!("no provider is registered for {kind}"))?;
    for rec in ctx.records(Some(kind)) {
        if ctx.is_plan() {
            // `change` reports without applying in plan mode.
            ctx.change(kind, &rec.name, "delete: no longer configured", || async {
                Ok(())
            })
            .await?;
            continue;
        }
        ctx.check_cancelled()?;
        p.delete(ctx, &rec).await?;
        ctx.deleted(kind, &rec.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_provider() {
        let mut kinds: Vec<&str> = PROVIDERS.iter().map(|p| p.kind()).collect();
        let n = kinds.len();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), n, "a kind registered twice: {kinds:?}");
        assert!(provider("s3:bucket").is_some());
        assert!(provider("s3:nothing").is_none());
    }
}
