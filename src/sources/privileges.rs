//! What the monitoring role may read, asked on every collection (so a
//! `GRANT` is seen at the next one): without `pg_read_all_stats` (part of
//! `pg_monitor`) `pg_stat_replication`, `pg_stat_wal_receiver` and other
//! sessions' wait events show their rows with every detail NULL, and the
//! WAL directory functions are refused. The exporter then cannot tell
//! whether a standby streams; it says so here, per privilege, rather than
//! let "cannot see" read as "disconnected".

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Extra, Scrape, Source};
use crate::family::{emit, flag, Family, Label, Scope, TARGET};

/// Each privilege the exporter uses, as the `privilege` label names it.
pub const PRIVILEGES: [&str; 3] = [
    "pg_read_all_stats",
    "pg_ls_waldir",
    "pg_ls_archive_statusdir",
];

/// Whether the role holds each privilege; `None` where it does not exist
/// (`pg_ls_archive_statusdir()` before 12).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Privileges {
    pub pg_read_all_stats: Option<bool>,
    pub pg_ls_waldir: Option<bool>,
    pub pg_ls_archive_statusdir: Option<bool>,
}

impl Privileges {
    /// `(privilege, held)` for every privilege that exists on the server.
    pub fn held(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        [
            self.pg_read_all_stats,
            self.pg_ls_waldir,
            self.pg_ls_archive_statusdir,
        ]
        .into_iter()
        .zip(PRIVILEGES)
        .filter_map(|(held, name)| Some((name, held?)))
    }

    /// The privileges the role lacks.
    pub fn missing(&self) -> Vec<&'static str> {
        self.held()
            .filter(|(_, held)| !held)
            .map(|(name, _)| name)
            .collect()
    }

    /// Whether other sessions' replication details (walsenders, the WAL
    /// receiver) read NULL.
    pub fn stats_hidden(&self) -> bool {
        self.pg_read_all_stats == Some(false)
    }
}

/// A function's EXECUTE privilege, NULL where it does not exist.
fn may_execute(signature: &str) -> String {
    format!(
        "CASE WHEN to_regprocedure('{signature}') IS NULL THEN NULL \
         ELSE has_function_privilege(to_regprocedure('{signature}'), 'EXECUTE') END"
    )
}

fn sql() -> String {
    format!(
        "SELECT json_build_object(\
           'pg_read_all_stats', pg_has_role('pg_read_all_stats', 'USAGE'), \
           'pg_ls_waldir', {}, \
           'pg_ls_archive_statusdir', {})",
        may_execute("pg_catalog.pg_ls_waldir()"),
        may_execute("pg_catalog.pg_ls_archive_statusdir()")
    )
}

pub const PRIVILEGE_MISSING: Family = Family::gauge(
    "pgrepl_privilege_missing",
    "1 when the monitoring role lacks the privilege, 0 when it holds it. Without pg_read_all_stats (GRANT pg_monitor) the details of pg_stat_replication and pg_stat_wal_receiver read NULL: whether a standby streams cannot be told, and the cluster view leaves such a standby out of pgrepl_cluster_expected_standby_connected instead of reading 0. Without pg_ls_waldir or pg_ls_archive_statusdir the WAL directory and pending-archive families are absent.",
    "1 cuando al rol de monitoreo le falta el privilegio, 0 cuando lo tiene. Sin pg_read_all_stats (GRANT pg_monitor) los detalles de pg_stat_replication y pg_stat_wal_receiver se leen NULL: no se puede saber si una réplica recibe el stream, y la vista de clúster deja a esa réplica fuera de pgrepl_cluster_expected_standby_connected en vez de marcar 0. Sin pg_ls_waldir o pg_ls_archive_statusdir faltan las familias del directorio de WAL y de archivos pendientes.",
    &[
        TARGET,
        Label::one_of("privilege", &PRIVILEGES),
    ],
    Scope::Server,
)
.when(
    "for each privilege that exists on the server's version (pg_ls_archive_statusdir from 12)",
    "para cada privilegio que existe en la versión del servidor (pg_ls_archive_statusdir desde 12)",
);

pub const FAMILIES: &[Family] = &[PRIVILEGE_MISSING];

impl Source for Privileges {
    type Rows = Option<Privileges>;
    const TITLE: [&'static str; 2] = [
        "What the monitoring role may read (privileges)",
        "Qué puede leer el rol de monitoreo (privilegios)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(_: &Capabilities, _: Extra<'_>) -> Option<String> {
        Some(sql())
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        emit(
            enc,
            &PRIVILEGE_MISSING,
            scrape.servers().flat_map(|u| {
                u.sample.privileges.iter().flat_map(move |p| {
                    p.held().map(move |(name, held)| {
                        ([("target", u.target), ("privilege", name)], flag(!held))
                    })
                })
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::testing::{render, sample};

    #[test]
    fn missing_privileges_by_name() {
        let p: Privileges = serde_json::from_str(
            r#"{"pg_read_all_stats": false, "pg_ls_waldir": true, "pg_ls_archive_statusdir": null}"#,
        )
        .expect("privileges");
        assert_eq!(p.missing(), ["pg_read_all_stats"]);
        assert!(p.stats_hidden());
        assert_eq!(p.held().count(), 2);
        for name in PRIVILEGES {
            assert!(sql_names(name), "{name} not asked");
        }
    }

    fn sql_names(name: &str) -> bool {
        sql().contains(&format!("'{name}'"))
    }

    /// A role without pg_monitor on PostgreSQL 11 (no
    /// `pg_ls_archive_statusdir()` there: no series for it, not a 1).
    #[test]
    fn each_privilege_that_exists_is_a_series() {
        let s = sample(serde_json::json!({
            "server": {"in_recovery": false, "version": "11.22", "now": 0.0},
            "privileges": {"pg_read_all_stats": false, "pg_ls_waldir": true,
                           "pg_ls_archive_statusdir": null}
        }));
        let text = render::<Privileges>(&[("p", &s)]);
        for line in [
            r#"pgrepl_privilege_missing{target="p",privilege="pg_read_all_stats"} 1.0"#,
            r#"pgrepl_privilege_missing{target="p",privilege="pg_ls_waldir"} 0.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert!(
            !text.contains("privilege=\"pg_ls_archive_statusdir\""),
            "{text}"
        );
        // Recorded before the privileges were asked: nothing.
        let old = sample(
            serde_json::json!({"server": {"in_recovery": false, "version": "17.0", "now": 0.0}}),
        );
        assert!(render::<Privileges>(&[("p", &old)]).is_empty());
    }
}
