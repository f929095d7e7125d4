//! Wiring: binds the listener, runs the collection tasks on a runtime of
//! their own and the HTTP server on the main one, applies configuration
//! reloads (SIGHUP, or `POST /-/reload` with `--web.enable-lifecycle`),
//! restarts collection tasks that die or hang, and stops everything on
//! shutdown.
//!
//! Collection runs on its own runtime so that nothing a database does (a
//! slow TLS or SCRAM handshake burns CPU on the thread that runs it) can
//! delay an HTTP answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::collect::heartbeat_writer::Writer;
use crate::collect::pool;
use crate::collect::task::TargetCollector;
use crate::config::{self, Config, HeartbeatConfig, Overrides, Target};
use crate::http::reload::{Changes, ReloadOutcome, Reloader, Requests};
use crate::http::security::web_config::WebConfig;
use crate::http::{self, AppState};
use crate::model::snapshot::{
    unix_now, watchdog_limit, ReloadStatus, SnapshotCell, Store, TargetSnapshot,
};
use crate::sources::heartbeat::HeartbeatRead;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen_address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("target {target:?}: {message}")]
    Target { target: String, message: String },
    #[error("starting the collection runtime: {0}")]
    Runtime(std::io::Error),
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Binds first, so that a port in use fails before anything else starts.
pub async fn bind(config: &Config) -> Result<TcpListener, StartError> {
    TcpListener::bind(config.listen_address)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen_address,
            source,
        })
}

/// Everything `run` needs besides the configuration.
pub struct Runtime {
    pub listener: TcpListener,
    pub web: WebConfig,
    /// Where a reload re-reads the configuration from; `None` disables reloads.
    pub overrides: Option<Overrides>,
    /// `--web.enable-lifecycle`: whether `POST /-/reload` may reload.
    pub lifecycle: bool,
}

/// How often the supervisor looks for dead or hung collection tasks.
const WATCHDOG_TICK: Duration = Duration::from_secs(1);

/// Runs the exporter until `shutdown` completes.
pub async fn run(
    config: Config,
    runtime: Runtime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = Arc::new(Store::new(Vec::new(), Default::default()));
    let collect_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pgrepl-collect")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let mut supervisor = Supervisor::new(store.clone(), collect_runtime.handle().clone());
    if let Err(e) = supervisor.apply(config.clone()) {
        collect_runtime.shutdown_background();
        return Err(e);
    }
    if let Ok(addr) = runtime.listener.local_addr() {
        tracing::info!(%addr, path = %config.telemetry_path, targets = config.targets.len(),
            tls = runtime.web.tls.is_some(), basic_auth = runtime.web.auth.is_some(),
            lifecycle = runtime.lifecycle, "pg_replication_exporter listening");
    }
    let (reloader, reload_rx) = Reloader::channel();
    let state = AppState {
        published: Arc::new(crate::render::exposition::Served::new(store.clone())),
        telemetry_path: config.telemetry_path.clone(),
        reload: runtime.lifecycle.then(|| reloader.clone()),
    };
    let (done_tx, done_rx) = watch::channel(false);
    let supervising = tokio::spawn(supervise(supervisor, runtime.overrides, reload_rx, done_rx));
    let served = http::server::serve(runtime.listener, state, runtime.web, shutdown).await;
    let _ = done_tx.send(true);
    let _ = supervising.await;
    collect_runtime.shutdown_background();
    tracing::info!("pg_replication_exporter stopped");
    served.map_err(StartError::Serve)
}

