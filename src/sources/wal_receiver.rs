//! The standby's own view of its upstream: `pg_stat_wal_receiver` and the
//! replay functions. Standbys only.

use std::borrow::Cow;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Sample, Up};
use crate::family::{emit, flag, state_set, Family, Label, Scope, TARGET};
use crate::sources::lsn;

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
    /// The upstream's WAL end (its flush position) as of its last message:
    /// how far the upstream was, as the standby last heard it.
    #[serde(default)]
    pub latest_end_lsn: Option<String>,
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

    /// Whether WAL flows from the upstream now.
    pub fn is_streaming(&self) -> bool {
        self.status.as_deref() == Some("streaming")
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
           EXTRACT(EPOCH FROM last_msg_receipt_time)::float8 AS last_msg_receipt_time, \
           latest_end_lsn::text AS latest_end_lsn \
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
    "How far the standby's data is behind, only when there is evidence: the age of the last replayed transaction while WAL waits to be replayed (received and not replayed, or, in a cluster, transactions the primary completed that the standby has not); 0 when its streaming WAL receiver has nothing left to replay, or, in a cluster, when it has every transaction the primary completed. Absent when unknown (no WAL receiver streams and no primary to compare with: fed from an archive, cut off): never the growing age of an old commit.",
    "Cuánto atrasan los datos de la réplica, solo con evidencia: la edad de la última transacción aplicada mientras hay WAL por aplicar (recibido y no aplicado o, en un clúster, transacciones que el principal completó y la réplica no); 0 cuando su WAL receiver en streaming no tiene nada por aplicar o, en un clúster, cuando tiene todas las transacciones que completó el principal. Ausente cuando se desconoce (ningún WAL receiver en streaming ni principal con quien comparar: alimentada desde un archivo, aislada): nunca la edad creciente de un commit viejo.",
    &[TARGET],
    Scope::Standby,
)
.when(
    "when known (see the description); with a backlog, once a transaction was replayed since the standby started",
    "cuando se conoce (ver la descripción); con WAL pendiente, desde que se aplicó una transacción tras arrancar la réplica",
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

/// Seconds since the last replayed transaction committed on the primary.
fn last_replay_age(s: &Sample) -> Option<f64> {
    Some((s.server.now - s.server.last_replay_ts?).max(0.0))
}

/// The replay delay the standby itself gives evidence of: with WAL
/// received and not yet replayed, the age of the last replayed transaction;
/// with nothing left while its WAL receiver streams, 0. Otherwise (no
/// receiver: fed from an archive, cut off, its upstream down) the standby
/// cannot tell whether WAL waits elsewhere, and the age of its last commit
/// would grow on an idle primary without any delay: unknown.
fn own_replay_delay(s: &Sample) -> Option<f64> {
    match replay_backlog(s) {
        Some(b) if b > 0.0 => last_replay_age(s),
        Some(_)
            if s.wal_receiver
                .as_ref()
                .is_some_and(WalReceiver::is_streaming) =>
        {
            Some(0.0)
        }
        _ => None,
    }
}

/// The primary's position as the cluster view read it: its current WAL
/// position and its snapshot's xmax.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrimaryPosition {
    pub lsn: Option<u64>,
    pub xmax: Option<u64>,
}

/// The standby's replay delay, computed once for every output (the
/// family, the cluster view, the routing checks, `status`).
///
/// The standby's own evidence first ([`own_replay_delay`]). When it has
/// none and the primary's position is known (`primary`, from the cluster
/// view): 0 when the standby has replayed up to the primary's position, or
/// has completed every transaction the primary completed (the same snapshot
/// xmax: only WAL without transactions waits, as the running-xacts record
/// an archive-fed standby lacks until the next segment switch); else, WAL
/// with transactions waits, and the delay is the age of the last replayed
/// transaction. `None` when unknown.
pub fn replay_delay(s: &Sample, primary: Option<PrimaryPosition>) -> Option<f64> {
    if let Some(own) = own_replay_delay(s) {
        return Some(own);
    }
    let primary = primary?;
    let replay = lsn::parse(s.server.replay_lsn.as_deref()?)?;
    let primary_lsn = primary.lsn?;
    if primary_lsn <= replay {
        return Some(0.0);
    }
    if let (Some(p), Some(mine)) = (primary.xmax, s.server.snapshot_xmax) {
        if p <= mine {
            return Some(0.0);
        }
    }
    last_replay_age(s)
}

/// The standby's lag behind its upstream, judged from the standby alone
/// (the one-server-per-exporter layout, or a cluster whose primary is not
/// known): the upstream's WAL end as last heard (`latest_end_lsn`, or what
/// was received) minus what is replayed, vouched for only while the WAL
/// receiver streams and has heard from the upstream within
/// `wal_receiver_timeout` (PostgreSQL's own limit for a live link; the
/// receiver asks for a message at half of it, so an idle but healthy link
/// stays within it). With `wal_receiver_timeout` off, `max_delay` (when
/// the caller gives one) bounds the silence instead. `Err` says why the lag
/// is unknown.
pub fn upstream_lag(s: &Sample, max_delay: Option<f64>) -> Result<f64, String> {
    let w = s
        .wal_receiver
        .as_ref()
        .ok_or_else(|| "no WAL receiver runs".to_string())?;
    match w.status.as_deref() {
        Some("streaming") => {}
        Some(other) => return Err(format!("the WAL receiver is {other}, not streaming")),
        None => {
            return Err("the role may not read pg_stat_wal_receiver (grant pg_monitor)".to_string())
        }
    }
    let limit = match s.settings.seconds("wal_receiver_timeout") {
        Some(t) if t > 0.0 => Some(t),
        _ => max_delay,
    };
    if let Some(limit) = limit {
        match w.last_msg_receipt_time.map(|t| (s.server.now - t).max(0.0)) {
            Some(age) if age <= limit => {}
            Some(age) => {
                return Err(format!(
                    "last message from the upstream {age:.0}s ago (limit {limit}s)"
                ))
            }
            None => return Err("no message from the upstream yet".to_string()),
        }
    }
    let parse = |t: &Option<String>| t.as_deref().and_then(lsn::parse);
    let replay = parse(&s.server.replay_lsn).ok_or_else(|| "no replay position".to_string())?;
    let upstream = parse(&w.latest_end_lsn)
        .max(parse(&s.server.receive_lsn))
        .ok_or_else(|| "no upstream position".to_string())?;
    Ok(lsn::diff(upstream, replay))
}

