//! What [`StepCtx::ensure`](super::StepCtx::ensure) finds or creates ([`Found`]), and the
//! placeholders plan mode returns for resources and inputs that do not exist yet.

use std::collections::BTreeMap;

/// A resource found or created by [`StepCtx::ensure`](super::StepCtx::ensure).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub id: String,
    pub arn: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

/// Prefix of the placeholder ID plan mode returns for a resource that does not exist yet.
pub const PENDING_PREFIX: &str = "(known after up:";

impl Found {
    pub fn new(id: impl Into<String>) -> Found {
        Found {
            id: id.into(),
            ..Found::default()
        }
    }

    pub fn arn(mut self, arn: impl Into<String>) -> Found {
        self.arn = Some(arn.into());
        self
    }

    pub fn attr(mut self, k: &str, v: impl Into<String>) -> Found {
        self.attrs.insert(k.to_string(), v.into());
        self
    }

    pub(super) fn pending(kind: &str, name: &str) -> Found {
        Found::new(format!("{PENDING_PREFIX} {kind} {name})"))
    }

    /// True for plan-mode placeholders: nothing exists to look up or change.
    pub fn is_pending(&self) -> bool {
        is_pending(&self.id)
    }
}

/// True if `id` is a plan-mode placeholder rather than a real AWS ID.
pub fn is_pending(id: &str) -> bool {
    id.starts_with(PENDING_PREFIX)
}
