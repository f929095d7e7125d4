//! Client certificates: `client_auth_type`, `client_ca` and
//! `client_allowed_sans`, with exporter-toolkit's meaning of each.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::Pem;

/// The verifier `client_auth_type` asks for (`None`: no client
/// certificate is asked), trusting `client_ca` where it verifies.
pub(super) fn client_verifier(
    auth_type: Option<&str>,
    ca: Option<Pem>,
    allowed_sans: Option<Vec<String>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let auth_type = auth_type.unwrap_or("NoClientCert");
    let roots = ca.as_ref().map(client_roots).transpose()?;
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
    with_sans(auth_type, verifier, allowed_sans).map(Some)
}

/// The CA certificates `client_ca` names, to verify clients against.
fn client_roots(pem: &Pem) -> Result<Arc<RootCertStore>, String> {
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
    Ok(Arc::new(roots))
}

/// The verifier of `auth_type`, warned about when it verifies nothing,
/// and checking `client_allowed_sans` when given (which needs a client
/// certificate to be required).
fn with_sans(
    auth_type: &str,
    verifier: Arc<dyn ClientCertVerifier>,
    allowed_sans: Option<Vec<String>>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    if matches!(
        auth_type,
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert"
    ) {
        tracing::warn!(
            client_auth_type = auth_type,
            "client certificates are requested but not verified; only RequireAndVerifyClientCert authenticates clients"
        );
    }
    let Some(allowed) = allowed_sans else {
        return Ok(verifier);
    };
    if !matches!(
        auth_type,
        "RequireAnyClientCert" | "RequireClientCert" | "RequireAndVerifyClientCert"
    ) {
        return Err(sans_needs_cert());
    }
    Ok(Arc::new(SanVerifier {
        inner: verifier,
        allowed,
    }))
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
