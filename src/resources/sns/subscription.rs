//! `sns:subscription`: an email subscription to a topic, recorded with its topic's ARN.
//!
//! An email subscription stays pending until its recipient confirms it. It is created with
//! `ReturnSubscriptionArn`, so the record holds the real ARN even while confirmation is
//! pending; a subscription still without an ARN cannot be unsubscribed, and deleting the
//! topic removes it.

use anyhow::Result;
use async_trait::async_trait;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "sns:subscription";

pub struct Subscription;

/// Finds or creates the subscription of `email` to `topic`.
pub async fn ensure_email(ctx: &StepCtx, topic: &Found, email: &str) -> Result<Found> {
    let sns = ctx.aws().sns();
    let name = format!("email {email}");
    ctx.ensure(
        KIND,
        &name,
        || async {
            if topic.is_pending() {
                return Ok(None);
            }
            let out = sns
                .list_subscriptions_by_topic()
                .topic_arn(&topic.id)
                .send()
                .await
                .aws("sns:ListSubscriptionsByTopic", &topic.id)?;
            Ok(out
                .subscriptions()
                .iter()
                .find(|s| s.protocol() == Some("email") && s.endpoint() == Some(email))
                .map(|s| {
                    Found::new(s.subscription_arn().unwrap_or_default())
                        .attr("topic_arn", &topic.id)
                }))
        },
        || async {
            // ReturnSubscriptionArn: the real ARN even while confirmation is pending, so
            // teardown can unsubscribe it.
            let out = sns
                .subscribe()
                .topic_arn(&topic.id)
                .protocol("email")
                .endpoint(email)
                .return_subscription_arn(true)
                .send()
                .await
                .aws("sns:Subscribe", &name)?;
            Ok(Found::new(out.subscription_arn.unwrap_or_default()).attr("topic_arn", &topic.id))
        },
    )
    .await
}

/// Unsubscribes `arn`; "not found" counts as deleted. A subscription still pending
/// confirmation has no ARN to unsubscribe; deleting the topic removes it.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    if !arn.starts_with("arn:") {
        return Ok(());
    }
    let sns = ctx.aws().sns();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        sns.unsubscribe()
            .subscription_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("sns:Unsubscribe", arn)
    })
    .await
}

#[async_trait]
impl Provider for Subscription {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        let topic = rec.attrs.get("topic_arn").cloned().unwrap_or_default();
        Ok(ctx
            .aws()
            .sns()
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .send()
            .await
            .aws("sns:ListSubscriptionsByTopic", &topic)
            .not_found_ok()?
            .and_then(|o| {
                o.subscriptions()
                    .iter()
                    .find(|s| s.subscription_arn() == Some(id))
                    .map(|_| "subscribed".to_string())
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
