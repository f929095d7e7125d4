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

use crate::config::Target;

/// Most sessions one target gets.
pub const MAX_CONNECTIONS: usize = 2;

/// `application_name` of every session, so DBAs can find us in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "pg_replication_exporter";

#[derive(Debug, thiserror::Error)]
#[error("building the connection pool: {0}")]
pub struct PoolBuildError(String);

pub fn build(target: &Target, deadline: Duration) -> Result<Pool, PoolBuildError> {
    let mut pg = target.dsn.pg_config();
    // The server cancels a little before our deadline, so a slow statement
    // ends as a clear "canceling statement due to statement timeout" and the
    // session stays clean for the next cycle.
    let statement_ms = (deadline.as_millis() * 9 / 10).max(1);
    let lock_ms = statement_ms.min(1000);
    pg.application_name(APPLICATION_NAME)
        .connect_timeout(deadline)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .tcp_user_timeout(deadline.max(Duration::from_secs(10)) * 3)
        .options(format!(
            "-c statement_timeout={statement_ms} -c lock_timeout={lock_ms} \
             -c idle_in_transaction_session_timeout={statement_ms} \
             -c default_transaction_read_only=on"
        ));
    let manager = Manager::from_config(
        pg,
        crate::tls::connector(&target.dsn.tls).map_err(|e| PoolBuildError(e.to_string()))?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(MAX_CONNECTIONS)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(deadline))
        .create_timeout(Some(deadline))
        .recycle_timeout(Some(deadline))
        .build()
        .map_err(|e| PoolBuildError(e.to_string()))
}
