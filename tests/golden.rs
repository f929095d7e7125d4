//! Golden files: what the exporter shows for fixed snapshots, byte for
//! byte. The data flows one way (sample → snapshot → view → `/metrics`,
//! `/api/v1/topology`, `status`), so a fixed input gives a fixed output;
//! any change to a family, a label, the cluster view or the status table
//! shows up here as a diff to review.
//!
//! Inputs: `tests/fixtures/golden/cascade.json`, the documents the collection
//! statement returned on real servers (a primary, a standby, a standby
//! cascaded from it with a one-hour `recovery_min_apply_delay`, under
//! `synchronous_standby_names = 'ANY 2 (standby1, nobody)'` with a commit
//! waiting). Recapture with
//! `cargo test --test golden -- --ignored capture` (needs PostgreSQL).
//! Outputs: `tests/fixtures/golden/cascade*.prom`, `.topology.json`, `.status.txt`;
//! `PGREPL_BLESS=1 cargo test --test golden` rewrites them.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pg_replication_exporter::collector::{self, Capabilities};
use pg_replication_exporter::exposition::{render_view, Format};
use pg_replication_exporter::snapshot::{ReloadStatus, TargetSnapshot};
use pg_replication_exporter::view::View;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// The fixture's targets as snapshots: up with their sample, or (when the
/// fixture has none) down with the last role seen.
fn snapshots(fixture: &Value, down: &[&str]) -> Vec<Arc<TargetSnapshot>> {
    fixture["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            let mut s = TargetSnapshot::initial(name, Some("main"));
            s.endpoint = t["endpoint"].as_str().unwrap().to_string();
            s.interval = Duration::from_secs(1);
            s.collect_duration = 0.004;
            s.seen_timeline = true;
            s.last_timeline = Some(1);
            s.last_success = Some(1_800_000_000.0);
            let sample = collector::parse(&t["sample"].to_string()).expect("sample");
            s.last_in_recovery = Some(sample.server.in_recovery);
            if down.contains(&name) {
                s.errors_total = 3;
                s.last_error = Some("no connection: connection refused".into());
            } else {
                s.up = true;
                s.sample = Some(Arc::new(sample));
            }
            Arc::new(s)
        })
        .collect()
}

fn view(fixture: &Value, down: &[&str]) -> Arc<View> {
    Arc::new(View::build(
        snapshots(fixture, down),
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
    let report = pg_replication_exporter::status::report(view);
    format!(
        "exit code {}\n{}",
        pg_replication_exporter::status::exit_code(&report),
        pg_replication_exporter::status::render_table(&report, false)
    )
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
            "{name} differs at line {}:\n  golden: {:?}\n  now:    {:?}\n(PGREPL_BLESS=1 rewrites it after review)",
            line + 1,
            expected.lines().nth(line).unwrap_or(""),
            actual.lines().nth(line).unwrap_or("")
        ));
    }
}

#[test]
fn cascade_renders_as_committed() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("cascade.json")).expect("fixture"),
    )
    .unwrap();
    let mut errors = Vec::new();
    let healthy = view(&fixture, &[]);
    check("cascade.prom", &exposition(&healthy), &mut errors);
    check("cascade.topology.json", &topology(&healthy), &mut errors);
    check("cascade.status.txt", &status(&healthy), &mut errors);
    // The middle of the cascade down: it reads down, the standby below it
    // reads not connected, nothing vanishes.
    let broken = view(&fixture, &["standby1"]);
    check(
        "cascade-standby1-down.prom",
        &exposition(&broken),
        &mut errors,
    );
    check(
        "cascade-standby1-down.status.txt",
        &status(&broken),
        &mut errors,
    );
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Rendering is a pure function of the snapshots: twice the same bytes.
#[test]
fn rendering_is_deterministic() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(dir().join("cascade.json")).expect("fixture"),
    )
    .unwrap();
    let (a, b) = (view(&fixture, &[]), view(&fixture, &[]));
    assert_eq!(exposition(&a), exposition(&b));
    assert_eq!(topology(&a), topology(&b));
}

/// Captures the fixture from real servers: a primary, standby1 and
/// standby2 cascaded from it, one commit waiting for a quorum that cannot
/// be met, the statement the exporter runs, as the superuser.
#[test]
#[ignore]
fn capture() {
    use common::{StandbySpec, Topology};
    let topo = Topology::start(
        "golden",
        "",
        &[
            StandbySpec {
                name: "standby1",
                upstream: "primary",
                conf: "",
            },
            StandbySpec {
                name: "standby2",
                upstream: "standby1",
                conf: "recovery_min_apply_delay = '1h'",
            },
        ],
    );
    topo.primary.psql("CREATE TABLE golden (i int)");
    topo.primary
        .set_synchronous_standby_names("ANY 2 (standby1, nobody)");
    let mut waiting = topo.primary.spawn_psql("INSERT INTO golden VALUES (1)");
    std::thread::sleep(Duration::from_secs(3));
    let major: u32 = topo
        .primary
        .psql("SELECT current_setting('server_version_num')::int / 10000")
        .parse()
        .unwrap();
    let caps = Capabilities {
        version_num: major * 10000,
        ls_waldir: true,
        ls_archive_status: true,
        heartbeat_table: false,
        read_all_stats: true,
    };
    let query = collector::build_query(&caps, None);
    let mut targets = Vec::new();
    for pg in std::iter::once(&topo.primary).chain(topo.standbys.iter()) {
        let json: Value = serde_json::from_str(&pg.psql(&query)).expect("sample JSON");
        targets.push(serde_json::json!({
            "name": pg.name,
            "endpoint": format!("127.0.0.1:{}", pg.port),
            "sample": json,
        }));
    }
    let _ = waiting.kill();
    let _ = waiting.wait();
    let doc = serde_json::json!({ "postgresql_major": major, "targets": targets });
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(
        dir().join("cascade.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}
