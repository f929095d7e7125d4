//! For the tests beside each source: a sample decoded from JSON, as the
//! collection statement returns it, and one source's families rendered
//! alone, as `/metrics` shows them. No database: the JSON samples are
//! rows PostgreSQL returned (most are taken from the captures in
//! `tests/fixtures/golden`).

use std::collections::BTreeMap;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use super::heartbeat::WriterStatus;
use super::{Sample, Scrape, Source, Up};

/// A sample from the JSON document of a collection.
pub fn sample(json: serde_json::Value) -> Sample {
    match serde_json::from_value(json) {
        Ok(sample) => sample,
        Err(e) => panic!("not a sample: {e}"),
    }
}

/// The families of source `S` for these targets (name, sample), in the
/// Prometheus text format.
pub fn render<S: Source>(targets: &[(&str, &Sample)]) -> String {
    let up: Vec<(String, Sample, Option<f64>)> = targets
        .iter()
        .map(|(t, s)| (t.to_string(), (*s).clone(), None))
        .collect();
    render_up::<S>(up, BTreeMap::new())
}

/// As [`render`], with each target's replay delay as the view gives it
/// and the heartbeat writers' status.
pub fn render_up<S: Source>(
    up: Vec<(String, Sample, Option<f64>)>,
    writers: BTreeMap<String, WriterStatus>,
) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(One {
        up,
        writers,
        render: S::render,
    }));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        panic!("rendering failed: {e}");
    }
    out
}

type RenderFn = fn(&Scrape<'_>, &mut DescriptorEncoder<'_>) -> fmt::Result;

/// The registry wants an owned collector.
struct One {
    up: Vec<(String, Sample, Option<f64>)>,
    writers: BTreeMap<String, WriterStatus>,
    render: RenderFn,
}

impl fmt::Debug for One {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("One")
    }
}

impl Collector for One {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let up: Vec<Up<'_>> = self
            .up
            .iter()
            .map(|(target, sample, replay_delay)| Up {
                target,
                sample,
                replay_delay: *replay_delay,
            })
            .collect();
        let scrape = Scrape {
            up: &up,
            heartbeat_writers: &self.writers,
        };
        (self.render)(&scrape, &mut enc)
    }
}
