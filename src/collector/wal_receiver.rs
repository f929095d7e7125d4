//! The standby's own view of its upstream: `pg_stat_wal_receiver` and the
//! replay functions.
//!
//! Families (standbys only): `pgrepl_wal_receiver_status`,
//! `pgrepl_wal_receiver_info`, `pgrepl_wal_receiver_last_message_age_seconds`,
//! `pgrepl_replay_backlog_bytes`, `pgrepl_replay_delay_seconds`,
//! `pgrepl_last_replay_timestamp_seconds`, `pgrepl_replay_paused`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Sample};
use crate::exposition::{gauge_family, state_set};
use crate::lsn;
use crate::snapshot::{up_samples, TargetSnapshot};

#[derive(Debug, Clone, Deserialize)]
pub struct WalReceiver {
    pub status: Option<String>,
    pub received_tli: Option<u32>,
    /// 11+.
    pub sender_host: Option<String>,
    /// 11+.
    pub sender_port: Option<i32>,
    pub slot_name: Option<String>,
    pub last_msg_receipt_time: Option<f64>,
}

pub fn sql(caps: &Capabilities) -> String {
    let sender = if caps.at_least(11) {
        "sender_host, sender_port"
    } else {
        "NULL::text AS sender_host, NULL::int AS sender_port"
    };
    format!(
        "SELECT row_to_json(x) FROM (SELECT status, received_tli, {sender}, slot_name, \
           EXTRACT(EPOCH FROM last_msg_receipt_time)::float8 AS last_msg_receipt_time \
         FROM pg_stat_wal_receiver LIMIT 1) x"
    )
}

const STATUSES: [&str; 6] = [
    "stopped",
    "starting",
    "streaming",
    "waiting",
    "restarting",
    "stopping",
];

fn standbys(snaps: &[Arc<TargetSnapshot>]) -> impl Iterator<Item = (&str, &Sample)> {
    up_samples(snaps).filter(|(_, s)| s.server.in_recovery)
}

/// Received but not yet replayed, in bytes.
pub fn replay_backlog(s: &Sample) -> Option<f64> {
    let receive = lsn::parse(s.server.receive_lsn.as_deref()?)?;
    let replay = lsn::parse(s.server.replay_lsn.as_deref()?)?;
    Some(lsn::diff(receive, replay))
}

/// The seed's `log_delay`: 0 when everything received is replayed (an idle
/// primary is not lag), else the age of the last replayed transaction.
pub fn replay_delay(s: &Sample) -> Option<f64> {
    if replay_backlog(s) == Some(0.0) {
        return Some(0.0);
    }
    let last = s.server.last_replay_ts?;
    Some((s.server.now - last).max(0.0))
}

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    gauge_family(
        enc,
        "pgrepl_wal_receiver_status",
        "State of the standby's WAL receiver (one series per state, 1 for the current one); stopped when no receiver runs.",
        standbys(snaps).flat_map(|(t, s)| {
            // No row: no receiver runs. A row without status: the role may
            // not read it (no pg_monitor); then say nothing rather than "stopped".
            let current = match &s.wal_receiver {
                None => Some("stopped"),
                Some(w) => w.status.as_deref(),
            };
            current.into_iter().flat_map(move |current| {
                state_set(&STATUSES, Some(current))
                    .map(move |(status, v)| ([("target", t), ("status", status)], v))
            })
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_wal_receiver_info",
        "The upstream server the WAL receiver streams from (value 1 while a receiver runs).",
        standbys(snaps).filter_map(|(t, s)| {
            let w = s.wal_receiver.as_ref()?;
            let port = w.sender_port.map(|p| p.to_string()).unwrap_or_default();
            Some((
                [
                    ("target", Cow::Borrowed(t)),
                    (
                        "sender_host",
                        Cow::Borrowed(w.sender_host.as_deref().unwrap_or("")),
                    ),
                    ("sender_port", Cow::Owned(port)),
                    (
                        "slot_name",
                        Cow::Borrowed(w.slot_name.as_deref().unwrap_or("")),
                    ),
                ],
                1.0,
            ))
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_wal_receiver_last_message_age_seconds",
        "Seconds since the standby last heard from its upstream; grows when it is cut off even though byte lag may read 0.",
        standbys(snaps).filter_map(|(t, s)| {
            let at = s.wal_receiver.as_ref()?.last_msg_receipt_time?;
            Some(([("target", t)], (s.server.now - at).max(0.0)))
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_replay_backlog_bytes",
        "WAL received by the standby but not yet replayed.",
        standbys(snaps).filter_map(|(t, s)| Some(([("target", t)], replay_backlog(s)?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_replay_delay_seconds",
        "0 when the standby has replayed all it received, else the age of the last replayed transaction.",
        standbys(snaps).filter_map(|(t, s)| Some(([("target", t)], replay_delay(s)?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_last_replay_timestamp_seconds",
        "Commit time (Unix) of the last transaction replayed by the standby.",
        standbys(snaps).filter_map(|(t, s)| Some(([("target", t)], s.server.last_replay_ts?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_replay_paused",
        "1 when WAL replay is paused or a pause was requested (pg_wal_replay_pause()).",
        standbys(snaps).filter_map(|(t, s)| {
            Some((
                [("target", t)],
                f64::from(u8::from(s.server.replay_paused?)),
            ))
        }),
    )
}
