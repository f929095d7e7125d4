//! Wiring: binds the listener, runs one collection task per target and the
//! HTTP server, reloads the configuration on SIGHUP or `POST /-/reload`, and
//! stops everything on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::collection::TargetCollector;
use crate::config::{self, Config, Overrides};
use crate::heartbeat::Writer;
use crate::http::{self, AppState};
use crate::pool;
use crate::snapshot::{Store, TargetSnapshot};
use crate::web_config::WebConfig;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listen_address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("target {target:?}: {message}")]
    Target { target: String, message: String },
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
}

/// The collection tasks of one configuration generation.
struct Collectors {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Collectors {
    async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.tasks.shutdown().await;
    }
}

/// Builds the pools and starts a task per target. Snapshots of targets that
/// keep their name carry over, so counters survive a reload.
fn start_collectors(config: &Config, store: &Arc<Store>) -> Result<Collectors, StartError> {
    let previous = store.all();
    let mut pools = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        pools.push(pool::build(target, config.collect_timeout).map_err(|e| {
            StartError::Target {
                target: target.name.clone(),
                message: e.to_string(),
            }
        })?);
    }
    let initial = config
        .targets
        .iter()
        .map(|t| {
            let mut snap = previous
                .iter()
                .find(|p| p.name == t.name)
                .map(|p| (**p).clone())
                .unwrap_or_else(|| TargetSnapshot::initial(&t.name, t.cluster.as_deref()));
            snap.cluster = t.cluster.clone();
            snap.endpoint = t.dsn.endpoint();
            snap
        })
        .collect();
    let slots = store.replace(initial, config.clusters.clone());
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for ((target, pool), slot) in config.targets.iter().zip(pools).zip(slots) {
        let collector = TargetCollector::new(slot, target.clone(), pool, store.clone(), config);
        tasks.spawn(collector.run(stop_rx.clone()));
    }
    for (cluster, settings) in &config.clusters {
        let Some(hb) = &settings.heartbeat else {
            continue;
        };
        let members = config
            .targets
            .iter()
            .filter(|t| t.cluster.as_ref() == Some(cluster))
            .cloned()
            .collect();
        let writer = Writer::new(cluster.clone(), hb.clone(), members, store.clone());
        tasks.spawn(writer.run(stop_rx.clone()));
    }
    Ok(Collectors { stop, tasks })
}

/// Runs the exporter until `shutdown` completes.
pub async fn run(
    config: Config,
    runtime: Runtime,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = Arc::new(Store::new(Vec::new(), Default::default()));
    let collectors = start_collectors(&config, &store)?;
    let reload = Arc::new(Notify::new());
    if let Ok(addr) = runtime.listener.local_addr() {
        tracing::info!(%addr, path = %config.telemetry_path, targets = config.targets.len(),
            tls = runtime.web.tls.is_some(), basic_auth = runtime.web.auth.is_some(),
            "pg_replication_exporter listening");
    }
    let state = AppState {
        store: store.clone(),
        telemetry_path: config.telemetry_path.clone(),
        reload: runtime.overrides.is_some().then(|| reload.clone()),
    };
    let (done_tx, done_rx) = watch::channel(false);
    let supervisor = tokio::spawn(supervise(
        config,
        runtime.overrides,
        store,
        collectors,
        reload,
        done_rx,
    ));
    let served = http::serve(runtime.listener, state, runtime.web, shutdown).await;
    let _ = done_tx.send(true);
    let _ = supervisor.await;
    tracing::info!("pg_replication_exporter stopped");
    served.map_err(StartError::Serve)
}

/// Owns the running collectors; swaps them on reload, stops them at the end.
async fn supervise(
    mut config: Config,
    overrides: Option<Overrides>,
    store: Arc<Store>,
    mut collectors: Collectors,
    reload: Arc<Notify>,
    mut done: watch::Receiver<bool>,
) {
    let mut hangup = hangup_signal();
    loop {
        tokio::select! {
            _ = reload.notified() => {}
            _ = hangup.recv() => {}
            _ = done.changed() => break,
        }
        let Some(overrides) = overrides.clone() else {
            continue;
        };
        let loaded = tokio::task::spawn_blocking(move || config::load(&overrides)).await;
        let new = match loaded {
            Ok(Ok(new)) => new,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed");
                continue;
            }
        };
        if new.listen_address != config.listen_address
            || new.telemetry_path != config.telemetry_path
        {
            tracing::warn!("listen_address and telemetry_path change only with a restart; keeping the current ones");
        }
        collectors.stop().await;
        match start_collectors(&new, &store) {
            Ok(c) => {
                tracing::info!(targets = new.targets.len(), "configuration reloaded");
                collectors = c;
                config = new;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; restarting the previous one");
                match start_collectors(&config, &store) {
                    Ok(c) => collectors = c,
                    Err(e) => {
                        tracing::error!(error = %e, "the previous configuration failed too");
                        return;
                    }
                }
            }
        }
    }
    collectors.stop().await;
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
