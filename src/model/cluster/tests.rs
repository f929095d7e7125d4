//! The cluster view on snapshots made from JSON samples: cascades, hidden
//! replication state, split brain, members down.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{views, ClusterView};
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::sources::Sample;

/// A member of cluster `main` that answered with `sample`.
fn up(name: &str, port: u16, sample: serde_json::Value) -> Arc<TargetSnapshot> {
    let mut s = TargetSnapshot::initial(name, Some("main"));
    s.endpoint = format!("127.0.0.1:{port}");
    let sample: Sample = serde_json::from_value(sample).expect("a sample");
    s.last_in_recovery = Some(sample.server.in_recovery);
    s.sample = Some(Arc::new(sample));
    Arc::new(s)
}

/// A member that stopped answering; it was last seen in recovery or not.
fn down(name: &str, was_standby: Option<bool>) -> Arc<TargetSnapshot> {
    let mut s = TargetSnapshot::initial(name, Some("main"));
    s.last_in_recovery = was_standby;
    Arc::new(s)
}

fn walsender(application_name: &str, state: &str) -> serde_json::Value {
    json!({"pid": 1, "application_name": application_name, "state": state,
           "replay_lsn": "0/3000000", "sync_state": "async"})
}

fn primary(walsenders: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"server": {"in_recovery": false, "version": "17.0", "now": 0.0,
                      "system_identifier": "42", "current_lsn": "0/3000000",
                      "primary_timeline": 1},
           "replication": walsenders})
}

fn standby(upstream_port: u16, walsenders: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"server": {"in_recovery": true, "version": "17.0", "now": 0.0,
                      "system_identifier": "42", "receive_lsn": "0/3000000",
                      "replay_lsn": "0/2000000", "checkpoint_timeline": 1},
           "wal_receiver": {"status": "streaming", "received_tli": 1,
                            "sender_host": "127.0.0.1", "sender_port": upstream_port},
           "replication": walsenders})
}

fn cluster(members: Vec<Arc<TargetSnapshot>>) -> ClusterView {
    views(&members, &BTreeMap::new())
        .into_iter()
        .next()
        .expect("one cluster")
}

fn expected(c: &ClusterView) -> Vec<(&str, Option<bool>)> {
    c.expected_standbys
        .iter()
        .map(|e| (e.name.as_str(), e.connected))
        .collect()
}

#[test]
fn a_cascade_is_connected_through_its_chain() {
    // The primary's walsender carries another case than the target
    // name: PostgreSQL compares standby names ignoring case.
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![walsender("Standby1", "streaming")]),
        ),
        up(
            "standby1",
            2,
            standby(1, vec![walsender("standby2", "streaming")]),
        ),
        up("standby2", 3, standby(2, vec![])),
    ]);
    let s2 = c.member("standby2").expect("standby2");
    assert_eq!(s2.role, Role::Standby);
    assert_eq!(s2.upstream_target.as_deref(), Some("standby1"));
    assert_eq!(s2.chain, ["primary", "standby1"]);
    assert_eq!(s2.connected, Some(true));
    assert_eq!(s2.lag_bytes, Some(f64::from(0x100_0000)));
    assert_eq!(c.primaries, ["primary"]);
    assert_eq!(c.tree.len(), 1);
    assert_eq!(c.tree[0].children[0].children[0].target, "standby2");
    assert_eq!(
        expected(&c),
        [("standby1", Some(true)), ("standby2", Some(true))]
    );
}

#[test]
fn the_middle_of_a_cascade_down_cuts_off_what_is_below() {
    let c = cluster(vec![
        up("primary", 1, primary(vec![])),
        down("standby1", Some(true)),
        up("standby2", 3, standby(2, vec![])),
    ]);
    let s1 = c.member("standby1").expect("standby1");
    assert_eq!((s1.role, s1.connected), (Role::Down, Some(false)));
    let s2 = c.member("standby2").expect("standby2");
    assert_eq!(s2.connected, Some(false));
    assert!(s2.chain.is_empty());
    // Down members stay expected: they read 0, they never vanish.
    assert_eq!(
        expected(&c),
        [("standby1", Some(false)), ("standby2", Some(false))]
    );
}

