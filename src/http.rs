//! The HTTP server: `/metrics` from the snapshot, a landing page, `/healthz`.
//!
//! No handler touches the database. `app()` returns the router so tests can
//! drive it with `oneshot` without a socket.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::exposition::Format;
use crate::snapshot::Store;

/// How long one request may take end to end; a scrape answers in
/// microseconds, so anything longer is a stuck or hostile client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub telemetry_path: String,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route(&state.telemetry_path, get(metrics))
        .route("/", get(landing))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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

async fn landing(State(state): State<AppState>) -> Html<String> {
    let snaps = state.store.all();
    let mut rows = String::new();
    for s in &snaps {
        let role = match s.sample.as_deref() {
            None => "down",
            Some(sample) if sample.server.in_recovery => "standby",
            Some(_) => "primary",
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&s.name),
            role
        ));
    }
    let path = escape(&state.telemetry_path);
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>pg_replication_exporter</title></head>\
         <body><h1>pg_replication_exporter</h1>\
         <p><a href=\"{path}\">Metrics</a> · <a href=\"/healthz\">Health</a></p>\
         <table><tr><th>target</th><th>role</th></tr>{rows}</table>\
         <p>version {}</p></body></html>",
        crate::health::VERSION
    ))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "404 page not found\n")
}

/// Minimal HTML escaping for target names shown on the landing page.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("gzip;q=0"));
    }
}
