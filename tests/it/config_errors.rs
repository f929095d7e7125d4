//! Bad input at start-up: every case exits with code 2 and one line on
//! stderr that names the key, file or flag at fault. No panic, no backtrace.

use std::fs;
use std::net::TcpListener;
use std::process::{Command, Stdio};

struct Case {
    name: &'static str,
    /// Config file contents; `None` runs without `--config`.
    toml: Option<Vec<u8>>,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// Text the one line must contain.
    needle: String,
}

fn case(name: &'static str, toml: &str, needle: &str) -> Case {
    Case {
        name,
        toml: Some(toml.as_bytes().to_vec()),
        args: vec![],
        env: vec![],
        needle: needle.into(),
    }
}

const TARGET: &str = "[[targets]]\nname = \"p\"\ndsn = \"host=127.0.0.1 port=1 user=x\"\n";

fn run(c: &Case, dir: &std::path::Path) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some(toml) = &c.toml {
        let path = dir.join(format!("{}.toml", c.name));
        fs::write(&path, toml).unwrap();
        cmd.arg("--config").arg(&path);
    }
    cmd.args(&c.args);
    for (k, v) in &c.env {
        cmd.env(k, v);
    }
    // A case the exporter wrongly accepts would serve forever: give up
    // after a while and report it.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run exporter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("exporter output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let secret = "pw-Very-Secret-99";

    let mut cases = vec![
        case("invalid_toml", "listen_address = \n[[targets]", "invalid_toml.toml"),
        case("unknown_key", &format!("colect_interval = \"5s\"\n{TARGET}"), "colect_interval"),
        case("unknown_target_key", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\nport = 5432\n", "port"),
        case("wrong_type", &format!("collect_interval = 5\n{TARGET}"), "collect_interval"),
        case("bad_duration", &format!("collect_interval = \"5 parsecs\"\n{TARGET}"), "collect_interval"),
        case("zero_interval", &format!("collect_interval = \"0s\"\n{TARGET}"), "collect_interval"),
        case("negative_interval", &format!("collect_interval = \"-5s\"\n{TARGET}"), "collect_interval"),
        case("timeout_not_below_interval", &format!("collect_interval = \"2s\"\ncollect_timeout = \"2s\"\n{TARGET}"), "collect_timeout"),
        case("zero_timeout", &format!("collect_timeout = \"0s\"\n{TARGET}"), "collect_timeout"),
        case("no_targets", "listen_address = \"127.0.0.1:0\"\n", "targets"),
        case("empty_name", "[[targets]]\nname = \"\"\ndsn = \"host=h\"\n", "targets[0].name"),
        case("duplicate_name", &format!("{TARGET}{TARGET}"), "duplicate target name \"p\""),
        case("unparsable_dsn", &format!("[[targets]]\nname = \"p\"\ndsn = \"postgresql://u:{secret}@h:notaport/db\"\n"), "targets[0].dsn"),
        case("bad_sslmode", "[[targets]]\nname = \"p\"\ndsn = \"host=h sslmode=sometimes\"\n", "sslmode"),
        case("missing_password_file", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\npassword_file = \"/nonexistent/pgpass\"\n", "/nonexistent/pgpass"),
        case("invalid_listen_address", &format!("listen_address = \"not an address\"\n{TARGET}"), "listen_address"),
        case("port_in_use", &format!("listen_address = \"127.0.0.1:{busy_port}\"\n{TARGET}"), "listen_address"),
        case("bad_telemetry_path", &format!("telemetry_path = \"metrics\"\n{TARGET}"), "telemetry_path"),
        case("unknown_cluster", &format!("{TARGET}[clusters.nowhere]\nexpected_standbys = [\"a\"]\n"), "clusters.nowhere"),
        Case {
            name: "non_utf8",
            toml: Some(vec![b'a', b'=', b'"', 0xff, 0xfe, b'"', b'\n']),
            args: vec![],
            env: vec![],
            needle: "not valid UTF-8".into(),
        },
        Case {
            name: "missing_config_file",
            toml: None,
            args: vec!["--config".into(), "/nonexistent/exporter.toml".into()],
            env: vec![],
            needle: "/nonexistent/exporter.toml".into(),
        },
        Case {
            name: "invalid_log_level",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--log.level".into(), "loud".into()],
            env: vec![],
            needle: "--log.level".into(),
        },
        Case {
            name: "invalid_log_format",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--log.format".into(), "xml".into()],
            env: vec![],
            needle: "--log.format".into(),
        },
        Case {
            name: "missing_pgpassfile",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![],
            env: vec![("PGPASSFILE", "/nonexistent/pgpass".into())],
            needle: "/nonexistent/pgpass".into(),
        },
        Case {
            name: "missing_passfile_in_dsn",
            toml: Some(
                b"[[targets]]\nname = \"p\"\ndsn = \"host=127.0.0.1 user=x passfile=/nonexistent/pw\"\n"
                    .to_vec(),
            ),
            args: vec![],
            env: vec![],
            needle: "/nonexistent/pw".into(),
        },
        Case {
            name: "zero_worker_threads",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--runtime.worker-threads".into(), "0".into()],
            env: vec![],
            needle: "--runtime.worker-threads".into(),
        },
        Case {
            name: "worker_threads_from_env_not_a_number",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![],
            env: vec![("PGREPL_WORKER_THREADS", "many".into())],
            needle: "--runtime.worker-threads".into(),
        },
        Case {
            name: "unknown_flag",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--web.listen-adress".into(), ":9".into()],
            env: vec![],
            needle: "--web.listen-adress".into(),
        },
        Case {
            name: "flag_listen_address",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--web.listen-address".into(), "nohost".into()],
            env: vec![],
            needle: "listen_address (flag --web.listen-address): expected HOST:PORT".into(),
        },
        Case {
            name: "env_bad_interval",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![],
            env: vec![("PGREPL_COLLECT_INTERVAL", "soon".into())],
            needle: "collect_interval".into(),
        },
        Case {
            name: "env_unknown_key",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![],
            env: vec![("PGREPL_LISTEN_ADRESS", "x".into())],
            needle: "listen_adress".into(),
        },
        Case {
            name: "no_config_no_dsn",
            toml: None,
            args: vec![],
            env: vec![],
            needle: "PGREPL_DSN".into(),
        },
        Case {
            name: "env_dsn_unparsable",
            toml: None,
            args: vec![],
            env: vec![("DATA_SOURCE_NAME", format!("postgresql://u:{secret}@h:99999999/db"))],
            needle: "dsn".into(),
        },
    ];
    // A password file the exporter cannot read (a directory).
    cases.push(case(
        "unreadable_password_file",
        &format!(
            "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\npassword_file = \"{}\"\n",
            dir.path().display()
        ),
        "password_file",
    ));
    assert!(cases.len() >= 15);

    let mut failures = Vec::new();
    for c in &cases {
        let (code, stdout, stderr) = run(c, dir.path());
        let lines: Vec<&str> = stderr.lines().collect();
        let ok = code == Some(2)
            && lines.len() == 1
            && lines[0].starts_with("pg_replication_exporter: ")
            && lines[0].contains(&c.needle)
            && !stderr.contains("panicked")
            && !stderr.contains(secret)
            && stdout.is_empty();
        if !ok {
            failures.push(format!(
                "{}: exit {code:?}, stderr {stderr:?}, stdout {stdout:?} (wanted {:?})",
                c.name, c.needle
            ));
        }
    }
    drop(busy);
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn help_and_version_exit_zero() {
    for flag in ["--help", "--version"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(!out.stdout.is_empty());
    }
}

/// Values at their extremes (issue: a reload with a huge interval killed
/// collection; a start with it panicked): every one is refused at start
/// with exit 2 and a line naming the key.
#[test]
fn extreme_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![
        case("interval_overflows", &format!("collect_interval = \"584542046090y\"\n{TARGET}"), "collect_interval"),
        case("interval_20d", &format!("collect_interval = \"20d\"\n{TARGET}"), "collect_interval (config file "),
        case("interval_20d_no_echo", &format!("collect_interval = \"20d\"\n{TARGET}"), "out of range; use 100ms to 1h"),
        case("interval_too_short", &format!("collect_interval = \"10ms\"\n{TARGET}"), "collect_interval"),
        case("timeout_2h", &format!("collect_timeout = \"2h\"\n{TARGET}"), "collect_timeout"),
        case("heartbeat_interval_huge", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\"\n[clusters.c.heartbeat]\ninterval = \"584542046090y\"\n", "clusters.c.heartbeat.interval"),
        case("newline_in_target_name", "[[targets]]\nname = \"p\\nlevel=ERROR forged\"\ndsn = \"host=h\"\n", "): contains a control character"),
        case("escape_in_target_name", "[[targets]]\nname = \"p\\u001b[31m\"\ndsn = \"host=h\"\n", "): contains a control character"),
        case("newline_in_cluster", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\\rx\"\n", "targets[0].cluster (config file "),
        case("newline_in_expected_standby", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\"\n[clusters.c]\nexpected_standbys = [\"s\\n1\"]\n", "clusters.c.expected_standbys (config file "),
        case("password_too_long", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=h password={}\"\n", "x".repeat(5000)), "at most 1024"),
    ];
    // A password file of a megabyte (a log file named by mistake) is not
    // read; one within the file bound still holds too long a password.
    let big = dir.path().join("big-password");
    fs::write(&big, "y".repeat(1 << 20)).unwrap();
    cases.push(case(
        "password_file_huge",
        &format!(
            "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\npassword_file = \"{}\"\n",
            big.display()
        ),
        "larger than the 65536 bytes a password file may have",
    ));
    let long = dir.path().join("long-password");
    fs::write(&long, "y".repeat(5000)).unwrap();
    cases.push(case(
        "password_file_long",
        &format!(
            "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\npassword_file = \"{}\"\n",
            long.display()
        ),
        "at most 1024",
    ));
    // telemetry_path: route syntax and the built-in endpoints, from the file,
    // the flag and the environment.
    for (i, path) in [
        "/probe",
        "/health",
        "/healthz",
        "/primary",
        "/replica",
        "/api/v1/topology",
        "/api/v1/topology/",
        "/-/reload",
        "/*x",
        "/:x",
        "/{x}",
        "/metrics//x",
        "/me trics",
        "/",
    ]
    .into_iter()
    .enumerate()
    {
        let name: &'static str = Box::leak(format!("telemetry_file_{i}").into_boxed_str());
        cases.push(case(
            name,
            &format!("telemetry_path = \"{path}\"\n{TARGET}"),
            "telemetry_path",
        ));
        let name: &'static str = Box::leak(format!("telemetry_flag_{i}").into_boxed_str());
        cases.push(Case {
            name,
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["--web.telemetry-path".into(), path.into()],
            env: vec![],
            needle: "telemetry_path".into(),
        });
        let name: &'static str = Box::leak(format!("telemetry_env_{i}").into_boxed_str());
        cases.push(Case {
            name,
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![],
            env: vec![("PGREPL_TELEMETRY_PATH", path.into())],
            needle: "telemetry_path".into(),
        });
    }
    assert_refused(&cases, dir.path(), |stderr, _| {
        !stderr.contains("forged") && !stderr.contains('\u{1b}')
    });
}

