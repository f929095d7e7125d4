//! Connected standbys, seen from their upstream: `pg_stat_replication`,
//! joined to `pg_replication_slots` on `active_pid` for the slot name.
//!

use std::collections::HashMap;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Sample, Up};
use crate::family::{emit, state_set, Family, Label, Scope, TARGET};
use crate::sources::lsn;
use crate::sources::sync_names;

#[derive(Debug, Clone, Deserialize)]
pub struct Walsender {
    pub pid: i32,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub client_port: Option<i32>,
    pub state: Option<String>,
    pub sent_lsn: Option<String>,
    pub write_lsn: Option<String>,
    pub flush_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub write_lag: Option<f64>,
    pub flush_lag: Option<f64>,
    pub replay_lag: Option<f64>,
    pub sync_priority: Option<i32>,
    pub sync_state: Option<String>,
    /// 12+.
    pub reply_time: Option<f64>,
    pub slot_name: Option<String>,
}

impl Walsender {
    /// Whether this walsender serves the standby known by one of `names`.
    /// A walsender carries the standby's `application_name` (its
    /// `cluster_name` when `primary_conninfo` sets none); PostgreSQL matches
    /// it against `synchronous_standby_names` ignoring case, and so does
    /// every question we ask of it (which member streams from where, whether
    /// a listed synchronous standby is connected).
    pub fn serves(&self, names: &[&str]) -> bool {
        self.application_name
            .as_deref()
            .is_some_and(|a| names.iter().any(|n| a.eq_ignore_ascii_case(n)))
    }

    /// Whether WAL flows to its standby now (not starting up, catching up
    /// from a backup or stopping).
    pub fn is_streaming(&self) -> bool {
        self.state.as_deref() == Some("streaming")
    }
}

pub fn sql(caps: &Capabilities) -> String {
    let reply_time = if caps.at_least(12) {
        "EXTRACT(EPOCH FROM r.reply_time)::float8"
    } else {
        "NULL::float8"
    };
    format!(
        "SELECT coalesce(json_agg(x ORDER BY x.pid), '[]') FROM (SELECT \
           r.pid, r.application_name, host(r.client_addr) AS client_addr, r.client_port, r.state, \
           r.sent_lsn::text AS sent_lsn, r.write_lsn::text AS write_lsn, \
           r.flush_lsn::text AS flush_lsn, r.replay_lsn::text AS replay_lsn, \
           EXTRACT(EPOCH FROM r.write_lag)::float8 AS write_lag, \
           EXTRACT(EPOCH FROM r.flush_lag)::float8 AS flush_lag, \
           EXTRACT(EPOCH FROM r.replay_lag)::float8 AS replay_lag, \
           r.sync_priority, r.sync_state, {reply_time} AS reply_time, sl.slot_name::text AS slot_name \
         FROM pg_stat_replication r \
         LEFT JOIN pg_replication_slots sl ON sl.active_pid = r.pid) x"
    )
}

const STATES: [&str; 5] = ["startup", "catchup", "streaming", "backup", "stopping"];
const SYNC_STATES: [&str; 4] = ["async", "potential", "sync", "quorum"];

const APPLICATION_NAME: Label = Label::text(
    "application_name",
    "the standby's `application_name` (from its `primary_conninfo`, else its `cluster_name`)",
);
const CLIENT_ADDR: Label = Label::text(
    "client_addr",
    "the standby's address; empty for a Unix socket",
);
const SLOT_NAME: Label = Label::text(
    "slot_name",
    "the slot the standby streams through; empty when none",
);
const CLIENT_PORT: Label = Label::optional(
    "client_port",
    "only when two walsenders would share all other labels (a `pg_basebackup -X stream`)",
);
const PID: Label = Label::optional(
    "pid",
    "as `client_port`, for Unix-socket connections that have no port",
);

/// The labels that identify one walsender's standby, then any others.
macro_rules! walsender_labels {
    ($($extra:expr),*) => {
        &[TARGET, APPLICATION_NAME, CLIENT_ADDR, SLOT_NAME, CLIENT_PORT, PID $(, $extra)*]
    };
}

