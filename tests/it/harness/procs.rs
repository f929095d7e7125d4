//! Processes the tests start besides PostgreSQL and the exporter
//! (Prometheus, Alertmanager, HAProxy, postgres_exporter): found on PATH,
//! killed on drop, their output kept in a log file for the failure message.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The program `default` (or the value of `env`), checked to be on PATH.
pub fn binary(env: &str, default: &str) -> String {
    let name = std::env::var(env).unwrap_or_else(|_| default.to_string());
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v '{name}'"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} not found: install it (`make deps`) or set {env} to its path"
    );
    name
}

/// GET with query parameters; the body of a 200 answer.
pub fn http_get(url: &str, query: &[(&str, &str)]) -> Result<String, String> {
    let mut req = super::http_agent().get(url);
    for (k, v) in query {
        req = req.query(*k, *v);
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    if resp.status() != 200 {
        return Err(format!("{url}: status {}", resp.status()));
    }
    resp.body_mut().read_to_string().map_err(|e| e.to_string())
}

/// A child process killed on drop, with its output in a log file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(program: &str, args: &[String], log: PathBuf) -> Proc {
        Proc::spawn_with_env(program, args, &[], log)
    }

    /// As [`Proc::spawn`], with extra environment variables.
    pub fn spawn_with_env(
        program: &str,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> Proc {
        let file = fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        Proc { child, log }
    }

    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
