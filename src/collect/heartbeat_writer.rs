//! The heartbeat writer (opt-in per cluster): every `interval`, one row per
//! cluster is upserted on the primary with the primary's clock and WAL
//! position. Standbys replay it like any other change, and their collection
//! reads its age (`crate::sources::heartbeat`).
//!
//! The writer has its own session, not the read-only monitoring pool, and
//! commits with `synchronous_commit = local` so it never waits for a missing
//! synchronous standby (the situation it must help detect).
//!
//! **It writes only into a table it can trust.** An `INSERT` runs whatever
//! the table carries (triggers, rules, policies, defaults, constraints,
//! index expressions) with the writer's privileges, and a role that may
//! create in the table's schema (`public` before PostgreSQL 15) could have
//! created it first. So every beat takes the table's `ROW EXCLUSIVE` lock
//! (which `CREATE TRIGGER`, `CREATE RULE`, `ALTER TABLE` and
//! `DROP` wait for), asks the catalog whether the table is still one to
//! trust (`crate::sources::heartbeat::verdict_sql`: owned by a superuser or the
//! writer's own role, a plain logged table with exactly the heartbeat's
//! columns and nothing that runs code), and writes only then, in the same
//! transaction. Its session pins `search_path` to the system catalog and
//! every name in its SQL is schema-qualified. A refusal is logged once,
//! with its reason, and shown as `pgrepl_heartbeat_writer_refusing`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::collect::error_chain;
use crate::collect::pool::{self, Access};
use crate::config::dsn::Dsn;
use crate::config::{HeartbeatConfig, Target};
use crate::model::role::Role;
use crate::model::snapshot::{unix_now, Store};
use crate::sources::heartbeat::{self, Owners, Verdict, WriterStatus};
use crate::sources::sql::literal;

pub const APPLICATION_NAME: &str = "pg_replication_exporter_heartbeat";

/// One cluster's writer.
pub struct Writer {
    cluster: String,
    config: HeartbeatConfig,
    /// `config.table`, schema-qualified.
    table: String,
    members: Vec<Target>,
    store: Arc<Store>,
    session: Option<Session>,
    last_error: Option<String>,
    status: WriterStatus,
}

/// The open session: what it is connected to, and as whom.
struct Session {
    name: String,
    client: Client,
    /// `quote_ident(current_user)`, for the statements a DBA is shown.
    role: String,
}

/// A beat that did not write.
#[derive(Debug)]
struct Failure {
    message: String,
    /// Statements that make it work, run as a superuser.
    sql: Option<String>,
    /// The table is not trusted (`pgrepl_heartbeat_writer_refusing`).
    refused: bool,
    /// The session is clean (its transaction rolled back): keep it.
    keep_session: bool,
}

impl Failure {
    fn broken(message: String) -> Failure {
        Failure {
            message,
            sql: None,
            refused: false,
            keep_session: false,
        }
    }
}

enum Beat {
    Written,
    /// No single primary to write on.
    Skipped,
}

