//! The `pg_replication_exporter` binary: parse flags, load the configuration,
//! run. Every start-up problem is one line on stderr and exit code 2.

use std::process::ExitCode;

use clap::Parser;

use pg_replication_exporter::cli::{Cli, Command, LogLevel, StatusOutput};
use pg_replication_exporter::config::{self, Overrides};
use pg_replication_exporter::web_config::WebConfig;
use pg_replication_exporter::{exporter, logging};

const EXIT_USAGE: u8 = 2;

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("pg_replication_exporter: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// One line naming the flag at fault, without the value given: it may be
/// a secret pasted into the wrong place.
fn describe_clap(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind: ContextKind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    // "--runtime.worker-threads <N>" -> "--runtime.worker-threads"
    let flag = context(ContextKind::InvalidArg)
        .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        .filter(|a| {
            a.starts_with('-')
                && a.len() <= 64
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        });
    let flag = flag.as_deref().unwrap_or("an argument");
    // The command the error is about (`status`), from clap's usage line:
    // an argument it does not take is named by its place, never by its
    // text, which may be a secret pasted in the wrong place.
    let command = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(usage)) => usage
            .to_string()
            .split_whitespace()
            .nth(2)
            .filter(|word| *word == "status")
            .map(|word| format!("{word}: ")),
        _ => None,
    }
    .unwrap_or_default();
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            match context(ContextKind::ValidValue) {
                Some(valid) => format!("{flag}: invalid value; expected one of {valid}"),
                None => format!("{flag}: invalid value (see --help)"),
            }
        }
        // A word that is no flag: the command takes no such argument.
        ErrorKind::UnknownArgument if !flag.starts_with('-') => {
            format!("{command}unexpected argument; this command takes no positional arguments (see --help)")
        }
        ErrorKind::UnknownArgument => format!("{command}unknown flag {flag} (see --help)"),
        ErrorKind::MissingRequiredArgument => format!("missing {flag} (see --help)"),
        ErrorKind::ArgumentConflict => format!("{flag} cannot be used with another argument given"),
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            format!("{flag}: wrong number of values")
        }
        ErrorKind::InvalidSubcommand => "unknown command (see --help)".to_string(),
        ErrorKind::NoEquals => format!("{flag}: expected {flag}=VALUE"),
        ErrorKind::InvalidUtf8 => format!("{flag}: not valid UTF-8"),
        _ => "invalid arguments (see --help)".to_string(),
    }
}

fn run_status(config: &config::Config, output: StatusOutput) -> ExitCode {
    use pg_replication_exporter::status;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("starting the runtime: {e}")),
    };
    let snaps = match runtime.block_on(status::collect(config)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let view = pg_replication_exporter::view::View::build(
        snaps,
        &config.clusters,
        pg_replication_exporter::snapshot::ReloadStatus {
            successful: true,
            last_success: 0.0,
        },
    );
    let report = status::report(&view);
    match output {
        StatusOutput::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(format!("encoding the report: {e}")),
        },
        StatusOutput::Table => print!("{}", status::render_table(&report, status::use_color())),
    }
    ExitCode::from(status::exit_code(&report))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if e.kind() == ErrorKind::DisplayVersion {
                println!("{}", e.render().to_string().trim_end());
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelp {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            return fail(describe_clap(&e));
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
    let config = match config::load(&overrides) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Some(Command::Status { output }) = cli.command {
        return run_status(&config, output);
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
        let listener = match exporter::bind(&config).await {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let runtime = exporter::Runtime {
            listener,
            web,
            overrides: Some(overrides),
            lifecycle: cli.enable_lifecycle,
        };
        match exporter::run(config, runtime, exporter::shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    });
    // A blocking task still running (a reload reading files, each read
    // bounded by its own deadline) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
