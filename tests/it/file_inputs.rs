//! Files the operator names (the configuration, `password_file`,
//! `passfile`, `PGPASSFILE`, `~/.pgpass`, `sslrootcert`, `sslcert`,
//! `sslkey`, the web configuration and its certificates) at their
//! extremes: a FIFO, `/dev/zero`, a directory, a file far too large, a
//! file others may read. Each is refused with one line naming the key and
//! the file (exit 2 at start, a refused reload later) or, where libpq
//! ignores it (`~/.pgpass`), ignored with a warning; none may wedge a
//! reload, the watchdog or shutdown, nor eat the machine's memory.
//!
//! The exporter runs under `prlimit --as` (1 GiB of address space) so that
//! a build which reads `/dev/zero` whole fails fast instead of filling the
//! test machine's memory.

use crate::harness as common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Metrics;

const WAIT: Duration = Duration::from_secs(30);
const ADDRESS_SPACE: &str = "--as=1073741824";
/// A target that is never there: what is tested here needs no database.
const NOWHERE: &str = "host=127.0.0.1 port=1 user=x dbname=postgres connect_timeout=1";

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The exporter under the address-space cap, with a clean environment
/// plus `env`, its output in `log`.
fn command(args: &[String], env: &[(&str, String)], log: &Path) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(ADDRESS_SPACE)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let file = fs::File::create(log).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone log"))
        .stderr(file);
    cmd
}

/// Runs to its exit (killed after 20 s): exit code and output.
fn run_to_exit(args: &[String], env: &[(&str, String)], dir: &Path) -> (Option<i32>, String) {
    let log = dir.join("run.log");
    let mut child = command(args, env, &log).spawn().expect("run exporter");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().expect("wait");
    (status.code(), fs::read_to_string(&log).unwrap_or_default())
}

