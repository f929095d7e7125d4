//! Warnings that the HTTP and TLS libraries write because of what a client
//! did, before any authentication (an HTTP/2 client resetting streams, a
//! TLS client sending a bad handshake), folded: of each kind, the first in
//! a [`WINDOW`] is written, the rest are only counted, and one line per
//! kind says how many were left out ([`Fold::report`], every window and at
//! shutdown). Without this, anyone who can reach the port writes one line
//! per connection: enough to fill a disk, or to hit journald's rate limit
//! and lose the exporter's own lines among them.
//!
//! Only warnings and errors of the libraries that face HTTP clients are
//! folded (see [`PEER_FACING`]); the exporter's own lines, and those of the
//! PostgreSQL client, are written as they come. `RUST_LOG` still decides
//! what is written at all (a kind filtered out is not counted).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Of each kind, one warning per this time is written.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Libraries (the first part of a `tracing` target, or of a `log` target)
/// whose warnings a client can cause: hyper and h2 for HTTP, rustls for TLS.
pub const PEER_FACING: [&str; 5] = ["h2", "hyper", "hyper_util", "rustls", "tokio_rustls"];

/// Kinds tracked at most; the libraries have a few dozen warning sites,
/// so this only bounds the map against the unexpected (beyond it, new
/// kinds are written unfolded).
const MAX_KINDS: usize = 256;

/// The sample kept of a kind's first warning, in characters.
const SAMPLE_CHARS: usize = 200;

/// A kind of warning: where it is written from.
type Key = (String, Option<u32>);

#[derive(Debug)]
struct Kind {
    /// When the current window began (its first warning was written).
    since: Instant,
    /// Left out since the last report.
    suppressed: u64,
    /// The text of the first warning of this kind.
    sample: String,
}

/// The folding state; [`global`] is the one the log uses.
#[derive(Debug)]
pub struct Fold {
    window: Duration,
    kinds: Mutex<HashMap<Key, Kind>>,
}

static GLOBAL: LazyLock<Arc<Fold>> = LazyLock::new(|| Arc::new(Fold::new(WINDOW)));

/// The folding the log applies (see [`layer`]).
pub fn global() -> &'static Arc<Fold> {
    &GLOBAL
}

/// The layer that folds, for the log's subscriber.
pub fn layer() -> FoldLayer {
    FoldLayer(global().clone())
}

/// A `tracing` layer that drops the warnings [`Fold`] leaves out, for every
/// other layer of the subscriber.
#[derive(Debug, Clone)]
pub struct FoldLayer(Arc<Fold>);

impl<S: Subscriber> Layer<S> for FoldLayer {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        self.0.admit(event)
    }
}

