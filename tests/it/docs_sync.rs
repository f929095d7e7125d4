//! The translated and derived documents stay in step with their sources:
//! the Spanish runbooks have a section per alert of the English ones, in the
//! same order; `docs/config-lint.md` documents every lint check; the
//! Spanish README covers the quickstart and every configuration key.

use std::fs;
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `## ` headings of a Markdown document, outside fenced code blocks
/// (where `## ` may be a shell comment).
fn h2_headings(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(title) = line.strip_prefix("## ") {
            out.push(title.trim().trim_matches('`').trim().to_string());
        }
    }
    out
}

/// The names in `CHECKS` of `src/model/lint.rs`, read from the source so this
/// test needs no access to the crate's private items.
fn lint_checks() -> Vec<String> {
    let source = read("src/model/lint.rs");
    let start = source
        .find("pub const CHECKS")
        .expect("src/model/lint.rs has no `pub const CHECKS`");
    let body = &source[start..];
    let open = body.find("= [").expect("CHECKS has no `= [`") + 3;
    let close = open + body[open..].find("];").expect("CHECKS has no `];`");
    let checks: Vec<String> = body[open..close]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect();
    // With an array type `[&str; N]`, its length keeps the parsing honest.
    let head = &body[..open];
    let declared: Option<usize> = head
        .split_once("; ")
        .and_then(|(_, rest)| rest.split(']').next())
        .and_then(|n| n.trim().parse().ok());
    if let Some(declared) = declared {
        assert_eq!(
            checks.len(),
            declared,
            "parsed {checks:?} from CHECKS, declared {declared}"
        );
    }
    assert!(
        checks.iter().all(|c| c
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')),
        "unexpected names parsed from CHECKS: {checks:?}"
    );
    checks
}

/// The keys (in backquotes) of the first column of the table under
/// `## Configuration reference` in the English README (the table whose
/// header starts with `| key`).
fn readme_config_keys() -> Vec<String> {
    let readme = read("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Configuration reference"))
        .expect("README.md has no `## Configuration reference` section");
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| key"));
    assert!(
        lines.next().is_some(),
        "no `| key | ... |` table under Configuration reference"
    );
    let keys: Vec<String> = lines
        .skip(1) // |---|---|
        .take_while(|l| l.starts_with('|'))
        .flat_map(|row| {
            // A cell may name several keys: `a.dsn`, `.password_file`.
            let cell = row.trim_start_matches('|').split('|').next().unwrap_or("");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|k| !k.is_empty())
        .collect();
    assert!(
        keys.len() >= 4,
        "too few keys parsed from the README configuration table: {keys:?}"
    );
    keys
}

#[test]
fn spanish_runbooks_have_the_same_sections_in_the_same_order() {
    let english = h2_headings(&read("docs/runbooks.md"));
    let spanish = h2_headings(&read("docs/es/runbooks.md"));
    assert!(
        !english.is_empty(),
        "docs/runbooks.md has no `## ` sections"
    );
    let missing: Vec<&String> = english.iter().filter(|h| !spanish.contains(h)).collect();
    assert!(
        missing.is_empty(),
        "docs/es/runbooks.md lacks sections {missing:?} of docs/runbooks.md"
    );
    let extra: Vec<&String> = spanish.iter().filter(|h| !english.contains(h)).collect();
    assert!(
        extra.is_empty(),
        "docs/es/runbooks.md has sections {extra:?} that docs/runbooks.md does not"
    );
    assert_eq!(
        spanish, english,
        "docs/es/runbooks.md has the sections of docs/runbooks.md in another order"
    );
}

#[test]
fn every_lint_check_is_documented() {
    let checks = lint_checks();
    assert!(
        !checks.is_empty(),
        "no checks parsed from src/model/lint.rs"
    );
    let headings = h2_headings(&read("docs/config-lint.md"));
    let missing: Vec<&String> = checks.iter().filter(|c| !headings.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "docs/config-lint.md has no `## <check>` section for {missing:?}"
    );
    let documented: Vec<&String> = headings.iter().filter(|h| checks.contains(h)).collect();
    let listed: Vec<&String> = checks.iter().collect();
    assert_eq!(
        documented, listed,
        "docs/config-lint.md documents the checks in another order than CHECKS"
    );
}

#[test]
fn spanish_readme_covers_quickstart_and_configuration() {
    let spanish = read("docs/es/README.md");
    for command in ["make demo", "make test"] {
        assert!(
            spanish.contains(command),
            "docs/es/README.md does not mention `{command}`"
        );
    }
    let missing: Vec<String> = readme_config_keys()
        .into_iter()
        .filter(|key| !spanish.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/es/README.md does not mention configuration keys {missing:?} of README.md"
    );
    for link in ["(runbooks.md)", "(../runbooks.md)"] {
        assert!(
            spanish.contains(link),
            "docs/es/README.md does not link {link}"
        );
    }
}