/// A running exporter, killed on drop.
struct Running {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Running {
    fn start(config: &Path, extra: &[String], env: &[(&str, String)], dir: &Path) -> Running {
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend_from_slice(extra);
        let port = listen_port(config);
        let log = dir.join(format!("exporter-{port}.log"));
        let child = command(&args, env, &log).spawn().expect("start exporter");
        let mut r = Running { child, port, log };
        let up = common::wait_until(Duration::from_secs(20), || {
            r.log_text().contains("pg_replication_exporter listening") || !r.running()
        });
        assert!(up && r.running(), "did not come up:\n{}", r.log_text());
        r
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn metrics(&self) -> Metrics {
        let text = common::http_agent()
            .get(&self.url("/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        Metrics::parse(&text)
    }

    fn wait_for(&self, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.metrics();
            if check(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last scrape:\n{}\nlog:\n{}",
                m.text,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `POST /-/reload`: status and body, within `limit`.
    fn reload(&self, limit: Duration) -> Result<(u16, String), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(limit))
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(&self.url("/-/reload"))
            .send_empty()
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// SIGTERM, then the process must be gone within `limit`.
    fn terminate_within(&mut self, limit: Duration) {
        self.signal("TERM");
        let gone = common::wait_until(limit, || !self.running());
        assert!(
            gone,
            "SIGTERM did not stop the exporter within {limit:?}:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen_port(config: &Path) -> u16 {
    let text = fs::read_to_string(config).expect("read config");
    text.lines()
        .find_map(|l| l.strip_prefix("listen_address = \"127.0.0.1:"))
        .and_then(|rest| rest.trim_end_matches('"').parse().ok())
        .expect("listen_address in the config")
}

fn config_text(port: u16, target: &str) -> String {
    format!(
        "listen_address = \"127.0.0.1:{port}\"\ncollect_interval = \"1s\"\n\
         collect_timeout = \"800ms\"\n\n[[targets]]\nname = \"t\"\n{target}\n"
    )
}

fn dsn_line(dsn: &str) -> String {
    format!("dsn = \"{dsn}\"")
}

/// A directory holding a FIFO, a CA and a client certificate and key, a
/// file too large for any certificate, and a private password file.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        mkfifo(&p.join("fifo"));
        common::make_ca(p, "ca", common::KeyAlg::EcP256);
        common::make_leaf(
            p,
            "client",
            "ca",
            common::KeyAlg::EcP256,
            "x",
            "clientAuth",
            "DNS:x",
        );
        common::make_leaf(
            p,
            "server",
            "ca",
            common::KeyAlg::EcP256,
            "localhost",
            "serverAuth",
            "DNS:localhost",
        );
        fs::write(p.join("huge.pem"), "A".repeat(5 << 20)).expect("huge file");
        fs::write(p.join("password"), "secret\n").expect("password file");
        chmod(&p.join("password"), 0o600);
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Bad files at start: exit 2 and one line naming the key and the file.
#[test]
fn bad_files_at_start_exit_2_naming_key_and_file() {
    let f = Files::new();
    let dir = f.dir.path();
    let fifo = f.path("fifo");
    let port = common::free_port();
    let pgpass_big = dir.join("pgpass-big");
    fs::write(&pgpass_big, "*:*:*:*:x\n".repeat(300_000)).unwrap();
    chmod(&pgpass_big, 0o644);
    let big_password = dir.join("big-password");
    fs::write(&big_password, "y".repeat(100_000)).unwrap();
    chmod(&big_password, 0o600);
    let web_fifo_cert = dir.join("web-fifo-cert.yml");
    fs::write(
        &web_fifo_cert,
        format!(
            "tls_server_config:\n  cert_file: {fifo}\n  key_file: {}\n",
            f.path("server.key")
        ),
    )
    .unwrap();
    let verify = |root: &str| format!("{NOWHERE} sslmode=verify-ca sslrootcert={root}");
    // (name, target lines, extra args, environment, needles)
    type Case<'a> = (
        &'a str,
        String,
        Vec<String>,
        Vec<(&'a str, String)>,
        Vec<String>,
    );
    let not_regular = "not a regular file".to_string();
    let cases: Vec<Case> = vec![
        (
            "password_file is a FIFO",
            format!("{}\npassword_file = \"{fifo}\"", dsn_line(NOWHERE)),
            vec![],
            vec![],
            vec![
                "targets[0].password_file".into(),
                fifo.clone(),
                not_regular.clone(),
            ],
        ),
        (
            "passfile is a FIFO",
            dsn_line(&format!("{NOWHERE} passfile={fifo}")),
            vec![],
            vec![],
            vec!["targets[0].dsn".into(), fifo.clone(), not_regular.clone()],
        ),
        (
            "PGPASSFILE is a FIFO",
            dsn_line(NOWHERE),
            vec![],
            vec![("PGPASSFILE", fifo.clone())],
            vec!["PGPASSFILE".into(), fifo.clone(), not_regular.clone()],
        ),
        (
            "sslrootcert is a FIFO",
            dsn_line(&verify(&fifo)),
            vec![],
            vec![],
            vec![
                "targets[0].dsn".into(),
                "sslrootcert".into(),
                fifo.clone(),
                not_regular.clone(),
            ],
        ),
        (
            "sslrootcert is /dev/zero",
            dsn_line(&verify("/dev/zero")),
            vec![],
            vec![],
            vec![
                "sslrootcert".into(),
                "/dev/zero".into(),
                not_regular.clone(),
            ],
        ),
        (
            "sslrootcert is too large",
            dsn_line(&verify(&f.path("huge.pem"))),
            vec![],
            vec![],
            vec![
                "sslrootcert".into(),
                f.path("huge.pem"),
                "larger than".into(),
            ],
        ),
        (
            "sslrootcert is a directory",
            dsn_line(&verify(&dir.display().to_string())),
            vec![],
            vec![],
            vec!["sslrootcert".into(), not_regular.clone()],
        ),
        (
            "sslcert is a FIFO",
            dsn_line(&format!(
                "{NOWHERE} sslmode=require sslcert={fifo} sslkey={}",
                f.path("client.key")
            )),
            vec![],
            vec![],
            vec!["sslcert".into(), fifo.clone(), not_regular.clone()],
        ),
        (
            "sslkey is a FIFO",
            dsn_line(&format!(
                "{NOWHERE} sslmode=require sslcert={} sslkey={fifo}",
                f.path("client.crt")
            )),
            vec![],
            vec![],
            vec!["sslkey".into(), fifo.clone(), not_regular.clone()],
        ),
        (
            "a passfile others may read is refused before it is read",
            dsn_line(&format!("{NOWHERE} passfile={}", pgpass_big.display())),
            vec![],
            vec![],
            vec![
                "group or world access".into(),
                pgpass_big.display().to_string(),
            ],
        ),
        (
            "password_file is too large",
            format!(
                "{}\npassword_file = \"{}\"",
                dsn_line(NOWHERE),
                big_password.display()
            ),
            vec![],
            vec![],
            vec!["targets[0].password_file".into(), "larger than".into()],
        ),
        (
            "the web configuration is a FIFO",
            dsn_line(NOWHERE),
            vec!["--web.config.file".into(), fifo.clone()],
            vec![],
            vec![fifo.clone(), not_regular.clone()],
        ),
        (
            "the web certificate is a FIFO",
            dsn_line(NOWHERE),
            vec![
                "--web.config.file".into(),
                web_fifo_cert.display().to_string(),
            ],
            vec![],
            vec!["cert_file".into(), fifo.clone(), not_regular.clone()],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (name, target, extra, env, needles)) in cases.iter().enumerate() {
        let config = dir.join(format!("case{i}.toml"));
        fs::write(&config, config_text(port, target)).unwrap();
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend_from_slice(extra);
        let (code, output) = run_to_exit(&args, env, dir);
        let lines: Vec<&str> = output.lines().collect();
        let ok = code == Some(2)
            && lines.len() == 1
            && lines[0].starts_with("pg_replication_exporter: ")
            && needles.iter().all(|n| lines[0].contains(n.as_str()));
        if !ok {
            failures.push(format!(
                "{name}: exit {code:?}, output {output:?}, wanted {needles:?}"
            ));
        }
    }
    // The configuration file itself.
    let (code, output) = run_to_exit(&["--config".into(), fifo.clone()], &[], dir);
    if !(code == Some(2) && output.contains(&fifo) && output.contains("not a regular file")) {
        failures.push(format!("--config FIFO: exit {code:?}, output {output:?}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        cases.len() + 1,
        failures.join("\n")
    );
}

/// `~/.pgpass` that is not a plain file is ignored with a warning, as
/// libpq does; it is never read (a FIFO would block, `/dev/zero` would
/// fill the memory).
#[test]
fn a_pgpass_that_is_not_a_file_is_ignored_with_a_warning() {
    for (name, make) in [
        ("FIFO", (|p: &Path| mkfifo(p)) as fn(&Path)),
        ("/dev/zero", |p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).expect("symlink")
        }),
    ] {
        let home = tempfile::tempdir().unwrap();
        make(&home.path().join(".pgpass"));
        let config = home.path().join("config.toml");
        fs::write(
            &config,
            config_text(common::free_port(), &dsn_line(NOWHERE)),
        )
        .unwrap();
        let mut running = Running::start(
            &config,
            &[],
            &[("HOME", home.path().display().to_string())],
            home.path(),
        );
        running.wait_for(&format!("{name}: the target collected"), |m| {
            m.get("pgrepl_up", &[("target", "t")]) == Some(0.0)
        });
        let log = running.log_text();
        assert!(
            log.contains(".pgpass") && log.contains("not a regular file") && log.contains("WARN"),
            "{name}: no warning naming ~/.pgpass:\n{log}"
        );
        assert!(running.running(), "{name}: the exporter stopped:\n{log}");
    }
}

/// Reloads meeting a FIFO, `/dev/zero` or a huge file where a file is
/// named: each answers at once with the key and the file, the metric says
/// the reload failed, a fixed file reloads again; meanwhile the watchdog
/// keeps restarting hung tasks and SIGTERM stops the process.
#[test]
fn bad_files_on_reload_are_refused_promptly_and_nothing_wedges() {
    let f = Files::new();
    let dir = f.dir.path();
    let fifo = f.path("fifo");
    let faults = dir.join("faults");
    fs::write(&faults, "").unwrap();
    let port = common::free_port();
    let config = dir.join("config.toml");
    let good = config_text(port, &dsn_line(NOWHERE));
    fs::write(&config, &good).unwrap();
    let mut running = Running::start(
        &config,
        &["--web.enable-lifecycle".into()],
        &[(
            "PG_REPLICATION_EXPORTER_FAULTS",
            faults.display().to_string(),
        )],
        dir,
    );
    let reload_ok = |m: &Metrics| m.get("pgrepl_config_last_reload_successful", &[]);
    running.wait_for("started", |m| reload_ok(m) == Some(1.0));

    let verify = |root: &str| format!("{NOWHERE} sslmode=verify-ca sslrootcert={root}");
    let culprits: Vec<(&str, String, Vec<String>)> = vec![
        (
            "password_file FIFO",
            format!("{}\npassword_file = \"{fifo}\"", dsn_line(NOWHERE)),
            vec!["targets[0].password_file".into(), fifo.clone()],
        ),
        (
            "passfile FIFO",
            dsn_line(&format!("{NOWHERE} passfile={fifo}")),
            vec!["targets[0].dsn".into(), fifo.clone()],
        ),
        (
            "sslrootcert FIFO",
            dsn_line(&verify(&fifo)),
            vec!["sslrootcert".into(), fifo.clone()],
        ),
        (
            "sslrootcert /dev/zero",
            dsn_line(&verify("/dev/zero")),
            vec!["sslrootcert".into(), "/dev/zero".into()],
        ),
        (
            "sslrootcert huge",
            dsn_line(&verify(&f.path("huge.pem"))),
            vec!["sslrootcert".into(), "larger than".into()],
        ),
        (
            "sslcert FIFO",
            dsn_line(&format!(
                "{NOWHERE} sslmode=require sslcert={fifo} sslkey={}",
                f.path("client.key")
            )),
            vec!["sslcert".into(), fifo.clone()],
        ),
        (
            "sslkey FIFO",
            dsn_line(&format!(
                "{NOWHERE} sslmode=require sslcert={} sslkey={fifo}",
                f.path("client.crt")
            )),
            vec!["sslkey".into(), fifo.clone()],
        ),
    ];
    for (name, target, needles) in &culprits {
        fs::write(&config, config_text(port, target)).unwrap();
        let started = Instant::now();
        let (status, body) = running
            .reload(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("{name}: POST /-/reload: {e}\n{}", running.log_text()));
        let took = started.elapsed();
        assert!(
            status != 200 && needles.iter().all(|n| body.contains(n.as_str())),
            "{name}: {status} {body:?}, wanted {needles:?}"
        );
        assert!(
            took < Duration::from_secs(8),
            "{name}: the reload took {took:?}"
        );
        assert_eq!(body.trim_end().lines().count(), 1, "{name}: {body:?}");
        running.wait_for(&format!("{name}: reload reported failed"), |m| {
            reload_ok(m) == Some(0.0)
        });
        assert!(
            running.running(),
            "{name}: the exporter died:\n{}",
            running.log_text()
        );
        fs::write(&config, &good).unwrap();
        let (status, body) = running
            .reload(Duration::from_secs(15))
            .expect("fixed reload");
        assert_eq!(status, 200, "{name}: fixed reload: {body}");
        running.wait_for(&format!("{name}: reload reported successful"), |m| {
            reload_ok(m) == Some(1.0)
        });
    }

    // A refused reload leaves the supervisor at work: the watchdog still
    // restarts a hung task, and SIGTERM still stops the process.
    fs::write(&config, config_text(port, &culprits[0].1)).unwrap();
    running.signal("HUP");
    running.wait_for("SIGHUP reload refused", |m| reload_ok(m) == Some(0.0));
    fs::write(&faults, "t hang\n").unwrap();
    running.wait_for("the hung task restarted by the watchdog", |m| {
        m.get("pgrepl_collector_restarts_total", &[("target", "t")]) == Some(1.0)
    });
    running.terminate_within(Duration::from_secs(10));
}

/// The web certificate replaced by a FIFO while serving: the watcher says
/// it does not load and keeps the running pair; SIGTERM still stops the
/// process.
#[test]
fn a_web_certificate_replaced_by_a_fifo_does_not_wedge_shutdown() {
    let f = Files::new();
    let dir = f.dir.path();
    fs::copy(dir.join("server.crt"), dir.join("live.crt")).unwrap();
    fs::copy(dir.join("server.key"), dir.join("live.key")).unwrap();
    let web = dir.join("web.yml");
    fs::write(
        &web,
        "tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n",
    )
    .unwrap();
    let config = dir.join("config.toml");
    fs::write(
        &config,
        config_text(common::free_port(), &dsn_line(NOWHERE)),
    )
    .unwrap();
    let mut running = Running::start(
        &config,
        &["--web.config.file".into(), web.display().to_string()],
        &[],
        dir,
    );
    let https = |port: u16| {
        common::curl_status(&[
            "--cacert",
            &f.path("ca.crt"),
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
            &format!("https://localhost:{port}/healthz"),
        ])
    };
    assert!(common::wait_until(WAIT, || https(running.port) == "200"));
    // The watcher is at work (it has seen the files once): a rotation to
    // the same pair is picked up.
    fs::copy(dir.join("server.crt"), dir.join("tmp.crt")).unwrap();
    fs::rename(dir.join("tmp.crt"), dir.join("live.crt")).unwrap();
    assert!(
        common::wait_until(WAIT, || running
            .log_text()
            .contains("TLS certificate and key reloaded")),
        "the watcher did not pick up a rotation:\n{}",
        running.log_text()
    );
    mkfifo(&dir.join("tmp.crt"));
    fs::rename(dir.join("tmp.crt"), dir.join("live.crt")).unwrap();
    assert!(
        common::wait_until(WAIT, || running
            .log_text()
            .contains("keeping the previous pair")),
        "the FIFO was not refused:\n{}",
        running.log_text()
    );
    assert!(
        running.log_text().contains("not a regular file"),
        "{}",
        running.log_text()
    );
    assert_eq!(https(running.port), "200");
    running.terminate_within(Duration::from_secs(10));
}

/// Secrets others may read: a `password_file`, and a configuration file
/// holding a password in a DSN, readable by every user of the machine,
/// are named in a warning at start and on reload (group access, as the
/// Debian package's `root:pgrepl_exporter 0640`, is not warned about).
#[test]
fn secrets_others_may_read_are_named_in_a_warning() {
    let f = Files::new();
    let dir = f.dir.path();
    let password = dir.join("password");
    let port = common::free_port();
    let config = dir.join("config.toml");
    let with_file = config_text(
        port,
        &format!(
            "{}\npassword_file = \"{}\"",
            dsn_line(NOWHERE),
            password.display()
        ),
    );
    let inline = config_text(port, &dsn_line(&format!("{NOWHERE} password=inline-pw")));
    let warned_file = |log: &str| {
        log.lines().any(|l| {
            l.contains("WARN")
                && l.contains("targets[0].password_file")
                && l.contains(&password.display().to_string())
                && l.contains("mode 644")
        })
    };
    let warned_config = |log: &str| {
        log.lines().any(|l| {
            l.contains("WARN")
                && l.contains(&config.display().to_string())
                && l.contains("password")
                && l.contains("mode 644")
        })
    };

    // Private: no word.
    chmod(&password, 0o600);
    fs::write(&config, &with_file).unwrap();
    chmod(&config, 0o644);
    let mut running = Running::start(&config, &[], &[], dir);
    let log = running.log_text();
    assert!(!warned_file(&log) && !log.contains("readable by"), "{log}");
    running.terminate_within(Duration::from_secs(10));

    // Readable by everyone: named at start, and again on reload.
    chmod(&password, 0o644);
    let running = Running::start(&config, &[], &[], dir);
    assert!(warned_file(&running.log_text()), "{}", running.log_text());
    assert!(
        !running.log_text().contains("secret"),
        "the password was logged"
    );
    let before = running
        .log_text()
        .matches("targets[0].password_file")
        .count();
    running.signal("HUP");
    assert!(
        common::wait_until(WAIT, || running
            .log_text()
            .matches("targets[0].password_file")
            .count()
            > before),
        "no warning on reload:\n{}",
        running.log_text()
    );
    drop(running);

    // A config file holding a password: 0644 is named, 0640 is not.
    fs::write(&config, &inline).unwrap();
    chmod(&config, 0o644);
    let running = Running::start(&config, &[], &[], dir);
    assert!(warned_config(&running.log_text()), "{}", running.log_text());
    assert!(
        !running.log_text().contains("inline-pw"),
        "the password was logged"
    );
    drop(running);
    chmod(&config, 0o640);
    let running = Running::start(&config, &[], &[], dir);
    let log = running.log_text();
    assert!(
        !warned_config(&log) && !log.contains("readable by"),
        "{log}"
    );
}
