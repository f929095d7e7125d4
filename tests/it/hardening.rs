//! Faults against real PostgreSQL, hostile HTTP clients, and reloads: the
//! exporter keeps answering, tells the truth and never makes things worse.

use crate::harness as common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, Pair};

const WAIT: Duration = Duration::from_secs(30);

fn up(m: &Metrics, target: &str) -> Option<f64> {
    m.get("pgrepl_up", &[("target", target)])
}

fn two_targets(pair: &Pair, extra: &str) -> Exporter {
    Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("standby1", pair.standby.dsn()),
        ],
        extra,
        &[],
    )
}

#[test]
fn frozen_primary_does_not_hold_anything() {
    let pair = Pair::start("freeze");
    let exporter = two_targets(
        &pair,
        "collect_interval = \"1s\"\ncollect_timeout = \"500ms\"\n",
    );
    exporter.wait_for("both up", WAIT, |m| {
        up(m, "primary") == Some(1.0) && up(m, "standby1") == Some(1.0)
    });
    let fds_before = exporter.open_fds();
    let threads_before = exporter.threads();

    pair.primary.signal_all("STOP");
    let frozen_at = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Every scrape answers fast while the primary is frozen.
        let mut slowest = Duration::ZERO;
        let m = exporter.wait_for("frozen primary reads down", WAIT, |m| {
            up(m, "primary") == Some(0.0)
        });
        assert!(
            frozen_at.elapsed() < Duration::from_secs(5),
            "took {:?} to notice",
            frozen_at.elapsed()
        );
        assert!(
            exporter.log_text().contains("did not finish within"),
            "{}",
            exporter.log_text()
        );
        let standby_success = m
            .get(
                "pgrepl_last_collect_success_timestamp_seconds",
                &[("target", "standby1")],
            )
            .unwrap();
        for _ in 0..15 {
            let t = Instant::now();
            let m = exporter.metrics();
            slowest = slowest.max(t.elapsed());
            assert_eq!(up(&m, "primary"), Some(0.0));
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            slowest < Duration::from_millis(500),
            "a scrape took {slowest:?}"
        );
        // The standby kept being collected on time meanwhile.
        let m = exporter.metrics();
        let later = m
            .get(
                "pgrepl_last_collect_success_timestamp_seconds",
                &[("target", "standby1")],
            )
            .unwrap();
        assert!(
            later >= standby_success + 2.0,
            "standby not collected while the primary was frozen"
        );
        assert_eq!(up(&m, "standby1"), Some(1.0));
        // No pile-up: sockets and threads stay where they were.
        let fds = exporter.open_fds();
        assert!(fds <= fds_before + 3, "fds grew from {fds_before} to {fds}");
        let threads = exporter.threads();
        assert!(
            threads <= threads_before + 2,
            "threads grew from {threads_before} to {threads}"
        );
        let to_primary = established_to(exporter.pid(), pair.primary.port);
        assert!(
            to_primary <= 2,
            "{to_primary} connections to the frozen primary"
        );
    }));
    pair.primary.signal_all("CONT");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    exporter.wait_for("primary recovers after SIGCONT", WAIT, |m| {
        up(m, "primary") == Some(1.0)
    });
    assert!(pair.primary.exporter_sessions() <= 2);
}

/// TCP connections of `pid` to 127.0.0.1:`port` (from `ss`).
fn established_to(pid: u32, port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-tnp", "state", "established", &format!("dport = :{port}")])
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .count()
}

#[test]
fn unreachable_targets_are_down_with_the_reason_and_retried() {
    let pair = Pair::start("unreach");
    let closed_port = common::free_port();
    let wrong_password = format!(
        "host=127.0.0.1 port={} user=monitor password=not-the-password dbname=postgres sslmode=disable",
        pair.primary.port
    );
    let exporter = Exporter::start_with(
        &[
            ("primary", pair.primary.dsn()),
            ("refused", format!("host=127.0.0.1 port={closed_port} user=monitor dbname=postgres sslmode=disable")),
            ("unresolvable", "host=no-such-host.invalid port=5432 user=monitor dbname=postgres sslmode=disable".into()),
            ("badpassword", wrong_password),
        ],
        "collect_interval = \"4s\"\ncollect_timeout = \"2s\"\n",
        &[],
    );
    let m = exporter.wait_for("three down, one up, each retried", WAIT, |m| {
        up(m, "primary") == Some(1.0)
            && ["refused", "unresolvable", "badpassword"].iter().all(|t| {
                up(m, t) == Some(0.0)
                    // Backoff: retried sooner than the 4 s interval.
                    && m.get("pgrepl_collect_errors_total", &[("target", t)]).unwrap_or(0.0) >= 3.0
            })
    });
    assert!(m.get("pgrepl_collect_errors_total", &[("target", "primary")]) == Some(0.0));
    let log = exporter.log_text();
    let line_for = |target: &str| exporter.down_line(target);
    assert!(
        line_for("refused").to_lowercase().contains("refused"),
        "{}",
        line_for("refused")
    );
    let dns = line_for("unresolvable").to_lowercase();
    assert!(
        dns.contains("lookup") || dns.contains("resolve") || dns.contains("name"),
        "{dns}"
    );
    assert!(
        line_for("badpassword").contains("password authentication failed"),
        "{}",
        line_for("badpassword")
    );
    // One warning per target and cause, not one per retry.
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("target is down") && l.contains("target_name=refused"))
            .count(),
        1
    );
    assert!(!log.contains("not-the-password"));
    assert!(!log.contains(common::MONITOR_PASSWORD));
}

