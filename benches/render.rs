//! Render cost of `/metrics` as the work grows: `exposition::render` (and
//! the gzip of its output) on synthetic snapshots with 1..1,000 replication
//! slots, 1..50 walsenders and 1..100 targets.
//!
//! A plain timing loop (`harness = false`, no extra dependency):
//!
//! ```sh
//! cargo bench --bench render            # table on stdout
//! cargo bench --bench render -- --tsv   # machine-readable, used by bench/run.py
//! ```

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pg_replication_exporter::testing::sources::Sample;
use pg_replication_exporter::testing::{render, Format, ReloadStatus, TargetSnapshot};

/// The configuration loaded fine, as in a running exporter.
const RELOADED: ReloadStatus = ReloadStatus {
    successful: true,
    last_success: 1_800_000_000.0,
};

fn lsn(n: u64) -> String {
    format!("{:X}/{:X}", n >> 32, n & 0xffff_ffff)
}

/// A primary with `slots` physical slots and `walsenders` streaming standbys.
fn sample(slots: usize, walsenders: usize) -> Sample {
    let base: u64 = 0x3_2000_0000;
    let now = 1_750_000_000.0;
    let senders: Vec<serde_json::Value> = (0..walsenders)
        .map(|i| {
            serde_json::json!({
                "pid": 10_000 + i as i32,
                "application_name": format!("standby{i}"),
                "client_addr": "127.0.0.1",
                "client_port": 40_000 + i as i32,
                "state": "streaming",
                "sent_lsn": lsn(base),
                "write_lsn": lsn(base - 128),
                "flush_lsn": lsn(base - 256),
                "replay_lsn": lsn(base - 4096),
                "write_lag": 0.0012,
                "flush_lag": 0.0019,
                "replay_lag": 0.0031,
                "sync_priority": 0,
                "sync_state": "async",
                "reply_time": now - 0.2,
                "slot_name": if i < slots { Some(format!("slot_{i:04}")) } else { None },
            })
        })
        .collect();
    let slot_rows: Vec<serde_json::Value> = (0..slots)
        .map(|i| {
            serde_json::json!({
                "slot_name": format!("slot_{i:04}"),
                "slot_type": "physical",
                "database": null,
                "active": i < walsenders,
                "restart_lsn": lsn(base - (i as u64) * 8192),
                "xmin_age": null,
                "wal_status": "reserved",
                "safe_wal_size": 1_073_741_824.0,
                "conflicting": null,
                "inactive_since": null,
            })
        })
        .collect();
    let settings: serde_json::Map<String, serde_json::Value> = [
        ("max_wal_senders", "64", None),
        ("max_replication_slots", "1100", None),
        ("wal_keep_size", "0", Some("MB")),
        ("wal_segment_size", "16777216", Some("B")),
        ("max_slot_wal_keep_size", "1024", Some("MB")),
        ("max_wal_size", "1024", Some("MB")),
        ("recovery_min_apply_delay", "0", Some("ms")),
        ("max_standby_streaming_delay", "30000", Some("ms")),
        ("max_standby_archive_delay", "30000", Some("ms")),
        ("wal_level", "replica", None),
        ("synchronous_commit", "on", None),
        ("synchronous_standby_names", "", None),
        ("hot_standby", "on", None),
        ("hot_standby_feedback", "off", None),
        ("wal_log_hints", "on", None),
        ("data_checksums", "off", None),
        ("full_page_writes", "on", None),
        ("archive_mode", "on", None),
        ("archive_timeout", "0", Some("s")),
        ("primary_slot_name", "", None),
        ("wal_sender_timeout", "60000", Some("ms")),
        ("wal_receiver_timeout", "60000", Some("ms")),
    ]
    .into_iter()
    .map(|(k, v, u)| (k.to_string(), serde_json::json!([v, u])))
    .collect();
    let doc = serde_json::json!({
        "server": {
            "in_recovery": false,
            "version": "15.8",
            "system_identifier": "7400000000000000000",
            "cluster_name": "primary",
            "current_lsn": lsn(base),
            "primary_timeline": 1,
            "receive_lsn": null,
            "replay_lsn": null,
            "last_replay_ts": null,
            "checkpoint_timeline": 1,
            "replay_paused": null,
            "now": now,
        },
        "replication": senders,
        "slots": slot_rows,
        "wal_receiver": null,
        "archiver": {
            "archived_count": 1234.0,
            "failed_count": 0.0,
            "last_archived_time": now - 10.0,
            "last_failed_time": null,
            "pending": 0.0,
            "oldest_pending": null,
        },
        "waldir": { "bytes": 268_435_456.0, "files": 16.0 },
        "settings": settings,
        "basebackups": [],
    });
    serde_json::from_value(doc).expect("synthetic sample matches sources::Sample")
}

