//! The executor: runs steps from the ready queue concurrently on tokio, at most `parallelism`
//! at a time, skipping the dependents of a failed step, and stopping new work on Ctrl-C.
//! `plan` ([`plan`]) first runs every step at once and keeps that pass when each step read
//! the final value of every output it read.
//! `down` does not run steps: [`crate::teardown`] deletes the recorded resources from the
//! state's edges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::aws::find_aws_error;
use crate::error::Interrupted;
use crate::graph::{Graph, GraphError, NodeState, ReadyQueue};
use crate::step::{Shared, Step, StepCtx};

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

/// How often a step runs before a transient failure fails it. Every run keeps what the
/// earlier ones built (it is recorded, and the lookups adopt it), so each gets further: a
/// step of many creates (the network: some 30, several of them single-attempt) needs a few
/// runs when AWS is flaky.
const STEP_ATTEMPTS: u32 = 8;

/// Whether a step's failure may pass if the step runs again: AWS throttled past the SDK's
/// retries, answered 5xx, the connection failed or timed out (the call may or may not have
/// been carried out: the next run's lookups tell), or a create met "already exists" (its
/// own earlier attempt, whose answer was lost). Refusals, usage errors and interrupts are
/// final.
pub fn worth_another_run(err: &anyhow::Error) -> bool {
    if err
        .chain()
        .any(|e| e.downcast_ref::<crate::error::Interrupted>().is_some())
    {
        return false;
    }
    let Some(e) = find_aws_error(err) else {
        return false;
    };
    use crate::aws::AwsErrorKind as K;
    match e.kind() {
        K::Throttled | K::AlreadyExists => true,
        _ => match e.code.as_deref() {
            // No service answer at all: dispatch failure, timeout, reset; but not missing
            // credentials, which no second run will find.
            None => !crate::report::chain(&*e.source).contains("credentials"),
            Some(code) => crate::aws::is_transient_code(code),
        },
    }
}

