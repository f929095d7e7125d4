//! The artifacts of `make dist`, used as a DBA uses them: the Debian package
//! installed with `dpkg -i` on this machine (files, owners, modes; the
//! README's SQL, taken from README.md, run on a Debian cluster made by
//! `pg_createcluster` with its default `pg_hba.conf`, and the installed
//! configuration reaching it by peer authentication as the unit's user;
//! the installed binary run under the unit's own user, command line and
//! environment file against a real primary and standby, reload through the
//! unit's `ExecReload=`, `systemd-analyze verify`, then `dpkg --purge`
//! leaving nothing behind; an install over the accounts of a package from
//! before the service user's rename), and the release archive checked against
//! `sha256sums.txt`, extracted and run on a pair.
//!
//! They read the directory named by `PGREPL_TEST_DIST`, which `make
//! test-dist` sets after `make dist`, and are `#[ignore]`d, so that a plain
//! `cargo test` never installs a package on a developer's machine (and does
//! not report them as passed); `make test-dist` runs them with `--ignored`.
//! The package test needs root, as `make test` runs.

use crate::harness as common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Metrics, Pair};

const PACKAGE: &str = "pg-replication-exporter";
/// The system user, its group, and the database role the installed
/// configuration logs in as by peer authentication.
const SERVICE_USER: &str = "pgrepl_exporter";
/// The user of packages built before the rename (a name PostgreSQL
/// reserves for roles).
const OLD_SERVICE_USER: &str = "pg_replication_exporter";
/// A password file the old user owns, for the install over its accounts.
const OLD_PASSWORD_FILE: &str = "/etc/pg_replication_exporter/monitor.password";
const CONFIG: &str = "/etc/pg_replication_exporter/config.toml";
const DEFAULTS: &str = "/etc/default/pg_replication_exporter";
const BINARY: &str = "/usr/bin/pg_replication_exporter";
const UNIT_DIRS: [&str; 2] = ["/usr/lib/systemd/system", "/lib/systemd/system"];
const UNIT: &str = "pg_replication_exporter.service";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const WAIT: Duration = Duration::from_secs(30);

/// The `make dist` output directory, or a panic that says how to get one.
fn dist_dir() -> PathBuf {
    std::env::var_os("PGREPL_TEST_DIST")
        .map(PathBuf::from)
        .expect("PGREPL_TEST_DIST is not set: `make test-dist` builds dist/ and sets it")
}

/// The one file of `dir` whose name ends with `suffix`.
fn one_file(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one file")
}

fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs `cmd`, panics with its output unless it succeeds, returns stdout.
fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fields of the `getent DATABASE KEY` line, `None` when there is none.
fn getent(database: &str, key: &str) -> Option<Vec<String>> {
    let out = output(Command::new("getent").args([database, key]));
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(':')
            .map(str::to_string)
            .collect()
    })
}

/// Permission bits, owner and group of `path`.
fn mode_owner(path: &str) -> (u32, u32, u32) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

fn is_root() -> bool {
    ok(Command::new("id").arg("-u")).trim() == "0"
}

/// Installed, or removed with its configuration files still there.
fn package_installed() -> bool {
    let status = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE])).stdout;
    status.starts_with(b"install ok") || status.starts_with(b"deinstall ok")
}

fn purge() -> Output {
    output(
        Command::new("dpkg")
            .args(["--purge", PACKAGE])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Purges the package when a test fails half-way, so that the machine is
/// left as it was found.
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(OLD_PASSWORD_FILE);
        if package_installed() {
            let _ = purge();
        }
    }
}

/// `Key=value` lines of a systemd unit; a key may repeat.
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    out
}

/// `KEY=value` lines of an environment file, as systemd reads them
/// (comments, blank lines, one level of quotes).
fn environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// A command line of the unit with `$VAR` / `${VAR}` expanded as systemd
/// does for an unquoted variable: split into words.
fn expand(line: &str, env: &[(String, String)]) -> Vec<String> {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        let name = word
            .strip_prefix("${")
            .and_then(|w| w.strip_suffix('}'))
            .or_else(|| word.strip_prefix('$'));
        match name {
            Some(name) => words.extend(lookup(name).split_whitespace().map(str::to_string)),
            None => words.push(word.to_string()),
        }
    }
    words
}

