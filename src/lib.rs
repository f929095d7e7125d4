//! pg_replication_exporter: a Prometheus exporter for PostgreSQL physical
//! streaming replication.
//!
//! # Layout
//!
//! Data flows one way: rows → snapshot → view → outputs. Each folder is one
//! stage, and imports only the folders listed after it:
//!
//! - [`app`]: what the binary does, from the command line ([`app::cli`],
//!   [`app::logging`]) to the exit code: the supervisor that wires the rest
//!   ([`app::supervisor`]: reloads, the watchdog that restarts dead or hung
//!   collection tasks, shutdown) and the one-shot `status` command.
//! - [`http`]: the server and its routes (`/metrics`, `/probe`, `/`,
//!   `/api/v1/topology`, `/healthz`, `/-/reload`), the routing checks for
//!   HAProxy and probes ([`http::routing`]), content negotiation, the
//!   reload endpoint. [`http::security`] holds what stands between the
//!   server and its clients: `--web.config.file`, server TLS with
//!   certificate reloading, basic auth with bounded CPU, connection limits,
//!   and the folding of warnings clients make libraries write.
//! - [`render`]: the exposition ([`render::exposition`], with the
//!   renderings kept per view), the exporter's own families, the families
//!   of the cluster view and the lint, the `status` table and report.
//! - [`collect`]: the tasks that talk to PostgreSQL: one collection loop
//!   per target ([`collect::task`]: one statement per interval, under a
//!   deadline, over [`collect::pool`]) publishing each outcome as the
//!   target's snapshot, and the heartbeat writer.
//! - [`model`]: the snapshots ([`model::snapshot`]) and what is judged from
//!   them once for every reader: the view ([`model::view`], staleness
//!   applied) and its cache ([`model::published`]), roles ([`model::role`]),
//!   the cluster view ([`model::cluster`]: cascades, split brain, expected
//!   standbys, lag against the primary), the configuration lint.
//! - [`sources`]: one file per PostgreSQL source (its SQL, its typed rows,
//!   the families it renders, a unit test), and the list of them, from
//!   which the collection statement, the exposition order and the metric
//!   reference are built. What a row means (lags, retained WAL, the replay
//!   delay) is a method on the row or the sample, computed in one place.
//! - [`config`]: the configuration (file, `PGREPL_*` environment, flags)
//!   and its validation, libpq connection strings, the password file,
//!   client TLS, and [`config::file_read`], where every file the operator
//!   names is read (regular files only, bounded, under a deadline).
//! - [`family`]: the descriptor every family is declared with (name,
//!   type, help, labels, scope, PostgreSQL major), from which
//!   `docs/metrics.md` is generated; [`build_info`]: what `--version` says.
//!
//! A row is read in `sources`, judged in `model`, rendered in `sources` (its
//! own families) or `render`, and served by `http`. A new judgement (a
//! failover verdict, a stall) belongs in `model`; a new PostgreSQL source
//! in `sources`; a new way to find targets in `collect`.
//!
//! `/metrics` never waits on a database: scrapes read the view of the
//! snapshots, and each target's task is the only thing that talks to its
//! server.
//!
//! Modules are private; the binary calls [`main`], and the integration
//! tests and the render benchmark reach what they need through
//! [`testing`], which is no API.

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
