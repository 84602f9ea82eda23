//! `cloudfront:origin-access-identity`: the legacy origin access identity of stacks built in
//! `cdn.origin_access = "oai"` mode by earlier versions. `up` no longer makes one (an OAI
//! cannot read SSE-KMS objects at all; only an OAC, with the key policy statement, can): a
//! recorded one is deleted once neither the distribution nor the bucket policy refers to it.
//! Deleting needs its current ETag.

use anyhow::Result;
use async_trait::async_trait;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::StepCtx;

pub const KIND: &str = "cloudfront:origin-access-identity";

pub struct OriginAccessIdentity;

/// The OAI's comment (and caller reference suffix): OAIs have no names either.
pub fn oai_comment(suffix: &str) -> String {
    format!("oai-assets-{suffix}")
}

/// The principal an OAI has in bucket policies.
pub fn oai_principal(oai_id: &str) -> String {
    format!("arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity {oai_id}")
}

/// Deletes the OAI `id` (with its current ETag); "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let cf = ctx.aws().cloudfront();
    let got = cf
        .get_cloud_front_origin_access_identity()
        .id(id)
        .send()
        .await
        .aws("cloudfront:GetCloudFrontOriginAccessIdentity", id)
        .not_found_ok()?;
    if let Some(o) = got {
        cf.delete_cloud_front_origin_access_identity()
            .id(id)
            .set_if_match(o.e_tag)
            .send()
            .await
            .aws("cloudfront:DeleteCloudFrontOriginAccessIdentity", id)
            .not_found_ok()?;
    }
    Ok(())
}

#[async_trait]
impl Provider for OriginAccessIdentity {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .cloudfront()
            .get_cloud_front_origin_access_identity()
            .id(&rec.id)
            .send()
            .await
            .aws("cloudfront:GetCloudFrontOriginAccessIdentity", &rec.id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
