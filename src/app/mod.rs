//! The commands: resolve the stack, check input before any AWS call, then run the engine and
//! print results.
//!
//! The parts: `down`'s teardown with adoption (`down`), the end-of-run summary and the
//! outputs listing (`summary`).

mod down;
mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::aws::{Aws, AwsOptions};
use crate::cli::{Cli, Command, GlobalOpts};
use crate::config::Config;
use crate::engine;
use crate::error::UsageError;
use crate::naming::{validate_suffix, Names};
use crate::report::{OutputFormat, Reporter};
use crate::state::{self, StateFile, StateStore};
use crate::step::{Mode, Shared, Step, StepCtx};
use down::down_completely;
use summary::{finish, print_outputs, summarize};

/// Everything decided from the command line before any AWS call.
struct Resolved {
    suffix: String,
    state_path: PathBuf,
    cfg: Arc<Config>,
}

/// Picks the env suffix and state path (the flag, or the only stack in the state directory)
/// and the config: the one given, else, for the commands that act on a built stack (`down`,
/// `verify`, `status`), the one its last `up` recorded in the state, so that they see the
/// same services, regions and names without being told again.
fn resolve(global: &GlobalOpts, suffix: Option<&str>, command: &str) -> Result<Resolved> {
    let given = global.config.is_some() || global.preset.is_some();
    let mut cfg = Config::load(global.config.as_deref(), global.preset)?;
    let suffix = match suffix {
        Some(s) => s.to_string(),
        None => infer_suffix(global.state.as_deref(), command)?,
    };
    validate_suffix(&suffix)?;
    let state_path = global
        .state
        .clone()
        .unwrap_or_else(|| state::path_for(Path::new(state::DEFAULT_DIR), &suffix));
    if !given && matches!(command, "down" | "verify" | "status" | "deploy") {
        if let Some(source) = StateFile::load(&state_path)?.and_then(|f| f.config) {
            match Config::from_source(&source) {
                Ok(c) => cfg = c,
                // Recorded by a build with other rules: `down` must still work, on the
                // state's records, which do not depend on the config.
                Err(e) if command == "down" => eprintln!(
                    "warning: the config recorded in the state no longer parses ({}); \
                     going on with the defaults",
                    e.0
                ),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Resolved {
        suffix,
        state_path,
        cfg: Arc::new(cfg),
    })
}

/// How `up` was given its config, for the state (see [`state::ConfigSource`]).
fn config_source(g: &GlobalOpts) -> Result<state::ConfigSource> {
    let text = match &g.config {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(format!("cannot read config file {}: {e}", path.display()))
        })?),
        None => None,
    };
    Ok(state::ConfigSource {
        preset: g.preset.map(|p| p.name().to_string()),
        text,
    })
}

fn infer_suffix(state: Option<&Path>, command: &str) -> Result<String> {
    if let Some(path) = state {
        if let Some(f) = StateFile::load(path)? {
            return Ok(f.suffix);
        }
        return Err(UsageError::new(format!(
            "`{command}` needs --env-suffix: the state file {} does not exist",
            path.display()
        ))
        .into());
    }
    let stacks = state::stacks_in(Path::new(state::DEFAULT_DIR));
    match stacks.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(UsageError::new(format!(
            "`{command}` needs --env-suffix: no stack state found in {}/",
            state::DEFAULT_DIR
        ))
        .into()),
        many => Err(UsageError::new(format!(
            "`{command}` needs --env-suffix: several stacks have state in {}/: {}",
            state::DEFAULT_DIR,
            many.join(", ")
        ))
        .into()),
    }
}

/// Checks the global options that name places (the endpoint, the state file) before anything
/// is opened or called: a bad one is a usage error (exit 2) that leaves the state untouched.
fn check_global(g: &GlobalOpts) -> Result<(), UsageError> {
    if let Some(url) = &g.endpoint_url {
        check_endpoint_url(url)?;
    }
    if let Some(path) = &g.state {
        check_state_path(path)?;
    }
    if let Ok(v) = std::env::var(crate::step::MAX_POLL_ENV) {
        crate::step::parse_max_poll(&v).map_err(UsageError::new)?;
    }
    Ok(())
}

