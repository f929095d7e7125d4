//! Rendering the view as Prometheus text or OpenMetrics, and the
//! [`Renderings`] kept with each view (`crate::model::published`), so that
//! a view is rendered at most once per format.
//!
//! prometheus-client's `Collector::encode` is synchronous, which suits us:
//! it only ever reads the last completed snapshot of each target, never the
//! database. Families without a single series are left out entirely, so a
//! version or role that cannot provide a family shows nothing rather than
//! an empty HELP block.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use tokio::sync::OnceCell;

use crate::config::ClusterConfig;
use crate::family::{Family, Section};
use crate::model::cluster::ClusterView;
use crate::model::published::{PerView, Published};
use crate::model::snapshot::{up_samples, ReloadStatus, TargetSnapshot};
use crate::model::view::View;
use crate::sources;

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

/// Renders every family for these targets, their view built and rendered
/// at once, uncached (benchmarks and tools; HTTP readers go through
/// [`Published`]).
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
    encode_to_string(
        ViewCollector {
            view: view.clone(),
            only: None,
        },
        4096 + view.targets.len() * 4096,
        format,
    )
}

/// Renders what `/probe?target=NAME` serves: the families of the target at
/// `index` of the view, without the cluster view.
///
/// A probe is one member scraped on its own (Prometheus' `instance` is the
/// member), so the cluster-wide judgements (`pgrepl_cluster_*`: primaries,
/// members, expected standbys, timeline mismatch, lag against the primary)
/// are left out: computed from that member alone they would be false (a
/// healthy standby's cluster "has no primary"), and computed from the whole
/// cluster they would be repeated under every member's `instance`,
/// counting one cluster once per member. The shipped rules judge split
/// brain, a missing primary and timelines from the per-server families by
/// `system_identifier`, which the probe does serve; the cluster view is on
/// `/metrics`. The configuration lint of the target is still judged against
/// its whole cluster (`system_identifier_mismatch`).
pub fn render_probe(view: &Arc<View>, index: usize, format: Format) -> String {
    encode_to_string(
        ViewCollector {
            view: view.clone(),
            only: Some(index),
        },
        8192,
        format,
    )
}

fn encode_to_string(collector: ViewCollector, capacity: usize, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut out = String::with_capacity(capacity);
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
    /// `Some(i)`: only the target at index `i`, without the cluster view
    /// (see [`render_probe`]).
    only: Option<usize>,
}

impl Collector for ViewCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let view = &*self.view;
        match self.only {
            None => encode_families(view, &view.clusters, true, &mut enc),
            Some(index) => {
                let Some(target) = view.targets.get(index) else {
                    return Ok(());
                };
                // The member's own view: its snapshot as of the view's time
                // and the reload status, without the cluster families.
                let member = View {
                    targets: vec![target.clone()],
                    clusters: Vec::new(),
                    reload: view.reload,
                    valid_until: view.valid_until,
                    heartbeat_writers: view.heartbeat_writers.clone(),
                };
                encode_families(&member, &view.clusters, false, &mut enc)
            }
        }
    }
}

/// Every family of the targets of `view`, in the order of the exposition;
/// the configuration lint judged against `lint_clusters`, the cluster
/// families only with `cluster_view`.
fn encode_families(
    view: &View,
    lint_clusters: &[ClusterView],
    cluster_view: bool,
    enc: &mut DescriptorEncoder<'_>,
) -> fmt::Result {
    let snaps = &view.targets;
    // The sources render what the targets that are up read (which targets
    // are up, fresh and reachable, is decided in the view), with each
    // one's replay delay as the view computed it (against the cluster's
    // primary when there is one), so that /metrics, /probe, the topology
    // API, the routing checks and `status` show one value.
    let delays: HashMap<&str, f64> = lint_clusters
        .iter()
        .flat_map(|c| &c.members)
        .filter_map(|m| Some((m.target.as_str(), m.replay_delay_seconds?)))
        .collect();
    let up: Vec<sources::Up<'_>> = up_samples(snaps)
        .map(|(target, sample)| sources::Up {
            target,
            sample,
            replay_delay: delays.get(target).copied(),
        })
        .collect();
    let scrape = sources::Scrape {
        up: &up,
        heartbeat_writers: &view.heartbeat_writers,
    };
    super::health::encode(view, enc)?;
    sources::render(&scrape, enc)?;
    if cluster_view {
        super::cluster::encode(&view.clusters, enc)?;
    }
    super::lint::encode(snaps, lint_clusters, enc)?;
    Ok(())
}

