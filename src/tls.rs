//! TLS towards PostgreSQL.
//!
//! Plain connections for now: `sslmode=disable|allow|prefer` connect without
//! TLS, and the modes that demand TLS fail at connection time with a clear
//! error naming the target (reported as `pgrepl_up 0`).

use crate::dsn::TlsOptions;

/// The connector handed to tokio-postgres for every session of a target.
pub type Connector = tokio_postgres::NoTls;

#[derive(Debug, thiserror::Error)]
#[error("TLS setup: {0}")]
pub struct TlsError(String);

pub fn connector(_options: &TlsOptions) -> Result<Connector, TlsError> {
    Ok(tokio_postgres::NoTls)
}
