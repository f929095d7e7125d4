//! The standby's own view of its upstream: `pg_stat_wal_receiver` and the
//! replay functions. Standbys only.
//!
//! What they mean is computed here, once, for every output: the status of
//! the WAL receiver ([`Sample::receiver_status`]), the WAL received and not
//! yet replayed ([`Sample::replay_backlog`]), the replay delay
//! ([`Sample::replay_delay`]) and the lag the standby alone can vouch for
//! ([`Sample::upstream_lag`]).

use std::borrow::Cow;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::lsn::{self, Lsn};
use super::state::pg_state;
use super::{Capabilities, Extra, Sample, Scrape, Source};
use crate::family::{emit, flag, state_set, Family, Label, Scope, TARGET};

pg_state! {
    /// What the WAL receiver is doing (`pg_stat_wal_receiver.status`);
    /// `stopped` also stands for "no receiver runs" (no row).
    pub enum WalReceiverStatus {
        Stopped = "stopped",
        Starting = "starting",
        Streaming = "streaming",
        Waiting = "waiting",
        Restarting = "restarting",
        Stopping = "stopping",
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WalReceiver {
    /// NULL (as every detail) when the role may not read other sessions'
    /// statistics (no `pg_read_all_stats`).
    pub status: Option<WalReceiverStatus>,
    pub received_tli: Option<u32>,
    /// 11+.
    pub sender_host: Option<String>,
    /// 11+.
    pub sender_port: Option<i32>,
    pub slot_name: Option<String>,
    pub last_msg_receipt_time: Option<f64>,
    /// The upstream's WAL end (its flush position) as of its last message:
    /// how far the upstream was, as the standby last heard it.
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub latest_end_lsn: Option<Lsn>,
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
        self.status == Some(WalReceiverStatus::Streaming)
    }

    /// Seconds since the standby last heard from its upstream, by the
    /// server's clock (`now`).
    pub fn last_message_age(&self, now: f64) -> Option<f64> {
        Some((now - self.last_msg_receipt_time?).max(0.0))
    }
}

/// The primary's position as the cluster view read it: its current WAL
/// position and its snapshot's xmax.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrimaryPosition {
    pub lsn: Option<Lsn>,
    pub xmax: Option<u64>,
}

/// Why the standby alone cannot vouch for its lag
/// ([`Sample::upstream_lag`]); worded to follow "lag unknown: ".
#[derive(Debug, Clone, PartialEq)]
pub enum LagUnknown {
    NoReceiver,
    NotStreaming(WalReceiverStatus),
    /// The role may not read `pg_stat_wal_receiver`.
    Hidden,
    /// Silent for longer than the limit (seconds).
    Silent {
        age: f64,
        limit: f64,
    },
    NoMessage,
    NoReplay,
    NoUpstream,
    NotAStandby,
}

impl fmt::Display for LagUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LagUnknown::NoReceiver => f.write_str("no WAL receiver runs"),
            LagUnknown::NotStreaming(status) => {
                write!(f, "the WAL receiver is {status}, not streaming")
            }
            LagUnknown::Hidden => {
                f.write_str("the role may not read pg_stat_wal_receiver (grant pg_monitor)")
            }
            LagUnknown::Silent { age, limit } => {
                write!(
                    f,
                    "last message from the upstream {age:.0}s ago (limit {limit}s)"
                )
            }
            LagUnknown::NoMessage => f.write_str("no message from the upstream yet"),
            LagUnknown::NoReplay => f.write_str("no replay position"),
            LagUnknown::NoUpstream => f.write_str("no upstream position"),
            LagUnknown::NotAStandby => f.write_str("not a standby"),
        }
    }
}

impl Sample {
    /// The WAL receiver's status: `stopped` when none runs (no row),
    /// `None` when its row is there with every detail NULL (the role lacks
    /// `pg_read_all_stats`): "cannot see" is never "stopped".
    pub fn receiver_status(&self) -> Option<WalReceiverStatus> {
        match &self.wal_receiver {
            None => Some(WalReceiverStatus::Stopped),
            Some(w) => w.status.clone(),
        }
    }

    /// Received but not yet replayed, in bytes.
    pub fn replay_backlog(&self) -> Option<f64> {
        Some(self.server.replay_lsn?.behind(self.server.receive_lsn?))
    }

    /// Seconds since the last replayed transaction committed on the primary.
    fn last_replay_age(&self) -> Option<f64> {
        Some((self.server.now - self.server.last_replay_ts?).max(0.0))
    }

