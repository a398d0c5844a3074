//! A read-only PathInfoService backed by a Nix binary cache (`file://`,
//! `http://`, `https://`).
//!
//! A lookup fetches `<hash>.narinfo`, checks its signatures against the
//! trusted keys (required unless explicitly turned off), downloads the NAR,
//! decompresses it (xz, zstd, bzip2, br, gzip or none) and ingests it into
//! castore while checking FileHash, NarHash and NarSize. Ingested paths are
//! remembered; absent paths are remembered for a short time; concurrent
//! first lookups of one path share one download.
//!
//! [`server`] is the other side: a binary cache served over HTTP from a
//! cairn store, accepting uploads from `nix copy --to http://…`.

pub mod server;
pub mod source;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_compression::tokio::bufread::{
    BrotliDecoder, BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder,
};
use async_trait::async_trait;
use cairn_castore::CaStore;
use moka::Expiry;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tracing::{Instrument, info_span};

use crate::hash::NixHash;
use crate::ingest::{IngestError, ingest_nar};
use crate::nar::HashingReader;
use crate::narinfo::{NarInfo, NarInfoError};
use crate::nixbase32;
use crate::path_info::PathInfo;
use crate::service::{PathInfoError, PathInfoService};
use crate::signing::PublicKey;
use crate::store_path::StoreDir;

pub use source::{CacheSource, SourceError};

/// The largest narinfo accepted.
pub const MAX_NARINFO_SIZE: u64 = 1 << 20;

/// Why a path could not be substituted from a binary cache.
#[derive(Debug, thiserror::Error)]
pub enum BinaryCacheError {
    #[error("binary cache {cache}: {source}")]
    Source {
        cache: String,
        #[source]
        source: SourceError,
    },
    #[error("binary cache {cache}: narinfo of {hash}: {source}")]
    NarInfo {
        cache: String,
        hash: String,
        #[source]
        source: NarInfoError,
    },
    #[error("binary cache {cache}: narinfo of {hash} describes {found}")]
    WrongPath {
        cache: String,
        hash: String,
        found: String,
    },
    #[error(
        "binary cache {cache}: {path} has no valid signature by a trusted key (trusted: {trusted}); refusing it"
    )]
    Untrusted {
        cache: String,
        path: String,
        trusted: String,
    },
    #[error("binary cache {cache}: {path}: unsupported compression {compression:?}")]
    Compression {
        cache: String,
        path: String,
        compression: String,
    },
    #[error("binary cache {cache}: {path}: NAR file {url} is missing")]
    MissingNar {
        cache: String,
        path: String,
        url: String,
    },
    #[error(
        "binary cache {cache}: {path}: {what} mismatch: narinfo says {expected}, NAR has {actual}; refusing it"
    )]
    Mismatch {
        cache: String,
        path: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("binary cache {cache}: {path}: {source}")]
    Ingest {
        cache: String,
        path: String,
        #[source]
        source: IngestError,
    },
    #[error("binary cache {cache}: {path}: reading the NAR: {source}")]
    Read {
        cache: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("binary cache {cache} is read-only")]
    ReadOnly { cache: String },
}

/// How a binary cache is trusted and remembered.
#[derive(Debug, Clone)]
pub struct BinaryCacheOptions {
    /// Keys whose signatures make a path trusted.
    pub trusted_keys: Vec<PublicKey>,
    /// Refuse paths without a valid signature by a trusted key (the default).
    pub require_signatures: bool,
    /// How long an absent path is remembered.
    pub negative_ttl: Duration,
    /// The store directory the cache's paths live under.
    pub store_dir: StoreDir,
}

impl Default for BinaryCacheOptions {
    fn default() -> Self {
        BinaryCacheOptions {
            trusted_keys: Vec::new(),
            require_signatures: true,
            negative_ttl: Duration::from_secs(2),
            store_dir: StoreDir::default(),
        }
    }
}

type Resolved = Arc<Option<PathInfo>>;

/// Found paths never expire; absent ones after the negative TTL.
struct ResolvedExpiry {
    negative_ttl: Duration,
}

impl Expiry<[u8; 20], Resolved> for ResolvedExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 20],
        value: &Resolved,
        _created_at: Instant,
    ) -> Option<Duration> {
        match value.as_ref() {
            Some(_) => None,
            None => Some(self.negative_ttl),
        }
    }
}

