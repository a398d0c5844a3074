//! narinfo files, the per-path metadata of binary caches
//! (`<hash part>.narinfo`): parsing, serialising, fingerprints, signing and
//! verification.
//!
//! The format is one `Key: value` per line, each line ending in `\n`. Fields
//! are written in the order Nix writes them, so files written by Nix
//! round-trip byte for byte. As in Nix, unknown keys are ignored (and thus
//! not written back); unlike Nix, duplicate single-valued fields and
//! malformed signatures are errors rather than silently taken.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::hash::{HashAlgo, NixHash};
use crate::signing::{PublicKey, SecretKey, Signature};
use crate::store_path::{ContentAddress, StoreDir, StorePath};

/// Why a narinfo could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NarInfoError {
    /// A line is not `Key: value\n`.
    #[error("narinfo line {line} is not of the form \"Key: value\"")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A single-valued field occurs twice.
    #[error("narinfo line {line}: duplicate {key} field")]
    DuplicateField {
        /// 1-based line number.
        line: usize,
        /// The field name.
        key: &'static str,
    },
    /// A field value is invalid.
    #[error("narinfo line {line}: invalid {key}: {reason}")]
    InvalidField {
        /// 1-based line number.
        line: usize,
        /// The field name.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A required field (StorePath, URL, NarHash, NarSize) is absent.
    #[error("narinfo has no {0} field")]
    MissingField(&'static str),
    /// The fingerprint needs a SHA-256 NAR hash.
    #[error("narinfo NAR hash is {0}, not sha256")]
    NarHashNotSha256(HashAlgo),
}

/// The contents of a narinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    /// `StorePath`: the path described.
    pub store_path: StorePath,
    /// `URL`: where the (compressed) NAR is, relative to the cache.
    pub url: String,
    /// `Compression` (`none`, `xz`, `zstd`, ...). Absent means bzip2.
    pub compression: Option<String>,
    /// `FileHash`: hash of the compressed NAR file.
    pub file_hash: Option<NixHash>,
    /// `FileSize`: size of the compressed NAR file.
    pub file_size: Option<u64>,
    /// `NarHash`: hash of the uncompressed NAR.
    pub nar_hash: NixHash,
    /// `NarSize`: size of the uncompressed NAR (never 0).
    pub nar_size: u64,
    /// `References`, in file order (Nix writes them sorted).
    pub references: Vec<StorePath>,
    /// `Deriver`; `unknown-deriver` reads as `None`.
    pub deriver: Option<StorePath>,
    /// `System` (written by old Nix versions).
    pub system: Option<String>,
    /// `Sig` lines, in file order.
    pub signatures: Vec<Signature>,
    /// `CA`: the content address, for content-addressed paths.
    pub ca: Option<ContentAddress>,
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl NarInfo {
    /// Parses a narinfo for the default store directory.
    pub fn parse(text: &str) -> Result<Self, NarInfoError> {
        Self::parse_in(&StoreDir::default(), text)
    }

    /// Parses a narinfo whose `StorePath` is in `store_dir`.
    pub fn parse_in(store_dir: &StoreDir, text: &str) -> Result<Self, NarInfoError> {
        let mut store_path = None;
        let mut url = None;
        let mut compression = None;
        let mut file_hash = None;
        let mut file_size = None;
        let mut nar_hash = None;
        let mut nar_size = None;
        let mut references = None;
        let mut deriver = None;
        let mut system = None;
        let mut signatures = Vec::new();
        let mut ca = None;

        let mut rest = text;
        let mut line = 0;
        while !rest.is_empty() {
            line += 1;
            let (l, tail) = rest
                .split_once('\n')
                .ok_or(NarInfoError::MalformedLine { line })?;
            rest = tail;
            let (key, value) = l
                .split_once(": ")
                .ok_or(NarInfoError::MalformedLine { line })?;

            fn set<T>(
                slot: &mut Option<T>,
                line: usize,
                key: &'static str,
                v: T,
            ) -> Result<(), NarInfoError> {
                if slot.is_some() {
                    return Err(NarInfoError::DuplicateField { line, key });
                }
                *slot = Some(v);
                Ok(())
            }
            let invalid = |key: &'static str, reason: String| NarInfoError::InvalidField {
                line,
                key,
                reason,
            };
            let hash = |key: &'static str| {
                NixHash::parse_prefixed(value).map_err(|e| invalid(key, e.to_string()))
            };
            let number = |key: &'static str| {
                parse_u64(value).ok_or_else(|| invalid(key, format!("{value:?} is not a number")))
            };

            match key {
                "StorePath" => {
                    let p = store_dir
                        .parse_path(value)
                        .map_err(|e| invalid("StorePath", e.to_string()))?;
                    set(&mut store_path, line, "StorePath", p)?;
                }
                "URL" => {
                    if value.is_empty() {
                        return Err(invalid("URL", "empty".into()));
                    }
                    set(&mut url, line, "URL", value.to_owned())?;
                }
                "Compression" => set(&mut compression, line, "Compression", value.to_owned())?,
                "FileHash" => set(&mut file_hash, line, "FileHash", hash("FileHash")?)?,
                "FileSize" => set(&mut file_size, line, "FileSize", number("FileSize")?)?,
                "NarHash" => set(&mut nar_hash, line, "NarHash", hash("NarHash")?)?,
                "NarSize" => {
                    let n = number("NarSize")?;
                    if n == 0 {
                        return Err(invalid("NarSize", "zero".into()));
                    }
                    set(&mut nar_size, line, "NarSize", n)?;
                }
                "References" => {
                    let refs = value
                        .split(' ')
                        .filter(|r| !r.is_empty())
                        .map(StorePath::from_base_name)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| invalid("References", e.to_string()))?;
                    set(&mut references, line, "References", refs)?;
                }
                "Deriver" => {
                    let d = if value == "unknown-deriver" {
                        None
                    } else {
                        Some(
                            StorePath::from_base_name(value)
                                .map_err(|e| invalid("Deriver", e.to_string()))?,
                        )
                    };
                    set(&mut deriver, line, "Deriver", d)?;
                }
                "System" => set(&mut system, line, "System", value.to_owned())?,
                "Sig" => signatures.push(
                    value
                        .parse::<Signature>()
                        .map_err(|e| invalid("Sig", e.to_string()))?,
                ),
                "CA" => {
                    let c = value
                        .parse::<ContentAddress>()
                        .map_err(|e| invalid("CA", e.to_string()))?;
                    set(&mut ca, line, "CA", c)?;
                }
                _ => {}
            }
        }

        Ok(NarInfo {
            store_path: store_path.ok_or(NarInfoError::MissingField("StorePath"))?,
            url: url.ok_or(NarInfoError::MissingField("URL"))?,
            compression,
            file_hash,
            file_size,
            nar_hash: nar_hash.ok_or(NarInfoError::MissingField("NarHash"))?,
            nar_size: nar_size.ok_or(NarInfoError::MissingField("NarSize"))?,
            references: references.unwrap_or_default(),
            deriver: deriver.flatten(),
            system,
            signatures,
            ca,
        })
    }

    /// The compression, with Nix's default (`bzip2`) when absent.
    pub fn compression_or_default(&self) -> &str {
        self.compression.as_deref().unwrap_or("bzip2")
    }

    /// Serialises for `store_dir`, in the field order Nix writes.
    pub fn render(&self, store_dir: &StoreDir) -> String {
        let mut s = String::new();
        s += &format!("StorePath: {}\n", store_dir.display_path(&self.store_path));
        s += &format!("URL: {}\n", self.url);
        if let Some(c) = &self.compression {
            s += &format!("Compression: {c}\n");
        }
        if let Some(h) = &self.file_hash {
            s += &format!("FileHash: {h}\n");
        }
        if let Some(n) = self.file_size {
            s += &format!("FileSize: {n}\n");
        }
        s += &format!("NarHash: {}\n", self.nar_hash);
        s += &format!("NarSize: {}\n", self.nar_size);
        let refs: Vec<String> = self.references.iter().map(|r| r.to_string()).collect();
        s += &format!("References: {}\n", refs.join(" "));
        if let Some(d) = &self.deriver {
            s += &format!("Deriver: {d}\n");
        }
        if let Some(sys) = &self.system {
            s += &format!("System: {sys}\n");
        }
        for sig in &self.signatures {
            s += &format!("Sig: {sig}\n");
        }
        if let Some(ca) = &self.ca {
            s += &format!("CA: {ca}\n");
        }
        s
    }

    /// The string binary caches sign:
    /// `1;<store path>;sha256:<nixbase32 NAR hash>;<NAR size>;<refs>`, the
    /// references as absolute paths, sorted, comma-separated.
    pub fn fingerprint(&self, store_dir: &StoreDir) -> Result<String, NarInfoError> {
        fingerprint(
            store_dir,
            &self.store_path,
            &self.nar_hash,
            self.nar_size,
            &self.references,
        )
    }

    /// Adds a signature of the fingerprint by `key`, replacing an existing
    /// signature by a key of the same name.
    pub fn sign(&mut self, store_dir: &StoreDir, key: &SecretKey) -> Result<(), NarInfoError> {
        let sig = key.sign(self.fingerprint(store_dir)?.as_bytes());
        self.signatures.retain(|s| s.key_name() != key.name());
        self.signatures.push(sig);
        Ok(())
    }

    /// The number of signatures valid under any of `keys`.
    pub fn count_valid_signatures(
        &self,
        store_dir: &StoreDir,
        keys: &[PublicKey],
    ) -> Result<usize, NarInfoError> {
        let fp = self.fingerprint(store_dir)?;
        Ok(self
            .signatures
            .iter()
            .filter(|sig| keys.iter().any(|k| k.verify(fp.as_bytes(), sig)))
            .count())
    }

    /// Whether at least one signature is valid under one of `keys`.
    pub fn verify(&self, store_dir: &StoreDir, keys: &[PublicKey]) -> bool {
        matches!(self.count_valid_signatures(store_dir, keys), Ok(n) if n > 0)
    }
}

