//! What `pg_replication_exporter status` says of a view: the topology as a
//! table, in the spirit of `patronictl list` and `repmgr cluster show`,
//! the problems and warnings found, and the exit code scripts act on.

mod table;

use std::io::IsTerminal;

use serde::Serialize;

use crate::model::cluster::{ClusterView, MemberView};
use crate::model::lint::{self, Check};
use crate::model::role::Role;
use crate::model::view::View;
use crate::sources::wal_receiver::WalReceiverStatus;
use table::human_bytes;
pub use table::render_table;

/// A commit waiting on a synchronous standby this long is a problem (a
/// healthy synchronous standby confirms in milliseconds).
const COMMIT_WAIT_PROBLEM_SECONDS: f64 = 5.0;

/// Exit codes: what a script needs to know.
pub const HEALTHY: u8 = 0;
pub const DEGRADED: u8 = 1;
pub const ERROR: u8 = 2;

/// The judgement of a report; its word heads the table's last lines and
/// its exit code is what scripts act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing to do: every member answered as expected, no warning.
    Healthy,
    /// Something needs a DBA: a problem now (a member down, a standby not
    /// streaming, split brain...) or a warning (a risk: a setting the lint
    /// flags, a slot nothing consumes). Exit code 1.
    Degraded,
    /// Nothing could be judged: no member answered. Exit code 2, as for a
    /// bad configuration or command line.
    Error,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Healthy => HEALTHY,
            Verdict::Degraded => DEGRADED,
            Verdict::Error => ERROR,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// `healthy`, `degraded` or `error`, as the exit code says.
    pub verdict: Verdict,
    /// Whether the verdict is `healthy`.
    pub healthy: bool,
    /// One line per problem found now, empty when healthy.
    pub problems: Vec<String>,
    /// One line per risk that needs a DBA: configuration issues that are
    /// not mere advice ([`Check::ADVICE`]), slots nothing consumes.
    pub warnings: Vec<String>,
    pub clusters: Vec<ClusterView>,
    /// Configuration issues per target (`pgrepl_config_issue` = 1).
    pub config_issues: Vec<(String, Check)>,
}

/// Judges the view of the collected snapshots, the same view `/metrics`
/// and the topology page are rendered from.
pub fn report(view: &View) -> Report {
    let clusters = view.clusters.clone();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for c in &clusters {
        let label = label(c);
        if !c.name.is_empty() {
            match c.primaries.len() {
                0 if c.members_up > 0 => problems.push(format!("{label}no reachable primary")),
                0 | 1 => {}
                n => problems.push(format!(
                    "{label}{n} primaries (split brain): {}",
                    c.primaries.join(", ")
                )),
            }
        }
        expected_standbys(&label, c, &mut problems, &mut warnings);
        for m in &c.members {
            member_problems(&label, m, &mut problems);
            member_warnings(&label, m, &mut warnings);
        }
    }
    let config_issues = config_issues(view, &mut warnings);
    let any_up = clusters.iter().any(|c| c.members_up > 0);
    let verdict = if !any_up {
        Verdict::Error
    } else if problems.is_empty() && warnings.is_empty() {
        Verdict::Healthy
    } else {
        Verdict::Degraded
    };
    Report {
        verdict,
        healthy: verdict == Verdict::Healthy,
        problems,
        warnings,
        clusters,
        config_issues,
    }
}

/// How a line names the cluster: `cluster NAME: `, or nothing for a
/// target without one.
fn label(c: &ClusterView) -> String {
    if c.name.is_empty() {
        String::new()
    } else {
        format!("cluster {}: ", c.name)
    }
}

/// Expected standbys that do not stream from the primary: a problem, but
/// only a warning when the monitoring role cannot see whether they do.
fn expected_standbys(
    label: &str,
    c: &ClusterView,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for e in &c.expected_standbys {
        match e.connected {
            Some(true) => continue,
            Some(false) => {}
            None => {
                warnings.push(format!(
                    "{label}cannot tell whether expected standby {} streams: the monitoring role may not read the replication state (GRANT pg_monitor; see pgrepl_privilege_missing)",
                    e.name
                ));
                continue;
            }
        }
        // A member that is down is reported once, as down: `status`
        // collects once, so it cannot know whether the member was a
        // standby or the primary that just failed over.
        let member = c.member(&e.name);
        if member.is_some_and(|m| !m.up) {
            continue;
        }
        // It streams, from an address no member's DSN names: the view
        // cannot tell from whom, and says so rather than "not streaming".
        if let Some(m) = member.filter(|m| {
            m.upstream_target.is_none()
                && m.wal_receiver_status == Some(WalReceiverStatus::Streaming)
        }) {
            problems.push(format!(
                "{label}expected standby {} streams from an upstream that is no member of the cluster ({}); give the member's DSN that host:port, or stream through a slot",
                e.name,
                m.upstream.as_deref().unwrap_or("address unknown")
            ));
            continue;
        }
        problems.push(format!(
            "{label}expected standby {} is not streaming from the primary (directly or through a cascade)",
            e.name
        ));
    }
}

