//! Test harness: a real PostgreSQL primary and streaming standby on free
//! loopback ports, built the way the seed describes (replication role,
//! physical slot, `pg_basebackup -R -X stream`, `primary_slot_name`), and the
//! exporter binary pointed at them.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI)
//! every server command runs as the `postgres` user through `runuser`.

#![allow(dead_code)]

pub mod procs;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const REPL_PASSWORD: &str = "repl-Secret-4711";
pub const MONITOR_PASSWORD: &str = "monitor-Secret-0815";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Environment of the test harness and scripts (`PGREPL_TEST_PGBIN`,
/// `PGREPL_TEST_KEEP`, `PGREPL_MATRIX_REQUIRED`, `PGREPL_PG_CACHE`, ...),
/// kept away from the exporter binary.
pub const HARNESS_ENV_PREFIXES: [&str; 3] = ["PGREPL_TEST_", "PGREPL_MATRIX_", "PGREPL_PG_"];

/// Removes the harness's own variables from `cmd`'s environment: they share
/// the exporter's `PGREPL_` prefix, and the exporter refuses unknown
/// `PGREPL_*` keys.
pub fn without_harness_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if HARNESS_ENV_PREFIXES.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(&key);
        }
    }
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids pulling libc in for one call.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Directory with initdb, pg_ctl, postgres, pg_basebackup: `PGREPL_TEST_PGBIN`,
/// else the newest Debian `/usr/lib/postgresql/*/bin`.
pub fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PGREPL_TEST_PGBIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql missing): run `make test`, which installs it")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL version under /usr/lib/postgresql")
        .1
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Runs a PostgreSQL server command, as `postgres` when we are root.
pub fn pg_command(program: &str) -> Command {
    pg_command_in(&pg_bin(), program)
}

