//! `objectstore`: chunks, chunk maps and directories as immutable objects in
//! an object store (S3, GCS, Azure, HTTP read-only, local files, memory),
//! through the `object_store` crate.
//!
//! Key layout under the store's prefix (`<hex>` is the lowercase hex BLAKE3
//! digest, sharded by its first two and next two hex digits):
//!
//! ```text
//! chunks/<h[0..2]>/<h[2..4]>/<hex>       raw chunk bytes
//! chunkmaps/<h[0..2]>/<h[2..4]>/<hex>    chunk map of a multi-chunk blob
//!                                        (32-byte digest + u32 LE size per chunk)
//! directories/<h[0..2]>/<h[2..4]>/<hex>  canonical castore.proto encoding
//! pathinfo/<n[0..2]>/<nixbase32>.pathinfo  PathInfo (written by cairn-pathinfo)
//! ```
//!
//! Every object is named by the digest of what it holds, so objects are never
//! changed once written: a put of an existing key writes the same bytes again,
//! and each put is atomic in every object store (a reader sees the whole
//! object or none). Everything read is verified against its digest.
//!
//! URLs and their options are parsed by `object_store` itself ([`open_url`]);
//! credentials come from the usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`). Remote stores retry failed requests with
//! exponential backoff and bound each request by a timeout ([`RemoteOptions`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};

use crate::Digest;
use crate::directory::Directory;
use crate::services::BackendError;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService, verify_chunk};
use crate::services::directory::{DirectoryService, DirectoryServiceError, decode_stored};

/// Errors opening an object store.
#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreOpenError {
    #[error("{url:?} is not a URL: {source}")]
    Url {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{url:?}: {source}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{url:?}: unknown option {key:?} for this kind of object store")]
    UnknownOption { url: String, key: String },
    #[error("{url:?}: {what}")]
    Unsupported { url: String, what: String },
}

/// How a remote object store retries and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteOptions {
    /// Retries of a failed request (connection errors, 5xx, timeouts).
    pub retries: usize,
    /// First backoff between retries; doubled each time up to 2 s.
    pub initial_backoff: Duration,
    /// No retry starts after this much time since the first attempt.
    pub retry_timeout: Duration,
    /// One request (connect to last byte) may take at most this long.
    pub request_timeout: Duration,
    /// Connecting may take at most this long.
    pub connect_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            retries: 3,
            initial_backoff: Duration::from_millis(100),
            retry_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

impl RemoteOptions {
    fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.retry_timeout,
        }
    }

    fn client(&self) -> object_store::ClientOptions {
        object_store::ClientOptions::new()
            .with_timeout(self.request_timeout)
            .with_connect_timeout(self.connect_timeout)
    }
}

