//! Reading the heartbeat row on a standby (opt-in per cluster; the writer
//! is `crate::collect::heartbeat_writer`), and what the writer and the reader both
//! ask of the heartbeat's table before they touch it.
//!
//! Byte lag reads 0 both when a standby is caught up and when it is cut
//! off from an idle primary; the age of the last replayed heartbeat does
//! not: it is the true end-to-end delay, primary clock to standby replay.
//!
//! **Trust.** Whatever a table runs when a row goes in (triggers, rules,
//! row-level security policies, column defaults, check constraints, index
//! expressions) runs with the privileges of the role that inserts it, and
//! whoever owns the table decides what its row says. So the heartbeat's
//! table is used only when it is a plain, logged table owned by a superuser
//! or by the writer's own role, with exactly the columns the heartbeat
//! writes, and nothing that would run code: see [`verdict_sql`]. The writer
//! checks it before every write, under a lock that keeps it so until the
//! write commits; the reader checks it in every collection.
//!
//! **Clocks.** A heartbeat can never be replayed before it was written, so
//! its age is negative only when the primary's clock is ahead of the
//! standby's, or when someone else wrote the row. Within
//! [`FUTURE_TOLERANCE_SECONDS`] (clock skew) it reads as 0; beyond, the lag
//! is left out and `pgrepl_heartbeat_rejected{reason="future"}` says why:
//! a heartbeat from the future is never a healthy 0.
//!
//! Families: `pgrepl_heartbeat_lag_seconds`, `pgrepl_heartbeat_rejected`
//! (standbys); `pgrepl_heartbeat_writer_refusing`,
//! `pgrepl_heartbeat_writer_last_success_timestamp_seconds` (per cluster
//! with a heartbeat).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::sql::literal;
use super::{Capabilities, Extra, Scrape, Source};
use crate::config::{Config, Target};
use crate::family::{emit, flag, Family, Label, Scope, CLUSTER, TARGET};

/// A heartbeat up to this far in the future is clock skew between primary
/// and standby, read as a lag of 0; beyond, it is rejected.
pub const FUTURE_TOLERANCE_SECONDS: f64 = 1.0;

/// The columns the heartbeat writes, as `format_type` names them: the table
/// must have exactly these.
const COLUMNS: &str = "cluster text, ts timestamp with time zone, lsn pg_lsn";

/// `schema.table` of the configured name; a name without a schema is in
/// `public` (sessions pin `search_path` to the system catalog, so a bare
/// name is never looked up).
pub fn qualified(table: &str) -> String {
    if table.contains('.') {
        table.to_string()
    } else {
        format!("public.{table}")
    }
}

/// The schema and the table name of [`qualified`]`(table)`.
pub fn split(table: &str) -> (String, String) {
    let q = qualified(table);
    match q.split_once('.') {
        Some((schema, name)) => (schema.to_string(), name.to_string()),
        None => ("public".to_string(), q),
    }
}

/// Whose tables are trusted besides superusers'.
#[derive(Debug, Clone, Copy)]
pub enum Owners<'a> {
    /// The writer: its own session's role.
    CurrentUser,
    /// The reader: the roles the cluster's writer connects as.
    Named(&'a [String]),
}

