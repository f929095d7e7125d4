//! The live topology page (`GET /`) in a real browser against a real
//! primary and streaming standby: headless Chromium loads the page, lets its
//! script fetch `api/v1/topology`, and the test reads the resulting DOM,
//! then takes a screenshot (`target/test-output/topology.png`).
//!
//! Needs Debian's `chromium` (`./scripts/install-deps.sh browser`, which
//! `make test` and CI run); without it the test fails rather than skips.

use crate::harness as common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str =
    "chromium is not installed: run `./scripts/install-deps.sh browser` (CI installs it)";

/// Where the screenshot goes, for people (and CI artifacts) to look at.
const SCREENSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/test-output/topology.png"
);

/// The Chromium binary: `PGREPL_TEST_CHROMIUM`, else `chromium` (Debian) or
/// `chromium-browser` on `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PGREPL_TEST_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{INSTALL_HINT}");
}

/// Runs headless Chromium on `url` with `extra` arguments, in a fresh
/// profile, and returns its stdout. Killed after two minutes.
fn headless(browser: &Path, extra: &[String], url: &str) -> String {
    let scratch = tempfile::tempdir().expect("temp dir");
    let profile = scratch.path().join("profile");
    fs::create_dir_all(&profile).expect("profile dir");
    let stdout_path = scratch.path().join("stdout");
    let stderr_path = scratch.path().join("stderr");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=5000")
        .args(extra)
        .arg(url)
        // Chromium's own variables would otherwise leak in from a desktop
        // session; a home of its own keeps it away from the user's.
        .env("HOME", scratch.path())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{INSTALL_HINT} ({}: {e})", browser.display()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {extra:?} {url} did not finish within 2 minutes:\n{}",
                fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {extra:?} {url} failed ({status}):\n{}",
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    stdout
}

/// The start tags named `tag` whose attributes include all of `attrs`,
/// each with the markup up to its closing tag (no nesting of `tag` inside).
fn elements<'a>(dom: &'a str, tag: &str, attrs: &[&str]) -> Vec<(&'a str, &'a str)> {
    let open = format!("<{tag} ");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        let from = &rest[i..];
        let Some(head_end) = from.find('>') else {
            break;
        };
        let head = &from[..=head_end];
        let body_end = from.find(&close).map_or(from.len(), |e| e + close.len());
        if attrs.iter().all(|a| head.contains(a)) {
            out.push((head, &from[..body_end]));
        }
        rest = &from[head_end..];
    }
    out
}

/// The value of attribute `name` in a start tag.
fn attr<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('"')?;
    Some(&head[start..start + len])
}

