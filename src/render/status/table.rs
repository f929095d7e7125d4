//! The `status` table: one row per member in the order of the replication
//! tree (a cascaded standby right under the standby it streams from), then
//! the verdict, the problems and the warnings.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{Report, Verdict};
use crate::model::cluster::{ClusterView, MemberView, TreeNode};
use crate::model::role::Role;
use crate::render::escape;

const HEADERS: [&str; 11] = [
    "CLUSTER", "MEMBER", "ROLE", "TL", "UPSTREAM", "STATE", "SYNC", "LAG", "DELAY", "SLOTS",
    "ISSUES",
];

/// A cell: its text and the terminal color code it is painted in (empty
/// for none).
type Cell = (String, &'static str);

/// The table, one row per member, then problems and configuration issues.
pub fn render_table(report: &Report, color: bool) -> String {
    let paint = Paint { on: color };
    let mut rows: Vec<Vec<Cell>> = report
        .clusters
        .iter()
        .flat_map(|c| {
            tree_order(c)
                .into_iter()
                .map(move |(m, depth)| row(report, c, m, depth))
        })
        .collect();
    // What servers said (host names, slot names, error texts over several
    // lines) is shown, never obeyed by the terminal.
    for row in &mut rows {
        for (text, _) in row.iter_mut() {
            if let Cow::Owned(escaped) = escape::control(text) {
                *text = escaped;
            }
        }
    }
    let mut out = grid(&rows, &paint);
    footer(&mut out, report, &paint);
    out
}

/// One member's row.
fn row(report: &Report, c: &ClusterView, m: &MemberView, depth: usize) -> Vec<Cell> {
    let state = state(m);
    let state_color = match (m.role, state.as_str()) {
        (Role::Down, _) => "31",
        (Role::Standby, "streaming") | (Role::Primary, _) => "32",
        _ => "33",
    };
    let issues = issues(report, m);
    vec![
        (c.name.clone(), ""),
        (format!("{}{}", "  ".repeat(depth), m.target), "1"),
        (
            m.role.to_string(),
            if m.role == Role::Primary { "1;36" } else { "" },
        ),
        (m.timeline.map(|t| t.to_string()).unwrap_or_default(), ""),
        (upstream(m), ""),
        (state, state_color),
        (
            m.sync_state
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            "",
        ),
        (m.lag_bytes.map(human_bytes).unwrap_or_default(), ""),
        (
            m.replay_delay_seconds
                .map(|d| format!("{d:.1}s"))
                .unwrap_or_default(),
            "",
        ),
        (slots(m), ""),
        (issues.join("; "), if issues.is_empty() { "" } else { "33" }),
    ]
}

/// The STATE column: a primary's standbys and synchronous state, a
/// standby's WAL receiver (and whether it is delayed on purpose).
fn state(m: &MemberView) -> String {
    match m.role {
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
                .as_ref()
                .map_or_else(|| "unknown (no privilege)".into(), ToString::to_string);
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
    }
}

/// The UPSTREAM column: the chain from the primary, else the member or
/// address it would stream from.
fn upstream(m: &MemberView) -> String {
    if !m.chain.is_empty() {
        return m.chain.join(" > ");
    }
    match (&m.upstream_target, &m.upstream) {
        (Some(t), _) => format!("{t} (not streaming)"),
        (None, Some(address)) => address.clone(),
        (None, None) => String::new(),
    }
}

/// The SLOTS column.
fn slots(m: &MemberView) -> String {
    m.slots
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
        .join(", ")
}

/// The ISSUES column: why it is down, then what the member shows, then the
/// configuration lint's findings.
fn issues(report: &Report, m: &MemberView) -> Vec<String> {
    let mut issues: Vec<String> = Vec::new();
    if let Some(e) = &m.error {
        issues.push(e.clone());
    }
    if m.timeline_mismatch {
        issues.push("timeline mismatch".into());
    }
    if m.replay_paused == Some(true) {
        issues.push("replay paused".into());
    }
    issues.extend(
        report
            .config_issues
            .iter()
            .filter(|(t, _)| t == &m.target)
            .map(|(_, c)| c.to_string()),
    );
    issues
}

/// The header and the rows, each column as wide as its widest cell.
fn grid(rows: &[Vec<Cell>], paint: &Paint) -> String {
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.len()).collect();
    for row in rows {
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
        HEADERS
            .iter()
            .zip(&widths)
            .map(|(h, w)| paint.color("1", &format!("{h:<w$}")))
            .collect(),
    );
    let _ = writeln!(out, "{rule}");
    for row in rows {
        line(
            &mut out,
            row.iter()
                .zip(&widths)
                .map(|((text, code), w)| paint.color(code, &format!("{text:<w$}")))
                .collect(),
        );
    }
    let _ = writeln!(out, "{rule}");
    out
}

/// The verdict, then every problem and warning, one per line.
fn footer(out: &mut String, report: &Report, paint: &Paint) {
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
    /// `text` in color `code` (none when empty, or when painting is off).
    fn color(&self, code: &str, text: &str) -> String {
        if self.on && !code.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The members in the order of the replication tree, each with its depth:
/// a cascaded standby right under the standby it streams from.
fn tree_order(c: &ClusterView) -> Vec<(&MemberView, usize)> {
    fn walk<'a>(
        node: &TreeNode,
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