const WALSENDER: &[Label] = walsender_labels!();

pub const STANDBY_LAG_BYTES: Family = Family::gauge(
    "pgrepl_standby_lag_bytes",
    "Bytes the standby is behind at each stage (sent, write, flush, replay), against the primary's current WAL position (a cascading standby's receive position).",
    "Bytes que la réplica lleva de atraso en cada etapa (sent, write, flush, replay), contra la posición de WAL actual del principal (la posición recibida, en una réplica en cascada).",
    walsender_labels!(Label::one_of("stage", &["sent", "write", "flush", "replay"])),
    Scope::Upstream,
);

pub const STANDBY_LAG_SECONDS: Family = Family::gauge(
    "pgrepl_standby_lag_seconds",
    "Time for recent WAL to be written, flushed and replayed by the standby (write_lag, flush_lag, replay_lag); 0 when the stage is 0 bytes behind in pgrepl_standby_lag_bytes (PostgreSQL keeps showing the last measured lag for a while after the standby caught up).",
    "Tiempo que tarda la réplica en escribir, volcar y aplicar el WAL reciente (write_lag, flush_lag, replay_lag); 0 cuando la etapa está a 0 bytes en pgrepl_standby_lag_bytes (PostgreSQL sigue mostrando el último lag medido un rato después de que la réplica se puso al día).",
    walsender_labels!(Label::one_of("stage", &["write", "flush", "replay"])),
    Scope::Upstream,
)
.when(
    "once PostgreSQL has measured the stage, or the standby is caught up",
    "cuando PostgreSQL midió la etapa, o la réplica está al día",
);

pub const STANDBY_STATE: Family = Family::gauge(
    "pgrepl_standby_state",
    "State of the WAL sender serving the standby (one series per state, 1 for the current one).",
    "Estado del WAL sender que atiende a la réplica (una serie por estado, 1 para el actual).",
    walsender_labels!(Label::one_of("state", &STATES)),
    Scope::Upstream,
);

pub const STANDBY_SYNC_STATE: Family = Family::gauge(
    "pgrepl_standby_sync_state",
    "Synchronous state of the standby: async, potential, sync or quorum (one series per state, 1 for the current one).",
    "Estado síncrono de la réplica: async, potential, sync o quorum (una serie por estado, 1 para el actual).",
    walsender_labels!(Label::one_of("sync_state", &SYNC_STATES)),
    Scope::Upstream,
);

pub const STANDBY_SYNC_PRIORITY: Family = Family::gauge(
    "pgrepl_standby_sync_priority",
    "Priority of the standby for being chosen as synchronous (0 for asynchronous standbys).",
    "Prioridad de la réplica para ser elegida síncrona (0 para réplicas asíncronas).",
    WALSENDER,
    Scope::Upstream,
);

pub const STANDBY_REPLY_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_standby_reply_timestamp_seconds",
    "Unix time of the last reply the standby sent (PostgreSQL 12+).",
    "Hora Unix de la última respuesta que envió la réplica (PostgreSQL 12+).",
    WALSENDER,
    Scope::Upstream,
)
.since(12);

pub const STANDBYS: Family = Family::gauge(
    "pgrepl_standbys",
    "Standbys (WAL senders) connected to this server.",
    "Réplicas (WAL senders) conectadas a este servidor.",
    &[TARGET],
    Scope::Server,
);

pub const STANDBYS_SYNC: Family = Family::gauge(
    "pgrepl_standbys_sync",
    "Connected standbys in sync or quorum state.",
    "Réplicas conectadas en estado sync o quorum.",
    &[TARGET],
    Scope::Server,
);

pub const SYNC_STANDBYS_REQUIRED: Family = Family::gauge(
    "pgrepl_sync_standbys_required",
    "Synchronous standbys that synchronous_standby_names asks for (0 when empty); fewer connected means commits wait.",
    "Réplicas síncronas que pide synchronous_standby_names (0 si está vacío); con menos conectadas, los commits esperan.",
    &[TARGET],
    Scope::Server,
);

