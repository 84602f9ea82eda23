//! AWS CodeDeploy resource types: the ECS application and its blue/green deployment groups,
//! plus the stack's tags as CodeDeploy tags.

use aws_sdk_codedeploy::types::Tag;

use crate::step::StepCtx;

pub mod application;
pub mod deployment_group;

/// The stack's tags (and `Name`) as CodeDeploy tags.
pub fn codedeploy_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}
