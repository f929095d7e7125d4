//! One PostgreSQL server on a free loopback port: which binaries (Debian's
//! newest, or a major from `scripts/pg-versions.sh`), `initdb` with the
//! replication settings, roles and slots a DBA sets up, a standby made with
//! `pg_basebackup -R -X stream -S slot` or, for server builds without
//! `pg_basebackup`, by a cold copy of the stopped primary; and the waits
//! until one server streams to another.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

/// Password of the `repl` role the primary streams to its standbys with.
pub const REPL_PASSWORD: &str = "repl-Secret-4711";
/// Password of the `monitor` role (`pg_monitor`) the exporter connects as.
pub const MONITOR_PASSWORD: &str = "monitor-Secret-0815";

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

/// Where `scripts/pg-versions.sh` installs PostgreSQL `major`
/// (`PGREPL_PG_CACHE`, by default /var/cache/pgrepl-pg): its bin directory.
fn pg_cache_bin(major: u32) -> PathBuf {
    let cache = std::env::var("PGREPL_PG_CACHE").unwrap_or_else(|_| "/var/cache/pgrepl-pg".into());
    PathBuf::from(cache).join(major.to_string()).join("bin")
}

/// The bin directory of PostgreSQL `major` when `scripts/pg-versions.sh`
/// installed it, `None` when not.
pub fn pg_installed(major: u32) -> Option<PathBuf> {
    let bin = pg_cache_bin(major);
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|t| bin.join(t).is_file())
        .then_some(bin)
}

/// The bin directory of PostgreSQL `major` installed by
/// `scripts/pg-versions.sh`, or a panic that says how to install it. The
/// tests that call this are `#[ignore]`d with the major they need and run
/// by `make test-matrix`, which installs every major first: a test asked
/// to run without its server build fails, it never passes unrun.
pub fn pg_binaries(major: u32) -> PathBuf {
    pg_installed(major).unwrap_or_else(|| {
        panic!(
            "PostgreSQL {major} binaries not found in {}: run `scripts/pg-versions.sh {major}` (make test-matrix does)",
            pg_cache_bin(major).display()
        )
    })
}
