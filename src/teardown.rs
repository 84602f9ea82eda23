//! `down`'s scheduler: deletes the recorded resources themselves, not steps, in reverse
//! dependency order from the edges the state keeps ([`crate::state::ResourceRecord::deps`])
//! plus the delete-only rules of [`crate::resources::deps::DELETE_RULES`].
//!
//! Each resource is a node that starts as soon as everything built on it is gone, so
//! independent chains run side by side: Aurora's instances start deleting at once instead
//! of after the services have drained, and the three NAT gateways are waited for together.
//! Concurrency is bounded by the AWS connection's request limit (`--parallelism`), not
//! here: a node mostly waits (an Aurora instance for minutes) and must not hold a slot.
//! A failed delete leaves what it is built on in place (AWS would refuse those deletes)
//! and fails its step; everything else goes on. The config and the steps' code play no
//! part: a state file alone can be torn down.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::task::JoinSet;

use crate::engine::{with_retries, RootCause, RunReport, StepResult, StepStatus};
use crate::error::Interrupted;
use crate::resources::deps::{self, DeleteRule};
use crate::state::{ResourceRecord, ResourceRef};
use crate::step::{Shared, StepCtx};

/// One unit of teardown work.
#[derive(Debug, Clone)]
enum Work {
    /// Delete this record through its kind's provider.
    Delete(ResourceRecord),
    /// A delete rule's hook (or barrier) in one region, given that region's records.
    Rule { rule: usize, region: String },
}

/// The teardown graph: `waits[i]` are the nodes that must be finished before node `i`.
struct Plan {
    work: Vec<Work>,
    waits: Vec<Vec<usize>>,
}

/// The edges of `records`: each record's saved deps (derived now for records saved before
/// edges were kept), and the delete rules, each as a barrier node per region.
fn plan(records: &[ResourceRecord], rules: &[DeleteRule]) -> Plan {
    let mut work: Vec<Work> = records.iter().cloned().map(Work::Delete).collect();
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); records.len()];
    let index: HashMap<ResourceRef, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.address(), i))
        .collect();
    for (i, rec) in records.iter().enumerate() {
        // The saved edges, and the table's edges over what is recorded now: a resource
        // recorded after something built on it (a stale group adopted after the rules kept
        // for it) is still ordered. Both follow the acyclic kind table.
        let mut built_on = rec.deps.clone().unwrap_or_default();
        built_on.extend(deps::resolve(rec, records));
        for d in built_on {
            // A resource already gone (or never recorded) holds nothing up.
            if let Some(&j) = index.get(&d) {
                if j != i {
                    // `j` is built on by `i`: `j` waits for `i`.
                    waits[j].push(i);
                }
            }
        }
    }
    let mut regions: Vec<String> = records.iter().map(|r| r.region.clone()).collect();
    regions.sort();
    regions.dedup();
    for (r, rule) in rules.iter().enumerate() {
        for region in &regions {
            let of = |kinds: &[&str]| -> Vec<usize> {
                records
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| &x.region == region && kinds.contains(&x.kind.as_str()))
                    .map(|(i, _)| i)
                    .collect()
            };
            let then = of(rule.then);
            if then.is_empty() {
                continue;
            }
            let barrier = work.len();
            work.push(Work::Rule {
                rule: r,
                region: region.clone(),
            });
            waits.push(of(rule.first));
            for t in then {
                waits[t].push(barrier);
            }
        }
    }
    for w in &mut waits {
        w.sort_unstable();
        w.dedup();
    }
    Plan { work, waits }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

/// What happened to the nodes of one step.
#[derive(Default)]
struct StepTally {
    started: Option<Instant>,
    finished: Option<Instant>,
    open: usize,
    failed: Option<(String, Option<RootCause>, bool)>,
    skipped: Option<String>,
}

