//! The heartbeat table as an attacker and a tired DBA meet it: a table
//! planted by a role that may create in its schema, a trigger added to a
//! trusted table later, a heartbeat from the future, the statements the
//! writer prints and the README's setup run literally, and how soon a table
//! created later is read.
//!
//! Real PostgreSQL (the newest installed major, 15 on Debian 12), where a
//! role may be allowed to create in `public` the way every role may before
//! PostgreSQL 15.

use crate::harness as common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, Pair, Pg};

const WAIT: Duration = Duration::from_secs(30);

fn lag(m: &Metrics) -> Option<f64> {
    m.get("pgrepl_heartbeat_lag_seconds", &[("target", "standby1")])
}

fn rejected(m: &Metrics, reason: &str) -> Option<f64> {
    m.get(
        "pgrepl_heartbeat_rejected",
        &[("target", "standby1"), ("reason", reason)],
    )
}

fn writer_refusing(m: &Metrics) -> Option<f64> {
    m.get("pgrepl_heartbeat_writer_refusing", &[("cluster", "main")])
}

fn targets(pair: &Pair) -> Vec<(&'static str, String)> {
    vec![
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]
}

/// Waits until the writer's session has finished `beats` more statements
/// (`state_change` of its backend), so that "never" below covers beats that
/// really happened, not a guess at how long they take.
fn wait_beats(primary: &Pg, beats: usize) {
    let mut seen = BTreeSet::new();
    let ok = common::wait_until(WAIT, || {
        if let Ok(v) = primary.try_psql(
            "SELECT coalesce(max(state_change)::text, '') FROM pg_stat_activity \
             WHERE application_name = 'pg_replication_exporter_heartbeat'",
        ) {
            if !v.is_empty() {
                seen.insert(v);
            }
        }
        seen.len() > beats
    });
    assert!(ok, "the heartbeat writer did not run {beats} beats");
}

/// A role that may create in `public` (as every role may before 15) plants
/// the table with a trigger that would make it superuser and write a
/// heartbeat an hour in the future. The writer refuses with one clear log
/// line, the role never becomes superuser, and the standby never reads 0.
#[test]
fn planted_table_is_refused_and_nobody_gains_privileges() {
    let pair = Pair::start("hbhijack");
    pair.primary.psql(
        "CREATE ROLE attacker; GRANT CREATE ON SCHEMA public TO attacker; \
         SET ROLE attacker; \
         CREATE TABLE public.pgrepl_heartbeat (cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         INSERT INTO public.pgrepl_heartbeat VALUES ('main', now() + interval '1 hour', '0/0'); \
         CREATE FUNCTION public.hb_escalate() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN \
           BEGIN EXECUTE 'ALTER ROLE attacker SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END; \
           NEW.ts := now() + interval '1 hour'; RETURN NEW; \
         END $$; \
         CREATE TRIGGER hb_escalate BEFORE INSERT OR UPDATE ON public.pgrepl_heartbeat \
           FOR EACH ROW EXECUTE FUNCTION public.hb_escalate(); \
         GRANT SELECT ON public.pgrepl_heartbeat TO pg_monitor; \
         GRANT INSERT, UPDATE ON public.pgrepl_heartbeat TO PUBLIC",
    );
    // The writer as a superuser: the worst case, what the trigger wants.
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    let m = exporter.wait_for("the refusal on both sides", WAIT, |m| {
        writer_refusing(m) == Some(1.0) && rejected(m, "untrusted_table") == Some(1.0)
    });
    assert_eq!(lag(&m), None, "a planted table gives no lag");
    wait_beats(&pair.primary, 3);
    assert_eq!(
        pair.primary
            .psql("SELECT rolsuper FROM pg_roles WHERE rolname = 'attacker'"),
        "f",
        "the planted trigger ran as the writer:\n{}",
        exporter.log_text()
    );
    // The row is still the attacker's: the writer never touched it.
    assert_eq!(
        pair.primary
            .psql("SELECT ts > now() + interval '50 minutes' FROM public.pgrepl_heartbeat"),
        "t"
    );
    let m = exporter.metrics();
    assert_eq!(lag(&m), None, "the future heartbeat read as a lag");
    assert_eq!(writer_refusing(&m), Some(1.0));
    let log = exporter.log_text();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refuses to write"))
        .collect();
    assert_eq!(refusals.len(), 1, "one line, not one per beat:\n{log}");
    assert!(
        refusals[0].contains("owned by attacker")
            && refusals[0].contains("public.pgrepl_heartbeat"),
        "{}",
        refusals[0]
    );
}

