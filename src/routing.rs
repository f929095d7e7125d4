//! Health checks for routers and orchestrators, the way Patroni's REST API
//! serves HAProxy and Kubernetes probes: `/primary`, `/replica`, `/health`,
//! each answering 200 or 503 from the snapshot, never from the database.
//!
//! `?target=NAME` picks the server (optional with a single target);
//! `/replica?lag=16MB&max_delay=30s` also requires the replica to be within
//! that many bytes of its primary and that replay delay.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::cluster::MemberView;
use crate::collector::wal_receiver;
use crate::role::Role;
use crate::snapshot::TargetSnapshot;
use crate::view::View;

/// What the caller asks about the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Collected successfully.
    Health,
    /// Up and not in recovery: may take writes.
    Primary,
    /// Up, in recovery, and within the given limits.
    Replica {
        max_lag_bytes: Option<f64>,
        max_delay_seconds: Option<f64>,
    },
}

/// The JSON body of every answer.
#[derive(Debug, Serialize)]
pub struct Verdict {
    pub target: String,
    pub ok: bool,
    pub role: Role,
    pub timeline: Option<u32>,
    /// Bytes behind the cluster's primary (or received but not replayed,
    /// when no primary is known).
    pub lag_bytes: Option<f64>,
    pub replay_delay_seconds: Option<f64>,
    pub wal_receiver_status: Option<String>,
    /// Why the check failed; absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A request the endpoint cannot answer (bad parameter, unknown target).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
}

/// Reads `lag` and `max_delay` for `/replica`.
pub fn replica_check(params: &HashMap<String, String>) -> Result<Check, RequestError> {
    let max_lag_bytes = params
        .get("lag")
        .map(|v| {
            parse_size(v).ok_or_else(|| {
                RequestError::BadRequest(format!("lag={v:?}: expected a size like 16MB"))
            })
        })
        .transpose()?;
    let max_delay_seconds = params
        .get("max_delay")
        .map(|v| {
            parse_seconds(v).ok_or_else(|| {
                RequestError::BadRequest(format!("max_delay={v:?}: expected a duration like 30s"))
            })
        })
        .transpose()?;
    Ok(Check::Replica {
        max_lag_bytes,
        max_delay_seconds,
    })
}

/// `16MB`, `1GB`, `512kB`, `1048576`: PostgreSQL's units, powers of 1024.
pub fn parse_size(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let number: f64 = t[..split].parse().ok()?;
    let factor = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0_f64.powi(4),
        _ => return None,
    };
    (number >= 0.0).then_some(number * factor)
}

/// `30s`, `2m`, `500ms`, or plain seconds.
pub fn parse_seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        return (v >= 0.0).then_some(v);
    }
    humantime::parse_duration(t)
        .ok()
        .map(|d: Duration| d.as_secs_f64())
}

/// Picks the target: the named one, or the only one.
pub fn pick(
    view: &View,
    name: Option<&str>,
) -> Result<std::sync::Arc<TargetSnapshot>, RequestError> {
    match name {
        Some(n) => view
            .target(n)
            .cloned()
            .ok_or_else(|| RequestError::UnknownTarget(n.to_string())),
        None => match view.targets.as_slice() {
            [only] => Ok(only.clone()),
            all => Err(RequestError::BadRequest(format!(
                "{} targets are configured: say which with ?target=NAME",
                all.len()
            ))),
        },
    }
}

/// Judges one target of the view against a check.
pub fn judge(view: &View, snap: &TargetSnapshot, check: Check) -> Verdict {
    let member: Option<&MemberView> = view.member(&snap.name);
    let sample = snap.sample.as_deref();
    let role = Role::of(snap);
    let lag_bytes = member.and_then(|m| m.lag_bytes).or_else(|| {
        sample
            .filter(|s| s.server.in_recovery)
            .and_then(wal_receiver::replay_backlog)
    });
    let replay_delay_seconds = sample
        .filter(|s| s.server.in_recovery)
        .and_then(wal_receiver::replay_delay);
    let reason = match check {
        Check::Health => (role == Role::Down).then(|| down_reason(snap)),
        Check::Primary => match role {
            Role::Primary => None,
            Role::Down => Some(down_reason(snap)),
            Role::Standby => Some("in recovery (standby)".to_string()),
        },
        Check::Replica {
            max_lag_bytes,
            max_delay_seconds,
        } => match role {
            Role::Down => Some(down_reason(snap)),
            Role::Primary => Some("not in recovery (primary)".to_string()),
            Role::Standby => replica_limits(
                lag_bytes,
                replay_delay_seconds,
                max_lag_bytes,
                max_delay_seconds,
            ),
        },
    };
    Verdict {
        target: snap.name.clone(),
        ok: reason.is_none(),
        role,
        timeline: sample.and_then(|s| s.timeline()),
        lag_bytes,
        replay_delay_seconds,
        wal_receiver_status: member.and_then(|m| m.wal_receiver_status.clone()),
        reason,
    }
}

fn replica_limits(
    lag: Option<f64>,
    delay: Option<f64>,
    max_lag: Option<f64>,
    max_delay: Option<f64>,
) -> Option<String> {
    if let Some(max) = max_lag {
        match lag {
            Some(l) if l <= max => {}
            Some(l) => return Some(format!("lag {l} bytes exceeds {max}")),
            None => return Some("lag unknown".to_string()),
        }
    }
    if let Some(max) = max_delay {
        // A NULL replay timestamp (nothing replayed yet) with nothing to
        // replay is no delay.
        let d = delay.unwrap_or(0.0);
        if d > max {
            return Some(format!("replay delay {d:.1}s exceeds {max}s"));
        }
    }
    None
}

fn down_reason(snap: &TargetSnapshot) -> String {
    match &snap.last_error {
        Some(e) => format!("not collected: {e}"),
        None => "not collected yet".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("16MB"), Some(16.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("1gb"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_size("100"), Some(100.0));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_seconds("30s"), Some(30.0));
        assert_eq!(parse_seconds("2m"), Some(120.0));
        assert_eq!(parse_seconds("1.5"), Some(1.5));
        assert_eq!(parse_seconds("soon"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(
            replica_limits(Some(10.0), Some(1.0), Some(100.0), Some(5.0)),
            None
        );
        assert!(replica_limits(Some(1000.0), None, Some(100.0), None).is_some());
        assert!(replica_limits(Some(0.0), Some(50.0), None, Some(5.0)).is_some());
        assert_eq!(replica_limits(None, None, None, Some(5.0)), None);
    }
}
