//! The cluster view: targets that share `cluster` in the configuration,
//! judged together.
//!
//! One server alone cannot tell "caught up" from "cut off", or notice that
//! a standby vanished from `pg_stat_replication`, or that two servers both
//! believe they are primary. Put side by side, the members' snapshots can.
//! Computed from the snapshots at render time, so it never costs a query.
//!
//! Families: `pgrepl_cluster_primaries`, `pgrepl_cluster_members`,
//! `pgrepl_cluster_members_up`, `pgrepl_cluster_expected_standby_connected`,
//! `pgrepl_cluster_timeline_mismatch`, `pgrepl_cluster_standby_lag_bytes`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Serialize;

use crate::collector::replication::Walsender;
use crate::collector::{wal_receiver, Sample};
use crate::config::ClusterConfig;
use crate::exposition::gauge_family;
use crate::lsn;
use crate::snapshot::TargetSnapshot;

/// One member as the cluster sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub target: String,
    pub up: bool,
    /// `primary`, `standby` or `down`.
    pub role: &'static str,
    pub version: Option<String>,
    pub timeline: Option<u32>,
    pub system_identifier: Option<String>,
    /// `sender_host:sender_port` of a standby's WAL receiver.
    pub upstream: Option<String>,
    pub wal_receiver_status: Option<String>,
    /// How the primary sees this standby (`async`, `sync`, ...).
    pub sync_state: Option<String>,
    /// Primary's current position minus this standby's replay position,
    /// measured from outside: valid even when the walsender is gone.
    pub lag_bytes: Option<f64>,
    pub replay_delay_seconds: Option<f64>,
    pub replay_paused: Option<bool>,
    pub timeline_mismatch: bool,
    /// Its `system_identifier` differs from the primary's: not a standby of
    /// this cluster at all, a configuration mistake.
    pub foreign: bool,
    pub standbys: Vec<StandbyLink>,
    pub slots: Vec<SlotView>,
    pub error: Option<String>,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectedStandby {
    pub name: String,
    pub connected: bool,
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
}

impl ClusterView {
    pub fn member(&self, target: &str) -> Option<&MemberView> {
        self.members.iter().find(|m| m.target == target)
    }
}

/// The primary the others are judged against: with several (split brain),
/// the one most standbys stream from, then the newest timeline.
fn reference_primary<'a>(
    members: &[&'a TargetSnapshot],
) -> Option<(&'a TargetSnapshot, &'a Sample)> {
    members
        .iter()
        .filter_map(|m| Some((*m, m.sample.as_deref()?)))
        .filter(|(_, s)| !s.server.in_recovery)
        .max_by_key(|(_, s)| (s.replication.len(), s.timeline().unwrap_or(0)))
}

fn is_streaming(w: &Walsender) -> bool {
    w.state.as_deref() == Some("streaming")
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
    let primary_sysid = primary.and_then(|(_, s)| s.server.system_identifier.clone());
    let primary_timeline = primary.and_then(|(_, s)| s.timeline());
    let primary_lsn = primary.and_then(|(_, s)| s.reference_lsn());
    let primary_walsenders: &[Walsender] = primary
        .map(|(_, s)| s.replication.as_slice())
        .unwrap_or(&[]);

    let members_view: Vec<MemberView> = members
        .iter()
        .map(|m| {
            member_view(
                m,
                primary_sysid.as_deref(),
                primary_timeline,
                primary_lsn,
                primary_walsenders,
            )
        })
        .collect();

    let expected_names: Vec<String> = match config.and_then(|c| c.expected_standbys.clone()) {
        Some(list) => list,
        None => members_view
            .iter()
            .filter(|m| m.role == "standby" && !m.foreign)
            .map(|m| m.target.clone())
            .collect(),
    };
    let expected_standbys = expected_names
        .into_iter()
        .map(|standby| {
            let connected = primary
                .is_some_and(|(p, _)| expected_connected(&standby, p, primary_walsenders, members));
            ExpectedStandby {
                name: standby,
                connected,
            }
        })
        .collect();

    ClusterView {
        primaries: members_view
            .iter()
            .filter(|m| m.role == "primary")
            .map(|m| m.target.clone())
            .collect(),
        members_up: members_view.iter().filter(|m| m.up).count(),
        members: members_view,
        expected_standbys,
        name,
    }
}

/// A standby counts as connected when the primary streams to it: by
/// `application_name`, by the member's `cluster_name` (what PostgreSQL uses
/// when `primary_conninfo` sets no application name), or, for a member that
/// streams, by its upstream being the primary.
fn expected_connected(
    standby: &str,
    primary: &TargetSnapshot,
    walsenders: &[Walsender],
    members: &[&TargetSnapshot],
) -> bool {
    let by_name = |name: &str| {
        walsenders
            .iter()
            .any(|w| is_streaming(w) && w.application_name.as_deref() == Some(name))
    };
    if by_name(standby) {
        return true;
    }
    let Some(member) = members.iter().find(|m| m.name == standby) else {
        return false;
    };
    let Some(sample) = member.sample.as_deref() else {
        return false;
    };
    if !sample.server.in_recovery {
        return false;
    }
    if let Some(cluster_name) = sample
        .server
        .cluster_name
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        if by_name(cluster_name) {
            return true;
        }
    }
    match &sample.wal_receiver {
        Some(w) if w.status.as_deref() == Some("streaming") => {
            let upstream = format!(
                "{}:{}",
                w.sender_host.as_deref().unwrap_or(""),
                w.sender_port.unwrap_or(0)
            );
            !primary.endpoint.is_empty() && upstream == primary.endpoint
        }
        _ => false,
    }
}

