//! Golden files: what the exporter shows for fixed snapshots, byte for
//! byte. The data flows one way (sample → snapshot → view → `/metrics`,
//! `/api/v1/topology`, `status`), so a fixed input gives a fixed output;
//! any change to a family, a label, the cluster view or the status table
//! shows up here as a diff to review. No database is needed to run them.
//!
//! Inputs: `tests/fixtures/golden/<fixture>.json`, the documents the
//! collection statement returned on real servers, one per member. The
//! statement is built for the capabilities the server reports
//! (`sources::capabilities_sql`, as the superuser), so it is the one the
//! exporter runs on that major; they are recorded under `capabilities`
//! (`cascade.json` predates that). Endpoints, LSNs and times vary per
//! capture; the scratch directory the servers ran in is scrubbed.
//!
//! - `cascade`: a primary, standby1, standby2 cascaded from standby1 with a
//!   one-hour `recovery_min_apply_delay`, under
//!   `synchronous_standby_names = 'ANY 2 (standby1, nobody)'` with a commit
//!   waiting (Debian's PostgreSQL);
//! - `primary-two-standbys`: a primary with standby1 and standby2 streaming
//!   from it, each through its own physical slot, and an inactive slot
//!   `gone_standby` holding WAL (Debian's PostgreSQL);
//! - `pg10`: a PostgreSQL 10 primary and standby (the v10 statement);
//! - `pg17-failover`: a PostgreSQL 17 primary and standby with a logical
//!   `failover` slot synchronized to the standby.
//!
//! [`SCENARIOS`] renders each fixture healthy or with some members down
//! (last role kept) or never seen (configured, never answered: no sample,
//! no last role); a scenario is one line there. Outputs:
//! `tests/fixtures/golden/<scenario>.prom`, `.topology.json`,
//! `.status.txt`, where the scenario is named after its fixture and the
//! members it takes away (`cascade-standby1-down`).
//!
//! Recapture a fixture from real servers (PostgreSQL runs as `postgres`
//! when root; PostgreSQL 10 and 17 come from `scripts/pg-versions.sh 10
//! 17`): `make golden-capture` (all of them, `cascade` too), or one with
//! `make golden-capture GOLDEN_CAPTURE=capture_pg10`, that is
//! `cargo test --test it -- --ignored golden::capture_pg10 --test-threads=1`.
//! Re-bless the expected outputs after reviewing the diff: `make golden`
//! (`PGREPL_BLESS=1 cargo test --test it -- golden::`).

use crate::harness as common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pg_replication_exporter::testing::sources::{self, Capabilities};
use pg_replication_exporter::testing::{
    render_view, status, Format, ReloadStatus, TargetSnapshot, View,
};
use serde_json::Value;

/// One rendering of a fixture: which of its members read down (their last
/// role kept) and which configured members never answered at all.
struct Scenario {
    fixture: &'static str,
    down: &'static [&'static str],
    never_seen: &'static [&'static str],
}

impl Scenario {
    const fn healthy(fixture: &'static str) -> Scenario {
        Scenario::new(fixture, &[], &[])
    }

    const fn down(fixture: &'static str, down: &'static [&'static str]) -> Scenario {
        Scenario::new(fixture, down, &[])
    }

    const fn never_seen(fixture: &'static str, never: &'static [&'static str]) -> Scenario {
        Scenario::new(fixture, &[], never)
    }

    const fn new(
        fixture: &'static str,
        down: &'static [&'static str],
        never_seen: &'static [&'static str],
    ) -> Scenario {
        Scenario {
            fixture,
            down,
            never_seen,
        }
    }

    /// `<fixture>[-<member>-down...][-<member>-never-seen...]`: the stem of
    /// the expected files.
    fn name(&self) -> String {
        let mut name = self.fixture.to_string();
        for member in self.down {
            name.push_str(&format!("-{member}-down"));
        }
        for member in self.never_seen {
            name.push_str(&format!("-{member}-never-seen"));
        }
        name
    }
}

