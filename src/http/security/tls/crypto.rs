//! Protocol versions, cipher suites and curves, by the names Go gives them
//! in exporter-toolkit: each mapped to rustls, or refused with the field
//! named when rustls cannot do it (TLS 1.0 and 1.1, CBC and RSA
//! key-exchange suites, the P-521 curve).

use rustls::crypto::SupportedKxGroup;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

pub(super) fn versions(
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
pub(super) fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, String> {
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
pub(super) fn curves(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
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
