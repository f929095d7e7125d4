//! SQL text built from configuration values (the heartbeat's table and
//! cluster names), for the statements that cannot take parameters: the
//! collection is one simple-protocol statement, and the capability probe too.

/// A SQL string literal. Configuration values are validated before they
/// get here; doubling the quote keeps even an odd one a literal, never SQL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(literal("main"), "'main'");
        assert_eq!(literal("o'brien"), "'o''brien'");
    }
}
