//! The collection loop: one task per target, one cycle at a time, each
//! cycle one statement under a deadline, each result published as that
//! target's snapshot.
//!
//! A slow, frozen or unreachable target only ever delays its own task: the
//! deadline bounds every cycle, the pool bounds its sessions, and `/metrics`
//! reads the snapshot, not the task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Pool, PoolError};
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio_postgres::SimpleQueryMessage;

use crate::collect::error_chain;
use crate::collect::fault::Fault;
use crate::config::{Config, Target};
use crate::model::role::Role;
use crate::model::snapshot::{unix_now, SnapshotCell, Store, TargetSnapshot};
use crate::sources::heartbeat::{HeartbeatRead, Reading, Verdict};
use crate::sources::{self, Capabilities, Sample};

/// Why a cycle failed; worded for the log line, never with a password.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("no connection: {0}")]
    Connect(String),
    #[error("query failed: {0}")]
    Query(String),
    #[error("unexpected answer: {0}")]
    Answer(String),
    #[error("collection did not finish within {0:?} (collect_timeout)")]
    Timeout(Duration),
}

/// One target's task state between cycles.
pub struct TargetCollector {
    cell: Arc<SnapshotCell>,
    target: Target,
    pool: Pool,
    store: Arc<Store>,
    interval: Duration,
    deadline: Duration,
    /// Learned on the first cycle of each connection epoch.
    capabilities: Option<Capabilities>,
    /// The statement for those capabilities, built once.
    query: String,
    last: TargetSnapshot,
    last_error: Option<String>,
    warned_waldir: bool,
    /// Consecutive failed cycles, for the retry backoff.
    failures: u32,
    /// The cluster's heartbeat, when configured. Its table's verdict comes
    /// with every collection, so a table created (or spoiled) later is
    /// noticed at the next one.
    heartbeat: Option<HeartbeatRead>,
    /// The heartbeat table's last verdict, to log a change once.
    heartbeat_verdict: Option<Verdict>,
    /// Recent readings of the standby's recovery-conflict counter.
    conflicts: crate::model::lint::ConflictWindow,
    /// The session whose last statement did not answer in time: if it
    /// times out again it is discarded (see [`TargetCollector::collect`]).
    suspect: Option<deadpool_postgres::ObjectId>,
}

impl TargetCollector {
    /// A collector for `target` under `config`'s interval, deadline and the
    /// heartbeat of its cluster. `cell` starts out with the target's last
    /// known snapshot (initial, or the one before a reload, so counters
    /// carry over).
    pub fn new(
        cell: Arc<SnapshotCell>,
        target: Target,
        pool: Pool,
        store: Arc<Store>,
        config: &Config,
    ) -> TargetCollector {
        let last = (*cell.load()).clone();
        let heartbeat = HeartbeatRead::of(config, &target);
        TargetCollector {
            cell,
            target,
            pool,
            store,
            interval: config.collect_interval,
            deadline: config.collect_timeout,
            capabilities: None,
            query: String::new(),
            last,
            last_error: None,
            warned_waldir: false,
            failures: 0,
            heartbeat,
            heartbeat_verdict: None,
            conflicts: Default::default(),
            suspect: None,
        }
    }

