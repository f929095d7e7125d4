//! A target's connection string made ready to use: parsed, its password
//! found the way libpq finds it (and bounded), its TLS files loaded.

use std::path::{Path, PathBuf};

use super::dsn::{self, Dsn};
use super::{at, warn_once_loaded, ConfigError, MAX_PASSWORD_BYTES};
use super::{file_read, tls};

/// A connection string made ready to use: parsed, its password resolved
/// and bounded, its TLS settings loadable. Errors name the place of the
/// DSN (`dsn_at`) or of the password file (`file_at`): key, origin and
/// target; never a value.
pub(super) fn resolve_dsn(
    text: &str,
    password_file: Option<&Path>,
    dsn_at: &str,
    file_at: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Dsn, ConfigError> {
    let mut dsn = Dsn::parse(text).map_err(|e| at(dsn_at, &e.to_string()))?;
    resolve_password(&mut dsn, password_file, dsn_at, file_at, env)?;
    if dsn.password_len() > MAX_PASSWORD_BYTES {
        let place = if password_file.is_some() {
            file_at
        } else {
            dsn_at
        };
        return Err(at(
            place,
            &format!(
                "the password is {} bytes; at most {MAX_PASSWORD_BYTES} are accepted",
                dsn.password_len()
            ),
        ));
    }
    let tls_error = |e: tls::TlsError| at(dsn_at, &e.to_string());
    dsn.tls.files = Some(std::sync::Arc::new(
        tls::load_files(&dsn.tls).map_err(tls_error)?,
    ));
    tls::connector(&dsn.tls).map_err(tls_error)?;
    Ok(dsn)
}

/// Fills in the password the way libpq would, after our own
/// `password_file` (which wins, as the file a secret store mounts): the
/// DSN's, then `PGPASSWORD`, then the password file (`passfile=` in the
/// DSN, `PGPASSFILE`, or `~/.pgpass`). A password file named explicitly
/// must be readable and private; `~/.pgpass` may be missing, and is
/// ignored with a warning when others can read it, as libpq does.
pub(super) fn resolve_password(
    dsn: &mut Dsn,
    password_file: Option<&Path>,
    dsn_at: &str,
    file_at: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(path) = password_file {
        let file = dsn::read_password_file(path)
            .map_err(|e| ConfigError::new(format!("{file_at}: {}: {e}", path.display())))?;
        // Warned, not refused: secret stores mount files others may read
        // inside the container (Docker's 0444, a bind mount keeps the
        // host's mode), where no other user exists. See SECURITY.md.
        if file.mode & 0o007 != 0 {
            warn_once_loaded(format!(
                "{file_at}: {} is readable by other users (mode {:o}); chmod o-rwx it",
                path.display(),
                file.mode & 0o777
            ));
        }
        dsn.set_password(file.password);
        return Ok(());
    }
    if dsn.has_password() {
        return Ok(());
    }
    if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
        dsn.set_password(password);
        return Ok(());
    }
    let pgpassfile = env("PGPASSFILE").filter(|p| !p.is_empty());
    let (path, named_by) = match (&dsn.passfile, pgpassfile) {
        (Some(path), _) => (path.clone(), Some("passfile in the DSN")),
        (None, Some(path)) => (PathBuf::from(path), Some("PGPASSFILE")),
        (None, None) => match env("HOME").filter(|h| !h.is_empty()) {
            Some(home) => (PathBuf::from(home).join(".pgpass"), None),
            None => return Ok(()),
        },
    };
    // Its mode is checked before a byte is read, and anything but a
    // regular file is refused (libpq: "not a plain file").
    let contents = match file_read::read_private(&path, file_read::Kind::PassFile) {
        Ok(contents) => contents,
        Err(e) if named_by.is_none() && e.is_not_found() => return Ok(()),
        Err(e) => {
            let problem = format!("password file {}: {e}", path.display());
            if let Some(named_by) = named_by {
                return Err(ConfigError::new(format!(
                    "{dsn_at}: {problem} ({named_by})"
                )));
            }
            warn_once_loaded(format!(
                "ignoring ~/.pgpass for {dsn_at}, as libpq does: {problem}"
            ));
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&contents.bytes);
    if let Some(password) = dsn.pgpass_password(&text) {
        dsn.set_password(password);
    }
    Ok(())
}