/// The text of an element: its markup without tags.
fn text_of(markup: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The cell of `class` in a row: its value in `data-bytes` and its text.
fn cell(row: &str, class: &str) -> (Option<f64>, String) {
    let (head, markup) = elements(row, "td", &[class])
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no `{class}` cell in row:\n{row}"));
    (
        attr(head, "data-bytes").and_then(|v| v.parse().ok()),
        text_of(markup),
    )
}

#[test]
fn topology_page_shows_the_pair_in_a_browser() {
    let browser = chromium();

    let pair = common::Pair::start("topo");
    let exporter = common::Exporter::start(&[
        ("primary", pair.primary.dsn()),
        ("standby1", pair.standby.dsn()),
    ]);

    // Replay paused while the primary writes: the standby falls behind by
    // a stable, non-zero amount that the page must show.
    pair.standby.psql("SELECT pg_wal_replay_pause()");
    pair.primary.write_wal(5000);
    exporter.wait_for(
        "standby1 to lag behind the primary",
        Duration::from_secs(30),
        |m| {
            // Both from the standby's own snapshot taken after the pause:
            // a lag computed against an older standby snapshot can be
            // non-zero before the pause is visible.
            m.get("pgrepl_replay_paused", &[("target", "standby1")]) == Some(1.0)
                && m.get(
                    "pgrepl_cluster_standby_lag_bytes",
                    &[("cluster", "main"), ("target", "standby1")],
                )
                .is_some_and(|v| v > 0.0)
        },
    );

    let html = exporter.get("/").expect("GET /");
    assert!(html.contains("href=\"/metrics\""), "no link to /metrics");
    assert!(html.contains("api/v1/topology"), "no link to the JSON API");
    assert!(html.contains("<noscript>"), "no <noscript> fallback");

    let url = exporter.url("/");
    let dom = headless(&browser, &["--dump-dom".to_string()], &url);
    let context = || format!("DOM:\n{dom}\nexporter log:\n{}", exporter.log_text());

    let banner = elements(&dom, "div", &["id=\"error-banner\""]);
    let (banner_head, banner_markup) = banner
        .first()
        .unwrap_or_else(|| panic!("no error banner element\n{}", context()));
    assert!(
        banner_head.contains("hidden"),
        "the error banner is visible: {}\n{}",
        text_of(banner_markup),
        context()
    );
    let status = elements(&dom, "span", &["id=\"status\""]);
    assert!(
        status
            .first()
            .is_some_and(|(_, m)| text_of(m).contains("Last updated")),
        "no `Last updated` time\n{}",
        context()
    );

    let clusters = elements(&dom, "section", &["data-cluster=\"main\""]);
    assert_eq!(clusters.len(), 1, "cluster `main` not shown\n{}", context());
    let (cluster_head, _) = clusters[0];
    assert_eq!(
        attr(cluster_head, "data-primaries"),
        Some("1"),
        "{}",
        context()
    );
    assert!(
        !cluster_head.contains("split-brain") && !cluster_head.contains("no-primary"),
        "cluster flagged as broken: {cluster_head}"
    );

    let primaries = elements(
        &dom,
        "div",
        &["data-target=\"primary\"", "data-role=\"primary\""],
    );
    assert_eq!(primaries.len(), 1, "primary not shown\n{}", context());

    // The primary's view: standby1 streaming from it.
    let walsenders = elements(&dom, "tr", &["data-application-name=\"standby1\""]);
    assert_eq!(
        walsenders.len(),
        1,
        "no walsender row for standby1\n{}",
        context()
    );
    assert!(
        text_of(walsenders[0].1).contains("streaming"),
        "walsender of standby1 not streaming: {}",
        walsenders[0].1
    );

    // The standby's own row: paused, with its lag.
    let rows = elements(
        &dom,
        "tr",
        &["data-target=\"standby1\"", "data-role=\"standby\""],
    );
    assert_eq!(rows.len(), 1, "standby1 not shown\n{}", context());
    let (row_head, row) = rows[0];
    assert_eq!(
        attr(row_head, "data-paused"),
        Some("true"),
        "standby1 not shown as paused: {row}"
    );
    let (lag, lag_text) = cell(row, "lag-bytes");
    let lag = lag.unwrap_or_else(|| panic!("standby1 has no lag value: {row}"));
    assert!(lag > 0.0, "standby1 lag is {lag}: {row}");
    let lag_text = lag_text.trim();
    assert!(
        lag_text.ends_with('B') && !lag_text.starts_with('0'),
        "standby1 lag not humanized or zero: {lag_text:?}"
    );
    let text = text_of(row);
    assert!(text.contains("paused"), "no paused flag in {text:?}");
    assert!(
        text.contains("streaming"),
        "WAL receiver not streaming: {text:?}"
    );

    // The screenshot, for a person to look at.
    let shot = PathBuf::from(SCREENSHOT);
    fs::create_dir_all(shot.parent().expect("parent")).expect("create test-output dir");
    let _ = fs::remove_file(&shot);
    headless(
        &browser,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_string(),
        ],
        &url,
    );
    let png =
        fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        shot.display()
    );
    let width = u32::from_be_bytes(png[16..20].try_into().expect("IHDR width"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("IHDR height"));
    assert_eq!((width, height), (1280, 900), "screenshot size");
    // A blank page of that size compresses to a few KiB; tables and text
    // take tens.
    assert!(
        png.len() > 20_000,
        "screenshot is only {} bytes: blank page?",
        png.len()
    );
    eprintln!("topology screenshot: {}", shot.display());
}

#[test]
fn topology_page_shows_a_cascade_as_a_tree() {
    let browser = chromium();
    let topo = common::Topology::start(
        "topo-cascade",
        "",
        &[
            common::StandbySpec::direct("standby1"),
            common::StandbySpec::new("standby2", "standby1", ""),
        ],
    );
    let exporter = common::Exporter::start(&topo.targets());
    exporter.wait_for("the cascade connected", Duration::from_secs(30), |m| {
        m.get(
            "pgrepl_cluster_expected_standby_connected",
            &[("standby", "standby2")],
        ) == Some(1.0)
    });
    let dom = headless(&browser, &["--dump-dom".to_string()], &exporter.url("/"));
    let context = || format!("DOM:\n{dom}");
    // The tree: every member is a node, primary first.
    let nodes: Vec<&str> = elements(&dom, "li", &["class=\"tree-node\""])
        .iter()
        .filter_map(|(head, _)| attr(head, "data-target"))
        .collect();
    assert_eq!(nodes, ["primary", "standby1", "standby2"], "{}", context());
    // standby2's node sits inside standby1's list item.
    let standby1_at = dom.find("data-target=\"standby1\" data-role").unwrap();
    let standby2_at = dom
        .find("class=\"tree-node\" data-target=\"standby2\"")
        .unwrap();
    let nested = dom[standby1_at..standby2_at].matches("</li>").count() == 0;
    assert!(
        nested,
        "standby2 is not under standby1 in the tree\n{}",
        context()
    );
    // The standbys table: standby2 right after standby1, its chain shown.
    let rows: Vec<(&str, &str)> = elements(&dom, "tr", &["data-role=\"standby\""]);
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|(head, _)| attr(head, "data-target"))
        .collect();
    assert_eq!(names, ["standby1", "standby2"], "{}", context());
    let (_, upstream) = cell(rows[1].1, "upstream");
    assert_eq!(upstream, "primary → standby1", "{}", context());
    assert!(
        !dom.contains("<li class=\"missing-standby\""),
        "{}",
        context()
    );
}
