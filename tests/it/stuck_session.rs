//! A session whose backend hangs (SIGSTOP on that one backend, while the
//! server accepts new sessions) is sent a cancel request when a collection
//! times out and discarded when it times out again: the next cycle
//! connects afresh and the target is up again within a few intervals, the
//! stopped backend still stopped.

use crate::harness as common;

use std::process::Command;
use std::time::Duration;

use common::{Exporter, Metrics, Scratch};

const WAIT: Duration = Duration::from_secs(30);

fn up(m: &Metrics) -> Option<f64> {
    m.get("pgrepl_up", &[("target", "primary")])
}

fn signal(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

/// `T` (stopped) in `/proc/PID/stat`.
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state == "T")
}

#[test]
fn a_hung_session_is_cancelled_discarded_and_replaced() {
    let scratch = Scratch::new("stuck-session");
    let primary = common::init_primary(&scratch.path, "primary", "");
    let exporter = Exporter::start(&[("primary", primary.dsn())]);
    exporter.wait_for("up", WAIT, |m| up(m) == Some(1.0));

    // The exporter's own backends, found as a DBA would.
    let pids: Vec<u32> = primary
        .psql(
            "SELECT pid FROM pg_stat_activity \
             WHERE application_name = 'pg_replication_exporter'",
        )
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(!pids.is_empty(), "no exporter session on the primary");
    signal(&pids, "STOP");
    let stopped_at = std::time::Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        exporter.wait_for("down while its session hangs", WAIT, |m| up(m) == Some(0.0));
        let down = stopped_at.elapsed();
        // Within a few intervals (1 s each), on a new session.
        exporter.wait_for("up again on a new session", Duration::from_secs(15), |m| {
            up(m) == Some(1.0)
        });
        println!(
            "backend stopped: down after {down:?}, up again after {:?}",
            stopped_at.elapsed()
        );
        assert!(
            pids.iter().all(|p| stopped(*p)),
            "the hung backends were resumed by someone else"
        );
        let m = exporter.wait_for("still up a few cycles later", WAIT, |m| {
            m.get(
                "pgrepl_last_collect_success_timestamp_seconds",
                &[("target", "primary")],
            )
            .is_some()
        });
        assert_eq!(up(&m), Some(1.0));
        assert!(
            exporter.log_text().contains("did not finish within"),
            "{}",
            exporter.log_text()
        );
    }));
    signal(&pids, "CONT");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // The discarded sessions end once their backends run again (the
    // cancel request and the closed socket are waiting for them).
    assert!(
        common::wait_until(WAIT, || {
            let sessions = primary.psql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({})",
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            sessions == "0"
        }),
        "the discarded sessions are still there"
    );
    assert!(primary.exporter_sessions() <= 2);
    exporter.wait_for("up after SIGCONT", WAIT, |m| up(m) == Some(1.0));
}
