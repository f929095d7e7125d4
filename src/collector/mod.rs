//! One module per PostgreSQL source. Each holds, in one place, the SQL it
//! runs (version-aware), the row it reads back and the metric families it
//! renders, so the origin of any `pgrepl_*` family is one file away.
//!
//! The collection query is assembled from every module's fragment into a
//! single `SELECT json_build_object(...)`: one statement, one round trip,
//! one consistent snapshot of the server per cycle. Each fragment returns
//! JSON, which lets the row types absorb columns that older versions lack
//! (they deserialize as `None` and the family is then absent).

pub mod activity;
pub mod archiver;
pub mod basebackup;
pub mod heartbeat;
pub mod privileges;
pub mod replication;
pub mod server;
pub mod settings;
pub mod slots;
pub mod wal_receiver;
pub mod waldir;

use serde::Deserialize;

/// What the connected server can answer, learned once per connection epoch
/// (first cycle, and again after any failure) so that the steady state is a
/// single statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Capabilities {
    /// `server_version_num`, e.g. 150004.
    pub version_num: u32,
    /// `pg_ls_waldir()` is allowed (superuser or `pg_monitor`).
    pub ls_waldir: bool,
    /// `pg_ls_archive_statusdir()` exists (12+) and is allowed.
    pub ls_archive_status: bool,
    /// The cluster's heartbeat table exists and may be read (asked only
    /// when the target reads a heartbeat).
    #[serde(default)]
    pub heartbeat_table: bool,
    /// Other sessions' wait events are visible (`pg_read_all_stats`,
    /// part of `pg_monitor`, or superuser).
    pub read_all_stats: bool,
}

impl Capabilities {
    pub fn at_least(&self, major: u32) -> bool {
        self.version_num >= major * 10000
    }
}

/// Asked once per connection epoch; written to work on every version from
/// 10. Like the collection statement it answers one JSON document, read by
/// key into [`Capabilities`].
pub fn capabilities_sql(heartbeat: Option<&heartbeat::HeartbeatRead>) -> String {
    let mut sql = String::from(
        "SELECT json_build_object(\
         'version_num', current_setting('server_version_num')::int, \
         'ls_waldir', CASE WHEN to_regprocedure('pg_catalog.pg_ls_waldir()') IS NULL THEN false \
              ELSE has_function_privilege(to_regprocedure('pg_catalog.pg_ls_waldir()'), 'EXECUTE') END, \
         'ls_archive_status', CASE WHEN to_regprocedure('pg_catalog.pg_ls_archive_statusdir()') IS NULL THEN false \
              ELSE has_function_privilege(to_regprocedure('pg_catalog.pg_ls_archive_statusdir()'), 'EXECUTE') END, \
         'read_all_stats', pg_has_role('pg_read_all_stats', 'USAGE')",
    );
    if let Some(read) = heartbeat {
        sql.push_str(", 'heartbeat_table', ");
        sql.push_str(&heartbeat::probe_sql(read));
    }
    sql.push_str(")::text");
    sql
}

/// Reads the document [`capabilities_sql`] returns.
pub fn parse_capabilities(json: &str) -> Result<Capabilities, serde_json::Error> {
    serde_json::from_str(json)
}

/// A target that answered its last collection: its name and what it read.
/// The renderers of this module see nothing else: whether a target is up,
/// stale or down is decided before, in the snapshot and the view.
pub type Up<'a> = (&'a str, &'a Sample);

/// Everything one cycle read from one server.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub server: server::Server,
    #[serde(default)]
    pub replication: Vec<replication::Walsender>,
    #[serde(default)]
    pub slots: Vec<slots::ReplicationSlot>,
    #[serde(default)]
    pub wal_receiver: Option<wal_receiver::WalReceiver>,
    #[serde(default)]
    pub archiver: Option<archiver::Archiver>,
    #[serde(default)]
    pub waldir: Option<waldir::WalDir>,
    #[serde(default)]
    pub settings: settings::Settings,
    #[serde(default)]
    pub basebackups: Vec<basebackup::Progress>,
    /// Absent without `pg_read_all_stats`.
    #[serde(default)]
    pub activity: Option<activity::Activity>,
    /// Seconds since the heartbeat row was written, as replayed here.
    #[serde(default)]
    pub heartbeat: Option<f64>,
    /// What the monitoring role may read (absent from samples recorded
    /// before it was asked).
    #[serde(default)]
    pub privileges: Option<privileges::Privileges>,
}

