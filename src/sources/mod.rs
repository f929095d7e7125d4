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
pub mod basebackups;
pub mod heartbeat;
pub mod lsn;
pub mod privileges;
pub mod replication;
pub mod server;
pub mod settings;
pub mod slots;
pub mod sql;
pub mod sync_names;
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
    /// The cluster's heartbeat table exists, may be read and is trusted
    /// (asked only when the target reads a heartbeat; every collection
    /// checks it again, see `heartbeat::sql`).
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
    pub basebackups: Vec<basebackups::Progress>,
    /// Absent without `pg_read_all_stats`.
    #[serde(default)]
    pub activity: Option<activity::Activity>,
    /// The heartbeat table's verdict and the age of the row, as replayed here.
    #[serde(default)]
    pub heartbeat: Option<heartbeat::Reading>,
    /// The timeline the exporter last read on this same run of the server
    /// (same `system_identifier`, same postmaster start), set by the
    /// collection loop, never by the database: a standby's timeline does not
    /// go down within one run, so a lower reading is a stale source.
    #[serde(skip)]
    pub timeline_seen: Option<u32>,
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
    if let Some(sql) = basebackups::sql(caps) {
        parts.push(("basebackups", sql));
    }
    if let Some(sql) = activity::sql(caps) {
        parts.push(("activity", sql));
    }
    if let Some(read) = heartbeat {
        parts.push(("heartbeat", heartbeat::sql(read, caps.heartbeat_table)));
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
                .and_then(lsn::parse)
                .max(s.replay_lsn.as_deref().and_then(lsn::parse))
        } else {
            s.current_lsn.as_deref().and_then(lsn::parse)
        }
    }

    /// Current timeline. A primary's is the timeline it writes (its WAL
    /// file name). A standby's is what its WAL receiver streams while it
    /// streams; without a streaming receiver (upstream gone, cut off, fed
    /// from an archive) the highest of what the server holds: the newest
    /// timeline of the WAL segments in `pg_wal` (needs `pg_monitor`), the
    /// timelines of its last restartpoint and minimum recovery point (both
    /// lag: they move only when a restartpoint or a page flush happens) and
    /// what was already read on this run of the server ([`timeline_seen`]).
    /// Falling back to the restartpoint alone would report a standby that
    /// follows timeline 2 on timeline 1 once its upstream dies.
    ///
    /// [`timeline_seen`]: Sample::timeline_seen
    pub fn timeline(&self) -> Option<u32> {
        let s = &self.server;
        if !s.in_recovery {
            return s.primary_timeline.or(s.checkpoint_timeline);
        }
        let receiver = self.wal_receiver.as_ref();
        let received = receiver.and_then(|w| w.received_tli).filter(|t| *t > 0);
        if receiver.is_some_and(wal_receiver::WalReceiver::is_streaming) && received.is_some() {
            return received;
        }
        [
            received,
            s.checkpoint_timeline,
            s.min_recovery_timeline,
            self.waldir.as_ref().and_then(|w| w.timeline),
            self.timeline_seen,
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > 0)
        .max()
    }

    /// Which run of which server this sample comes from: a timeline read
    /// on one run bounds the next readings of the same run only.
    pub fn server_run(&self) -> (Option<&str>, Option<&str>) {
        (
            self.server.system_identifier.as_deref(),
            self.server.postmaster_start.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{capabilities_sql, parse_capabilities, Capabilities, Sample};

    /// A standby whose last restartpoint is on timeline 1 and whose pg_wal
    /// holds WAL of `waldir` (when readable), with this WAL receiver.
    fn standby(receiver: serde_json::Value, waldir: Option<u32>) -> Sample {
        serde_json::from_value(json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 0.0,
                       "checkpoint_timeline": 1, "min_recovery_timeline": 1},
            "wal_receiver": receiver,
            "waldir": waldir.map(|t| json!({"bytes": 1.0, "files": 1.0, "timeline": t})),
        }))
        .expect("a sample")
    }

    #[test]
    fn a_standby_without_a_streaming_receiver_keeps_the_timeline_it_follows() {
        let streaming = json!({"status": "streaming", "received_tli": 2});
        assert_eq!(standby(streaming.clone(), None).timeline(), Some(2));
        // A streaming receiver is believed even below pg_wal's newest WAL.
        let behind = json!({"status": "streaming", "received_tli": 2});
        assert_eq!(standby(behind, Some(3)).timeline(), Some(2));
        // Upstream gone: the WAL it holds says 2, the restartpoint 1.
        let mut s = standby(serde_json::Value::Null, Some(2));
        assert_eq!(s.timeline(), Some(2));
        // Without pg_monitor (no pg_wal listing), the timeline read before
        // on this run of the server.
        s.waldir = None;
        assert_eq!(s.timeline(), Some(1));
        s.timeline_seen = Some(2);
        assert_eq!(s.timeline(), Some(2));
        // A receiver that is not streaming still says what it received.
        let waiting = json!({"status": "waiting", "received_tli": 2});
        assert_eq!(standby(waiting, None).timeline(), Some(2));
    }

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