/// PathInfo from a Nix binary cache, contents ingested into `castore`.
pub struct BinaryCachePathInfoService {
    source: CacheSource,
    castore: CaStore,
    options: BinaryCacheOptions,
    resolved: moka::future::Cache<[u8; 20], Resolved>,
}

impl BinaryCachePathInfoService {
    /// A service over `source` that ingests into `castore`.
    pub fn new(source: CacheSource, castore: CaStore, options: BinaryCacheOptions) -> Self {
        let resolved = moka::future::Cache::builder()
            .expire_after(ResolvedExpiry {
                negative_ttl: options.negative_ttl,
            })
            .build();
        BinaryCachePathInfoService {
            source,
            castore,
            options,
            resolved,
        }
    }

    fn cache_name(&self) -> String {
        self.source.to_string()
    }

    /// Fetches, verifies and ingests the path with hash part `digest`.
    async fn substitute(&self, digest: [u8; 20]) -> Result<Option<PathInfo>, BinaryCacheError> {
        let cache = self.cache_name();
        let hash = nixbase32::encode(&digest);
        let source_err = |source| BinaryCacheError::Source {
            cache: cache.clone(),
            source,
        };
        let Some(text) = self
            .source
            .fetch_small(&format!("{hash}.narinfo"), MAX_NARINFO_SIZE)
            .await
            .map_err(source_err)?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(text).map_err(|_| BinaryCacheError::NarInfo {
            cache: cache.clone(),
            hash: hash.clone(),
            source: NarInfoError::MalformedLine { line: 1 },
        })?;
        let narinfo = NarInfo::parse_in(&self.options.store_dir, &text).map_err(|source| {
            BinaryCacheError::NarInfo {
                cache: cache.clone(),
                hash: hash.clone(),
                source,
            }
        })?;
        let path_name = narinfo.store_path.to_base_name();
        if narinfo.store_path.digest() != &digest {
            return Err(BinaryCacheError::WrongPath {
                cache,
                hash,
                found: path_name,
            });
        }
        if self.options.require_signatures
            && !narinfo.verify(&self.options.store_dir, &self.options.trusted_keys)
        {
            let trusted = self
                .options
                .trusted_keys
                .iter()
                .map(|k| k.name().to_string())
                .collect::<Vec<_>>();
            return Err(BinaryCacheError::Untrusted {
                cache,
                path: path_name,
                trusted: if trusted.is_empty() {
                    "none configured".into()
                } else {
                    trusted.join(", ")
                },
            });
        }
        let info = self
            .download(&cache, &path_name, &narinfo)
            .instrument(info_span!("nar_download", path = %path_name, url = %narinfo.url))
            .await?;
        Ok(Some(info))
    }