/// As [`pg_command`], with the binaries of an explicit directory (the
/// version matrix runs several majors at once in parallel threads, so it
/// cannot go through the process-wide `PGREPL_TEST_PGBIN`).
pub fn pg_command_in(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch directory owned by `postgres`, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("pgrepl-test-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch dir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:postgres").arg(&path);
                    c
                },
                "chown scratch dir",
            );
        }
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("PGREPL_TEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// One PostgreSQL server.
pub struct Pg {
    pub name: String,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    pub socket_dir: PathBuf,
    /// Directory of the `pg_ctl` (and `postgres`) that runs this server.
    pub bin: PathBuf,
}

impl Pg {
    /// Connection string for the `pg_monitor` role the harness creates.
    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=monitor password={MONITOR_PASSWORD} dbname=postgres sslmode=disable",
            self.port
        )
    }

    /// Connection string for the superuser (trust on loopback).
    pub fn superuser_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
            self.port
        )
    }

    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `ALTER SYSTEM SET synchronous_standby_names` and a reload. Set it
    /// once the standbys stream: from `initdb` on, the harness's own
    /// commits would wait for a standby that is not there yet.
    pub fn set_synchronous_standby_names(&self, value: &str) {
        self.psql(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{value}'"
        ));
        self.psql("SELECT pg_reload_conf()");
    }

    /// Starts SQL as the superuser without waiting for it: a commit that
    /// will hang on a missing synchronous standby.
    pub fn spawn_psql(&self, sql: &str) -> Child {
        Command::new("psql")
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start psql")
    }

    /// Runs SQL as the superuser and returns the unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("{} psql {sql:?}: {e}", self.name))
    }

    /// A server command from this server's own binaries.
    pub fn command(&self, program: &str) -> Command {
        pg_command_in(&self.bin, program)
    }

    pub fn start(&self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(&self.data).arg("-l").arg(&self.log);
        c.args(["-w", "-t", "60", "start"]);
        // After a SIGKILL the old backends may still hold shared memory for
        // a moment; retry instead of failing the test on that race.
        for attempt in 0..20 {
            let out = c.stdin(Stdio::null()).output().expect("pg_ctl start");
            if out.status.success() {
                return;
            }
            if attempt == 19 {
                panic!(
                    "{}: pg_ctl start failed: {}\n{}",
                    self.name,
                    String::from_utf8_lossy(&out.stderr),
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn stop(&self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(c, &format!("{} pg_ctl stop", self.name));
    }

    fn stop_quietly(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub fn promote(&self) {
        let mut c = self.command("pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "promote"]);
        run(c, &format!("{} pg_ctl promote", self.name));
    }

    /// The postmaster and all its children (backends, walsender, ...).
    pub fn pids(&self) -> Vec<u32> {
        let Some(root) = self.postmaster_pid() else {
            return Vec::new();
        };
        let mut pids = vec![root];
        if let Ok(entries) = fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                // ppid is the 2nd field after the parenthesised command name.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(root) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Sends a signal (STOP, CONT, ...) to the postmaster and its children.
    pub fn signal_all(&self, signal: &str) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// The exporter's sessions on this server.
    pub fn exporter_sessions(&self) -> usize {
        self.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_replication_exporter'")
            .parse()
            .unwrap_or(usize::MAX)
    }

    /// The postmaster's pid, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// SIGKILL to the postmaster, as a crash would.
    pub fn kill9(&self) {
        let pid = self.postmaster_pid().expect("postmaster.pid");
        run(
            {
                let mut c = Command::new("kill");
                c.args(["-KILL", &pid.to_string()]);
                c
            },
            "kill -9",
        );
        wait_until(Duration::from_secs(10), || {
            Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        });
    }

    pub fn append_conf(&self, file: &str, text: &str) {
        let path = self.data.join(file);
        let mut old = fs::read_to_string(&path).unwrap_or_default();
        old.push('\n');
        old.push_str(text);
        old.push('\n');
        fs::write(&path, old).expect("write conf");
    }

    /// The primary's current WAL position as a byte offset.
    pub fn wal_position(&self) -> f64 {
        self.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
            .parse()
            .expect("WAL position")
    }

    /// Writes some WAL on a primary: a table and rows.
    pub fn write_wal(&self, rows: u32) {
        self.psql(&format!(
            "CREATE TABLE IF NOT EXISTS t_wal (id serial, pad text); \
             INSERT INTO t_wal (pad) SELECT repeat('x', 200) FROM generate_series(1, {rows});"
        ));
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop_quietly();
    }
}

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

/// Runs `program args` as `postgres` when we are root.
fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A standby from a copy of the *stopped* `primary`'s data directory,
/// configured for streaming through `slot`, not started.
pub fn cold_copy_standby(dir: &Path, primary: &Pg, major: u32, name: &str, slot: &str) -> Pg {
    cold_copy_standby_from(dir, primary, primary, major, name, slot)
}

/// As [`cold_copy_standby`], streaming from `upstream` (another standby,
/// for a cascade) rather than from the primary it copies; `slot` may be
/// empty for none.
pub fn cold_copy_standby_from(
    dir: &Path,
    primary: &Pg,
    upstream: &Pg,
    major: u32,
    name: &str,
    slot: &str,
) -> Pg {
    let data = dir.join(name);
    let mut c = as_postgres("cp");
    c.arg("-a").arg(&primary.data).arg(&data);
    run(c, "cp -a (cold copy of the primary)");
    // What pg_basebackup leaves out: the primary's slots (a standby must not
    // come up holding a copy of them) and its pid/options files.
    if let Ok(entries) = fs::read_dir(data.join("pg_replslot")) {
        for e in entries.flatten() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    let _ = fs::remove_file(data.join("postmaster.pid"));
    let _ = fs::remove_file(data.join("postmaster.opts"));
    let pg = Pg {
        name: name.to_string(),
        port: free_port(),
        log: dir.join(format!("{name}.log")),
        socket_dir: dir.to_path_buf(),
        bin: primary.bin.clone(),
        data,
    };
    let conninfo = format!(
        "host=127.0.0.1 port={} user=repl application_name={name}",
        upstream.port
    );
    pg.append_conf(
        "postgresql.auto.conf",
        &format!("port = {}\ncluster_name = '{name}'", pg.port),
    );
    // No slot (a cascade): no primary_slot_name at all; 10 and 11 refuse
    // an empty one in recovery.conf.
    let slot_line = if slot.is_empty() {
        String::new()
    } else {
        format!("primary_slot_name = '{slot}'\n")
    };
    if major >= 12 {
        pg.append_conf(
            "postgresql.auto.conf",
            &format!("{slot_line}primary_conninfo = '{conninfo}'"),
        );
        fs::write(pg.data.join("standby.signal"), "").expect("standby.signal");
    } else {
        pg.append_conf(
            "recovery.conf",
            &format!(
                "standby_mode = 'on'\nprimary_conninfo = '{conninfo}'\n\
                 {slot_line}recovery_target_timeline = 'latest'"
            ),
        );
    }
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres:postgres").arg(&pg.data);
                c
            },
            "chown standby data",
        );
    }
    pg
}

/// Waits until `primary` streams to one standby, or panics with both logs.
pub fn wait_streaming(primary: &Pg, standby: &Pg, what: &str) {
    let streaming = wait_until(Duration::from_secs(60), || {
        primary
            .try_psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            .map(|v| v == "1")
            .unwrap_or(false)
    });
    assert!(
        streaming,
        "{what} did not start streaming:\n{}\nprimary:\n{}",
        fs::read_to_string(&standby.log).unwrap_or_default(),
        fs::read_to_string(&primary.log).unwrap_or_default()
    );
}

/// A ureq agent for loopback requests: 5 s deadline, statuses as values.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// What [`pause_and_outgrow`] saw.
pub struct PausedLag {
    /// WAL bytes written on the primary while replay was paused.
    pub written: f64,
    /// The scrape once the standby had replayed a transaction.
    pub replayed: Metrics,
    /// The scrape once replay lag and backlog exceeded `written`.
    pub lagging: Metrics,
}

/// The roles of a pair: `primary` is out of recovery, `standby1` in it.
pub fn assert_pair_roles(m: &Metrics) {
    assert_eq!(
        m.get("pgrepl_in_recovery", &[("target", "primary")]),
        Some(0.0)
    );
    assert_eq!(
        m.get("pgrepl_in_recovery", &[("target", "standby1")]),
        Some(1.0)
    );
}

/// The settings every harness pair has (10 WAL senders and slots, the
/// default `max_standby_streaming_delay`, archiving on, a WAL directory of at
/// least one segment), with its `wal_level` and the standby's
/// `recovery_min_apply_delay` (`None`: not exported).
pub fn assert_pair_settings(m: &Metrics, wal_level: &str, min_apply_delay: Option<f64>) {
    assert_eq!(
        m.get("pgrepl_max_wal_senders", &[("target", "primary")]),
        Some(10.0)
    );
    assert_eq!(
        m.get("pgrepl_max_replication_slots", &[("target", "primary")]),
        Some(10.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_max_standby_streaming_delay_seconds",
            &[("target", "primary")]
        ),
        Some(30.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_recovery_min_apply_delay_seconds",
            &[("target", "standby1")]
        ),
        min_apply_delay
    );
    let settings = m.all("pgrepl_settings_info", &[("target", "primary")]);
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].labels["wal_level"], wal_level);
    assert_eq!(settings[0].labels["archive_mode"], "on");
    assert!(m
        .get("pgrepl_wal_directory_bytes", &[("target", "primary")])
        .is_some_and(|v| v >= 16.0 * 1024.0 * 1024.0));
}

/// A cascade: `standby` streams from `upstream` (a standby), not from the
/// primary.
pub fn assert_cascaded(m: &Metrics, standby: &str, upstream: &str) {
    assert!(m.has(
        "pgrepl_standby_state",
        &[
            ("target", upstream),
            ("application_name", standby),
            ("state", "streaming")
        ]
    ));
    assert!(!m.has(
        "pgrepl_standby_state",
        &[("target", "primary"), ("application_name", standby)]
    ));
}

/// The primary's view of a healthy pair: standby1 streams asynchronously
/// through its active physical slot, with a lag (possibly 0) at every stage,
/// and no synchronous standby is required.
pub fn assert_streaming_async(m: &Metrics) {
    let sb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("client_addr", "127.0.0.1"),
        ("slot_name", "standby1_slot"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = sb.to_vec();
        v.push(extra);
        v
    };
    assert_eq!(
        m.get("pgrepl_standby_state", &with(("state", "streaming"))),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_state", &with(("state", "catchup"))),
        Some(0.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_sync_state", &with(("sync_state", "async"))),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_sync_state", &with(("sync_state", "sync"))),
        Some(0.0)
    );
    assert_eq!(m.get("pgrepl_standby_sync_priority", &sb), Some(0.0));
    for stage in ["sent", "write", "flush", "replay"] {
        let v = m.get("pgrepl_standby_lag_bytes", &with(("stage", stage)));
        assert!(v.is_some_and(|v| v >= 0.0), "lag {stage}: {v:?}");
    }
    let primary = [("target", "primary")];
    assert_eq!(m.get("pgrepl_standbys", &primary), Some(1.0));
    assert_eq!(m.get("pgrepl_standbys_sync", &primary), Some(0.0));
    assert_eq!(m.get("pgrepl_sync_standbys_required", &primary), Some(0.0));
    let slot = [
        ("target", "primary"),
        ("slot_name", "standby1_slot"),
        ("slot_type", "physical"),
        ("database", ""),
    ];
    assert_eq!(m.get("pgrepl_slot_active", &slot), Some(1.0));
    assert!(m
        .get("pgrepl_slot_retained_wal_bytes", &slot)
        .is_some_and(|v| v >= 0.0));
}

/// The standby's view of a healthy pair: its WAL receiver heard from the
/// primary recently, replay runs, and both servers report their positions.
pub fn assert_standby_receiving(m: &Metrics) {
    assert!(m
        .get(
            "pgrepl_wal_receiver_last_message_age_seconds",
            &[("target", "standby1")]
        )
        .is_some_and(|v| v < 30.0));
    assert_eq!(
        m.get("pgrepl_replay_paused", &[("target", "standby1")]),
        Some(0.0)
    );
    assert!(m.has("pgrepl_replay_backlog_bytes", &[("target", "standby1")]));
    assert!(m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "standby1"), ("position", "replay")]
    ));
    assert!(m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "primary"), ("position", "current")]
    ));
}

