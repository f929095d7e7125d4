//! One file per PostgreSQL source, and the list of them.
//!
//! A source is what one fragment of the collection statement reads: its SQL
//! (version-aware), the row it decodes into, and the metric families it
//! renders from it, with their descriptors (`crate::family`), in one file,
//! so that the origin of any `pgrepl_*` family is one file away. Its row
//! type implements [`Source`].
//!
//! The list at the end of this file (`sources! { key: Row; ... }`) is the
//! only other place a source is named. From its one line come:
//!
//! - the field `key` of [`Sample`], which is also the fragment's key in the
//!   JSON document the statement returns;
//! - the collection statement ([`build_query`]), `SELECT
//!   json_build_object('key', (fragment), ...)` in the order of the list:
//!   one statement, one round trip, one consistent snapshot of the server
//!   per cycle. Each fragment returns JSON, which lets the rows absorb
//!   columns that older versions lack (they decode as `None`, and the
//!   family is then absent);
//! - what it adds to the capability probe, if anything ([`capabilities_sql`]);
//! - the order of the exposition and of the generated metric reference
//!   (`docs/metrics.md`): [`render`] and [`sections`].
//!
//! So adding a source is a file beside this one (its row implementing
//! [`Source`], a unit test beside it) and its line in the list, with its
//! `mod` line next to the others: a module declared inside a macro would
//! escape rustfmt, and one left out of the list is reported unused by the
//! compiler.
//!
//! Rows are decoded once into numbers and enums ([`lsn::Lsn`], the states of
//! [`state`]); what is derived from them (lags per stage, retained WAL, the
//! replay delay) is a method on the row or on [`Sample`], which `/metrics`,
//! the cluster view, the topology API, the routing checks and `status` all
//! call.

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
pub mod state;
pub mod sync_names;
pub mod wal_receiver;
pub mod waldir;

#[cfg(test)]
pub mod testing;

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::family::{Family, Section};
use heartbeat::{HeartbeatRead, WriterStatus};
use lsn::Lsn;

/// What a source provides, implemented by its row type.
pub trait Source {
    /// What its fragment decodes into, as [`Sample`] holds it: one row, a
    /// list of rows, or a row that may be absent.
    type Rows: DeserializeOwned + Clone + fmt::Debug;

    /// The title of its section in the metric reference: English, Spanish.
    const TITLE: [&'static str; 2];

    /// Its families, in the order it renders them.
    const FAMILIES: &'static [Family];

    /// Its fragment of the collection statement for a server with these
    /// capabilities; `None` when it cannot be asked there (a view the
    /// version lacks, a function the role may not run): its families are
    /// then absent.
    fn sql(caps: &Capabilities, extra: Extra<'_>) -> Option<String>;

    /// A key and expression it adds to the capability probe, to learn once
    /// per connection what its fragment needs.
    fn probe(_extra: Extra<'_>) -> Option<(&'static str, String)> {
        None
    }

    /// Renders its families from the targets that answered.
    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result;
}

/// What a target asks of its server beyond what every target asks: the
/// heartbeat its cluster writes, when it has one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    pub heartbeat: Option<&'a HeartbeatRead>,
}

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
pub fn capabilities_sql(heartbeat: Option<&HeartbeatRead>) -> String {
    let mut sql = String::from(
        "SELECT json_build_object(\
         'version_num', current_setting('server_version_num')::int, \
         'ls_waldir', CASE WHEN to_regprocedure('pg_catalog.pg_ls_waldir()') IS NULL THEN false \
              ELSE has_function_privilege(to_regprocedure('pg_catalog.pg_ls_waldir()'), 'EXECUTE') END, \
         'ls_archive_status', CASE WHEN to_regprocedure('pg_catalog.pg_ls_archive_statusdir()') IS NULL THEN false \
              ELSE has_function_privilege(to_regprocedure('pg_catalog.pg_ls_archive_statusdir()'), 'EXECUTE') END, \
         'read_all_stats', pg_has_role('pg_read_all_stats', 'USAGE')",
    );
    for (key, probe) in probes(Extra { heartbeat }) {
        sql.push_str(&format!(", '{key}', {probe}"));
    }
    sql.push_str(")::text");
    sql
}

/// Reads the document [`capabilities_sql`] returns.
pub fn parse_capabilities(json: &str) -> Result<Capabilities, serde_json::Error> {
    serde_json::from_str(json)
}

/// The single collection statement for a server with these capabilities.
pub fn build_query(caps: &Capabilities, heartbeat: Option<&HeartbeatRead>) -> String {
    let body: Vec<String> = fragments(caps, Extra { heartbeat })
        .into_iter()
        .map(|(key, sql)| format!("'{key}', ({sql})"))
        .collect();
    format!("SELECT json_build_object({})::text", body.join(",\n"))
}

/// Reads the JSON document the collection statement returns.
pub fn parse(json: &str) -> Result<Sample, serde_json::Error> {
    serde_json::from_str(json)
}

/// What the sources render from: the targets that answered their last
/// collection (whether a target is up, stale or down is decided before, in
/// the snapshot and the view), and what the view judged across them.
#[derive(Debug, Clone, Copy)]
pub struct Scrape<'a> {
    pub up: &'a [Up<'a>],
    /// What each cluster's heartbeat writer last did (empty for `/probe`).
    pub heartbeat_writers: &'a BTreeMap<String, WriterStatus>,
}

