//! The documentation, run: every code block of every Markdown file of the
//! repository (English and Spanish alike) is executed or checked, as rustdoc
//! runs doc comments, so that a user who follows the text literally gets
//! what it promises. README.md, "Development", documents the rules; in short:
//!
//! - `toml`: the exporter starts with it (`refused`: exits 2 with one line);
//! - `yaml`: `promtool check config` / `amtool check-config` (fragments
//!   wrapped), and a scrape job of the exporter uses the rules' job;
//! - `sql`: runs on a real primary and/or standby (marker `primary`,
//!   `standby`, `pg>=N`);
//! - `sh`/`bash`: marker `run` (executed) or `illustrative`;
//! - `jsonnet`: marker `file NAME` (for the `run` blocks after it) or
//!   `illustrative`;
//! - `haproxy`: routes writes and reads through a real HAProxy;
//! - the multi-target probe snippet, scraped by a real Prometheus with the
//!   shipped rules, fires nothing on a healthy primary and standby;
//! - the migration guide's table and relabel snippet hold against Debian's
//!   postgres_exporter (0.11.1).
//!
//! A marker is an HTML comment on the line just before the fence:
//! `<!-- doctest: WORDS -->`.

use crate::harness as common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::{binary, http_get, Proc};
use common::{free_port, wait_until, Exporter, Metrics, Pair, Pg};
use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// The block extractor
// ---------------------------------------------------------------------------

const SHELL: [&str; 4] = ["sh", "bash", "shell", "console"];
/// Languages shown to be read, never run.
const PROSE: [&str; 3] = ["text", "promql", "json"];
const CHECKED: [&str; 6] = ["sql", "toml", "yaml", "yml", "jsonnet", "haproxy"];

/// `<!-- doctest: WORDS -->` on the line before a fence.
#[derive(Debug, Clone, Default, PartialEq)]
struct Marker {
    words: Vec<String>,
    /// `illustrative`: not run; the text after the word says why.
    illustrative: bool,
}

impl Marker {
    fn parse(inner: &str) -> Result<Marker, String> {
        let inner = inner.trim();
        if let Some(rest) = inner.strip_prefix("illustrative") {
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                return Ok(Marker {
                    words: Vec::new(),
                    illustrative: true,
                });
            }
        }
        let words: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            match w {
                "refused" | "primary" | "standby" | "run" => {}
                "file" => {
                    let name = words.get(i + 1).ok_or("`file` needs a NAME")?;
                    if name.contains('/') || name.starts_with('.') {
                        return Err(format!("`file {name}`: a plain file name, please"));
                    }
                    i += 1;
                }
                _ if w.starts_with("pg>=") => {
                    w[4..]
                        .parse::<u32>()
                        .map_err(|_| format!("`{w}`: expected pg>=MAJOR"))?;
                }
                _ => {
                    return Err(format!(
                        "unknown doctest marker word `{w}` (known: illustrative, refused, primary, standby, pg>=N, run, file NAME)"
                    ))
                }
            }
            i += 1;
        }
        Ok(Marker {
            words,
            illustrative: false,
        })
    }

    fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }

    fn file(&self) -> Option<&str> {
        let i = self.words.iter().position(|w| w == "file")?;
        self.words.get(i + 1).map(String::as_str)
    }

    fn min_pg(&self) -> Option<u32> {
        self.words
            .iter()
            .find_map(|w| w.strip_prefix("pg>=")?.parse().ok())
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && !self.illustrative
    }
}

/// One fenced code block.
#[derive(Debug, Clone)]
struct Block {
    file: String,
    /// Line of the opening fence, 1-based.
    line: usize,
    lang: String,
    marker: Marker,
    /// The content, without the fence's indentation.
    text: String,
    /// The prose between the previous block or heading and this block.
    before: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// Every Markdown file of the repository (relative paths, sorted), outside
/// hidden directories and what `.gitignore` keeps out (build output, the
/// benchmark's results).
fn markdown_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        const UNTRACKED: [&str; 4] = ["target", "dist", "node_modules", "bench/out"];
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                let rel = path.strip_prefix(base).expect("under the root");
                if UNTRACKED.iter().any(|u| rel == Path::new(u)) {
                    continue;
                }
                walk(&path, base, out);
            } else if name.ends_with(".md") {
                let rel = path.strip_prefix(base).expect("under the root");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root(), &mut out);
    out.sort();
    out
}

/// The fenced blocks of a Markdown text (CommonMark fences of ``` or ~~~,
/// possibly indented, as in list items).
fn extract(file: &str, text: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut prose_start = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let fence_char = trimmed.chars().next();
        let fence_len = trimmed
            .chars()
            .take_while(|c| Some(*c) == fence_char)
            .count();
        if !matches!(fence_char, Some('`') | Some('~')) || fence_len < 3 {
            if trimmed.starts_with('#') {
                prose_start = i + 1;
            }
            i += 1;
            continue;
        }
        let fence: String = std::iter::repeat_n(fence_char.unwrap_or('`'), fence_len).collect();
        let lang = trimmed[fence_len..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let marker_line = i.checked_sub(1).map(|p| lines[p].trim());
        let marker = match marker_line
            .and_then(|l| l.strip_prefix("<!-- doctest:"))
            .and_then(|l| l.strip_suffix("-->"))
        {
            Some(inner) => Marker::parse(inner).map_err(|e| format!("{file}:{}: {e}", i + 1))?,
            None => Marker::default(),
        };
        let before = lines[prose_start.min(i)..i].join("\n");
        let mut body = Vec::new();
        let mut j = i + 1;
        loop {
            let Some(l) = lines.get(j) else {
                return Err(format!("{file}:{}: the fence is never closed", i + 1));
            };
            let t = l.trim_start();
            if t.starts_with(&fence) && t.trim_end().chars().all(|c| Some(c) == fence_char) {
                break;
            }
            // Remove the fence's indentation (at most), as CommonMark does.
            let strip = l.len() - l.trim_start_matches(' ').len();
            body.push(&l[strip.min(indent)..]);
            j += 1;
        }
        out.push(Block {
            file: file.to_string(),
            line: i + 1,
            lang,
            marker,
            text: body.join("\n") + "\n",
            before,
        });
        i = j + 1;
        prose_start = i;
    }
    Ok(out)
}

fn all_blocks() -> Vec<Block> {
    let mut out = Vec::new();
    for file in markdown_files() {
        let blocks = extract(&file, &read(&file)).unwrap_or_else(|e| panic!("{e}"));
        out.extend(blocks);
    }
    out
}