#[test]
fn failover_and_standby_restart_are_followed() {
    let pair = Pair::start("failover");
    let exporter = two_targets(
        &pair,
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
    );
    exporter.wait_for("standby streaming", WAIT, |m| {
        m.get(
            "pgrepl_wal_receiver_status",
            &[("target", "standby1"), ("status", "streaming")],
        ) == Some(1.0)
    });

    // The standby restarted: its WAL receiver series come back.
    pair.standby.stop();
    exporter.wait_for("standby down", WAIT, |m| up(m, "standby1") == Some(0.0));
    pair.standby.start();
    exporter.wait_for("WAL receiver streams again", WAIT, |m| {
        m.get(
            "pgrepl_wal_receiver_status",
            &[("target", "standby1"), ("status", "streaming")],
        ) == Some(1.0)
            && m.has("pgrepl_wal_receiver_info", &[("target", "standby1")])
    });

    // Failover: the old primary stops, the standby is promoted.
    pair.primary.stop();
    pair.standby.promote();
    let promoted = Instant::now();
    let m = exporter.wait_for("roles and timeline follow", WAIT, |m| {
        m.get("pgrepl_in_recovery", &[("target", "standby1")]) == Some(0.0)
            && m.get("pgrepl_timeline_id", &[("target", "standby1")]) == Some(2.0)
    });
    assert!(
        promoted.elapsed() < Duration::from_secs(5),
        "took {:?}",
        promoted.elapsed()
    );
    assert_eq!(
        m.get("pgrepl_timeline_changes_total", &[("target", "standby1")]),
        Some(1.0)
    );
    assert_eq!(up(&m, "primary"), Some(0.0));
    assert!(exporter.log_text().contains("target changed role"));
}

