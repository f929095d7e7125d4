//! Rendering the view: the Prometheus exposition (with the exporter's own
//! health families) and the `status` table.

pub mod cluster;
pub mod escape;
pub mod exposition;
pub mod health;
pub mod lint;
pub mod status;
