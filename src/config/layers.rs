//! The layers of the configuration, merged by figment: built-in
//! defaults, the TOML file (`--config`), `PGREPL_*` variables, then the two
//! flags that override a key; and the file itself, read bounded and
//! checked before figment sees it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::dsn::Dsn;
use super::file_read;
use super::{
    warn_once_loaded, ClusterConfig, ConfigError, DEFAULT_COLLECT_INTERVAL, DEFAULT_LISTEN_ADDRESS,
    DEFAULT_TELEMETRY_PATH,
};

/// Environment variables read directly (the single-target mode) or by clap
/// (flags); figment must not see them or they would be unknown keys.
pub(super) const ENV_NOT_FOR_FIGMENT: [&str; 10] = [
    "DSN",
    "PASSWORD_FILE",
    "TARGET",
    "CLUSTER",
    "CONFIG",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WEB_CONFIG_FILE",
    "WORKER_THREADS",
    "WEB_ENABLE_LIFECYCLE",
];

/// The file and environment layer, as written by the user.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(deserialize_with = "lenient_string")]
    pub(super) listen_address: String,
    #[serde(deserialize_with = "lenient_string")]
    pub(super) telemetry_path: String,
    #[serde(with = "humantime_serde")]
    pub(super) collect_interval: Duration,
    #[serde(default, with = "humantime_serde::option")]
    pub(super) collect_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) targets: Vec<RawTarget>,
    #[serde(default)]
    pub(super) clusters: BTreeMap<String, ClusterConfig>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) name: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub(super) dsn: String,
    #[serde(default)]
    pub(super) password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub(super) cluster: Option<String>,
}

pub(super) fn defaults() -> RawConfig {
    RawConfig {
        listen_address: DEFAULT_LISTEN_ADDRESS.into(),
        telemetry_path: DEFAULT_TELEMETRY_PATH.into(),
        collect_interval: DEFAULT_COLLECT_INTERVAL,
        collect_timeout: None,
        targets: Vec::new(),
        clusters: BTreeMap::new(),
    }
}

/// Reads and syntax-checks the file: a regular file of at most 1 MiB,
/// read under a deadline ([`crate::config::file_read`]). A TOML error names the
/// file, line and column and the reason, never the offending text: the
/// line may hold a password.
pub(super) fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    let file = |why: String| ConfigError::new(format!("config file {}: {why}", path.display()));
    let contents =
        file_read::read(path, file_read::Kind::Config).map_err(|e| file(e.to_string()))?;
    let (world_accessible, mode) = (contents.world_accessible(), contents.mode);
    let text = String::from_utf8(contents.bytes).map_err(|_| file("not valid UTF-8".into()))?;
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(&text, span.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        // toml's message can quote what it expected, never the input; keep
        // its first line only, the rest is a drawing of the source.
        let reason = e.message().lines().next().unwrap_or("invalid TOML");
        return Err(file(format!("{at}invalid TOML: {reason}")));
    }
    if world_accessible && holds_password(&text) {
        warn_once_loaded(format!(
            "config file {}: holds a password in a DSN and is readable by other users \
             (mode {:o}); chmod o-rwx it, or move the password to a password_file",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(text)
}

/// Whether a DSN written in the file (`targets[].dsn`,
/// `clusters.*.heartbeat.dsn`) carries a password.
pub(super) fn holds_password(text: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    let has = |dsn: Option<&toml::Value>| {
        dsn.and_then(toml::Value::as_str)
            .and_then(|text| Dsn::parse(text).ok())
            .is_some_and(|d| d.has_password())
    };
    let targets = table
        .get("targets")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| has(t.get("dsn")));
    let writers = table
        .get("clusters")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|c| c.values())
        .any(|c| has(c.get("heartbeat").and_then(|h| h.get("dsn"))));
    targets || writers
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Accepts a number where a string is expected: figment reads
/// `PGREPL_TELEMETRY_PATH=9839`-like values as numbers.
pub(super) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }
    Ok(match Lenient::deserialize(d)? {
        Lenient::S(s) => s,
        Lenient::I(i) => i.to_string(),
        Lenient::U(u) => u.to_string(),
        Lenient::F(f) => f.to_string(),
        Lenient::B(b) => b.to_string(),
    })
}

pub(super) fn lenient_opt_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    lenient_string(d).map(Some)
}
