//! The metric snapshot: the last completed collection of each target,
//! shared between the collection tasks (one writer per target) and the HTTP
//! server (many readers), with a generation that every publish bumps.
//!
//! Readers never wait on a collection: each target's snapshot is swapped
//! atomically when its cycle ends, and readers (see
//! `crate::model::published`) derive what they show at most once per
//! generation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::ClusterConfig;
use crate::sources::heartbeat::WriterStatus;
use crate::sources::Sample;

/// What `/metrics` knows about one target.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    /// The `target` label.
    pub name: String,
    /// The cluster the target belongs to in the configuration.
    pub cluster: Option<String>,
    /// Seconds the last collection took, successful or not.
    pub collect_duration: f64,
    /// Failed collections since the exporter started.
    pub errors_total: u64,
    /// Unix time of the last successful collection.
    pub last_success: Option<f64>,
    /// Timeline switches seen; kept across failures.
    pub timeline_changes: u64,
    /// The timeline read last, to count switches; the counter appears
    /// once a timeline was read.
    pub last_timeline: Option<u32>,
    /// The run of the server `last_timeline` was read on (its
    /// `system_identifier` and postmaster start time, see
    /// `Sample::server_run`): the next reading of the same run never goes
    /// below it.
    pub last_timeline_run: Option<(Option<String>, Option<String>)>,
    /// The data of the last successful collection; `None` while down, so
    /// that no stale series outlive a failure.
    pub sample: Option<Arc<Sample>>,
    /// `host:port` from the DSN, to recognise this server as another
    /// member's upstream (`sender_host:sender_port`).
    pub endpoint: String,
    /// Why the last collection failed, for the status page and command.
    pub last_error: Option<String>,
    /// The role at the last successful collection (`Some(true)`: standby),
    /// kept while the target is down, so that a standby that stops
    /// answering stays an expected standby of its cluster.
    pub last_in_recovery: Option<bool>,
    /// The configured collection interval.
    pub interval: Duration,
    /// How long after `last_cycle` the snapshot still counts as fresh:
    /// interval, timeout and a grace (see [`watchdog_limit`]).
    pub fresh_for: Duration,
    /// When the last cycle ended, successful or not; when the snapshot was
    /// installed (start, reload, restart) before the first cycle.
    pub last_cycle: Instant,
    /// Times the watchdog restarted this target's task.
    pub restarts: u64,
    /// On a standby: recovery conflicts counted over the last hour the
    /// collection task watched (`crate::model::lint::ConflictWindow`); `None` until two
    /// collections give an increase.
    pub recent_conflicts: Option<f64>,
}

impl TargetSnapshot {
    /// Whether the last collection succeeded (and is recent, once the
    /// watchdog has judged it): the sample is kept only then.
    pub fn up(&self) -> bool {
        self.sample.is_some()
    }

    /// The state before the first collection: down, nothing known.
    pub fn initial(name: &str, cluster: Option<&str>) -> TargetSnapshot {
        TargetSnapshot {
            name: name.to_string(),
            cluster: cluster.map(str::to_string),
            collect_duration: 0.0,
            errors_total: 0,
            last_success: None,
            timeline_changes: 0,
            last_timeline: None,
            last_timeline_run: None,
            sample: None,
            endpoint: String::new(),
            last_error: None,
            last_in_recovery: None,
            interval: Duration::ZERO,
            fresh_for: Duration::MAX,
            last_cycle: Instant::now(),
            restarts: 0,
            recent_conflicts: None,
        }
    }

    pub fn with_endpoint(mut self, endpoint: String) -> TargetSnapshot {
        self.endpoint = endpoint;
        self
    }

    /// Whether the last cycle is too old to be trusted at `now`: the task
    /// died, hangs, or was never restarted.
    pub fn is_stale(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_cycle) > self.fresh_for
    }

    /// When the snapshot turns stale unless a new cycle ends before;
    /// `None` when never (a limit past the clock's range).
    pub fn fresh_until(&self) -> Option<Instant> {
        self.last_cycle.checked_add(self.fresh_for)
    }

    /// What readers see at `now`: the snapshot itself while fresh; once
    /// stale, the target reads down and its values are withheld, since
    /// nothing vouches for them any more.
    pub fn as_of(self: &Arc<Self>, now: Instant) -> Arc<TargetSnapshot> {
        if !self.is_stale(now) {
            return self.clone();
        }
        let mut stale = (**self).clone();
        stale.sample = None;
        stale.last_error = Some(format!(
            "no collection cycle finished in {} (watchdog: collect_interval + collect_timeout + grace)",
            humantime::format_duration(Duration::from_secs(
                now.saturating_duration_since(self.last_cycle).as_secs()
            ))
        ));
        Arc::new(stale)
    }
}

/// Time without a finished cycle after which a target reads down whatever
/// its task is doing: one interval, one timeout (the longest a cycle may
/// take) and a grace for a busy scheduler, the larger of 5 s and one
/// interval. A failed cycle also finishes, so a target that is merely down
/// never trips it; its retries come sooner than the interval.
pub fn watchdog_limit(interval: Duration, timeout: Duration) -> Duration {
    let grace = interval.max(Duration::from_secs(5));
    interval.saturating_add(timeout).saturating_add(grace)
}

