//! Build identity for `--version` and `pgrepl_exporter_build_info`: the git
//! revision and branch, the build date and the rustc version, the way
//! Prometheus exporters stamp their binaries. Outside a git checkout (a
//! source archive) the values come from `PG_REPLICATION_EXPORTER_REVISION` and
//! `PG_REPLICATION_EXPORTER_BRANCH`, else read `unknown`. `SOURCE_DATE_EPOCH` fixes
//! the date for reproducible builds.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn from_env_or(var: &str, fallback: impl FnOnce() -> Option<String>) -> String {
    println!("cargo:rerun-if-env-changed={var}");
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(fallback)
        .unwrap_or_else(|| "unknown".to_string())
}

fn main() {
    let revision = from_env_or("PG_REPLICATION_EXPORTER_REVISION", || {
        output("git", &["rev-parse", "HEAD"])
    });
    let branch = from_env_or("PG_REPLICATION_EXPORTER_BRANCH", || {
        output("git", &["rev-parse", "--abbrev-ref", "HEAD"])
    });
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Reproducible builds set SOURCE_DATE_EPOCH (seconds, never before 1970).
    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        // Up to the year 9999, which RFC 3339 (and humantime) can write.
        .filter(|e| *e < 253_402_300_800)
        .map_or_else(SystemTime::now, |e| UNIX_EPOCH + Duration::from_secs(e));
    // `2026-11-28T20:55:51Z` as `20261128-20:55:51`, the exporters' layout.
    let rfc3339 = humantime::format_rfc3339_seconds(when).to_string();
    let date = match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(day), Some(time)) => format!("{}-{time}", day.replace('-', "")),
        _ => "unknown".to_string(),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());

    println!("cargo:rustc-env=STAMP_PGREPL_REVISION={revision}");
    println!("cargo:rustc-env=STAMP_PGREPL_BRANCH={branch}");
    println!("cargo:rustc-env=STAMP_PGREPL_DATE={date}");
    println!("cargo:rustc-env=STAMP_PGREPL_RUSTC={rustc_version}");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_else(|_| "unknown".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=STAMP_PGREPL_PLATFORM={os}/{arch}");
    // A new commit or branch changes the stamp.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