/// Runs `work` (a step, or one resource's delete) again while it fails transiently, at most
/// [`STEP_ATTEMPTS`] times with a growing pause. The work is idempotent: each run finds (and
/// adopts) whatever the failed one may have done.
pub async fn with_retries<F, Fut>(ctx: &StepCtx, what: &str, mut work: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(e) if attempt < STEP_ATTEMPTS && worth_another_run(&e) => {
                ctx.note(&format!("retrying after: {}", crate::report::render(&e)));
                tracing::info!(what, attempt, error = %format!("{e:#}"), "failed transiently; running it again");
                let pause = Duration::from_secs(2u64.pow(attempt).min(10));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = ctx.sh.cancel.cancelled() => return Err(e),
                }
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs every step in dependency order, at most `parallelism` at once.
pub async fn run(
    steps: &[Arc<dyn Step>],
    shared: Arc<Shared>,
    parallelism: usize,
) -> Result<RunReport, GraphError> {
    let graph = graph_of(steps)?;
    run_graph(steps, graph, shared, parallelism).await
}

/// `plan`: every step at once, then the same result as in dependency order, or a second pass
/// in dependency order.
///
/// A step reads what its upstream steps did only through their outputs ([`StepCtx::output`];
/// a step's records are its own), and in `plan` an upstream step publishes nothing new unless
/// it adopts resources the state does not record. So the first pass starts every step at
/// once, recording each output a step reads. If every read value (or absence) is the final
/// one, each step saw exactly what it would have seen after its upstream steps, and the
/// pass stands: the plan takes as long as its slowest step, not its longest chain of steps.
/// Steps downstream of a failed step are then reported skipped and their plan items dropped,
/// as in dependency order. Otherwise (an upstream step adopted something and published it
/// after a dependent read it) the pass is discarded, state and plan items included, and the
/// plan runs again in dependency order.
pub async fn plan(
    steps: &[Arc<dyn Step>],
    shared: Arc<Shared>,
    parallelism: usize,
) -> Result<RunReport, GraphError> {
    let graph = graph_of(steps)?;
    let before = shared.state.snapshot();
    shared.record_reads(true);
    let mut report = run_graph(
        steps,
        graph.without_edges(),
        shared.clone(),
        steps.len().max(parallelism),
    )
    .await?;
    let reads = shared.record_reads(false);
    let stale: Vec<&crate::step::OutputRead> = {
        let now = shared.state.snapshot();
        reads
            .iter()
            .filter(|r| now.output_steps.get(&r.key).map(String::as_str) != Some(r.step))
            .filter(|r| now.outputs.get(&r.key) != r.value.as_ref())
            .collect()
    };
    if report.interrupted() {
        return Ok(report);
    }
    if stale.is_empty() {
        skip_downstream_of_failures(steps, &graph, &shared, &mut report);
        return Ok(report);
    }
    if let Some(r) = stale.first() {
        tracing::info!(
            step = r.step,
            output = %r.key,
            "an output changed after a step read it; planning again in dependency order"
        );
    }
    shared.state.restore(before);
    shared.set_mode(crate::step::Mode::Plan);
    run_graph(steps, graph, shared, parallelism).await
}

/// After `plan`'s one pass: what depends on a failed step is skipped, as in dependency order.
fn skip_downstream_of_failures(
    steps: &[Arc<dyn Step>],
    graph: &Graph,
    shared: &Shared,
    report: &mut RunReport,
) {
    let mut skipped = Vec::new();
    for (i, r) in report.steps.iter().enumerate() {
        if r.status == StepStatus::Failed {
            for d in graph.downstream(i) {
                if !skipped.iter().any(|&(s, _)| s == d) {
                    skipped.push((d, steps[i].name()));
                }
            }
        }
    }
    let names: Vec<&str> = skipped.iter().map(|&(d, _)| steps[d].name()).collect();
    shared.forget_plan_items(&names);
    for (d, failed) in skipped {
        let why = format!("skipped: upstream failed ({failed})");
        shared.reporter.step_finished(
            steps[d].name(),
            StepStatus::Skipped.label(),
            Duration::ZERO,
            Some(&why),
        );
        report.steps[d] = StepResult {
            step: steps[d].name().to_string(),
            status: StepStatus::Skipped,
            elapsed_secs: 0.0,
            error: Some(why),
            root_cause: None,
        };
    }
}

async fn run_graph(
    steps: &[Arc<dyn Step>],
    graph: Graph,
    shared: Arc<Shared>,
    parallelism: usize,
) -> Result<RunReport, GraphError> {
    let mut queue = ReadyQueue::new(graph);
    // Steps announce here that their outputs are out (StepCtx::release).
    let (release_tx, mut release_rx) = tokio::sync::mpsc::unbounded_channel();
    shared.set_release_channel(Some(release_tx));
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
                let result = with_retries(&ctx, step.name(), || step.up(&ctx)).await;
                (result, start.elapsed())
            });
            task_step.insert(handle.id(), i);
        }
        let joined = tokio::select! {
            biased;
            Some(name) = release_rx.recv() => {
                if let Some(i) = steps.iter().position(|s| s.name() == name) {
                    queue.release(i);
                }
                continue;
            }
            joined = running.join_next_with_id() => joined,
        };
        let Some(joined) = joined else {
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
                    let (status, why) = if interrupted {
                        (
                            StepStatus::NotStarted,
                            "not started: interrupted".to_string(),
                        )
                    } else {
                        (
                            StepStatus::Skipped,
                            format!("skipped: upstream failed ({name})"),
                        )
                    };
                    reporter.step_finished(skipped, status.label(), Duration::ZERO, Some(&why));
                    results[s] = Some(StepResult {
                        step: skipped.to_string(),
                        status,
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
    shared.set_release_channel(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use anyhow::Result;
    use async_trait::async_trait;
    use tokio_util::sync::CancellationToken;

    use crate::aws::{Aws, AwsOptions};
    use crate::config::Config;
    use crate::naming::Names;
    use crate::report::Reporter;
    use crate::state::{ResourceRecord, StateStore};
    use crate::step::Mode;

    /// Shared counters of the fake steps of one test.
    #[derive(Default)]
    struct Probe {
        running: AtomicUsize,
        max_running: AtomicUsize,
        order: Mutex<Vec<String>>,
    }

    struct Fake {
        name: &'static str,
        deps: Vec<&'static str>,
        fail: bool,
        delay_ms: u64,
        probe: Arc<Probe>,
    }

    #[async_trait]
    impl Step for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn deps(&self) -> Vec<&'static str> {
            self.deps.clone()
        }
        fn estimate_secs(&self) -> u64 {
            1
        }
        async fn up(&self, ctx: &StepCtx) -> Result<()> {
            let now = self.probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            // A step named `early*` publishes its outputs as soon as it starts.
            if self.name.starts_with("early") {
                ctx.release();
            }
            self.probe.max_running.fetch_max(now, Ordering::SeqCst);
            self.probe.order.lock().unwrap().push(self.name.to_string());
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.delay_ms)) => {}
                _ = ctx.sh.cancel.cancelled() => {}
            }
            self.probe.running.fetch_sub(1, Ordering::SeqCst);
            ctx.check_cancelled()?;
            if self.fail {
                anyhow::bail!("{} broke", self.name);
            }
            Ok(())
        }
        async fn probe(&self, _: &StepCtx, _: &ResourceRecord) -> Result<Option<String>> {
            Ok(None)
        }
    }

    async fn shared(dir: &std::path::Path) -> Arc<Shared> {
        let aws = Aws::connect(&AwsOptions {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            parallelism: 4,
            ..AwsOptions::default()
        })
        .await;
        let store =
            StateStore::open_read_only(&dir.join("t.json"), "t", "us-east-1").expect("state");
        Arc::new(Shared::new(
            Mode::Up,
            Names::new("t"),
            Arc::new(Config::default()),
            Arc::new(aws),
            store,
            Reporter::silent(),
            CancellationToken::new(),
        ))
    }

    fn fake(
        probe: &Arc<Probe>,
        name: &'static str,
        deps: &[&'static str],
        fail: bool,
        delay_ms: u64,
    ) -> Arc<dyn Step> {
        Arc::new(Fake {
            name,
            deps: deps.to_vec(),
            fail,
            delay_ms,
            probe: probe.clone(),
        })
    }

    fn status(r: &RunReport, name: &str) -> StepStatus {
        r.steps.iter().find(|s| s.step == name).unwrap().status
    }

    /// A step for `plan`'s tests: reads output `input` (if given) at once, and after
    /// `delay_ms` fails, or reports what it read as a planned change and publishes `out`.
    struct Planner {
        name: &'static str,
        deps: Vec<&'static str>,
        input: Option<&'static str>,
        out: Option<&'static str>,
        fail: bool,
        delay_ms: u64,
        probe: Arc<Probe>,
    }

    #[async_trait]
    impl Step for Planner {
        fn name(&self) -> &'static str {
            self.name
        }
        fn deps(&self) -> Vec<&'static str> {
            self.deps.clone()
        }
        fn estimate_secs(&self) -> u64 {
            1
        }
        async fn up(&self, ctx: &StepCtx) -> Result<()> {
            let now = self.probe.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.probe.max_running.fetch_max(now, Ordering::SeqCst);
            self.probe.order.lock().unwrap().push(self.name.to_string());
            // Reads first, publishes last: a dependent started at once reads too early.
            let seen = self.input.map(|key| ctx.input_str(key)).transpose()?;
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
            self.probe.running.fetch_sub(1, Ordering::SeqCst);
            if self.fail {
                anyhow::bail!("{} broke", self.name);
            }
            if let Some(seen) = seen {
                ctx.change("test:thing", self.name, &seen, || async { Ok(()) })
                    .await?;
            }
            if let Some(key) = self.out {
                ctx.set_output(key, format!("{}-value", self.name))?;
            }
            Ok(())
        }
    }

    fn planner(
        probe: &Arc<Probe>,
        name: &'static str,
        deps: &[&'static str],
        input: Option<&'static str>,
        out: Option<&'static str>,
        fail: bool,
    ) -> Arc<dyn Step> {
        Arc::new(Planner {
            name,
            deps: deps.to_vec(),
            input,
            out,
            fail,
            delay_ms: 40,
            probe: probe.clone(),
        })
    }

    fn planned(sh: &Shared, step: &str) -> Vec<String> {
        sh.plan_items()
            .into_iter()
            .filter(|i| i.step == step)
            .map(|i| i.detail)
            .collect()
    }

    #[tokio::test]
    async fn plan_runs_a_chain_at_once_when_nothing_upstream_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            planner(&probe, "a", &[], None, None, false),
            planner(&probe, "b", &["a"], Some("a_id"), None, false),
            planner(&probe, "c", &["~b"], Some("b_id"), None, false),
        ];
        let sh = shared(dir.path()).await;
        sh.set_mode(Mode::Plan);
        let report = plan(&steps, sh.clone(), 1).await.unwrap();
        assert!(report.ok());
        // One pass, all three at once although each depends on the one before.
        assert_eq!(probe.order.lock().unwrap().len(), 3);
        assert_eq!(probe.max_running.load(Ordering::SeqCst), 3);
        assert_eq!(planned(&sh, "b"), vec!["(known after up: output a_id)"]);
    }

    #[tokio::test]
    async fn plan_runs_again_in_order_when_a_step_read_an_output_published_later() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        // `a` publishes (as a step adopting what the state does not record does); `b` read
        // it before it was there.
        let steps = vec![
            planner(&probe, "a", &[], None, Some("a_id"), false),
            planner(&probe, "b", &["a"], Some("a_id"), None, false),
        ];
        let sh = shared(dir.path()).await;
        sh.set_mode(Mode::Plan);
        let report = plan(&steps, sh.clone(), 4).await.unwrap();
        assert!(report.ok());
        assert_eq!(
            *probe.order.lock().unwrap(),
            vec!["a", "b", "a", "b"],
            "a first pass of both, then the dependency order"
        );
        // Only the second pass's items count: `b` saw `a`'s output.
        assert_eq!(planned(&sh, "b"), vec!["a-value"]);
        assert_eq!(sh.state.output("a_id"), Some(serde_json::json!("a-value")));
    }

    #[tokio::test]
    async fn plan_skips_what_depends_on_a_failed_step_without_a_second_pass() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            planner(&probe, "a", &[], None, None, true),
            planner(&probe, "b", &["a"], Some("a_id"), None, false),
            planner(&probe, "c", &["~b"], Some("b_id"), None, false),
            planner(&probe, "d", &[], Some("x"), None, false),
        ];
        let sh = shared(dir.path()).await;
        sh.set_mode(Mode::Plan);
        let report = plan(&steps, sh.clone(), 4).await.unwrap();
        assert_eq!(status(&report, "a"), StepStatus::Failed);
        assert_eq!(status(&report, "b"), StepStatus::Skipped);
        assert_eq!(status(&report, "c"), StepStatus::Skipped);
        assert_eq!(status(&report, "d"), StepStatus::Done);
        assert!(planned(&sh, "b").is_empty() && planned(&sh, "c").is_empty());
        assert_eq!(planned(&sh, "d").len(), 1);
        assert_eq!(probe.order.lock().unwrap().len(), 4, "one pass");
    }

    #[tokio::test]
    async fn at_most_parallelism_steps_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let steps: Vec<_> = names
            .iter()
            .map(|n| fake(&probe, n, &[], false, 30))
            .collect();
        let report = run(&steps, shared(dir.path()).await, 3).await.unwrap();
        assert!(report.ok());
        assert_eq!(probe.max_running.load(Ordering::SeqCst), 3);
        assert_eq!(probe.order.lock().unwrap().len(), 8);
    }

    #[tokio::test]
    async fn dependents_of_a_failure_are_skipped_and_independent_steps_finish() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            fake(&probe, "network", &[], true, 5),
            fake(&probe, "kms", &[], false, 20),
            fake(&probe, "database", &["network", "kms"], false, 5),
            fake(&probe, "alarms", &["database"], false, 5),
            fake(&probe, "sessions", &["kms"], false, 5),
        ];
        let report = run(&steps, shared(dir.path()).await, 10).await.unwrap();
        assert_eq!(status(&report, "network"), StepStatus::Failed);
        assert_eq!(status(&report, "kms"), StepStatus::Done);
        assert_eq!(status(&report, "sessions"), StepStatus::Done);
        assert_eq!(status(&report, "database"), StepStatus::Skipped);
        assert_eq!(status(&report, "alarms"), StepStatus::Skipped);
        let skipped = report.steps.iter().find(|s| s.step == "alarms").unwrap();
        assert!(skipped
            .error
            .as_deref()
            .unwrap()
            .contains("skipped: upstream failed"));
        let failed = report.steps.iter().find(|s| s.step == "network").unwrap();
        assert!(failed.error.as_deref().unwrap().contains("network broke"));
        let order = probe.order.lock().unwrap().clone();
        assert!(!order.contains(&"database".to_string()));
    }

    #[tokio::test]
    async fn an_outputs_only_dependent_runs_alongside_a_released_step() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            fake(&probe, "early", &[], false, 300),
            fake(&probe, "needs_outputs", &["~early"], false, 1),
            fake(&probe, "needs_end", &["early"], false, 1),
        ];
        let report = run(&steps, shared(dir.path()).await, 10).await.unwrap();
        assert!(report.ok());
        // `needs_outputs` ran while `early` was still running; `needs_end` after it.
        assert_eq!(probe.max_running.load(Ordering::SeqCst), 2);
        assert_eq!(
            *probe.order.lock().unwrap(),
            vec!["early", "needs_outputs", "needs_end"]
        );
    }

    #[tokio::test]
    async fn cancellation_stops_new_work_and_lets_running_steps_end() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            fake(&probe, "slow", &[], false, 10_000),
            fake(&probe, "after", &["slow"], false, 1),
        ];
        let sh = shared(dir.path()).await;
        let cancel = sh.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let started = Instant::now();
        let report = run(&steps, sh, 10).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(status(&report, "slow"), StepStatus::Interrupted);
        assert_eq!(status(&report, "after"), StepStatus::NotStarted);
        assert!(report.interrupted());
        assert_eq!(*probe.order.lock().unwrap(), vec!["slow"]);
    }

    #[tokio::test]
    async fn a_cycle_is_reported_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let probe = Arc::new(Probe::default());
        let steps = vec![
            fake(&probe, "a", &["b"], false, 1),
            fake(&probe, "b", &["a"], false, 1),
        ];
        let err = run(&steps, shared(dir.path()).await, 10).await.unwrap_err();
        assert!(matches!(err, GraphError::Cycle(_)));
        assert!(probe.order.lock().unwrap().is_empty());
    }

    #[test]
    fn the_real_steps_form_a_valid_graph() {
        graph_of(&crate::steps::all(&Config::default())).unwrap();
    }
}
