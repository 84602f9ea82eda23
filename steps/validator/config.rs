//! `[validator]`: the Lambda transaction validator, its retries and its circuit breaker, owned
//! by the validator step.

use serde::Deserialize;


/// The Lambda transaction validator.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidatorConfig {
    pub reserved_concurrency: ReservedConcurrency,
    pub memory_mb: LambdaMemory,
    pub timeout_secs: LambdaTimeout,
    pub batch_size: BatchSize,
    /// Seconds before a failed transaction's first retry; each further receive doubles it
    /// (seed 002's exponential backoff), up to `retry_max_secs`.
    pub retry_base_secs: RetryDelay,
    /// The longest delay between two retries of a failed transaction.
    pub retry_max_secs: RetryDelay,
    /// Seed 002's circuit breaker: consumption pauses while the failure rate is at or above
    /// `breaker_failure_percent`.
    pub breaker: bool,
    /// The share of failed transactions (per minute) that opens the breaker.
    pub breaker_failure_percent: BreakerPercent,
    /// Fewer transactions than this in a minute never open the breaker: one failure out of
    /// two is no outage.
    pub breaker_min_messages: BreakerMinimum,
    /// Minutes at or above the rate before the breaker opens, and minutes without data
    /// before it closes again (the cool-down).
    pub breaker_periods: BreakerPeriods,
    /// Minutes between two runs of the breaker's reconciler, which sets consumption to match
    /// the breaker alarm's state in case one of its invocations was lost.
    pub breaker_reconcile_mins: BreakerReconcile,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        ValidatorConfig {
            reserved_concurrency: ReservedConcurrency(5),
            memory_mb: LambdaMemory(256),
            timeout_secs: LambdaTimeout(30),
            batch_size: BatchSize(10),
            retry_base_secs: RetryDelay(30),
            retry_max_secs: RetryDelay(900),
            breaker: true,
            breaker_failure_percent: BreakerPercent(50),
            breaker_min_messages: BreakerMinimum(10),
            breaker_periods: BreakerPeriods(5),
            breaker_reconcile_mins: BreakerReconcile(5),
        }
    }
}

bounded!(
    /// Concurrent executions reserved for (and capping) the validator function.
    ReservedConcurrency(i32), "reserved_concurrency", 1..=900,
    "1 to 900: Lambda refuses a reservation that leaves fewer than 100 of the account's \
     (default 1000) concurrent executions unreserved"
);

bounded!(
    /// Memory of the validator function in MB.
    LambdaMemory(i32), "memory_mb", 128..=10240, "Lambda allows 128 to 10240 MB"
);

bounded!(
    /// Timeout of the validator function in seconds.
    LambdaTimeout(i32), "timeout_secs", 1..=900, "Lambda allows 1 to 900 seconds"
);

bounded!(
    /// Seconds a failed transaction waits before it is retried (a message visibility).
    RetryDelay(i32), "retry delay", 1..=43200,
    "1 to 43200 seconds (SQS's longest visibility timeout, 12 hours)"
);

bounded!(
    /// The validator's failure rate (percent) that opens its circuit breaker.
    BreakerPercent(i32), "breaker_failure_percent", 1..=100, "a percentage, 1 to 100"
);

bounded!(
    /// Transactions a minute below which the breaker never opens.
    BreakerMinimum(i32), "breaker_min_messages", 1..=100000, "1 to 100000 transactions a minute"
);

bounded!(
    /// One-minute periods the breaker alarm evaluates (to open, and to close again).
    BreakerPeriods(i32), "breaker_periods", 1..=60,
    "1 to 60 one-minute periods (CloudWatch evaluates at most a day, but an hour-long \
     pause is already an outage)"
);

bounded!(
    /// Minutes between two runs of the breaker's reconciler (an EventBridge schedule).
    BreakerReconcile(i32), "breaker_reconcile_mins", 1..=60,
    "1 to 60 minutes: a paused consumption waits at most that long for its resume"
);

bounded!(
    /// Messages per invocation of the validator.
    BatchSize(i32), "batch_size", 1..=10000, "an SQS event source takes 1 to 10000 messages"
);