fn member_view(
    m: &TargetSnapshot,
    primary_sysid: Option<&str>,
    primary_timeline: Option<u32>,
    primary_lsn: Option<u64>,
    primary_walsenders: &[Walsender],
) -> MemberView {
    let Some(s) = m.sample.as_deref() else {
        return MemberView {
            target: m.name.clone(),
            up: false,
            role: "down",
            version: None,
            timeline: None,
            system_identifier: None,
            upstream: None,
            wal_receiver_status: None,
            sync_state: None,
            lag_bytes: None,
            replay_delay_seconds: None,
            replay_paused: None,
            timeline_mismatch: false,
            foreign: false,
            standbys: Vec::new(),
            slots: Vec::new(),
            error: m.last_error.clone(),
        };
    };
    let standby = s.server.in_recovery;
    let sysid = s.server.system_identifier.clone();
    let foreign = matches!((primary_sysid, sysid.as_deref()), (Some(p), Some(me)) if p != me);
    let receiver = s.wal_receiver.as_ref();
    let upstream =
        receiver.and_then(|w| Some(format!("{}:{}", w.sender_host.as_deref()?, w.sender_port?)));
    let timeline = s.timeline();
    let sync_state = if standby {
        let cluster_name = s.server.cluster_name.as_deref().unwrap_or("");
        primary_walsenders
            .iter()
            .find(|w| {
                let app = w.application_name.as_deref().unwrap_or("");
                app == m.name || (!cluster_name.is_empty() && app == cluster_name)
            })
            .and_then(|w| w.sync_state.clone())
    } else {
        None
    };
    let lag_bytes = if standby && !foreign {
        let replay = s.server.replay_lsn.as_deref().and_then(lsn::parse);
        primary_lsn.zip(replay).map(|(p, r)| lsn::diff(p, r))
    } else {
        None
    };
    let reference = s.reference_lsn();
    MemberView {
        target: m.name.clone(),
        up: true,
        role: if standby { "standby" } else { "primary" },
        version: Some(s.server.version.clone()),
        timeline,
        system_identifier: sysid,
        upstream,
        wal_receiver_status: if standby {
            Some(
                receiver
                    .and_then(|w| w.status.clone())
                    .unwrap_or_else(|| "stopped".into()),
            )
        } else {
            None
        },
        sync_state,
        lag_bytes,
        replay_delay_seconds: if standby {
            wal_receiver::replay_delay(s)
        } else {
            None
        },
        replay_paused: s.server.replay_paused,
        timeline_mismatch: standby
            && !foreign
            && matches!((primary_timeline, timeline), (Some(p), Some(t)) if p != t),
        foreign,
        standbys: s
            .replication
            .iter()
            .map(|w| StandbyLink {
                application_name: w.application_name.clone().unwrap_or_default(),
                client_addr: w.client_addr.clone().unwrap_or_default(),
                state: w.state.clone(),
                sync_state: w.sync_state.clone(),
                replay_lag_bytes: reference
                    .zip(w.replay_lsn.as_deref().and_then(lsn::parse))
                    .map(|(r, p)| lsn::diff(r, p)),
                replay_lag_seconds: w.replay_lag,
            })
            .collect(),
        slots: s
            .slots
            .iter()
            .map(|sl| SlotView {
                slot_name: sl.slot_name.clone(),
                active: sl.active,
                retained_bytes: reference
                    .zip(sl.restart_lsn.as_deref().and_then(lsn::parse))
                    .map(|(r, p)| lsn::diff(r, p)),
                wal_status: sl.wal_status.clone(),
            })
            .collect(),
        error: None,
    }
}

pub fn encode(clusters: &[ClusterView], enc: &mut DescriptorEncoder) -> fmt::Result {
    let named = || clusters.iter().filter(|c| !c.name.is_empty());
    gauge_family(
        enc,
        "pgrepl_cluster_primaries",
        "Reachable members of the cluster that are not in recovery; more than 1 is split brain, 0 means no primary.",
        named().map(|c| ([("cluster", c.name.as_str())], c.primaries.len() as f64)),
    )?;
    gauge_family(
        enc,
        "pgrepl_cluster_members",
        "Targets configured in the cluster.",
        named().map(|c| ([("cluster", c.name.as_str())], c.members.len() as f64)),
    )?;
    gauge_family(
        enc,
        "pgrepl_cluster_members_up",
        "Members of the cluster whose last collection succeeded.",
        named().map(|c| ([("cluster", c.name.as_str())], c.members_up as f64)),
    )?;
    gauge_family(
        enc,
        "pgrepl_cluster_expected_standby_connected",
        "1 when an expected standby is seen streaming from the primary, 0 when it is missing.",
        named().flat_map(|c| {
            c.expected_standbys.iter().map(move |e| {
                (
                    [("cluster", c.name.as_str()), ("standby", e.name.as_str())],
                    f64::from(u8::from(e.connected)),
                )
            })
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_cluster_timeline_mismatch",
        "1 when a standby follows another timeline than the cluster's primary.",
        named().flat_map(|c| {
            c.members
                .iter()
                .filter(|m| m.role == "standby" && !m.foreign && !c.primaries.is_empty())
                .map(move |m| {
                    (
                        [("cluster", c.name.as_str()), ("target", m.target.as_str())],
                        f64::from(u8::from(m.timeline_mismatch)),
                    )
                })
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_cluster_standby_lag_bytes",
        "Primary's current WAL position minus the standby's replay position, measured from outside (also when the standby is not connected).",
        named().flat_map(|c| {
            c.members.iter().filter_map(move |m| {
                Some((
                    [("cluster", c.name.as_str()), ("target", m.target.as_str())],
                    m.lag_bytes?,
                ))
            })
        }),
    )
}