/// `--endpoint-url` (or `AWS_ENDPOINT_URL`): an http(s) URL with a host, as the SDK needs.
pub fn check_endpoint_url(url: &str) -> Result<(), UsageError> {
    let bad = |why: &str| {
        UsageError::new(format!(
            "invalid --endpoint-url `{url}` (or AWS_ENDPOINT_URL): {why}; expected an http(s) \
             URL such as http://127.0.0.1:4566 or https://ec2.us-east-1.amazonaws.com"
        ))
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("the scheme must be http or https"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("it names no host"));
    }
    if url.chars().any(char::is_whitespace) {
        return Err(bad("it contains whitespace"));
    }
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if port.parse::<u16>().is_err() {
            return Err(bad("the port is not a number from 0 to 65535"));
        }
    }
    Ok(())
}

/// `--state`: a file path (existing or not) in a directory that is one, or can be created.
pub fn check_state_path(path: &Path) -> Result<(), UsageError> {
    if path.is_dir() {
        return Err(UsageError::new(format!(
            "--state {} is a directory; give the path of a state file, e.g. {}/prod.json",
            path.display(),
            path.display()
        )));
    }
    if path.file_name().is_none() {
        return Err(UsageError::new(format!(
            "--state {} names no file; give the path of a state file such as .fintech-infra/prod.json",
            path.display()
        )));
    }
    let mut parent = path.parent();
    while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
        if p.exists() {
            if !p.is_dir() {
                return Err(UsageError::new(format!(
                    "--state {}: {} is not a directory",
                    path.display(),
                    p.display()
                )));
            }
            let readonly = std::fs::metadata(p)
                .map(|m| m.permissions().readonly())
                .unwrap_or(false);
            if readonly {
                return Err(UsageError::new(format!(
                    "--state {}: the directory {} is not writable",
                    path.display(),
                    p.display()
                )));
            }
            break;
        }
        parent = p.parent();
    }
    Ok(())
}

/// Runs one command. Errors carry their kind for the exit code (see `error::exit_code`).
pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    check_global(g)?;
    let json_out = g.output == OutputFormat::Json;
    match &cli.command {
        Command::Up(a) => {
            let r = resolve(g, Some(&a.env_suffix), "up")?;
            let store = StateStore::open_locked(&r.state_path, &r.suffix, "", "up")?;
            let verify = !a.no_verify;
            let waits = Waits {
                extra: a.wait.clone(),
                none: a.no_wait,
            };
            apply(g, r, store, Mode::Up, waits, verify).await
        }
        Command::Down(a) => {
            let r = resolve(g, a.env_suffix.as_deref(), "down")?;
            let store = StateStore::open_locked(&r.state_path, &r.suffix, "", "down")?;
            apply(g, r, store, Mode::Down, Waits::default(), false).await
        }
        Command::Deploy(a) => {
            let r = resolve(g, a.env_suffix.as_deref(), "deploy")?;
            deploy(g, r, a).await
        }
        Command::Plan(a) => {
            let r = resolve(g, a.env_suffix.as_deref(), "plan")?;
            let store = StateStore::open_read_only(&r.state_path, &r.suffix, "")?;
            apply(g, r, store, Mode::Plan, Waits::default(), false).await
        }
        Command::Status(a) => {
            let r = resolve(g, a.env_suffix.as_deref(), "status")?;
            let store = StateStore::open_read_only(&r.state_path, &r.suffix, "")?;
            status(g, r, store).await
        }
        Command::Verify(a) => {
            let r = resolve(g, a.env_suffix.as_deref(), "verify")?;
            let store = StateStore::open_read_only(&r.state_path, &r.suffix, "")?;
            verify(g, r, store).await
        }
        Command::Outputs { stack, json, all } => {
            let r = resolve(g, stack.env_suffix.as_deref(), "outputs")?;
            let Some(file) = StateFile::load(&r.state_path)? else {
                return Err(no_stack(&r).into());
            };
            print_outputs(&file, *json || json_out, *all);
            Ok(())
        }
    }
}

