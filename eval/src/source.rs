//! Source text decoding. Nix source files and strings are byte strings,
//! while the parser works on `str`. Bytes that are not valid UTF-8 are
//! mapped one-to-one into a private-use range (U+10FF00 + byte) before
//! parsing, and mapped back to the original bytes when string literals,
//! paths and names are lowered, so non-UTF-8 input round-trips exactly
//! as it does in Nix.

const BASE: u32 = 0x10FF00;

/// Decodes source bytes, escaping invalid UTF-8 bytes. Line endings are
/// normalised as Nix's lexer does: CR LF and lone CR become LF.
pub fn decode(bytes: &[u8]) -> String {
    let normalised;
    let bytes = if bytes.contains(&b'\r') {
        let mut v = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\r' {
                v.push(b'\n');
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            } else {
                v.push(bytes[i]);
            }
            i += 1;
        }
        normalised = v;
        &normalised[..]
    } else {
        bytes
    };
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let good = e.valid_up_to();
                // Safe: the prefix was validated by from_utf8.
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    out.push(char::from_u32(BASE + b as u32).unwrap_or('\u{FFFD}'));
                }
                rest = &rest[good + bad..];
            }
        }
    }
}

/// Encodes lowered text back to bytes, restoring escaped raw bytes.
pub fn encode(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return s.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let u = c as u32;
        if (BASE..BASE + 256).contains(&u) {
            out.push((u - BASE) as u8);
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_invalid_utf8() {
        let b = b"a\xff\xfeb\xc3\xa9";
        assert_eq!(encode(&decode(b)), b.to_vec());
    }
}