/// One text column `verdict`: `ok`, `missing`, `denied` (the session may
/// not read it; asked only with `check_select`), or why the table is not
/// trusted, worded to follow "the table ...". Catalog reads only, by the
/// table's schema and name (`to_regclass` would fail outright without
/// `USAGE` on the schema); every function and type schema-qualified.
pub fn verdict_sql(table: &str, owners: Owners<'_>, check_select: bool) -> String {
    let (schema, name) = split(table);
    let (owner_ok, whom) = match owners {
        Owners::CurrentUser => (
            "o.rolname = current_user".to_string(),
            "pg_catalog.format('the writer''s role %s', pg_catalog.quote_ident(current_user))"
                .to_string(),
        ),
        Owners::Named([]) => ("false".to_string(), "'the writer''s role'".to_string()),
        Owners::Named(roles) => {
            let list: Vec<String> = roles.iter().map(|r| literal(r)).collect();
            (
                format!("o.rolname IN ({})", list.join(", ")),
                literal(&format!(
                    "a role the writer connects as ({})",
                    roles.join(", ")
                )),
            )
        }
    };
    let denied = if check_select {
        "WHEN NOT (pg_catalog.has_schema_privilege(c.relnamespace, 'USAGE') \
              AND pg_catalog.has_table_privilege(c.oid, 'SELECT')) THEN 'denied' "
    } else {
        ""
    };
    // Four lookups, each an aggregate over the catalog's index on the
    // table's oid (not `EXISTS`, which the planner may turn into a scan of
    // the whole catalog): triggers (any, internal ones included: foreign
    // keys), rules, columns with their defaults, and indexes. The first two
    // run only when `pg_class` flags something (`relhastriggers` and
    // `relhasrules` stay set after the last one is dropped; the lookup then
    // finds none). `OFFSET 0` keeps the whole a single evaluation when a
    // caller refers to `verdict` more than once.
    format!(
        "SELECT CASE \
          WHEN c.oid IS NULL THEN 'missing' \
          WHEN c.relkind <> 'r' THEN pg_catalog.format('is a %s, not a table', \
               CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
                 WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' \
                 WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index' \
                 WHEN 'c' THEN 'composite type' WHEN 't' THEN 'TOAST table' \
                 ELSE 'relation of kind ' || c.relkind::pg_catalog.text END) \
          WHEN c.relispartition THEN 'is a partition of another table' \
          WHEN c.relpersistence <> 'p' THEN 'is unlogged or temporary: standbys never see its rows' \
          WHEN NOT (o.rolsuper OR {owner_ok}) THEN \
               pg_catalog.format('is owned by %s, neither a superuser nor %s', \
                 pg_catalog.quote_ident(o.rolname), {whom}) \
          WHEN t.names IS NOT NULL THEN 'has trigger ' || t.names \
          WHEN r.names IS NOT NULL THEN 'has rule ' || r.names \
          WHEN c.relrowsecurity OR c.relforcerowsecurity THEN 'has row-level security' \
          WHEN a.columns IS DISTINCT FROM {columns} THEN \
               pg_catalog.format('has columns (%s), not ({COLUMNS})', a.columns) \
          WHEN a.defaults THEN 'has a column default or a generated column' \
          WHEN c.relchecks > 0 THEN 'has a check constraint' \
          WHEN i.count > 0 THEN 'has an index on an expression, with a predicate, or for an exclusion constraint' \
          {denied}\
          ELSE 'ok' END AS verdict \
        FROM (SELECT 1) AS one \
        LEFT JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace) \
          ON n.nspname = {schema} AND c.relname = {name} \
        LEFT JOIN pg_catalog.pg_roles o ON o.oid = c.relowner \
        LEFT JOIN LATERAL (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(tg.tgname), ', ' ORDER BY tg.tgname) AS names \
               FROM pg_catalog.pg_trigger tg WHERE c.relhastriggers AND tg.tgrelid = c.oid) AS t ON true \
        LEFT JOIN LATERAL (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(rw.rulename), ', ' ORDER BY rw.rulename) AS names \
               FROM pg_catalog.pg_rewrite rw WHERE c.relhasrules AND rw.ev_class = c.oid) AS r ON true \
        LEFT JOIN LATERAL (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', at.attname, \
                   pg_catalog.format_type(at.atttypid, at.atttypmod)), ', ' ORDER BY at.attnum) AS columns, \
                 pg_catalog.bool_or(at.atthasdef) AS defaults \
               FROM pg_catalog.pg_attribute at \
               WHERE at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped) AS a ON true \
        LEFT JOIN LATERAL (SELECT pg_catalog.count(*) AS count FROM pg_catalog.pg_index ix \
               WHERE ix.indrelid = c.oid \
                 AND (ix.indexprs IS NOT NULL OR ix.indpred IS NOT NULL OR ix.indisexclusion)) AS i ON true \
        OFFSET 0",
        columns = literal(COLUMNS),
        schema = literal(&schema),
        name = literal(&name),
    )
}

