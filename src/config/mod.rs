//! Configuration: defaults, then the TOML file, then `PGREPL_*` environment
//! variables, then command-line flags, each layer overriding the one before.
//!
//! Everything a running exporter needs is checked here, before anything is
//! started, so that a typo is one clear line and exit code 2 rather than a
//! target that silently never comes up.

pub mod dsn;
pub mod file_read;
pub mod pgpass;
pub mod tls;

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

use dsn::Dsn;

/// Environment variables read directly (the single-target mode) or by clap
/// (flags); figment must not see them or they would be unknown keys.
const ENV_NOT_FOR_FIGMENT: [&str; 10] = [
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

/// Where a value came from. Every error names it: a `PGREPL_*` variable
/// silently overrides the file, so "collect_interval is out of range" alone
/// sends the operator to the wrong place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file given with `--config` (or `PGREPL_CONFIG`).
    File(PathBuf),
    /// An environment variable, by its name.
    Env(String),
    /// A command-line flag, by its name.
    Flag(&'static str),
    /// Not set anywhere: the built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

impl Origin {
    /// `key (origin[, context])`: how an error names the value at fault,
    /// without the value. `context` adds e.g. `target "p"`.
    fn at(&self, key: &str, context: &str) -> String {
        if context.is_empty() {
            format!("{key} ({self})")
        } else {
            format!("{key} ({self}, {context})")
        }
    }
}

/// The names the providers carry in figment's metadata, so that the
/// origin of every value (and of every figment error) can be told.
const FROM_DEFAULTS: &str = "built-in default";
const FROM_FILE: &str = "config file";
const FLAG_LISTEN_ADDRESS: &str = "--web.listen-address";
const FLAG_TELEMETRY_PATH: &str = "--web.telemetry-path";

/// A provider under another name in figment's metadata.
struct Named<P> {
    name: &'static str,
    inner: P,
}

impl<P: figment::Provider> figment::Provider for Named<P> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name)
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

/// The origin of what a figment value's metadata names; `key` is the
/// top-level key, for the variable's name.
fn origin_of(metadata: Option<&figment::Metadata>, key: &str, overrides: &Overrides) -> Origin {
    let name = metadata.map(|m| m.name.as_ref()).unwrap_or("");
    if name == FROM_FILE {
        if let Some(path) = &overrides.config_file {
            return Origin::File(path.clone());
        }
    }
    if name.contains("environment") {
        let top = key.split('.').next().unwrap_or(key);
        return Origin::Env(format!("PGREPL_{}", top.to_ascii_uppercase()));
    }
    for flag in [FLAG_LISTEN_ADDRESS, FLAG_TELEMETRY_PATH] {
        if name == flag {
            return Origin::Flag(flag);
        }
    }
    Origin::Default
}

/// The origin of each top-level key of the merged layers.
struct Origins {
    listen_address: Origin,
    telemetry_path: Origin,
    collect_interval: Origin,
    collect_timeout: Origin,
    targets: Origin,
    clusters: Origin,
}

impl Origins {
    fn of(figment: &Figment, overrides: &Overrides) -> Origins {
        let find = |key: &str| origin_of(figment.find_metadata(key), key, overrides);
        Origins {
            listen_address: find("listen_address"),
            telemetry_path: find("telemetry_path"),
            collect_interval: find("collect_interval"),
            collect_timeout: find("collect_timeout"),
            targets: find("targets"),
            clusters: find("clusters"),
        }
    }
}

/// Where the fields of one target came from: the file (or a variable
/// holding the whole list), or the single-target variables.
enum TargetOrigin {
    Listed(Origin),
    /// `PGREPL_DSN` or `DATA_SOURCE_NAME`, with `PGREPL_TARGET`,
    /// `PGREPL_PASSWORD_FILE` and `PGREPL_CLUSTER`.
    Single {
        dsn_var: &'static str,
    },
}

impl TargetOrigin {
    /// How an error names `field` of target number `i`.
    fn at(&self, i: usize, field: &str, context: &str) -> String {
        match self {
            TargetOrigin::Listed(origin) => origin.at(&format!("targets[{i}].{field}"), context),
            TargetOrigin::Single { dsn_var } => {
                let var = match field {
                    "dsn" => *dsn_var,
                    "name" => "PGREPL_TARGET",
                    "password_file" => "PGREPL_PASSWORD_FILE",
                    "cluster" => "PGREPL_CLUSTER",
                    _ => *dsn_var,
                };
                Origin::Env(var.to_string()).at(field, context)
            }
        }
    }
}

/// The file and environment layer, as written by the user.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(deserialize_with = "lenient_string")]
    listen_address: String,
    #[serde(deserialize_with = "lenient_string")]
    telemetry_path: String,
    #[serde(with = "humantime_serde")]
    collect_interval: Duration,
    #[serde(default, with = "humantime_serde::option")]
    collect_timeout: Option<Duration>,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    clusters: BTreeMap<String, ClusterConfig>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default, deserialize_with = "lenient_string")]
    name: String,
    #[serde(default, deserialize_with = "lenient_string")]
    dsn: String,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    cluster: Option<String>,
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