/// Connects to AWS in the region the state was made in, unless `--region` says otherwise,
/// else in the config's region, else in the profile's or environment's.
async fn connect(g: &GlobalOpts, store: &StateStore, cfg: &Config) -> Result<Arc<Aws>> {
    let snapshot = store.snapshot();
    let recorded = snapshot.region;
    if !recorded.is_empty() && store.exists_on_disk() {
        let differs = |source: &str, region: &str| {
            UsageError::new(format!(
                "{source} {region} differs from the region this stack was created in \
                 ({recorded}); a stack stays in its region: omit it or use {recorded}"
            ))
        };
        if let Some(flag) = g.region.as_ref().filter(|f| **f != recorded) {
            return Err(differs("--region", flag).into());
        }
        if let Some(r) = cfg.region.as_ref().filter(|r| r.0 != recorded) {
            return Err(differs("the config's region", &r.0).into());
        }
    }
    let region = g
        .region
        .clone()
        .or_else(|| (!recorded.is_empty()).then_some(recorded))
        .or_else(|| cfg.region.as_ref().map(|r| r.0.clone()));
    let aws = Aws::connect(&AwsOptions {
        region,
        profile: g.profile.clone(),
        endpoint_url: g.endpoint_url.clone(),
        parallelism: usize::from(g.parallelism),
        app_name: Some(app_name(&snapshot.suffix)),
        max_attempts: g.max_attempts,
    })
    .await;
    // Only now is the stack's region known (it may come from the profile); still no AWS call.
    if let Some(dr) = cfg.dr.region.as_ref().filter(|dr| dr.0 == aws.region()) {
        return Err(UsageError::new(format!(
            "dr.region {dr} is the stack's own region; the disaster-recovery region must be \
             another one (pass --region, or set `region` in the config)"
        ))
        .into());
    }
    Ok(Arc::new(aws))
}

/// The SDK app name of a stack's runs: `fintech-infra_<suffix>` (the suffix rule keeps it
/// within the app name's character set and 50-character limit).
pub fn app_name(suffix: &str) -> String {
    format!("fintech-infra_{suffix}")
}

