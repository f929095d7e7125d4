//! The heartbeat writer (opt-in per cluster): every `interval`, one row per
//! cluster is upserted on the primary with the primary's clock and WAL
//! position. Standbys replay it like any other change, and their collection
//! reads its age (`crate::collector::heartbeat`).
//!
//! The writer has its own session, not the read-only monitoring pool, and
//! commits with `synchronous_commit = local` so it never waits for a missing
//! synchronous standby (the situation it must help detect).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::config::{HeartbeatConfig, Target};
use crate::dsn::Dsn;
use crate::error_chain;
use crate::pool::{self, Access};
use crate::role::Role;
use crate::snapshot::Store;
use crate::sql::literal;

pub const APPLICATION_NAME: &str = "pg_replication_exporter_heartbeat";

/// One cluster's writer.
pub struct Writer {
    cluster: String,
    config: HeartbeatConfig,
    members: Vec<Target>,
    store: Arc<Store>,
    /// The open session and the name of what it is connected to.
    session: Option<(String, tokio_postgres::Client)>,
    table_ready: bool,
    last_error: Option<String>,
}

impl Writer {
    pub fn new(
        cluster: String,
        config: HeartbeatConfig,
        members: Vec<Target>,
        store: Arc<Store>,
    ) -> Writer {
        Writer {
            cluster,
            config,
            members,
            store,
            session: None,
            table_ready: false,
            last_error: None,
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
                Err(_) => Err(format!("no answer within {deadline:?}")),
            };
            match outcome {
                Ok(()) => {
                    if self.last_error.take().is_some() {
                        tracing::info!(cluster = %self.cluster, "heartbeat writes again");
                    }
                }
                Err(message) => {
                    if self.last_error.as_deref() != Some(message.as_str()) {
                        tracing::warn!(cluster = %self.cluster, error = %message, "heartbeat not written");
                    }
                    self.last_error = Some(message);
                    self.session = None;
                    self.table_ready = false;
                }
            }
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

    async fn beat(&mut self) -> Result<(), String> {
        let Some((name, dsn)) = self.destination() else {
            return Ok(());
        };
        if self
            .session
            .as_ref()
            .is_none_or(|(n, c)| n != &name || c.is_closed())
        {
            let deadline = self.deadline();
            self.session = Some((name.clone(), connect(&dsn, deadline).await?));
            self.table_ready = false;
        }
        let Some((_, client)) = &self.session else {
            return Err("no session".into());
        };
        let table = &self.config.table;
        if !self.table_ready {
            let exists = client
                .simple_query(&format!(
                    "SELECT (to_regclass({}) IS NOT NULL)::text",
                    literal(table)
                ))
                .await
                .map_err(|e| error_chain::describe(&e))?;
            let exists = exists.iter().any(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    r.try_get(0).ok().flatten() == Some("true")
                }
                _ => false,
            });
            if !exists {
                if !self.config.create_table {
                    return Err(format!(
                        "table {table} does not exist on {name} and create_table is false; {}",
                        create_hint(table)
                    ));
                }
                client
                    .simple_query(&format!(
                        "CREATE TABLE IF NOT EXISTS {table} (cluster text PRIMARY KEY, \
                         ts timestamptz NOT NULL, lsn pg_lsn NOT NULL); \
                         GRANT SELECT ON {table} TO pg_monitor"
                    ))
                    .await
                    .map_err(|e| {
                        format!(
                            "cannot create {table} on {name}: {}; {}",
                            error_chain::describe(&e),
                            create_hint(table)
                        )
                    })?;
                tracing::info!(cluster = %self.cluster, %table, target = %name, "heartbeat table created");
            }
            self.table_ready = true;
        }
        client
            .simple_query(&format!(
                "INSERT INTO {table} (cluster, ts, lsn) VALUES ({}, now(), pg_current_wal_lsn()) \
                 ON CONFLICT (cluster) DO UPDATE SET ts = EXCLUDED.ts, lsn = EXCLUDED.lsn",
                literal(&self.cluster)
            ))
            .await
            .map_err(|e| format!("writing {table} on {name}: {}", error_chain::describe(&e)))?;
        Ok(())
    }
}

fn create_hint(table: &str) -> String {
    format!(
        "create it as its owner: CREATE TABLE {table} (cluster text PRIMARY KEY, ts timestamptz NOT NULL, \
         lsn pg_lsn NOT NULL); GRANT SELECT ON {table} TO pg_monitor; GRANT INSERT, UPDATE ON {table} TO <writer role>"
    )
}

async fn connect(dsn: &Dsn, deadline: Duration) -> Result<tokio_postgres::Client, String> {
    let mut config = pool::session_config(dsn, deadline, Access::HeartbeatWriter);
    config.application_name(APPLICATION_NAME);
    // Reading certificates (the whole system store for
    // `sslrootcert=system`) is blocking file I/O: off the runtime.
    let tls = dsn.tls.clone();
    let connector = tokio::task::spawn_blocking(move || crate::tls::connector(&tls))
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
