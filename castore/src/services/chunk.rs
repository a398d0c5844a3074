//! ChunkService: chunks stored and fetched by their BLAKE3 digest.

use async_trait::async_trait;
use bytes::Bytes;

use super::BackendError;
use crate::Digest;

/// Errors of a [`ChunkService`].
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The bytes a backend returned do not hash to the digest asked for.
    #[error("chunk {digest} failed verification: its bytes hash to {actual}")]
    Corrupt { digest: Digest, actual: Digest },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Checks `data` against `digest`.
pub fn verify_chunk(digest: &Digest, data: &[u8]) -> Result<(), ChunkError> {
    let actual = Digest::of(data);
    if actual == *digest {
        Ok(())
    } else {
        Err(ChunkError::Corrupt {
            digest: *digest,
            actual,
        })
    }
}

/// Chunks by digest. Every chunk a backend returns has been verified against
/// its digest; a mismatch is [`ChunkError::Corrupt`], never bytes.
#[async_trait]
pub trait ChunkService: Send + Sync + 'static {
    /// The chunk's bytes, or `None` if the store does not have it.
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError>;

    /// Stores a chunk. `digest` must be BLAKE3 of `data` (the writer computed
    /// it while chunking); reads verify it.
    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError>;

    /// Stores several chunks, as a `put` of each would; the first error is
    /// returned once every put has finished. Backends that store a batch
    /// more cheaply than chunk by chunk (one index lookup, one write, one
    /// commit) override it. Importers hand in slices of larger read
    /// buffers, which are reused once every slice is dropped: a backend that
    /// keeps chunks in memory copies them rather than keep the buffers.
    async fn put_batch(&self, chunks: Vec<(Digest, Bytes)>) -> Result<(), ChunkError> {
        let puts = chunks
            .into_iter()
            .map(|(digest, data)| self.put(digest, data));
        futures::future::join_all(puts)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    }

    /// The chunk's length if the store has it.
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError>;

    async fn has(&self, digest: &Digest) -> Result<bool, ChunkError> {
        Ok(self.size(digest).await?.is_some())
    }

    /// A hint that these chunks are about to be read or sized: a backend may
    /// look them up (or start fetching them) together rather than one by
    /// one. Errors are not reported here; the later reads report them.
    async fn prepare(&self, digests: &[Digest]) {
        let _ = digests;
    }

    /// Makes everything written so far durable (a no-op where writes are
    /// durable when they return).
    async fn flush(&self) -> Result<(), ChunkError> {
        Ok(())
    }

    /// Every chunk digest the store holds (for verification).
    async fn list(&self) -> Result<Vec<Digest>, ChunkError>;
}