/// Every case exits 2 with one line on stderr holding its needle, nothing
/// on stdout, no panic, and passes `also(stderr, stdout)`.
fn assert_refused(cases: &[Case], dir: &std::path::Path, also: impl Fn(&str, &str) -> bool) {
    let mut failures = Vec::new();
    for c in cases {
        let (code, stdout, stderr) = run(c, dir);
        let ok = code == Some(2)
            && stderr.lines().count() == 1
            && stderr.contains(&c.needle)
            && !stderr.contains("panicked")
            && stdout.is_empty()
            && also(&stderr, &stdout);
        if !ok {
            failures.push(format!(
                "{}: exit {code:?}, stderr {stderr:?} (wanted {:?})",
                c.name, c.needle
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A secret typed in the wrong place never reaches the error line: TOML
/// syntax errors, type errors, unknown keys, bad DSNs, environment
/// variables and flags each carry the canary, and none may repeat it.
#[test]
fn no_error_echoes_the_value_that_caused_it() {
    const CANARY: &str = "Canary-S3cret-7781";
    let dir = tempfile::tempdir().unwrap();
    let with_env = |name: &'static str, var: &'static str, needle: &str| Case {
        name,
        toml: Some(TARGET.as_bytes().to_vec()),
        args: vec![],
        env: vec![(var, CANARY.into())],
        needle: needle.into(),
    };
    let with_flag = |name: &'static str, flag: &str, needle: &str| Case {
        name,
        toml: Some(TARGET.as_bytes().to_vec()),
        args: vec![flag.into(), CANARY.into()],
        env: vec![],
        needle: needle.into(),
    };
    let cases = vec![
        // An invalid escape on a line with a password: the TOML error must
        // point at the line and column without quoting it.
        case("toml_escape", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=db1 password={CANARY}\\q\"\n"), "line 3, column"),
        case("toml_unterminated", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=db1 password={CANARY}\n"), "line 3"),
        case("toml_bare_line", &format!("{TARGET}host=db1 password={CANARY}\n"), "invalid TOML"),
        case("type_interval", &format!("collect_interval = \"{CANARY}\"\n{TARGET}"), "collect_interval"),
        case("type_targets", &format!("targets = \"{CANARY}\"\n"), "targets"),
        case("type_name", &format!("[[targets]]\nname = [\"{CANARY}\"]\ndsn = \"host=h\"\n"), "targets"),
        case("unknown_key_value", &format!("dsnn = \"{CANARY}\"\n{TARGET}"), "dsnn"),
        case("unknown_key_name", &format!("\"{CANARY}\" = 1\n{TARGET}"), "unknown key"),
        case("dsn_stray_word", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=h {CANARY}\"\n"), "targets[0].dsn"),
        case("dsn_unknown_option", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=h {CANARY}=1\"\n"), "targets[0].dsn"),
        case("dsn_sslmode", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=h sslmode={CANARY}\"\n"), "sslmode"),
        case("dsn_url_port", &format!("[[targets]]\nname = \"p\"\ndsn = \"postgresql://u:{CANARY}@h:notaport/db\"\n"), "targets[0].dsn"),
        case("listen_file", &format!("listen_address = \"{CANARY}\"\n{TARGET}"), "listen_address"),
        case("telemetry_file", &format!("telemetry_path = \"/{CANARY}%\"\n{TARGET}"), "telemetry_path"),
        case("heartbeat_table", &format!("[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\"\n[clusters.c.heartbeat]\ntable = \"{CANARY}\"\n"), "heartbeat.table"),
        with_env("env_interval", "PGREPL_COLLECT_INTERVAL", "PGREPL_COLLECT_INTERVAL"),
        with_env("env_listen", "PGREPL_LISTEN_ADDRESS", "listen_address"),
        with_env("env_unknown", "PGREPL_BOGUS", "PGREPL_BOGUS"),
        Case {
            name: "env_dsn",
            toml: None,
            args: vec![],
            env: vec![("PGREPL_DSN", CANARY.into())],
            needle: "dsn".into(),
        },
        with_flag("flag_listen", "--web.listen-address", "listen_address"),
        with_flag("flag_path", "--web.telemetry-path", "telemetry_path"),
        with_flag("flag_threads", "--runtime.worker-threads", "--runtime.worker-threads"),
        with_flag("flag_level", "--log.level", "--log.level"),
        with_flag("flag_format", "--log.format", "--log.format"),
        Case {
            name: "positional",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![CANARY.into()],
            env: vec![],
            needle: "unknown command".into(),
        },
    ];
    assert_refused(&cases, dir.path(), |stderr, _| {
        !stderr.to_lowercase().contains(&CANARY.to_lowercase())
    });
}

/// Build identity, as Prometheus exporters print it.
#[test]
fn version_prints_the_build_identity() {
    let out = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for needle in [
        concat!("version ", env!("CARGO_PKG_VERSION")),
        "branch: ",
        "revision: ",
        "build date:",
        "rustc version:",
        "platform:",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text:?}");
    }
}

