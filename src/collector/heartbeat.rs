//! Reading the heartbeat row on a standby (opt-in per cluster; the writer
//! is `crate::heartbeat_writer`).
//!
//! Byte lag reads 0 both when a standby is caught up and when it is cut
//! off from an idle primary; the age of the last replayed heartbeat does
//! not: it is the true end-to-end delay, primary clock to standby replay.
//!
//! Family: `pgrepl_heartbeat_lag_seconds` (standbys).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::Up;
use crate::family::{emit, Family, Scope, TARGET};
use crate::sql::literal;

/// Where a target reads its cluster's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRead {
    /// Validated `schema.table` (plain identifiers only).
    pub table: String,
    pub cluster: String,
}

/// Part of the capability probe: the table exists and may be read.
pub fn probe_sql(read: &HeartbeatRead) -> String {
    let table = literal(&read.table);
    format!(
        "CASE WHEN to_regclass({table}) IS NULL THEN false \
              ELSE has_table_privilege(to_regclass({table}), 'SELECT') END"
    )
}

/// The fragment of the collection statement.
pub fn sql(read: &HeartbeatRead) -> String {
    format!(
        "SELECT EXTRACT(EPOCH FROM now() - ts)::float8 FROM {} WHERE cluster = {}",
        read.table,
        literal(&read.cluster)
    )
}

pub const HEARTBEAT_LAG_SECONDS: Family = Family::gauge(
    "pgrepl_heartbeat_lag_seconds",
    "Age of the last heartbeat the standby has replayed: the end-to-end replication delay, also when the primary is idle or the standby is cut off.",
    "Edad del último latido que aplicó la réplica: el retraso de replicación de punta a punta, también con el principal inactivo o la réplica aislada.",
    &[TARGET],
    Scope::Standby,
)
.when(
    "with [clusters.NAME.heartbeat] configured, once the table exists",
    "con [clusters.NOMBRE.heartbeat] configurado, una vez que existe la tabla",
);

pub const FAMILIES: &[Family] = &[HEARTBEAT_LAG_SECONDS];

pub fn encode(up: &[Up], enc: &mut DescriptorEncoder) -> fmt::Result {
    emit(
        enc,
        &HEARTBEAT_LAG_SECONDS,
        up.iter()
            .copied()
            .filter(|(_, s)| s.server.in_recovery)
            .filter_map(|(t, s)| Some(([("target", t)], s.heartbeat?.max(0.0)))),
    )
}
