//! ChunkService: chunks stored and fetched by their BLAKE3 digest.

use async_trait::async_trait;
use bytes::Bytes;

use super::BackendError;
use super::blob::ChunkRef;
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

/// Chunks that lie back to back at the start of one buffer, as an importer
/// cuts them from what it read. The buffer may go on past the last chunk
/// (padding, which is not part of any chunk): an importer hands out runs
/// aligned and padded so that a backend can write one straight to disk.
#[derive(Debug, Clone)]
pub struct ChunkRun {
    memory: Bytes,
    chunks: Vec<ChunkRef>,
}

impl ChunkRun {
    /// A run of `chunks` (in order) at the start of `memory`; `None` if
    /// they do not fit in it.
    pub fn new(memory: Bytes, chunks: Vec<ChunkRef>) -> Option<ChunkRun> {
        let total: u64 = chunks.iter().map(|c| u64::from(c.size)).sum();
        (total <= memory.len() as u64).then_some(ChunkRun { memory, chunks })
    }

    /// The whole buffer, padding included.
    pub fn memory(&self) -> &Bytes {
        &self.memory
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    /// Bytes of the chunks, padding excluded.
    pub fn data_len(&self) -> usize {
        self.chunks.iter().map(|c| c.size as usize).sum()
    }

    /// Each chunk as a slice of the buffer.
    pub fn into_chunks(self) -> Vec<(Digest, Bytes)> {
        let mut at = 0;
        self.chunks
            .into_iter()
            .map(|chunk| {
                let data = self.memory.slice(at..at + chunk.size as usize);
                at += chunk.size as usize;
                (chunk.digest, data)
            })
            .collect()
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

    /// Stores the chunks of `runs`, as [`ChunkService::put_batch`] of each
    /// would. Backends that can write a run's buffer as it is (the local
    /// store, straight to a pack) override it.
    async fn put_runs(&self, runs: Vec<ChunkRun>) -> Result<(), ChunkError> {
        let chunks = runs.into_iter().flat_map(ChunkRun::into_chunks).collect();
        self.put_batch(chunks).await
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

    /// A hint that no puts follow for a while (an import has handed over
    /// its last chunks and waits for them to be written): a backend that
    /// defers index writes may start them now, while the last bytes are
    /// still on their way to disk, rather than when the next write asks.
    /// Errors are not reported here; the next write or flush reports them.
    async fn puts_paused(&self) {}

    /// Makes everything written so far durable, and visible to other users
    /// of the same store (a no-op where writes are both when they return).
    async fn flush(&self) -> Result<(), ChunkError> {
        Ok(())
    }

    /// Every chunk digest the store holds (for verification).
    async fn list(&self) -> Result<Vec<Digest>, ChunkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(data: &[u8]) -> ChunkRef {
        ChunkRef {
            digest: Digest::of(data),
            size: data.len() as u32,
        }
    }

    #[test]
    fn a_run_is_refused_when_its_chunks_overrun_the_memory() {
        let memory = Bytes::from_static(b"abcdef");
        assert!(ChunkRun::new(memory.clone(), vec![chunk(b"abcd"), chunk(b"efg")]).is_none());
        // Chunk sizes that would wrap a 32-bit sum are refused too.
        let huge = ChunkRef {
            digest: Digest::of(b""),
            size: u32::MAX,
        };
        assert!(ChunkRun::new(memory.clone(), vec![huge, huge]).is_none());
    }

    #[test]
    fn a_run_slices_its_chunks_and_leaves_the_padding_out() {
        let memory = Bytes::from_static(b"abcdef\0\0");
        let run = ChunkRun::new(memory, vec![chunk(b"abc"), chunk(b"def")]).unwrap();
        assert_eq!(run.data_len(), 6);
        let chunks = run.into_chunks();
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            (chunks[0].0, &chunks[0].1[..]),
            (Digest::of(b"abc"), &b"abc"[..])
        );
        assert_eq!(
            (chunks[1].0, &chunks[1].1[..]),
            (Digest::of(b"def"), &b"def"[..])
        );
    }
}
