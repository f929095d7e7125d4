//! Log output through tracing: text for people, logfmt or JSON for log
//! pipelines, always to stderr so stdout stays free for commands' output.

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, LogLevel};

pub fn init(level: LogLevel, format: LogFormat) {
    // Our own level applies to this crate; libraries stay at warn unless
    // tracing is asked for, so debug logs are not flooded by hyper.
    let directive = match level {
        LogLevel::Trace | LogLevel::Debug => format!(
            "warn,pg_replication_exporter={0},tokio_postgres={0}",
            level.as_str()
        ),
        _ => format!("{0},pg_replication_exporter={0}", level.as_str()),
    };
    let filter = EnvFilter::new(directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        .with_target(false);
    let result = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Logfmt => builder
            .event_format(tracing_logfmt::EventsFormatter::default())
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
