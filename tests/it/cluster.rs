//! The cluster view against real servers: expected standbys, split brain,
//! routing health checks, lag from outside, and the configuration lint.

use crate::harness as common;

use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);

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

fn connected(m: &Metrics, standby: &str) -> Option<f64> {
    m.get(
        "pgrepl_cluster_expected_standby_connected",
        &[("cluster", "main"), ("standby", standby)],
    )
}

#[test]
fn two_standbys_expected_and_one_stops() {
    let pair = Pair::start("expected");
    pair.primary
        .psql("SELECT pg_create_physical_replication_slot('standby2_slot')");
    let standby2 = common::clone_standby(
        &pair.scratch.path,
        &pair.primary,
        "standby2",
        "standby2_slot",
    );
    standby2.start();
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
            ("standby2", standby2.dsn()),
        ],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n[clusters.main]\nexpected_standbys = [\"standby1\", \"standby2\"]\n",
        &[],
    );
    let m = exporter.wait_for("both standbys connected and collected", WAIT, |m| {
        connected(m, "standby1") == Some(1.0)
            && connected(m, "standby2") == Some(1.0)
            && m.get("pgrepl_cluster_members_up", &[("cluster", "main")]) == Some(3.0)
    });
    assert_eq!(
        m.get("pgrepl_cluster_primaries", &[("cluster", "main")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_cluster_members", &[("cluster", "main")]),
        Some(3.0)
    );
    assert_eq!(
        m.get("pgrepl_cluster_members_up", &[("cluster", "main")]),
        Some(3.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_cluster_timeline_mismatch",
            &[("cluster", "main"), ("target", "standby1")]
        ),
        Some(0.0)
    );
    assert!(m
        .get(
            "pgrepl_cluster_standby_lag_bytes",
            &[("cluster", "main"), ("target", "standby2")]
        )
        .is_some());
    assert_eq!(
        m.get(
            "pgrepl_config_issue",
            &[
                ("target", "primary"),
                ("check", "system_identifier_mismatch")
            ]
        ),
        Some(0.0)
    );

    standby2.stop();
    let m = exporter.wait_for("standby2 missing", WAIT, |m| {
        connected(m, "standby2") == Some(0.0)
    });
    assert_eq!(connected(&m, "standby1"), Some(1.0));
    assert!(
        !m.has("pgrepl_standby_state", &[("application_name", "standby2")]),
        "standby2's series must be gone"
    );
    assert_eq!(
        m.get("pgrepl_cluster_members_up", &[("cluster", "main")]),
        Some(2.0)
    );
    // Lag from outside is gone with the standby; the slot keeps counting.
    assert!(m
        .get(
            "pgrepl_slot_retained_wal_bytes",
            &[("slot_name", "standby2_slot")]
        )
        .is_some());

    // The topology API says the same.
    let (status, body) = get_status(exporter.port, "/api/v1/topology");
    assert_eq!(status, 200);
    let cluster = &body["clusters"][0];
    assert_eq!(cluster["name"], "main");
    assert_eq!(cluster["primaries"][0], "primary");
    let missing: Vec<&str> = cluster["expected_standbys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["connected"] == false)
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(missing, vec!["standby2"]);
}

#[test]
fn promotion_with_old_primary_running_is_split_brain() {
    let pair = Pair::start("split");
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    exporter.wait_for("one primary", WAIT, |m| {
        m.get("pgrepl_cluster_primaries", &[("cluster", "main")]) == Some(1.0)
            && connected(m, "standby1") == Some(1.0)
    });
    assert_eq!(get_status(exporter.port, "/primary?target=primary").0, 200);
    assert_eq!(get_status(exporter.port, "/primary?target=standby1").0, 503);
    assert_eq!(get_status(exporter.port, "/replica?target=standby1").0, 200);

    pair.standby.promote();
    let m = exporter.wait_for("two primaries", WAIT, |m| {
        m.get("pgrepl_cluster_primaries", &[("cluster", "main")]) == Some(2.0)
    });
    // Without expected_standbys in the config, the expected ones are the
    // members in recovery: none are left.
    assert_eq!(connected(&m, "standby1"), None);
    let (s1, b1) = get_status(exporter.port, "/primary?target=primary");
    let (s2, b2) = get_status(exporter.port, "/primary?target=standby1");
    assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
    assert_eq!(b2["role"], "primary");
    assert_eq!(b2["timeline"], 2);
    assert_eq!(get_status(exporter.port, "/replica?target=standby1").0, 503);
}

#[test]
fn replica_health_follows_lag_and_delay() {
    let pair = Pair::start("routing");
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    pair.primary.write_wal(10);
    exporter.wait_for("replayed once", WAIT, |m| {
        m.has(
            "pgrepl_last_replay_timestamp_seconds",
            &[("target", "standby1")],
        )
    });
    assert_eq!(
        get_status(
            exporter.port,
            "/replica?target=standby1&lag=16MB&max_delay=30s"
        )
        .0,
        200
    );
    assert_eq!(get_status(exporter.port, "/health?target=standby1").0, 200);
    // Bad requests are told so.
    assert_eq!(
        get_status(exporter.port, "/replica?target=standby1&lag=lots").0,
        400
    );
    assert_eq!(
        get_status(exporter.port, "/replica").0,
        400,
        "two targets need ?target="
    );
    assert_eq!(get_status(exporter.port, "/replica?target=nobody").0, 404);

    pair.standby.psql("SELECT pg_wal_replay_pause()");
    pair.primary.write_wal(20_000);
    assert!(common::wait_until(WAIT, || get_status(
        exporter.port,
        "/replica?target=standby1&lag=1MB"
    )
    .0 == 503));
    let (status, body) = get_status(exporter.port, "/replica?target=standby1&lag=1MB");
    assert_eq!(status, 503);
    assert!(body["reason"].as_str().unwrap().contains("lag"), "{body}");
    assert!(body["lag_bytes"].as_f64().unwrap() > 1024.0 * 1024.0);
    // Without limits it is still a replica; a generous limit passes.
    assert_eq!(get_status(exporter.port, "/replica?target=standby1").0, 200);
    assert_eq!(
        get_status(exporter.port, "/replica?target=standby1&lag=1GB").0,
        200
    );
    // The delay grows while paused.
    assert!(common::wait_until(WAIT, || get_status(
        exporter.port,
        "/replica?target=standby1&max_delay=2s"
    )
    .0 == 503));

    // A down target is 503 everywhere.
    pair.standby.stop();
    assert!(common::wait_until(WAIT, || get_status(
        exporter.port,
        "/health?target=standby1"
    )
    .0 == 503));
    let (_, body) = get_status(exporter.port, "/health?target=standby1");
    assert_eq!(body["role"], "down");
    // The multi-target probe serves one target.
    let raw = common::raw_request(
        exporter.port,
        "GET /probe?target=primary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let m = Metrics::parse(body);
    assert_eq!(m.get("pgrepl_up", &[("target", "primary")]), Some(1.0));
    assert!(!m.has("pgrepl_up", &[("target", "standby1")]));
}

#[test]
fn lint_fires_on_wal_log_hints_off_and_clears() {
    let pair = Pair::start_with("lint", "wal_log_hints = off\n");
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    let issue = |m: &Metrics, t: &str, check: &str| {
        m.get("pgrepl_config_issue", &[("target", t), ("check", check)])
    };
    let m = exporter.wait_for("lint on", WAIT, |m| {
        issue(m, "primary", "pg_rewind_impossible") == Some(1.0)
    });
    // The harness's primary has slots and no max_slot_wal_keep_size.
    assert_eq!(issue(&m, "primary", "slot_wal_unlimited"), Some(1.0));
    assert_eq!(issue(&m, "primary", "wal_level_minimal"), Some(0.0));
    assert_eq!(
        issue(&m, "primary", "standby_without_slot_or_wal_keep"),
        Some(0.0)
    );
    assert_eq!(issue(&m, "primary", "archive_command_failing"), Some(0.0));

    pair.primary.psql("ALTER SYSTEM SET wal_log_hints = on");
    pair.primary
        .psql("ALTER SYSTEM SET max_slot_wal_keep_size = '1GB'");
    pair.primary.stop();
    pair.primary.start();
    let m = exporter.wait_for("lint cleared", WAIT, |m| {
        issue(m, "primary", "pg_rewind_impossible") == Some(0.0)
    });
    assert_eq!(issue(&m, "primary", "slot_wal_unlimited"), Some(0.0));

    // Synchronous names that are not connected, with synchronous_commit off.
    pair.primary
        .psql("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (ghost)'");
    pair.primary
        .psql("ALTER SYSTEM SET synchronous_commit = off");
    pair.primary.psql("SELECT pg_reload_conf()");
    let m = exporter.wait_for("sync lint", WAIT, |m| {
        issue(m, "primary", "sync_standby_not_connected") == Some(1.0)
    });
    assert_eq!(
        issue(&m, "primary", "synchronous_commit_off_with_sync_standbys"),
        Some(1.0)
    );

    // A failing archive_command.
    pair.primary
        .psql("ALTER SYSTEM SET archive_command = 'false'");
    pair.primary.psql("SELECT pg_reload_conf()");
    pair.primary.write_wal(10);
    pair.primary.psql("SELECT pg_switch_wal()");
    exporter.wait_for("archive lint", WAIT, |m| {
        issue(m, "primary", "archive_command_failing") == Some(1.0)
    });
}

/// Makes one recovery conflict on `standby`: a repeatable-read query there
/// still sees rows that VACUUM on `primary` removes; with
/// `max_standby_streaming_delay = 0` replay cancels it at once. Returns the
/// standby's conflict total afterwards.
fn make_recovery_conflict(primary: &common::Pg, standby: &common::Pg, round: u32) -> u64 {
    let total = || -> u64 {
        standby
            .psql(
                "SELECT (sum(confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin \
                 + confl_deadlock))::bigint FROM pg_stat_database_conflicts",
            )
            .parse()
            .unwrap_or(0)
    };
    let before = total();
    let table = format!("conflict_{round}");
    primary.psql(&format!(
        "CREATE TABLE {table} AS SELECT g FROM generate_series(1, 1000) g"
    ));
    assert!(common::wait_until(WAIT, || standby
        .try_psql(&format!("SELECT count(*) FROM {table}"))
        .is_ok_and(|v| v == "1000")));
    let mut reader = standby.spawn_psql(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM {table}; \
         SELECT pg_sleep(60); COMMIT;"
    ));
    assert!(common::wait_until(WAIT, || {
        standby
        .try_psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND state = 'active' AND pid <> pg_backend_pid()")
        .is_ok_and(|v| v == "1")
    }));
    primary.psql(&format!("DELETE FROM {table}"));
    primary.psql(&format!("VACUUM {table}"));
    assert!(
        common::wait_until(WAIT, || total() > before),
        "no recovery conflict on {}",
        standby.name
    );
    let _ = reader.kill();
    let _ = reader.wait();
    total()
}

/// `hot_standby_feedback_off_with_conflicts` judges conflicts the exporter
/// saw happen, not PostgreSQL's total since the last statistics reset: a
/// standby whose conflicts are old reads 0, a new conflict reads 1 (and the
/// check clears an hour after the last one, see lint::ConflictWindow).
#[test]
fn feedback_lint_follows_new_conflicts_not_the_total() {
    let pair = Pair::start("conflicts");
    pair.standby
        .psql("ALTER SYSTEM SET max_standby_streaming_delay = 0");
    pair.standby.psql("SELECT pg_reload_conf()");
    // A conflict before the exporter starts: history.
    let old = make_recovery_conflict(&pair.primary, &pair.standby, 1);
    assert!(old > 0);
    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    let issue = |m: &Metrics| {
        m.get(
            "pgrepl_config_issue",
            &[
                ("target", "standby1"),
                ("check", "hot_standby_feedback_off_with_conflicts"),
            ],
        )
    };
    let m = exporter.wait_for("the check judged", WAIT, |m| issue(m).is_some());
    assert_eq!(
        m.get("pgrepl_recovery_conflicts_total", &[("target", "standby1")]),
        Some(old as f64)
    );
    assert_eq!(issue(&m), Some(0.0), "old conflicts keep the check on");
    exporter.through_cycles("standby1", 3.0, WAIT, |m| {
        assert_eq!(issue(m), Some(0.0), "old conflicts turned the check on");
    });
    // A new conflict while the exporter watches.
    make_recovery_conflict(&pair.primary, &pair.standby, 2);
    exporter.wait_for("the check fires", WAIT, |m| issue(m) == Some(1.0));
}

fn privilege_missing(m: &Metrics, target: &str, privilege: &str) -> Option<f64> {
    m.get(
        "pgrepl_privilege_missing",
        &[("target", target), ("privilege", privilege)],
    )
}

/// A role without `pg_monitor` sees `pg_stat_replication` and
/// `pg_stat_wal_receiver` with their details NULL: it cannot tell whether a
/// standby streams. The exporter says what each target may not read
/// (`pgrepl_privilege_missing`), and an expected standby it cannot judge
/// has no series rather than a false 0 (a standby that is down still reads
/// 0). With the standby's own receiver visible (its role has the
/// privilege) the standby is judged from it. `status` warns instead of
/// claiming a standby does not stream.
#[test]
fn a_role_without_privileges_cannot_see_and_says_so() {
    let pair = Pair::start("privileges");
    pair.primary
        .psql("CREATE ROLE plain LOGIN PASSWORD 'plain-Secret-5'");
    assert!(common::wait_until(WAIT, || pair
        .standby
        .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'plain'")
        == "1"));
    let plain = |port: u16| {
        format!("host=127.0.0.1 port={port} user=plain password=plain-Secret-5 dbname=postgres sslmode=disable")
    };
    let exporter = Exporter::start(&[
        ("primary", plain(pair.primary.port)),
        ("standby1", plain(pair.standby.port)),
    ]);
    let m = exporter.wait_for("both up, privileges read", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
            && privilege_missing(m, "standby1", "pg_read_all_stats").is_some()
            && privilege_missing(m, "primary", "pg_read_all_stats").is_some()
    });
    for t in ["primary", "standby1"] {
        for p in [
            "pg_read_all_stats",
            "pg_ls_waldir",
            "pg_ls_archive_statusdir",
        ] {
            assert_eq!(privilege_missing(&m, t, p), Some(1.0), "{t} {p}");
        }
    }
    // The standby streams; the exporter cannot see it, and says nothing.
    assert_eq!(
        pair.primary
            .psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
        "1"
    );
    assert_eq!(connected(&m, "standby1"), None, "cannot see is not 0");
    exporter.through_cycles("primary", 2.0, WAIT, |m| {
        assert_eq!(connected(m, "standby1"), None, "cannot see is not 0");
    });

    // status: degraded by the warning, no false problem.
    let scratch = common::Scratch::new("privileges-status");
    let config = scratch.path.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"primary\"\ndsn = \"{}\"\ncluster = \"main\"\n\
             [[targets]]\nname = \"standby1\"\ndsn = \"{}\"\ncluster = \"main\"\n",
            plain(pair.primary.port),
            plain(pair.standby.port)
        ),
    )
    .unwrap();
    let (code, json, _) = common::run_status(&config, true);
    assert_eq!(code, Some(1), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{json}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("pg_read_all_stats"), "{warnings}");
    assert!(
        warnings.contains("cannot tell whether expected standby standby1 streams"),
        "{warnings}"
    );

    // The standby's own role may read its receiver: judged from it.
    let mixed = Exporter::start(&[
        ("primary", plain(pair.primary.port)),
        ("standby1", pair.standby.dsn()),
    ]);
    let m = mixed.wait_for("judged from the standby's receiver", WAIT, |m| {
        connected(m, "standby1") == Some(1.0)
    });
    assert_eq!(
        privilege_missing(&m, "standby1", "pg_read_all_stats"),
        Some(0.0)
    );
    assert_eq!(
        privilege_missing(&m, "primary", "pg_read_all_stats"),
        Some(1.0)
    );
    drop(mixed);

    // Granted while running: seen at the next collection.
    pair.primary.psql("GRANT pg_monitor TO plain");
    exporter.wait_for("the privileges granted", WAIT, |m| {
        privilege_missing(m, "primary", "pg_read_all_stats") == Some(0.0)
            && privilege_missing(m, "standby1", "pg_ls_waldir") == Some(0.0)
    });

    // A standby that is down reads 0, privileges or not.
    pair.primary.psql("REVOKE pg_monitor FROM plain");
    pair.standby.stop();
    exporter.wait_for("the stopped standby reads 0", WAIT, |m| {
        connected(m, "standby1") == Some(0.0)
    });
}
