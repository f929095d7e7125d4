//! WAL positions.
//!
//! PostgreSQL prints an LSN as two hexadecimal halves (`16/B374D848`). The
//! collection is one statement returning one JSON document, so positions
//! reach us as JSON text rather than as binary `pg_lsn` values; tokio-postgres'
//! `PgLsn` parses that text, and we turn it into byte offsets so that every
//! lag is plain integer arithmetic on our side instead of one
//! `pg_wal_lsn_diff` call per column and version in SQL.

use tokio_postgres::types::PgLsn;

/// The byte offset of `XXXXXXXX/YYYYYYYY`; `None` for anything else, so
/// that a malformed or NULL position drops the series instead of inventing one.
pub fn parse(text: &str) -> Option<u64> {
    text.parse::<PgLsn>().ok().map(u64::from)
}

/// `reference - position` in bytes, never negative: a standby can briefly
/// report a position past a reference read a few microseconds earlier, and a
/// negative lag would only confuse alerts.
pub fn diff(reference: u64, position: u64) -> f64 {
    reference.saturating_sub(position) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_halves() {
        assert_eq!(parse("0/0"), Some(0));
        assert_eq!(parse("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(parse("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("16"), None);
        assert_eq!(parse("x/1"), None);
        assert_eq!(parse("1/2/3"), None);
    }

    #[test]
    fn diff_saturates() {
        assert_eq!(diff(10, 4), 6.0);
        assert_eq!(diff(4, 10), 0.0);
    }
}
