//! Descriptors of the metric families: the one place a family's name, type,
//! help, labels, where it appears and since which PostgreSQL major it exists
//! are written down.
//!
//! The renderers take their name and help from here, so what `/metrics`
//! says and what `docs/metrics.md` documents cannot drift apart: the
//! reference is generated from [`all`] (`make metrics-doc`), a static test
//! fails when the committed file differs, and the real-server tests check
//! every family a server emits against its descriptor.

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

/// Every family, grouped by the module that renders it, in the order of the
/// exposition.
pub fn all() -> Vec<(&'static str, &'static [Family])> {
    use crate::collector;
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
        ("cluster", crate::cluster::FAMILIES),
        ("lint", crate::lint::FAMILIES),
    ]
}

/// Looks a family up by its exposed or registered name.
pub fn find(name: &str) -> Option<&'static Family> {
    all()
        .into_iter()
        .flat_map(|(_, f)| f.iter())
        .find(|f| f.name == name || f.exposed_name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut seen = std::collections::HashSet::new();
        for (module, families) in all() {
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
}
