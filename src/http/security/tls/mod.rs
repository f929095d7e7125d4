//! `tls_server_config` of `--web.config.file`: every field of the Prometheus
//! exporter-toolkit, with its meaning, on rustls.
//!
//! Where exporter-toolkit (Go's crypto/tls) allows something rustls cannot
//! do (TLS 1.0 and 1.1, CBC and RSA key-exchange suites, the P-521 curve),
//! the value is refused at start with the field named, never ignored.
//! Certificate and key files are re-read when they change, as
//! exporter-toolkit re-reads them on every handshake.

mod clients;
mod crypto;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use serde::Deserialize;
use tokio::sync::watch;

use clients::client_verifier;
use crypto::{cipher_suites, curves, versions};

/// How often the certificate and key files are looked at for changes.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// `tls_server_config` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<PathBuf>,
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub curve_preferences: Option<Vec<String>>,
}

impl TlsServerConfig {
    /// Whether TLS is asked for at all. As in exporter-toolkit, the
    /// certificate, key, client CA or client auth type turn it on; other
    /// settings without a certificate are an error rather than plain HTTP.
    pub fn is_empty(&self) -> bool {
        let TlsServerConfig {
            cert,
            key,
            client_ca,
            cert_file,
            key_file,
            client_auth_type,
            client_ca_file,
            client_allowed_sans,
            min_version,
            max_version,
            cipher_suites,
            prefer_server_cipher_suites,
            curve_preferences,
        } = self;
        cert.is_none()
            && key.is_none()
            && client_ca.is_none()
            && cert_file.is_none()
            && key_file.is_none()
            && client_auth_type.is_none()
            && client_ca_file.is_none()
            && client_allowed_sans.is_none()
            && min_version.is_none()
            && max_version.is_none()
            && cipher_suites.is_none()
            && prefer_server_cipher_suites.is_none()
            && curve_preferences.is_none()
    }
}

/// A PEM source: a file (re-read when it changes) or text in the config.
#[derive(Debug, Clone)]
pub(super) enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn pick(
        inline: Option<String>,
        file: Option<PathBuf>,
        field: &str,
        base: &Path,
    ) -> Result<Option<Pem>, String> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(format!(
                "tls_server_config: {field} and {field}_file are both set; give one"
            )),
            (Some(text), None) => Ok(Some(Pem::Inline(text))),
            // Relative paths are relative to the web config file, as in
            // exporter-toolkit.
            (None, Some(path)) => Ok(Some(Pem::File(base.join(path)))),
            (None, None) => Ok(None),
        }
    }

    /// A file is read as every operator-named file is: a regular file of
    /// at most 4 MiB, under a deadline ([`crate::config::file_read`]), so that a
    /// FIFO or a stuck mount cannot hold the certificate watcher or
    /// shutdown.
    pub(super) fn read(&self) -> Result<Vec<u8>, crate::config::file_read::ReadError> {
        match self {
            Pem::File(path) => {
                crate::config::file_read::read(path, crate::config::file_read::Kind::Pem)
                    .map(|c| c.bytes)
            }
            Pem::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }

    /// How to name this source in an error: the field, and the path.
    pub(super) fn describe(&self, field: &str) -> String {
        match self {
            Pem::File(path) => format!("tls_server_config.{field}_file {}", path.display()),
            Pem::Inline(_) => format!("tls_server_config.{field}"),
        }
    }
}

/// The TLS side of the server, built from the web config.
pub struct TlsSettings {
    pub config: Arc<ServerConfig>,
    store: Arc<CertStore>,
    /// ALPN offers `h2`.
    pub http2: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Watches the certificate and key files until `stop` flips, swapping
    /// in a new pair when they change. A pair that does not load (a key
    /// written after its certificate, say) is logged and the running one
    /// kept; the next change is tried again.
    pub async fn watch_files(&self, mut stop: watch::Receiver<bool>) {
        let files = self.store.files();
        if files.is_empty() {
            return;
        }
        let stamps = || async {
            let mut all = Vec::with_capacity(files.len());
            for f in &files {
                all.push(stamp(f).await);
            }
            all
        };
        let mut seen = stamps().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_CHECK_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            let now = stamps().await;
            if now == seen {
                continue;
            }
            seen = now;
            // Reading files is blocking I/O: off the runtime.
            let store = self.store.clone();
            let loaded = tokio::task::spawn_blocking(move || store.reload())
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match loaded {
                Ok(()) => tracing::info!(
                    files = ?files, "TLS certificate and key reloaded"
                ),
                Err(e) => tracing::warn!(
                    error = %e, "TLS certificate or key changed but does not load; keeping the previous pair"
                ),
            }
        }
    }
}