/// The configuration lint's findings per target; those that are not mere
/// advice are warnings too.
fn config_issues(view: &View, warnings: &mut Vec<String>) -> Vec<(String, Check)> {
    let mut config_issues = Vec::new();
    for s in &view.targets {
        let cluster = view.cluster_of(s);
        let label = cluster.map(label).unwrap_or_default();
        for (check, found) in lint::evaluate(s, cluster) {
            if found {
                config_issues.push((s.name.clone(), check));
                if check.warns() {
                    warnings.push(format!(
                        "{label}{}: configuration issue {check} (docs/config-lint.md#{check})",
                        s.name
                    ));
                }
            }
        }
    }
    config_issues
}

fn member_problems(label: &str, m: &MemberView, out: &mut Vec<String>) {
    let t = &m.target;
    if !m.up {
        out.push(format!(
            "{label}{t} is down: {}",
            m.error.as_deref().unwrap_or("not collected")
        ));
        return;
    }
    if m.foreign {
        out.push(format!(
            "{label}{t} has another system_identifier than the primary"
        ));
    }
    if let (Some(required), Some(connected)) = (m.sync_required, m.sync_connected) {
        if (connected as u32) < required {
            out.push(format!(
                "{label}{t}: synchronous_standby_names asks for {required} synchronous standby(s), {connected} connected: commits that wait for them hang"
            ));
        }
    }
    if let Some(waiting) = m.commits_waiting.filter(|w| *w > 0.0) {
        let oldest = m.oldest_commit_wait_seconds.unwrap_or(0.0);
        if oldest >= COMMIT_WAIT_PROBLEM_SECONDS {
            out.push(format!(
                "{label}{t}: {waiting:.0} commit(s) waiting for a synchronous standby, the oldest for {oldest:.0}s"
            ));
        }
    }
    if m.role == Role::Standby {
        // A status the role may not read is not "not streaming": it is
        // warned about in member_warnings.
        if let Some(status) = m
            .wal_receiver_status
            .as_ref()
            .filter(|s| **s != WalReceiverStatus::Streaming)
        {
            out.push(format!(
                "{label}{t} is not streaming (WAL receiver {status})"
            ));
        }
        if m.replay_paused == Some(true) {
            out.push(format!("{label}{t} has replay paused"));
        }
        if m.timeline_mismatch {
            out.push(format!(
                "{label}{t} is on another timeline than the primary"
            ));
        }
    }
    for slot in &m.slots {
        if let Some(status) = slot.wal_status.as_ref().filter(|s| s.is_at_risk()) {
            out.push(format!("{label}{t}: slot {} is {status}", slot.slot_name));
        }
    }
}

/// Risks on a member that answers: slots nothing consumes hold WAL back
/// for as long as they stay (on a standby too: a slot left on a rewound
/// old primary). Copies a standby keeps in step for failover (`synced`)
/// are inactive by design and are not warned about.
fn member_warnings(label: &str, m: &MemberView, out: &mut Vec<String>) {
    let t = &m.target;
    if !m.privileges_missing.is_empty() {
        out.push(format!(
            "{label}{t}: the monitoring role lacks {}: what it hides is not judged (GRANT pg_monitor TO the role; PgReplMissingPrivileges)",
            m.privileges_missing.join(", ")
        ));
    }
    for slot in m.slots.iter().filter(|s| !s.active && !s.synced) {
        out.push(format!(
            "{label}{t}: slot {} is inactive and retains {} of WAL (PgReplSlotInactive)",
            slot.slot_name,
            slot.retained_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "an unknown amount".into())
        ));
    }
}

/// Whether to color: a terminal, and no `NO_COLOR` (no-color.org).
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The exit code for a report: 0 healthy, 1 degraded, 2 error.
pub fn exit_code(report: &Report) -> u8 {
    report.verdict.exit_code()
}
