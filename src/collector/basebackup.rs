//! Base backups in progress: `pg_stat_progress_basebackup` (13+), i.e. a
//! `pg_basebackup` seeding a new standby.
//!
//! Families: `pgrepl_basebackup_streamed_bytes`,
//! `pgrepl_basebackup_total_bytes`, `pgrepl_basebackup_phase`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::Capabilities;
use crate::exposition::{gauge_family, state_set};
use crate::snapshot::{up_samples, TargetSnapshot};

#[derive(Debug, Clone, Deserialize)]
pub struct Progress {
    pub pid: i32,
    pub phase: Option<String>,
    pub backup_total: Option<f64>,
    pub backup_streamed: Option<f64>,
}

pub fn sql(caps: &Capabilities) -> Option<String> {
    caps.at_least(13).then(|| {
        "SELECT coalesce(json_agg(x ORDER BY x.pid), '[]') FROM (SELECT pid, phase, \
           backup_total, backup_streamed FROM pg_stat_progress_basebackup) x"
            .to_string()
    })
}

const PHASES: [&str; 6] = [
    "initializing",
    "waiting for checkpoint to finish",
    "estimating backup size",
    "streaming database files",
    "waiting for wal archiving to finish",
    "transferring wal files",
];

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    let rows: Vec<(&str, &Progress, String)> = up_samples(snaps)
        .flat_map(|(t, s)| s.basebackups.iter().map(move |b| (t, b, b.pid.to_string())))
        .collect();
    gauge_family(
        enc,
        "pgrepl_basebackup_streamed_bytes",
        "Bytes streamed so far by a running base backup.",
        rows.iter().filter_map(|(t, b, pid)| {
            Some(([("target", *t), ("pid", pid.as_str())], b.backup_streamed?))
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_basebackup_total_bytes",
        "Estimated total size of a running base backup; absent when not estimated.",
        rows.iter().filter_map(|(t, b, pid)| {
            Some(([("target", *t), ("pid", pid.as_str())], b.backup_total?))
        }),
    )?;
    gauge_family(
        enc,
        "pgrepl_basebackup_phase",
        "Phase of a running base backup (one series per phase, 1 for the current one).",
        rows.iter().flat_map(|(t, b, pid)| {
            state_set(&PHASES, b.phase.as_deref()).map(move |(phase, v)| {
                ([("target", *t), ("pid", pid.as_str()), ("phase", phase)], v)
            })
        }),
    )
}
