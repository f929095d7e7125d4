//! The metric snapshot: the last completed collection of each target,
//! shared between the collection tasks (one writer per target) and the HTTP
//! server (many readers), and the rendered exposition cached per change.
//!
//! Readers never wait on a collection: each target's snapshot is swapped
//! atomically when its cycle ends, and `/metrics` renders at most once per
//! change, whatever the number of concurrent scrapes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::collector::Sample;
use crate::config::ClusterConfig;
use crate::exposition::{self, Format};

/// What `/metrics` knows about one target.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    /// The `target` label.
    pub name: String,
    /// The cluster the target belongs to in the configuration.
    pub cluster: Option<String>,
    /// Whether the last collection succeeded.
    pub up: bool,
    /// Seconds the last collection took, successful or not.
    pub collect_duration: f64,
    /// Failed collections since the exporter started.
    pub errors_total: u64,
    /// Unix time of the last successful collection.
    pub last_success: Option<f64>,
    /// Timeline switches seen; kept across failures.
    pub timeline_changes: u64,
    /// Whether a timeline was ever read, so the counter appears only then.
    pub seen_timeline: bool,
    /// The timeline read last, to count switches.
    pub last_timeline: Option<u32>,
    /// The data of the last successful collection; `None` while down, so
    /// that no stale series outlive a failure.
    pub sample: Option<Arc<Sample>>,
    /// `host:port` from the DSN, to recognise this server as another
    /// member's upstream (`sender_host:sender_port`).
    pub endpoint: String,
    /// Why the last collection failed, for the status page and command.
    pub last_error: Option<String>,
}

impl TargetSnapshot {
    /// The state before the first collection: down, nothing known.
    pub fn initial(name: &str, cluster: Option<&str>) -> TargetSnapshot {
        TargetSnapshot {
            name: name.to_string(),
            cluster: cluster.map(str::to_string),
            up: false,
            collect_duration: 0.0,
            errors_total: 0,
            last_success: None,
            timeline_changes: 0,
            seen_timeline: false,
            last_timeline: None,
            sample: None,
            endpoint: String::new(),
            last_error: None,
        }
    }

    pub fn with_endpoint(mut self, endpoint: String) -> TargetSnapshot {
        self.endpoint = endpoint;
        self
    }
}

/// Targets that are up, with their sample.
pub fn up_samples(snaps: &[Arc<TargetSnapshot>]) -> impl Iterator<Item = (&str, &Sample)> {
    snaps
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.sample.as_deref()?)))
}

/// Rendered bodies for one generation of the snapshot.
#[derive(Default)]
struct Rendered {
    generation: u64,
    prometheus: Option<Bytes>,
    openmetrics: Option<Bytes>,
    prometheus_gzip: Option<Bytes>,
    openmetrics_gzip: Option<Bytes>,
}

/// Where one target's collection task publishes; the HTTP side reads it.
pub struct Slot(ArcSwap<TargetSnapshot>);

impl Slot {
    pub fn load(&self) -> Arc<TargetSnapshot> {
        self.0.load_full()
    }
}

/// All targets' snapshots, in configuration order.
pub struct Store {
    /// Replaced whole on a configuration reload; a task still running for a
    /// removed target publishes into a slot nobody reads any more.
    targets: ArcSwap<Vec<Arc<Slot>>>,
    /// Per-cluster settings of the running configuration, for the cluster view.
    clusters: ArcSwap<BTreeMap<String, ClusterConfig>>,
    /// Bumped by every publish; the render cache is valid for one value.
    generation: AtomicU64,
    cache: Mutex<Rendered>,
}

impl Store {
    pub fn new(initial: Vec<TargetSnapshot>, clusters: BTreeMap<String, ClusterConfig>) -> Store {
        let store = Store {
            targets: ArcSwap::from_pointee(Vec::new()),
            clusters: ArcSwap::from_pointee(BTreeMap::new()),
            generation: AtomicU64::new(1),
            cache: Mutex::new(Rendered::default()),
        };
        store.replace(initial, clusters);
        store
    }

    /// Installs a new set of targets (start-up, reload) and returns their
    /// slots, in the same order, for the collection tasks.
    pub fn replace(
        &self,
        snapshots: Vec<TargetSnapshot>,
        clusters: BTreeMap<String, ClusterConfig>,
    ) -> Vec<Arc<Slot>> {
        self.clusters.store(Arc::new(clusters));
        let slots: Vec<Arc<Slot>> = snapshots
            .into_iter()
            .map(|s| Arc::new(Slot(ArcSwap::from_pointee(s))))
            .collect();
        self.targets.store(Arc::new(slots.clone()));
        self.generation.fetch_add(1, Ordering::Release);
        slots
    }

    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.targets.load().iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.targets.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces a target's snapshot at the end of its cycle.
    pub fn publish(&self, slot: &Slot, snapshot: TargetSnapshot) {
        slot.0.store(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn cluster_config(&self) -> Arc<BTreeMap<String, ClusterConfig>> {
        self.clusters.load_full()
    }

    pub fn all(&self) -> Vec<Arc<TargetSnapshot>> {
        self.targets.load().iter().map(|t| t.load()).collect()
    }

    pub fn find(&self, name: &str) -> Option<Arc<TargetSnapshot>> {
        self.targets
            .load()
            .iter()
            .map(|t| t.load())
            .find(|s| s.name == name)
    }

    /// The exposition in this format, rendered at most once per snapshot
    /// change; concurrent scrapes share one render and one compression.
    pub async fn exposition(&self, format: Format, gzip: bool) -> Bytes {
        let generation = self.generation.load(Ordering::Acquire);
        let mut cache = self.cache.lock().await;
        if cache.generation != generation {
            *cache = Rendered {
                generation,
                ..Rendered::default()
            };
        }
        let plain = match format {
            Format::Prometheus => &mut cache.prometheus,
            Format::OpenMetrics => &mut cache.openmetrics,
        };
        let body = match plain {
            Some(b) => b.clone(),
            None => {
                let b = Bytes::from(exposition::render(
                    &self.all(),
                    &self.cluster_config(),
                    format,
                ));
                *plain = Some(b.clone());
                b
            }
        };
        if !gzip {
            return body;
        }
        let zipped = match format {
            Format::Prometheus => &mut cache.prometheus_gzip,
            Format::OpenMetrics => &mut cache.openmetrics_gzip,
        };
        match zipped {
            Some(z) => z.clone(),
            None => {
                let z = Bytes::from(compress(&body));
                *zipped = Some(z.clone());
                z
            }
        }
    }
}

fn compress(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}
