//! The core families against a real primary and streaming standby: values,
//! not just presence.

use crate::harness as common;

use std::process::Command;
use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);

fn exporter_for(pair: &Pair) -> Exporter {
    Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ])
}

fn up(m: &Metrics, target: &str) -> bool {
    m.get("pgrepl_up", &[("target", target)]) == Some(1.0)
}

#[test]
fn roles_identity_streaming_and_slot() {
    let pair = Pair::start("roles");
    let exporter = exporter_for(&pair);
    let m = exporter.wait_for("both targets up and streaming", WAIT, |m| {
        up(m, "primary")
            && up(m, "standby1")
            && m.get(
                "pgrepl_wal_receiver_status",
                &[("target", "standby1"), ("status", "streaming")],
            ) == Some(1.0)
    });

    common::assert_pair_roles(&m);
    // What a real pair emits is what docs/metrics.md documents.
    let major: u32 = pair
        .primary
        .psql("SELECT current_setting('server_version_num')::int / 10000")
        .parse()
        .unwrap();
    common::assert_matches_reference(&m, "primary", major);
    common::assert_matches_reference(&m, "standby1", major);
    let build = m.all("pgrepl_exporter_build_info", &[]);
    assert_eq!(build.len(), 1);
    for label in ["version", "revision", "branch", "rustc_version"] {
        assert!(
            build[0].labels.get(label).is_some_and(|v| !v.is_empty()),
            "build_info lacks {label}: {:?}",
            build[0].labels
        );
    }
    assert_eq!(build[0].labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        m.get("pgrepl_timeline_id", &[("target", "primary")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_timeline_id", &[("target", "standby1")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_timeline_changes_total", &[("target", "primary")]),
        Some(0.0)
    );

    let info_p = m.all("pgrepl_server_info", &[("target", "primary")]);
    let info_s = m.all("pgrepl_server_info", &[("target", "standby1")]);
    assert_eq!(info_p.len(), 1);
    assert_eq!(info_s.len(), 1);
    let sysid = info_p[0].labels["system_identifier"].clone();
    assert!(sysid.len() > 10, "system_identifier {sysid:?}");
    assert_eq!(info_s[0].labels["system_identifier"], sysid);
    assert_eq!(info_p[0].labels["cluster_name"], "primary");
    assert!(info_p[0].labels["version"]
        .chars()
        .next()
        .unwrap()
        .is_ascii_digit());

    // Primary side: the standby is streaming asynchronously through its slot.
    let sb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("client_addr", "127.0.0.1"),
        ("slot_name", "standby1_slot"),
    ];
    common::assert_streaming_async(&m);
    assert!(m.has("pgrepl_standby_reply_timestamp_seconds", &sb));
    assert_eq!(
        m.get("pgrepl_standbys", &[("target", "standby1")]),
        Some(0.0)
    );

    // The slot, on the primary only.
    let slot = [
        ("target", "primary"),
        ("slot_name", "standby1_slot"),
        ("slot_type", "physical"),
        ("database", ""),
    ];
    let mut reserved = slot.to_vec();
    reserved.push(("wal_status", "reserved"));
    assert_eq!(m.get("pgrepl_slot_wal_status", &reserved), Some(1.0));
    assert!(
        !m.has("pgrepl_slot_safe_wal_size_bytes", &slot),
        "unlimited max_slot_wal_keep_size"
    );
    assert!(!m.has("pgrepl_slot_active", &[("target", "standby1")]));

    // Standby side.
    let receiver = m.all("pgrepl_wal_receiver_info", &[("target", "standby1")]);
    assert_eq!(receiver.len(), 1);
    assert_eq!(receiver[0].labels["sender_host"], "127.0.0.1");
    assert_eq!(
        receiver[0].labels["sender_port"],
        pair.primary.port.to_string()
    );
    assert_eq!(receiver[0].labels["slot_name"], "standby1_slot");
    common::assert_standby_receiving(&m);
    assert!(!m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "standby1"), ("position", "current")]
    ));
    assert!(!m.has("pgrepl_wal_receiver_status", &[("target", "primary")]));
    assert!(!m.has("pgrepl_replay_paused", &[("target", "primary")]));

    // Settings and WAL directory, as the non-superuser pg_monitor role.
    common::assert_pair_settings(&m, "replica", Some(0.0));
    assert!(!m.has(
        "pgrepl_max_slot_wal_keep_size_bytes",
        &[("target", "primary")]
    ));
    let settings = m.all("pgrepl_settings_info", &[("target", "primary")]);
    assert_eq!(settings[0].labels["wal_log_hints"], "on");
    assert!(m
        .get("pgrepl_wal_directory_files", &[("target", "primary")])
        .is_some_and(|v| v >= 1.0));

    // Health.
    assert_eq!(
        m.get("pgrepl_collect_errors_total", &[("target", "primary")]),
        Some(0.0)
    );
    assert!(m
        .get("pgrepl_collect_duration_seconds", &[("target", "primary")])
        .is_some_and(|v| v > 0.0 && v < 1.0));
    assert!(m.has(
        "pgrepl_last_collect_success_timestamp_seconds",
        &[("target", "standby1")]
    ));
    assert_eq!(m.all("pgrepl_exporter_build_info", &[]).len(), 1);

    // Archiving: a WAL switch is archived by archive_command.
    let archived_before = m
        .get("pgrepl_archiver_archived_total", &[("target", "primary")])
        .unwrap_or(0.0);
    pair.primary.write_wal(100);
    pair.primary.psql("SELECT pg_switch_wal()");
    let m = exporter.wait_for("a WAL file archived", WAIT, |m| {
        m.get("pgrepl_archiver_archived_total", &[("target", "primary")])
            .unwrap_or(0.0)
            > archived_before
    });
    assert_eq!(
        m.get("pgrepl_archiver_failed_total", &[("target", "primary")]),
        Some(0.0)
    );
    assert!(m.has(
        "pgrepl_archiver_last_archived_timestamp_seconds",
        &[("target", "primary")]
    ));
    assert!(m.has(
        "pgrepl_archiver_pending_wal_files",
        &[("target", "primary")]
    ));

    promtool_check(&exporter);
    openmetrics_and_gzip(&exporter);
}

