//! The cluster view beyond one primary and one standby, on real servers
//! made as a DBA makes them (`pg_basebackup -R -X stream -S slot`, from
//! the upstream standby for a cascade):
//! - a cascaded standby is connected when its chain reaches the primary,
//!   and its lag is measured against the primary;
//! - a member that is down reads 0 (or down), never vanishes;
//! - commits waiting on a synchronous standby are counted and aged;
//! - a standby delayed on purpose (`recovery_min_apply_delay`) says so;
//! - `ANY 2` of three standbys is healthy with one down, hangs with two.

use crate::harness as common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, Pair, Pg, Scratch, StandbySpec, Topology};

const WAIT: Duration = Duration::from_secs(60);

fn connected(m: &Metrics, standby: &str) -> Option<f64> {
    m.get(
        "pgrepl_cluster_expected_standby_connected",
        &[("standby", standby)],
    )
}

fn up(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_up", &[("target", target)])
}

/// The `status` command on a config of these targets: exit code, stdout.
fn status(targets: &[(&str, String)], json: bool) -> (Option<i32>, String) {
    let scratch = Scratch::new("status-config");
    let config = scratch.path.join("c.toml");
    let mut toml = String::from("collect_interval = \"2s\"\n");
    for (name, dsn) in targets {
        toml.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\ndsn = \"{dsn}\"\ncluster = \"main\"\n"
        ));
    }
    fs::write(&config, toml).unwrap();
    let (code, stdout, _) = common::run_status(&config, json);
    (code, stdout)
}

/// The replication tree of cluster `main` as `target(child, ...)`.
fn tree_text(node: &serde_json::Value) -> String {
    let children: Vec<String> = node["children"]
        .as_array()
        .into_iter()
        .flatten()
        .map(tree_text)
        .collect();
    let name = node["target"].as_str().unwrap_or("?");
    if children.is_empty() {
        name.to_string()
    } else {
        format!("{name}({})", children.join(","))
    }
}

fn main_tree(report: &serde_json::Value) -> String {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .expect("cluster main")["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(tree_text)
        .collect::<Vec<_>>()
        .join(" ")
}

fn lsn_diff(primary: &Pg, standby: &Pg) -> f64 {
    let replay = standby.psql("SELECT pg_last_wal_replay_lsn()");
    primary
        .psql(&format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{replay}')::bigint"
        ))
        .parse()
        .unwrap()
}

