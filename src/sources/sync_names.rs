//! How many synchronous standbys `synchronous_standby_names` asks for.
//!
//! The primary waits at commit until that many standbys confirm; when fewer
//! are connected, commits hang. PostgreSQL does not expose the number, so we
//! read it from the setting with the grammar of the server's `syncrep_gram.y`:
//! `FIRST n (list)`, `ANY n (list)`, `n (list)` and a bare list (which means 1).

/// `synchronous_standby_names` as the primary reads it (empty when unset).
#[derive(Debug, Clone, Copy)]
pub struct SyncNames<'a>(pub &'a str);

impl SyncNames<'_> {
    /// Synchronous standbys a commit waits for (see [`required`]).
    pub fn required(self) -> Option<u32> {
        required(self.0)
    }

    /// The standby names it lists (see [`listed`]).
    pub fn listed(self) -> Vec<String> {
        listed(self.0)
    }

    /// Whether it names any standby: commits may then wait.
    pub fn is_set(self) -> bool {
        !self.0.trim().is_empty()
    }
}

/// The number of synchronous standbys required; 0 when the setting is empty.
/// An unparsable value yields `None` (the family is then absent): the server
/// itself would have refused such a value, so this only happens with odd quoting.
pub fn required(setting: &str) -> Option<u32> {
    let s = setting.trim();
    if s.is_empty() {
        return Some(0);
    }
    let (keyword, rest) = split_word(s);
    let rest_after_method = match keyword.to_ascii_lowercase().as_str() {
        "first" | "any" => Some(rest.trim_start()),
        _ => None,
    };
    let candidate = rest_after_method.unwrap_or(s);
    let (number, after) = split_word(candidate);
    if let Ok(n) = number.parse::<u32>() {
        if after.trim_start().starts_with('(') {
            return Some(n);
        }
    }
    // Anything else is a plain list, which asks for one standby; that
    // includes `FIRST` or `ANY` without a number and a parenthesised list,
    // which can only be a standby literally called "first" or "any".
    plain_list(s)
}

/// The standby names listed in `synchronous_standby_names`, without the
/// `FIRST n (...)` / `ANY n (...)` wrapping and quotes; `*` is dropped
/// since it matches whoever connects.
pub fn listed(setting: &str) -> Vec<String> {
    let inner = match (setting.find('('), setting.rfind(')')) {
        (Some(a), Some(b)) if b > a => &setting[a + 1..b],
        _ => setting,
    };
    inner
        .split(',')
        .map(|n| n.trim().trim_matches('"').to_string())
        .filter(|n| !n.is_empty() && n != "*")
        .collect()
}

fn split_word(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn plain_list(s: &str) -> Option<u32> {
    if s.contains('(') || s.contains(')') {
        return None;
    }
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::{listed, required};

    #[test]
    fn all_forms() {
        let cases = [
            ("", Some(0)),
            ("   ", Some(0)),
            ("*", Some(1)),
            ("standby1", Some(1)),
            ("s1, s2, s3", Some(1)),
            ("\"my standby\", s2", Some(1)),
            ("FIRST 1 (standby1)", Some(1)),
            ("first 2 (s1, s2, s3)", Some(2)),
            ("ANY 2 (a, b)", Some(2)),
            ("any 3(a,b,c)", Some(3)),
            ("2 (s1, s2)", Some(2)),
            ("1(s1)", Some(1)),
            ("FIRST 1 (*)", Some(1)),
            ("first", Some(1)),
            ("FIRST x (a)", None),
        ];
        for (input, want) in cases {
            assert_eq!(required(input), want, "input {input:?}");
        }
    }

    #[test]
    fn listed_names_without_wrapping() {
        assert_eq!(listed("FIRST 1 (s1, \"s 2\")"), vec!["s1", "s 2"]);
        assert_eq!(listed("ANY 2 (a,b)"), vec!["a", "b"]);
        assert_eq!(listed("s1, s2"), vec!["s1", "s2"]);
        assert!(listed("*").is_empty());
        assert!(listed("").is_empty());
    }
}
