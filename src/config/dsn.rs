//! Connection strings as users write them for libpq.
//!
//! tokio-postgres parses both libpq forms (`key=value` and URLs) but knows
//! only `sslmode` disable/prefer/require and rejects the `ssl*` file options
//! and `passfile`. We take those out before it sees the string and keep them
//! ourselves, so a DSN copied from `psql` or postgres_exporter is accepted as
//! it is.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::tls::{SslMode, TlsOptions, SYSTEM_ROOTS};

/// A parsed connection string. `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq)]
pub struct Dsn {
    config: tokio_postgres::Config,
    pub tls: TlsOptions,
    /// libpq's `passfile`: where to look for the password when the DSN has
    /// none (see [`crate::config::pgpass`]).
    pub passfile: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum DsnError {
    #[error("empty connection string")]
    Empty,
    #[error("{0}")]
    Invalid(String),
}

/// libpq keys that tokio-postgres rejects; kept by us.
const LIBPQ_KEYS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "passfile"];

impl Dsn {
    pub fn parse(text: &str) -> Result<Dsn, DsnError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DsnError::Empty);
        }
        let (rest, pairs) = if is_url(text) {
            split_url_libpq(text)
        } else {
            split_kv_libpq(text)?
        };
        let mut tls = TlsOptions::default();
        let mut passfile = None;
        let mut explicit_mode = None;
        for (key, value) in pairs {
            match key.as_str() {
                "passfile" => passfile = Some(PathBuf::from(value)),
                "sslmode" => {
                    tls.mode = value.parse().map_err(DsnError::Invalid)?;
                    explicit_mode = Some(value);
                }
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
                "sslcert" => tls.client_cert = Some(PathBuf::from(value)),
                "sslkey" => tls.client_key = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        if tls.root_cert.as_deref() == Some(Path::new(SYSTEM_ROOTS)) {
            // libpq 16: a public CA proves nothing without the host name.
            match explicit_mode {
                None => tls.mode = SslMode::VerifyFull,
                Some(mode) if tls.mode != SslMode::VerifyFull => {
                    return Err(DsnError::Invalid(format!(
                        "weak sslmode {mode:?} may not be used with sslrootcert=system (use \"verify-full\")"
                    )))
                }
                Some(_) => {}
            }
        }
        let mut config = if rest.trim().is_empty() {
            tokio_postgres::Config::new()
        } else {
            tokio_postgres::Config::from_str(&rest).map_err(|e| {
                let text = e.to_string();
                let text = text.trim_start_matches("invalid configuration: ");
                // "unknown option `x`" quotes what was typed, which may be
                // a stray secret: show it only when it looks like a key.
                let text = match text
                    .strip_prefix("unknown option `")
                    .and_then(|k| k.strip_suffix('`'))
                {
                    Some(key) => format!("unknown option {}", shown_key(key)),
                    None => text.to_string(),
                };
                DsnError::Invalid(text)
            })?
        };
        if config.get_hosts().is_empty() {
            // libpq's default: the local socket directory of Debian's packages.
            config.host_path("/var/run/postgresql");
        }
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            config.dbname("postgres");
        }
        Ok(Dsn {
            config,
            tls,
            passfile,
        })
    }

    pub fn set_password(&mut self, password: String) {
        self.config.password(password);
    }

    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    /// Length of the password in bytes (0 without one), for the limit.
    pub fn password_len(&self) -> usize {
        self.config.get_password().map_or(0, <[u8]>::len)
    }

    /// The password file entry to look for: first host and port, database
    /// and user. A socket in a default directory is `localhost`, as in libpq.
    pub fn pgpass_password(&self, passfile_text: &str) -> Option<String> {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => {
                if ["/var/run/postgresql", "/run/postgresql", "/tmp"]
                    .iter()
                    .any(|d| p == Path::new(d))
                {
                    "localhost".to_string()
                } else {
                    p.display().to_string()
                }
            }
            None => "localhost".to_string(),
        };
        crate::config::pgpass::find(
            passfile_text,
            crate::config::pgpass::Key {
                host: &host,
                port: self.config.get_ports().first().copied().unwrap_or(5432),
                database: self.config.get_dbname().unwrap_or(""),
                user: self.config.get_user().unwrap_or(""),
            },
        )
    }

    /// The connection settings for tokio-postgres; the caller adds its own
    /// session options (timeouts, application name).
    pub fn pg_config(&self) -> tokio_postgres::Config {
        use tokio_postgres::config::SslMode as PgSsl;
        let mut config = self.config.clone();
        config.ssl_mode(match self.tls.mode {
            SslMode::Disable => PgSsl::Disable,
            SslMode::Allow | SslMode::Prefer => PgSsl::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSsl::Require,
        });
        config
    }

    /// `host:port` for the name of a target configured only by a DSN, the
    /// way postgres_exporter labels its `server`.
    pub fn default_name(text: &str) -> String {
        match Dsn::parse(text) {
            Ok(d) => d.endpoint(),
            Err(_) => "default".into(),
        }
    }

    /// First host and port, for log lines and names; never the password.
    pub fn endpoint(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({self})")
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} user={} dbname={}",
            self.endpoint(),
            self.config.get_user().unwrap_or(""),
            self.config.get_dbname().unwrap_or("")
        )
    }
}

/// A `password_file` as it was read.
pub struct PasswordFile {
    pub password: String,
    /// Permission bits of the file, for the warning about a file others
    /// may read.
    pub mode: u32,
}