/// Whether the last configuration load took, for
/// `pgrepl_config_last_reload_successful`.
#[derive(Debug, Clone, Copy)]
pub struct ReloadStatus {
    pub successful: bool,
    /// Unix time of the last successful load (start or reload).
    pub last_success: f64,
}

/// Targets that are up, with their sample.
pub fn up_samples(snaps: &[Arc<TargetSnapshot>]) -> impl Iterator<Item = (&str, &Sample)> {
    snaps
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.sample.as_deref()?)))
}

/// Where one target's collection task publishes; the HTTP side reads it.
pub struct SnapshotCell(ArcSwap<TargetSnapshot>);

impl SnapshotCell {
    pub fn new(snapshot: TargetSnapshot) -> SnapshotCell {
        SnapshotCell(ArcSwap::from_pointee(snapshot))
    }

    /// The snapshot as its task published it, stale or not: for the task
    /// and the watchdog, not for readers (they use [`Store::all`]).
    pub fn load(&self) -> Arc<TargetSnapshot> {
        self.0.load_full()
    }
}

/// All targets' snapshots, in configuration order.
pub struct Store {
    /// Replaced whole on a configuration reload; a task still running for a
    /// removed target publishes into a cell nobody reads any more.
    targets: ArcSwap<Vec<Arc<SnapshotCell>>>,
    /// Per-cluster settings of the running configuration, for the cluster view.
    clusters: ArcSwap<BTreeMap<String, ClusterConfig>>,
    /// Outcome of the last configuration load.
    reload: ArcSwap<ReloadStatus>,
    /// What each cluster's heartbeat writer last did.
    heartbeat_writers: ArcSwap<BTreeMap<String, WriterStatus>>,
    /// Bumped by every publish: anything derived from the store is valid
    /// for one generation, and until its first target turns stale (see
    /// `View::valid_until`), which happens without a publish.
    generation: AtomicU64,
}

impl Store {
    pub fn new(initial: Vec<TargetSnapshot>, clusters: BTreeMap<String, ClusterConfig>) -> Store {
        let store = Store {
            targets: ArcSwap::from_pointee(Vec::new()),
            clusters: ArcSwap::from_pointee(BTreeMap::new()),
            reload: ArcSwap::from_pointee(ReloadStatus {
                successful: true,
                last_success: unix_now(),
            }),
            heartbeat_writers: ArcSwap::from_pointee(BTreeMap::new()),
            generation: AtomicU64::new(1),
        };
        let cells = initial
            .into_iter()
            .map(|s| Arc::new(SnapshotCell::new(s)))
            .collect();
        store.install(cells, clusters);
        store
    }

    /// Installs the cells of a new configuration (start-up, reload); a
    /// target kept across a reload keeps its cell, and so its task.
    pub fn install(
        &self,
        cells: Vec<Arc<SnapshotCell>>,
        clusters: BTreeMap<String, ClusterConfig>,
    ) {
        self.clusters.store(Arc::new(clusters));
        self.targets.store(Arc::new(cells));
        self.bump();
    }

    /// Every target's snapshot as published, stale or not, for carrying
    /// counters over a reload.
    pub fn all_raw(&self) -> Vec<Arc<TargetSnapshot>> {
        self.targets.load().iter().map(|t| t.load()).collect()
    }

    /// The cells of the running configuration, for the supervisor.
    pub fn cells(&self) -> Vec<Arc<SnapshotCell>> {
        self.targets.load().iter().cloned().collect()
    }

    /// Replaces a target's snapshot at the end of its cycle.
    pub fn publish(&self, cell: &SnapshotCell, snapshot: TargetSnapshot) {
        cell.0.store(Arc::new(snapshot));
        self.bump();
    }

    /// Records the outcome of a configuration load.
    pub fn set_reload(&self, status: ReloadStatus) {
        self.reload.store(Arc::new(status));
        self.bump();
    }

    pub fn reload_status(&self) -> ReloadStatus {
        **self.reload.load()
    }

    /// Records what a cluster's heartbeat writer did (only a change bumps
    /// the generation).
    pub fn set_heartbeat_writer(&self, cluster: &str, status: WriterStatus) {
        if self.heartbeat_writers.load().get(cluster) == Some(&status) {
            return;
        }
        self.heartbeat_writers.rcu(|m| {
            let mut m = BTreeMap::clone(m);
            m.insert(cluster.to_string(), status);
            m
        });
        self.bump();
    }

    /// Forgets every writer (a reload restarts them).
    pub fn clear_heartbeat_writers(&self) {
        self.heartbeat_writers.store(Arc::new(BTreeMap::new()));
        self.bump();
    }

    pub fn heartbeat_writers(&self) -> Arc<BTreeMap<String, WriterStatus>> {
        self.heartbeat_writers.load_full()
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn cluster_config(&self) -> Arc<BTreeMap<String, ClusterConfig>> {
        self.clusters.load_full()
    }

    /// Every target as readers must see it now: stale snapshots read down.
    pub fn all(&self) -> Vec<Arc<TargetSnapshot>> {
        self.all_at(Instant::now())
    }

    /// Every target as readers see it at `now`.
    pub fn all_at(&self, now: Instant) -> Vec<Arc<TargetSnapshot>> {
        self.targets
            .load()
            .iter()
            .map(|t| t.load().as_of(now))
            .collect()
    }

    /// The current generation; read it before the snapshots it goes with,
    /// so that a publish in between only makes it older, never a newer
    /// state look cached.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
