//! No request handler waits behind a database: collection runs on a
//! runtime of its own, so connections whose handshakes burn CPU on the
//! client side (SCRAM: PBKDF2 with the most iterations the client accepts,
//! 100,000, set by `scram_iterations` of PostgreSQL 16+, over the longest
//! password the configuration accepts, for many targets at once) cannot
//! delay `/healthz` or `/metrics`, even with the default single HTTP worker
//! thread.
//!
//! Needs a PostgreSQL 16+ server build from `scripts/pg-versions.sh`:
//! `#[ignore]`d, run by `make test-matrix`, which installs it.

use crate::harness as common;

use std::time::{Duration, Instant};

use common::{Exporter, Scratch};

#[test]
#[ignore = "needs PostgreSQL 17 from scripts/pg-versions.sh: make test-matrix"]
fn no_request_waits_behind_a_database_handshake() {
    let bin = common::pg_binaries(17);
    let scratch = Scratch::new("scram");
    let pg = common::init_primary_in(&scratch.path, "primary", &bin, "", false);
    // Every new session of the monitoring role now makes the client run
    // PBKDF2 this many times: seconds of CPU in the exporter's process.
    let password = "p".repeat(1024);
    pg.psql(&format!(
        "SET scram_iterations = 100000; ALTER ROLE monitor PASSWORD '{password}'"
    ));
    const TARGETS: usize = 6;
    let dsn = pg.dsn().replace(common::MONITOR_PASSWORD, &password);
    let targets: Vec<(String, String)> = (0..TARGETS)
        .map(|i| (format!("t{i}"), dsn.clone()))
        .collect();
    let targets: Vec<(&str, String)> = targets
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let started = Instant::now();
    let exporter = Exporter::start_with(
        &targets,
        "collect_interval = \"30s\"\ncollect_timeout = \"25s\"\n",
        &["--runtime.worker-threads", "1"],
    );
    let mut answered_while_connecting = 0;
    let mut slowest = Duration::ZERO;
    let agent = common::http_agent();
    while exporter.log_text().matches("target is up").count() < TARGETS {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the target never came up: {}",
            exporter.log_text()
        );
        for path in ["/healthz", "/metrics"] {
            let t = Instant::now();
            let ok = agent
                .get(exporter.url(path))
                .call()
                .is_ok_and(|r| r.status() == 200);
            slowest = slowest.max(t.elapsed());
            assert!(ok, "{path} failed while the exporter was connecting");
        }
        answered_while_connecting += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let handshake = started.elapsed();
    assert!(
        handshake >= Duration::from_secs(1),
        "the handshakes took only {handshake:?}: add targets so the test means something"
    );
    assert!(
        answered_while_connecting >= 5,
        "only {answered_while_connecting} rounds answered during a {handshake:?} handshake"
    );
    // Generous: a scrape takes microseconds; the point is that none of them
    // waited for the seconds-long handshake.
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?} while the exporter connected ({handshake:?})"
    );
    let m = exporter.metrics();
    assert_eq!(m.get("pgrepl_up", &[("target", "t0")]), Some(1.0));
    println!(
        "handshake {handshake:?}, {answered_while_connecting} rounds answered, slowest {slowest:?}"
    );
}