/// A heartbeat from the future in a table the exporter trusts (clocks
/// apart, or a row written by hand): never a healthy 0, but absent and
/// flagged.
#[test]
fn heartbeat_from_the_future_is_never_zero() {
    let pair = Pair::start("hbfuture");
    pair.primary.psql(
        "CREATE TABLE public.pgrepl_heartbeat (cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         GRANT SELECT ON public.pgrepl_heartbeat TO pg_monitor; \
         INSERT INTO public.pgrepl_heartbeat VALUES ('main', now() + interval '1 hour', pg_current_wal_lsn())",
    );
    // No writer can reach its server (a closed port): the row stays as written.
    let closed = common::free_port();
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\n\
             dsn = \"host=127.0.0.1 port={closed} user=postgres sslmode=disable\"\n"
        ),
        &[],
    );
    let m = exporter.wait_for("the future flagged", WAIT, |m| {
        rejected(m, "future") == Some(1.0)
    });
    assert_eq!(lag(&m), None, "{}", m.text);
    // A heartbeat within the clock-skew tolerance is a lag of 0; an honest
    // one in the past is its age.
    pair.primary
        .psql("UPDATE public.pgrepl_heartbeat SET ts = now() - interval '5 seconds'");
    let m = exporter.wait_for("the lag back", WAIT, |m| lag(m).is_some());
    let v = lag(&m).unwrap();
    assert!((5.0..15.0).contains(&v), "lag {v}");
    assert_eq!(rejected(&m, "future"), None);
}

/// A table the writer trusted gets a trigger later (a DBA's audit trigger,
/// or a role with TRIGGER privilege): the writer stops at the next beat,
/// the trigger never runs as the writer, and both sides say so.
#[test]
fn trigger_added_later_stops_the_writer() {
    let pair = Pair::start("hbtrigger");
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    let m = exporter.wait_for("heartbeat read", WAIT, |m| lag(m).is_some_and(|v| v < 3.0));
    assert_eq!(writer_refusing(&m), Some(0.0));
    pair.primary.psql(
        "CREATE TABLE public.hb_fired (at timestamptz); \
         CREATE FUNCTION public.hb_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO public.hb_fired VALUES (now()); RETURN NEW; END $$; \
         CREATE TRIGGER hb_audit BEFORE INSERT OR UPDATE ON public.pgrepl_heartbeat \
           FOR EACH ROW EXECUTE FUNCTION public.hb_audit()",
    );
    let last_write = |m: &Metrics| {
        m.get(
            "pgrepl_heartbeat_writer_last_success_timestamp_seconds",
            &[("cluster", "main")],
        )
    };
    // The standby stops reading it too: a heartbeat nobody writes any more
    // is no replication delay; it is flagged, never shown as 0.
    let m = exporter.wait_for("the writer refuses", WAIT, |m| {
        writer_refusing(m) == Some(1.0) && rejected(m, "untrusted_table") == Some(1.0)
    });
    assert_eq!(lag(&m), None);
    let stopped_at = last_write(&m);
    assert!(stopped_at.is_some());
    wait_beats(&pair.primary, 3);
    assert_eq!(
        pair.primary.psql("SELECT count(*) FROM public.hb_fired"),
        "0",
        "the trigger ran as the writer"
    );
    let m = exporter.metrics();
    assert_eq!(last_write(&m), stopped_at, "written despite the trigger");
    assert_eq!(lag(&m), None);
    let log = exporter.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("refuses to write") && l.contains("trigger hb_audit")),
        "{log}"
    );
    // The trigger gone, the writer writes again by itself.
    pair.primary
        .psql("DROP TRIGGER hb_audit ON public.pgrepl_heartbeat");
    exporter.wait_for("writing again", WAIT, |m| {
        writer_refusing(m) == Some(0.0) && lag(m).is_some_and(|v| v < 3.0)
    });
}

