//! Amazon ECS resource types (the cluster step's cluster, the services step's task
//! definitions and services), plus what they share: the capacity provider strategy every
//! cluster and service of the stack uses, and the stack's tags in ECS's form.
//!
//! The stack runs on Fargate only, through the capacity providers FARGATE and FARGATE_SPOT
//! (never a launch type): a strategy is a FARGATE base and the weights of the two.

use anyhow::{Context as _, Result};
use aws_sdk_ecs::types::{CapacityProviderStrategyItem, Tag};

use crate::config::CapacityConfig;
use crate::step::StepCtx;

pub mod cluster;
pub mod service;
pub mod task_definition;

/// The capacity providers every cluster of the stack offers.
pub const CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// One entry of a capacity provider strategy, in a form that compares easily.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StrategyItem {
    pub provider: String,
    pub base: i32,
    pub weight: i32,
}

/// The strategy a capacity split asks for: `fargate_base` tasks on FARGATE, the rest split
/// by the weights. Providers with neither base nor weight are left out (ECS accepts weight 0,
/// but listing a provider that never gets a task only obscures the intent).
pub fn strategy(c: &CapacityConfig) -> Vec<StrategyItem> {
    let mut v = Vec::new();
    if c.fargate_weight > 0 || c.fargate_base > 0 {
        v.push(StrategyItem {
            provider: "FARGATE".into(),
            base: c.fargate_base,
            weight: c.fargate_weight,
        });
    }
    if c.spot_weight > 0 {
        v.push(StrategyItem {
            provider: "FARGATE_SPOT".into(),
            base: 0,
            weight: c.spot_weight,
        });
    }
    v.sort();
    v
}

/// SDK strategy items for a strategy.
pub fn to_sdk(items: &[StrategyItem]) -> Result<Vec<CapacityProviderStrategyItem>> {
    items
        .iter()
        .map(|i| {
            CapacityProviderStrategyItem::builder()
                .capacity_provider(&i.provider)
                .base(i.base)
                .weight(i.weight)
                .build()
                .context("building a capacity provider strategy item")
        })
        .collect()
}

/// A strategy as AWS describes it, normalised for comparison with [`strategy`].
pub fn from_sdk(items: &[CapacityProviderStrategyItem]) -> Vec<StrategyItem> {
    let mut v: Vec<StrategyItem> = items
        .iter()
        .map(|i| StrategyItem {
            provider: i.capacity_provider().to_string(),
            base: i.base(),
            weight: i.weight(),
        })
        // A weight-0 entry without a base never gets a task: same as absent.
        .filter(|i| i.weight > 0 || i.base > 0)
        .collect();
    v.sort();
    v
}

/// The stack's tags (and `Name`) as ECS tags.
fn ecs_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Maps SDK send futures to [`crate::aws::AwsError`] (for closures that must return one,
/// such as [`StepCtx::retry_iam`]'s); the CodeDeploy group uses it too.
pub(crate) trait MapAws<T> {
    fn map_aws(
        self,
        operation: &'static str,
        resource: &str,
    ) -> impl std::future::Future<Output = Result<T, crate::aws::AwsError>>;
}

impl<T, E, R, F> MapAws<T> for F
where
    F: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn map_aws(
        self,
        operation: &'static str,
        resource: &str,
    ) -> impl std::future::Future<Output = Result<T, crate::aws::AwsError>> {
        let resource = resource.to_string();
        async move {
            use crate::aws::AwsResultExt as _;
            self.await.aws(operation, resource)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ecs_kind_is_registered() {
        for kind in [cluster::KIND, service::KIND, task_definition::KIND] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn default_split_is_one_fargate_to_two_spot() {
        // CapacityConfig's default: no FARGATE base, FARGATE : FARGATE_SPOT = 1 : 2.
        let s = strategy(&CapacityConfig::default());
        assert_eq!(
            s,
            vec![
                StrategyItem {
                    provider: "FARGATE".into(),
                    base: 0,
                    weight: 1
                },
                StrategyItem {
                    provider: "FARGATE_SPOT".into(),
                    base: 0,
                    weight: 2
                },
            ]
        );
    }

    #[test]
    fn spot_only_split_leaves_fargate_out() {
        let s = strategy(&CapacityConfig {
            fargate_base: 0,
            fargate_weight: 0,
            spot_weight: 1,
        });
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].provider, "FARGATE_SPOT");
    }

    #[test]
    fn described_strategy_round_trips_and_ignores_empty_entries() {
        let want = strategy(&CapacityConfig {
            fargate_base: 2,
            fargate_weight: 1,
            spot_weight: 3,
        });
        let mut sdk = to_sdk(&want).unwrap();
        sdk.reverse();
        sdk.push(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("OTHER")
                .weight(0)
                .build()
                .unwrap(),
        );
        assert_eq!(from_sdk(&sdk), want);
    }
}
