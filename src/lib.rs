//! fintech-infra: builds and tears down the AWS stack for a fintech transaction-processing web
//! application by calling AWS APIs directly.
//!
//! `src/` holds the CLI, the step engine and the state; `steps/` holds one module per step
//! (compiled into this crate as `crate::steps`, so steps and engine share one set of types
//! without a dependency cycle between crates).

pub mod app;
pub mod aws;
pub mod cli;
#[macro_use]
pub mod config;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod graph;
pub mod naming;
pub mod outputs;
pub mod policy;
pub mod reach;
pub mod report;
pub mod resources;
pub mod retag;
pub mod state;
pub mod step;
pub mod sweep;
pub mod teardown;
pub mod verify;

#[path = "../steps/mod.rs"]
pub mod steps;

/// Logs go to stderr; `-v` debug, `-vv` trace, `-q` errors only; `RUST_LOG` overrides.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "fintech_infra=debug,warn",
        (false, _) => "fintech_infra=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
