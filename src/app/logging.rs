//! Log output through tracing: text for people, logfmt or JSON for log
//! pipelines, always to stderr so stdout stays free for commands' output.
//!
//! The filter comes from, in this order: `--log.level` (or
//! `PGREPL_LOG_LEVEL`) when given, because a flag is what an operator of a
//! Prometheus exporter reaches for and it must win; else `RUST_LOG`, in
//! tracing's `EnvFilter` syntax, for the per-module levels that a single
//! level cannot express (`pg_replication_exporter=debug,tokio_postgres=info`);
//! else the command's default level.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FmtSpan, FormatFields, Writer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::app::cli::{LogFormat, LogLevel};
use crate::render::escape;

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

/// The fields of the text format: `message` first, then `name=value`,
/// every value and the message with control characters escaped
/// ([`escape::control`]). Server text reaches the log through fields (an
/// error tokio-postgres spreads over lines with `DETAIL:`, a version
/// string, a host name): a raw newline there would forge a log line, an
/// escape sequence would drive the terminal of whoever reads the log. The
/// JSON and logfmt formats quote and escape values themselves.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As tracing's default: the message as it is, other strings quoted.
        if field.name() == "message" {
            self.write(field, value);
        } else {
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here with Display as their Debug: raw text.
        self.write(field, &format!("{value:?}"));
    }
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, text: &str) {
        if self.result.is_err() {
            return;
        }
        // Fields the `log` bridge adds carry metadata shown elsewhere.
        if field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let text = escape::control(text);
        self.result = match field.name() {
            "message" => write!(self.writer, "{separator}{text}"),
            name => write!(
                self.writer,
                "{separator}{}={text}",
                name.strip_prefix("r#").unwrap_or(name)
            ),
        };
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
            .fmt_fields(EscapedFields)
            .finish()
            .with(crate::http::security::log_fold::layer())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(crate::http::security::log_fold::layer())
            .try_init(),
        LogFormat::Logfmt => builder
            .event_format(tracing_logfmt::EventsFormatter::default())
            .finish()
            .with(crate::http::security::log_fold::layer())
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

    /// The text format of one event, through [`EscapedFields`].
    fn text_of(emit: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut b) = self.0.lock() {
                    b.extend_from_slice(buf);
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn fields_and_message_are_one_escaped_line() {
        let error = "FATAL: no\nDETAIL: Hot standby mode is disabled.";
        let host = "evil\n\u{1b}]0;pwned\u{7}";
        let text = text_of(|| {
            tracing::warn!(target_name = "s1", error = %error, host, version = ?host,
                "target is down\r\nforged");
        });
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert!(
            text.contains(
                r#"target is down\r\nforged target_name="s1" error=FATAL: no\nDETAIL: Hot"#
            ),
            "{text:?}"
        );
        // A string field is quoted as before, Rust's way, escapes included.
        assert!(
            text.contains(r#"host="evil\n\u{1b}]0;pwned\u{7}""#),
            "{text:?}"
        );
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