/// The SQL the writer logged for a missing table, as a JSON log line holds
/// it (its `sql` field; before that field existed, the `CREATE TABLE ...`
/// tail of its error).
fn logged_sql(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if let Some(sql) = v.get("sql").and_then(|s| s.as_str()) {
            return Some(sql.to_string());
        }
        let error = v.get("error")?.as_str()?;
        let at = error.find("CREATE TABLE")?;
        Some(error[at..].to_string())
    })
}

/// A writer role that may not create in `public` (the default from 15 on),
/// with `create_table` left on: the statements it logs, run exactly as
/// logged by a superuser, make the heartbeat work.
#[test]
fn logged_statements_run_literally_make_the_heartbeat_work() {
    let pair = Pair::start("hbprinted");
    pair.primary.psql("CREATE ROLE hb_writer LOGIN");
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\n\
             dsn = \"host=127.0.0.1 port={} user=hb_writer dbname=postgres sslmode=disable\"\n",
            pair.primary.port
        ),
        &["--log.format", "json"],
    );
    let mut sql = None;
    assert!(
        common::wait_until(WAIT, || {
            sql = logged_sql(&exporter.log_text());
            sql.is_some()
        }),
        "no statements logged:\n{}",
        exporter.log_text()
    );
    let sql = sql.unwrap();
    pair.primary
        .try_psql(&sql)
        .unwrap_or_else(|e| panic!("the logged statements fail: {sql}\n{e}"));
    let m = exporter.wait_for("heartbeat read", WAIT, |m| lag(m).is_some());
    let v = lag(&m).unwrap();
    assert!((0.0..5.0).contains(&v), "lag {v}");
    assert_eq!(writer_refusing(&m), Some(0.0));
    assert!(m.has(
        "pgrepl_heartbeat_writer_last_success_timestamp_seconds",
        &[("cluster", "main")]
    ));
    // And it goes on writing.
    exporter.wait_for("the row keeps being written", WAIT, |_| {
        pair.primary
            .try_psql("SELECT now() - ts < interval '3 seconds' FROM public.pgrepl_heartbeat WHERE cluster = 'main'")
            .is_ok_and(|v| v == "t")
    });
}

/// The fenced block that follows `marker` in a Markdown document.
fn block_after(markdown: &str, marker: &str) -> String {
    let at = markdown
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker} missing"));
    let rest = &markdown[at..];
    let open = rest.find("```").expect("no fenced block after the marker");
    let body_start = open + rest[open..].find('\n').expect("fence line") + 1;
    let close = rest[body_start..].find("```").expect("unclosed block");
    rest[body_start..body_start + close].to_string()
}

/// SQL without `--` comments and blank lines, for comparing translations.
fn statements(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or("").trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The README's heartbeat setup, its SQL block run literally as the
/// superuser, its role in the writer's DSN: the standby reads the lag. The
/// Spanish README carries the same statements.
#[test]
fn readme_heartbeat_setup_works_as_written() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let en = std::fs::read_to_string(root.join("README.md")).unwrap();
    let es = std::fs::read_to_string(root.join("docs/es/README.md")).unwrap();
    let marker = "(heartbeat-setup.sql,";
    let sql = block_after(&en, marker);
    assert_eq!(
        statements(&sql),
        statements(&block_after(&es, marker)),
        "the Spanish README's heartbeat SQL differs"
    );
    let role = sql
        .split("CREATE ROLE ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the block creates the writer role")
        .trim_end_matches(';')
        .to_string();
    assert!(!role.starts_with("pg_"), "{role} is a reserved name");
    let toml = block_after(&en, "<!-- heartbeat-setup.toml -->");
    assert!(
        toml.contains(&format!("user={role} ")),
        "the README's configuration does not use {role}:\n{toml}"
    );

    let pair = Pair::start("hbreadme");
    pair.primary
        .try_psql(&sql)
        .unwrap_or_else(|e| panic!("the README's SQL fails:\n{sql}\n{e}"));
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\n\
             dsn = \"host=127.0.0.1 port={} user={role} dbname=postgres sslmode=disable\"\n",
            pair.primary.port
        ),
        &[],
    );
    let m = exporter.wait_for("heartbeat read", WAIT, |m| lag(m).is_some());
    let v = lag(&m).unwrap();
    assert!((0.0..5.0).contains(&v), "lag {v}");
    assert_eq!(writer_refusing(&m), Some(0.0));
    assert!(
        !exporter.log_text().contains("heartbeat not written"),
        "{}",
        exporter.log_text()
    );
}

