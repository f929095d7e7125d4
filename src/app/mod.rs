//! The application: what the binary does, from its command line to its
//! exit code. [`main`] parses the flags ([`cli`]), starts the log
//! ([`logging`]), loads the configuration, then either runs the exporter
//! ([`supervisor`]) or the one-shot `status` command ([`status`]). Every
//! start-up problem is one line on stderr and exit code 2.

pub mod cli;
pub mod logging;
mod status;
pub mod supervisor;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{self, Overrides};
use crate::http::security::web_config::WebConfig;
use cli::{fail, Cli, Command, LogLevel};

/// The binary: `src/main.rs` calls only this.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if e.kind() == ErrorKind::DisplayVersion {
                #[allow(clippy::print_stdout)] // what --version prints
                {
                    println!("{}", e.render().to_string().trim_end());
                }
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelp {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            return fail(cli::describe_error(&e));
        }
    };
    let default_level = if cli.command.is_some() {
        LogLevel::Warn
    } else {
        LogLevel::Info
    };
    if let Err(e) = logging::init(cli.log_level, default_level, cli.log_format) {
        return fail(e);
    }
    let overrides = Overrides {
        config_file: cli.config.clone(),
        listen_address: cli.listen_address.clone(),
        telemetry_path: cli.telemetry_path.clone(),
    };
    let config = match config::loader::load(&overrides) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(Command::Status { output }) = cli.command {
        return status::run(&config, output);
    }
    let web = match &cli.web_config_file {
        Some(path) => match WebConfig::load(path) {
            Ok(w) => w,
            Err(e) => return fail(e),
        },
        None => WebConfig::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(cli.worker_threads))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("starting the runtime: {e}")),
    };
    let code = runtime.block_on(async move {
        let listener = match supervisor::bind(&config).await {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let runtime = supervisor::Runtime {
            listener,
            web,
            overrides: Some(overrides),
            lifecycle: cli.enable_lifecycle,
        };
        match supervisor::run(config, runtime, supervisor::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    });
    // A blocking task still running (a reload reading files, each read
    // bounded by its own deadline) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