/// Tears down every non-pending record in the state. `step_names` are the known steps, in
/// the order the report lists them (steps without records are reported done).
pub async fn run(shared: Arc<Shared>, step_names: &[&'static str]) -> Result<RunReport> {
    let records: Vec<ResourceRecord> = shared
        .state
        .resources(None, None)
        .into_iter()
        .filter(|r| !r.pending)
        .collect();
    let Plan { work, waits } = plan(&records, deps::DELETE_RULES);
    let n = work.len();
    let mut state = vec![NodeState::Waiting; n];
    let mut blocked_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, w) in waits.iter().enumerate() {
        for &j in w {
            blocked_by[j].push(i);
        }
    }
    let mut remaining: Vec<usize> = waits.iter().map(Vec::len).collect();
    // A rule node belongs to the step of the first record it holds back.
    let step_of: Vec<String> = work
        .iter()
        .enumerate()
        .map(|(i, w)| match w {
            Work::Delete(r) => r.step.clone(),
            Work::Rule { .. } => blocked_by[i]
                .iter()
                .find_map(|&j| match &work[j] {
                    Work::Delete(r) => Some(r.step.clone()),
                    Work::Rule { .. } => None,
                })
                .unwrap_or_else(|| "network".to_string()),
        })
        .collect();
    let mut tallies: BTreeMap<String, StepTally> = BTreeMap::new();
    for s in &step_of {
        tallies.entry(s.clone()).or_default().open += 1;
    }
    let static_name = |s: &str| -> &'static str {
        step_names
            .iter()
            .copied()
            .find(|n| *n == s)
            // A step this build no longer has (an older state): its records still go.
            .unwrap_or_else(|| Box::leak(s.to_string().into_boxed_str()))
    };

    let mut running: JoinSet<(usize, Result<()>)> = JoinSet::new();
    let mut done = 0usize;
    loop {
        // Start everything whose dependents are all gone.
        if !shared.cancel.is_cancelled() {
            for i in 0..n {
                if state[i] != NodeState::Waiting || remaining[i] > 0 {
                    continue;
                }
                state[i] = NodeState::Running;
                let step = static_name(&step_of[i]);
                let t = tallies.get_mut(&step_of[i]).expect("tally");
                if t.started.is_none() {
                    t.started = Some(Instant::now());
                    shared.reporter.step_started(step);
                }
                let sh = shared.clone();
                let w = work[i].clone();
                let records = records.clone();
                running.spawn(async move { (i, execute(sh, step, w, &records).await) });
            }
        }
        let Some(joined) = running.join_next().await else {
            if done < n && !shared.cancel.is_cancelled() {
                // Only a cycle leaves nodes waiting with nothing running: the table is
                // acyclic and same-kind edges point backwards, so this is a corrupt state.
                // Break it at the latest-recorded node rather than stop.
                if let Some(i) = (0..n).rev().find(|&i| state[i] == NodeState::Waiting) {
                    tracing::warn!(node = ?work[i], "cycle in the resource graph; breaking it");
                    remaining[i] = 0;
                    continue;
                }
            }
            break;
        };
        let (i, outcome) = joined.unwrap_or_else(|e| (usize::MAX, Err(anyhow::anyhow!("{e}"))));
        if i == usize::MAX {
            anyhow::bail!("a teardown task panicked: {:?}", outcome.err());
        }
        done += 1;
        let t = tallies.get_mut(&step_of[i]).expect("tally");
        t.open -= 1;
        t.finished = Some(Instant::now());
        match outcome {
            Ok(()) => {
                state[i] = NodeState::Done;
                for &j in &blocked_by[i] {
                    remaining[j] -= 1;
                }
            }
            Err(err) => {
                state[i] = NodeState::Failed;
                let interrupted = err
                    .chain()
                    .any(|e| e.downcast_ref::<Interrupted>().is_some());
                let root = crate::aws::find_aws_error(&err).map(|a| RootCause {
                    operation: a.operation.to_string(),
                    resource: a.resource.clone(),
                    code: a.code.clone(),
                    message: a
                        .message
                        .clone()
                        .or_else(|| Some(crate::report::chain(&*a.source))),
                });
                if t.failed.is_none() {
                    t.failed = Some((crate::report::render(&err), root, interrupted));
                }
                // What it is built on stays: AWS would refuse to delete it.
                let mut stack = blocked_by[i].clone();
                while let Some(j) = stack.pop() {
                    if state[j] != NodeState::Waiting {
                        continue;
                    }
                    state[j] = NodeState::Skipped;
                    done += 1;
                    let what = describe(&work[i]);
                    let tj = tallies.get_mut(&step_of[j]).expect("tally");
                    tj.open -= 1;
                    tj.skipped
                        .get_or_insert_with(|| format!("skipped: {what} could not be deleted"));
                    stack.extend(blocked_by[j].iter().copied());
                }
            }
        }
        let t = &tallies[&step_of[i]];
        if t.open == 0 {
            finish_step(&shared, static_name(&step_of[i]), t);
        }
    }
    // Steps left with open nodes: never started (Ctrl-C), or skipped.
    for (s, t) in &tallies {
        if t.open > 0 && t.started.is_some() {
            finish_step(&shared, static_name(s), t);
        }
    }
    shared
        .state
        .drop_orphaned_outputs()
        .context("dropping the outputs of deleted steps from the state")?;

    let mut names: Vec<String> = step_names.iter().map(|s| s.to_string()).collect();
    for s in tallies.keys() {
        if !names.contains(s) {
            names.push(s.clone());
        }
    }
    let steps = names
        .into_iter()
        .map(|name| match tallies.get(&name) {
            None => StepResult {
                step: name,
                status: StepStatus::Done,
                elapsed_secs: 0.0,
                error: None,
                root_cause: None,
            },
            Some(t) => result_of(name, t),
        })
        .collect();
    Ok(RunReport { steps })
}

