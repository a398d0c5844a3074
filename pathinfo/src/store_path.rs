//! Store paths: `<store dir>/<32 nixbase32 chars>-<name>`, their parsing and
//! validation, and the computation of content-addressed store paths the way
//! Nix makes them (`nix-store --add`, `nix-store --add-fixed`,
//! `builtins.toFile`).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::hash::{HashAlgo, NixHash, sha256};
use crate::nixbase32;

/// Length of the digest part of a store path, in bytes.
pub const DIGEST_LEN: usize = 20;
/// Length of the nixbase32 digest part of a store path, in characters.
pub const ENCODED_DIGEST_LEN: usize = 32;
/// Maximum length of a store path name.
pub const MAX_NAME_LEN: usize = 211;
/// The default store directory.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Why a store path or name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorePathError {
    /// The path is not inside the store directory.
    #[error("path {path:?} is not in the store directory {store_dir:?}")]
    NotInStore {
        /// The path.
        path: String,
        /// The store directory.
        store_dir: String,
    },
    /// The base name is too short to hold a digest, a dash and a name.
    #[error("store path base name {0:?} is too short")]
    TooShort(String),
    /// The digest part is not valid nixbase32.
    #[error("store path {path:?} has an invalid digest: {source}")]
    InvalidDigest {
        /// The base name.
        path: String,
        /// The decoding error.
        source: nixbase32::DecodeError,
    },
    /// The digest is not followed by a dash.
    #[error("store path {0:?} has no dash after the digest")]
    MissingDash(String),
    /// The name is empty.
    #[error("store path name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_NAME_LEN`].
    #[error("store path name is {0} characters long, more than {MAX_NAME_LEN}")]
    NameTooLong(usize),
    /// The name is `.` or `..`, or starts with `.-` or `..-`.
    #[error("store path name {0:?} is reserved (\".\", \"..\", or starts with \".-\" or \"..-\")")]
    ReservedName(String),
    /// The name contains a character outside `[A-Za-z0-9+-._?=]`.
    #[error("store path name {name:?} contains the invalid character {character:?}")]
    InvalidNameChar {
        /// The name.
        name: String,
        /// The offending character.
        character: char,
    },
    /// The store directory is not an absolute path without trailing slash.
    #[error("invalid store directory {0:?}")]
    InvalidStoreDir(String),
    /// A hash of the wrong algorithm was given for this kind of path.
    #[error("{0}")]
    Hash(#[from] crate::hash::HashError),
    /// References are not allowed for this kind of content address.
    #[error("flat or non-sha256 fixed-output paths cannot have references")]
    ReferencesNotAllowed,
}

/// Checks a store path name: 1 to 211 characters from
/// `[A-Za-z0-9+-._?=]`, and not `.`, `..`, nor starting with `.-` or `..-`.
///
/// Names starting with a period are otherwise accepted, as Nix does (Nix
/// 2.8 adds `.hidden` to the store as `<hash>-.hidden`; current Nix rejects
/// only the reserved forms above, which could be confused with `.`/`..`).
pub fn validate_name(name: &[u8]) -> Result<(), StorePathError> {
    let lossy = || String::from_utf8_lossy(name).into_owned();
    if name.is_empty() {
        return Err(StorePathError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StorePathError::NameTooLong(name.len()));
    }
    let reserved =
        matches!(name, b"." | b"..") || name.starts_with(b".-") || name.starts_with(b"..-");
    if reserved {
        return Err(StorePathError::ReservedName(lossy()));
    }
    if let Some(&c) = name
        .iter()
        .find(|&&c| !(c.is_ascii_alphanumeric() || b"+-._?=".contains(&c)))
    {
        return Err(StorePathError::InvalidNameChar {
            name: lossy(),
            character: c as char,
        });
    }
    Ok(())
}

/// A store path without its store directory: digest and name.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StorePath {
    digest: [u8; DIGEST_LEN],
    name: String,
}

impl StorePath {
    /// Builds a store path from its digest and a name, validating the name.
    pub fn from_parts(digest: [u8; DIGEST_LEN], name: &str) -> Result<Self, StorePathError> {
        validate_name(name.as_bytes())?;
        Ok(StorePath {
            digest,
            name: name.to_owned(),
        })
    }

    /// Parses a base name `<digest>-<name>`.
    pub fn from_base_name(s: &str) -> Result<Self, StorePathError> {
        Self::from_base_name_bytes(s.as_bytes())
    }

