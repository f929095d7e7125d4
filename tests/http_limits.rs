//! Floods against the real binary: silent sockets and wrong passwords from
//! one place must not keep anyone else from being served, and must not keep
//! the exporter from stopping. Clients on other addresses are real: Linux
//! routes all of 127.0.0.0/8 to the loopback interface, so a socket bound
//! to 127.0.0.2 is another client address to the exporter.
//!
//! Nothing here asserts how fast something is, only that it is answered
//! within the exporter's own 10 s request deadline (curl gives up later)
//! or stops within a generous bound.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Exporter, Scratch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The floods load a 2-core machine; one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The HTTP status curl gets for `url` from source address `from`.
fn curl_from(from: &str, url: &str, extra: &[&str]) -> String {
    let mut args = vec!["--interface", from, "--max-time", "15"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(&args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Keeps `per_address` silent connections open from each of `sources`,
/// reconnecting whichever the server closes, until `stop`.
async fn silent_flood(
    target: SocketAddr,
    sources: Vec<std::net::IpAddr>,
    per_address: usize,
    stop: Arc<AtomicBool>,
    connects: Arc<AtomicUsize>,
) {
    let mut slots: Vec<(std::net::IpAddr, Option<tokio::net::TcpStream>)> = sources
        .iter()
        .flat_map(|ip| (0..per_address).map(move |_| (*ip, None)))
        .collect();
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        for (ip, slot) in slots.iter_mut() {
            let alive = match slot {
                Some(stream) => match stream.try_read(&mut buf) {
                    Ok(0) => false,
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                },
                None => false,
            };
            if alive {
                continue;
            }
            *slot = None;
            let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                continue;
            };
            if socket.bind(SocketAddr::new(*ip, 0)).is_err() {
                continue;
            }
            if let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(1), socket.connect(target)).await
            {
                connects.fetch_add(1, Ordering::Relaxed);
                *slot = Some(stream);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Until `stop`, `clients` concurrent clients each send requests with a
/// wrong password (never the same twice) and read the answers; counts the
/// 401s.
async fn password_flood(
    target: SocketAddr,
    user: &'static str,
    clients: usize,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
) {
    use base64::Engine;
    let counter = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let stop = stop.clone();
        let refused = refused.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:wrong-password-{n}"));
                let request = format!(
                    "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n"
                );
                let exchange = async {
                    let mut s = tokio::net::TcpStream::connect(target).await?;
                    s.write_all(request.as_bytes()).await?;
                    let mut out = Vec::new();
                    s.read_to_end(&mut out).await?;
                    Ok::<_, std::io::Error>(out)
                };
                match tokio::time::timeout(Duration::from_secs(15), exchange).await {
                    Ok(Ok(out)) if out.starts_with(b"HTTP/1.1 401") => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Waits (10 s at most) for a [`silent_flood`] to have made `sockets`
/// connections, then half a second more.
fn let_flood_reach(connects: &AtomicUsize, sockets: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while connects.load(Ordering::Relaxed) < sockets && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
}

fn target(exporter: &Exporter) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], exporter.port))
}

#[test]
fn one_address_flooding_silent_sockets_does_not_starve_another() {
    let _heavy = heavy();
    let exporter = Exporter::start_down(&[]);
    let fds_before = exporter.open_fds();
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicUsize::new(0));
    let flood = rt.spawn(silent_flood(
        target(&exporter),
        vec![[127, 0, 0, 1].into()],
        600,
        stop.clone(),
        connects.clone(),
    ));
    let_flood_reach(&connects, 600);
    let url = exporter.url("/metrics");
    let mut held = Vec::new();
    let statuses: Vec<String> = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(300));
            held.push(exporter.open_fds().saturating_sub(fds_before));
            curl_from("127.0.0.2", &url, &[])
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(flood);
    assert!(
        connects.load(Ordering::Relaxed) >= 600,
        "the flood did not get going"
    );
    // The exporter's sockets for the flood: the per-address cap (384);
    // the global cap alone would let the flood hold 512. A sample may
    // catch sockets accepted and not yet closed, so the median counts.
    held.sort_unstable();
    let median = held[held.len() / 2];
    assert!(
        (200..=384 + 16).contains(&median),
        "the flooding address held {held:?} sockets"
    );
    assert!(
        statuses.iter().all(|s| s == "200"),
        "127.0.0.2 was not served while 127.0.0.1 flooded: {statuses:?}"
    );
}

