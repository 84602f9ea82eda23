//! Queue step: the SQS transaction queue `queue-transactions-<suffix>` and its dead-letter queue
//! `queue-transactions-dlq-<suffix>`.
//!
//! Both are encrypted with the stack's KMS key (`KmsMasterKeyId` = the key ARN; SQS then uses
//! it instead of SQS-managed SSE) and carry a queue policy denying any request not made over
//! TLS (`aws:SecureTransport` false). The transaction queue redrives a message to the DLQ after
//! `queue.max_receive_count` receives; its visibility timeout is at least 6 x the validator's
//! timeout (AWS's advice for a queue feeding a Lambda function, see config.rs). The DLQ keeps
//! messages 14 days (the maximum): for a standard queue the original enqueue time is kept, so
//! a DLQ with a shorter retention than its source would drop failed transactions early.
//!
//! Idempotency: GetQueueUrl finds each queue (its stack tag is checked: another stack's queue
//! is never adopted), GetQueueAttributes is compared with the wanted attributes, and any drift
//! is set back with one SetQueueAttributes. Teardown deletes the transaction queue first, then
//! the DLQ (AWS refuses nothing here, but a source queue redriving into a deleted DLQ would
//! lose messages meanwhile).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{Found, Step, StepCtx};
use crate::steps::{iam, kms};

pub const QUEUE: &str = "sqs:queue";

/// Output keys other steps read.
pub const OUT_QUEUE_URL: &str = "queue_url";
pub const OUT_QUEUE_ARN: &str = "queue_arn";
pub const OUT_DLQ_URL: &str = "dlq_url";
pub const OUT_DLQ_ARN: &str = "dlq_arn";

/// The DLQ keeps failed transactions as long as SQS allows.
const DLQ_RETENTION_SECS: i32 = 14 * 86_400;

/// AWS refuses to re-create a queue name for 60 s after its deletion.
const DELETED_RECENTLY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Queue;

/// `queue-transactions-<suffix>`.
pub fn queue_name(suffix: &str) -> String {
    format!("queue-transactions-{suffix}")
}

/// `queue-transactions-dlq-<suffix>`.
pub fn dlq_name(suffix: &str) -> String {
    format!("queue-transactions-dlq-{suffix}")
}

/// The ARN of a queue, from its name: SQS ARNs are `arn:<partition>:sqs:<region>:<account>:<name>`.
pub fn queue_arn(partition: &str, region: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:sqs:{region}:{account}:{name}")
}

/// The queue policy: nothing may use the queue without TLS.
pub fn tls_only_policy(queue_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    })
}

/// The source queue's redrive policy.
pub fn redrive_policy(dlq_arn: &str, max_receive_count: i32) -> Value {
    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
}

