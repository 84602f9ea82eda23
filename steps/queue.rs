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
//! is set back with one SetQueueAttributes (see [`crate::resources::sqs::queue`]).
//!
//! `down` deletes the transaction queue before the DLQ: in `BUILT_ON`
//! (`src/resources/deps.rs`) a queue is built on the queue its record names (`dlq_arn`).
//! AWS refuses nothing here, but a source queue redriving into a deleted DLQ would lose
//! messages meanwhile. The validator's event source mapping and function are built on the
//! queues and go before them; both queues are built on the stack key.

/// The `[queue]` section this step owns (re-exported by `crate::config`).
pub mod config;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};

use crate::resources::iam::partition_of;
use crate::resources::sqs::queue::{self, QueueSpec};
use crate::step::{Step, StepCtx};
use crate::outputs::kms;

pub use crate::outputs::queue::*;

pub const QUEUE: &str = queue::KIND;
pub use crate::resources::sqs::queue::arn as queue_arn;

/// The DLQ keeps failed transactions as long as SQS allows.
const DLQ_RETENTION_SECS: i32 = 14 * 86_400;

pub struct Queue;

pub use crate::naming::{dlq_name, queue_name};

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
        let partition = partition_of(&key_arn).to_string();
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
        let dlq = queue::ensure(ctx, &dlq_spec).await?;

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
        let main = queue::ensure(ctx, &main_spec).await?;

        if !main.is_pending() && !dlq.is_pending() {
            ctx.set_output(OUT_QUEUE_URL, main.id.clone())?;
            ctx.set_output(OUT_QUEUE_ARN, main_arn)?;
            ctx.set_output(OUT_DLQ_URL, dlq.id.clone())?;
            ctx.set_output(OUT_DLQ_ARN, dlq_arn)?;
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::resources::sqs::queue::drift;

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
