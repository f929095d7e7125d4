//! The opt-in heartbeat: end-to-end lag that stays small on an idle
//! primary and grows second by second when replay stops.

use crate::harness as common;

use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);

fn lag(m: &Metrics) -> Option<f64> {
    m.get("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
}

#[test]
fn heartbeat_lag_small_when_idle_and_growing_when_paused() {
    let pair = Pair::start("heartbeat");
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    exporter.wait_for("heartbeat read on the standby", WAIT, |m| lag(m).is_some());
    // The primary is idle (nothing but the heartbeat): the lag stays small,
    // collection after collection, for four seconds of them.
    let m = exporter.through_cycles("standby1", 4.0, WAIT, |m| {
        let idle = lag(m).unwrap();
        assert!(idle < 3.0, "idle heartbeat lag {idle}");
    });
    assert!(!m.has("pgrepl_heartbeat_lag_seconds", &[("target", "primary")]));
    // The table exists with one row for the cluster, readable by pg_monitor.
    assert_eq!(
        pair.primary
            .psql("SELECT cluster FROM public.pgrepl_heartbeat"),
        "main"
    );

    pair.standby.psql("SELECT pg_wal_replay_pause()");
    let first = exporter.wait_for("lag starts growing", WAIT, |m| lag(m).unwrap_or(0.0) > 2.0);
    let v1 = lag(&first).unwrap();
    // It keeps growing, second by second (the heartbeat is written every
    // second; replay stays paused).
    exporter.wait_for("lag grows by two more seconds", WAIT, |m| {
        lag(m).is_some_and(|v2| v2 >= v1 + 2.0)
    });
    // Byte lag on the standby side says nothing useful here; the heartbeat does.
    pair.standby.psql("SELECT pg_wal_replay_resume()");
    exporter.wait_for("lag small again", WAIT, |m| lag(m).is_some_and(|v| v < 3.0));
}

#[test]
fn heartbeat_without_privileges_explains_itself() {
    let pair = Pair::start("hbdenied");
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        "collect_interval = \"1s\"\n[clusters.main.heartbeat]\ntable = \"public.hb_denied\"\n",
        &[],
    );
    assert!(common::wait_until(WAIT, || exporter
        .log_text()
        .contains("heartbeat not written")));
    let log = exporter.log_text();
    assert!(
        log.contains("cannot create public.hb_denied")
            && log.contains("CREATE TABLE public.hb_denied"),
        "{log}"
    );
    // Collection goes on; the family is simply absent.
    let m = exporter.wait_for("both up", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
            && m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
    });
    assert!(!m.has("pgrepl_heartbeat_lag_seconds", &[]));
    assert_eq!(
        log.matches("heartbeat not written").count(),
        1,
        "one line per distinct error"
    );
}