pub const FAMILIES: &[Family] = &[
    STANDBY_LAG_BYTES,
    STANDBY_LAG_SECONDS,
    STANDBY_STATE,
    STANDBY_SYNC_STATE,
    STANDBY_SYNC_PRIORITY,
    STANDBY_REPLY_TIMESTAMP_SECONDS,
    STANDBYS,
    STANDBYS_SYNC,
    SYNC_STANDBYS_REQUIRED,
];

/// The identifying labels of one walsender. `client_port` (or the pid, for
/// socket connections without a port) is added only when two walsenders
/// would otherwise share a label set, as a `pg_basebackup -X stream` does.
struct Identity<'a> {
    target: &'a str,
    application_name: &'a str,
    client_addr: &'a str,
    slot_name: &'a str,
    discriminator: Option<(&'static str, String)>,
}

impl<'a> Identity<'a> {
    fn labels(&'a self, extra: Option<(&'static str, &'a str)>) -> Vec<(&'static str, &'a str)> {
        let mut v = Vec::with_capacity(6);
        v.push(("target", self.target));
        v.push(("application_name", self.application_name));
        v.push(("client_addr", self.client_addr));
        v.push(("slot_name", self.slot_name));
        if let Some((k, val)) = &self.discriminator {
            v.push((k, val.as_str()));
        }
        if let Some(e) = extra {
            v.push(e);
        }
        v
    }
}

fn identities<'a>(target: &'a str, rows: &'a [Walsender]) -> Vec<Identity<'a>> {
    let key = |w: &'a Walsender| {
        (
            w.application_name.as_deref().unwrap_or(""),
            w.client_addr.as_deref().unwrap_or(""),
            w.slot_name.as_deref().unwrap_or(""),
        )
    };
    let mut counts: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for w in rows {
        *counts.entry(key(w)).or_default() += 1;
    }
    rows.iter()
        .map(|w| {
            let k = key(w);
            let discriminator = (counts[&k] > 1).then(|| match w.client_port {
                Some(p) if p > 0 => ("client_port", p.to_string()),
                _ => ("pid", w.pid.to_string()),
            });
            Identity {
                target,
                application_name: k.0,
                client_addr: k.1,
                slot_name: k.2,
                discriminator,
            }
        })
        .collect()
}

