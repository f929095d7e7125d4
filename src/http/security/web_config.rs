//! `--web.config.file`: TLS, basic authentication, response headers,
//! HTTP/2 and rate limiting for the HTTP server, in the format of the
//! Prometheus exporter-toolkit, so the files operators already have for
//! node_exporter work unchanged.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/exporter/tls.crt
//!   key_file: /etc/exporter/tls.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional
//!   client_ca_file: /etc/exporter/ca.crt           # optional
//!   client_allowed_sans: [prometheus]              # optional
//!   min_version: TLS13                             # optional
//! http_server_config:
//!   http2: true
//!   headers:
//!     X-Content-Type-Options: nosniff
//! basic_auth_users:
//!   prometheus: $2y$10$...                         # bcrypt hash
//! rate_limit:
//!   interval: 100ms
//!   burst: 20
//! ```
//!
//! Every field has exporter-toolkit's meaning; a value that cannot be
//! honoured here is a start-up error naming it. The TLS details live in
//! [`crate::http::security::tls`], password checking in [`crate::http::security::basic_auth`].

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::tls::{self, TlsServerConfig, TlsSettings};
use crate::http::security::basic_auth::BasicAuth;

#[derive(Debug, thiserror::Error)]
#[error("web config {path}: {message}")]
pub struct WebConfigError {
    path: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<TlsServerConfig>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<UniqueMap>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<UniqueMap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    interval: Option<yaml_serde::Value>,
    burst: Option<u32>,
}

