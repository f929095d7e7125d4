//! Requests to the exporter: a ureq agent for ordinary ones, raw bytes on a
//! socket for malformed ones, and curl for what ureq does not do (client
//! certificates, custom CAs, bare methods).

use std::io::Read;
use std::process::Command;
use std::time::Duration;

/// A ureq agent for loopback requests: 5 s deadline, statuses as values.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends `request` verbatim on a new loopback connection and returns all
/// bytes until the server closes it.
pub fn raw_request(port: u16, request: &str) -> Vec<u8> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// As [`raw_request`], `None` when nothing listens yet.
pub fn try_raw_request(port: u16, request: &str) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    Some(out)
}

/// The HTTP status code curl reports for `args` (5 s at most), for what the
/// ureq agent does not do: client certificates, custom CAs, bare methods.
pub fn curl_status(args: &[&str]) -> String {
    curl_write_out("%{http_code}", args)
}

/// As [`curl_status`], with curl's `--write-out` format `format` (such as
/// `%{http_version} %{http_code}`) instead of the status alone.
pub fn curl_write_out(format: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", format, "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
