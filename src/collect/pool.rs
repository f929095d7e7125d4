//! Connections to one target: a deadpool of at most two sessions, each
//! read-only, named, and bounded by server-side timeouts.
//!
//! The collection loop uses one session at a time; the second is headroom
//! for one-shot work (the `status` command, probes) so it never queues
//! behind a slow cycle. Server-side `statement_timeout` and `lock_timeout`
//! make PostgreSQL itself abandon a stuck statement, so a deadline on our
//! side never leaves a query running on the server.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::config::dsn::Dsn;
use crate::config::Target;

/// Most sessions one target gets.
pub const SESSIONS_PER_TARGET: usize = 2;

/// `application_name` of every session, so DBAs can find us in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "pg_replication_exporter";

/// PostgreSQL's time settings are an int of milliseconds.
const MAX_SERVER_MS: u128 = i32::MAX as u128;

/// Well below the kernel's limit for `TCP_USER_TIMEOUT` (u32 milliseconds,
/// about 49 days), and longer than any deadline the configuration allows.
const MAX_TCP_USER_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

#[derive(Debug, thiserror::Error)]
#[error("building the connection pool: {0}")]
pub struct PoolBuildError(String);

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Collection: every transaction read-only.
    ReadOnly,
    /// The heartbeat writer: it writes, and commits locally so that it
    /// never waits for a missing synchronous standby (the very situation
    /// it must help detect).
    HeartbeatWriter,
}

/// The settings of one session under `deadline`: the server gives up on a
/// statement a little before we do, and the kernel on a dead peer soon after.
pub fn session_config(dsn: &Dsn, deadline: Duration, access: Access) -> tokio_postgres::Config {
    let mut pg = dsn.pg_config();
    // The server cancels a little before our deadline, so a slow statement
    // ends as a clear "canceling statement due to statement timeout" and the
    // session stays clean for the next cycle.
    // Checked arithmetic throughout: the configuration bounds the
    // deadline, but a timeout past what PostgreSQL (an int of milliseconds)
    // or the kernel (TCP_USER_TIMEOUT, u32 milliseconds) accepts must clamp,
    // never overflow or make every connection fail.
    let statement_ms = (deadline.as_millis().saturating_mul(9) / 10).clamp(1, MAX_SERVER_MS);
    let lock_ms = statement_ms.min(1000);
    let user_timeout = deadline
        .max(Duration::from_secs(10))
        .saturating_mul(3)
        .min(MAX_TCP_USER_TIMEOUT);
    // `search_path` is pinned to the system catalog (and the session's
    // own temporary schema, searched last for tables only): no function,
    // operator or type that another role created in a schema it may write
    // to (`public` before PostgreSQL 15) can stand in for a built-in in
    // our SQL and run with our privileges. A startup option outranks a
    // role's or database's `search_path` setting.
    pg.application_name(APPLICATION_NAME)
        .connect_timeout(deadline)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .tcp_user_timeout(user_timeout)
        .options(format!(
            "-c statement_timeout={statement_ms} -c lock_timeout={lock_ms} \
             -c idle_in_transaction_session_timeout={statement_ms} \
             -c search_path=pg_catalog,pg_temp {}",
            match access {
                Access::ReadOnly => "-c default_transaction_read_only=on",
                Access::HeartbeatWriter => {
                    "-c default_transaction_read_only=off -c synchronous_commit=local"
                }
            }
        ));
    pg
}

pub fn build(target: &Target, deadline: Duration) -> Result<Pool, PoolBuildError> {
    let pg = session_config(&target.dsn, deadline, Access::ReadOnly);
    let manager = Manager::from_config(
        pg,
        crate::config::tls::connector(&target.dsn.tls)
            .map_err(|e| PoolBuildError(e.to_string()))?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(SESSIONS_PER_TARGET)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(deadline))
        .create_timeout(Some(deadline))
        .recycle_timeout(Some(deadline))
        .build()
        .map_err(|e| PoolBuildError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any deadline builds a pool: no overflow, no panic.
    #[test]
    fn extreme_deadlines_build() -> Result<(), Box<dyn std::error::Error>> {
        let target = Target {
            name: "t".into(),
            dsn: Dsn::parse("host=127.0.0.1 user=x")?,
            cluster: None,
        };
        for d in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(3600),
            Duration::MAX,
        ] {
            build(&target, d)?;
        }
        Ok(())
    }
}
