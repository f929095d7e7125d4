//! The view: what every reader is shown, derived in one direction from the
//! snapshots (collection → snapshot → view → `/metrics`, `/api/v1/topology`,
//! the routing checks, `status`).
//!
//! It is computed at most once per change of the snapshot and never
//! written back: readers cannot disagree with each other, and the watchdog
//! (a snapshot older than its limit reads down) applies to all of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::ClusterConfig;
use crate::model::cluster::{self, ClusterView, MemberView};
use crate::model::snapshot::{ReloadStatus, TargetSnapshot};
use crate::sources::heartbeat::WriterStatus;

#[derive(Debug)]
pub struct View {
    /// Every target in configuration order, as of the view's time.
    pub targets: Vec<Arc<TargetSnapshot>>,
    /// Every cluster, targets without `cluster` each as an unnamed one.
    pub clusters: Vec<ClusterView>,
    pub reload: ReloadStatus,
    /// When the first target that is fresh now turns stale: the view (and
    /// what is rendered from it) holds until then, or until the next
    /// publish. `None`: no target can turn stale.
    pub valid_until: Option<Instant>,
    /// What each cluster's heartbeat writer last did (empty for `/probe`,
    /// which shows one target).
    pub heartbeat_writers: Arc<BTreeMap<String, WriterStatus>>,
}

impl View {
    pub fn build(
        targets: Vec<Arc<TargetSnapshot>>,
        configs: &BTreeMap<String, ClusterConfig>,
        reload: ReloadStatus,
    ) -> View {
        View::build_at(targets, configs, reload, Instant::now())
    }

    /// The view of `targets` as they were judged fresh or stale at `now`.
    pub fn build_at(
        targets: Vec<Arc<TargetSnapshot>>,
        configs: &BTreeMap<String, ClusterConfig>,
        reload: ReloadStatus,
        now: Instant,
    ) -> View {
        let clusters = cluster::views(&targets, configs);
        let valid_until = targets
            .iter()
            .filter_map(|t| t.fresh_until())
            .filter(|until| *until > now)
            .min();
        View {
            targets,
            clusters,
            reload,
            valid_until,
            heartbeat_writers: Arc::default(),
        }
    }

    /// Whether the view still shows what readers must see at `now`.
    pub fn holds_at(&self, now: Instant) -> bool {
        self.valid_until.is_none_or(|until| now < until)
    }

    pub fn target(&self, name: &str) -> Option<&Arc<TargetSnapshot>> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The named cluster a target belongs to.
    pub fn cluster_of(&self, target: &TargetSnapshot) -> Option<&ClusterView> {
        self.clusters
            .iter()
            .find(|c| !c.name.is_empty() && Some(&c.name) == target.cluster.as_ref())
    }

    /// How the cluster view sees a target.
    pub fn member(&self, target: &str) -> Option<&MemberView> {
        self.clusters.iter().find_map(|c| c.member(target))
    }
}
