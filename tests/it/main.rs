//! The integration tests, as one test binary: the exporter built by cargo
//! (`CARGO_BIN_EXE_pg_replication_exporter`), real PostgreSQL servers
//! started by [`harness`] on loopback, Prometheus, Alertmanager and promtool
//! where alerts are at stake, and the committed documents and fixtures.
//! One module per subject; run one with a filter:
//! `cargo test --test it -- replication::` (see the Makefile for the
//! targets that run the tests needing other PostgreSQL majors, root or
//! `make dist`).

mod harness;

mod alert_rules_e2e;
mod cluster;
mod config_errors;
mod dashboards_e2e;
mod demo_script;
mod docs_exec;
mod docs_sync;
mod failover_slots;
mod file_inputs;
mod golden;
mod hardening;
mod heartbeat;
mod heartbeat_trust;
mod http_limits;
mod isolation;
mod log_filter;
mod matrix;
mod metric_reference;
mod no_receiver;
mod packaging;
mod release_docs;
mod reload;
mod replication;
mod security;
mod slot_invalidation;
mod static_assets;
mod status_command;
mod stuck_session;
mod topology;
mod topology_page;
mod watchdog;
mod web_config;