impl Fold {
    pub fn new(window: Duration) -> Fold {
        Fold {
            window,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Kind>> {
        // Every update is a few plain assignments: consistent even if a
        // holder panicked.
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `event` is written: anything but a peer-facing library's
    /// warning or error is; of those, the first of its kind in a window.
    fn admit(&self, event: &Event<'_>) -> bool {
        let meta = event.metadata();
        // More verbose levels compare greater.
        if *meta.level() > Level::WARN {
            return true;
        }
        let mut fields = Fields::default();
        // `log` records (rustls) arrive under the target "log", with the
        // real target and line as fields.
        let from_log = meta.target() == "log";
        let target = if from_log {
            event.record(&mut fields);
            fields.log_target.clone().unwrap_or_default()
        } else {
            meta.target().to_string()
        };
        let root = target.split("::").next().unwrap_or_default();
        if !PEER_FACING.contains(&root) {
            return true;
        }
        let line = if from_log {
            fields.log_line
        } else {
            meta.line()
        };
        let now = Instant::now();
        let mut kinds = self.kinds();
        let key = (target, line);
        let full = kinds.len() >= MAX_KINDS;
        match kinds.get_mut(&key) {
            Some(kind) if now.duration_since(kind.since) < self.window => {
                kind.suppressed += 1;
                false
            }
            Some(kind) => {
                kind.since = now;
                true
            }
            None if full => true,
            None => {
                if !from_log {
                    event.record(&mut fields);
                }
                let sample = fields.message.chars().take(SAMPLE_CHARS).collect();
                kinds.insert(
                    key,
                    Kind {
                        since: now,
                        suppressed: 0,
                        sample,
                    },
                );
                true
            }
        }
    }

    /// Takes the counts of warnings left out since the last call: per
    /// kind, its target, the count and its first warning's text.
    pub fn take_suppressed(&self) -> Vec<(String, u64, String)> {
        let mut out: Vec<(String, u64, String)> = self
            .kinds()
            .iter_mut()
            .filter(|(_, kind)| kind.suppressed > 0)
            .map(|((target, _), kind)| {
                (
                    target.clone(),
                    std::mem::take(&mut kind.suppressed),
                    kind.sample.clone(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Writes one line per kind with warnings left out since the last
    /// report. Called from outside the subscriber (an event written from
    /// inside one is dropped by `tracing`).
    pub fn report(&self) {
        for (source, suppressed, first) in self.take_suppressed() {
            tracing::warn!(
                source = %source,
                suppressed,
                first = %first,
                "similar warnings caused by clients were left out (one of each kind is logged per {} s)",
                self.window.as_secs()
            );
        }
    }

    /// Reports every window until `stop` changes or closes.
    pub async fn report_every_window(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.window) => self.report(),
                _ = stop.changed() => return,
            }
        }
    }
}

/// The fields of an event that folding reads.
#[derive(Default)]
struct Fields {
    message: String,
    log_target: Option<String>,
    log_line: Option<u32>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "log.target" => self.log_target = Some(value.to_string()),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log.line" {
            self.log_line = u32::try_from(value).ok();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;

    /// Counts the events that reach it.
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn library_warnings_are_folded_per_kind_and_reported() {
        let fold = Arc::new(Fold::new(Duration::from_secs(3600)));
        let written = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(FoldLayer(fold.clone()))
            .with(Count(written.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for n in 0..100 {
                tracing::warn!(target: "h2::proto::streams", "too many resets ({n})");
                tracing::warn!(target: "h2::proto::streams", "another kind");
            }
            // Ours, and a library's informational lines: never folded.
            for _ in 0..10 {
                tracing::warn!(target: "pg_replication_exporter::http", "ours");
                tracing::info!(target: "h2::proto", "info");
                tracing::warn!(target: "tokio_postgres::connection", "database side");
            }
        });
        // One of each library kind, 30 others.
        assert_eq!(written.load(Ordering::SeqCst), 2 + 30);
        let mut report = fold.take_suppressed();
        report.sort_by(|a, b| a.2.cmp(&b.2));
        assert_eq!(
            report,
            [
                (
                    "h2::proto::streams".to_string(),
                    99,
                    "another kind".to_string()
                ),
                (
                    "h2::proto::streams".to_string(),
                    99,
                    "too many resets (0)".to_string()
                ),
            ]
        );
        // Reported once: the counts start again.
        assert!(fold.take_suppressed().is_empty());
    }

    /// rustls logs through the `log` crate: tracing-log hands its records
    /// over under the target "log", the real target in a field.
    #[test]
    fn log_records_are_folded_by_their_own_target() {
        let fold = Arc::new(Fold::new(Duration::from_secs(3600)));
        let written = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(FoldLayer(fold.clone()))
            .with(Count(written.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..10 {
                tracing::event!(
                    target: "log",
                    Level::WARN,
                    { "log.target" = "rustls::check", "log.line" = 62u64 },
                    "Received a ClientHello handshake message while expecting Finished"
                );
                tracing::event!(
                    target: "log",
                    Level::WARN,
                    { "log.target" = "tokio_postgres::connection", "log.line" = 7u64 },
                    "from the database side"
                );
            }
        });
        assert_eq!(written.load(Ordering::SeqCst), 1 + 10);
        assert_eq!(
            fold.take_suppressed(),
            [(
                "rustls::check".to_string(),
                9,
                "Received a ClientHello handshake message while expecting Finished".to_string()
            )]
        );
    }

    #[test]
    fn a_new_window_writes_the_next_one() {
        let fold = Arc::new(Fold::new(Duration::ZERO));
        let written = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(FoldLayer(fold.clone()))
            .with(Count(written.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5 {
                tracing::error!(target: "rustls::server", "bad handshake");
            }
        });
        assert_eq!(written.load(Ordering::SeqCst), 5);
        assert!(fold.take_suppressed().is_empty());
    }
}