    /// Parses a base name given as bytes (e.g. a NAR entry or file name).
    pub fn from_base_name_bytes(s: &[u8]) -> Result<Self, StorePathError> {
        if s.len() < ENCODED_DIGEST_LEN + 2 {
            return Err(StorePathError::TooShort(
                String::from_utf8_lossy(s).into_owned(),
            ));
        }
        let digest =
            nixbase32::decode_fixed::<DIGEST_LEN>(&s[..ENCODED_DIGEST_LEN]).map_err(|source| {
                StorePathError::InvalidDigest {
                    path: String::from_utf8_lossy(s).into_owned(),
                    source,
                }
            })?;
        if s[ENCODED_DIGEST_LEN] != b'-' {
            return Err(StorePathError::MissingDash(
                String::from_utf8_lossy(s).into_owned(),
            ));
        }
        let name = &s[ENCODED_DIGEST_LEN + 1..];
        validate_name(name)?;
        // validate_name admits ASCII only.
        let name = String::from_utf8_lossy(name).into_owned();
        Ok(StorePath { digest, name })
    }

    /// Parses an absolute path in the default store directory `/nix/store`.
    pub fn from_absolute_path(s: &str) -> Result<Self, StorePathError> {
        StoreDir::default().parse_path(s)
    }

    /// The 20-byte digest.
    pub fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.digest
    }

    /// The name after the dash.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nixbase32 digest part (32 characters).
    pub fn hash_part(&self) -> String {
        nixbase32::encode(&self.digest)
    }

    /// `<digest>-<name>`.
    pub fn to_base_name(&self) -> String {
        format!("{}-{}", self.hash_part(), self.name)
    }

    /// The absolute path in the default store directory.
    pub fn to_absolute_path(&self) -> String {
        StoreDir::default().display_path(self)
    }
}

/// Orders like Nix: by base name.
impl Ord for StorePath {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mut a = [0u8; ENCODED_DIGEST_LEN];
        let mut b = [0u8; ENCODED_DIGEST_LEN];
        nixbase32::encode_into(&self.digest, &mut a);
        nixbase32::encode_into(&other.digest, &mut b);
        a.cmp(&b).then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for StorePath {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Prints the base name `<digest>-<name>`.
impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.hash_part(), self.name)
    }
}

impl fmt::Debug for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorePath({self})")
    }
}

/// Parses a base name `<digest>-<name>`.
impl FromStr for StorePath {
    type Err = StorePathError;

    fn from_str(s: &str) -> Result<Self, StorePathError> {
        Self::from_base_name(s)
    }
}

/// How file contents were ingested for a fixed-output content address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileIngestionMethod {
    /// The hash is of the file's bytes (`nix-store --add-fixed`).
    Flat,
    /// The hash is of the NAR serialisation (`nix-store --add-fixed --recursive`).
    Recursive,
}

/// A store directory, `/nix/store` by default. Store path computation
/// depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreDir(String);

impl Default for StoreDir {
    fn default() -> Self {
        StoreDir(DEFAULT_STORE_DIR.to_owned())
    }
}

impl fmt::Display for StoreDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StoreDir {
    /// A store directory: an absolute path without trailing slash.
    pub fn new(dir: &str) -> Result<Self, StorePathError> {
        if !dir.starts_with('/') || (dir.len() > 1 && dir.ends_with('/')) || dir.contains('\0') {
            return Err(StorePathError::InvalidStoreDir(dir.to_owned()));
        }
        Ok(StoreDir(dir.to_owned()))
    }

    /// The directory as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses `<store dir>/<digest>-<name>`.
    pub fn parse_path(&self, s: &str) -> Result<StorePath, StorePathError> {
        let not_in_store = || StorePathError::NotInStore {
            path: s.to_owned(),
            store_dir: self.0.clone(),
        };
        let rest = s.strip_prefix(self.0.as_str()).ok_or_else(not_in_store)?;
        let base = rest.strip_prefix('/').ok_or_else(not_in_store)?;
        StorePath::from_base_name(base)
    }

    /// The absolute path of a store path in this directory.
    pub fn display_path(&self, path: &StorePath) -> String {
        format!("{}/{}", self.0, path)
    }

