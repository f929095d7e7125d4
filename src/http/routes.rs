//! The router: which path answers what, from the published view, and the
//! layers `--web.config.file` puts around it (basic auth, a rate limit,
//! response headers), all under the request deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::timeout::TimeoutLayer;

use super::reload::ReloadOutcome;
use super::routing::{self, Check, RequestError};
use super::security::basic_auth::{BasicAuth, Unavailable};
use super::security::web_config::{RateLimit, WebConfig};
use super::{negotiate, AppState, REQUEST_TIMEOUT};
use crate::render::exposition::Format;

fn routes(state: AppState) -> Router {
    let page = landing_page(&state.telemetry_path);
    Router::new()
        .route(&state.telemetry_path, get(metrics))
        .route("/", get(move || std::future::ready(Html(page.clone()))))
        .route("/healthz", get(healthz))
        .route("/-/reload", post(reload_endpoint))
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

/// `POST /-/reload`: answers when the reload is done, with its outcome,
/// as Prometheus does; concurrent requests share one reload.
async fn reload_endpoint(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.reload {
        Some(reloader) => match reloader.reload().await {
            ReloadOutcome::Applied(changes) => (
                StatusCode::OK,
                format!("configuration reloaded: {changes}\n"),
            ),
            ReloadOutcome::Refused(e) => (
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

    use super::{app, landing_page};
    use crate::http::AppState;
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
