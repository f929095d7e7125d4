//! The metric reference, `docs/metrics.md` and `docs/es/metrics.md`, is
//! generated from the exporter's own family descriptors
//! (`pg_replication_exporter::testing::families()`), with the alert rules and
//! dashboard panels that use each family. This test fails when the
//! committed files differ from what the code declares; `make metrics-doc`
//! (this test with `PGREPL_BLESS=1`) writes them.
//!
//! That what a real server emits matches the descriptors is checked by the
//! real-server tests (`common::assert_matches_reference`, on a pair and on
//! every major of the matrix).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pg_replication_exporter::testing::family::{Family, Kind, Scope, Values};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("pgrepl") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
        {
            end += 1;
        }
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if before_ok {
            out.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// Which alerts and panels name each family (directly or through a
/// recording rule).
#[derive(Default)]
struct Usage {
    alerts: BTreeMap<String, BTreeSet<String>>,
    panels: BTreeMap<String, BTreeSet<String>>,
}

fn usage() -> Usage {
    let mut usage = Usage::default();
    // Recording rules: record name -> the families its expression reads.
    let mut recorded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut alerts: Vec<(String, String)> = Vec::new();
    let mut rule_files: Vec<PathBuf> = std::fs::read_dir(root().join("alerts"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    rule_files.retain(|p| p.to_string_lossy().ends_with(".rules.yml"));
    rule_files.sort();
    for file in rule_files {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        for group in doc["groups"].as_sequence().into_iter().flatten() {
            for rule in group["rules"].as_sequence().into_iter().flatten() {
                let expr = rule["expr"].as_str().unwrap_or("").to_string();
                if let Some(name) = rule["record"].as_str() {
                    recorded
                        .entry(name.to_string())
                        .or_default()
                        .extend(metric_names(&expr));
                }
                if let Some(name) = rule["alert"].as_str() {
                    alerts.push((name.to_string(), expr));
                }
            }
        }
    }
    let expand = |names: BTreeSet<String>| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = names.into_iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            match recorded.get(&n) {
                Some(inner) => todo.extend(inner.iter().cloned()),
                None => {
                    out.insert(n);
                }
            }
        }
        out
    };
    for (alert, expr) in alerts {
        for n in expand(metric_names(&expr)) {
            usage.alerts.entry(n).or_default().insert(alert.clone());
        }
    }
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dashboards.retain(|p| p.extension().is_some_and(|e| e == "json"));
    dashboards.sort();
    for file in dashboards {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let dashboard = doc["title"].as_str().unwrap_or("?").to_string();
        let mut panels: Vec<&serde_json::Value> = Vec::new();
        for p in doc["panels"].as_array().into_iter().flatten() {
            panels.push(p);
            panels.extend(p["panels"].as_array().into_iter().flatten());
        }
        for p in panels {
            let title = p["title"].as_str().unwrap_or("").to_string();
            let exprs: String = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["expr"].as_str())
                .collect::<Vec<_>>()
                .join("\n");
            for n in expand(metric_names(&exprs)) {
                usage
                    .panels
                    .entry(n)
                    .or_default()
                    .insert(format!("{dashboard} › {title}"));
            }
        }
    }
    usage
}

/// English or Spanish.
#[derive(Clone, Copy, PartialEq)]
enum Lang {
    En,
    Es,
}

/// The title of a module's section, as the exporter's list of sources
/// (and its own sections) gives it.
fn section_title(module: &str, lang: Lang) -> &'static str {
    let section = pg_replication_exporter::testing::sections()
        .into_iter()
        .find(|s| s.module == module)
        .unwrap_or_else(|| panic!("no section for module {module}"));
    if lang == Lang::En {
        section.title
    } else {
        section.title_es
    }
}

fn source_file(module: &str) -> String {
    format!("src/{}.rs", module.replace("::", "/"))
}

