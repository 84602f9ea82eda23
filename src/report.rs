//! Progress output: one line per step with its status and elapsed time. A spinner per step on
//! a terminal (indicatif), plain lines when stderr is not a terminal, JSON lines on stdout with
//! `--output json`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::step::PlanItem;

/// Renders an anyhow error and its causes on one line, stopping at an AWS error that has a
/// service error code: its code and message say it all, and the SDK's own rendering of the
/// same error below it only repeats them.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        if cause
            .downcast_ref::<crate::aws::AwsError>()
            .is_some_and(|a| a.code.is_some())
        {
            break;
        }
    }
    parts.join(": ")
}

/// Renders an error and its causes on one line: `outer: inner: root`.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let t = e.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = e.source();
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

enum Style {
    Tty {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
    Plain,
    Json,
}

/// Where progress goes.
pub struct Reporter {
    style: Mutex<Style>,
    quiet: bool,
    /// Print each created/changed resource as it happens (not in plan mode, which prints a
    /// table at the end).
    live_resources: bool,
}

impl Reporter {
    pub fn new(format: OutputFormat, quiet: bool, live_resources: bool) -> Reporter {
        let style = match format {
            OutputFormat::Json => Style::Json,
            OutputFormat::Text if std::io::stderr().is_terminal() && !quiet => Style::Tty {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            },
            OutputFormat::Text => Style::Plain,
        };
        Reporter {
            style: Mutex::new(style),
            quiet,
            live_resources,
        }
    }

    /// A reporter that prints nothing (library use, tests).
    pub fn silent() -> Reporter {
        Reporter {
            style: Mutex::new(Style::Plain),
            quiet: true,
            live_resources: false,
        }
    }

    /// Whether `-q` asked for errors and results only.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    pub fn is_json(&self) -> bool {
        matches!(*self.lock(), Style::Json)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Style> {
        self.style.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn json_line(v: serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    }

    /// A free-form message (a warning or a notice the user must see, e.g. the KMS key's
    /// deletion date). Shown even with `-q`.
    pub fn message(&self, step: &str, msg: &str) {
        match &*self.lock() {
            Style::Json => {
                Self::json_line(json!({"event": "message", "step": step, "message": msg}))
            }
            Style::Tty { multi, .. } => {
                let _ = multi.println(format!("{step}: {msg}"));
            }
            Style::Plain => eprintln!("{step}: {msg}"),
        }
    }

    pub fn step_started(&self, step: &str) {
        match &mut *self.lock() {
            Style::Json => {
                Self::json_line(json!({"event": "step", "step": step, "status": "running"}))
            }
            Style::Tty { multi, bars } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<12} running {elapsed:>4} {msg}",
                    )
                    .expect("valid template"),
                );
                bar.set_prefix(step.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(step.to_string(), bar);
            }
            Style::Plain if !self.quiet => eprintln!("{step:<12} running"),
            Style::Plain => {}
        }
    }

    pub fn step_note(&self, step: &str, msg: &str) {
        match &*self.lock() {
            Style::Tty { bars, .. } => {
                if let Some(b) = bars.get(step) {
                    b.set_message(msg.to_string());
                }
            }
            Style::Plain if !self.quiet && !msg.is_empty() => eprintln!("{step:<12} {msg}"),
            Style::Json if !msg.is_empty() => {
                Self::json_line(json!({"event": "note", "step": step, "message": msg}))
            }
            _ => {}
        }
    }

    /// A step ended: `status` is done, failed, skipped or interrupted.
    pub fn step_finished(&self, step: &str, status: &str, elapsed: Duration, detail: Option<&str>) {
        let secs = elapsed.as_secs_f64();
        let line = match detail {
            Some(d) => format!("{step:<12} {status} in {secs:.1}s: {d}"),
            None => format!("{step:<12} {status} in {secs:.1}s"),
        };
        match &mut *self.lock() {
            Style::Json => Self::json_line(json!({
                "event": "step", "step": step, "status": status,
                "elapsed_secs": (secs * 1000.0).round() / 1000.0, "detail": detail,
            })),
            Style::Tty { bars, multi } => {
                if let Some(b) = bars.remove(step) {
                    b.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
                    b.finish_with_message(line);
                } else {
                    let _ = multi.println(line);
                }
            }
            Style::Plain if !self.quiet || status != "done" => eprintln!("{line}"),
            Style::Plain => {}
        }
    }

    /// A resource was created or changed (or, in plan mode, would be).
    pub fn resource(&self, item: &PlanItem) {
        if !self.live_resources {
            return;
        }
        let verb = match item.action {
            crate::step::Action::Create => "created",
            crate::step::Action::Change => "changed",
            crate::step::Action::Unchanged => return,
        };
        let mut line = format!("{:<12} {verb} {} {}", item.step, item.kind, item.name);
        if !item.detail.is_empty() {
            line.push_str(&format!(" ({})", item.detail));
        }
        match &*self.lock() {
            Style::Json => Self::json_line(json!({
                "event": "resource", "step": item.step, "action": verb,
                "kind": item.kind, "name": item.name, "detail": item.detail,
            })),
            Style::Tty { multi, .. } => {
                let _ = multi.println(line);
            }
            Style::Plain if !self.quiet => eprintln!("{line}"),
            Style::Plain => {}
        }
    }

    /// Ends live progress before results are printed: indicatif leaves the cursor at the end
    /// of the last step line.
    pub fn close(&self) {
        if let Style::Tty { bars, .. } = &mut *self.lock() {
            for (_, bar) in bars.drain() {
                bar.finish();
            }
            eprintln!();
        }
    }

    /// A resource was deleted by `down`.
    pub fn deleted(&self, step: &str, kind: &str, id: &str) {
        let line = format!("{step:<12} deleted {kind} {id}");
        match &*self.lock() {
            Style::Json => Self::json_line(json!({
                "event": "resource", "step": step, "action": "deleted", "kind": kind, "id": id,
            })),
            Style::Tty { multi, .. } => {
                let _ = multi.println(line);
            }
            Style::Plain if !self.quiet => eprintln!("{line}"),
            Style::Plain => {}
        }
    }
}
