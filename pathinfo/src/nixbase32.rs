//! nixbase32: the base-32 encoding Nix uses for store path hashes and for
//! printing hashes.
//!
//! The alphabet omits `e`, `o`, `t` and `u`, and the bit order is Nix's own:
//! the encoded string is produced from the last 5-bit group to the first, and
//! groups are taken from the little end of the byte string. Decoding rejects
//! characters outside the alphabet, lengths that no byte string encodes to,
//! and nonzero padding bits.

use thiserror::Error;

/// The 32 characters of the nixbase32 alphabet, in digit order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Maps an ASCII byte to its digit value, or 0xff when it is not a digit.
const DECODE_TABLE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a nixbase32 string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A character outside the nixbase32 alphabet.
    #[error("invalid nixbase32 character {character:?} at position {position}")]
    InvalidCharacter {
        /// The offending byte.
        character: char,
        /// Its position in the input.
        position: usize,
    },
    /// The length is not the encoded length of any byte string.
    #[error("invalid nixbase32 length {0}")]
    InvalidLength(usize),
    /// The most significant digit carries bits beyond the decoded length.
    #[error("nixbase32 string has nonzero padding bits")]
    NonzeroPadding,
}

/// The length of the nixbase32 encoding of `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    if len == 0 { 0 } else { (len * 8 - 1) / 5 + 1 }
}

/// The number of bytes an encoded string of `len` characters decodes to, or
/// `None` when no byte string encodes to that length.
pub const fn decoded_len(len: usize) -> Option<usize> {
    let n = len * 5 / 8;
    if encoded_len(n) == len { Some(n) } else { None }
}

/// Encodes bytes as nixbase32.
pub fn encode(input: &[u8]) -> String {
    let mut out = vec![0u8; encoded_len(input.len())];
    encode_into(input, &mut out);
    // The alphabet is ASCII.
    out.into_iter().map(char::from).collect()
}

/// Encodes bytes as nixbase32 into `out`, which must be exactly
/// [`encoded_len`]`(input.len())` bytes long; excess or missing room is
/// left untouched or truncated.
pub fn encode_into(input: &[u8], out: &mut [u8]) {
    let len = encoded_len(input.len()).min(out.len());
    for (k, n) in (0..len).rev().enumerate() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = input[i] >> j;
        let high = if i + 1 < input.len() {
            // Widen before shifting: j may be 0, which would shift by 8.
            ((input[i + 1] as u16) << (8 - j)) as u8
        } else {
            0
        };
        out[k] = ALPHABET[((low | high) & 0x1f) as usize];
    }
}

/// Decodes a nixbase32 string.
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, DecodeError> {
    let input = input.as_ref();
    let len = decoded_len(input.len()).ok_or(DecodeError::InvalidLength(input.len()))?;
    let mut out = vec![0u8; len];
    decode_into(input, &mut out)?;
    Ok(out)
}

/// Decodes a nixbase32 string into a fixed-size array, failing when the
/// length does not match `N` bytes.
pub fn decode_fixed<const N: usize>(input: impl AsRef<[u8]>) -> Result<[u8; N], DecodeError> {
    let input = input.as_ref();
    if input.len() != encoded_len(N) {
        return Err(DecodeError::InvalidLength(input.len()));
    }
    let mut out = [0u8; N];
    decode_into(input, &mut out)?;
    Ok(out)
}

/// Decodes `input` into `out`, whose length must be the decoded length.
fn decode_into(input: &[u8], out: &mut [u8]) -> Result<(), DecodeError> {
    let size = out.len();
    for (n, &c) in input.iter().rev().enumerate() {
        let digit = DECODE_TABLE[c as usize];
        if digit == 0xff {
            return Err(DecodeError::InvalidCharacter {
                character: c as char,
                position: input.len() - n - 1,
            });
        }
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let wide = (digit as u16) << j;
        out[i] |= wide as u8;
        let carry = (wide >> 8) as u8;
        if i + 1 < size {
            out[i + 1] |= carry;
        } else if carry != 0 {
            return Err(DecodeError::NonzeroPadding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // sha256("") as printed by `nix-hash --type sha256 --to-base32`.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).unwrap();
        assert_eq!(
            encode(&bytes),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(decode(encode(&bytes)).unwrap(), bytes);
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(encode(&[0x1f]), "0z");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            decode("e0"),
            Err(DecodeError::InvalidCharacter {
                character: 'e',
                position: 0
            })
        ));
        assert_eq!(decode("0"), Err(DecodeError::InvalidLength(1)));
        // One byte encodes to two digits; the top digit may only use 3 bits.
        assert_eq!(decode("7z").unwrap(), vec![0xff]);
        assert_eq!(decode("8z"), Err(DecodeError::NonzeroPadding));
        assert_eq!(decode_fixed::<20>("00"), Err(DecodeError::InvalidLength(2)));
    }
}