/// The core outage scenario: stops the standby and waits until its slot on
/// the primary is inactive and the standby target is down; checks that the
/// walsender series left the primary and that the down target keeps only
/// its health families. Returns that scrape for checks of its own.
pub fn stop_standby_and_see_it_gone(pair: &Pair, exporter: &Exporter) -> Metrics {
    const WAIT: Duration = Duration::from_secs(30);
    let slot = [("target", "primary"), ("slot_name", "standby1_slot")];
    pair.standby.stop();
    let m = exporter.wait_for("standby gone and slot inactive", WAIT, |m| {
        m.get("pgrepl_slot_active", &slot) == Some(0.0)
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(0.0)
    });
    for family in [
        "pgrepl_standby_lag_bytes",
        "pgrepl_standby_lag_seconds",
        "pgrepl_standby_state",
        "pgrepl_standby_sync_state",
        "pgrepl_standby_sync_priority",
        "pgrepl_standby_reply_timestamp_seconds",
    ] {
        assert!(
            !m.has(family, &[("target", "primary")]),
            "{family} still present:\n{}",
            m.text
        );
    }
    assert_eq!(
        m.get("pgrepl_standbys", &[("target", "primary")]),
        Some(0.0)
    );
    // A down target keeps only its health families.
    assert!(!m.has("pgrepl_in_recovery", &[("target", "standby1")]));
    assert!(!m.has("pgrepl_wal_receiver_status", &[("target", "standby1")]));
    assert!(
        m.get("pgrepl_collect_errors_total", &[("target", "standby1")])
            .unwrap_or(0.0)
            >= 1.0
    );
    m
}