fn describe(w: &Work) -> String {
    match w {
        Work::Delete(r) => format!("{} {}", r.kind, r.id),
        Work::Rule { rule, region } => {
            format!(
                "the delete rule \"{}\" in {region}",
                deps::DELETE_RULES[*rule].why
            )
        }
    }
}

fn status_of(t: &StepTally) -> StepStatus {
    match &t.failed {
        Some((_, _, true)) => StepStatus::Interrupted,
        Some(_) => StepStatus::Failed,
        None if t.skipped.is_some() => StepStatus::Skipped,
        None if t.open > 0 => StepStatus::NotStarted,
        None => StepStatus::Done,
    }
}

fn elapsed(t: &StepTally) -> Duration {
    match (t.started, t.finished) {
        (Some(s), Some(f)) => f.saturating_duration_since(s),
        _ => Duration::ZERO,
    }
}

fn finish_step(shared: &Shared, step: &str, t: &StepTally) {
    let status = status_of(t);
    let detail = match (&t.failed, &t.skipped) {
        (Some((text, _, _)), _) => Some(text.clone()),
        (None, Some(why)) => Some(why.clone()),
        (None, None) if t.open > 0 => Some("not started: interrupted".to_string()),
        _ => None,
    };
    shared
        .reporter
        .step_finished(step, status.label(), elapsed(t), detail.as_deref());
}

fn result_of(name: String, t: &StepTally) -> StepResult {
    let status = status_of(t);
    let (error, root_cause) = match (&t.failed, &t.skipped) {
        (Some((text, root, _)), _) => (Some(text.clone()), root.clone()),
        (None, Some(why)) => (Some(why.clone()), None),
        (None, None) if t.open > 0 => (Some("not started: interrupted".to_string()), None),
        _ => (None, None),
    };
    StepResult {
        step: name,
        status,
        elapsed_secs: elapsed(t).as_secs_f64(),
        error,
        root_cause,
    }
}

