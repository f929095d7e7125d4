//! The exporter's own health, per target: whether the last collection
//! worked, how long it took, how often it failed.
//!
//! Families: `pgrepl_up`, `pgrepl_collect_duration_seconds`,
//! `pgrepl_collect_errors_total`, `pgrepl_last_collect_success_timestamp_seconds`,
//! `pgrepl_exporter_build_info`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;

use crate::exposition::{counter_family, gauge_family};
use crate::snapshot::TargetSnapshot;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    gauge_family(
        enc,
        "pgrepl_up",
        "1 when the last collection from the target succeeded, else 0.",
        snaps
            .iter()
            .map(|s| ([("target", s.name.as_str())], f64::from(u8::from(s.up)))),
    )?;
    gauge_family(
        enc,
        "pgrepl_collect_duration_seconds",
        "How long the last collection from the target took.",
        snaps
            .iter()
            .map(|s| ([("target", s.name.as_str())], s.collect_duration)),
    )?;
    counter_family(
        enc,
        "pgrepl_collect_errors",
        "Failed collections from the target since the exporter started.",
        snaps
            .iter()
            .map(|s| ([("target", s.name.as_str())], s.errors_total as f64)),
    )?;
    gauge_family(
        enc,
        "pgrepl_last_collect_success_timestamp_seconds",
        "Unix time of the last successful collection from the target.",
        snaps
            .iter()
            .filter_map(|s| Some(([("target", s.name.as_str())], s.last_success?))),
    )?;
    gauge_family(
        enc,
        "pgrepl_exporter_build_info",
        "Version of pg_replication_exporter (value 1).",
        std::iter::once(([("version", VERSION)], 1.0)),
    )
}
