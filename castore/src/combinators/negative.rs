//! [`NegativeCache`]: a short memory of what a store does not have.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Digest;
use crate::directory::Directory;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService};
use crate::services::directory::{DirectoryService, DirectoryServiceError};

/// What kind of object a remembered miss was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissKind {
    Chunk,
    ChunkMap,
    Directory,
    PathInfo,
}

/// Remembers for `ttl` that the inner store answered "not found", and
/// answers "not found" itself meanwhile. Errors are never remembered; a
/// write through this store forgets the miss at once.
pub struct NegativeCache<T: ?Sized> {
    instance: String,
    inner: Arc<T>,
    misses: moka::sync::Cache<(MissKind, [u8; 32]), ()>,
}

impl<T: ?Sized> NegativeCache<T> {
    pub fn new(instance: impl Into<String>, inner: Arc<T>, ttl: Duration) -> Self {
        NegativeCache {
            instance: instance.into(),
            inner,
            misses: moka::sync::Cache::builder()
                .max_capacity(1 << 16)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn inner(&self) -> &Arc<T> {
        &self.inner
    }

    /// True if a miss of `key` is remembered.
    pub fn known_missing(&self, kind: MissKind, key: &[u8]) -> bool {
        self.misses.contains_key(&(kind, pad(key)))
    }

    /// Remembers `answer` if it is a miss, and passes it on.
    pub fn remember<V, E>(
        &self,
        kind: MissKind,
        key: &[u8],
        answer: Result<Option<V>, E>,
    ) -> Result<Option<V>, E> {
        if let Ok(None) = answer {
            tracing::debug!(store = %self.instance, ?kind, "remembering a miss");
            self.misses.insert((kind, pad(key)), ());
        }
        answer
    }

    /// Forgets a remembered miss (the object was just written).
    pub fn forget(&self, kind: MissKind, key: &[u8]) {
        self.misses.invalidate(&(kind, pad(key)));
    }
}

fn pad(key: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = key.len().min(32);
    out[..n].copy_from_slice(&key[..n]);
    out
}

#[async_trait]
impl ChunkService for NegativeCache<dyn BlobService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        let key = digest.as_bytes();
        if self.known_missing(MissKind::Chunk, key) {
            return Ok(None);
        }
        let answer = self.inner.chunks().get(digest).await;
        self.remember(MissKind::Chunk, key, answer)
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        self.inner.chunks().put(digest, data).await?;
        self.forget(MissKind::Chunk, digest.as_bytes());
        Ok(())
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        let key = digest.as_bytes();
        if self.known_missing(MissKind::Chunk, key) {
            return Ok(None);
        }
        let answer = self.inner.chunks().size(digest).await;
        self.remember(MissKind::Chunk, key, answer)
    }

    async fn puts_paused(&self) {
        self.inner.chunks().puts_paused().await;
    }

    async fn flush(&self) -> Result<(), ChunkError> {
        self.inner.chunks().flush().await
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        self.inner.chunks().list().await
    }
}

#[async_trait]
impl BlobService for NegativeCache<dyn BlobService> {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        let key = blob.as_bytes();
        if self.known_missing(MissKind::ChunkMap, key) {
            return Ok(None);
        }
        let answer = self.inner.stored_chunk_map(blob).await;
        self.remember(MissKind::ChunkMap, key, answer)
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        self.inner.put_chunk_map(blob, map).await?;
        self.forget(MissKind::ChunkMap, blob.as_bytes());
        Ok(())
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        self.inner.list_chunk_maps().await
    }
}

#[async_trait]
impl DirectoryService for NegativeCache<dyn DirectoryService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        let key = digest.as_bytes();
        if self.known_missing(MissKind::Directory, key) {
            return Ok(None);
        }
        let answer = self.inner.get(digest).await;
        self.remember(MissKind::Directory, key, answer)
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        let key = digest.as_bytes();
        if self.known_missing(MissKind::Directory, key) {
            return Ok(None);
        }
        let answer = self.inner.size_of(digest).await;
        self.remember(MissKind::Directory, key, answer)
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        self.inner.put_checked(digest, directory).await?;
        self.forget(MissKind::Directory, digest.as_bytes());
        Ok(())
    }

    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        self.inner.flush().await
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        self.inner.list().await
    }
}
