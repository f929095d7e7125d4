//! Connected standbys, seen from their upstream: `pg_stat_replication`,
//! joined to `pg_replication_slots` on `active_pid` for the slot name.
//!
//! What a walsender's row means is computed here, once: how far its
//! standby is behind at each stage ([`Walsender::lag_bytes`],
//! [`Walsender::lag_seconds`]), which standby it serves
//! ([`Walsender::serves`]). `/metrics` and the topology page both call it.

use std::collections::HashMap;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::lsn::{self, Lsn};
use super::state::pg_state;
use super::{Capabilities, Extra, Sample, Scrape, Source, Up};
use crate::family::{emit, state_set, Family, Label, Scope, TARGET};

pg_state! {
    /// What a walsender is doing (`pg_stat_replication.state`).
    pub enum WalSenderState {
        Startup = "startup",
        Catchup = "catchup",
        Streaming = "streaming",
        Backup = "backup",
        Stopping = "stopping",
    }
}

pg_state! {
    /// How the primary counts a standby for synchronous replication
    /// (`pg_stat_replication.sync_state`).
    pub enum SyncState {
        Async = "async",
        Potential = "potential",
        Sync = "sync",
        Quorum = "quorum",
    }
}

impl SyncState {
    /// Whether commits wait for this standby now (`sync`, or one of a
    /// `quorum`).
    pub fn is_synchronous(&self) -> bool {
        matches!(self, SyncState::Sync | SyncState::Quorum)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Walsender {
    pub pid: i32,
    pub application_name: Option<String>,
    pub client_addr: Option<String>,
    pub client_port: Option<i32>,
    /// NULL (as every detail below) when the role may not read other
    /// sessions' statistics (no `pg_read_all_stats`).
    pub state: Option<WalSenderState>,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub sent_lsn: Option<Lsn>,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub write_lsn: Option<Lsn>,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub flush_lsn: Option<Lsn>,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub replay_lsn: Option<Lsn>,
    pub write_lag: Option<f64>,
    pub flush_lag: Option<f64>,
    pub replay_lag: Option<f64>,
    pub sync_priority: Option<i32>,
    pub sync_state: Option<SyncState>,
    /// 12+.
    pub reply_time: Option<f64>,
    pub slot_name: Option<String>,
}

/// The stages WAL goes through on its way to a standby: sent by the
/// walsender, written, flushed and replayed by the standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Write,
    Flush,
    Replay,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Sent, Stage::Write, Stage::Flush, Stage::Replay];

    /// The stages PostgreSQL measures a time lag for.
    pub const TIMED: [Stage; 3] = [Stage::Write, Stage::Flush, Stage::Replay];

    /// The `stage` label values of [`Stage::ALL`].
    pub const NAMES: &'static [&'static str] = &["sent", "write", "flush", "replay"];

    /// The `stage` label values of [`Stage::TIMED`].
    pub const TIMED_NAMES: &'static [&'static str] = &["write", "flush", "replay"];

    pub fn as_str(self) -> &'static str {
        Stage::NAMES[self as usize]
    }
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
        self.state == Some(WalSenderState::Streaming)
    }

    /// Whether it serves a base backup rather than a standby.
    pub fn is_backup(&self) -> bool {
        self.state == Some(WalSenderState::Backup)
    }

    /// How far the standby has got at `stage`.
    pub fn position(&self, stage: Stage) -> Option<Lsn> {
        match stage {
            Stage::Sent => self.sent_lsn,
            Stage::Write => self.write_lsn,
            Stage::Flush => self.flush_lsn,
            Stage::Replay => self.replay_lsn,
        }
    }

    /// Bytes the standby is behind `reference` (its upstream's position,
    /// [`Sample::reference_lsn`]) at `stage`.
    pub fn lag_bytes(&self, stage: Stage, reference: Option<Lsn>) -> Option<f64> {
        Some(self.position(stage)?.behind(reference?))
    }

    /// The time lag of `stage`: 0 when the stage has reached `reference`,
    /// else what PostgreSQL measured (`None` for [`Stage::Sent`], which it
    /// does not time). PostgreSQL keeps showing the last measured lag after
    /// a standby caught up (until a second reply reports it fully applied,
    /// or for good with `wal_receiver_status_interval = 0`), and resets it
    /// to NULL once idle: either way, a stage with 0 bytes behind is 0
    /// seconds behind.
    pub fn lag_seconds(&self, stage: Stage, reference: Option<Lsn>) -> Option<f64> {
        let measured = match stage {
            Stage::Sent => return None,
            Stage::Write => self.write_lag,
            Stage::Flush => self.flush_lag,
            Stage::Replay => self.replay_lag,
        };
        if self.lag_bytes(stage, reference) == Some(0.0) {
            Some(0.0)
        } else {
            measured
        }
    }
}