/// `schema.table` or `table`, plain identifiers only: the name goes into
/// SQL text, so anything else is refused at start-up.
fn valid_table_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
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

fn defaults() -> RawConfig {
    RawConfig {
        listen_address: DEFAULT_LISTEN_ADDRESS.into(),
        telemetry_path: DEFAULT_TELEMETRY_PATH.into(),
        collect_interval: DEFAULT_COLLECT_INTERVAL,
        collect_timeout: None,
        targets: Vec::new(),
        clusters: BTreeMap::new(),
    }
}

/// Loads and validates the configuration from the layers named in the module doc.
pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
    load_with_env(overrides, |key| std::env::var(key).ok())
}

/// As [`load`], with the single-target environment read through `env` so
/// tests need not touch the process environment.
pub fn load_with_env(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    PENDING_WARNINGS.with(|w| w.borrow_mut().clear());
    let loaded = load_layers(overrides, env);
    let warnings = PENDING_WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    if loaded.is_ok() {
        for warning in warnings {
            tracing::warn!("{warning}");
        }
    }
    loaded
}

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

fn load_layers(
    overrides: &Overrides,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut figment = Figment::from(Named {
        name: FROM_DEFAULTS,
        inner: Serialized::defaults(defaults()),
    });
    if let Some(path) = &overrides.config_file {
        let text = read_config_file(path)?;
        figment = figment.merge(Named {
            name: FROM_FILE,
            inner: Toml::string(&text),
        });
    }
    let ignored: Vec<&str> = ENV_NOT_FOR_FIGMENT.to_vec();
    figment = figment.merge(Env::prefixed("PGREPL_").ignore(&ignored));
    if let Some(v) = &overrides.listen_address {
        figment = figment.merge(Named {
            name: FLAG_LISTEN_ADDRESS,
            inner: Serialized::default("listen_address", v),
        });
    }
    if let Some(v) = &overrides.telemetry_path {
        figment = figment.merge(Named {
            name: FLAG_TELEMETRY_PATH,
            inner: Serialized::default("telemetry_path", v),
        });
    }
    let raw: RawConfig = figment
        .extract()
        .map_err(|e| describe_figment(e, overrides))?;
    let origins = Origins::of(&figment, overrides);
    validate(raw, &origins, overrides.config_file.as_deref(), env)
}

