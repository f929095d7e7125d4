//! Static checks of the files that ship next to the exporter: Grafana
//! dashboards, the docker compose demo stack and the Kubernetes manifests.
//!
//! Runs offline. The Compose Specification check runs `check-jsonschema`
//! with the compose schema it vendors (`make test` installs it from PyPI).
//! The dashboard checks run on the committed dashboards and on a render of
//! the mixin with `mixin/tests/custom-config.libsonnet` (`mixin/render.py`,
//! which needs the jsonnet implementation `make deps` installs): another
//! job, a Kubernetes cluster label, another lag threshold and runbook site
//! must give dashboards that are just as valid, with stat panels that
//! colour at that render's alert thresholds.
//!
//! Allowed metric names: `tests/fixtures/metric_names.txt` (one family per
//! line) plus the recording rules of `alerts/*.rules.yml` plus the series
//! Prometheus itself writes (`ALERTS`, `ALERTS_FOR_STATE`, `up`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use promql_parser::parser::{self, Expr};
use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

/// Stand-in for `$__rate_interval` when parsing; every range in a dashboard
/// query must come out as exactly this duration.
const RATE_INTERVAL_STANDIN: &str = "4321s";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// Runbook links of the committed dashboards: the default
/// `runbookURLPattern` of `mixin/config.libsonnet` without its `%s`.
const RUNBOOK_PREFIX: &str =
    "https://github.com/pg-replication-exporter/pg_replication_exporter/blob/main/docs/runbooks.md#";

/// One rendering of the mixin: its root directory (holding `alerts/` and
/// `dashboards/`) and the prefix of its runbook links.
struct Render {
    dir: PathBuf,
    runbook_prefix: String,
    _tmp: Option<tempfile::TempDir>,
}

/// The committed files, and a fresh render with the test's custom config.
fn renders() -> Vec<Render> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = Command::new("python3")
        .arg(root().join("mixin/render.py"))
        .arg("--config")
        .arg(root().join("mixin/tests/custom-config.libsonnet"))
        .arg("--out")
        .arg(tmp.path())
        .output()
        .expect("python3 is needed to render the mixin (mixin/render.py)");
    assert!(
        out.status.success(),
        "mixin/render.py with mixin/tests/custom-config.libsonnet failed (make deps installs its jsonnet):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    vec![
        Render {
            dir: root(),
            runbook_prefix: RUNBOOK_PREFIX.to_string(),
            _tmp: None,
        },
        Render {
            dir: tmp.path().to_path_buf(),
            runbook_prefix: "https://wiki.example.com/runbooks/".to_string(),
            _tmp: Some(tmp),
        },
    ]
}

fn dashboards_in(dir: &Path) -> Vec<(PathBuf, Json)> {
    let files = files_with_suffix(&dir.join("dashboards"), ".json");
    assert!(!files.is_empty(), "no {}/dashboards/*.json", dir.display());
    files
        .into_iter()
        .map(|p| {
            let j: Json = serde_json::from_str(&read(&p))
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display()));
            (p, j)
        })
        .collect()
}

fn rule_files() -> Vec<(PathBuf, Yaml)> {
    rule_files_in(&root())
}

fn rule_files_in(dir: &Path) -> Vec<(PathBuf, Yaml)> {
    files_with_suffix(&dir.join("alerts"), ".rules.yml")
        .into_iter()
        .map(|p| {
            let y: Yaml = yaml_serde::from_str(&read(&p))
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", p.display()));
            (p, y)
        })
        .collect()
}

fn rules_in(dir: &Path) -> Vec<Yaml> {
    let mut out = Vec::new();
    for (_, doc) in rule_files_in(dir) {
        for group in doc["groups"].as_sequence().cloned().unwrap_or_default() {
            out.extend(group["rules"].as_sequence().cloned().unwrap_or_default());
        }
    }
    out
}

fn allowed_metric_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = read(&root().join("tests/fixtures/metric_names.txt"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    for rule in rules_in(&root()) {
        if let Some(r) = rule["record"].as_str() {
            names.insert(r.to_string());
        }
    }
    for builtin in ["ALERTS", "ALERTS_FOR_STATE", "up"] {
        names.insert(builtin.to_string());
    }
    names
}

/// Replace Grafana variables with values that keep the query valid PromQL.
fn substitute_grafana_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        if chars.peek() == Some(&'{') {
            chars.next();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                name.push(c);
            }
            // ${var:format}
            if let Some(i) = name.find(':') {
                name.truncate(i);
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
        }
        let value = match name.as_str() {
            "__rate_interval" => RATE_INTERVAL_STANDIN,
            "__interval" | "__range" => "5m",
            "__interval_ms" | "__range_ms" => "300000",
            "__range_s" => "300",
            "" => "$",
            _ => "demo",
        };
        out.push_str(value);
    }
    out
}