#[test]
fn at_the_global_cap_connections_without_a_request_are_closed_first() {
    let _heavy = heavy();
    let exporter = Exporter::start_down(&[]);
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicUsize::new(0));
    // Ten addresses, each under the per-address cap, 600 sockets in all:
    // more than the 512 the server holds.
    let sources = (1..=10u8).map(|i| [127, 0, 0, i].into()).collect();
    let flood = rt.spawn(silent_flood(
        target(&exporter),
        sources,
        60,
        stop.clone(),
        connects.clone(),
    ));
    let_flood_reach(&connects, 600);
    let url = exporter.url("/metrics");
    let statuses: Vec<String> = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(300));
            curl_from("127.0.0.99", &url, &[])
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(flood);
    assert!(connects.load(Ordering::Relaxed) >= 600);
    assert!(
        statuses.iter().all(|s| s == "200"),
        "a new client was not served at the global cap: {statuses:?}"
    );
}

/// The exporter behind a web config with two users whose hashes cost 12
/// (about half a second per check in a debug build), kept in `scratch`.
fn start_with_auth(scratch: &Scratch) -> Exporter {
    let hash = |p: &str| bcrypt::hash(p, 12).unwrap();
    let web = scratch.path.join("web.yml");
    fs::write(
        &web,
        format!(
            "basic_auth_users:\n  prometheus: {}\n  grafana: {}\n",
            hash("scrape-Secret-1"),
            hash("scrape-Secret-2")
        ),
    )
    .unwrap();
    Exporter::start_down(&["--web.config.file", &web.display().to_string()])
}

#[test]
fn wrong_password_flood_does_not_stop_a_correct_scrape() {
    let _heavy = heavy();
    let scratch = Scratch::new("auth-flood");
    let exporter = start_with_auth(&scratch);
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    // 200 clients with wrong passwords for a real user and for nobody.
    let flood = rt.spawn(password_flood(
        target(&exporter),
        "prometheus",
        100,
        stop.clone(),
        refused.clone(),
    ));
    let flood2 = rt.spawn(password_flood(
        target(&exporter),
        "nobody",
        100,
        stop.clone(),
        refused.clone(),
    ));
    std::thread::sleep(Duration::from_secs(3));
    let url = exporter.url("/metrics");
    // Neither password has been checked before: each costs a real check,
    // queued behind the flood's.
    let first = curl_from("127.0.0.2", &url, &["-u", "prometheus:scrape-Secret-1"]);
    let second = curl_from("127.0.0.3", &url, &["-u", "grafana:scrape-Secret-2"]);
    // Remembered now.
    let again = curl_from("127.0.0.2", &url, &["-u", "prometheus:scrape-Secret-1"]);
    let wrong = curl_from("127.0.0.2", &url, &["-u", "prometheus:not-it"]);
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(async { tokio::join!(flood, flood2) });
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the flood never got an answer"
    );
    assert_eq!(
        [first, second, again, wrong],
        ["200", "200", "200", "401"],
        "correct scrapes during a wrong-password flood"
    );
}

#[test]
fn sigterm_during_a_password_flood_stops_promptly() {
    let _heavy = heavy();
    let scratch = Scratch::new("auth-flood-term");
    let mut exporter = start_with_auth(&scratch);
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood = rt.spawn(password_flood(
        target(&exporter),
        "prometheus",
        200,
        stop.clone(),
        refused.clone(),
    ));
    std::thread::sleep(Duration::from_secs(3));
    let sent = Instant::now();
    exporter.signal("TERM");
    let stopped = common::wait_until(Duration::from_secs(30), || !exporter.is_running());
    let took = sent.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(flood);
    assert!(stopped, "still running 30 s after SIGTERM");
    // Generous: in-flight requests may finish; password checks still
    // waiting are dropped rather than waited for.
    assert!(
        took < Duration::from_secs(12),
        "SIGTERM took {took:?} during a password flood"
    );
    let code = exporter.child.wait().ok().and_then(|s| s.code());
    assert_eq!(code, Some(0), "{}", exporter.log_text());
}