fn render(lang: Lang, usage: &Usage) -> String {
    let es = lang == Lang::Es;
    let mut out = String::new();
    let t = |en: &'static str, es_text: &'static str| if es { es_text } else { en };
    let _ = writeln!(
        out,
        "{}",
        t("# Metric reference", "# Referencia de métricas")
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        t(
            "<!-- GENERATED from the family descriptors in src/ by `make metrics-doc`; do not edit. -->",
            "<!-- GENERADO a partir de los descriptores de familias en src/ con `make metrics-doc`; no editar. -->"
        )
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        t(
            "Every family pg_replication_exporter can emit, generated from the descriptors the exporter itself renders with, so this page cannot drift from `/metrics`: a test fails when it does, and the real-server tests check every family a primary and a standby of each PostgreSQL major emit against the same descriptors. This reference is the contract: renaming or removing a family needs an entry in [CHANGELOG.md](../CHANGELOG.md).",
            "Todas las familias que pg_replication_exporter puede emitir, generadas a partir de los mismos descriptores con los que el exporter las publica, así que esta página no puede apartarse de `/metrics`: un test falla si lo hace, y los tests contra servidores reales comparan con esos descriptores cada familia que emiten un principal y una réplica de cada versión mayor de PostgreSQL. Esta referencia es el contrato: renombrar o quitar una familia requiere una entrada en [CHANGELOG.md](../../CHANGELOG.md)."
        )
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        t(
            "- **Where**: which servers emit it. *every target* means also while the target is down; *primary, standby* means every server that answered its last collection.\n- **PostgreSQL**: the oldest major that provides it (10 to 18 are supported).\n- **Present**: *always* for its servers and majors, or the condition under which it appears. Series of things that no longer exist (a standby that disconnected, a dropped slot) disappear at the next collection; a target that is down keeps only the families marked *every target*, and reads `pgrepl_up 0`.\n- Counters carry `_total` in the exposition, as listed.",
            "- **Dónde**: qué servidores la emiten. *todo target* significa también mientras el target está caído; *principal, réplica* significa todo servidor que respondió a su última recolección.\n- **PostgreSQL**: la versión mayor más antigua que la ofrece (se soportan de la 10 a la 18).\n- **Presente**: *siempre* para sus servidores y versiones, o la condición bajo la que aparece. Las series de lo que ya no existe (una réplica desconectada, un slot borrado) desaparecen en la recolección siguiente; un target caído conserva sólo las familias marcadas *todo target*, y marca `pgrepl_up 0`.\n- Los contadores llevan `_total` en la exposición, como figuran aquí."
        )
    );
    let _ = writeln!(out);
    let all = pg_replication_exporter::testing::families();
    let _ = writeln!(out, "{}", t("## Contents", "## Contenido"));
    let _ = writeln!(out);
    for (module, families) in &all {
        let _ = writeln!(
            out,
            "- {} ({})",
            section_title(module, lang),
            families.len()
        );
    }
    let _ = writeln!(out);
    for (module, families) in &all {
        let _ = writeln!(out, "## {}", section_title(module, lang));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} `{}`.",
            t("Rendered by", "Publicadas por"),
            source_file(module)
        );
        let _ = writeln!(out);
        for f in families.iter() {
            render_family(&mut out, f, lang, usage);
        }
    }
    out
}