/// What a verdict says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Missing,
    /// The reader may not read it.
    Denied,
    /// Why it is not trusted, following "the table ...".
    Untrusted(String),
}

/// Longest reason kept: a table may carry any number of triggers.
const MAX_REASON_CHARS: usize = 300;

impl Verdict {
    /// Reads a verdict. A reason holds names another role chose (triggers,
    /// columns, its own): control characters are escaped and the length
    /// bounded, since it goes into log lines.
    pub fn parse(text: &str) -> Verdict {
        match text {
            "ok" => Verdict::Ok,
            "missing" => Verdict::Missing,
            "denied" => Verdict::Denied,
            other => {
                let mut reason = String::new();
                for (i, c) in other.chars().enumerate() {
                    if i == MAX_REASON_CHARS {
                        reason.push_str("...");
                        break;
                    }
                    if c.is_control() {
                        reason.extend(c.escape_default());
                    } else {
                        reason.push(c);
                    }
                }
                Verdict::Untrusted(reason)
            }
        }
    }
}

/// Where a target reads its cluster's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRead {
    /// Validated, schema-qualified `schema.table` (plain identifiers only).
    pub table: String,
    pub cluster: String,
    /// The roles the writer connects as, whose tables are trusted (with
    /// superusers'): `heartbeat.dsn`'s user, else every member's, since
    /// the writer then uses whichever member is primary.
    pub writers: Vec<String>,
}

impl HeartbeatRead {
    /// The heartbeat `target` reads under `config`, if its cluster has one.
    pub fn of(config: &Config, target: &Target) -> Option<HeartbeatRead> {
        let cluster = target.cluster.as_ref()?;
        let hb = config.clusters.get(cluster)?.heartbeat.as_ref()?;
        let mut writers: Vec<String> = match &hb.writer {
            Some(dsn) => dsn
                .pg_config()
                .get_user()
                .map(str::to_string)
                .into_iter()
                .collect(),
            None => config
                .targets
                .iter()
                .filter(|t| t.cluster.as_ref() == Some(cluster))
                .filter_map(|t| t.dsn.pg_config().get_user().map(str::to_string))
                .collect(),
        };
        writers.sort();
        writers.dedup();
        Some(HeartbeatRead {
            table: qualified(&hb.table),
            cluster: cluster.clone(),
            writers,
        })
    }
}

/// Part of the capability probe: whether the table may be read (it exists,
/// is readable and trusted), so that the first collection reads it.
pub fn probe_sql(read: &HeartbeatRead) -> String {
    format!(
        "(SELECT v.verdict = 'ok' FROM ({}) AS v)",
        verdict_sql(&read.table, Owners::Named(&read.writers), true)
    )
}

/// The fragment of the collection statement: the table's verdict in every
/// collection (so that a table created, fixed or spoiled later is noticed
/// at the next one, with no statement of its own), and with `ready` (the
/// last verdict was `ok`) the row's age, read only while it still is.
/// Only `ready` names the table: a statement naming a missing one fails.
pub fn sql(read: &HeartbeatRead, ready: bool) -> String {
    let age = if ready {
        format!(
            "CASE WHEN v.verdict = 'ok' THEN (SELECT EXTRACT(EPOCH FROM pg_catalog.now() - h.ts)::pg_catalog.float8 \
               FROM {} AS h WHERE h.cluster = {}::pg_catalog.text) END",
            read.table,
            literal(&read.cluster)
        )
    } else {
        "NULL::pg_catalog.float8".to_string()
    };
    format!(
        "SELECT pg_catalog.json_build_object('table', v.verdict, 'age', {age}) FROM ({}) AS v",
        verdict_sql(&read.table, Owners::Named(&read.writers), true)
    )
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        String::deserialize(d).map(|text| Verdict::parse(&text))
    }
}