/// Every section of the metric reference, in the order of the exposition:
/// the exporter's health, the sources (in the order of their list), the
/// cluster view, the lint.
pub fn sections() -> Vec<Section> {
    let mut all = vec![Section::new(
        "render::health",
        ["Exporter health", "Salud del exporter"],
        super::health::FAMILIES,
    )];
    all.extend(sources::sections());
    all.push(Section::new(
        "render::cluster",
        ["Cluster view", "Vista de clúster"],
        super::cluster::FAMILIES,
    ));
    all.push(Section::new(
        "render::lint",
        ["Configuration lint", "Revisión de configuración"],
        super::lint::FAMILIES,
    ));
    all
}

/// Every family, grouped by the module that renders it, in the order of the
/// exposition: what `docs/metrics.md` is generated from.
pub fn families() -> Vec<(&'static str, &'static [Family])> {
    sections()
        .into_iter()
        .map(|s| (s.module, s.families))
        .collect()
}

/// What the exposition keeps per view: each rendering, made by the first
/// reader that asks for it, so that concurrent scrapes share one render and
/// one compression.
pub struct Renderings {
    /// Prometheus, OpenMetrics, then the same gzipped.
    metrics: [OnceCell<Bytes>; 4],
    /// `/probe?target=NAME`: per target of the view (same index), the
    /// Prometheus and OpenMetrics renderings. Sized once from the view, so
    /// requests for unknown names cannot grow it.
    probes: Vec<[OnceCell<Bytes>; 2]>,
}

impl PerView for Renderings {
    fn for_view(view: &View) -> Renderings {
        Renderings {
            metrics: Default::default(),
            probes: view.targets.iter().map(|_| Default::default()).collect(),
        }
    }
}

/// The view and its renderings: what every HTTP handler reads.
pub type Served = Published<Renderings>;

impl Published<Renderings> {
    /// The exposition in this format, rendered at most once per view.
    pub async fn exposition(&self, format: Format, gzip: bool) -> Bytes {
        let g = self.current().await;
        let plain = match format {
            Format::Prometheus => &g.kept.metrics[0],
            Format::OpenMetrics => &g.kept.metrics[1],
        };
        let body = plain
            .get_or_init(|| async { Bytes::from(render_view(&g.view, format)) })
            .await
            .clone();
        if !gzip {
            return body;
        }
        let zipped = match format {
            Format::Prometheus => &g.kept.metrics[2],
            Format::OpenMetrics => &g.kept.metrics[3],
        };
        zipped
            .get_or_init(|| async { Bytes::from(compress(&body)) })
            .await
            .clone()
    }

