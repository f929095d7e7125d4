//! Rendering the snapshot as Prometheus text or OpenMetrics.
//!
//! prometheus-client's `Collector::encode` is synchronous, which suits us:
//! it only ever reads the last completed snapshot of each target, never the
//! database. Families without a single series are left out entirely, so a
//! version or role that cannot provide a family shows nothing rather than
//! an empty HELP block.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::collector;
use crate::config::ClusterConfig;
use crate::family::{Family, Kind};
use crate::snapshot::{ReloadStatus, TargetSnapshot};
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

    /// Content negotiation the way Prometheus' own scrape `Accept` reads.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }
}

/// Renders every family for these targets (the `/probe` of one target).
pub fn render(
    snaps: &[Arc<TargetSnapshot>],
    clusters: &BTreeMap<String, ClusterConfig>,
    format: Format,
) -> String {
    let reload = ReloadStatus {
        successful: true,
        last_success: 0.0,
    };
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
        crate::health::encode(view, &mut enc)?;
        collector::server::encode(snaps, &mut enc)?;
        collector::replication::encode(snaps, &mut enc)?;
        collector::slots::encode(snaps, &mut enc)?;
        collector::wal_receiver::encode(snaps, &mut enc)?;
        collector::archiver::encode(snaps, &mut enc)?;
        collector::waldir::encode(snaps, &mut enc)?;
        collector::settings::encode(snaps, &mut enc)?;
        collector::basebackup::encode(snaps, &mut enc)?;
        collector::heartbeat::encode(snaps, &mut enc)?;
        collector::activity::encode(snaps, &mut enc)?;
        crate::cluster::encode(&view.clusters, &mut enc)?;
        crate::lint::encode(snaps, &view.clusters, &mut enc)?;
        Ok(())
    }
}

/// Writes a family from its descriptor, or nothing when it has no series.
pub fn emit<L, I>(enc: &mut DescriptorEncoder, family: &Family, series: I) -> fmt::Result
where
    L: EncodeLabelSet,
    I: IntoIterator<Item = (L, f64)>,
{
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let metric_type = match family.kind {
        Kind::Gauge => MetricType::Gauge,
        Kind::Counter => MetricType::Counter,
    };
    let mut metric = enc.encode_descriptor(family.name, family.help, None, metric_type)?;
    for (labels, value) in series {
        let mut m = metric.encode_family(&labels)?;
        match family.kind {
            Kind::Counter => m.encode_counter::<NoLabelSet, _, f64>(&value, None)?,
            Kind::Gauge => m.encode_gauge(&value)?,
        }
    }
    Ok(())
}

/// The series of a state set: one per possible state, 1 for the current.
pub fn state_set<'a>(
    states: &'a [&'a str],
    current: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    states
        .iter()
        .map(move |s| (*s, if Some(*s) == current { 1.0 } else { 0.0 }))
}
