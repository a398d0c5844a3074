//! Reading and writing blobs over chunks.
//!
//! [`BlobReader`] is a seekable `AsyncRead` that keeps the chunks after the
//! one being read in flight (a sliding window bounded in bytes), fetched
//! concurrently and consumed in order. [`BlobWriter`] chunks and hashes bytes
//! as they stream in, stores chunks with bounded concurrency, and yields the
//! blob's digest.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::task::{JoinHandle, JoinSet};

use crate::services::blob::{BlobError, BlobService, ChunkMap, ChunkRef};
use crate::{ChunkerConfig, Digest};

/// Default prefetch window of a [`BlobReader`], in bytes.
pub const DEFAULT_WINDOW: u64 = 4 << 20;

/// Fetches one chunk of `blob`, checking its length against the map.
pub async fn fetch_chunk(
    blobs: &dyn BlobService,
    blob: Digest,
    chunk: ChunkRef,
) -> Result<Bytes, BlobError> {
    let data = blobs
        .chunks()
        .get(&chunk.digest)
        .await?
        .ok_or(BlobError::MissingChunk {
            blob,
            chunk: chunk.digest,
        })?;
    if data.len() as u64 != u64::from(chunk.size) {
        return Err(BlobError::ChunkSize {
            blob,
            chunk: chunk.digest,
            expected: u64::from(chunk.size),
            actual: data.len() as u64,
        });
    }
    Ok(data)
}

/// A seekable reader of one blob with a sliding prefetch window.
pub struct BlobReader {
    blobs: Arc<dyn BlobService>,
    digest: Digest,
    map: Arc<ChunkMap>,
    pos: u64,
    window: u64,
    current: Option<(usize, Bytes)>,
    inflight: VecDeque<(usize, JoinHandle<Result<Bytes, BlobError>>)>,
}

impl BlobReader {
    /// Opens `digest`; [`BlobError::NotFound`] if the store has no such blob.
    pub async fn open(blobs: Arc<dyn BlobService>, digest: Digest) -> Result<Self, BlobError> {
        let map = blobs
            .chunk_map(&digest)
            .await?
            .ok_or(BlobError::NotFound(digest))?;
        Ok(BlobReader::with_map(blobs, digest, Arc::new(map)))
    }

    /// A reader over a known chunk map.
    pub fn with_map(blobs: Arc<dyn BlobService>, digest: Digest, map: Arc<ChunkMap>) -> Self {
        BlobReader {
            blobs,
            digest,
            map,
            pos: 0,
            window: DEFAULT_WINDOW,
            current: None,
            inflight: VecDeque::new(),
        }
    }

    /// Sets the prefetch window in bytes; 0 fetches one chunk at a time.
    pub fn set_window(&mut self, bytes: u64) {
        self.window = bytes;
    }

    pub fn size(&self) -> u64 {
        self.map.blob_size()
    }

    fn spawn_fetch(&self, index: usize) -> JoinHandle<Result<Bytes, BlobError>> {
        let blobs = self.blobs.clone();
        let chunk = self.map.chunks()[index];
        let blob = self.digest;
        tokio::spawn(async move { fetch_chunk(blobs.as_ref(), blob, chunk).await })
    }

    /// Makes sure chunk `index` is at the front of the in-flight queue and the
    /// chunks after it are in flight up to the window.
    fn fill_window(&mut self, index: usize) {
        if self.inflight.front().map(|(i, _)| *i) != Some(index) {
            for (_, handle) in self.inflight.drain(..) {
                handle.abort();
            }
            let handle = self.spawn_fetch(index);
            self.inflight.push_back((index, handle));
        }
        let ahead: u64 = self
            .inflight
            .iter()
            .skip(1)
            .map(|(i, _)| u64::from(self.map.chunks()[*i].size))
            .sum();
        let mut ahead = ahead;
        let mut next = self.inflight.back().map(|(i, _)| i + 1).unwrap_or(index);
        while next < self.map.len() && ahead < self.window {
            ahead += u64::from(self.map.chunks()[next].size);
            let handle = self.spawn_fetch(next);
            self.inflight.push_back((next, handle));
            next += 1;
        }
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        for (_, handle) in self.inflight.drain(..) {
            handle.abort();
        }
    }
}