    /// Runs cycles until `shutdown` flips to true: one every interval while
    /// the target answers; after a failure, retries sooner with a doubling
    /// delay capped at the interval, so a server that comes back is seen
    /// quickly without hammering one that stays down.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            match crate::collect::fault::take(&self.target.name) {
                Some(Fault::Panic) => panic!("injected fault: collection task panics"),
                Some(Fault::Hang) => std::future::pending::<()>().await,
                Some(Fault::Exit) => return,
                None => {}
            }
            let started = Instant::now();
            // A bug in one cycle must not silence the target for good: the
            // cycle counts as failed and the loop goes on.
            let ok = match std::panic::AssertUnwindSafe(self.cycle())
                .catch_unwind()
                .await
            {
                Ok(ok) => ok,
                Err(_) => {
                    tracing::error!(target_name = %self.target.name,
                        "collection cycle panicked (a bug; please report it); retrying");
                    false
                }
            };
            let next = if ok {
                self.failures = 0;
                started.checked_add(self.interval)
            } else {
                self.failures = self.failures.saturating_add(1);
                let delay = retry_delay(self.interval, self.failures);
                tracing::debug!(target_name = %self.target.name, ?delay, "retrying");
                Instant::now().checked_add(delay)
            };
            // The interval is bounded by the configuration; far past any
            // clock's range the next cycle simply comes after the interval.
            let next = next.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One collection, published whatever its outcome; true on success.
    pub async fn cycle(&mut self) -> bool {
        let started = Instant::now();
        let outcome = self.collect().await;
        let duration = started.elapsed().as_secs_f64();
        let mut next = self.last.clone();
        next.collect_duration = duration;
        next.last_cycle = Instant::now();
        let ok = outcome.is_ok();
        match outcome {
            Ok(sample) => self.on_success(&mut next, sample),
            Err(err) => self.on_failure(&mut next, err),
        }
        self.store.publish(&self.cell, next.clone());
        self.last = next;
        ok
    }

    fn on_success(&mut self, next: &mut TargetSnapshot, mut sample: Sample) {
        let name = &self.target.name;
        if !self.last.up() {
            tracing::info!(target_name = %name, endpoint = %self.target.dsn.endpoint(),
                in_recovery = sample.server.in_recovery, version = %sample.server.version,
                "target is up");
        }
        if let Some(previous) = self.last.sample.as_deref() {
            if previous.server.in_recovery != sample.server.in_recovery {
                let role = Role::of_sample(Some(&sample));
                tracing::warn!(target_name = %name, %role, "target changed role");
            }
        }
        let run = sample.server_run();
        let run = (run.0.map(str::to_string), run.1.map(str::to_string));
        // A run is only recognised by both parts; without them no earlier
        // reading bounds this one.
        let known_run = run.0.is_some() && run.1.is_some();
        if known_run && self.last.last_timeline_run.as_ref() == Some(&run) {
            sample.timeline_seen = self.last.last_timeline;
        }
        if let Some(timeline) = sample.timeline() {
            if let Some(previous) = self.last_timeline() {
                if previous != timeline {
                    next.timeline_changes += 1;
                    tracing::warn!(target_name = %name, from = previous, to = timeline,
                        "target switched timeline");
                }
            }
            next.last_timeline = Some(timeline);
            next.last_timeline_run = Some(run);
        }
        next.recent_conflicts = self
            .conflicts
            .observe(unix_now(), sample.server.recovery_conflicts);
        next.last_error = None;
        next.last_success = Some(unix_now());
        next.last_in_recovery = Some(sample.server.in_recovery);
        next.sample = Some(Arc::new(sample));
        self.last_error = None;
    }

    fn last_timeline(&self) -> Option<u32> {
        self.last.last_timeline
    }

    fn on_failure(&mut self, next: &mut TargetSnapshot, err: CollectError) {
        let message = err.to_string();
        if self.last.up() || self.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(target_name = %self.target.name, endpoint = %self.target.dsn.endpoint(),
                error = %message, "target is down");
        } else {
            tracing::debug!(target_name = %self.target.name, error = %message, "target still down");
        }
        next.errors_total += 1;
        next.sample = None;
        next.last_error = Some(message.clone());
        self.last_error = Some(message);
        // The server may have been replaced (upgrade, failover to another
        // version): learn its capabilities again on the next connection.
        self.capabilities = None;
    }

    /// One collection under the deadline, the session held out here so
    /// that one which did not answer in time is dealt with:
    ///
    /// - a cancel request (libpq's `PQcancel`, bounded by the deadline) asks
    ///   the server to stop the statement, so that the next one on the
    ///   session does not queue behind it;
    /// - the session stays in the pool the first time: a deadline missed
    ///   because this process was starved of CPU (a burst of SCRAM
    ///   handshakes on the collection thread) leaves a healthy session
    ///   whose answer is already waiting, and a new one would cost another
    ///   handshake;
    /// - a session that misses the deadline again is discarded (its
    ///   backend is stopped or stuck while the server may accept new
    ///   sessions): the next cycle connects afresh, so the target is up
    ///   again within a few intervals instead of never.
    async fn collect(&mut self) -> Result<Sample, CollectError> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let client = match tokio::time::timeout_at(deadline, self.pool.get()).await {
            Ok(got) => got.map_err(describe_pool)?,
            Err(_) => return Err(CollectError::Timeout(self.deadline)),
        };
        let id = deadpool_postgres::Object::id(&client);
        match tokio::time::timeout_at(deadline, self.query(&client)).await {
            Ok(result) => {
                if self.suspect == Some(id) {
                    self.suspect = None;
                }
                result
            }
            Err(_) => {
                let cancel = cancel(&client, &self.target, self.deadline).await;
                if self.suspect == Some(id) {
                    self.suspect = None;
                    drop(deadpool_postgres::Object::take(client));
                    tracing::debug!(target_name = %self.target.name, cancel = %cancel,
                        "discarded a session that missed the deadline twice");
                } else {
                    self.suspect = Some(id);
                    tracing::debug!(target_name = %self.target.name, cancel = %cancel,
                        "the session missed the deadline; it is discarded if it does again");
                }
                Err(CollectError::Timeout(self.deadline))
            }
        }
    }

    async fn query(&mut self, client: &tokio_postgres::Client) -> Result<Sample, CollectError> {
        if self.capabilities.is_none() {
            let caps = probe(client, self.heartbeat.as_ref()).await?;
            if !caps.ls_waldir && !self.warned_waldir {
                tracing::warn!(
                    target_name = %self.target.name,
                    "the role may not run pg_ls_waldir() or pg_ls_archive_statusdir(): \
                     pgrepl_wal_directory_* and pending-archive families are skipped; \
                     GRANT pg_monitor to the exporter's role to get them"
                );
                self.warned_waldir = true;
            }
            self.query = sources::build_query(&caps, self.heartbeat.as_ref());
            self.capabilities = Some(caps);
        }
        let messages = match client.simple_query(&self.query).await {
            Ok(m) => m,
            // The heartbeat table the statement names was dropped, renamed
            // or changed since its last verdict (a name or privilege error,
            // SQLSTATE class 42): the server is fine, so the cycle runs
            // again at once without reading the table, rather than
            // showing the target down.
            Err(e)
                if self.heartbeat_names_table()
                    && e.code().is_some_and(|c| c.code().starts_with("42")) =>
            {
                tracing::debug!(target_name = %self.target.name, error = %error_chain::describe(&e),
                    "the heartbeat table changed; collecting again without it");
                self.set_heartbeat_ready(false);
                client
                    .simple_query(&self.query)
                    .await
                    .map_err(|e| CollectError::Query(error_chain::describe(&e)))?
            }
            Err(e) => return Err(CollectError::Query(error_chain::describe(&e))),
        };
        let json = first_value(&messages)
            .ok_or_else(|| CollectError::Answer("the collection query returned no row".into()))?;
        let sample = sources::parse(json).map_err(|e| CollectError::Answer(e.to_string()))?;
        if let Some(reading) = &sample.heartbeat {
            self.heartbeat_verdict_seen(reading);
        }
        Ok(sample)
    }

    /// Whether the collection statement reads the heartbeat table.
    fn heartbeat_names_table(&self) -> bool {
        self.heartbeat.is_some() && self.capabilities.is_some_and(|c| c.heartbeat_table)
    }

    /// Rebuilds the statement to read the heartbeat table or not.
    fn set_heartbeat_ready(&mut self, ready: bool) {
        if let Some(caps) = self.capabilities.as_mut() {
            caps.heartbeat_table = ready;
            self.query = sources::build_query(caps, self.heartbeat.as_ref());
        }
    }

    /// Follows the heartbeat table's verdict of this collection: the next
    /// statement reads the table only while it is trusted, and a change is
    /// logged once.
    fn heartbeat_verdict_seen(&mut self, reading: &Reading) {
        let verdict = &reading.verdict;
        let ready = *verdict == Verdict::Ok;
        if self.heartbeat_names_table() != ready {
            self.set_heartbeat_ready(ready);
        }
        if self.heartbeat_verdict.as_ref() == Some(verdict) {
            return;
        }
        let table = self
            .heartbeat
            .as_ref()
            .map(|h| h.table.as_str())
            .unwrap_or("");
        match verdict {
            Verdict::Untrusted(why) => tracing::warn!(target_name = %self.target.name, %table,
                "the heartbeat table is not read: it {why}; whatever it runs would run with the \
                 privileges of whoever writes into it, and its owner decides what it says"),
            Verdict::Denied => tracing::warn!(target_name = %self.target.name, %table,
                "the heartbeat table is not read: the role may not read it (GRANT SELECT ON it, \
                 and USAGE on its schema, TO pg_monitor)"),
            Verdict::Ok if self.heartbeat_verdict.is_some() => {
                tracing::info!(target_name = %self.target.name, %table, "the heartbeat table is read");
            }
            Verdict::Ok | Verdict::Missing => {}
        }
        self.heartbeat_verdict = Some(verdict.clone());
    }
}