/// What one collection read of the heartbeat.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reading {
    /// The table's verdict, checked in every collection.
    #[serde(rename = "table")]
    pub verdict: Verdict,
    /// Seconds since the row was written, as replayed here (negative: from
    /// the future); only from a table found trusted, `None` without a row.
    #[serde(default)]
    pub age: Option<f64>,
}

/// What a reading shows: computed once, here, for every output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shown {
    Lag(f64),
    /// `pgrepl_heartbeat_rejected{reason}`.
    Rejected(&'static str),
    /// Nothing yet (no table, no row, no privilege).
    Nothing,
}

impl Reading {
    pub fn shown(&self) -> Shown {
        match (&self.verdict, self.age) {
            (Verdict::Untrusted(_), _) => Shown::Rejected(REASON_UNTRUSTED),
            (Verdict::Ok, Some(age)) if age.is_nan() => Shown::Nothing,
            (Verdict::Ok, Some(age)) if age < -FUTURE_TOLERANCE_SECONDS => {
                Shown::Rejected(REASON_FUTURE)
            }
            (Verdict::Ok, Some(age)) => Shown::Lag(age.max(0.0)),
            _ => Shown::Nothing,
        }
    }
}

const REASON_FUTURE: &str = "future";
const REASON_UNTRUSTED: &str = "untrusted_table";

/// What the cluster's writer last did, for its families.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WriterStatus {
    /// It refuses to write into the table (not trusted).
    pub refusing: bool,
    /// Unix time of its last committed heartbeat.
    pub last_success: Option<f64>,
}

pub const HEARTBEAT_LAG_SECONDS: Family = Family::gauge(
    "pgrepl_heartbeat_lag_seconds",
    "Age of the last heartbeat the standby has replayed: the end-to-end replication delay, also when the primary is idle or the standby is cut off. A heartbeat up to 1 s in the future (clock skew) reads 0.",
    "Edad del último latido que aplicó la réplica: el retraso de replicación de punta a punta, también con el principal inactivo o la réplica aislada. Un latido hasta 1 s en el futuro (desfase de relojes) vale 0.",
    &[TARGET],
    Scope::Standby,
)
.when(
    "with [clusters.NAME.heartbeat] configured, once the table exists, is trusted and holds the cluster's row (not from the future; see pgrepl_heartbeat_rejected); the table is checked in every collection",
    "con [clusters.NOMBRE.heartbeat] configurado, una vez que la tabla existe, es de confianza y tiene la fila del clúster (no del futuro; ver pgrepl_heartbeat_rejected); la tabla se revisa en cada recolección",
);

pub const HEARTBEAT_REJECTED: Family = Family::gauge(
    "pgrepl_heartbeat_rejected",
    "1 while the standby's heartbeat is not used and pgrepl_heartbeat_lag_seconds is left out: future, the row is more than 1 s ahead of the standby's clock (clocks apart, or written by someone else); untrusted_table, the table is not one the exporter trusts (owner, triggers, rules, policies, columns; the log says which).",
    "1 mientras el latido de la réplica no se usa y pgrepl_heartbeat_lag_seconds se omite: future, la fila está más de 1 s adelante del reloj de la réplica (relojes desfasados, o la escribió otro); untrusted_table, la tabla no es de confianza para el exporter (dueño, triggers, reglas, políticas, columnas; el log dice cuál).",
    &[TARGET, Label::one_of("reason", &[REASON_FUTURE, REASON_UNTRUSTED])],
    Scope::Standby,
)
.when(
    "with [clusters.NAME.heartbeat] configured, while the heartbeat is rejected",
    "con [clusters.NOMBRE.heartbeat] configurado, mientras el latido se rechaza",
);

