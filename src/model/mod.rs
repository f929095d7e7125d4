//! The model: the snapshots the collection tasks publish, and what is
//! judged from them once for every reader (the view: staleness, roles, the
//! cluster view, the configuration lint). Nothing here renders or serves.

pub mod cluster;
pub mod lint;
pub mod published;
pub mod role;
pub mod snapshot;
pub mod view;
