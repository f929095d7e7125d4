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

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use crate::dsn::{SslMode, TlsOptions};

/// The connector handed to tokio-postgres for every session of a target.
pub type Connector = tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the connector; fails (at start-up) when a file named in the DSN
/// cannot be read or a verifying mode has no CA to verify against.
pub fn connector(options: &TlsOptions) -> Result<Connector, TlsError> {
    let provider = provider();
    let roots = match &options.root_cert {
        Some(path) => Some(load_roots(path)?),
        None => None,
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
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError(format!("sslkey {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError(format!("sslcert/sslkey: {e}")))?
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(TlsError("sslcert and sslkey go together".into()))
        }
        (None, None) => builder.with_no_client_auth(),
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

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| TlsError(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    if path == Path::new(crate::dsn::SYSTEM_ROOTS) {
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
        return Ok(store);
    }
    for cert in load_certs(path).map_err(|e| TlsError(format!("sslrootcert {e}")))? {
        store
            .add(cert)
            .map_err(|e| TlsError(format!("sslrootcert {}: {e}", path.display())))?;
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
