//! Servers started together: a primary and one standby ([`Pair`]), a
//! primary with standbys and cascades ([`Topology`]), and a PostgreSQL 17
//! pair with a failover logical slot synchronized to the standby.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A primary and one streaming standby (`standby1`, slot `standby1_slot`).
/// Field order matters: the servers stop before the directory goes.
pub struct Pair {
    pub standby: Pg,
    pub primary: Pg,
    pub scratch: Scratch,
}

impl Pair {
    pub fn start(tag: &str) -> Pair {
        Pair::start_with(tag, "")
    }

    /// As [`Pair::start`], with extra `postgresql.conf` lines on the primary
    /// (inherited by the standby through the base backup).
    pub fn start_with(tag: &str, extra_conf: &str) -> Pair {
        let scratch = Scratch::new(tag);
        let dir = &scratch.path;
        let primary = init_primary(dir, "primary", extra_conf);
        let standby = clone_standby(dir, &primary, "standby1", "standby1_slot");
        standby.start();
        wait_streaming(&primary, &standby, "standby");
        Pair {
            standby,
            primary,
            scratch,
        }
    }
}

impl Pair {
    /// A pair built without `pg_basebackup`, for server builds that lack it
    /// (the version matrix): `initdb` with the binaries in `pgbin` (of
    /// PostgreSQL `major`), roles and slot, a clean stop, a cold copy of the
    /// data directory, standby configuration (`standby.signal` and
    /// `primary_conninfo`/`primary_slot_name` from 12, `recovery.conf` with
    /// `standby_mode` on 10 and 11), both started, streaming.
    pub fn start_cold_copy(tag: &str, pgbin: &Path, major: u32) -> Pair {
        Pair::start_cold_copy_with(tag, pgbin, major, "")
    }

    /// As [`Pair::start_cold_copy`], with extra `postgresql.conf` lines on
    /// the primary (inherited by the standby through the copy).
    pub fn start_cold_copy_with(tag: &str, pgbin: &Path, major: u32, extra_conf: &str) -> Pair {
        let scratch = Scratch::new(tag);
        let dir = &scratch.path;
        let primary = init_primary_in(dir, "primary", pgbin, extra_conf, true);
        let found = primary.psql("SELECT current_setting('server_version_num')::int / 10000");
        assert_eq!(
            found,
            major.to_string(),
            "{} runs PostgreSQL {found}, not {major}",
            pgbin.display()
        );
        primary.stop();
        let standby = cold_copy_standby(dir, &primary, major, "standby1", "standby1_slot");
        primary.start();
        standby.start();
        wait_streaming(&primary, &standby, &format!("PostgreSQL {major}: standby"));
        Pair {
            standby,
            primary,
            scratch,
        }
    }
}

impl Pair {
    /// A cascaded standby for a pair built by cold copy (the version
    /// matrix, whose server builds have no `pg_basebackup`): the primary
    /// stops for the copy (its standby has then received everything up to
    /// the shutdown checkpoint), the copy is pointed at the standby, and
    /// streams from it once the primary is back.
    pub fn cascade_cold_copy(&self, major: u32, name: &str) -> Pg {
        self.primary.stop();
        let pg = cold_copy_standby_from(
            &self.scratch.path,
            &self.primary,
            &self.standby,
            major,
            name,
            "",
        );
        self.primary.start();
        pg.start();
        wait_streams_to(&self.standby, &pg);
        pg
    }
}

/// How one standby of a [`Topology`] is made.
pub struct StandbySpec<'a> {
    pub name: &'a str,
    /// `primary`, or the name of an earlier standby for a cascade.
    pub upstream: &'a str,
    /// Extra settings of this standby only (`recovery_min_apply_delay`...).
    pub conf: &'a str,
}

