//! The end of a run: its summary (text or JSON), its exit status, and the outputs listing of
//! `up` and `outputs`.

use anyhow::Result;
use serde_json::json;

use crate::engine::RunReport;
use crate::error::{Interrupted, StepsFailed};
use crate::state::StateFile;
use crate::step::{Action, Mode, Shared};

pub(super) fn finish(report: &RunReport) -> Result<()> {
    if report.ok() {
        return Ok(());
    }
    if report.interrupted() && report.count(crate::engine::StepStatus::Failed) == 0 {
        return Err(Interrupted("state saved; run the command again to continue".into()).into());
    }
    Err(StepsFailed {
        failed: report.count(crate::engine::StepStatus::Failed),
        skipped: report.count(crate::engine::StepStatus::Skipped),
    }
    .into())
}

pub(super) fn summarize(
    shared: &Shared,
    report: &RunReport,
    mode: Mode,
    json_out: bool,
    remaining: usize,
) {
    shared.reporter.close();
    let items = shared.plan_items();
    let count = |a: Action| items.iter().filter(|i| i.action == a).count();
    let (create, change, unchanged) = (
        count(Action::Create),
        count(Action::Change),
        count(Action::Unchanged),
    );
    let calls = shared.aws.calls();
    if json_out {
        let mut v = json!({
            "event": "summary",
            "command": mode,
            "stack": shared.names.suffix(),
            "ok": report.ok(),
            "steps": report.steps,
            "aws_calls": { "total": calls.total, "mutating": calls.mutating, "mutating_ops": calls.mutating_ops },
        });
        match mode {
            Mode::Plan => {
                v["plan"] = json!(items);
                v["changes"] = json!({"create": create, "change": change, "unchanged": unchanged});
            }
            Mode::Up => {
                v["changes"] =
                    json!({"created": create, "changed": change, "unchanged": unchanged});
                v["outputs"] = json!(shared.state.snapshot().outputs);
            }
            _ => v["remaining_resources"] = json!(remaining),
        }
        println!("{v}");
        return;
    }
    if mode == Mode::Plan {
        for i in items.iter().filter(|i| i.action != Action::Unchanged) {
            let sign = if i.action == Action::Create { "+" } else { "~" };
            let detail = if i.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", i.detail)
            };
            println!("{sign} {:<10} {:<28} {}{detail}", i.step, i.kind, i.name);
        }
        println!(
            "Plan for `{}`: {create} to create, {change} to change, {unchanged} unchanged.",
            shared.names.suffix()
        );
    }
    for s in report
        .steps
        .iter()
        .filter(|s| s.status == crate::engine::StepStatus::Failed)
    {
        match &s.root_cause {
            Some(rc) => eprintln!(
                "error: step {} failed: {} on {}: {}: {}",
                s.step,
                rc.operation,
                rc.resource,
                rc.code.as_deref().unwrap_or("(no code)"),
                rc.message.as_deref().unwrap_or("(no message)")
            ),
            // Not an AWS error (a timeout, a refusal of the tool's own): its text is the
            // reason, or the summary would only say how many steps failed.
            None => eprintln!(
                "error: step {} failed: {}",
                s.step,
                s.error.as_deref().unwrap_or("(no reason recorded)")
            ),
        }
    }
    match mode {
        Mode::Up => {
            println!(
                "up `{}`: {create} created, {change} changed, {unchanged} unchanged ({} AWS calls, {} mutating).",
                shared.names.suffix(),
                calls.total,
                calls.mutating
            );
            if report.ok() {
                print_outputs(&shared.state.snapshot(), false, false);
            }
        }
        Mode::Down if remaining == 0 && report.ok() => println!(
            "down `{}`: every resource deleted; state file removed.",
            shared.names.suffix()
        ),
        Mode::Down => println!(
            "down `{}`: {remaining} resource(s) remain in the state; fix the error and run down again.",
            shared.names.suffix()
        ),
        _ => {}
    }
}

/// The outputs a platform engineer reaches for first, in this order, with their labels; the
/// rest of the state's outputs follow.
const HEADLINE_OUTPUTS: &[(&str, &str)] = {
    use crate::outputs::{
        alarms, alb, cdn, certificate, database, dr_backup, dr_network, dr_storage, queue, sessions,
    };
    &[
        (alb::OUT_DNS_NAME, "load balancer"),
        (cdn::OUT_DOMAIN_NAME, "CloudFront domain"),
        (database::OUT_WRITER_ENDPOINT, "database writer"),
        (database::OUT_READER_ENDPOINT, "database reader"),
        (database::OUT_SECRET_ARN, "database secret"),
        (sessions::OUT_TABLE_NAME, "session table"),
        (queue::OUT_QUEUE_URL, "transaction queue"),
        (alarms::OUT_TOPIC_ARN, "alert topic"),
        (alarms::OUT_DASHBOARD_URL, "dashboard"),
        (certificate::OUT_RECORDS, "certificate DNS records"),
        (cdn::OUT_ALB_ORIGIN_DNS_RECORD, "ALB origin DNS record"),
        (dr_network::OUT_DR_REGION, "DR region"),
        (dr_storage::OUT_DR_BUCKET, "DR assets replica"),
        (dr_backup::OUT_DR_VAULT_ARN, "DR backup vault"),
    ]
};

/// JSON: every output. Text: the headline outputs, then (with `all`) the rest, or a line
/// saying how many more there are.
pub(super) fn print_outputs(file: &StateFile, as_json: bool, all: bool) {
    if as_json {
        println!("{}", json!(file.outputs));
        return;
    }
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (key, label) in HEADLINE_OUTPUTS {
        if let Some(v) = file.outputs.get(*key) {
            println!("{label:<28} {}", shown(v));
        }
    }
    let rest: Vec<_> = file
        .outputs
        .iter()
        .filter(|(k, _)| !HEADLINE_OUTPUTS.iter().any(|(h, _)| h == k))
        .collect();
    if rest.is_empty() {
        return;
    }
    if !all {
        println!(
            "(and {} more IDs: `fintech-infra outputs --all`, or `--json` for scripts)",
            rest.len()
        );
        return;
    }
    println!();
    for (k, v) in rest {
        println!("{k:<28} {}", shown(v));
    }
}