impl Sample {
    /// Connected standbys commits wait for now (`sync` or `quorum`).
    pub fn sync_standbys_connected(&self) -> usize {
        self.replication
            .iter()
            .filter(|w| w.sync_state.as_ref().is_some_and(SyncState::is_synchronous))
            .count()
    }
}

fn sql(caps: &Capabilities) -> String {
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

impl Source for Walsender {
    type Rows = Vec<Walsender>;
    const TITLE: [&'static str; 2] = [
        "Standbys seen from their upstream (`pg_stat_replication`)",
        "Réplicas vistas desde su origen (`pg_stat_replication`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql(caps))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render_standbys(scrape, enc)?;
        render_counts(scrape, enc)
    }
}

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
    walsender_labels!(Label::one_of("stage", Stage::NAMES)),
    Scope::Upstream,
);

pub const STANDBY_LAG_SECONDS: Family = Family::gauge(
    "pgrepl_standby_lag_seconds",
    "Time for recent WAL to be written, flushed and replayed by the standby (write_lag, flush_lag, replay_lag); 0 when the stage is 0 bytes behind in pgrepl_standby_lag_bytes (PostgreSQL keeps showing the last measured lag for a while after the standby caught up).",
    "Tiempo que tarda la réplica en escribir, volcar y aplicar el WAL reciente (write_lag, flush_lag, replay_lag); 0 cuando la etapa está a 0 bytes en pgrepl_standby_lag_bytes (PostgreSQL sigue mostrando el último lag medido un rato después de que la réplica se puso al día).",
    walsender_labels!(Label::one_of("stage", Stage::TIMED_NAMES)),
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
    walsender_labels!(Label::one_of("state", WalSenderState::NAMES)),
    Scope::Upstream,
);

pub const STANDBY_SYNC_STATE: Family = Family::gauge(
    "pgrepl_standby_sync_state",
    "Synchronous state of the standby: async, potential, sync or quorum (one series per state, 1 for the current one).",
    "Estado síncrono de la réplica: async, potential, sync o quorum (una serie por estado, 1 para el actual).",
    walsender_labels!(Label::one_of("sync_state", SyncState::NAMES)),
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

/// One walsender to render: the position its lag is measured against
/// (its upstream's, [`Sample::reference_lsn`]), the row, its labels.
type Row<'a> = (Option<Lsn>, &'a Walsender, &'a Identity<'a>);

/// The families with a series per walsender.
fn render_standbys(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let per_target: Vec<(&Up<'_>, Vec<Identity<'_>>)> = scrape
        .servers()
        .map(|u| (u, identities(u.target, &u.sample.replication)))
        .collect();
    let rows: Vec<Row<'_>> = per_target
        .iter()
        .flat_map(|(u, ids)| {
            let reference = u.sample.reference_lsn();
            u.sample
                .replication
                .iter()
                .zip(ids)
                .map(move |(w, id)| (reference, w, id))
        })
        .collect();
    render_lags(&rows, enc)?;
    render_states(&rows, enc)?;
    emit(
        enc,
        &STANDBY_SYNC_PRIORITY,
        rows.iter()
            .filter_map(|(_, w, id)| Some((id.labels(None), f64::from(w.sync_priority?)))),
    )?;
    emit(
        enc,
        &STANDBY_REPLY_TIMESTAMP_SECONDS,
        rows.iter()
            .filter_map(|(_, w, id)| Some((id.labels(None), w.reply_time?))),
    )
}

