//! `--web.config.file` field by field against the real binary: for each
//! setting, a client it must refuse is refused and one it must admit is
//! admitted (curl, built with OpenSSL, as the TLS client). Content
//! negotiation of `/metrics` is here too. No database is needed: the
//! exporter serves `/metrics` with its only target down.

use crate::harness as common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{down_target, Exporter, KeyAlg, Scratch};

const WAIT: Duration = Duration::from_secs(20);

/// Test certificates: two CAs, server certificates for `localhost` from
/// each, and client certificates with the given subject alternative names.
struct Pki {
    _scratch: Scratch,
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let scratch = Scratch::new(tag);
        let dir = scratch.path.clone();
        let pki = Pki {
            _scratch: scratch,
            dir,
        };
        for ca in ["ca", "other-ca"] {
            common::make_ca(&pki.dir, ca, KeyAlg::EcP256);
        }
        // RSA, so that the ECDHE_RSA suites apply.
        pki.leaf(
            "server",
            "ca",
            KeyAlg::Rsa2048,
            "serverAuth",
            "DNS:localhost,IP:127.0.0.1",
        );
        pki.leaf(
            "server2",
            "other-ca",
            KeyAlg::Rsa2048,
            "serverAuth",
            "DNS:localhost,IP:127.0.0.1",
        );
        pki
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `name.crt` and `name.key`, signed by `ca`, with `san`.
    fn leaf(&self, name: &str, ca: &str, key: KeyAlg, usage: &str, san: &str) {
        common::make_leaf(&self.dir, name, ca, key, "client", usage, san);
    }

    fn client(&self, name: &str, ca: &str, san: &str) {
        self.leaf(name, ca, KeyAlg::EcP256, "clientAuth", san);
    }

    /// A web config file with the server certificate and `extra` lines
    /// under `tls_server_config`, then `rest` at the top level.
    fn web(&self, name: &str, extra: &str, rest: &str) -> String {
        let path = self.dir.join(name);
        fs::write(
            &path,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{extra}{rest}",
                self.path("server.crt"),
                self.path("server.key")
            ),
        )
        .unwrap();
        path.display().to_string()
    }
}