fn parse_promql(expr: &str, context: &str) -> Expr {
    let substituted = substitute_grafana_variables(expr);
    parser::parse(&substituted)
        .unwrap_or_else(|e| panic!("{context}: invalid PromQL: {e}\n  query: {expr}"))
}

#[derive(Default)]
struct Walk {
    metrics: BTreeSet<String>,
    ranges: Vec<std::time::Duration>,
}

fn walk(expr: &Expr, w: &mut Walk) {
    match expr {
        Expr::Aggregate(a) => {
            walk(&a.expr, w);
            if let Some(p) = &a.param {
                walk(p, w);
            }
        }
        Expr::Unary(u) => walk(&u.expr, w),
        Expr::Binary(b) => {
            walk(&b.lhs, w);
            walk(&b.rhs, w);
        }
        Expr::Paren(p) => walk(&p.expr, w),
        Expr::Subquery(s) => {
            w.ranges.push(s.range);
            walk(&s.expr, w);
        }
        Expr::VectorSelector(vs) => selector_names(vs, w),
        Expr::MatrixSelector(ms) => {
            w.ranges.push(ms.range);
            selector_names(&ms.vs, w);
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                walk(a, w);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_names(vs: &promql_parser::parser::VectorSelector, w: &mut Walk) {
    if let Some(n) = &vs.name {
        w.metrics.insert(n.clone());
    }
    for m in &vs.matchers.matchers {
        if m.name == "__name__" {
            w.metrics.insert(m.value.clone());
        }
    }
}

/// Value of an expression made of number literals only.
fn const_value(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::NumberLiteral(n) => Some(n.val),
        Expr::Paren(p) => const_value(&p.expr),
        Expr::Unary(u) => const_value(&u.expr).map(|v| -v),
        Expr::Binary(b) => {
            let (l, r) = (const_value(&b.lhs)?, const_value(&b.rhs)?);
            match b.op.to_string().as_str() {
                "+" => Some(l + r),
                "-" => Some(l - r),
                "*" => Some(l * r),
                "/" => Some(l / r),
                "%" => Some(l % r),
                "^" => Some(l.powf(r)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every maximal constant sub-expression of a rule: its thresholds.
fn constants(expr: &Expr, out: &mut Vec<f64>) {
    if let Some(v) = const_value(expr) {
        out.push(v);
        return;
    }
    match expr {
        Expr::Aggregate(a) => {
            constants(&a.expr, out);
            if let Some(p) = &a.param {
                constants(p, out);
            }
        }
        Expr::Unary(u) => constants(&u.expr, out),
        Expr::Binary(b) => {
            constants(&b.lhs, out);
            constants(&b.rhs, out);
        }
        Expr::Paren(p) => constants(&p.expr, out),
        Expr::Subquery(s) => constants(&s.expr, out),
        Expr::Call(c) => {
            for a in &c.args.args {
                constants(a, out);
            }
        }
        _ => {}
    }
}

/// All panels, rows' nested panels included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

/// (context, PromQL) of every query: panel targets, annotations, variables.
fn queries(dashboard: &Json) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((
                    format!("panel '{}'", p["title"].as_str().unwrap_or("?")),
                    e.to_string(),
                ));
            }
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(e) = a["expr"].as_str() {
            out.push((
                format!("annotation '{}'", a["name"].as_str().unwrap_or("?")),
                e.to_string(),
            ));
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let q = match &v["query"] {
            Json::String(s) => s.clone(),
            Json::Object(o) => o
                .get("query")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
            _ => String::new(),
        };
        let ctx = format!("variable '{}'", v["name"].as_str().unwrap_or("?"));
        let q = q.trim();
        if let Some(inner) = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
        {
            // label_values(selector, label) or label_values(label)
            if let Some(i) = inner.rfind(',') {
                out.push((ctx, inner[..i].trim().to_string()));
            }
        } else if let Some(inner) = q
            .strip_prefix("query_result(")
            .and_then(|s| s.strip_suffix(')'))
        {
            out.push((ctx, inner.to_string()));
        } else if !q.is_empty() {
            panic!("{ctx}: unsupported variable query {q:?}");
        }
    }
    out
}

/// The alert names (lower case) whose runbooks a panel links to.
fn runbook_anchors(p: &Json, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in p["links"].as_array().into_iter().flatten() {
        let url = l["url"].as_str().unwrap_or("");
        if let Some(anchor) = url.strip_prefix(prefix) {
            out.push(anchor.to_string());
        }
    }
    out
}

fn alert_names_in(dir: &Path) -> BTreeSet<String> {
    rules_in(dir)
        .iter()
        .filter_map(|r| r["alert"].as_str().map(String::from))
        .collect()
}

/// Check every `"datasource"` in the dashboard: only the template variable
/// or Grafana's built-in annotation source, never a fixed uid.
fn check_datasources(value: &Json, path: &str, errors: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if k == "datasource" {
                    let ok = match v {
                        Json::String(s) => s == "${datasource}" || s == "$datasource",
                        Json::Object(o) => {
                            let uid = o.get("uid").and_then(Json::as_str).unwrap_or("");
                            let ty = o.get("type").and_then(Json::as_str).unwrap_or("");
                            uid == "${datasource}"
                                || uid == "$datasource"
                                || (ty == "grafana" && uid == "-- Grafana --")
                        }
                        _ => false,
                    };
                    if !ok {
                        errors.push(format!("{here}: hard-coded datasource {v}"));
                    }
                }
                check_datasources(v, &here, errors);
            }
        }
        Json::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                check_datasources(v, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[test]
fn dashboards_follow_conventions() {
    let mut errors = Vec::new();
    for render in renders() {
        check_conventions(&render, &mut errors);
    }
    assert!(
        errors.is_empty(),
        "dashboard convention errors:\n  {}",
        errors.join("\n  ")
    );
}

fn check_conventions(render: &Render, errors: &mut Vec<String>) {
    let mut uids = BTreeSet::new();
    for (path, d) in dashboards_in(&render.dir) {
        let name = path.display().to_string();
        let uid = d["uid"].as_str().unwrap_or("");
        if uid.is_empty()
            || uid.len() > 40
            || !uid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(format!("{name}: bad uid {uid:?}"));
        }
        if !uids.insert(uid.to_string()) {
            errors.push(format!("{name}: uid {uid} used twice"));
        }
        if d["id"] != Json::Null {
            errors.push(format!("{name}: id must be null"));
        }
        if d["schemaVersion"].as_u64().unwrap_or(0) < 39 {
            errors.push(format!(
                "{name}: schemaVersion {} is older than Grafana 11",
                d["schemaVersion"]
            ));
        }
        if d["title"].as_str().unwrap_or("").is_empty() {
            errors.push(format!("{name}: no title"));
        }

        let vars: BTreeMap<String, &Json> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap_or("").to_string(), v))
            .collect();
        match vars.get("datasource") {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            _ => errors.push(format!(
                "{name}: no `datasource` variable of type datasource (prometheus)"
            )),
        }
        if !vars.contains_key("cluster") {
            errors.push(format!("{name}: no `cluster` variable"));
        }
        for (var, all) in [("cluster", ".*"), ("target", ".+")] {
            if let Some(v) = vars.get(var) {
                if v["multi"] != true || v["includeAll"] != true || v["allValue"] != all {
                    errors.push(format!(
                        "{name}: variable {var} must be multi-select with All = {all}"
                    ));
                }
            }
        }

        check_datasources(&d, &name, errors);

        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("?");
            if !ids.insert(p["id"].as_u64().unwrap_or(0)) {
                errors.push(format!("{name}: panel id {} used twice", p["id"]));
            }
            if p["gridPos"]["w"].as_u64().unwrap_or(0) == 0 {
                errors.push(format!("{name}: panel '{title}' has no gridPos"));
            }
            if p["type"] == "row" {
                continue;
            }
            if p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("")
                .is_empty()
            {
                errors.push(format!("{name}: panel '{title}' has no unit"));
            }
            if p["targets"].as_array().is_none_or(Vec::is_empty) {
                errors.push(format!("{name}: panel '{title}' has no query"));
            }
            if p["description"].as_str().unwrap_or("").is_empty() {
                errors.push(format!("{name}: panel '{title}' has no description"));
            }
            // A stat panel with more than one colour step is an alerting panel.
            let steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                .as_array()
                .map_or(0, Vec::len);
            if p["type"] == "stat"
                && steps > 1
                && runbook_anchors(p, &render.runbook_prefix).is_empty()
            {
                errors.push(format!(
                    "{name}: alerting stat panel '{title}' links to no runbook"
                ));
            }
        }
    }
}

#[test]
fn dashboard_queries_are_valid_promql_on_known_metrics() {
    let allowed = allowed_metric_names();
    let standin = RATE_INTERVAL_STANDIN
        .trim_end_matches('s')
        .parse::<u64>()
        .unwrap();
    let mut errors = Vec::new();
    let mut count = 0;
    let renders = renders();
    for (path, d) in renders.iter().flat_map(|r| dashboards_in(&r.dir)) {
        let name = path.display().to_string();
        for (ctx, q) in queries(&d) {
            count += 1;
            let expr = parse_promql(&q, &format!("{name}: {ctx}"));
            let mut w = Walk::default();
            walk(&expr, &mut w);
            if w.metrics.is_empty() {
                errors.push(format!("{name}: {ctx}: query names no metric: {q}"));
            }
            for m in &w.metrics {
                if !allowed.contains(m) {
                    errors.push(format!("{name}: {ctx}: unknown metric {m}"));
                }
            }
            for r in &w.ranges {
                if r.as_secs() != standin || r.subsec_nanos() != 0 {
                    errors.push(format!(
                        "{name}: {ctx}: fixed range {r:?} instead of $__rate_interval: {q}"
                    ));
                }
            }
        }
    }
    assert!(count > 0, "no queries found");
    assert!(
        errors.is_empty(),
        "dashboard query errors:\n  {}",
        errors.join("\n  ")
    );
}

/// Panels link to runbooks of existing alerts, and stat panels colour at
/// the thresholds of the alerts they link to. Both come from one `_config`
/// in the mixin; checking a render with other thresholds proves the panels
/// and the alerts read the same keys.
#[test]
fn dashboard_runbook_links_and_thresholds_match_alerts() {
    let mut errors = Vec::new();
    for render in renders() {
        check_links_and_thresholds(&render, &mut errors);
    }
    assert!(
        errors.is_empty(),
        "runbook/threshold errors:\n  {}",
        errors.join("\n  ")
    );
}

fn check_links_and_thresholds(render: &Render, errors: &mut Vec<String>) {
    let alerts = alert_names_in(&render.dir);
    assert!(
        !alerts.is_empty(),
        "no alerts in {}/alerts/*.rules.yml",
        render.dir.display()
    );
    let runbooks = std::fs::read_to_string(root().join("docs/runbooks.md")).ok();
    let headings: BTreeSet<String> = runbooks
        .iter()
        .flat_map(|t| t.lines())
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            // GitHub anchor: lower case, punctuation dropped, spaces to dashes
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();

    // Constants of every rule of each alert.
    let mut consts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for rule in rules_in(&render.dir) {
        if let (Some(a), Some(e)) = (rule["alert"].as_str(), rule["expr"].as_str()) {
            let expr = parse_promql(e, &format!("alert {a}"));
            constants(&expr, consts.entry(a.to_lowercase()).or_default());
        }
    }

    for (path, d) in dashboards_in(&render.dir) {
        let name = path.display().to_string();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or("?");
            let anchors = runbook_anchors(p, &render.runbook_prefix);
            for a in &anchors {
                if !alerts.iter().any(|n| n.to_lowercase() == *a) {
                    errors.push(format!(
                        "{name}: '{title}' links to runbook of unknown alert #{a}"
                    ));
                }
                if runbooks.is_some() && !headings.contains(a) {
                    errors.push(format!(
                        "{name}: '{title}': docs/runbooks.md has no section #{a}"
                    ));
                }
            }
            if p["type"] != "stat" || anchors.is_empty() {
                continue;
            }
            // Stat thresholds equal alert thresholds: each step value is one
            // of the constants of the linked alerts (or that plus one, for a
            // strict `>` on a count), or 1 for "count of things in a bad state".
            let known: Vec<f64> = anchors
                .iter()
                .flat_map(|a| consts.get(a).cloned().unwrap_or_default())
                .collect();
            for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let Some(v) = s["value"].as_f64() else {
                    continue;
                };
                let matches = |x: f64| {
                    known
                        .iter()
                        .any(|k| (k - x).abs() <= 1e-9 * k.abs().max(1.0))
                };
                if !(v == 1.0 || matches(v) || matches(v - 1.0)) {
                    errors.push(format!(
                        "{name}: stat '{title}' threshold {v} is no threshold of {anchors:?} ({known:?})"
                    ));
                }
            }
        }
    }
}