    /// What `/probe?target=NAME` serves (see [`render_probe`]), rendered at
    /// most once per view and format, as `/metrics` is: concurrent probes of
    /// a target share one render. `None` for a name that is not a target.
    pub async fn probe(&self, name: &str, format: Format) -> Option<Bytes> {
        let g = self.current().await;
        let index = g.view.targets.iter().position(|t| t.name == name)?;
        let cell = &g.kept.probes.get(index)?[match format {
            Format::Prometheus => 0,
            Format::OpenMetrics => 1,
        }];
        let body = cell
            .get_or_init(|| async { Bytes::from(render_probe(&g.view, index, format)) })
            .await
            .clone();
        Some(body)
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

    use super::{families, Format, Served};
    use crate::family::Scope;
    use crate::model::snapshot::{Store, TargetSnapshot};
    use crate::sources::Sample;

    fn published() -> (Arc<Store>, Served) {
        let store = Arc::new(Store::new(
            vec![TargetSnapshot::initial("db1", None)],
            BTreeMap::new(),
        ));
        (store.clone(), Served::new(store))
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

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut seen = std::collections::HashSet::new();
        for (module, families) in families() {
            for f in families {
                assert!(seen.insert(f.name), "{} declared twice", f.name);
                assert!(f.name.starts_with("pgrepl_"), "{module}: {}", f.name);
                assert!(!f.name.ends_with("_total"), "{module}: {}", f.name);
                assert!(f.help.ends_with('.'), "{}: help must end with '.'", f.name);
                assert!(f.help_es.ends_with('.'), "{}: help_es", f.name);
                assert!(f.since >= 10, "{}", f.name);
                assert_eq!(f.when.is_some(), f.when_es.is_some(), "{}", f.name);
                let target = f.labels.iter().any(|l| l.name == "target");
                match f.scope {
                    Scope::Exporter => {}
                    Scope::Cluster => assert!(f.labels[0].name == "cluster", "{}", f.name),
                    _ => assert!(target, "{} lacks the target label", f.name),
                }
            }
        }
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
    /// A real capture of a primary and its streaming standby (PostgreSQL
    /// 10, `tests/fixtures/golden/pg10.json`), both members of cluster
    /// `main`, answered just now.
    fn healthy_pair() -> (Arc<Store>, Served) {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/golden/pg10.json"))
                .expect("fixture JSON");
        let members: Vec<TargetSnapshot> = fixture["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .map(|t| {
                let name = t["name"].as_str().expect("name");
                let sample = crate::sources::parse(&t["sample"].to_string()).expect("sample");
                let mut s = TargetSnapshot::initial(name, Some("main"));
                s.sample = Some(Arc::new(sample));
                s.fresh_for = Duration::from_secs(3600);
                s.last_cycle = Instant::now();
                s
            })
            .collect();
        let store = Arc::new(Store::new(members, BTreeMap::new()));
        (store.clone(), Served::new(store))
    }

    /// `/probe` of one member never publishes a cluster judgement: alone,
    /// the standby of a healthy pair would read "no primary, one member,
    /// expected standby not connected", which pages `PgReplNoPrimary` and
    /// `PgReplStandbyDisconnected`. `/metrics` keeps the cluster view.
    #[tokio::test]
    async fn a_probe_publishes_no_cluster_judgement() {
        let (_store, published) = healthy_pair();
        let metrics = published.exposition(Format::Prometheus, false).await;
        let metrics = std::str::from_utf8(&metrics).unwrap();
        for line in [
            "pgrepl_cluster_primaries{cluster=\"main\"} 1.0\n",
            "pgrepl_cluster_members{cluster=\"main\"} 2.0\n",
            "pgrepl_cluster_expected_standby_connected{cluster=\"main\",standby=\"standby1\"} 1.0\n",
        ] {
            assert!(metrics.contains(line), "/metrics lacks {line}{metrics}");
        }
        for member in ["primary", "standby1"] {
            for format in [Format::Prometheus, Format::OpenMetrics] {
                let probe = published.probe(member, format).await.expect("a target");
                let text = std::str::from_utf8(&probe).unwrap();
                assert!(
                    !text.contains("pgrepl_cluster_"),
                    "/probe?target={member} publishes the cluster view:\n{text}"
                );
                // Its own families, and only its own.
                assert!(
                    text.contains(&format!("pgrepl_up{{target=\"{member}\"}} 1")),
                    "{text}"
                );
                assert!(!text.contains("target=\"primary\"") || member == "primary");
                assert!(!text.contains("target=\"standby1\"") || member == "standby1");
                // The lint is still judged against the whole cluster.
                assert!(
                    text.contains(&format!(
                        "pgrepl_config_issue{{target=\"{member}\",check=\"system_identifier_mismatch\"}} 0"
                    )),
                    "{text}"
                );
            }
        }
        assert!(published
            .probe("nobody", Format::Prometheus)
            .await
            .is_none());
    }

    /// Concurrent probes of a target share one rendering per snapshot
    /// version, as `/metrics` scrapes do; a publish renders afresh.
    #[tokio::test]
    async fn one_probe_rendering_per_publish() {
        let (store, published) = healthy_pair();
        let probes = futures_util::future::join_all(
            (0..20).map(|_| published.probe("standby1", Format::Prometheus)),
        )
        .await;
        let first = probes[0].clone().expect("a target");
        for p in &probes {
            // The same buffer: one render for all twenty.
            assert_eq!(p.as_ref().expect("a target").as_ptr(), first.as_ptr());
        }
        let other = published
            .probe("primary", Format::Prometheus)
            .await
            .unwrap();
        assert_ne!(other.as_ptr(), first.as_ptr());
        let open = published
            .probe("standby1", Format::OpenMetrics)
            .await
            .unwrap();
        assert_ne!(open.as_ptr(), first.as_ptr());
        assert!(std::str::from_utf8(&open).unwrap().ends_with("# EOF\n"));
        assert_eq!(
            published
                .probe("standby1", Format::OpenMetrics)
                .await
                .unwrap()
                .as_ptr(),
            open.as_ptr()
        );

        let cell = store.cells()[1].clone();
        let mut again = (*cell.load()).clone();
        again.last_cycle = Instant::now();
        store.publish(&cell, again);
        let fresh = published
            .probe("standby1", Format::Prometheus)
            .await
            .unwrap();
        assert_ne!(fresh.as_ptr(), first.as_ptr());
    }
}