fn render_lags(rows: &[Row<'_>], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &STANDBY_LAG_BYTES,
        rows.iter().flat_map(|&(reference, w, id)| {
            Stage::ALL.into_iter().filter_map(move |stage| {
                let lag = w.lag_bytes(stage, reference)?;
                Some((id.labels(Some(("stage", stage.as_str()))), lag))
            })
        }),
    )?;
    emit(
        enc,
        &STANDBY_LAG_SECONDS,
        rows.iter().flat_map(|&(reference, w, id)| {
            Stage::TIMED.into_iter().filter_map(move |stage| {
                let lag = w.lag_seconds(stage, reference)?;
                Some((id.labels(Some(("stage", stage.as_str()))), lag))
            })
        }),
    )
}

/// A NULL state (role without pg_monitor) gives no series at all, never a
/// state set of zeros.
fn render_states(rows: &[Row<'_>], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &STANDBY_STATE,
        rows.iter().flat_map(|&(_, w, id)| {
            let current = w.state.as_ref().map(WalSenderState::as_str);
            current.into_iter().flat_map(move |c| {
                state_set(WalSenderState::NAMES, Some(c))
                    .map(move |(state, v)| (id.labels(Some(("state", state))), v))
            })
        }),
    )?;
    emit(
        enc,
        &STANDBY_SYNC_STATE,
        rows.iter().flat_map(|&(_, w, id)| {
            let current = w.sync_state.as_ref().map(SyncState::as_str);
            current.into_iter().flat_map(move |c| {
                state_set(SyncState::NAMES, Some(c))
                    .map(move |(state, v)| (id.labels(Some(("sync_state", state))), v))
            })
        }),
    )
}

