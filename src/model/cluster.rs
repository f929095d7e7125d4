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

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::sources::lsn;
use crate::sources::replication::Walsender;
use crate::sources::{wal_receiver, Sample};

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
    pub wal_receiver_status: Option<String>,
    /// How its upstream sees this standby (`async`, `sync`, ...).
    pub sync_state: Option<String>,
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
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub replay_lag_bytes: Option<f64>,
    pub replay_lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    pub slot_name: String,
    pub active: bool,
    pub retained_bytes: Option<f64>,
    pub wal_status: Option<String>,
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

/// Who streams from whom inside one cluster.
struct Links<'a> {
    members: &'a [&'a TargetSnapshot],
    /// Per member (same index), the link to the member it streams from.
    upstream: Vec<Option<Link<'a>>>,
    /// Per member: a standby whose upstream cannot be found because its
    /// WAL receiver's details are hidden from the monitoring role.
    hidden: Vec<bool>,
    primary: Option<usize>,
}

/// A standby's link to its upstream member.
#[derive(Clone, Copy)]
struct Link<'a> {
    /// The upstream's index among the members.
    from: usize,
    /// Whether WAL flows now; `None` when neither the upstream's walsender
    /// nor the standby's receiver may be read (no `pg_read_all_stats`).
    streaming: Option<bool>,
    /// The upstream's walsender serving this standby, when it was found by
    /// it (not only by the standby's receiver address).
    walsender: Option<&'a Walsender>,
}

impl<'a> Links<'a> {
    fn new(members: &'a [&'a TargetSnapshot], primary: Option<&TargetSnapshot>) -> Links<'a> {
        let primary = primary.and_then(|p| members.iter().position(|m| std::ptr::eq(*m, p)));
        let upstream = members
            .iter()
            .enumerate()
            .map(|(i, m)| find_upstream(i, m, members))
            .collect();
        let hidden = members
            .iter()
            .map(|m| {
                m.sample
                    .as_deref()
                    .is_some_and(|s| s.server.in_recovery && receiver_streams(s).is_none())
            })
            .collect();
        Links {
            members,
            upstream,
            hidden,
            primary,
        }
    }

    /// The chain from the primary down to member `i`'s upstream: whether
    /// every link of it streams, cannot be told, or is broken (or does not
    /// reach the primary).
    fn chain(&self, i: usize) -> Chain {
        let mut chain = Vec::new();
        let mut at = i;
        let mut unknown = false;
        // A chain longer than the cluster has members loops.
        for _ in 0..self.members.len() {
            let Some(link) = self.upstream[at] else {
                return if self.hidden[at] {
                    Chain::Unknown(Vec::new())
                } else {
                    Chain::Broken
                };
            };
            match link.streaming {
                Some(false) => return Chain::Broken,
                None => unknown = true,
                Some(true) => {}
            }
            let up = link.from;
            chain.push(up);
            if Some(up) == self.primary {
                chain.reverse();
                return if unknown {
                    Chain::Unknown(chain)
                } else {
                    Chain::Reaches(chain)
                };
            }
            at = up;
        }
        Chain::Broken
    }

    /// Whether member `i` gets WAL from the primary: it is the primary, or
    /// its chain reaches it; `None` when that cannot be told.
    fn reaches_primary(&self, i: usize) -> Option<bool> {
        if Some(i) == self.primary {
            return Some(true);
        }
        self.chain(i).connected()
    }

    /// Whether a walsender with this `application_name` streams from the
    /// primary or from a standby whose own chain reaches it; `None` when a
    /// walsender with that name is there but its state is hidden from the
    /// monitoring role, or its upstream's chain cannot be told.
    fn streams_by_name(&self, name: &str) -> Option<bool> {
        let mut unknown = false;
        for (i, m) in self.members.iter().enumerate() {
            let reaches = self.reaches_primary(i);
            if reaches == Some(false) {
                continue;
            }
            let walsenders = m.sample.as_deref().map_or(&[][..], |s| &s.replication);
            for w in walsenders.iter().filter(|w| w.serves(&[name])) {
                match (w.state.as_ref(), reaches) {
                    (Some(_), Some(true)) if w.is_streaming() => return Some(true),
                    (None, _) | (_, None) => unknown = true,
                    _ => {}
                }
            }
        }
        if unknown {
            None
        } else {
            Some(false)
        }
    }
}