/// Reads and syntax-checks the file: a regular file of at most 1 MiB,
/// read under a deadline ([`crate::config::file_read`]). A TOML error names the
/// file, line and column and the reason, never the offending text: the
/// line may hold a password.
fn read_config_file(path: &Path) -> Result<String, ConfigError> {
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
fn holds_password(text: &str) -> bool {
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
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The first figment error, worded without the offending value (it may be
/// a password typed in the wrong place): which key, from which source
/// (file, environment variable or flag), and what was expected.
fn describe_figment(err: figment::Error, overrides: &Overrides) -> ConfigError {
    use figment::error::{Actual, Kind};
    let Some(first) = err.into_iter().next() else {
        return ConfigError::new("configuration: invalid");
    };
    let path: Vec<&str> = first
        .path
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "default")
        .collect();
    let key = path.join(".");
    let kind_of = |a: &Actual| -> &'static str {
        match a {
            Actual::Bool(_) => "a boolean",
            Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
            Actual::Float(_) => "a number",
            Actual::Char(_) | Actual::Str(_) => "a string",
            Actual::Bytes(_) => "bytes",
            Actual::Seq => "a list",
            Actual::Map => "a table",
            _ => "another type",
        }
    };
    let reason = match &first.kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", kind_of(actual))
        }
        Kind::InvalidValue(_, expected) => format!("invalid value, expected {expected}"),
        Kind::InvalidLength(n, expected) => format!("{n} items, expected {expected}"),
        Kind::UnknownVariant(_, expected) => {
            format!("unknown value, expected one of {}", expected.join(", "))
        }
        Kind::UnknownField(field, expected) => {
            let shown = printable_key(field);
            let parent = match path.split_last() {
                Some((last, parent)) if *last == field.as_str() => parent.join("."),
                _ => key.clone(),
            };
            let known = if expected.is_empty() {
                String::new()
            } else {
                format!("; known keys: {}", expected.join(", "))
            };
            let full = if parent.is_empty() {
                field.clone()
            } else {
                format!("{parent}.{field}")
            };
            return ConfigError::new(format!(
                "configuration: unknown key {}{shown}{}{known}",
                if parent.is_empty() {
                    String::new()
                } else {
                    format!("{parent}.")
                },
                source_of(&first, overrides, Some(&full))
            ));
        }
        Kind::MissingField(field) => format!("missing key {field}"),
        Kind::DuplicateField(field) => format!("duplicate key {field}"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "number out of range".into(),
        Kind::Unsupported(actual) => format!("{} is not supported here", kind_of(actual)),
        Kind::UnsupportedKey(actual, expected) => {
            format!("{} cannot be a key, expected {expected}", kind_of(actual))
        }
        // Our own deserializers and serde's wording; none of them quote
        // the input.
        Kind::Message(m) => m.lines().next().unwrap_or("invalid").to_string(),
    };
    ConfigError::new(format!(
        "configuration: {}{}: {reason}",
        if key.is_empty() {
            "(top level)".to_string()
        } else {
            key.clone()
        },
        source_of(&first, overrides, Some(&key))
    ))
}

/// Where the faulty value came from, for the error message.
fn source_of(err: &figment::Error, overrides: &Overrides, key: Option<&str>) -> String {
    let key = key.filter(|k| !k.is_empty());
    match origin_of(err.metadata.as_ref(), key.unwrap_or(""), overrides) {
        Origin::Env(_) if key.is_none() => " (a PGREPL_* environment variable)".into(),
        Origin::Default => String::new(),
        origin => format!(" ({origin})"),
    }
}

/// A key as typed, shown only when it looks like a key: an unknown "key"
/// may be a stray password on a line of its own.
fn printable_key(key: &str) -> String {
    let plausible = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if plausible {
        key.to_string()
    } else {
        "(not shown: not a plausible key name)".to_string()
    }
}

