//! `sns:topic`: an SNS topic encrypted with a customer-managed KMS key (`KmsMasterKeyId`),
//! recorded by ARN. A topic's ARN follows from its name, so it is found with one
//! GetTopicAttributes; a topic found with another key is switched to the wanted one.
//! Deleting a topic removes its subscriptions too.

use anyhow::{Context as _, Result};
use async_trait::async_trait;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::iam::partition_of;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "sns:topic";

pub struct Topic;

/// Finds or creates the topic `name` encrypted with `key_arn` (a plan-mode placeholder until
/// the key exists); recorded with its ARN as ID.
pub async fn ensure(ctx: &StepCtx, name: &str, key_arn: &str) -> Result<Found> {
    let sns = ctx.aws().sns();
    let account = ctx.account_id().await?;
    let arn = format!(
        "arn:{}:sns:{}:{account}:{name}",
        partition_of(key_arn),
        ctx.region()
    );
    let mut current_key = None;
    let topic = ctx
        .ensure(
            KIND,
            name,
            || async {
                let attrs = sns
                    .get_topic_attributes()
                    .topic_arn(&arn)
                    .send()
                    .await
                    .aws("sns:GetTopicAttributes", name)
                    .not_found_ok()?;
                Ok(attrs.map(|a| {
                    current_key = a
                        .attributes()
                        .and_then(|m| m.get("KmsMasterKeyId").cloned());
                    Found::new(&arn).arn(&arn)
                }))
            },
            || async {
                let mut req = sns
                    .create_topic()
                    .name(name)
                    .attributes("KmsMasterKeyId", key_arn);
                for (k, v) in ctx.tags(Some(name)) {
                    req = req.tags(aws_sdk_sns::types::Tag::builder().key(k).value(v).build()?);
                }
                let out = req.send().await.aws("sns:CreateTopic", name)?;
                let arn = out.topic_arn.context("CreateTopic returned no ARN")?;
                Ok(Found::new(&arn).arn(&arn))
            },
        )
        .await?;
    if let Some(k) = current_key.filter(|k| *k != key_arn && !is_pending(key_arn)) {
        ctx.change(
            KIND,
            name,
            &format!("encrypt with the stack key instead of {k}"),
            || async {
                sns.set_topic_attributes()
                    .topic_arn(&topic.id)
                    .attribute_name("KmsMasterKeyId")
                    .attribute_value(key_arn)
                    .send()
                    .await
                    .aws("sns:SetTopicAttributes", name)?;
                Ok(())
            },
        )
        .await?;
    }
    Ok(topic)
}

/// Deletes the topic `arn`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let sns = ctx.aws().sns();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        sns.delete_topic()
            .topic_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("sns:DeleteTopic", arn)
    })
    .await
}

#[async_trait]
impl Provider for Topic {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .sns()
            .get_topic_attributes()
            .topic_arn(id)
            .send()
            .await
            .aws("sns:GetTopicAttributes", id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
