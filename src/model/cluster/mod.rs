//! The cluster view: targets that share `cluster` in the configuration,
//! judged together.
//!
//! One server alone cannot tell "caught up" from "cut off", or notice that
//! a standby vanished from `pg_stat_replication`, or that two servers both
//! believe they are primary. Put side by side, the members' snapshots can.
//! Computed from the snapshots at render time, so it never costs a query.
//!
//! Standbys form a tree: a cascading standby streams from another standby,
//! not from the primary. Each standby's upstream is found among the other
//! members (by the walsender that serves it, or by the address its WAL
//! receiver streams from), and a standby counts as connected when its chain
//! of upstreams reaches the primary. Every member that is not the primary
//! stays an expected standby while it is down, so that it reads 0 rather
//! than vanishing: an absent series never fires an alert.

mod links;
mod member;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::sources::lsn::Lsn;
use crate::sources::replication::{SyncState, WalSenderState};
use crate::sources::slots::WalStatus;
use crate::sources::wal_receiver::WalReceiverStatus;
use crate::sources::Sample;
use links::Links;
use member::member_view;

/// One member as the cluster sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub target: String,
    pub up: bool,
    pub role: Role,
    pub version: Option<String>,
    pub timeline: Option<u32>,
    pub system_identifier: Option<String>,
    /// `sender_host:sender_port` of a standby's WAL receiver.
    pub upstream: Option<String>,
    /// The member this standby streams from (the primary, or another
    /// standby for a cascade), when it is one of the cluster's targets.
    pub upstream_target: Option<String>,
    /// The members WAL flows through to reach this one, primary first
    /// (`[primary, standby1]` for a standby cascaded from standby1); empty
    /// for a primary, a down member, or a standby whose chain is broken.
    pub chain: Vec<String>,
    /// For a standby: whether its chain of upstreams streams all the way
    /// from the primary; `None` also when that cannot be told (the
    /// monitoring role may not read the replication state).
    pub connected: Option<bool>,
    /// For a standby: its WAL receiver's status, `stopped` when none runs,
    /// `None` when the role may not read it.
    pub wal_receiver_status: Option<WalReceiverStatus>,
    /// How its upstream sees this standby (`async`, `sync`, ...).
    pub sync_state: Option<SyncState>,
    /// Primary's current position minus this standby's replay position,
    /// measured from outside: valid even when the walsender is gone, and
    /// against the primary also for a cascaded standby.
    pub lag_bytes: Option<f64>,
    pub replay_delay_seconds: Option<f64>,
    pub replay_paused: Option<bool>,
    /// Whether the standby's startup process is waiting on
    /// `recovery_min_apply_delay`: delayed on purpose, not stuck.
    pub apply_delay_waiting: Option<bool>,
    /// `recovery_min_apply_delay` in seconds, when the standby has one.
    pub apply_delay_seconds: Option<f64>,
    /// On a primary: synchronous standbys `synchronous_standby_names` asks
    /// for, and how many are connected in sync or quorum state.
    pub sync_required: Option<u32>,
    pub sync_connected: Option<usize>,
    /// On a primary: sessions waiting for a synchronous standby to confirm
    /// their commit, and the oldest wait (`pg_stat_activity`).
    pub commits_waiting: Option<f64>,
    pub oldest_commit_wait_seconds: Option<f64>,
    pub timeline_mismatch: bool,
    /// Its `system_identifier` differs from the primary's: not a standby of
    /// this cluster at all, a configuration mistake.
    pub foreign: bool,
    pub standbys: Vec<StandbyLink>,
    pub slots: Vec<SlotView>,
    pub error: Option<String>,
    /// Privileges the monitoring role lacks on this server
    /// (`pgrepl_privilege_missing`); what they hide is not judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges_missing: Vec<&'static str>,
}

/// A walsender of a member, as shown on the topology page.
#[derive(Debug, Clone, Serialize)]
pub struct StandbyLink {
    pub application_name: String,
    pub client_addr: String,
    pub state: Option<WalSenderState>,
    pub sync_state: Option<SyncState>,
    pub replay_lag_bytes: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    pub slot_name: String,
    pub active: bool,
    pub retained_bytes: Option<f64>,
    pub wal_status: Option<WalStatus>,
    /// On a standby (17+): a failover slot kept in step from the primary,
    /// inactive by design until a promotion.
    #[serde(skip_serializing_if = "is_false")]
    pub synced: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedStandby {
    pub name: String,
    /// `null` when it cannot be told: the monitoring role may not read the
    /// replication state of the servers involved (`pg_read_all_stats`).
    pub connected: Option<bool>,
}

/// The replication tree: a member and the members that stream from it.
#[derive(Debug, Clone, Serialize)]
pub struct TreeNode {
    pub target: String,
    pub children: Vec<TreeNode>,
}

/// A cluster; targets without `cluster` each form an unnamed one.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// Empty for a target configured without a cluster.
    pub name: String,
    /// The reachable members not in recovery; more than one is split brain.
    pub primaries: Vec<String>,
    pub members_up: usize,
    pub members: Vec<MemberView>,
    pub expected_standbys: Vec<ExpectedStandby>,
    /// Who streams from whom: the primaries at the roots, then each
    /// standby under its upstream; members whose upstream is unknown (down,
    /// detached, streaming from outside the cluster) are roots of their own.
    pub tree: Vec<TreeNode>,
}

