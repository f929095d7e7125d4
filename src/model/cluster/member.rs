//! One member as the cluster sees it ([`MemberView`]): its own rows, read
//! through the methods the sources define (lags, retained WAL, the replay
//! delay), and what only the cluster can tell (its upstream, its chain to
//! the primary, its lag against the primary, a foreign system).

use super::links::{Chain, Links};
use super::{MemberView, Reference, SlotView, StandbyLink};
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::sources::activity::Activity;
use crate::sources::privileges::Privileges;
use crate::sources::replication::Stage;
use crate::sources::wal_receiver::{PrimaryPosition, WalReceiver};
use crate::sources::Sample;

/// Member `index` of `links`, judged against the cluster's primary.
pub(super) fn member_view(
    m: &TargetSnapshot,
    index: usize,
    links: &Links<'_>,
    reference: &Reference<'_>,
) -> MemberView {
    let Some(s) = m.sample.as_deref() else {
        return down(m);
    };
    let sysid = s.server.system_identifier.clone();
    let foreign = matches!((reference.sysid, sysid.as_deref()), (Some(p), Some(me)) if p != me);
    let mut view = MemberView {
        target: m.name.clone(),
        up: true,
        role: Role::of_sample(Some(s)),
        version: Some(s.server.version.clone()),
        timeline: s.timeline(),
        system_identifier: sysid,
        foreign,
        replay_paused: s.server.replay_paused,
        standbys: standby_links(s),
        slots: slots(s),
        privileges_missing: s
            .privileges
            .as_ref()
            .map(Privileges::missing)
            .unwrap_or_default(),
        ..down(m)
    };
    view.error = None;
    view.connected = None;
    if s.server.in_recovery {
        as_standby(&mut view, s, index, links, reference);
    } else {
        as_primary(&mut view, s);
    }
    view
}

/// A member that does not answer: what is known without a sample. A
/// member last seen as a standby reads not connected; one never seen, or
/// last seen as a primary, has nothing to say.
fn down(m: &TargetSnapshot) -> MemberView {
    MemberView {
        target: m.name.clone(),
        up: false,
        role: Role::Down,
        version: None,
        timeline: None,
        system_identifier: None,
        upstream: None,
        upstream_target: None,
        chain: Vec::new(),
        connected: m.last_in_recovery.filter(|r| *r).map(|_| false),
        wal_receiver_status: None,
        sync_state: None,
        lag_bytes: None,
        replay_delay_seconds: None,
        replay_paused: None,
        apply_delay_waiting: None,
        apply_delay_seconds: None,
        sync_required: None,
        sync_connected: None,
        commits_waiting: None,
        oldest_commit_wait_seconds: None,
        timeline_mismatch: false,
        foreign: false,
        standbys: Vec::new(),
        slots: Vec::new(),
        error: m.last_error.clone(),
        privileges_missing: Vec::new(),
    }
}

/// What a standby shows: where it streams from and whether its chain
/// reaches the primary, how far behind the primary it is, its replay.
fn as_standby(
    view: &mut MemberView,
    s: &Sample,
    index: usize,
    links: &Links<'_>,
    reference: &Reference<'_>,
) {
    // Against the primary only when it is this cluster's system.
    let ours = !view.foreign;
    let link = links.upstream[index];
    view.upstream = s.wal_receiver.as_ref().and_then(WalReceiver::sender);
    view.upstream_target = link.map(|l| links.members[l.from].name.clone());
    let chain = if ours {
        links.chain(index)
    } else {
        Chain::Broken
    };
    view.connected = chain.connected();
    view.chain = chain
        .path()
        .into_iter()
        .map(|i| links.members[i].name.clone())
        .collect();
    view.wal_receiver_status = s.receiver_status();
    view.sync_state = link
        .and_then(|l| l.walsender)
        .and_then(|w| w.sync_state.clone());
    if ours {
        view.lag_bytes = s
            .server
            .replay_lsn
            .zip(reference.lsn)
            .map(|(r, p)| r.behind(p));
    }
    let primary = (ours && reference.lsn.is_some()).then_some(PrimaryPosition {
        lsn: reference.lsn,
        xmax: reference.xmax,
    });
    view.replay_delay_seconds = s.replay_delay(primary);
    view.apply_delay_waiting = s.activity.as_ref().map(|a| a.apply_delay_waiting);
    view.apply_delay_seconds = s
        .settings
        .recovery_min_apply_delay_seconds()
        .filter(|d| *d > 0.0);
    view.timeline_mismatch =
        ours && matches!((reference.timeline, view.timeline), (Some(p), Some(t)) if p != t);
}

/// What a primary shows: the synchronous standbys it asks for and has,
/// and the commits waiting for them.
fn as_primary(view: &mut MemberView, s: &Sample) {
    view.sync_required = s.settings.synchronous_standby_names().required();
    view.sync_connected = Some(s.sync_standbys_connected());
    view.commits_waiting = s.activity.as_ref().map(|a| a.sync_waiting);
    view.oldest_commit_wait_seconds = s.activity.as_ref().map(Activity::oldest_commit_wait);
}

/// Its walsenders, with the replay lag `/metrics` shows for them.
fn standby_links(s: &Sample) -> Vec<StandbyLink> {
    let reference = s.reference_lsn();
    s.replication
        .iter()
        .map(|w| StandbyLink {
            application_name: w.application_name.clone().unwrap_or_default(),
            client_addr: w.client_addr.clone().unwrap_or_default(),
            state: w.state.clone(),
            sync_state: w.sync_state.clone(),
            replay_lag_bytes: w.lag_bytes(Stage::Replay, reference),
            replay_lag_seconds: w.lag_seconds(Stage::Replay, reference),
        })
        .collect()
}

/// Its slots, with the retained WAL `/metrics` shows for them.
fn slots(s: &Sample) -> Vec<SlotView> {
    let reference = s.reference_lsn();
    s.slots
        .iter()
        .map(|sl| SlotView {
            slot_name: sl.slot_name.clone(),
            active: sl.active,
            retained_bytes: sl.retained_bytes(reference),
            wal_status: sl.wal_status.clone(),
            synced: sl.synced == Some(true),
        })
        .collect()
}
