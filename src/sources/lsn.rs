//! WAL positions.
//!
//! PostgreSQL prints an LSN as two hexadecimal halves (`16/B374D848`). The
//! collection is one statement returning one JSON document, so positions
//! reach us as JSON text rather than as binary `pg_lsn` values; they are
//! decoded into [`Lsn`] byte offsets with the row (tokio-postgres' `PgLsn`
//! parses the text), so that every lag is plain integer arithmetic on our
//! side instead of one `pg_wal_lsn_diff` call per column and version in SQL.

use serde::{Deserialize, Deserializer};
use tokio_postgres::types::PgLsn;

/// A WAL position, as a byte offset from the start of WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    /// The position `XXXXXXXX/YYYYYYYY`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Lsn> {
        text.parse::<PgLsn>().ok().map(|l| Lsn(u64::from(l)))
    }

    /// The byte offset, as a gauge value.
    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    /// How many bytes this position is behind `reference`, never negative:
    /// a standby can briefly report a position past a reference read a few
    /// microseconds earlier, and a negative lag would only confuse alerts.
    pub fn behind(self, reference: Lsn) -> f64 {
        reference.0.saturating_sub(self.0) as f64
    }
}

impl From<u64> for Lsn {
    fn from(bytes: u64) -> Lsn {
        Lsn(bytes)
    }
}

/// Decodes an optional position from its text: NULL, and anything that is
/// not a position, read as `None`, so that a malformed position drops its
/// series instead of inventing one or failing the whole collection. For
/// row fields: `#[serde(default, deserialize_with = "lsn::lenient")]`.
pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lsn>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    Ok(text.as_deref().and_then(Lsn::parse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_halves() {
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert_eq!(
            Lsn::parse("16/B374D848"),
            Some(Lsn((0x16 << 32) | 0xB374_D848))
        );
        assert_eq!(Lsn::parse("FFFFFFFF/FFFFFFFF"), Some(Lsn(u64::MAX)));
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "16", "x/1", "1/2/3"] {
            assert_eq!(Lsn::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn lag_saturates() {
        assert_eq!(Lsn(4).behind(Lsn(10)), 6.0);
        assert_eq!(Lsn(10).behind(Lsn(4)), 0.0);
    }

    #[test]
    fn rows_decode_positions_leniently() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(default, deserialize_with = "lenient")]
            at: Option<Lsn>,
        }
        let at = |json: &str| serde_json::from_str::<Row>(json).map(|r| r.at);
        assert_eq!(
            at(r#"{"at": "0/3000000"}"#).ok(),
            Some(Some(Lsn(0x300_0000)))
        );
        assert_eq!(at(r#"{"at": null}"#).ok(), Some(None));
        assert_eq!(at(r#"{}"#).ok(), Some(None));
        assert_eq!(at(r#"{"at": "garbage"}"#).ok(), Some(None));
    }
}