/// What the view can tell of the chain from a standby up to the primary.
enum Chain {
    /// Every link streams: the members WAL flows through, primary first.
    Reaches(Vec<usize>),
    /// Some link's state is hidden from the monitoring role; the path is
    /// there when the links themselves were found.
    Unknown(Vec<usize>),
    /// A link does not stream, or the chain does not reach the primary.
    Broken,
}

impl Chain {
    fn connected(&self) -> Option<bool> {
        match self {
            Chain::Reaches(_) => Some(true),
            Chain::Unknown(_) => None,
            Chain::Broken => Some(false),
        }
    }

    fn path(self) -> Vec<usize> {
        match self {
            Chain::Reaches(path) | Chain::Unknown(path) => path,
            Chain::Broken => Vec::new(),
        }
    }
}

/// Whether a standby's own WAL receiver streams: `Some(false)` when none
/// runs (no row), `None` when its row is there with every detail NULL
/// (the role lacks `pg_read_all_stats`).
fn receiver_streams(sample: &Sample) -> Option<bool> {
    match &sample.wal_receiver {
        None => Some(false),
        Some(w) => w.status.as_deref().map(|status| status == "streaming"),
    }
}

/// The slot a standby streams through: `primary_slot_name` (readable by
/// any role), else the one its WAL receiver reports. Its upstream's
/// walsender carries the same slot name, whatever `application_name` the
/// standby's `primary_conninfo` gives.
fn own_slot(sample: &Sample) -> Option<&str> {
    sample
        .settings
        .text("primary_slot_name")
        .or_else(|| sample.wal_receiver.as_ref()?.slot_name.as_deref())
        .filter(|s| !s.is_empty())
}

/// The names a standby's walsender may carry upstream: its
/// `application_name` (we cannot see its `primary_conninfo`, so the target
/// name stands in for it) or its `cluster_name`, which PostgreSQL uses when
/// `primary_conninfo` sets none.
fn walsender_names(m: &TargetSnapshot) -> Vec<&str> {
    let mut names = vec![m.name.as_str()];
    if let Some(c) = m
        .sample
        .as_deref()
        .and_then(|s| s.server.cluster_name.as_deref())
        .filter(|c| !c.is_empty())
    {
        names.push(c);
    }
    names
}

/// The member that member `i` streams from, and whether it streams now:
/// another member with a walsender named for it or streaming through its
/// slot, else the member its WAL receiver's `sender_host:sender_port`
/// points at.
fn find_upstream<'a>(
    i: usize,
    m: &TargetSnapshot,
    members: &[&'a TargetSnapshot],
) -> Option<Link<'a>> {
    let sample = m.sample.as_deref()?;
    if !sample.server.in_recovery {
        return None;
    }
    let names = walsender_names(m);
    let slot = own_slot(sample);
    let by_walsender = members.iter().enumerate().find_map(|(j, u)| {
        if j == i {
            return None;
        }
        let w = u.sample.as_deref()?.replication.iter().find(|w| {
            w.serves(&names) || slot.is_some_and(|s| w.slot_name.as_deref() == Some(s))
        })?;
        // A walsender's state is hidden without pg_read_all_stats (its
        // name and slot are not): then the standby's own receiver tells.
        let streaming = match w.state {
            Some(_) => Some(w.is_streaming()),
            None => receiver_streams(sample),
        };
        Some(Link {
            from: j,
            streaming,
            walsender: Some(w),
        })
    });
    if by_walsender.is_some() {
        return by_walsender;
    }
    let receiver = sample.wal_receiver.as_ref()?;
    let address = receiver.sender()?;
    let j = members
        .iter()
        .enumerate()
        .position(|(j, u)| j != i && !u.endpoint.is_empty() && u.endpoint == address)?;
    Some(Link {
        from: j,
        streaming: receiver_streams(sample),
        walsender: None,
    })
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
    lsn: Option<u64>,
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