/// The supervisor's loop: reloads, the watchdog, shutdown. Reading a new
/// configuration runs on a blocking thread while this loop goes on, so
/// that whatever a reload meets (a slow disk, a stuck mount; every file
/// read has a deadline of its own) the watchdog keeps ticking and shutdown
/// is seen at once. A panic in a reload is caught and refuses that reload:
/// the running configuration stays, and so does the watchdog.
async fn supervise(
    mut supervisor: Supervisor,
    overrides: Option<Overrides>,
    mut requests: Requests,
    mut done: watch::Receiver<bool>,
) {
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(WATCHDOG_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The configuration being read, who waits for its outcome, and
    // whether a SIGHUP came in meanwhile (the file may have changed again
    // since it was read: another reload follows).
    let mut loading: Option<JoinHandle<Result<Config, config::ConfigError>>> = None;
    let mut waiters: Vec<oneshot::Sender<ReloadOutcome>> = Vec::new();
    let mut again = false;
    loop {
        let mut start = false;
        tokio::select! {
            _ = done.changed() => break,
            _ = tick.tick() => supervisor.watchdog(Instant::now()),
            _ = hangup.recv() => {
                if loading.is_some() {
                    again = true;
                } else {
                    start = true;
                }
            }
            request = requests.recv() => match request {
                // Requests made while a reload runs get its outcome.
                Some(w) => {
                    waiters.push(w);
                    start = loading.is_none();
                }
                None => break,
            },
            loaded = async {
                match loading.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            }, if loading.is_some() => {
                loading = None;
                let outcome = finish_reload(&mut supervisor, loaded);
                // So do the ones already queued.
                while let Ok(w) = requests.try_recv() {
                    waiters.push(w);
                }
                for w in waiters.drain(..) {
                    let _ = w.send(outcome.clone());
                }
                start = std::mem::take(&mut again);
            }
        }
        if !start {
            continue;
        }
        match &overrides {
            Some(o) => {
                let o = o.clone();
                loading = Some(tokio::task::spawn_blocking(move || {
                    config::loader::load(&o)
                }));
            }
            None => {
                let outcome = ReloadOutcome::Refused(
                    "reloading is not available (no configuration source)".to_string(),
                );
                for w in waiters.drain(..) {
                    let _ = w.send(outcome.clone());
                }
            }
        }
    }
    supervisor.stop_all();
}

/// Applies a configuration read for a reload; any failure keeps the
/// running one and is logged and recorded for
/// `pgrepl_config_last_reload_successful`.
fn finish_reload(
    supervisor: &mut Supervisor,
    loaded: Result<Result<Config, config::ConfigError>, tokio::task::JoinError>,
) -> ReloadOutcome {
    let outcome = match loaded {
        Ok(Ok(new)) => {
            let running = supervisor.config.as_ref();
            if let Some(running) = running {
                if new.listen_address != running.listen_address
                    || new.telemetry_path != running.telemetry_path
                {
                    tracing::warn!("listen_address and telemetry_path change only with a restart; keeping the current ones");
                }
            }
            // Building pools parses the certificates read with the
            // configuration (no file is read here): CPU only, kept off the
            // HTTP side's way all the same.
            let applied = tokio::task::block_in_place(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| supervisor.apply(new)))
            });
            match applied {
                Ok(Ok(changes)) => ReloadOutcome::Applied(changes),
                Ok(Err(e)) => ReloadOutcome::Refused(e.to_string()),
                Err(_) => ReloadOutcome::Refused(
                    "applying the configuration panicked (a bug; please report it)".into(),
                ),
            }
        }
        Ok(Err(e)) => ReloadOutcome::Refused(e.to_string()),
        Err(e) => ReloadOutcome::Refused(format!("reading the configuration failed: {e}")),
    };
    let store = &supervisor.store;
    match &outcome {
        ReloadOutcome::Applied(changes) => {
            tracing::info!(%changes, "configuration reloaded");
            store.set_reload(ReloadStatus {
                successful: true,
                last_success: unix_now(),
            });
        }
        ReloadOutcome::Refused(e) => {
            tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
            let mut status = store.reload_status();
            status.successful = false;
            store.set_reload(status);
        }
    }
    outcome
}

