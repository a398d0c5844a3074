//! BlobService: blobs as ordered lists of chunks (chunk maps).
//!
//! A blob made of a single chunk has no stored chunk map: its digest is the
//! chunk's digest, so [`BlobService::chunk_map`] derives the map from the
//! chunk itself.

use async_trait::async_trait;

use super::BackendError;
use super::chunk::{ChunkError, ChunkService};
use crate::Digest;

/// Errors of a [`BlobService`] and of blob readers and writers.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("chunk {chunk} of blob {blob} is missing")]
    MissingChunk { blob: Digest, chunk: Digest },
    #[error("chunk map of blob {0} is corrupt: {1}")]
    CorruptMap(Digest, &'static str),
    #[error("blob {blob}: chunk {chunk} has {actual} bytes, its map says {expected}")]
    ChunkSize {
        blob: Digest,
        chunk: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One chunk of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    pub digest: Digest,
    pub size: u32,
}

/// The ordered chunks of a blob, with their start offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkMap {
    chunks: Vec<ChunkRef>,
    /// `starts[i]` is the blob offset of chunk i; `starts[len]` the blob size.
    starts: Vec<u64>,
}

const ENTRY_LEN: usize = 36;

impl ChunkMap {
    pub fn new(chunks: Vec<ChunkRef>) -> ChunkMap {
        let mut starts = Vec::with_capacity(chunks.len() + 1);
        let mut offset = 0u64;
        starts.push(0);
        for c in &chunks {
            offset += u64::from(c.size);
            starts.push(offset);
        }
        ChunkMap { chunks, starts }
    }

    pub fn chunks(&self) -> &[ChunkRef] {
        &self.chunks
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Total blob size.
    pub fn blob_size(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// Blob offset where chunk `index` starts.
    pub fn start(&self, index: usize) -> u64 {
        self.starts[index]
    }

    /// Index of the chunk that holds blob offset `offset` (None past the end).
    pub fn chunk_at(&self, offset: u64) -> Option<usize> {
        if offset >= self.blob_size() {
            return None;
        }
        Some(self.starts.partition_point(|s| *s <= offset) - 1)
    }

    /// Serialized form: 32-byte digest + little-endian u32 size per chunk.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.chunks.len() * ENTRY_LEN);
        for c in &self.chunks {
            out.extend_from_slice(c.digest.as_bytes());
            out.extend_from_slice(&c.size.to_le_bytes());
        }
        out
    }

    pub fn decode(blob: &Digest, bytes: &[u8]) -> Result<ChunkMap, BlobError> {
        if !bytes.len().is_multiple_of(ENTRY_LEN) {
            return Err(BlobError::CorruptMap(
                *blob,
                "length is not a multiple of 36",
            ));
        }
        let mut chunks = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        for entry in bytes.chunks_exact(ENTRY_LEN) {
            let digest = Digest::try_from(&entry[..32])
                .map_err(|_| BlobError::CorruptMap(*blob, "bad digest"))?;
            let mut size = [0u8; 4];
            size.copy_from_slice(&entry[32..]);
            chunks.push(ChunkRef {
                digest,
                size: u32::from_le_bytes(size),
            });
        }
        Ok(ChunkMap::new(chunks))
    }
}

/// Blobs: chunk maps over a [`ChunkService`].
#[async_trait]
pub trait BlobService: Send + Sync + 'static {
    /// The chunks the blobs are made of.
    fn chunks(&self) -> &dyn ChunkService;

    /// A stored chunk map (only multi-chunk blobs have one).
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError>;

    /// Stores the chunk map of a multi-chunk blob. Its chunks must already be stored.
    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError>;

    /// Digests of every stored chunk map (for verification).
    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError>;

    /// The chunk map of any blob: stored, or derived for a single-chunk blob.
    /// The empty blob has an empty map.
    async fn chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        if *blob == Digest::empty() {
            return Ok(Some(ChunkMap::default()));
        }
        // A chunk with the blob's digest has the blob's bytes: the blob is
        // that single chunk (most files), whether or not a map exists.
        if let Some(size) = self.chunks().size(blob).await? {
            return Ok(Some(ChunkMap::new(vec![ChunkRef {
                digest: *blob,
                size: u32::try_from(size)
                    .map_err(|_| BlobError::CorruptMap(*blob, "chunk larger than 4 GiB"))?,
            }])));
        }
        self.stored_chunk_map(blob).await
    }

    async fn has(&self, blob: &Digest) -> Result<bool, BlobError> {
        Ok(self.chunk_map(blob).await?.is_some())
    }
}
