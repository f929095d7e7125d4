//! Error messages with their causes, for log lines and `pgrepl_last_error`.
//!
//! tokio-postgres and deadpool say only "db error" or "error connecting" at
//! the top and keep what the server or the socket said in the source chain;
//! the operator needs the whole chain on one line, once.

use std::error::Error as StdError;

/// An error with its causes, deduplicated: tokio-postgres says only
/// "db error" at the top and keeps the server's message in the source.
pub fn describe(err: &dyn StdError) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.len() > 1 {
        parts.retain(|p| p != "db error");
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn drops_db_error_noise() {
        let e = std::io::Error::other("connection refused");
        assert_eq!(describe(&e), "connection refused");
    }
}
