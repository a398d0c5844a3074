//! Nix hashes: the algorithms Nix knows (md5, sha1, sha256, sha512), parsing
//! every textual form Nix accepts and printing each of them.
//!
//! Forms: bare base16, nixbase32 or base64 digests (with the algorithm known
//! from context), `algo:digest` in any of those three encodings, and SRI
//! (`algo-base64`). The encoding of a bare digest is recognised by its length,
//! as Nix does.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use md5::Digest as _;
use thiserror::Error;

use crate::nixbase32;

/// A hash algorithm Nix supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlgo {
    /// Every supported algorithm.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The name Nix uses (`md5`, `sha1`, `sha256`, `sha512`).
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// The digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Length of the base16 form of a digest.
    pub const fn base16_len(self) -> usize {
        self.digest_len() * 2
    }

    /// Length of the nixbase32 form of a digest.
    pub const fn nixbase32_len(self) -> usize {
        nixbase32::encoded_len(self.digest_len())
    }

    /// Length of the (padded) base64 form of a digest.
    pub const fn base64_len(self) -> usize {
        self.digest_len().div_ceil(3) * 4
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashAlgo {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, HashError> {
        match s {
            "md5" => Ok(HashAlgo::Md5),
            "sha1" => Ok(HashAlgo::Sha1),
            "sha256" => Ok(HashAlgo::Sha256),
            "sha512" => Ok(HashAlgo::Sha512),
            _ => Err(HashError::UnknownAlgo(s.to_owned())),
        }
    }
}

/// Why a hash could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashError {
    /// The algorithm name is not one Nix knows.
    #[error("unknown hash algorithm {0:?}")]
    UnknownAlgo(String),
    /// A prefixed form was expected but there is no `algo:` or `algo-` prefix.
    #[error("hash {0:?} does not state its algorithm")]
    MissingAlgo(String),
    /// The digest length matches none of the encodings for this algorithm.
    #[error("hash {hash:?} has the wrong length for {algo}")]
    WrongLength {
        /// The algorithm.
        algo: HashAlgo,
        /// The digest text.
        hash: String,
    },
    /// The digest text is not valid in the encoding its length implies.
    #[error("invalid {encoding} digest {hash:?} for {algo}")]
    InvalidEncoding {
        /// The algorithm.
        algo: HashAlgo,
        /// `base16`, `nixbase32` or `base64`.
        encoding: &'static str,
        /// The digest text.
        hash: String,
    },
    /// A hash of a different algorithm was required.
    #[error("expected a {expected} hash, got {got}")]
    AlgoMismatch {
        /// The required algorithm.
        expected: HashAlgo,
        /// The algorithm found.
        got: HashAlgo,
    },
}

/// A digest together with its algorithm.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NixHash {
    /// An MD5 digest.
    Md5([u8; 16]),
    /// A SHA-1 digest.
    Sha1([u8; 20]),
    /// A SHA-256 digest.
    Sha256([u8; 32]),
    /// A SHA-512 digest.
    Sha512(Box<[u8; 64]>),
}

impl NixHash {
    /// Builds a hash from an algorithm and raw digest bytes.
    pub fn from_digest(algo: HashAlgo, digest: &[u8]) -> Result<Self, HashError> {
        let wrong = || HashError::WrongLength {
            algo,
            hash: data_encoding::HEXLOWER.encode(digest),
        };
        Ok(match algo {
            HashAlgo::Md5 => NixHash::Md5(digest.try_into().map_err(|_| wrong())?),
            HashAlgo::Sha1 => NixHash::Sha1(digest.try_into().map_err(|_| wrong())?),
            HashAlgo::Sha256 => NixHash::Sha256(digest.try_into().map_err(|_| wrong())?),
            HashAlgo::Sha512 => NixHash::Sha512(Box::new(digest.try_into().map_err(|_| wrong())?)),
        })
    }

    /// Hashes `data` with `algo`.
    pub fn digest(algo: HashAlgo, data: &[u8]) -> Self {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        match self {
            NixHash::Md5(_) => HashAlgo::Md5,
            NixHash::Sha1(_) => HashAlgo::Sha1,
            NixHash::Sha256(_) => HashAlgo::Sha256,
            NixHash::Sha512(_) => HashAlgo::Sha512,
        }
    }

    /// The raw digest bytes.
    pub fn digest_bytes(&self) -> &[u8] {
        match self {
            NixHash::Md5(d) => d,
            NixHash::Sha1(d) => d,
            NixHash::Sha256(d) => d,
            NixHash::Sha512(d) => &d[..],
        }
    }

    /// Lowercase base16 digest, without algorithm.
    pub fn to_base16(&self) -> String {
        data_encoding::HEXLOWER.encode(self.digest_bytes())
    }

    /// nixbase32 digest, without algorithm.
    pub fn to_nixbase32(&self) -> String {
        nixbase32::encode(self.digest_bytes())
    }

