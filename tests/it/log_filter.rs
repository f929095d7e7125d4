//! Where the log filter comes from: `--log.level` / `PGREPL_LOG_LEVEL` when
//! given, else `RUST_LOG` (tracing's filter syntax), else `info`; an invalid
//! `RUST_LOG` is a one-line error and exit code 2. The exporter runs against
//! a target that refuses connections, so that it logs at every level
//! without a database: "listening" (info), "target is down" (warn) and
//! "retrying" (debug).

use crate::harness as common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Run {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start(env: &[(&str, &str)], args: &[&str]) -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        // A loopback port nothing listens on: connections are refused at once.
        fs::write(
            &config,
            format!(
                "listen_address = \"127.0.0.1:{}\"\ncollect_interval = \"1s\"\n\n\
                 [[targets]]\nname = \"refused\"\n\
                 dsn = \"host=127.0.0.1 port={} user=monitor dbname=postgres sslmode=disable\"\n",
                common::free_port(),
                common::free_port()
            ),
        )
        .expect("write config");
        let log = dir.path().join("log");
        let file = fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PGREPL_") || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        let child = cmd
            .arg("--config")
            .arg(&config)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone"))
            .stderr(file)
            .spawn()
            .expect("start the exporter");
        Run {
            child,
            log,
            _dir: dir,
        }
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `line`, or panics with the log.
    fn expect(&self, line: &str) {
        assert!(
            common::wait_until(Duration::from_secs(15), || self.text().contains(line)),
            "no {line:?} in the log:\n{}",
            self.text()
        );
    }

    /// After "target is down" has been logged, a few retries pass; then
    /// `line` must not be in the log. The wait is deliberate: what is
    /// checked is that nothing is logged, and with the line filtered out no
    /// log line marks the retries.
    fn expect_none_after_retries(&self, line: &str) {
        self.expect("target is down");
        std::thread::sleep(Duration::from_secs(2));
        let text = self.text();
        assert!(!text.contains(line), "{line:?} in the log:\n{text}");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rust_log_sets_the_filter_when_no_level_is_given() {
    let run = Run::start(&[("RUST_LOG", "warn,pg_replication_exporter=debug")], &[]);
    run.expect("pg_replication_exporter listening");
    run.expect("retrying");
    let quiet = Run::start(&[("RUST_LOG", "warn")], &[]);
    quiet.expect_none_after_retries("pg_replication_exporter listening");
}

#[test]
fn log_level_flag_and_variable_win_over_rust_log() {
    let flag = Run::start(
        &[("RUST_LOG", "pg_replication_exporter=debug")],
        &["--log.level=info"],
    );
    let variable = Run::start(
        &[
            ("RUST_LOG", "pg_replication_exporter=debug"),
            ("PGREPL_LOG_LEVEL", "info"),
        ],
        &[],
    );
    for run in [&flag, &variable] {
        run.expect("pg_replication_exporter listening");
        run.expect_none_after_retries("retrying");
    }
}

#[test]
fn without_rust_log_the_default_is_info() {
    let run = Run::start(&[], &[]);
    run.expect("pg_replication_exporter listening");
    run.expect_none_after_retries("retrying");
}

#[test]
fn an_invalid_rust_log_stops_with_one_line_and_exit_2() {
    let mut run = Run::start(&[("RUST_LOG", "pg_replication_exporter=loud")], &[]);
    let status = run.child.wait().expect("wait");
    let text = run.text();
    assert_eq!(status.code(), Some(2), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("pg_replication_exporter: RUST_LOG: invalid filter"),
        "{text}"
    );
}

/// What a server says reaches the log as one line: tokio-postgres spreads
/// an error over several lines (`DETAIL:` of a standby with `hot_standby =
/// off`), which would forge log lines in the text format; every field and
/// message is escaped there. logfmt and JSON escape in their own way.
#[test]
fn server_text_never_forges_a_log_line() {
    let pair = common::Pair::start("log-escape");
    pair.standby.stop();
    pair.standby
        .append_conf("postgresql.auto.conf", "hot_standby = off");
    pair.standby.start();
    let targets = [("standby1", pair.standby.dsn())];
    for format in ["text", "logfmt", "json"] {
        let exporter = common::Exporter::start_with(
            &targets,
            "collect_interval = \"1s\"\n",
            &["--log.format", format],
        );
        assert!(
            common::wait_until(Duration::from_secs(20), || exporter
                .log_text()
                .contains("Hot standby mode is disabled")),
            "{format}: no error in the log:\n{}",
            exporter.log_text()
        );
        let log = exporter.log_text();
        assert!(!log.contains('\u{1b}'), "{format}: {log}");
        for line in log.lines() {
            let ok = match format {
                "json" => serde_json::from_str::<serde_json::Value>(line).is_ok(),
                // Every line starts with the event's time stamp.
                "logfmt" => line.starts_with("ts="),
                _ => line.len() > 20 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit),
            };
            assert!(ok, "{format}: forged line {line:?} in:\n{log}");
        }
        let down = log
            .lines()
            .find(|l| l.contains("Hot standby mode is disabled"))
            .unwrap_or_default();
        assert!(
            down.contains("the database system is not accepting connections"),
            "{format}: {down}"
        );
    }
}