/// The core replay scenario: a replayed commit, `pg_wal_replay_pause()` on
/// the standby, over 1 MB of WAL on the primary; waits until the replay lag
/// (primary side) and the replay backlog (standby side) exceed what was
/// written while flush stays below it. Replay is left paused.
pub fn pause_and_outgrow(pair: &Pair, exporter: &Exporter) -> PausedLag {
    const WAIT: Duration = Duration::from_secs(30);
    let replay = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("stage", "replay"),
    ];
    pair.primary.write_wal(10);
    let replayed = exporter.wait_for("a replayed transaction", WAIT, |m| {
        m.has("pgrepl_standby_lag_bytes", &replay)
            && m.has(
                "pgrepl_last_replay_timestamp_seconds",
                &[("target", "standby1")],
            )
    });
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    let before = pair.primary.wal_position();
    pair.primary.write_wal(20_000);
    let written = pair.primary.wal_position() - before;
    assert!(written > 1_000_000.0, "wrote only {written} bytes of WAL");
    let lagging = exporter.wait_for("lag past what was written", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &replay).unwrap_or(0.0) >= written
            && m.get("pgrepl_replay_backlog_bytes", &[("target", "standby1")])
                .unwrap_or(0.0)
                >= written
            && m.get("pgrepl_replay_paused", &[("target", "standby1")]) == Some(1.0)
    });
    // Written and flushed keep up; only replay waits.
    let flush = lagging
        .get(
            "pgrepl_standby_lag_bytes",
            &[
                ("target", "primary"),
                ("application_name", "standby1"),
                ("stage", "flush"),
            ],
        )
        .expect("flush lag");
    assert!(
        flush < written,
        "flush lag {flush} should stay below {written}"
    );
    PausedLag {
        written,
        replayed,
        lagging,
    }
}

