//! The HTTP server: `/metrics` from the snapshot, a landing page,
//! `/healthz`, `POST /-/reload`; TLS and basic auth from `--web.config.file`.
//!
//! No handler touches the database. `app()` returns the router so tests can
//! drive it with `oneshot` without a socket. The accept loop is ours rather
//! than `axum::serve` because a monitoring endpoint must survive hostile or
//! broken clients: it caps concurrent connections, cuts off clients that
//! send their headers too slowly, and speaks TLS when configured.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_http::timeout::TimeoutLayer;

use crate::exposition::Format;
use crate::routing::{self, Check, RequestError};
use crate::snapshot::Store;
use crate::web_config::{BasicAuth, WebConfig};

/// How long one request may take end to end; a scrape answers in
/// microseconds, so anything longer is a stuck or hostile client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client must send its request head within this time (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS handshake must finish within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; more are closed on accept. Prometheus needs
/// one per scrape; 512 leaves room for dashboards and probes.
pub const MAX_CONNECTIONS: usize = 512;

/// Largest request head accepted (bytes); a scrape sends a few hundred.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub telemetry_path: String,
    /// Runs a reload for `POST /-/reload`; `None` unless
    /// `--web.enable-lifecycle` turned the endpoint on.
    pub reload: Option<crate::exporter::Reloader>,
}

pub fn app(state: AppState) -> Router {
    let page = landing_page(&state.telemetry_path);
    Router::new()
        .route(&state.telemetry_path, get(metrics))
        .route("/", get(move || std::future::ready(Html(page.clone()))))
        .route("/healthz", get(healthz))
        .route("/-/reload", post(reload))
        .route("/primary", get(check_primary))
        .route("/replica", get(check_replica))
        .route("/health", get(check_health))
        .route("/probe", get(probe))
        .route("/api/v1/topology", get(topology))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// The router behind basic auth when the web config has users.
pub fn app_with_auth(state: AppState, auth: Option<Arc<BasicAuth>>) -> Router {
    let router = app(state);
    match auth {
        None => router,
        Some(auth) => router.layer(middleware::from_fn_with_state(auth, require_auth)),
    }
}

async fn require_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.check(header).await {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"pg_replication_exporter\"",
        )],
        "401 Unauthorized\n",
    )
        .into_response()
}

/// Serves until `shutdown` completes, then lets in-flight requests finish
/// (for at most [`REQUEST_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    web: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app_with_auth(state, web.auth.clone());
    let tls = web.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
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
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "connection limit reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let stop = stop_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => drive(TokioIo::new(stream), service, stop).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => drive(TokioIo::new(tls_stream), service, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    // Wait for open connections to finish their requests.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, permits.acquire_many(all)).await;
    Ok(())
}

/// Serves one connection, finishing gracefully when `stop` flips.
async fn drive<I>(
    io: TokioIo<I>,
    service: TowerToHyperService<Router>,
    mut stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
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
        }
    }
}

/// `POST /-/reload`: answers when the reload is done, with its outcome,
/// as Prometheus does; concurrent requests share one reload.
async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.reload {
        Some(reloader) => match reloader.reload().await {
            Ok(summary) => (
                StatusCode::OK,
                format!("configuration reloaded: {summary}\n"),
            ),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("configuration reload refused, the running configuration stays: {e}\n"),
            ),
        },
        None => (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n".to_string(),
        ),
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let body = state.store.exposition(format, gzip).await;
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            ),
        ],
        body,
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let refused = it.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
        });
        coding.eq_ignore_ascii_case("gzip") && !refused
    })
}

type Params = Query<HashMap<String, String>>;

fn request_error(e: RequestError) -> Response {
    let status = match e {
        RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
        RequestError::UnknownTarget(_) => StatusCode::NOT_FOUND,
    };
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

fn answer(state: &AppState, params: &HashMap<String, String>, check: Check) -> Response {
    let snap = match routing::pick(&state.store, params.get("target").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => return request_error(e),
    };
    let verdict = routing::judge(&state.store, &snap, check);
    let status = if verdict.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(verdict)).into_response()
}

async fn check_primary(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(&state, &params, Check::Primary)
}

async fn check_replica(State(state): State<AppState>, Query(params): Params) -> Response {
    match routing::replica_check(&params) {
        Ok(check) => answer(&state, &params, check),
        Err(e) => request_error(e),
    }
}

async fn check_health(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(&state, &params, Check::Health)
}

/// One target's families only, for Prometheus setups that list the
/// targets themselves (multi-target exporter pattern).
async fn probe(
    State(state): State<AppState>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let Some(name) = params.get("target") else {
        return request_error(RequestError::BadRequest("probe needs ?target=NAME".into()));
    };
    let Some(snap) = state.store.find(name) else {
        return request_error(RequestError::UnknownTarget(name.clone()));
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let body = crate::exposition::render(&[snap], &Default::default(), format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// The cluster view as JSON, for the topology page and scripts.
async fn topology(State(state): State<AppState>) -> Response {
    let clusters = crate::cluster::views(&state.store.all(), &state.store.cluster_config());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    Json(serde_json::json!({
        "generated_at": now,
        "version": crate::health::VERSION,
        "clusters": clusters,
    }))
    .into_response()
}

/// The live topology page: static HTML whose script polls
/// `/api/v1/topology`; no framework, readable without Grafana. Built once,
/// so that its links follow a non-default `telemetry_path`.
fn landing_page(telemetry_path: &str) -> bytes::Bytes {
    let escaped: String = telemetry_path
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect();
    include_str!("topology.html")
        .replace("href=\"/metrics\"", &format!("href=\"{escaped}\""))
        .replace(">/metrics</a>", &format!(">{escaped}</a>"))
        .into()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}

#[cfg(test)]
mod tests {
    use super::{accepts_gzip, landing_page};

    #[test]
    fn landing_page_links_the_configured_telemetry_path() -> Result<(), std::string::FromUtf8Error>
    {
        let default = landing_page("/metrics");
        assert_eq!(default.as_ref(), include_str!("topology.html").as_bytes());
        let custom = String::from_utf8(landing_page("/pg/metrics\"<x>").to_vec())?;
        assert!(custom.contains("href=\"/pg/metrics&quot;&lt;x&gt;\""));
        assert!(!custom.contains("href=\"/metrics\""));
        assert!(!custom.contains(">/metrics</a>"));
        Ok(())
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("gzip;q=0"));
    }
}
