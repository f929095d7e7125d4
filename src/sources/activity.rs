//! Backends waiting, from `pg_stat_activity`: commits held on a primary
//! until a synchronous standby confirms (`wait_event = 'SyncRep'`), and a
//! standby's startup process holding WAL back for `recovery_min_apply_delay`
//! (`RecoveryApplyDelay`): the difference between writes that hang now and
//! a standby that is delayed on purpose.
//!
//! Other sessions' wait events are visible only with `pg_read_all_stats`
//! (part of `pg_monitor`); without it the fragment is left out and the
//! families are absent, rather than a reassuring 0 that nobody checked.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::{Capabilities, Up};
use crate::family::{emit, flag, Family, Scope, TARGET};

#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    /// Backends waiting for synchronous replication to confirm their commit.
    pub sync_waiting: f64,
    /// Seconds since the oldest of them started its statement; `None` when
    /// none waits.
    pub sync_oldest_wait: Option<f64>,
    /// The startup process waits on `recovery_min_apply_delay`.
    pub apply_delay_waiting: bool,
}

/// `None` without `pg_read_all_stats`: the wait events would read NULL.
pub fn sql(caps: &Capabilities) -> Option<String> {
    caps.read_all_stats.then(|| {
        "SELECT json_build_object(\
           'sync_waiting', count(*) FILTER (WHERE wait_event = 'SyncRep'), \
           'sync_oldest_wait', EXTRACT(EPOCH FROM now() - min(query_start) \
              FILTER (WHERE wait_event = 'SyncRep'))::float8, \
           'apply_delay_waiting', coalesce(bool_or(backend_type = 'startup' \
              AND wait_event = 'RecoveryApplyDelay'), false)) \
         FROM pg_stat_activity"
            .to_string()
    })
}

const VISIBLE: (&str, &str) = (
    "when the role may read other sessions' wait events (pg_monitor or pg_read_all_stats)",
    "cuando el rol puede leer los eventos de espera de otras sesiones (pg_monitor o pg_read_all_stats)",
);

pub const SYNC_COMMITS_WAITING: Family = Family::gauge(
    "pgrepl_sync_commits_waiting",
    "Backends on the primary waiting for a synchronous standby to confirm their commit (wait_event SyncRep); above 0 for long, writes hang.",
    "Backends del principal esperando que una réplica síncrona confirme su commit (wait_event SyncRep); por encima de 0 mucho tiempo, las escrituras se cuelgan.",
    &[TARGET],
    Scope::Primary,
)
.when(VISIBLE.0, VISIBLE.1);

pub const SYNC_COMMIT_OLDEST_WAIT_SECONDS: Family = Family::gauge(
    "pgrepl_sync_commit_oldest_wait_seconds",
    "Seconds since the oldest statement waiting for synchronous replication started; 0 when none waits.",
    "Segundos desde que empezó la sentencia más antigua que espera la replicación síncrona; 0 cuando no espera ninguna.",
    &[TARGET],
    Scope::Primary,
)
.when(VISIBLE.0, VISIBLE.1);

pub const REPLAY_APPLY_DELAY_WAITING: Family = Family::gauge(
    "pgrepl_replay_apply_delay_waiting",
    "1 while the standby's startup process waits on recovery_min_apply_delay (wait_event RecoveryApplyDelay): delayed on purpose, not stuck.",
    "1 mientras el proceso startup de la réplica espera por recovery_min_apply_delay (wait_event RecoveryApplyDelay): diferida a propósito, no trabada.",
    &[TARGET],
    Scope::Standby,
)
.when(VISIBLE.0, VISIBLE.1);

pub const FAMILIES: &[Family] = &[
    SYNC_COMMITS_WAITING,
    SYNC_COMMIT_OLDEST_WAIT_SECONDS,
    REPLAY_APPLY_DELAY_WAITING,
];

pub fn encode(up: &[Up<'_>], enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows = |standby: bool| {
        up.iter()
            .copied()
            .filter(move |(_, s)| s.server.in_recovery == standby)
            .filter_map(|(t, s)| Some((t, s.activity.as_ref()?)))
    };
    emit(
        enc,
        &SYNC_COMMITS_WAITING,
        rows(false).map(|(t, a)| ([("target", t)], a.sync_waiting)),
    )?;
    emit(
        enc,
        &SYNC_COMMIT_OLDEST_WAIT_SECONDS,
        rows(false).map(|(t, a)| ([("target", t)], a.sync_oldest_wait.unwrap_or(0.0).max(0.0))),
    )?;
    emit(
        enc,
        &REPLAY_APPLY_DELAY_WAITING,
        rows(true).map(|(t, a)| ([("target", t)], flag(a.apply_delay_waiting))),
    )
}
