//! Loading configurations from files and environments, with the errors
//! they give.

use super::loader::load_with_env;
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Loads `toml` from a temporary file; file errors and configuration
/// errors both come back as their message.
fn load_str(toml: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).map_err(|e| e.to_string())?;
    load_with_env(
        &Overrides {
            config_file: Some(path),
            ..Default::default()
        },
        no_env,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn defaults_and_derived_timeout() -> Result<(), String> {
    let c = load_str("[[targets]]\nname='p'\ndsn='host=127.0.0.1 user=x'\n")?;
    assert_eq!(c.listen_address.port(), 9839);
    assert_eq!(c.telemetry_path, "/metrics");
    assert_eq!(c.collect_interval, Duration::from_secs(5));
    assert_eq!(c.collect_timeout, Duration::from_secs(4));
    Ok(())
}

#[test]
fn env_single_target() -> Result<(), ConfigError> {
    let c = load_with_env(&Overrides::default(), |k| match k {
        "DATA_SOURCE_NAME" => Some("postgresql://u@db1:5433/postgres".into()),
        _ => None,
    })?;
    assert_eq!(c.targets.len(), 1);
    assert_eq!(c.targets[0].name, "db1:5433");
    Ok(())
}

/// The password of the single target from `PGREPL_DSN = dsn`, with
/// `vars` as the rest of the environment.
fn password_with(dsn: &str, vars: &[(&str, &str)]) -> Result<Option<String>, ConfigError> {
    let c = load_with_env(&Overrides::default(), |k| {
        if k == "PGREPL_DSN" {
            return Some(dsn.to_string());
        }
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })?;
    let config = c.targets[0].dsn.pg_config();
    Ok(config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned()))
}

#[test]
fn password_like_libpq() -> Result<(), Box<dyn std::error::Error>> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let private = dir.path().join("private");
    std::fs::write(&private, "db1:5433:postgres:mon:from-file\n*:*:*:*:other\n")?;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
    let shared = dir.path().join("shared");
    std::fs::write(&shared, "*:*:*:*:shared\n")?;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644))?;
    let home = dir.path().join("home");
    std::fs::create_dir(&home)?;
    let (private_s, shared_s, home_s) = (
        private.display().to_string(),
        shared.display().to_string(),
        home.display().to_string(),
    );
    let dsn = "postgresql://mon@db1:5433/postgres";

    assert_eq!(password_with(dsn, &[])?, None);
    assert_eq!(
        password_with(dsn, &[("PGPASSWORD", "env")])?.as_deref(),
        Some("env")
    );
    assert_eq!(
        password_with(dsn, &[("PGPASSFILE", &private_s)])?.as_deref(),
        Some("from-file")
    );
    let with_passfile = format!("{dsn}?passfile={private_s}");
    assert_eq!(
        password_with(&with_passfile, &[])?.as_deref(),
        Some("from-file")
    );
    // Another user falls through to the wildcard line.
    assert_eq!(
        password_with(
            "postgresql://x@db1:5433/postgres",
            &[("PGPASSFILE", &private_s)]
        )?
        .as_deref(),
        Some("other")
    );
    // The DSN's own password wins, then PGPASSWORD.
    assert_eq!(
        password_with(
            "postgresql://mon:inline@db1:5433/postgres",
            &[("PGPASSWORD", "env"), ("PGPASSFILE", &private_s)]
        )?
        .as_deref(),
        Some("inline")
    );
    assert_eq!(
        password_with(dsn, &[("PGPASSWORD", "env"), ("PGPASSFILE", &private_s)])?.as_deref(),
        Some("env")
    );

    // ~/.pgpass: missing is fine; readable by others is ignored.
    assert_eq!(password_with(dsn, &[("HOME", &home_s)])?, None);
    std::fs::copy(&shared, home.join(".pgpass"))?;
    std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o644))?;
    assert_eq!(password_with(dsn, &[("HOME", &home_s)])?, None);
    std::fs::set_permissions(home.join(".pgpass"), std::fs::Permissions::from_mode(0o600))?;
    assert_eq!(
        password_with(dsn, &[("HOME", &home_s)])?.as_deref(),
        Some("shared")
    );

    // A file named explicitly must exist and be private.
    let missing = dir.path().join("missing").display().to_string();
    let err = password_with(dsn, &[("PGPASSFILE", &missing)])
        .expect_err("missing PGPASSFILE")
        .to_string();
    assert!(
        err.contains(&missing) && err.contains("PGPASSFILE"),
        "{err}"
    );
    let err = password_with(&format!("{dsn}?passfile={shared_s}"), &[])
        .expect_err("shared passfile")
        .to_string();
    assert!(
        err.contains("group or world access") && err.contains(&shared_s),
        "{err}"
    );
    Ok(())
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "collect_interval='0s'\n[[targets]]\nname='p'\ndsn='host=h'",
            "collect_interval",
        ),
        (
            "collect_interval='5x'\n[[targets]]\nname='p'\ndsn='host=h'",
            "collect_interval",
        ),
        ("bogus=1\n[[targets]]\nname='p'\ndsn='host=h'", "bogus"),
        (
            "collect_timeout='6s'\n[[targets]]\nname='p'\ndsn='host=h'",
            "collect_timeout",
        ),
        ("[[targets]]\nname=''\ndsn='host=h'", "targets[0].name"),
        (
            "[[targets]]\nname='a'\ndsn='host=h'\n[[targets]]\nname='a'\ndsn='host=h'",
            "duplicate",
        ),
        (
            "[[targets]]\nname='a'\ndsn='postgresql://h:notaport/x'",
            "targets[0].dsn",
        ),
        (
            "listen_address='nonsense'\n[[targets]]\nname='a'\ndsn='host=h'",
            "listen_address",
        ),
        ("", "targets"),
    ];
    for (toml, needle) in cases {
        let err = load_str(toml).expect_err(toml).to_string();
        assert!(err.contains(needle), "{toml:?} gave {err:?}");
        assert!(!err.contains('\n'));
    }
}