    /// The replay delay the standby itself gives evidence of: with WAL
    /// received and not yet replayed, the age of the last replayed
    /// transaction; with nothing left while its WAL receiver streams, 0.
    /// Otherwise (no receiver: fed from an archive, cut off, its upstream
    /// down) the standby cannot tell whether WAL waits elsewhere, and the
    /// age of its last commit would grow on an idle primary without any
    /// delay: unknown.
    fn own_replay_delay(&self) -> Option<f64> {
        match self.replay_backlog() {
            Some(b) if b > 0.0 => self.last_replay_age(),
            Some(_)
                if self
                    .wal_receiver
                    .as_ref()
                    .is_some_and(WalReceiver::is_streaming) =>
            {
                Some(0.0)
            }
            _ => None,
        }
    }

    /// The standby's replay delay, computed once for every output (the
    /// family, the cluster view, the routing checks, `status`).
    ///
    /// The standby's own evidence first ([`Sample::own_replay_delay`]).
    /// When it has none and the primary's position is known (`primary`,
    /// from the cluster view): 0 when the standby has replayed up to the
    /// primary's position, or has completed every transaction the primary
    /// completed (the same snapshot xmax: only WAL without transactions
    /// waits, as the running-xacts record an archive-fed standby lacks
    /// until the next segment switch); else, WAL with transactions waits,
    /// and the delay is the age of the last replayed transaction. `None`
    /// when unknown.
    pub fn replay_delay(&self, primary: Option<PrimaryPosition>) -> Option<f64> {
        if let Some(own) = self.own_replay_delay() {
            return Some(own);
        }
        let primary = primary?;
        let replay = self.server.replay_lsn?;
        if primary.lsn? <= replay {
            return Some(0.0);
        }
        if let (Some(p), Some(mine)) = (primary.xmax, self.server.snapshot_xmax) {
            if p <= mine {
                return Some(0.0);
            }
        }
        self.last_replay_age()
    }

    /// The standby's lag behind its upstream, judged from the standby alone
    /// (the one-server-per-exporter layout, or a cluster whose primary is
    /// not known): the upstream's WAL end as last heard (`latest_end_lsn`,
    /// or what was received) minus what is replayed, vouched for only while
    /// the WAL receiver streams and has heard from the upstream within
    /// `wal_receiver_timeout` (PostgreSQL's own limit for a live link; the
    /// receiver asks for a message at half of it, so an idle but healthy
    /// link stays within it). With `wal_receiver_timeout` off, `max_delay`
    /// (when the caller gives one) bounds the silence instead.
    pub fn upstream_lag(&self, max_delay: Option<f64>) -> Result<f64, LagUnknown> {
        let w = self.wal_receiver.as_ref().ok_or(LagUnknown::NoReceiver)?;
        match &w.status {
            Some(WalReceiverStatus::Streaming) => {}
            Some(other) => return Err(LagUnknown::NotStreaming(other.clone())),
            None => return Err(LagUnknown::Hidden),
        }
        let limit = match self.settings.wal_receiver_timeout_seconds() {
            Some(t) if t > 0.0 => Some(t),
            _ => max_delay,
        };
        if let Some(limit) = limit {
            match w.last_message_age(self.server.now) {
                Some(age) if age <= limit => {}
                Some(age) => return Err(LagUnknown::Silent { age, limit }),
                None => return Err(LagUnknown::NoMessage),
            }
        }
        let replay = self.server.replay_lsn.ok_or(LagUnknown::NoReplay)?;
        let upstream = w
            .latest_end_lsn
            .max(self.server.receive_lsn)
            .ok_or(LagUnknown::NoUpstream)?;
        Ok(replay.behind(upstream))
    }
}

