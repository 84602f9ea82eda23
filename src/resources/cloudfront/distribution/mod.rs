//! `cloudfront:distribution`: the stack's CloudFront distribution. The desired configuration
//! as a typed value ([`DesiredDistribution`]), the comparable signature of the parts this tool
//! manages (drift is repaired, everything else an operator set is kept), find (by record,
//! else by comment and stack tag: distributions have no names), create with tags, update with
//! the current ETag, the deployment wait, and the disable-wait-delete dance CloudFront
//! enforces on teardown.
//!
//! CloudFront deploys a new or changed distribution to every edge location in 5-15 minutes.
//! Teardown: get the config and its ETag, disable it (with that ETag: every update needs the
//! current one and returns a new one), wait until the disabled configuration is deployed,
//! delete it with the latest ETag. A run interrupted while the disabled distribution was
//! deploying resumes with the wait, not a second update.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{DistributionConfig, DistributionConfigWithTags};

use super::cf_tags;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "cloudfront:distribution";

/// Origin IDs inside the distribution.
pub const S3_ORIGIN_ID: &str = "assets-s3";
pub const ALB_ORIGIN_ID: &str = "api-alb";

/// AWS-managed cache and origin request policies (their IDs are the same in every account).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
pub const ALL_VIEWER_EXCEPT_HOST_HEADER: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Key prefix of the access logs in the log bucket.
pub const LOG_PREFIX: &str = "cdn/";

/// CloudFront takes 5-15 minutes to deploy a change (and to deploy a disable); generous.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(45 * 60);

pub struct Distribution;

/// The domain name CloudFront's `Logging.Bucket` takes: `<bucket>.s3.amazonaws.com`.
pub fn log_bucket_domain(bucket: &str) -> String {
    format!("{bucket}.s3.amazonaws.com")
}

/// A distribution's ARN: `arn:<partition>:cloudfront::<account>:distribution/<id>` (CloudFront
/// is global: no region).
pub fn distribution_arn(partition: &str, account: &str, id: &str) -> String {
    format!("arn:{partition}:cloudfront::{account}:distribution/{id}")
}

mod config;

pub use config::{current_api_origin, drifted, merged, signature, DesiredDistribution};

/// A distribution's configuration and the ETag an update must quote.
pub type ConfigAndEtag = (DistributionConfig, String);

/// The stack's distribution as found: its ID, ARN and domain name, and, when the lookup read
/// it anyway, its configuration and ETag.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub arn: String,
    pub domain_name: String,
    pub config: Option<ConfigAndEtag>,
}

/// The `Name` tag of the stack's distribution.
fn name_tag(ctx: &StepCtx) -> String {
    format!("cdn-{}", ctx.suffix())
}

/// The stack's distribution: the recorded one, else the one with this stack's comment and
/// stack tag. Returns its ID, ARN and domain name, and for the recorded one also its
/// configuration and ETag (GetDistribution carries both, which saves the drift check a
/// GetDistributionConfig).
pub async fn find(ctx: &StepCtx, comment: &str) -> Result<Option<Existing>> {
    let cf = ctx.aws().cloudfront();
    for rec in ctx.records(Some(KIND)) {
        let out = cf
            .get_distribution()
            .id(&rec.id)
            .send()
            .await
            .aws("cloudfront:GetDistribution", &rec.id)
            .not_found_ok()?;
        if let Some(o) = out {
            let etag = o.e_tag;
            if let Some(d) = o.distribution {
                let config = d.distribution_config.zip(etag);
                return Ok(Some(Existing {
                    id: d.id,
                    arn: d.arn,
                    domain_name: d.domain_name,
                    config,
                }));
            }
        }
    }
    let mut marker: Option<String> = None;
    loop {
        let out = cf
            .list_distributions()
            .set_marker(marker.clone())
            .send()
            .await
            .aws("cloudfront:ListDistributions", comment)?;
        let Some(list) = out.distribution_list else {
            return Ok(None);
        };
        for d in list.items() {
            if d.comment() != comment {
                continue;
            }
            let tags = cf
                .list_tags_for_resource()
                .resource(d.arn())
                .send()
                .await
                .aws("cloudfront:ListTagsForResource", d.id())?;
            let ours = tags
                .tags()
                .map(|t| t.items())
                .unwrap_or_default()
                .iter()
                .any(|t| t.key() == STACK_TAG && t.value() == Some(ctx.suffix()));
            if ours {
                return Ok(Some(Existing {
                    id: d.id().to_string(),
                    arn: d.arn().to_string(),
                    domain_name: d.domain_name().to_string(),
                    config: None,
                }));
            }
        }
        match list.next_marker {
            Some(m) if list.is_truncated && !m.is_empty() => marker = Some(m),
            _ => return Ok(None),
        }
    }
}