/// A YAML mapping of strings whose keys must be unique: YAML parsers let
/// a repeated key silently replace the first, and for `basic_auth_users`
/// that would drop a user without a word. Values that are not strings are
/// refused without being echoed (they may be secrets).
#[derive(Debug, Default)]
struct UniqueMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to strings")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<UniqueMap, E> {
                Ok(UniqueMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap, A::Error> {
                use serde::de::Error;
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: yaml_serde::Value = map.next_value()?;
                    let shown = key.escape_debug().to_string();
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(A::Error::custom(format!("duplicate entry \"{shown}\"")));
                    }
                    let yaml_serde::Value::String(value) = value else {
                        return Err(A::Error::custom(format!(
                            "the value of \"{shown}\" is not a string"
                        )));
                    };
                    out.push((key, value));
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML error without the string values it quotes: serde words a value
/// of the wrong type as `string "..."`, and in a web config that can be a
/// bcrypt hash (`user:hash` with the space after the colon missing) or an
/// inline private key. Field names and line numbers stay.
fn without_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(QUOTED) {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        // Skip to the closing quote; serde escapes inner quotes (Debug).
        let mut escaped = false;
        let mut end = rest.len();
        for (i, c) in rest[start + QUOTED.len()..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = start + QUOTED.len() + i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The response headers exporter-toolkit lets a web config set, with the
/// values it allows (none listed: any value).
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// `rate_limit`: a token bucket over all requests, as exporter-toolkit's
/// (one token per `interval`, `burst` at most); requests beyond it get 429.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: u32,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(interval: Duration, burst: u32) -> RateLimit {
        RateLimit {
            interval,
            burst,
            state: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.1).as_secs_f64() / self.interval.as_secs_f64();
        state.0 = (state.0 + refill).min(f64::from(self.burst));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The HTTP server's security settings.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<TlsSettings>>,
    /// `None` serves without authentication.
    pub auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`, `None` when off.
    pub rate_limit: Option<Arc<RateLimit>>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let err = |message: String| WebConfigError {
            path: path.display().to_string(),
            // One line, whatever a parser says.
            message: message.replace(['\n', '\r'], " "),
        };
        // A regular file of at most 1 MiB, under a deadline.
        let contents = crate::config::file_read::read(path, crate::config::file_read::Kind::Config)
            .map_err(|e| err(e.to_string()))?;
        let text = String::from_utf8(contents.bytes).map_err(|_| err("not valid UTF-8".into()))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            yaml_serde::from_str(&text).map_err(|e| err(without_values(&e.to_string())))?
        };
        let base = path.parent().unwrap_or(Path::new("."));

        let http = raw.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let headers = headers(http.headers.unwrap_or_default()).map_err(err)?;

        let tls = match raw.tls_server_config {
            Some(t) if !t.is_empty() => Some(Arc::new(tls::build(t, base, http2).map_err(err)?)),
            _ => None,
        };
        if tls.is_none() && http.http2 == Some(true) {
            tracing::info!("http_server_config.http2 applies to TLS only; plain HTTP is HTTP/1.1");
        }

        let users = raw.basic_auth_users.unwrap_or_default().0;
        let auth = if users.is_empty() {
            None
        } else {
            Some(Arc::new(
                BasicAuth::new(users).map_err(|e| err(format!("basic_auth_users: {e}")))?,
            ))
        };

        let rate_limit = match raw.rate_limit {
            None => None,
            Some(r) => rate_limit(r).map_err(err)?.map(Arc::new),
        };
        Ok(WebConfig {
            tls,
            auth,
            headers,
            rate_limit,
        })
    }
}

fn headers(map: UniqueMap) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in map.0 {
        // exporter-toolkit matches the names exactly as written.
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "http_server_config.headers: HTTP header \"{}\" can not be configured (allowed: {})",
                name.escape_debug(),
                ALLOWED_HEADERS.map(|(n, _)| n).join(", ")
            ));
        };
        if value.is_empty() {
            // "Unset if blank."
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers: invalid value for {name}: expected one of {allowed:?}, got \"{}\"",
                value.escape_debug()
            ));
        }
        let header_value = HeaderValue::from_str(&value).map_err(|_| {
            format!("http_server_config.headers: the value of {name} is not a valid header value")
        })?;
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("http_server_config.headers: bad header name {name}"))?;
        out.push((header_name, header_value));
    }
    Ok(out)
}

fn rate_limit(r: RawRateLimit) -> Result<Option<RateLimit>, String> {
    // Go's durations ("100ms", "1m30s"); a bare 0 turns the limiter off.
    let interval = match r.interval {
        None => Duration::ZERO,
        Some(yaml_serde::Value::Number(n)) if n.as_u64() == Some(0) => Duration::ZERO,
        Some(yaml_serde::Value::String(s)) => humantime::parse_duration(&s).map_err(|e| {
            format!(
                "rate_limit.interval: \"{}\" is not a duration: {e}",
                s.escape_debug()
            )
        })?,
        Some(_) => return Err("rate_limit.interval: expected a duration such as 100ms".into()),
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = r.burst.unwrap_or(0);
    if burst == 0 {
        // Go's limiter with burst 0 refuses every request.
        return Err("rate_limit.burst must be at least 1 when rate_limit.interval is set".into());
    }
    Ok(Some(RateLimit::new(interval, burst)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn yaml_errors_do_not_quote_values() {
        let hash = "$2y$10$abcdefghijklmnopqrstuuMfLzR1nJY5Zb0Wj2lV0f2e8xS7yK4uG";
        let text = format!("basic_auth_users:\n  prom:{hash}\n");
        let e = yaml_serde::from_str::<RawWebConfig>(&text)
            .expect_err("a string where a mapping belongs");
        let shown = without_values(&e.to_string());
        assert!(!shown.contains("abcdefgh"), "{shown}");
        assert!(
            shown.contains("basic_auth_users") && shown.contains("a string"),
            "{shown}"
        );
        assert_eq!(
            without_values(r#"x: invalid type: string "a\"b", expected y"#),
            "x: invalid type: a string, expected y"
        );
        assert_eq!(without_values(r#"cut: string "open"#), "cut: a string");
    }
    use super::*;

    fn load(text: &str) -> Result<WebConfig, String> {
        let dir = std::env::temp_dir().join(format!(
            "pgrepl-webcfg-{}-{}",
            std::process::id(),
            text.len()
        ));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("web.yml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let out = WebConfig::load(&path).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn duplicate_users_are_refused() {
        let h = bcrypt::hash("x", 4).unwrap_or_default();
        let e = load(&format!("basic_auth_users:\n  prom: {h}\n  prom: {h}\n"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("duplicate entry \"prom\""), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn bad_hashes_name_the_user_not_the_hash() {
        for hash in ["$2y$10$abc", "$2zzzzz", "12345"] {
            let e = load(&format!("basic_auth_users:\n  alice: \"{hash}\"\n"))
                .err()
                .unwrap_or_default();
            assert!(e.contains("user \"alice\""), "{e}");
            assert!(!e.contains(hash), "{e}");
        }
        let e = load("basic_auth_users:\n  alice: 12345\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("not a string") && !e.contains("12345"), "{e}");
    }

    #[test]
    fn headers_follow_exporter_toolkit() {
        let ok = load(
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'self'\"\n    X-XSS-Protection: \"\"\n",
        );
        assert_eq!(ok.map(|w| w.headers.len()).ok(), Some(2));
        for (yaml, needle) in [
            (
                "X-Frame-Options: allow",
                "invalid value for X-Frame-Options",
            ),
            ("X-Content-Type-Options: sniff", "invalid value"),
            ("Server: evil", "\"Server\" can not be configured"),
            ("x-frame-options: deny", "can not be configured"),
        ] {
            let e = load(&format!("http_server_config:\n  headers:\n    {yaml}\n"))
                .err()
                .unwrap_or_default();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn rate_limit_values() {
        assert!(
            load("rate_limit:\n  interval: 0\n  burst: 0\n").is_ok_and(|w| w.rate_limit.is_none())
        );
        assert!(load("rate_limit:\n  interval: 100ms\n  burst: 3\n")
            .is_ok_and(|w| w.rate_limit.is_some()));
        assert!(load("rate_limit:\n  interval: 1s\n").is_err());
        assert!(load("rate_limit:\n  interval: soon\n  burst: 1\n").is_err());
        let r = RateLimit::new(Duration::from_secs(3600), 2);
        assert!(r.allow() && r.allow() && !r.allow());
    }

    #[test]
    fn tls_settings_without_a_certificate_are_refused() {
        let e = load("tls_server_config:\n  min_version: TLS13\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("missing one of cert or cert_file"), "{e}");
        assert!(load("tls_server_config:\n").is_ok_and(|w| w.tls.is_none()));
        assert!(load("").is_ok_and(|w| w.tls.is_none() && w.auth.is_none()));
        let e = load("tls_server_config:\n  bogus: 1\n")
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }
}
