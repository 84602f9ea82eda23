//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "fintech-infra",
    version,
    about = "Builds and tears down the AWS production stack for a fintech transaction-processing web application",
    long_about = None,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalOpts {
    /// AWS region. Default: the region the stack was created in, else the config's
    /// `region`, else the profile's or AWS_REGION, else us-east-1. (Not read from AWS_REGION
    /// here: the environment must not override the stack's or the config's region.)
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS named profile.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Custom AWS endpoint, e.g. a local emulator (moto, LocalStack).
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// State file (default: .fintech-infra/<suffix>.json).
    #[arg(long, global = true)]
    pub state: Option<PathBuf>,
    /// Most AWS operations in flight at once.
    #[arg(long, global = true, default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Attempts per AWS operation before it fails (throttling, 5xx, resets, timeouts are
    /// retried with jittered exponential backoff).
    #[arg(long, global = true, default_value_t = crate::aws::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub max_attempts: u32,
    /// TOML configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Reference architecture to start from (a config file's `preset` key does the same).
    #[arg(long, global = true, value_enum)]
    pub preset: Option<crate::config::Preset>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More logging (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct StackArg {
    /// Env suffix naming the stack (e.g. prod); may be omitted when exactly one stack's state
    /// is in the state directory.
    #[arg(long)]
    pub env_suffix: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// Env suffix naming the stack, e.g. prod, dev, pr-123.
    #[arg(long)]
    pub env_suffix: String,
    /// Also wait for deployments `up` does not otherwise wait for: `cdn` (CloudFront's global
    /// deployment of the distribution, 5-15 minutes on AWS) or `all`. Repeatable or
    /// comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = ["cdn", "all"])]
    pub wait: Vec<String>,
    /// Return once every create call has returned, waiting only where a later create needs
    /// a resource ready (NAT gateways for their routes, the load balancer for its listeners,
    /// new IAM roles); Aurora is left becoming available. `status` shows what is still
    /// settling; the next `up` waits for it and finishes its checks.
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,
    /// Skip the read-only path checks `up` runs at its end (`fintech-infra verify`).
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeployArgs {
    /// Env suffix naming the stack; may be omitted when exactly one stack's state is in the
    /// state directory.
    #[arg(long)]
    pub env_suffix: Option<String>,
    /// The service to release (a `[[services]]` name).
    #[arg(long)]
    pub service: String,
    /// The image to release, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2.
    #[arg(long, required_unless_present_any = ["promote", "rollback"],
          conflicts_with_all = ["promote", "rollback"])]
    pub image: Option<String>,
    /// A `weighted` service: give the colour of the newest release all the traffic.
    #[arg(long, conflicts_with = "rollback")]
    pub promote: bool,
    /// A `weighted` service: give all the traffic back to the colour of the previous release.
    #[arg(long)]
    pub rollback: bool,
    /// Release an image of the stack's repositories although its scan reports findings at
    /// or above `deploy.block_severity`.
    #[arg(long, requires = "image")]
    pub allow_vulnerable: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or complete the stack.
    Up(UpArgs),
    /// Destroy everything recorded in the state.
    Down(StackArg),
    /// Release a new version of one service by its `deployment` strategy (rolling or
    /// weighted blue/green), with progress, and roll it back on failing health or an alarm.
    Deploy(DeployArgs),
    /// Show what `up` would create, change or leave alone, without changing anything.
    Plan(StackArg),
    /// Show what the state records and whether each resource still exists.
    Status(StackArg),
    /// Read the live stack back and check that every path of the architecture works (IAM,
    /// resource and key policies, security groups, routes); exit 1 if any fails.
    Verify(StackArg),
    /// Show the stack's endpoints and IDs.
    Outputs {
        #[command(flatten)]
        stack: StackArg,
        /// Print JSON (same as --output json): every output.
        #[arg(long)]
        json: bool,
        /// Also print every other ID the steps recorded (subnets, ARNs, ...).
        #[arg(long)]
        all: bool,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Down(_) => "down",
            Command::Deploy(_) => "deploy",
            Command::Plan(_) => "plan",
            Command::Status(_) => "status",
            Command::Verify(_) => "verify",
            Command::Outputs { .. } => "outputs",
        }
    }
}
