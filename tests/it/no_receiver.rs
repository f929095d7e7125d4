//! Numbers that must stay true when a standby has no running WAL receiver:
//! its upstream died after a failover, it was cut off, or it is fed from a
//! WAL archive. Each test drives the real failure and checks the exporter
//! against what PostgreSQL itself says.

use crate::harness as common;

use std::time::{Duration, Instant};

use common::{Exporter, Metrics, Pair, StandbySpec, Topology};

const WAIT: Duration = Duration::from_secs(60);

/// Status and JSON body of a routing check.
fn get_status(port: u16, path: &str) -> (u16, serde_json::Value) {
    let raw = common::raw_request(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// An exporter beside one server, the layout the README recommends for
/// HAProxy: that server as its only target, in no cluster, so nothing tells
/// it where the primary is.
fn sidecar(name: &str, dsn: &str) -> Exporter {
    Exporter::start_with(
        &[],
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\n\
             [[targets]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n"
        ),
        &[],
    )
}

fn receiver_streaming(m: &Metrics, target: &str) -> bool {
    m.get(
        "pgrepl_wal_receiver_status",
        &[("target", target), ("status", "streaming")],
    ) == Some(1.0)
}

fn timeline(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_timeline_id", &[("target", target)])
}

fn timeline_changes(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_timeline_changes_total", &[("target", target)])
}

fn collected_at(m: &Metrics, target: &str) -> f64 {
    m.get(
        "pgrepl_last_collect_success_timestamp_seconds",
        &[("target", target)],
    )
    .unwrap_or(0.0)
}

/// Scrapes until `target` was collected successfully for `span` more
/// seconds, handing each scrape to `check`: what must hold cycle after
/// cycle, not only once.
fn through_cycles(exporter: &Exporter, target: &str, span: f64, check: impl Fn(&Metrics)) {
    let first = collected_at(&exporter.metrics(), target);
    let deadline = Instant::now() + WAIT;
    loop {
        let m = exporter.metrics();
        check(&m);
        if collected_at(&m, target) >= first + span {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{target} was not collected for {span} s"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Lines of the exporter's log that report a timeline switch of `target`.
fn switch_lines(exporter: &Exporter, target: &str) -> Vec<String> {
    exporter
        .log_text()
        .lines()
        .filter(|l| l.contains("switched timeline") && l.contains(target))
        .map(str::to_string)
        .collect()
}

/// Primary P with standbys S1, S2; stop P, promote S1, re-point
/// S2 at S1, stop S1. S2 follows timeline 2 and must read 2 although no
/// WAL receiver runs any more and its last restartpoint (what
/// `pg_control_checkpoint()` shows) is still on timeline 1: no phantom
/// switch back to 1, in the counter, the log or the routing answer.
#[test]
fn a_follower_keeps_its_timeline_when_its_new_upstream_stops() {
    let topo = Topology::start(
        "tl-follow",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::direct("standby2"),
        ],
    );
    let exporter = Exporter::start(&topo.targets());
    exporter.wait_for("standby2 streams on timeline 1", WAIT, |m| {
        receiver_streaming(m, "standby2") && timeline(m, "standby2") == Some(1.0)
    });

    // Failover: P stops, S1 is promoted, S2 follows S1.
    let s1 = topo.standby("standby1");
    let s2 = topo.standby("standby2");
    topo.primary.stop();
    s1.promote();
    s1.psql("SELECT pg_create_physical_replication_slot('standby2_slot', true)");
    s2.psql(&format!(
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=repl application_name=standby2'",
        s1.port
    ));
    s2.psql("SELECT pg_reload_conf()");
    common::wait_streams_to(s1, s2);
    s1.write_wal(100);
    let m = exporter.wait_for("standby2 follows standby1 on timeline 2", WAIT, |m| {
        receiver_streaming(m, "standby2") && timeline(m, "standby2") == Some(2.0)
    });
    assert_eq!(timeline(&m, "standby1"), Some(2.0));
    assert_eq!(timeline_changes(&m, "standby2"), Some(1.0));
    assert_eq!(switch_lines(&exporter, "standby2").len(), 1);

    // S1 stops: S2 has no upstream and no WAL receiver any more.
    s1.stop();
    exporter.wait_for("standby2 lost its WAL receiver", WAIT, |m| {
        !receiver_streaming(m, "standby2")
            && m.get("pgrepl_up", &[("target", "standby2")]) == Some(1.0)
    });
    // What PostgreSQL's control file still says until a restartpoint: the
    // source the exporter used to fall back to.
    assert_eq!(
        s2.psql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "1",
        "the scenario needs a standby whose last restartpoint is on timeline 1"
    );
    through_cycles(&exporter, "standby2", 5.0, |m| {
        assert_eq!(timeline(m, "standby2"), Some(2.0), "standby2's timeline");
        assert_eq!(timeline_changes(m, "standby2"), Some(1.0), "phantom switch");
    });
    let lines = switch_lines(&exporter, "standby2");
    assert_eq!(lines.len(), 1, "one switch (1 -> 2) only: {lines:?}");
    let (_, body) = get_status(exporter.port, "/replica?target=standby2");
    assert_eq!(body["timeline"], 2, "{body}");

    // An exporter that never saw the receiver reads it from pg_wal.
    let fresh = sidecar("standby2", &s2.dsn());
    let m = fresh.wait_for("the fresh exporter collects standby2", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "standby2")]) == Some(1.0)
    });
    assert_eq!(timeline(&m, "standby2"), Some(2.0));
    assert_eq!(timeline_changes(&m, "standby2"), Some(0.0));

    // PostgreSQL's own word: a restartpoint records the timeline it replays.
    s2.psql("CHECKPOINT");
    assert_eq!(
        s2.psql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    let m = exporter.metrics();
    assert_eq!(timeline(&m, "standby2"), Some(2.0));
    assert_eq!(timeline_changes(&m, "standby2"), Some(1.0));
}

/// In the one-server-per-exporter layout, a standby cut off from
/// its primary while 64 MB were written there must not pass
/// `/replica?lag=16MB&max_delay=30s` with lag 0 (receive minus replay on the
/// standby alone): its lag is unknown, and the check says so.
#[test]
fn the_sidecar_replica_check_does_not_pass_a_cut_off_standby() {
    let pair = Pair::start("sidecar-cut");
    let exporter = sidecar("standby1", &pair.standby.dsn());
    pair.primary.write_wal(100);
    exporter.wait_for("standby1 streams and replayed a transaction", WAIT, |m| {
        receiver_streaming(m, "standby1")
            && m.has(
                "pgrepl_last_replay_timestamp_seconds",
                &[("target", "standby1")],
            )
    });
    let check = "/replica?lag=16MB&max_delay=30s";
    let (status, body) = get_status(exporter.port, check);
    assert_eq!(status, 200, "a healthy streaming standby passes: {body}");
    assert!(
        body["lag_bytes"]
            .as_f64()
            .is_some_and(|l| l < 1024.0 * 1024.0),
        "{body}"
    );

    // Cut the standby off: its WAL receiver has nowhere to connect.
    pair.standby.psql(
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=repl connect_timeout=1'",
    );
    pair.standby.psql("SELECT pg_reload_conf()");
    assert!(
        common::wait_until(WAIT, || pair.standby.psql(
            "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"
        ) == "0"),
        "the WAL receiver kept streaming"
    );
    let start = pair.primary.wal_position();
    while pair.primary.wal_position() - start < 64.0 * 1024.0 * 1024.0 {
        pair.primary.write_wal(50_000);
    }
    let behind = pair.primary.wal_position()
        - pair
            .standby
            .psql("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")
            .parse::<f64>()
            .unwrap();
    assert!(
        behind >= 64.0 * 1024.0 * 1024.0,
        "only {behind} bytes behind"
    );

    exporter.wait_for("the exporter sees the receiver gone", WAIT, |m| {
        !receiver_streaming(m, "standby1")
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
    });
    for path in [check, "/replica?lag=16MB", "/replica?max_delay=30s"] {
        let (status, body) = get_status(exporter.port, path);
        assert_eq!(status, 503, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or("");
        assert!(reason.contains("lag unknown"), "{path}: {body}");
        assert!(body["lag_bytes"].is_null(), "{path}: {body}");
    }
    // Without limits it is still a standby.
    assert_eq!(get_status(exporter.port, "/replica").0, 200);

    // Reconnected, it catches up and passes again.
    pair.standby.psql(&format!(
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=repl application_name=standby1'",
        pair.primary.port
    ));
    pair.standby.psql("SELECT pg_reload_conf()");
    assert!(
        common::wait_until(WAIT, || get_status(exporter.port, check).0 == 200),
        "{}",
        get_status(exporter.port, check).1
    );

    // The primary stops, with more written before: unknown again.
    pair.standby
        .psql("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=repl'");
    pair.standby.psql("SELECT pg_reload_conf()");
    pair.primary.write_wal(50_000);
    pair.primary.stop();
    assert!(common::wait_until(WAIT, || {
        let (status, body) = get_status(exporter.port, check);
        status == 503
            && body["reason"]
                .as_str()
                .unwrap_or("")
                .contains("lag unknown")
    }));
}

/// A standby fed only from the WAL archive (restore_command, no
/// primary_conninfo) has no WAL receiver, so `pg_last_wal_receive_lsn()` is
/// NULL. On an idle primary it is fully caught up, yet the age of its last
/// replayed commit grows: that must not read as a replay delay. With the
/// cluster view (the primary's position known) it reads 0 and passes
/// `/replica?max_delay`; beside the standby alone it reads unknown. A real
/// backlog still reads as a delay.
#[test]
fn an_archive_fed_standby_on_an_idle_primary_is_not_delayed() {
    let pair = Pair::start_with("archive-fed", "autovacuum = off\n");
    let archive = pair.scratch.path.join("archive");
    pair.standby.stop();
    pair.standby.append_conf(
        "postgresql.auto.conf",
        &format!(
            "primary_conninfo = ''\nprimary_slot_name = ''\n\
             restore_command = 'cp {}/%f %p'\n",
            archive.display()
        ),
    );
    pair.standby.start();
    let standby_rows = || {
        pair.standby
            .try_psql("SELECT count(*) FROM t_wal")
            .unwrap_or_default()
    };
    pair.primary.write_wal(100);
    pair.primary.psql("SELECT pg_switch_wal()");
    assert!(
        common::wait_until(WAIT, || standby_rows() == "100"),
        "the standby did not restore the archived WAL"
    );
    assert_eq!(
        pair.standby
            .psql("SELECT pg_last_wal_receive_lsn() IS NULL AND (SELECT count(*) FROM pg_stat_wal_receiver) = 0"),
        "t",
        "an archive-fed standby has no WAL receiver"
    );

    let cluster = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    let alone = sidecar("standby1", &pair.standby.dsn());
    for e in [&cluster, &alone] {
        e.wait_for("standby1 collected", WAIT, |m| {
            m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
        });
    }

    // The primary stays idle; PostgreSQL's age of the last replayed commit
    // grows past the limit the routing check is asked for.
    assert!(common::wait_until(WAIT, || pair.standby.psql(
        "SELECT now() - pg_last_xact_replay_timestamp() > interval '4 s'"
    ) == "t"));
    assert_eq!(
        standby_rows(),
        pair.primary.psql("SELECT count(*) FROM t_wal"),
        "caught up: the standby has every committed row"
    );
    let delay = |m: &Metrics| m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")]);
    through_cycles(&cluster, "standby1", 3.0, |m| {
        assert_eq!(
            delay(m),
            Some(0.0),
            "the cluster view knows it is caught up"
        );
    });
    let (status, body) = get_status(cluster.port, "/replica?target=standby1&max_delay=3s");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replay_delay_seconds"], 0.0, "{body}");
    through_cycles(&alone, "standby1", 3.0, |m| {
        assert_eq!(delay(m), None, "alone, its delay is unknown, not growing");
    });
    let (status, body) = get_status(alone.port, "/replica?max_delay=3s");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap_or("").contains("unknown"),
        "{body}"
    );
    assert!(body["replay_delay_seconds"].is_null(), "{body}");
    // Without a limit it is a standby like any other.
    assert_eq!(get_status(alone.port, "/replica").0, 200);

    // A real backlog is a delay: replay paused, a transaction archived.
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    pair.primary.write_wal(10);
    pair.primary.psql("SELECT pg_switch_wal()");
    let m = cluster.wait_for("the delay grows while a commit waits", WAIT, |m| {
        delay(m).is_some_and(|d| d > 3.0)
    });
    assert!(delay(&m).is_some_and(|d| d < 600.0), "{:?}", delay(&m));
    assert!(common::wait_until(WAIT, || get_status(
        cluster.port,
        "/replica?target=standby1&max_delay=3s"
    )
    .0 == 503));
    pair.standby.psql("SELECT pg_wal_replay_resume()");
    assert!(common::wait_until(WAIT, || standby_rows() == "110"));
    cluster.wait_for("caught up again", WAIT, |m| delay(m) == Some(0.0));
}

/// `pgrepl_standby_lag_seconds` is documented as 0 when the
/// standby is caught up, but PostgreSQL keeps showing the last measured
/// `replay_lag` for a while after the standby caught up (until a second
/// reply reports it fully applied). With 0 bytes behind, it reads 0.
#[test]
fn standby_lag_seconds_is_zero_when_caught_up() {
    let pair = Pair::start_with("stale-lag", "autovacuum = off\n");
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    exporter.wait_for("standby1 streams", WAIT, |m| {
        receiver_streaming(m, "standby1")
    });
    // A measured replay lag of a few seconds: replay paused while WAL
    // arrives. The pause is the input, so its length is a plain sleep.
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    pair.primary.write_wal(1000);
    std::thread::sleep(Duration::from_secs(3));
    pair.standby.psql("SELECT pg_wal_replay_resume()");

    // PostgreSQL: caught up (replay = current), replay_lag still shown.
    let stale = "SELECT r.replay_lsn = pg_current_wal_lsn() AND r.replay_lag > interval '1 s' \
                 FROM pg_stat_replication r WHERE application_name = 'standby1'";
    assert!(
        common::wait_until(WAIT, || pair.primary.psql(stale) == "t"),
        "PostgreSQL never showed a stale replay_lag"
    );
    let labels = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("stage", "replay"),
    ];
    let m = exporter.wait_for("0 bytes behind", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &labels) == Some(0.0)
    });
    assert_eq!(
        pair.primary.psql(stale),
        "t",
        "PostgreSQL still shows the stale replay_lag"
    );
    assert_eq!(m.get("pgrepl_standby_lag_seconds", &labels), Some(0.0));
}
