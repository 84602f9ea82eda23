//! Entry point: parse the command line, set up logging, run the command, map errors to exit
//! codes (0 success, 1 a step failed, 2 usage or input error).

use clap::Parser;
use fintech_infra::{app, cli::Cli, error};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap exits 2 for usage errors and 0 for --help/--version.
            e.exit();
        }
    };
    fintech_infra::init_logging(cli.global.verbose, cli.global.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(app::run(cli));
    if let Err(err) = result {
        eprintln!("error: {}", fintech_infra::report::render(&err));
        std::process::exit(error::exit_code(&err));
    }
}