pub const HEARTBEAT_WRITER_REFUSING: Family = Family::gauge(
    "pgrepl_heartbeat_writer_refusing",
    "1 while the cluster's heartbeat writer refuses to write into its table because it cannot trust it (not owned by a superuser or the writer's role, or with triggers, rules, row-level security, other columns, defaults, constraints or index expressions: whatever would run with the writer's privileges); the log says why. 0 otherwise.",
    "1 mientras el proceso que escribe el latido del clúster se niega a escribir en su tabla porque no puede confiar en ella (no es de un superusuario ni del rol que escribe, o tiene triggers, reglas, seguridad por filas, otras columnas, valores por defecto, restricciones o índices sobre expresiones: lo que correría con los privilegios de ese rol); el log dice por qué. 0 si no.",
    &[CLUSTER],
    Scope::Cluster,
)
.when(
    "with [clusters.NAME.heartbeat] configured",
    "con [clusters.NOMBRE.heartbeat] configurado",
);

pub const HEARTBEAT_WRITER_LAST_SUCCESS: Family = Family::gauge(
    "pgrepl_heartbeat_writer_last_success_timestamp_seconds",
    "Unix time at which the cluster's heartbeat writer last committed its row on the primary.",
    "Hora Unix en que el proceso que escribe el latido del clúster confirmó su fila en el principal por última vez.",
    &[CLUSTER],
    Scope::Cluster,
)
.when(
    "with [clusters.NAME.heartbeat] configured, once the writer has written",
    "con [clusters.NOMBRE.heartbeat] configurado, una vez que el proceso escribió",
);

pub const FAMILIES: &[Family] = &[
    HEARTBEAT_LAG_SECONDS,
    HEARTBEAT_REJECTED,
    HEARTBEAT_WRITER_REFUSING,
    HEARTBEAT_WRITER_LAST_SUCCESS,
];

