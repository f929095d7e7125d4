//! Configuration reloads asked for over HTTP (`POST /-/reload`): the
//! handler waits for the supervisor's outcome. Reloads coalesce: one runs
//! at a time, and requests made while it runs get its outcome, so a flood
//! of requests costs one reload, not one each.

use std::fmt;

use tokio::sync::{mpsc, oneshot};

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The configuration read runs now.
    Applied(Changes),
    /// Refused: the running configuration stays. Why, worded for the
    /// operator (never with a secret).
    Refused(String),
}

/// What an applied configuration changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changes {
    /// It is the running configuration.
    None,
    /// Targets kept (same settings: same task, session and counters),
    /// started or restarted, and stopped.
    Targets {
        kept: usize,
        started: usize,
        stopped: usize,
    },
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Changes::None => f.write_str("none (the configuration is unchanged)"),
            Changes::Targets {
                kept,
                started,
                stopped,
            } => write!(
                f,
                "{kept} target(s) kept, {started} (re)started, {stopped} stopped"
            ),
        }
    }
}

/// The supervisor's end: each request carries where to send its outcome.
pub type Requests = mpsc::Receiver<oneshot::Sender<ReloadOutcome>>;

/// The HTTP side's end.
#[derive(Clone)]
pub struct Reloader {
    tx: mpsc::Sender<oneshot::Sender<ReloadOutcome>>,
}

impl Reloader {
    /// A reloader and the requests it sends, for the supervisor.
    pub fn channel() -> (Reloader, Requests) {
        let (tx, rx) = mpsc::channel(64);
        (Reloader { tx }, rx)
    }

    /// Asks for a reload and waits for its outcome.
    pub async fn reload(&self) -> ReloadOutcome {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(tx).await.is_err() {
            return ReloadOutcome::Refused("the exporter is shutting down".into());
        }
        rx.await
            .unwrap_or_else(|_| ReloadOutcome::Refused("the exporter is shutting down".into()))
    }
}
