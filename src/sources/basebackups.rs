//! Base backups in progress: `pg_stat_progress_basebackup` (13+), i.e. a
//! `pg_basebackup` seeding a new standby.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Up};
use crate::family::{emit, state_set, Family, Label, Scope, TARGET};

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

const RUNNING: (&str, &str) = ("while a base backup runs", "mientras corre una copia base");

const PID: Label = Label::text("pid", "the walsender serving the backup");

pub const BASEBACKUP_STREAMED_BYTES: Family = Family::gauge(
    "pgrepl_basebackup_streamed_bytes",
    "Bytes streamed so far by a running base backup.",
    "Bytes enviados hasta ahora por una copia base en curso.",
    &[TARGET, PID],
    Scope::Server,
)
.since(13)
.when(RUNNING.0, RUNNING.1);

pub const BASEBACKUP_TOTAL_BYTES: Family = Family::gauge(
    "pgrepl_basebackup_total_bytes",
    "Estimated total size of a running base backup; absent when not estimated.",
    "Tamaño total estimado de una copia base en curso; ausente cuando no se estima.",
    &[TARGET, PID],
    Scope::Server,
)
.since(13)
.when(RUNNING.0, RUNNING.1);

pub const BASEBACKUP_PHASE: Family = Family::gauge(
    "pgrepl_basebackup_phase",
    "Phase of a running base backup (one series per phase, 1 for the current one).",
    "Fase de una copia base en curso (una serie por fase, 1 para la actual).",
    &[TARGET, PID, Label::one_of("phase", &PHASES)],
    Scope::Server,
)
.since(13)
.when(RUNNING.0, RUNNING.1);

pub const FAMILIES: &[Family] = &[
    BASEBACKUP_STREAMED_BYTES,
    BASEBACKUP_TOTAL_BYTES,
    BASEBACKUP_PHASE,
];

pub fn encode(up: &[Up<'_>], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows: Vec<(&str, &Progress, String)> = up
        .iter()
        .copied()
        .flat_map(|(t, s)| s.basebackups.iter().map(move |b| (t, b, b.pid.to_string())))
        .collect();
    emit(
        enc,
        &BASEBACKUP_STREAMED_BYTES,
        rows.iter().filter_map(|(t, b, pid)| {
            Some(([("target", *t), ("pid", pid.as_str())], b.backup_streamed?))
        }),
    )?;
    emit(
        enc,
        &BASEBACKUP_TOTAL_BYTES,
        rows.iter().filter_map(|(t, b, pid)| {
            Some(([("target", *t), ("pid", pid.as_str())], b.backup_total?))
        }),
    )?;
    emit(
        enc,
        &BASEBACKUP_PHASE,
        rows.iter().flat_map(|(t, b, pid)| {
            state_set(&PHASES, b.phase.as_deref()).map(move |(phase, v)| {
                ([("target", *t), ("pid", pid.as_str()), ("phase", phase)], v)
            })
        }),
    )
}
