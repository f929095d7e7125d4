//! The version matrix: every supported PostgreSQL major, 10 to 18, with the
//! value assertions of `tests/it/replication.rs` and the families each major
//! provides checked against `docs/compatibility.md`.
//!
//! The server builds come from `scripts/pg-versions.sh` (cache
//! `${PGREPL_PG_CACHE:-/var/cache/pgrepl-pg}/<major>/bin`). Each major's
//! test is `#[ignore]`d, so a plain `cargo test` does not report it as
//! passed; `make test-matrix` installs every major and runs them with
//! `--ignored`, and a missing build fails. The builds have no
//! `pg_basebackup`, so each standby is a cold copy of the stopped primary
//! (`Pair::start_cold_copy_with`).

use crate::harness as common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);
const MAJORS: [u32; 9] = [10, 11, 12, 13, 14, 15, 16, 17, 18];
const LOGICAL_SLOT: &str = "matrix_logical";
const WAL_KEEP_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
const SLOT_WAL_LIMIT_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

// ---------------------------------------------------------------------------
// docs/compatibility.md

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// ✓: present.
    Present,
    /// —: absent.
    Absent,
    /// (✓): available, but only under conditions the matrix does not stage.
    NotStaged,
}

/// One family in the table: a name, optionally with labels that must be
/// non-empty (`name{a,b}`).
#[derive(Debug, Clone)]
struct FamilySpec {
    name: String,
    labels: Vec<String>,
}

impl FamilySpec {
    fn parse(token: &str) -> FamilySpec {
        match token.split_once('{') {
            None => FamilySpec {
                name: token.to_string(),
                labels: vec![],
            },
            Some((name, rest)) => FamilySpec {
                name: name.to_string(),
                labels: rest
                    .trim_end_matches('}')
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .collect(),
            },
        }
    }

    fn seen_in(&self, scrapes: &[Metrics]) -> bool {
        scrapes.iter().any(|m| {
            m.all(&self.name, &[]).iter().any(|s| {
                self.labels
                    .iter()
                    .all(|l| s.labels.get(l).is_some_and(|v| !v.is_empty()))
            })
        })
    }
}

impl std::fmt::Display for FamilySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labels.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}{{{}}}", self.name, self.labels.join(","))
        }
    }
}

#[derive(Debug)]
struct Group {
    name: String,
    families: Vec<FamilySpec>,
    cells: BTreeMap<u32, Cell>,
}

fn compatibility_table() -> Vec<Group> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/compatibility.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut majors: Vec<u32> = Vec::new();
    let mut groups = Vec::new();
    for line in text.lines().map(str::trim) {
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "family group" {
            majors = cells[2..]
                .iter()
                .map(|c| c.parse().unwrap_or_else(|_| panic!("major column {c:?}")))
                .collect();
            continue;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        assert_eq!(
            cells.len(),
            majors.len() + 2,
            "compatibility table row has the wrong number of cells: {line}"
        );
        let families = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(FamilySpec::parse)
            .collect::<Vec<_>>();
        assert!(!families.is_empty(), "no `family` in row: {line}");
        let cells = majors
            .iter()
            .zip(&cells[2..])
            .map(|(major, c)| {
                let cell = match *c {
                    "✓" => Cell::Present,
                    "—" => Cell::Absent,
                    "(✓)" => Cell::NotStaged,
                    other => panic!("cell {other:?} in row {line}: use ✓, — or (✓)"),
                };
                (*major, cell)
            })
            .collect();
        groups.push(Group {
            name: cells_name(line),
            families,
            cells,
        });
    }
    assert_eq!(majors, MAJORS, "docs/compatibility.md columns");
    groups
}