/// The fingerprint of a path, as signed in narinfo files:
/// `1;<store path>;sha256:<nixbase32>;<nar size>;<sorted refs>`.
pub fn fingerprint(
    store_dir: &StoreDir,
    store_path: &StorePath,
    nar_hash: &NixHash,
    nar_size: u64,
    references: &[StorePath],
) -> Result<String, NarInfoError> {
    if nar_hash.algo() != HashAlgo::Sha256 {
        return Err(NarInfoError::NarHashNotSha256(nar_hash.algo()));
    }
    let mut refs: Vec<String> = references
        .iter()
        .map(|r| store_dir.display_path(r))
        .collect();
    refs.sort();
    refs.dedup();
    Ok(format!(
        "1;{};{};{};{}",
        store_dir.display_path(store_path),
        nar_hash.to_typed_nixbase32(),
        nar_size,
        refs.join(",")
    ))
}

/// Serialises for the default store directory.
impl fmt::Display for NarInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&StoreDir::default()))
    }
}

/// Parses for the default store directory.
impl FromStr for NarInfo {
    type Err = NarInfoError;

    fn from_str(s: &str) -> Result<Self, NarInfoError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NARINFO: &str = "StorePath: /nix/store/wfxx3s10yis8l8w1q4c8xnn97ma56kyq-tree
URL: nar/008rinazjy6jrns1li40ikfqmcsi8jvpksiaf7ha62hyy9lzrrg0.nar
Compression: none
FileHash: sha256:008rinazjy6jrns1li40ikfqmcsi8jvpksiaf7ha62hyy9lzrrg0
FileSize: 848
NarHash: sha256:008rinazjy6jrns1li40ikfqmcsi8jvpksiaf7ha62hyy9lzrrg0
NarSize: 848
References: 
Sig: test-1:H1ZeWiFhk0Z6f+lkLsQvK91bZh9pr0rez/pkFj1DA5mEmHbWezo4UJ+wKCrlzHzA60YuvhZ9NB0ejFoVQLgHCA==
CA: fixed:r:sha256:008rinazjy6jrns1li40ikfqmcsi8jvpksiaf7ha62hyy9lzrrg0
";
    const PK: &str = "test-1:ZPJZXNTrP9luxTH9UAQ7HCTfS/WTv5GAQiySLySh7ps=";