    /// Nix's `makeStorePath`: the store path for a path type string (such as
    /// `source`, `text:<refs>` or `output:out`), a SHA-256 digest and a name.
    pub fn make_store_path(
        &self,
        path_type: &str,
        sha256_digest: &[u8; 32],
        name: &str,
    ) -> Result<StorePath, StorePathError> {
        validate_name(name.as_bytes())?;
        let s = format!(
            "{}:sha256:{}:{}:{}",
            path_type,
            data_encoding::HEXLOWER.encode(sha256_digest),
            self.0,
            name
        );
        let digest = compress_hash(&sha256(s.as_bytes()));
        Ok(StorePath {
            digest,
            name: name.to_owned(),
        })
    }

    /// Nix's `makeType`: the path type followed by the sorted absolute
    /// reference paths and `self` when the path refers to itself.
    fn make_type(&self, kind: &str, references: &[StorePath], self_reference: bool) -> String {
        let mut refs: Vec<String> = references.iter().map(|r| self.display_path(r)).collect();
        refs.sort();
        refs.dedup();
        let mut ty = kind.to_owned();
        for r in refs {
            ty.push(':');
            ty.push_str(&r);
        }
        if self_reference {
            ty.push_str(":self");
        }
        ty
    }

    /// The path `nix-store --add` gives a tree whose NAR serialisation has
    /// SHA-256 `nar_sha256`: a recursive SHA-256 "source" path, with
    /// references.
    pub fn make_source_path(
        &self,
        name: &str,
        nar_sha256: &[u8; 32],
        references: &[StorePath],
        self_reference: bool,
    ) -> Result<StorePath, StorePathError> {
        let ty = self.make_type("source", references, self_reference);
        self.make_store_path(&ty, nar_sha256, name)
    }

    /// The path of a text file with contents hashing to `content_sha256`
    /// and the given references, as `builtins.toFile` makes it.
    pub fn make_text_path(
        &self,
        name: &str,
        content_sha256: &[u8; 32],
        references: &[StorePath],
    ) -> Result<StorePath, StorePathError> {
        let ty = self.make_type("text", references, false);
        self.make_store_path(&ty, content_sha256, name)
    }

    /// Nix's `makeFixedOutputPath`. Recursive SHA-256 is a source path (and
    /// may have references); any other combination is an `output:out` path
    /// over `fixed:out:[r:]<algo>:<base16>:` and may not have references.
    pub fn make_fixed_output_path(
        &self,
        name: &str,
        method: FileIngestionMethod,
        hash: &NixHash,
        references: &[StorePath],
        self_reference: bool,
    ) -> Result<StorePath, StorePathError> {
        match (method, hash) {
            (FileIngestionMethod::Recursive, NixHash::Sha256(d)) => {
                self.make_source_path(name, d, references, self_reference)
            }
            _ => {
                if !references.is_empty() || self_reference {
                    return Err(StorePathError::ReferencesNotAllowed);
                }
                let prefix = match method {
                    FileIngestionMethod::Recursive => "r:",
                    FileIngestionMethod::Flat => "",
                };
                let inner = format!("fixed:out:{}{}:", prefix, hash.to_typed_base16());
                self.make_store_path("output:out", &sha256(inner.as_bytes()), name)
            }
        }
    }

    /// The store path for a content address, a name and references.
    pub fn make_path_from_ca(
        &self,
        name: &str,
        ca: &ContentAddress,
        references: &[StorePath],
        self_reference: bool,
    ) -> Result<StorePath, StorePathError> {
        match ca {
            ContentAddress::Text(d) => {
                if self_reference {
                    return Err(StorePathError::ReferencesNotAllowed);
                }
                self.make_text_path(name, d, references)
            }
            ContentAddress::Fixed(method, hash) => {
                self.make_fixed_output_path(name, *method, hash, references, self_reference)
            }
        }
    }
}

/// XOR-folds a SHA-256 digest to the 20 bytes of a store path digest, as
/// Nix's `compressHash` does.
pub fn compress_hash(digest: &[u8; 32]) -> [u8; DIGEST_LEN] {
    let mut out = [0u8; DIGEST_LEN];
    for (i, b) in digest.iter().enumerate() {
        out[i % DIGEST_LEN] ^= b;
    }
    out
}

