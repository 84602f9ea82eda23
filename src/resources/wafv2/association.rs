//! `wafv2:web-acl-association`: a REGIONAL web ACL associated with a resource (the ALB).
//! The record's ID is the protected resource's ARN, its attribute `web_acl_arn` the ACL's.
//!
//! A new web ACL can take a moment before WAF lets it be associated
//! (`WAFUnavailableEntityException`): the association is retried for up to
//! [`PROPAGATION_TIMEOUT`]. CLOUDFRONT-scope ACLs are never associated: a distribution names
//! its ACL in its own configuration.

use anyhow::Result;
use async_trait::async_trait;

use super::{retryable, PROPAGATION_TIMEOUT};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "wafv2:web-acl-association";

pub struct Association;

/// The ARN of the web ACL associated with `resource_arn`, if any.
pub async fn web_acl_of(ctx: &StepCtx, resource_arn: &str) -> Result<Option<(String, String)>> {
    Ok(ctx
        .aws()
        .waf()
        .get_web_acl_for_resource()
        .resource_arn(resource_arn)
        .send()
        .await
        .aws("wafv2:GetWebACLForResource", resource_arn)
        .not_found_ok()?
        .and_then(|o| o.web_acl)
        .map(|a| (a.arn().to_string(), a.name().to_string())))
}

/// Associates the web ACL `web_acl_arn` with `resource_arn` (recorded as `name`), unless it
/// is already.
pub async fn ensure(
    ctx: &StepCtx,
    name: &str,
    web_acl_arn: &str,
    resource_arn: &str,
) -> Result<Found> {
    let waf = ctx.aws().waf();
    let associated = if is_pending(resource_arn) || is_pending(web_acl_arn) {
        false
    } else {
        web_acl_of(ctx, resource_arn)
            .await?
            .is_some_and(|(arn, _)| arn == web_acl_arn)
    };
    ctx.ensure(
        KIND,
        name,
        || async {
            Ok(associated.then(|| Found::new(resource_arn).attr("web_acl_arn", web_acl_arn)))
        },
        || async {
            // A new web ACL can take a moment before WAF lets it be associated.
            ctx.wait_for(
                "the web ACL to become available",
                PROPAGATION_TIMEOUT,
                || async {
                    match waf
                        .associate_web_acl()
                        .web_acl_arn(web_acl_arn)
                        .resource_arn(resource_arn)
                        .send()
                        .await
                        .aws("wafv2:AssociateWebACL", resource_arn)
                    {
                        Ok(_) => Ok(Some(())),
                        Err(e) if retryable(&e) => Ok(None),
                        Err(e) => Err(e.into()),
                    }
                },
            )
            .await?;
            Ok(Found::new(resource_arn).attr("web_acl_arn", web_acl_arn))
        },
    )
    .await
}

/// Disassociates whatever web ACL protects `resource_arn`; "not found" counts as done.
pub async fn delete(ctx: &StepCtx, resource_arn: &str) -> Result<()> {
    let waf = ctx.aws().waf();
    ctx.retry_dependency(&format!("{KIND} {resource_arn}"), || async {
        waf.disassociate_web_acl()
            .resource_arn(resource_arn)
            .send()
            .await
            .map(|_| ())
            .aws("wafv2:DisassociateWebACL", resource_arn)
    })
    .await
}

#[async_trait]
impl Provider for Association {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(web_acl_of(ctx, &rec.id)
            .await?
            .map(|(_, name)| format!("associated with {name}")))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
