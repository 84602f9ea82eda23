//! `cloudfront:origin-access-control`: the origin access control CloudFront signs its
//! requests to the private assets bucket with (SigV4 on every request, S3 origin): found by
//! name, created, its signing settings repaired, deleted with its current ETag.
//!
//! The bucket policy grant that lets the OAC's requests read (scoped to the distribution by
//! `AWS:SourceArn`) belongs to the distribution's step, not to this resource: the OAC itself
//! grants nothing.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginAccessControlSummary,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "cloudfront:origin-access-control";

pub struct OriginAccessControl;

/// The origin access control named `name`, if it exists (OAC names are unique per account).
async fn find(ctx: &StepCtx, name: &str) -> Result<Option<OriginAccessControlSummary>> {
    let cf = ctx.aws().cloudfront();
    let mut marker: Option<String> = None;
    loop {
        let out = cf
            .list_origin_access_controls()
            .set_marker(marker.clone())
            .send()
            .await
            .aws("cloudfront:ListOriginAccessControls", name)?;
        let Some(list) = out.origin_access_control_list else {
            return Ok(None);
        };
        if let Some(o) = list.items().iter().find(|o| o.name() == name) {
            return Ok(Some(o.clone()));
        }
        match list.next_marker {
            Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m),
            _ => return Ok(None),
        }
    }
}

/// The origin access control `name` for an S3 origin, created if missing, drift repaired.
/// `description` is set when it is created.
pub async fn ensure(ctx: &StepCtx, name: &str, description: &str) -> Result<Found> {
    let cf = ctx.aws().cloudfront();
    let existing = find(ctx, name).await?;
    let config = || {
        OriginAccessControlConfig::builder()
            .name(name)
            .description(description)
            .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
            .signing_behavior(OriginAccessControlSigningBehaviors::Always)
            .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
            .build()
            .context("building the origin access control config")
    };
    let drifted = existing.as_ref().is_some_and(|o| {
        o.signing_protocol() != &OriginAccessControlSigningProtocols::Sigv4
            || o.signing_behavior() != &OriginAccessControlSigningBehaviors::Always
            || o.origin_access_control_origin_type() != &OriginAccessControlOriginTypes::S3
    });
    let found = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(existing.as_ref().map(|o| Found::new(o.id()))) },
            || async {
                let out = cf
                    .create_origin_access_control()
                    .origin_access_control_config(config()?)
                    .send()
                    .await
                    .aws("cloudfront:CreateOriginAccessControl", name)?;
                let oac = out
                    .origin_access_control
                    .context("CreateOriginAccessControl returned nothing")?;
                Ok(Found::new(oac.id))
            },
        )
        .await?;
    if drifted {
        ctx.change(
            KIND,
            name,
            "sign every request with SigV4 (S3 origin)",
            || async {
                let etag = cf
                    .get_origin_access_control()
                    .id(&found.id)
                    .send()
                    .await
                    .aws("cloudfront:GetOriginAccessControl", &found.id)?
                    .e_tag;
                cf.update_origin_access_control()
                    .id(&found.id)
                    .set_if_match(etag)
                    .origin_access_control_config(config()?)
                    .send()
                    .await
                    .aws("cloudfront:UpdateOriginAccessControl", &found.id)?;
                Ok(())
            },
        )
        .await?;
    }
    Ok(found)
}

/// Deletes the OAC `id` (with its current ETag); "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let cf = ctx.aws().cloudfront();
    let got = cf
        .get_origin_access_control()
        .id(id)
        .send()
        .await
        .aws("cloudfront:GetOriginAccessControl", id)
        .not_found_ok()?;
    if let Some(o) = got {
        cf.delete_origin_access_control()
            .id(id)
            .set_if_match(o.e_tag)
            .send()
            .await
            .aws("cloudfront:DeleteOriginAccessControl", id)
            .not_found_ok()?;
    }
    Ok(())
}

#[async_trait]
impl Provider for OriginAccessControl {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .cloudfront()
            .get_origin_access_control()
            .id(&rec.id)
            .send()
            .await
            .aws("cloudfront:GetOriginAccessControl", &rec.id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