fn sql(caps: &Capabilities) -> String {
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

impl Source for WalReceiver {
    type Rows = Option<WalReceiver>;
    const TITLE: [&'static str; 2] = [
        "The standby's own view (`pg_stat_wal_receiver`, replay)",
        "La vista de la propia réplica (`pg_stat_wal_receiver`, replay)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql(caps))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render_receiver(scrape, enc)?;
        render_replay(scrape, enc)
    }
}

const RECEIVER_RUNS: (&str, &str) = (
    "while a WAL receiver runs",
    "mientras corre un WAL receiver",
);

pub const WAL_RECEIVER_STATUS: Family = Family::gauge(
    "pgrepl_wal_receiver_status",
    "State of the standby's WAL receiver (one series per state, 1 for the current one); stopped when no receiver runs.",
    "Estado del WAL receiver de la réplica (una serie por estado, 1 para el actual); stopped cuando no corre ninguno.",
    &[TARGET, Label::one_of("status", WalReceiverStatus::NAMES)],
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

/// The WAL receiver: its status, its upstream, when it last heard from it.
fn render_receiver(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &WAL_RECEIVER_STATUS,
        // A row without status (the role may not read it): no series at
        // all rather than "stopped".
        scrape.standbys().flat_map(|u| {
            u.sample
                .receiver_status()
                .into_iter()
                .flat_map(move |current| {
                    state_set(WalReceiverStatus::NAMES, Some(current.as_str()))
                        .map(move |(status, v)| ([("target", u.target), ("status", status)], v))
                })
        }),
    )?;
    emit(
        enc,
        &WAL_RECEIVER_INFO,
        scrape.standbys().filter_map(|u| {
            let w = u.sample.wal_receiver.as_ref()?;
            let port = w.sender_port.map(|p| p.to_string()).unwrap_or_default();
            Some((
                [
                    ("target", Cow::Borrowed(u.target)),
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
        scrape.standbys().filter_map(|u| {
            let age = u
                .sample
                .wal_receiver
                .as_ref()?
                .last_message_age(u.sample.server.now)?;
            Some(([("target", u.target)], age))
        }),
    )
}

/// Replay: what waits, how far behind, paused or not.
fn render_replay(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &REPLAY_BACKLOG_BYTES,
        scrape
            .standbys()
            .filter_map(|u| Some(([("target", u.target)], u.sample.replay_backlog()?))),
    )?;
    emit(
        enc,
        &REPLAY_DELAY_SECONDS,
        scrape
            .standbys()
            .filter_map(|u| Some(([("target", u.target)], u.replay_delay?))),
    )?;
    emit(
        enc,
        &LAST_REPLAY_TIMESTAMP_SECONDS,
        scrape
            .standbys()
            .filter_map(|u| Some(([("target", u.target)], u.sample.server.last_replay_ts?))),
    )?;
    emit(
        enc,
        &REPLAY_PAUSED,
        scrape
            .standbys()
            .filter_map(|u| Some(([("target", u.target)], flag(u.sample.server.replay_paused?)))),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::{LagUnknown, PrimaryPosition, WalReceiver};
    use crate::sources::lsn::Lsn;
    use crate::sources::testing::{render, render_up, sample};
    use crate::sources::Sample;

    /// A standby at `now` = 1000 that replayed up to 0/3000000, its last
    /// transaction committed at 900, with this receive position and WAL
    /// receiver row.
    fn standby(receive: Value, receiver: Value) -> Sample {
        sample(json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 1000.0,
                       "receive_lsn": receive, "replay_lsn": "0/3000000",
                       "last_replay_ts": 900.0, "snapshot_xmax": 730},
            "wal_receiver": receiver,
            "settings": {"wal_receiver_timeout": ["60000", "ms"]}
        }))
    }

    fn streaming(last_msg: f64) -> Value {
        json!({"status": "streaming", "received_tli": 1, "last_msg_receipt_time": last_msg,
               "latest_end_lsn": "0/3000100"})
    }

    fn ahead() -> PrimaryPosition {
        PrimaryPosition {
            lsn: Some(Lsn::from(0x300_0060)),
            xmax: Some(730),
        }
    }

    #[test]
    fn a_delay_needs_evidence_of_wal_to_replay() {
        // Received and not replayed: the age of the last commit.
        let s = standby(json!("0/3000100"), streaming(999.0));
        assert_eq!(s.replay_delay(None), Some(100.0));
        // All replayed while streaming: 0.
        let s = standby(json!("0/3000000"), streaming(999.0));
        assert_eq!(s.replay_delay(None), Some(0.0));
        // Fed from an archive (no receiver, NULL receive position): alone,
        // unknown rather than the growing age of the last commit.
        let s = standby(Value::Null, Value::Null);
        assert_eq!(s.replay_delay(None), None);
        // With the primary known: WAL without transactions waits (same
        // xmax), so it is caught up...
        assert_eq!(s.replay_delay(Some(ahead())), Some(0.0));
        // ... and at the primary's position, too.
        let at = PrimaryPosition {
            lsn: Some(Lsn::from(0x300_0000)),
            xmax: None,
        };
        assert_eq!(s.replay_delay(Some(at)), Some(0.0));
        // A transaction the standby has not replayed is a delay.
        let pending = PrimaryPosition {
            xmax: Some(731),
            ..ahead()
        };
        assert_eq!(s.replay_delay(Some(pending)), Some(100.0));
        // The receiver stopped with everything it got replayed: unknown
        // alone (it may be cut off), judged against the primary otherwise.
        let s = standby(json!("0/3000000"), Value::Null);
        assert_eq!(s.replay_delay(None), None);
        assert_eq!(s.replay_delay(Some(pending)), Some(100.0));
    }

    #[test]
    fn the_standby_alone_vouches_for_its_lag_only_while_it_hears_its_upstream() {
        // Streaming, heard 1 s ago: the upstream's WAL end minus replay.
        let s = standby(json!("0/3000000"), streaming(999.0));
        assert_eq!(s.upstream_lag(None), Ok(256.0));
        // Silent for longer than wal_receiver_timeout.
        let s = standby(json!("0/3000000"), streaming(930.0));
        let err = s.upstream_lag(Some(3600.0)).unwrap_err().to_string();
        assert!(err.contains("70s ago"), "{err}");
        // No receiver, or one that is not streaming.
        let s = standby(json!("0/3000000"), Value::Null);
        assert_eq!(s.upstream_lag(None), Err(LagUnknown::NoReceiver));
        assert_eq!(LagUnknown::NoReceiver.to_string(), "no WAL receiver runs");
        let s = standby(json!("0/3000000"), json!({"status": "waiting"}));
        assert!(s
            .upstream_lag(None)
            .unwrap_err()
            .to_string()
            .contains("waiting"));
        // A row without status: the role may not read it.
        let s = standby(json!("0/3000000"), json!({"status": null}));
        assert!(s
            .upstream_lag(None)
            .unwrap_err()
            .to_string()
            .contains("pg_monitor"));
    }

    #[test]
    fn without_wal_receiver_timeout_the_callers_max_delay_bounds_the_silence() {
        let mut doc = json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 1000.0,
                       "receive_lsn": "0/3000000", "replay_lsn": "0/3000000"},
            "wal_receiver": streaming(900.0),
            "settings": {"wal_receiver_timeout": ["0", "ms"]}
        });
        let s = sample(doc.clone());
        assert!(s.upstream_lag(Some(30.0)).is_err());
        assert_eq!(s.upstream_lag(None), Ok(256.0));
        doc["wal_receiver"]["last_msg_receipt_time"] = json!(990.0);
        let s = sample(doc);
        assert_eq!(s.upstream_lag(Some(30.0)), Ok(256.0));
    }

    /// standby2 of the `cascade` capture: streaming from standby1, 512
    /// bytes received and not yet replayed; its delay as the view gives it.
    #[test]
    fn a_standby_renders_its_receiver_and_replay() {
        let s = sample(json!({
            "server": {"checkpoint_timeline": 1, "in_recovery": true,
                "last_replay_ts": 1795905584.578812, "now": 1795905587.681938,
                "receive_lsn": "0/3018BD0", "replay_lsn": "0/30189D0", "replay_paused": false,
                "version": "15.18"},
            "wal_receiver": {"last_msg_receipt_time": 1795905584.579002, "received_tli": 1,
                "sender_host": "127.0.0.1", "sender_port": 44403, "slot_name": "standby2_slot",
                "status": "streaming"}
        }));
        let text = render_up::<WalReceiver>(vec![("s2".into(), s, Some(3.1))], BTreeMap::new());
        for line in [
            r#"pgrepl_wal_receiver_status{target="s2",status="streaming"} 1.0"#,
            r#"pgrepl_wal_receiver_status{target="s2",status="stopped"} 0.0"#,
            r#"pgrepl_wal_receiver_info{target="s2",sender_host="127.0.0.1",sender_port="44403",slot_name="standby2_slot"} 1.0"#,
            r#"pgrepl_replay_backlog_bytes{target="s2"} 512.0"#,
            r#"pgrepl_replay_delay_seconds{target="s2"} 3.1"#,
            r#"pgrepl_last_replay_timestamp_seconds{target="s2"} 1795905584.578812"#,
            r#"pgrepl_replay_paused{target="s2"} 0.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert!(text.contains(r#"pgrepl_wal_receiver_last_message_age_seconds{target="s2"} 3.10"#));
    }

    /// A standby whose receiver stopped reads `stopped`; one whose row the
    /// role may not read has no status at all; a primary has none of these.
    #[test]
    fn stopped_is_not_hidden_and_primaries_have_no_receiver() {
        let stopped =
            sample(json!({"server": {"in_recovery": true, "version": "17.0", "now": 0.0}}));
        let hidden = sample(
            json!({"server": {"in_recovery": true, "version": "17.0", "now": 0.0},
                                   "wal_receiver": {}}),
        );
        let primary =
            sample(json!({"server": {"in_recovery": false, "version": "17.0", "now": 0.0}}));
        let text = render::<WalReceiver>(&[("a", &stopped), ("b", &hidden), ("p", &primary)]);
        assert!(text.contains("pgrepl_wal_receiver_status{target=\"a\",status=\"stopped\"} 1.0\n"));
        assert!(!text.contains("target=\"b\",status="), "{text}");
        assert!(!text.contains("target=\"p\""), "{text}");
    }
}
