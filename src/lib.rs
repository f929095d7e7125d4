//! pg_replication_exporter: a Prometheus exporter for PostgreSQL physical
//! streaming replication.
//!
//! # Layout
//!
//! - [`config`]: the configuration (file, `PGREPL_*` environment, flags) and
//!   its validation; [`dsn`] parses libpq connection strings and [`pgpass`]
//!   reads libpq's password file. [`file_read`] is where every file the
//!   operator names is read: regular files only, a size bound per kind, a
//!   deadline.
//! - [`collection`]: one task per target running collection cycles on the
//!   interval, under a deadline, over the sessions of [`pool`];
//!   [`error_chain`] words a client error with its causes on one line.
//! - [`collector`]: one module per PostgreSQL source. Each holds its SQL, the
//!   rows it reads and the metric families it renders: to find where a
//!   `pgrepl_*` family comes from, grep its name under `src/`.
//!   [`health`] renders the exporter's own families; [`family`] holds the
//!   descriptor type every family is declared with (name, type, help,
//!   labels, scope, PostgreSQL major), from which `docs/metrics.md` is
//!   generated.
//! - [`snapshot`]: the last completed collection of every target, with a
//!   version that changes whenever what readers see does.
//! - [`view`]: what every reader sees, derived one way from the snapshots
//!   (the watchdog applied, the cluster views computed once); [`exposition`]
//!   renders it for `/metrics` and caches view and renderings per version
//!   (`Published`), and the topology API, the routing checks and `status`
//!   read the same view.
//! - [`cluster`]: targets sharing a `cluster` judged together (cascades,
//!   split brain, missing standbys, lag from outside); [`lint`] flags risky
//!   settings. [`role`] is the one answer to "primary, standby or down?",
//!   and `collector::replication::Walsender::serves` the one answer to
//!   "which walsender serves this standby?", for all of them.
//! - [`http`]: `/metrics`, `/`, `/healthz`, `/-/reload`; it reads only the
//!   snapshot. [`negotiate`] picks the format and compression from
//!   `Accept` and `Accept-Encoding`; [`conn_limit`] caps connections
//!   globally and per client address; [`log_fold`] folds the warnings
//!   clients can make the HTTP and TLS libraries write.
//! - [`web_config`]: `--web.config.file` in the exporter-toolkit format;
//!   [`tls_server`] builds its TLS side (client certificates, versions,
//!   suites, curves, certificate reloading), [`basic_auth`] checks
//!   passwords with bounded CPU.
//! - [`routing`]: `/primary`, `/replica`, `/health` for HAProxy and probes;
//!   [`reload`] carries `POST /-/reload` to the supervisor.
//! - [`heartbeat_writer`]: the opt-in heartbeat writer (the reader is
//!   `collector::heartbeat`); [`sql`] quotes configuration values into SQL.
//! - [`status`]: the one-shot `status` command; [`escape`] makes what a
//!   server says safe for a terminal (the `status` table, the text log).
//! - [`exporter`]: wiring, the supervisor (reloads, the watchdog that
//!   restarts dead or hung collection tasks) and shutdown; `main.rs` is a
//!   thin binary. [`build_info`] is what `--version` prints; [`fault`]
//!   holds the test-only fault hooks (compiled out of release builds).
//!
//! `/metrics` never waits on a database: scrapes read the snapshot, and each
//! target's task is the only thing that talks to its server.
//!
//! Public are only the modules the binary, the render benchmark and the
//! integration tests use; the rest is private, so that the compiler reports
//! what nothing uses.

// The layout above is for whoever works on the crate, private modules
// included (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]
// Beyond the `[lints]` of Cargo.toml, which tests share: the shipped code
// never unwraps (errors are typed and carried, see the module docs) and
// writes to the terminal only where it means to (`status`, start-up errors).
#![warn(rust_2018_idioms, unused_qualifications)]
#![warn(
    clippy::cast_lossless,
    clippy::manual_let_else,
    clippy::redundant_closure_for_method_calls,
    clippy::semicolon_if_nothing_returned
)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::print_stdout,
        clippy::print_stderr
    )
)]

mod app;
mod build_info;
mod collect;
mod config;
mod family;
mod http;
mod model;
mod render;
mod sources;

pub use app::main;

/// What the integration tests and the render benchmark reach inside the
/// crate. Not an API: it follows whatever the tests need.
#[doc(hidden)]
pub mod testing {
    /// The family descriptors `docs/metrics.md` is generated from.
    pub mod family {
        pub use crate::family::{Family, Kind, Label, Scope, Section, Values};
    }

    /// The collection statement and what it returns.
    pub mod sources {
        pub use crate::sources::{
            build_query, capabilities_sql, parse, parse_capabilities, Capabilities, Sample,
        };

        pub mod heartbeat {
            pub use crate::sources::heartbeat::{verdict_sql, Owners};
        }
    }

    pub use crate::model::snapshot::{ReloadStatus, TargetSnapshot};
    pub use crate::model::view::View;
    pub use crate::render::exposition::{families, render, render_view, sections, Format};

    /// What `status` prints of a view.
    pub mod status {
        pub use crate::render::status::{exit_code, render_table, report};
    }
}
