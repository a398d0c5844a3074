//! A blob service wrapper that delays every request, or stalls it forever:
//! a slow or unresponsive remote backend, for tests and benchmarks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_castore::{BlobError, BlobService, ChunkError, ChunkMap, ChunkService, Digest};

/// Settings shared by a [`SlowBlobs`] and its owner; changeable at any time.
#[derive(Default)]
pub struct SlowControl {
    delay_us: AtomicU64,
    stalled: AtomicBool,
    requests: AtomicU64,
}

impl SlowControl {
    /// Delay added to every request.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(us, Ordering::Relaxed);
    }

    /// While stalled, requests never answer.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Relaxed);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn wait(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.stalled.load(Ordering::Relaxed) {
            futures::future::pending::<()>().await;
        }
        let us = self.delay_us.load(Ordering::Relaxed);
        if us > 0 {
            tokio::time::sleep(Duration::from_micros(us)).await;
        }
    }
}

struct SlowChunks {
    inner: Arc<dyn BlobService>,
    control: Arc<SlowControl>,
}

/// Wraps a [`BlobService`]: every read request waits as [`SlowControl`] says.
pub struct SlowBlobs {
    inner: Arc<dyn BlobService>,
    chunks: SlowChunks,
    control: Arc<SlowControl>,
}

impl SlowBlobs {
    pub fn new(inner: Arc<dyn BlobService>) -> SlowBlobs {
        let control = Arc::new(SlowControl::default());
        SlowBlobs {
            chunks: SlowChunks {
                inner: inner.clone(),
                control: control.clone(),
            },
            inner,
            control,
        }
    }

    pub fn control(&self) -> Arc<SlowControl> {
        self.control.clone()
    }
}

#[async_trait]
impl ChunkService for SlowChunks {
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        self.control.wait().await;
        self.inner.chunks().get(digest).await
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        self.inner.chunks().put(digest, data).await
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        self.control.wait().await;
        self.inner.chunks().size(digest).await
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        self.inner.chunks().list().await
    }
}

#[async_trait]
impl BlobService for SlowBlobs {
    fn chunks(&self) -> &dyn ChunkService {
        &self.chunks
    }

    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        self.control.wait().await;
        self.inner.stored_chunk_map(blob).await
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        self.inner.put_chunk_map(blob, map).await
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        self.inner.list_chunk_maps().await
    }
}