fn validate(
    raw: RawConfig,
    origins: &Origins,
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let interval_at = origins.collect_interval.at("collect_interval", "");
    let collect_interval = bounded(&interval_at, raw.collect_interval, INTERVAL_RANGE)?;
    let timeout_at = origins.collect_timeout.at("collect_timeout", "");
    let collect_timeout = match raw.collect_timeout {
        Some(t) => bounded(&timeout_at, t, TIMEOUT_RANGE)?,
        None => collect_interval.mul_f64(0.8),
    };
    if collect_timeout >= collect_interval {
        return Err(ConfigError::new(format!(
            "{timeout_at}: must be shorter than {interval_at}"
        )));
    }
    let listen_address = resolve_listen(&raw.listen_address)
        .map_err(|why| at(&origins.listen_address.at("listen_address", ""), &why))?;
    let telemetry_path = raw.telemetry_path;
    check_telemetry_path(&telemetry_path)
        .map_err(|why| at(&origins.telemetry_path.at("telemetry_path", ""), &why))?;

    let (raw_targets, target_origin) = if raw.targets.is_empty() {
        match single_target_from_env(&env) {
            Some((single, dsn_var)) => (vec![single], TargetOrigin::Single { dsn_var }),
            None => (Vec::new(), TargetOrigin::Listed(origins.targets.clone())),
        }
    } else {
        (raw.targets, TargetOrigin::Listed(origins.targets.clone()))
    };
    if raw_targets.is_empty() {
        let hint = match file {
            Some(f) => format!("no [[targets]] in {}", f.display()),
            None => "no targets".to_string(),
        };
        return Err(ConfigError::new(format!(
            "targets: {hint}; add [[targets]] to the config file or set PGREPL_DSN or DATA_SOURCE_NAME"
        )));
    }

    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(raw_targets.len());
    for (i, t) in raw_targets.into_iter().enumerate() {
        let name_at = target_origin.at(i, "name", "");
        let name = t.name.trim().to_string();
        if name.is_empty() {
            return Err(at(&name_at, "must not be empty"));
        }
        check_name(&name_at, &name)?;
        if !seen.insert(name.clone()) {
            return Err(at(&name_at, &format!("duplicate target name {name:?}")));
        }
        let context = format!("target {name:?}");
        let dsn = resolve_dsn(
            &t.dsn,
            t.password_file.as_deref(),
            &target_origin.at(i, "dsn", &context),
            &target_origin.at(i, "password_file", &context),
            &env,
        )?;
        let cluster = t.cluster.filter(|c| !c.trim().is_empty());
        if let Some(c) = &cluster {
            check_name(&target_origin.at(i, "cluster", &context), c)?;
        }
        targets.push(Target { name, dsn, cluster });
    }

    let mut clusters = raw.clusters;
    let origin = &origins.clusters;
    for (cluster, settings) in clusters.iter_mut() {
        check_name(&origin.at("clusters", ""), cluster)?;
        let key = format!("clusters.{cluster}.expected_standbys");
        let mut listed: Vec<&str> = Vec::new();
        for standby in settings.expected_standbys.iter().flatten() {
            check_name(&origin.at(&key, ""), standby)?;
            // PostgreSQL compares `application_name` ignoring case (as in
            // `synchronous_standby_names`), and so does the cluster view:
            // "s1" and "S1" are one standby, and two series of it would
            // count it twice.
            if let Some(first) = listed.iter().find(|l| l.eq_ignore_ascii_case(standby)) {
                let why = if *first == standby.as_str() {
                    format!("{standby:?} is listed twice")
                } else {
                    format!(
                        "{standby:?} and {first:?} name the same standby (standby names compare ignoring case, as PostgreSQL compares application_name)"
                    )
                };
                return Err(at(&origin.at(&key, ""), &why));
            }
            listed.push(standby);
        }
        if !targets
            .iter()
            .any(|t| t.cluster.as_deref() == Some(cluster))
        {
            return Err(at(
                &origin.at(&format!("clusters.{cluster}"), ""),
                &format!("no target has cluster = {cluster:?}"),
            ));
        }
        if let Some(hb) = settings.heartbeat.as_mut() {
            let key = format!("clusters.{cluster}.heartbeat");
            if !valid_table_name(&hb.table) {
                return Err(at(
                    &origin.at(&format!("{key}.table"), ""),
                    "expected schema.table in lower-case letters, digits and _",
                ));
            }
            hb.interval = bounded(
                &origin.at(&format!("{key}.interval"), ""),
                hb.interval,
                INTERVAL_RANGE,
            )?;
            if let Some(text) = &hb.dsn {
                hb.writer = Some(resolve_dsn(
                    text,
                    hb.password_file.as_deref(),
                    &origin.at(&format!("{key}.dsn"), ""),
                    &origin.at(&format!("{key}.password_file"), ""),
                    &env,
                )?);
            }
        }
    }

    Ok(Config {
        listen_address,
        telemetry_path,
        collect_interval,
        collect_timeout,
        targets,
        clusters,
    })
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

/// `d` within `[min, max]`, else an error naming `place` (the key and
/// where it came from) and the range, never the value. The same check
/// runs at start and on reload, and every timeout derived from these
/// values stays far from any overflow.
fn bounded(
    place: &str,
    d: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    if d < min || d > max {
        return Err(at(
            place,
            &format!(
                "out of range; use {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

/// A literal path: `/` then letters, digits and `-._~/`, no route syntax
/// (`{x}`, `*x`, `:x`) and none of the built-in paths or below them. The
/// reason never quotes the path.
fn check_telemetry_path(path: &str) -> Result<(), String> {
    let bad = |why: &str| Err(why.to_string());
    if !path.starts_with('/') || path.len() < 2 {
        return bad("must start with '/' and name a path other than '/'");
    }
    if path.len() > 256 {
        return bad("longer than 256 characters");
    }
    if path
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "-._~/".contains(c)))
    {
        return bad("only letters, digits and - . _ ~ / are allowed");
    }
    if path.contains("//") {
        return bad("must not contain an empty segment (//)");
    }
    let trimmed = path.trim_end_matches('/');
    if BUILTIN_PATHS
        .iter()
        .any(|b| *b != "/" && (trimmed == *b || trimmed.starts_with(&format!("{b}/"))))
    {
        return bad(&format!(
            "names one of the exporter's own endpoints ({})",
            BUILTIN_PATHS.join(", ")
        ));
    }
    Ok(())
}

/// Names end up in labels and log lines: a control character would forge
/// a log line or break a label.
fn check_name(place: &str, name: &str) -> Result<(), ConfigError> {
    if name.chars().any(char::is_control) {
        return Err(at(
            place,
            "contains a control character (newline, tab, escape...); names must be printable",
        ));
    }
    if name.len() > 256 {
        return Err(at(place, "longer than 256 bytes"));
    }
    Ok(())
}

/// A connection string made ready to use: parsed, its password resolved
/// and bounded, its TLS settings loadable. Errors name the place of the
/// DSN (`dsn_at`) or of the password file (`file_at`): key, origin and
/// target; never a value.
fn resolve_dsn(
    text: &str,
    password_file: Option<&Path>,
    dsn_at: &str,
    file_at: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Dsn, ConfigError> {
    let mut dsn = Dsn::parse(text).map_err(|e| at(dsn_at, &e.to_string()))?;
    resolve_password(&mut dsn, password_file, dsn_at, file_at, env)?;
    if dsn.password_len() > MAX_PASSWORD_BYTES {
        let place = if password_file.is_some() {
            file_at
        } else {
            dsn_at
        };
        return Err(at(
            place,
            &format!(
                "the password is {} bytes; at most {MAX_PASSWORD_BYTES} are accepted",
                dsn.password_len()
            ),
        ));
    }
    let tls_error = |e: tls::TlsError| at(dsn_at, &e.to_string());
    dsn.tls.files = Some(std::sync::Arc::new(
        tls::load_files(&dsn.tls).map_err(tls_error)?,
    ));
    tls::connector(&dsn.tls).map_err(tls_error)?;
    Ok(dsn)
}

/// Fills in the password the way libpq would, after our own
/// `password_file` (which wins, as the file a secret store mounts): the
/// DSN's, then `PGPASSWORD`, then the password file (`passfile=` in the
/// DSN, `PGPASSFILE`, or `~/.pgpass`). A password file named explicitly
/// must be readable and private; `~/.pgpass` may be missing, and is
/// ignored with a warning when others can read it, as libpq does.
fn resolve_password(
    dsn: &mut Dsn,
    password_file: Option<&Path>,
    dsn_at: &str,
    file_at: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(path) = password_file {
        let file = dsn::read_password_file(path)
            .map_err(|e| ConfigError::new(format!("{file_at}: {}: {e}", path.display())))?;
        // Warned, not refused: secret stores mount files others may read
        // inside the container (Docker's 0444, a bind mount keeps the
        // host's mode), where no other user exists. See SECURITY.md.
        if file.mode & 0o007 != 0 {
            warn_once_loaded(format!(
                "{file_at}: {} is readable by other users (mode {:o}); chmod o-rwx it",
                path.display(),
                file.mode & 0o777
            ));
        }
        dsn.set_password(file.password);
        return Ok(());
    }
    if dsn.has_password() {
        return Ok(());
    }
    if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        dsn.set_password(password);
        return Ok(());
    }
    let pgpassfile = env("PGPASSFILE").filter(|p| !p.is_empty());
    let (path, named_by) = match (&dsn.passfile, pgpassfile) {
        (Some(path), _) => (path.clone(), Some("passfile in the DSN")),
        (None, Some(path)) => (PathBuf::from(path), Some("PGPASSFILE")),
        (None, None) => match env("HOME").filter(|h| !h.is_empty()) {
            Some(home) => (PathBuf::from(home).join(".pgpass"), None),
            None => return Ok(()),
        },
    };
    // Its mode is checked before a byte is read, and anything but a
    // regular file is refused (libpq: "not a plain file").
    let contents = match file_read::read_private(&path, file_read::Kind::PassFile) {
        Ok(contents) => contents,
        Err(e) if named_by.is_none() && e.is_not_found() => return Ok(()),
        Err(e) => {
            let problem = format!("password file {}: {e}", path.display());
            if let Some(named_by) = named_by {
                return Err(ConfigError::new(format!(
                    "{dsn_at}: {problem} ({named_by})"
                )));
            }
            warn_once_loaded(format!(
                "ignoring ~/.pgpass for {dsn_at}, as libpq does: {problem}"
            ));
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&contents.bytes);
    if let Some(password) = dsn.pgpass_password(&text) {
        dsn.set_password(password);
    }
    Ok(())
}

/// The single target of `PGREPL_DSN` (or `DATA_SOURCE_NAME`), with the
/// name of the variable it came from.
fn single_target_from_env(
    env: &impl Fn(&str) -> Option<String>,
) -> Option<(RawTarget, &'static str)> {
    let (dsn, var) = match env("PGREPL_DSN").filter(|s| !s.is_empty()) {
        Some(dsn) => (dsn, "PGREPL_DSN"),
        None => (
            env("DATA_SOURCE_NAME").filter(|s| !s.is_empty())?,
            "DATA_SOURCE_NAME",
        ),
    };
    let target = RawTarget {
        name: env("PGREPL_TARGET").unwrap_or_else(|| Dsn::default_name(&dsn)),
        dsn,
        password_file: env("PGREPL_PASSWORD_FILE").map(PathBuf::from),
        cluster: env("PGREPL_CLUSTER"),
    };
    Some((target, var))
}

fn resolve_listen(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    // The value itself is not repeated: whatever was typed there (even a
    // secret pasted into the wrong place) stays out of logs. The caller
    // names the key and where it came from.
    let bad = |why: String| why;
    if !addr.contains(':') {
        return Err(bad("expected HOST:PORT, for example 0.0.0.0:9839".into()));
    }
    // `:9839` means every interface, as in the Prometheus exporters.
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    match full.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| bad("resolves to no address".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Accepts a number where a string is expected: figment reads
/// `PGREPL_TELEMETRY_PATH=9839`-like values as numbers.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
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

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    lenient_string(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Loads `toml` from a temporary file; file errors and configuration
    /// errors both come back as their message.
    fn load_str(toml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        load_with_env(
            &Overrides {
                config_file: Some(path),
                ..Default::default()
            },
            no_env,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_derived_timeout() -> Result<(), String> {
        let c = load_str("[[targets]]\nname='p'\ndsn='host=127.0.0.1 user=x'\n")?;
        assert_eq!(c.listen_address.port(), 9839);
        assert_eq!(c.telemetry_path, "/metrics");
        assert_eq!(c.collect_interval, Duration::from_secs(5));
        assert_eq!(c.collect_timeout, Duration::from_secs(4));
        Ok(())
    }

    #[test]
    fn env_single_target() -> Result<(), ConfigError> {
        let c = load_with_env(&Overrides::default(), |k| match k {
            "DATA_SOURCE_NAME" => Some("postgresql://u@db1:5433/postgres".into()),
            _ => None,
        })?;
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].name, "db1:5433");
        Ok(())
    }

    /// The password of the single target from `PGREPL_DSN = dsn`, with
    /// `vars` as the rest of the environment.
    fn password_with(dsn: &str, vars: &[(&str, &str)]) -> Result<Option<String>, ConfigError> {
        let c = load_with_env(&Overrides::default(), |k| {
            if k == "PGREPL_DSN" {
                return Some(dsn.to_string());
            }
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })?;
        let config = c.targets[0].dsn.pg_config();
        Ok(config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()))
    }

    #[test]
    fn password_like_libpq() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let private = dir.path().join("private");
        std::fs::write(&private, "db1:5433:postgres:mon:from-file\n*:*:*:*:other\n")?;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
        let shared = dir.path().join("shared");
        std::fs::write(&shared, "*:*:*:*:shared\n")?;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644))?;
        let home = dir.path().join("home");
        std::fs::create_dir(&home)?;
        let (private_s, shared_s, home_s) = (
            private.display().to_string(),
            shared.display().to_string(),
            home.display().to_string(),
        );
        let dsn = "postgresql://mon@db1:5433/postgres";

        assert_eq!(password_with(dsn, &[])?, None);
        assert_eq!(
            password_with(dsn, &[("PGPASSWORD", "env")])?.as_deref(),
            Some("env")
        );
        assert_eq!(
            password_with(dsn, &[("PGPASSFILE", &private_s)])?.as_deref(),
            Some("from-file")
        );
        let with_passfile = format!("{dsn}?passfile={private_s}");
        assert_eq!(
            password_with(&with_passfile, &[])?.as_deref(),
            Some("from-file")
        );
        // Another user falls through to the wildcard line.
        assert_eq!(
            password_with(
                "postgresql://x@db1:5433/postgres",
                &[("PGPASSFILE", &private_s)]
            )?
            .as_deref(),
            Some("other")
        );
        // The DSN's own password wins, then PGPASSWORD.
        assert_eq!(
            password_with(
                "postgresql://mon:inline@db1:5433/postgres",
                &[("PGPASSWORD", "env"), ("PGPASSFILE", &private_s)]
            )?
            .as_deref(),
            Some("inline")
        );
        assert_eq!(
            password_with(dsn, &[("PGPASSWORD", "env"), ("PGPASSFILE", &private_s)])?.as_deref(),
            Some("env")
        );

        // ~/.pgpass: missing is fine; readable by others is ignored.
        assert_eq!(password_with(dsn, &[("HOME", &home_s)])?, None);
        std::fs::copy(&shared, home.join(".pgpass"))?;
        std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o644))?;
        assert_eq!(password_with(dsn, &[("HOME", &home_s)])?, None);
        std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o600))?;
        assert_eq!(
            password_with(dsn, &[("HOME", &home_s)])?.as_deref(),
            Some("shared")
        );

        // A file named explicitly must exist and be private.
        let missing = dir.path().join("missing").display().to_string();
        let err = password_with(dsn, &[("PGPASSFILE", &missing)])
            .expect_err("missing PGPASSFILE")
            .to_string();
        assert!(
            err.contains(&missing) && err.contains("PGPASSFILE"),
            "{err}"
        );
        let err = password_with(&format!("{dsn}?passfile={shared_s}"), &[])
            .expect_err("shared passfile")
            .to_string();
        assert!(
            err.contains("group or world access") && err.contains(&shared_s),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                "collect_interval='0s'\n[[targets]]\nname='p'\ndsn='host=h'",
                "collect_interval",
            ),
            (
                "collect_interval='5x'\n[[targets]]\nname='p'\ndsn='host=h'",
                "collect_interval",
            ),
            ("bogus=1\n[[targets]]\nname='p'\ndsn='host=h'", "bogus"),
            (
                "collect_timeout='6s'\n[[targets]]\nname='p'\ndsn='host=h'",
                "collect_timeout",
            ),
            ("[[targets]]\nname=''\ndsn='host=h'", "targets[0].name"),
            (
                "[[targets]]\nname='a'\ndsn='host=h'\n[[targets]]\nname='a'\ndsn='host=h'",
                "duplicate",
            ),
            (
                "[[targets]]\nname='a'\ndsn='postgresql://h:notaport/x'",
                "targets[0].dsn",
            ),
            (
                "listen_address='nonsense'\n[[targets]]\nname='a'\ndsn='host=h'",
                "listen_address",
            ),
            ("", "targets"),
        ];
        for (toml, needle) in cases {
            let err = load_str(toml).expect_err(toml).to_string();
            assert!(err.contains(needle), "{toml:?} gave {err:?}");
            assert!(!err.contains('\n'));
        }
    }
}