/// A content address as written in narinfo `CA` fields and Nix's database:
/// `text:sha256:<hash>`, `fixed:<algo>:<hash>` or `fixed:r:<algo>:<hash>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContentAddress {
    /// A text path (`builtins.toFile`, derivations); the SHA-256 of the
    /// contents.
    Text([u8; 32]),
    /// A fixed-output path.
    Fixed(FileIngestionMethod, NixHash),
}

impl FromStr for ContentAddress {
    type Err = StorePathError;

    fn from_str(s: &str) -> Result<Self, StorePathError> {
        let bad = || {
            StorePathError::Hash(crate::hash::HashError::MissingAlgo(format!(
                "invalid content address {s:?}"
            )))
        };
        if let Some(rest) = s.strip_prefix("text:") {
            let (algo, digest) = rest.split_once(':').ok_or_else(bad)?;
            let algo: HashAlgo = algo.parse()?;
            match NixHash::parse_unprefixed(algo, digest)? {
                NixHash::Sha256(d) => Ok(ContentAddress::Text(d)),
                other => Err(StorePathError::Hash(crate::hash::HashError::AlgoMismatch {
                    expected: HashAlgo::Sha256,
                    got: other.algo(),
                })),
            }
        } else if let Some(rest) = s.strip_prefix("fixed:") {
            let (method, rest) = match rest.strip_prefix("r:") {
                Some(rest) => (FileIngestionMethod::Recursive, rest),
                None => (FileIngestionMethod::Flat, rest),
            };
            let (algo, digest) = rest.split_once(':').ok_or_else(bad)?;
            let algo: HashAlgo = algo.parse()?;
            Ok(ContentAddress::Fixed(
                method,
                NixHash::parse_unprefixed(algo, digest)?,
            ))
        } else {
            Err(bad())
        }
    }
}

/// Renders like Nix's `renderContentAddress` (hashes in nixbase32).
impl fmt::Display for ContentAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentAddress::Text(d) => write!(f, "text:sha256:{}", nixbase32::encode(d)),
            ContentAddress::Fixed(FileIngestionMethod::Flat, h) => write!(f, "fixed:{h}"),
            ContentAddress::Fixed(FileIngestionMethod::Recursive, h) => write!(f, "fixed:r:{h}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let s = "/nix/store/00bgd045z0d4icpbc2yyz4gx48ak44la-net-tools-1.60_p20170221182432";
        let p = StorePath::from_absolute_path(s).unwrap();
        assert_eq!(p.name(), "net-tools-1.60_p20170221182432");
        assert_eq!(p.to_absolute_path(), s);
        assert_eq!(p.to_string().parse::<StorePath>().unwrap(), p);

        let dir = StoreDir::new("/opt/store").unwrap();
        assert!(matches!(
            dir.parse_path(s),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(StoreDir::new("relative").is_err());
        assert!(StoreDir::new("/nix/store/").is_err());
    }

    #[test]
    fn rejects_invalid() {
        let digest = "00bgd045z0d4icpbc2yyz4gx48ak44la";
        for (base, ok) in [
            (format!("{digest}-a"), true),
            (format!("{digest}-{}", "a".repeat(211)), true),
            (format!("{digest}-{}", "a".repeat(212)), false),
            (format!("{digest}-.a"), true),
            (format!("{digest}-."), false),
            (format!("{digest}-.."), false),
            (format!("{digest}-.-a"), false),
            (format!("{digest}-..-a"), false),
            (format!("{digest}-...a"), true),
            (format!("{digest}-a/b"), false),
            (format!("{digest}-é"), false),
            (format!("{digest}-"), false),
            (format!("{digest}_a"), false),
            ("e0bgd045z0d4icpbc2yyz4gx48ak44la-a".to_owned(), false),
            ("short".to_owned(), false),
            (format!("{digest}-A+b-c._?="), true),
        ] {
            assert_eq!(StorePath::from_base_name(&base).is_ok(), ok, "{base}");
        }
    }

    #[test]
    fn content_address_round_trip() {
        for s in [
            "text:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
            "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
            "fixed:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s",
            "fixed:r:sha1:0mdqa9w1p6cmli6976v4wi0sw9r4p5pr",
        ] {
            let ca: ContentAddress = s.parse().unwrap();
            assert_eq!(ca.to_string(), s);
        }
        assert!("fixed".parse::<ContentAddress>().is_err());
        assert!(
            "text:sha1:0mdqa9w1p6cmli6976v4wi0sw9r4p5pr"
                .parse::<ContentAddress>()
                .is_err()
        );
    }
}
