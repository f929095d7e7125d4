//! PostgreSQL 17 failover slots: a logical slot created with
//! `failover => true` on the primary and synchronized to the standby
//! (`pg_sync_replication_slots()`), so that subscribers survive a
//! promotion. The exporter shows `failover` on both sides and `synced` on
//! the standby's copy.

mod common;

use std::time::Duration;

use common::{Exporter, Pair};

const WAIT: Duration = Duration::from_secs(60);
const SLOT: &str = "subscriber_slot";

#[test]
fn failover_slot_synced_to_the_standby_from_17() {
    let Some(bin) = common::pg_binaries(17) else {
        return;
    };
    // What slot synchronization needs: logical WAL, feedback from the
    // standby through its physical slot, and a dbname in primary_conninfo.
    let pair = Pair::start_cold_copy_with(
        "failover17",
        &bin,
        17,
        "wal_level = logical\nhot_standby_feedback = on\n",
    );
    pair.standby.psql(&format!(
        "ALTER SYSTEM SET primary_conninfo = \
         'host=127.0.0.1 port={} user=repl application_name=standby1 dbname=postgres'",
        pair.primary.port
    ));
    pair.standby.psql("SELECT pg_reload_conf()");
    pair.primary.psql(&format!(
        "SELECT pg_create_logical_replication_slot('{SLOT}', 'test_decoding', failover => true)"
    ));
    pair.primary.write_wal(10);
    // A fresh idle slot holds a catalog xmin older than what the standby
    // can guarantee, and the sync refuses it ("could lead to data loss").
    // As a subscriber would, consume the slot past a running-xacts record
    // so that its xmin moves forward, then sync again.
    let synced = common::wait_until(WAIT, || {
        pair.primary.psql("SELECT pg_log_standby_snapshot()");
        pair.primary.psql(&format!(
            "SELECT count(*) FROM pg_logical_slot_get_changes('{SLOT}', NULL, NULL)"
        ));
        std::thread::sleep(Duration::from_millis(200));
        let _ = pair.standby.try_psql("SELECT pg_sync_replication_slots()");
        std::thread::sleep(Duration::from_millis(400));
        pair.standby
            .try_psql(&format!(
                "SELECT synced AND NOT temporary FROM pg_replication_slots \
                 WHERE slot_name = '{SLOT}'"
            ))
            .is_ok_and(|v| v == "t")
    });
    assert!(
        synced,
        "the slot never synchronized to the standby\nstandby log:\n{}",
        std::fs::read_to_string(&pair.standby.log).unwrap_or_default()
    );

    let exporter = Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);
    let on = |target| [("target", target), ("slot_name", SLOT)];
    let m = exporter.wait_for("the synced slot on the standby", WAIT, |m| {
        m.get("pgrepl_slot_synced", &on("standby1")) == Some(1.0)
    });
    assert_eq!(m.get("pgrepl_slot_failover", &on("standby1")), Some(1.0));
    assert_eq!(m.get("pgrepl_slot_failover", &on("primary")), Some(1.0));
    assert_eq!(m.get("pgrepl_slot_synced", &on("primary")), Some(0.0));
    // The standby's copy cannot be consumed before promotion: inactive.
    assert_eq!(m.get("pgrepl_slot_active", &on("standby1")), Some(0.0));
    let physical = [("target", "primary"), ("slot_name", "standby1_slot")];
    assert_eq!(m.get("pgrepl_slot_failover", &physical), Some(0.0));
    assert_eq!(m.get("pgrepl_slot_active", &physical), Some(1.0));
}