/// Reads a password file the way `docker secret`s and Kubernetes mount
/// them: the whole file, without the trailing newline. A regular file of
/// at most 64 KiB, read under a deadline (see [`crate::config::file_read`]); the
/// configuration then refuses a password longer than it accepts.
pub fn read_password_file(
    path: &Path,
) -> Result<PasswordFile, crate::config::file_read::ReadError> {
    use crate::config::file_read::{self, Kind, ReadError};
    let contents = file_read::read(path, Kind::Password)?;
    let text = String::from_utf8(contents.bytes)
        .map_err(|_| ReadError::Io(std::io::Error::other("not valid UTF-8")))?;
    Ok(PasswordFile {
        password: text.trim_end_matches(['\r', '\n']).to_string(),
        mode: contents.mode,
    })
}

/// A key of a connection string as typed, quoted, when it looks like a
/// libpq keyword; anything else may be a password missing its `password=`.
fn shown_key(key: &str) -> String {
    let plausible = !key.is_empty()
        && key.len() <= 40
        && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if plausible {
        format!("{key:?}")
    } else {
        "a word that is not a connection keyword (not shown)".to_string()
    }
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

fn split_url_libpq(text: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = text.split_once('?') else {
        return (text.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut tls = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        if LIBPQ_KEYS.contains(&k) {
            tls.push((k.to_string(), percent_decode(v)));
        } else {
            kept.push(part);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, tls)
}

/// A URI query value as libpq reads it; invalid escapes stay as they are.
fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

/// Splits a `key=value` DSN into the part for tokio-postgres and the libpq-only
/// pairs, honouring libpq's single quotes and backslash escapes.
fn split_kv_libpq(text: &str) -> Result<(String, Vec<(String, String)>), DsnError> {
    let mut kept = String::new();
    let mut tls = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(DsnError::Invalid(format!(
                "expected key=value after {}",
                shown_key(&key)
            )));
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let value = kv_value(&mut chars, &key)?;
        let end = chars.peek().map(|(i, _)| *i).unwrap_or(text.len());
        if LIBPQ_KEYS.contains(&key.as_str()) {
            tls.push((key, value));
        } else {
            kept.push_str(&text[start..end]);
            kept.push(' ');
        }
    }
    Ok((kept, tls))
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// A value of a `key=value` DSN, with libpq's quoting: single quotes
/// around it, a backslash before any character.
fn kv_value(chars: &mut Chars<'_>, key: &str) -> Result<String, DsnError> {
    let mut value = String::new();
    if chars.peek().map(|(_, c)| *c) == Some('\'') {
        chars.next();
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '\'' => return Ok(value),
                c => value.push(c),
            }
        }
        return Err(DsnError::Invalid(format!(
            "unterminated quoted value for {}",
            shown_key(key)
        )));
    }
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() {
            break;
        }
        chars.next();
        if c == '\\' {
            if let Some((_, n)) = chars.next() {
                value.push(n);
            }
            continue;
        }
        value.push(c);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_decode_without_panicking() {
        assert_eq!(percent_decode("%2Fca%20file.pem"), "/ca file.pem");
        // A multi-byte character right after `%`, a sign, a lone `%`.
        assert_eq!(percent_decode("%a\u{e9}"), "%a\u{e9}");
        assert_eq!(percent_decode("%+f"), "%+f");
        assert_eq!(percent_decode("%"), "%");
        assert!(Dsn::parse("postgresql://u@h/db?sslrootcert=%a\u{e9}").is_ok());
    }

    #[test]
    fn sslrootcert_system_means_verify_full() -> Result<(), DsnError> {
        let d = Dsn::parse("host=db.example.com user=m sslrootcert=system")?;
        assert_eq!(d.tls.mode, SslMode::VerifyFull);
        let d = Dsn::parse("postgresql://m@db/postgres?sslrootcert=system&sslmode=verify-full")?;
        assert_eq!(d.tls.mode, SslMode::VerifyFull);
        for weak in ["require", "verify-ca", "prefer", "disable"] {
            let err = Dsn::parse(&format!("host=db sslrootcert=system sslmode={weak}"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(weak) && err.contains("verify-full"),
                "{weak}: {err:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn url_with_tls_options() -> Result<(), DsnError> {
        let d = Dsn::parse(
            "postgresql://monitor:s3cret@10.0.0.1:5433/postgres?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x",
        )?;
        assert_eq!(d.tls.mode, SslMode::VerifyFull);
        assert_eq!(d.tls.root_cert.as_deref(), Some(Path::new("/ca.pem")));
        assert_eq!(d.endpoint(), "10.0.0.1:5433");
        assert!(!format!("{d:?} {d}").contains("s3cret"));
        Ok(())
    }

    #[test]
    fn key_value_with_quotes() -> Result<(), DsnError> {
        let d = Dsn::parse("host=127.0.0.1 port=5444 user=mon password='a b\\'c' sslmode=require sslrootcert = '/x y.pem'")?;
        assert_eq!(d.tls.mode, SslMode::Require);
        assert_eq!(d.tls.root_cert.as_deref(), Some(Path::new("/x y.pem")));
        assert_eq!(d.pg_config().get_password(), Some(&b"a b'c"[..]));
        assert_eq!(d.endpoint(), "127.0.0.1:5444");
        Ok(())
    }

    #[test]
    fn bad_dsns() {
        for bad in [
            "",
            "host",
            "postgresql://h:port/x",
            "sslmode=maybe host=h",
            "host='x",
        ] {
            assert!(Dsn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_do_not_echo_password() {
        let e = Dsn::parse("postgresql://u:topsecret@h:notaport/x").unwrap_err();
        assert!(!e.to_string().contains("topsecret"), "{e}");
    }
}