/// Runs one node: a record's delete through its provider (retried while AWS fails
/// transiently), forgotten once gone; or a rule's hook.
async fn execute(
    shared: Arc<Shared>,
    step: &'static str,
    work: Work,
    records: &[ResourceRecord],
) -> Result<()> {
    let base = StepCtx::new(step, shared.clone());
    match work {
        Work::Delete(rec) => {
            let ctx = if rec.region.is_empty() {
                base
            } else {
                base.in_region(&rec.region)
            };
            ctx.check_cancelled()?;
            let provider = crate::resources::provider(&rec.kind).with_context(|| {
                format!("no provider is registered for {} ({})", rec.kind, rec.id)
            })?;
            with_retries(&ctx, &format!("{} {}", rec.kind, rec.id), || {
                provider.delete(&ctx, &rec)
            })
            .await
            .with_context(|| format!("deleting {} {}", rec.kind, rec.id))?;
            shared
                .state
                .forget(&rec.kind, &rec.id, &rec.region)
                .with_context(|| format!("removing {} {} from the state", rec.kind, rec.id))?;
            shared.reporter.deleted(step, &rec.kind, &rec.id);
            Ok(())
        }
        Work::Rule { rule, region } => {
            let Some(hook) = deps::DELETE_RULES[rule].hook else {
                return Ok(());
            };
            let ctx = base.in_region(&region);
            let here: Vec<ResourceRecord> = records
                .iter()
                .filter(|r| r.region == region)
                .cloned()
                .collect();
            with_retries(&ctx, "delete rule", || hook(&ctx, &here)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, id: &str, deps: &[(&str, &str)]) -> ResourceRecord {
        ResourceRecord {
            step: "s".into(),
            kind: kind.into(),
            id: id.into(),
            arn: None,
            name: id.into(),
            region: "us-east-1".into(),
            attrs: Default::default(),
            created_at: chrono::Utc::now(),
            pending: false,
            deps: Some(
                deps.iter()
                    .map(|(k, i)| ResourceRef {
                        kind: k.to_string(),
                        region: "us-east-1".into(),
                        id: i.to_string(),
                    })
                    .collect(),
            ),
        }
    }

    /// A valid deletion order of the plan (Kahn), as record IDs and rule markers.
    fn order(p: &Plan) -> Vec<String> {
        let mut remaining: Vec<usize> = p.waits.iter().map(Vec::len).collect();
        let mut done = vec![false; p.work.len()];
        let mut out = Vec::new();
        while let Some(i) = (0..p.work.len()).find(|&i| !done[i] && remaining[i] == 0) {
            done[i] = true;
            out.push(match &p.work[i] {
                Work::Delete(r) => r.id.clone(),
                Work::Rule { rule, .. } => format!("rule{rule}"),
            });
            for (j, w) in p.waits.iter().enumerate() {
                if w.contains(&i) {
                    remaining[j] -= 1;
                }
            }
        }
        assert_eq!(out.len(), p.work.len(), "cycle");
        out
    }

    fn pos(o: &[String], id: &str) -> usize {
        o.iter().position(|x| x == id).unwrap()
    }

    #[test]
    fn a_resource_goes_before_what_it_is_built_on() {
        let recs = vec![
            rec("ec2:vpc", "vpc-1", &[]),
            rec("ec2:subnet", "subnet-1", &[("ec2:vpc", "vpc-1")]),
            rec("ec2:nat-gateway", "nat-1", &[("ec2:subnet", "subnet-1")]),
            rec("ec2:internet-gateway", "igw-1", &[("ec2:vpc", "vpc-1")]),
        ];
        let o = order(&plan(&recs, deps::DELETE_RULES));
        assert!(pos(&o, "nat-1") < pos(&o, "subnet-1"));
        assert!(pos(&o, "subnet-1") < pos(&o, "vpc-1"));
        // The delete-only rule: the IGW after the NAT gateway, though neither is built on
        // the other.
        assert!(pos(&o, "nat-1") < pos(&o, "rule0"));
        assert!(pos(&o, "rule0") < pos(&o, "igw-1"));
    }

    #[test]
    fn records_without_saved_edges_get_them_from_the_table() {
        let mut vpc = rec("ec2:vpc", "vpc-1", &[]);
        vpc.deps = None;
        let mut subnet = rec("ec2:subnet", "subnet-1", &[]);
        subnet.deps = None;
        subnet.attrs.insert("vpc_id".into(), "vpc-1".into());
        let o = order(&plan(&[vpc, subnet], &[]));
        assert_eq!(o, vec!["subnet-1", "vpc-1"]);
    }

    #[test]
    fn edges_to_resources_already_gone_hold_nothing_up() {
        let recs = vec![rec("ec2:subnet", "subnet-1", &[("ec2:vpc", "vpc-gone")])];
        assert_eq!(order(&plan(&recs, &[])), vec!["subnet-1"]);
    }
}
