//! `pg_replication_exporter status`: the table, the JSON, and an exit code
//! that follows the health of the cluster: 0 healthy, 1 degraded (a
//! problem now, or a warning: a risk that needs a DBA), 2 error (bad
//! configuration, or no member answered), with words that say the same.

use crate::harness as common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run_status, Pair, Pg, Scratch};

const WAIT: Duration = Duration::from_secs(60);

/// A config with these targets (in cluster `main` when `cluster`).
fn config(scratch: &Scratch, targets: &[(&str, String)], cluster: bool) -> PathBuf {
    let path = scratch.path.join("c.toml");
    let mut toml = String::from("collect_interval = \"2s\"\n");
    for (name, dsn) in targets {
        toml.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n"
        ));
        if cluster {
            toml.push_str("cluster = \"main\"\n");
        }
    }
    fs::write(&path, toml).unwrap();
    path
}

/// `status --output json`: exit code and the report.
fn report(config: &Path) -> (Option<i32>, serde_json::Value) {
    let (code, json, err) = run_status(config, true);
    let report = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}{err}"));
    (code, report)
}

/// The cells of `member`'s row in the table.
fn row<'a>(table: &'a str, member: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split('|').nth(2).is_some_and(|c| c.trim() == member))
        .unwrap_or_else(|| panic!("no {member} row:\n{table}"))
        .split('|')
        .map(str::trim)
        .collect()
}

/// Column `name` of `member`'s row.
fn cell<'a>(table: &'a str, member: &str, name: &str) -> &'a str {
    let header: Vec<&str> = table
        .lines()
        .find(|l| l.contains("| MEMBER"))
        .unwrap_or_else(|| panic!("no header:\n{table}"))
        .split('|')
        .map(str::trim)
        .collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    row(table, member)[i]
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

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
    // STATE of the primary: its standbys and how they replicate.
    assert_eq!(
        cell(&table, "primary", "STATE"),
        "1 standby, async",
        "{table}"
    );
    assert_eq!(table.lines().last(), Some("healthy"), "{table}");
    assert!(!table.contains("\x1b["), "no colors when not on a terminal");

    let (code, json, _) = run_status(&config, true);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["verdict"], "healthy");
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

    // Error: nothing reachable, and the words say so.
    pair.primary.stop();
    let (code, table, _) = run_status(&config, false);
    assert_eq!(code, Some(2), "{table}");
    assert!(table.contains("\nerror: no member answered"), "{table}");
    assert!(!table.contains("degraded"), "{table}");
    let (code, json, _) = run_status(&config, true);
    assert_eq!(code, Some(2));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["verdict"], "error");

    // Error: bad configuration, one line.
    fs::write(&config, "bogus = 1\n").unwrap();
    let (code, _, err) = run_status(&config, false);
    assert_eq!(code, Some(2));
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A target without a cluster that is down is a target that is down: no
/// cluster expects it as a standby, and nothing answered is an error.
#[test]
fn a_lone_target_that_is_down() {
    let scratch = Scratch::new("status-lone");
    let dsn = format!(
        "host=127.0.0.1 port={} user=monitor dbname=postgres sslmode=disable connect_timeout=2",
        common::free_port()
    );
    let config = config(&scratch, &[("lone", dsn)], false);
    let (code, table, _) = run_status(&config, false);
    assert_eq!(code, Some(2), "{table}");
    assert!(!table.contains("expected standby"), "{table}");
    assert!(table.contains("  - lone is down: "), "{table}");
    assert!(table.contains("error: no member answered"), "{table}");
    let (code, report) = report(&config);
    assert_eq!(code, Some(2));
    assert_eq!(
        report["clusters"][0]["expected_standbys"],
        serde_json::json!([])
    );
}

