//! Ed25519 signing keys and signatures in Nix's textual formats.
//!
//! - public key: `name:base64(32-byte public key)`
//!   (`nix key convert-secret-to-public`),
//! - secret key: `name:base64(64-byte secret key)`, the seed followed by the
//!   public key (`nix key generate-secret`),
//! - signature: `name:base64(64-byte signature)`.
//!
//! Binary caches sign the fingerprint of a path (see
//! [`NarInfo::fingerprint`](crate::narinfo::NarInfo::fingerprint)).

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use thiserror::Error;

/// Why a key or signature could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SigningError {
    /// No `name:` prefix, or an empty name.
    #[error("{what} {text:?} has no key name")]
    MissingName {
        /// `public key`, `secret key` or `signature`.
        what: &'static str,
        /// The input, shortened.
        text: String,
    },
    /// The part after the name is not base64.
    #[error("{what} of key {name:?} is not valid base64")]
    InvalidBase64 {
        /// `public key`, `secret key` or `signature`.
        what: &'static str,
        /// The key name.
        name: String,
    },
    /// The decoded bytes have the wrong length.
    #[error("{what} of key {name:?} is {len} bytes, expected {expected}")]
    WrongLength {
        /// `public key`, `secret key` or `signature`.
        what: &'static str,
        /// The key name.
        name: String,
        /// The decoded length.
        len: usize,
        /// The required length.
        expected: usize,
    },
    /// The bytes are not a valid key (e.g. a secret key whose public half
    /// does not match its seed, or a public key that is not a curve point).
    #[error("invalid {what} {name:?}")]
    InvalidKey {
        /// `public key` or `secret key`.
        what: &'static str,
        /// The key name.
        name: String,
    },
}

fn split_named<'a>(what: &'static str, s: &'a str) -> Result<(&'a str, &'a str), SigningError> {
    match s.split_once(':') {
        Some((name, rest)) if !name.is_empty() => Ok((name, rest)),
        _ => Err(SigningError::MissingName {
            what,
            text: s.chars().take(64).collect(),
        }),
    }
}

fn decode_fixed<const N: usize>(
    what: &'static str,
    name: &str,
    b64: &str,
) -> Result<[u8; N], SigningError> {
    let bytes =
        BASE64
            .decode(b64.trim_end().as_bytes())
            .map_err(|_| SigningError::InvalidBase64 {
                what,
                name: name.to_owned(),
            })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| SigningError::WrongLength {
        what,
        name: name.to_owned(),
        len,
        expected: N,
    })
}

/// A named signature, `name:base64(signature)`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    name: String,
    bytes: [u8; 64],
}

impl Signature {
    /// A signature from a key name and the raw 64 bytes.
    pub fn new(name: impl Into<String>, bytes: [u8; 64]) -> Self {
        Signature {
            name: name.into(),
            bytes,
        }
    }

    /// The name of the key that made it.
    pub fn key_name(&self) -> &str {
        &self.name
    }

    /// The raw signature.
    pub fn bytes(&self) -> &[u8; 64] {
        &self.bytes
    }
}

impl FromStr for Signature {
    type Err = SigningError;

    fn from_str(s: &str) -> Result<Self, SigningError> {
        let (name, b64) = split_named("signature", s)?;
        Ok(Signature {
            name: name.to_owned(),
            bytes: decode_fixed("signature", name, b64)?,
        })
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, BASE64.encode(&self.bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// A named Ed25519 public key, `name:base64(key)`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw 32-byte public key.
    pub fn bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `sig` is this key's valid signature of `message`. A signature
    /// by a key of another name never verifies.
    pub fn verify(&self, message: &[u8], sig: &Signature) -> bool {
        sig.name == self.name
            && self
                .key
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig.bytes))
                .is_ok()
    }
}

impl FromStr for PublicKey {
    type Err = SigningError;

    fn from_str(s: &str) -> Result<Self, SigningError> {
        let (name, b64) = split_named("public key", s.trim())?;
        let bytes: [u8; 32] = decode_fixed("public key", name, b64)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| SigningError::InvalidKey {
            what: "public key",
            name: name.to_owned(),
        })?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A named Ed25519 secret key, `name:base64(seed ‖ public key)`.
#[derive(Clone)]
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl SecretKey {
    /// A key from a name and a 32-byte seed.
    pub fn from_seed(name: impl Into<String>, seed: &[u8; 32]) -> Self {
        SecretKey {
            name: name.into(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature {
            name: self.name.clone(),
            bytes: self.key.sign(message).to_bytes(),
        }
    }
}

impl FromStr for SecretKey {
    type Err = SigningError;

    fn from_str(s: &str) -> Result<Self, SigningError> {
        let (name, b64) = split_named("secret key", s.trim())?;
        let bytes: [u8; 64] = decode_fixed("secret key", name, b64)?;
        let key = SigningKey::from_keypair_bytes(&bytes).map_err(|_| SigningError::InvalidKey {
            what: "secret key",
            name: name.to_owned(),
        })?;
        Ok(SecretKey {
            name: name.to_owned(),
            key,
        })
    }
}

/// Prints the secret key file format.
impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.name,
            BASE64.encode(&self.key.to_keypair_bytes())
        )
    }
}

/// Does not print the secret.
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated by `nix key generate-secret --key-name test-1`.
    const SK: &str = "test-1:SZFZTp4GrGOS7IsPzzPieu4uozZjHsZg+ZoFlGL1Mchk8llc1Os/2W7FMf1QBDscJN9L9ZO/kYBCLJIvJKHumw==";
    const PK: &str = "test-1:ZPJZXNTrP9luxTH9UAQ7HCTfS/WTv5GAQiySLySh7ps=";

    #[test]
    fn keys_round_trip_and_sign() {
        let sk: SecretKey = SK.parse().unwrap();
        assert_eq!(sk.to_string(), SK);
        let pk: PublicKey = PK.parse().unwrap();
        assert_eq!(sk.public_key(), pk);
        assert_eq!(pk.to_string(), PK);
        let sig = sk.sign(b"hello");
        assert!(pk.verify(b"hello", &sig));
        assert!(!pk.verify(b"hellO", &sig));
        let parsed: Signature = sig.to_string().parse().unwrap();
        assert_eq!(parsed, sig);
        let other = SecretKey::from_seed("test-1", &[7; 32]);
        assert!(!other.public_key().verify(b"hello", &sig));
        let renamed = Signature::new("test-2", *sig.bytes());
        assert!(!pk.verify(b"hello", &renamed));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            "nocolon".parse::<PublicKey>(),
            Err(SigningError::MissingName { .. })
        ));
        assert!(matches!(
            "k:!!!".parse::<PublicKey>(),
            Err(SigningError::InvalidBase64 { .. })
        ));
        assert!(matches!(
            "k:AAAA".parse::<Signature>(),
            Err(SigningError::WrongLength { len: 3, .. })
        ));
        // Public half not matching the seed.
        let mut bytes = [1u8; 64];
        bytes[32..].copy_from_slice(&[2u8; 32]);
        let s = format!("k:{}", BASE64.encode(&bytes));
        assert!(matches!(
            s.parse::<SecretKey>(),
            Err(SigningError::InvalidKey { .. })
        ));
    }
}
