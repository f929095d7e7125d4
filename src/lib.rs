//! pg_replication_exporter: a Prometheus exporter for PostgreSQL physical
//! streaming replication.
//!
//! # Layout
//!
//! - [`config`]: the configuration (file, `PGREPL_*` environment, flags) and
//!   its validation; [`dsn`] parses libpq connection strings and [`pgpass`]
//!   reads libpq's password file.
//! - [`collection`]: one task per target running collection cycles on the
//!   interval, under a deadline, over the sessions of [`pool`].
//! - [`collector`]: one module per PostgreSQL source. Each holds its SQL, the
//!   rows it reads and the metric families it renders: to find where a
//!   `pgrepl_*` family comes from, grep its name under `src/collector/`.
//!   [`health`] renders the exporter's own families.
//! - [`snapshot`]: the last completed collection of every target and the
//!   rendered exposition cached per change; [`exposition`] renders it.
//! - [`cluster`]: targets sharing a `cluster` judged together (split brain,
//!   missing standbys, lag from outside); [`lint`] flags risky settings.
//! - [`http`]: `/metrics`, `/`, `/healthz`, `/-/reload`; it reads only the
//!   snapshot. [`web_config`] adds TLS and basic auth (`--web.config.file`).
//! - [`routing`]: `/primary`, `/replica`, `/health` for HAProxy and probes.
//! - [`heartbeat`]: the opt-in heartbeat writer.
//! - [`status`]: the one-shot `status` command.
//! - [`exporter`]: wiring and shutdown; `main.rs` is a thin binary.
//!
//! `/metrics` never waits on a database: scrapes read the snapshot, and each
//! target's task is the only thing that talks to its server.

pub mod build_info;
pub mod cli;
pub mod cluster;
pub mod collection;
pub mod collector;
pub mod config;
pub mod dsn;
pub mod exporter;
pub mod exposition;
pub mod family;
pub mod fault;
pub mod health;
pub mod heartbeat;
pub mod http;
pub mod lint;
pub mod logging;
pub mod lsn;
pub mod pgpass;
pub mod pool;
pub mod routing;
pub mod snapshot;
pub mod status;
pub mod sync_names;
pub mod tls;
pub mod view;
pub mod web_config;
