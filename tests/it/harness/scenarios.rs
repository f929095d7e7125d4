//! Scenarios and assertions shared by the replication tests and the version
//! matrix: the values a healthy pair reports, a standby that stops, and
//! replay paused while the primary writes.

use std::time::Duration;

use super::*;

/// What [`pause_and_outgrow`] saw.
pub struct PausedLag {
    /// WAL bytes written on the primary while replay was paused.
    pub written: f64,
    /// The scrape once the standby had replayed a transaction.
    pub replayed: Metrics,
    /// The scrape once replay lag and backlog exceeded `written`.
    pub lagging: Metrics,
}

/// The roles of a pair: `primary` is out of recovery, `standby1` in it.
pub fn assert_pair_roles(m: &Metrics) {
    assert_eq!(
        m.get("pgrepl_in_recovery", &[("target", "primary")]),
        Some(0.0)
    );
    assert_eq!(
        m.get("pgrepl_in_recovery", &[("target", "standby1")]),
        Some(1.0)
    );
}

/// The settings every harness pair has (10 WAL senders and slots, the
/// default `max_standby_streaming_delay`, archiving on, a WAL directory of at
/// least one segment), with its `wal_level` and the standby's
/// `recovery_min_apply_delay` (`None`: not exported).
pub fn assert_pair_settings(m: &Metrics, wal_level: &str, min_apply_delay: Option<f64>) {
    assert_eq!(
        m.get("pgrepl_max_wal_senders", &[("target", "primary")]),
        Some(10.0)
    );
    assert_eq!(
        m.get("pgrepl_max_replication_slots", &[("target", "primary")]),
        Some(10.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_max_standby_streaming_delay_seconds",
            &[("target", "primary")]
        ),
        Some(30.0)
    );
    assert_eq!(
        m.get(
            "pgrepl_recovery_min_apply_delay_seconds",
            &[("target", "standby1")]
        ),
        min_apply_delay
    );
    let settings = m.all("pgrepl_settings_info", &[("target", "primary")]);
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].labels["wal_level"], wal_level);
    assert_eq!(settings[0].labels["archive_mode"], "on");
    assert!(m
        .get("pgrepl_wal_directory_bytes", &[("target", "primary")])
        .is_some_and(|v| v >= 16.0 * 1024.0 * 1024.0));
}

/// A cascade: `standby` streams from `upstream` (a standby), not from the
/// primary.
pub fn assert_cascaded(m: &Metrics, standby: &str, upstream: &str) {
    assert!(m.has(
        "pgrepl_standby_state",
        &[
            ("target", upstream),
            ("application_name", standby),
            ("state", "streaming")
        ]
    ));
    assert!(!m.has(
        "pgrepl_standby_state",
        &[("target", "primary"), ("application_name", standby)]
    ));
}

/// The primary's view of a healthy pair: standby1 streams asynchronously
/// through its active physical slot, with a lag (possibly 0) at every stage,
/// and no synchronous standby is required.
pub fn assert_streaming_async(m: &Metrics) {
    let sb = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("client_addr", "127.0.0.1"),
        ("slot_name", "standby1_slot"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut v = sb.to_vec();
        v.push(extra);
        v
    };
    assert_eq!(
        m.get("pgrepl_standby_state", &with(("state", "streaming"))),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_state", &with(("state", "catchup"))),
        Some(0.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_sync_state", &with(("sync_state", "async"))),
        Some(1.0)
    );
    assert_eq!(
        m.get("pgrepl_standby_sync_state", &with(("sync_state", "sync"))),
        Some(0.0)
    );
    assert_eq!(m.get("pgrepl_standby_sync_priority", &sb), Some(0.0));
    for stage in ["sent", "write", "flush", "replay"] {
        let v = m.get("pgrepl_standby_lag_bytes", &with(("stage", stage)));
        assert!(v.is_some_and(|v| v >= 0.0), "lag {stage}: {v:?}");
    }
    let primary = [("target", "primary")];
    assert_eq!(m.get("pgrepl_standbys", &primary), Some(1.0));
    assert_eq!(m.get("pgrepl_standbys_sync", &primary), Some(0.0));
    assert_eq!(m.get("pgrepl_sync_standbys_required", &primary), Some(0.0));
    let slot = [
        ("target", "primary"),
        ("slot_name", "standby1_slot"),
        ("slot_type", "physical"),
        ("database", ""),
    ];
    assert_eq!(m.get("pgrepl_slot_active", &slot), Some(1.0));
    assert!(m
        .get("pgrepl_slot_retained_wal_bytes", &slot)
        .is_some_and(|v| v >= 0.0));
}

/// The standby's view of a healthy pair: its WAL receiver heard from the
/// primary recently, replay runs, and both servers report their positions.
pub fn assert_standby_receiving(m: &Metrics) {
    assert!(m
        .get(
            "pgrepl_wal_receiver_last_message_age_seconds",
            &[("target", "standby1")]
        )
        .is_some_and(|v| v < 30.0));
    assert_eq!(
        m.get("pgrepl_replay_paused", &[("target", "standby1")]),
        Some(0.0)
    );
    assert!(m.has("pgrepl_replay_backlog_bytes", &[("target", "standby1")]));
    assert!(m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "standby1"), ("position", "replay")]
    ));
    assert!(m.has(
        "pgrepl_wal_lsn_bytes",
        &[("target", "primary"), ("position", "current")]
    ));
}