/// What identifies a file's content for reloading: a rename (inode), an
/// in-place write (size, mtime) or a touch (ctime) all change it.
#[derive(Debug, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

async fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    Stamp(tokio::fs::metadata(path).await.ok().map(|m| {
        (
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        )
    }))
}

/// The serving certificate, swapped when its files change.
#[derive(Debug)]
struct CertStore {
    current: ArcSwap<CertifiedKey>,
    cert: Pem,
    key: Pem,
    provider: Arc<CryptoProvider>,
}

impl CertStore {
    /// The files to watch (inline sources never change).
    fn files(&self) -> Vec<PathBuf> {
        [&self.cert, &self.key]
            .into_iter()
            .filter_map(|p| match p {
                Pem::File(path) => Some(path.clone()),
                Pem::Inline(_) => None,
            })
            .collect()
    }

    /// Loads the pair again and serves it from the next handshake on.
    fn reload(&self) -> Result<(), String> {
        let pair = load_pair(&self.cert, &self.key, &self.provider)?;
        self.current.store(Arc::new(pair));
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads a certificate and key pair from wherever the web config puts them.
fn load_pair(cert: &Pem, key: &Pem, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let cert_bytes = cert
        .read()
        .map_err(|e| format!("{}: {e}", cert.describe("cert")))?;
    let key_bytes = key
        .read()
        .map_err(|e| format!("{}: {e}", key.describe("key")))?;
    certified_key(&cert_bytes, &key_bytes, cert, key, provider)
}

fn certified_key(
    cert: &[u8],
    key: &[u8],
    cert_src: &Pem,
    key_src: &Pem,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_src.describe("cert")))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert_src.describe("cert")));
    }
    // The key's text never goes into a message.
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|_| format!("{}: no readable private key", key_src.describe("key")))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        format!(
            "{} and {}: {e}",
            cert_src.describe("cert"),
            key_src.describe("key")
        )
    })
}

/// Builds the rustls configuration; `base` is the web config's directory.
pub fn build(t: TlsServerConfig, base: &Path, http2: bool) -> Result<TlsSettings, String> {
    let cert = Pem::pick(t.cert, t.cert_file, "cert", base)?
        .ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key = Pem::pick(t.key, t.key_file, "key", base)?
        .ok_or("tls_server_config: missing one of key or key_file")?;
    let client_ca = Pem::pick(t.client_ca, t.client_ca_file, "client_ca", base)?;

    let versions = versions(t.min_version.as_deref(), t.max_version.as_deref())?;
    let base_provider = rustls::crypto::ring::default_provider();
    let cipher_suites = match &t.cipher_suites {
        None => base_provider.cipher_suites.clone(),
        Some(names) => cipher_suites(names)?,
    };
    let kx_groups = match &t.curve_preferences {
        None => base_provider.kx_groups.clone(),
        Some(names) => curves(names)?,
    };
    let provider = Arc::new(CryptoProvider {
        cipher_suites,
        kx_groups,
        ..base_provider
    });

    let first = load_pair(&cert, &key, &provider)?;
    let store = Arc::new(CertStore {
        current: ArcSwap::from_pointee(first),
        cert,
        key,
        provider: provider.clone(),
    });

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let verifier = client_verifier(
        t.client_auth_type.as_deref(),
        client_ca,
        t.client_allowed_sans,
        &provider,
    )?;
    let mut config = match verifier {
        None => builder.with_no_client_auth(),
        Some(v) => builder.with_client_cert_verifier(v),
    }
    .with_cert_resolver(store.clone());
    // exporter-toolkit's default is the server's order.
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsSettings {
        config: Arc::new(config),
        store,
        http2,
    })
}