/// Blocks of one language (`yml` counts as `yaml`) that are not illustrative.
fn blocks_of(lang: &str) -> Vec<Block> {
    all_blocks()
        .into_iter()
        .filter(|b| b.lang == lang || (lang == "yaml" && b.lang == "yml"))
        .filter(|b| !b.marker.illustrative)
        .collect()
}

/// What is wrong with a block's language and marker, if anything.
fn marker_problem(b: &Block) -> Option<String> {
    let m = &b.marker;
    let only = |allowed: &[&str]| -> Option<String> {
        m.words
            .iter()
            .filter(|w| !w.starts_with("pg>="))
            .find(|w| !allowed.contains(&w.as_str()) && m.file() != Some(w.as_str()))
            .map(|w| format!("`{w}` does not apply to a {} block", b.lang))
    };
    if b.lang.is_empty() {
        return Some(
            "a fence without a language: name it (`text` for what is neither run nor checked)"
                .into(),
        );
    }
    let lang = b.lang.as_str();
    if SHELL.contains(&lang) {
        if m.illustrative {
            return None;
        }
        if !m.has("run") {
            return Some(
                "a shell block must be marked `<!-- doctest: run -->` (the test runs it) or `<!-- doctest: illustrative -->`"
                    .into(),
            );
        }
        return only(&["run"]).or_else(|| {
            m.min_pg()
                .map(|_| "`pg>=` does not apply to a shell block".into())
        });
    }
    match lang {
        "sql" => {
            if m.illustrative {
                return None;
            }
            if !m.has("primary") && !m.has("standby") {
                return Some(
                    "an SQL block must say where it runs: `<!-- doctest: primary -->`, `standby`, both, or `illustrative`"
                        .into(),
                );
            }
            only(&["primary", "standby"])
        }
        "toml" => only(&["refused"]).or_else(|| {
            m.min_pg()
                .map(|_| "`pg>=` does not apply to a TOML block".into())
        }),
        "yaml" | "yml" => {
            if m.illustrative {
                return None;
            }
            if !m.is_empty() {
                return Some("a YAML block takes no marker but `illustrative`".into());
            }
            classify_yaml(&b.text).err()
        }
        "jsonnet" => {
            if m.illustrative || (m.file().is_some() && m.words.len() == 2) {
                None
            } else {
                Some(
                    "a jsonnet block must be `<!-- doctest: file NAME -->` (for a `run` block after it) or `illustrative`"
                        .into(),
                )
            }
        }
        "haproxy" => (!m.is_empty()).then(|| "a haproxy block takes no marker".into()),
        _ if PROSE.contains(&lang) => {
            (!m.is_empty()).then(|| format!("a `{lang}` block is never run: no marker"))
        }
        _ => Some(format!(
            "language `{lang}` is neither run nor known as prose (run: {SHELL:?}, {CHECKED:?}; prose: {PROSE:?})"
        )),
    }
}

