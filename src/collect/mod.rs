//! Collection: the tasks that talk to PostgreSQL. One task per target runs
//! the collection statement on the interval ([`task`]) over a small pool of
//! read-only sessions ([`pool`]) and publishes each outcome as the target's
//! snapshot; one task per cluster with a heartbeat writes it on the primary
//! ([`heartbeat_writer`]). What is asked and how a row is read is in
//! `crate::sources`; what is done with it, in `crate::model`.

pub mod error_chain;
pub mod fault;
pub mod heartbeat_writer;
pub mod pool;
pub mod task;
