//! A slot whose consumer is gone and whose WAL exceeds
//! `max_slot_wal_keep_size` loses its WAL: `wal_status` turns `lost` (13+)
//! and, from 17, PostgreSQL records why (`invalidation_reason`).

use crate::harness as common;

use std::time::Duration;

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(60);

const CONF: &str = "max_wal_size = 32MB\nmin_wal_size = 32MB\n";

/// The limit goes on only once the standby streams (a base backup under a
/// 1 MB limit would lose its own WAL).
fn lose_the_slot(pair: &Pair) {
    pair.primary
        .psql("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
    pair.primary.psql("SELECT pg_reload_conf()");
    pair.primary
        .psql("SELECT pg_create_physical_replication_slot('abandoned', true)");
    for _ in 0..4 {
        pair.primary.write_wal(5_000);
        pair.primary.psql("SELECT pg_switch_wal()");
    }
    pair.primary.psql("CHECKPOINT");
}

fn status(m: &Metrics, state: &str) -> Option<f64> {
    m.get(
        "pgrepl_slot_wal_status",
        &[
            ("target", "primary"),
            ("slot_name", "abandoned"),
            ("wal_status", state),
        ],
    )
}

#[test]
fn abandoned_slot_turns_lost() {
    let pair = Pair::start_with("lostslot", CONF);
    let exporter = Exporter::start(&[("primary", pair.primary.dsn())]);
    lose_the_slot(&pair);
    let m = exporter.wait_for("slot lost", WAIT, |m| status(m, "lost") == Some(1.0));
    assert_eq!(status(&m, "reserved"), Some(0.0));
    assert_eq!(
        m.get(
            "pgrepl_slot_active",
            &[("target", "primary"), ("slot_name", "abandoned")]
        ),
        Some(0.0)
    );
    // Before 17 there is no invalidation_reason column: no such series.
    assert!(!m.has("pgrepl_slot_invalidated", &[]));
}

#[test]
#[ignore = "needs PostgreSQL 17 from scripts/pg-versions.sh: make test-matrix"]
fn invalidation_reason_from_17() {
    let bin = common::pg_binaries(17);
    let pair = Pair::start_cold_copy_with("invalid17", &bin, 17, CONF);
    let exporter = Exporter::start(&[("primary", pair.primary.dsn())]);
    lose_the_slot(&pair);
    let m = exporter.wait_for("slot invalidated", WAIT, |m| {
        m.get(
            "pgrepl_slot_invalidated",
            &[
                ("target", "primary"),
                ("slot_name", "abandoned"),
                ("reason", "wal_removed"),
            ],
        ) == Some(1.0)
    });
    assert_eq!(status(&m, "lost"), Some(1.0));
}
