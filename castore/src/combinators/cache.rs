//! [`CacheStore`]: a near store in front of a far one.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Digest;
use crate::directory::Directory;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService};
use crate::services::directory::{DirectoryService, DirectoryServiceError};

/// Reads ask `near` first, then `far`; what comes from far is written to
/// near (a failed write-back is logged, the read still succeeds). Writes go
/// to far, then near. Listing lists far.
pub struct CacheStore<T: ?Sized> {
    instance: String,
    near: Arc<T>,
    far: Arc<T>,
}

impl<T: ?Sized> CacheStore<T> {
    pub fn new(instance: impl Into<String>, near: Arc<T>, far: Arc<T>) -> Self {
        CacheStore {
            instance: instance.into(),
            near,
            far,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn near(&self) -> &Arc<T> {
        &self.near
    }

    pub fn far(&self) -> &Arc<T> {
        &self.far
    }
}

/// Logs a failed write-back to the near store.
pub fn log_write_back_failure(instance: &str, what: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(
        store = instance,
        "writing {what} back to the near store failed: {error}"
    );
}

#[async_trait]
impl ChunkService for CacheStore<dyn BlobService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        match self.near.chunks().get(digest).await {
            Ok(Some(data)) => return Ok(Some(data)),
            Ok(None) => {}
            Err(e) => tracing::warn!(store = %self.instance, "near store failed: {e}"),
        }
        let Some(data) = self.far.chunks().get(digest).await? else {
            return Ok(None);
        };
        if let Err(e) = self.near.chunks().put(*digest, data.clone()).await {
            log_write_back_failure(&self.instance, "a chunk", &e);
        }
        Ok(Some(data))
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        self.far.chunks().put(digest, data.clone()).await?;
        self.near.chunks().put(digest, data).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        if let Ok(Some(size)) = self.near.chunks().size(digest).await {
            return Ok(Some(size));
        }
        self.far.chunks().size(digest).await
    }

    async fn puts_paused(&self) {
        self.far.chunks().puts_paused().await;
        self.near.chunks().puts_paused().await;
    }

    async fn flush(&self) -> Result<(), ChunkError> {
        self.far.chunks().flush().await?;
        self.near.chunks().flush().await
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        self.far.chunks().list().await
    }
}

#[async_trait]
impl BlobService for CacheStore<dyn BlobService> {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        match self.near.stored_chunk_map(blob).await {
            Ok(Some(map)) => return Ok(Some(map)),
            Ok(None) => {}
            Err(e) => tracing::warn!(store = %self.instance, "near store failed: {e}"),
        }
        let Some(map) = self.far.stored_chunk_map(blob).await? else {
            return Ok(None);
        };
        // Written back at once: the chunks follow as they are read (a cache
        // need not hold a blob's every chunk).
        if let Err(e) = self.near.put_chunk_map(*blob, &map).await {
            log_write_back_failure(&self.instance, "a chunk map", &e);
        }
        Ok(Some(map))
    }

    /// Near's answer if it has one, else far's (so far answers in its own
    /// way, e.g. in one request); stored maps are written back.
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        match self.near.chunk_map(blob).await {
            Ok(Some(map)) => return Ok(Some(map)),
            Ok(None) => {}
            Err(e) => tracing::warn!(store = %self.instance, "near store failed: {e}"),
        }
        let Some(map) = self.far.chunk_map(blob).await? else {
            return Ok(None);
        };
        if map.len() > 1
            && let Err(e) = self.near.put_chunk_map(*blob, &map).await
        {
            log_write_back_failure(&self.instance, "a chunk map", &e);
        }
        Ok(Some(map))
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        self.far.put_chunk_map(blob, map).await?;
        self.near.put_chunk_map(blob, map).await
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        self.far.list_chunk_maps().await
    }
}

#[async_trait]
impl DirectoryService for CacheStore<dyn DirectoryService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        match self.near.get(digest).await {
            Ok(Some(dir)) => return Ok(Some(dir)),
            Ok(None) => {}
            Err(e) => tracing::warn!(store = %self.instance, "near store failed: {e}"),
        }
        let Some(dir) = self.far.get(digest).await? else {
            return Ok(None);
        };
        if let Err(e) = self.near.put_checked(*digest, &dir).await {
            log_write_back_failure(&self.instance, "a directory", &e);
        }
        Ok(Some(dir))
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        if let Ok(Some(size)) = self.near.size_of(digest).await {
            return Ok(Some(size));
        }
        self.far.size_of(digest).await
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        self.far.put_checked(digest, directory).await?;
        self.near.put_checked(digest, directory).await
    }

    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        self.far.flush().await?;
        self.near.flush().await
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        self.far.list().await
    }
}