#[test]
fn cascaded_standby_is_connected_through_its_upstream() {
    let topo = Topology::start(
        "cascade",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::new("standby2", "standby1", ""),
        ],
    );
    let targets = topo.targets();
    let exporter = Exporter::start(&targets);
    let m = exporter.wait_for("both standbys connected", WAIT, |m| {
        connected(m, "standby1") == Some(1.0) && connected(m, "standby2") == Some(1.0)
    });
    // standby2 streams from standby1, not from the primary.
    common::assert_cascaded(&m, "standby2", "standby1");
    for t in ["standby1", "standby2"] {
        assert_eq!(
            m.get(
                "pgrepl_cluster_member_state",
                &[("target", t), ("state", "standby")]
            ),
            Some(1.0)
        );
        assert_eq!(
            m.get("pgrepl_cluster_timeline_mismatch", &[("target", t)]),
            Some(0.0)
        );
    }
    assert_eq!(m.get("pgrepl_cluster_primaries", &[]), Some(1.0));
    let sysid =
        &m.all("pgrepl_server_info", &[("target", "standby2")])[0].labels["system_identifier"];
    assert_eq!(
        sysid,
        &m.all("pgrepl_server_info", &[("target", "primary")])[0].labels["system_identifier"]
    );
    let major: u32 = topo
        .primary
        .psql("SELECT current_setting('server_version_num')::int / 10000")
        .parse()
        .unwrap();
    for t in ["primary", "standby1", "standby2"] {
        common::assert_matches_reference(&m, t, major);
    }

    // status: healthy, the chain in UPSTREAM, the tree in JSON.
    let (code, table) = status(&targets, false);
    assert_eq!(code, Some(0), "{table}");
    common::assert_status_upstream(&table, "standby2", "primary > standby1");
    assert!(table.contains("healthy"), "{table}");
    let (code, json) = status(&targets, true);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(main_tree(&report), "primary(standby1(standby2))");
    // The topology API shows the same tree.
    let api: serde_json::Value =
        serde_json::from_str(&exporter.get("/api/v1/topology").unwrap()).unwrap();
    assert_eq!(main_tree(&api), "primary(standby1(standby2))");
    let member = api["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "standby2")
        .unwrap()
        .clone();
    assert_eq!(member["chain"], serde_json::json!(["primary", "standby1"]));
    assert_eq!(member["connected"], true);

    // Lag of the cascaded standby is measured against the primary.
    let standby2 = topo.standby("standby2");
    standby2.psql("SELECT pg_wal_replay_pause()");
    topo.primary.write_wal(20_000);
    let direct = lsn_diff(&topo.primary, standby2);
    assert!(direct > 1_000_000.0, "only {direct} bytes written");
    let m = exporter.wait_for("cascaded lag against the primary", WAIT, |m| {
        m.get(
            "pgrepl_cluster_standby_lag_bytes",
            &[("target", "standby2")],
        )
        .is_some_and(|v| v >= direct)
    });
    let measured = m
        .get(
            "pgrepl_cluster_standby_lag_bytes",
            &[("target", "standby2")],
        )
        .unwrap();
    let now_direct = lsn_diff(&topo.primary, standby2);
    assert!(
        (measured - now_direct).abs() <= 1024.0 * 1024.0,
        "exporter says {measured}, SQL says {now_direct}"
    );
    standby2.psql("SELECT pg_wal_replay_resume()");
    exporter.wait_for("standby1 caught up", WAIT, |m| {
        m.get(
            "pgrepl_cluster_standby_lag_bytes",
            &[("target", "standby1")],
        )
        .is_some_and(|v| v < direct)
    });

    // standby1 stops: standby2's chain is broken, both read 0.
    topo.standby("standby1").stop();
    let m = exporter.wait_for("the chain is broken", WAIT, |m| {
        connected(m, "standby1") == Some(0.0) && connected(m, "standby2") == Some(0.0)
    });
    assert_eq!(
        up(&m, "standby2"),
        Some(1.0),
        "standby2 itself still answers"
    );
    let (code, table) = status(&targets, false);
    assert_eq!(code, Some(1), "{table}");
    assert!(
        table.contains("expected standby standby2 is not streaming"),
        "{table}"
    );
}

#[test]
fn a_member_that_is_down_reads_zero_not_absent() {
    let pair = Pair::start("down-member");
    let targets = [
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ];
    let exporter = Exporter::start(&targets);
    exporter.wait_for("standby connected", WAIT, |m| {
        connected(m, "standby1") == Some(1.0)
    });
    pair.standby.stop();
    let check = |m: &Metrics| {
        up(m, "standby1") == Some(0.0)
            && connected(m, "standby1") == Some(0.0)
            && m.get(
                "pgrepl_cluster_member_state",
                &[("target", "standby1"), ("state", "down")],
            ) == Some(1.0)
            && m.get(
                "pgrepl_cluster_member_state",
                &[("target", "standby1"), ("state", "standby")],
            ) == Some(0.0)
            && m.get(
                "pgrepl_cluster_timeline_mismatch",
                &[("target", "standby1")],
            ) == Some(0.0)
            && m.get("pgrepl_cluster_members_up", &[]) == Some(1.0)
    };
    exporter.wait_for("the stopped standby reads 0", WAIT, check);
    // An exporter that never saw it up expects it too.
    let fresh = Exporter::start(&targets);
    let m = fresh.wait_for("a member never seen reads 0", WAIT, check);
    // The primary, down or not, is never an expected standby of itself.
    assert!(!m.has(
        "pgrepl_cluster_expected_standby_connected",
        &[("standby", "primary")]
    ));
}

