//! The standby's own view of its upstream: `pg_stat_wal_receiver` and the
//! replay functions. Standbys only.

use std::borrow::Cow;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Sample, Up};
use crate::family::{emit, flag, state_set, Family, Label, Scope, TARGET};
use crate::lsn;

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

impl WalReceiver {
    /// `sender_host:sender_port`, the upstream as a member's endpoint is
    /// written; `None` before 11 (no such columns) or while not connected.
    pub fn sender(&self) -> Option<String> {
        Some(format!(
            "{}:{}",
            self.sender_host.as_deref()?,
            self.sender_port?
        ))
    }
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

const RECEIVER_RUNS: (&str, &str) = (
    "while a WAL receiver runs",
    "mientras corre un WAL receiver",
);

pub const WAL_RECEIVER_STATUS: Family = Family::gauge(
    "pgrepl_wal_receiver_status",
    "State of the standby's WAL receiver (one series per state, 1 for the current one); stopped when no receiver runs.",
    "Estado del WAL receiver de la réplica (una serie por estado, 1 para el actual); stopped cuando no corre ninguno.",
    &[TARGET, Label::one_of("status", &STATUSES)],
    Scope::Standby,
);

pub const WAL_RECEIVER_INFO: Family = Family::gauge(
    "pgrepl_wal_receiver_info",
    "The upstream server the WAL receiver streams from (value 1 while a receiver runs).",
    "El servidor del que el WAL receiver recibe el stream (valor 1 mientras corre un receiver).",
    &[
        TARGET,
        Label::text(
            "sender_host",
            "host of the upstream (primary or cascading standby)",
        ),
        Label::text("sender_port", "port of the upstream"),
        Label::text("slot_name", "`primary_slot_name`; empty when none"),
    ],
    Scope::Standby,
)
.when(RECEIVER_RUNS.0, RECEIVER_RUNS.1);

pub const WAL_RECEIVER_LAST_MESSAGE_AGE_SECONDS: Family = Family::gauge(
    "pgrepl_wal_receiver_last_message_age_seconds",
    "Seconds since the standby last heard from its upstream; grows when it is cut off even though byte lag may read 0.",
    "Segundos desde que la réplica recibió el último mensaje de su origen; crece cuando queda aislada aunque el lag en bytes marque 0.",
    &[TARGET],
    Scope::Standby,
)
.when(RECEIVER_RUNS.0, RECEIVER_RUNS.1);

pub const REPLAY_BACKLOG_BYTES: Family = Family::gauge(
    "pgrepl_replay_backlog_bytes",
    "WAL received by the standby but not yet replayed.",
    "WAL recibido por la réplica y aún no aplicado.",
    &[TARGET],
    Scope::Standby,
);

pub const REPLAY_DELAY_SECONDS: Family = Family::gauge(
    "pgrepl_replay_delay_seconds",
    "0 when the standby has replayed all it received, else the age of the last replayed transaction.",
    "0 cuando la réplica aplicó todo lo recibido; si no, la edad de la última transacción aplicada.",
    &[TARGET],
    Scope::Standby,
)
.when(
    "when all is replayed, or a transaction was replayed since the standby started",
    "cuando todo está aplicado, o se aplicó una transacción desde que arrancó la réplica",
);

pub const LAST_REPLAY_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_last_replay_timestamp_seconds",
    "Commit time (Unix) of the last transaction replayed by the standby.",
    "Hora de commit (Unix) de la última transacción aplicada por la réplica.",
    &[TARGET],
    Scope::Standby,
)
.when(
    "once a transaction was replayed since the standby started",
    "desde que se aplicó una transacción tras arrancar la réplica",
);

pub const REPLAY_PAUSED: Family = Family::gauge(
    "pgrepl_replay_paused",
    "1 when WAL replay is paused or a pause was requested (pg_wal_replay_pause()).",
    "1 cuando el replay de WAL está pausado o se pidió la pausa (pg_wal_replay_pause()).",
    &[TARGET],
    Scope::Standby,
);

pub const FAMILIES: &[Family] = &[
    WAL_RECEIVER_STATUS,
    WAL_RECEIVER_INFO,
    WAL_RECEIVER_LAST_MESSAGE_AGE_SECONDS,
    REPLAY_BACKLOG_BYTES,
    REPLAY_DELAY_SECONDS,
    LAST_REPLAY_TIMESTAMP_SECONDS,
    REPLAY_PAUSED,
];

fn standbys<'a>(up: &'a [Up<'a>]) -> impl Iterator<Item = Up<'a>> {
    up.iter().copied().filter(|(_, s)| s.server.in_recovery)
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

pub fn encode(up: &[Up], enc: &mut DescriptorEncoder) -> fmt::Result {
    emit(
        enc,
        &WAL_RECEIVER_STATUS,
        standbys(up).flat_map(|(t, s)| {
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
    emit(
        enc,
        &WAL_RECEIVER_INFO,
        standbys(up).filter_map(|(t, s)| {
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
    emit(
        enc,
        &WAL_RECEIVER_LAST_MESSAGE_AGE_SECONDS,
        standbys(up).filter_map(|(t, s)| {
            let at = s.wal_receiver.as_ref()?.last_msg_receipt_time?;
            Some(([("target", t)], (s.server.now - at).max(0.0)))
        }),
    )?;
    emit(
        enc,
        &REPLAY_BACKLOG_BYTES,
        standbys(up).filter_map(|(t, s)| Some(([("target", t)], replay_backlog(s)?))),
    )?;
    emit(
        enc,
        &REPLAY_DELAY_SECONDS,
        standbys(up).filter_map(|(t, s)| Some(([("target", t)], replay_delay(s)?))),
    )?;
    emit(
        enc,
        &LAST_REPLAY_TIMESTAMP_SECONDS,
        standbys(up).filter_map(|(t, s)| Some(([("target", t)], s.server.last_replay_ts?))),
    )?;
    emit(
        enc,
        &REPLAY_PAUSED,
        standbys(up).filter_map(|(t, s)| Some(([("target", t)], flag(s.server.replay_paused?)))),
    )
}
