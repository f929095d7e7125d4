//! PostgreSQL 17 failover slots: a logical slot created with
//! `failover => true` on the primary and synchronized to the standby
//! (`pg_sync_replication_slots()`), so that subscribers survive a
//! promotion. The exporter shows `failover` on both sides and `synced` on
//! the standby's copy.

use crate::harness as common;

use std::time::Duration;

use common::Exporter;

const WAIT: Duration = Duration::from_secs(60);
const SLOT: &str = "subscriber_slot";

#[test]
#[ignore = "needs PostgreSQL 17 from scripts/pg-versions.sh: make test-matrix"]
fn failover_slot_synced_to_the_standby_from_17() {
    let bin = common::pg_binaries(17);
    let pair = common::failover_slot_pair_17("failover17", &bin, SLOT);

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