/// The distribution `existing` recorded as `comment`, else created from `want` with the
/// stack's tags; recorded with its ARN and attribute `domain_name`.
pub async fn ensure(
    ctx: &StepCtx,
    comment: &str,
    existing: Option<&Existing>,
    want: &DesiredDistribution,
) -> Result<Found> {
    let cf = ctx.aws().cloudfront();
    ctx.ensure(
        KIND,
        comment,
        || async {
            Ok(existing.map(|e| {
                Found::new(&e.id)
                    .arn(&e.arn)
                    .attr("domain_name", &e.domain_name)
            }))
        },
        || async {
            let tags = cf_tags(ctx.tags(Some(&name_tag(ctx))))?;
            let out = cf
                .create_distribution_with_tags()
                .distribution_config_with_tags(
                    DistributionConfigWithTags::builder()
                        .distribution_config(want.config()?)
                        .tags(tags)
                        .build(),
                )
                .send()
                .await
                .aws("cloudfront:CreateDistributionWithTags", comment)?;
            let d = out
                .distribution
                .context("CreateDistributionWithTags returned no distribution")?;
            Ok(Found::new(d.id)
                .arn(d.arn)
                .attr("domain_name", d.domain_name))
        },
    )
    .await
}

/// Sets the stack's tags on the existing distribution `id` (ARN `arn`) if any is missing
/// (CreateDistributionWithTags set them on a new one).
pub async fn ensure_tags(ctx: &StepCtx, comment: &str, id: &str, arn: &str) -> Result<()> {
    let cf = ctx.aws().cloudfront();
    let tags = cf
        .list_tags_for_resource()
        .resource(arn)
        .send()
        .await
        .aws("cloudfront:ListTagsForResource", id)?;
    let have: Vec<(String, String)> = tags
        .tags()
        .map(|t| t.items())
        .unwrap_or_default()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
        .collect();
    let want_tags = ctx.tags(Some(&name_tag(ctx)));
    if !want_tags.iter().all(|t| have.contains(t)) {
        ctx.change(KIND, comment, "set tags", || async {
            cf.tag_resource()
                .resource(arn)
                .tags(cf_tags(want_tags.clone())?)
                .send()
                .await
                .aws("cloudfront:TagResource", id)?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// The distribution's configuration and ETag: `known` (read by [`find`]) or read now.
pub async fn current_config(
    ctx: &StepCtx,
    id: &str,
    known: Option<ConfigAndEtag>,
) -> Result<(DistributionConfig, Option<String>)> {
    if let Some((config, etag)) = known {
        return Ok((config, Some(etag)));
    }
    let out = ctx
        .aws()
        .cloudfront()
        .get_distribution_config()
        .id(id)
        .send()
        .await
        .aws("cloudfront:GetDistributionConfig", id)?;
    let config = out
        .distribution_config
        .context("GetDistributionConfig returned no config")?;
    Ok((config, out.e_tag))
}

/// Puts `want`'s managed parts into the distribution `id` (its `current` config, read with
/// `etag`) when they drifted; everything else in it is kept (see [`merged`]).
pub async fn update_if_drifted(
    ctx: &StepCtx,
    comment: &str,
    id: &str,
    current: &DistributionConfig,
    etag: Option<String>,
    want: DistributionConfig,
) -> Result<()> {
    let desired = merged(current, want);
    if !drifted(current, &desired) {
        return Ok(());
    }
    let cf = ctx.aws().cloudfront();
    ctx.change(
        KIND,
        comment,
        "update origins, cache behaviours, price class, certificate, default root object, \
         access logging or web ACL",
        || async {
            cf.update_distribution()
                .id(id)
                .set_if_match(etag)
                .distribution_config(desired)
                .send()
                .await
                .aws("cloudfront:UpdateDistribution", id)?;
            Ok(())
        },
    )
    .await
}

/// Waits until the distribution's configuration is deployed everywhere; returns its
/// current ETag, or `None` if it is gone.
pub async fn wait_deployed(ctx: &StepCtx, id: &str) -> Result<Option<String>> {
    let cf = ctx.aws().cloudfront();
    ctx.wait_for(
        &format!("CloudFront distribution {id} to be deployed"),
        DEPLOY_TIMEOUT,
        || async {
            let out = cf
                .get_distribution()
                .id(id)
                .send()
                .await
                .aws("cloudfront:GetDistribution", id)
                .not_found_ok()?;
            Ok(match out {
                None => Some(None),
                Some(o) => {
                    let deployed = o
                        .distribution
                        .as_ref()
                        .is_some_and(|d| d.status() == "Deployed");
                    deployed.then_some(o.e_tag)
                }
            })
        },
    )
    .await
}

/// Disables (unless already disabled), waits for the disable to deploy, deletes. Safe to
/// rerun at any point.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let cf = ctx.aws().cloudfront();
    for _attempt in 0..5 {
        ctx.check_cancelled()?;
        let Some(out) = cf
            .get_distribution_config()
            .id(id)
            .send()
            .await
            .aws("cloudfront:GetDistributionConfig", id)
            .not_found_ok()?
        else {
            return Ok(());
        };
        let config = out
            .distribution_config
            .context("GetDistributionConfig returned no config")?;
        if config.enabled {
            let mut disabled = config.clone();
            disabled.enabled = false;
            ctx.note("disabling the CloudFront distribution");
            let r = cf
                .update_distribution()
                .id(id)
                .set_if_match(out.e_tag.clone())
                .distribution_config(disabled)
                .send()
                .await
                .aws("cloudfront:UpdateDistribution", id);
            match r {
                Ok(_) => {}
                // Changed between our read and update: read again.
                Err(e) if e.code.as_deref() == Some("PreconditionFailed") => continue,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        // Disabled (now or by an earlier run): CloudFront deletes it only once the
        // disabled configuration is deployed.
        let Some(etag) = wait_deployed(ctx, id).await? else {
            return Ok(());
        };
        ctx.check_cancelled()?;
        let r = cf
            .delete_distribution()
            .id(id)
            .if_match(etag)
            .send()
            .await
            .aws("cloudfront:DeleteDistribution", id);
        match r {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            // Re-enabled or changed meanwhile: start over.
            Err(e)
                if matches!(
                    e.code.as_deref(),
                    Some("PreconditionFailed" | "DistributionNotDisabled")
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("CloudFront distribution {id} kept changing while being deleted; run down again")
}

#[async_trait]
impl Provider for Distribution {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .cloudfront()
            .get_distribution()
            .id(&rec.id)
            .send()
            .await
            .aws("cloudfront:GetDistribution", &rec.id)
            .not_found_ok()?
            .and_then(|o| o.distribution)
            .map(|d| {
                let enabled = d
                    .distribution_config()
                    .map(|c| if c.enabled() { "enabled" } else { "disabled" })
                    .unwrap_or("");
                format!("{} ({enabled})", d.status())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id)
            .await
            .with_context(|| format!("deleting CloudFront distribution {}", rec.id))
    }
}

#[cfg(test)]
mod tests;