fn member_view(
    m: &TargetSnapshot,
    index: usize,
    links: &Links<'_>,
    reference: &Reference<'_>,
) -> MemberView {
    let Some(s) = m.sample.as_deref() else {
        return MemberView {
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
        };
    };
    let standby = s.server.in_recovery;
    let sysid = s.server.system_identifier.clone();
    let foreign = matches!((reference.sysid, sysid.as_deref()), (Some(p), Some(me)) if p != me);
    let receiver = s.wal_receiver.as_ref();
    let upstream = receiver.and_then(wal_receiver::WalReceiver::sender);
    let link = links.upstream[index];
    let upstream_target = link.map(|l| links.members[l.from].name.clone());
    let chain = if standby && !foreign {
        links.chain(index)
    } else {
        Chain::Broken
    };
    let connected = standby.then(|| chain.connected()).flatten();
    let timeline = s.timeline();
    let sync_state = link
        .and_then(|l| l.walsender)
        .and_then(|w| w.sync_state.clone());
    let lag_bytes = if standby && !foreign {
        let replay = s.server.replay_lsn.as_deref().and_then(lsn::parse);
        reference.lsn.zip(replay).map(|(p, r)| lsn::diff(p, r))
    } else {
        None
    };
    let own_reference = s.reference_lsn();
    MemberView {
        target: m.name.clone(),
        up: true,
        role: Role::of_sample(Some(s)),
        version: Some(s.server.version.clone()),
        timeline,
        system_identifier: sysid,
        upstream,
        upstream_target,
        connected: if standby { connected } else { None },
        chain: chain
            .path()
            .into_iter()
            .map(|i| links.members[i].name.clone())
            .collect(),
        wal_receiver_status: match (standby, receiver) {
            (false, _) => None,
            (true, None) => Some("stopped".into()),
            (true, Some(w)) => w.status.clone(),
        },
        sync_state,
        lag_bytes,
        replay_delay_seconds: if standby {
            // Against the primary only when it is this cluster's system.
            let primary =
                (!foreign && reference.lsn.is_some()).then_some(wal_receiver::PrimaryPosition {
                    lsn: reference.lsn,
                    xmax: reference.xmax,
                });
            wal_receiver::replay_delay(s, primary)
        } else {
            None
        },
        replay_paused: s.server.replay_paused,
        apply_delay_waiting: if standby {
            s.activity.as_ref().map(|a| a.apply_delay_waiting)
        } else {
            None
        },
        apply_delay_seconds: if standby {
            s.settings
                .seconds("recovery_min_apply_delay")
                .filter(|d| *d > 0.0)
        } else {
            None
        },
        sync_required: if standby {
            None
        } else {
            crate::sources::sync_names::required(
                s.settings.text("synchronous_standby_names").unwrap_or(""),
            )
        },
        sync_connected: (!standby).then(|| {
            s.replication
                .iter()
                .filter(|w| matches!(w.sync_state.as_deref(), Some("sync" | "quorum")))
                .count()
        }),
        commits_waiting: if standby {
            None
        } else {
            s.activity.as_ref().map(|a| a.sync_waiting)
        },
        oldest_commit_wait_seconds: if standby {
            None
        } else {
            s.activity
                .as_ref()
                .map(|a| a.sync_oldest_wait.unwrap_or(0.0).max(0.0))
        },
        timeline_mismatch: standby
            && !foreign
            && matches!((reference.timeline, timeline), (Some(p), Some(t)) if p != t),
        foreign,
        standbys: s
            .replication
            .iter()
            .map(|w| StandbyLink {
                application_name: w.application_name.clone().unwrap_or_default(),
                client_addr: w.client_addr.clone().unwrap_or_default(),
                state: w.state.clone(),
                sync_state: w.sync_state.clone(),
                replay_lag_bytes: own_reference
                    .zip(w.replay_lsn.as_deref().and_then(lsn::parse))
                    .map(|(r, p)| lsn::diff(r, p)),
                replay_lag_seconds: crate::sources::replication::lag_seconds(s, w)[2].1,
            })
            .collect(),
        slots: s
            .slots
            .iter()
            .map(|sl| SlotView {
                slot_name: sl.slot_name.clone(),
                active: sl.active,
                retained_bytes: own_reference
                    .zip(sl.restart_lsn.as_deref().and_then(lsn::parse))
                    .map(|(r, p)| lsn::diff(r, p)),
                wal_status: sl.wal_status.clone(),
                synced: sl.synced == Some(true),
            })
            .collect(),
        error: None,
        privileges_missing: s
            .privileges
            .as_ref()
            .map(crate::sources::privileges::Privileges::missing)
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
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
}