/// Every rendering with committed expected files.
const SCENARIOS: &[Scenario] = &[
    Scenario::healthy("cascade"),
    // The middle of the cascade down: it reads down, the standby below it
    // reads not connected, nothing vanishes.
    Scenario::down("cascade", &["standby1"]),
    Scenario::healthy("primary-two-standbys"),
    Scenario::down("primary-two-standbys", &["standby2"]),
    // A configured third standby that never answered: down, expected, 0.
    Scenario::never_seen("primary-two-standbys", &["standby3"]),
    Scenario::healthy("pg10"),
    Scenario::healthy("pg17-failover"),
];

const OUTPUTS: [&str; 3] = ["prom", "topology.json", "status.txt"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn fixture(name: &str) -> Value {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (capture it first)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A member as the exporter holds it after some failed cycles.
fn failing(mut s: TargetSnapshot) -> TargetSnapshot {
    s.errors_total = 3;
    s.last_error = Some("no connection: connection refused".into());
    s
}

/// The scenario's targets as snapshots, in configuration order: the
/// fixture's members up with their sample, or down with the last role
/// seen; then the never-seen members, down with nothing known.
fn snapshots(scenario: &Scenario) -> Vec<Arc<TargetSnapshot>> {
    let fixture = fixture(scenario.fixture);
    let mut targets: Vec<Arc<TargetSnapshot>> = fixture["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            let mut s = TargetSnapshot::initial(name, Some("main"));
            s.endpoint = t["endpoint"].as_str().unwrap().to_string();
            s.interval = Duration::from_secs(1);
            s.collect_duration = 0.004;
            s.last_timeline = Some(1);
            s.last_success = Some(1_800_000_000.0);
            let sample = sources::parse(&t["sample"].to_string()).expect("sample");
            s.last_in_recovery = Some(sample.server.in_recovery);
            // Several cycles in: no recovery conflict over the last hour.
            s.recent_conflicts = sample.server.recovery_conflicts.map(|_| 0.0);
            if scenario.down.contains(&name) {
                s = failing(s);
            } else {
                s.sample = Some(Arc::new(sample));
            }
            Arc::new(s)
        })
        .collect();
    for name in scenario.down {
        assert!(
            targets.iter().any(|t| t.name == *name),
            "{}: no member {name} in {}.json",
            scenario.name(),
            scenario.fixture
        );
    }
    for name in scenario.never_seen {
        let mut s = TargetSnapshot::initial(name, Some("main"));
        // A documentation address (RFC 5737): configured, never reached.
        s.endpoint = "192.0.2.10:5432".into();
        s.interval = Duration::from_secs(1);
        s.collect_duration = 0.004;
        targets.push(Arc::new(failing(s)));
    }
    targets
}

fn view(scenario: &Scenario) -> Arc<View> {
    Arc::new(View::build(
        snapshots(scenario),
        &Default::default(),
        ReloadStatus {
            successful: true,
            last_success: 1_800_000_000.0,
        },
    ))
}

/// The exposition without the build stamp (revision and date change with
/// every build).
fn exposition(view: &Arc<View>) -> String {
    render_view(view, Format::Prometheus)
        .lines()
        .filter(|l| !l.starts_with("pgrepl_exporter_build_info{"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn topology(view: &View) -> String {
    let mut text = serde_json::to_string_pretty(&view.clusters).unwrap();
    text.push('\n');
    text
}

fn status(view: &View) -> String {
    let report = status::report(view);
    format!(
        "exit code {}\n{}",
        status::exit_code(&report),
        status::render_table(&report, false)
    )
}

/// The three outputs of a scenario, by file extension.
fn render(scenario: &Scenario) -> [(&'static str, String); 3] {
    let view = view(scenario);
    [
        (OUTPUTS[0], exposition(&view)),
        (OUTPUTS[1], topology(&view)),
        (OUTPUTS[2], status(&view)),
    ]
}

fn check(name: &str, actual: &str, errors: &mut Vec<String>) {
    let path = dir().join(name);
    if std::env::var_os("PGREPL_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
        errors.push(format!(
            "{name} differs at line {}:\n  golden: {:?}\n  now:    {:?}\n(review, then `make golden` rewrites it)",
            line + 1,
            expected.lines().nth(line).unwrap_or(""),
            actual.lines().nth(line).unwrap_or("")
        ));
    }
}

#[test]
fn every_scenario_renders_as_committed() {
    let mut errors = Vec::new();
    for scenario in SCENARIOS {
        for (ext, text) in render(scenario) {
            check(&format!("{}.{ext}", scenario.name()), &text, &mut errors);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Rendering is a pure function of the snapshots: twice the same bytes,
/// for every scenario.
#[test]
fn rendering_is_deterministic() {
    for scenario in SCENARIOS {
        assert_eq!(render(scenario), render(scenario), "{}", scenario.name());
    }
}

/// Every file under `tests/fixtures/golden` is a fixture some scenario
/// renders or an expected output of one: no file outlives its scenario,
/// and no two scenarios share a name.
#[test]
fn no_orphan_golden_files() {
    let mut wanted = std::collections::BTreeSet::new();
    for scenario in SCENARIOS {
        wanted.insert(format!("{}.json", scenario.fixture));
        for ext in OUTPUTS {
            assert!(
                wanted.insert(format!("{}.{ext}", scenario.name())),
                "two scenarios named {}",
                scenario.name()
            );
        }
    }
    let present: std::collections::BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let orphans: Vec<_> = present.difference(&wanted).collect();
    assert!(orphans.is_empty(), "no scenario renders {orphans:?}");
}

/// The committed fixtures name no directory of the machine they were
/// captured on (the capture scrubs the scratch directory).
#[test]
fn fixtures_hold_no_local_paths() {
    for scenario in SCENARIOS {
        let text = fixture(scenario.fixture).to_string();
        for path in ["/tmp", "/home", "/root", env!("CARGO_MANIFEST_DIR")] {
            assert!(
                !text.contains(path),
                "{}.json contains {path}",
                scenario.fixture
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Capture (real servers; `#[ignore]`d, run by `make golden-capture`)

/// What the exporter learns from a server before its first collection,
/// asked the way it asks (`sources::capabilities_sql`), as the superuser.
fn capabilities(pg: &common::Pg) -> Capabilities {
    let json = pg.psql(&sources::capabilities_sql(None));
    sources::parse_capabilities(&json)
        .unwrap_or_else(|e| panic!("{}: capabilities {json:?}: {e}", pg.name))
}

/// Replaces, in every string of `value`, the scratch directory the servers
/// ran in by a fixed name, so that a fixture is the same wherever it was
/// captured.
fn scrub(value: &mut Value, scratch: &str) {
    match value {
        Value::String(s) if s.contains(scratch) => *s = s.replace(scratch, "/scratch"),
        Value::Array(items) => items.iter_mut().for_each(|v| scrub(v, scratch)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub(v, scratch)),
        _ => {}
    }
}

/// Runs the exporter's collection statement for each server's own
/// capabilities on every member, and writes `<name>.json`.
fn write_fixture(name: &str, scratch: &Path, members: &[&common::Pg]) {
    let caps = capabilities(members[0]);
    let mut targets = Vec::new();
    for pg in members {
        assert_eq!(capabilities(pg), caps, "{}: capabilities differ", pg.name);
        let query = sources::build_query(&caps, None);
        let mut sample: Value = serde_json::from_str(&pg.psql(&query)).expect("sample JSON");
        scrub(&mut sample, &scratch.display().to_string());
        sources::parse(&sample.to_string()).expect("the exporter reads the sample");
        targets.push(serde_json::json!({
            "name": pg.name,
            "endpoint": format!("127.0.0.1:{}", pg.port),
            "sample": sample,
        }));
    }
    let doc = serde_json::json!({
        "postgresql_major": caps.version_num / 10000,
        "capabilities": {
            "version_num": caps.version_num,
            "ls_waldir": caps.ls_waldir,
            "ls_archive_status": caps.ls_archive_status,
            "read_all_stats": caps.read_all_stats,
            "heartbeat_table": caps.heartbeat_table,
        },
        "targets": targets,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    for local in ["/tmp", env!("CARGO_MANIFEST_DIR")] {
        assert!(!text.contains(local), "{name}: {local} left in the fixture");
    }
    std::fs::create_dir_all(dir()).unwrap();
    let path = dir().join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    eprintln!("wrote {}", path.display());
}

/// Waits until the primary's standbys (`count` of them) have replayed
/// everything it wrote, so that a healthy fixture shows no lag left.
fn wait_replayed(primary: &common::Pg, count: usize) {
    let caught_up = common::wait_until(Duration::from_secs(60), || {
        primary
            .try_psql(
                "SELECT count(*) FROM pg_stat_replication \
                 WHERE state = 'streaming' AND replay_lsn = pg_current_wal_lsn()",
            )
            .is_ok_and(|v| v == count.to_string())
    });
    assert!(caught_up, "{count} standbys did not catch up");
    // Deliberately one more status round (a standby reports at least every
    // `wal_receiver_status_interval`, and nothing says when it did on
    // PostgreSQL 10 and 11), so that the lag columns settle.
    std::thread::sleep(Duration::from_secs(2));
}

/// `cascade`: a primary, standby1 and standby2 cascaded from it, one commit
/// waiting for a quorum that cannot be met.
#[test]
#[ignore = "recaptures the fixtures from real servers: make golden-capture"]
fn capture_cascade() {
    use common::{StandbySpec, Topology};
    let topo = Topology::start(
        "golden",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::new("standby2", "standby1", "recovery_min_apply_delay = '1h'"),
        ],
    );
    topo.primary.psql("CREATE TABLE golden (i int)");
    topo.primary
        .set_synchronous_standby_names("ANY 2 (standby1, nobody)");
    let mut waiting = topo.primary.spawn_psql("INSERT INTO golden VALUES (1)");
    assert!(
        common::wait_until(Duration::from_secs(30), || topo
            .primary
            .try_psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
            .is_ok_and(|v| v == "1")),
        "the commit does not wait for the quorum"
    );
    let members: Vec<&common::Pg> = std::iter::once(&topo.primary)
        .chain(topo.standbys.iter())
        .collect();
    write_fixture("cascade", &topo.scratch.path, &members);
    let _ = waiting.kill();
    let _ = waiting.wait();
}

/// `primary-two-standbys`: standby1 and standby2 streaming from the
/// primary through their slots, and the slot of a standby that is gone,
/// inactive, holding the WAL written since.
#[test]
#[ignore = "recaptures the fixtures from real servers: make golden-capture"]
fn capture_primary_two_standbys() {
    use common::{StandbySpec, Topology};
    let topo = Topology::start(
        "golden-two",
        "",
        &[
            StandbySpec::direct("standby1"),
            StandbySpec::direct("standby2"),
        ],
    );
    topo.primary
        .psql("SELECT pg_create_physical_replication_slot('gone_standby', true)");
    topo.primary.write_wal(5000);
    wait_replayed(&topo.primary, 2);
    let members: Vec<&common::Pg> = std::iter::once(&topo.primary)
        .chain(topo.standbys.iter())
        .collect();
    write_fixture("primary-two-standbys", &topo.scratch.path, &members);
}

/// `pg10`: a PostgreSQL 10 primary and its standby (cold copy, as the
/// version matrix builds them).
#[test]
#[ignore = "recaptures the fixtures from real servers: make golden-capture"]
fn capture_pg10() {
    let pair = common::Pair::start_cold_copy("golden-pg10", &common::pg_binaries(10), 10);
    pair.primary.write_wal(100);
    wait_replayed(&pair.primary, 1);
    write_fixture("pg10", &pair.scratch.path, &[&pair.primary, &pair.standby]);
}

/// `pg17-failover`: a PostgreSQL 17 primary and standby, a logical slot
/// created with `failover => true` and synchronized to the standby (the
/// setup of `tests/it/failover_slots.rs`).
#[test]
#[ignore = "recaptures the fixtures from real servers: make golden-capture"]
fn capture_pg17_failover() {
    const SLOT: &str = "subscriber_slot";
    let pair = common::failover_slot_pair_17("golden-pg17", &common::pg_binaries(17), SLOT);
    wait_replayed(&pair.primary, 1);
    write_fixture(
        "pg17-failover",
        &pair.scratch.path,
        &[&pair.primary, &pair.standby],
    );
}
