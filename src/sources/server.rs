//! Server identity, role, timeline and WAL positions: recovery functions,
//! `pg_control_system()` and `pg_control_checkpoint()`.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::lsn::{self, Lsn};
use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, flag, Family, Label, Scope, TARGET};

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub in_recovery: bool,
    pub version: String,
    pub system_identifier: Option<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Only on a primary: `pg_current_wal_lsn()` errors during recovery.
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub current_lsn: Option<Lsn>,
    pub primary_timeline: Option<u32>,
    /// Only on a standby: what its WAL receiver has received (NULL when it
    /// never streamed, as one fed from an archive).
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub receive_lsn: Option<Lsn>,
    #[serde(default, deserialize_with = "lsn::lenient")]
    pub replay_lsn: Option<Lsn>,
    pub last_replay_ts: Option<f64>,
    pub checkpoint_timeline: Option<u32>,
    /// `pg_control_recovery().min_recovery_end_timeline`: on a standby, the
    /// timeline of the last page flush during recovery; 0 on a primary.
    /// Like the checkpoint's, a lower bound that lags behind.
    #[serde(default)]
    pub min_recovery_timeline: Option<u32>,
    /// `pg_postmaster_start_time()`: which run of the server a reading
    /// belongs to (a re-seeded server restarts).
    #[serde(default)]
    pub postmaster_start: Option<String>,
    /// The first transaction id not yet completed as this server sees it
    /// (its snapshot's xmax, epoch included). A standby with the primary's
    /// value has replayed every transaction the primary completed, even if
    /// WAL without transactions (a running-xacts record) still waits.
    #[serde(default)]
    pub snapshot_xmax: Option<u64>,
    /// Only on a standby: the pause functions error on a primary.
    pub replay_paused: Option<bool>,
    /// Queries cancelled by recovery conflicts (pg_stat_database_conflicts).
    #[serde(default)]
    pub recovery_conflicts: Option<f64>,
    /// The server's clock, so ages are computed against the server and not
    /// against a possibly skewed exporter host.
    pub now: f64,
}

fn sql(caps: &Capabilities) -> String {
    // 14 replaced the boolean with a state that also reports a pause that
    // was requested but has not taken effect yet; both count as paused.
    let paused = if caps.at_least(14) {
        "pg_get_wal_replay_pause_state() <> 'not paused'"
    } else {
        "pg_is_wal_replay_paused()"
    };
    // pg_current_snapshot() replaced txid_current_snapshot() in 13; both
    // answer on a hot standby, from what it replayed.
    let xmax = if caps.at_least(13) {
        "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
    } else {
        "txid_snapshot_xmax(txid_current_snapshot())"
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
           (SELECT min_recovery_end_timeline FROM pg_control_recovery()) AS min_recovery_timeline, \
           pg_postmaster_start_time()::text AS postmaster_start, \
           {xmax} AS snapshot_xmax, \
           CASE WHEN pg_is_in_recovery() THEN {paused} END AS replay_paused, \
           (SELECT sum(confl_tablespace + confl_lock + confl_snapshot + confl_bufferpin + confl_deadlock) \
              FROM pg_stat_database_conflicts)::float8 AS recovery_conflicts, \
           EXTRACT(EPOCH FROM now())::float8 AS now) s"
    )
}

pub const SERVER_INFO: Family = Family::gauge(
    "pgrepl_server_info",
    "Identity of the server (value 1): version, system_identifier (equal on a primary and all its physical standbys) and cluster_name.",
    "Identidad del servidor (valor 1): versión, system_identifier (igual en un principal y todas sus réplicas físicas) y cluster_name.",
    &[
        TARGET,
        Label::text("version", "`server_version`, e.g. `17.2`"),
        Label::text("system_identifier", "from `pg_control_system()`"),
        Label::text("cluster_name", "the `cluster_name` setting, empty when unset"),
    ],
    Scope::Server,
);

