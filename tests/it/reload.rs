//! Configuration reloads that must never leave the exporter lying: a
//! refused reload keeps the running configuration (and says so in the log
//! and in `pgrepl_config_last_reload_successful`), `POST /-/reload` is off
//! unless `--web.enable-lifecycle`, and a flood of reloads costs no new
//! database sessions and does not stall collection.

use crate::harness as common;

use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);

fn last_success(m: &Metrics, target: &str) -> f64 {
    m.get(
        "pgrepl_last_collect_success_timestamp_seconds",
        &[("target", target)],
    )
    .unwrap_or(0.0)
}

/// Collection goes on: the success timestamp moves and the target is up.
fn assert_collecting(exporter: &Exporter, target: &str, what: &str) {
    let before = last_success(&exporter.metrics(), target);
    exporter.wait_for(what, WAIT, |m| {
        last_success(m, target) > before && m.get("pgrepl_up", &[("target", target)]) == Some(1.0)
    });
}

/// How many reloads the log says were refused.
fn refusals(exporter: &Exporter) -> usize {
    exporter
        .log_text()
        .matches("configuration reload refused")
        .count()
}

/// SIGHUP, then the log must show more than `before` refused reloads;
/// `what` (and the log) otherwise.
fn hup_and_see_refused(exporter: &Exporter, before: usize, what: &str) {
    exporter.signal("HUP");
    assert!(
        common::wait_until(WAIT, || refusals(exporter) > before),
        "{what}: {}",
        exporter.log_text()
    );
}

#[test]
fn refused_reloads_keep_collecting_and_say_so() {
    let pair = Pair::start("reload-refused");
    let exporter = Exporter::start(&[("primary", pair.primary.dsn())]);
    let m = exporter.wait_for("up", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
    });
    assert_eq!(
        m.get("pgrepl_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let started = m
        .get("pgrepl_config_last_reload_success_timestamp_seconds", &[])
        .expect("reload timestamp at start");
    let original = std::fs::read_to_string(&exporter.config).unwrap();

    // A value that once panicked the supervisor (then pgrepl_up 1 with a
    // frozen timestamp forever), a duration past the kernel's socket
    // timeout, and a file that is not TOML.
    for bad in [
        original.replace(
            "collect_interval = \"1s\"",
            "collect_interval = \"584542046090y\"",
        ),
        original.replace("collect_interval = \"1s\"", "collect_interval = \"20d\""),
        format!("{original}\nthis is not toml\n"),
    ] {
        std::fs::write(&exporter.config, &bad).unwrap();
        hup_and_see_refused(&exporter, refusals(&exporter), "no refusal logged");
        exporter.wait_for("reload reported as failed", WAIT, |m| {
            m.get("pgrepl_config_last_reload_successful", &[]) == Some(0.0)
        });
        assert_collecting(
            &exporter,
            "primary",
            "collection goes on after a refused reload",
        );
        assert!(!exporter.log_text().contains("panicked"));
    }

    // Fixed: the next reload takes, and says so.
    std::fs::write(&exporter.config, &original).unwrap();
    exporter.signal("HUP");
    let m = exporter.wait_for("reload reported as successful", WAIT, |m| {
        m.get("pgrepl_config_last_reload_successful", &[]) == Some(1.0)
    });
    let reloaded = m
        .get("pgrepl_config_last_reload_success_timestamp_seconds", &[])
        .unwrap();
    assert!(
        reloaded > started,
        "timestamp {reloaded} not after {started}"
    );
    assert_collecting(&exporter, "primary", "collection after the fixed reload");
}

#[test]
fn lifecycle_endpoint_is_off_unless_enabled() {
    let dsn = "postgresql://monitor@127.0.0.1:1/postgres?connect_timeout=1".to_string();
    let off = Exporter::start(&[("nowhere", dsn.clone())]);
    assert_eq!(
        common::curl_status(&["-X", "POST", &off.url("/-/reload")]),
        "403"
    );
    let on = Exporter::start_with(
        &[("nowhere", dsn)],
        "collect_interval = \"1s\"\n",
        &["--web.enable-lifecycle"],
    );
    let out = std::process::Command::new("curl")
        .args(["-s", "-X", "POST", &on.url("/-/reload")])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("configuration reloaded"), "{body}");
    // A broken file: 500 with the reason, the running configuration stays.
    std::fs::write(&on.config, "collect_interval = [\n").unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &on.url("/-/reload"),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.ends_with("500") && body.contains("invalid TOML"),
        "{body}"
    );
}