/// The families with a series per server.
fn render_counts(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &STANDBYS,
        scrape
            .servers()
            .map(|u| ([("target", u.target)], u.sample.replication.len() as f64)),
    )?;
    emit(
        enc,
        &STANDBYS_SYNC,
        scrape.servers().map(|u| {
            let n = u.sample.sync_standbys_connected();
            ([("target", u.target)], n as f64)
        }),
    )?;
    emit(
        enc,
        &SYNC_STANDBYS_REQUIRED,
        scrape.servers().filter_map(|u| {
            let n = u.sample.settings.synchronous_standby_names().required()?;
            Some(([("target", u.target)], f64::from(n)))
        }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Walsender;
    use crate::sources::testing::{render, sample};
    use crate::sources::Sample;

    /// The primary of the `cascade` capture (tests/fixtures/golden), with
    /// its standby's walsender as PostgreSQL 15 reported it.
    fn primary() -> Sample {
        sample(json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 1795905587.604146,
                       "current_lsn": "0/3018BD0", "primary_timeline": 1},
            "settings": {"synchronous_standby_names": ["ANY 2 (standby1, nobody)", null]},
            "replication": [{"application_name": "standby1", "client_addr": "127.0.0.1",
                "client_port": 51954, "flush_lag": 0.000257, "flush_lsn": "0/3018BD0",
                "pid": 27541, "replay_lag": 0.000348, "replay_lsn": "0/3018AD0",
                "reply_time": 1795905584.579189, "sent_lsn": "0/3018BD0",
                "slot_name": "standby1_slot", "state": "streaming", "sync_priority": 1,
                "sync_state": "quorum", "write_lag": 0.000235, "write_lsn": "0/3018BD0"}]
        }))
    }

    #[test]
    fn a_walsender_renders_its_lags_states_and_counts() {
        let text = render::<Walsender>(&[("p", &primary())]);
        let id = r#"target="p",application_name="standby1",client_addr="127.0.0.1",slot_name="standby1_slot""#;
        for line in [
            format!(r#"pgrepl_standby_lag_bytes{{{id},stage="sent"}} 0.0"#),
            format!(r#"pgrepl_standby_lag_bytes{{{id},stage="replay"}} 256.0"#),
            // Measured 0.000235 s, but nothing is left to write: 0, as
            // PostgreSQL keeps showing the last measured lag a while.
            format!(r#"pgrepl_standby_lag_seconds{{{id},stage="write"}} 0.0"#),
            format!(r#"pgrepl_standby_lag_seconds{{{id},stage="replay"}} 0.000348"#),
            format!(r#"pgrepl_standby_state{{{id},state="streaming"}} 1.0"#),
            format!(r#"pgrepl_standby_state{{{id},state="catchup"}} 0.0"#),
            format!(r#"pgrepl_standby_sync_state{{{id},sync_state="quorum"}} 1.0"#),
            format!(r#"pgrepl_standby_sync_priority{{{id}}} 1.0"#),
            format!(r#"pgrepl_standby_reply_timestamp_seconds{{{id}}} 1795905584.579189"#),
            r#"pgrepl_standbys{target="p"} 1.0"#.to_string(),
            r#"pgrepl_standbys_sync{target="p"} 1.0"#.to_string(),
            r#"pgrepl_sync_standbys_required{target="p"} 2.0"#.to_string(),
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        // PostgreSQL times no "sent" stage.
        assert!(!text.contains(&format!(
            r#"pgrepl_standby_lag_seconds{{{id},stage="sent"}}"#
        )));
    }

    /// Two walsenders sharing every identifying label (a `pg_basebackup -X
    /// stream` next to the standby it seeds) get `client_port`, or `pid` for
    /// a Unix socket, so that their series do not collide; a lone one gets
    /// neither.
    #[test]
    fn twin_walsenders_are_told_apart_by_port_or_pid() {
        let twin = |pid: i32, addr: &str, port: Option<i32>| {
            json!({"pid": pid, "application_name": "pg_basebackup", "client_addr": addr,
                   "client_port": port, "state": "backup", "sync_priority": 0})
        };
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0},
            "replication": [
                twin(101, "10.0.0.9", Some(40001)), twin(102, "10.0.0.9", Some(40002)),
                twin(201, "", None), twin(202, "", Some(-1)),
                {"pid": 301, "application_name": "standby1", "client_addr": "10.0.0.2",
                 "client_port": 5000, "state": "streaming", "sync_priority": 0}
            ]
        }));
        let text = render::<Walsender>(&[("p", &s)]);
        let base = |addr: &str| {
            format!(
                r#"target="p",application_name="pg_basebackup",client_addr="{addr}",slot_name="""#
            )
        };
        for line in [
            format!(r#"pgrepl_standby_sync_priority{{{},client_port="40001"}} 0.0"#, base("10.0.0.9")),
            format!(r#"pgrepl_standby_sync_priority{{{},client_port="40002"}} 0.0"#, base("10.0.0.9")),
            // No port (a Unix socket, or -1 as PostgreSQL 10 reports it): the pid.
            format!(r#"pgrepl_standby_sync_priority{{{},pid="201"}} 0.0"#, base("")),
            format!(r#"pgrepl_standby_sync_priority{{{},pid="202"}} 0.0"#, base("")),
            r#"pgrepl_standby_sync_priority{target="p",application_name="standby1",client_addr="10.0.0.2",slot_name=""} 0.0"#.to_string(),
            format!(r#"pgrepl_standby_state{{{},client_port="40001",state="backup"}} 1.0"#, base("10.0.0.9")),
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert_eq!(
            text.matches("pgrepl_standby_sync_priority{").count(),
            5,
            "{text}"
        );
    }

    #[test]
    fn a_hidden_walsender_has_no_state_set() {
        // Without pg_read_all_stats every detail reads NULL: no state set
        // of zeros, no lag, but it still counts as connected.
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0,
                       "current_lsn": "0/3000000"},
            "replication": [{"pid": 1, "application_name": "standby1", "slot_name": "s1"}]
        }));
        let text = render::<Walsender>(&[("p", &s)]);
        assert!(!text.contains("pgrepl_standby_state"), "{text}");
        assert!(!text.contains("pgrepl_standby_lag_bytes"), "{text}");
        for line in [
            "pgrepl_standbys{target=\"p\"} 1.0",
            "pgrepl_standbys_sync{target=\"p\"} 0.0",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{text}");
        }
    }
}