    async fn download(
        &self,
        cache: &str,
        path: &str,
        narinfo: &NarInfo,
    ) -> Result<PathInfo, BinaryCacheError> {
        let compression = narinfo.compression_or_default().to_string();
        let mismatch = |what, expected: String, actual: String| BinaryCacheError::Mismatch {
            cache: cache.to_string(),
            path: path.to_string(),
            what,
            expected,
            actual,
        };
        let raw = self
            .source
            .fetch_stream(&narinfo.url)
            .await
            .map_err(|source| BinaryCacheError::Source {
                cache: cache.to_string(),
                source,
            })?
            .ok_or_else(|| BinaryCacheError::MissingNar {
                cache: cache.to_string(),
                path: path.to_string(),
                url: narinfo.url.clone(),
            })?;
        let mut file = HashingReader::new(raw);
        let ingested = {
            let buffered = BufReader::with_capacity(256 * 1024, &mut file);
            let mut nar: Box<dyn AsyncRead + Send + Unpin + '_> = match compression.as_str() {
                "none" | "" => Box::new(buffered),
                "xz" => Box::new(XzDecoder::new(buffered)),
                "zstd" => Box::new(ZstdDecoder::new(buffered)),
                "bzip2" => Box::new(BzDecoder::new(buffered)),
                "br" => Box::new(BrotliDecoder::new(buffered)),
                "gzip" => Box::new(GzipDecoder::new(buffered)),
                other => {
                    return Err(BinaryCacheError::Compression {
                        cache: cache.to_string(),
                        path: path.to_string(),
                        compression: other.to_string(),
                    });
                }
            };
            let ingested = ingest_nar(&self.castore, &mut nar)
                .await
                .map_err(|source| BinaryCacheError::Ingest {
                    cache: cache.to_string(),
                    path: path.to_string(),
                    source,
                })?;
            // Whatever follows the NAR in the decompressed stream is an error.
            let mut rest = [0u8; 1];
            let extra = nar
                .read(&mut rest)
                .await
                .map_err(|source| BinaryCacheError::Read {
                    cache: cache.to_string(),
                    path: path.to_string(),
                    source,
                })?;
            if extra != 0 {
                return Err(mismatch(
                    "NarSize",
                    narinfo.nar_size.to_string(),
                    "trailing data after the NAR".into(),
                ));
            }
            ingested
        };
        // Anything the decompressor left unread still counts for FileHash.
        tokio::io::copy(&mut file, &mut tokio::io::sink())
            .await
            .map_err(|source| BinaryCacheError::Read {
                cache: cache.to_string(),
                path: path.to_string(),
                source,
            })?;
        if let Some(expected) = &narinfo.file_hash {
            let actual = file.hash();
            if let NixHash::Sha256(_) = expected
                && *expected != actual
            {
                return Err(mismatch(
                    "FileHash",
                    expected.to_string(),
                    actual.to_string(),
                ));
            }
        }
        if let Some(expected) = narinfo.file_size
            && expected != file.size()
        {
            return Err(mismatch(
                "FileSize",
                expected.to_string(),
                file.size().to_string(),
            ));
        }
        if ingested.nar_size != narinfo.nar_size {
            return Err(mismatch(
                "NarSize",
                narinfo.nar_size.to_string(),
                ingested.nar_size.to_string(),
            ));
        }
        let actual = NixHash::Sha256(ingested.nar_sha256);
        if narinfo.nar_hash != actual {
            return Err(mismatch(
                "NarHash",
                narinfo.nar_hash.to_string(),
                actual.to_string(),
            ));
        }
        let registration_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Ok(PathInfo {
            store_path: narinfo.store_path.clone(),
            node: ingested.node,
            references: narinfo.references.clone(),
            nar_size: ingested.nar_size,
            nar_sha256: ingested.nar_sha256,
            signatures: narinfo.signatures.clone(),
            deriver: narinfo.deriver.clone(),
            ca: narinfo.ca.clone(),
            registration_time,
        })
    }
}

#[async_trait]
impl PathInfoService for BinaryCachePathInfoService {
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        let key = *digest;
        let span =
            info_span!("binary_cache_get", cache = %self.source, hash = %nixbase32::encode(digest));
        let resolved = self
            .resolved
            .try_get_with(key, async move { self.substitute(key).await.map(Arc::new) })
            .instrument(span)
            .await
            .map_err(PathInfoError::BinaryCache)?;
        Ok(resolved.as_ref().clone())
    }

    async fn put(&self, _info: PathInfo) -> Result<(), PathInfoError> {
        Err(PathInfoError::BinaryCache(Arc::new(
            BinaryCacheError::ReadOnly {
                cache: self.cache_name(),
            },
        )))
    }

    /// A binary cache cannot be listed: its paths appear when looked up.
    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        Ok(Vec::new())
    }
}

/// Parses Nix's `trusted-public-keys` form: keys separated by spaces.
pub fn parse_trusted_keys(text: &str) -> Result<Vec<PublicKey>, crate::SigningError> {
    text.split_whitespace().map(str::parse).collect()
}

/// The PathInfo service of a `binary-cache` store of a composition.
pub fn open_in_composition(
    alias: &str,
    url: &str,
    trusted_public_keys: &[String],
    require_signatures: bool,
    negative_ttl: Duration,
    castore: CaStore,
) -> Result<Arc<dyn PathInfoService>, cairn_castore::composition::CompositionError> {
    let open_err = |e: Box<dyn std::error::Error + Send + Sync>| {
        cairn_castore::composition::CompositionError::Open {
            alias: alias.to_string(),
            source: e,
        }
    };
    let source = CacheSource::from_url(url).map_err(|e| open_err(Box::new(e)))?;
    let trusted_keys = trusted_public_keys
        .iter()
        .map(|k| {
            k.parse::<PublicKey>()
                .map_err(|e| open_err(format!("trusted public key {k:?}: {e}").into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(BinaryCachePathInfoService::new(
        source,
        castore,
        BinaryCacheOptions {
            trusted_keys,
            require_signatures,
            negative_ttl,
            store_dir: StoreDir::default(),
        },
    )))
}