/// `replay_delay` gives each target's delay as the view computed it
/// ([`replay_delay`], with the cluster's primary when there is one).
pub fn encode(
    up: &[Up<'_>],
    replay_delay: &dyn Fn(&str) -> Option<f64>,
    enc: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
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
        standbys(up).filter_map(|(t, _)| Some(([("target", t)], replay_delay(t)?))),
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

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{replay_delay, upstream_lag, PrimaryPosition};
    use crate::sources::Sample;

    /// A standby at `now` = 1000 that replayed up to 0/3000000, its last
    /// transaction committed at 900, with this receive position and WAL
    /// receiver row.
    fn standby(receive: Value, receiver: Value) -> Sample {
        serde_json::from_value(json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 1000.0,
                       "receive_lsn": receive, "replay_lsn": "0/3000000",
                       "last_replay_ts": 900.0, "snapshot_xmax": 730},
            "wal_receiver": receiver,
            "settings": {"wal_receiver_timeout": ["60000", "ms"]}
        }))
        .expect("a sample")
    }

    fn streaming(last_msg: f64) -> Value {
        json!({"status": "streaming", "received_tli": 1, "last_msg_receipt_time": last_msg,
               "latest_end_lsn": "0/3000100"})
    }

    const AHEAD: PrimaryPosition = PrimaryPosition {
        lsn: Some(0x300_0060),
        xmax: Some(730),
    };

    #[test]
    fn a_delay_needs_evidence_of_wal_to_replay() {
        // Received and not replayed: the age of the last commit.
        let s = standby(json!("0/3000100"), streaming(999.0));
        assert_eq!(replay_delay(&s, None), Some(100.0));
        // All replayed while streaming: 0.
        let s = standby(json!("0/3000000"), streaming(999.0));
        assert_eq!(replay_delay(&s, None), Some(0.0));
        // Fed from an archive (no receiver, NULL receive position): alone,
        // unknown rather than the growing age of the last commit.
        let s = standby(Value::Null, Value::Null);
        assert_eq!(replay_delay(&s, None), None);
        // With the primary known: WAL without transactions waits (same
        // xmax), so it is caught up...
        assert_eq!(replay_delay(&s, Some(AHEAD)), Some(0.0));
        // ... and at the primary's position, too.
        let at = PrimaryPosition {
            lsn: Some(0x300_0000),
            xmax: None,
        };
        assert_eq!(replay_delay(&s, Some(at)), Some(0.0));
        // A transaction the standby has not replayed is a delay.
        let pending = PrimaryPosition {
            xmax: Some(731),
            ..AHEAD
        };
        assert_eq!(replay_delay(&s, Some(pending)), Some(100.0));
        // The receiver stopped with everything it got replayed: unknown
        // alone (it may be cut off), judged against the primary otherwise.
        let s = standby(json!("0/3000000"), Value::Null);
        assert_eq!(replay_delay(&s, None), None);
        assert_eq!(replay_delay(&s, Some(pending)), Some(100.0));
    }

    #[test]
    fn the_standby_alone_vouches_for_its_lag_only_while_it_hears_its_upstream() {
        // Streaming, heard 1 s ago: the upstream's WAL end minus replay.
        let s = standby(json!("0/3000000"), streaming(999.0));
        assert_eq!(upstream_lag(&s, None), Ok(256.0));
        // Silent for longer than wal_receiver_timeout.
        let s = standby(json!("0/3000000"), streaming(930.0));
        let err = upstream_lag(&s, Some(3600.0)).unwrap_err();
        assert!(err.contains("70s ago"), "{err}");
        // No receiver, or one that is not streaming.
        let s = standby(json!("0/3000000"), Value::Null);
        assert_eq!(upstream_lag(&s, None).unwrap_err(), "no WAL receiver runs");
        let s = standby(json!("0/3000000"), json!({"status": "waiting"}));
        assert!(upstream_lag(&s, None).unwrap_err().contains("waiting"));
        // A row without status: the role may not read it.
        let s = standby(json!("0/3000000"), json!({"status": null}));
        assert!(upstream_lag(&s, None).unwrap_err().contains("pg_monitor"));
    }

    #[test]
    fn without_wal_receiver_timeout_the_callers_max_delay_bounds_the_silence() {
        let mut doc = json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 1000.0,
                       "receive_lsn": "0/3000000", "replay_lsn": "0/3000000"},
            "wal_receiver": streaming(900.0),
            "settings": {"wal_receiver_timeout": ["0", "ms"]}
        });
        let s: Sample = serde_json::from_value(doc.clone()).unwrap();
        assert!(upstream_lag(&s, Some(30.0)).is_err());
        assert_eq!(upstream_lag(&s, None), Ok(256.0));
        doc["wal_receiver"]["last_msg_receipt_time"] = json!(990.0);
        let s: Sample = serde_json::from_value(doc).unwrap();
        assert_eq!(upstream_lag(&s, Some(30.0)), Ok(256.0));
    }
}
