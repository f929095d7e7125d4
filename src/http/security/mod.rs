//! What stands between the HTTP server and whoever reaches its port:
//! `--web.config.file` ([`web_config`]) and what it sets up (server TLS
//! with certificate reloading, basic authentication with bounded CPU),
//! connection limits, and the folding of the warnings clients can make the
//! HTTP and TLS libraries write.

pub mod basic_auth;
pub mod conn_limit;
pub mod log_fold;
pub mod tls;
pub mod web_config;
