//! Waiting and retrying: [`StepCtx::wait_for`] polls with a growing interval (capped by
//! [`max_poll_interval`]), and the retries for AWS's "not yet" answers (a dependency still
//! held, a new IAM role not usable yet).

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::StepCtx;
use crate::error::Interrupted;

/// Whether an error is AWS saying a new IAM role cannot be used yet.
pub fn is_iam_propagation(e: &crate::aws::AwsError) -> bool {
    let code = e.code.as_deref().unwrap_or("");
    let msg = e.message.as_deref().unwrap_or("").to_ascii_lowercase();
    matches!(
        code,
        "InvalidParameterException"
            | "InvalidParameterValueException"
            | "InvalidParameterValue"
            | "AccessDeniedException"
            | "ClientException"
            // CodeDeploy: "AWS CodeDeploy does not have the permissions required to assume
            // the role ..." while a new service role propagates.
            | "InvalidRoleException"
    ) && (msg.contains("assume") || msg.contains("role") || msg.contains("not authorized"))
}

/// The environment variable that caps the poll interval of every wait, in seconds.
pub const MAX_POLL_ENV: &str = "FINTECH_INFRA_MAX_POLL_SECS";

/// The longest delay between two polls of a wait: 10 s (AWS's resources take minutes, and a
/// poll is an API call against the account's rate limits), or `FINTECH_INFRA_MAX_POLL_SECS`
/// (0.1 to 60). Against an emulator running at a time scale a resource is ready in a fraction
/// of its AWS time, and a 10 s poll would measure the poll, not the tool: the lifecycle
/// benchmark sets 1 s. Read once.
pub fn max_poll_interval() -> Duration {
    static MAX: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var(MAX_POLL_ENV)
            .ok()
            .and_then(|v| parse_max_poll(&v).ok())
            .unwrap_or(Duration::from_secs(10))
    })
}

/// A `FINTECH_INFRA_MAX_POLL_SECS` value: seconds, 0.1 to 60. The commands check it before
/// any AWS call (a bad one is a usage error), so the wait's fallback to 10 s never hides one.
pub fn parse_max_poll(v: &str) -> Result<Duration, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| (0.1..=60.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            format!("invalid {MAX_POLL_ENV} `{v}`: the longest poll interval in seconds, 0.1 to 60")
        })
}

impl StepCtx {
    /// Runs a delete again while AWS refuses it because something still depends on the
    /// resource (`DependencyViolation`, `ResourceInUse`, ...): the ENIs of a deleted NAT
    /// gateway, load balancer or Lambda function are released lazily and hold subnets and
    /// security groups for minutes. "Not found" counts as deleted. Gives up after
    /// `timeouts.dependency_violation_secs` with the last refusal as the error.
    pub async fn retry_dependency<F, Fut>(&self, what: &str, mut call: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), crate::aws::AwsError>>,
    {
        self.check_cancelled()?;
        let timeout = Duration::from_secs(self.cfg().timeouts.dependency_violation_secs.0);
        self.retry_while(
            &format!("{what} to be free of dependencies"),
            timeout,
            |e| e.kind() == crate::aws::AwsErrorKind::DependencyViolation,
            || {
                let fut = call();
                async move {
                    match fut.await {
                        Err(e) if e.is_not_found() => Ok(()),
                        other => other,
                    }
                }
            },
        )
        .await
        .with_context(|| format!("deleting {what}"))
    }

    /// Runs `call` again while AWS rejects it because a just-created IAM role is not usable
    /// yet: IAM is eventually consistent, and a new role can take several seconds before
    /// ECS, Lambda or RDS accept it. Bounded to two minutes; other errors return at once.
    pub async fn retry_iam<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, crate::aws::AwsError>>,
    {
        self.retry_while(
            &format!("IAM role to propagate for {what}"),
            Duration::from_secs(120),
            is_iam_propagation,
            call,
        )
        .await
    }

    /// Calls `call` until it succeeds or fails with an error `retryable` rejects, polling like
    /// [`StepCtx::wait_for`]; on timeout the last retryable error is the cause.
    pub(crate) async fn retry_while<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        retryable: impl Fn(&crate::aws::AwsError) -> bool,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, crate::aws::AwsError>>,
    {
        let last = Mutex::new(None);
        let result = self
            .wait_for(what, timeout, || {
                let fut = call();
                let (last, retryable) = (&last, &retryable);
                async move {
                    match fut.await {
                        Ok(v) => Ok(Some(v)),
                        Err(e) if retryable(&e) => {
                            tracing::debug!(error = %e, "retrying: {what}");
                            *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            Ok(None)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            })
            .await;
        match (result, last.into_inner().unwrap_or_else(|p| p.into_inner())) {
            (Err(timeout), Some(e)) if timeout.downcast_ref::<Interrupted>().is_none() => {
                Err(anyhow::Error::new(e).context(timeout.to_string()))
            }
            (r, _) => r,
        }
    }

    /// Polls `check` until it returns `Some`, with a delay growing from 0.5 s to
    /// [`max_poll_interval`] (10 s), up to `timeout`. Rather than the SDK's generated waiters, whose fixed 15 s minimum delay would
    /// add up to 15 s per resource on the critical path. Stops on Ctrl-C: whatever was created
    /// is already recorded, so the next `up` resumes the wait.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let start = Instant::now();
        let mut delay = Duration::from_millis(500);
        let mut first = true;
        loop {
            if let Some(v) = check().await? {
                if !first {
                    self.note("");
                }
                return Ok(v);
            }
            if first {
                self.note(&format!("waiting for {what}"));
                first = false;
            }
            if start.elapsed() >= timeout {
                anyhow::bail!("timed out after {}s waiting for {what}", timeout.as_secs());
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.sh.cancel.cancelled() => {
                    return Err(Interrupted(format!("stopped waiting for {what}")).into());
                }
            }
            delay = (delay * 3 / 2).min(max_poll_interval());
        }
    }
}
