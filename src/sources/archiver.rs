//! WAL archiving: `pg_stat_archiver` and the `.ready` files in
//! `pg_wal/archive_status` (`pg_ls_archive_statusdir()`, 12+, `pg_monitor`).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, Family, Scope, TARGET};

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

fn sql(caps: &Capabilities) -> String {
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

pub const ARCHIVER_ARCHIVED: Family = Family::counter(
    "pgrepl_archiver_archived",
    "WAL files archived successfully (pg_stat_archiver.archived_count).",
    "Archivos de WAL archivados con éxito (pg_stat_archiver.archived_count).",
    &[TARGET],
    Scope::Server,
);

pub const ARCHIVER_FAILED: Family = Family::counter(
    "pgrepl_archiver_failed",
    "Failed attempts of archive_command (pg_stat_archiver.failed_count).",
    "Intentos fallidos de archive_command (pg_stat_archiver.failed_count).",
    &[TARGET],
    Scope::Server,
);

pub const ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_archiver_last_archived_timestamp_seconds",
    "Unix time of the last WAL file archived successfully.",
    "Hora Unix del último archivo de WAL archivado con éxito.",
    &[TARGET],
    Scope::Server,
)
.when(
    "once a file was archived since the statistics were reset",
    "desde que se archivó un archivo tras reiniciar las estadísticas",
);

pub const ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_archiver_last_failed_timestamp_seconds",
    "Unix time of the last failed archive_command.",
    "Hora Unix del último archive_command fallido.",
    &[TARGET],
    Scope::Server,
)
.when(
    "once archiving failed since the statistics were reset",
    "desde que falló el archivado tras reiniciar las estadísticas",
);

pub const ARCHIVER_PENDING_WAL_FILES: Family = Family::gauge(
    "pgrepl_archiver_pending_wal_files",
    "WAL files waiting to be archived (.ready files in pg_wal/archive_status).",
    "Archivos de WAL esperando ser archivados (archivos .ready en pg_wal/archive_status).",
    &[TARGET],
    Scope::Server,
)
.since(12)
.when(
    "when the role may run pg_ls_archive_statusdir() (pg_monitor)",
    "cuando el rol puede ejecutar pg_ls_archive_statusdir() (pg_monitor)",
);

pub const ARCHIVER_OLDEST_PENDING_TIMESTAMP_SECONDS: Family = Family::gauge(
    "pgrepl_archiver_oldest_pending_timestamp_seconds",
    "Modification time (Unix) of the oldest WAL file waiting to be archived; absent when none waits.",
    "Hora de modificación (Unix) del archivo de WAL más antiguo que espera ser archivado; ausente cuando no espera ninguno.",
    &[TARGET],
    Scope::Server,
)
.since(12)
.when(
    "while a file waits to be archived (and with pg_monitor)",
    "mientras un archivo espera ser archivado (y con pg_monitor)",
);

pub const FAMILIES: &[Family] = &[
    ARCHIVER_ARCHIVED,
    ARCHIVER_FAILED,
    ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS,
    ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS,
    ARCHIVER_PENDING_WAL_FILES,
    ARCHIVER_OLDEST_PENDING_TIMESTAMP_SECONDS,
];

impl Source for Archiver {
    type Rows = Option<Archiver>;
    const TITLE: [&'static str; 2] = [
        "WAL archiving (`pg_stat_archiver`)",
        "Archivado de WAL (`pg_stat_archiver`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql(caps))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows = || {
        scrape
            .servers()
            .filter_map(|u| Some((u.target, u.sample.archiver.as_ref()?)))
    };
    emit(
        enc,
        &ARCHIVER_ARCHIVED,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.archived_count?))),
    )?;
    emit(
        enc,
        &ARCHIVER_FAILED,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.failed_count?))),
    )?;
    emit(
        enc,
        &ARCHIVER_LAST_ARCHIVED_TIMESTAMP_SECONDS,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.last_archived_time?))),
    )?;
    emit(
        enc,
        &ARCHIVER_LAST_FAILED_TIMESTAMP_SECONDS,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.last_failed_time?))),
    )?;
    emit(
        enc,
        &ARCHIVER_PENDING_WAL_FILES,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.pending?))),
    )?;
    emit(
        enc,
        &ARCHIVER_OLDEST_PENDING_TIMESTAMP_SECONDS,
        rows().filter_map(|(t, a)| Some(([("target", t)], a.oldest_pending?))),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Archiver;
    use crate::sources::testing::{render, sample};

    /// The primary of the `cascade` capture, with an archive_command that
    /// failed since, and 2 segments waiting.
    #[test]
    fn the_archiver_renders_counts_times_and_what_waits() {
        let s = sample(json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 1795905587.6},
            "archiver": {"archived_count": 3, "failed_count": 1,
                "last_archived_time": 1795905582.946135, "last_failed_time": 1795905586.5,
                "oldest_pending": 1795905583.25, "pending": 2}
        }));
        let text = render::<Archiver>(&[("p", &s)]);
        for line in [
            "# TYPE pgrepl_archiver_archived_total counter",
            r#"pgrepl_archiver_archived_total{target="p"} 3.0"#,
            r#"pgrepl_archiver_failed_total{target="p"} 1.0"#,
            r#"pgrepl_archiver_last_archived_timestamp_seconds{target="p"} 1795905582.946135"#,
            r#"pgrepl_archiver_last_failed_timestamp_seconds{target="p"} 1795905586.5"#,
            r#"pgrepl_archiver_pending_wal_files{target="p"} 2.0"#,
            r#"pgrepl_archiver_oldest_pending_timestamp_seconds{target="p"} 1795905583.25"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        // Never archived, nothing failed, no pg_monitor: only the counters.
        let quiet = sample(json!({
            "server": {"in_recovery": true, "version": "10.23", "now": 0.0},
            "archiver": {"archived_count": 0, "failed_count": 0, "last_archived_time": null,
                "last_failed_time": null, "oldest_pending": null, "pending": null}
        }));
        let text = render::<Archiver>(&[("s", &quiet)]);
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            2,
            "{text}"
        );
    }
}