/// `initdb`, replication settings, roles and the physical slot, started.
pub fn init_primary(dir: &Path, name: &str, extra_conf: &str) -> Pg {
    init_primary_in(dir, name, &pg_bin(), extra_conf, false)
}

/// As [`init_primary`], with the binaries in `bin`; `reserve` makes the slot
/// hold WAL from its creation on (a cold-copied standby needs the WAL from
/// the primary's shutdown checkpoint, before it ever connects).
pub fn init_primary_in(dir: &Path, name: &str, bin: &Path, extra_conf: &str, reserve: bool) -> Pg {
    let data = dir.join(name);
    let archive = dir.join("archive");
    fs::create_dir_all(&archive).expect("archive dir");
    if is_root() {
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&archive)
            .status();
    }
    let mut c = pg_command_in(bin, "initdb");
    c.arg("-D").arg(&data);
    c.args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
    run(c, "initdb");
    let pg = Pg {
        name: name.to_string(),
        port: free_port(),
        log: dir.join(format!("{name}.log")),
        socket_dir: dir.to_path_buf(),
        bin: bin.to_path_buf(),
        data,
    };
    // The monitoring roles log in with a password, as in production; the
    // superuser and replication keep initdb's trust on loopback. The
    // passwords are SCRAM-hashed on every major (`password_encryption` is
    // md5 by default before 14, which these lines would reject).
    let hba = pg.data.join("pg_hba.conf");
    let old = fs::read_to_string(&hba).expect("pg_hba.conf");
    fs::write(
        &hba,
        format!(
            "host all monitor 127.0.0.1/32 scram-sha-256\nhost all plain 127.0.0.1/32 scram-sha-256\n{old}"
        ),
    )
    .expect("write pg_hba.conf");
    pg.append_conf(
        "postgresql.conf",
        &format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\n\
             wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\n\
             hot_standby = on\nwal_log_hints = on\narchive_mode = on\n\
             archive_command = 'cp %p {archive}/%f'\nfsync = off\nshared_buffers = 16MB\n\
             max_connections = 40\ncluster_name = '{name}'\n\
             password_encryption = 'scram-sha-256'\n{extra_conf}",
            port = pg.port,
            sock = dir.display(),
            archive = archive.display(),
        ),
    );
    pg.start();
    pg.psql(&format!(
        "CREATE ROLE repl WITH REPLICATION LOGIN PASSWORD '{REPL_PASSWORD}'; \
         CREATE ROLE monitor WITH LOGIN PASSWORD '{MONITOR_PASSWORD}'; \
         GRANT pg_monitor TO monitor; \
         SELECT pg_create_physical_replication_slot('standby1_slot', {reserve});"
    ));
    pg
}

/// `pg_basebackup -R -X stream -S slot` of `primary`, configured but not started.
pub fn clone_standby(dir: &Path, primary: &Pg, name: &str, slot: &str) -> Pg {
    let data = dir.join(name);
    let mut c = pg_command("pg_basebackup");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &primary.port.to_string(),
        "-U",
        "repl",
    ]);
    c.arg("-D").arg(&data);
    c.args(["-R", "-X", "stream", "-c", "fast", "-S", slot]);
    run(c, "pg_basebackup");
    let pg = Pg {
        name: name.to_string(),
        port: free_port(),
        log: dir.join(format!("{name}.log")),
        socket_dir: dir.to_path_buf(),
        bin: pg_bin(),
        data,
    };
    pg.append_conf(
        "postgresql.auto.conf",
        &format!(
            "port = {}\ncluster_name = '{name}'\nprimary_slot_name = '{slot}'\n\
             primary_conninfo = 'host=127.0.0.1 port={} user=repl application_name={name}'",
            pg.port, primary.port
        ),
    );
    pg
}

