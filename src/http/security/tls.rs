//! `tls_server_config` of `--web.config.file`: every field of the Prometheus
//! exporter-toolkit, with its meaning, on rustls.
//!
//! Where exporter-toolkit (Go's crypto/tls) allows something rustls cannot
//! do (TLS 1.0 and 1.1, CBC and RSA key-exchange suites, the P-521 curve),
//! the value is refused at start with the field named, never ignored.
//! Certificate and key files are re-read when they change, as
//! exporter-toolkit re-reads them on every handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use serde::Deserialize;
use tokio::sync::watch;

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
enum Pem {
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
    fn read(&self) -> Result<Vec<u8>, crate::config::file_read::ReadError> {
        match self {
            Pem::File(path) => {
                crate::config::file_read::read(path, crate::config::file_read::Kind::Pem)
                    .map(|c| c.bytes)
            }
            Pem::Inline(text) => Ok(text.clone().into_bytes()),
        }
    }

    /// How to name this source in an error: the field, and the path.
    fn describe(&self, field: &str) -> String {
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

fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    // Go's names; TLS 1.0 and 1.1 exist there but not in rustls.
    fn parse(field: &str, value: &str) -> Result<u8, String> {
        match value {
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            "TLS10" | "TLS11" => Err(format!(
                "tls_server_config.{field}: {value} is not supported (rustls implements TLS12 and TLS13 only)"
            )),
            other => Err(format!(
                "tls_server_config.{field}: unknown TLS version {other:?} (expected TLS12 or TLS13)"
            )),
        }
    }
    let lo = min.map_or(Ok(12), |v| parse("min_version", v))?;
    let hi = max.map_or(Ok(13), |v| parse("max_version", v))?;
    if lo > hi {
        return Err(format!(
            "tls_server_config: min_version TLS{lo} is above max_version TLS{hi}"
        ));
    }
    let mut out = Vec::new();
    if lo <= 13 && hi >= 13 {
        out.push(&rustls::version::TLS13);
    }
    if lo <= 12 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// Go's cipher suite names (crypto/tls `CipherSuites()` and
/// `InsecureCipherSuites()`) that rustls does not implement: named in an
/// error as unsupported rather than unknown.
const GO_ONLY_SUITES: [&str; 16] = [
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// Go's TLS 1.3 suite names: accepted, and as in Go they change nothing
/// (TLS 1.3 suites are not configurable there).
const GO_TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// `cipher_suites` applies to TLS 1.2, in the listed order (the server's
/// preference when `prefer_server_cipher_suites` is true); TLS 1.3 keeps
/// its suites, as in Go.
fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, String> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut tls12 = Vec::new();
    for name in names {
        let suite = match name.as_str() {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            }
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            }
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
            }
            n if GO_TLS13_SUITES.contains(&n) => continue,
            n if GO_ONLY_SUITES.contains(&n) => {
                return Err(format!(
                    "tls_server_config.cipher_suites: {n} is not supported (rustls implements only \
                     the ECDHE AES-GCM and ChaCha20-Poly1305 suites)"
                ))
            }
            other => {
                return Err(format!(
                    "tls_server_config.cipher_suites: unknown cipher suite {other:?}"
                ))
            }
        };
        if !tls12.contains(&suite) {
            tls12.push(suite);
        }
    }
    let mut out: Vec<SupportedCipherSuite> = rustls::crypto::ring::DEFAULT_CIPHER_SUITES
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    out.extend(tls12);
    Ok(out)
}

/// `curve_preferences` in Go's names, in order of preference.
fn curves(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
    use rustls::crypto::ring::kx_group;
    let mut out: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for name in names {
        let group: &'static dyn SupportedKxGroup =
            match name.as_str() {
                "X25519" => kx_group::X25519,
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                "CurveP521" => return Err(
                    "tls_server_config.curve_preferences: CurveP521 is not supported (rustls with \
                     ring implements X25519, CurveP256 and CurveP384)"
                        .into(),
                ),
                other => {
                    return Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {other:?} (expected \
                     X25519, CurveP256 or CurveP384)"
                    ))
                }
            };
        if !out.iter().any(|g| g.name() == group.name()) {
            out.push(group);
        }
    }
    if out.is_empty() {
        return Err("tls_server_config.curve_preferences: empty list".into());
    }
    Ok(out)
}

