//! The `Step` trait every module in `steps/` implements, and the context a step runs with:
//! AWS clients, config, names and tags, the state store, plan recording and waiting.
//!
//! Steps are written once for `up` and `plan`: they look resources up, then call
//! [`StepCtx::ensure`] / [`StepCtx::change`], which create or change in `up` and only record
//! what would happen in `plan`. Every created resource is recorded in the state right after its
//! create call returns, before any waiting.
//!
//! The parts: [`Found`] and plan-mode placeholders (`found`), the lookups a new stack skips
//! (`fresh`), waiting and retrying (`wait`).

mod found;
mod fresh;
#[cfg(test)]
mod tests;
mod wait;

pub use found::{is_pending, Found, PENDING_PREFIX};
pub use fresh::SKIPPABLE;
pub use wait::{is_iam_propagation, max_poll_interval, parse_max_poll, MAX_POLL_ENV};

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::aws::Aws;
use crate::config::Config;
use crate::error::Interrupted;
use crate::naming::{Names, STACK_TAG};
use crate::report::Reporter;
use crate::state::{ResourceRecord, StateStore};

/// One unit of the stack: a group of resources created and deleted together.
#[async_trait]
pub trait Step: Send + Sync {
    /// Unique name, e.g. `network`.
    fn name(&self) -> &'static str;
    /// Steps that must finish before this one starts; `~name`: only `name`'s outputs are
    /// needed, and this step starts once it has published them ([`StepCtx::release`]).
    fn deps(&self) -> Vec<&'static str>;
    /// Typical duration on real AWS in seconds: the scheduler starts the longest chain first.
    fn estimate_secs(&self) -> u64;
    /// Creates or completes the resources (or, in plan mode, records what it would do).
    async fn up(&self, ctx: &StepCtx) -> Result<()>;
    /// Whether a recorded resource still exists: `Some(status)` if it does. Only for kinds
    /// without a provider in [`crate::resources`] (`status` asks the provider first); a step
    /// whose kinds all have one keeps this default.
    async fn probe(&self, _ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        anyhow::bail!(
            "the {} step has no probe for {}, and no provider is registered for it",
            self.name(),
            rec.kind
        )
    }
}

/// What kind of run this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Up,
    Plan,
    Down,
    Status,
    /// `down`'s adoption pass: every step looks its resources up by name and tag, as in
    /// `plan`, and records what it finds (resolving write-ahead records), changing nothing.
    Refresh,
}

/// What `plan` says `up` would do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Change,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub step: String,
    pub action: Action,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Whether a failed create certainly created nothing: AWS answered with an error of its own
/// that is not a transient one (throttling, a 5xx, a timeout or a lost connection may follow a
/// create AWS carried out). Its write-ahead record can then go.
fn refused_outright(err: &anyhow::Error) -> bool {
    let Some(e) = crate::aws::find_aws_error(err) else {
        return false;
    };
    let Some(code) = e.code.as_deref() else {
        return false;
    };
    !(e.kind() == crate::aws::AwsErrorKind::Throttled
        || e.kind() == crate::aws::AwsErrorKind::AlreadyExists
        || matches!(
            code,
            "InternalError"
                | "InternalFailure"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "RequestTimeout"
                | "RequestTimeoutException"
        ))
}

/// An idempotency token for one create call and all its retries (ECS `clientToken`, ...):
/// unique per call (the process, the time and what is created), at most 36 characters.
pub fn idempotency_token(what: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let salt = format!("{what}|{}|{now}", std::process::id());
    format!(
        "fi-{:08x}{:08x}-{now:x}",
        crate::naming::fnv1a32(what.bytes()),
        crate::naming::fnv1a32(salt.bytes())
    )
    .chars()
    .take(36)
    .collect()
}

/// What every step of one run shares.
pub struct Shared {
    mode: Mutex<Mode>,
    pub names: Names,
    pub cfg: Arc<Config>,
    pub aws: Arc<Aws>,
    pub state: StateStore,
    pub reporter: Reporter,
    pub cancel: CancellationToken,
    /// What `up --wait` asked to wait for beyond the default (`cdn`, `all`).
    wait: Vec<String>,
    /// `up --no-wait`: skip the waits no later create needs.
    no_wait: bool,
    plan: Mutex<Vec<PlanItem>>,
    account: OnceCell<String>,
    /// Connections to other regions (the disaster-recovery region), made on first use.
    regions: crate::aws::RegionCache,
    /// Where [`StepCtx::release`] tells the engine a step's outputs are published.
    release: Mutex<Option<tokio::sync::mpsc::UnboundedSender<&'static str>>>,
    /// While `plan` runs every step at once ([`crate::engine::plan`]): each output a step
    /// read (step, key, value or `None`), to check afterwards that it read what it would have
    /// read in dependency order.
    reads: Mutex<Option<Vec<OutputRead>>>,
    /// Whether the stack is new: lookups it can skip (`fresh`).
    fresh: fresh::Fresh,
}

