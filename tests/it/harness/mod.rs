//! Test harness: real PostgreSQL servers on free loopback ports, set up the
//! way a DBA sets up streaming replication (a replication role, a physical
//! slot, `pg_basebackup -R -X stream`, `primary_slot_name`), and the exporter
//! binary pointed at them. One module per concern: [`pg`] (servers and
//! versions), [`topologies`] (pairs, cascades), [`exporter`] (the exporter
//! process), [`metrics`] (parsing `/metrics`), [`http`], [`certs`],
//! [`procs`] (Prometheus, Alertmanager and other programs) and
//! [`scenarios`] (assertions shared by several tests). Everything is
//! re-exported here, so tests write `harness::Pair`.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI)
//! every server command runs as the `postgres` user through `runuser`.

#![allow(dead_code)]

pub mod certs;
pub mod exporter;
pub mod http;
pub mod metrics;
pub mod pg;
pub mod procs;
pub mod scenarios;
pub mod topologies;

pub use certs::*;
pub use exporter::*;
pub use http::*;
pub use metrics::*;
pub use pg::*;
pub use scenarios::*;
pub use topologies::*;

use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Environment of the test harness and scripts (`PGREPL_TEST_PGBIN`,
/// `PGREPL_TEST_KEEP`, `PGREPL_PG_CACHE`, ...; `PGREPL_MATRIX_*`, which
/// older Makefiles set), kept away from the exporter binary.
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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
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