#[test]
fn every_block_is_run_or_marked() {
    let blocks = all_blocks();
    assert!(blocks.len() > 150, "too few blocks found: {}", blocks.len());
    let problems: Vec<String> = blocks
        .iter()
        .filter_map(|b| marker_problem(b).map(|p| format!("{}: {p}", b.at())))
        .collect();
    assert!(
        problems.is_empty(),
        "documentation blocks the test cannot run (see README.md, Development):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_extractor_reads_fences_and_markers() {
    let text = "# T\n\nSome prose\nabout pgreplSelector:\n\n<!-- doctest: primary standby pg>=17 -->\n```sql\nSELECT 1;\n```\n\n- item\n\n  <!-- doctest: file x.jsonnet -->\n  ```jsonnet\n  { a: 1 }\n  ```\n\n````text\n```\n````\n<!-- doctest: illustrative (needs docker) -->\n~~~sh\ndocker ps\n~~~\n";
    let blocks = extract("t.md", text).expect("blocks");
    assert_eq!(blocks.len(), 4, "{blocks:?}");
    assert_eq!(blocks[0].lang, "sql");
    assert_eq!(blocks[0].line, 7);
    assert_eq!(blocks[0].text, "SELECT 1;\n");
    assert!(blocks[0].marker.has("primary") && blocks[0].marker.has("standby"));
    assert_eq!(blocks[0].marker.min_pg(), Some(17));
    assert!(blocks[0].before.contains("pgreplSelector"));
    assert_eq!(blocks[1].marker.file(), Some("x.jsonnet"));
    assert_eq!(blocks[1].text, "{ a: 1 }\n");
    assert_eq!(blocks[2].text, "```\n");
    assert!(blocks[3].marker.illustrative);
    assert_eq!(marker_problem(&blocks[3]), None);
    assert!(extract("t.md", "<!-- doctest: sometimes -->\n```sh\nx\n```\n").is_err());
    assert!(extract("t.md", "```sh\nx\n").is_err());
    let unmarked = &extract("t.md", "```sh\nls\n```\n").unwrap()[0];
    assert!(marker_problem(unmarked).is_some());
    let bare = &extract("t.md", "```\nls\n```\n").unwrap()[0];
    assert!(marker_problem(bare).is_some());
}

// ---------------------------------------------------------------------------
// TOML: the exporter's configuration loader
// ---------------------------------------------------------------------------

/// Targets appended to a TOML block that has none (documented in the README).
const TOML_WRAPPER: &str = "\n\n# appended by tests/it/docs_exec.rs\n[[targets]]\nname = \"pg1\"\ndsn = \"host=127.0.0.1 port=1 user=monitor dbname=postgres connect_timeout=1\"\ncluster = \"main\"\n\n[[targets]]\nname = \"pg2\"\ndsn = \"host=127.0.0.1 port=2 user=monitor dbname=postgres connect_timeout=1\"\ncluster = \"main\"\n";

/// The block as a configuration file: every `password_file` pointed at a
/// private scratch file, targets appended when there are none.
fn toml_as_config(block: &Block, dir: &Path) -> String {
    let secret = dir.join("password");
    fs::write(&secret, "doctest-password\n").expect("write password file");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut text = String::new();
    for line in block.text.lines() {
        let key = line.trim_start();
        if key.starts_with("password_file") && key.contains('=') {
            text.push_str(&format!("password_file = \"{}\"\n", secret.display()));
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    if !block.text.lines().any(|l| l.trim() == "[[targets]]") {
        text.push_str(TOML_WRAPPER);
    }
    text
}

/// Starts the exporter with `config`; `Ok` once it serves, `Err(stderr,
/// exit code)` when it exits first.
fn exporter_takes(config: &Path, dir: &Path) -> Result<(), (String, Option<i32>)> {
    let port = free_port();
    let log = dir.join("exporter.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_replication_exporter"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .arg("--config")
        .arg(config)
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    let mut child = cmd.spawn().expect("start the exporter");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err((fs::read_to_string(&log).unwrap_or_default(), status.code()));
        }
        if http_get(&format!("http://127.0.0.1:{port}/healthz"), &[]).is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err((
                format!(
                    "neither served nor exited in 20 s:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                ),
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn toml_blocks_are_loaded_or_refused_as_the_text_says() {
    let blocks = blocks_of("toml");
    assert!(blocks.len() >= 5, "too few TOML blocks: {}", blocks.len());
    let mut failures = Vec::new();
    for block in &blocks {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.toml");
        fs::write(&config, toml_as_config(block, dir.path())).expect("write config");
        let outcome = exporter_takes(&config, dir.path());
        match (block.marker.has("refused"), outcome) {
            (false, Ok(())) => {}
            (false, Err((log, code))) => failures.push(format!(
                "{}: the exporter refuses it (exit {code:?}):\n{log}",
                block.at()
            )),
            (true, Ok(())) => failures.push(format!(
                "{}: marked refused, but the exporter runs with it",
                block.at()
            )),
            (true, Err((log, code))) => {
                if code != Some(2) || log.trim().lines().count() != 1 {
                    failures.push(format!(
                        "{}: refused with exit {code:?} and {} lines, expected exit 2 and one line:\n{log}",
                        block.at(),
                        log.trim().lines().count()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// YAML: Prometheus and Alertmanager configurations
// ---------------------------------------------------------------------------

const PROMETHEUS_KEYS: [&str; 9] = [
    "global",
    "scrape_configs",
    "rule_files",
    "alerting",
    "remote_write",
    "remote_read",
    "storage",
    "scrape_config_files",
    "tracing",
];
const ALERTMANAGER_KEYS: [&str; 6] = [
    "route",
    "receivers",
    "inhibit_rules",
    "templates",
    "time_intervals",
    "mute_time_intervals",
];
const SCRAPE_FRAGMENT_KEYS: [&str; 2] = ["relabel_configs", "metric_relabel_configs"];

#[derive(Debug)]
enum YamlKind {
    /// A complete Prometheus configuration (fragments already wrapped).
    Prometheus(Yaml),
    Alertmanager,
}

/// What a YAML block is, by its top-level keys.
fn classify_yaml(text: &str) -> Result<YamlKind, String> {
    let doc: Yaml = yaml_serde::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let map = doc
        .as_mapping()
        .ok_or("a YAML block that is not a mapping: mark it `illustrative`")?;
    let keys: Vec<&str> = map.keys().filter_map(|k| k.as_str()).collect();
    let all_in = |set: &[&str]| keys.iter().all(|k| set.contains(k));
    if keys.iter().any(|k| ["route", "receivers"].contains(k))
        && keys
            .iter()
            .all(|k| ALERTMANAGER_KEYS.contains(k) || *k == "global")
    {
        return Ok(YamlKind::Alertmanager);
    }
    if all_in(&PROMETHEUS_KEYS) {
        return Ok(YamlKind::Prometheus(doc));
    }
    if all_in(&SCRAPE_FRAGMENT_KEYS) {
        // A scrape job's relabelling: wrapped in one job.
        let mut job = yaml_serde::Mapping::new();
        job.insert("job_name".into(), "doctest-fragment".into());
        let target: Yaml = yaml_serde::from_str("[{targets: ['127.0.0.1:9']}]").expect("yaml");
        job.insert("static_configs".into(), target);
        for (k, v) in map {
            job.insert(k.clone(), v.clone());
        }
        let mut config = yaml_serde::Mapping::new();
        config.insert(
            "scrape_configs".into(),
            Yaml::Sequence(vec![Yaml::Mapping(job)]),
        );
        return Ok(YamlKind::Prometheus(Yaml::Mapping(config)));
    }
    Err(format!(
        "YAML with top-level keys {keys:?} is neither a Prometheus configuration ({PROMETHEUS_KEYS:?}), a relabelling fragment ({SCRAPE_FRAGMENT_KEYS:?}) nor an Alertmanager one: mark it `illustrative`"
    ))
}

/// Scrape jobs of the exporter (port 9839) must be the job the shipped
/// rules select, unless the text before the block says to set
/// `pgreplSelector`.
fn job_problem(block: &Block, config: &Yaml) -> Option<String> {
    let jobs = config.get("scrape_configs")?.as_sequence()?;
    for job in jobs {
        let text = yaml_serde::to_string(job).unwrap_or_default();
        let name = job.get("job_name").and_then(Yaml::as_str).unwrap_or("");
        if text.contains(":9839")
            && name != "pg_replication_exporter"
            && !block.before.contains("pgreplSelector")
        {
            return Some(format!(
                "job `{name}` scrapes the exporter, but the shipped rules select job=\"pg_replication_exporter\"; rename it or say right before the block which `pgreplSelector` to render the rules with"
            ));
        }
    }
    None
}

fn run_tool(program: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn prometheus_and_alertmanager_blocks_pass_their_checkers() {
    let promtool = binary("PGREPL_TEST_PROMTOOL", "promtool");
    let amtool = binary("PGREPL_TEST_AMTOOL", "amtool");
    let blocks = blocks_of("yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (n, block) in blocks.iter().enumerate() {
        let file = dir.path().join(format!("block{n}.yml"));
        let outcome = match classify_yaml(&block.text) {
            Err(e) => Err(e),
            Ok(YamlKind::Alertmanager) => {
                fs::write(&file, &block.text).expect("write");
                run_tool(&amtool, &["check-config"], &file)
            }
            Ok(YamlKind::Prometheus(config)) => match job_problem(block, &config) {
                Some(p) => Err(p),
                None => {
                    fs::write(&file, yaml_serde::to_string(&config).expect("yaml")).expect("write");
                    run_tool(&promtool, &["check", "config"], &file)
                }
            },
        };
        checked += 1;
        if let Err(e) = outcome {
            failures.push(format!("{}: {e}", block.at()));
        }
    }
    assert!(checked >= 8, "too few YAML blocks checked: {checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// SQL: on a real primary and standby
// ---------------------------------------------------------------------------

/// Runs SQL as the superuser with `psql -f -`: statement by statement (as a
/// user pasting it would), stopping at the first error.
fn psql_file(pg: &Pg, sql: &str) -> Result<String, String> {
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-f", "-"])
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGOPTIONS", "-c statement_timeout=20s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Names in `sql` passed to `function('NAME'`.
fn literal_args(sql: &str, function: &str) -> Vec<String> {
    let re = regex::Regex::new(&format!(r"(?i){function}\s*\(\s*'([^']+)'")).expect("regex");
    re.captures_iter(sql).map(|c| c[1].to_string()).collect()
}

fn created_roles(sql: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"(?i)\bCREATE\s+(?:ROLE|USER)\s+"?([A-Za-z_][A-Za-z0-9_$]*)"?"#)
        .expect("regex");
    re.captures_iter(sql).map(|c| c[1].to_string()).collect()
}

/// The state a block expects (documented in the README): the slots it
/// drops exist, the slots and roles it creates do not (a slot it drops and
/// then creates again exists).
fn prepare(primary: &Pg, sql: &str) {
    let first = |function: &str, slot: &str| {
        regex::Regex::new(&format!(r"(?i){function}\s*\(\s*'{}'", regex::escape(slot)))
            .expect("regex")
            .find(sql)
            .map(|m| m.start())
    };
    let dropped = literal_args(sql, "pg_drop_replication_slot");
    let created = literal_args(sql, "pg_create_physical_replication_slot");
    for slot in &dropped {
        primary.psql(&format!(
            "SELECT pg_create_physical_replication_slot('{slot}') \
             WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{slot}')"
        ));
    }
    for slot in created.iter().filter(|slot| {
        let create = first("pg_create_physical_replication_slot", slot);
        let drop = first("pg_drop_replication_slot", slot);
        drop.is_none_or(|d| create.is_some_and(|c| c < d))
    }) {
        // An active slot (a standby streams through it) loses its walsender
        // first; the standby reconnects once the block created it again.
        let gone = wait_until(Duration::from_secs(20), || {
            let _ = primary.try_psql(&format!(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE slot_name = '{slot}' AND active_pid IS NOT NULL"
            ));
            primary
                .try_psql(&format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE slot_name = '{slot}'; \
                     SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"
                ))
                .map(|v| v.trim().ends_with('0'))
                .unwrap_or(false)
        });
        assert!(gone, "could not drop slot {slot} before a block creates it");
    }
    for role in created_roles(sql) {
        let exists = primary.psql(&format!(
            "SELECT count(*) FROM pg_roles WHERE rolname = '{role}'"
        ));
        if exists == "1" {
            primary.psql(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""));
        }
    }
}

/// `postgresql.auto.conf` as it was, then a reload: what a block changed
/// with ALTER SYSTEM does not leak into the next one.
struct AutoConf {
    files: Vec<(PathBuf, String)>,
}

impl AutoConf {
    fn save(servers: &[&Pg]) -> AutoConf {
        AutoConf {
            files: servers
                .iter()
                .map(|pg| {
                    let path = pg.data.join("postgresql.auto.conf");
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    (path, text)
                })
                .collect(),
        }
    }

    fn restore(&self, servers: &[&Pg]) {
        for (path, text) in &self.files {
            if fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
                fs::write(path, text).expect("restore postgresql.auto.conf");
            }
        }
        for pg in servers {
            let _ = pg.try_psql("SELECT pg_reload_conf()");
        }
    }
}

/// The newest PostgreSQL of the version cache at or above `major`.
fn newer_server(major: u32) -> Option<(u32, PathBuf)> {
    (major..=18)
        .rev()
        .find_map(|m| common::pg_installed(m).map(|bin| (m, bin)))
}

fn server_major(pg: &Pg) -> u32 {
    pg.psql("SELECT current_setting('server_version_num')::int / 10000")
        .parse()
        .expect("server_version_num")
}

/// Runs `blocks` on `pair`; failures as text.
fn run_sql_blocks(pair: &Pair, blocks: &[&Block]) -> Vec<String> {
    let servers = [&pair.primary, &pair.standby];
    let saved = AutoConf::save(&servers);
    let mut failures = Vec::new();
    for block in blocks {
        for (role, pg) in [("primary", &pair.primary), ("standby", &pair.standby)] {
            if !block.marker.has(role) {
                continue;
            }
            prepare(&pair.primary, &block.text);
            let outcome = psql_file(pg, &block.text);
            saved.restore(&servers);
            if let Err(e) = outcome {
                failures.push(format!("{} on the {role}: {e}", block.at()));
            }
        }
    }
    failures
}

/// The SQL blocks Debian's PostgreSQL can run (all but those marked with
/// a newer `pg>=N`), on it.
#[test]
fn sql_blocks_run_on_a_server_of_their_role() {
    let blocks = blocks_of("sql");
    assert!(blocks.len() >= 60, "too few SQL blocks: {}", blocks.len());
    let pair = Pair::start("docs-sql");
    let major = server_major(&pair.primary);
    let now: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.marker.min_pg().is_none_or(|m| m <= major))
        .collect();
    let failures = run_sql_blocks(&pair, &now);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The SQL blocks marked `pg>=N`, on the newest PostgreSQL of the version
/// cache (at least the highest N): those Debian's server may be too old
/// for run here.
#[test]
#[ignore = "needs the newest PostgreSQL from scripts/pg-versions.sh: make test-matrix"]
fn sql_blocks_for_newer_majors_run_on_them() {
    let blocks = blocks_of("sql");
    let versioned: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.marker.min_pg().is_some())
        .collect();
    let needed = versioned
        .iter()
        .filter_map(|b| b.marker.min_pg())
        .max()
        .expect("no SQL block is marked pg>=N: nothing for this test to run");
    let (m, bin) = newer_server(needed).unwrap_or_else(|| {
        panic!(
            "{} SQL blocks need PostgreSQL {needed} or later, not installed: run `scripts/pg-versions.sh {needed}`",
            versioned.len()
        )
    });
    let pair = Pair::start_cold_copy("docs-sql-new", &bin, m);
    let failures = run_sql_blocks(&pair, &versioned);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// Shell: `run` blocks, with the `file` blocks before them
// ---------------------------------------------------------------------------

/// A scratch directory linking the repository's top-level entries, so that
/// documented commands run "from the repository's root" write only here.
fn repo_scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in fs::read_dir(root()).expect("root").filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n.starts_with('.') || n == "target" || n == "dist" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).expect("symlink");
    }
    dir
}

/// Runs a document's `file` and `run` blocks in order in one scratch
/// directory; returns it for checks of what they wrote.
fn run_document(file: &str, failures: &mut Vec<String>) -> tempfile::TempDir {
    let dir = repo_scratch();
    let exporter_dir = Path::new(env!("CARGO_BIN_EXE_pg_replication_exporter"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        exporter_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for block in extract(file, &read(file)).expect("blocks") {
        if block.marker.illustrative {
            continue;
        }
        if let Some(name) = block.marker.file() {
            fs::write(dir.path().join(name), &block.text).expect("write file block");
            continue;
        }
        if !block.marker.has("run") {
            continue;
        }
        let mut cmd = Command::new("bash");
        common::without_harness_env(&mut cmd);
        let mut child = cmd
            .args(["-euo", "pipefail", "-c", &block.text])
            .current_dir(dir.path())
            .env("PATH", &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("output");
        if status.is_none_or(|s| !s.success()) {
            failures.push(format!(
                "{}: {}:\n{}\n{}{}",
                block.at(),
                status.map_or("timed out after 180 s".into(), |s| s.to_string()),
                block.text,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    dir
}

#[test]
fn run_blocks_run() {
    let mut failures = Vec::new();
    let mut documents = 0;
    for file in markdown_files() {
        let blocks = extract(&file, &read(&file)).expect("blocks");
        if !blocks.iter().any(|b| b.marker.has("run")) {
            continue;
        }
        documents += 1;
        let dir = run_document(&file, &mut failures);
        if file == "alerts/README.md" {
            // The exemption of one alert took: both severities of
            // PgReplStandbyLagBytesHigh skip the delayed standbys, nothing else.
            let rules =
                fs::read_to_string(dir.path().join("rendered/alerts/pg-replication.rules.yml"))
                    .unwrap_or_default();
            let exempt: Vec<&str> = rules
                .lines()
                .filter(|l| l.contains("application_name!~\"delayed_.*\""))
                .collect();
            if exempt.len() != 2
                || !exempt
                    .iter()
                    .all(|l| l.contains("pgrepl_standby_lag_bytes{"))
            {
                failures.push(format!(
                    "alerts/README.md: the rendered override exempts {exempt:?}, expected the two PgReplStandbyLagBytesHigh rules"
                ));
            }
        }
    }
    assert!(
        documents >= 4,
        "too few documents with run blocks: {documents}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// Copies of one example in both languages
// ---------------------------------------------------------------------------

/// A config without `#` comments and trailing blanks: what the two
/// languages must share.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find('#') {
            Some(i) => l[..i].trim_end(),
            None => l.trim_end(),
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The one block of each README (English, Spanish) that `pick` selects,
/// identical but for comments; the English one.
fn readme_example(what: &str, pick: impl Fn(&Block) -> bool) -> Block {
    let mut found = Vec::new();
    for file in ["README.md", "docs/es/README.md"] {
        let blocks: Vec<Block> = extract(file, &read(file))
            .expect("blocks")
            .into_iter()
            .filter(|b| pick(b))
            .collect();
        assert_eq!(
            blocks.len(),
            1,
            "{file}: expected one {what}, found {blocks:?}"
        );
        found.extend(blocks);
    }
    assert_eq!(
        without_comments(&found[0].text),
        without_comments(&found[1].text),
        "the {what} of README.md and docs/es/README.md differ (comments aside)"
    );
    found.swap_remove(0)
}

// ---------------------------------------------------------------------------
// The multi-target probe snippet, in a real Prometheus with the shipped rules
// ---------------------------------------------------------------------------

/// A real Prometheus with a configuration and the fast copy of a rule file.
struct Prometheus {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// `scrape` is the `scrape_configs:` part; the fast copy of `rules`
    /// (`alerts/e2e/make-fast-rules.sh`: every `for:` 2s), evaluated every
    /// second, is added when given.
    fn start(scrape: &str, rules: Option<&Path>) -> Prometheus {
        let bin = binary("PGREPL_TEST_PROMETHEUS", "prometheus");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        if let Some(rules) = rules {
            let fast = dir.path().join("fast.rules.yml");
            let status = Command::new("bash")
                .arg(root().join("alerts/e2e/make-fast-rules.sh"))
                .arg(rules)
                .arg(&fast)
                .status()
                .expect("make-fast-rules.sh");
            assert!(status.success(), "make-fast-rules.sh failed");
            config.push_str(&format!("rule_files:\n  - \"{}\"\n", fast.display()));
        }
        config.push_str(scrape);
        let path = dir.path().join("prometheus.yml");
        fs::write(&path, &config).expect("write prometheus.yml");
        let port = free_port();
        let proc = Proc::spawn(
            &bin,
            &[
                format!("--config.file={}", path.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ],
            dir.path().join("prometheus.log"),
        );
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        assert!(
            wait_until(Duration::from_secs(60), || http_get(&ready, &[]).is_ok()),
            "prometheus did not become ready with\n{config}\n{}",
            proc.log_tail()
        );
        Prometheus {
            proc,
            port,
            _dir: dir,
        }
    }

    fn api(&self, path: &str, query: &[(&str, &str)]) -> Json {
        http_get(&format!("http://127.0.0.1:{}{path}", self.port), query)
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Json::Null)
    }

    /// Instant query: the result vector.
    fn query(&self, q: &str) -> Vec<Json> {
        self.api("/api/v1/query", &[("query", q)])["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Alerts pending or firing, as `name{labels} state`.
    fn alerts(&self) -> Vec<String> {
        self.api("/api/v1/alerts", &[])["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|a| format!("{} {}", a["labels"], a["state"]))
            .collect()
    }
}

#[test]
fn probe_snippet_fires_nothing_on_a_healthy_cluster() {
    let snippet = readme_example("multi-target probe job", |b| {
        b.lang == "yaml" && b.text.contains("metrics_path: /probe")
    });
    let pair = Pair::start("docs-probe");
    // Target names as in the snippet, members of one cluster (the cluster
    // view is what a probe used to misjudge).
    let exporter = Exporter::start(&[("pg1", pair.primary.dsn()), ("pg2", pair.standby.dsn())]);
    exporter.wait_for("a healthy pair", Duration::from_secs(60), |m| {
        m.get("pgrepl_cluster_primaries", &[("cluster", "main")]) == Some(1.0)
            && m.get(
                "pgrepl_cluster_expected_standby_connected",
                &[("standby", "pg2")],
            ) == Some(1.0)
    });
    // The one documented substitution: the exporter's address.
    assert_eq!(
        snippet.text.matches("exporter-host:9839").count(),
        1,
        "{}: the probe job names its exporter as exporter-host:9839",
        snippet.at()
    );
    let scrape = snippet.text.replace(
        "exporter-host:9839",
        &format!("127.0.0.1:{}", exporter.port),
    );
    let prom = Prometheus::start(
        &scrape,
        Some(&root().join("alerts/pg-replication.rules.yml")),
    );
    assert!(
        wait_until(Duration::from_secs(60), || prom.query("up == 1").len() == 2),
        "Prometheus does not scrape both probes:\n{:?}\n{}",
        prom.query("up"),
        prom.proc.log_tail()
    );
    // Rules evaluated before the first scrapes (`absent(up)` of a
    // Prometheus that has scraped nothing yet) clear within a few
    // evaluations; an alert that stays is the failure.
    let settled = wait_until(Duration::from_secs(30), || prom.alerts().is_empty());
    assert!(
        settled,
        "a healthy primary and standby scraped with the README's probe job raise:\n{}",
        prom.alerts().join("\n")
    );
    // Healthy: over 12 s (6 times the fast `for:`), no alert pending or firing.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        let alerts = prom.alerts();
        assert!(
            alerts.is_empty(),
            "a healthy primary and standby scraped with the README's probe job raise:\n{}",
            alerts.join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The rules saw both servers all along.
    assert_eq!(prom.query("pgrepl:server:info").len(), 2);
    assert_eq!(prom.query("pgrepl:standbys:by_role").len(), 2);
    // And the probe job is the job the rules select.
    assert_eq!(prom.query(r#"up{job="pg_replication_exporter"}"#).len(), 2);
}

// ---------------------------------------------------------------------------
// The HAProxy example, through a real HAProxy
// ---------------------------------------------------------------------------

/// The README's HAProxy configuration with its documented addresses made
/// local: server `10.0.0.N:5432` is the Nth test server, its `check port
/// 9839` the port of the exporter beside it, `bind *:5000` and `*:5001`
/// free loopback ports. Nothing else changes.
fn local_haproxy_config(text: &str, servers: &[(u16, u16)], write: u16, read: u16) -> String {
    let mut out = String::new();
    let mut seen = (0, 0);
    for line in text.lines() {
        let mut l = line.to_string();
        if l.contains("bind *:5000") {
            l = l.replace("bind *:5000", &format!("bind 127.0.0.1:{write}"));
            seen.0 += 1;
        }
        if l.contains("bind *:5001") {
            l = l.replace("bind *:5001", &format!("bind 127.0.0.1:{read}"));
            seen.0 += 1;
        }
        for (n, (pg, exporter)) in servers.iter().enumerate() {
            let address = format!("10.0.0.{}:5432", n + 1);
            if l.contains(&address) {
                assert!(l.contains("check port 9839"), "{l}");
                l = l
                    .replace(&address, &format!("127.0.0.1:{pg}"))
                    .replace("check port 9839", &format!("check port {exporter}"));
                seen.1 += 1;
            }
        }
        out.push_str(&l);
        out.push('\n');
    }
    assert_eq!(
        seen,
        (2, 4),
        "the README's HAProxy configuration changed shape:\n{text}"
    );
    out
}

/// The server HAProxy hands a new session on `port`: its `port` setting.
fn served_by(port: u16) -> Result<u16, String> {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-q"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", "postgres", "-d", "postgres", "-c", "SHOW port"])
        .env("PGCONNECT_TIMEOUT", "3")
        .env("PGSSLMODE", "prefer")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("{e}"))
}

#[test]
fn haproxy_example_routes_writes_and_reads() {
    let haproxy = binary("PGREPL_TEST_HAPROXY", "haproxy");
    let example = readme_example("HAProxy configuration", |b| b.lang == "haproxy");
    let pair = Pair::start("docs-haproxy");
    let (primary, standby) = (&pair.primary, &pair.standby);
    // One exporter beside each server, with that server only (the sidecar
    // layout the README recommends), so `target` is left out.
    let sidecar = |pg: &Pg, name: &str| {
        Exporter::start_with(
            &[(name, pg.dsn())],
            "collect_interval = \"1s\"\ncollect_timeout = \"800ms\"\n",
            &[],
        )
    };
    let (ex1, ex2) = (sidecar(primary, "pg1"), sidecar(standby, "pg2"));
    let (write, read) = (free_port(), free_port());
    let config = local_haproxy_config(
        &example.text,
        &[(primary.port, ex1.port), (standby.port, ex2.port)],
        write,
        read,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("haproxy.cfg");
    fs::write(&cfg, &config).expect("write haproxy.cfg");
    let check = Command::new(&haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
        .output()
        .expect("haproxy -c");
    assert!(
        check.status.success(),
        "haproxy -c refuses the README's configuration:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let proxy = Proc::spawn(
        &haproxy,
        &[
            "-db".to_string(),
            "-f".to_string(),
            cfg.display().to_string(),
        ],
        dir.path().join("haproxy.log"),
    );
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        assert!(
            wait_until(Duration::from_secs(60), ok),
            "{what}: writes go to {:?}, reads to {:?}\nhaproxy:\n{}\nstandby exporter /replica: {:?}",
            served_by(write),
            served_by(read),
            proxy.log_tail(),
            ex2.get("/replica?lag=16MB&max_delay=30s")
        );
    };
    let writes_to_primary = || served_by(write) == Ok(primary.port);
    let reads_to_standby = || (0..4).all(|_| served_by(read) == Ok(standby.port));
    let reads_refused = || (0..2).all(|_| served_by(read).is_err());

    wait("writes reach the primary, reads the standby", &|| {
        writes_to_primary() && reads_to_standby()
    });

    // Replay paused with a backlog beyond 16 MB: reads stop, writes go on.
    standby.psql("SELECT pg_wal_replay_pause()");
    primary.psql("CREATE TABLE docs_haproxy (i int)");
    for _ in 0..3 {
        primary.psql("INSERT INTO docs_haproxy VALUES (1); SELECT pg_switch_wal();");
    }
    wait("reads stop while the standby's replay lags", &|| {
        reads_refused() && writes_to_primary()
    });
    standby.psql("SELECT pg_wal_replay_resume()");
    wait("reads come back once the standby caught up", &|| {
        reads_to_standby() && writes_to_primary()
    });

    // The standby stops: reads stop; it starts: they come back.
    standby.stop();
    wait("reads stop while the standby is down", &|| {
        reads_refused() && writes_to_primary()
    });
    standby.start();
    wait("reads come back once the standby is up", &|| {
        reads_to_standby() && writes_to_primary()
    });
}

// ---------------------------------------------------------------------------
// The migration guide against Debian's postgres_exporter
// ---------------------------------------------------------------------------

/// postgres_exporter `version`, as (major, minor).
type Version = (u32, u32);

const DEBIAN_POSTGRES_EXPORTER: Version = (0, 11);

fn parse_version(v: &str) -> Option<Version> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether `v` is among the versions of a table cell (`all`, `X and later`,
/// `X to Y`, `before X`, `X`, comma-separated); `Err` for a cell the test
/// cannot read. "on PostgreSQL 9.x only" holds for no server the test runs.
fn versions_include(cell: &str, v: Version) -> Result<bool, String> {
    let cell = cell.split(" with ").next().unwrap_or("").trim();
    if cell == "on PostgreSQL 9.x only" {
        return Ok(false);
    }
    let mut any = false;
    for term in cell.split(',').map(str::trim) {
        let bad = || format!("versions `{term}`: expected all, X and later, X to Y, before X or X");
        let hit = if term == "all" {
            true
        } else if let Some(x) = term.strip_suffix(" and later") {
            v >= parse_version(x).ok_or_else(bad)?
        } else if let Some(x) = term.strip_prefix("before ") {
            v < parse_version(x).ok_or_else(bad)?
        } else if let Some((a, b)) = term.split_once(" to ") {
            let (a, b) = (
                parse_version(a).ok_or_else(bad)?,
                parse_version(b).ok_or_else(bad)?,
            );
            a <= v && v <= b
        } else {
            v == parse_version(term).ok_or_else(bad)?
        };
        any |= hit;
    }
    Ok(any)
}

/// A row of the guide's series table.
#[derive(Debug)]
struct Row {
    /// postgres_exporter series named in the first cell: name and the
    /// label names in braces (`server` left out, as the guide says).
    series: Vec<(String, Option<BTreeSet<String>>)>,
    versions: String,
}

fn guide_rows(text: &str) -> Vec<Row> {
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Series"))
        .expect("a `## Series` section");
    let re = regex::Regex::new(r"^(pg_[a-z0-9_]+)(?:\{([^}]*)\})?$").expect("regex");
    section
        .lines()
        .skip_while(|l| !l.starts_with("| postgres_exporter |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            let series = cells[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|span| {
                    let c = re.captures(span)?;
                    let labels = c.get(2).map(|l| {
                        l.as_str()
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    });
                    Some((c[1].to_string(), labels))
                })
                .collect();
            Row {
                series,
                versions: cells.get(1).copied().unwrap_or("").trim().to_string(),
            }
        })
        .collect()
}

/// Debian's postgres_exporter on a server, scraped once it answers.
struct PostgresExporter {
    _proc: Proc,
    port: u16,
}

impl PostgresExporter {
    fn start(pg: &Pg, args: &[String], dir: &Path, tag: &str) -> PostgresExporter {
        let bin = binary(
            "PGREPL_TEST_POSTGRES_EXPORTER",
            "prometheus-postgres-exporter",
        );
        let port = free_port();
        let mut all = vec![format!("--web.listen-address=127.0.0.1:{port}")];
        all.extend_from_slice(args);
        let proc = Proc::spawn_with_env(
            &bin,
            &all,
            &[(
                "DATA_SOURCE_NAME",
                format!(
                    "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
                    pg.port
                ),
            )],
            dir.join(format!("postgres_exporter-{tag}.log")),
        );
        let e = PostgresExporter { _proc: proc, port };
        assert!(
            wait_until(Duration::from_secs(30), || e
                .metrics()
                .is_ok_and(|m| m.get("pg_up", &[]) == Some(1.0))),
            "postgres_exporter on {tag} never reported pg_up 1"
        );
        e
    }

    fn metrics(&self) -> Result<Metrics, String> {
        http_get(&format!("http://127.0.0.1:{}/metrics", self.port), &[])
            .map(|t| Metrics::parse(&t))
    }
}

#[test]
fn migration_guide_holds_for_debians_postgres_exporter() {
    let version = Command::new(binary(
        "PGREPL_TEST_POSTGRES_EXPORTER",
        "prometheus-postgres-exporter",
    ))
    .arg("--version")
    .output()
    .expect("postgres_exporter --version");
    let version = String::from_utf8_lossy(&version.stdout).into_owned()
        + &String::from_utf8_lossy(&version.stderr);
    assert!(
        version.contains("version 0.11."),
        "the guide is checked against Debian 12's postgres_exporter 0.11; found {version}"
    );
    let guide = read("docs/migrating-from-postgres_exporter.md");
    let rows = guide_rows(&guide);
    assert!(rows.len() > 25, "too few rows: {rows:?}");
    // The Spanish table holds the same series for the same versions.
    let spanish = guide_rows(&read("docs/es/migrating-from-postgres_exporter.md"));
    let key = |rows: &[Row]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (format!("{:?}", r.series), r.versions.clone()))
            .collect()
    };
    assert_eq!(
        key(&rows),
        key(&spanish),
        "the Spanish series table differs"
    );

    let pair = Pair::start("docs-migration");
    let dir = tempfile::tempdir().expect("temp dir");
    let on_primary = PostgresExporter::start(&pair.primary, &[], dir.path(), "primary");
    let on_standby = PostgresExporter::start(&pair.standby, &[], dir.path(), "standby");
    let examples = "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml";
    let with_queries = PostgresExporter::start(
        &pair.standby,
        &[format!("--extend.query-path={examples}")],
        dir.path(),
        "standby-queries",
    );
    // A scrape with the walsender (and its slot) in place.
    let walsender_pid = pair
        .primary
        .psql("SELECT pid FROM pg_stat_replication WHERE application_name = 'standby1'");
    let mut scraped = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let m = (
                on_primary.metrics(),
                on_standby.metrics(),
                with_queries.metrics(),
            );
            let ok = matches!(&m.0, Ok(p) if p.has("pg_stat_replication_pg_wal_lsn_diff", &[]));
            if ok {
                scraped = Some(m);
            }
            ok
        }),
        "postgres_exporter never showed the walsender"
    );
    let Some((Ok(primary), Ok(standby), Ok(queries))) = scraped else {
        panic!("no scrape");
    };
    let server = |pg: &Pg| format!("127.0.0.1:{}", pg.port);

    // Per series name, what the rows covering 0.11.1 say: the label sets
    // they give, and whether it needs --extend.query-path. A name no such
    // row covers must not be exported by 0.11.1.
    let mut failures = Vec::new();
    let mut expected: BTreeMap<(String, bool), Vec<BTreeSet<String>>> = BTreeMap::new();
    let mut absent: BTreeSet<String> = BTreeSet::new();
    for row in rows.iter().filter(|r| !r.series.is_empty()) {
        let included = match versions_include(&row.versions, DEBIAN_POSTGRES_EXPORTER) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{:?}: {e}", row.series));
                continue;
            }
        };
        let query_path = row.versions.contains("--extend.query-path");
        for (name, labels) in &row.series {
            if included {
                expected
                    .entry((name.clone(), query_path))
                    .or_default()
                    .push(labels.clone().unwrap_or_default());
            } else {
                absent.insert(name.clone());
            }
        }
    }
    for ((name, query_path), label_sets) in &expected {
        absent.remove(name);
        // Where 0.11.1 should have it: the built-in metrics, or the example
        // queries for a row that needs --extend.query-path.
        let sources: Vec<(&str, &Metrics, &Pg)> = if *query_path {
            vec![("standby with the example queries", &queries, &pair.standby)]
        } else {
            vec![
                ("primary", &primary, &pair.primary),
                ("standby", &standby, &pair.standby),
            ]
        };
        let found: Vec<(&str, &common::Sample, &Pg)> = sources
            .iter()
            .flat_map(|(what, m, pg)| m.all(name, &[]).into_iter().map(move |s| (*what, s, *pg)))
            .collect();
        if found.is_empty() {
            failures.push(format!(
                "{name}: the guide says 0.11.1 exports it{}, but it does not",
                if *query_path {
                    " with the example queries.yaml"
                } else {
                    ""
                }
            ));
            continue;
        }
        for (what, sample, pg) in found {
            let mut got: BTreeSet<String> = sample.labels.keys().cloned().collect();
            // 0.11.1 names the server on every series but pg_up.
            if name != "pg_up" {
                if sample.labels.get("server") != Some(&server(pg)) {
                    failures.push(format!(
                        "{name} on the {what}: server={:?}, the guide says every series but pg_up carries server=\"host:port\"",
                        sample.labels.get("server")
                    ));
                }
                got.remove("server");
            }
            if !label_sets.contains(&got) {
                failures.push(format!(
                    "{name} on the {what}: labels {got:?}, the guide says {label_sets:?}"
                ));
            }
        }
    }
    for name in &absent {
        for (what, m) in [
            ("primary", &primary),
            ("standby", &standby),
            ("standby with the example queries", &queries),
        ] {
            if m.has(name, &[]) {
                failures.push(format!(
                    "{name}: the guide's rows say 0.11.1 does not export it, but it does on the {what}"
                ));
            }
        }
    }
    // "slot_name holds the walsender's pid" (before 0.20).
    let diff = primary.all("pg_stat_replication_pg_wal_lsn_diff", &[]);
    assert!(
        diff.iter()
            .all(|s| s.labels.get("slot_name") == Some(&walsender_pid)),
        "slot_name of pg_stat_replication_* is not the walsender's pid {walsender_pid}: {diff:?}"
    );
    // Every series about the server carries `server`, but pg_up.
    for (what, m) in [("primary", &primary), ("standby", &standby)] {
        for s in &m.samples {
            let exporter_own = s.name.starts_with("pg_exporter_")
                || s.name.starts_with("pg_scrape_collector_")
                || s.name == "pg_up";
            if s.name.starts_with("pg_") && !exporter_own && !s.labels.contains_key("server") {
                failures.push(format!("{} on the {what} has no server label", s.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The relabel snippet of "Running both": in a real Prometheus scraping
    // postgres_exporter on the primary, every series of the table is
    // dropped but pg_up, and postgres_exporter's other series stay.
    let snippet = extract("docs/migrating-from-postgres_exporter.md", &guide)
        .expect("blocks")
        .into_iter()
        .find(|b| b.lang == "yaml" && b.text.contains("metric_relabel_configs"))
        .expect("the relabel snippet");
    assert_eq!(snippet.text.matches("db1:9187").count(), 1);
    let table_names: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.series.iter().map(|(n, _)| n.clone()))
        .collect();
    // Statically, for every name of the table (every version): the regexes
    // drop all but pg_up.
    let config: Yaml = yaml_serde::from_str(&snippet.text).expect("yaml");
    let drops: Vec<regex::Regex> = config["scrape_configs"][0]["metric_relabel_configs"]
        .as_sequence()
        .expect("metric_relabel_configs")
        .iter()
        .filter(|r| r["action"].as_str() == Some("drop"))
        .map(|r| {
            assert_eq!(r["source_labels"][0].as_str(), Some("__name__"));
            regex::Regex::new(&format!("^(?:{})$", r["regex"].as_str().expect("regex")))
                .expect("a valid regex")
        })
        .collect();
    for name in &table_names {
        let dropped = drops.iter().any(|re| re.is_match(name));
        assert_eq!(
            dropped,
            name != "pg_up",
            "{name}: the relabel snippet {} it",
            if dropped { "drops" } else { "keeps" }
        );
    }
    let scrape = snippet
        .text
        .replace("db1:9187", &format!("127.0.0.1:{}", on_primary.port));
    let prom = Prometheus::start(&scrape, None);
    let kept = || -> BTreeSet<String> {
        prom.query(r#"group by (__name__) ({job="postgres_exporter"})"#)
            .iter()
            .filter_map(|r| r["metric"]["__name__"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(60), || kept().contains("pg_up")),
        "Prometheus never scraped postgres_exporter:\n{}",
        prom.proc.log_tail()
    );
    let kept = kept();
    let leaked: Vec<&String> = kept
        .iter()
        .filter(|n| table_names.contains(*n) && n.as_str() != "pg_up")
        .collect();
    assert!(
        leaked.is_empty(),
        "the relabel snippet keeps series the table calls overlapping: {leaked:?}"
    );
    assert!(
        kept.iter().any(|n| n.starts_with("pg_stat_database_"))
            && kept.iter().any(|n| n.starts_with("pg_settings_")),
        "the relabel snippet drops more than the overlap: {kept:?}"
    );
    // What the scrape dropped really was there.
    assert!(primary.has("pg_settings_max_wal_senders", &[]));
    assert!(primary.has("pg_stat_replication_pg_wal_lsn_diff", &[]));
    assert!(queries.has("pg_replication_lag", &[]));
}