#[test]
fn commits_waiting_on_a_synchronous_standby_are_counted() {
    let pair = Pair::start("syncrep");
    pair.primary
        .set_synchronous_standby_names("FIRST 1 (standby1)");
    let targets = [
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ];
    let exporter = Exporter::start(&targets);
    let m = exporter.wait_for("sync standby streaming", WAIT, |m| {
        m.get("pgrepl_standbys_sync", &[("target", "primary")]) == Some(1.0)
    });
    assert_eq!(
        m.get("pgrepl_sync_commits_waiting", &[("target", "primary")]),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_sync_commit_oldest_wait_seconds",
            &[("target", "primary")]
        ),
        Some(0.0)
    );
    assert!(!m.has("pgrepl_sync_commits_waiting", &[("target", "standby1")]));

    // Before the standby stops: CREATE TABLE commits, and would hang too.
    pair.primary
        .psql("CREATE TABLE IF NOT EXISTS sync_t (i int)");
    pair.standby.stop();
    let mut hung = pair.primary.spawn_psql("INSERT INTO sync_t VALUES (1)");
    let mut hung2 = pair.primary.spawn_psql("INSERT INTO sync_t VALUES (2)");
    exporter.wait_for("two commits waiting", WAIT, |m| {
        m.get("pgrepl_sync_commits_waiting", &[("target", "primary")]) == Some(2.0)
    });
    let m = exporter.wait_for("the oldest wait ages", WAIT, |m| {
        m.get(
            "pgrepl_sync_commit_oldest_wait_seconds",
            &[("target", "primary")],
        )
        .is_some_and(|v| v >= 6.0)
    });
    assert_eq!(
        m.get("pgrepl_sync_standbys_required", &[("target", "primary")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standbys_sync", &[("target", "primary")]),
        Some(0.0)
    );
    assert!(hung.try_wait().unwrap().is_none(), "the INSERT should hang");
    let (code, table) = status(&targets, false);
    assert_eq!(code, Some(1), "{table}");
    assert!(
        table.contains("commit(s) waiting for a synchronous standby"),
        "{table}"
    );
    assert!(
        table.contains("asks for 1 synchronous standby(s), 0 connected"),
        "{table}"
    );

    pair.standby.start();
    exporter.wait_for("commits released", WAIT, |m| {
        m.get("pgrepl_sync_commits_waiting", &[("target", "primary")]) == Some(0.0)
            && m.get(
                "pgrepl_sync_commit_oldest_wait_seconds",
                &[("target", "primary")],
            ) == Some(0.0)
    });
    let deadline = Instant::now() + WAIT;
    for child in [&mut hung, &mut hung2] {
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(child.try_wait().unwrap().is_some_and(|s| s.success()));
    }
}

#[test]
fn a_delayed_standby_says_it_waits_on_purpose() {
    let topo = Topology::start(
        "delayed",
        "",
        &[StandbySpec::new(
            "standby1",
            "primary",
            "recovery_min_apply_delay = '20s'",
        )],
    );
    let targets = topo.targets();
    let exporter = Exporter::start(&targets);
    exporter.wait_for("delay read", WAIT, |m| {
        m.get(
            "pgrepl_recovery_min_apply_delay_seconds",
            &[("target", "standby1")],
        ) == Some(20.0)
    });
    topo.primary.psql("CREATE TABLE delayed_t (i int)");
    // Writes every half second; the standby holds each back for 20 s.
    let deadline = Instant::now() + Duration::from_secs(35);
    let mut waiting_seen = false;
    let mut max_delay: f64 = 0.0;
    while Instant::now() < deadline {
        topo.primary.psql("INSERT INTO delayed_t VALUES (1)");
        let m = exporter.metrics();
        if m.get(
            "pgrepl_replay_apply_delay_waiting",
            &[("target", "standby1")],
        ) == Some(1.0)
        {
            waiting_seen = true;
        }
        if let Some(d) = m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")]) {
            max_delay = max_delay.max(d);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        waiting_seen,
        "the startup process never showed RecoveryApplyDelay"
    );
    // The delay is the configured one, give or take the write interval and
    // a collection, never far beyond.
    assert!(
        (15.0..=26.0).contains(&max_delay),
        "replay delay peaked at {max_delay}s for a 20s apply delay"
    );
    let m = exporter.metrics();
    assert!(!m.has(
        "pgrepl_replay_apply_delay_waiting",
        &[("target", "primary")]
    ));
    let (code, table) = status(&targets, false);
    assert_eq!(code, Some(0), "{table}");
    assert!(table.contains("(delayed 20s)"), "{table}");
}

#[test]
fn any_two_of_three_is_healthy_with_one_down_and_hangs_with_two() {
    let topo = Topology::start(
        "quorum",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::direct("standby2"),
            StandbySpec::direct("standby3"),
        ],
    );
    topo.primary
        .set_synchronous_standby_names("ANY 2 (standby1, standby2, standby3)");
    let targets = topo.targets();
    let exporter = Exporter::start(&targets);
    let m = exporter.wait_for("three quorum standbys", WAIT, |m| {
        m.get("pgrepl_standbys_sync", &[("target", "primary")]) == Some(3.0)
    });
    assert_eq!(
        m.get("pgrepl_sync_standbys_required", &[("target", "primary")]),
        Some(2.0)
    );
    for s in ["standby1", "standby2", "standby3"] {
        assert_eq!(
            m.get(
                "pgrepl_standby_sync_state",
                &[
                    ("target", "primary"),
                    ("application_name", s),
                    ("sync_state", "quorum")
                ]
            ),
            Some(1.0)
        );
    }
    topo.primary.psql("CREATE TABLE quorum_t (i int)");

    // One of three down: commits still complete, no sync problem.
    topo.standby("standby3").stop();
    exporter.wait_for("two quorum standbys left", WAIT, |m| {
        m.get("pgrepl_standbys_sync", &[("target", "primary")]) == Some(2.0)
    });
    let mut insert = topo.primary.spawn_psql("INSERT INTO quorum_t VALUES (1)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while insert.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        insert.try_wait().unwrap().is_some_and(|s| s.success()),
        "a commit hung with 2 of 3"
    );
    let (_, json) = status(&targets, true);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let problems = report["problems"].to_string();
    assert!(!problems.contains("synchronous"), "{problems}");
    assert!(problems.contains("standby3 is down"), "{problems}");

    // Two of three down: commits hang, and everything says so.
    topo.standby("standby2").stop();
    let mut hung = topo.primary.spawn_psql("INSERT INTO quorum_t VALUES (2)");
    let m = exporter.wait_for("commits hang with 1 of 3", WAIT, |m| {
        m.get("pgrepl_standbys_sync", &[("target", "primary")]) == Some(1.0)
            && m.get("pgrepl_sync_commits_waiting", &[("target", "primary")]) == Some(1.0)
    });
    assert_eq!(
        m.get("pgrepl_sync_standbys_required", &[("target", "primary")]),
        Some(2.0)
    );
    let (code, table) = status(&targets, false);
    assert_eq!(code, Some(1), "{table}");
    assert!(
        table.contains("asks for 2 synchronous standby(s), 1 connected"),
        "{table}"
    );
    assert!(hung.try_wait().unwrap().is_none());
    topo.standby("standby2").start();
    let deadline = Instant::now() + WAIT;
    while hung.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(hung.try_wait().unwrap().is_some_and(|s| s.success()));
}