fn start(web: &str) -> Exporter {
    Exporter::start_down(&["--web.config.file", web])
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// curl's verdict for `https://localhost:port/path` with `args`: the HTTP
/// status, "000" when the TLS handshake (or connection) failed.
fn https(exporter: &Exporter, pki: &Pki, path: &str, args: &[&str]) -> String {
    https_write_out(exporter, pki, path, "%{http_code}", args)
}

/// As [`https`], with curl's `--write-out` format `format`.
fn https_write_out(
    exporter: &Exporter,
    pki: &Pki,
    path: &str,
    format: &str,
    args: &[&str],
) -> String {
    let url = format!("https://localhost:{}{path}", exporter.port);
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let ca = pki.path("ca.crt");
    let mut all = vec!["--resolve", &resolve, "--cacert", &ca];
    all.extend_from_slice(args);
    all.push(&url);
    common::curl_write_out(format, &all)
}

/// As [`https`], after waiting for the server to answer at all.
fn https_ready(exporter: &Exporter, pki: &Pki, args: &[&str]) -> String {
    let mut last = String::new();
    common::wait_until(WAIT, || {
        last = https(exporter, pki, "/metrics", args);
        last != "000"
    });
    last
}

/// curl's verbose output and body, for what the status does not show.
fn curl_verbose(exporter: &Exporter, pki: &Pki, args: &[&str]) -> (String, String) {
    let url = format!("https://localhost:{}/metrics", exporter.port);
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    let out = Command::new("curl")
        .args(["-sv", "--max-time", "5", "--resolve", &resolve, "--cacert"])
        .arg(pki.path("ca.crt"))
        .args(args)
        .arg(&url)
        .output()
        .expect("curl");
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs the binary on a web config that must be refused; returns stderr.
fn refused(web: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
    common::without_harness_env(&mut cmd);
    // A binary that wrongly accepts the file would serve forever: give it
    // a few seconds, then stop it and fail.
    let err_path = std::env::temp_dir().join(format!(
        "pgrepl-refused-{}-{}.err",
        std::process::id(),
        common::free_port()
    ));
    let mut child = cmd
        .args(["--web.config.file", web])
        .env("PGREPL_DSN", &down_target()[0].1)
        .env(
            "PGREPL_LISTEN_ADDRESS",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = None;
    common::wait_until(Duration::from_secs(10), || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_file(&err_path);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{web}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn client_allowed_sans_match_dns_ip_email_and_uri_sans() {
    let pki = Pki::new("web-sans");
    pki.client("prometheus", "ca", "DNS:prometheus");
    pki.client("evil", "ca", "DNS:evil");
    pki.client("by-ip", "ca", "IP:10.1.2.3");
    pki.client("by-email", "ca", "email:scraper@example.org");
    pki.client("by-uri", "ca", "URI:spiffe://example.org/prometheus");
    pki.client("other-prometheus", "other-ca", "DNS:prometheus");
    let web = pki.web(
        "web.yml",
        &format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n  \
             client_allowed_sans: [prometheus, 10.1.2.3, scraper@example.org, \"spiffe://example.org/prometheus\"]\n",
            pki.path("ca.crt")
        ),
        "",
    );
    let exporter = start(&web);
    let with = |name: &str| {
        let (c, k) = (
            pki.path(&format!("{name}.crt")),
            pki.path(&format!("{name}.key")),
        );
        https(&exporter, &pki, "/metrics", &["--cert", &c, "--key", &k])
    };
    let (c, k) = (pki.path("prometheus.crt"), pki.path("prometheus.key"));
    assert_eq!(
        https_ready(&exporter, &pki, &["--cert", &c, "--key", &k]),
        "200"
    );
    for admitted in ["by-ip", "by-email", "by-uri"] {
        assert_eq!(with(admitted), "200", "{admitted}");
    }
    // Same CA, SAN not allowed; allowed SAN, other CA; no certificate.
    assert_eq!(with("evil"), "000");
    assert_eq!(with("other-prometheus"), "000");
    assert_eq!(https(&exporter, &pki, "/metrics", &[]), "000");
}

#[test]
fn client_auth_types_have_go_meanings() {
    let pki = Pki::new("web-authtypes");
    pki.client("good", "ca", "DNS:prometheus");
    pki.client("stranger", "other-ca", "DNS:prometheus");
    let cert = |name: &str| {
        [
            "--cert".to_string(),
            pki.path(&format!("{name}.crt")),
            "--key".to_string(),
            pki.path(&format!("{name}.key")),
        ]
    };
    let good = cert("good");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let stranger = cert("stranger");
    let stranger: Vec<&str> = stranger.iter().map(String::as_str).collect();
    let ca = pki.path("ca.crt");
    // (type, CA given, no certificate, a certificate of another CA, a good one)
    for (auth_type, with_ca, none, other, valid) in [
        ("RequestClientCert", false, "200", "200", "200"),
        ("RequireAnyClientCert", false, "000", "200", "200"),
        ("VerifyClientCertIfGiven", true, "200", "000", "200"),
        ("RequireAndVerifyClientCert", true, "000", "000", "200"),
    ] {
        let ca_line = if with_ca {
            format!("  client_ca_file: {ca}\n")
        } else {
            String::new()
        };
        let web = pki.web(
            &format!("{auth_type}.yml"),
            &format!("  client_auth_type: {auth_type}\n{ca_line}"),
            "",
        );
        let exporter = start(&web);
        assert_eq!(
            https_ready(&exporter, &pki, &good),
            valid,
            "{auth_type} valid"
        );
        assert_eq!(
            https(&exporter, &pki, "/metrics", &[]),
            none,
            "{auth_type} none"
        );
        assert_eq!(
            https(&exporter, &pki, "/metrics", &stranger),
            other,
            "{auth_type} other CA"
        );
    }
}

#[test]
fn min_and_max_version_bound_the_handshake() {
    let pki = Pki::new("web-versions");
    let exporter = start(&pki.web("min13.yml", "  min_version: TLS13\n", ""));
    assert_eq!(https_ready(&exporter, &pki, &["--tlsv1.3"]), "200");
    assert_eq!(
        https(
            &exporter,
            &pki,
            "/metrics",
            &["--tlsv1.2", "--tls-max", "1.2"]
        ),
        "000"
    );
    drop(exporter);
    let exporter = start(&pki.web("max12.yml", "  max_version: TLS12\n", ""));
    assert_eq!(
        https_ready(&exporter, &pki, &["--tlsv1.2", "--tls-max", "1.2"]),
        "200"
    );
    assert_eq!(https(&exporter, &pki, "/metrics", &["--tlsv1.3"]), "000");
}

#[test]
fn cipher_suites_and_server_preference() {
    let pki = Pki::new("web-ciphers");
    let suites = "  max_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n    - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n";
    let exporter = start(&pki.web("ciphers.yml", suites, ""));
    let tls12 = ["--tlsv1.2", "--tls-max", "1.2", "--ciphers"];
    let offer = |ciphers: &str| {
        let mut args = tls12.to_vec();
        args.push(ciphers);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        https_ready(
            &exporter,
            &pki,
            &refs(&offer("ECDHE-RSA-AES256-GCM-SHA384"))
        ),
        "200"
    );
    assert_eq!(
        https(
            &exporter,
            &pki,
            "/metrics",
            &refs(&offer("ECDHE-RSA-AES128-GCM-SHA256"))
        ),
        "000"
    );
    // The client prefers ChaCha20; the server's order (the default,
    // prefer_server_cipher_suites: true) picks AES-256.
    let both = offer("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384");
    let (verbose, _) = curl_verbose(&exporter, &pki, &refs(&both));
    assert!(verbose.contains("ECDHE-RSA-AES256-GCM-SHA384"), "{verbose}");
    drop(exporter);
    let exporter = start(&pki.web(
        "client-order.yml",
        &format!("{suites}  prefer_server_cipher_suites: false\n"),
        "",
    ));
    assert_eq!(https_ready(&exporter, &pki, &refs(&both)), "200");
    let (verbose, _) = curl_verbose(&exporter, &pki, &refs(&both));
    assert!(verbose.contains("ECDHE-RSA-CHACHA20-POLY1305"), "{verbose}");
}

#[test]
fn curve_preferences_restrict_key_exchange() {
    let pki = Pki::new("web-curves");
    let exporter = start(&pki.web("curves.yml", "  curve_preferences: [CurveP384]\n", ""));
    assert_eq!(https_ready(&exporter, &pki, &["--curves", "P-384"]), "200");
    assert_eq!(
        https(&exporter, &pki, "/metrics", &["--curves", "X25519"]),
        "000"
    );
    assert_eq!(
        https(
            &exporter,
            &pki,
            "/metrics",
            &["--curves", "X25519", "--tls-max", "1.2"]
        ),
        "000"
    );
}

#[test]
fn http2_follows_http_server_config() {
    let pki = Pki::new("web-http2");
    let version = |exporter: &Exporter, args: &[&str]| {
        https_write_out(
            exporter,
            &pki,
            "/metrics",
            "%{http_version} %{http_code}",
            args,
        )
    };
    let exporter = start(&pki.web("default.yml", "", ""));
    assert_eq!(https_ready(&exporter, &pki, &[]), "200");
    assert_eq!(version(&exporter, &["--http2"]), "2 200");
    assert_eq!(version(&exporter, &["--http1.1"]), "1.1 200");
    drop(exporter);
    let exporter = start(&pki.web("no-h2.yml", "", "http_server_config:\n  http2: false\n"));
    assert_eq!(https_ready(&exporter, &pki, &[]), "200");
    assert_eq!(version(&exporter, &["--http2"]), "1.1 200");
}

#[test]
fn configured_headers_are_on_every_response() {
    let pki = Pki::new("web-headers");
    let hash = bcrypt::hash("scrape-Secret-9", 4).unwrap();
    let web = pki.web(
        "headers.yml",
        "",
        &format!(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    \
             Content-Security-Policy: \"default-src 'self'\"\n    Strict-Transport-Security: max-age=31536000\n\
             basic_auth_users:\n  prometheus: {hash}\n"
        ),
    );
    let exporter = start(&web);
    assert_eq!(
        https_ready(&exporter, &pki, &["-u", "prometheus:scrape-Secret-9"]),
        "200"
    );
    let url = |path: &str| format!("https://localhost:{}{path}", exporter.port);
    let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
    for (path, auth, status) in [
        ("/metrics", true, "200"),
        ("/healthz", true, "200"),
        ("/nope", true, "404"),
        ("/metrics", false, "401"),
    ] {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "--max-time",
            "5",
            "--resolve",
            &resolve,
        ])
        .arg("--cacert")
        .arg(pki.path("ca.crt"));
        if auth {
            cmd.args(["-u", "prometheus:scrape-Secret-9"]);
        }
        let head =
            String::from_utf8_lossy(&cmd.arg(url(path)).output().unwrap().stdout).to_lowercase();
        assert!(
            head.starts_with(&format!("http/1.1 {status}"))
                || head.starts_with(&format!("http/2 {status}")),
            "{path}: {head}"
        );
        for line in [
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "content-security-policy: default-src 'self'",
            "strict-transport-security: max-age=31536000",
        ] {
            assert!(head.contains(line), "{path} lacks {line}:\n{head}");
        }
    }
}

#[test]
fn certificate_and_key_are_reloaded_when_they_change() {
    let pki = Pki::new("web-reload");
    // The served pair lives in files of its own, replaced below.
    fs::copy(pki.dir.join("server.crt"), pki.dir.join("live.crt")).unwrap();
    fs::copy(pki.dir.join("server.key"), pki.dir.join("live.key")).unwrap();
    let web = pki.dir.join("web.yml");
    // Relative paths are relative to the web config file.
    fs::write(
        &web,
        "tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n",
    )
    .unwrap();
    let exporter = start(web.to_str().unwrap());
    let other_ca = pki.path("other-ca.crt");
    let with_other = || {
        let url = format!("https://localhost:{}/metrics", exporter.port);
        let resolve = format!("localhost:{}:127.0.0.1", exporter.port);
        common::curl_status(&["--resolve", &resolve, "--cacert", &other_ca, &url])
    };
    assert_eq!(https_ready(&exporter, &pki, &[]), "200");
    assert_eq!(with_other(), "000");
    // Rotate to a pair from the other CA, the way cert-manager does:
    // write new files and rename them over the old ones.
    fs::copy(pki.dir.join("server2.key"), pki.dir.join("tmp.key")).unwrap();
    fs::copy(pki.dir.join("server2.crt"), pki.dir.join("tmp.crt")).unwrap();
    fs::rename(pki.dir.join("tmp.key"), pki.dir.join("live.key")).unwrap();
    fs::rename(pki.dir.join("tmp.crt"), pki.dir.join("live.crt")).unwrap();
    assert!(
        common::wait_until(WAIT, || with_other() == "200"),
        "the new certificate was not picked up:\n{}",
        exporter.log_text()
    );
    assert_eq!(https(&exporter, &pki, "/metrics", &[]), "000");
    // A broken write keeps the running pair.
    // (A rotation that renames the key before the certificate may already
    // have logged one mismatch: wait for a new line.)
    let kept = || {
        exporter
            .log_text()
            .matches("keeping the previous pair")
            .count()
    };
    let kept_before = kept();
    fs::write(pki.dir.join("live.key"), "not a key\n").unwrap();
    assert!(
        common::wait_until(WAIT, || kept() > kept_before),
        "the broken key was not noticed:\n{}",
        exporter.log_text()
    );
    assert_eq!(with_other(), "200");
    assert!(!exporter.log_text().contains("not a key"));
}

#[test]
fn inline_certificate_key_and_client_ca() {
    let pki = Pki::new("web-inline");
    let indent = |file: &str| {
        fs::read_to_string(pki.dir.join(file))
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    pki.client("good", "ca", "DNS:prometheus");
    let web = pki.dir.join("inline.yml");
    fs::write(
        &web,
        format!(
            "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n  cert: |\n{}  key: |\n{}  client_ca: |\n{}",
            indent("server.crt"),
            indent("server.key"),
            indent("ca.crt")
        ),
    )
    .unwrap();
    let exporter = start(web.to_str().unwrap());
    let (c, k) = (pki.path("good.crt"), pki.path("good.key"));
    assert_eq!(
        https_ready(&exporter, &pki, &["--cert", &c, "--key", &k]),
        "200"
    );
    assert_eq!(https(&exporter, &pki, "/metrics", &[]), "000");
    // The key's text never reaches the log.
    let key_line = fs::read_to_string(pki.dir.join("server.key"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(!exporter.log_text().contains(&key_line));
}

#[test]
fn rate_limit_answers_429_beyond_the_burst() {
    let scratch = Scratch::new("web-ratelimit");
    let web = scratch.path.join("web.yml");
    fs::write(&web, "rate_limit:\n  interval: 1h\n  burst: 3\n").unwrap();
    let exporter = start(web.to_str().unwrap());
    let statuses: Vec<String> = (0..5)
        .map(|_| common::curl_status(&[&exporter.url("/healthz")]))
        .collect();
    // The harness may have used a token to see the server up.
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("429"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| *s == "200").count() <= 3,
        "{statuses:?}"
    );
}

#[test]
fn values_that_cannot_be_honoured_are_refused_at_start() {
    let pki = Pki::new("web-refused");
    let tls = |name: &str, extra: &str| pki.web(name, extra, "");
    let ca = pki.path("ca.crt");
    for (web, needles) in [
        (tls("v10.yml", "  min_version: TLS10\n"), vec!["min_version", "TLS10"]),
        (tls("v11.yml", "  max_version: TLS11\n"), vec!["max_version", "TLS11"]),
        (tls("v99.yml", "  min_version: TLS99\n"), vec!["min_version", "TLS99"]),
        (
            tls("cbc.yml", "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
            vec!["cipher_suites", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
        ),
        (
            tls("p521.yml", "  curve_preferences: [CurveP521]\n"),
            vec!["curve_preferences", "CurveP521"],
        ),
        (
            tls("sans-nocert.yml", "  client_allowed_sans: [prometheus]\n"),
            vec!["client_allowed_sans", "client_auth_type"],
        ),
        (
            tls(
                "sans-optional.yml",
                &format!("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {ca}\n  client_allowed_sans: [prometheus]\n"),
            ),
            vec!["client_allowed_sans"],
        ),
        (
            tls("ca-noauth.yml", &format!("  client_ca_file: {ca}\n")),
            vec!["client_auth_type"],
        ),
        (
            tls("verify-noca.yml", "  client_auth_type: RequireAndVerifyClientCert\n"),
            vec!["client_ca_file"],
        ),
        (
            tls("authtype.yml", "  client_auth_type: Sometimes\n"),
            vec!["client_auth_type", "Sometimes"],
        ),
        (
            tls("header.yml", "http_server_config:\n  headers:\n    Server: x\n"),
            vec!["Server"],
        ),
    ] {
        let err = refused(&web);
        for needle in needles {
            assert!(err.contains(needle), "{web}: {err}");
        }
    }
}

#[test]
fn bad_and_duplicate_users_are_refused_naming_the_user() {
    let scratch = Scratch::new("web-users");
    let good = bcrypt::hash("x", 4).unwrap();
    let cost = |c: &str| good.replacen("$04$", &format!("${c}$"), 1);
    for (i, (hash, needle)) in [
        ("$2y$10$abc".to_string(), "not a bcrypt hash"),
        ("$2zzzzz".to_string(), "not a bcrypt hash"),
        (cost("99"), "cost 99"),
        (cost("31"), "cost 31"),
        (cost("17"), "cost 17"),
    ]
    .into_iter()
    .enumerate()
    {
        let web = scratch.path.join(format!("u{i}.yml"));
        fs::write(&web, format!("basic_auth_users:\n  alice: \"{hash}\"\n")).unwrap();
        let err = refused(web.to_str().unwrap());
        assert!(err.contains("\"alice\"") && err.contains(needle), "{err}");
        assert!(!err.contains(&hash), "the hash is echoed: {err}");
    }
    let web = scratch.path.join("dup.yml");
    fs::write(
        &web,
        format!("basic_auth_users:\n  alice: {good}\n  bob: {good}\n  alice: {good}\n"),
    )
    .unwrap();
    let err = refused(web.to_str().unwrap());
    assert!(err.contains("duplicate") && err.contains("alice"), "{err}");
    assert!(!err.contains(&good), "{err}");
    // The space after the colon forgotten: one string where a mapping of
    // users belongs. YAML's error must not quote it.
    let web = scratch.path.join("typo.yml");
    fs::write(&web, format!("basic_auth_users:\n  alice:{good}\n")).unwrap();
    let err = refused(web.to_str().unwrap());
    assert!(err.contains("basic_auth_users"), "{err}");
    assert!(!err.contains(&good[7..]), "the hash is echoed: {err}");
}

/// Users hashed at different costs: an unknown name costs a check at the
/// highest, so the cheaper users' names can be told by timing. Said at
/// start, with the costs and without names or hashes.
#[test]
fn users_of_different_costs_are_warned_about() {
    let scratch = Scratch::new("web-costs");
    let (four, five) = (bcrypt::hash("x", 4).unwrap(), bcrypt::hash("y", 5).unwrap());
    let web = scratch.path.join("costs.yml");
    fs::write(
        &web,
        format!("basic_auth_users:\n  alice: {four}\n  bob: {five}\n"),
    )
    .unwrap();
    let exporter = start(web.to_str().unwrap());
    let log = exporter.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("different costs"))
        .unwrap_or_else(|| panic!("no warning about the costs:\n{log}"));
    assert!(line.contains("WARN") && line.contains("{4, 5}"), "{line}");
    assert!(
        !line.contains("alice") && !line.contains(&four[7..]),
        "{line}"
    );
    let same = scratch.path.join("same.yml");
    fs::write(
        &same,
        format!("basic_auth_users:\n  alice: {four}\n  bob: {four}\n"),
    )
    .unwrap();
    let exporter = start(same.to_str().unwrap());
    assert!(!exporter.log_text().contains("different costs"));
}

#[test]
fn negotiation_honours_quality_values() {
    let exporter = Exporter::start_down(&[]);
    let head = |headers: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-D", "-", "--max-time", "5"]);
        for h in headers {
            cmd.args(["-H", h]);
        }
        String::from_utf8_lossy(&cmd.arg(exporter.url("/metrics")).output().unwrap().stdout)
            .to_lowercase()
    };
    let openmetrics = "content-type: application/openmetrics-text";
    let text = "content-type: text/plain; version=0.0.4";
    let deadline = Instant::now() + WAIT;
    while !head(&[]).starts_with("http/1.1 200") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // What Prometheus 2 and 3 send.
    for accept in [
        "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "Accept: application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ] {
        assert!(head(&[accept]).contains(openmetrics), "{accept}");
    }
    for accept in [
        "Accept: application/openmetrics-text;q=0",
        "Accept: text/plain;q=1, application/openmetrics-text;q=0.5",
        "Accept: */*",
    ] {
        assert!(head(&[accept]).contains(text), "{accept}");
    }
    assert!(head(&["Accept-Encoding: gzip"]).contains("content-encoding: gzip"));
    for encoding in [
        "Accept-Encoding: gzip;q=0",
        "Accept-Encoding: gzip;q=0, identity",
        "Accept-Encoding: *;q=0",
    ] {
        assert!(
            !head(&[encoding]).contains("content-encoding"),
            "{encoding}"
        );
    }
}