    #[test]
    fn nix_written_round_trip_and_verify() {
        let ni = NarInfo::parse(NARINFO).unwrap();
        assert_eq!(ni.to_string(), NARINFO);
        assert_eq!(ni.nar_size, 848);
        let dir = StoreDir::default();
        assert!(ni.verify(&dir, &[PK.parse().unwrap()]));
        let other = SecretKey::from_seed("test-1", &[1; 32]).public_key();
        assert!(!ni.verify(&dir, &[other]));
    }

    #[test]
    fn garbage() {
        assert_eq!(
            NarInfo::parse("StorePath /nix/store/x\n"),
            Err(NarInfoError::MalformedLine { line: 1 })
        );
        assert_eq!(
            NarInfo::parse(&NARINFO[..NARINFO.len() - 1]),
            Err(NarInfoError::MalformedLine { line: 10 })
        );
        assert_eq!(
            NarInfo::parse("URL: x\n"),
            Err(NarInfoError::MissingField("StorePath"))
        );
        let bad = NARINFO.replace("NarSize: 848", "NarSize: -1");
        assert!(matches!(
            NarInfo::parse(&bad),
            Err(NarInfoError::InvalidField {
                line: 7,
                key: "NarSize",
                ..
            })
        ));
        let dup = format!("{NARINFO}URL: y\n");
        assert!(matches!(
            NarInfo::parse(&dup),
            Err(NarInfoError::DuplicateField { key: "URL", .. })
        ));
        let unknown = format!("{NARINFO}Frobnicate: yes\n");
        assert_eq!(NarInfo::parse(&unknown).unwrap().to_string(), NARINFO);
    }
}