pub const IN_RECOVERY: Family = Family::gauge(
    "pgrepl_in_recovery",
    "1 when the server is a standby (in recovery), 0 when it is a primary.",
    "1 cuando el servidor es una réplica (en recuperación), 0 cuando es principal.",
    &[TARGET],
    Scope::Server,
);

pub const TIMELINE_ID: Family = Family::gauge(
    "pgrepl_timeline_id",
    "Current timeline of the server; it increases at each promotion. On a standby, the one its WAL receiver streams; without a streaming receiver, the newest timeline of the WAL segments in pg_wal (needs pg_monitor) or of its last restartpoint, never lower than read before on the same run of the server.",
    "Timeline actual del servidor; aumenta con cada promoción. En una réplica, el que recibe su WAL receiver; sin receiver en streaming, el timeline más nuevo de los segmentos de WAL en pg_wal (requiere pg_monitor) o de su último restartpoint, nunca menor que el leído antes en la misma ejecución del servidor.",
    &[TARGET],
    Scope::Server,
);

pub const WAL_LSN_BYTES: Family = Family::gauge(
    "pgrepl_wal_lsn_bytes",
    "WAL position as a byte offset: current (primary), receive and replay (standby).",
    "Posición de WAL como desplazamiento en bytes: current (principal), receive y replay (réplica).",
    &[TARGET, Label::one_of("position", &["current", "receive", "replay"])],
    Scope::Server,
);

pub const RECOVERY_CONFLICTS: Family = Family::counter(
    "pgrepl_recovery_conflicts",
    "Queries on the standby cancelled because replay conflicted with them (pg_stat_database_conflicts).",
    "Consultas en la réplica canceladas porque el replay entró en conflicto con ellas (pg_stat_database_conflicts).",
    &[TARGET],
    Scope::Standby,
);

pub const FAMILIES: &[Family] = &[
    SERVER_INFO,
    IN_RECOVERY,
    TIMELINE_ID,
    WAL_LSN_BYTES,
    RECOVERY_CONFLICTS,
];

impl Source for Server {
    type Rows = Server;
    const TITLE: [&'static str; 2] = [
        "Server identity, role and WAL position",
        "Identidad, rol y posición de WAL del servidor",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql(caps))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

impl Server {
    /// The WAL positions it reports, by the `position` label: the current
    /// one on a primary, what was received and replayed on a standby.
    pub fn positions(&self) -> [(&'static str, Option<Lsn>); 3] {
        if self.in_recovery {
            [
                ("receive", self.receive_lsn),
                ("replay", self.replay_lsn),
                ("current", None),
            ]
        } else {
            [
                ("current", self.current_lsn),
                ("receive", None),
                ("replay", None),
            ]
        }
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    emit(
        enc,
        &SERVER_INFO,
        scrape.servers().map(|u| {
            let (t, s) = (u.target, u.sample);
            (
                [
                    ("target", t),
                    ("version", s.server.version.as_str()),
                    (
                        "system_identifier",
                        s.server.system_identifier.as_deref().unwrap_or(""),
                    ),
                    (
                        "cluster_name",
                        s.server.cluster_name.as_deref().unwrap_or(""),
                    ),
                ],
                1.0,
            )
        }),
    )?;
    emit(
        enc,
        &IN_RECOVERY,
        scrape
            .servers()
            .map(|u| ([("target", u.target)], flag(u.sample.server.in_recovery))),
    )?;
    emit(
        enc,
        &TIMELINE_ID,
        scrape.servers().filter_map(|u| {
            let timeline = u.sample.timeline()?;
            Some(([("target", u.target)], f64::from(timeline)))
        }),
    )?;
    emit(
        enc,
        &WAL_LSN_BYTES,
        scrape.servers().flat_map(|u| {
            u.sample
                .server
                .positions()
                .into_iter()
                .filter_map(move |(position, at)| {
                    Some(([("target", u.target), ("position", position)], at?.as_f64()))
                })
        }),
    )?;
    emit(
        enc,
        &RECOVERY_CONFLICTS,
        scrape
            .standbys()
            .filter_map(|u| Some(([("target", u.target)], u.sample.server.recovery_conflicts?))),
    )
}
