//! `scripts/demo.sh` (what `make demo` runs) finds the exporter where cargo
//! builds it, `CARGO_TARGET_DIR` included, and says "demo is running" only
//! when the exporter serves: a missing binary or an exporter that cannot
//! start stops the demo with an error and a non-zero exit code. The demo
//! runs on free ports in a scratch directory and stops by itself
//! (`DEMO_EXIT_AFTER`).

use crate::harness as common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const RUNNING: &str = "demo is running";

/// Runs the demo script with `env`, on free ports, in its own directory.
fn demo(env: &[(&str, &str)]) -> Output {
    let scratch = common::Scratch::new("demo");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A hung demo fails the test instead of hanging it.
    let mut cmd = Command::new("timeout");
    cmd.args(["--kill-after=10", "180", "bash"])
        .arg(repo.join("scripts/demo.sh"))
        .env("DEMO_DIR", scratch.path.join("demo"))
        .env("PRIMARY_PORT", common::free_port().to_string())
        .env("STANDBY_PORT", common::free_port().to_string())
        .env("LISTEN", format!("127.0.0.1:{}", common::free_port()))
        .env("PROM_PORT", common::free_port().to_string())
        .env("AM_PORT", common::free_port().to_string())
        .env("DEMO_EXIT_AFTER", "1")
        .env_remove("BIN")
        .env_remove("CARGO_TARGET_DIR")
        .env("PGBIN", common::pg_bin())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    common::without_harness_env(&mut cmd);
    cmd.output().expect("run scripts/demo.sh")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A target directory holding only `release/pg_replication_exporter`: the
/// binary these tests were built with.
fn target_dir_with_binary() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("release")).expect("release dir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_pg_replication_exporter"),
        dir.path().join("release/pg_replication_exporter"),
    )
    .expect("symlink the exporter");
    dir
}

#[test]
fn finds_the_exporter_under_cargo_target_dir() {
    let target = target_dir_with_binary();
    let dir = target.path().to_string_lossy().into_owned();
    let out = demo(&[("CARGO_TARGET_DIR", &dir)]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(RUNNING), "{stdout}");
    // The scrape the script prints before it stops: both servers up.
    for line in [
        "pgrepl_up{target=\"primary\"} 1",
        "pgrepl_up{target=\"standby1\"} 1",
        "pgrepl_in_recovery{target=\"standby1\"} 1",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}\n{stderr}");
    }
}

#[test]
fn a_missing_binary_stops_before_anything_starts() {
    let empty = tempfile::tempdir().expect("tempdir");
    let dir = empty.path().to_string_lossy().into_owned();
    let out = demo(&[("CARGO_TARGET_DIR", &dir)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains(RUNNING), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "no exporter binary at {dir}/release/pg_replication_exporter"
        )),
        "{stderr}"
    );
    assert!(!stdout.contains("initdb"), "{stdout}");
}

#[test]
fn an_exporter_that_cannot_start_fails_the_demo() {
    // Something else holds the exporter's port.
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = format!("127.0.0.1:{}", held.local_addr().expect("addr").port());
    let target = target_dir_with_binary();
    let dir = target.path().to_string_lossy().into_owned();
    let out = demo(&[("CARGO_TARGET_DIR", &dir), ("LISTEN", &listen)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains(RUNNING), "{stdout}");
    assert!(
        stderr.contains("demo: the exporter exited (code 2)"),
        "{stderr}"
    );
}