impl Writer {
    pub fn new(
        cluster: String,
        config: HeartbeatConfig,
        members: Vec<Target>,
        store: Arc<Store>,
    ) -> Writer {
        let table = heartbeat::qualified(&config.table);
        let status = WriterStatus::default();
        store.set_heartbeat_writer(&cluster, status);
        Writer {
            cluster,
            config,
            table,
            members,
            store,
            session: None,
            last_error: None,
            status,
        }
    }

    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => return,
            }
            let deadline = self.deadline();
            let outcome = match tokio::time::timeout(deadline, self.beat()).await {
                Ok(r) => r,
                Err(_) => Err(Failure::broken(format!("no answer within {deadline:?}"))),
            };
            match outcome {
                Ok(Beat::Written) => {
                    self.status = WriterStatus {
                        refusing: false,
                        last_success: Some(unix_now()),
                    };
                    if self.last_error.take().is_some() {
                        tracing::info!(cluster = %self.cluster, "heartbeat writes again");
                    }
                }
                Ok(Beat::Skipped) => {}
                Err(failure) => {
                    self.status.refusing = failure.refused;
                    if self.last_error.as_deref() != Some(failure.message.as_str()) {
                        match &failure.sql {
                            Some(sql) => tracing::warn!(cluster = %self.cluster,
                                error = %failure.message, %sql, "heartbeat not written"),
                            None => tracing::warn!(cluster = %self.cluster,
                                error = %failure.message, "heartbeat not written"),
                        }
                    }
                    self.last_error = Some(failure.message);
                    if !failure.keep_session {
                        self.session = None;
                    }
                }
            }
            // A writer being replaced (reload) publishes nothing more.
            if *stop.borrow() {
                return;
            }
            self.store.set_heartbeat_writer(&self.cluster, self.status);
        }
    }

    /// One beat, connection included, within the interval (at least 2 s);
    /// the session's server-side timeouts are derived from the same deadline.
    fn deadline(&self) -> Duration {
        self.config.interval.max(Duration::from_secs(2))
    }

    /// Where to write: the configured writer DSN, else the primary member.
    /// With no reachable primary, or several (split brain), the beat is
    /// skipped quietly: the cluster view and its alerts report those.
    fn destination(&self) -> Option<(String, Dsn)> {
        if let Some(dsn) = &self.config.writer {
            return Some(("heartbeat.dsn".to_string(), dsn.clone()));
        }
        let snapshots = self.store.all();
        let primaries: Vec<&Target> = self
            .members
            .iter()
            .filter(|t| {
                snapshots
                    .iter()
                    .any(|s| s.name == t.name && Role::of(s) == Role::Primary)
            })
            .collect();
        match primaries.as_slice() {
            [one] => Some((one.name.clone(), one.dsn.clone())),
            others => {
                tracing::debug!(cluster = %self.cluster, primaries = others.len(), "heartbeat skipped");
                None
            }
        }
    }

    /// One beat: a session to the primary, the table's verdict under its
    /// lock, then the row, in one transaction.
    async fn beat(&mut self) -> Result<Beat, Failure> {
        let Some((name, dsn)) = self.destination() else {
            return Ok(Beat::Skipped);
        };
        if self
            .session
            .as_ref()
            .is_none_or(|s| s.name != name || s.client.is_closed())
        {
            self.session = None;
            self.session = Some(self.open(&name, &dsn).await?);
        }
        let Some(session) = &self.session else {
            return Err(Failure::broken("no session".into()));
        };
        self.trusted(session, &name).await?;
        // The lock taken in `check` is still held: nothing can have been
        // added to the table since its verdict.
        let write = format!(
            "INSERT INTO {} AS h (cluster, ts, lsn) \
             VALUES ({}::pg_catalog.text, pg_catalog.now(), pg_catalog.pg_current_wal_lsn()) \
             ON CONFLICT (cluster) DO UPDATE SET ts = EXCLUDED.ts, lsn = EXCLUDED.lsn; COMMIT",
            self.table,
            literal(&self.cluster)
        );
        session.client.simple_query(&write).await.map_err(|e| {
            let denied = e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE);
            Failure {
                message: format!(
                    "writing {} on {name}: {}",
                    self.table,
                    error_chain::describe(&e)
                ),
                sql: denied.then(|| setup_sql(&self.table, &session.role)),
                refused: false,
                keep_session: false,
            }
        })?;
        Ok(Beat::Written)
    }

    /// A session to `name`, and the role it writes as.
    async fn open(&self, name: &str, dsn: &Dsn) -> Result<Session, Failure> {
        let client = connect(dsn, self.deadline())
            .await
            .map_err(Failure::broken)?;
        let role = first_column(
            &client
                .simple_query("SELECT pg_catalog.quote_ident(current_user)")
                .await
                .map_err(|e| Failure::broken(error_chain::describe(&e)))?,
        )
        .unwrap_or_default();
        Ok(Session {
            name: name.to_string(),
            client,
            role,
        })
    }

    /// Returns once the table is one to trust, its lock held in the open
    /// transaction; creates it first when it is missing and may be.
    async fn trusted(&self, session: &Session, name: &str) -> Result<(), Failure> {
        let mut created = false;
        loop {
            match self.check(session).await? {
                Verdict::Ok => return Ok(()),
                Verdict::Missing if self.config.create_table && !created => {
                    self.create(session).await?;
                    created = true;
                }
                Verdict::Missing => {
                    let why = if created {
                        "was dropped again right after it was created"
                    } else {
                        "does not exist and create_table is false"
                    };
                    return Err(Failure {
                        message: format!("table {} {why} on {name}", self.table),
                        sql: Some(setup_sql(&self.table, &session.role)),
                        refused: false,
                        keep_session: true,
                    });
                }
                Verdict::Untrusted(why) => {
                    return Err(Failure {
                        message: format!(
                            "the heartbeat writer refuses to write into {} on {name}: the table {why}. \
                             Whatever a table runs when a row goes in (triggers, rules, policies, \
                             defaults) runs with the writer's privileges, and its owner decides what \
                             the row says: as a superuser, inspect it, drop it, and create it with the \
                             statements in `sql`",
                            self.table
                        ),
                        sql: Some(setup_sql(&self.table, &session.role)),
                        refused: true,
                        keep_session: true,
                    });
                }
                // Only the reader asks whether it may read.
                Verdict::Denied => return Err(Failure::broken("unexpected verdict".into())),
            }
        }
    }

    /// Opens the beat's transaction, locks the table and returns its
    /// verdict; the transaction stays open only when the verdict is `ok`.
    async fn check(&self, session: &Session) -> Result<Verdict, Failure> {
        let table = &self.table;
        let verdict_sql = heartbeat::verdict_sql(table, Owners::CurrentUser, false);
        let locked = session
            .client
            .simple_query(&format!(
                "BEGIN; LOCK TABLE ONLY {table} IN ROW EXCLUSIVE MODE; {verdict_sql}"
            ))
            .await;
        let verdict = match locked {
            Ok(messages) => verdict_of(&messages),
            Err(lock_error) => {
                self.rollback(session).await?;
                // Missing, or something the lock refuses (a view, no
                // privilege): the verdict without the lock says which.
                let messages = session
                    .client
                    .simple_query(&verdict_sql)
                    .await
                    .map_err(|e| Failure::broken(error_chain::describe(&e)))?;
                let verdict = verdict_of(&messages);
                if verdict == Verdict::Ok {
                    let denied = lock_error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE);
                    return Err(Failure {
                        message: format!(
                            "locking {table} on {}: {}",
                            session.name,
                            error_chain::describe(&lock_error)
                        ),
                        sql: denied.then(|| setup_sql(table, &session.role)),
                        refused: false,
                        keep_session: true,
                    });
                }
                return Ok(verdict);
            }
        };
        if verdict != Verdict::Ok {
            self.rollback(session).await?;
        }
        Ok(verdict)
    }

    async fn rollback(&self, session: &Session) -> Result<(), Failure> {
        session
            .client
            .simple_query("ROLLBACK")
            .await
            .map(|_| ())
            .map_err(|e| Failure::broken(error_chain::describe(&e)))
    }

    /// Creates the table (the writer's role owns it: trusted) and lets
    /// `pg_monitor` read it. A table someone else created in between
    /// makes `CREATE TABLE` fail, and the next check judges that one.
    async fn create(&self, session: &Session) -> Result<(), Failure> {
        let table = &self.table;
        let created = session
            .client
            .simple_query(&format!(
                "CREATE TABLE {table} (cluster pg_catalog.text PRIMARY KEY, \
                 ts pg_catalog.timestamptz NOT NULL, lsn pg_catalog.pg_lsn NOT NULL); \
                 GRANT SELECT ON {table} TO pg_monitor"
            ))
            .await;
        match created {
            Ok(_) => {
                tracing::info!(cluster = %self.cluster, %table, target = %session.name,
                    "heartbeat table created");
                Ok(())
            }
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_TABLE) => Ok(()),
            Err(e) => Err(Failure {
                message: format!(
                    "cannot create {table} on {}: {}; a superuser can create it with the statements in `sql`",
                    session.name,
                    error_chain::describe(&e)
                ),
                sql: Some(setup_sql(table, &session.role)),
                refused: false,
                keep_session: true,
            }),
        }
    }
}

