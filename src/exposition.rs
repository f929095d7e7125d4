//! Rendering the view as Prometheus text or OpenMetrics, and [`Published`],
//! the view and its renderings cached per version of the snapshot: what
//! every HTTP handler reads.
//!
//! prometheus-client's `Collector::encode` is synchronous, which suits us:
//! it only ever reads the last completed snapshot of each target, never the
//! database. Families without a single series are left out entirely, so a
//! version or role that cannot provide a family shows nothing rather than
//! an empty HELP block.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use tokio::sync::{Mutex, OnceCell};

use crate::collector;
use crate::config::ClusterConfig;
use crate::family::Family;
use crate::snapshot::{up_samples, ReloadStatus, Store, TargetSnapshot};
use crate::view::View;

/// Wire formats `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text 0.0.4, what every scraper understands.
    Prometheus,
    /// OpenMetrics 1.0, when the scraper asks for it in `Accept`.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Renders every family for these targets (the `/probe` of one target):
/// their view built and rendered at once, uncached.
pub fn render(
    snaps: &[Arc<TargetSnapshot>],
    clusters: &BTreeMap<String, ClusterConfig>,
    reload: ReloadStatus,
    format: Format,
) -> String {
    render_view(
        &Arc::new(View::build(snaps.to_vec(), clusters, reload)),
        format,
    )
}

/// Renders every family of the view.
pub fn render_view(view: &Arc<View>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ViewCollector { view: view.clone() }));
    let mut out = String::with_capacity(4096 + view.targets.len() * 4096);
    let result = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail; a formatting error would be a bug
    // in an encoder, and half an exposition is still better than none.
    if let Err(e) = result {
        tracing::error!(error = %e, "rendering the exposition failed");
    }
    out
}

/// The registry wants an owned collector: it holds the view for one render.
#[derive(Debug)]
struct ViewCollector {
    view: Arc<View>,
}

impl Collector for ViewCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let view = &*self.view;
        let snaps = &view.targets;
        // The collectors render what the targets that are up read; which
        // targets are up (fresh, reachable) is decided in the view.
        let up: Vec<collector::Up> = up_samples(snaps).collect();
        crate::health::encode(view, &mut enc)?;
        collector::server::encode(&up, &mut enc)?;
        collector::replication::encode(&up, &mut enc)?;
        collector::slots::encode(&up, &mut enc)?;
        collector::wal_receiver::encode(&up, &mut enc)?;
        collector::archiver::encode(&up, &mut enc)?;
        collector::waldir::encode(&up, &mut enc)?;
        collector::settings::encode(&up, &mut enc)?;
        collector::basebackup::encode(&up, &mut enc)?;
        collector::heartbeat::encode(&up, &mut enc)?;
        collector::activity::encode(&up, &mut enc)?;
        collector::privileges::encode(&up, &mut enc)?;
        crate::cluster::encode(&view.clusters, &mut enc)?;
        crate::lint::encode(snaps, &view.clusters, &mut enc)?;
        Ok(())
    }
}

/// Every family, grouped by the module that renders it, in the order of the
/// exposition: what `docs/metrics.md` is generated from.
pub fn families() -> Vec<(&'static str, &'static [Family])> {
    vec![
        ("health", crate::health::FAMILIES),
        ("collector::server", collector::server::FAMILIES),
        ("collector::replication", collector::replication::FAMILIES),
        ("collector::slots", collector::slots::FAMILIES),
        ("collector::wal_receiver", collector::wal_receiver::FAMILIES),
        ("collector::archiver", collector::archiver::FAMILIES),
        ("collector::waldir", collector::waldir::FAMILIES),
        ("collector::settings", collector::settings::FAMILIES),
        ("collector::basebackup", collector::basebackup::FAMILIES),
        ("collector::heartbeat", collector::heartbeat::FAMILIES),
        ("collector::activity", collector::activity::FAMILIES),
        ("collector::privileges", collector::privileges::FAMILIES),
        ("cluster", crate::cluster::FAMILIES),
        ("lint", crate::lint::FAMILIES),
    ]
}

/// The view of the store and its renderings, computed at most once per
/// generation of the store (and again when a target turns stale): concurrent
/// scrapes share one render and one compression, and the topology API and
/// routing checks the same view. Checking that the cache holds costs an
/// atomic load and a clock read, whatever the number of targets; the lock
/// is held for that check and for building a new view, never while
/// rendering, so a health check never waits behind a scrape's render.
pub struct Published {
    store: Arc<Store>,
    current: Mutex<Option<Arc<Generation>>>,
}

/// Everything derived from one generation of the store: the view, and each
/// rendering once the first reader asks for it.
struct Generation {
    generation: u64,
    view: Arc<View>,
    /// Prometheus, OpenMetrics, then the same gzipped.
    renderings: [OnceCell<Bytes>; 4],
}