/// Installs rustls' ring crypto provider for the HTTP clients of remote
/// object stores (once per process; later calls do nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the object store `url` names (`s3://bucket/prefix`,
/// `gs://bucket/prefix`, `az://container/prefix`, `https://host/prefix`,
/// `file:///dir`, `memory:///`) with `options` (object_store's configuration
/// keys, e.g. `region`, `endpoint`, `allow_http`). Cloud stores read their
/// credentials from the environment first; `options` override them. Returns
/// the store and the prefix within it.
pub fn open_url(
    url: &str,
    options: &[(String, String)],
    remote: &RemoteOptions,
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), ObjectStoreOpenError> {
    install_crypto_provider();
    let parsed = url::Url::parse(url).map_err(|e| ObjectStoreOpenError::Url {
        url: url.to_string(),
        source: object_store::Error::Generic {
            store: "url",
            source: Box::new(e),
        },
    })?;
    let (scheme, prefix) =
        ObjectStoreScheme::parse(&parsed).map_err(|e| ObjectStoreOpenError::Url {
            url: url.to_string(),
            source: e.into(),
        })?;
    let store_err = |source| ObjectStoreOpenError::Store {
        url: url.to_string(),
        source,
    };
    let unknown = |key: &str| ObjectStoreOpenError::UnknownOption {
        url: url.to_string(),
        key: key.to_string(),
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::Local => {
            if let Some((key, _)) = options.first() {
                return Err(unknown(key));
            }
            let dir = parsed
                .to_file_path()
                .map_err(|()| ObjectStoreOpenError::Unsupported {
                    url: url.to_string(),
                    what: "not an absolute file path".into(),
                })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                store_err(object_store::Error::Generic {
                    store: "file",
                    source: Box::new(e),
                })
            })?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(store_err)?
                .with_automatic_cleanup(false);
            return Ok((Arc::new(fs), ObjectPath::default()));
        }
        ObjectStoreScheme::Memory => {
            if let Some((key, _)) = options.first() {
                return Err(unknown(key));
            }
            Arc::new(object_store::memory::InMemory::new())
        }
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_client_options(remote.client())
                .with_retry(remote.retry())
                .with_url(url_without_query(&parsed));
            for (key, value) in options {
                let k = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(k, value);
            }
            Arc::new(builder.build().map_err(store_err)?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_client_options(remote.client())
                .with_retry(remote.retry())
                .with_url(url_without_query(&parsed));
            for (key, value) in options {
                let k = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(k, value);
            }
            Arc::new(builder.build().map_err(store_err)?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_client_options(remote.client())
                .with_retry(remote.retry())
                .with_url(url_without_query(&parsed));
            for (key, value) in options {
                let k = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(k, value);
            }
            Arc::new(builder.build().map_err(store_err)?)
        }
        ObjectStoreScheme::Http => {
            let base = &parsed[..url::Position::BeforePath];
            // An http:// URL asks for plain HTTP; no extra option needed.
            let client = remote.client().with_allow_http(parsed.scheme() == "http");
            let mut builder = object_store::http::HttpBuilder::new()
                .with_client_options(client)
                .with_retry(remote.retry())
                .with_url(base);
            for (key, value) in options {
                let k = key.to_ascii_lowercase().parse().map_err(|_| unknown(key))?;
                builder = builder.with_config(k, value);
            }
            Arc::new(builder.build().map_err(store_err)?)
        }
        other => {
            return Err(ObjectStoreOpenError::Unsupported {
                url: url.to_string(),
                what: format!("object store kind {other:?} is not supported"),
            });
        }
    };
    Ok((store, prefix))
}

/// True for the URLs of stores cairn only reads: plain HTTP(S) servers.
pub fn is_read_only_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| ObjectStoreScheme::parse(&u).ok())
        .is_some_and(|(scheme, _)| scheme == ObjectStoreScheme::Http)
}

/// The error of a write to a read-only store.
#[derive(Debug, thiserror::Error)]
#[error("the store is read-only (served over plain HTTP)")]
pub struct ReadOnlyStore;

fn url_without_query(url: &url::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The kinds of objects cairn keeps in an object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Chunk,
    ChunkMap,
    Directory,
}

impl ObjectKind {
    fn dir(self) -> &'static str {
        match self {
            ObjectKind::Chunk => "chunks",
            ObjectKind::ChunkMap => "chunkmaps",
            ObjectKind::Directory => "directories",
        }
    }
}

/// The key of a castore object: `<prefix>/<kind>/<h[0..2]>/<h[2..4]>/<hex>`.
pub fn object_key(prefix: &ObjectPath, kind: ObjectKind, digest: &Digest) -> ObjectPath {
    let hex = digest.to_string();
    prefix
        .clone()
        .join(kind.dir())
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(hex.as_str())
}

/// Bytes of single-chunk blobs kept between their chunk map lookup and
/// their read.
const RECENT_CHUNK_BYTES: u64 = 32 << 20;

/// Chunks, chunk maps and directories in an object store.
pub struct ObjectStoreBackend {
    instance: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    read_only: bool,
    /// Single-chunk blobs fetched whole while looking up their chunk map,
    /// kept briefly for the read that follows (one request per small file
    /// instead of a HEAD and a GET).
    recent_chunks: moka::sync::Cache<Digest, Bytes>,
    /// Sizes of directories known to be stored (saves a GET per child
    /// when directories are put bottom-up).
    directory_sizes: moka::sync::Cache<Digest, u64>,
}

