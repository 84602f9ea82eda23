//! `sqs:queue`: a queue found by name (GetQueueUrl, its stack tag checked: another stack's
//! queue is never adopted), created with its attributes and tags, and brought back to the
//! wanted attributes with one SetQueueAttributes when they drifted.
//!
//! SQS refuses to re-create a queue name for 60 s after its deletion (`QueueDeletedRecently`),
//! so a create right after a `down` waits that out. Attributes read back are compared as SQS
//! returns them: JSON documents reformatted, `maxReceiveCount` a string or a number.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::iam::same_document;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "sqs:queue";

/// AWS refuses to re-create a queue name for 60 s after its deletion.
const DELETED_RECENTLY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Queue;

/// One queue to ensure.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    /// Recorded as the `role` attribute (`main`, `dlq`); a queue's record names the DLQ it
    /// redrives to (`dlq_arn`), which teardown deletes after it.
    pub role: &'static str,
    pub arn: String,
    pub attributes: Vec<(QueueAttributeName, String)>,
}

/// The ARN of a queue, from its name: SQS ARNs are `arn:<partition>:sqs:<region>:<account>:<name>`.
pub fn arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:sqs:{region}:{account}:{name}")
}

/// JSON attribute values compare as documents: SQS may reformat them, and returns
/// `maxReceiveCount` as a string or a number.
fn canonical_json(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), canonical_json(v)))
                .collect(),
        ),
        Value::Array(a) => {
            let mut l: Vec<Value> = a.iter().map(canonical_json).collect();
            l.sort_by_key(|x| x.to_string());
            Value::from(l)
        }
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// Whether an attribute value read back equals the wanted one.
pub fn same_attribute(name: &QueueAttributeName, current: Option<&str>, wanted: &str) -> bool {
    let Some(current) = current else {
        return false;
    };
    match name {
        QueueAttributeName::Policy => {
            match (
                serde_json::from_str::<Value>(current),
                serde_json::from_str::<Value>(wanted),
            ) {
                (Ok(c), Ok(w)) => same_document(&canonical_json(&c), &canonical_json(&w)),
                _ => false,
            }
        }
        QueueAttributeName::RedrivePolicy => {
            match (
                serde_json::from_str::<Value>(current),
                serde_json::from_str::<Value>(wanted),
            ) {
                (Ok(c), Ok(w)) => canonical_json(&c) == canonical_json(&w),
                _ => false,
            }
        }
        _ => current == wanted,
    }
}

/// The wanted attributes that differ from `current`.
pub fn drift(
    current: &HashMap<QueueAttributeName, String>,
    wanted: &[(QueueAttributeName, String)],
) -> Vec<(QueueAttributeName, String)> {
    wanted
        .iter()
        .filter(|(k, v)| !same_attribute(k, current.get(k).map(String::as_str), v))
        .cloned()
        .collect()
}

/// The queue's URL if it exists and is this stack's.
pub async fn find(ctx: &StepCtx, name: &str) -> Result<Option<String>> {
    let sqs = ctx.aws().sqs();
    let Some(url) = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .aws("sqs:GetQueueUrl", name)
        .not_found_ok()?
        .and_then(|o| o.queue_url)
    else {
        return Ok(None);
    };
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .aws("sqs:ListQueueTags", name)
        .not_found_ok()?;
    let Some(tags) = tags else {
        return Ok(None); // deleted between the two calls
    };
    ctx.check_ours(
        "SQS queue",
        name,
        tags.tags()
            .and_then(|t| t.get(STACK_TAG))
            .map(String::as_str),
    )?;
    Ok(Some(url))
}

/// Finds or creates the queue `spec` (recorded by URL, with its ARN, name and role), then
/// sets back any attribute that drifted.
pub async fn ensure(ctx: &StepCtx, spec: &QueueSpec) -> Result<Found> {
    let sqs = ctx.aws().sqs();
    let name = &spec.name;
    let existing = find(ctx, name).await?;
    let exists = existing.is_some();
    // The DLQ a queue redrives to, named in its record: `down` deletes the queue before it
    // (see resources::deps), whatever order the records are in.
    let dlq_arn = spec
        .attributes
        .iter()
        .find(|(k, _)| *k == QueueAttributeName::RedrivePolicy)
        .and_then(|(_, v)| serde_json::from_str::<Value>(v).ok())
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_string));
    let found = |url: String| {
        let f = Found::new(url)
            .arn(&spec.arn)
            .attr("name", name)
            .attr("role", spec.role);
        match &dlq_arn {
            Some(dlq) => f.attr("dlq_arn", dlq),
            None => f,
        }
    };
    let queue = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(existing.map(found)) },
            || async {
                let attrs: HashMap<_, _> = spec.attributes.iter().cloned().collect();
                let tags: HashMap<_, _> = ctx.tags(Some(name)).into_iter().collect();
                // A queue deleted less than 60 s ago cannot be re-created yet (e.g. `up`
                // right after `down`): wait that out rather than fail.
                let out = ctx
                    .retry_while(
                        &format!("SQS to allow re-creating queue {name}"),
                        DELETED_RECENTLY_TIMEOUT,
                        |e| {
                            e.code
                                .as_deref()
                                .is_some_and(|c| c.contains("QueueDeletedRecently"))
                        },
                        || async {
                            sqs.create_queue()
                                .queue_name(name)
                                .set_attributes(Some(attrs.clone()))
                                .set_tags(Some(tags.clone()))
                                .send()
                                .await
                                .aws("sqs:CreateQueue", name)
                        },
                    )
                    .await?;
                let url = out.queue_url.context("CreateQueue returned no URL")?;
                Ok(found(url))
            },
        )
        .await?;
    if !exists || queue.is_pending() {
        return Ok(queue); // created with the wanted attributes
    }

    let current = sqs
        .get_queue_attributes()
        .queue_url(&queue.id)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .aws("sqs:GetQueueAttributes", name)?
        .attributes
        .unwrap_or_default();
    let changed = drift(&current, &spec.attributes);
    if !changed.is_empty() {
        let what = format!(
            "set {}",
            changed
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        ctx.change(KIND, name, &what, || async {
            sqs.set_queue_attributes()
                .queue_url(&queue.id)
                .set_attributes(Some(changed.iter().cloned().collect()))
                .send()
                .await
                .aws("sqs:SetQueueAttributes", name)?;
            Ok(())
        })
        .await?;
    }
    Ok(queue)
}

/// Deletes the recorded queue (its ID is its URL); "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let sqs = ctx.aws().sqs();
    ctx.retry_dependency(&format!("SQS queue {}", rec.name), || {
        let sqs = sqs.clone();
        let url = rec.id.clone();
        async move {
            sqs.delete_queue()
                .queue_url(&url)
                .send()
                .await
                .map(|_| ())
                .aws("sqs:DeleteQueue", &url)
        }
    })
    .await
}

#[async_trait]
impl Provider for Queue {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let out = ctx
            .aws()
            .sqs()
            .get_queue_attributes()
            .queue_url(&rec.id)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .aws("sqs:GetQueueAttributes", &rec.name)
            .not_found_ok()?;
        Ok(out.map(|o| {
            let n = o
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .cloned()
                .unwrap_or_else(|| "?".into());
            format!("exists, ~{n} messages")
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
    }
}