fn compose() -> Yaml {
    let mut y: Yaml = yaml_serde::from_str(&read(&root().join("docker-compose.yml")))
        .expect("docker-compose.yml is not valid YAML");
    y.apply_merge()
        .expect("docker-compose.yml: YAML merge keys");
    y
}

#[test]
fn compose_file_validates_against_compose_spec() {
    // check-jsonschema ships (vendors) the Compose Specification schema, so
    // the check needs nothing outside the repository; `make test` installs it.
    let out = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(root().join("docker-compose.yml"))
        .output()
        .expect("check-jsonschema is needed to validate docker-compose.yml (pip install check-jsonschema; make test installs it)");
    assert!(
        out.status.success(),
        "docker-compose.yml does not validate against the Compose Specification:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_mounts_builds_and_ports_exist() {
    let c = compose();
    let root = root();
    let mut errors = Vec::new();
    let check_path = |what: &str, p: &str, errors: &mut Vec<String>| {
        if p.starts_with('/') {
            errors.push(format!("{what}: absolute host path {p}"));
        } else if !root.join(p).exists() {
            errors.push(format!("{what}: {p} does not exist in the repository"));
        }
    };
    let services = c["services"].as_mapping().expect("no services");
    assert!(services.len() >= 6, "compose stack is missing services");
    for (name, s) in services {
        let name = name.as_str().unwrap_or("?");
        for v in s["volumes"].as_sequence().into_iter().flatten() {
            match v {
                Yaml::String(spec) => {
                    let src = spec.split(':').next().unwrap_or("");
                    if src.starts_with('.') || src.starts_with('/') {
                        check_path(&format!("service {name} volume"), src, &mut errors);
                    } else if c["volumes"].get(src).is_none() {
                        errors.push(format!("service {name}: named volume {src} not declared"));
                    }
                }
                Yaml::Mapping(_) if v["type"] == "bind" => {
                    check_path(
                        &format!("service {name} volume"),
                        v["source"].as_str().unwrap_or(""),
                        &mut errors,
                    );
                }
                _ => {}
            }
        }
        let build = &s["build"];
        if !build.is_null() {
            let (ctx, file) = match build {
                Yaml::String(ctx) => (ctx.clone(), "Dockerfile".to_string()),
                _ => (
                    build["context"].as_str().unwrap_or(".").to_string(),
                    build["dockerfile"]
                        .as_str()
                        .unwrap_or("Dockerfile")
                        .to_string(),
                ),
            };
            check_path(
                &format!("service {name} build"),
                &format!("{ctx}/{file}"),
                &mut errors,
            );
        }
        for f in s["env_file"].as_sequence().into_iter().flatten() {
            check_path(
                &format!("service {name} env_file"),
                f.as_str().unwrap_or(""),
                &mut errors,
            );
        }
        for p in s["ports"].as_sequence().into_iter().flatten() {
            let p = p.as_str().unwrap_or("");
            if !p.starts_with("127.0.0.1:") {
                errors.push(format!(
                    "service {name}: port {p} not published on 127.0.0.1 only"
                ));
            }
        }
        if let Some(image) = s["image"].as_str() {
            if build.is_null() && (!image.contains(':') || image.ends_with(":latest")) {
                errors.push(format!("service {name}: image {image} is not pinned"));
            }
        }
        if s["profiles"].is_null() && s["healthcheck"].is_null() {
            errors.push(format!("service {name}: no healthcheck"));
        }
        if let Some(deps) = s["depends_on"].as_mapping() {
            for (dep, cond) in deps {
                let dep = dep.as_str().unwrap_or("?");
                if services.get(dep).is_none() {
                    errors.push(format!("service {name}: depends on unknown service {dep}"));
                }
                if cond["condition"].is_null() {
                    errors.push(format!("service {name}: depends_on {dep} has no condition"));
                }
            }
        }
        for sec in s["secrets"].as_sequence().into_iter().flatten() {
            let sec = sec
                .as_str()
                .or_else(|| sec["source"].as_str())
                .unwrap_or("?");
            if c["secrets"].get(sec).is_none() {
                errors.push(format!("service {name}: secret {sec} not declared"));
            }
        }
    }
    for section in ["secrets", "configs"] {
        for (k, v) in c[section].as_mapping().into_iter().flatten() {
            if let Some(f) = v["file"].as_str() {
                check_path(
                    &format!("{section}.{}", k.as_str().unwrap_or("?")),
                    f,
                    &mut errors,
                );
            }
        }
    }
    // The demo's Prometheus loads the rule files of alerts/ and scrapes the
    // exporter service.
    let prom: Yaml = yaml_serde::from_str(&read(&root.join("docker/prometheus/prometheus.yml")))
        .expect("docker/prometheus/prometheus.yml");
    let rule_globs: Vec<&str> = prom["rule_files"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Yaml::as_str)
        .collect();
    if !rule_globs
        .iter()
        .any(|g| g.starts_with("/etc/prometheus/rules/"))
    {
        errors.push("prometheus.yml does not load /etc/prometheus/rules (./alerts)".into());
    }
    if files_with_suffix(&root.join("alerts"), ".rules.yml").is_empty() {
        errors.push("alerts/ holds no *.rules.yml for the demo's Prometheus".into());
    }
    let scrapes = yaml_serde::to_string(&prom["scrape_configs"]).unwrap();
    if !scrapes.contains("exporter:9839") || services.get("exporter").is_none() {
        errors.push("prometheus.yml does not scrape the exporter service".into());
    }
    assert!(
        errors.is_empty(),
        "docker-compose.yml errors:\n  {}",
        errors.join("\n  ")
    );
}

fn k8s_docs() -> Vec<(PathBuf, Yaml)> {
    let mut out = Vec::new();
    for p in files_with_suffix(&root().join("deploy/kubernetes"), ".yaml") {
        let text = read(&p);
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let y = <Yaml as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", p.display()));
            if !y.is_null() {
                out.push((p.clone(), y));
            }
        }
    }
    out
}