/// The real output passes `promtool check metrics`.
fn promtool_check(exporter: &Exporter) {
    let text = exporter.get("/metrics").expect("metrics");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by `make test` (Debian package prometheus)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n{text}"
    );
}

fn openmetrics_and_gzip(exporter: &Exporter) {
    let agent = common::http_agent();
    let mut resp = agent
        .get(&exporter.url("/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .call()
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.trim_end().ends_with("# EOF"));
    assert!(body.contains("pgrepl_collect_errors_total{target=\"primary\"}"));

    // ureq would inflate gzip transparently; look at the raw answer.
    let raw = common::raw_request(
        exporter.port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    );
    let head = String::from_utf8_lossy(&raw[..raw.len().min(400)]).to_lowercase();
    assert!(
        head.starts_with("http/1.1 200") && head.contains("content-encoding: gzip"),
        "{head}"
    );

    let resp = agent.get(&exporter.url("/nope")).call().unwrap();
    assert_eq!(resp.status(), 404);
    let resp = agent.post(&exporter.url("/metrics")).send("").unwrap();
    assert_eq!(resp.status(), 405);
    let mut resp = agent.get(&exporter.url("/")).call().unwrap();
    assert!(resp
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("href=\"/metrics\""));
}

#[test]
fn paused_replay_grows_lag_then_recovers() {
    let pair = Pair::start("pause");
    let exporter = exporter_for(&pair);
    let sb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("stage", "replay"),
    ];
    // A replayed commit (so pg_last_xact_replay_timestamp() has a value),
    // replay paused, more WAL than the lag can hide.
    let common::PausedLag {
        written,
        lagging: m,
        ..
    } = common::pause_and_outgrow(&pair, &exporter);
    let delay = m
        .get("pgrepl_replay_delay_seconds", &[("target", "standby1")])
        .expect("replay delay");
    exporter.wait_for("replay delay grows while paused", WAIT, |m| {
        m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")])
            .unwrap_or(0.0)
            >= delay + 1.0
    });

    // The lag keeps growing while paused.
    let first = m.get("pgrepl_standby_lag_bytes", &sb).unwrap();
    pair.primary.write_wal(5_000);
    exporter.wait_for("lag grows further", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &sb).unwrap_or(0.0) > first
    });

    pair.standby.psql("SELECT pg_wal_replay_resume()");
    let m = exporter.wait_for("lag falls back after resume", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &sb).unwrap_or(f64::MAX) < written / 10.0
            && m.get("pgrepl_replay_backlog_bytes", &[("target", "standby1")]).unwrap_or(f64::MAX) < written / 10.0
            && m.get("pgrepl_replay_paused", &[("target", "standby1")]) == Some(0.0)
            // Caught up with an idle primary: no delay, however old the last commit.
            && m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")]) == Some(0.0)
    });
    assert_eq!(
        m.get("pgrepl_replay_backlog_bytes", &[("target", "standby1")]),
        Some(0.0)
    );
}

