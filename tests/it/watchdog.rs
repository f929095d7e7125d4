//! The watchdog: a target whose collection task dies, hangs, or is never
//! restarted reads down (`pgrepl_up 0`, its values withheld) once no cycle
//! finished within interval + timeout + grace; a dead or hung task is
//! restarted and counted in `pgrepl_collector_restarts_total`.
//!
//! Faults come from the test-only hook (`fault-injection` feature, enabled
//! for test builds only): no timing guess decides what happened.

use crate::harness as common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(40);

fn up(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_up", &[("target", target)])
}

fn restarts(m: &Metrics, target: &str) -> f64 {
    m.get("pgrepl_collector_restarts_total", &[("target", target)])
        .unwrap_or(-1.0)
}

/// A pair and the exporter for both, taking its faults from a file that
/// starts empty. Field order matters: the exporter stops first.
struct Rig {
    exporter: Exporter,
    faults: PathBuf,
    _dir: tempfile::TempDir,
    _pair: Pair,
}

fn start(tag: &str) -> Rig {
    let pair = Pair::start(tag);
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults");
    std::fs::write(&faults, "").unwrap();
    let exporter = Exporter::start_with_env(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &[],
        &[(
            "PG_REPLICATION_EXPORTER_FAULTS",
            faults.display().to_string(),
        )],
    );
    Rig {
        exporter,
        faults,
        _dir: dir,
        _pair: pair,
    }
}

#[test]
fn a_task_that_dies_or_hangs_is_restarted_and_counted() {
    let rig = start("watchdog-restart");
    let (exporter, faults) = (&rig.exporter, &rig.faults);
    let m = exporter.wait_for("both up", WAIT, |m| {
        up(m, "primary") == Some(1.0) && up(m, "standby1") == Some(1.0)
    });
    assert_eq!(restarts(&m, "standby1"), 0.0);
    assert_eq!(
        m.get("pgrepl_collect_interval_seconds", &[("target", "standby1")]),
        Some(1.0)
    );

    for (n, fault) in ["panic", "hang", "exit"].into_iter().enumerate() {
        std::fs::write(faults, format!("standby1 {fault}\n")).unwrap();
        let want = (n + 1) as f64;
        let m = exporter.wait_for(&format!("restart after {fault}"), WAIT, |m| {
            restarts(m, "standby1") == want
        });
        // The other target is not touched.
        assert_eq!(restarts(&m, "primary"), 0.0, "after {fault}");
        exporter.wait_for(&format!("standby1 back after {fault}"), WAIT, |m| {
            up(m, "standby1") == Some(1.0) && m.has("pgrepl_in_recovery", &[("target", "standby1")])
        });
        assert!(exporter
            .log_text()
            .contains("restarting the collection task"));
    }
    assert_eq!(up(&exporter.metrics(), "primary"), Some(1.0));
}

#[test]
fn a_task_that_is_never_restarted_reads_down() {
    let rig = start("watchdog-stale");
    let (exporter, faults) = (&rig.exporter, &rig.faults);
    let m = exporter.wait_for("both up", WAIT, |m| {
        up(m, "primary") == Some(1.0)
            && up(m, "standby1") == Some(1.0)
            && m.has("pgrepl_wal_receiver_status", &[("target", "standby1")])
    });
    let frozen = m
        .get(
            "pgrepl_last_collect_success_timestamp_seconds",
            &[("target", "standby1")],
        )
        .unwrap();
    // The task hangs for good and the supervisor may not restart it: only
    // the read-time watchdog stands between a frozen snapshot and the scrape.
    std::fs::write(faults, "standby1 hang-no-restart\n").unwrap();
    let m = exporter.wait_for("standby1 down by the watchdog", WAIT, |m| {
        up(m, "standby1") == Some(0.0)
    });
    for family in [
        "pgrepl_in_recovery",
        "pgrepl_wal_receiver_status",
        "pgrepl_replay_delay_seconds",
        "pgrepl_wal_lsn_bytes",
        "pgrepl_server_info",
    ] {
        assert!(
            !m.has(family, &[("target", "standby1")]),
            "{family} of a stale target is still exported"
        );
    }
    assert_eq!(
        m.get(
            "pgrepl_cluster_member_state",
            &[("target", "standby1"), ("state", "down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_cluster_expected_standby_connected",
            &[("standby", "standby1")]
        ),
        Some(0.0)
    );
    // The timestamp stays what it was: the alert on its age can fire.
    assert!(
        m.get(
            "pgrepl_last_collect_success_timestamp_seconds",
            &[("target", "standby1")]
        )
        .unwrap()
            <= frozen + 2.0
    );
    assert_eq!(restarts(&m, "standby1"), 0.0);
    // It stays down while the primary is collected for three more
    // seconds: nothing vouches for it.
    exporter.through_cycles("primary", 3.0, WAIT, |m| {
        assert_eq!(up(m, "standby1"), Some(0.0));
        assert_eq!(up(m, "primary"), Some(1.0));
    });
    // The topology API and the routing checks see the same.
    let health = common::curl_status(&[&exporter.url("/health?target=standby1")]);
    assert_eq!(health, "503");
}