/// An exporter process, killed on drop, scraped on loopback.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Served {
    fn spawn(mut cmd: Command, port: u16, log: PathBuf) -> Served {
        let file = fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let mut served = Served { child, port, log };
        let up = common::wait_until(Duration::from_secs(20), || {
            served.get("/healthz").is_ok() || !served.running()
        });
        assert!(
            up && served.running(),
            "the exporter did not come up:\n{}",
            served.log_text()
        );
        served
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn get(&self, path: &str) -> Result<String, String> {
        let mut resp = common::http_agent()
            .get(&format!("http://127.0.0.1:{}{path}", self.port))
            .call()
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()));
        }
        resp.body_mut().read_to_string().map_err(|e| e.to_string())
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = Metrics::parse(&self.get("/metrics").unwrap_or_default());
            if check(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last scrape:\n{}\nexporter log:\n{}",
                m.text,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pair as two targets of cluster `main`, TOML.
fn pair_targets(pair: &Pair) -> String {
    format!(
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n\n\
         [[targets]]\nname = \"primary\"\ndsn = \"{}\"\ncluster = \"main\"\n\n\
         [[targets]]\nname = \"standby1\"\ndsn = \"{}\"\ncluster = \"main\"\n",
        pair.primary.dsn(),
        pair.standby.dsn()
    )
}

fn up(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_up", &[("target", target)])
}

/// Both targets up, their roles, the standby streaming through its slot.
fn assert_pair_seen(served: &Served) {
    let m = served.wait_for("both targets up, the standby streaming", |m| {
        up(m, "primary") == Some(1.0)
            && up(m, "standby1") == Some(1.0)
            && m.get(
                "pgrepl_standby_state",
                &[("target", "primary"), ("state", "streaming")],
            ) == Some(1.0)
    });
    common::assert_pair_roles(&m);
    assert_eq!(
        m.get("pgrepl_cluster_primaries", &[("cluster", "main")]),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_exporter_build_info", &[("version", VERSION)]),
        Some(1.0)
    );
    common::assert_streaming_async(&m);
}

/// A Debian PostgreSQL cluster of its own (`pg_createcluster`, started with
/// `pg_ctlcluster`, Debian's default `pg_hba.conf`), on a port nothing else
/// uses; dropped on drop.
struct DebianCluster {
    version: String,
    name: String,
    port: u16,
}

impl DebianCluster {
    fn create(name: &str) -> DebianCluster {
        let version = common::pg_bin()
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|v| v.to_str())
            .expect("the PostgreSQL version directory")
            .to_string();
        let cluster = DebianCluster {
            version,
            name: name.to_string(),
            port: common::free_port(),
        };
        // A run that died before dropping it.
        cluster.drop_cluster();
        ok(Command::new("pg_createcluster")
            .args(["-p", &cluster.port.to_string()])
            .args([&cluster.version, &cluster.name]));
        let cluster_started =
            output(Command::new("pg_ctlcluster").args([&cluster.version, &cluster.name, "start"]));
        assert!(
            cluster_started.status.success(),
            "pg_ctlcluster start: {}",
            String::from_utf8_lossy(&cluster_started.stderr)
        );
        cluster
    }

    fn hba(&self) -> String {
        let path = format!("/etc/postgresql/{}/{}/pg_hba.conf", self.version, self.name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `psql` as the `postgres` user over the socket, as a DBA runs it;
    /// `sql` on its standard input.
    fn psql(&self, sql: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-p", &self.port.to_string()])
            .args(["-d", "postgres", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        child
            .stdin
            .take()
            .expect("psql stdin")
            .write_all(sql.as_bytes())
            .expect("write to psql");
        let out = child.wait_with_output().expect("psql output");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn drop_cluster(&self) {
        let _ = output(Command::new("pg_dropcluster").args(["--stop", &self.version, &self.name]));
    }
}

impl Drop for DebianCluster {
    fn drop(&mut self) {
        self.drop_cluster();
    }
}

/// The SQL the README tells a DBA to run for the package: the fenced
/// `sql` block after the `(package-sql` doctest marker, so the test runs what
/// the README says, word for word.
fn readme_package_sql() -> String {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let after = readme
        .split_once("(package-sql")
        .expect("README.md has no (package-sql doctest marker before the package's SQL")
        .1;
    let block = after
        .split_once("```sql\n")
        .expect("no ```sql block after the marker")
        .1
        .split_once("```")
        .expect("unterminated ```sql block")
        .0;
    assert!(
        after
            .find("```sql")
            .is_some_and(|at| after[..at].lines().count() <= 2),
        "the ```sql block must follow the marker"
    );
    block.to_string()
}

/// ExecStart= as systemd would run it: the unit's user and group, its
/// environment file, no new privileges, a clean environment.
fn exec_start(settings: &BTreeMap<String, Vec<String>>, port: u16, log: PathBuf) -> Served {
    let one = |key: &str| -> String {
        let v = settings
            .get(key)
            .unwrap_or_else(|| panic!("unit has no {key}="));
        assert_eq!(v.len(), 1, "{key}= repeated: {v:?}");
        v[0].clone()
    };
    let passwd = getent("passwd", &one("User")).expect("the unit's user exists");
    let env = environment_file(&fs::read_to_string(DEFAULTS).expect("read defaults"));
    let exec = expand(&one("ExecStart"), &env);
    assert_eq!(exec[0], BINARY);
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={}", one("User")),
        &format!("--regid={}", one("Group")),
        "--init-groups",
        "--no-new-privs",
        "--",
    ])
    .args(&exec)
    .env_clear()
    .env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )
    .env("HOME", &passwd[5])
    .env("USER", &passwd[0])
    .env("LOGNAME", &passwd[0])
    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    .current_dir("/");
    common::without_harness_env(&mut cmd);
    Served::spawn(cmd, port, log)
}

/// The flags a DBA would put in the environment file: a port of our own
/// and logfmt.
fn write_defaults(port: u16) {
    fs::write(
        DEFAULTS,
        format!("# written by tests/it/packaging.rs\nARGS=\"--web.listen-address=127.0.0.1:{port} --log.format=logfmt\"\n"),
    )
    .expect("write the defaults file");
}

fn dpkg_install(deb: &Path) -> String {
    ok(Command::new("dpkg")
        .arg("-i")
        .arg(deb)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// What `dpkg --purge` may not leave behind.
fn left_after_purge() -> Vec<String> {
    let mut left: Vec<String> = [
        BINARY,
        "/etc/pg_replication_exporter",
        DEFAULTS,
        "/usr/share/pg-replication-exporter",
        "/usr/share/doc/pg-replication-exporter",
        "/etc/systemd/system/multi-user.target.wants/pg_replication_exporter.service",
        "/etc/systemd/system/pg_replication_exporter.service",
    ]
    .iter()
    .map(PathBuf::from)
    .chain(UNIT_DIRS.iter().map(|d| Path::new(d).join(UNIT)))
    .filter(|p| p.symlink_metadata().is_ok())
    .map(|p| p.display().to_string())
    .collect();
    for name in [SERVICE_USER, OLD_SERVICE_USER] {
        if getent("passwd", name).is_some() {
            left.push(format!("user {name}"));
        }
        if getent("group", name).is_some() {
            left.push(format!("group {name}"));
        }
    }
    let overrides = ok(Command::new("dpkg-statoverride").arg("--list"));
    if overrides.contains("/etc/pg_replication_exporter") {
        left.push(format!("stat override: {overrides}"));
    }
    left
}

/// Removes the accounts of the package before the rename and the password
/// file, left by a run that died half-way.
fn remove_old_accounts() {
    let _ = fs::remove_file(OLD_PASSWORD_FILE);
    if getent("passwd", OLD_SERVICE_USER).is_some() {
        let _ = output(Command::new("userdel").arg(OLD_SERVICE_USER));
    }
    if getent("group", OLD_SERVICE_USER).is_some() {
        let _ = output(Command::new("groupdel").arg(OLD_SERVICE_USER));
    }
}

#[test]
#[ignore = "installs the package (root, make dist): make test-dist"]
fn deb_installs_runs_as_its_service_and_purges_clean() {
    let dist = dist_dir();
    assert!(
        is_root(),
        "installing the package needs root (make test-dist runs as root)"
    );
    let deb = one_file(&dist, ".deb");
    if package_installed() {
        // A run that died before its purge.
        assert!(
            purge().status.success(),
            "could not purge a leftover {PACKAGE}"
        );
    }
    remove_old_accounts();
    // Dropped last: the cluster outlives the package and its exporter.
    let cluster = DebianCluster::create("pgrepl_pkgtest");
    let _purge = PurgeOnDrop;
    dpkg_install(&deb);

    // What dpkg recorded: version, the dependencies found in the binary,
    // the two configuration files as conffiles.
    let query = |field: &str| {
        ok(Command::new("dpkg-query").args(["-W", &format!("-f=${{{field}}}"), PACKAGE]))
    };
    assert_eq!(query("Version"), format!("{VERSION}-1"));
    let depends = query("Depends");
    assert!(
        depends.contains("libc6 (>= ") && depends.contains("passwd"),
        "Depends: {depends}"
    );
    let conffiles = query("Conffiles");
    for file in [CONFIG, DEFAULTS] {
        assert!(
            conffiles.contains(file),
            "{file} is not a conffile: {conffiles}"
        );
    }

    // The service user: a system account without login or home.
    let passwd = getent("passwd", SERVICE_USER).expect("the service user exists");
    let group = getent("group", SERVICE_USER).expect("the service group exists");
    let (uid, gid): (u32, u32) = (
        passwd[2].parse().expect("uid"),
        group[2].parse().expect("gid"),
    );
    assert!(uid < 1000, "not a system uid: {passwd:?}");
    assert_eq!(passwd[3], group[2], "primary group: {passwd:?}");
    assert_eq!(passwd[5], "/nonexistent");
    assert_eq!(passwd[6], "/usr/sbin/nologin");
    assert!(!Path::new("/nonexistent").exists());

    // Files, owners, modes: the configuration readable by root and the
    // service's group only.
    assert_eq!(mode_owner(BINARY), (0o755, 0, 0));
    assert_eq!(mode_owner(CONFIG), (0o640, 0, gid));
    assert_eq!(mode_owner("/etc/pg_replication_exporter"), (0o755, 0, 0));
    assert_eq!(mode_owner(DEFAULTS), (0o644, 0, 0));
    for shared in [
        "/usr/share/pg-replication-exporter/alerts/pg-replication.rules.yml",
        "/usr/share/pg-replication-exporter/alerts/alertmanager.yml",
        "/usr/share/pg-replication-exporter/dashboards/pg-replication-overview.json",
        "/usr/share/doc/pg-replication-exporter/copyright",
        "/usr/share/doc/pg-replication-exporter/README.md",
    ] {
        assert_eq!(mode_owner(shared), (0o644, 0, 0), "{shared}");
    }
    let version = ok(Command::new(BINARY).arg("--version"));
    assert!(version.contains(VERSION), "--version: {version}");
    let read_as = |user: &str| {
        output(Command::new("setpriv").args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            "cat",
            CONFIG,
        ]))
        .status
        .success()
    };
    assert!(
        read_as(SERVICE_USER),
        "the service user cannot read {CONFIG}"
    );
    assert!(!read_as("nobody"), "nobody can read {CONFIG}");

    // The unit: where systemd looks, with the sandbox and the hooks the
    // README promises, and valid for systemd itself.
    let unit = UNIT_DIRS
        .iter()
        .map(|d| Path::new(d).join(UNIT))
        .find(|p| p.is_file())
        .expect("the unit is installed");
    let settings = unit_settings(&fs::read_to_string(&unit).expect("read unit"));
    let one = |key: &str| -> String {
        let v = settings
            .get(key)
            .unwrap_or_else(|| panic!("unit has no {key}="));
        assert_eq!(v.len(), 1, "{key}= repeated: {v:?}");
        v[0].clone()
    };
    for (key, want) in [
        ("User", SERVICE_USER),
        ("Group", SERVICE_USER),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("EnvironmentFile", &format!("-{DEFAULTS}")),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("WantedBy", "multi-user.target"),
    ] {
        assert_eq!(one(key), want, "{key}= in {}", unit.display());
    }
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify {}:\n{}",
            unit.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            let line = format!("SKIPPED: systemd-analyze verify and security: {e}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
    }
    // systemd's own rating of the sandbox: an exposure of 2.0 or less of 10
    // ("OK"; the unit rates 1.2), so that a lost hardening line fails here.
    if let Ok(out) = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&unit)
        .stdin(Stdio::null())
        .output()
    {
        assert!(
            out.status.success(),
            "systemd-analyze security rates the unit above 2.0:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    if Path::new("/run/systemd/system").is_dir() {
        // On a machine run by systemd the package started the service:
        // this test runs ExecStart= itself instead.
        ok(Command::new("systemctl").args(["stop", UNIT]));
    }

    // What the README tells a DBA: the installed configuration, watching
    // the local server over its socket by peer authentication under
    // Debian's default pg_hba.conf, once the README's SQL has run on it.
    // The one edit: this cluster's port, which is not 5432.
    let hba: Vec<String> = cluster
        .hba()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        hba.iter().any(|l| l == "local all all peer"),
        "not Debian's default pg_hba.conf:\n{}",
        cluster.hba()
    );
    let installed = fs::read_to_string(CONFIG).expect("read config");
    let dsn_line =
        format!("dsn = \"host=/var/run/postgresql dbname=postgres user={SERVICE_USER}\"");
    assert!(
        installed.lines().any(|l| l == dsn_line),
        "the installed configuration has no line {dsn_line:?}:\n{installed}"
    );
    let sql = readme_package_sql();
    if let Err(e) = cluster.psql(&sql) {
        panic!("the README's SQL fails as written:\n{sql}\n{e}");
    }
    fs::write(
        CONFIG,
        installed.replace(
            &dsn_line,
            &dsn_line.replace("\"host=", &format!("\"port={} host=", cluster.port)),
        ),
    )
    .expect("write the port into the installed config");
    assert_eq!(mode_owner(CONFIG), (0o640, 0, gid));
    let port = common::free_port();
    write_defaults(port);
    let scratch = tempfile::tempdir().expect("tempdir");
    let local = exec_start(&settings, port, scratch.path().join("local.log"));
    let m = local.wait_for("the local server up, as the README promises", |m| {
        up(m, "local") == Some(1.0)
    });
    assert_eq!(
        m.get("pgrepl_in_recovery", &[("target", "local")]),
        Some(0.0)
    );
    assert_eq!(
        cluster
            .psql("SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'pg_replication_exporter'")
            .expect("pg_stat_activity"),
        SERVICE_USER
    );
    assert!(
        !local.log_text().contains("readable by other users"),
        "{}",
        local.log_text()
    );
    drop(local);

    // The installed configuration pointed at a real pair; flags through the
    // environment file. Both files stay as the administrator left them when
    // the package is installed again.
    let pair = Pair::start("deb");
    let port = common::free_port();
    fs::write(CONFIG, pair_targets(&pair)).expect("write the installed config");
    write_defaults(port);
    let written = fs::read_to_string(CONFIG).expect("read config");
    dpkg_install(&deb);
    assert_eq!(fs::read_to_string(CONFIG).expect("read config"), written);
    assert_eq!(mode_owner(CONFIG), (0o640, 0, gid));
    if Path::new("/run/systemd/system").is_dir() {
        // The second install restarted the service on the same port.
        ok(Command::new("systemctl").args(["stop", UNIT]));
    }

    let mut served = exec_start(&settings, port, scratch.path().join("exporter.log"));
    assert_pair_seen(&served);
    assert!(
        served.log_text().contains("level=info"),
        "ARGS did not reach the exporter (no logfmt):\n{}",
        served.log_text()
    );
    let proc_status =
        fs::read_to_string(format!("/proc/{}/status", served.child.id())).expect("/proc status");
    let ids = |key: &str| -> Vec<u32> {
        proc_status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    assert_eq!(ids("Uid:"), vec![uid; 4], "{proc_status}");
    assert_eq!(ids("Gid:"), vec![gid; 4], "{proc_status}");
    assert_eq!(ids("Groups:"), vec![gid], "{proc_status}");
    assert_eq!(ids("NoNewPrivs:"), vec![1], "{proc_status}");

    // ExecReload= re-reads the configuration: the standby target goes.
    fs::write(
        CONFIG,
        pair_targets(&pair)
            .split("\n[[targets]]\nname = \"standby1\"")
            .next()
            .expect("primary part"),
    )
    .expect("rewrite config");
    let reload = one("ExecReload").replace("$MAINPID", &served.child.id().to_string());
    let words: Vec<&str> = reload.split_whitespace().collect();
    ok(Command::new(words[0]).args(&words[1..]));
    served.wait_for("the standby target gone after ExecReload", |m| {
        up(m, "primary") == Some(1.0) && up(m, "standby1").is_none()
    });
    assert!(served.running(), "the exporter stopped on reload");
    drop(served);

    // Remove keeps what the administrator wrote (the configuration, the
    // user that owns its group); purge then takes everything.
    ok(Command::new("dpkg")
        .args(["--remove", PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(
        !Path::new(BINARY).exists(),
        "{BINARY} kept by dpkg --remove"
    );
    assert!(
        fs::read_to_string(CONFIG).is_ok_and(|c| c.contains("name = \"primary\"")),
        "dpkg --remove did not keep {CONFIG}"
    );
    assert!(getent("passwd", SERVICE_USER).is_some());

    // Purge: nothing of the package is left.
    let out = purge();
    assert!(
        out.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = left_after_purge();
    assert!(left.is_empty(), "left behind by dpkg --purge: {left:?}");

    // An install made by a package from before the rename: its user and
    // group `pg_replication_exporter` (a name PostgreSQL refuses for a
    // role), the stat override it set, a password file its user owns. The
    // install renames the account, keeping uid and gid, and moves the
    // override to the new group.
    ok(Command::new("groupadd").args(["--system", OLD_SERVICE_USER]));
    ok(Command::new("useradd").args([
        "--system",
        "--gid",
        OLD_SERVICE_USER,
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        "PostgreSQL replication exporter",
        OLD_SERVICE_USER,
    ]));
    let old = getent("passwd", OLD_SERVICE_USER).expect("the old user");
    let (old_uid, old_gid): (u32, u32) =
        (old[2].parse().expect("uid"), old[3].parse().expect("gid"));
    fs::create_dir_all("/etc/pg_replication_exporter").expect("config dir");
    let secret = OLD_PASSWORD_FILE;
    fs::write(secret, "s3cret\n").expect("password file");
    ok(Command::new("chown").args([&format!("{OLD_SERVICE_USER}:{OLD_SERVICE_USER}"), secret]));
    ok(Command::new("chmod").args(["0600", secret]));
    ok(Command::new("dpkg-statoverride").args(["--add", "root", OLD_SERVICE_USER, "0640", CONFIG]));
    let out = output(
        Command::new("dpkg")
            .arg("-i")
            .arg(&deb)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    );
    assert!(
        out.status.success(),
        "dpkg -i over the old accounts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        getent("passwd", OLD_SERVICE_USER).is_none(),
        "the old user is still there"
    );
    assert!(
        getent("group", OLD_SERVICE_USER).is_none(),
        "the old group is still there"
    );
    let renamed = getent("passwd", SERVICE_USER).expect("the renamed user");
    assert_eq!(
        (renamed[2].clone(), renamed[3].clone()),
        (old_uid.to_string(), old_gid.to_string())
    );
    assert_eq!(mode_owner(secret), (0o600, old_uid, old_gid));
    assert_eq!(mode_owner(CONFIG), (0o640, 0, old_gid));
    assert_eq!(
        ok(Command::new("dpkg-statoverride").args(["--list", CONFIG])).trim(),
        format!("root {SERVICE_USER} 640 {CONFIG}")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("CREATE ROLE {SERVICE_USER} LOGIN")),
        "the upgrade does not tell the DBA the new role: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(secret).expect("remove the password file");
    let out = purge();
    assert!(
        out.status.success(),
        "dpkg --purge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left = left_after_purge();
    assert!(left.is_empty(), "left behind by dpkg --purge: {left:?}");
}

#[test]
#[ignore = "needs the artifacts of make dist: make test-dist"]
fn archive_matches_its_checksums_and_runs_on_a_pair() {
    let dist = dist_dir();
    let tarball = one_file(&dist, ".tar.gz");
    let deb = one_file(&dist, ".deb");

    // sha256sums.txt names both artifacts and `sha256sum -c` agrees.
    let sums = fs::read_to_string(dist.join("sha256sums.txt")).expect("sha256sums.txt");
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split_once("  ").expect("`HASH  NAME` line").1)
        .collect();
    listed.sort_unstable();
    let mut expected = vec![
        tarball.file_name().and_then(|n| n.to_str()).expect("name"),
        deb.file_name().and_then(|n| n.to_str()).expect("name"),
    ];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    ok(Command::new("sha256sum")
        .args(["-c", "--strict", "sha256sums.txt"])
        .current_dir(&dist));

    // The layout of the Prometheus exporters' archives: one directory named
    // after the version and platform.
    let arch = ok(Command::new("dpkg").arg("--print-architecture"));
    let top = format!("pg_replication_exporter-{VERSION}.linux-{}", arch.trim());
    assert_eq!(
        tarball.file_name().and_then(|n| n.to_str()),
        Some(format!("{top}.tar.gz").as_str())
    );
    let out = tempfile::tempdir().expect("tempdir");
    ok(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(out.path()));
    let entries: Vec<String> = fs::read_dir(out.path())
        .expect("extracted")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, vec![top.clone()]);
    let root = out.path().join(&top);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shipped = vec![
        ("LICENSE", "LICENSE"),
        ("README.md", "README.md"),
        ("CHANGELOG.md", "CHANGELOG.md"),
        ("config.example.toml", "packaging/config.toml"),
        ("alerts/alertmanager.yml", "alerts/alertmanager.yml"),
    ];
    let globbed: Vec<(String, String)> = ["alerts", "dashboards"]
        .iter()
        .flat_map(|dir| {
            fs::read_dir(repo.join(dir))
                .expect("repo dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".rules.yml") || n.ends_with(".json"))
                .map(move |n| (format!("{dir}/{n}"), format!("{dir}/{n}")))
        })
        .collect();
    shipped.extend(globbed.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    assert!(
        shipped.iter().any(|(a, _)| a.starts_with("dashboards/")),
        "no dashboards found in the repository"
    );
    for (in_archive, in_repo) in &shipped {
        let a = fs::read(root.join(in_archive)).unwrap_or_else(|e| panic!("{in_archive}: {e}"));
        let r = fs::read(repo.join(in_repo)).unwrap_or_else(|e| panic!("{in_repo}: {e}"));
        assert!(
            a == r,
            "{in_archive} differs from {in_repo}: dist/ is stale, run `make dist`"
        );
    }

    // The binary: what --version prints is in VERSION, and it is the
    // package's binary, byte for byte.
    let binary = root.join("pg_replication_exporter");
    assert_eq!(fs::metadata(&binary).expect("binary").mode() & 0o777, 0o755);
    let version = ok(Command::new(&binary).arg("--version"));
    assert!(version.contains(VERSION), "--version: {version}");
    assert_eq!(
        fs::read_to_string(root.join("VERSION")).expect("VERSION"),
        version
    );
    let unpacked = out.path().join("deb");
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    assert!(
        fs::read(&binary).expect("binary")
            == fs::read(unpacked.join("usr/bin/pg_replication_exporter")).expect("deb binary"),
        "the archive's binary is not the package's"
    );

    // The example configuration loads as shipped (its one target is the
    // local socket, up or not on this machine).
    let port = common::free_port();
    let mut cmd = Command::new(&binary);
    cmd.arg("--config")
        .arg(root.join("config.example.toml"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    common::without_harness_env(&mut cmd);
    let example = Served::spawn(cmd, port, out.path().join("example.log"));
    let m = example.wait_for("the example's target collected once", |m| {
        up(m, "local").is_some()
    });
    assert_eq!(m.all("pgrepl_up", &[]).len(), 1);
    drop(example);

    // And on a real pair.
    let pair = Pair::start("tarball");
    let port = common::free_port();
    let config = out.path().join("pair.toml");
    fs::write(
        &config,
        format!(
            "listen_address = \"127.0.0.1:{port}\"\n{}",
            pair_targets(&pair)
        ),
    )
    .expect("write config");
    let mut cmd = Command::new(&binary);
    cmd.arg("--config").arg(&config);
    common::without_harness_env(&mut cmd);
    let served = Served::spawn(cmd, port, out.path().join("pair.log"));
    assert_pair_seen(&served);
}