impl<'a> StandbySpec<'a> {
    /// `name`, streaming from `upstream`, with the extra settings `conf`.
    pub const fn new(name: &'a str, upstream: &'a str, conf: &'a str) -> StandbySpec<'a> {
        StandbySpec {
            name,
            upstream,
            conf,
        }
    }

    /// `name`, streaming straight from the primary, with no settings of its own.
    pub const fn direct(name: &'a str) -> StandbySpec<'a> {
        StandbySpec::new(name, "primary", "")
    }
}

/// A primary and standbys streaming from it or, cascaded, from one
/// another, made the way the DBA does it: a physical slot on the upstream,
/// `pg_basebackup -R -X stream -S slot` from the upstream (a standby for a
/// cascade, whose `pg_hba.conf` admits replication as the primary's does),
/// `primary_slot_name`. Field order matters: standbys stop first.
pub struct Topology {
    pub standbys: Vec<Pg>,
    pub primary: Pg,
    pub scratch: Scratch,
}

impl Topology {
    pub fn start(tag: &str, primary_conf: &str, specs: &[StandbySpec]) -> Topology {
        let scratch = Scratch::new(tag);
        let dir = scratch.path.clone();
        let primary = init_primary(&dir, "primary", primary_conf);
        let mut standbys: Vec<Pg> = Vec::new();
        for spec in specs {
            let slot = format!("{}_slot", spec.name);
            let upstream = if spec.upstream == "primary" {
                &primary
            } else {
                standbys
                    .iter()
                    .find(|s| s.name == spec.upstream)
                    .unwrap_or_else(|| panic!("no standby {} (yet)", spec.upstream))
            };
            if slot != "standby1_slot" || spec.upstream != "primary" {
                upstream.psql(&format!(
                    "SELECT pg_create_physical_replication_slot('{slot}', true)"
                ));
            }
            let standby = clone_standby(&dir, upstream, spec.name, &slot);
            if !spec.conf.is_empty() {
                standby.append_conf("postgresql.auto.conf", spec.conf);
            }
            standby.start();
            wait_streams_to(upstream, &standby);
            standbys.push(standby);
        }
        Topology {
            standbys,
            primary,
            scratch,
        }
    }

    /// As [`Topology::start`] without `pg_basebackup` (the version matrix):
    /// cold copies of the stopped primary, each pointed at its upstream.
    /// Cascaded standbys stream without a slot (a physical slot cannot be
    /// made on a standby that is not running yet), kept by `wal_keep_*`.
    pub fn start_cold_copy(
        tag: &str,
        pgbin: &Path,
        major: u32,
        primary_conf: &str,
        specs: &[StandbySpec],
    ) -> Topology {
        let scratch = Scratch::new(tag);
        let dir = scratch.path.clone();
        let primary = init_primary_in(&dir, "primary", pgbin, primary_conf, true);
        let found = primary.psql("SELECT current_setting('server_version_num')::int / 10000");
        assert_eq!(
            found,
            major.to_string(),
            "{} runs PostgreSQL {found}",
            pgbin.display()
        );
        for spec in specs
            .iter()
            .filter(|s| s.upstream == "primary" && s.name != "standby1")
        {
            primary.psql(&format!(
                "SELECT pg_create_physical_replication_slot('{}_slot', true)",
                spec.name
            ));
        }
        primary.stop();
        let mut standbys: Vec<Pg> = Vec::new();
        for spec in specs {
            let (upstream, slot) = if spec.upstream == "primary" {
                (&primary, format!("{}_slot", spec.name))
            } else {
                let up = standbys
                    .iter()
                    .find(|s| s.name == spec.upstream)
                    .unwrap_or_else(|| panic!("no standby {} (yet)", spec.upstream));
                (up, String::new())
            };
            let standby = cold_copy_standby_from(&dir, &primary, upstream, major, spec.name, &slot);
            if !spec.conf.is_empty() {
                standby.append_conf("postgresql.auto.conf", spec.conf);
            }
            standbys.push(standby);
        }
        primary.start();
        for (spec, standby) in specs.iter().zip(&standbys) {
            standby.start();
            let upstream = if spec.upstream == "primary" {
                &primary
            } else {
                standbys.iter().find(|s| s.name == spec.upstream).unwrap()
            };
            wait_streams_to(upstream, standby);
        }
        Topology {
            standbys,
            primary,
            scratch,
        }
    }

    pub fn standby(&self, name: &str) -> &Pg {
        self.standbys
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no standby {name}"))
    }

    /// Every member as an exporter target, primary first.
    pub fn targets(&self) -> Vec<(&str, String)> {
        let mut t = vec![("primary", self.primary.dsn())];
        t.extend(self.standbys.iter().map(|s| (s.name.as_str(), s.dsn())));
        t
    }
}

/// A PostgreSQL 17 pair whose primary has a logical slot `slot` created
/// with `failover => true` and synchronized to the standby
/// (`pg_sync_replication_slots()`), so that subscribers survive a
/// promotion. Slot synchronization needs logical WAL, feedback from the
/// standby through its physical slot, and a dbname in `primary_conninfo`.
pub fn failover_slot_pair_17(tag: &str, bin: &Path, slot: &str) -> Pair {
    let pair = Pair::start_cold_copy_with(
        tag,
        bin,
        17,
        "wal_level = logical\nhot_standby_feedback = on\n",
    );
    pair.standby.psql(&format!(
        "ALTER SYSTEM SET primary_conninfo = \
         'host=127.0.0.1 port={} user=repl application_name=standby1 dbname=postgres'",
        pair.primary.port
    ));
    pair.standby.psql("SELECT pg_reload_conf()");
    pair.primary.psql(&format!(
        "SELECT pg_create_logical_replication_slot('{slot}', 'test_decoding', failover => true)"
    ));
    pair.primary.write_wal(10);
    // A fresh idle slot holds a catalog xmin older than what the standby
    // can guarantee, and the sync refuses it ("could lead to data loss").
    // As a subscriber would, consume the slot past a running-xacts record
    // so that its xmin moves forward, then sync again.
    let synced = wait_until(Duration::from_secs(60), || {
        pair.primary.psql("SELECT pg_log_standby_snapshot()");
        pair.primary.psql(&format!(
            "SELECT count(*) FROM pg_logical_slot_get_changes('{slot}', NULL, NULL)"
        ));
        std::thread::sleep(Duration::from_millis(200));
        let _ = pair.standby.try_psql("SELECT pg_sync_replication_slots()");
        std::thread::sleep(Duration::from_millis(400));
        pair.standby
            .try_psql(&format!(
                "SELECT synced AND NOT temporary FROM pg_replication_slots \
                 WHERE slot_name = '{slot}'"
            ))
            .is_ok_and(|v| v == "t")
    });
    assert!(
        synced,
        "the slot never synchronized to the standby\nstandby log:\n{}",
        std::fs::read_to_string(&pair.standby.log).unwrap_or_default()
    );
    pair
}
