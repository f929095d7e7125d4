//! Configuration reloads asked for over HTTP (`POST /-/reload`): the
//! handler waits for the supervisor's outcome. Reloads coalesce: one runs
//! at a time, and requests made while it runs get its outcome, so a flood
//! of requests costs one reload, not one each.

use tokio::sync::{mpsc, oneshot};

/// What a reload did, worded for the operator (never with a secret).
pub type ReloadOutcome = Result<String, String>;

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
            return Err("the exporter is shutting down".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the exporter is shutting down".into()))
    }
}
