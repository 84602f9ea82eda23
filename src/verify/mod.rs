//! `fintech-infra verify`: reads the live stack back and proves, path by path, that its
//! pieces can talk to each other the way AWS decides it: identity, resource and key policies
//! evaluated together ([`crate::policy`]), security groups on both ends and routes
//! ([`crate::reach`]). Read-only (Describe, Get and List calls only, a few dozen per run).
//!
//! Every check is a [`Finding`]: PASS, or FAIL with the reason (which policy, key policy,
//! security-group rule or route is missing) and the fix. `up` runs the same checks at its end
//! and reports a failing path as a warning.

mod eval;
mod live;
mod paths;
mod posture;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Value};

use crate::aws::Aws;
use crate::config::Config;
use crate::state::{ResourceRecord, StateFile};

pub use live::Live;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `paths` (data paths of the architecture) or `posture` (security controls).
    pub section: &'static str,
    /// What is checked, e.g. `producer web → transaction queue`.
    pub path: String,
    pub ok: bool,
    /// On PASS what allows it; on FAIL what is missing.
    pub reason: String,
    /// On FAIL: what to do (usually `fintech-infra up`, which repairs what it owns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Everything one run of the checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }

    pub fn failed(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.ok)
    }

    /// The JSON form of `verify --output json`.
    pub fn to_json(&self, stack: &str) -> Value {
        let failed = self.failed().count();
        json!({
            "stack": stack,
            "ok": self.ok(),
            "passed": self.findings.len() - failed,
            "failed": failed,
            "checks": self.findings.iter().map(|f| json!({
                "section": f.section,
                "path": f.path,
                "result": if f.ok { "PASS" } else { "FAIL" },
                "reason": f.reason,
                "fix": f.fix,
            })).collect::<Vec<_>>(),
        })
    }

    /// The text form: one line per check, the fix under each failure, then a summary.
    pub fn to_text(&self, stack: &str) -> String {
        let mut out = String::new();
        let width = self
            .findings
            .iter()
            .map(|f| f.path.chars().count())
            .max()
            .unwrap_or(0);
        let mut section = "";
        for f in &self.findings {
            if f.section != section {
                section = f.section;
                out.push_str(&format!("{section}:\n"));
            }
            let pad = width - f.path.chars().count();
            out.push_str(&format!(
                "{} {}{}  {}\n",
                if f.ok { "PASS" } else { "FAIL" },
                f.path,
                " ".repeat(pad),
                f.reason
            ));
            if let Some(fix) = f.fix.as_ref().filter(|_| !f.ok) {
                out.push_str(&format!("     fix: {fix}\n"));
            }
        }
        let failed = self.failed().count();
        out.push_str(&format!(
            "verify `{stack}`: {} checks, {} passed, {failed} failed.\n",
            self.findings.len(),
            self.findings.len() - failed
        ));
        out
    }
}

/// What the checks read from the state: the outputs the steps published and the records.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub suffix: String,
    pub outputs: BTreeMap<String, Value>,
    pub resources: Vec<ResourceRecord>,
}

impl Stack {
    pub fn from_state(file: &StateFile) -> Stack {
        Stack {
            suffix: file.suffix.clone(),
            outputs: file.outputs.clone(),
            resources: file.resources.clone(),
        }
    }

    pub fn out(&self, key: &str) -> Option<&str> {
        self.outputs.get(key).and_then(Value::as_str)
    }

    /// A string map output (service name -> value).
    pub fn out_map(&self, key: &str) -> BTreeMap<String, String> {
        self.outputs
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn out_list(&self, key: &str) -> Vec<String> {
        self.outputs
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The IDs of the recorded resources of one kind.
    pub fn ids_of(&self, kind: &str) -> Vec<String> {
        self.resources
            .iter()
            .filter(|r| r.kind == kind && !r.pending)
            .map(|r| r.id.clone())
            .collect()
    }
}

/// Runs every check against the live stack.
pub async fn run(aws: Arc<Aws>, stack: &Stack, cfg: &Config) -> Result<Report> {
    let account = aws.account_id().await?;
    let live = Live::new(aws, account);
    let mut findings = paths::all(&live, stack, cfg).await;
    findings.extend(posture::all(&live, stack, cfg).await);
    Ok(Report { findings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(path: &str, ok: bool) -> Finding {
        Finding {
            section: "paths",
            path: path.into(),
            ok,
            reason: if ok {
                "allowed".into()
            } else {
                "no statement allows it".into()
            },
            fix: (!ok).then(|| "run `fintech-infra up`".into()),
        }
    }

    #[test]
    fn report_text_and_json_say_which_path_failed() {
        let r = Report {
            findings: vec![finding("a → b", true), finding("queue → validator", false)],
        };
        assert!(!r.ok());
        let text = r.to_text("prod");
        assert!(text.contains("PASS a → b"), "{text}");
        assert!(
            text.contains("FAIL queue → validator  no statement allows it"),
            "{text}"
        );
        assert!(text.contains("fix: run `fintech-infra up`"), "{text}");
        assert!(
            text.ends_with("verify `prod`: 2 checks, 1 passed, 1 failed.\n"),
            "{text}"
        );
        let j = r.to_json("prod");
        assert_eq!(j["ok"], false);
        assert_eq!(j["failed"], 1);
        assert_eq!(j["checks"][1]["result"], "FAIL");
        assert_eq!(j["checks"][1]["path"], "queue → validator");
    }
}