#[test]
fn prometheusrule_matches_alert_rules() {
    let mut expected = Vec::new();
    for (_, doc) in rule_files() {
        expected.extend(doc["groups"].as_sequence().cloned().unwrap_or_default());
    }
    let rules: Vec<Yaml> = k8s_docs()
        .into_iter()
        .map(|(_, y)| y)
        .filter(|y| y["kind"] == "PrometheusRule")
        .collect();
    assert_eq!(
        rules.len(),
        1,
        "expected exactly one PrometheusRule in deploy/kubernetes"
    );
    let pr = &rules[0];
    assert_eq!(pr["apiVersion"], "monitoring.coreos.com/v1");
    let actual = pr["spec"]["groups"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        actual.len(),
        expected.len(),
        "PrometheusRule has {} groups, alerts/ has {}: run `make mixin`",
        actual.len(),
        expected.len()
    );
    for (a, e) in actual.iter().zip(&expected) {
        assert!(
            a == e,
            "PrometheusRule group {:?} differs from alerts/: run `make mixin`",
            e["name"]
        );
    }
}

#[test]
fn kubernetes_sidecar_and_podmonitor_fit_together() {
    let docs = k8s_docs();
    let find = |kind: &str| -> Vec<&Yaml> {
        docs.iter()
            .map(|(_, y)| y)
            .filter(|y| y["kind"] == kind)
            .collect()
    };
    let sts = find("StatefulSet");
    let pm = find("PodMonitor");
    assert_eq!(pm.len(), 1, "one PodMonitor");
    assert!(!sts.is_empty(), "a StatefulSet with the sidecar");
    let pm = pm[0];
    let selector = pm["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("PodMonitor matchLabels");
    let port = pm["spec"]["podMetricsEndpoints"][0]["port"]
        .as_str()
        .expect("PodMonitor port name");
    let mut matched = false;
    for s in sts {
        let labels = &s["spec"]["template"]["metadata"]["labels"];
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            continue;
        }
        matched = true;
        let containers = s["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap();
        assert!(
            containers.len() >= 2,
            "exporter must run as a sidecar next to postgres"
        );
        let exporter = containers
            .iter()
            .find(|c| {
                c["ports"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|p| p["name"] == port)
            })
            .unwrap_or_else(|| panic!("no container exposes port {port}"));
        assert_eq!(exporter["ports"][0]["containerPort"].as_u64(), Some(9839));
        assert_eq!(
            exporter["securityContext"]["runAsNonRoot"],
            Yaml::Bool(true)
        );
    }
    assert!(
        matched,
        "PodMonitor selects no pod template of deploy/kubernetes"
    );
    let kustomization: Yaml =
        yaml_serde::from_str(&read(&root().join("deploy/kubernetes/kustomization.yaml"))).unwrap();
    for r in kustomization["resources"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let r = r.as_str().unwrap();
        assert!(
            root().join("deploy/kubernetes").join(r).exists(),
            "kustomization resource {r} missing"
        );
    }
}