#[test]
fn stopped_standby_vanishes_and_slot_turns_inactive() {
    let pair = Pair::start("stopsb");
    let exporter = exporter_for(&pair);
    let slot = [("target", "primary"), ("slot_name", "standby1_slot")];
    exporter.wait_for("slot active", WAIT, |m| {
        m.get("pgrepl_slot_active", &slot) == Some(1.0)
    });

    let m = common::stop_standby_and_see_it_gone(&pair, &exporter);

    let retained = m.get("pgrepl_slot_retained_wal_bytes", &slot).unwrap();
    pair.primary.write_wal(10_000);
    exporter.wait_for("retained WAL grows with writes", WAIT, |m| {
        m.get("pgrepl_slot_retained_wal_bytes", &slot)
            .unwrap_or(0.0)
            > retained + 1_000_000.0
    });
}

#[test]
fn synchronous_standby_names_forms() {
    let pair = Pair::start("sync");
    let exporter = exporter_for(&pair);
    let sb = [("target", "primary"), ("application_name", "standby1")];
    exporter.wait_for("standby listed", WAIT, |m| {
        m.has("pgrepl_standby_sync_state", &sb)
    });

    pair.primary
        .set_synchronous_standby_names("FIRST 1 (standby1)");
    let m = exporter.wait_for("standby1 synchronous", WAIT, |m| {
        let mut l = sb.to_vec();
        l.push(("sync_state", "sync"));
        m.get("pgrepl_standby_sync_state", &l) == Some(1.0)
    });
    assert_eq!(
        m.get("pgrepl_sync_standbys_required", &[("target", "primary")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standbys_sync", &[("target", "primary")]),
        Some(1.0)
    );
    let mut l = sb.to_vec();
    l.push(("sync_state", "async"));
    assert_eq!(m.get("pgrepl_standby_sync_state", &l), Some(0.0));
    assert_eq!(m.get("pgrepl_standby_sync_priority", &sb), Some(1.0));
    let settings = m.all("pgrepl_settings_info", &[("target", "primary")]);
    assert_eq!(
        settings[0].labels["synchronous_standby_names"],
        "FIRST 1 (standby1)"
    );

    pair.primary.set_synchronous_standby_names("ANY 2 (a, b)");
    let m = exporter.wait_for("ANY 2 parsed", WAIT, |m| {
        m.get("pgrepl_sync_standbys_required", &[("target", "primary")]) == Some(2.0)
    });
    assert_eq!(
        m.get("pgrepl_standbys_sync", &[("target", "primary")]),
        Some(0.0)
    );
}

#[test]
fn promotion_moves_role_and_timeline() {
    let pair = Pair::start("promote");
    let exporter = exporter_for(&pair);
    exporter.wait_for("standby in recovery", WAIT, |m| {
        m.get("pgrepl_in_recovery", &[("target", "standby1")]) == Some(1.0)
    });
    pair.standby.promote();
    let m = exporter.wait_for("standby promoted to timeline 2", WAIT, |m| {
        m.get("pgrepl_in_recovery", &[("target", "standby1")]) == Some(0.0)
            && m.get("pgrepl_timeline_id", &[("target", "standby1")]) == Some(2.0)
    });
    assert_eq!(
        m.get("pgrepl_timeline_changes_total", &[("target", "standby1")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_timeline_changes_total", &[("target", "primary")]),
        Some(0.0)
    );
    assert!(m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "standby1"), ("position", "current")]
    ));
    assert!(!m.has("pgrepl_wal_receiver_status", &[("target", "standby1")]));
    // Two primaries with one system_identifier: what split-brain looks like.
    let ids: Vec<String> = m
        .all("pgrepl_server_info", &[])
        .iter()
        .map(|s| s.labels["system_identifier"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn killed_primary_goes_down_and_comes_back() {
    let pair = Pair::start("kill");
    let mut exporter = exporter_for(&pair);
    exporter.wait_for("primary up", WAIT, |m| up(m, "primary"));
    pair.primary.kill9();
    let m = exporter.wait_for("primary down", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "primary")]) == Some(0.0)
    });
    assert!(!m.has("pgrepl_in_recovery", &[("target", "primary")]));
    assert!(up(&m, "standby1"), "the standby keeps being collected");
    assert!(exporter.is_running());
    let log = exporter.log_text();
    assert!(
        log.contains("target is down") && log.contains("primary"),
        "{log}"
    );

    pair.primary.start();
    exporter.wait_for("primary up again", WAIT, |m| {
        up(m, "primary") && m.has("pgrepl_in_recovery", &[("target", "primary")])
    });
    assert!(exporter.is_running());
    let log = exporter.log_text();
    assert!(
        !log.contains(common::MONITOR_PASSWORD),
        "password leaked into the log"
    );
}
