//! Rendering the view: the Prometheus exposition (the exporter's own
//! health families, then each source's, the cluster view's and the lint's,
//! with the renderings kept per view) and what `status` prints. What is
//! rendered is judged in `crate::model`; the sources render their own
//! families (`crate::sources`).

pub mod cluster;
pub mod escape;
pub mod exposition;
pub mod health;
pub mod lint;
pub mod status;