/// A table created while the exporter runs is read within two collections
/// (the first sees it, the next reads it), not after ten of them (ten hours
/// at `collect_interval = "1h"`).
#[test]
fn table_created_later_is_read_within_two_collections() {
    let pair = Pair::start("hblater");
    let interval = 3;
    let exporter = Exporter::start_with(
        &targets(&pair),
        &format!(
            "collect_interval = \"{interval}s\"\ncollect_timeout = \"800ms\"\n\
             [clusters.main.heartbeat]\ninterval = \"1s\"\ncreate_table = false\ndsn = \"{}\"\n",
            pair.primary.superuser_dsn()
        ),
        &[],
    );
    // Two collections without the table.
    exporter.wait_for("the standby collected", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
    });
    let success = |m: &Metrics| {
        m.get(
            "pgrepl_last_collect_success_timestamp_seconds",
            &[("target", "standby1")],
        )
    };
    let first = success(&exporter.metrics());
    exporter.wait_for("another collection", WAIT, |m| success(m) > first);
    assert_eq!(lag(&exporter.metrics()), None);
    pair.primary.psql(
        "CREATE TABLE public.pgrepl_heartbeat (cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         GRANT SELECT ON public.pgrepl_heartbeat TO pg_monitor",
    );
    let created = Instant::now();
    let bound = Duration::from_secs(2 * interval + 6);
    let m = exporter.wait_for("the lag within two collections", bound, |m| {
        lag(m).is_some()
    });
    let v = lag(&m).unwrap();
    assert!((0.0..3.0).contains(&v), "lag {v}");
    eprintln!(
        "lag read {:?} after the table was created",
        created.elapsed()
    );
}