impl ObjectStoreBackend {
    /// A backend over `store` under `prefix`, called `instance` in errors and logs.
    pub fn new(
        instance: impl Into<String>,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    ) -> ObjectStoreBackend {
        ObjectStoreBackend {
            instance: instance.into(),
            store,
            prefix,
            read_only: false,
            recent_chunks: moka::sync::Cache::builder()
                .max_capacity(RECENT_CHUNK_BYTES)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .time_to_idle(Duration::from_secs(30))
                .build(),
            directory_sizes: moka::sync::Cache::new(1 << 16),
        }
    }

    /// Refuses writes (for stores served by plain web servers).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opens `url` (see [`open_url`]).
    pub fn open(
        instance: impl Into<String>,
        url: &str,
        options: &[(String, String)],
        remote: &RemoteOptions,
    ) -> Result<ObjectStoreBackend, ObjectStoreOpenError> {
        let (store, prefix) = open_url(url, options, remote)?;
        Ok(ObjectStoreBackend::new(instance, store, prefix).with_read_only(is_read_only_url(url)))
    }

    /// The object store and prefix (to keep PathInfo next to the content).
    pub fn store(&self) -> (&Arc<dyn ObjectStore>, &ObjectPath) {
        (&self.store, &self.prefix)
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn backend(&self, source: object_store::Error) -> BackendError {
        BackendError::new(self.instance.clone(), source)
    }

    /// The object's bytes, `None` if absent.
    async fn get_object(&self, key: &ObjectPath) -> Result<Option<Bytes>, BackendError> {
        match self.store.get(key).await {
            Ok(result) => match result.bytes().await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) => Err(self.backend(e)),
            },
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend(e)),
        }
    }

    async fn object_size(&self, key: &ObjectPath) -> Result<Option<u64>, BackendError> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend(e)),
        }
    }

    async fn put_object(&self, key: &ObjectPath, data: Bytes) -> Result<(), BackendError> {
        if self.read_only {
            return Err(BackendError::new(self.instance.clone(), ReadOnlyStore));
        }
        self.store
            .put(key, PutPayload::from_bytes(data))
            .await
            .map(drop)
            .map_err(|e| self.backend(e))
    }

    /// Digests of every object of `kind` (keys that are not digests are skipped).
    async fn list_kind(&self, kind: ObjectKind) -> Result<Vec<Digest>, BackendError> {
        let dir = self.prefix.clone().join(kind.dir());
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| self.backend(e))?;
        Ok(metas
            .iter()
            .filter_map(|m| m.location.filename()?.parse().ok())
            .collect())
    }
}

