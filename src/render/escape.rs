//! Text from a server, shown to a person: the `status` table and the text
//! log. Server strings (`sender_host`, slot names, error texts that
//! tokio-postgres spreads over several lines with `DETAIL:`, a version
//! string from whatever answers on the port) may hold a newline, which
//! forges a row or a log line, or an escape sequence, which retitles,
//! recolours or clears the operator's terminal. They are shown escaped,
//! never obeyed. The JSON outputs, `/metrics` and the topology page
//! escape the way their format does and do not use this.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: control characters (C0,
/// DEL, C1: newlines, ESC that starts ANSI and OSC sequences, BEL that
/// ends them) and the bidirectional formatting characters, which reorder
/// what is displayed ("Trojan Source").
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character written as an escape (`\n`, `\r`,
/// `\t`, else `\u{1b}`), as Rust's debug formatting writes them: visible,
/// inert, and one line. Text without any is returned as is.
pub fn control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::control;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(control("standby1 ñ 東京"), "standby1 ñ 東京");
        assert_eq!(
            control("evil\n\u{1b}]0;pwned\u{7}"),
            r"evil\n\u{1b}]0;pwned\u{7}"
        );
        assert_eq!(control("a\r\tb\u{9b}c\u{7f}"), r"a\r\tb\u{9b}c\u{7f}");
        assert_eq!(control("x\u{202e}y"), r"x\u{202e}y");
        assert!(!control("FATAL: x\nDETAIL: y").contains('\n'));
    }
}