/// The attributes a queue should have, as SQS takes them.
pub fn wanted_attributes(
    key_arn: &str,
    arn: &str,
    visibility_timeout: i32,
    retention_secs: i32,
    redrive: Option<&Value>,
) -> Vec<(QueueAttributeName, String)> {
    let mut v = vec![
        (QueueAttributeName::KmsMasterKeyId, key_arn.to_string()),
        (
            QueueAttributeName::VisibilityTimeout,
            visibility_timeout.to_string(),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            retention_secs.to_string(),
        ),
        (QueueAttributeName::Policy, tls_only_policy(arn).to_string()),
    ];
    if let Some(r) = redrive {
        v.push((QueueAttributeName::RedrivePolicy, r.to_string()));
    }
    v
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
                (Ok(c), Ok(w)) => iam::same_document(&canonical_json(&c), &canonical_json(&w)),
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

/// One queue to ensure.
struct QueueSpec {
    name: String,
    role: &'static str,
    arn: String,
    attributes: Vec<(QueueAttributeName, String)>,
}

impl Queue {
    /// The queue's URL if it exists and is this stack's.
    async fn find(ctx: &StepCtx, name: &str) -> Result<Option<String>> {
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

    async fn ensure(ctx: &StepCtx, spec: &QueueSpec) -> Result<Found> {
        let sqs = ctx.aws().sqs();
        let name = &spec.name;
        let existing = Self::find(ctx, name).await?;
        let exists = existing.is_some();
        let found = |url: String| {
            Found::new(url)
                .arn(&spec.arn)
                .attr("name", name)
                .attr("role", spec.role)
        };
        let queue = ctx
            .ensure(
                QUEUE,
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
            ctx.change(QUEUE, name, &what, || async {
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
}

#[async_trait]
impl Step for Queue {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // Two CreateQueue calls; SQS queues are usable at once.
        3
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        // `aws` while the key is still to be created (a placeholder is not an ARN).
        let partition = iam::partition_of(&key_arn).to_string();
        let account = ctx.account_id().await?;
        let (main, dlq) = (queue_name(ctx.suffix()), dlq_name(ctx.suffix()));
        let main_arn = queue_arn(&partition, ctx.region(), &account, &main);
        let dlq_arn = queue_arn(&partition, ctx.region(), &account, &dlq);
        let q = &ctx.cfg().queue;

        // The DLQ first: the transaction queue's redrive policy names it.
        let dlq_spec = QueueSpec {
            attributes: wanted_attributes(
                &key_arn,
                &dlq_arn,
                ctx.cfg().queue_visibility_timeout(),
                DLQ_RETENTION_SECS,
                None,
            ),
            name: dlq,
            role: "dlq",
            arn: dlq_arn.clone(),
        };
        let dlq = Self::ensure(ctx, &dlq_spec).await?;

        let main_spec = QueueSpec {
            attributes: wanted_attributes(
                &key_arn,
                &main_arn,
                ctx.cfg().queue_visibility_timeout(),
                q.message_retention_days.0 * 86_400,
                Some(&redrive_policy(&dlq_arn, q.max_receive_count.0)),
            ),
            name: main,
            role: "main",
            arn: main_arn.clone(),
        };
        let main = Self::ensure(ctx, &main_spec).await?;

        if !main.is_pending() && !dlq.is_pending() {
            ctx.set_output(OUT_QUEUE_URL, main.id.clone())?;
            ctx.set_output(OUT_QUEUE_ARN, main_arn)?;
            ctx.set_output(OUT_DLQ_URL, dlq.id.clone())?;
            ctx.set_output(OUT_DLQ_ARN, dlq_arn)?;
        }
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let sqs = ctx.aws().sqs();
        // The transaction queue before its DLQ.
        let mut recs = ctx.records(Some(QUEUE));
        recs.sort_by_key(|r| r.attrs.get("role").map(String::as_str) == Some("dlq"));
        for rec in recs {
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
            .await?;
            ctx.deleted(QUEUE, &rec.id)?;
        }
        for key in [OUT_QUEUE_URL, OUT_QUEUE_ARN, OUT_DLQ_URL, OUT_DLQ_ARN] {
            ctx.remove_output(key)?;
        }
        Ok(())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234";
    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:queue-transactions-prod";
    const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:queue-transactions-dlq-prod";

    #[test]
    fn names_and_arns() {
        assert_eq!(queue_name("prod"), "queue-transactions-prod");
        assert_eq!(dlq_name("prod"), "queue-transactions-dlq-prod");
        assert!(
            dlq_name(&"s".repeat(23)).len() <= 80,
            "SQS names are at most 80"
        );
        assert_eq!(
            queue_arn(
                "aws",
                "us-east-1",
                "123456789012",
                "queue-transactions-prod"
            ),
            ARN
        );
    }

    #[test]
    fn policy_denies_plain_http_only() {
        let p = tls_only_policy(ARN);
        let s = &p["Statement"][0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Resource"], ARN);
        assert_eq!(s["Condition"]["Bool"]["aws:SecureTransport"], "false");
    }

    #[test]
    fn attributes_and_drift() {
        let redrive = redrive_policy(DLQ, 5);
        let wanted = wanted_attributes(KEY, ARN, 180, 345_600, Some(&redrive));
        // Read back as SQS returns it: maxReceiveCount a string, the policy reformatted.
        let mut current: HashMap<QueueAttributeName, String> = [
            (QueueAttributeName::KmsMasterKeyId, KEY.to_string()),
            (QueueAttributeName::VisibilityTimeout, "180".into()),
            (QueueAttributeName::MessageRetentionPeriod, "345600".into()),
            (
                QueueAttributeName::Policy,
                serde_json::to_string_pretty(&tls_only_policy(ARN)).unwrap(),
            ),
            (
                QueueAttributeName::RedrivePolicy,
                format!("{{\"maxReceiveCount\":\"5\",\"deadLetterTargetArn\":\"{DLQ}\"}}"),
            ),
            (QueueAttributeName::QueueArn, ARN.into()),
        ]
        .into_iter()
        .collect();
        assert!(drift(&current, &wanted).is_empty());
        current.insert(QueueAttributeName::VisibilityTimeout, "30".into());
        current.remove(&QueueAttributeName::KmsMasterKeyId);
        let d: Vec<_> = drift(&current, &wanted)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            d,
            [
                QueueAttributeName::KmsMasterKeyId,
                QueueAttributeName::VisibilityTimeout
            ]
        );
        current.insert(
            QueueAttributeName::RedrivePolicy,
            redrive_policy(DLQ, 3).to_string(),
        );
        assert!(drift(&current, &wanted)
            .iter()
            .any(|(k, _)| k == &QueueAttributeName::RedrivePolicy));
    }
}