impl Published {
    pub fn new(store: Arc<Store>) -> Published {
        Published {
            store,
            current: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The view every reader shares, computed at most once per version.
    pub async fn view(&self) -> Arc<View> {
        self.current().await.view.clone()
    }

    async fn current(&self) -> Arc<Generation> {
        let mut current = self.current.lock().await;
        let generation = self.store.generation();
        let now = Instant::now();
        if let Some(g) = current.as_ref() {
            if g.generation == generation && g.view.holds_at(now) {
                return g.clone();
            }
        }
        // One instant for the staleness of every target and for how long
        // the view holds: a target turning stale in between cannot be shown
        // fresh past its limit.
        let view = Arc::new(View::build_at(
            self.store.all_at(now),
            &self.store.cluster_config(),
            self.store.reload_status(),
            now,
        ));
        let g = Arc::new(Generation {
            generation,
            view,
            renderings: Default::default(),
        });
        *current = Some(g.clone());
        g
    }

    /// The exposition in this format, rendered at most once per view.
    pub async fn exposition(&self, format: Format, gzip: bool) -> Bytes {
        let g = self.current().await;
        let plain = match format {
            Format::Prometheus => &g.renderings[0],
            Format::OpenMetrics => &g.renderings[1],
        };
        let body = plain
            .get_or_init(|| async { Bytes::from(render_view(&g.view, format)) })
            .await
            .clone();
        if !gzip {
            return body;
        }
        let zipped = match format {
            Format::Prometheus => &g.renderings[2],
            Format::OpenMetrics => &g.renderings[3],
        };
        zipped
            .get_or_init(|| async { Bytes::from(compress(&body)) })
            .await
            .clone()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{Format, Published};
    use crate::collector::Sample;
    use crate::snapshot::{Store, TargetSnapshot};

    fn published() -> (Arc<Store>, Published) {
        let store = Arc::new(Store::new(
            vec![TargetSnapshot::initial("db1", None)],
            BTreeMap::new(),
        ));
        (store.clone(), Published::new(store))
    }

    /// db1 answered as a primary just now, fresh for `fresh_for`.
    fn answered(fresh_for: Duration) -> TargetSnapshot {
        let sample: Sample = serde_json::from_value(serde_json::json!({
            "server": {"in_recovery": false, "version": "17.0", "now": 0.0,
                       "current_lsn": "0/3000000", "primary_timeline": 1}
        }))
        .expect("a sample");
        let mut s = TargetSnapshot::initial("db1", None);
        s.sample = Some(Arc::new(sample));
        s.fresh_for = fresh_for;
        s.last_cycle = Instant::now();
        s
    }

    #[tokio::test]
    async fn one_rendering_per_publish() {
        let (store, published) = published();
        let a = published.exposition(Format::Prometheus, false).await;
        let b = published.exposition(Format::Prometheus, false).await;
        // The same buffer: the second scrape rendered nothing.
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert!(std::str::from_utf8(&a)
            .unwrap()
            .contains("pgrepl_up{target=\"db1\"} 0.0\n"));

        store.publish(&store.cells()[0], answered(Duration::from_secs(3600)));
        let c = published.exposition(Format::Prometheus, false).await;
        assert_ne!(a.as_ptr(), c.as_ptr());
        assert!(std::str::from_utf8(&c)
            .unwrap()
            .contains("pgrepl_up{target=\"db1\"} 1.0\n"));

        let zipped = published.exposition(Format::Prometheus, true).await;
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut unzipped)
            .expect("gzip");
        assert_eq!(unzipped, c.to_vec());
    }

    /// A cached rendering must not outlive its data: once the snapshot is
    /// older than its limit, the next scrape reads down without any publish.
    #[tokio::test]
    async fn a_cached_rendering_turns_down_when_its_target_turns_stale() {
        let (store, published) = published();
        store.publish(&store.cells()[0], answered(Duration::from_millis(500)));
        let fresh = published.exposition(Format::Prometheus, false).await;
        let text = std::str::from_utf8(&fresh).unwrap();
        assert!(text.contains("pgrepl_up{target=\"db1\"} 1.0\n"), "{text}");
        assert!(
            text.contains("pgrepl_in_recovery{target=\"db1\"} 0.0\n"),
            "{text}"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        let stale = published.exposition(Format::Prometheus, false).await;
        let text = std::str::from_utf8(&stale).unwrap();
        assert!(text.contains("pgrepl_up{target=\"db1\"} 0.0\n"), "{text}");
        assert!(!text.contains("pgrepl_in_recovery{"), "{text}");
    }
}
