//! Command-line flags, in the style of the Prometheus exporters
//! (`--web.listen-address`, `--log.level`), so operators can reuse what they know.

use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pg_replication_exporter",
    version = crate::build_info::LONG_VERSION,
    long_version = crate::build_info::LONG_VERSION,
    about = "Prometheus exporter for PostgreSQL physical streaming replication"
)]
pub struct Cli {
    /// TOML configuration file (see README, "Configuration reference").
    #[arg(
        long = "config",
        short = 'c',
        value_name = "FILE",
        env = "PGREPL_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,

    /// Address to listen on for HTTP requests [default: 0.0.0.0:9839].
    #[arg(long = "web.listen-address", value_name = "HOST:PORT")]
    pub listen_address: Option<String>,

    /// Path under which to expose metrics [default: /metrics].
    #[arg(long = "web.telemetry-path", value_name = "PATH")]
    pub telemetry_path: Option<String>,

    /// Web configuration (TLS, basic auth) in the Prometheus exporter-toolkit format.
    #[arg(
        long = "web.config.file",
        value_name = "FILE",
        env = "PGREPL_WEB_CONFIG_FILE"
    )]
    pub web_config_file: Option<PathBuf>,

    /// Enable `POST /-/reload` (off by default, as in Prometheus: anyone
    /// who can reach the port could otherwise make the exporter reconnect
    /// to every server at will). SIGHUP reloads either way.
    /// The environment variable takes what systemd units and compose files
    /// write: 1/0, true/false, yes/no, on/off.
    #[arg(
        long = "web.enable-lifecycle",
        env = "PGREPL_WEB_ENABLE_LIFECYCLE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enable_lifecycle: bool,

    /// Only log messages with the given severity or above [default: info;
    /// warn for `status`].
    #[arg(
        long = "log.level",
        value_enum,
        env = "PGREPL_LOG_LEVEL",
        global = true
    )]
    pub log_level: Option<LogLevel>,

    /// Output format of log messages.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "text",
        env = "PGREPL_LOG_FORMAT",
        global = true
    )]
    pub log_format: LogFormat,

    /// Threads serving HTTP and running collections. One is plenty for an
    /// exporter and, beside the database it watches, steals no second core;
    /// the same default as node_exporter's `--runtime.gomaxprocs`.
    #[arg(
        long = "runtime.worker-threads",
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=256),
        env = "PGREPL_WORKER_THREADS"
    )]
    pub worker_threads: u16,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect once from every target and print the replication topology
    /// (exit code 0 healthy; 1 degraded: a problem now or a warning; 2
    /// error: no member answered, or a bad configuration).
    Status {
        /// `table` for people (colored on a terminal), `json` for scripts.
        #[arg(long = "output", short = 'o', value_enum, default_value = "table")]
        output: StatusOutput,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusOutput {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Logfmt,
    Json,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

const EXIT_USAGE: u8 = 2;

/// The one line a start-up problem is told in, and exit code 2.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    #[allow(clippy::print_stderr)] // before the log is set up, and its last word
    {
        eprintln!("pg_replication_exporter: {message}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// One line naming the flag at fault, without the value given: it may be
/// a secret pasted into the wrong place.
pub fn describe_error(e: &clap::Error) -> String {
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
