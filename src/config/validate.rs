//! Checking every value before anything starts: ranges, names, paths,
//! targets and clusters. Each error is one line naming the key and where
//! it came from, never the value.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dsn::Dsn;
use super::layers::{RawConfig, RawTarget};
use super::origin::{Origin, Origins, TargetOrigin};
use super::password::resolve_dsn;
use super::{
    at, ClusterConfig, Config, ConfigError, Target, BUILTIN_PATHS, INTERVAL_RANGE, TIMEOUT_RANGE,
};

/// `schema.table` or `table`, plain identifiers only: the name goes into
/// SQL text, so anything else is refused at start-up.
pub(super) fn valid_table_name(name: &str) -> bool {
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

/// The configuration the layers give, checked: every value in range, every
/// name printable, every DSN and password file usable.
pub(super) fn validate(
    raw: RawConfig,
    origins: &Origins,
    file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (collect_interval, collect_timeout) =
        timing(raw.collect_interval, raw.collect_timeout, origins)?;
    let listen_address = resolve_listen(&raw.listen_address)
        .map_err(|why| at(&origins.listen_address.at("listen_address", ""), &why))?;
    let telemetry_path = raw.telemetry_path;
    check_telemetry_path(&telemetry_path)
        .map_err(|why| at(&origins.telemetry_path.at("telemetry_path", ""), &why))?;
    let targets = targets(raw.targets, origins, file, &env)?;
    let mut clusters = raw.clusters;
    for (cluster, settings) in clusters.iter_mut() {
        check_cluster(cluster, settings, &targets, &origins.clusters, &env)?;
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

/// `collect_interval` and `collect_timeout` (by default 80% of the
/// interval), each in range, the timeout shorter than the interval.
fn timing(
    interval: Duration,
    timeout: Option<Duration>,
    origins: &Origins,
) -> Result<(Duration, Duration), ConfigError> {
    let interval_at = origins.collect_interval.at("collect_interval", "");
    let collect_interval = bounded(&interval_at, interval, INTERVAL_RANGE)?;
    let timeout_at = origins.collect_timeout.at("collect_timeout", "");
    let collect_timeout = match timeout {
        Some(t) => bounded(&timeout_at, t, TIMEOUT_RANGE)?,
        None => collect_interval.mul_f64(0.8),
    };
    if collect_timeout >= collect_interval {
        return Err(ConfigError::new(format!(
            "{timeout_at}: must be shorter than {interval_at}"
        )));
    }
    Ok((collect_interval, collect_timeout))
}

/// The targets listed, else the single one of `PGREPL_DSN` or
/// `DATA_SOURCE_NAME`; at least one, each named once.
fn targets(
    listed: Vec<RawTarget>,
    origins: &Origins,
    file: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<Target>, ConfigError> {
    let (raw_targets, target_origin) = if listed.is_empty() {
        match single_target_from_env(env) {
            Some((single, dsn_var)) => (vec![single], TargetOrigin::Single { dsn_var }),
            None => (Vec::new(), TargetOrigin::Listed(origins.targets.clone())),
        }
    } else {
        (listed, TargetOrigin::Listed(origins.targets.clone()))
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
            env,
        )?;
        let cluster = t.cluster.filter(|c| !c.trim().is_empty());
        if let Some(c) = &cluster {
            check_name(&target_origin.at(i, "cluster", &context), c)?;
        }
        targets.push(Target { name, dsn, cluster });
    }
    Ok(targets)
}

/// `[clusters.NAME]`: a name some target has, its expected standbys each
/// listed once (ignoring case), its heartbeat usable.
fn check_cluster(
    cluster: &str,
    settings: &mut ClusterConfig,
    targets: &[Target],
    origin: &Origin,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
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
    let Some(hb) = settings.heartbeat.as_mut() else {
        return Ok(());
    };
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
            env,
        )?);
    }
    Ok(())
}

/// `d` within `[min, max]`, else an error naming `place` (the key and
/// where it came from) and the range, never the value. The same check
/// runs at start and on reload, and every timeout derived from these
/// values stays far from any overflow.
pub(super) fn bounded(
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
pub(super) fn check_telemetry_path(path: &str) -> Result<(), String> {
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
pub(super) fn check_name(place: &str, name: &str) -> Result<(), ConfigError> {
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

/// The single target of `PGREPL_DSN` (or `DATA_SOURCE_NAME`), with the
/// name of the variable it came from.
pub(super) fn single_target_from_env(
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

pub(super) fn resolve_listen(addr: &str) -> Result<SocketAddr, String> {
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
