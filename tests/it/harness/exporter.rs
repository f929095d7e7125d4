//! The exporter binary as a process: started against targets with a
//! configuration file, waited for, scraped, stopped; and its `status`
//! subcommand.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

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

    /// Scrapes until `target` has been collected successfully for `span`
    /// more seconds (its `pgrepl_last_collect_success_timestamp_seconds`
    /// moved that far), handing every scrape to `check`: what must keep
    /// holding, cycle after cycle. Counting collections rather than
    /// sleeping keeps the check meaningful on a loaded machine, where a
    /// fixed sleep may cover no collection at all. Returns the last scrape.
    pub fn through_cycles(
        &self,
        target: &str,
        span: f64,
        timeout: Duration,
        check: impl Fn(&Metrics),
    ) -> Metrics {
        let collected_at = |m: &Metrics| {
            m.get(
                "pgrepl_last_collect_success_timestamp_seconds",
                &[("target", target)],
            )
            .unwrap_or(0.0)
        };
        let first = collected_at(&self.metrics());
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            check(&m);
            if collected_at(&m) >= first + span {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{target} was not collected for {span} s within {timeout:?}; exporter log:\n{}",
                self.log_text()
            );
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