impl Source for Reading {
    type Rows = Option<Reading>;
    const TITLE: [&'static str; 2] = ["Heartbeat", "Latido (heartbeat)"];
    const FAMILIES: &'static [Family] = FAMILIES;

    /// Asked only by a target whose cluster has a heartbeat.
    fn sql(caps: &Capabilities, extra: Extra<'_>) -> Option<String> {
        Some(sql(extra.heartbeat?, caps.heartbeat_table))
    }

    /// Whether the table may be read yet (`Capabilities::heartbeat_table`).
    fn probe(extra: Extra<'_>) -> Option<(&'static str, String)> {
        Some(("heartbeat_table", probe_sql(extra.heartbeat?)))
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let writers = scrape.heartbeat_writers;
    let shown: Vec<(&str, Shown)> = scrape
        .standbys()
        .filter_map(|u| Some((u.target, u.sample.heartbeat.as_ref()?.shown())))
        .collect();
    emit(
        enc,
        &HEARTBEAT_LAG_SECONDS,
        shown.iter().filter_map(|(t, s)| match s {
            Shown::Lag(v) => Some(([("target", *t)], *v)),
            _ => None,
        }),
    )?;
    emit(
        enc,
        &HEARTBEAT_REJECTED,
        shown.iter().filter_map(|(t, s)| match s {
            Shown::Rejected(reason) => Some(([("target", *t), ("reason", *reason)], 1.0)),
            _ => None,
        }),
    )?;
    emit(
        enc,
        &HEARTBEAT_WRITER_REFUSING,
        writers
            .iter()
            .map(|(c, w)| ([("cluster", c.as_str())], flag(w.refusing))),
    )?;
    emit(
        enc,
        &HEARTBEAT_WRITER_LAST_SUCCESS,
        writers
            .iter()
            .filter_map(|(c, w)| Some(([("cluster", c.as_str())], w.last_success?))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(table: &str, age: Option<f64>) -> Reading {
        Reading {
            verdict: Verdict::parse(table),
            age,
        }
    }

    #[test]
    fn a_heartbeat_from_the_future_is_never_a_healthy_zero() {
        assert_eq!(reading("ok", Some(2.5)).shown(), Shown::Lag(2.5));
        // Clock skew within the tolerance: caught up.
        assert_eq!(reading("ok", Some(-0.4)).shown(), Shown::Lag(0.0));
        assert_eq!(
            reading("ok", Some(-FUTURE_TOLERANCE_SECONDS - 0.01)).shown(),
            Shown::Rejected("future")
        );
        assert_eq!(
            reading("ok", Some(-3600.0)).shown(),
            Shown::Rejected("future")
        );
        assert_eq!(reading("ok", Some(f64::NAN)).shown(), Shown::Nothing);
        assert_eq!(reading("ok", None).shown(), Shown::Nothing);
    }

    #[test]
    fn an_untrusted_table_is_never_read() {
        // Even with an age (a statement built while it was trusted).
        assert_eq!(
            reading("has trigger x", Some(0.5)).shown(),
            Shown::Rejected("untrusted_table")
        );
        assert_eq!(reading("missing", None).shown(), Shown::Nothing);
        assert_eq!(reading("denied", None).shown(), Shown::Nothing);
        assert_eq!(Verdict::parse("ok"), Verdict::Ok);
        assert_eq!(
            Verdict::parse("has trigger \"a\n\u{1b}]0;x\u{7}\""),
            Verdict::Untrusted("has trigger \"a\\n\\u{1b}]0;x\\u{7}\"".into())
        );
        let Verdict::Untrusted(long) = Verdict::parse(&"x".repeat(100_000)) else {
            panic!("not untrusted");
        };
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 3);
        assert_eq!(
            Verdict::parse("is owned by x, neither a superuser nor y"),
            Verdict::Untrusted("is owned by x, neither a superuser nor y".into())
        );
    }

    #[test]
    fn bare_names_are_in_public() {
        assert_eq!(qualified("hb"), "public.hb");
        assert_eq!(qualified("ops.hb"), "ops.hb");
        assert_eq!(split("hb"), ("public".into(), "hb".into()));
        assert_eq!(split("ops.hb"), ("ops".into(), "hb".into()));
    }

    #[test]
    fn role_names_are_literals() {
        let roles = vec!["o'brien".to_string()];
        let sql = verdict_sql("public.hb", Owners::Named(&roles), true);
        assert!(sql.contains("o.rolname IN ('o''brien')"), "{sql}");
        let none = verdict_sql("public.hb", Owners::Named(&[]), true);
        assert!(none.contains("OR false)"), "{none}");
    }

    /// Standbys reading the heartbeat (one caught up, one with a row from
    /// the future), and the cluster's writer, as `/metrics` shows them.
    #[test]
    fn readings_and_the_writer_render_per_target_and_cluster() {
        use std::collections::BTreeMap;

        use crate::sources::testing::{render_up, sample};

        let standby = |table: &str, age: f64| {
            sample(serde_json::json!({
                "server": {"in_recovery": true, "version": "17.0", "now": 0.0},
                "heartbeat": {"table": table, "age": age}
            }))
        };
        let up = vec![
            ("s1".to_string(), standby("ok", 1.25), None),
            ("s2".to_string(), standby("ok", -30.0), None),
            ("s3".to_string(), standby("has rule r", 0.5), None),
        ];
        let writers = BTreeMap::from([(
            "main".to_string(),
            WriterStatus {
                refusing: false,
                last_success: Some(1_800_000_000.5),
            },
        )]);
        let text = render_up::<Reading>(up, writers);
        for line in [
            r#"pgrepl_heartbeat_lag_seconds{target="s1"} 1.25"#,
            r#"pgrepl_heartbeat_rejected{target="s2",reason="future"} 1.0"#,
            r#"pgrepl_heartbeat_rejected{target="s3",reason="untrusted_table"} 1.0"#,
            r#"pgrepl_heartbeat_writer_refusing{cluster="main"} 0.0"#,
            r#"pgrepl_heartbeat_writer_last_success_timestamp_seconds{cluster="main"} 1800000000.5"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert_eq!(text.matches("pgrepl_heartbeat_lag_seconds{").count(), 1);
    }
}
