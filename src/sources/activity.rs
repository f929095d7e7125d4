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

use super::{Capabilities, Extra, Scrape, Source};
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
fn sql(caps: &Capabilities) -> Option<String> {
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

impl Activity {
    /// Seconds the oldest commit has waited for a synchronous standby; 0
    /// when none waits.
    pub fn oldest_commit_wait(&self) -> f64 {
        self.sync_oldest_wait.unwrap_or(0.0).max(0.0)
    }
}

impl Source for Activity {
    type Rows = Option<Activity>;
    const TITLE: [&'static str; 2] = [
        "Waiting backends (`pg_stat_activity`)",
        "Backends en espera (`pg_stat_activity`)",
    ];
    const FAMILIES: &'static [Family] = FAMILIES;

    fn sql(caps: &Capabilities, _: Extra<'_>) -> Option<String> {
        sql(caps)
    }

    fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        render(scrape, enc)
    }
}

fn render(scrape: &Scrape<'_>, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let rows = |standby: bool| {
        scrape
            .servers()
            .filter(move |u| u.sample.server.in_recovery == standby)
            .filter_map(|u| Some((u.target, u.sample.activity.as_ref()?)))
    };
    emit(
        enc,
        &SYNC_COMMITS_WAITING,
        rows(false).map(|(t, a)| ([("target", t)], a.sync_waiting)),
    )?;
    emit(
        enc,
        &SYNC_COMMIT_OLDEST_WAIT_SECONDS,
        rows(false).map(|(t, a)| ([("target", t)], a.oldest_commit_wait())),
    )?;
    emit(
        enc,
        &REPLAY_APPLY_DELAY_WAITING,
        rows(true).map(|(t, a)| ([("target", t)], flag(a.apply_delay_waiting))),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Activity;
    use crate::sources::testing::{render, sample};

    /// The `cascade` capture: a commit waiting on the primary for a quorum
    /// that cannot be met, and standby2 delayed on purpose.
    #[test]
    fn waits_render_on_the_role_they_belong_to() {
        let primary = sample(json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 0.0},
            "activity": {"apply_delay_waiting": false, "sync_oldest_wait": 3.025604, "sync_waiting": 1}
        }));
        let standby = sample(json!({
            "server": {"in_recovery": true, "version": "15.18", "now": 0.0},
            "activity": {"apply_delay_waiting": true, "sync_oldest_wait": null, "sync_waiting": 0}
        }));
        let idle = sample(json!({
            "server": {"in_recovery": false, "version": "15.18", "now": 0.0},
            "activity": {"apply_delay_waiting": false, "sync_oldest_wait": null, "sync_waiting": 0}
        }));
        let text = render::<Activity>(&[("p", &primary), ("s2", &standby), ("q", &idle)]);
        for line in [
            r#"pgrepl_sync_commits_waiting{target="p"} 1.0"#,
            r#"pgrepl_sync_commit_oldest_wait_seconds{target="p"} 3.025604"#,
            r#"pgrepl_sync_commit_oldest_wait_seconds{target="q"} 0.0"#,
            r#"pgrepl_replay_apply_delay_waiting{target="s2"} 1.0"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
        }
        assert!(!text.contains(r#"pgrepl_sync_commits_waiting{target="s2"}"#));
        assert!(!text.contains(r#"pgrepl_replay_apply_delay_waiting{target="p"}"#));
    }
}
