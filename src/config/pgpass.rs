//! libpq's password file (`~/.pgpass`, `PGPASSFILE`, the `passfile` DSN
//! key): DBAs keep the monitoring password there already, for `psql` and
//! the other tools, and expect every client to read it the same way.
//!
//! Format: `hostname:port:database:username:password`, one entry per line,
//! `*` matching anything in the first four fields, `\` escaping `:` and `\`,
//! `#` starting a comment line. The first matching line wins.

/// What a connection is matched on, as libpq does.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password of the first line of `text` that matches `key`.
pub fn find(text: &str, key: Key<'_>) -> Option<String> {
    let port = key.port.to_string();
    let wanted = [key.host, port.as_str(), key.database, key.user];
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|line| {
            let fields = split(line)?;
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|((raw, value), want)| raw == "*" || value == want);
            matches.then(|| fields[4].1.clone())
        })
}

/// The five fields of a line as (text as written, unescaped value); `None`
/// for a line with fewer fields, which libpq skips.
fn split(line: &str) -> Option<[(String, String); 5]> {
    let mut fields: Vec<(String, String)> = Vec::with_capacity(5);
    let mut current = (String::new(), String::new());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.0.push('\\');
                if let Some(next) = chars.next() {
                    current.0.push(next);
                    current.1.push(next);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
            // An unescaped colon ends the password too, as in libpq.
            ':' => break,
            c => {
                current.0.push(c);
                current.1.push(c);
            }
        }
    }
    fields.push(current);
    fields.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::{find, Key};

    const KEY: Key<'static> = Key {
        host: "10.0.0.1",
        port: 5432,
        database: "postgres",
        user: "monitor",
    };

    #[test]
    fn first_matching_line_wins() {
        let text = "# comment\n\
                    10.0.0.2:5432:*:monitor:other\n\
                    10.0.0.1:5433:*:monitor:wrong-port\n\
                    10.0.0.1:5432:postgres:monitor:s3cret\n\
                    *:*:*:*:fallback\n";
        assert_eq!(find(text, KEY).as_deref(), Some("s3cret"));
        let other = Key {
            user: "someone",
            ..KEY
        };
        assert_eq!(find(text, other).as_deref(), Some("fallback"));
    }

    #[test]
    fn escapes_and_colons_in_the_password() {
        let text = "10.0.0.1:*:*:monitor:a\\:b\\\\c:ignored\r\n";
        assert_eq!(find(text, KEY).as_deref(), Some("a:b\\c"));
        // An escaped `*` is a literal star, not a wildcard.
        assert_eq!(find("\\*:*:*:*:x\n", KEY), None);
        let star = Key { host: "*", ..KEY };
        assert_eq!(find("\\*:*:*:*:x\n", star).as_deref(), Some("x"));
    }

    #[test]
    fn short_lines_and_no_match() {
        assert_eq!(find("10.0.0.1:5432:postgres\n", KEY), None);
        assert_eq!(find("", KEY), None);
        assert_eq!(find("10.0.0.9:*:*:*:x\n", KEY), None);
    }
}
