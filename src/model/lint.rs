//! Configuration lint: settings that put replication at risk, from the
//! advice DBAs follow. Each check is documented with its fix in
//! `docs/config-lint.md`.
//!
//! [`evaluate`] gives, per target, the checks that apply to its role and
//! settings with their outcome; `pgrepl_config_issue{target, check}`
//! (rendered in `crate::render::lint`) and `status` both show it.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::model::cluster::ClusterView;
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::sources::Sample;

/// A check of the configuration lint: a setting (or a combination) that
/// puts replication at risk. `docs/config-lint.md` has a section for each,
/// with its fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    WalLevelMinimal,
    MaxWalSendersNearlyUsed,
    MaxReplicationSlotsNearlyUsed,
    PgRewindImpossible,
    SlotWalUnlimited,
    HotStandbyOff,
    SyncStandbyNotConnected,
    SynchronousCommitOffWithSyncStandbys,
    ArchiveCommandFailing,
    StandbyWithoutSlotOrWalKeep,
    HotStandbyFeedbackOffWithConflicts,
    SystemIdentifierMismatch,
}

/// The `check` label of each [`Check`], in the order of [`Check::ALL`]
/// (the order they are reported in).
pub const CHECKS: [&str; 12] = [
    "wal_level_minimal",
    "max_wal_senders_nearly_used",
    "max_replication_slots_nearly_used",
    "pg_rewind_impossible",
    "slot_wal_unlimited",
    "hot_standby_off",
    "sync_standby_not_connected",
    "synchronous_commit_off_with_sync_standbys",
    "archive_command_failing",
    "standby_without_slot_or_wal_keep",
    "hot_standby_feedback_off_with_conflicts",
    "system_identifier_mismatch",
];

impl Check {
    /// Every check, in the order they are reported.
    pub const ALL: [Check; 12] = [
        Check::WalLevelMinimal,
        Check::MaxWalSendersNearlyUsed,
        Check::MaxReplicationSlotsNearlyUsed,
        Check::PgRewindImpossible,
        Check::SlotWalUnlimited,
        Check::HotStandbyOff,
        Check::SyncStandbyNotConnected,
        Check::SynchronousCommitOffWithSyncStandbys,
        Check::ArchiveCommandFailing,
        Check::StandbyWithoutSlotOrWalKeep,
        Check::HotStandbyFeedbackOffWithConflicts,
        Check::SystemIdentifierMismatch,
    ];

    /// Checks that advise rather than warn: a setting a DBA may keep on
    /// purpose (no `max_slot_wal_keep_size`, so that a slow standby is never
    /// cut off; `synchronous_commit` off for speed) or PostgreSQL's default
    /// that only costs a rebuild after a failover (no `wal_log_hints` nor
    /// checksums). `status` lists them under ISSUES; every other finding is
    /// a warning that makes it degraded (exit code 1), since it puts
    /// replication at risk now.
    pub const ADVICE: [Check; 3] = [
        Check::PgRewindImpossible,
        Check::SlotWalUnlimited,
        Check::SynchronousCommitOffWithSyncStandbys,
    ];