/// Per standby, the lag in bytes of each stage against the reference.
fn lag_bytes(sample: &Sample, w: &Walsender) -> [(&'static str, Option<f64>); 4] {
    let reference = sample.reference_lsn();
    let lag = |pos: &Option<String>| -> Option<f64> {
        Some(lsn::diff(reference?, lsn::parse(pos.as_deref()?)?))
    };
    [
        ("sent", lag(&w.sent_lsn)),
        ("write", lag(&w.write_lsn)),
        ("flush", lag(&w.flush_lsn)),
        ("replay", lag(&w.replay_lsn)),
    ]
}

/// Per standby, the time lag of each stage (write, flush, replay): 0 when
/// the stage has reached the reference position, else what PostgreSQL
/// measured. PostgreSQL keeps showing the last measured lag after a
/// standby caught up (until a second reply reports it fully applied, or for
/// good with `wal_receiver_status_interval = 0`), and resets it to NULL
/// once idle: either way, a stage with 0 bytes behind is 0 seconds behind.
pub fn lag_seconds(sample: &Sample, w: &Walsender) -> [(&'static str, Option<f64>); 3] {
    let bytes = lag_bytes(sample, w);
    let stage = |secs: Option<f64>, bytes: Option<f64>| {
        if bytes == Some(0.0) {
            Some(0.0)
        } else {
            secs
        }
    };
    [
        ("write", stage(w.write_lag, bytes[1].1)),
        ("flush", stage(w.flush_lag, bytes[2].1)),
        ("replay", stage(w.replay_lag, bytes[3].1)),
    ]
}

pub fn encode(up: &[Up<'_>], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let per_target: Vec<(&Sample, Vec<Identity<'_>>)> = up
        .iter()
        .copied()
        .map(|(t, s)| (s, identities(t, &s.replication)))
        .collect();
    let rows = || {
        per_target.iter().flat_map(|(s, ids)| {
            s.replication
                .iter()
                .zip(ids.iter())
                .map(move |(w, id)| (*s, w, id))
        })
    };

    emit(
        enc,
        &STANDBY_LAG_BYTES,
        rows().flat_map(|(s, w, id)| {
            lag_bytes(s, w)
                .into_iter()
                .filter_map(move |(stage, v)| Some((id.labels(Some(("stage", stage))), v?)))
        }),
    )?;
    emit(
        enc,
        &STANDBY_LAG_SECONDS,
        rows().flat_map(|(s, w, id)| {
            lag_seconds(s, w)
                .into_iter()
                .filter_map(move |(stage, v)| Some((id.labels(Some(("stage", stage))), v?)))
        }),
    )?;
    emit(
        enc,
        &STANDBY_STATE,
        // A NULL state (role without pg_monitor) gives no series at all,
        // never a state set of zeros.
        rows().flat_map(|(_, w, id)| {
            let current = w.state.as_deref();
            current.into_iter().flat_map(move |c| {
                state_set(&STATES, Some(c))
                    .map(move |(state, v)| (id.labels(Some(("state", state))), v))
            })
        }),
    )?;
    emit(
        enc,
        &STANDBY_SYNC_STATE,
        rows().flat_map(|(_, w, id)| {
            let current = w.sync_state.as_deref();
            current.into_iter().flat_map(move |c| {
                state_set(&SYNC_STATES, Some(c))
                    .map(move |(state, v)| (id.labels(Some(("sync_state", state))), v))
            })
        }),
    )?;
    emit(
        enc,
        &STANDBY_SYNC_PRIORITY,
        rows().filter_map(|(_, w, id)| Some((id.labels(None), f64::from(w.sync_priority?)))),
    )?;
    emit(
        enc,
        &STANDBY_REPLY_TIMESTAMP_SECONDS,
        rows().filter_map(|(_, w, id)| Some((id.labels(None), w.reply_time?))),
    )?;
    emit(
        enc,
        &STANDBYS,
        up.iter()
            .copied()
            .map(|(t, s)| ([("target", t)], s.replication.len() as f64)),
    )?;
    emit(
        enc,
        &STANDBYS_SYNC,
        up.iter().copied().map(|(t, s)| {
            let n = s
                .replication
                .iter()
                .filter(|w| matches!(w.sync_state.as_deref(), Some("sync" | "quorum")))
                .count();
            ([("target", t)], n as f64)
        }),
    )?;
    emit(
        enc,
        &SYNC_STANDBYS_REQUIRED,
        up.iter().copied().filter_map(|(t, s)| {
            let setting = s.settings.text("synchronous_standby_names").unwrap_or("");
            let n = sync_names::required(setting)?;
            Some(([("target", t)], f64::from(n)))
        }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::lag_seconds;
    use crate::sources::Sample;

    #[test]
    fn a_stage_with_nothing_left_is_zero_seconds_behind() {
        // PostgreSQL still shows a replay_lag measured before the standby
        // caught up; write is still behind and keeps its measured lag.
        let s: Sample = serde_json::from_value(json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0,
                       "current_lsn": "0/3000000"},
            "replication": [{"pid": 1, "write_lsn": "0/2000000", "write_lag": 1.5,
                             "flush_lsn": "0/3000000", "flush_lag": null,
                             "replay_lsn": "0/3000000", "replay_lag": 23.0}]
        }))
        .expect("a sample");
        assert_eq!(
            lag_seconds(&s, &s.replication[0]),
            [
                ("write", Some(1.5)),
                ("flush", Some(0.0)),
                ("replay", Some(0.0))
            ]
        );
    }
}
