//! The HTTP server: `/metrics` from the view, the topology page and API,
//! the routing checks, `/probe`, `/healthz`, `POST /-/reload`.
//!
//! No handler touches the database: each reads the view the model
//! published (`crate::model::published`). [`routes`] holds the router and
//! its handlers (tests drive it with `oneshot`, without a socket);
//! [`server`] the accept loop, ours rather than `axum::serve` because a
//! monitoring endpoint must survive hostile or broken clients: connections
//! are capped globally and per client address (closing idle ones first, and
//! keeping a fair share per address, see `security::conn_limit`), a
//! connection must deliver its first request head in time and closes after
//! a bounded number of requests, authentication runs inside the request
//! deadline with bounded CPU and refuses at once what it could not check in
//! time (see `security::basic_auth`), and library warnings clients cause are
//! folded (see `security::log_fold`). [`security`] holds all of that, and
//! what `--web.config.file` sets up (TLS, basic auth, headers, HTTP/2, a
//! rate limit).

pub mod negotiate;
pub mod reload;
mod routes;
pub mod routing;
pub mod security;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use crate::render::exposition::Served;

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