impl ClusterView {
    pub fn member(&self, target: &str) -> Option<&MemberView> {
        self.members.iter().find(|m| m.target == target)
    }
}

/// The primary the others are judged against: with several (split brain),
/// the one most standbys stream from, then the newest timeline.
fn reference_primary<'a>(members: &[&'a TargetSnapshot]) -> Option<&'a TargetSnapshot> {
    members
        .iter()
        .copied()
        .filter(|m| Role::of(m) == Role::Primary)
        .max_by_key(|m| {
            let s = m.sample.as_deref();
            (
                s.map_or(0, |s| s.replication.len()),
                s.and_then(Sample::timeline).unwrap_or(0),
            )
        })
}

/// Builds the view of every cluster from the snapshots.
pub fn views(
    snaps: &[Arc<TargetSnapshot>],
    configs: &BTreeMap<String, ClusterConfig>,
) -> Vec<ClusterView> {
    let mut grouped: BTreeMap<String, Vec<&TargetSnapshot>> = BTreeMap::new();
    let mut lone = Vec::new();
    for s in snaps {
        match &s.cluster {
            Some(c) => grouped.entry(c.clone()).or_default().push(s),
            None => lone.push(s.as_ref()),
        }
    }
    let mut out: Vec<ClusterView> = grouped
        .into_iter()
        .map(|(name, members)| {
            let config = configs.get(&name);
            view(name, &members, config)
        })
        .collect();
    out.extend(lone.into_iter().map(|m| view(String::new(), &[m], None)));
    out
}

fn view(name: String, members: &[&TargetSnapshot], config: Option<&ClusterConfig>) -> ClusterView {
    let primary = reference_primary(members);
    let links = Links::new(members, primary);
    let primary_sample = primary.and_then(|p| p.sample.as_deref());
    let reference = Reference {
        sysid: primary_sample.and_then(|s| s.server.system_identifier.as_deref()),
        timeline: primary_sample.and_then(Sample::timeline),
        lsn: primary_sample.and_then(Sample::reference_lsn),
        xmax: primary_sample.and_then(|s| s.server.snapshot_xmax),
    };

    let members_view: Vec<MemberView> = members
        .iter()
        .enumerate()
        .map(|(i, m)| member_view(m, i, &links, &reference))
        .collect();

    // Every member but the primary is expected, also while it is down
    // (it reads 0 then); a down member last seen as a primary is not. A
    // target without a cluster is a cluster of one: nothing to expect.
    let expected_names: Vec<String> = match config.and_then(|c| c.expected_standbys.clone()) {
        Some(list) => list,
        None if name.is_empty() => Vec::new(),
        None => members_view
            .iter()
            .zip(members)
            .filter(|(v, m)| match v.role {
                Role::Primary => false,
                Role::Standby => !v.foreign,
                Role::Down => m.last_in_recovery != Some(false),
            })
            .map(|(v, _)| v.target.clone())
            .collect(),
    };
    let expected_standbys = expected_names
        .into_iter()
        .map(|standby| {
            // A target by its name, else (as PostgreSQL compares standby
            // names) ignoring case; else a walsender's application_name.
            let member = members_view
                .iter()
                .find(|v| v.target == standby)
                .or_else(|| {
                    members_view
                        .iter()
                        .find(|v| v.target.eq_ignore_ascii_case(&standby))
                });
            let connected = match member {
                Some(v) if v.role == Role::Standby => v.connected,
                // Down reads 0, never absent; a primary is not a standby.
                Some(_) => Some(false),
                None => links.streams_by_name(&standby),
            };
            ExpectedStandby {
                name: standby,
                connected,
            }
        })
        .collect();

    ClusterView {
        primaries: members_view
            .iter()
            .filter(|m| m.role == Role::Primary)
            .map(|m| m.target.clone())
            .collect(),
        members_up: members_view.iter().filter(|m| m.up).count(),
        tree: tree(&members_view),
        members: members_view,
        expected_standbys,
        name,
    }
}

/// What the members are judged against: the reference primary's identity,
/// timeline, current WAL position and snapshot xmax.
struct Reference<'a> {
    sysid: Option<&'a str>,
    timeline: Option<u32>,
    lsn: Option<Lsn>,
    xmax: Option<u64>,
}

/// Roots first (primaries, then members with no known upstream), each
/// member under the one it streams from.
fn tree(members: &[MemberView]) -> Vec<TreeNode> {
    fn node(target: &str, members: &[MemberView], depth: usize) -> TreeNode {
        let children = if depth > members.len() {
            Vec::new()
        } else {
            members
                .iter()
                .filter(|m| m.upstream_target.as_deref() == Some(target))
                .map(|m| node(&m.target, members, depth + 1))
                .collect()
        };
        TreeNode {
            target: target.to_string(),
            children,
        }
    }
    let mut roots: Vec<&MemberView> = members.iter().filter(|m| m.role == Role::Primary).collect();
    roots.extend(
        members
            .iter()
            .filter(|m| m.role != Role::Primary && m.upstream_target.is_none()),
    );
    roots
        .into_iter()
        .map(|m| node(&m.target, members, 0))
        .collect()
}
