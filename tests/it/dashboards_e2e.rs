//! End to end for the dashboards: a real primary and standby, the exporter,
//! and Debian's Prometheus scraping it every second (with the recording
//! rules of `alerts/`). After warm-up, every panel query runs against
//! Prometheus: at least 80% must return data, and each one that does not is
//! listed below with the reason. Every metric a query names must be in the
//! exporter's real `/metrics` output or in the recording rules (or listed as
//! absent in this setup, with the reason).

use crate::harness as common;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, wait_until, Exporter, Pair, Scratch};
use serde_json::Value;

/// The share of panel queries that must return data: 91% is what the
/// dashboards had when the mixin replaced their generator; it must not
/// drop.
const MIN_SHARE: f64 = 0.91;

/// Panel queries allowed to return nothing here, by panel title, and why.
const EMPTY_OK: &[(&str, &str)] = &[
    ("base backup", "no pg_basebackup runs during the test"),
    (
        "heartbeat",
        "the heartbeat is opt-in (the test configures it)",
    ),
    ("oldest", "no .ready file waits: archiving keeps up"),
    (
        "safe_wal_size",
        "only while max_slot_wal_keep_size is limited (the test sets 1GB)",
    ),
    (
        "max_slot_wal_keep_size",
        "only while max_slot_wal_keep_size is limited (the test sets 1GB)",
    ),
    (
        "xmin",
        "only while a slot holds an xmin (the test turns hot_standby_feedback on)",
    ),
    ("timeline mismatch", "no standby is on another timeline"),
    ("failed", "archive_command never failed"),
    ("conflict", "no query conflicted with replay"),
    ("synchronous", "no synchronous standby is configured"),
    ("sync", "no synchronous standby is configured"),
    (
        "lag (seconds)",
        "write/flush/replay_lag are NULL while the byte lag is not 0 on an idle pair",
    ),
    (
        "replay delay",
        "no transaction replayed since the standby started",
    ),
    (
        "build",
        "build info carries no target label in the per-target filter",
    ),
    ("config", "no configuration issue at all in some checks"),
    (
        "error budget",
        "the 30-day ratio is a subquery at hourly steps: nothing before the first full hour",
    ),
    (
        "freshness slo",
        "the 30-day ratio is a subquery at hourly steps: nothing before the first full hour",
    ),
    (
        "catch up",
        "only while a lagging standby's lag shrinks; the pair is caught up",
    ),
    (
        "loses its wal",
        "only while WAL is written against a limited safe_wal_size; the pair is idle",
    ),
    ("issue", "no configuration issue at all in some checks"),
];

