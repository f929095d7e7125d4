//! The HTTP server: `/metrics` from the snapshot, a landing page,
//! `/healthz`, `POST /-/reload`; TLS, basic auth, response headers, HTTP/2
//! and rate limiting from `--web.config.file`.
//!
//! No handler touches the database. `app()` returns the router so tests can
//! drive it with `oneshot` without a socket. The accept loop is ours rather
//! than `axum::serve` because a monitoring endpoint must survive hostile or
//! broken clients: connections are capped globally and per client address
//! (closing idle ones first, and keeping a fair share per address, see
//! [`crate::http::security::conn_limit`]), a connection must deliver its first request head
//! in time and closes after a bounded number of requests, authentication
//! runs inside the request deadline with bounded CPU and refuses at once
//! what it could not check in time (see [`crate::http::security::basic_auth`]), and
//! library warnings clients cause are folded (see [`crate::http::security::log_fold`]).

pub mod negotiate;
pub mod reload;
pub mod routing;
pub mod security;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower_http::timeout::TimeoutLayer;

use crate::http::security::basic_auth::{BasicAuth, Unavailable};
use crate::http::security::conn_limit::{ConnShared, ConnTracker, Refused};
use crate::http::security::web_config::{RateLimit, WebConfig};
use crate::render::exposition::Format;
use crate::render::exposition::Served;
use routing::{Check, RequestError};

/// How long one request may take end to end, authentication included; a
/// scrape answers in microseconds, so anything longer is a stuck or
/// hostile client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client must send its request head within this time (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A TLS handshake must finish within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A new connection must have delivered its first request head within
/// this time of being accepted, TLS handshake included, whatever the
/// protocol (HTTP/2 has no header timeout of its own).
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

use crate::http::security::conn_limit::{MAX_HTTP_CONNECTIONS, MAX_HTTP_CONNECTIONS_PER_ADDRESS};

/// Largest request head accepted (bytes); a scrape sends a few hundred.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Concurrent requests on one HTTP/2 connection.
pub const MAX_HTTP2_STREAMS: u32 = 32;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The view and its renderings: all a handler reads.
    pub published: Arc<Served>,
    pub telemetry_path: String,
    /// Runs a reload for `POST /-/reload`; `None` unless
    /// `--web.enable-lifecycle` turned the endpoint on.
    pub reload: Option<reload::Reloader>,
}

fn routes(state: AppState) -> Router {
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
        .with_state(state)
}

fn deadline() -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT)
}

/// The routes under the request deadline, without the web config: what
/// the unit tests drive with `oneshot`, no socket and no database.
#[cfg(test)]
pub fn app(state: AppState) -> Router {
    routes(state).layer(deadline())
}

/// The routes with the web config applied. From the outside in: the
/// configured headers (on every answer), the request deadline, the rate
/// limit, then basic auth, so that waiting for a password check counts
/// against the deadline.
pub fn app_with(state: AppState, web: &WebConfig) -> Router {
    let mut router = routes(state);
    if let Some(auth) = &web.auth {
        router = router.layer(middleware::from_fn_with_state(auth.clone(), require_auth));
    }
    if let Some(limit) = &web.rate_limit {
        router = router.layer(middleware::from_fn_with_state(limit.clone(), rate_limited));
    }
    router = router.layer(deadline());
    if !web.headers.is_empty() {
        let headers = Arc::new(web.headers.clone());
        router = router.layer(middleware::from_fn_with_state(headers, add_headers));
    }
    router
}

async fn require_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.check(header, peer).await {
        Ok(true) => next.run(request).await,
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"pg_replication_exporter\"",
            )],
            "401 Unauthorized\n",
        )
            .into_response(),
        Err(Unavailable::Closing) => {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
        }
        Err(Unavailable::AddressBusy { retry_after }) => refused_check(
            StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            "429 Too Many Requests: password checks from this address are already waiting\n",
        ),
        Err(Unavailable::Busy { retry_after }) => refused_check(
            StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            "503 Service Unavailable: too many password checks are waiting\n",
        ),
    }
}