/// Ctrl-C handling: the first stops new work (in-flight calls finish, state is saved after
/// every change anyway); the second exits at once.
fn install_ctrl_c(cancel: CancellationToken, reporter_json: bool) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        cancel.cancel();
        if !reporter_json {
            eprintln!(
                "interrupt: finishing calls in flight and saving state; press Ctrl-C again to exit now"
            );
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

/// What `up` waits for beyond its default (`--wait`), or that it skips the waits no later
/// create needs (`--no-wait`).
#[derive(Debug, Default)]
struct Waits {
    extra: Vec<String>,
    none: bool,
}

async fn apply(
    g: &GlobalOpts,
    r: Resolved,
    store: StateStore,
    mode: Mode,
    waits: Waits,
    verify_after: bool,
) -> Result<()> {
    let json_out = g.output == OutputFormat::Json;
    if mode == Mode::Down && store.snapshot().resources.is_empty() && !store.exists_on_disk() {
        return Err(UsageError::new(format!(
            "no state for stack `{}` at {}: nothing to destroy",
            r.suffix,
            r.state_path.display()
        ))
        .into());
    }
    let aws = connect(g, &store, &r.cfg).await?;
    let steps = crate::steps::all(&r.cfg);
    // Check the graph before touching AWS.
    engine::graph_of(&steps).context("building the step graph")?;
    let cancel = CancellationToken::new();
    if mode != Mode::Plan {
        install_ctrl_c(cancel.clone(), json_out);
    }
    let reporter = Reporter::new(g.output, g.quiet, mode != Mode::Plan);
    let names = Names::new(&r.suffix);
    let shared = Arc::new(
        Shared::new(
            mode,
            names,
            r.cfg.clone(),
            aws.clone(),
            store,
            reporter,
            cancel,
        )
        .with_wait(waits.extra)
        .with_no_wait(waits.none),
    );
    if mode == Mode::Up {
        // Stamp the region (and the config) before the first resource is recorded.
        shared
            .state
            .set_region(aws.region())
            .context("writing the state")?;
        shared
            .state
            .set_config(config_source(g)?)
            .context("writing the state")?;
        // A new stack's resources all get the config's tags when they are created.
        crate::retag::stamp_new_stack(&shared)?;
    }
    let parallelism = usize::from(g.parallelism);
    let early_verify = (mode == Mode::Up && verify_after)
        .then(|| EarlyVerify::start(&shared))
        .flatten();
    let (report, leftovers) = if mode == Mode::Down {
        down_completely(&steps, &shared, parallelism).await?
    } else {
        let mut report = if mode == Mode::Plan {
            engine::plan(&steps, shared.clone(), parallelism).await?
        } else {
            engine::run(&steps, shared.clone(), parallelism).await?
        };
        // The config's `[tags]` changed since the resources were tagged: tag them all again
        // (in `plan`, one planned change), after the steps and before verify.
        if report.ok() {
            if let Some(retag) = crate::retag::run(&shared).await {
                report.steps.push(retag);
            }
        }
        (report, Vec::new())
    };
    let calls = aws.calls();
    if mode == Mode::Plan && calls.mutating > 0 {
        anyhow::bail!(
            "internal error: plan issued mutating AWS calls: {:?}",
            calls.mutating_ops
        );
    }
    let remaining = shared.state.snapshot().resources.len();
    if mode == Mode::Down && report.ok() && remaining == 0 && leftovers.is_empty() {
        shared
            .state
            .remove_file()
            .context("removing the state file")?;
    }
    summarize(
        &shared,
        &report,
        mode,
        json_out,
        remaining + leftovers.len(),
    );
    if mode == Mode::Down && report.ok() && remaining > 0 {
        // Only write-ahead records can remain after a clean teardown: creates the adoption
        // pass could not resolve (its step failed, or the config no longer names them).
        for p in shared.state.pending() {
            eprintln!(
                "error: {} {} may exist (a create was in flight when a run stopped) and was not \
                 found by name; check for it and run `fintech-infra down` again",
                p.kind, p.name
            );
        }
        return Err(crate::error::Leftovers { count: remaining }.into());
    }
    if !leftovers.is_empty() {
        for l in &leftovers {
            eprintln!("error: still there although the state does not record it: {l}");
        }
        return Err(crate::error::Leftovers {
            count: leftovers.len(),
        }
        .into());
    }
    if mode == Mode::Up && report.ok() && verify_after {
        let verified = match early_verify {
            Some(early) => early.result(&shared).await,
            None => None,
        };
        let verified = match verified {
            Some(v) => v,
            None => {
                let stack = crate::verify::Stack::from_state(&shared.state.snapshot());
                crate::verify::run(shared.aws.clone(), &stack, &shared.cfg).await
            }
        };
        verify_warnings(&shared, json_out, verified);
    } else if let Some(early) = early_verify {
        early.task.abort();
    }
    finish(&report)
}

/// `up`'s verify of a stack that already exists, started with the steps instead of after
/// them: most runs of `up` on a built stack change nothing, and verify's reads (a few dozen)
/// then need not wait for the steps' reads. It stands only if the run changed nothing: no
/// mutating call and the same records and outputs as when it started.
struct EarlyVerify {
    stack: crate::verify::Stack,
    task: tokio::task::JoinHandle<Result<crate::verify::Report>>,
}

impl EarlyVerify {
    /// `None` for a new stack (an empty state): there is nothing to verify before the steps.
    fn start(shared: &Shared) -> Option<EarlyVerify> {
        let stack = crate::verify::Stack::from_state(&shared.state.snapshot());
        if stack.resources.is_empty() || !shared.state.pending().is_empty() {
            return None;
        }
        let (aws, cfg, s) = (shared.aws.clone(), shared.cfg.clone(), stack.clone());
        let task = tokio::spawn(async move { crate::verify::run(aws, &s, &cfg).await });
        Some(EarlyVerify { stack, task })
    }

    /// Its report if the run changed nothing; else `None` (it is stopped).
    async fn result(self, shared: &Shared) -> Option<Result<crate::verify::Report>> {
        let unchanged = shared.aws.calls().mutating == 0
            && crate::verify::Stack::from_state(&shared.state.snapshot()) == self.stack;
        if !unchanged {
            self.task.abort();
            return None;
        }
        self.task.await.ok()
    }
}

/// The end of `up`: the read-only path checks, a failing path reported as a warning with its
/// fix (the stack was built; what it cannot do yet is for the engineer to see).
fn verify_warnings(shared: &Shared, json_out: bool, verified: Result<crate::verify::Report>) {
    match verified {
        Ok(report) if json_out => {
            let mut v = report.to_json(shared.names.suffix());
            v["event"] = json!("verify");
            println!("{v}");
        }
        Ok(report) if report.ok() => {
            if !shared.reporter.is_quiet() {
                println!(
                    "verify: all {} paths of the stack work (`fintech-infra verify` for details).",
                    report.findings.len()
                );
            }
        }
        Ok(report) => {
            for f in report.failed() {
                eprintln!("warning: path {} fails: {}", f.path, f.reason);
                if let Some(fix) = &f.fix {
                    eprintln!("         fix: {fix}");
                }
            }
        }
        Err(e) => eprintln!("warning: verify could not read the stack: {e:#}"),
    }
}

/// The error of a command that needs a built stack and finds no state for it.
fn no_stack(r: &Resolved) -> UsageError {
    UsageError::new(format!(
        "no state for stack `{}` at {}: run `fintech-infra up --env-suffix {}` first",
        r.suffix,
        r.state_path.display(),
        r.suffix
    ))
}

/// `deploy`: a release, a promotion or a rollback of one service (see [`crate::deploy`]).
async fn deploy(g: &GlobalOpts, r: Resolved, a: &crate::cli::DeployArgs) -> Result<()> {
    if StateFile::load(&r.state_path)?.is_none() {
        return Err(no_stack(&r).into());
    }
    let action = match (&a.image, a.promote, a.rollback) {
        (Some(image), _, _) => crate::deploy::Action::Release {
            image: image.clone(),
            allow_vulnerable: a.allow_vulnerable,
        },
        (None, true, _) => crate::deploy::Action::Promote,
        (None, _, _) => crate::deploy::Action::Rollback,
    };
    // A deploy changes the stack: it holds the lock like `up`.
    let store = StateStore::open_locked(&r.state_path, &r.suffix, "", "deploy")?;
    crate::deploy::check(&r.cfg, &store, &a.service, &action)?;
    let aws = connect(g, &store, &r.cfg).await?;
    crate::deploy::run(
        aws,
        &store,
        &r.cfg,
        &a.service,
        action,
        g.output == OutputFormat::Json,
    )
    .await
}

/// `verify`: the path checks alone, exit 1 if any fails.
async fn verify(g: &GlobalOpts, r: Resolved, store: StateStore) -> Result<()> {
    if !store.exists_on_disk() {
        return Err(no_stack(&r).into());
    }
    let aws = connect(g, &store, &r.cfg).await?;
    let stack = crate::verify::Stack::from_state(&store.snapshot());
    let report = crate::verify::run(aws, &stack, &r.cfg).await?;
    if g.output == OutputFormat::Json {
        println!("{}", report.to_json(&r.suffix));
    } else {
        print!("{}", report.to_text(&r.suffix));
    }
    let failed = report.failed().count();
    if failed > 0 {
        return Err(crate::error::VerifyFailed {
            failed,
            total: report.findings.len(),
        }
        .into());
    }
    Ok(())
}

async fn status(g: &GlobalOpts, r: Resolved, store: StateStore) -> Result<()> {
    let json_out = g.output == OutputFormat::Json;
    if !store.exists_on_disk() {
        return Err(UsageError::new(format!(
            "no state for stack `{}` at {}",
            r.suffix,
            r.state_path.display()
        ))
        .into());
    }
    let aws = connect(g, &store, &r.cfg).await?;
    let steps = crate::steps::all(&r.cfg);
    let shared = Arc::new(Shared::new(
        Mode::Status,
        Names::new(&r.suffix),
        r.cfg.clone(),
        aws,
        store,
        Reporter::silent(),
        CancellationToken::new(),
    ));
    let records = shared.state.snapshot().resources;
    // Probe every resource concurrently; the HTTP layer bounds the calls in flight.
    let probes = records.iter().map(|rec| {
        let step: Option<&Arc<dyn Step>> = steps.iter().find(|s| s.name() == rec.step);
        let ctx = StepCtx::new(step.map(|s| s.name()).unwrap_or("unknown"), shared.clone());
        // Each resource is probed where it lives (the DR steps record another region).
        let ctx = match rec.region.as_str() {
            "" => ctx,
            region => ctx.in_region(region),
        };
        async move {
            if rec.pending {
                return (
                    "pending",
                    "a create was in flight when a run stopped: `up` or `down` resolves it by name"
                        .to_string(),
                );
            }
            // Every recorded kind has a provider; a step's own probe is only a fallback for
            // a kind an older state recorded and this build no longer registers.
            let probed = match (crate::resources::provider(&rec.kind), step) {
                (Some(p), _) => Some(p.probe(&ctx, rec).await),
                (None, Some(s)) => Some(s.probe(&ctx, rec).await),
                (None, None) => None,
            };
            match probed {
                Some(r) => match r {
                    Ok(Some(st)) => ("exists", st),
                    Ok(None) => ("missing", String::new()),
                    Err(e) => ("unknown", format!("{e:#}")),
                },
                None => ("unknown", format!("no step named {}", rec.step)),
            }
        }
    });
    let results = futures::future::join_all(probes).await;
    let mut missing = 0;
    let mut rows = Vec::new();
    for (rec, (presence, detail)) in records.iter().zip(results) {
        if presence == "missing" {
            missing += 1;
        }
        rows.push(json!({
            "step": rec.step, "kind": rec.kind, "id": rec.id, "name": rec.name,
            "presence": presence, "status": detail,
        }));
        if !json_out {
            println!(
                "{:<10} {:<26} {:<28} {:<8} {}",
                rec.step, rec.kind, rec.id, presence, detail
            );
        }
    }
    // What `deploy` released, per service: the image on each colour and the weights.
    let releases = shared.state.snapshot().releases;
    if json_out {
        println!(
            "{}",
            json!({"stack": r.suffix, "resources": rows, "missing": missing, "releases": releases})
        );
    } else {
        for (service, rel) in &releases {
            let mut line = format!("release {service}: {}", rel.blue);
            if let Some(green) = &rel.green {
                line = format!("release {service}: blue {}, green {green}", rel.blue);
            }
            if let Some((b, g)) = rel.weights {
                line.push_str(&format!("; traffic blue {b} %, green {g} %"));
            }
            println!("{line} (at {})", rel.at.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        println!(
            "status `{}`: {} resource(s) recorded, {missing} missing.",
            r.suffix,
            records.len()
        );
    }
    Ok(())
}