#[async_trait]
impl ChunkService for ObjectStoreBackend {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        if let Some(data) = self.recent_chunks.get(digest) {
            return Ok(Some(data));
        }
        let key = object_key(&self.prefix, ObjectKind::Chunk, digest);
        match self.get_object(&key).await? {
            Some(data) => {
                verify_chunk(digest, &data)?;
                Ok(Some(data))
            }
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        let key = object_key(&self.prefix, ObjectKind::Chunk, &digest);
        Ok(self.put_object(&key, data).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        let key = object_key(&self.prefix, ObjectKind::Chunk, digest);
        Ok(self.object_size(&key).await?)
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        Ok(self.list_kind(ObjectKind::Chunk).await?)
    }
}

#[async_trait]
impl BlobService for ObjectStoreBackend {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        let key = object_key(&self.prefix, ObjectKind::ChunkMap, blob);
        match self.get_object(&key).await? {
            Some(bytes) => Ok(Some(ChunkMap::decode(blob, &bytes)?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        let key = object_key(&self.prefix, ObjectKind::ChunkMap, &blob);
        Ok(self.put_object(&key, Bytes::from(map.encode())).await?)
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        Ok(self.list_kind(ObjectKind::ChunkMap).await?)
    }

    /// Most blobs are one chunk: fetch it whole (one request, and its bytes
    /// are kept for the read that follows); only if there is no such chunk,
    /// fetch the stored chunk map.
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        if *blob == Digest::empty() {
            return Ok(Some(ChunkMap::default()));
        }
        if let Some(data) = ChunkService::get(self, blob).await? {
            let size = u32::try_from(data.len())
                .map_err(|_| BlobError::CorruptMap(*blob, "chunk larger than 4 GiB"))?;
            self.recent_chunks.insert(*blob, data);
            return Ok(Some(ChunkMap::new(vec![crate::ChunkRef {
                digest: *blob,
                size,
            }])));
        }
        self.stored_chunk_map(blob).await
    }
}

#[async_trait]
impl DirectoryService for ObjectStoreBackend {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        let key = object_key(&self.prefix, ObjectKind::Directory, digest);
        match self.get_object(&key).await? {
            Some(bytes) => {
                let dir = decode_stored(digest, &bytes)?;
                self.directory_sizes.insert(*digest, dir.size());
                Ok(Some(dir))
            }
            None => Ok(None),
        }
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        if let Some(size) = self.directory_sizes.get(digest) {
            return Ok(Some(size));
        }
        Ok(DirectoryService::get(self, digest).await?.map(|d| d.size()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        let key = object_key(&self.prefix, ObjectKind::Directory, &digest);
        self.put_object(&key, Bytes::from(directory.encode()))
            .await?;
        self.directory_sizes.insert(digest, directory.size());
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        Ok(self.list_kind(ObjectKind::Directory).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sharded_by_the_first_hex_digits() {
        let digest = Digest::of(b"hello");
        let hex = digest.to_string();
        let key = object_key(&ObjectPath::from("some/prefix"), ObjectKind::Chunk, &digest);
        assert_eq!(
            key.as_ref(),
            format!("some/prefix/chunks/{}/{}/{hex}", &hex[..2], &hex[2..4])
        );
    }

    #[tokio::test]
    async fn blobs_and_directories_round_trip_and_are_verified() {
        let memory: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let backend = ObjectStoreBackend::new("t", memory.clone(), ObjectPath::from("p"));
        let small = Bytes::from_static(b"one chunk");
        let small_digest = Digest::of(&small);
        ChunkService::put(&backend, small_digest, small.clone())
            .await
            .unwrap();
        let map = backend.chunk_map(&small_digest).await.unwrap().unwrap();
        assert_eq!(map.blob_size(), small.len() as u64);
        assert_eq!(
            ChunkService::get(&backend, &small_digest).await.unwrap(),
            Some(small.clone())
        );

        let (a, b) = (Bytes::from_static(b"first"), Bytes::from_static(b"second"));
        for c in [&a, &b] {
            ChunkService::put(&backend, Digest::of(c), c.clone())
                .await
                .unwrap();
        }
        let big_map = ChunkMap::new(vec![
            crate::ChunkRef {
                digest: Digest::of(&a),
                size: 5,
            },
            crate::ChunkRef {
                digest: Digest::of(&b),
                size: 6,
            },
        ]);
        let blob = Digest::of(b"firstsecond");
        backend.put_chunk_map(blob, &big_map).await.unwrap();
        assert_eq!(backend.chunk_map(&blob).await.unwrap(), Some(big_map));
        assert_eq!(
            backend.chunk_map(&Digest::of(b"absent")).await.unwrap(),
            None
        );
        assert_eq!(ChunkService::list(&backend).await.unwrap().len(), 3);

        // Bytes changed behind the store's back are refused.
        let key = object_key(&ObjectPath::from("p"), ObjectKind::Chunk, &Digest::of(&a));
        memory
            .put(&key, PutPayload::from_static(b"tampered"))
            .await
            .unwrap();
        let fresh = ObjectStoreBackend::new("t", memory, ObjectPath::from("p"));
        assert!(matches!(
            ChunkService::get(&fresh, &Digest::of(&a)).await,
            Err(ChunkError::Corrupt { .. })
        ));
    }

    #[test]
    fn unknown_options_are_refused() {
        let err = open_url(
            "s3://bucket/prefix",
            &[("no_such_option".into(), "1".into())],
            &RemoteOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("no_such_option"), "{err}");
    }
}