/// One target's running collection task.
struct Running {
    target: Target,
    cell: Arc<SnapshotCell>,
    pool: Pool,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Owns the collection tasks and the heartbeat writers of the running
/// configuration.
struct Supervisor {
    store: Arc<Store>,
    /// The collection runtime, where every task that talks to a database runs.
    handle: tokio::runtime::Handle,
    config: Option<Config>,
    running: Vec<Running>,
    writers: Vec<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Supervisor {
    fn new(store: Arc<Store>, handle: tokio::runtime::Handle) -> Supervisor {
        Supervisor {
            store,
            handle,
            config: None,
            running: Vec::new(),
            writers: Vec::new(),
        }
    }

    /// Makes `new` the running configuration. Targets whose settings did
    /// not change keep their task, session and counters; changed and new
    /// ones get a new task; removed ones stop. Everything that can fail
    /// (building pools) happens before anything running is touched, so an
    /// error leaves the running configuration as it was.
    fn apply(&mut self, new: Config) -> Result<Changes, StartError> {
        let old = self.config.as_ref();
        let same_timing = old.is_some_and(|o| {
            o.collect_interval == new.collect_interval && o.collect_timeout == new.collect_timeout
        });
        // A task reads its target, the timing and its cluster's heartbeat
        // table, nothing else of the configuration: any other change (an
        // `expected_standbys` list, another cluster) keeps it running, so
        // that a reload never shows a healthy target down while it restarts.
        let keep = |t: &Target| {
            same_timing
                && old.is_some_and(|o| heartbeat_table(o, t) == heartbeat_table(&new, t))
                && self.running.iter().any(|r| r.target == *t)
        };
        // Build the pools of what must start, before stopping anything.
        let mut pools = Vec::with_capacity(new.targets.len());
        for target in &new.targets {
            if keep(target) {
                pools.push(None);
                continue;
            }
            let pool =
                pool::build(target, new.collect_timeout).map_err(|e| StartError::Target {
                    target: target.name.clone(),
                    message: e.to_string(),
                })?;
            pools.push(Some(pool));
        }
        if old.is_some_and(|o| o.clusters == new.clusters)
            && pools.iter().all(Option::is_none)
            && self.running.len() == new.targets.len()
        {
            self.config = Some(new);
            return Ok(Changes::None);
        }

        let previous = self.store.all_raw();
        let mut old_running: Vec<Running> = std::mem::take(&mut self.running);
        let (mut kept, mut started, mut removed) = (0, 0, 0);
        for (target, pool) in new.targets.iter().zip(pools) {
            match pool {
                None => {
                    let Some(i) = old_running.iter().position(|r| r.target == *target) else {
                        continue;
                    };
                    self.running.push(old_running.swap_remove(i));
                    kept += 1;
                }
                Some(pool) => {
                    let carried = previous.iter().find(|p| p.name == target.name);
                    let snapshot = initial_snapshot(target, &new, carried.map(|c| &**c));
                    let cell = Arc::new(SnapshotCell::new(snapshot));
                    self.running
                        .push(self.spawn(target.clone(), cell, pool, &new));
                    started += 1;
                }
            }
        }
        for r in old_running {
            r.stop();
            removed += 1;
        }
        self.store.install(
            self.running.iter().map(|r| r.cell.clone()).collect(),
            new.clusters.clone(),
        );
        if old.is_none_or(|o| writers_of(o) != writers_of(&new)) {
            self.restart_writers(&new);
        }
        self.config = Some(new);
        Ok(Changes::Targets {
            kept,
            started,
            stopped: removed,
        })
    }

    fn spawn(
        &self,
        target: Target,
        cell: Arc<SnapshotCell>,
        pool: Pool,
        config: &Config,
    ) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let collector = TargetCollector::new(
            cell.clone(),
            target.clone(),
            pool.clone(),
            self.store.clone(),
            config,
        );
        let task = self.handle.spawn(collector.run(stop_rx));
        Running {
            target,
            cell,
            pool,
            stop,
            task,
        }
    }

    fn restart_writers(&mut self, config: &Config) {
        for (stop, task) in self.writers.drain(..) {
            let _ = stop.send(true);
            task.abort();
        }
        self.store.clear_heartbeat_writers();
        for (cluster, hb, members) in writers_of(config) {
            let writer = Writer::new(cluster.clone(), hb.clone(), members, self.store.clone());
            let (stop, stop_rx) = watch::channel(false);
            let task = self.handle.spawn(writer.run(stop_rx));
            self.writers.push((stop, task));
        }
    }