/// The verdict on a real server, for a table of every kind the writer and
/// the reader must refuse, and the one they accept: what the log line says.
#[test]
fn verdict_names_what_makes_a_table_untrusted() {
    use pg_replication_exporter::testing::sources::heartbeat::{verdict_sql, Owners};
    let scratch = common::Scratch::new("hbverdict");
    let pg = common::init_primary(&scratch.path, "primary", "");
    const COLUMNS: &str =
        "(cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL)";
    pg.psql(&format!(
        "CREATE ROLE someone; CREATE ROLE hbw; \
         CREATE TABLE public.hb_ok {COLUMNS}; GRANT SELECT ON public.hb_ok TO pg_monitor; \
         CREATE TABLE public.hb_private {COLUMNS}; \
         CREATE VIEW public.hb_view AS SELECT * FROM public.hb_ok; \
         CREATE MATERIALIZED VIEW public.hb_mview AS SELECT * FROM public.hb_ok; \
         CREATE TABLE public.hb_parted (cluster text, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL) PARTITION BY LIST (cluster); \
         CREATE TABLE public.hb_part PARTITION OF public.hb_parted FOR VALUES IN ('main'); \
         CREATE UNLOGGED TABLE public.hb_unlogged {COLUMNS}; \
         CREATE TABLE public.hb_theirs {COLUMNS}; ALTER TABLE public.hb_theirs OWNER TO someone; \
         CREATE TABLE public.hb_mine {COLUMNS}; ALTER TABLE public.hb_mine OWNER TO hbw; \
         CREATE TABLE public.hb_trigger {COLUMNS}; \
         CREATE FUNCTION public.hb_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; \
         CREATE TRIGGER \"Odd; name\" BEFORE UPDATE ON public.hb_trigger FOR EACH ROW EXECUTE FUNCTION public.hb_noop(); \
         CREATE TABLE public.hb_clusters (name text PRIMARY KEY); \
         CREATE TABLE public.hb_fk (cluster text PRIMARY KEY REFERENCES public.hb_clusters, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         CREATE TABLE public.hb_rule {COLUMNS}; CREATE RULE hb_r AS ON INSERT TO public.hb_rule DO ALSO NOTHING; \
         CREATE TABLE public.hb_rls {COLUMNS}; ALTER TABLE public.hb_rls ENABLE ROW LEVEL SECURITY; \
         CREATE TABLE public.hb_extra (cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL, note text); \
         CREATE TABLE public.hb_type (cluster text PRIMARY KEY, ts timestamp NOT NULL, lsn pg_lsn NOT NULL); \
         CREATE DOMAIN public.hb_ts AS timestamptz CHECK (VALUE > '2000-01-01'); \
         CREATE TABLE public.hb_domain (cluster text PRIMARY KEY, ts public.hb_ts NOT NULL, lsn pg_lsn NOT NULL); \
         CREATE TABLE public.hb_default (cluster text PRIMARY KEY, ts timestamptz NOT NULL DEFAULT now(), lsn pg_lsn NOT NULL); \
         CREATE TABLE public.hb_check (cluster text PRIMARY KEY, ts timestamptz NOT NULL CHECK (ts > '2000-01-01'), lsn pg_lsn NOT NULL); \
         CREATE TABLE public.hb_expr {COLUMNS}; CREATE INDEX ON public.hb_expr (lower(cluster)); \
         CREATE TABLE public.hb_partial {COLUMNS}; CREATE INDEX ON public.hb_partial (ts) WHERE ts > '2000-01-01'; \
         CREATE TABLE public.hb_excl (cluster text, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL, EXCLUDE USING btree (cluster WITH =)); \
         CREATE TABLE public.hb_dropped (cluster text PRIMARY KEY, junk int, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         ALTER TABLE public.hb_dropped DROP COLUMN junk"
    ));
    let writers = vec!["hbw".to_string()];
    let read = |table: &str| pg.psql(&verdict_sql(table, Owners::Named(&writers), true));
    let cases: &[(&str, &str)] = &[
        ("public.hb_ok", "ok"),
        ("hb_ok", "ok"),
        ("public.hb_dropped", "ok"),
        ("public.hb_mine", "ok"),
        ("public.hb_nothing", "missing"),
        ("nowhere.hb_ok", "missing"),
        ("public.hb_view", "is a view, not a table"),
        ("public.hb_mview", "is a materialized view, not a table"),
        ("public.hb_parted", "is a partitioned table, not a table"),
        ("public.hb_part", "is a partition of another table"),
        ("public.hb_unlogged", "is unlogged or temporary"),
        (
            "public.hb_theirs",
            "is owned by someone, neither a superuser nor a role the writer connects as (hbw)",
        ),
        ("public.hb_trigger", "has trigger \"Odd; name\""),
        ("public.hb_fk", "has trigger \"RI_ConstraintTrigger_c_"),
        // Referenced by another table's foreign key: its triggers too.
        ("public.hb_clusters", "has trigger \"RI_ConstraintTrigger_a_"),
        ("public.hb_rule", "has rule hb_r"),
        ("public.hb_rls", "has row-level security"),
        (
            "public.hb_extra",
            "has columns (cluster text, ts timestamp with time zone, lsn pg_lsn, note text), not (cluster text, ts timestamp with time zone, lsn pg_lsn)",
        ),
        ("public.hb_type", "ts timestamp without time zone"),
        ("public.hb_domain", "ts hb_ts"),
        ("public.hb_default", "has a column default or a generated column"),
        ("public.hb_check", "has a check constraint"),
        ("public.hb_expr", "has an index on an expression"),
        ("public.hb_partial", "has an index on an expression"),
        ("public.hb_excl", "has an index on an expression"),
    ];
    let mut wrong = Vec::new();
    for (table, expected) in cases {
        let got = read(table);
        if !got.contains(expected) {
            wrong.push(format!("{table}: {got:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The monitoring role may not read a table without the grant.
    let as_monitor = |table: &str| {
        pg.psql(&format!(
            "SET ROLE monitor; {}",
            verdict_sql(table, Owners::Named(&writers), true)
        ))
    };
    assert_eq!(as_monitor("public.hb_private"), "denied");
    assert_eq!(as_monitor("public.hb_ok"), "ok");
    // The writer trusts its own role's tables and superusers', no others.
    let as_writer = |table: &str| {
        pg.psql(&format!(
            "SET ROLE hbw; {}",
            verdict_sql(table, Owners::CurrentUser, false)
        ))
    };
    assert_eq!(as_writer("public.hb_mine"), "ok");
    assert_eq!(as_writer("public.hb_ok"), "ok");
    assert_eq!(
        as_writer("public.hb_theirs"),
        "is owned by someone, neither a superuser nor the writer's role hbw"
    );
}