/// A reload that changes only what the cluster view expects keeps every
/// collection task and its sessions: the targets never read down, and the
/// new expectation shows at once. Also: the lifecycle flag from the
/// environment, as a systemd unit or compose file writes it (`1`).
#[test]
fn a_cluster_only_change_keeps_every_target_up() {
    let pair = Pair::start("reload-cluster");
    let exporter = Exporter::start_with_env(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &[],
        &[("PGREPL_WEB_ENABLE_LIFECYCLE", "1".to_string())],
    );
    let both_up = |m: &Metrics| {
        m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
    };
    exporter.wait_for("both up", WAIT, both_up);
    let backends = |pg: &common::Pg| {
        pg.psql("SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE application_name = 'pg_replication_exporter'")
    };
    let before = (backends(&pair.primary), backends(&pair.standby));
    let original = std::fs::read_to_string(&exporter.config).unwrap();
    std::fs::write(
        &exporter.config,
        format!("{original}\n[clusters.main]\nexpected_standbys = [\"standby1\", \"ghost\"]\n"),
    )
    .unwrap();
    assert_eq!(
        common::curl_status(&["-X", "POST", &exporter.url("/-/reload")]),
        "200"
    );
    // Right after the reload, before any new cycle could have run.
    let m = exporter.metrics();
    assert!(
        both_up(&m),
        "a target read down after a cluster-only reload"
    );
    let expected = |standby| {
        m.get(
            "pgrepl_cluster_expected_standby_connected",
            &[("cluster", "main"), ("standby", standby)],
        )
    };
    assert_eq!(expected("standby1"), Some(1.0));
    assert_eq!(expected("ghost"), Some(0.0));
    assert_eq!(
        (backends(&pair.primary), backends(&pair.standby)),
        before,
        "a cluster-only change must keep the exporter's sessions"
    );
    assert!(exporter
        .log_text()
        .contains("2 target(s) kept, 0 (re)started"));
}

/// 20 clients reloading as fast as they can for 5 s: the reloads coalesce,
/// an unchanged configuration restarts nothing (the exporter's sessions are
/// the same backends before and after), and collection keeps its pace.
#[test]
fn reload_flood_coalesces_and_opens_no_sessions() {
    let pair = Pair::start("reload-flood");
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &["--web.enable-lifecycle"],
    );
    exporter.wait_for("both up", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
    });
    let backends = |pg: &common::Pg| {
        pg.psql("SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE application_name = 'pg_replication_exporter'")
    };
    let before = (backends(&pair.primary), backends(&pair.standby));
    let url = exporter.url("/-/reload");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let (url, stop, sent) = (url.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let agent = common::http_agent();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = agent.post(&url).send_empty();
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    let first = last_success(&exporter.metrics(), "primary");
    // The flood goes on until three more seconds of collections happened
    // (or WAIT passes: then collection stalled, asserted below).
    common::wait_until(WAIT, || {
        last_success(&exporter.metrics(), "primary") >= first + 3.0
    });
    let during = last_success(&exporter.metrics(), "primary");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    let reloads = exporter
        .log_text()
        .matches("configuration reloaded")
        .count();
    assert!(sent >= 20, "only {sent} reload requests were made");
    assert!(reloads <= sent, "{reloads} reloads for {sent} requests");
    assert_eq!(
        (backends(&pair.primary), backends(&pair.standby)),
        before,
        "an unchanged configuration must keep the exporter's sessions"
    );
    assert!(
        during >= first + 3.0,
        "collection stalled during the flood: last success {first} then {during}"
    );
    assert!(exporter.log_text().contains("unchanged"));
}

/// The same values that are refused at start are refused on reload, and
/// the log line (JSON here) never repeats a secret typed in the wrong place.
#[test]
fn reload_errors_do_not_echo_secrets() {
    const CANARY: &str = "Canary-S3cret-4242";
    let dsn = "postgresql://monitor@127.0.0.1:1/postgres?connect_timeout=1".to_string();
    let exporter = Exporter::start_with(&[("nowhere", dsn)], "", &["--log.format", "json"]);
    let original = std::fs::read_to_string(&exporter.config).unwrap();
    let bad = [
        format!("{original}\n[[targets]]\nname = \"x\"\ndsn = \"host=db1 password={CANARY}\\q\"\n"),
        format!("collect_interval = \"{CANARY}\"\n{original}"),
        format!("{original}\n[[targets]]\nname = \"x\"\ndsn = \"host=h {CANARY}\"\n"),
        format!("listen_address = \"{CANARY}\"\n{original}"),
    ];
    for (i, text) in bad.iter().enumerate() {
        std::fs::write(&exporter.config, text).unwrap();
        hup_and_see_refused(&exporter, i, &format!("case {i} not refused"));
    }
    let log = exporter.log_text();
    assert!(!log.contains(CANARY), "{log}");
    assert!(
        log.contains("line 9, column") || log.contains("column"),
        "{log}"
    );
}