/// The statements that set the heartbeat table up for the writer role
/// `role` (an identifier, quoted as needed), to run as a superuser: the
/// table is then owned by a superuser, which the writer trusts, and the
/// writer gets what `INSERT ... ON CONFLICT DO UPDATE` needs (`SELECT`
/// too: the conflict is found by reading the table).
pub fn setup_sql(table: &str, role: &str) -> String {
    let (schema, _) = heartbeat::split(table);
    let usage = if schema == "public" {
        String::new()
    } else {
        format!("GRANT USAGE ON SCHEMA {schema} TO pg_monitor, {role}; ")
    };
    format!(
        "{usage}CREATE TABLE {table} (cluster text PRIMARY KEY, ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
         GRANT SELECT ON {table} TO pg_monitor; \
         GRANT SELECT, INSERT, UPDATE ON {table} TO {role};"
    )
}

/// The verdict in the answer of a statement ending with the verdict query.
fn verdict_of(messages: &[SimpleQueryMessage]) -> Verdict {
    Verdict::parse(first_column(messages).as_deref().unwrap_or("missing"))
}

fn first_column(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.try_get(0).ok().flatten().map(str::to_string),
        _ => None,
    })
}

async fn connect(dsn: &Dsn, deadline: Duration) -> Result<Client, String> {
    let mut config = pool::session_config(dsn, deadline, Access::HeartbeatWriter);
    config.application_name(APPLICATION_NAME);
    // Reading certificates (the whole system store for
    // `sslrootcert=system`) is blocking file I/O: off the runtime.
    let tls = dsn.tls.clone();
    let connector = tokio::task::spawn_blocking(move || crate::config::tls::connector(&tls))
        .await
        .map_err(|e| format!("loading TLS settings: {e}"))?
        .map_err(|e| e.to_string())?;
    let (client, connection) = config.connect(connector).await.map_err(|e| {
        format!(
            "connecting to {}: {}",
            dsn.endpoint(),
            error_chain::describe(&e)
        )
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::setup_sql;

    fn statements(sql: &str) -> Vec<String> {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
            .split(';')
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The README's setup is what the writer prints, plus the role: the
    /// two cannot drift apart.
    #[test]
    fn readme_setup_is_what_the_writer_prints() {
        for doc in ["README.md", "docs/es/README.md"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc);
            let text = std::fs::read_to_string(&path).expect("README");
            let at = text.find("(heartbeat-setup.sql,").expect("marker");
            let block = &text[at..];
            let start = block.find("```sql\n").expect("sql block") + 7;
            let end = start + block[start..].find("```").expect("closed");
            let mut readme = statements(&block[start..end]);
            assert_eq!(
                readme.remove(0),
                "CREATE ROLE heartbeat_writer LOGIN",
                "{doc}"
            );
            assert_eq!(
                readme,
                statements(&setup_sql("public.pgrepl_heartbeat", "heartbeat_writer")),
                "{doc}"
            );
        }
    }

    #[test]
    fn another_schema_needs_usage_on_it() {
        let sql = setup_sql("ops.hb", "\"Writer\"");
        assert!(
            sql.starts_with(
                "GRANT USAGE ON SCHEMA ops TO pg_monitor, \"Writer\"; CREATE TABLE ops.hb "
            ),
            "{sql}"
        );
        assert!(sql.ends_with("GRANT SELECT, INSERT, UPDATE ON ops.hb TO \"Writer\";"));
    }
}
