//! What this binary is, stamped by `build.rs`: the version, the git revision
//! and branch, the build date and the compiler, for `--version` and
//! `pgrepl_exporter_build_info`, so that a fleet's versions can be told apart
//! from Prometheus.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("STAMP_PGREPL_REVISION");
pub const BRANCH: &str = env!("STAMP_PGREPL_BRANCH");
pub const RUSTC_VERSION: &str = env!("STAMP_PGREPL_RUSTC");

/// `--version`, in the layout of the Prometheus exporters:
///
/// ```text
/// pg_replication_exporter, version 0.1.0 (branch: main, revision: 1a2b3c...)
///   build date:       20261128-20:55:51
///   rustc version:    1.95.0
///   platform:         linux/x86_64
/// ```
pub const LONG_VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    " (branch: ",
    env!("STAMP_PGREPL_BRANCH"),
    ", revision: ",
    env!("STAMP_PGREPL_REVISION"),
    ")\n  build date:       ",
    env!("STAMP_PGREPL_DATE"),
    "\n  rustc version:    ",
    env!("STAMP_PGREPL_RUSTC"),
    "\n  platform:         ",
    env!("STAMP_PGREPL_PLATFORM"),
);
