//! `--web.config.file`: TLS and basic authentication for the HTTP server,
//! in the format of the Prometheus exporter-toolkit, so the scrape configs
//! and files operators already have for node_exporter work unchanged.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/exporter/tls.crt
//!   key_file: /etc/exporter/tls.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional
//!   client_ca_file: /etc/exporter/ca.crt           # optional
//! basic_auth_users:
//!   prometheus: $2y$10$...                         # bcrypt hash
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

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
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    /// Accepted for compatibility; HTTP/2 and custom headers are not served.
    #[serde(default)]
    http_server_config: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    // Accepted for compatibility with exporter-toolkit files; rustls'
    // defaults (TLS 1.2+, modern suites) apply.
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

/// The HTTP server's security settings.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// `None` serves without authentication.
    pub auth: Option<Arc<BasicAuth>>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let err = |message: String| WebConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?
        };
        let _ = raw.http_server_config;
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => Some(Arc::new(build_tls(t).map_err(err)?)),
        };
        for (user, hash) in &raw.basic_auth_users {
            if !hash.starts_with("$2") {
                return Err(err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (expected $2a$, $2b$ or $2y$...)"
                )));
            }
        }
        let auth = (!raw.basic_auth_users.is_empty()).then(|| {
            Arc::new(BasicAuth {
                users: raw.basic_auth_users.into_iter().collect(),
                verified: Mutex::new(HashMap::new()),
            })
        });
        Ok(WebConfig { tls, auth })
    }
}

fn build_tls(t: RawTls) -> Result<ServerConfig, String> {
    let _ = (
        t.min_version,
        t.max_version,
        t.cipher_suites,
        t.curve_preferences,
        t.prefer_server_cipher_suites,
        t.client_allowed_sans,
    );
    let cert_file = t
        .cert_file
        .ok_or("tls_server_config.cert_file is required")?;
    let key_file = t.key_file.ok_or("tls_server_config.key_file is required")?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(&cert_file)
        .map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?
        .collect();
    let certs =
        certs.map_err(|e| format!("tls_server_config.cert_file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls_server_config.cert_file {}: no certificate",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("tls_server_config.key_file {}: {e}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequestClientCert" | "RequireAnyClientCert" | "VerifyClientCertIfGiven"
        | "RequireAndVerifyClientCert" => {
            let ca = t.client_ca_file.ok_or_else(|| {
                format!("tls_server_config.client_ca_file is required with client_auth_type {auth_type}")
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&ca)
                .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", ca.display()))?
            {
                let cert = cert.map_err(|e| {
                    format!("tls_server_config.client_ca_file {}: {e}", ca.display())
                })?;
                roots.add(cert).map_err(|e| {
                    format!("tls_server_config.client_ca_file {}: {e}", ca.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if matches!(auth_type, "RequireAndVerifyClientCert" | "RequireAnyClientCert") {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type {other:?}: expected NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ))
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Users and their bcrypt hashes. A successful check is remembered for the
/// exact user, password and hash, as exporter-toolkit does: bcrypt costs tens
/// of milliseconds by design, and Prometheus sends the same credentials on
/// every scrape.
pub struct BasicAuth {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<(String, String), bool>>,
}

impl BasicAuth {
    /// Checks an `Authorization` header value. Runs bcrypt on a blocking
    /// thread so that a flood of bad passwords cannot stall the server.
    pub async fn check(self: &Arc<Self>, header: Option<&str>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user).cloned() else {
            // Spend the same time as for a known user so that user names
            // cannot be probed by timing.
            let _ =
                tokio::task::spawn_blocking(move || bcrypt::verify(&password, dummy_hash())).await;
            return false;
        };
        let key = (user, password);
        if let Ok(cache) = self.verified.lock() {
            if let Some(ok) = cache.get(&key) {
                return *ok;
            }
        }
        let password = key.1.clone();
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if ok {
            if let Ok(mut cache) = self.verified.lock() {
                // Bounded: only successes are cached, one per user and password.
                if cache.len() < 1024 {
                    cache.insert(key, true);
                }
            }
        }
        ok
    }
}

/// A hash of cost 10 to verify against for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("pg_replication_exporter", 10).unwrap_or_default())
}

fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header() {
        assert_eq!(
            parse_basic("Basic cHJvbTpzZWNyZXQ="),
            Some(("prom".into(), "secret".into()))
        );
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[tokio::test]
    async fn bcrypt_users() -> Result<(), bcrypt::BcryptError> {
        let hash = bcrypt::hash("s3cret", 4)?;
        let auth = Arc::new(BasicAuth {
            users: [("prom".to_string(), hash)].into_iter().collect(),
            verified: Mutex::new(HashMap::new()),
        });
        use base64::Engine;
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(auth.check(Some(&header("prom", "s3cret"))).await);
        assert!(auth.check(Some(&header("prom", "s3cret"))).await);
        assert!(!auth.check(Some(&header("prom", "wrong"))).await);
        assert!(!auth.check(Some(&header("nobody", "s3cret"))).await);
        assert!(!auth.check(None).await);
        Ok(())
    }
}
