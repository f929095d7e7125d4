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

use crate::model::cluster::MemberView;
use crate::model::role::Role;
use crate::model::snapshot::TargetSnapshot;
use crate::model::view::View;
use crate::sources::wal_receiver::{LagUnknown, WalReceiverStatus};

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
    /// Bytes behind the cluster's primary; when no primary is known, behind
    /// the upstream's position as the standby last heard it, and `None`
    /// (lag unknown) unless its WAL receiver streams and heard from the
    /// upstream recently.
    pub lag_bytes: Option<f64>,
    /// The view's replay delay; `None` when unknown.
    pub replay_delay_seconds: Option<f64>,
    pub wal_receiver_status: Option<WalReceiverStatus>,
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
    let (max_lag_bytes, max_delay_seconds) = match check {
        Check::Replica {
            max_lag_bytes,
            max_delay_seconds,
        } => (max_lag_bytes, max_delay_seconds),
        _ => (None, None),
    };
    // Measured against the cluster's primary when the view knows it; else
    // the standby alone must vouch for its link to the upstream, or the
    // lag is unknown: receive minus replay reads 0 on a standby that was
    // cut off however far its primary went on.
    let standby = sample.filter(|s| s.server.in_recovery);
    let lag = match member.and_then(|m| m.lag_bytes) {
        Some(l) => Ok(l),
        None => standby
            .map(|s| s.upstream_lag(max_delay_seconds))
            .unwrap_or(Err(LagUnknown::NotAStandby)),
    };
    let lag_bytes = lag.as_ref().ok().copied();
    let replay_delay_seconds = standby.and(member).and_then(|m| m.replay_delay_seconds);
    let reason = match check {
        Check::Health => (role == Role::Down).then(|| down_reason(snap)),
        Check::Primary => match role {
            Role::Primary => None,
            Role::Down => Some(down_reason(snap)),
            Role::Standby => Some("in recovery (standby)".to_string()),
        },
        Check::Replica { .. } => match role {
            Role::Down => Some(down_reason(snap)),
            Role::Primary => Some("not in recovery (primary)".to_string()),
            Role::Standby => match &lag {
                Err(why) if max_lag_bytes.is_some() || max_delay_seconds.is_some() => {
                    Some(format!("lag unknown: {why}"))
                }
                _ => replica_limits(
                    lag_bytes,
                    replay_delay_seconds,
                    max_lag_bytes,
                    max_delay_seconds,
                ),
            },
        },
    };
    Verdict {
        target: snap.name.clone(),
        ok: reason.is_none(),
        role,
        timeline: sample.and_then(crate::sources::Sample::timeline),
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
        // Unknown is not 0: nothing vouches that the standby is current
        // (see `wal_receiver::replay_delay` for when it is known).
        match delay {
            Some(d) if d <= max => {}
            Some(d) => return Some(format!("replay delay {d:.1}s exceeds {max}s")),
            None => return Some("replay delay unknown".to_string()),
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
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::model::snapshot::ReloadStatus;
    use crate::sources::Sample;

    /// `/replica?lag=16MB&max_delay=30s` on a lone standby (no cluster, so
    /// no primary position) with this WAL receiver row.
    fn lone_standby(receiver: serde_json::Value) -> Verdict {
        let sample: Sample = serde_json::from_value(json!({
            "server": {"in_recovery": true, "version": "17.0", "now": 1000.0,
                       "receive_lsn": "0/3000000", "replay_lsn": "0/3000000"},
            "wal_receiver": receiver,
            "settings": {"wal_receiver_timeout": ["60000", "ms"]}
        }))
        .expect("a sample");
        let mut snap = TargetSnapshot::initial("standby1", None);
        snap.sample = Some(Arc::new(sample));
        let view = View::build(
            vec![Arc::new(snap)],
            &Default::default(),
            ReloadStatus {
                successful: true,
                last_success: 0.0,
            },
        );
        let snap = pick(&view, None).expect("the only target");
        let check = Check::Replica {
            max_lag_bytes: Some(16.0 * 1024.0 * 1024.0),
            max_delay_seconds: Some(30.0),
        };
        judge(&view, &snap, check)
    }

    #[test]
    fn a_lone_standby_passes_only_while_it_hears_its_upstream() {
        let healthy = lone_standby(json!({"status": "streaming", "received_tli": 1,
            "last_msg_receipt_time": 995.0, "latest_end_lsn": "0/3000000"}));
        assert!(healthy.ok, "{healthy:?}");
        assert_eq!(
            (healthy.lag_bytes, healthy.replay_delay_seconds),
            (Some(0.0), Some(0.0))
        );
        // Cut off: receive minus replay is 0, but nothing says how far the
        // primary went.
        let cut = lone_standby(serde_json::Value::Null);
        assert!(!cut.ok);
        assert_eq!(cut.lag_bytes, None);
        assert_eq!(
            cut.reason.as_deref(),
            Some("lag unknown: no WAL receiver runs")
        );
        let silent = lone_standby(json!({"status": "streaming", "received_tli": 1,
            "last_msg_receipt_time": 900.0}));
        assert!(silent
            .reason
            .is_some_and(|r| r.starts_with("lag unknown: last message")));
    }

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
        assert_eq!(
            replica_limits(Some(0.0), None, None, Some(5.0)).as_deref(),
            Some("replay delay unknown")
        );
        assert_eq!(replica_limits(None, None, None, None), None);
    }
}