    /// The `check` label, and the anchor of its section in
    /// `docs/config-lint.md`.
    pub fn as_str(self) -> &'static str {
        CHECKS[self as usize]
    }

    /// Whether a finding makes `status` degraded (see [`Check::ADVICE`]).
    pub fn warns(self) -> bool {
        !Check::ADVICE.contains(&self)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far back `hot_standby_feedback_off_with_conflicts` looks for
/// recovery conflicts: the check clears an hour after the last one.
pub const CONFLICT_WINDOW: Duration = Duration::from_secs(3600);

/// Readings of a standby's recovery-conflict counter over the last
/// [`CONFLICT_WINDOW`], kept by its collection task. PostgreSQL's counter
/// only grows (until `pg_stat_reset()`), so a check on the total never
/// clears once the cause is fixed; the increase over the window does.
#[derive(Debug, Default, Clone)]
pub struct ConflictWindow {
    /// `(unix time, total)`, oldest first, at least a sixtieth of the
    /// window apart (so at most about 62 of them); the first is the newest
    /// reading at or before the start of the window, the baseline.
    points: VecDeque<(f64, f64)>,
}

impl ConflictWindow {
    /// Records the total read at `now` (`None` on a primary or when it
    /// cannot be read) and returns the conflicts counted over the window;
    /// `None` until a second reading gives a baseline.
    pub fn observe(&mut self, now: f64, total: Option<f64>) -> Option<f64> {
        let Some(total) = total.filter(|t| t.is_finite()) else {
            self.points.clear();
            return None;
        };
        // A reset (pg_stat_reset(), a crash) starts the count afresh.
        if self.points.back().is_some_and(|(_, last)| total < *last) {
            self.points.clear();
        }
        let window = CONFLICT_WINDOW.as_secs_f64();
        let start = now - window;
        while self.points.len() >= 2 && self.points[1].0 <= start {
            self.points.pop_front();
        }
        let increase = self.points.front().map(|(_, first)| total - first);
        if self
            .points
            .back()
            .is_none_or(|(at, _)| now - at >= window / 60.0)
        {
            self.points.push_back((now, total));
        }
        increase
    }
}

/// A limit is "nearly used up" when at most 20% (or fewer than 2) is left.
fn nearly_used(used: usize, max: Option<f64>) -> Option<bool> {
    let max = max?;
    if max <= 0.0 {
        return Some(false);
    }
    let free = max - used as f64;
    Some(free < 2.0 || free / max <= 0.2)
}

/// The checks that apply to this target, with their outcome.
pub fn evaluate(snap: &TargetSnapshot, cluster: Option<&ClusterView>) -> Vec<(Check, bool)> {
    let Some(s) = snap.sample.as_deref() else {
        // A standby with hot_standby = off refuses every connection; the
        // only trace of the setting is the error it answers with.
        let hot_standby_off = snap
            .last_error
            .as_deref()
            .is_some_and(|e| e.to_lowercase().contains("hot standby mode is disabled"));
        return if hot_standby_off {
            vec![(Check::HotStandbyOff, true)]
        } else {
            Vec::new()
        };
    };
    let mut out = Vec::with_capacity(CHECKS.len());
    let settings = &s.settings;
    if let Some(level) = settings.wal_level() {
        out.push((Check::WalLevelMinimal, level == "minimal"));
    }
    if let Some(v) = nearly_used(s.replication.len(), settings.max_wal_senders()) {
        out.push((Check::MaxWalSendersNearlyUsed, v));
    }
    if let Some(v) = nearly_used(s.slots.len(), settings.max_replication_slots()) {
        out.push((Check::MaxReplicationSlotsNearlyUsed, v));
    }
    if let Some(hints) = settings.wal_log_hints() {
        out.push((
            Check::PgRewindImpossible,
            !hints && settings.data_checksums() != Some(true),
        ));
    }
    if let Some(limit) = settings.max_slot_wal_keep_size_bytes() {
        out.push((
            Check::SlotWalUnlimited,
            !s.slots.is_empty() && limit.is_none(),
        ));
    }
    if Role::of(snap) == Role::Standby {
        standby_checks(s, snap.recent_conflicts, &mut out);
    } else {
        primary_checks(s, &mut out);
    }
    if let Some(member) = cluster.and_then(|c| c.member(&snap.name)) {
        out.push((Check::SystemIdentifierMismatch, member.foreign));
    }
    out
}

fn standby_checks(s: &Sample, recent_conflicts: Option<f64>, out: &mut Vec<(Check, bool)>) {
    let settings = &s.settings;
    out.push((Check::HotStandbyOff, settings.hot_standby() == Some(false)));
    // Conflicts counted over the last hour the exporter watched, not the
    // total since the statistics were reset: the check clears once the
    // cause is fixed (absent until two collections give an increase).
    if let Some(recent) = recent_conflicts {
        out.push((
            Check::HotStandbyFeedbackOffWithConflicts,
            settings.hot_standby_feedback() != Some(true) && recent > 0.0,
        ));
    }
}

fn primary_checks(s: &Sample, out: &mut Vec<(Check, bool)>) {
    let settings = &s.settings;
    let names = settings.synchronous_standby_names();
    let listed = names.listed();
    let connected = |name: &str| s.replication.iter().any(|w| w.serves(&[name]));
    out.push((
        Check::SyncStandbyNotConnected,
        listed.iter().any(|n| !connected(n)),
    ));
    out.push((
        Check::SynchronousCommitOffWithSyncStandbys,
        names.is_set() && matches!(settings.synchronous_commit(), Some("off" | "local")),
    ));
    if let Some(archiver) = &s.archiver {
        let archiving = matches!(settings.archive_mode(), Some("on" | "always"));
        let failing = match (archiver.last_failed_time, archiver.last_archived_time) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            _ => false,
        };
        out.push((Check::ArchiveCommandFailing, archiving && failing));
    }
    // Without a slot, only wal_keep_size keeps WAL for a standby; less than
    // one checkpoint's worth (max_wal_size) can be recycled under it.
    let keep = settings.wal_keep_bytes().unwrap_or(0.0);
    let enough = settings.max_wal_size_bytes().unwrap_or(f64::MAX);
    out.push((
        Check::StandbyWithoutSlotOrWalKeep,
        s.replication.iter().any(|w| {
            !w.is_backup() && w.slot_name.as_deref().unwrap_or("").is_empty() && keep < enough
        }),
    ));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn nearly_used_limits() {
        assert_eq!(nearly_used(1, Some(10.0)), Some(false));
        assert_eq!(nearly_used(9, Some(10.0)), Some(true));
        assert_eq!(nearly_used(8, Some(10.0)), Some(true));
        assert_eq!(nearly_used(7, Some(10.0)), Some(false));
        assert_eq!(nearly_used(0, None), None);
    }

    /// A primary asking for `names` with walsenders for `connected`.
    fn primary(names: &str, connected: &[&str]) -> TargetSnapshot {
        let walsenders: Vec<serde_json::Value> = connected
            .iter()
            .map(|n| serde_json::json!({"pid": 1, "application_name": n, "state": "streaming", "slot_name": "s"}))
            .collect();
        let sample: Sample = serde_json::from_value(serde_json::json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0},
            "settings": {"synchronous_standby_names": [names, null]},
            "replication": walsenders,
        }))
        .expect("a sample");
        let mut snap = TargetSnapshot::initial("primary", None);
        snap.sample = Some(Arc::new(sample));
        snap
    }

    fn sync_missing(snap: &TargetSnapshot) -> Option<bool> {
        evaluate(snap, None)
            .into_iter()
            .find(|(check, _)| *check == Check::SyncStandbyNotConnected)
            .map(|(_, v)| v)
    }

    /// A standby with `hot_standby_feedback = off` whose conflict counter
    /// reads `total`, with `recent` conflicts over the window.
    fn standby(total: f64, recent: Option<f64>) -> TargetSnapshot {
        let sample: Sample = serde_json::from_value(serde_json::json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 0.0,
                       "recovery_conflicts": total},
            "settings": {"hot_standby_feedback": ["off", null], "hot_standby": ["on", null]},
        }))
        .expect("a sample");
        let mut snap = TargetSnapshot::initial("standby", None);
        snap.sample = Some(Arc::new(sample));
        snap.recent_conflicts = recent;
        snap
    }

    fn feedback_check(snap: &TargetSnapshot) -> Option<bool> {
        evaluate(snap, None)
            .into_iter()
            .find(|(check, _)| *check == Check::HotStandbyFeedbackOffWithConflicts)
            .map(|(_, v)| v)
    }

    #[test]
    fn old_conflicts_do_not_keep_the_feedback_check_on() {
        // 5 conflicts counted long ago, none lately: no finding.
        assert_ne!(feedback_check(&standby(5.0, Some(0.0))), Some(true));
        assert_eq!(feedback_check(&standby(5.0, Some(0.0))), Some(false));
        assert_eq!(feedback_check(&standby(7.0, Some(2.0))), Some(true));
        // One collection alone cannot tell: the check is absent.
        assert_eq!(feedback_check(&standby(5.0, None)), None);
    }

    #[test]
    fn the_conflict_window_fires_and_clears() {
        let mut w = ConflictWindow::default();
        let hour = CONFLICT_WINDOW.as_secs_f64();
        let t0 = 1_800_000_000.0;
        // Conflicts from before the exporter started are not counted.
        assert_eq!(w.observe(t0, Some(40.0)), None);
        assert_eq!(w.observe(t0 + 5.0, Some(40.0)), Some(0.0));
        // Three conflicts now: seen for an hour, then cleared.
        let mut t = t0 + 10.0;
        assert_eq!(w.observe(t, Some(43.0)), Some(3.0));
        while t < t0 + 10.0 + hour - 120.0 {
            t += 5.0;
            assert_eq!(w.observe(t, Some(43.0)), Some(3.0), "at +{}s", t - t0);
        }
        t += 300.0;
        assert_eq!(w.observe(t, Some(43.0)), Some(0.0));
        // Bounded memory whatever the interval.
        assert!(w.points.len() <= 62, "{} points", w.points.len());
        // A reset of the statistics starts afresh.
        assert_eq!(w.observe(t + 5.0, Some(0.0)), None);
        assert_eq!(w.observe(t + 10.0, Some(1.0)), Some(1.0));
        // A primary has no such counter.
        assert_eq!(w.observe(t + 15.0, None), None);
    }

    #[test]
    fn listed_sync_standbys_match_walsenders_ignoring_case() {
        assert_eq!(
            sync_missing(&primary("FIRST 1 (Standby1)", &["standby1"])),
            Some(false)
        );
        assert_eq!(
            sync_missing(&primary("ANY 1 (s1, s2)", &["s1"])),
            Some(true)
        );
        assert_eq!(sync_missing(&primary("", &[])), Some(false));
    }
}