fn snapshots(targets: usize, slots: usize, walsenders: usize) -> Vec<Arc<TargetSnapshot>> {
    let shared = Arc::new(sample(slots, walsenders));
    (0..targets)
        .map(|i| {
            let mut s = TargetSnapshot::initial(&format!("target{i:03}"), Some("bench"));
            s.collect_duration = 0.0021;
            s.last_success = Some(1_750_000_000.0);
            s.last_timeline = Some(1);
            s.sample = Some(shared.clone());
            Arc::new(s)
        })
        .collect()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// Median and minimum of a timed closure, run for about `budget`.
fn time<F: FnMut()>(mut f: F, budget: Duration) -> (Duration, Duration) {
    f(); // warm up
    let mut runs = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || runs.len() < 5 {
        let t = Instant::now();
        f();
        runs.push(t.elapsed());
        if runs.len() >= 10_000 {
            break;
        }
    }
    runs.sort();
    (runs[runs.len() / 2], runs[0])
}

fn main() {
    let tsv = std::env::args().any(|a| a == "--tsv");
    let budget = Duration::from_millis(
        std::env::var("RENDER_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
    );
    let cases: &[(&str, usize, usize, usize)] = &[
        ("slots", 1, 1, 1),
        ("slots", 1, 10, 1),
        ("slots", 1, 100, 1),
        ("slots", 1, 1000, 1),
        ("walsenders", 1, 1, 10),
        ("walsenders", 1, 1, 50),
        ("both", 1, 1000, 50),
        ("targets", 10, 1, 1),
        ("targets", 100, 1, 1),
    ];
    if tsv {
        println!("case\ttargets\tslots\twalsenders\tseries\tbytes\tgzip_bytes\trender_us\tgzip_us");
    } else {
        println!(
            "{:<11} {:>7} {:>6} {:>10} {:>7} {:>9} {:>9} {:>11} {:>9}",
            "case",
            "targets",
            "slots",
            "walsenders",
            "series",
            "bytes",
            "gzip",
            "render µs",
            "gzip µs"
        );
    }
    for &(case, targets, slots, walsenders) in cases {
        let snaps = snapshots(targets, slots, walsenders);
        let body = render(&snaps, &Default::default(), RELOADED, Format::Prometheus);
        let series = body
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        let zipped = gzip(body.as_bytes());
        let (render_med, _) = time(
            || {
                black_box(render(
                    black_box(&snaps),
                    &Default::default(),
                    RELOADED,
                    Format::Prometheus,
                ));
            },
            budget,
        );
        let (gzip_med, _) = time(
            || {
                black_box(gzip(black_box(body.as_bytes())));
            },
            budget,
        );
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        if tsv {
            println!(
                "{case}\t{targets}\t{slots}\t{walsenders}\t{series}\t{}\t{}\t{:.1}\t{:.1}",
                body.len(),
                zipped.len(),
                us(render_med),
                us(gzip_med)
            );
        } else {
            println!(
                "{:<11} {:>7} {:>6} {:>10} {:>7} {:>9} {:>9} {:>11.1} {:>9.1}",
                case,
                targets,
                slots,
                walsenders,
                series,
                body.len(),
                zipped.len(),
                us(render_med),
                us(gzip_med)
            );
        }
    }
}
