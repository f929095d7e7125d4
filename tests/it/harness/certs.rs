//! Test certificates made with openssl: a self-signed CA and leaves signed by
//! it, for the TLS server and client-certificate tests.

use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs `openssl args` in `dir`; fails with openssl's stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The key of a test certificate.
#[derive(Clone, Copy, Debug)]
pub enum KeyAlg {
    Rsa2048,
    /// ECDSA on P-256.
    EcP256,
}

impl KeyAlg {
    /// openssl's `-newkey` arguments for this key.
    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyAlg::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyAlg::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        }
    }
}

/// A self-signed CA in `dir`: `name.crt` and `name.key`, subject
/// `/CN=name`, valid for two days.
pub fn make_ca(dir: &Path, name: &str, key: KeyAlg) {
    let (key_file, crt_file, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(key.newkey());
    args.extend_from_slice(&[
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &key_file,
        "-out",
        &crt_file,
        "-subj",
        &subject,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &args);
}

/// A certificate in `dir` signed by the CA `ca` (see [`make_ca`]):
/// `name.crt` and `name.key` (with `name.csr` and `name.ext` beside them),
/// subject `/CN=cn`, extended key usage `usage` (`serverAuth`,
/// `clientAuth`), subject alternative names `san`, valid for two days.
pub fn make_leaf(dir: &Path, name: &str, ca: &str, key: KeyAlg, cn: &str, usage: &str, san: &str) {
    let (key_file, csr, subject) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("/CN={cn}"),
    );
    let mut args = vec!["req"];
    args.extend_from_slice(key.newkey());
    args.extend_from_slice(&[
        "-nodes", "-keyout", &key_file, "-out", &csr, "-subj", &subject,
    ]);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    fs::write(
        dir.join(&ext),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage={usage}\nsubjectAltName={san}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}
