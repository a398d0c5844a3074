//! BLAKE3-256 digests: the identity of every chunk, blob and directory.

use std::fmt;
use std::str::FromStr;

/// Length of a digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// A BLAKE3-256 digest. Printed as lowercase hex; parsed from hex with or
/// without a `b3:` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; DIGEST_LEN]);

/// Why a string or byte slice is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("a digest is {DIGEST_LEN} bytes, got {0}")]
    WrongLength(usize),
    #[error("a digest is 64 lowercase hex characters (optionally prefixed with `b3:`), got {0:?}")]
    BadHex(String),
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// The digest of the empty byte string (also the digest of an empty directory).
    pub fn empty() -> Digest {
        Digest::of(&[])
    }

    pub const fn from_bytes(bytes: [u8; DIGEST_LEN]) -> Digest {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// Lowercase hex, no prefix.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(DIGEST_LEN * 2);
        for byte in self.0 {
            out.push(char::from(HEX[(byte >> 4) as usize]));
            out.push(char::from(HEX[(byte & 0xf) as usize]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl From<blake3::Hash> for Digest {
    fn from(hash: blake3::Hash) -> Self {
        Digest(*hash.as_bytes())
    }
}

impl TryFrom<&[u8]> for Digest {
    type Error = DigestError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let array: [u8; DIGEST_LEN] = bytes
            .try_into()
            .map_err(|_| DigestError::WrongLength(bytes.len()))?;
        Ok(Digest(array))
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("b3:").unwrap_or(s).as_bytes();
        if hex.len() != DIGEST_LEN * 2 {
            return Err(DigestError::BadHex(s.to_owned()));
        }
        let mut out = [0u8; DIGEST_LEN];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(DigestError::BadHex(s.to_owned()));
            };
            out[i] = (hi << 4) | lo;
        }
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b3:{}", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_prefix() {
        let d = Digest::of(b"hello");
        let hex = d.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex.parse::<Digest>(), Ok(d));
        assert_eq!(format!("b3:{hex}").parse::<Digest>(), Ok(d));
        assert!(hex.to_uppercase().parse::<Digest>().is_err());
        assert!(hex[1..].parse::<Digest>().is_err());
        assert!(format!("{}g", &hex[1..]).parse::<Digest>().is_err());
    }

    #[test]
    fn empty_is_blake3_of_nothing() {
        assert_eq!(
            Digest::empty().to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
