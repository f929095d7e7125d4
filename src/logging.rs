//! Log output through tracing: text for people, logfmt or JSON for log
//! pipelines, always to stderr so stdout stays free for commands' output.
//!
//! The filter comes from, in this order: `--log.level` (or
//! `PGREPL_LOG_LEVEL`) when given, because a flag is what an operator of a
//! Prometheus exporter reaches for and it must win; else `RUST_LOG`, in
//! tracing's `EnvFilter` syntax, for the per-module levels that a single
//! level cannot express (`pg_replication_exporter=debug,tokio_postgres=info`);
//! else the command's default level.

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, LogLevel};

/// The variable read when no level is given.
pub const RUST_LOG: &str = "RUST_LOG";

/// A `RUST_LOG` that is not a valid filter: the exporter stops rather than
/// log at a level nobody asked for.
#[derive(Debug, thiserror::Error)]
#[error("{RUST_LOG}: {reason} (tracing filter syntax, e.g. `pg_replication_exporter=debug,warn`)")]
pub struct FilterError {
    reason: String,
}

/// The filter of one of our levels: it applies to this crate; libraries stay
/// at warn unless debugging is asked for, so debug logs are not flooded by
/// hyper.
fn level_filter(level: LogLevel) -> EnvFilter {
    let directive = match level {
        LogLevel::Trace | LogLevel::Debug => format!(
            "warn,pg_replication_exporter={0},tokio_postgres={0}",
            level.as_str()
        ),
        _ => format!("{0},pg_replication_exporter={0}", level.as_str()),
    };
    EnvFilter::new(directive)
}

/// The filter for an explicit level, else for `rust_log` (the value of
/// `RUST_LOG`, unset or empty meaning none), else for `default`.
pub fn filter(
    explicit: Option<LogLevel>,
    rust_log: Option<&str>,
    default: LogLevel,
) -> Result<EnvFilter, FilterError> {
    if let Some(level) = explicit {
        return Ok(level_filter(level));
    }
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => EnvFilter::builder()
            .parse(directives)
            .map_err(|e| FilterError {
                reason: format!("invalid filter {directives:?}: {e}"),
            }),
        None => Ok(level_filter(default)),
    }
}

/// Installs the subscriber; see the module documentation for where the
/// filter comes from.
pub fn init(
    explicit: Option<LogLevel>,
    default: LogLevel,
    format: LogFormat,
) -> Result<(), FilterError> {
    let rust_log = match std::env::var(RUST_LOG) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(FilterError {
                reason: "not valid UTF-8".to_string(),
            })
        }
    };
    let filter = filter(explicit, rust_log.as_deref(), default)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        .with_target(false);
    // Warnings clients can make the HTTP and TLS libraries write are
    // folded (see `log_fold`), whatever the format.
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(false)
            .finish()
            .with(crate::log_fold::layer())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(crate::log_fold::layer())
            .try_init(),
        LogFormat::Logfmt => builder
            .event_format(tracing_logfmt::EventsFormatter::default())
            .finish()
            .with(crate::log_fold::layer())
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(f: &EnvFilter) -> String {
        f.to_string()
    }

    #[test]
    fn an_explicit_level_wins_over_rust_log() -> Result<(), FilterError> {
        let f = filter(
            Some(LogLevel::Warn),
            Some("pg_replication_exporter=trace"),
            LogLevel::Info,
        )?;
        assert_eq!(shown(&f), shown(&level_filter(LogLevel::Warn)));
        Ok(())
    }

    #[test]
    fn rust_log_applies_without_a_level() -> Result<(), FilterError> {
        let f = filter(
            None,
            Some("pg_replication_exporter=debug,hyper=info"),
            LogLevel::Info,
        )?;
        let text = shown(&f);
        assert!(text.contains("pg_replication_exporter=debug"), "{text}");
        assert!(text.contains("hyper=info"), "{text}");
        Ok(())
    }

    #[test]
    fn empty_or_unset_rust_log_is_the_default() -> Result<(), FilterError> {
        for value in [None, Some(""), Some("  ")] {
            let f = filter(None, value, LogLevel::Warn)?;
            assert_eq!(shown(&f), shown(&level_filter(LogLevel::Warn)));
        }
        Ok(())
    }

    #[test]
    fn an_invalid_rust_log_is_an_error_naming_it() {
        let err = filter(None, Some("pg_replication_exporter=loud"), LogLevel::Info)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("RUST_LOG: invalid filter"), "{err}");
        assert!(err.contains("pg_replication_exporter=loud"), "{err}");
    }
}
