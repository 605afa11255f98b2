//! PostgreSQL WAL positions (LSNs): parsing, printing and ordering.

use std::fmt;
use std::str::FromStr;

/// A PostgreSQL log sequence number: a byte position in the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// The zero position, which replication commands read as "where the slot is".
    pub const ZERO: Lsn = Lsn(0);

    /// The position as the unsigned 64-bit number Debezium prints in `source.lsn`.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The text was not an LSN in PostgreSQL's `X/Y` hexadecimal form. Each variant carries the
/// whole text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseLsnError {
    /// There is no `/` between the two halves.
    #[error("not a PostgreSQL LSN (expected hexadecimal X/Y): {input:?}")]
    MissingSlash {
        /// The text that was parsed.
        input: String,
    },
    /// A half is not a 32-bit hexadecimal number.
    #[error("not a PostgreSQL LSN (expected hexadecimal X/Y): {input:?}")]
    InvalidHalf {
        /// The text that was parsed.
        input: String,
    },
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (hi, lo) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| ParseLsnError::MissingSlash {
                input: s.to_string(),
            })?;
        let half = |h: &str| {
            u32::from_str_radix(h, 16).map_err(|_| ParseLsnError::InvalidHalf {
                input: s.to_string(),
            })
        };
        let (hi, lo) = (half(hi)?, half(lo)?);
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl From<u64> for Lsn {
    fn from(v: u64) -> Self {
        Lsn(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_form() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("nope".parse::<Lsn>().is_err());
        assert!("1/XYZ".parse::<Lsn>().is_err());
    }

    #[test]
    fn parse_errors_name_the_input() {
        let e = "nope".parse::<Lsn>().unwrap_err();
        assert_eq!(
            e,
            ParseLsnError::MissingSlash {
                input: "nope".into()
            }
        );
        assert_eq!(
            e.to_string(),
            r#"not a PostgreSQL LSN (expected hexadecimal X/Y): "nope""#
        );
        let e = " 1/XYZ".parse::<Lsn>().unwrap_err();
        assert_eq!(
            e,
            ParseLsnError::InvalidHalf {
                input: " 1/XYZ".into()
            }
        );
        assert_eq!(
            e.to_string(),
            r#"not a PostgreSQL LSN (expected hexadecimal X/Y): " 1/XYZ""#
        );
    }
}