fn client_verifier(
    auth_type: Option<&str>,
    ca: Option<Pem>,
    allowed_sans: Option<Vec<String>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let auth_type = auth_type.unwrap_or("NoClientCert");
    let roots = match &ca {
        None => None,
        Some(pem) => {
            let bytes = pem
                .read()
                .map_err(|e| format!("{}: {e}", pem.describe("client_ca")))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| format!("{}: {e}", pem.describe("client_ca")))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", pem.describe("client_ca")))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate", pem.describe("client_ca")));
            }
            Some(Arc::new(roots))
        }
    };
    let need_roots = || {
        roots.clone().ok_or_else(|| {
            format!(
                "tls_server_config.client_auth_type {auth_type} needs client_ca_file or client_ca \
                 (Go would fall back to the system's CAs; name the CA to trust)"
            )
        })
    };
    let hints = |roots: &Option<Arc<RootCertStore>>| {
        roots.as_ref().map(|r| r.subjects()).unwrap_or_default()
    };
    let verifier: Arc<dyn ClientCertVerifier> = match auth_type {
        "NoClientCert" => {
            if roots.is_some() {
                return Err(
                    "tls_server_config: client CA's have been configured without a client_auth_type"
                        .into(),
                );
            }
            if allowed_sans.is_some() {
                return Err(sans_needs_cert());
            }
            return Ok(None);
        }
        "RequestClientCert" => Arc::new(AnyClientCert {
            mandatory: false,
            hints: hints(&roots),
            provider: provider.clone(),
        }),
        "RequireAnyClientCert" | "RequireClientCert" => Arc::new(AnyClientCert {
            mandatory: true,
            hints: hints(&roots),
            provider: provider.clone(),
        }),
        "VerifyClientCertIfGiven" => {
            WebPkiClientVerifier::builder_with_provider(need_roots()?, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("tls_server_config.client_ca: {e}"))?
        }
        "RequireAndVerifyClientCert" => {
            WebPkiClientVerifier::builder_with_provider(need_roots()?, provider.clone())
                .build()
                .map_err(|e| format!("tls_server_config.client_ca: {e}"))?
        }
        other => {
            return Err(format!(
            "tls_server_config.client_auth_type: unknown value {other:?} (expected NoClientCert, \
                 RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or \
                 RequireAndVerifyClientCert)"
        ))
        }
    };
    if matches!(
        auth_type,
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert"
    ) {
        tracing::warn!(
            client_auth_type = auth_type,
            "client certificates are requested but not verified; only RequireAndVerifyClientCert authenticates clients"
        );
    }
    match allowed_sans {
        None => Ok(Some(verifier)),
        Some(allowed) => {
            if !matches!(
                auth_type,
                "RequireAnyClientCert" | "RequireClientCert" | "RequireAndVerifyClientCert"
            ) {
                return Err(sans_needs_cert());
            }
            Ok(Some(Arc::new(SanVerifier {
                inner: verifier,
                allowed,
            })))
        }
    }
}

fn sans_needs_cert() -> String {
    "tls_server_config.client_allowed_sans requires client_auth_type RequireAnyClientCert or \
     RequireAndVerifyClientCert"
        .into()
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate is
/// asked for (and required with `mandatory`) but not checked against any
/// CA; the client still proves it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        use x509_cert::der::Decode;
        x509_cert::Certificate::from_der(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `client_allowed_sans`: after the inner verifier accepted the client
/// certificate, one of its DNS, IP, e-mail or URI subject alternative
/// names must be exactly one of the allowed values.
#[derive(Debug)]
struct SanVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for SanVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(verified)
        } else {
            tracing::debug!(?names, "client certificate has no allowed SAN");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The DNS, e-mail, IP and URI subject alternative names of a certificate,
/// written as Go writes them (an IPv4 address in dotted form even when
/// stored as IPv4-mapped IPv6).
pub fn subject_alt_names(der: &[u8]) -> Result<Vec<String>, x509_cert::der::Error> {
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let cert = x509_cert::Certificate::from_der(der)?;
    let mut out = Vec::new();
    for ext in cert.tbs_certificate.filter::<SubjectAltName>() {
        let (_, SubjectAltName(names)) = ext?;
        for name in names {
            match name {
                GeneralName::DnsName(s) => out.push(s.to_string()),
                GeneralName::Rfc822Name(s) => out.push(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => out.push(s.to_string()),
                GeneralName::IpAddress(octets) => {
                    let b = octets.as_bytes();
                    let ip = if let Ok(v4) = <[u8; 4]>::try_from(b) {
                        Some(std::net::IpAddr::from(v4))
                    } else if let Ok(v6) = <[u8; 16]>::try_from(b) {
                        let v6 = std::net::Ipv6Addr::from(v6);
                        Some(v6.to_ipv4_mapped().map_or(v6.into(), Into::into))
                    } else {
                        None
                    };
                    out.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_and_refuse() {
        let v = |a: Option<&str>, b: Option<&str>| {
            versions(a, b).map(|v| {
                v.iter()
                    .map(|v| format!("{:?}", v.version))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(v(None, None), Ok(vec!["TLSv1_3".into(), "TLSv1_2".into()]));
        assert_eq!(v(Some("TLS13"), None), Ok(vec!["TLSv1_3".into()]));
        assert_eq!(v(None, Some("TLS12")), Ok(vec!["TLSv1_2".into()]));
        for (min, max, needle) in [
            (Some("TLS10"), None, "min_version: TLS10 is not supported"),
            (None, Some("TLS11"), "max_version: TLS11 is not supported"),
            (Some("TLS14"), None, "unknown TLS version \"TLS14\""),
            (Some("TLS13"), Some("TLS12"), "above max_version"),
        ] {
            let e = v(min, max).err().unwrap_or_default();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn cipher_suites_map_go_names() {
        let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let s = cipher_suites(&names(&[
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]))
        .unwrap_or_default();
        let tls12: Vec<String> = s
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            tls12,
            [
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert_eq!(
            s.iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .count(),
            3
        );
        let e = cipher_suites(&names(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not supported"),
            "{e}"
        );
        let e = cipher_suites(&names(&["TLS_MADE_UP"]))
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown cipher suite"), "{e}");
    }

    #[test]
    fn curves_map_go_names() {
        let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let c = curves(&names(&["CurveP384", "X25519"])).unwrap_or_default();
        let got: Vec<String> = c.iter().map(|g| format!("{:?}", g.name())).collect();
        assert_eq!(got, ["secp384r1", "X25519"]);
        let e = curves(&names(&["CurveP521"])).err().unwrap_or_default();
        assert!(e.contains("CurveP521 is not supported"), "{e}");
        let e = curves(&names(&["P-256"])).err().unwrap_or_default();
        assert!(e.contains("unknown curve"), "{e}");
    }
}
