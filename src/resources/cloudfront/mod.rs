//! Amazon CloudFront resource types: the stack's distribution and the origin access control
//! (or, in stacks built by older versions, the origin access identity) it reads the assets
//! bucket through.
//!
//! CloudFront is global (its resources are recorded with the stack's region but have none),
//! has no names (the distribution is found by its comment and stack tag, an OAC by its name,
//! an OAI by its comment), and every update or delete must quote the resource's current ETag
//! (`If-Match`), which each read and each update returns anew.

use anyhow::{Context as _, Result};
use aws_sdk_cloudfront::types::{Tag, Tags};

pub mod distribution;
pub mod origin_access_control;
pub mod origin_access_identity;

/// Tags as CloudFront takes them.
pub fn cf_tags(pairs: Vec<(String, String)>) -> Result<Tags> {
    let items = pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building CloudFront tags")?;
    Ok(Tags::builder().set_items(Some(items)).build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_cloudfront_kind_is_registered() {
        for kind in [
            super::distribution::KIND,
            super::origin_access_control::KIND,
            super::origin_access_identity::KIND,
        ] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
