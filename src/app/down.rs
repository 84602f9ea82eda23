//! `down` made complete: the teardown, the sweep for what the state does not record, and the
//! adoption pass that resolves write-ahead records and orphans by name and tag.

use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::engine::{self, RunReport};
use crate::step::{Mode, Shared, Step};

/// `down` made sure: resolve write-ahead records by name first (a run that died mid-create
/// left them), tear down, then sweep the stack's tag and names; if the sweep finds orphans,
/// adopt what the steps can find by name and tag and tear down once more. Returns the
/// teardown's report and what is still left.
pub(super) async fn down_completely(
    steps: &[Arc<dyn Step>],
    shared: &Arc<Shared>,
    parallelism: usize,
) -> Result<(RunReport, Vec<String>)> {
    let snapshot = shared.state.snapshot();
    let mut regions = vec![shared.aws.region().to_string()];
    for r in snapshot.resources.iter().map(|r| r.region.clone()) {
        if !r.is_empty() && !regions.contains(&r) {
            regions.push(r);
        }
    }
    if let Some(dr) = snapshot
        .outputs
        .get(crate::outputs::dr_network::OUT_DR_REGION)
        .and_then(|v| v.as_str())
        .filter(|dr| !regions.iter().any(|r| r == dr))
    {
        regions.push(dr.to_string());
    }
    let mut refreshed = false;
    if !shared.state.pending().is_empty() {
        refresh(steps, shared, parallelism).await?;
        refreshed = true;
    }
    loop {
        let names: Vec<&'static str> = steps.iter().map(|s| s.name()).collect();
        let report = crate::teardown::run(shared.clone(), &names).await?;
        if !report.ok() || !shared.state.snapshot().resources.is_empty() {
            return Ok((report, Vec::new()));
        }
        let left = crate::sweep::leftovers(&shared.aws, &regions, shared.names.suffix())
            .await
            .context("sweeping for resources of the stack the state does not record")?;
        if left.is_empty() || refreshed {
            return Ok((report, left));
        }
        shared.reporter.message(
            "down",
            &format!(
                "{} resource(s) of the stack are not in the state (a run stopped between a \
                 create and its record?): adopting them by name and tag, then deleting them",
                left.len()
            ),
        );
        refresh(steps, shared, parallelism).await?;
        refreshed = true;
    }
}

/// The adoption pass: every step looks its resources up by name and tag and records what it
/// finds, changing nothing. Write-ahead records a step did not resolve, when that step's
/// pass completed, name a create that never reached AWS: they are dropped.
async fn refresh(steps: &[Arc<dyn Step>], shared: &Arc<Shared>, parallelism: usize) -> Result<()> {
    shared.set_mode(Mode::Refresh);
    let report = engine::run(steps, shared.clone(), parallelism).await;
    shared.set_mode(Mode::Down);
    let report = report?;
    for p in shared.state.pending() {
        let done = report
            .steps
            .iter()
            .any(|s| s.step == p.step && s.status == crate::engine::StepStatus::Done);
        if done {
            shared.reporter.message(
                &p.step,
                &format!(
                    "{} {} was never created (not found by name): forgotten",
                    p.kind, p.name
                ),
            );
            shared
                .state
                .forget(&p.kind, &p.id, &p.region)
                .context("writing the state")?;
        }
    }
    Ok(())
}
