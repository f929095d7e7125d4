//! Base backups in progress: `pg_stat_progress_basebackup` (13+), i.e. a
//! `pg_basebackup` seeding a new standby.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::state::pg_state;
use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, state_set, Family, Label, Scope, TARGET};

pg_state! {
    /// Where a base backup is (`pg_stat_progress_basebackup.phase`).
    pub enum BaseBackupPhase {
        Initializing = "initializing",
        WaitingForCheckpoint = "waiting for checkpoint to finish",
        EstimatingSize = "estimating backup size",
        StreamingFiles = "streaming database files",
        WaitingForArchiving = "waiting for wal archiving to finish",
        TransferringWal = "transferring wal files",
    }
}

/// One base backup in progress.
#[derive(Debug, Clone, Deserialize)]
pub struct BaseBackup {
    pub pid: i32,
    pub phase: Option<BaseBackupPhase>,
    pub backup_total: Option<f64>,
    pub backup_streamed: Option<f64>,
}

fn sql(caps: &Capabilities) -> Option<String> {
    caps.at_least(13).then(|| {
        "SELECT coalesce(json_agg(x ORDER BY x.pid), '[]') FROM (SELECT pid, phase, \
           backup_total, backup_streamed FROM pg_stat_progress_basebackup) x"
            .to_string()
    })
}

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
    &[TARGET, PID, Label::one_of("phase", BaseBackupPhase::NAMES)],
    Scope::Server,
)
.since(13)
.when(RUNNING.0, RUNNING.1);

pub const FAMILIES: &[Family] = &[
    BASEBACKUP_STREAMED_BYTES,
    BASEBACKUP_TOTAL_BYTES,
    BASEBACKUP_PHASE,
];

impl Source for BaseBackup {
    type Rows = Vec<BaseBackup>;
    const TITLE: [&'static str; 2] = [
        "Base backups in progress (`pg_stat_progress_basebackup`)",
        "Copias base en curso (`pg_stat_progress_basebackup`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        sql(caps)
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows: Vec<(&str, &BaseBackup, String)> = scrape
        .servers()
        .flat_map(|u| {
            u.sample
                .basebackups
                .iter()
                .map(move |b| (u.target, b, b.pid.to_string()))
        })
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
            state_set(
                BaseBackupPhase::NAMES,
                b.phase.as_ref().map(BaseBackupPhase::as_str),
            )
            .map(move |(phase, v)| ([("target", *t), ("pid", pid.as_str()), ("phase", phase)], v))
        }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::BaseBackup;
    use crate::sources::testing::{render, sample};

    /// A `pg_basebackup` seeding a standby, as PostgreSQL 13+ shows it.
    #[test]
    fn a_running_backup_renders_its_progress_and_phase() {
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0},
            "basebackups": [{"pid": 4242, "phase": "streaming database files",
                             "backup_total": 30_000_000.0, "backup_streamed": 12_000_000.0}]
        }));
        let text = render::<BaseBackup>(&[("p", &s)]);
        for line in [
            r#"pgrepl_basebackup_streamed_bytes{target="p",pid="4242"} 12000000.0"#,
            r#"pgrepl_basebackup_total_bytes{target="p",pid="4242"} 30000000.0"#,
            r#"pgrepl_basebackup_phase{target="p",pid="4242",phase="streaming database files"} 1.0"#,
            r#"pgrepl_basebackup_phase{target="p",pid="4242",phase="initializing"} 0.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert_eq!(text.matches("pgrepl_basebackup_phase{").count(), 6);
        // None running: nothing.
        let idle = sample(
            json!({"server": {"in_recovery": false, "version": "17.0", "now": 0.0},
                                 "basebackups": []}),
        );
        assert!(render::<BaseBackup>(&[("p", &idle)]).is_empty());
    }
}
