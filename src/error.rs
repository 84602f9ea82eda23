//! Error kinds the CLI branches on to choose its exit code.

use std::fmt;

/// Bad input from the user (flags, config, env suffix, state file that cannot be used):
/// reported before any AWS call, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl UsageError {
    pub fn new(msg: impl Into<String>) -> UsageError {
        UsageError(msg.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Problems with the state file or its lock.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "state {path} is locked by another run: pid {pid} on host {host}, started {started} \
         (wait for it to finish; if that process is gone the lock is released automatically)"
    )]
    Locked {
        path: String,
        pid: u32,
        host: String,
        started: String,
    },
    #[error(
        "state file {path} has schema version {found}, newer than this fintech-infra \
         understands ({supported}); upgrade fintech-infra. The file was left untouched"
    )]
    NewerSchema {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "state file {path} has schema version {found}, which no fintech-infra ever wrote \
         (known: 1 to {supported}); the file was left untouched: fix or move it"
    )]
    UnknownSchema {
        path: String,
        found: u64,
        supported: u32,
    },
    #[error("state file {path} cannot be read as fintech-infra state: {reason}. The file was left untouched; fix or move it")]
    Unreadable { path: String, reason: String },
    #[error("state file {path} belongs to env suffix `{found}`, not `{expected}`")]
    WrongStack {
        path: String,
        found: String,
        expected: String,
    },
    #[error("state I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    /// Whether the user can fix this without anything having gone wrong in AWS.
    pub fn is_usage(&self) -> bool {
        !matches!(self, StateError::Io { .. })
    }
}

/// One or more steps failed; the report has already named them.
#[derive(Debug, thiserror::Error)]
#[error("{failed} step(s) failed, {skipped} skipped")]
pub struct StepsFailed {
    pub failed: usize,
    pub skipped: usize,
}

/// `verify` found paths of the architecture that do not work; the report named them.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} verify check(s) failed")]
pub struct VerifyFailed {
    pub failed: usize,
    pub total: usize,
}

/// `down` finished but resources of the stack remain that the state does not record.
#[derive(Debug, thiserror::Error)]
#[error("{count} resource(s) of the stack remain; the state file was kept")]
pub struct Leftovers {
    pub count: usize,
}

/// The run was interrupted (Ctrl-C) before it finished.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Exit code for an error: 2 for usage/input errors, 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if let Some(s) = cause.downcast_ref::<StateError>() {
            if s.is_usage() {
                return 2;
            }
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return 130;
        }
    }
    1
}