/// One output a step read during `plan`'s first pass.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRead {
    pub step: &'static str,
    pub key: String,
    pub value: Option<Value>,
}

impl Shared {
    pub fn new(
        mode: Mode,
        names: Names,
        cfg: Arc<Config>,
        aws: Arc<Aws>,
        state: StateStore,
        reporter: Reporter,
        cancel: CancellationToken,
    ) -> Shared {
        let had_records = state.with_resources(|all| !all.is_empty());
        Shared {
            mode: Mutex::new(mode),
            names,
            cfg,
            aws,
            state,
            reporter,
            cancel,
            wait: Vec::new(),
            no_wait: false,
            plan: Mutex::new(Vec::new()),
            account: OnceCell::new(),
            regions: Default::default(),
            release: Mutex::new(None),
            reads: Mutex::new(None),
            fresh: fresh::Fresh {
                had_records,
                ..Default::default()
            },
        }
    }

    /// Installs (or, with `None`, removes) the engine's release channel for one run.
    pub fn set_release_channel(
        &self,
        tx: Option<tokio::sync::mpsc::UnboundedSender<&'static str>>,
    ) {
        *self.release.lock().unwrap_or_else(|e| e.into_inner()) = tx;
    }

    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches the run's mode (`down` runs a [`Mode::Refresh`] pass first, with the same
    /// state and lock) and forgets what the previous pass planned.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Sets what `up --wait` asked for (`cdn`, `all`).
    pub fn with_wait(mut self, wait: Vec<String>) -> Shared {
        self.wait = wait;
        self
    }

    /// Sets `up --no-wait`.
    pub fn with_no_wait(mut self, no_wait: bool) -> Shared {
        self.no_wait = no_wait;
        self
    }

    /// The connection to `region`: the main one for the stack's region, else one sharing its
    /// credentials, endpoint, request limit and call counter.
    pub fn aws_in(&self, region: &str) -> Arc<Aws> {
        self.aws.in_region(&self.regions, region)
    }

    /// Starts (`true`) or stops recording the outputs steps read; stopping returns them.
    pub fn record_reads(&self, on: bool) -> Vec<OutputRead> {
        let mut reads = self.reads.lock().unwrap_or_else(|e| e.into_inner());
        let taken = reads.take().unwrap_or_default();
        if on {
            *reads = Some(Vec::new());
        }
        taken
    }

    /// Drops the plan items of `steps` (steps whose results do not count).
    pub fn forget_plan_items(&self, steps: &[&str]) {
        self.plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|item| !steps.contains(&item.step.as_str()));
    }

    /// Everything recorded by `plan`/`up` so far.
    pub fn plan_items(&self) -> Vec<PlanItem> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The context one step runs with.
#[derive(Clone)]
pub struct StepCtx {
    pub step: &'static str,
    pub sh: Arc<Shared>,
    /// Set by [`StepCtx::in_region`]: the connection this context's calls go to.
    aws: Option<Arc<Aws>>,
}

impl StepCtx {
    pub fn new(step: &'static str, sh: Arc<Shared>) -> StepCtx {
        StepCtx {
            step,
            sh,
            aws: None,
        }
    }

    /// The same step working in another region: its AWS calls go there and the resources it
    /// records are recorded with that region, so `down` and `status` find them again.
    pub fn in_region(&self, region: &str) -> StepCtx {
        StepCtx {
            step: self.step,
            sh: self.sh.clone(),
            aws: Some(self.sh.aws_in(region)),
        }
    }

    pub fn aws(&self) -> &Aws {
        self.aws.as_deref().unwrap_or(&self.sh.aws)
    }

    pub fn cfg(&self) -> &Config {
        &self.sh.cfg
    }

    pub fn names(&self) -> &Names {
        &self.sh.names
    }

    pub fn suffix(&self) -> &str {
        self.sh.names.suffix()
    }

    pub fn region(&self) -> &str {
        self.aws().region()
    }

    pub fn is_plan(&self) -> bool {
        matches!(self.sh.mode(), Mode::Plan | Mode::Refresh)
    }

    /// Whether `up --wait` asked to wait for `what` (e.g. `cdn`), directly or with `all`:
    /// for deployments that `up` otherwise leaves running (CloudFront's global deployment).
    pub fn should_wait(&self, what: &str) -> bool {
        self.sh.wait.iter().any(|w| w == what || w == "all")
    }