/// Waits until `upstream` streams to the standby named `name` (its
/// `application_name`).
pub fn wait_streams_to(upstream: &Pg, standby: &Pg) {
    let streaming = wait_until(Duration::from_secs(60), || {
        upstream
            .try_psql(&format!(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = '{}'",
                standby.name
            ))
            .map(|v| v == "1")
            .unwrap_or(false)
    });
    assert!(
        streaming,
        "{} did not start streaming from {}:\n{}\nupstream:\n{}",
        standby.name,
        upstream.name,
        fs::read_to_string(&standby.log).unwrap_or_default(),
        fs::read_to_string(&upstream.log).unwrap_or_default()
    );
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

/// A target nothing listens on: the exporter runs and reports it down.
pub fn down_target() -> Vec<(&'static str, String)> {
    vec![(
        "down",
        "host=127.0.0.1 port=1 user=monitor dbname=postgres sslmode=disable connect_timeout=1"
            .to_string(),
    )]
}

/// The exporter binary, running against the given targets.
pub struct Exporter {
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
    _dir: Scratch,
}

impl Exporter {
    /// Starts with a 1 s collection interval; `extra` is added at the top of
    /// the generated TOML.
    pub fn start(targets: &[(&str, String)]) -> Exporter {
        Exporter::start_with(
            targets,
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
            &[],
        )
    }

    pub fn start_with(targets: &[(&str, String)], extra: &str, args: &[&str]) -> Exporter {
        Exporter::start_with_env(targets, extra, args, &[])
    }

    /// With [`down_target`] as its only target, a 1 s collection interval
    /// and `args`: for what needs no database.
    pub fn start_down(args: &[&str]) -> Exporter {
        Exporter::start_with(&down_target(), "collect_interval = \"1s\"\n", args)
    }

    /// As [`Exporter::start_with`], with extra environment variables.
    pub fn start_with_env(
        targets: &[(&str, String)],
        extra: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Exporter {
        let dir = Scratch::new("exporter");
        let port = free_port();
        let mut toml = format!("listen_address = \"127.0.0.1:{port}\"\n{extra}\n");
        for (name, dsn) in targets {
            toml.push_str(&format!(
                "[[targets]]\nname = \"{name}\"\ndsn = \"{dsn}\"\ncluster = \"main\"\n\n"
            ));
        }
        let config = dir.path.join("config.toml");
        fs::write(&config, toml).expect("write config");
        let log = dir.path.join("exporter.log");
        let log_file = fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
        without_harness_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file)
            .spawn()
            .expect("start exporter");
        let e = Exporter {
            port,
            child,
            log,
            config,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(20), || e.get("/healthz").is_ok()
                || e.log_text().contains("pg_replication_exporter listening")),
            "exporter did not come up: {}",
            e.log_text()
        );
        e
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> Result<String, String> {
        let mut resp = http_agent()
            .get(&self.url(path))
            .call()
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()));
        }
        resp.body_mut().read_to_string().map_err(|e| e.to_string())
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.get("/metrics").expect("GET /metrics"))
    }

    /// Scrapes until `check` holds, or panics with the last scrape.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            if check(&m) {
                return m;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{}\nexporter log:\n{}",
                    m.text,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// The "target is down" log line of `target`, or a panic with the log.
    pub fn down_line(&self, target: &str) -> String {
        let log = self.log_text();
        log.lines()
            .find(|l| l.contains("target is down") && l.contains(&format!("target_name={target} ")))
            .unwrap_or_else(|| panic!("no down line for {target}:\n{log}"))
            .to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the exporter process (sockets included).
    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Threads of the exporter process.
    pub fn threads(&self) -> usize {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends a signal (HUP, TERM, ...) to the exporter.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` verbatim on a new loopback connection and returns all
/// bytes until the server closes it.
pub fn raw_request(port: u16, request: &str) -> Vec<u8> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// As [`raw_request`], `None` when nothing listens yet.
pub fn try_raw_request(port: u16, request: &str) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    Some(out)
}

/// One sample of the text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` answer.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            let (name, labels) = match series.find('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some(i) => (
                    series[..i].to_string(),
                    parse_labels(&series[i + 1..series.len() - 1]),
                ),
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Metrics {
            samples,
            text: text.to_string(),
        }
    }

    /// Samples of `name` whose labels include all of `labels`.
    pub fn all(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample matching; `None` when absent. Panics
    /// when several match, since that would make the assertion ambiguous.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.all(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series: {found:?}",
            found.len()
        );
        found.first().map(|s| s.value)
    }

    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        !self.all(name, labels).is_empty()
    }

    /// Family names present (without HELP-only families).
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => {}
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
    }
    out
}

