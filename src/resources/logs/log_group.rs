//! `logs:log-group`: the KMS-encrypted CloudWatch Logs group with retention that several
//! steps own (one per ECS service, the validator's Lambda function, the Aurora log export,
//! Container Insights, the VPC flow logs).
//!
//! Found by exact name (DescribeLogGroups only filters by prefix), created with the stack key
//! and tags, recorded at once, then given its retention; a second `up` repairs a changed
//! retention or key and otherwise changes nothing. [`ensure_tags`] adds the stack's tags to a
//! group found untagged (one AWS created itself before the tool managed it).

use anyhow::{bail, Result};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types;

use crate::aws::AwsResultExt;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

/// The resource kind every step records its log groups under.
pub const KIND: &str = "logs:log-group";

pub struct LogGroup;

/// The log group called exactly `name` (DescribeLogGroups filters by prefix only).
async fn find(ctx: &StepCtx, name: &str) -> Result<Option<types::LogGroup>> {
    let out = ctx
        .aws()
        .logs()
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .aws("logs:DescribeLogGroups", name)?;
    Ok(out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
        .cloned())
}

/// Finds or creates the log group `name`, encrypted with `key_arn`, with the configured
/// retention; `attrs` are recorded with it (e.g. which service it belongs to).
pub async fn ensure(
    ctx: &StepCtx,
    name: &str,
    key_arn: &str,
    attrs: &[(&str, &str)],
) -> Result<Found> {
    let logs = ctx.aws().logs();
    let retention = ctx.cfg().logs.retention_days.0;
    let put_retention = || async {
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(retention)
            .send()
            .await
            .aws("logs:PutRetentionPolicy", name)?;
        Ok(())
    };
    let with_attrs = |mut f: Found| {
        for (k, v) in attrs {
            f = f.attr(k, *v);
        }
        f
    };
    let found = ctx
        .ensure(
            KIND,
            name,
            || async {
                Ok(find(ctx, name).await?.map(|g| {
                    with_attrs(
                        Found::new(name)
                            .arn(g.log_group_arn().unwrap_or_default())
                            .attr("retention", g.retention_in_days().unwrap_or(0).to_string())
                            .attr("kms_key_id", g.kms_key_id().unwrap_or_default()),
                    )
                }))
            },
            || async {
                if is_pending(key_arn) {
                    bail!("the KMS key is not known yet");
                }
                logs.create_log_group()
                    .log_group_name(name)
                    .kms_key_id(key_arn)
                    .set_tags(Some(ctx.tags(Some(name)).into_iter().collect()))
                    .send()
                    .await
                    .aws("logs:CreateLogGroup", name)?;
                let found = with_attrs(
                    Found::new(name)
                        .attr("retention", retention.to_string())
                        .attr("kms_key_id", key_arn),
                );
                // Recorded before the retention call: a failure there must not lose the group.
                ctx.record(KIND, name, &found)?;
                put_retention().await?;
                Ok(found)
            },
        )
        .await?;
    if found.is_pending() {
        return Ok(found);
    }
    if found.attrs.get("retention") != Some(&retention.to_string()) {
        let what = format!("set retention to {retention} days");
        ctx.change(KIND, name, &what, put_retention).await?;
    }
    if !is_pending(key_arn) && found.attrs.get("kms_key_id").map(String::as_str) != Some(key_arn) {
        ctx.change(KIND, name, "encrypt with the stack's KMS key", || async {
            logs.associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key_arn)
                .send()
                .await
                .aws("logs:AssociateKmsKey", name)?;
            Ok(())
        })
        .await?;
    }
    Ok(found)
}

/// Adds the stack's tags a found log group lacks: a group AWS created itself before the tool
/// managed it (an RDS log export, Container Insights: AWS-CONTRACTS B10) has none, and
/// adopting it sets its key and retention but not its tags. A group this run created (no ARN
/// in its record yet) was tagged by CreateLogGroup.
pub async fn ensure_tags(ctx: &StepCtx, found: &Found) -> Result<()> {
    let Some(arn) = found.arn.as_deref().filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    if found.is_pending() {
        return Ok(());
    }
    // DescribeLogGroups shows the ARN with a trailing `:*`; the tagging calls take it without
    // (CloudWatch Logs API reference, TagResource).
    let arn = arn.strip_suffix(":*").unwrap_or(arn);
    let logs = ctx.aws().logs();
    let got = logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws("logs:ListTagsForResource", arn)?
        .tags
        .unwrap_or_default();
    let missing: std::collections::HashMap<String, String> = ctx
        .tags(Some(&found.id))
        .into_iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<&str> = missing.keys().map(String::as_str).collect();
    keys.sort();
    let what = format!("tag {}", keys.join(", "));
    ctx.change(KIND, &found.id, &what, || async {
        logs.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(missing.clone()))
            .send()
            .await
            .aws("logs:TagResource", arn)?;
        Ok(())
    })
    .await
}

/// Whether the log group `name` exists.
pub async fn exists(ctx: &StepCtx, name: &str) -> Result<bool> {
    Ok(find(ctx, name).await?.is_some())
}

/// Deletes the log group `name`, retrying while AWS reports a dependency; "not found" counts
/// as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let logs = ctx.aws().logs();
    ctx.retry_dependency(&format!("{KIND} {name}"), || async {
        logs.delete_log_group()
            .log_group_name(name)
            .send()
            .await
            .map(|_| ())
            .aws("logs:DeleteLogGroup", name)
    })
    .await
}

#[async_trait]
impl Provider for LogGroup {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(exists(ctx, &rec.id).await?.then(|| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
