//! `pg_replication_exporter status`: the table, the JSON, and an exit code
//! that follows the health of the cluster.

mod common;

use std::fs;

use common::{run_status, Pair, Scratch};

#[test]
fn status_table_json_and_exit_codes() {
    let pair = Pair::start("status");
    let scratch = Scratch::new("status-config");
    let config = scratch.path.join("c.toml");
    fs::write(
        &config,
        format!(
            "collect_interval = \"2s\"\n[[targets]]\nname = \"primary\"\ndsn = \"{}\"\ncluster = \"main\"\n\
             [[targets]]\nname = \"standby1\"\ndsn = \"{}\"\ncluster = \"main\"\n",
            pair.primary.dsn(),
            pair.standby.dsn()
        ),
    )
    .unwrap();

    let (code, table, err) = run_status(&config, false);
    assert_eq!(code, Some(0), "{table}{err}");
    for needle in [
        "MEMBER",
        "primary",
        "standby1",
        "streaming",
        "standby1_slot",
        "healthy",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in:\n{table}");
    }
    // UPSTREAM names the member the standby streams from.
    common::assert_status_upstream(&table, "standby1", "primary");
    assert!(!table.contains("\x1b["), "no colors when not on a terminal");

    let (code, json, _) = run_status(&config, true);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(report["healthy"], true);
    let members = report["clusters"][0]["members"].as_array().unwrap();
    let standby = members.iter().find(|m| m["target"] == "standby1").unwrap();
    assert_eq!(standby["role"], "standby");
    assert_eq!(standby["wal_receiver_status"], "streaming");
    assert_eq!(standby["sync_state"], "async");

    // Degraded: replay paused.
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    let (code, table, _) = run_status(&config, false);
    assert_eq!(code, Some(1), "{table}");
    assert!(table.contains("replay paused"), "{table}");
    pair.standby.psql("SELECT pg_wal_replay_resume()");

    // Degraded: the standby is down.
    pair.standby.stop();
    let (code, json, _) = run_status(&config, true);
    assert_eq!(code, Some(1), "{json}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let problems = report["problems"].to_string();
    assert!(problems.contains("standby1 is down"), "{problems}");

    // Error: nothing reachable.
    pair.primary.stop();
    let (code, _, _) = run_status(&config, false);
    assert_eq!(code, Some(2));

    // Error: bad configuration, one line.
    fs::write(&config, "bogus = 1\n").unwrap();
    let (code, _, err) = run_status(&config, false);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
}
