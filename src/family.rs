//! Descriptors of the metric families: the one place a family's name, type,
//! help, labels, where it appears and since which PostgreSQL major it exists
//! are written down.
//!
//! The renderers take their name and help from here (and write through
//! [`emit`]), so what `/metrics` says and what `docs/metrics.md` documents
//! cannot drift apart: the reference is generated from
//! `exposition::families()` (`make metrics-doc`), a static test fails when
//! the committed file differs, and the real-server tests check every family
//! a server emits against its descriptor.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Prometheus metric type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// The encoder appends `_total` to the name.
    Counter,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Which servers (or which part of the exporter) a family describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The exporter process itself; no `target` label.
    Exporter,
    /// Every configured target, up or down.
    Target,
    /// Every target that answered its last collection, whatever its role.
    Server,
    /// Primaries only.
    Primary,
    /// Standbys only.
    Standby,
    /// Servers with connected standbys: a primary, or a cascading standby
    /// for the standbys that stream from it.
    Upstream,
    /// The cluster view (`cluster` label), computed across targets.
    Cluster,
}

impl Scope {
    /// How the reference names the scope.
    pub fn describe(self) -> &'static str {
        match self {
            Scope::Exporter => "exporter",
            Scope::Target => "every target",
            Scope::Server => "primary, standby",
            Scope::Primary => "primary",
            Scope::Standby => "standby",
            Scope::Upstream => "primary, cascading standby",
            Scope::Cluster => "cluster view",
        }
    }

    pub fn describe_es(self) -> &'static str {
        match self {
            Scope::Exporter => "exporter",
            Scope::Target => "todo target",
            Scope::Server => "principal, réplica",
            Scope::Primary => "principal",
            Scope::Standby => "réplica",
            Scope::Upstream => "principal, réplica en cascada",
            Scope::Cluster => "vista de clúster",
        }
    }
}

/// What values a label takes.
#[derive(Debug, Clone, Copy)]
pub enum Values {
    /// Free text, described.
    Text(&'static str),
    /// A closed set (state sets, positions, stages).
    OneOf(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Label {
    pub name: &'static str,
    pub values: Values,
    /// Present only on some series (a discriminator added when two series
    /// would otherwise share a label set).
    pub optional: bool,
}

impl Label {
    pub const fn text(name: &'static str, meaning: &'static str) -> Label {
        Label {
            name,
            values: Values::Text(meaning),
            optional: false,
        }
    }

    pub const fn one_of(name: &'static str, values: &'static [&'static str]) -> Label {
        Label {
            name,
            values: Values::OneOf(values),
            optional: false,
        }
    }

    pub const fn optional(name: &'static str, meaning: &'static str) -> Label {
        Label {
            name,
            values: Values::Text(meaning),
            optional: true,
        }
    }
}

/// The `target` label every per-server family carries.
pub const TARGET: Label = Label::text("target", "the target's configured name");

/// The `cluster` label of the cluster view.
pub const CLUSTER: Label = Label::text("cluster", "the targets' configured `cluster`");

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The name as registered; a counter's exposed name adds `_total`.
    pub name: &'static str,
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The same, in Spanish, for the Spanish reference.
    pub help_es: &'static str,
    pub labels: &'static [Label],
    pub scope: Scope,
    /// Oldest PostgreSQL major that provides it (10 for all that exist on
    /// every supported major).
    pub since: u32,
    /// A condition beyond role and version for the family to appear
    /// (`None`: always there for its scope); real-server tests expect every
    /// family without one.
    pub when: Option<&'static str>,
    pub when_es: Option<&'static str>,
}

impl Family {
    /// A gauge that exists on every supported major, whenever its scope
    /// applies; refine with [`Family::since`] and [`Family::when`].
    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        help_es: &'static str,
        labels: &'static [Label],
        scope: Scope,
    ) -> Family {
        Family {
            name,
            kind: Kind::Gauge,
            help,
            help_es,
            labels,
            scope,
            since: 10,
            when: None,
            when_es: None,
        }
    }

    /// As [`Family::gauge`], a counter (`name` without `_total`).
    pub const fn counter(
        name: &'static str,
        help: &'static str,
        help_es: &'static str,
        labels: &'static [Label],
        scope: Scope,
    ) -> Family {
        Family {
            kind: Kind::Counter,
            ..Family::gauge(name, help, help_es, labels, scope)
        }
    }

    pub const fn since(self, major: u32) -> Family {
        Family {
            since: major,
            ..self
        }
    }

    pub const fn when(self, en: &'static str, es: &'static str) -> Family {
        Family {
            when: Some(en),
            when_es: Some(es),
            ..self
        }
    }

    /// The sample name Prometheus sees.
    pub fn exposed_name(&self) -> String {
        match self.kind {
            Kind::Gauge => self.name.to_string(),
            Kind::Counter => format!("{}_total", self.name),
        }
    }
}

/// Writes a family from its descriptor, or nothing when it has no series.
pub fn emit<L, I>(enc: &mut DescriptorEncoder<'_>, family: &Family, series: I) -> fmt::Result
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

/// A boolean as a gauge value.
pub fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// The series of a state set: one per possible state, 1 for the current
/// (none when the current state is not among them: a value PostgreSQL
/// added after this build is shown nowhere rather than as another).
pub fn state_set(
    states: &'static [&'static str],
    current: Option<&str>,
) -> impl Iterator<Item = (&'static str, f64)> + use<> {
    let at = current.and_then(|c| states.iter().position(|s| *s == c));
    states
        .iter()
        .enumerate()
        .map(move |(i, s)| (*s, flag(Some(i) == at)))
}

/// One section of the metric reference (`docs/metrics.md`): the families
/// one module renders, under a title in each language.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// The module that renders them, as `sources::slots` (the reference
    /// links its file).
    pub module: &'static str,
    pub title: &'static str,
    pub title_es: &'static str,
    pub families: &'static [Family],
}

impl Section {
    pub const fn new(
        module: &'static str,
        [title, title_es]: [&'static str; 2],
        families: &'static [Family],
    ) -> Section {
        Section {
            module,
            title,
            title_es,
            families,
        }
    }
}