#[test]
fn statement_timeout_cancels_cleanly() {
    let pair = Pair::start("stmt");
    let exporter = Exporter::start_with(
        &[("primary", pair.primary.dsn())],
        "collect_interval = \"2s\"\ncollect_timeout = \"1s\"\n",
        &[],
    );
    exporter.wait_for("up", WAIT, |m| up(m, "primary") == Some(1.0));
    // An exclusive lock on a view the collection reads makes it wait until
    // the server's statement_timeout (90% of collect_timeout) cancels it.
    let mut locker = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &pair.primary.port.to_string(), "-U", "postgres", "-d", "postgres"])
        .args(["-c", "BEGIN; LOCK TABLE pg_catalog.pg_settings IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("psql");
    exporter.wait_for("down while locked", WAIT, |m| up(m, "primary") == Some(0.0));
    let log = exporter.log_text();
    assert!(
        log.contains("canceling statement due to statement timeout"),
        "{log}"
    );
    assert!(pair.primary.exporter_sessions() <= 2);
    let _ = locker.wait();
    exporter.wait_for("up after the lock goes", WAIT, |m| {
        up(m, "primary") == Some(1.0)
    });
    assert!(pair.primary.exporter_sessions() <= 2, "leaked sessions");
}

#[test]
fn concurrent_scrapes_cause_no_database_work() {
    let pair = Pair::start("scrapes");
    pair.primary.psql("CREATE DATABASE exporterdb");
    let dsn = pair
        .primary
        .dsn()
        .replace("dbname=postgres", "dbname=exporterdb");
    let exporter = Exporter::start_with(
        &[("primary", dsn)],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &[],
    );
    exporter.wait_for("up", WAIT, |m| up(m, "primary") == Some(1.0));
    let xacts = || -> f64 {
        pair.primary
            .psql("SELECT pg_stat_force_next_flush(); SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'exporterdb'")
            .lines()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    let errors_before = exporter
        .metrics()
        .get("pgrepl_collect_errors_total", &[("target", "primary")]);
    let before = xacts();
    let started = Instant::now();
    let port = exporter.port;
    let threads: Vec<_> = (0..300)
        .map(|_| {
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..5 {
                    let raw = common::raw_request(
                        port,
                        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    );
                    if raw.starts_with(b"HTTP/1.1 200") {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 1500, "every scrape answered");
    assert_eq!(
        exporter
            .metrics()
            .get("pgrepl_collect_errors_total", &[("target", "primary")]),
        errors_before
    );
    // A session writes its statistics to pg_stat_database when it ends (a
    // live one only now and then): stop the exporter and wait until its
    // sessions are gone, so that every transaction it made is counted.
    exporter.signal("TERM");
    assert!(
        common::wait_until(WAIT, || pair.primary.exporter_sessions() == 0),
        "the exporter's sessions did not end after SIGTERM"
    );
    let elapsed = started.elapsed().as_secs_f64();
    let after = xacts();
    // One transaction per collection cycle, plus two for the cycles at the
    // edges and one for statistics a session had not yet written when
    // `before` was read.
    let cycles = elapsed.ceil() + 3.0;
    assert!(
        after - before <= cycles,
        "{} transactions for {ok} scrapes in {elapsed:.1}s; at most {cycles} collections expected",
        after - before
    );
}

#[test]
fn hostile_http_clients_are_cut_off() {
    let pair = Pair::start("http");
    let exporter = Exporter::start(&[("primary", pair.primary.dsn())]);
    // Oversized request head.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let raw = common::raw_request(exporter.port, &big);
    assert!(
        raw.starts_with(b"HTTP/1.1 431") || raw.is_empty(),
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );

    // A slow client that never finishes its headers is disconnected.
    let mut slow = TcpStream::connect(("127.0.0.1", exporter.port)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(9),
        "slow client held the connection for {held:?}"
    );

    // Many idle connections: the cap closes the excess at once, and
    // scrapes work again once the idle ones are timed out.
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", exporter.port)).ok())
        .collect();
    for s in idle.iter() {
        s.set_nonblocking(true).unwrap();
    }
    // Polled: each connection found closed (EOF) stays counted.
    let mut is_closed = vec![false; idle.len()];
    let mut closed = 0;
    common::wait_until(Duration::from_secs(10), || {
        for (mut s, seen) in idle.iter().zip(is_closed.iter_mut()) {
            let mut b = [0u8; 1];
            if !*seen && matches!(s.read(&mut b), Ok(0)) {
                *seen = true;
                closed += 1;
            }
        }
        closed >= 600 - 512 - 5
    });
    assert!(
        closed >= 600 - 512 - 5,
        "only {closed} of 600 idle connections closed"
    );
    drop(idle);
    assert!(common::wait_until(WAIT, || exporter
        .get("/metrics")
        .is_ok()));
}

#[test]
fn reload_applies_valid_and_refuses_invalid_config() {
    let pair = Pair::start("reload");
    let exporter = Exporter::start_with(
        &[("primary", pair.primary.dsn())],
        "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
        &["--web.enable-lifecycle"],
    );
    exporter.wait_for("up", WAIT, |m| up(m, "primary") == Some(1.0));
    let original = std::fs::read_to_string(&exporter.config).unwrap();

    // SIGHUP with a second target.
    let with_standby = format!(
        "{original}[[targets]]\nname = \"standby1\"\ndsn = \"{}\"\n",
        pair.standby.dsn()
    );
    std::fs::write(&exporter.config, &with_standby).unwrap();
    exporter.signal("HUP");
    exporter.wait_for("standby added by SIGHUP", WAIT, |m| {
        up(m, "standby1") == Some(1.0) && up(m, "primary") == Some(1.0)
    });

    // An invalid file is refused; the running configuration stays.
    std::fs::write(&exporter.config, format!("{with_standby}bogus_key = 1\n")).unwrap();
    exporter.signal("HUP");
    assert!(common::wait_until(WAIT, || exporter
        .log_text()
        .contains("configuration reload refused")));
    assert!(exporter.log_text().contains("bogus_key"));
    exporter.through_cycles("standby1", 2.0, WAIT, |m| {
        assert_eq!(up(m, "standby1"), Some(1.0));
    });

    // POST /-/reload back to one target; counters of kept targets carry over.
    std::fs::write(&exporter.config, &original).unwrap();
    assert_eq!(
        common::curl_status(&["-X", "POST", &exporter.url("/-/reload")]),
        "200"
    );
    let m = exporter.wait_for("standby removed by POST /-/reload", WAIT, |m| {
        !m.has("pgrepl_up", &[("target", "standby1")])
    });
    assert_eq!(up(&m, "primary"), Some(1.0));
    let mut exporter = exporter;
    assert!(exporter.is_running());
}

#[test]
fn worker_threads_flag_sizes_the_runtime() {
    // Nothing listens on port 1: the target is down, the exporter is not.
    let dsn = "postgresql://monitor@127.0.0.1:1/postgres?connect_timeout=1".to_string();
    let default = Exporter::start_with(&[("nowhere", dsn.clone())], "", &[]);
    let eight = Exporter::start_with(&[("nowhere", dsn)], "", &["--runtime.worker-threads", "8"]);
    let (one, many) = (default.threads(), eight.threads());
    // The main thread plus the workers; spawn_blocking may add a thread or two.
    assert!(many >= 9, "--runtime.worker-threads 8 runs {many} threads");
    assert!(
        one + 4 < many,
        "default runs {one} threads, 8 workers {many}"
    );
    for e in [&default, &eight] {
        assert_eq!(
            e.metrics().get("pgrepl_up", &[("target", "nowhere")]),
            Some(0.0)
        );
    }
}