    /// Whether `up --no-wait` asked to skip the waits that no later create needs (a
    /// resource's own settling, e.g. Aurora becoming available): the step then ends once its
    /// create calls have returned, and the next `up` does the waiting.
    pub fn no_wait(&self) -> bool {
        self.sh.no_wait
    }

    /// The account ID, looked up once per run.
    pub async fn account_id(&self) -> Result<String> {
        let id = self
            .sh
            .account
            .get_or_try_init(|| async { self.sh.aws.account_id().await })
            .await?;
        Ok(id.clone())
    }

    /// The tags every taggable resource gets, plus `Name` when given.
    pub fn tags(&self, name: Option<&str>) -> Vec<(String, String)> {
        let t = &self.sh.cfg.tags;
        let env = t
            .environment
            .as_ref()
            .map(|e| e.0.clone())
            .unwrap_or_else(|| self.suffix().to_string());
        let mut v = Vec::with_capacity(5);
        if let Some(n) = name {
            v.push(("Name".to_string(), n.to_string()));
        }
        v.push(("Environment".to_string(), env));
        v.push(("Team".to_string(), t.team.0.clone()));
        v.push(("CostCenter".to_string(), t.cost_center.0.clone()));
        v.push((STACK_TAG.to_string(), self.suffix().to_string()));
        v
    }

    /// Refuses to adopt a resource that has this stack's name but not its stack tag (`tag` is
    /// the resource's `fintech-infra:stack` value, if any): names are unique per account and
    /// region, so it belongs to someone else, and adopting it (and later deleting it) would be
    /// far worse than failing.
    pub fn check_ours(&self, what: &str, name: &str, tag: Option<&str>) -> Result<()> {
        if tag == Some(self.suffix()) {
            return Ok(());
        }
        // Untagged, but this stack's write-ahead record says a run was creating exactly this
        // name when it stopped: where the API cannot tag at create time (CreateBucket), the
        // tags come in a second call that may never have been made.
        if tag.is_none() && self.is_pending(name) {
            return Ok(());
        }
        anyhow::bail!(
            "{what} `{name}` exists but is not tagged {STACK_TAG}={} (it has {}); it is not this \
             stack's and will not be adopted: remove or rename it, or use another env suffix",
            self.suffix(),
            tag.map(|v| format!("{STACK_TAG}={v}"))
                .unwrap_or_else(|| "no stack tag".into())
        )
    }

    /// Progress note shown next to the step (e.g. "waiting for NAT gateway").
    pub fn note(&self, msg: &str) {
        self.sh.reporter.step_note(self.step, msg);
    }

