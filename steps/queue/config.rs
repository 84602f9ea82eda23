//! `[queue]`: the SQS transaction queue and its dead-letter queue, owned by the queue step.

use serde::Deserialize;

use crate::config::*;

/// The SQS transaction queue and its dead-letter queue.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Receives before a message goes to the dead-letter queue.
    pub max_receive_count: MaxReceiveCount,
    /// Visibility timeout; default 6 x `validator.timeout_secs` (AWS's advice for queues
    /// feeding a Lambda function), and never less.
    pub visibility_timeout_secs: Option<VisibilityTimeout>,
    /// Days a message is kept in the transaction queue (the DLQ keeps 14, the maximum).
    pub message_retention_days: QueueRetentionDays,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_receive_count: MaxReceiveCount(5),
            visibility_timeout_secs: None,
            message_retention_days: QueueRetentionDays(4),
        }
    }
}

impl Config {
    /// The queue's visibility timeout: as configured, else 6 x the validator's timeout.
    pub fn queue_visibility_timeout(&self) -> i32 {
        self.queue
            .visibility_timeout_secs
            .map(|v| v.0)
            .unwrap_or(self.validator.timeout_secs.0 * 6)
    }
}

bounded!(
    /// Receives of a message before SQS moves it to the dead-letter queue.
    MaxReceiveCount(i32), "max_receive_count", 1..=1000, "SQS allows 1 to 1000 receives"
);

bounded!(
    /// Seconds a received message stays invisible to other consumers.
    VisibilityTimeout(i32), "visibility_timeout_secs", 0..=43200,
    "SQS allows 0 to 43200 seconds (12 hours)"
);

bounded!(
    /// Days SQS keeps an unconsumed message.
    QueueRetentionDays(i32), "message_retention_days", 1..=14, "SQS keeps messages 1 to 14 days"
);