/// Families a query may name although this setup does not emit them.
const ABSENT_OK: &[(&str, &str)] = &[
    ("pgrepl_basebackup_", "only while a base backup runs"),
    (
        "pgrepl_heartbeat_lag_seconds",
        "opt-in heartbeat not configured",
    ),
    (
        "pgrepl_slot_safe_wal_size_bytes",
        "max_slot_wal_keep_size is unlimited",
    ),
    (
        "pgrepl_max_slot_wal_keep_size_bytes",
        "max_slot_wal_keep_size is unlimited",
    ),
    ("pgrepl_slot_xmin_age_xids", "no slot holds an xmin"),
    (
        "pgrepl_archiver_oldest_pending_timestamp_seconds",
        "no .ready file waits",
    ),
    (
        "pgrepl_archiver_last_failed_timestamp_seconds",
        "archiving never failed",
    ),
    (
        "pgrepl_slot_inactive_since_timestamp_seconds",
        "PostgreSQL 17+ only",
    ),
    (
        "pgrepl_slot_conflicting",
        "PostgreSQL 16+, logical slots only",
    ),
    ("pgrepl_slot_failover", "PostgreSQL 17+ only"),
    (
        "pgrepl_heartbeat_rejected",
        "only while a standby rejects the heartbeat row it reads",
    ),
    ("pgrepl_slot_synced", "PostgreSQL 17+ only"),
    (
        "pgrepl_standby_lag_seconds",
        "NULL lag columns with non-zero byte lag",
    ),
    (
        "pgrepl_replay_delay_seconds",
        "nothing replayed yet, or unknown without a streaming WAL receiver",
    ),
    (
        "pgrepl_last_replay_timestamp_seconds",
        "nothing replayed yet",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(port: u16, expr: &str) -> Result<Value, String> {
    let mut resp = common::http_agent()
        .get(&format!("http://127.0.0.1:{port}/api/v1/query"))
        .query("query", expr)
        .call()
        .map_err(|e| e.to_string())?;
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn substitute(expr: &str) -> String {
    expr.replace("${__rate_interval}", "20s")
        .replace("$__rate_interval", "20s")
        .replace("$__interval", "15s")
        .replace("$__range", "1m")
        .replace("$cluster", ".*")
        .replace("$target", ".+")
        .replace("$primary", "primary")
        .replace("$standby", "standby1")
        .replace("$replica", "standby1")
}

/// (dashboard file, panel title, expression) of every panel query.
fn panel_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root().join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let d: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let mut stack: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
        while let Some(p) = stack.pop() {
            stack.extend(p["panels"].as_array().into_iter().flatten());
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((
                        path.file_name().unwrap().to_string_lossy().into_owned(),
                        p["title"].as_str().unwrap_or("?").to_string(),
                        e.to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("pgrepl") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        let before = if start == 0 { b' ' } else { bytes[start - 1] };
        if !(before.is_ascii_alphanumeric() || before == b'_' || before == b'"') {
            out.insert(expr[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

#[test]
fn panels_return_data_against_a_real_pair() {
    // A pair set up the way the DBA's notes recommend: a cap on the WAL a
    // slot may hold, hot_standby_feedback (the slot then holds an xmin),
    // and the opt-in heartbeat, so that those panels have data too.
    let pair = Pair::start_with("dash", "max_slot_wal_keep_size = '1GB'\n");
    pair.standby
        .psql("ALTER SYSTEM SET hot_standby_feedback = on");
    pair.standby.psql("SELECT pg_reload_conf()");
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    let scratch = Scratch::new("dash-prom");
    let prom_port = free_port();
    let rules: Vec<String> = fs::read_dir(root().join("alerts"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.to_str()?
                .ends_with(".rules.yml")
                .then(|| p.display().to_string())
        })
        .collect();
    let config = scratch.path.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\nscrape_configs:\n  - job_name: pg_replication_exporter\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            rules.iter().map(|r| format!("  - {r}\n")).collect::<String>(),
            exporter.port
        ),
    )
    .unwrap();
    let prom = Proc(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.path.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(scratch.path.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus is installed by `make test` (Debian package prometheus)"),
    );
    assert!(wait_until(Duration::from_secs(30), || query(
        prom_port, "up"
    )
    .is_ok()));

    let queries = panel_queries();
    assert!(
        queries.len() > 30,
        "only {} panel queries found",
        queries.len()
    );
    // Activity while Prometheus fills up, so rates have something to see,
    // until every panel query that should answer does (polled: a loaded
    // machine gets the time it needs, up to WARM_UP).
    const WARM_UP: Duration = Duration::from_secs(180);
    let started = Instant::now();
    let mut round = 0;
    let outcome = loop {
        pair.primary.write_wal(200);
        round += 1;
        if round % 5 == 0 {
            pair.primary.psql("SELECT pg_switch_wal()");
        }
        let outcome = evaluate(&exporter, &rules, &queries, prom_port);
        if outcome.settled(queries.len()) || started.elapsed() > WARM_UP {
            break outcome;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let Outcome {
        with_data,
        empty,
        unexplained_empty,
        unknown_metrics,
        errors,
    } = outcome;
    for line in &empty {
        println!("empty: {line}");
    }
    drop(prom);
    assert!(
        errors.is_empty(),
        "queries Prometheus refused:\n{}",
        errors.join("\n")
    );
    assert!(
        unknown_metrics.is_empty(),
        "metrics the exporter does not emit:\n{}",
        unknown_metrics.join("\n")
    );
    let share = with_data as f64 / queries.len() as f64;
    assert!(
        unexplained_empty.is_empty(),
        "{with_data}/{} queries returned data; these returned nothing without a listed reason:\n{}",
        queries.len(),
        unexplained_empty.join("\n")
    );
    assert!(
        share >= MIN_SHARE,
        "only {with_data} of {} panel queries returned data",
        queries.len()
    );
    println!(
        "{with_data} of {} panel queries returned data ({:.0}%)",
        queries.len(),
        share * 100.0
    );
}

/// What one pass over the panel queries found.
struct Outcome {
    with_data: usize,
    empty: Vec<String>,
    unexplained_empty: Vec<String>,
    unknown_metrics: Vec<String>,
    errors: Vec<String>,
}

impl Outcome {
    /// Everything the assertions of the test want.
    fn settled(&self, queries: usize) -> bool {
        self.errors.is_empty()
            && self.unknown_metrics.is_empty()
            && self.unexplained_empty.is_empty()
            && self.with_data as f64 / queries as f64 >= MIN_SHARE
    }
}

/// Runs every panel query against Prometheus; checks every metric a query
/// names against the exporter's real output and the recording rules.
fn evaluate(
    exporter: &Exporter,
    rules: &[String],
    queries: &[(String, String, String)],
    prom_port: u16,
) -> Outcome {
    // Metric names: the real output plus the recording rules.
    let mut known: BTreeSet<String> = exporter.metrics().names();
    for r in rules {
        let text = fs::read_to_string(r).unwrap();
        for line in text.lines() {
            if let Some(name) = line
                .trim()
                .strip_prefix("- record:")
                .or_else(|| line.trim().strip_prefix("record:"))
            {
                known.insert(name.trim().to_string());
            }
        }
    }

    let mut with_data = 0;
    let mut unexplained_empty = Vec::new();
    let mut unknown_metrics = Vec::new();
    let mut errors = Vec::new();
    let mut empty = Vec::new();
    for (file, title, expr) in queries {
        for name in metric_names(expr) {
            let base = name.trim_end_matches("_bucket");
            let emitted = known.contains(base)
                || ABSENT_OK.iter().any(|(prefix, _)| base.starts_with(prefix))
                || name.contains(':')
                || known.iter().any(|k| k.starts_with(&format!("{base}_")));
            if !emitted {
                unknown_metrics.push(format!("{file} '{title}': {name}"));
            }
        }
        match query(prom_port, &substitute(expr)) {
            Ok(v) if v["status"] == "success" => {
                let result = &v["data"]["result"];
                let has = match result {
                    Value::Array(a) => !a.is_empty(),
                    Value::Null => false,
                    _ => true,
                };
                if has {
                    with_data += 1;
                } else {
                    empty.push(format!("{file} '{title}': {expr}"));
                    let lower = title.to_lowercase();
                    let names_absent_family = metric_names(expr)
                        .iter()
                        .any(|n| ABSENT_OK.iter().any(|(prefix, _)| n.starts_with(prefix)));
                    if !EMPTY_OK.iter().any(|(k, _)| lower.contains(k)) && !names_absent_family {
                        unexplained_empty.push(format!("{file} '{title}': {expr}"));
                    }
                }
            }
            Ok(v) => errors.push(format!("{file} '{title}': {expr}: {v}")),
            Err(e) => errors.push(format!("{file} '{title}': {expr}: {e}")),
        }
    }
    Outcome {
        with_data,
        empty,
        unexplained_empty,
        unknown_metrics,
        errors,
    }
}
