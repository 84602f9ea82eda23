//! AWS Cloud Map resource types: the cluster step's private DNS namespace and the services
//! step's discovery services, plus what they share: the stack's tags in Cloud Map's form.

use anyhow::{Context as _, Result};
use aws_sdk_servicediscovery::types::Tag;

use crate::step::StepCtx;

pub mod namespace;
pub mod service;

/// The stack's tags in Cloud Map's form (namespaces and services).
fn cloudmap_tags(ctx: &StepCtx, name: &str) -> Result<Vec<Tag>> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building Cloud Map tags")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_cloud_map_kind_is_registered() {
        for kind in [super::namespace::KIND, super::service::KIND] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