/// Every error says where the faulty value came from (the file and key,
/// the `PGREPL_*` variable, or the flag) and never repeats the value: some
/// values are secrets, and the operator needs to know which layer to fix,
/// since a variable silently overrides the file.
#[test]
fn every_error_names_its_source_and_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &'static str, toml: &str, needles: &[&str], value: &str| {
        (
            case(name, toml, &format!("{name}.toml")),
            needles
                .iter()
                .map(|s| s.to_string())
                .chain(["config file ".to_string(), format!("{name}.toml")])
                .collect::<Vec<_>>(),
            value.to_string(),
        )
    };
    let env =
        |name: &'static str, vars: Vec<(&'static str, &str)>, needles: &[&str], value: &str| {
            (
                Case {
                    name,
                    toml: Some(TARGET.as_bytes().to_vec()),
                    args: vec![],
                    env: vars.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
                    needle: needles[0].to_string(),
                },
                needles.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                value.to_string(),
            )
        };
    let flag = |name: &'static str, args: &[&str], needles: &[&str], value: &str| {
        (
            Case {
                name,
                toml: Some(TARGET.as_bytes().to_vec()),
                args: args.iter().map(|s| s.to_string()).collect(),
                env: vec![],
                needle: needles[0].to_string(),
            },
            needles.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            value.to_string(),
        )
    };
    let single =
        |name: &'static str, vars: Vec<(&'static str, &str)>, needles: &[&str], value: &str| {
            (
                Case {
                    name,
                    toml: None,
                    args: vec![],
                    env: vars.into_iter().map(|(k, v)| (k, v.to_string())).collect(),
                    needle: needles[0].to_string(),
                },
                needles.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                value.to_string(),
            )
        };
    let cases = vec![
        // An interval below the minimum, from the environment: the error
        // names both the variable and the key.
        env("env_interval_range", vec![("PGREPL_COLLECT_INTERVAL", "50ms")], &["PGREPL_COLLECT_INTERVAL", "collect_interval"], "50ms"),
        env("env_timeout_range", vec![("PGREPL_COLLECT_TIMEOUT", "7h")], &["PGREPL_COLLECT_TIMEOUT"], "7h"),
        env("env_timeout_not_below", vec![("PGREPL_COLLECT_TIMEOUT", "9s")], &["PGREPL_COLLECT_TIMEOUT", "collect_interval"], "9s"),
        env("env_listen", vec![("PGREPL_LISTEN_ADDRESS", "nohost")], &["PGREPL_LISTEN_ADDRESS"], "nohost"),
        env("env_path", vec![("PGREPL_TELEMETRY_PATH", "/healthz/deep")], &["PGREPL_TELEMETRY_PATH"], "/healthz/deep"),
        file("file_interval_range", &format!("collect_interval = \"50ms\"\n{TARGET}"), &["collect_interval"], "50ms"),
        file("file_timeout_not_below", &format!("collect_interval = \"2s\"\ncollect_timeout = \"3s\"\n{TARGET}"), &["collect_timeout"], "3s"),
        file("file_listen", &format!("listen_address = \"nohost\"\n{TARGET}"), &["listen_address"], "nohost"),
        file("file_path", &format!("telemetry_path = \"/healthz/deep\"\n{TARGET}"), &["telemetry_path"], "/healthz/deep"),
        file("file_dsn", "[[targets]]\nname = \"p\"\ndsn = \"host=h port=notaport\"\n", &["targets[0].dsn"], "notaport"),
        file("file_heartbeat_interval", "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\"\n[clusters.c.heartbeat]\ninterval = \"20ms\"\n", &["clusters.c.heartbeat.interval"], "20ms"),
        flag("flag_listen", &["--web.listen-address", "nohost"], &["--web.listen-address"], "nohost"),
        flag("flag_path", &["--web.telemetry-path", "/healthz/deep"], &["--web.telemetry-path"], "/healthz/deep"),
        single("single_dsn", vec![("PGREPL_DSN", "host=h port=notaport")], &["PGREPL_DSN"], "notaport"),
        single("single_data_source_name", vec![("DATA_SOURCE_NAME", "host=h port=notaport")], &["DATA_SOURCE_NAME"], "notaport"),
        single("single_password_file", vec![("PGREPL_DSN", "host=h"), ("PGREPL_PASSWORD_FILE", "/nonexistent/secret-file")], &["PGREPL_PASSWORD_FILE", "/nonexistent/secret-file"], "host=h"),
        single("single_target_name", vec![("PGREPL_DSN", "host=h"), ("PGREPL_TARGET", "a\nforged")], &["PGREPL_TARGET"], "forged"),
    ];
    let mut failures = Vec::new();
    for (c, needles, value) in &cases {
        let (code, _stdout, stderr) = run(c, dir.path());
        let ok = code == Some(2)
            && stderr.lines().count() == 1
            && needles.iter().all(|n| stderr.contains(n.as_str()))
            && !stderr.contains(value.as_str());
        if !ok {
            failures.push(format!(
                "{}: exit {code:?}, stderr {stderr:?} (wanted {needles:?}, never {value:?})",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// A standby listed twice in `expected_standbys`, also in another case
/// (PostgreSQL compares `application_name` ignoring case, as in
/// `synchronous_standby_names`), would be two series of one standby: it is
/// refused at start, naming the key and the name.
#[test]
fn a_repeated_expected_standby_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = "[[targets]]\nname = \"p\"\ndsn = \"host=h\"\ncluster = \"c\"\n[clusters.c]\n";
    let cases = vec![
        case(
            "expected_twice",
            &format!("{cluster}expected_standbys = [\"s1\", \"s2\", \"s1\"]\n"),
            "clusters.c.expected_standbys",
        ),
        case(
            "expected_case_variant",
            &format!("{cluster}expected_standbys = [\"s1\", \"S1\"]\n"),
            "clusters.c.expected_standbys",
        ),
    ];
    assert_refused(&cases, dir.path(), |stderr, _| {
        stderr.contains("\"s1\"") && stderr.contains("config file ")
    });
    let (code, _, stderr) = run(&cases[1], dir.path());
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"S1\"") && stderr.contains("\"s1\""),
        "{stderr}"
    );
}

/// An argument the command does not take is named as such, without
/// repeating it (it may be a secret pasted in the wrong place), instead of
/// "unknown argument an argument".
#[test]
fn an_extra_argument_is_named_plainly() {
    const CANARY: &str = "Canary-Extra-4242";
    let dir = tempfile::tempdir().unwrap();
    let cases = vec![
        Case {
            name: "status_extra",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec!["status".into(), CANARY.into()],
            env: vec![],
            needle: "status: unexpected argument".into(),
        },
        Case {
            name: "status_output_extra",
            toml: Some(TARGET.as_bytes().to_vec()),
            args: vec![
                "status".into(),
                "--output".into(),
                "json".into(),
                CANARY.into(),
            ],
            env: vec![],
            needle: "status: unexpected argument".into(),
        },
    ];
    assert_refused(&cases, dir.path(), |stderr, _| {
        !stderr.contains("an argument") && !stderr.contains(CANARY) && stderr.contains("--help")
    });
}
