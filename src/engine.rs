//! The executor: runs steps from the ready queue concurrently on tokio, at most `parallelism`
//! at a time, skipping the dependents of a failed step, and stopping new work on Ctrl-C.
//! `down` runs the same graph reversed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::aws::find_aws_error;
use crate::error::Interrupted;
use crate::graph::{Graph, GraphError, NodeState, ReadyQueue};
use crate::step::{Shared, Step, StepCtx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `up` and `plan`: dependencies first.
    Forward,
    /// `down`: dependents first.
    Reverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Done,
    Failed,
    /// Not run: something it depends on failed.
    Skipped,
    /// Stopped by Ctrl-C while running.
    Interrupted,
    /// Never started because of Ctrl-C.
    NotStarted,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Interrupted => "interrupted",
            StepStatus::NotStarted => "not started",
        }
    }
}

/// The AWS error at the root of a failure.
#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    pub operation: String,
    pub resource: String,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: String,
    pub status: StepStatus,
    pub elapsed_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCause>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub steps: Vec<StepResult>,
}

impl RunReport {
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    pub fn ok(&self) -> bool {
        self.steps.iter().all(|s| s.status == StepStatus::Done)
    }

    pub fn interrupted(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.status, StepStatus::Interrupted | StepStatus::NotStarted))
    }
}

/// Builds the dependency graph of a set of steps.
pub fn graph_of(steps: &[Arc<dyn Step>]) -> Result<Graph, GraphError> {
    let items: Vec<(&str, Vec<&str>, u64)> = steps
        .iter()
        .map(|s| (s.name(), s.deps(), s.estimate_secs()))
        .collect();
    Graph::new(&items)
}

/// Runs every step in dependency order (or reverse order), at most `parallelism` at once.
pub async fn run(
    steps: &[Arc<dyn Step>],
    direction: Direction,
    shared: Arc<Shared>,
    parallelism: usize,
) -> Result<RunReport, GraphError> {
    let graph = graph_of(steps)?;
    let graph = match direction {
        Direction::Forward => graph,
        Direction::Reverse => graph.reversed(),
    };
    let mut queue = ReadyQueue::new(graph);
    let mut results: Vec<Option<StepResult>> = vec![None; steps.len()];
    let mut running: JoinSet<(anyhow::Result<()>, Duration)> = JoinSet::new();
    let mut task_step: HashMap<tokio::task::Id, usize> = HashMap::new();
    let reporter = &shared.reporter;

    loop {
        while running.len() < parallelism.max(1) && !shared.cancel.is_cancelled() {
            let Some(i) = queue.pop() else { break };
            let step = steps[i].clone();
            let ctx = StepCtx::new(step.name(), shared.clone());
            reporter.step_started(step.name());
            let handle = running.spawn(async move {
                let start = Instant::now();
                let result = match direction {
                    Direction::Forward => step.up(&ctx).await,
                    Direction::Reverse => step.down(&ctx).await,
                };
                (result, start.elapsed())
            });
            task_step.insert(handle.id(), i);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, outcome, elapsed) = match joined {
            Ok((id, (outcome, elapsed))) => (task_step[&id], outcome, elapsed),
            Err(join_err) => {
                let i = task_step[&join_err.id()];
                let msg = format!("step panicked: {join_err}");
                (i, Err(anyhow::anyhow!(msg)), Duration::ZERO)
            }
        };
        let name = steps[i].name();
        match outcome {
            Ok(()) => {
                queue.finish(i, true);
                reporter.step_finished(name, "done", elapsed, None);
                results[i] = Some(StepResult {
                    step: name.to_string(),
                    status: StepStatus::Done,
                    elapsed_secs: elapsed.as_secs_f64(),
                    error: None,
                    root_cause: None,
                });
            }
            Err(err) => {
                let interrupted = err
                    .chain()
                    .any(|e| e.downcast_ref::<Interrupted>().is_some());
                let status = if interrupted {
                    StepStatus::Interrupted
                } else {
                    StepStatus::Failed
                };
                let text = crate::report::render(&err);
                let root_cause = find_aws_error(&err).map(|a| RootCause {
                    operation: a.operation.to_string(),
                    resource: a.resource.clone(),
                    code: a.code.clone(),
                    // Without a service error (e.g. a connection failure) the SDK error's
                    // own chain is the message.
                    message: a
                        .message
                        .clone()
                        .or_else(|| Some(crate::report::chain(&*a.source))),
                });
                reporter.step_finished(name, status.label(), elapsed, Some(&text));
                for s in queue.finish(i, false) {
                    let skipped = steps[s].name();
                    let why = format!("skipped: upstream failed ({name})");
                    reporter.step_finished(skipped, "skipped", Duration::ZERO, Some(&why));
                    results[s] = Some(StepResult {
                        step: skipped.to_string(),
                        status: StepStatus::Skipped,
                        elapsed_secs: 0.0,
                        error: Some(why),
                        root_cause: None,
                    });
                }
                results[i] = Some(StepResult {
                    step: name.to_string(),
                    status,
                    elapsed_secs: elapsed.as_secs_f64(),
                    error: Some(text),
                    root_cause,
                });
            }
        }
    }
    // Anything still waiting never started because the run was interrupted.
    for i in queue.waiting() {
        debug_assert_eq!(queue.state(i), NodeState::Waiting);
        results[i] = Some(StepResult {
            step: steps[i].name().to_string(),
            status: StepStatus::NotStarted,
            elapsed_secs: 0.0,
            error: Some("not started: interrupted".into()),
            root_cause: None,
        });
    }
    Ok(RunReport {
        steps: results
            .into_iter()
            .map(|r| r.expect("every step has a result"))
            .collect(),
    })
}