/// A target that answered its last collection.
#[derive(Debug, Clone, Copy)]
pub struct Up<'a> {
    /// Its `target` label.
    pub target: &'a str,
    pub sample: &'a Sample,
    /// Its replay delay as the view computed it (against its cluster's
    /// primary when there is one, see [`Sample::replay_delay`]): one value
    /// for `/metrics`, `/probe`, the topology API, the routing checks and
    /// `status`.
    pub replay_delay: Option<f64>,
}

impl<'a> Scrape<'a> {
    /// The targets that answered, primaries and standbys.
    pub fn servers(&self) -> impl Iterator<Item = &'a Up<'a>> + 'a {
        self.up.iter()
    }

    /// The targets that answered as standbys (in recovery).
    pub fn standbys(&self) -> impl Iterator<Item = &'a Up<'a>> + 'a {
        self.up.iter().filter(|u| u.sample.server.in_recovery)
    }

    /// The targets that answered as primaries.
    pub fn primaries(&self) -> impl Iterator<Item = &'a Up<'a>> + 'a {
        self.up.iter().filter(|u| !u.sample.server.in_recovery)
    }
}

/// Values derived from several sources of one sample.
impl Sample {
    /// The position lags are measured against: the primary's current WAL
    /// position, or on a (cascading) standby what it has received (falling
    /// back to what it has replayed when it streams nothing).
    pub fn reference_lsn(&self) -> Option<Lsn> {
        let s = &self.server;
        if s.in_recovery {
            s.receive_lsn.max(s.replay_lsn)
        } else {
            s.current_lsn
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

/// Declares the list: the fields of [`Sample`], the statement's fragments
/// and probes, and the order of rendering and of the reference. The first
/// source is the server's own, required in every document: every other
/// one is judged against it (role, clock, WAL position).
macro_rules! sources {
    ($first:ident: $first_row:ty; $($key:ident: $row:ty),+ $(,)?) => {
        /// Everything one cycle read from one server: what each source's
        /// fragment returned, under its key.
        #[derive(Debug, Clone, Deserialize)]
        pub struct Sample {
            pub $first: <$first_row as Source>::Rows,
            $(
                #[serde(default)]
                pub $key: <$row as Source>::Rows,
            )+
            /// The timeline the exporter last read on this same run of the
            /// server (same `system_identifier`, same postmaster start), set
            /// by the collection loop, never by the database: a standby's
            /// timeline does not go down within one run, so a lower reading
            /// is a stale source.
            #[serde(skip)]
            pub timeline_seen: Option<u32>,
        }

        /// Each source's fragment for this server, in the order of the list.
        fn fragments(caps: &Capabilities, extra: Extra<'_>) -> Vec<(&'static str, String)> {
            let mut parts = Vec::new();
            if let Some(sql) = <$first_row as Source>::sql(caps, extra) {
                parts.push((stringify!($first), sql));
            }
            $(
                if let Some(sql) = <$row as Source>::sql(caps, extra) {
                    parts.push((stringify!($key), sql));
                }
            )+
            parts
        }

        /// What the sources add to the capability probe.
        fn probes(extra: Extra<'_>) -> Vec<(&'static str, String)> {
            let mut probes: Vec<(&'static str, String)> = Vec::new();
            probes.extend(<$first_row as Source>::probe(extra));
            $( probes.extend(<$row as Source>::probe(extra)); )+
            probes
        }

        /// Each source's section of the metric reference, in the order of
        /// the exposition.
        pub fn sections() -> Vec<Section> {
            vec![
                Section::new(
                    concat!("sources::", stringify!($first)),
                    <$first_row as Source>::TITLE,
                    <$first_row as Source>::FAMILIES,
                ),
                $(
                    Section::new(
                        concat!("sources::", stringify!($key)),
                        <$row as Source>::TITLE,
                        <$row as Source>::FAMILIES,
                    ),
                )+
            ]
        }

        /// Renders every source's families, in the order of the list.
        pub fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
            <$first_row as Source>::render(scrape, enc)?;
            $( <$row as Source>::render(scrape, enc)?; )+
            Ok(())
        }
    };
}

sources! {
    server: server::Server;
    replication: replication::Walsender,
    slots: slots::ReplicationSlot,
    wal_receiver: wal_receiver::WalReceiver,
    archiver: archiver::Archiver,
    waldir: waldir::WalDir,
    settings: settings::Settings,
    basebackups: basebackups::BaseBackup,
    heartbeat: heartbeat::Reading,
    activity: activity::Activity,
    privileges: privileges::Privileges,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{capabilities_sql, parse_capabilities, sections, Capabilities, Sample};

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

    /// The list names each source's module (the reference links it) and
    /// gives each a title in both languages.
    #[test]
    fn every_source_has_a_section() {
        for s in sections() {
            let file = format!("src/{}.rs", s.module.replace("::", "/"));
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&file);
            assert!(path.is_file(), "{file}");
            assert!(!s.title.is_empty() && !s.title_es.is_empty(), "{file}");
            assert!(!s.families.is_empty(), "{file}");
        }
    }
}
