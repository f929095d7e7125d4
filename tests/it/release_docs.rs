//! Small truths that users read and no other test would catch going stale:
//! the Grafana version the docs promise is the one the dashboards declare;
//! the licence, changelog and security policy are there and in shape; the
//! READMEs open with the two commands, then how to install, naming the
//! current version; the migration guide names only families and alerts that
//! exist, in both languages alike; the manifests set only variables the
//! exporter reads. Static: no database, no network.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde::Deserialize;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files of a repository directory whose names end with `suffix`.
fn files(dir: &str, suffix: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<String> = fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every word of `text` that starts with `prefix` (not inside a longer word).
fn words_with_prefix(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find(prefix) {
        let at = offset + i;
        let before = text[..at].chars().next_back();
        let tail: String = text[at + prefix.len()..]
            .chars()
            .take_while(|&c| is_word(c))
            .collect();
        if !before.is_some_and(is_word) && !tail.is_empty() {
            out.insert(format!("{prefix}{tail}"));
        }
        offset = at + prefix.len();
        rest = &text[offset..];
    }
    out
}

/// Backquoted spans of Markdown text.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The `## ` headings of a Markdown file, outside code fences.
fn h2(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            if let Some(h) = line.strip_prefix("## ") {
                out.push(h.trim().to_string());
            }
        }
    }
    out
}

/// String literals of the source (naively: the odd pieces between quotes,
/// which is enough to find names like `"pgrepl_up"` or `"PGREPL_LOG_LEVEL"`).
fn source_literals() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("src dir").filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("source");
                out.extend(text.split('"').skip(1).step_by(2).map(str::to_string));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// The major of the Grafana version every dashboard declares in `__requires`.
fn dashboards_grafana_major() -> u32 {
    let mut majors = BTreeSet::new();
    for file in files("dashboards", ".json") {
        let json: serde_json::Value = serde_json::from_str(&read(&file)).expect("dashboard JSON");
        let grafana = json["__requires"]
            .as_array()
            .and_then(|r| r.iter().find(|e| e["id"] == "grafana"))
            .unwrap_or_else(|| panic!("{file} has no grafana entry in __requires"));
        let version = grafana["version"].as_str().expect("version string");
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{file}: Grafana version {version:?}"));
        majors.insert(major);
    }
    assert_eq!(
        majors.len(),
        1,
        "the dashboards declare different Grafana majors: {majors:?}"
    );
    majors.into_iter().next().expect("one major")
}

#[test]
fn grafana_version_claims_match_the_dashboards() {
    let major = dashboards_grafana_major();
    let mut docs = vec!["README.md".to_string()];
    docs.extend(files("docs", ".md"));
    docs.extend(files("docs/es", ".md"));
    docs.extend(files("dashboards", ".md"));
    let mut claims = 0;
    for doc in &docs {
        let text = read(doc);
        for (i, _) in text.match_indices("Grafana ") {
            let number: String = text[i + "Grafana ".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if number.is_empty() {
                continue;
            }
            claims += 1;
            assert_eq!(
                number,
                major.to_string(),
                "{doc} says Grafana {number}; the dashboards' __requires says {major}"
            );
        }
    }
    assert!(
        read("README.md").contains(&format!("Grafana {major} or later")),
        "README.md does not say which Grafana the dashboards need (Grafana {major} or later)"
    );
    assert!(claims >= 1);
}

#[test]
fn license_is_the_apache_2_text_the_manifests_name() {
    let license = read("LICENSE");
    for part in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(license.contains(part), "LICENSE lacks {part:?}");
    }
    assert!(read("Cargo.toml").contains("license = \"Apache-2.0\""));
    assert!(read("Dockerfile").contains("org.opencontainers.image.licenses=\"Apache-2.0\""));
}