    /// Restarts every collection task that died (it panicked outside a
    /// cycle, or returned) or that completed no cycle within its limit
    /// (hung). Readers already see such a target as down, whatever happens
    /// here (see [`TargetSnapshot::as_of`]); this brings it back.
    fn watchdog(&mut self, now: Instant) {
        let restart: Vec<(usize, &'static str)> = self
            .running
            .iter()
            .enumerate()
            .filter(|(_, r)| !crate::collect::fault::restart_suppressed(&r.target.name))
            .filter_map(|(i, r)| {
                if r.task.is_finished() {
                    Some((i, "the collection task died"))
                } else if r.cell.load().is_stale(now) {
                    Some((i, "the collection task completed no cycle within collect_interval + collect_timeout + grace"))
                } else {
                    None
                }
            })
            .collect();
        if restart.is_empty() {
            return;
        }
        let Some(config) = self.config.clone() else {
            return;
        };
        for (i, why) in restart {
            let r = &self.running[i];
            tracing::error!(target_name = %r.target.name, why,
                "restarting the collection task (a bug; please report it)");
            r.task.abort();
            let mut snapshot = (*r.cell.load()).clone();
            snapshot.restarts += 1;
            snapshot.sample = None;
            snapshot.last_error = Some(format!("{why}; restarted by the watchdog"));
            snapshot.last_cycle = Instant::now();
            self.store.publish(&r.cell, snapshot);
            let (target, cell, pool) = (r.target.clone(), r.cell.clone(), r.pool.clone());
            self.running[i] = self.spawn(target, cell, pool, &config);
        }
    }

    fn stop_all(&mut self) {
        for r in self.running.drain(..) {
            r.stop();
        }
        for (stop, task) in self.writers.drain(..) {
            let _ = stop.send(true);
            task.abort();
        }
    }
}

impl Running {
    fn stop(self) {
        let _ = self.stop.send(true);
        // A cycle in flight is cut off: its session is dropped with it.
        self.task.abort();
    }
}

/// The heartbeat a target's collection reads (table and trusted writer
/// roles), if its cluster has one.
fn heartbeat_table(config: &Config, target: &Target) -> Option<HeartbeatRead> {
    HeartbeatRead::of(config, target)
}

/// The heartbeat writers a configuration asks for: cluster, settings and
/// members (the writer looks for the primary among them).
fn writers_of(config: &Config) -> Vec<(&String, &HeartbeatConfig, Vec<Target>)> {
    config
        .clusters
        .iter()
        .filter_map(|(cluster, settings)| {
            let members = config
                .targets
                .iter()
                .filter(|t| t.cluster.as_ref() == Some(cluster))
                .cloned()
                .collect();
            Some((cluster, settings.heartbeat.as_ref()?, members))
        })
        .collect()
}

/// The snapshot a (re)started target begins with: down, nothing known
/// yet, its counters carried over from a previous run under the same name.
fn initial_snapshot(
    target: &Target,
    config: &Config,
    previous: Option<&TargetSnapshot>,
) -> TargetSnapshot {
    let mut snap = match previous {
        Some(p) => {
            let mut s = p.clone();
            // Nothing collected under the new settings vouches for it yet.
            s.sample = None;
            s
        }
        None => TargetSnapshot::initial(&target.name, target.cluster.as_deref()),
    };
    snap.cluster = target.cluster.clone();
    snap.endpoint = target.dsn.endpoint();
    snap.interval = config.collect_interval;
    snap.fresh_for = watchdog_limit(config.collect_interval, config.collect_timeout);
    snap.last_cycle = Instant::now();
    snap
}

/// SIGHUP as a stream; never fires where there is none.
struct Hangup(Option<tokio::signal::unix::Signal>);

impl Hangup {
    async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

fn hangup_signal() -> Hangup {
    Hangup(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
