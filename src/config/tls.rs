//! TLS towards PostgreSQL, with libpq's meaning of every `sslmode`.
//!
//! tokio-postgres only knows whether to ask for TLS (disable, prefer,
//! require); what is verified is up to the connector. So the connector is
//! built per target from the DSN's TLS options:
//!
//! | sslmode | encrypted | certificate chain | host name |
//! |---|---|---|---|
//! | disable | no | | |
//! | allow, prefer | if the server offers | not checked | not checked |
//! | require | yes | checked only when `sslrootcert` is given (as libpq) | not checked |
//! | verify-ca | yes | checked against `sslrootcert` | not checked |
//! | verify-full | yes | checked against `sslrootcert` | checked |
//!
//! `sslrootcert=system` (libpq 16) trusts the operating system's CA store,
//! for servers with publicly signed certificates; the DSN parser has
//! already made it `verify-full`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// libpq's `sslmode`, all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(
                    "sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        .to_string(),
                )
            }
        })
    }
}

/// TLS options that libpq reads from the DSN and tokio-postgres does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    /// Trusted CA; with `require` it upgrades to `verify-ca`, as in libpq.
    pub root_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// What those files held when the configuration was loaded
    /// ([`load_files`]): building a connector then reads no
    /// file (the supervisor never waits on a disk), and a reload that finds
    /// a file changed restarts its target with the new content.
    pub files: Option<Arc<TlsFiles>>,
}

/// `sslrootcert` value meaning "the operating system's CA store".
pub const SYSTEM_ROOTS: &str = "system";

/// The connector handed to tokio-postgres for every session of a target.
pub type Connector = tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The contents of the files a DSN names (`sslrootcert`, `sslcert`,
/// `sslkey`), read once when the configuration is loaded. `Debug` shows
/// sizes only: the key is a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `None` for `sslrootcert=system` or no `sslrootcert`.
    root_cert: Option<Vec<u8>>,
    client_cert: Option<Vec<u8>>,
    client_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = |b: &Option<Vec<u8>>| b.as_ref().map(Vec::len);
        f.debug_struct("TlsFiles")
            .field("root_cert_bytes", &len(&self.root_cert))
            .field("client_cert_bytes", &len(&self.client_cert))
            .field("client_key_bytes", &len(&self.client_key))
            .finish()
    }
}

/// Reads the files `options` names: regular files of at most 4 MiB each,
/// under a deadline ([`crate::config::file_read`]). Errors name the key and the
/// file.
pub fn load_files(options: &TlsOptions) -> Result<TlsFiles, TlsError> {
    let read = |key: &str, path: &Path| {
        crate::config::file_read::read(path, crate::config::file_read::Kind::Pem)
            .map(|c| c.bytes)
            .map_err(|e| TlsError(format!("{key} {}: {e}", path.display())))
    };
    Ok(TlsFiles {
        root_cert: match &options.root_cert {
            Some(path) if path != Path::new(SYSTEM_ROOTS) => Some(read("sslrootcert", path)?),
            _ => None,
        },
        client_cert: options
            .client_cert
            .as_deref()
            .map(|p| read("sslcert", p))
            .transpose()?,
        client_key: options
            .client_key
            .as_deref()
            .map(|p| read("sslkey", p))
            .transpose()?,
    })
}

/// Builds the connector from the files' contents read by [`load_files`]
/// (read now when they were not); fails when they do not parse or a
/// verifying mode has no CA to verify against.
pub fn connector(options: &TlsOptions) -> Result<Connector, TlsError> {
    let read_now;
    let files = match &options.files {
        Some(files) => files.as_ref(),
        None => {
            read_now = load_files(options)?;
            &read_now
        }
    };
    let provider = provider();
    let roots = match (&options.root_cert, &files.root_cert) {
        (Some(path), Some(pem)) => Some(load_roots(path, pem)?),
        (Some(path), None) if path == Path::new(SYSTEM_ROOTS) => Some(system_roots()?),
        (Some(path), None) => {
            return Err(TlsError(format!(
                "sslrootcert {}: not read with the configuration",
                path.display()
            )))
        }
        (None, _) => None,
    };
    let verify_chain = match options.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => roots.is_some(),
        _ => false,
    };
    let verifier: Arc<dyn ServerCertVerifier> = if verify_chain {
        let roots = roots.ok_or_else(|| {
            TlsError(format!(
                "sslmode={} needs sslrootcert (the CA that signed the server certificate)",
                mode_name(options.mode)
            ))
        })?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError(format!("sslrootcert: {e}")))?;
        if options.mode == SslMode::VerifyFull {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        }
    } else {
        Arc::new(AcceptAny(provider.clone()))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (
        (&options.client_cert, &files.client_cert),
        (&options.client_key, &files.client_key),
    ) {
        ((Some(cert_path), Some(cert)), (Some(key_path), Some(key))) => {
            let chain =
                load_certs(cert, cert_path).map_err(|e| TlsError(format!("sslcert {e}")))?;
            // The key's text never goes into a message.
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| {
                TlsError(format!(
                    "sslkey {}: no readable private key",
                    key_path.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError(format!("sslcert/sslkey: {e}")))?
        }
        ((None, _), (None, _)) => builder.with_no_client_auth(),
        ((Some(_), _), (Some(_), _)) => {
            return Err(TlsError(
                "sslcert/sslkey: not read with the configuration".into(),
            ))
        }
        _ => return Err(TlsError("sslcert and sslkey go together".into())),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Allow => "allow",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

/// The certificates of a PEM text; errors start with the file's path.
fn load_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_roots(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in load_certs(pem, path).map_err(|e| TlsError(format!("sslrootcert {e}")))? {
        store
            .add(cert)
            .map_err(|e| TlsError(format!("sslrootcert {}: {e}", path.display())))?;
    }
    Ok(store)
}

/// `sslrootcert=system`: the operating system's CA store.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    // Honours SSL_CERT_FILE and SSL_CERT_DIR, like OpenSSL.
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(TlsError(format!(
            "sslrootcert=system: no CA certificate found in the system store{why}"
        )));
    }
    Ok(store)
}

/// `verify-ca`: the chain must lead to the CA; the name may differ.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: encrypted, not authenticated, as
/// libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