/// The core outage scenario: stops the standby and waits until its slot on
/// the primary is inactive and the standby target is down; checks that the
/// walsender series left the primary and that the down target keeps only
/// its health families. Returns that scrape for checks of its own.
pub fn stop_standby_and_see_it_gone(pair: &Pair, exporter: &Exporter) -> Metrics {
    const WAIT: Duration = Duration::from_secs(30);
    let slot = [("target", "primary"), ("slot_name", "standby1_slot")];
    pair.standby.stop();
    let m = exporter.wait_for("standby gone and slot inactive", WAIT, |m| {
        m.get("pgrepl_slot_active", &slot) == Some(0.0)
            && m.get("pgrepl_up", &[("target", "standby1")]) == Some(0.0)
    });
    for family in [
        "pgrepl_standby_lag_bytes",
        "pgrepl_standby_lag_seconds",
        "pgrepl_standby_state",
        "pgrepl_standby_sync_state",
        "pgrepl_standby_sync_priority",
        "pgrepl_standby_reply_timestamp_seconds",
    ] {
        assert!(
            !m.has(family, &[("target", "primary")]),
            "{family} still present:\n{}",
            m.text
        );
    }
    assert_eq!(
        m.get("pgrepl_standbys", &[("target", "primary")]),
        Some(0.0)
    );
    // A down target keeps only its health families.
    assert!(!m.has("pgrepl_in_recovery", &[("target", "standby1")]));
    assert!(!m.has("pgrepl_wal_receiver_status", &[("target", "standby1")]));
    assert!(
        m.get("pgrepl_collect_errors_total", &[("target", "standby1")])
            .unwrap_or(0.0)
            >= 1.0
    );
    m
}

/// The core replay scenario: a replayed commit, `pg_wal_replay_pause()` on
/// the standby, over 1 MB of WAL on the primary; waits until the replay lag
/// (primary side) and the replay backlog (standby side) exceed what was
/// written while flush stays below it. Replay is left paused.
pub fn pause_and_outgrow(pair: &Pair, exporter: &Exporter) -> PausedLag {
    const WAIT: Duration = Duration::from_secs(30);
    let replay = [
        ("target", "primary"),
        ("application_name", "standby1"),
        ("stage", "replay"),
    ];
    pair.primary.write_wal(10);
    let replayed = exporter.wait_for("a replayed transaction", WAIT, |m| {
        m.has("pgrepl_standby_lag_bytes", &replay)
            && m.has(
                "pgrepl_last_replay_timestamp_seconds",
                &[("target", "standby1")],
            )
    });
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    let before = pair.primary.wal_position();
    pair.primary.write_wal(20_000);
    let written = pair.primary.wal_position() - before;
    assert!(written > 1_000_000.0, "wrote only {written} bytes of WAL");
    let lagging = exporter.wait_for("lag past what was written", WAIT, |m| {
        m.get("pgrepl_standby_lag_bytes", &replay).unwrap_or(0.0) >= written
            && m.get("pgrepl_replay_backlog_bytes", &[("target", "standby1")])
                .unwrap_or(0.0)
                >= written
            && m.get("pgrepl_replay_paused", &[("target", "standby1")]) == Some(1.0)
    });
    // Written and flushed keep up; only replay waits.
    let flush = lagging
        .get(
            "pgrepl_standby_lag_bytes",
            &[
                ("target", "primary"),
                ("application_name", "standby1"),
                ("stage", "flush"),
            ],
        )
        .expect("flush lag");
    assert!(
        flush < written,
        "flush lag {flush} should stay below {written}"
    );
    PausedLag {
        written,
        replayed,
        lagging,
    }
}
