//! WAL archiving: `pg_stat_archiver` and the `.ready` files in
//! `pg_wal/archive_status` (`pg_ls_archive_statusdir()`, 12+, `pg_monitor`).
//!
//! Families: `pgrepl_archiver_archived_total`, `pgrepl_archiver_failed_total`,
//! `pgrepl_archiver_last_archived_timestamp_seconds`,
//! `pgrepl_archiver_last_failed_timestamp_seconds`,
//! `pgrepl_archiver_pending_wal_files`,
//! `pgrepl_archiver_oldest_pending_timestamp_seconds`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::Capabilities;
use crate::exposition::{counter_family, gauge_family};
use crate::snapshot::{up_samples, TargetSnapshot};

#[derive(Debug, Clone, Deserialize)]
pub struct Archiver {
    pub archived_count: Option<f64>,
    pub failed_count: Option<f64>,
    pub last_archived_time: Option<f64>,
    pub last_failed_time: Option<f64>,
    /// Absent without `pg_ls_archive_statusdir()`.
    pub pending: Option<f64>,
    pub oldest_pending: Option<f64>,
}

pub fn sql(caps: &Capabilities) -> String {
    let pending = if caps.ls_archive_status {
        "(SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS pending, \
         (SELECT EXTRACT(EPOCH FROM min(modification))::float8 FROM pg_ls_archive_statusdir() \
            WHERE name LIKE '%.ready') AS oldest_pending"
    } else {
        "NULL::bigint AS pending, NULL::float8 AS oldest_pending"
    };
    format!(
        "SELECT row_to_json(x) FROM (SELECT archived_count, failed_count, \
           EXTRACT(EPOCH FROM last_archived_time)::float8 AS last_archived_time, \
           EXTRACT(EPOCH FROM last_failed_time)::float8 AS last_failed_time, \
           {pending} \
         FROM pg_stat_archiver) x"
    )
}

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    let rows = || up_samples(snaps).filter_map(|(t, s)| Some((t, s.archiver.as_ref()?)));
    counter_family(
        enc,
        "pgrepl_archiver_archived",
        "WAL files archived successfully (pg_stat_archiver.archived_count).",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.archived_count?))),
    )?;
    counter_family(
        enc,
        "pgrepl_archiver_failed",
        "Failed attempts of archive_command (pg_stat_archiver.failed_count).",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.failed_count?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_archiver_last_archived_timestamp_seconds",
        "Unix time of the last WAL file archived successfully.",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.last_archived_time?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_archiver_last_failed_timestamp_seconds",
        "Unix time of the last failed archive_command.",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.last_failed_time?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_archiver_pending_wal_files",
        "WAL files waiting to be archived (.ready files in pg_wal/archive_status).",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.pending?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_archiver_oldest_pending_timestamp_seconds",
        "Modification time (Unix) of the oldest WAL file waiting to be archived; absent when none waits.",
        rows().filter_map(|(t, a)| Some(([("target", t)], a.oldest_pending?))),
    )
}