#[test]
fn the_receiver_address_finds_an_upstream_without_a_named_walsender() {
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![walsender("walreceiver", "streaming")]),
        ),
        up("standby1", 2, standby(1, vec![])),
    ]);
    let s1 = c.member("standby1").expect("standby1");
    assert_eq!(s1.upstream_target.as_deref(), Some("primary"));
    assert_eq!(s1.connected, Some(true));
    // Found by address only: no walsender, so no sync state to show.
    assert_eq!(s1.sync_state, None);
}

#[test]
fn a_catching_up_walsender_is_not_connected() {
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![walsender("standby1", "catchup")]),
        ),
        up("standby1", 2, standby(1, vec![])),
    ]);
    assert_eq!(expected(&c), [("standby1", Some(false))]);
}

/// As the monitoring role without `pg_read_all_stats` reads them: a
/// walsender with its name and slot but no state; a receiver row with
/// every detail NULL.
fn hidden_walsender(application_name: &str, slot: &str) -> serde_json::Value {
    json!({"pid": 1, "application_name": application_name, "slot_name": slot})
}

fn hidden_standby() -> serde_json::Value {
    json!({"server": {"in_recovery": true, "version": "17.0", "now": 0.0,
                      "system_identifier": "42", "receive_lsn": "0/3000000",
                      "replay_lsn": "0/3000000", "checkpoint_timeline": 1},
           "settings": {"primary_slot_name": ["s1_slot", null]},
           "wal_receiver": {},
           "privileges": {"pg_read_all_stats": false}})
}

#[test]
fn cannot_see_is_not_disconnected() {
    // Neither side may be read: unknown, not false.
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![hidden_walsender("other_name", "s1_slot")]),
        ),
        up("standby1", 2, hidden_standby()),
    ]);
    let s1 = c.member("standby1").expect("standby1");
    assert_eq!(s1.connected, None);
    assert_eq!(s1.wal_receiver_status, None);
    assert_eq!(s1.privileges_missing, ["pg_read_all_stats"]);
    // Found by its slot, whatever its application_name.
    assert_eq!(s1.upstream_target.as_deref(), Some("primary"));
    assert_eq!(expected(&c), [("standby1", None)]);

    // The primary's walsender hidden, the standby's receiver visible.
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![hidden_walsender("standby1", "s1_slot")]),
        ),
        up("standby1", 2, standby(1, vec![])),
    ]);
    assert_eq!(expected(&c), [("standby1", Some(true))]);

    // A standby whose receiver is visible and stopped is not streaming.
    let mut stopped = hidden_standby();
    stopped["wal_receiver"] = serde_json::Value::Null;
    let c = cluster(vec![
        up("primary", 1, primary(vec![])),
        up("standby1", 2, stopped),
    ]);
    assert_eq!(expected(&c), [("standby1", Some(false))]);

    // Down reads 0 whatever the privileges.
    let c = cluster(vec![
        up(
            "primary",
            1,
            primary(vec![hidden_walsender("standby1", "s1_slot")]),
        ),
        down("standby1", Some(true)),
    ]);
    assert_eq!(expected(&c), [("standby1", Some(false))]);
}

#[test]
fn a_lone_target_expects_no_standby() {
    let mut s = TargetSnapshot::initial("lone", None);
    s.last_error = Some("down".into());
    let c = views(&[Arc::new(s)], &BTreeMap::new());
    assert!(c[0].expected_standbys.is_empty());
}

#[test]
fn two_primaries_are_split_brain_and_a_fallen_primary_is_not_expected() {
    let c = cluster(vec![
        up("a", 1, primary(vec![])),
        up("b", 2, primary(vec![])),
        down("old", Some(false)),
    ]);
    assert_eq!(c.primaries, ["a", "b"]);
    assert!(c.expected_standbys.is_empty());
    assert_eq!(c.member("old").map(|m| m.role), Some(Role::Down));
}
