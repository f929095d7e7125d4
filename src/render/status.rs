//! What `pg_replication_exporter status` says of a view: the topology as a
//! table, in the spirit of `patronictl list` and `repmgr cluster show`,
//! the problems and warnings found, and the exit code scripts act on.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;

use serde::Serialize;

use crate::model::cluster::{ClusterView, MemberView};
use crate::model::lint::{self, Check};
use crate::model::role::Role;
use crate::model::view::View;
use crate::render::escape;

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
    let snaps = &view.targets;
    let clusters = view.clusters.clone();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for c in &clusters {
        let label = if c.name.is_empty() {
            String::new()
        } else {
            format!("cluster {}: ", c.name)
        };
        if !c.name.is_empty() {
            match c.primaries.len() {
                0 if c.members_up > 0 => problems.push(format!("{label}no reachable primary")),
                0 => {}
                1 => {}
                n => problems.push(format!(
                    "{label}{n} primaries (split brain): {}",
                    c.primaries.join(", ")
                )),
            }
        }
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
                m.upstream_target.is_none() && m.wal_receiver_status.as_deref() == Some("streaming")
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
        for m in &c.members {
            member_problems(&label, m, &mut problems);
            member_warnings(&label, m, &mut warnings);
        }
    }
    let mut config_issues = Vec::new();
    for s in snaps {
        let cluster = clusters
            .iter()
            .find(|c| !c.name.is_empty() && Some(&c.name) == s.cluster.as_ref());
        let label = cluster
            .map(|c| format!("cluster {}: ", c.name))
            .unwrap_or_default();
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
            .as_deref()
            .filter(|s| *s != "streaming")
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
        if matches!(slot.wal_status.as_deref(), Some("lost" | "unreserved")) {
            out.push(format!(
                "{label}{t}: slot {} is {}",
                slot.slot_name,
                slot.wal_status.as_deref().unwrap_or("")
            ));
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

/// Bytes in the units `pg_size_pretty` uses.
pub fn human_bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = v;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

struct Paint {
    on: bool,
}

impl Paint {
    fn color(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The table, one row per member, then problems and configuration issues.
pub fn render_table(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let headers = [
        "CLUSTER", "MEMBER", "ROLE", "TL", "UPSTREAM", "STATE", "SYNC", "LAG", "DELAY", "SLOTS",
        "ISSUES",
    ];
    let mut rows: Vec<Vec<(String, &str)>> = Vec::new();
    for c in &report.clusters {
        for (m, depth) in tree_order(c) {
            let state = match m.role {
                Role::Down => "down".to_string(),
                Role::Primary => {
                    let n = m.standbys.len();
                    let mut s = format!("{n} standby{}", if n == 1 { "" } else { "s" });
                    match (m.sync_required, m.sync_connected) {
                        (Some(r), Some(c)) if r > 0 => {
                            let _ = write!(s, ", sync {c}/{r}");
                        }
                        _ if n > 0 => s.push_str(", async"),
                        _ => {}
                    }
                    if let Some(w) = m.commits_waiting.filter(|w| *w > 0.0) {
                        let _ = write!(s, ", {w:.0} commit(s) waiting");
                    }
                    s
                }
                Role::Standby => {
                    let mut s = m
                        .wal_receiver_status
                        .clone()
                        .unwrap_or_else(|| "unknown (no privilege)".into());
                    if m.apply_delay_waiting == Some(true) {
                        let _ = write!(
                            s,
                            " (delayed {})",
                            m.apply_delay_seconds
                                .map(|d| format!("{d:.0}s"))
                                .unwrap_or_default()
                        );
                    }
                    s
                }
            };
            let state_color = match (m.role, state.as_str()) {
                (Role::Down, _) => "31",
                (Role::Standby, "streaming") | (Role::Primary, _) => "32",
                _ => "33",
            };
            let slots = m
                .slots
                .iter()
                .map(|s| {
                    format!(
                        "{}{} {}",
                        s.slot_name,
                        if s.active { "" } else { " (inactive)" },
                        s.retained_bytes.map(human_bytes).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut issues: Vec<String> = report
                .config_issues
                .iter()
                .filter(|(t, _)| t == &m.target)
                .map(|(_, c)| c.to_string())
                .collect();
            if m.replay_paused == Some(true) {
                issues.insert(0, "replay paused".into());
            }
            if m.timeline_mismatch {
                issues.insert(0, "timeline mismatch".into());
            }
            if let Some(e) = &m.error {
                issues.insert(0, e.clone());
            }
            let upstream = if !m.chain.is_empty() {
                m.chain.join(" > ")
            } else {
                match (&m.upstream_target, &m.upstream) {
                    (Some(t), _) => format!("{t} (not streaming)"),
                    (None, Some(address)) => address.clone(),
                    (None, None) => String::new(),
                }
            };
            rows.push(vec![
                (c.name.clone(), ""),
                (format!("{}{}", "  ".repeat(depth), m.target), "1"),
                (
                    m.role.to_string(),
                    if m.role == Role::Primary { "1;36" } else { "" },
                ),
                (m.timeline.map(|t| t.to_string()).unwrap_or_default(), ""),
                (upstream, ""),
                (state, state_color),
                (m.sync_state.clone().unwrap_or_default(), ""),
                (m.lag_bytes.map(human_bytes).unwrap_or_default(), ""),
                (
                    m.replay_delay_seconds
                        .map(|d| format!("{d:.1}s"))
                        .unwrap_or_default(),
                    "",
                ),
                (slots, ""),
                (issues.join("; "), if issues.is_empty() { "" } else { "33" }),
            ]);
        }
    }
    // What servers said (host names, slot names, error texts over several
    // lines) is shown, never obeyed by the terminal.
    for row in &mut rows {
        for (text, _) in row.iter_mut() {
            if let Cow::Owned(escaped) = escape::control(text) {
                *text = escaped;
            }
        }
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, (text, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(text.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<String>| {
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    };
    let rule: String = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let _ = writeln!(out, "{rule}");
    line(
        &mut out,
        headers
            .iter()
            .zip(&widths)
            .map(|(h, w)| paint.color("1", &format!("{h:<w$}")))
            .collect(),
    );
    let _ = writeln!(out, "{rule}");
    for row in &rows {
        line(
            &mut out,
            row.iter()
                .zip(&widths)
                .map(|((text, code), w)| {
                    let padded = format!("{text:<w$}");
                    if code.is_empty() {
                        padded
                    } else {
                        paint.color(code, &padded)
                    }
                })
                .collect(),
        );
    }
    let _ = writeln!(out, "{rule}");
    let counted = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match report.verdict {
        Verdict::Healthy => {
            let _ = writeln!(out, "{}", paint.color("32", "healthy"));
        }
        Verdict::Degraded => {
            let _ = writeln!(
                out,
                "{} {}, {}",
                paint.color("33", "degraded:"),
                counted(report.problems.len(), "problem"),
                counted(report.warnings.len(), "warning")
            );
        }
        Verdict::Error => {
            let _ = writeln!(out, "{} no member answered", paint.color("31", "error:"));
        }
    }
    for p in &report.problems {
        let _ = writeln!(out, "  - {}", escape::control(p));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "  - warning: {}", escape::control(w));
    }
    out
}

/// The members in the order of the replication tree, each with its depth:
/// a cascaded standby right under the standby it streams from.
fn tree_order(c: &ClusterView) -> Vec<(&MemberView, usize)> {
    fn walk<'a>(
        node: &crate::model::cluster::TreeNode,
        depth: usize,
        c: &'a ClusterView,
        out: &mut Vec<(&'a MemberView, usize)>,
    ) {
        if let Some(m) = c.member(&node.target) {
            if out.iter().any(|(seen, _)| seen.target == m.target) {
                return;
            }
            out.push((m, depth));
        }
        for child in &node.children {
            walk(child, depth + 1, c, out);
        }
    }
    let mut out = Vec::with_capacity(c.members.len());
    for root in &c.tree {
        walk(root, 0, c, &mut out);
    }
    // Anything the tree missed (it should not) still gets a row.
    for m in &c.members {
        if !out.iter().any(|(seen, _)| seen.target == m.target) {
            out.push((m, 0));
        }
    }
    out
}

/// Whether to color: a terminal, and no `NO_COLOR` (no-color.org).
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The exit code for a report: 0 healthy, 1 degraded, 2 error.
pub fn exit_code(report: &Report) -> u8 {
    report.verdict.exit_code()
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(1536.0), "1.5 kB");
        assert_eq!(human_bytes(16.0 * 1024.0 * 1024.0), "16.0 MB");
    }
}