fn cells_name(line: &str) -> String {
    line.trim_matches('|')
        .split('|')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// The families this major showed across the test's scrapes against
/// `docs/compatibility.md`'s column for it, in both directions, and every
/// family it showed is listed there.
fn check_against_table(major: u32, scrapes: &[Metrics]) {
    let table = compatibility_table();
    let mut problems = Vec::new();
    for group in &table {
        for family in &group.families {
            let seen = family.seen_in(scrapes);
            match group.cells[&major] {
                Cell::Present if !seen => problems.push(format!(
                    "{family} ({}) is ✓ for {major} but never appeared",
                    group.name
                )),
                Cell::Absent if seen => problems.push(format!(
                    "{family} ({}) is — for {major} but appeared",
                    group.name
                )),
                _ => {}
            }
        }
    }
    let listed: std::collections::BTreeSet<&str> = table
        .iter()
        .flat_map(|g| g.families.iter().map(|f| f.name.as_str()))
        .collect();
    for m in scrapes {
        for name in m.names() {
            if !listed.contains(name.as_str()) {
                problems.push(format!(
                    "{name} appeared on {major} but is not in docs/compatibility.md"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "PostgreSQL {major} against docs/compatibility.md:\n  {}",
        problems.join("\n  ")
    );
}

/// The table itself: well formed, and listing exactly the families the
/// exporter's source renders. Needs no server.
#[test]
fn compatibility_table_lists_every_family() {
    let table = compatibility_table();
    let mut in_table: Vec<String> = table
        .iter()
        .flat_map(|g| g.families.iter())
        .map(|f| f.name.trim_end_matches("_total").to_string())
        .collect();
    in_table.sort();
    in_table.dedup();

    // The families the exporter declares (and renders from).
    let mut in_source: Vec<String> = pg_replication_exporter::testing::families()
        .into_iter()
        .flat_map(|(_, f)| f.iter().map(|f| f.name.to_string()))
        .collect();
    in_source.sort();
    in_source.dedup();
    assert!(in_source.len() > 30, "found only {in_source:?} in src/");
    let missing: Vec<&String> = in_source.iter().filter(|n| !in_table.contains(n)).collect();
    let unknown: Vec<&String> = in_table.iter().filter(|n| !in_source.contains(n)).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/compatibility.md lacks {missing:?}; lists families the source does not render: {unknown:?}"
    );
}

// ---------------------------------------------------------------------------
// The scenario, per major.

fn up(m: &Metrics, target: &str) -> bool {
    m.get("pgrepl_up", &[("target", target)]) == Some(1.0)
}

/// No collection failed on a target that is up: every SQL the exporter
/// sends is valid on this major.
fn no_collect_errors(major: u32, m: &Metrics, targets: &[&str], exporter: &Exporter) {
    for t in targets {
        assert_eq!(
            m.get("pgrepl_collect_errors_total", &[("target", t)]),
            Some(0.0),
            "PostgreSQL {major}: collection errors on {t}; exporter log:\n{}",
            exporter.log_text()
        );
    }
}

fn matrix(major: u32) {
    let bin = common::pg_binaries(major);
    let mut conf = String::from("wal_level = logical\n");
    if major >= 13 {
        conf.push_str("wal_keep_size = '64MB'\nmax_slot_wal_keep_size = '1GB'\n");
    } else {
        // 4 segments of 16 MB: the same 64 MB under the old name.
        conf.push_str("wal_keep_segments = 4\n");
    }
    let pair = Pair::start_cold_copy_with(&format!("matrix{major}"), &bin, major, &conf);
    // An idle logical slot: catalog_xmin (xmin age), `conflicting` (16+)
    // and `inactive_since` and `failover` (17+) on every major that has them.
    let failover = if major >= 17 {
        ", failover => true"
    } else {
        ""
    };
    pair.primary.psql(&format!(
        "SELECT pg_create_logical_replication_slot('{LOGICAL_SLOT}', 'test_decoding'{failover})"
    ));
    // A cascade: standby2 streams from standby1, on every major.
    let standby2 = pair.cascade_cold_copy(major, "standby2");
    // The opt-in heartbeat too: its writer's DDL/upsert and the standby's
    // read must work on every major.
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
            ("standby2", standby2.dsn()),
        ],
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    let mut scrapes: Vec<Metrics> = Vec::new();

    // ---- Roles, identity, streaming, slots (tests/it/replication.rs) ----
    let m = exporter.wait_for("both targets up and streaming", WAIT, |m| {
        up(m, "primary")
            && up(m, "standby1")
            && m.get(
                "pgrepl_wal_receiver_status",
                &[("target", "standby1"), ("status", "streaming")],
            ) == Some(1.0)
            && m.has("pgrepl_slot_active", &[("slot_name", LOGICAL_SLOT)])
            && m.has("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
            && m.get(
                "pgrepl_cluster_expected_standby_connected",
                &[("standby", "standby2")],
            ) == Some(1.0)
    });
    no_collect_errors(major, &m, &["primary", "standby1", "standby2"], &exporter);
    common::assert_pair_roles(&m);
    for t in ["primary", "standby1"] {
        assert_eq!(m.get("pgrepl_timeline_id", &[("target", t)]), Some(1.0));
    }
    assert_eq!(
        m.get("pgrepl_timeline_changes_total", &[("target", "primary")]),
        Some(0.0)
    );
    let info_p = m.all("pgrepl_server_info", &[("target", "primary")]);
    let info_s = m.all("pgrepl_server_info", &[("target", "standby1")]);
    assert_eq!((info_p.len(), info_s.len()), (1, 1));
    let sysid = info_p[0].labels["system_identifier"].clone();
    assert!(sysid.len() > 10, "system_identifier {sysid:?}");
    assert_eq!(info_s[0].labels["system_identifier"], sysid);
    assert_eq!(info_p[0].labels["cluster_name"], "primary");
    assert_eq!(info_s[0].labels["cluster_name"], "standby1");
    for info in [&info_p[0], &info_s[0]] {
        let version = &info.labels["version"];
        assert!(
            version.starts_with(&format!("{major}.")),
            "version {version:?} is not {major}.x"
        );
    }

    let sb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("client_addr", "127.0.0.1"),
        ("slot_name", "standby1_slot"),
    ];
    common::assert_streaming_async(&m);
    // What this major emits is what docs/metrics.md documents.
    common::assert_matches_reference(&m, "primary", major);
    common::assert_matches_reference(&m, "standby1", major);
    common::assert_matches_reference(&m, "standby2", major);

    // ---- The cascade: standby1 serves standby2, which counts as connected ----
    common::assert_cascaded(&m, "standby2", "standby1");
    assert_eq!(
        m.get(
            "pgrepl_cluster_expected_standby_connected",
            &[("standby", "standby1")]
        ),
        Some(1.0)
    );
    assert!(m
        .get(
            "pgrepl_cluster_standby_lag_bytes",
            &[("target", "standby2")]
        )
        .is_some_and(|v| v >= 0.0));
    let topology: serde_json::Value =
        serde_json::from_str(&exporter.get("/api/v1/topology").unwrap()).unwrap();
    let chain = topology["clusters"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == "standby2")
        .map(|m| m["chain"].clone());
    assert_eq!(chain, Some(serde_json::json!(["primary", "standby1"])));
    assert_eq!(
        m.has("pgrepl_standby_reply_timestamp_seconds", &sb),
        major >= 12,
        "reply_time is a 12+ column"
    );
    if major >= 12 {
        let reply = m
            .get("pgrepl_standby_reply_timestamp_seconds", &sb)
            .unwrap();
        assert!(reply > 1.5e9, "reply_time {reply}");
    }

    // The physical slot.
    let slot = [
        ("target", "primary"),
        ("slot_name", "standby1_slot"),
        ("slot_type", "physical"),
        ("database", ""),
    ];
    assert!(
        !m.has("pgrepl_slot_xmin_age_xids", &slot),
        "no feedback, no xmin"
    );
    let mut reserved = slot.to_vec();
    reserved.push(("wal_status", "reserved"));
    if major >= 13 {
        assert_eq!(m.get("pgrepl_slot_wal_status", &reserved), Some(1.0));
        let safe = m.get("pgrepl_slot_safe_wal_size_bytes", &slot).unwrap();
        assert!(
            // The limit (plus what wal_keep_size keeps) minus WAL since
            // the slot's restart_lsn.
            safe > SLOT_WAL_LIMIT_BYTES / 2.0
                && safe <= SLOT_WAL_LIMIT_BYTES + 2.0 * WAL_KEEP_BYTES,
            "safe_wal_size {safe}"
        );
        assert_eq!(
            m.get(
                "pgrepl_max_slot_wal_keep_size_bytes",
                &[("target", "primary")]
            ),
            Some(SLOT_WAL_LIMIT_BYTES)
        );
    } else {
        for family in [
            "pgrepl_slot_wal_status",
            "pgrepl_slot_safe_wal_size_bytes",
            "pgrepl_max_slot_wal_keep_size_bytes",
        ] {
            assert!(!m.has(family, &[]), "{family} on {major}:\n{}", m.text);
        }
    }
    assert!(!m.has("pgrepl_slot_conflicting", &slot), "physical slot");
    assert!(!m.has("pgrepl_slot_inactive_since_timestamp_seconds", &slot));
    assert!(!m.has("pgrepl_slot_active", &[("target", "standby1")]));

    // The idle logical slot.
    let logical = [("target", "primary"), ("slot_name", LOGICAL_SLOT)];
    assert_eq!(m.get("pgrepl_slot_active", &logical), Some(0.0));
    let ls = m.all("pgrepl_slot_active", &logical);
    assert_eq!(ls[0].labels["slot_type"], "logical");
    assert_eq!(ls[0].labels["database"], "postgres");
    assert!(m
        .get("pgrepl_slot_xmin_age_xids", &logical)
        .is_some_and(|v| v >= 0.0));
    assert_eq!(
        m.get("pgrepl_slot_conflicting", &logical),
        (major >= 16).then_some(0.0)
    );
    let since = m.get("pgrepl_slot_inactive_since_timestamp_seconds", &logical);
    assert_eq!(since.is_some(), major >= 17, "inactive_since: {since:?}");
    // Failover slots (17+): the logical slot was created with failover on,
    // the physical one cannot have it; neither is a synced copy on a primary.
    let v17 = |v: f64| (major >= 17).then_some(v);
    assert_eq!(m.get("pgrepl_slot_failover", &logical), v17(1.0));
    assert_eq!(m.get("pgrepl_slot_failover", &slot), v17(0.0));
    assert_eq!(m.get("pgrepl_slot_synced", &logical), v17(0.0));
    assert_eq!(m.get("pgrepl_slot_synced", &slot), v17(0.0));

    // The standby's side.
    let receiver = m.all("pgrepl_wal_receiver_info", &[("target", "standby1")]);
    assert_eq!(receiver.len(), 1);
    let (host, port) = if major >= 11 {
        ("127.0.0.1".to_string(), pair.primary.port.to_string())
    } else {
        (String::new(), String::new())
    };
    assert_eq!(receiver[0].labels["sender_host"], host);
    assert_eq!(receiver[0].labels["sender_port"], port);
    assert_eq!(receiver[0].labels["slot_name"], "standby1_slot");
    common::assert_standby_receiving(&m);
    assert!(!m.has("pgrepl_wal_receiver_status", &[("target", "primary")]));
    assert!(!m.has("pgrepl_replay_paused", &[("target", "primary")]));
    assert!(m
        .get("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
        .is_some_and(|v| (0.0..10.0).contains(&v)));
    assert!(!m.has("pgrepl_heartbeat_lag_seconds", &[("target", "primary")]));

    // Settings, across the wal_keep_segments -> wal_keep_size rename.
    assert_eq!(
        m.get("pgrepl_wal_keep_size_bytes", &[("target", "primary")]),
        Some(WAL_KEEP_BYTES)
    );
    // recovery_min_apply_delay is a recovery.conf parameter before 12: not
    // readable, so absent.
    common::assert_pair_settings(&m, "logical", (major >= 12).then_some(0.0));
    assert_eq!(
        m.has(
            "pgrepl_archiver_pending_wal_files",
            &[("target", "primary")]
        ),
        major >= 12,
        "pg_ls_archive_statusdir() is 12+"
    );
    scrapes.push(m);

    // ---- Replay paused: lag and backlog grow past what was written ----
    let rsb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("stage", "replay"),
    ];
    let common::PausedLag {
        written,
        replayed,
        lagging: m,
    } = common::pause_and_outgrow(&pair, &exporter);
    scrapes.push(replayed);
    let delay = m
        .get("pgrepl_replay_delay_seconds", &[("target", "standby1")])
        .expect("replay delay");
    scrapes.push(m.clone());
    scrapes.push(
        exporter.wait_for("replay and heartbeat delay grow while paused", WAIT, |m| {
            m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")])
                .unwrap_or(0.0)
                >= delay + 1.0
                && m.get("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
                    .unwrap_or(0.0)
                    >= 2.0
        }),
    );
    let first = m.get("pgrepl_standby_lag_bytes", &rsb).unwrap();
    pair.primary.write_wal(5_000);
    scrapes.push(exporter.wait_for("lag grows further", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &rsb).unwrap_or(0.0) > first
    }));
    pair.standby.psql("SELECT pg_wal_replay_resume()");
    let m = exporter.wait_for("lag falls back after resume", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &rsb).unwrap_or(f64::MAX) < written / 10.0
            && m.get("pgrepl_replay_backlog_bytes", &[("target", "standby1")])
                .unwrap_or(f64::MAX)
                < written / 10.0
            && m.get("pgrepl_replay_paused", &[("target", "standby1")]) == Some(0.0)
            && m.get("pgrepl_replay_delay_seconds", &[("target", "standby1")]) == Some(0.0)
            && m.get("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
                .unwrap_or(f64::MAX)
                < 2.0
    });
    no_collect_errors(major, &m, &["primary", "standby1"], &exporter);
    scrapes.push(m);

    // ---- Archiver: one failure (and a pending file), then success ----
    let archive = pair.scratch.path.join("archive");
    let chmod = |mode: &str| {
        let ok = std::process::Command::new("chmod")
            .arg(mode)
            .arg(&archive)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chmod {mode} {}", archive.display());
    };
    let p = [("target", "primary")];
    let m = exporter.wait_for("archiver counters", WAIT, |m| {
        m.has("pgrepl_archiver_failed_total", &p)
    });
    let failed_before = m.get("pgrepl_archiver_failed_total", &p).unwrap();
    chmod("000");
    pair.primary.write_wal(10);
    pair.primary.psql("SELECT pg_switch_wal()");
    scrapes.push(exporter.wait_for("a failed archive_command", WAIT, |m| {
        m.get("pgrepl_archiver_failed_total", &p).unwrap_or(0.0) > failed_before
            && m.has("pgrepl_archiver_last_failed_timestamp_seconds", &p)
            && (major < 12
                || (m
                    .get("pgrepl_archiver_pending_wal_files", &p)
                    .unwrap_or(0.0)
                    >= 1.0
                    && m.has("pgrepl_archiver_oldest_pending_timestamp_seconds", &p)))
    }));
    chmod("755");
    let archived_before = m.get("pgrepl_archiver_archived_total", &p).unwrap_or(0.0);
    pair.primary.write_wal(10);
    pair.primary.psql("SELECT pg_switch_wal()");
    let m = exporter.wait_for("WAL archived again", WAIT, |m| {
        m.get("pgrepl_archiver_archived_total", &p).unwrap_or(0.0) > archived_before
            && m.has("pgrepl_archiver_last_archived_timestamp_seconds", &p)
            && (major < 12 || m.get("pgrepl_archiver_pending_wal_files", &p) == Some(0.0))
    });
    if major < 12 {
        for family in [
            "pgrepl_archiver_pending_wal_files",
            "pgrepl_archiver_oldest_pending_timestamp_seconds",
        ] {
            assert!(!m.has(family, &[]), "{family} on {major}");
        }
    }
    no_collect_errors(major, &m, &["primary", "standby1"], &exporter);
    scrapes.push(m);

    // ---- Standby stopped: its series go, the slot turns inactive ----
    let slot_sel = [("target", "primary"), ("slot_name", "standby1_slot")];
    let m = common::stop_standby_and_see_it_gone(&pair, &exporter);
    // The cascade below standby1 is cut off with it.
    exporter.wait_for("standby2 cut off with standby1", WAIT, |m| {
        m.get(
            "pgrepl_cluster_expected_standby_connected",
            &[("standby", "standby2")],
        ) == Some(0.0)
    });
    assert_eq!(
        m.has("pgrepl_slot_inactive_since_timestamp_seconds", &slot_sel),
        major >= 17
    );
    if major >= 13 {
        let mut l = slot_sel.to_vec();
        l.push(("wal_status", "reserved"));
        assert_eq!(m.get("pgrepl_slot_wal_status", &l), Some(1.0));
    }
    let retained = m.get("pgrepl_slot_retained_wal_bytes", &slot_sel).unwrap();
    scrapes.push(m);
    pair.primary.write_wal(10_000);
    let m = exporter.wait_for("retained WAL grows with writes", WAIT, |m| {
        m.get("pgrepl_slot_retained_wal_bytes", &slot_sel)
            .unwrap_or(0.0)
            > retained + 1_000_000.0
    });
    no_collect_errors(major, &m, &["primary"], &exporter);
    scrapes.push(m);

    check_against_table(major, &scrapes);
}

#[test]
#[ignore = "needs PostgreSQL 10 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg10() {
    matrix(10);
}

#[test]
#[ignore = "needs PostgreSQL 11 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg11() {
    matrix(11);
}

#[test]
#[ignore = "needs PostgreSQL 12 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg12() {
    matrix(12);
}

#[test]
#[ignore = "needs PostgreSQL 13 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg13() {
    matrix(13);
}

#[test]
#[ignore = "needs PostgreSQL 14 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg14() {
    matrix(14);
}

#[test]
#[ignore = "needs PostgreSQL 15 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg15() {
    matrix(15);
}

#[test]
#[ignore = "needs PostgreSQL 16 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg16() {
    matrix(16);
}

#[test]
#[ignore = "needs PostgreSQL 17 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg17() {
    matrix(17);
}

#[test]
#[ignore = "needs PostgreSQL 18 from scripts/pg-versions.sh: make test-matrix"]
fn matrix_pg18() {
    matrix(18);
}