/// The bin directory of a PostgreSQL `major` installed by
/// `scripts/pg-versions.sh` (under `PGREPL_PG_CACHE`), or `None` after
/// saying so, to skip. With `PGREPL_MATRIX_REQUIRED` set (as `make
/// test-matrix` does) a missing major fails instead.
pub fn pg_binaries(major: u32) -> Option<PathBuf> {
    let cache = std::env::var("PGREPL_PG_CACHE").unwrap_or_else(|_| "/var/cache/pgrepl-pg".into());
    let bin = PathBuf::from(cache).join(major.to_string()).join("bin");
    if ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|t| bin.join(t).is_file())
    {
        return Some(bin);
    }
    let msg = format!(
        "PostgreSQL {major} binaries not found in {}: run `scripts/pg-versions.sh {major}`",
        bin.display()
    );
    if std::env::var_os("PGREPL_MATRIX_REQUIRED").is_some() {
        panic!("{msg} (PGREPL_MATRIX_REQUIRED is set)");
    }
    // Straight to the process's stderr: libtest would swallow `eprintln!`
    // of a passing test, and a skip must be visible.
    let line = format!("SKIPPED: {msg}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    None
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

/// The HTTP status code curl reports for `args` (5 s at most), for what the
/// ureq agent does not do: client certificates, custom CAs, bare methods.
pub fn curl_status(args: &[&str]) -> String {
    curl_write_out("%{http_code}", args)
}

/// As [`curl_status`], with curl's `--write-out` format `format` (such as
/// `%{http_version} %{http_code}`) instead of the status alone.
pub fn curl_write_out(format: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", format, "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `openssl args` in `dir`; fails with openssl's stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The key of a test certificate.
#[derive(Clone, Copy, Debug)]
pub enum KeyAlg {
    Rsa2048,
    /// ECDSA on P-256.
    EcP256,
}

impl KeyAlg {
    /// openssl's `-newkey` arguments for this key.
    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyAlg::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyAlg::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        }
    }
}