/// The SYNC column of a standby whose `application_name` is neither its
/// target name nor its `cluster_name`: its walsender is found by the slot
/// it streams through, as the cluster view finds its upstream.
#[test]
fn sync_state_when_the_application_name_is_not_the_target_name() {
    let pair = Pair::start("status-appname");
    pair.standby.psql(&format!(
        "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=repl application_name=reader_b'",
        pair.primary.port
    ));
    pair.standby.psql("SELECT pg_reload_conf()");
    assert!(common::wait_until(WAIT, || pair
        .primary
        .try_psql(
            "SELECT count(*) FROM pg_stat_replication \
             WHERE state = 'streaming' AND application_name = 'reader_b'"
        )
        .is_ok_and(|v| v == "1")));
    let scratch = Scratch::new("status-appname-config");
    let config = config(
        &scratch,
        &[("db-a", pair.primary.dsn()), ("db-b", pair.standby.dsn())],
        true,
    );
    let (code, table, err) = run_status(&config, false);
    assert_eq!(code, Some(0), "{table}{err}");
    assert_eq!(cell(&table, "db-b", "SYNC"), "async", "{table}");
    common::assert_status_upstream(&table, "db-b", "db-a");
    let (_, report) = report(&config);
    let b = report["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "db-b")
        .unwrap()
        .clone();
    assert_eq!(b["sync_state"], "async");
}

/// Risks a DBA must act on make `status` degraded, as they make the lint
/// and the alerts fire: the only standby streaming without a slot (and
/// without enough wal_keep_size), and a stale slot left on a rewound old
/// primary, retaining WAL as it replays. During the failover, the old
/// primary that is down is a member that is down, not a missing standby.
#[test]
fn status_judges_a_failover_a_rewind_and_slots() {
    let pair = Pair::start("status-failover");
    let scratch = Scratch::new("status-failover-config");
    let config = config(
        &scratch,
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        true,
    );
    let (code, table, err) = run_status(&config, false);
    assert_eq!(code, Some(0), "{table}{err}");

    // The standby streams without a slot; its slot is dropped.
    pair.standby.psql("ALTER SYSTEM SET primary_slot_name = ''");
    pair.standby.psql("SELECT pg_reload_conf()");
    assert!(common::wait_until(WAIT, || pair
        .primary
        .try_psql(
            "SELECT count(*) FROM pg_stat_replication r \
             LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid \
             WHERE r.state = 'streaming' AND s.slot_name IS NULL"
        )
        .is_ok_and(|v| v == "1")));
    pair.primary
        .psql("SELECT pg_drop_replication_slot('standby1_slot')");
    let (code, report_json) = report(&config);
    assert_eq!(code, Some(1), "{report_json}");
    assert_eq!(report_json["verdict"], "degraded");
    let warnings = strings(&report_json["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("primary") && w.contains("standby_without_slot_or_wal_keep")),
        "{warnings:?}"
    );
    let (_, table, _) = run_status(&config, false);
    assert!(table.contains("\ndegraded: "), "{table}");

    // Back to a slot, healthy again.
    pair.primary
        .psql("SELECT pg_create_physical_replication_slot('standby1_slot')");
    pair.standby
        .psql("ALTER SYSTEM SET primary_slot_name = 'standby1_slot'");
    pair.standby.psql("SELECT pg_reload_conf()");
    assert!(common::wait_until(WAIT, || pair
        .primary
        .try_psql("SELECT count(*) FROM pg_replication_slots WHERE active")
        .is_ok_and(|v| v == "1")));
    let (code, table, _) = run_status(&config, false);
    assert_eq!(code, Some(0), "{table}");

    // Failover: the primary stops, the standby is promoted. The old
    // primary is down; status cannot know it was the primary, and says
    // only that it is down.
    pair.primary.stop();
    pair.standby.promote();
    pair.standby
        .psql("SELECT pg_create_physical_replication_slot('primary_slot')");
    let (code, report_json) = report(&config);
    assert_eq!(code, Some(1), "{report_json}");
    let problems = strings(&report_json["problems"]);
    assert!(
        problems.iter().any(|p| p.contains("primary is down")),
        "{problems:?}"
    );
    assert!(
        !problems.iter().any(|p| p.contains("expected standby")),
        "{problems:?}"
    );

    // pg_rewind makes the old primary a standby of the new one; it keeps
    // its own slot, which nothing consumes and which holds WAL back.
    rewind(&pair.primary, &pair.standby);
    common::wait_streams_to(&pair.standby, &pair.primary);
    pair.standby.write_wal(5000);
    pair.standby.psql("CHECKPOINT");
    let (code, report_json) = report(&config);
    assert_eq!(code, Some(1), "{report_json}");
    let warnings = strings(&report_json["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("primary: slot standby1_slot is inactive")),
        "{warnings:?}"
    );
    assert!(
        strings(&report_json["problems"]).is_empty(),
        "{report_json}"
    );

    // Dropping the stale slot clears it.
    pair.primary
        .psql("SELECT pg_drop_replication_slot('standby1_slot')");
    let (code, table, _) = run_status(&config, false);
    assert_eq!(code, Some(0), "{table}");
}

/// `pg_rewind` of the stopped `old` primary from `new`, then `old` started
/// as a standby of `new` through the slot `primary_slot`.
fn rewind(old: &Pg, new: &Pg) {
    let out = old
        .command("pg_rewind")
        .arg("-D")
        .arg(&old.data)
        .arg(format!(
            "--source-server=host=127.0.0.1 port={} user=postgres dbname=postgres",
            new.port
        ))
        .output()
        .expect("pg_rewind");
    assert!(
        out.status.success(),
        "pg_rewind: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // pg_rewind copied the new primary's configuration: make it the old
    // one's again, as a standby of the new primary.
    old.append_conf(
        "postgresql.auto.conf",
        &format!(
            "port = {}\ncluster_name = '{}'\nprimary_slot_name = 'primary_slot'\n\
             primary_conninfo = 'host=127.0.0.1 port={} user=repl application_name={}'",
            old.port, old.name, new.port, old.name
        ),
    );
    fs::write(old.data.join("standby.signal"), "").unwrap();
    old.start();
}

/// What the server sends is shown, never obeyed: an upstream host with a
/// newline and an OSC sequence (a standby's `primary_conninfo` is all it
/// takes; PostgreSQL reports it raw as `sender_host`), the same in
/// `application_name` (which PostgreSQL cleans), and an error spread over
/// several lines (`DETAIL:` of a standby with `hot_standby = off`) stay on
/// their row, escaped.
#[test]
fn status_escapes_what_servers_say() {
    let pair = Pair::start("status-escape");
    pair.primary
        .psql("SELECT pg_create_physical_replication_slot('standby2_slot')");
    let standby2 = common::clone_standby(
        &pair.scratch.path,
        &pair.primary,
        "standby2",
        "standby2_slot",
    );
    standby2.append_conf("postgresql.auto.conf", "hot_standby = off");
    standby2.start();
    // standby1 streams through no slot (nothing but its address could
    // name its upstream), from a host name with control characters:
    // `\n`, `\033` and `\007` are postgresql.conf's escapes.
    let hostile = r"''evil\n\033]0;pwned\007''";
    let app = r"''s1\n\033]0;pwned\007''";
    pair.standby.stop();
    pair.standby.append_conf(
        "postgresql.auto.conf",
        &format!(
            "primary_slot_name = ''\nprimary_conninfo = 'host={hostile} hostaddr=127.0.0.1 \
             port={} user=repl application_name={app}'",
            pair.primary.port
        ),
    );
    pair.standby.start();
    assert!(common::wait_until(WAIT, || pair
        .standby
        .try_psql(
            "SELECT count(*) FROM pg_stat_wal_receiver \
             WHERE status = 'streaming' AND sender_host LIKE 'evil%'"
        )
        .is_ok_and(|v| v == "1")));
    let scratch = Scratch::new("status-escape-config");
    let config = config(
        &scratch,
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
            ("standby2", standby2.dsn()),
        ],
        true,
    );
    let (code, table, err) = run_status(&config, false);
    assert_eq!(code, Some(1), "{table}{err}");
    for c in ['\u{1b}', '\u{7}', '\r'] {
        assert!(!table.contains(c), "raw {c:?} in:\n{table}");
    }
    // standby1 streams, from an upstream no member is known as: said so,
    // not "not streaming".
    assert!(
        table.contains("expected standby standby1 streams from an upstream that is no member"),
        "{table}"
    );
    // Every line is a rule, a row, or the verdict and its list.
    for line in table.lines() {
        assert!(
            line.starts_with('+')
                || line.starts_with('|')
                || line.starts_with("degraded: ")
                || line.starts_with("  - "),
            "forged line {line:?} in:\n{table}"
        );
    }
    assert!(
        cell(&table, "standby1", "UPSTREAM").starts_with(r"evil\n\u{1b}]0;pwned\u{7}:"),
        "{table}"
    );
    assert!(
        cell(&table, "standby2", "ISSUES").contains(r"\nDETAIL: Hot standby mode is disabled."),
        "{table}"
    );
    // The JSON keeps the text as it is, escaped the JSON way.
    let (_, report) = report(&config);
    let text = report.to_string();
    assert!(
        text.contains(r"\nDETAIL: Hot standby mode is disabled."),
        "{text}"
    );
}

/// The README's one-liner for a single server, `DATA_SOURCE_NAME=...
/// pg_replication_exporter`, with the password where the README says it
/// may go: a file named by `PGREPL_PASSWORD_FILE`, `PGPASSWORD`, or the
/// DSN. Without any, the server's refusal (`password missing`) is what
/// the operator sees.
#[test]
fn the_single_server_one_liner_finds_its_password() {
    let pair = Pair::start("status-one-liner");
    let scratch = Scratch::new("status-one-liner-env");
    let secret = scratch.path.join("pgpass");
    fs::write(&secret, format!("{}\n", common::MONITOR_PASSWORD)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let dsn = format!(
        "postgresql://monitor@127.0.0.1:{}/postgres?sslmode=disable",
        pair.primary.port
    );
    let with_password = format!(
        "postgresql://monitor:{}@127.0.0.1:{}/postgres?sslmode=disable",
        common::MONITOR_PASSWORD,
        pair.primary.port
    );
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // No ~/.pgpass of whoever runs the tests.
            .env("HOME", &scratch.path)
            .arg("status");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run status");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let file = secret.display().to_string();
    for vars in [
        vec![
            ("DATA_SOURCE_NAME", dsn.as_str()),
            ("PGREPL_PASSWORD_FILE", file.as_str()),
        ],
        vec![
            ("DATA_SOURCE_NAME", dsn.as_str()),
            ("PGPASSWORD", common::MONITOR_PASSWORD),
        ],
        vec![("DATA_SOURCE_NAME", with_password.as_str())],
    ] {
        let (code, table) = run(&vars);
        assert_eq!(code, Some(0), "{vars:?}:\n{table}");
        assert!(table.contains("primary"), "{table}");
    }
    let (code, table) = run(&[("DATA_SOURCE_NAME", dsn.as_str())]);
    assert_eq!(code, Some(2), "{table}");
    assert!(table.contains("password missing"), "{table}");
}
