//! `/metrics` parsed into samples, with lookups by name and labels, and the
//! check that what a real server emits matches the family descriptors
//! `docs/metrics.md` is generated from.

use std::collections::BTreeMap;

/// One sample of the text exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` answer.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            let (name, labels) = match series.find('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some(i) => (
                    series[..i].to_string(),
                    parse_labels(&series[i + 1..series.len() - 1]),
                ),
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Metrics {
            samples,
            text: text.to_string(),
        }
    }

    /// Samples of `name` whose labels include all of `labels`.
    pub fn all(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample matching; `None` when absent. Panics
    /// when several match, since that would make the assertion ambiguous.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.all(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series: {found:?}",
            found.len()
        );
        found.first().map(|s| s.value)
    }

    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        !self.all(name, labels).is_empty()
    }

    /// Family names present (without HELP-only families).
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples.iter().map(|s| s.name.clone()).collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => {}
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
    }
    out
}

/// What `/metrics` says about `target` (a server that is up, of PostgreSQL
/// `major`) against the family descriptors `docs/metrics.md` is generated
/// from: every family it emits is declared, with the declared labels and
/// type; every family its role and major must always have is there.
/// Together with the static test of the generated reference, the committed
/// reference is what a real server emits.
pub fn assert_matches_reference(m: &Metrics, target: &str, major: u32) {
    use pg_replication_exporter::testing::family::{self, Kind, Scope};
    let standby = m.get("pgrepl_in_recovery", &[("target", target)]) == Some(1.0);
    let upstream = m
        .get("pgrepl_standbys", &[("target", target)])
        .unwrap_or(0.0)
        > 0.0;
    let declared: Vec<&'static family::Family> = pg_replication_exporter::testing::families()
        .into_iter()
        .flat_map(|(_, f)| f.iter())
        .collect();
    let mut errors = Vec::new();
    // Emitted -> declared, with its labels.
    let mut emitted = std::collections::BTreeSet::new();
    for s in m
        .samples
        .iter()
        .filter(|s| s.labels.get("target").map(String::as_str) == Some(target))
    {
        let Some(f) = declared.iter().find(|f| f.exposed_name() == s.name) else {
            errors.push(format!("{} is emitted but not declared", s.name));
            continue;
        };
        emitted.insert(f.name);
        if f.kind == Kind::Counter && !s.name.ends_with("_total") {
            errors.push(format!("{}: a counter without _total", s.name));
        }
        for label in s.labels.keys() {
            if !f.labels.iter().any(|l| l.name == label) {
                errors.push(format!("{}: label {label} is not declared", s.name));
            }
        }
        for l in f.labels.iter().filter(|l| !l.optional) {
            if !s.labels.contains_key(l.name) {
                errors.push(format!("{}: declared label {} missing", s.name, l.name));
            }
        }
        for l in f.labels {
            if let family::Values::OneOf(allowed) = l.values {
                if let Some(v) = s.labels.get(l.name) {
                    if !allowed.contains(&v.as_str()) {
                        errors.push(format!(
                            "{}: {}={v:?} is not among {allowed:?}",
                            s.name, l.name
                        ));
                    }
                }
            }
        }
        if f.since > major {
            errors.push(format!(
                "{} emitted on {major}, declared since {}",
                s.name, f.since
            ));
        }
        let role_ok = match f.scope {
            Scope::Primary => !standby,
            Scope::Standby => standby,
            _ => true,
        };
        if !role_ok {
            errors.push(format!(
                "{} emitted on a {}",
                s.name,
                if standby { "standby" } else { "primary" }
            ));
        }
    }
    // Declared and always there -> emitted. The exporter's own families
    // and (the harness puts every target in a cluster) the cluster view's.
    let names = m.names();
    for f in &declared {
        let applies = match f.scope {
            Scope::Target | Scope::Server => true,
            Scope::Primary => !standby,
            Scope::Standby => standby,
            Scope::Upstream => upstream,
            Scope::Exporter | Scope::Cluster => {
                if f.when.is_none() && !names.contains(&f.exposed_name()) {
                    errors.push(format!("{} is declared but not emitted", f.exposed_name()));
                }
                false
            }
        };
        if applies && f.when.is_none() && f.since <= major && !emitted.contains(f.name) {
            errors.push(format!(
                "{} is declared for this server but not emitted",
                f.exposed_name()
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "{target} (PostgreSQL {major}, {}) differs from the metric reference:\n  {}",
        if standby { "standby" } else { "primary" },
        errors.join("\n  ")
    );
}