impl AsyncRead for BlobReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let Some(index) = this.map.chunk_at(this.pos) else {
                return Poll::Ready(Ok(()));
            };
            if let Some((current, data)) = &this.current
                && *current == index
            {
                let within = (this.pos - this.map.start(index)) as usize;
                let n = (data.len() - within).min(buf.remaining());
                buf.put_slice(&data[within..within + n]);
                this.pos += n as u64;
                return Poll::Ready(Ok(()));
            }
            this.fill_window(index);
            let Some((_, handle)) = this.inflight.front_mut() else {
                return Poll::Ready(Err(io::Error::other("prefetch queue empty")));
            };
            match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(joined) => {
                    this.inflight.pop_front();
                    let data = joined
                        .map_err(io::Error::other)?
                        .map_err(io::Error::other)?;
                    this.current = Some((index, data));
                    if index + 1 < this.map.len() {
                        this.fill_window(index + 1);
                    }
                }
            }
        }
    }
}

impl AsyncSeek for BlobReader {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let size = self.size() as i128;
        let target = match position {
            io::SeekFrom::Start(p) => p as i128,
            io::SeekFrom::End(d) => size + d as i128,
            io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the blob",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

/// Default number of chunk uploads a [`BlobWriter`] keeps in flight.
pub const DEFAULT_WRITE_CONCURRENCY: usize = 16;

/// Chunks, hashes and stores a blob as its bytes stream in.
pub struct BlobWriter {
    blobs: Arc<dyn BlobService>,
    chunker: ChunkerConfig,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    chunks: Vec<ChunkRef>,
    uploads: JoinSet<Result<(), BlobError>>,
    concurrency: usize,
}

impl BlobWriter {
    pub fn new(blobs: Arc<dyn BlobService>, chunker: ChunkerConfig) -> BlobWriter {
        BlobWriter {
            blobs,
            chunker,
            buf: Vec::new(),
            hasher: blake3::Hasher::new(),
            chunks: Vec::new(),
            uploads: JoinSet::new(),
            concurrency: DEFAULT_WRITE_CONCURRENCY,
        }
    }

    /// Appends bytes to the blob.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        self.hasher.update(data);
        self.buf.extend_from_slice(data);
        let max = self.chunker.max_size as usize;
        if self.buf.len() >= 2 * max {
            let mut start = 0;
            while self.buf.len() - start >= max {
                let len = self.chunker.next_cut(&self.buf[start..]);
                let chunk = Bytes::copy_from_slice(&self.buf[start..start + len]);
                self.store_chunk(chunk).await?;
                start += len;
            }
            self.buf.drain(..start);
        }
        Ok(())
    }

    async fn store_chunk(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let digest = Digest::of(&chunk);
        self.chunks.push(ChunkRef {
            digest,
            size: chunk.len() as u32,
        });
        while self.uploads.len() >= self.concurrency {
            if let Some(done) = self.uploads.join_next().await {
                done.map_err(|e| BlobError::Io(io::Error::other(e)))??;
            }
        }
        let blobs = self.blobs.clone();
        self.uploads.spawn(async move {
            blobs.chunks().put(digest, chunk).await?;
            Ok(())
        });
        Ok(())
    }

    /// Stores the rest and returns the blob's digest and size. The blob is
    /// readable once this returns.
    pub async fn finish(mut self) -> Result<(Digest, u64), BlobError> {
        let rest = std::mem::take(&mut self.buf);
        if self.chunks.is_empty() && !rest.is_empty() && self.chunker.keeps_whole(rest.len() as u64)
        {
            self.store_chunk(Bytes::from(rest)).await?;
        } else {
            let mut start = 0;
            while start < rest.len() {
                let len = self.chunker.next_cut(&rest[start..]);
                self.store_chunk(Bytes::copy_from_slice(&rest[start..start + len]))
                    .await?;
                start += len;
            }
        }
        while let Some(done) = self.uploads.join_next().await {
            done.map_err(|e| BlobError::Io(io::Error::other(e)))??;
        }
        let digest = Digest::from(self.hasher.finalize());
        let map = ChunkMap::new(std::mem::take(&mut self.chunks));
        if map.len() > 1 {
            self.blobs.put_chunk_map(digest, &map).await?;
        }
        Ok((digest, map.blob_size()))
    }
}
