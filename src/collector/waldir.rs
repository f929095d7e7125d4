//! Size of `pg_wal`: `pg_ls_waldir()` (superuser or `pg_monitor`).
//!
//! Families: `pgrepl_wal_directory_bytes`, `pgrepl_wal_directory_files`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;

use super::Capabilities;
use crate::exposition::gauge_family;
use crate::snapshot::{up_samples, TargetSnapshot};

#[derive(Debug, Clone, Deserialize)]
pub struct WalDir {
    pub bytes: f64,
    pub files: f64,
}

/// `None` when the role may not list the directory: the family is then
/// absent (the collection loop warns once) instead of failing every cycle.
pub fn sql(caps: &Capabilities) -> Option<String> {
    caps.ls_waldir.then(|| {
        "SELECT json_build_object('bytes', coalesce(sum(size), 0), 'files', count(*)) \
         FROM pg_ls_waldir()"
            .to_string()
    })
}

pub fn encode(snaps: &[Arc<TargetSnapshot>], enc: &mut DescriptorEncoder) -> fmt::Result {
    let rows = || up_samples(snaps).filter_map(|(t, s)| Some((t, s.waldir.as_ref()?)));
    gauge_family(
        enc,
        "pgrepl_wal_directory_bytes",
        "Total size of the files in pg_wal.",
        rows().map(|(t, w)| ([("target", t)], w.bytes)),
    )?;
    gauge_family(
        enc,
        "pgrepl_wal_directory_files",
        "Number of files in pg_wal.",
        rows().map(|(t, w)| ([("target", t)], w.files)),
    )
}