#[test]
fn changelog_keeps_a_changelog_and_states_the_metric_contract() {
    let text = read("CHANGELOG.md");
    assert_eq!(text.lines().next(), Some("# Changelog"));
    assert!(text.contains("https://keepachangelog.com/"));
    assert!(
        text.contains("docs/metrics.md") && text.contains("contract"),
        "CHANGELOG.md must say that docs/metrics.md is the metric contract"
    );
    let headings = h2(&text);
    assert_eq!(
        headings.first().map(String::as_str),
        Some("[Unreleased]"),
        "the first section must be [Unreleased]: {headings:?}"
    );
    let mut versions: Vec<Vec<u32>> = Vec::new();
    for heading in &headings[1..] {
        // `[X.Y.Z] - YYYY-MM-DD`
        let (version, date) = heading
            .strip_prefix('[')
            .and_then(|h| h.split_once("] - "))
            .unwrap_or_else(|| panic!("not `[X.Y.Z] - YYYY-MM-DD`: {heading}"));
        let parts: Vec<u32> = version
            .split('.')
            .map(|p| p.parse().unwrap_or_else(|_| panic!("version {version}")))
            .collect();
        assert_eq!(parts.len(), 3, "version {version}");
        let d: Vec<&str> = date.split('-').collect();
        assert!(
            d.len() == 3
                && d.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
                && [4, 2, 2] == [d[0].len(), d[1].len(), d[2].len()],
            "date {date}"
        );
        versions.push(parts);
    }
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(versions, sorted, "releases are not newest first");
    assert!(
        headings
            .iter()
            .any(|h| h.starts_with(&format!("[{VERSION}]"))),
        "CHANGELOG.md has no entry for the version in Cargo.toml ({VERSION})"
    );
    for line in text.lines() {
        if let Some(kind) = line.strip_prefix("### ") {
            assert!(
                [
                    "Added",
                    "Changed",
                    "Deprecated",
                    "Removed",
                    "Fixed",
                    "Security"
                ]
                .contains(&kind),
                "not a Keep a Changelog section: {kind}"
            );
        }
    }
}

#[test]
fn security_policy_covers_reporting_support_and_secrets() {
    let headings = h2(&read("SECURITY.md"));
    for want in [
        "Reporting a vulnerability",
        "Supported versions",
        "What the exporter does with secrets",
    ] {
        assert!(
            headings.iter().any(|h| h == want),
            "SECURITY.md has no `## {want}`"
        );
    }
}

#[test]
fn readmes_open_with_demo_and_test_then_install_before_building() {
    for (file, install, development, methods) in [
        (
            "README.md",
            "Install",
            "Development",
            [".deb", ".tar.gz", "make image", "cargo build --release"],
        ),
        (
            "docs/es/README.md",
            "Instalación",
            "Desarrollo",
            [".deb", ".tar.gz", "make image", "cargo build --release"],
        ),
    ] {
        let text = read(file);
        let opening: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
        for command in ["make demo", "make test"] {
            assert!(
                opening.contains(command),
                "{file} does not show `{command}` in its opening lines"
            );
        }
        let headings = h2(&text);
        let at = |h: &str| {
            headings
                .iter()
                .position(|x| x == h)
                .unwrap_or_else(|| panic!("{file} has no `## {h}`"))
        };
        assert!(
            at(install) < at(development),
            "{file}: install after building"
        );
        if file == "README.md" {
            assert_eq!(
                at(install),
                0,
                "README.md: `## Install` is not the first section"
            );
        }
        let section = text
            .split("\n## ")
            .find(|s| s.starts_with(install))
            .expect("install section");
        let mut last = 0;
        for method in methods {
            let pos = section
                .find(method)
                .unwrap_or_else(|| panic!("{file}: the install section lacks {method}"));
            assert!(
                pos >= last,
                "{file}: {method} out of order (package, archive, image, source)"
            );
            last = pos;
        }
        // The artifact names shown are those `make dist` writes today.
        for (i, _) in text.match_indices("pg_replication_exporter-") {
            let tail = &text[i + "pg_replication_exporter-".len()..];
            assert!(
                tail.starts_with(&format!("{VERSION}.linux-")),
                "{file}: archive name with another version: {}",
                &text[i..(i + 48).min(text.len())]
            );
        }
        for (i, _) in text.match_indices("pg-replication-exporter_") {
            let tail = &text[i + "pg-replication-exporter_".len()..];
            assert!(
                tail.starts_with(&format!("{VERSION}-1_")),
                "{file}: package name with another version: {}",
                &text[i..(i + 48).min(text.len())]
            );
        }
        assert!(
            text.contains("migrating-from-postgres_exporter.md"),
            "{file} does not link the migration guide"
        );
    }
}