    /// Fails with [`Interrupted`] once Ctrl-C was pressed: called before each new mutation
    /// and between polls, so in-flight calls finish but nothing new starts.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.sh.cancel.is_cancelled() {
            return Err(
                Interrupted(format!("step {} stopped before its next change", self.step)).into(),
            );
        }
        Ok(())
    }

    fn plan_item(&self, action: Action, kind: &str, name: &str, detail: &str) {
        let item = PlanItem {
            step: self.step.to_string(),
            action,
            kind: kind.to_string(),
            name: name.to_string(),
            detail: detail.to_string(),
        };
        if action != Action::Unchanged && self.sh.mode() != Mode::Refresh {
            self.sh.reporter.resource(&item);
        }
        self.sh
            .plan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
    }

    /// Records a resource in the state (no write if already recorded identically).
    pub fn record(&self, kind: &str, name: &str, found: &Found) -> Result<()> {
        if found.is_pending() {
            return Ok(());
        }
        let mut rec = ResourceRecord {
            step: self.step.to_string(),
            kind: kind.to_string(),
            id: found.id.clone(),
            arn: found.arn.clone(),
            name: name.to_string(),
            region: self.region().to_string(),
            attrs: found.attrs.clone(),
            created_at: Utc::now(),
            pending: false,
            deps: None,
        };
        // What it is built on, resolved now and kept: `down` walks these edges backwards.
        rec.deps = Some(
            self.sh
                .state
                .with_resources(|all| crate::resources::deps::resolve(&rec, all)),
        );
        self.sh
            .state
            .record(rec)
            .with_context(|| format!("recording {kind} {} in the state", found.id))
    }

    /// Writes the write-ahead record of a resource about to be created: if the run dies
    /// between AWS creating it and the real record, the state still says it may exist, under
    /// its deterministic name.
    pub fn record_pending(&self, kind: &str, name: &str) -> Result<()> {
        self.sh
            .state
            .record(ResourceRecord {
                step: self.step.to_string(),
                kind: kind.to_string(),
                id: crate::state::pending_id(name),
                arn: None,
                name: name.to_string(),
                region: self.region().to_string(),
                attrs: BTreeMap::new(),
                created_at: Utc::now(),
                pending: true,
                deps: None,
            })
            .with_context(|| format!("recording the pending create of {kind} {name}"))
    }

    /// Whether this step has a write-ahead record for the resource named `name` (in this
    /// context's region).
    pub fn is_pending(&self, name: &str) -> bool {
        self.sh
            .state
            .pending()
            .iter()
            .any(|r| r.step == self.step && r.name == name && r.region == self.region())
    }

    /// Drops the write-ahead record of a create that AWS refused (it created nothing).
    fn forget_pending(&self, kind: &str, name: &str) -> Result<()> {
        self.forget(kind, &crate::state::pending_id(name))
    }

    /// Removes a deleted resource from the state.
    pub fn forget(&self, kind: &str, id: &str) -> Result<()> {
        self.sh
            .state
            .forget(kind, id, self.region())
            .with_context(|| format!("removing {kind} {id} from the state"))
    }

    /// This step's records in this context's region, optionally of one kind, in creation
    /// order. Write-ahead records are left out: they have no ID to act on (see
    /// [`StepCtx::record_pending`]).
    pub fn records(&self, kind: Option<&str>) -> Vec<ResourceRecord> {
        let mut recs = self.sh.state.resources(Some(self.step), kind);
        recs.retain(|r| !r.pending && (r.region == self.region() || r.region.is_empty()));
        recs
    }

    /// Whether this step has recorded anything, in any region.
    pub fn has_records(&self) -> bool {
        !self.sh.state.resources(Some(self.step), None).is_empty()
    }

    /// The regions this step has recorded resources in, the context's own first.
    pub fn record_regions(&self) -> Vec<String> {
        let mut regions = vec![self.region().to_string()];
        for r in self.sh.state.resources(Some(self.step), None) {
            if !r.region.is_empty() && !regions.contains(&r.region) {
                regions.push(r.region);
            }
        }
        regions
    }

    /// Says that every output this step publishes is published, though the step goes on
    /// (waiting for its slow resources to be ready): the steps that depend on it only for
    /// its outputs (`~name` in their `deps`) start now. The database needs the network's
    /// subnets and security groups, not its NAT gateways being available.
    pub fn release(&self) {
        if let Some(tx) = &*self.sh.release.lock().unwrap_or_else(|e| e.into_inner()) {
            // The engine is gone only after the run: nothing is waiting any more.
            let _ = tx.send(self.step);
        }
    }

    /// Publishes a value for later steps and the `outputs` command. Never pass secrets.
    pub fn set_output(&self, key: &str, value: impl Into<Value>) -> Result<()> {
        self.sh
            .state
            .set_output(self.step, key, value.into())
            .with_context(|| format!("saving output {key}"))
    }

    pub fn output(&self, key: &str) -> Option<Value> {
        let value = self.sh.state.output(key);
        if let Some(reads) = self
            .sh
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            reads.push(OutputRead {
                step: self.step,
                key: key.to_string(),
                value: value.clone(),
            });
        }
        value
    }

    /// A string output another step published; an error naming the key if it is missing.
    pub fn output_str(&self, key: &str) -> Result<String> {
        self.output(key)
            .and_then(|v| v.as_str().map(str::to_string))
            .with_context(|| format!("output `{key}` is missing: has its step run?"))
    }

    /// An output an upstream step published, as an input to this step. In plan mode a missing
    /// input (its step has not run yet) comes back as a placeholder for which
    /// [`is_pending`] is true; in other modes it is an error naming the key.
    pub fn input(&self, key: &str) -> Result<Value> {
        match self.output(key) {
            Some(v) => Ok(v),
            None if self.is_plan() => Ok(Value::String(format!("{PENDING_PREFIX} output {key})"))),
            None => anyhow::bail!("output `{key}` is missing: has its step run?"),
        }
    }

    /// A string input (see [`StepCtx::input`]).
    pub fn input_str(&self, key: &str) -> Result<String> {
        match self.input(key)? {
            Value::String(s) => Ok(s),
            other => anyhow::bail!("output `{key}` is not a string: {other}"),
        }
    }

    /// A list-of-strings input; in plan mode a missing one is a single placeholder.
    pub fn input_list(&self, key: &str) -> Result<Vec<String>> {
        match self.input(key)? {
            Value::String(s) if is_pending(&s) => Ok(vec![s]),
            Value::Array(a) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    other => anyhow::bail!("output `{key}` holds a non-string: {other}"),
                })
                .collect(),
            other => anyhow::bail!("output `{key}` is not a list: {other}"),
        }
    }

    /// A string map input (e.g. per-service ARNs); in plan mode a missing one is empty.
    pub fn input_map(&self, key: &str) -> Result<BTreeMap<String, String>> {
        match self.input(key)? {
            Value::String(s) if is_pending(&s) => Ok(BTreeMap::new()),
            Value::Object(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => anyhow::bail!("output `{key}.{k}` is not a string: {other}"),
                })
                .collect(),
            other => anyhow::bail!("output `{key}` is not a map: {other}"),
        }
    }

    pub fn remove_output(&self, key: &str) -> Result<()> {
        self.sh
            .state
            .remove_output(key)
            .with_context(|| format!("removing output {key}"))
    }

    /// Looks a resource up and creates it if missing. `find` must be read-only. In plan mode a
    /// missing resource is reported as "create" and a placeholder returned. The created
    /// resource is recorded in the state as soon as `create` returns.
    pub async fn ensure<F, FF, C, CF>(
        &self,
        kind: &str,
        name: &str,
        find: F,
        create: C,
    ) -> Result<Found>
    where
        F: FnOnce() -> FF,
        FF: Future<Output = Result<Option<Found>>>,
        C: FnOnce() -> CF,
        CF: Future<Output = Result<Found>>,
    {
        // A new stack's lookups of what cannot exist yet are skipped (`fresh`); the lookup
        // is kept for the case that the create says it exists after all.
        let mut find = Some(find);
        if !self.known_absent(kind, name).await? {
            let find = find.take().expect("not taken yet");
            if let Some(found) = find().await? {
                self.record(kind, name, &found)?;
                self.plan_item(Action::Unchanged, kind, name, "");
                return Ok(found);
            }
        }
        if self.is_plan() {
            self.plan_item(Action::Create, kind, name, "");
            return Ok(Found::pending(kind, name));
        }
        self.check_cancelled()?;
        self.record_pending(kind, name)?;
        let found = match create().await {
            Ok(found) => found,
            Err(e) => {
                let exists = crate::aws::find_aws_error(&e)
                    .is_some_and(|a| a.kind() == crate::aws::AwsErrorKind::AlreadyExists);
                if let (true, Some(find)) = (exists, find.take()) {
                    // It exists although the stack looked new: look it up after all, and
                    // from now on. The write-ahead record goes first: it would let the
                    // lookup adopt an untagged resource as this run's half-made one, and a
                    // skippable kind is tagged by its create call, so one of this stack's
                    // (an SDK retry of this very create) carries the tag anyway.
                    self.forget_pending(kind, name)?;
                    self.collided(kind, name);
                    if let Some(found) = find().await? {
                        self.record(kind, name, &found)?;
                        self.plan_item(Action::Unchanged, kind, name, "");
                        return Ok(found);
                    }
                }
                if refused_outright(&e) {
                    self.forget_pending(kind, name)?;
                }
                return Err(e);
            }
        };
        self.record(kind, name, &found)?;
        self.plan_item(Action::Create, kind, name, "");
        Ok(found)
    }

    /// Applies a change to an existing resource (or, in plan mode, reports it).
    pub async fn change<C, CF>(&self, kind: &str, name: &str, what: &str, apply: C) -> Result<()>
    where
        C: FnOnce() -> CF,
        CF: Future<Output = Result<()>>,
    {
        self.plan_item(Action::Change, kind, name, what);
        if self.is_plan() {
            return Ok(());
        }
        self.check_cancelled()?;
        apply().await
    }

    /// Removes a deleted resource from the state and reports it.
    pub fn deleted(&self, kind: &str, id: &str) -> Result<()> {
        self.forget(kind, id)?;
        self.sh.reporter.deleted(self.step, kind, id);
        Ok(())
    }

    /// Deletes every recorded resource of `kind` with `delete`, in creation order, retrying
    /// while AWS reports a dependency (see [`StepCtx::retry_dependency`]) and removing each
    /// from the state as soon as it is gone.
    pub async fn delete_recorded<F, Fut>(&self, kind: &str, delete: F) -> Result<()>
    where
        F: Fn(ResourceRecord) -> Fut,
        Fut: Future<Output = Result<(), crate::aws::AwsError>>,
    {
        for rec in self.records(Some(kind)) {
            self.retry_dependency(&format!("{kind} {}", rec.id), || delete(rec.clone()))
                .await?;
            self.deleted(kind, &rec.id)?;
        }
        Ok(())
    }
}