    /// Padded base64 digest, without algorithm.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.digest_bytes())
    }

    /// `algo:base16`.
    pub fn to_typed_base16(&self) -> String {
        format!("{}:{}", self.algo(), self.to_base16())
    }

    /// `algo:nixbase32`, the form narinfo files and store path
    /// fingerprints use.
    pub fn to_typed_nixbase32(&self) -> String {
        format!("{}:{}", self.algo(), self.to_nixbase32())
    }

    /// `algo:base64`.
    pub fn to_typed_base64(&self) -> String {
        format!("{}:{}", self.algo(), self.to_base64())
    }

    /// SRI form, `algo-base64`.
    pub fn to_sri(&self) -> String {
        format!("{}-{}", self.algo(), self.to_base64())
    }

    /// Parses a digest of a known algorithm in base16, nixbase32 or base64
    /// (chosen by length), without prefix.
    pub fn parse_unprefixed(algo: HashAlgo, s: &str) -> Result<Self, HashError> {
        let invalid = |encoding| HashError::InvalidEncoding {
            algo,
            encoding,
            hash: s.to_owned(),
        };
        let bytes = if s.len() == algo.base16_len() {
            HEXLOWER_PERMISSIVE
                .decode(s.as_bytes())
                .map_err(|_| invalid("base16"))?
        } else if s.len() == algo.nixbase32_len() {
            nixbase32::decode(s).map_err(|_| invalid("nixbase32"))?
        } else if s.len() == algo.base64_len() {
            BASE64.decode(s.as_bytes()).map_err(|_| invalid("base64"))?
        } else {
            return Err(HashError::WrongLength {
                algo,
                hash: s.to_owned(),
            });
        };
        Self::from_digest(algo, &bytes)
    }

    /// Parses an SRI hash (`algo-base64`).
    pub fn parse_sri(s: &str) -> Result<Self, HashError> {
        let (algo, rest) = s
            .split_once('-')
            .ok_or_else(|| HashError::MissingAlgo(s.to_owned()))?;
        let algo: HashAlgo = algo.parse()?;
        if rest.len() != algo.base64_len() {
            return Err(HashError::WrongLength {
                algo,
                hash: rest.to_owned(),
            });
        }
        let bytes = BASE64
            .decode(rest.as_bytes())
            .map_err(|_| HashError::InvalidEncoding {
                algo,
                encoding: "base64",
                hash: rest.to_owned(),
            })?;
        Self::from_digest(algo, &bytes)
    }

    /// Parses a hash that states its algorithm: `algo:digest` (digest in
    /// base16, nixbase32 or base64) or SRI `algo-base64`.
    pub fn parse_prefixed(s: &str) -> Result<Self, HashError> {
        if let Some((algo, rest)) = s.split_once(':') {
            let algo: HashAlgo = algo.parse()?;
            Self::parse_unprefixed(algo, rest)
        } else if s.contains('-') {
            Self::parse_sri(s)
        } else {
            Err(HashError::MissingAlgo(s.to_owned()))
        }
    }

    /// Parses any form: prefixed or SRI, or bare when `algo` is given. When
    /// both a prefix and `algo` are present they must agree.
    pub fn parse_any(s: &str, algo: Option<HashAlgo>) -> Result<Self, HashError> {
        let prefixed = s.contains(':') || s.contains('-');
        let hash = match (prefixed, algo) {
            (true, _) => Self::parse_prefixed(s)?,
            (false, Some(algo)) => return Self::parse_unprefixed(algo, s),
            (false, None) => return Err(HashError::MissingAlgo(s.to_owned())),
        };
        match algo {
            Some(expected) if expected != hash.algo() => Err(HashError::AlgoMismatch {
                expected,
                got: hash.algo(),
            }),
            _ => Ok(hash),
        }
    }
}

impl fmt::Debug for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NixHash({})", self.to_typed_nixbase32())
    }
}

/// Prints `algo:nixbase32`.
impl fmt::Display for NixHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_typed_nixbase32())
    }
}

/// Parses `algo:digest` or SRI.
impl FromStr for NixHash {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, HashError> {
        Self::parse_prefixed(s)
    }
}

/// An incremental hasher for any [`HashAlgo`].
#[derive(Clone)]
pub enum Hasher {
    /// MD5 state.
    Md5(md5::Md5),
    /// SHA-1 state.
    Sha1(sha1::Sha1),
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `algo`.
    pub fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Digest::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Digest::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
            Hasher::Sha512(h) => sha2::Digest::update(h, data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> NixHash {
        match self {
            Hasher::Md5(h) => NixHash::Md5(h.finalize().into()),
            Hasher::Sha1(h) => NixHash::Sha1(h.finalize().into()),
            Hasher::Sha256(h) => NixHash::Sha256(sha2::Digest::finalize(h).into()),
            Hasher::Sha512(h) => NixHash::Sha512(Box::new(sha2::Digest::finalize(h).into())),
        }
    }
}

/// SHA-256 of `data` as raw bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(data)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let h = NixHash::digest(HashAlgo::Sha256, b"");
        assert_eq!(
            h.to_typed_base16(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            h.to_sri(),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        for form in [
            h.to_typed_base16(),
            h.to_typed_nixbase32(),
            h.to_typed_base64(),
            h.to_sri(),
        ] {
            assert_eq!(form.parse::<NixHash>().unwrap(), h, "{form}");
        }
        assert_eq!(
            NixHash::parse_any(&h.to_nixbase32(), Some(HashAlgo::Sha256)).unwrap(),
            h
        );
        assert!(matches!(
            NixHash::parse_any(&h.to_sri(), Some(HashAlgo::Sha1)),
            Err(HashError::AlgoMismatch { .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<NixHash>(),
            Err(HashError::WrongLength { .. })
        ));
        assert!(matches!(
            "blake9:abc".parse::<NixHash>(),
            Err(HashError::UnknownAlgo(_))
        ));
        assert_eq!(
            NixHash::digest(HashAlgo::Md5, b"abc").to_base16(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            NixHash::digest(HashAlgo::Sha1, b"abc").to_base16(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(
            NixHash::digest(HashAlgo::Sha512, b"abc")
                .to_base16()
                .starts_with("ddaf35a193617aba")
        );
    }
}