/// The single collection statement for a server with these capabilities.
pub fn build_query(caps: &Capabilities, heartbeat: Option<&heartbeat::HeartbeatRead>) -> String {
    let mut parts: Vec<(&str, String)> = vec![
        ("server", server::sql(caps)),
        ("replication", replication::sql(caps)),
        ("slots", slots::sql(caps)),
        ("wal_receiver", wal_receiver::sql(caps)),
        ("archiver", archiver::sql(caps)),
        ("settings", settings::sql(caps)),
        ("privileges", privileges::sql(caps)),
    ];
    if let Some(sql) = waldir::sql(caps) {
        parts.push(("waldir", sql));
    }
    if let Some(sql) = basebackup::sql(caps) {
        parts.push(("basebackups", sql));
    }
    if let Some(sql) = activity::sql(caps) {
        parts.push(("activity", sql));
    }
    if let Some(read) = heartbeat.filter(|_| caps.heartbeat_table) {
        parts.push(("heartbeat", heartbeat::sql(read)));
    }
    let body: Vec<String> = parts
        .into_iter()
        .map(|(key, sql)| format!("'{key}', ({sql})"))
        .collect();
    format!("SELECT json_build_object({})::text", body.join(",\n"))
}

/// Reads the JSON document the collection statement returns.
pub fn parse(json: &str) -> Result<Sample, serde_json::Error> {
    serde_json::from_str(json)
}

/// Values the renderer derives from a sample and needs in several modules.
impl Sample {
    /// The position lags are measured against: the primary's current WAL
    /// position, or on a (cascading) standby what it has received (falling
    /// back to what it has replayed when it streams nothing).
    pub fn reference_lsn(&self) -> Option<u64> {
        let s = &self.server;
        if s.in_recovery {
            s.receive_lsn
                .as_deref()
                .and_then(crate::lsn::parse)
                .max(s.replay_lsn.as_deref().and_then(crate::lsn::parse))
        } else {
            s.current_lsn.as_deref().and_then(crate::lsn::parse)
        }
    }

    /// Current timeline: the primary's WAL file timeline, or what a standby
    /// receives (its last restartpoint's timeline when it receives nothing).
    pub fn timeline(&self) -> Option<u32> {
        let s = &self.server;
        if s.in_recovery {
            self.wal_receiver
                .as_ref()
                .and_then(|w| w.received_tli)
                .filter(|t| *t > 0)
                .or(s.checkpoint_timeline)
        } else {
            s.primary_timeline.or(s.checkpoint_timeline)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{capabilities_sql, parse_capabilities, Capabilities};

    #[test]
    fn capabilities_are_read_by_key() {
        // Keys in another order than the struct's, as json_build_object
        // may send them: nothing depends on position.
        let caps = parse_capabilities(
            r#"{"read_all_stats": true, "ls_archive_status": false,
                "ls_waldir": true, "version_num": 100023}"#,
        )
        .expect("capabilities");
        assert_eq!(
            caps,
            Capabilities {
                version_num: 100023,
                ls_waldir: true,
                ls_archive_status: false,
                heartbeat_table: false,
                read_all_stats: true,
            }
        );
        assert!(caps.at_least(10) && !caps.at_least(11));
        // Every key the statement asks for is a field.
        for key in [
            "version_num",
            "ls_waldir",
            "ls_archive_status",
            "read_all_stats",
        ] {
            assert!(
                capabilities_sql(None).contains(&format!("'{key}'")),
                "{key}"
            );
        }
    }
}
