//! Security: TLS and basic auth on the HTTP side (exporter-toolkit web
//! config), every libpq sslmode towards PostgreSQL, no password anywhere,
//! and a role without pg_monitor.

use crate::harness as common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Exporter, KeyAlg, Metrics, Pair, Scratch};

const WAIT: Duration = Duration::from_secs(30);

/// A CA and a server certificate for `localhost` only, signed by it, plus
/// an unrelated second CA.
fn make_certs(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        common::make_ca(dir, ca, KeyAlg::Rsa2048);
    }
    common::make_leaf(
        dir,
        "server",
        "ca",
        KeyAlg::Rsa2048,
        "localhost",
        "serverAuth",
        "DNS:localhost",
    );
}

#[test]
fn web_config_tls_and_basic_auth() {
    let pair = Pair::start("webtls");
    let scratch = Scratch::new("webtls-certs");
    let dir = &scratch.path;
    make_certs(dir);
    let hash = bcrypt::hash("scrape-Secret-77", 4).unwrap();
    let web = dir.join("web.yml");
    fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\nbasic_auth_users:\n  prometheus: {hash}\n",
            dir.display()
        ),
    )
    .unwrap();
    let exporter = Exporter::start_with(
        &[("primary", pair.primary.dsn())],
        "collect_interval = \"1s\"\n",
        &["--web.config.file", web.to_str().unwrap()],
    );
    let url = format!("https://localhost:{}/metrics", exporter.port);
    let ca = dir.join("ca.crt");
    let ca = ca.to_str().unwrap();
    assert!(common::wait_until(WAIT, || common::curl_status(&[
        "--cacert",
        ca,
        "-u",
        "prometheus:scrape-Secret-77",
        &url
    ]) == "200"));
    // The body is the real exposition.
    let out = Command::new("curl")
        .args([
            "-s",
            "--cacert",
            ca,
            "-u",
            "prometheus:scrape-Secret-77",
            &url,
        ])
        .output()
        .unwrap();
    let m = Metrics::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(m.has("pgrepl_up", &[("target", "primary")]));
    assert_eq!(
        common::curl_status(&["--cacert", ca, "-u", "prometheus:wrong", &url]),
        "401"
    );
    assert_eq!(
        common::curl_status(&["--cacert", ca, "-u", "nobody:scrape-Secret-77", &url]),
        "401"
    );
    assert_eq!(common::curl_status(&["--cacert", ca, &url]), "401");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = common::curl_status(&[&format!("http://127.0.0.1:{}/metrics", exporter.port)]);
    assert!(
        plain == "000" || plain.starts_with('4'),
        "plain HTTP answered {plain}"
    );
    let raw = common::raw_request(exporter.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!raw.starts_with(b"HTTP/1.1 200"));

    // A bad web config is a start-up error naming the file.
    let bad = dir.join("bad-web.yml");
    fs::write(
        &bad,
        "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .args(["--web.config.file", bad.to_str().unwrap()])
        .env("PGREPL_DSN", pair.primary.dsn())
        .env(
            "PGREPL_LISTEN_ADDRESS",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-web.yml") && err.contains("/nonexistent.crt") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn every_sslmode_towards_postgresql() {
    let scratch_certs = Scratch::new("pgtls-certs");
    let certs = &scratch_certs.path;
    make_certs(certs);
    let pair = Pair::start("pgtls");
    for f in ["server.crt", "server.key"] {
        let dest = pair.primary.data.join(f);
        fs::copy(certs.join(f), &dest).unwrap();
        Command::new("chown")
            .args(["postgres:postgres", dest.to_str().unwrap()])
            .status()
            .unwrap();
        Command::new("chmod")
            .args(["600", dest.to_str().unwrap()])
            .status()
            .unwrap();
    }
    pair.primary.psql("ALTER SYSTEM SET ssl = on");
    pair.primary.psql("SELECT pg_reload_conf()");
    assert!(common::wait_until(WAIT, || pair.primary.psql("SHOW ssl") == "on"));

    let base = |host: &str, extra: &str| {
        format!(
            "host={host} port={} user=monitor password={} dbname=postgres {extra}",
            pair.primary.port,
            common::MONITOR_PASSWORD
        )
    };
    let ca = certs.join("ca.crt");
    let other = certs.join("other-ca.crt");
    let targets = [
        ("disable", base("127.0.0.1", "sslmode=disable")),
        ("prefer", base("127.0.0.1", "sslmode=prefer")),
        ("require", base("127.0.0.1", "sslmode=require")),
        (
            "verify_ca",
            base(
                "127.0.0.1",
                &format!("sslmode=verify-ca sslrootcert={}", ca.display()),
            ),
        ),
        (
            "verify_full",
            base(
                "localhost",
                &format!("sslmode=verify-full sslrootcert={}", ca.display()),
            ),
        ),
        (
            "verify_full_wrong_name",
            base(
                "127.0.0.1",
                &format!("sslmode=verify-full sslrootcert={}", ca.display()),
            ),
        ),
        (
            "verify_ca_wrong_ca",
            base(
                "127.0.0.1",
                &format!("sslmode=verify-ca sslrootcert={}", other.display()),
            ),
        ),
        (
            "require_with_wrong_ca",
            base(
                "127.0.0.1",
                &format!("sslmode=require sslrootcert={}", other.display()),
            ),
        ),
    ];
    let refs: Vec<(&str, String)> = targets.iter().map(|(n, d)| (*n, d.clone())).collect();
    let exporter = Exporter::start_with(
        &refs,
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &[],
    );
    let m = exporter.wait_for("every mode settled", WAIT, |m| {
        ["disable", "prefer", "require", "verify_ca", "verify_full"]
            .iter()
            .all(|t| m.get("pgrepl_up", &[("target", t)]) == Some(1.0))
            && [
                "verify_full_wrong_name",
                "verify_ca_wrong_ca",
                "require_with_wrong_ca",
            ]
            .iter()
            .all(|t| {
                m.get("pgrepl_collect_errors_total", &[("target", t)])
                    .unwrap_or(0.0)
                    >= 2.0
            })
    });
    for t in [
        "verify_full_wrong_name",
        "verify_ca_wrong_ca",
        "require_with_wrong_ca",
    ] {
        assert_eq!(m.get("pgrepl_up", &[("target", t)]), Some(0.0), "{t}");
    }
    let line = |t: &str| exporter.down_line(t);
    assert!(
        line("verify_full_wrong_name").contains("not valid for name"),
        "{}",
        line("verify_full_wrong_name")
    );
    assert!(
        line("verify_ca_wrong_ca")
            .to_lowercase()
            .contains("unknownissuer"),
        "{}",
        line("verify_ca_wrong_ca")
    );
    // Sessions really are encrypted, except with sslmode=disable.
    let ssl = pair.primary.psql(
        "SELECT string_agg(DISTINCT s.ssl::text, ',' ORDER BY s.ssl::text) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'pg_replication_exporter'",
    );
    assert_eq!(ssl, "false,true");

    // verify-full without a CA is a configuration error.
    let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .env("PGREPL_DSN", base("localhost", "sslmode=verify-full"))
        .env(
            "PGREPL_LISTEN_ADDRESS",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sslrootcert"));

    // sslrootcert=system (libpq 16): the system's CA store, here pointed at
    // the test CA by SSL_CERT_FILE, and verify-full implied.
    let system = |name: &str, host: &str| {
        format!(
            "[[targets]]\nname = \"{name}\"\ndsn = \"{}\"\n",
            base(host, "sslrootcert=system")
        )
    };
    up_with_env(
        &scratch_certs,
        "system_roots",
        &system("system_roots", "localhost"),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let errors = "pgrepl_collect_errors_total{target=\"system_wrong_name\"} 2";
    let (ok, last, err) = run_with_env(
        &scratch_certs,
        "system_wrong_name",
        &system("system_wrong_name", "127.0.0.1"),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        |m| m.contains(errors),
    );
    assert!(ok, "verify-full was not implied:\n{last}\n{err}");
    assert!(
        last.contains("pgrepl_up{target=\"system_wrong_name\"} 0"),
        "{last}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .env_clear()
        .env(
            "PGREPL_DSN",
            base("localhost", "sslrootcert=system sslmode=require"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("weak sslmode"), "{stderr}");
}

#[test]
fn passwords_never_leak_even_at_trace_level() {
    let pair = Pair::start("leak");
    let scratch = Scratch::new("leak-files");
    let pwfile = scratch.path.join("pgpass");
    fs::write(&pwfile, format!("{}\n", common::MONITOR_PASSWORD)).unwrap();
    let wrong = "Wrong-Secret-31337";
    let port = common::free_port();
    let config = scratch.path.join("c.toml");
    fs::write(
        &config,
        format!(
            "listen_address = \"127.0.0.1:{port}\"\ncollect_interval = \"1s\"\n\
             [[targets]]\nname = \"dsn_password\"\ndsn = \"{}\"\n\
             [[targets]]\nname = \"file_password\"\ndsn = \"host=127.0.0.1 port={} user=monitor dbname=postgres sslmode=disable\"\npassword_file = \"{}\"\n\
             [[targets]]\nname = \"url_wrong\"\ndsn = \"postgresql://monitor:{wrong}@127.0.0.1:{}/postgres?sslmode=disable\"\n",
            pair.primary.dsn(),
            pair.primary.port,
            pwfile.display(),
            pair.primary.port
        ),
    )
    .unwrap();
    let log = scratch.path.join("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .args(["--config", config.to_str().unwrap(), "--log.level", "trace"])
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(scratch.path.join("err")).unwrap())
        .spawn()
        .unwrap();
    let get = |path: &str| {
        let raw = common::try_raw_request(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        String::from_utf8_lossy(&raw.unwrap_or_default()).into_owned()
    };
    let ok = common::wait_until(WAIT, || {
        let m = get("/metrics");
        m.contains("pgrepl_up{target=\"file_password\"} 1")
            && m.contains("pgrepl_up{target=\"dsn_password\"} 1")
            && m.contains("pgrepl_collect_errors_total{target=\"url_wrong\"} 2")
    });
    let outputs = [
        get("/metrics"),
        get("/"),
        fs::read_to_string(&log).unwrap_or_default(),
        fs::read_to_string(scratch.path.join("err")).unwrap_or_default(),
    ];
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "targets did not settle:\n{}", outputs[0]);
    assert!(
        outputs[3].contains("TRACE") || outputs[3].contains("DEBUG"),
        "trace logging was not on"
    );
    for (i, text) in outputs.iter().enumerate() {
        for secret in [common::MONITOR_PASSWORD, wrong] {
            assert!(
                !text.contains(secret),
                "output {i} contains a password:\n{text}"
            );
        }
    }
}

#[test]
fn role_without_pg_monitor_skips_with_one_warning() {
    let pair = Pair::start("plain");
    pair.primary
        .psql("CREATE ROLE plain LOGIN PASSWORD 'plain-Secret-5'");
    let dsn = |port: u16| {
        format!("host=127.0.0.1 port={port} user=plain password=plain-Secret-5 dbname=postgres sslmode=disable")
    };
    // The role replicates to the standby.
    assert!(common::wait_until(WAIT, || pair
        .standby
        .psql("SELECT count(*) FROM pg_roles WHERE rolname = 'plain'")
        == "1"));
    let exporter = Exporter::start(&[
        ("primary", dsn(pair.primary.port)),
        ("standby1", dsn(pair.standby.port)),
    ]);
    let m = exporter.wait_for("both up as a plain role", WAIT, |m| {
        m.get("pgrepl_up", &[("target", "primary")]) == Some(1.0)
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(1.0)
    });
    // What holds at the first collection holds at the next ones, and the
    // warning is not repeated (counted below).
    let check = |m: &common::Metrics| {
        assert!(!m.has("pgrepl_wal_directory_bytes", &[]));
        assert_eq!(
            m.get("pgrepl_in_recovery", &[("target", "standby1")]),
            Some(1.0)
        );
        assert_eq!(
            m.get("pgrepl_standbys", &[("target", "primary")]),
            Some(1.0)
        );
        assert!(m.has("pgrepl_slot_active", &[("target", "primary")]));
        assert_eq!(
            m.get("pgrepl_collect_errors_total", &[("target", "primary")]),
            Some(0.0)
        );
    };
    check(&m);
    for target in ["primary", "standby1"] {
        exporter.through_cycles(target, 2.0, WAIT, check);
    }
    let log = exporter.log_text();
    assert_eq!(
        log.matches("GRANT pg_monitor").count(),
        2,
        "one warning per target:\n{log}"
    );
}

/// Runs the exporter on `toml` (a `listen_address` is added) with only
/// `vars` in its environment until `done(metrics text)`; returns whether it
/// got there, the last metrics text and the exporter's stderr.
fn run_with_env(
    scratch: &Scratch,
    name: &str,
    toml: &str,
    vars: &[(&str, &str)],
    done: impl Fn(&str) -> bool,
) -> (bool, String, String) {
    let port = common::free_port();
    let config = scratch.path.join(format!("{name}.toml"));
    fs::write(
        &config,
        format!("listen_address = \"127.0.0.1:{port}\"\ncollect_interval = \"1s\"\n{toml}"),
    )
    .unwrap();
    let err_path = scratch.path.join(format!("{name}.err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .env_clear()
        .envs(vars.iter().copied())
        .args(["--config", config.to_str().unwrap()])
        .stdout(fs::File::create(scratch.path.join(format!("{name}.log"))).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut last = String::new();
    let ok = common::wait_until(WAIT, || {
        let raw = common::try_raw_request(
            port,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        last = String::from_utf8_lossy(&raw.unwrap_or_default()).into_owned();
        done(&last)
    });
    let _ = child.kill();
    let _ = child.wait();
    let err = fs::read_to_string(&err_path).unwrap_or_default();
    assert!(!err.contains(common::MONITOR_PASSWORD), "{err}");
    (ok, last, err)
}

/// [`run_with_env`] until `pgrepl_up{target=name}` is 1, or panics.
fn up_with_env(scratch: &Scratch, name: &str, toml: &str, vars: &[(&str, &str)]) {
    let up = format!("pgrepl_up{{target=\"{name}\"}} 1");
    let (ok, last, err) = run_with_env(scratch, name, toml, vars, |m| m.contains(&up));
    assert!(ok, "{name} never came up:\n{last}\n{err}");
}

#[test]
fn libpq_password_sources_pgpassword_and_pgpass() {
    use std::os::unix::fs::PermissionsExt;
    let pair = Pair::start("pgpass");
    let scratch = Scratch::new("pgpass-files");
    let port = pair.primary.port;
    let no_password =
        format!("host=127.0.0.1 port={port} user=monitor dbname=postgres sslmode=disable");

    // A password file as DBAs keep them: other servers first, a wildcard last.
    let passfile = scratch.path.join("pgpass");
    fs::write(
        &passfile,
        format!(
            "# monitoring\n10.9.9.9:5432:*:monitor:not-this-one\n\
             127.0.0.1:{port}:postgres:monitor:{}\n*:*:*:*:nor-this-one\n",
            common::MONITOR_PASSWORD
        ),
    )
    .unwrap();
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o600)).unwrap();
    let home = scratch.path.join("home");
    fs::create_dir(&home).unwrap();
    let home = home.to_str().unwrap();

    // passfile= in the DSN.
    up_with_env(
        &scratch,
        "dsn_passfile",
        &format!(
            "[[targets]]\nname = \"dsn_passfile\"\ndsn = \"{no_password} passfile={}\"\n",
            passfile.display()
        ),
        &[("HOME", home)],
    );
    // PGPASSFILE.
    up_with_env(
        &scratch,
        "env_passfile",
        &format!("[[targets]]\nname = \"env_passfile\"\ndsn = \"{no_password}\"\n"),
        &[("HOME", home), ("PGPASSFILE", passfile.to_str().unwrap())],
    );
    // ~/.pgpass.
    fs::copy(&passfile, scratch.path.join("home/.pgpass")).unwrap();
    fs::set_permissions(
        scratch.path.join("home/.pgpass"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    up_with_env(
        &scratch,
        "home_pgpass",
        &format!("[[targets]]\nname = \"home_pgpass\"\ndsn = \"{no_password}\"\n"),
        &[("HOME", home)],
    );
    // PGPASSWORD, with no password file anywhere.
    up_with_env(
        &scratch,
        "pgpassword",
        &format!("[[targets]]\nname = \"pgpassword\"\ndsn = \"{no_password}\"\n"),
        &[("PGPASSWORD", common::MONITOR_PASSWORD)],
    );

    // A password file others can read is refused with one line naming it.
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o644)).unwrap();
    let config = scratch.path.join("shared.toml");
    fs::write(
        &config,
        format!(
            "[[targets]]\nname = \"shared\"\ndsn = \"{no_password} passfile={}\"\n",
            passfile.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .env_clear()
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("group or world access") && stderr.contains(passfile.to_str().unwrap()),
        "{stderr}"
    );
}
