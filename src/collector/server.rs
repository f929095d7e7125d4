//! Server identity, role, timeline and WAL positions: recovery functions,
//! `pg_control_system()` and `pg_control_checkpoint()`.
//!
//! Families: `pgrepl_server_info`, `pgrepl_in_recovery`, `pgrepl_timeline_id`,
//! `pgrepl_timeline_changes_total`, `pgrepl_wal_lsn_bytes`,
//! `pgrepl_recovery_conflicts_total` (standbys).

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::Capabilities;
use crate::exposition::{counter_family, gauge_family};
use crate::lsn;
use crate::snapshot::{up_samples, TargetSnapshot};

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub in_recovery: bool,
    pub version: String,
    pub system_identifier: Option<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Only on a primary: `pg_current_wal_lsn()` errors during recovery.
    pub current_lsn: Option<String>,
    pub primary_timeline: Option<u32>,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub last_replay_ts: Option<f64>,
    pub checkpoint_timeline: Option<u32>,
    /// Only on a standby: the pause functions error on a primary.
    pub replay_paused: Option<bool>,
    /// Queries cancelled by recovery conflicts (pg_stat_database_conflicts).
    #[serde(default)]
    pub recovery_conflicts: Option<f64>,
    /// The server's clock, so ages are computed against the server and not
    /// against a possibly skewed exporter host.
    pub now: f64,
}

pub fn sql(caps: &Capabilities) -> String {
    // 14 replaced the boolean with a state that also reports a pause that
    // was requested but has not taken effect yet; both count as paused.
    let paused = if caps.at_least(14) {
        "pg_get_wal_replay_pause_state() <> 'not paused'"
    } else {
        "pg_is_wal_replay_paused()"
    };
    format!(
        "SELECT row_to_json(s) FROM (SELECT \
           pg_is_in_recovery() AS in_recovery, \
           current_setting('server_version') AS version, \
           (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier, \
           current_setting('cluster_name') AS cluster_name, \
           CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS current_lsn, \
           CASE WHEN NOT pg_is_in_recovery() THEN \
             ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS primary_timeline, \
           pg_last_wal_receive_lsn()::text AS receive_lsn, \
           pg_last_wal_replay_lsn()::text AS replay_lsn, \
           EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp())::float8 AS last_replay_ts, \
           (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline, \
           CASE WHEN pg_is_in_recovery() THEN {paused} END AS replay_paused, \
           (SELECT sum(confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin + confl_deadlock) \
              FROM pg_stat_database_conflicts)::float8 AS recovery_conflicts, \
           EXTRACT(EPOCH FROM now())::float8 AS now) s"
    )
}

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    gauge_family(
        enc,
        "pgrepl_server_info",
        "Identity of the server (value 1): version, system_identifier (equal on a primary and all its physical standbys) and cluster_name.",
        up_samples(snaps).map(|(t, s)| {
            (
                [
                    ("target", t),
                    ("version", s.server.version.as_str()),
                    (
                        "system_identifier",
                        s.server.system_identifier.as_deref().unwrap_or(""),
                    ),
                    ("cluster_name", s.server.cluster_name.as_deref().unwrap_or("")),
                ],
                1.0,
            )
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_in_recovery",
        "1 when the server is a standby (in recovery), 0 when it is a primary.",
        up_samples(snaps)
            .map(|(t, s)| ([("target", t)], f64::from(u8::from(s.server.in_recovery)))),
    )?;
    gauge_family(
        enc,
        "pgrepl_timeline_id",
        "Current timeline of the server; it increases at each promotion.",
        up_samples(snaps)
            .filter_map(|(t, s)| s.timeline().map(|tl| ([("target", t)], f64::from(tl)))),
    )?;
    counter_family(
        enc,
        "pgrepl_timeline_changes",
        "Timeline switches the exporter has seen on this server (promotions, standbys following a new primary).",
        snaps
            .iter()
            .filter(|s| s.seen_timeline)
            .map(|s| ([("target", s.name.as_str())], s.timeline_changes as f64)),
    )?;
    gauge_family(
        enc,
        "pgrepl_wal_lsn_bytes",
        "WAL position as a byte offset: current (primary), receive and replay (standby).",
        up_samples(snaps).flat_map(|(t, s)| {
            let positions: [(&'static str, Option<&str>); 3] = if s.server.in_recovery {
                [
                    ("receive", s.server.receive_lsn.as_deref()),
                    ("replay", s.server.replay_lsn.as_deref()),
                    ("current", None),
                ]
            } else {
                [
                    ("current", s.server.current_lsn.as_deref()),
                    ("receive", None),
                    ("replay", None),
                ]
            };
            positions.into_iter().filter_map(move |(position, text)| {
                let v = lsn::parse(text?)?;
                Some(([("target", t), ("position", position)], v as f64))
            })
        }),
    )?;
    counter_family(
        enc,
        "pgrepl_recovery_conflicts",
        "Queries on the standby cancelled because replay conflicted with them (pg_stat_database_conflicts).",
        up_samples(snaps)
            .filter(|(_, s)| s.server.in_recovery)
            .filter_map(|(t, s)| Some(([("target", t)], s.server.recovery_conflicts?))),
    )
}
