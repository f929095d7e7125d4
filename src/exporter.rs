//! Wiring: binds the listener, starts one collection task per target and
//! the HTTP server, and stops them all on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::collection::TargetCollector;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::pool;
use crate::snapshot::{Store, TargetSnapshot};

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

/// Runs the exporter on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let store = Arc::new(Store::new(
        config
            .targets
            .iter()
            .map(|t| TargetSnapshot::initial(&t.name, t.cluster.as_deref()))
            .collect(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (index, target) in config.targets.iter().enumerate() {
        let pool = pool::build(target, config.collect_timeout).map_err(|e| StartError::Target {
            target: target.name.clone(),
            message: e.to_string(),
        })?;
        let collector = TargetCollector::new(
            index,
            target.clone(),
            pool,
            store.clone(),
            config.collect_interval,
            config.collect_timeout,
        );
        tasks.spawn(collector.run(stop_rx.clone()));
    }
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, path = %config.telemetry_path, targets = config.targets.len(),
            "pg_replication_exporter listening");
    }
    let state = AppState {
        store,
        telemetry_path: config.telemetry_path.clone(),
    };
    let served = http::serve(listener, state, shutdown).await;
    let _ = stop_tx.send(true);
    tasks.shutdown().await;
    tracing::info!("pg_replication_exporter stopped");
    served.map_err(StartError::Serve)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