/// A self-signed CA in `dir`: `name.crt` and `name.key`, subject
/// `/CN=name`, valid for two days.
pub fn make_ca(dir: &Path, name: &str, key: KeyAlg) {
    let (key_file, crt_file, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(key.newkey());
    args.extend_from_slice(&[
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &key_file,
        "-out",
        &crt_file,
        "-subj",
        &subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &args);
}

/// A certificate in `dir` signed by the CA `ca` (see [`make_ca`]):
/// `name.crt` and `name.key` (with `name.csr` and `name.ext` beside them),
/// subject `/CN=cn`, extended key usage `usage` (`serverAuth`,
/// `clientAuth`), subject alternative names `san`, valid for two days.
pub fn make_leaf(dir: &Path, name: &str, ca: &str, key: KeyAlg, cn: &str, usage: &str, san: &str) {
    let (key_file, csr, subject) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    let mut args = vec!["req"];
    args.extend_from_slice(key.newkey());
    args.extend_from_slice(&[
        "-nodes", "-keyout", &key_file, "-out", &csr, "-subj", &subject,
    ]);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    fs::write(
        dir.join(&ext),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage={usage}\nsubjectAltName={san}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// `pg_replication_exporter status --config config` (with `--output json`
/// when `json`): its exit code, stdout and stderr.
pub fn run_status(config: &Path, json: bool) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
    cmd.arg("status").arg("--config").arg(config);
    if json {
        cmd.args(["--output", "json"]);
    }
    let out = cmd.output().expect("run status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// In the `status` table, the UPSTREAM column of `member`'s row is
/// `upstream` (`primary > standby1` for a cascade).
pub fn assert_status_upstream(table: &str, member: &str, upstream: &str) {
    let row = table
        .lines()
        .find(|l| l.split('|').nth(2).is_some_and(|c| c.trim() == member))
        .unwrap_or_else(|| panic!("no {member} row:\n{table}"));
    assert_eq!(
        row.split('|').nth(5).map(str::trim),
        Some(upstream),
        "{table}"
    );
}

/// What `/metrics` says about `target` (a server that is up, of PostgreSQL
/// `major`) against the family descriptors `docs/metrics.md` is generated
/// from: every family it emits is declared, with the declared labels and
/// type; every family its role and major must always have is there.
/// Together with the static test of the generated reference, the committed
/// reference is what a real server emits.
pub fn assert_matches_reference(m: &Metrics, target: &str, major: u32) {
    use pg_replication_exporter::testing::family::{self, Kind, Scope};
    let standby = m.get("pgrepl_in_recovery", &[("target", target)]) == Some(1.0);
    let upstream = m
        .get("pgrepl_standbys", &[("target", target)])
        .unwrap_or(0.0)
        > 0.0;
    let declared: Vec<&'static family::Family> = pg_replication_exporter::testing::families()
        .into_iter()
        .flat_map(|(_, f)| f.iter())
        .collect();
    let mut errors = Vec::new();
    // Emitted -> declared, with its labels.
    let mut emitted = std::collections::BTreeSet::new();
    for s in m
        .samples
        .iter()
        .filter(|s| s.labels.get("target").map(String::as_str) == Some(target))
    {
        let Some(f) = declared.iter().find(|f| f.exposed_name() == s.name) else {
            errors.push(format!("{} is emitted but not declared", s.name));
            continue;
        };
        emitted.insert(f.name);
        if f.kind == Kind::Counter && !s.name.ends_with("_total") {
            errors.push(format!("{}: a counter without _total", s.name));
        }
        for label in s.labels.keys() {
            if !f.labels.iter().any(|l| l.name == label) {
                errors.push(format!("{}: label {label} is not declared", s.name));
            }
        }
        for l in f.labels.iter().filter(|l| !l.optional) {
            if !s.labels.contains_key(l.name) {
                errors.push(format!("{}: declared label {} missing", s.name, l.name));
            }
        }
        for l in f.labels {
            if let family::Values::OneOf(allowed) = l.values {
                if let Some(v) = s.labels.get(l.name) {
                    if !allowed.contains(&v.as_str()) {
                        errors.push(format!(
                            "{}: {}={v:?} is not among {allowed:?}",
                            s.name, l.name
                        ));
                    }
                }
            }
        }
        if f.since > major {
            errors.push(format!(
                "{} emitted on {major}, declared since {}",
                s.name, f.since
            ));
        }
        let role_ok = match f.scope {
            Scope::Primary => !standby,
            Scope::Standby => standby,
            _ => true,
        };
        if !role_ok {
            errors.push(format!(
                "{} emitted on a {}",
                s.name,
                if standby { "standby" } else { "primary" }
            ));
        }
    }
    // Declared and always there -> emitted. The exporter's own families
    // and (the harness puts every target in a cluster) the cluster view's.
    let names = m.names();
    for f in &declared {
        let applies = match f.scope {
            Scope::Target | Scope::Server => true,
            Scope::Primary => !standby,
            Scope::Standby => standby,
            Scope::Upstream => upstream,
            Scope::Exporter | Scope::Cluster => {
                if f.when.is_none() && !names.contains(&f.exposed_name()) {
                    errors.push(format!("{} is declared but not emitted", f.exposed_name()));
                }
                false
            }
        };
        if applies && f.when.is_none() && f.since <= major && !emitted.contains(f.name) {
            errors.push(format!(
                "{} is declared for this server but not emitted",
                f.exposed_name()
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "{target} (PostgreSQL {major}, {}) differs from the metric reference:\n  {}",
        if standby { "standby" } else { "primary" },
        errors.join("\n  ")
    );
}
