//! Configuration: defaults, then the TOML file, then `PGREPL_*` environment
//! variables, then command-line flags, each layer overriding the one before.
//!
//! Everything a running exporter needs is checked here, before anything is
//! started, so that a typo is one clear line and exit code 2 rather than a
//! target that silently never comes up. [`loader::load`] merges the layers
//! ([`layers`], each value's origin in [`origin`]) and checks them
//! ([`validate`], passwords and TLS in [`password`]); this file holds what
//! they produce.

pub mod dsn;
pub mod file_read;
mod layers;
pub mod loader;
mod origin;
mod password;
pub mod pgpass;
#[cfg(test)]
mod tests;
pub mod tls;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use dsn::Dsn;

/// A configuration problem, worded for the operator: it names the key, file
/// or flag at fault and never contains a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        // One line, always: figment and libraries sometimes wrap.
        let message: String = message.into();
        ConfigError(message.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// Per-cluster settings for the cluster view.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Standbys that must be streaming from the primary, by `application_name`
    /// or target name; when omitted, every member but the primary. Names
    /// compare ignoring case, as PostgreSQL compares `application_name`.
    #[serde(default)]
    pub expected_standbys: Option<Vec<String>>,
    /// Opt-in heartbeat: end-to-end lag measured by a row the exporter
    /// writes on the primary and reads on every standby.
    #[serde(default)]
    pub heartbeat: Option<HeartbeatConfig>,
}

/// `[clusters.NAME.heartbeat]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Table holding one row per cluster; schema-qualified.
    #[serde(default = "default_heartbeat_table")]
    pub table: String,
    /// How often the row is updated.
    #[serde(default = "default_heartbeat_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Create the table (and grant SELECT to pg_monitor) when missing.
    #[serde(default = "default_true")]
    pub create_table: bool,
    /// The writer's connection; defaults to the primary member's DSN. The
    /// monitoring role is read-only, so this usually names another role.
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Parsed from `dsn` and `password_file` at validation.
    #[serde(skip)]
    pub writer: Option<Dsn>,
}

fn default_heartbeat_table() -> String {
    "public.pgrepl_heartbeat".into()
}

fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_true() -> bool {
    true
}

/// Values from command-line flags; they override file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen_address: Option<String>,
    pub telemetry_path: Option<String>,
}

/// A validated configuration, ready to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/metrics` listens; resolved so that a bad host fails at start.
    pub listen_address: SocketAddr,
    /// Path of the exposition; other paths answer 404.
    pub telemetry_path: String,
    /// Time between the starts of two collections of one target.
    pub collect_interval: Duration,
    /// Deadline of one collection, also sent as `statement_timeout`; always
    /// shorter than the interval so that cycles never overlap.
    pub collect_timeout: Duration,
    pub targets: Vec<Target>,
    pub clusters: BTreeMap<String, ClusterConfig>,
}

/// One PostgreSQL server to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The `target` label: unique and never empty.
    pub name: String,
    /// Connection settings, password included but never printed.
    pub dsn: Dsn,
    /// Grouping for the cluster view.
    pub cluster: Option<String>,
}

pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9839";

pub const DEFAULT_TELEMETRY_PATH: &str = "/metrics";

pub const DEFAULT_COLLECT_INTERVAL: Duration = Duration::from_secs(5);

thread_local! {
    /// Warnings found while loading (a secret others may read, an ignored
    /// `~/.pgpass`), logged once the whole configuration is valid: a
    /// refused configuration is one line, its error, and nothing else.
    static PENDING_WARNINGS: std::cell::RefCell<Vec<String>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn warn_once_loaded(warning: String) {
    PENDING_WARNINGS.with(|w| w.borrow_mut().push(warning));
}

/// `place: why`, one line: `place` names the key and where it came from.
fn at(place: &str, why: &str) -> ConfigError {
    ConfigError::new(format!("{place}: {why}"))
}

/// Accepted `collect_interval` (and heartbeat interval): below 100 ms a
/// server would be polled harder than any alert needs; above an hour the
/// derived socket timeouts pass what the kernel accepts and the data is too
/// old to alert on anyway.
pub const INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));

/// Accepted `collect_timeout`; it must also stay below the interval.
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(3600));

/// Longest password accepted: a password file holds one password, and
/// libpq's own limits are far below what a mistaken file could hold.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Paths the HTTP server answers itself; `telemetry_path` may be none of them.
pub const BUILTIN_PATHS: [&str; 8] = [
    "/",
    "/healthz",
    "/-/reload",
    "/primary",
    "/replica",
    "/health",
    "/probe",
    "/api/v1/topology",
];
