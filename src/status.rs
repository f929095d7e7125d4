//! `pg_replication_exporter status`: collect once from every target and
//! print the topology, in the spirit of `patronictl list` and
//! `repmgr cluster show`, with an exit code scripts can act on.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;

use serde::Serialize;

use crate::cluster::{ClusterView, MemberView};
use crate::collection::TargetCollector;
use crate::config::Config;
use crate::lint;
use crate::pool;
use crate::role::Role;
use crate::snapshot::{Store, TargetSnapshot};
use crate::view::View;

/// A commit waiting on a synchronous standby this long is a problem (a
/// healthy synchronous standby confirms in milliseconds).
const COMMIT_WAIT_PROBLEM_SECONDS: f64 = 5.0;

/// Exit codes: what a script needs to know.
pub const HEALTHY: u8 = 0;
pub const DEGRADED: u8 = 1;
pub const ERROR: u8 = 2;

#[derive(Debug, Serialize)]
pub struct Report {
    pub healthy: bool,
    /// One line per problem found, empty when healthy.
    pub problems: Vec<String>,
    pub clusters: Vec<ClusterView>,
    /// Configuration issues per target (`pgrepl_config_issue` = 1).
    pub config_issues: Vec<(String, &'static str)>,
}

/// Collects every target once, concurrently, under the usual deadline.
pub async fn collect(config: &Config) -> Result<Vec<Arc<TargetSnapshot>>, String> {
    let store = Arc::new(Store::new(
        config
            .targets
            .iter()
            .map(|t| {
                TargetSnapshot::initial(&t.name, t.cluster.as_deref())
                    .with_endpoint(t.dsn.endpoint())
            })
            .collect(),
        config.clusters.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (target, cell) in config.targets.iter().zip(store.cells()) {
        let pool = pool::build(target, config.collect_timeout)
            .map_err(|e| format!("target {:?}: {e}", target.name))?;
        let mut collector = TargetCollector::new(cell, target.clone(), pool, store.clone(), config);
        tasks.spawn(async move {
            collector.cycle().await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(store.all())
}

/// Judges the view of the collected snapshots, the same view `/metrics`
/// and the topology page are rendered from.
pub fn report(view: &View) -> Report {
    let snaps = &view.targets;
    let clusters = view.clusters.clone();
    let mut problems = Vec::new();
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
        for e in c.expected_standbys.iter().filter(|e| !e.connected) {
            problems.push(format!(
                "{label}expected standby {} is not streaming from the primary (directly or through a cascade)",
                e.name
            ));
        }
        for m in &c.members {
            member_problems(&label, m, &mut problems);
        }
    }
    let mut config_issues = Vec::new();
    for s in snaps {
        let cluster = clusters
            .iter()
            .find(|c| !c.name.is_empty() && Some(&c.name) == s.cluster.as_ref());
        for (check, found) in lint::evaluate(s, cluster) {
            if found {
                config_issues.push((s.name.clone(), check));
            }
        }
    }
    Report {
        healthy: problems.is_empty(),
        problems,
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
        if m.wal_receiver_status.as_deref() != Some("streaming") {
            out.push(format!(
                "{label}{t} is not streaming (WAL receiver {})",
                m.wal_receiver_status.as_deref().unwrap_or("unknown")
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
                    let mut s = format!("{} standbys", m.standbys.len());
                    if let (Some(r), Some(n)) = (m.sync_required, m.sync_connected) {
                        if r > 0 {
                            let _ = write!(s, ", sync {n}/{r}");
                        }
                    }
                    if let Some(w) = m.commits_waiting.filter(|w| *w > 0.0) {
                        let _ = write!(s, ", {w:.0} commit(s) waiting");
                    }
                    s
                }
                Role::Standby => {
                    let mut s = m.wal_receiver_status.clone().unwrap_or_default();
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
    if report.problems.is_empty() {
        let _ = writeln!(out, "{}", paint.color("32", "healthy"));
    } else {
        let _ = writeln!(out, "{}", paint.color("31", "degraded:"));
        for p in &report.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    out
}

/// The members in the order of the replication tree, each with its depth:
/// a cascaded standby right under the standby it streams from.
fn tree_order(c: &ClusterView) -> Vec<(&MemberView, usize)> {
    fn walk<'a>(
        node: &crate::cluster::TreeNode,
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

/// The exit code for a report.
pub fn exit_code(report: &Report) -> u8 {
    let any_up = report.clusters.iter().any(|c| c.members_up > 0);
    if !any_up {
        ERROR
    } else if report.healthy {
        HEALTHY
    } else {
        DEGRADED
    }
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