#[test]
fn migration_guide_names_real_families_and_alerts_alike_in_both_languages() {
    let english = read("docs/migrating-from-postgres_exporter.md");
    let spanish = read("docs/es/migrating-from-postgres_exporter.md");
    let literals = source_literals();
    let alerts: BTreeSet<String> = files("alerts", ".rules.yml")
        .iter()
        .flat_map(|f| {
            read(f)
                .lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("- alert: ")
                        .map(|a| a.trim().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!alerts.is_empty(), "no alert rules found");
    for (file, text) in [("English", &english), ("Spanish", &spanish)] {
        for family in words_with_prefix(text, "pgrepl_") {
            let base = family.strip_suffix("_total").unwrap_or(&family);
            // `pgrepl_standby_*` names a group of families.
            let group = family.ends_with('_') && literals.iter().any(|l| l.starts_with(&family));
            assert!(
                group || literals.contains(&family) || literals.contains(base),
                "{file} migration guide names {family}, which the exporter does not emit"
            );
        }
        for alert in words_with_prefix(text, "PgRepl") {
            assert!(
                alerts.contains(&alert),
                "{file} migration guide names the alert {alert}, which alerts/ does not define"
            );
        }
    }
    // Same postgres_exporter series, flags, alerts and families in both.
    let names = |text: &str| -> BTreeSet<String> {
        code_spans(text)
            .iter()
            .flat_map(|span| {
                [
                    "pg_",
                    "pgrepl_",
                    "--no-collector.",
                    "--collector.",
                    "Postgres",
                    "PgRepl",
                ]
                .iter()
                .flat_map(|p| words_with_prefix(span, p))
                .collect::<Vec<_>>()
            })
            .collect()
    };
    let (en, es) = (names(&english), names(&spanish));
    assert!(en.len() > 40, "too few names found: {en:?}");
    assert_eq!(
        en.symmetric_difference(&es).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the English and Spanish migration guides name different things"
    );
    assert_eq!(h2(&english).len(), h2(&spanish).len(), "different sections");
}

#[test]
fn manifests_set_only_variables_the_exporter_reads() {
    let literals = source_literals();
    let config = read("src/config/mod.rs");
    let reads = |name: &str| {
        name == "RUST_LOG"
            || literals.contains(name)
            // PGREPL_<KEY> of a configuration key, as figment reads it.
            || name.strip_prefix("PGREPL_").is_some_and(|key| {
                config.contains(&format!("pub {}:", key.to_ascii_lowercase()))
            })
    };
    let mut set = Vec::new();
    let compose: yaml_serde::Value =
        yaml_serde::from_str(&read("docker-compose.yml")).expect("compose YAML");
    match &compose["services"]["exporter"]["environment"] {
        yaml_serde::Value::Mapping(m) => set.extend(
            m.keys()
                .filter_map(|k| k.as_str())
                .map(|k| ("docker-compose.yml".to_string(), k.to_string())),
        ),
        yaml_serde::Value::Sequence(s) => {
            set.extend(s.iter().filter_map(|v| v.as_str()).map(|kv| {
                (
                    "docker-compose.yml".to_string(),
                    kv.split('=').next().unwrap_or("").to_string(),
                )
            }))
        }
        _ => {}
    }
    for file in files("deploy/kubernetes", ".yaml") {
        let text = read(&file);
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let doc = yaml_serde::Value::deserialize(doc).expect("manifest YAML");
            let containers = doc["spec"]["template"]["spec"]["containers"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            for c in containers {
                let image = c["image"].as_str().unwrap_or("");
                if !image.starts_with("pg_replication_exporter") {
                    continue;
                }
                for env in c["env"].as_sequence().cloned().unwrap_or_default() {
                    if let Some(name) = env["name"].as_str() {
                        set.push((file.clone(), name.to_string()));
                    }
                }
            }
        }
    }
    assert!(
        !set.is_empty(),
        "no exporter environment found in the manifests"
    );
    for (file, name) in set {
        assert!(
            reads(&name),
            "{file} sets {name}, which the exporter does not read"
        );
    }
}