async fn probe(
    client: &tokio_postgres::Client,
    heartbeat: Option<&HeartbeatRead>,
) -> Result<Capabilities, CollectError> {
    let messages = client
        .simple_query(&sources::capabilities_sql(heartbeat))
        .await
        .map_err(|e| CollectError::Query(error_chain::describe(&e)))?;
    let json = first_value(&messages)
        .ok_or_else(|| CollectError::Answer("the capability query returned no row".into()))?;
    let caps = sources::parse_capabilities(json)
        .map_err(|e| CollectError::Answer(format!("unreadable capability probe: {e}")))?;
    if caps.version_num < 100000 {
        return Err(CollectError::Answer(format!(
            "PostgreSQL {} is older than 10, which this exporter needs",
            caps.version_num
        )));
    }
    Ok(caps)
}

/// Sends a cancel request for the statement running on `client`, waiting
/// at most `deadline`, and says how it went (for the log). The request
/// goes to the postmaster, which signals the session's backend; a backend
/// that is idle by then ignores it.
async fn cancel(client: &tokio_postgres::Client, target: &Target, deadline: Duration) -> String {
    let token = client.cancel_token();
    match crate::config::tls::connector(&target.dsn.tls) {
        Ok(tls) => match tokio::time::timeout(deadline, token.cancel_query(tls)).await {
            Ok(Ok(())) => "sent".to_string(),
            Ok(Err(e)) => format!("failed: {}", error_chain::describe(&e)),
            Err(_) => format!("not answered within {deadline:?}"),
        },
        Err(e) => format!("not sent: {e}"),
    }
}

/// Delay before retry `failures` (1, 2, ...): an eighth of the interval
/// (at least 100 ms), doubling, never more than the interval.
pub fn retry_delay(interval: Duration, failures: u32) -> Duration {
    let base = (interval / 8).max(Duration::from_millis(100));
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(interval)
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<&str> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.try_get(0).ok().flatten(),
        _ => None,
    })
}

fn describe_pool(err: PoolError) -> CollectError {
    match err {
        PoolError::Backend(e) => CollectError::Connect(error_chain::describe(&e)),
        PoolError::Timeout(kind) => CollectError::Connect(format!("timed out ({kind:?})")),
        other => CollectError::Connect(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_interval() {
        let i = Duration::from_secs(8);
        let delays: Vec<u64> = (1..=6)
            .map(|n| retry_delay(i, n).as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(
            retry_delay(Duration::from_millis(500), 1),
            Duration::from_millis(100)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(1), 40),
            Duration::from_secs(1)
        );
    }
}