/// A password check refused without waiting: with `Retry-After`, and the
/// connection closed after the answer (HTTP/1.1), so that a client told
/// to come back later does not keep a connection slot meanwhile.
fn refused_check(status: StatusCode, retry_after: Duration, body: &'static str) -> Response {
    let secs = HeaderValue::from(retry_after.as_secs().max(1));
    (
        status,
        [
            (header::RETRY_AFTER, secs),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        body,
    )
        .into_response()
}

async fn rate_limited(
    State(limit): State<Arc<RateLimit>>,
    request: Request,
    next: Next,
) -> Response {
    if limit.allow() {
        next.run(request).await
    } else {
        (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response()
    }
}

async fn add_headers(
    State(headers): State<Arc<Vec<(HeaderName, HeaderValue)>>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    for (name, value) in headers.iter() {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

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
        tokio::spawn(async move { security::log_fold::global().report_every_window(stop).await })
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
    security::log_fold::global().report();
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
    tls: Option<Arc<security::tls::TlsSettings>>,
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
/// [`crate::http::security::conn_limit::MAX_REQUESTS_PER_CONNECTION`]): the request in
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

/// Takes the request whole: the `HeaderMap` extractor would copy every
/// header of every scrape just to read two of them.
async fn metrics(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers();
    let format = negotiated_format(headers);
    let gzip = negotiate::gzip(header_values(headers, header::ACCEPT_ENCODING));
    let body = state.published.exposition(format, gzip).await;
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

/// Every value of a header that may be sent on several lines.
fn header_values(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
}

fn negotiated_format(headers: &HeaderMap) -> Format {
    negotiate::format(header_values(headers, header::ACCEPT))
}

type Params = Query<HashMap<String, String>>;

fn request_error(e: RequestError) -> Response {
    let status = match e {
        RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
        RequestError::UnknownTarget(_) => StatusCode::NOT_FOUND,
    };
    (status, Json(serde_json::json!({ "error": e.to_string() }))).into_response()
}

async fn answer(state: &AppState, params: &HashMap<String, String>, check: Check) -> Response {
    let view = state.published.view().await;
    let snap = match routing::pick(&view, params.get("target").map(String::as_str)) {
        Ok(s) => s,
        Err(e) => return request_error(e),
    };
    let verdict = routing::judge(&view, &snap, check);
    let status = if verdict.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(verdict)).into_response()
}

async fn check_primary(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(&state, &params, Check::Primary).await
}

async fn check_replica(State(state): State<AppState>, Query(params): Params) -> Response {
    match routing::replica_check(&params) {
        Ok(check) => answer(&state, &params, check).await,
        Err(e) => request_error(e),
    }
}

async fn check_health(State(state): State<AppState>, Query(params): Params) -> Response {
    answer(&state, &params, Check::Health).await
}

/// One target's families only, for Prometheus setups that list the
/// targets themselves (multi-target exporter pattern); rendered once per
/// snapshot version and shared, as `/metrics` is.
async fn probe(
    State(state): State<AppState>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let Some(name) = params.get("target") else {
        return request_error(RequestError::BadRequest("probe needs ?target=NAME".into()));
    };
    let format = negotiated_format(&headers);
    let Some(body) = state.published.probe(name, format).await else {
        return request_error(RequestError::UnknownTarget(name.clone()));
    };
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// The cluster view as JSON, for the topology page and scripts.
async fn topology(State(state): State<AppState>) -> Response {
    let view = state.published.view().await;
    let clusters = &view.clusters;
    let now = crate::model::snapshot::unix_now();
    Json(serde_json::json!({
        "generated_at": now,
        "version": crate::build_info::VERSION,
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
    include_str!("assets/topology.html")
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
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::{app, landing_page, AppState};
    use crate::model::snapshot::{Store, TargetSnapshot};
    use crate::render::exposition::Served;

    /// One target that has never answered, as right after start-up.
    fn state() -> AppState {
        let store = Arc::new(Store::new(
            vec![TargetSnapshot::initial("db1", Some("main"))],
            BTreeMap::new(),
        ));
        AppState {
            published: Arc::new(Served::new(store)),
            telemetry_path: "/metrics".into(),
            reload: None,
        }
    }

    async fn call(method: &str, uri: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("a valid request");
        let response = app(state()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_target_never_collected_reads_down_everywhere() {
        let (status, body) = call("GET", "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("pgrepl_up{target=\"db1\"} 0.0\n"), "{body}");
        assert!(
            body.contains(
                "pgrepl_cluster_member_state{cluster=\"main\",target=\"db1\",state=\"down\"} 1.0\n"
            ),
            "{body}"
        );
        let (status, body) = call("GET", "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"role\":\"down\""), "{body}");
        let (status, _) = call("GET", "/primary?target=db1").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        // The process itself is fine: liveness does not depend on targets.
        assert_eq!(call("GET", "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn bad_requests_are_refused_by_name() {
        let (status, body) = call("GET", "/primary?target=nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("nope"), "{body}");
        assert_eq!(call("GET", "/probe").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(
            call("GET", "/replica?lag=lots").await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(call("GET", "/nowhere").await.0, StatusCode::NOT_FOUND);
        // Off unless --web.enable-lifecycle.
        assert_eq!(call("POST", "/-/reload").await.0, StatusCode::FORBIDDEN);
    }

    #[test]
    fn landing_page_links_the_configured_telemetry_path() -> Result<(), std::string::FromUtf8Error>
    {
        let default = landing_page("/metrics");
        assert_eq!(
            default.as_ref(),
            include_str!("assets/topology.html").as_bytes()
        );
        let custom = String::from_utf8(landing_page("/pg/metrics\"<x>").to_vec())?;
        assert!(custom.contains("href=\"/pg/metrics&quot;&lt;x&gt;\""));
        assert!(!custom.contains("href=\"/metrics\""));
        assert!(!custom.contains(">/metrics</a>"));
        Ok(())
    }
}
