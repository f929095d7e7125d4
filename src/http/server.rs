//! The accept loop and each connection: admitted under the connection
//! limits, its TLS handshake and first request head under deadlines,
//! HTTP/1.1, or HTTP/2 when ALPN chose it, and a graceful end on shutdown
//! or when its request budget is spent.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::routes::app_with;
use super::security::conn_limit::{
    ConnShared, ConnTracker, Refused, MAX_HTTP_CONNECTIONS, MAX_HTTP_CONNECTIONS_PER_ADDRESS,
};
use super::security::log_fold;
use super::security::tls::TlsSettings;
use super::security::web_config::WebConfig;
use super::{
    AppState, FIRST_REQUEST_TIMEOUT, HEADER_READ_TIMEOUT, MAX_HEADER_BYTES, MAX_HTTP2_STREAMS,
    REQUEST_TIMEOUT, TLS_HANDSHAKE_TIMEOUT,
};

/// Serves until `shutdown` completes, then lets in-flight requests finish
/// (for at most [`REQUEST_TIMEOUT`]); password checks still waiting give up
/// at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    web: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app_with(state, &web);
    let tracker = ConnTracker::new(MAX_HTTP_CONNECTIONS, MAX_HTTP_CONNECTIONS_PER_ADDRESS);
    let (stop_tx, stop_rx) = watch::channel(false);
    let reloader = web.tls.clone().map(|tls| {
        let stop = stop_rx.clone();
        tokio::spawn(async move { tls.watch_files(stop).await })
    });
    let folded = {
        let stop = stop_rx.clone();
        tokio::spawn(async move { log_fold::global().report_every_window(stop).await })
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off a bit
                    // rather than spin; the listener itself stays usable.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let permit = match tracker.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                let why = match why {
                    Refused::PerAddress => "per-address",
                    Refused::Full => "global",
                };
                tracing::debug!(%peer, limit = why, "connection limit reached, no share to take; closing");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop_rx.clone();
        let tls = web.tls.clone();
        tokio::spawn(async move {
            let conn = permit.shared.clone();
            let work = connection(stream, peer, tls, router, conn.clone(), stop);
            tokio::select! {
                _ = work => {}
                _ = conn.evicted() => {}
                _ = first_request_overdue(&conn) => {
                    tracing::debug!(%peer, "no request within {FIRST_REQUEST_TIMEOUT:?}; closing");
                }
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    if let Some(auth) = &web.auth {
        auth.close();
    }
    // Wait for open connections to finish their requests.
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, tracker.drained()).await;
    folded.abort();
    // What was left out since the last report, before the process ends.
    log_fold::global().report();
    if let Some(task) = reloader {
        task.abort();
    }
    Ok(())
}

/// Resolves if the connection has not delivered a request head by
/// [`FIRST_REQUEST_TIMEOUT`]; otherwise never.
async fn first_request_overdue(conn: &ConnShared) {
    tokio::time::sleep(FIRST_REQUEST_TIMEOUT).await;
    if conn.is_fresh() {
        return;
    }
    std::future::pending::<()>().await;
}

/// One connection: the TLS handshake when configured, then HTTP/1.1, or
/// HTTP/2 when ALPN chose it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<TlsSettings>>,
    router: Router,
    conn: Arc<ConnShared>,
    stop: watch::Receiver<bool>,
) {
    let shared = conn.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let activity = conn.begin();
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                let mut response = tower::Service::call(&mut router, request).await;
                if activity.is_last() {
                    // HTTP/1.1 closes after this answer, and says so; HTTP/2
                    // drops the header and closes by GOAWAY (see `drive`).
                    if let Ok(response) = &mut response {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                }
                drop(activity);
                response
            }
        });
    let Some(tls) = tls else {
        return drive(http1(TokioIo::new(stream), service), stop, &shared).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    let h2 = tls.http2 && stream.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2 {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_HTTP2_STREAMS)
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
        drive(
            builder.serve_connection(TokioIo::new(stream), service),
            stop,
            &shared,
        )
        .await;
    } else {
        drive(http1(TokioIo::new(stream), service), stop, &shared).await;
    }
}

fn http1<I, S>(io: TokioIo<I>, service: S) -> hyper::server::conn::http1::Connection<TokioIo<I>, S>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = axum::body::Body>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .keep_alive(true);
    builder.serve_connection(io, service)
}

/// Serves one connection, finishing gracefully when `stop` flips or when
/// it has used up its requests (see
/// [`super::security::conn_limit::MAX_REQUESTS_PER_CONNECTION`]): the request in
/// progress is answered, pipelined ones after it are not.
async fn drive<C>(conn: C, mut stop: watch::Receiver<bool>, shared: &ConnShared)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = shared.retired(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