fn render_family(out: &mut String, f: &Family, lang: Lang, usage: &Usage) {
    let es = lang == Lang::Es;
    let name = f.exposed_name();
    let _ = writeln!(out, "### `{name}`");
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", if es { f.help_es } else { f.help });
    let _ = writeln!(out);
    let kind = match f.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => {
            if es {
                "counter (contador)"
            } else {
                "counter"
            }
        }
    };
    let _ = writeln!(out, "- **{}**: {kind}", if es { "Tipo" } else { "Type" });
    if f.labels.is_empty() {
        let _ = writeln!(
            out,
            "- **{}**: {}",
            if es { "Etiquetas" } else { "Labels" },
            if es { "ninguna" } else { "none" }
        );
    } else {
        let _ = writeln!(out, "- **{}**:", if es { "Etiquetas" } else { "Labels" });
        for l in f.labels {
            let values = match l.values {
                Values::Text(meaning) => meaning.to_string(),
                Values::OneOf(values) => format!(
                    "{} {}",
                    if es { "uno de" } else { "one of" },
                    values
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let optional = if l.optional {
                if es {
                    " (opcional)"
                } else {
                    " (optional)"
                }
            } else {
                ""
            };
            let _ = writeln!(out, "  - `{}`{optional}: {values}", l.name);
        }
    }
    let scope = if es {
        f.scope.describe_es()
    } else {
        f.scope.describe()
    };
    let _ = writeln!(out, "- **{}**: {scope}", if es { "Dónde" } else { "Where" });
    let _ = writeln!(out, "- **PostgreSQL**: {}+", f.since);
    let present = match (es, f.when, f.when_es) {
        (false, Some(w), _) => w,
        (true, _, Some(w)) => w,
        (false, None, _) => "always",
        (true, _, None) => "siempre",
    };
    let _ = writeln!(
        out,
        "- **{}**: {present}",
        if es { "Presente" } else { "Present" }
    );
    let list = |set: Option<&BTreeSet<String>>| -> String {
        match set {
            Some(s) if !s.is_empty() => s
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            _ => "—".to_string(),
        }
    };
    let alerts = usage.alerts.get(&name).or_else(|| usage.alerts.get(f.name));
    let panels = usage.panels.get(&name).or_else(|| usage.panels.get(f.name));
    let _ = writeln!(
        out,
        "- **{}**: {}",
        if es { "Alertas" } else { "Alerts" },
        list(alerts)
    );
    let _ = writeln!(
        out,
        "- **{}**: {}",
        if es { "Paneles" } else { "Panels" },
        list(panels)
    );
    let _ = writeln!(out);
}

fn check_or_bless(path: &Path, generated: &str) -> Result<(), String> {
    if std::env::var_os("PGREPL_BLESS").is_some() {
        std::fs::write(path, generated).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()) + 1);
        return Err(format!(
            "{} is out of date (first difference at line {line}): run `make metrics-doc`",
            path.display()
        ));
    }
    Ok(())
}

#[test]
fn committed_reference_matches_the_descriptors() {
    let usage = usage();
    let mut errors = Vec::new();
    for (lang, path) in [
        (Lang::En, root().join("docs/metrics.md")),
        (Lang::Es, root().join("docs/es/metrics.md")),
    ] {
        if let Err(e) = check_or_bless(&path, &render(lang, &usage)) {
            errors.push(e);
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// Every family an alert rule or a dashboard names is one the exporter
/// declares (or a recording rule of ours).
#[test]
fn alerts_and_panels_name_only_declared_families() {
    let usage = usage();
    let declared: BTreeSet<String> = pg_replication_exporter::testing::families()
        .into_iter()
        .flat_map(|(_, f)| f.iter().map(Family::exposed_name))
        .collect();
    let unknown: Vec<&String> = usage
        .alerts
        .keys()
        .chain(usage.panels.keys())
        .filter(|n| n.starts_with("pgrepl_") && !declared.contains(*n))
        .collect();
    assert!(unknown.is_empty(), "undeclared families used: {unknown:?}");
}

/// Every family that scope and version make expected is something a test
/// can look for; an exporter-level family has no target.
#[test]
fn scopes_are_consistent() {
    for (_, families) in pg_replication_exporter::testing::families() {
        for f in families.iter() {
            let has_target = f.labels.iter().any(|l| l.name == "target");
            if f.scope == Scope::Exporter {
                assert!(!has_target, "{}", f.name);
            }
        }
    }
}

/// The contract: a family of the last release that the exporter no longer
/// declares (renamed or removed) must be named in CHANGELOG.md.
#[test]
fn released_families_are_kept_or_changelogged() {
    let released = std::fs::read_to_string(root().join("tests/fixtures/released_families.txt"))
        .expect("tests/fixtures/released_families.txt");
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).expect("CHANGELOG.md");
    let declared: BTreeSet<String> = pg_replication_exporter::testing::families()
        .into_iter()
        .flat_map(|(_, f)| f.iter().map(Family::exposed_name))
        .collect();
    let gone_silently: Vec<&str> = released
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|name| !declared.contains(*name) && !changelog.contains(name))
        .collect();
    assert!(
        gone_silently.is_empty(),
        "families of the last release renamed or removed without a CHANGELOG.md entry: {gone_silently:?}"
    );
}
