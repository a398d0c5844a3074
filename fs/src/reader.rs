//! Reading blobs: a bounded in-memory chunk cache shared by all files, and
//! per open file a sequential-access detector that keeps the chunks after a
//! read in flight (a sliding prefetch window, bounded in bytes).
//!
//! Every fetch runs on the tokio runtime, bounded by a timeout; concurrent
//! requests for the same chunk share one fetch (moka's `try_get_with`). The
//! cache evicts the least recently used chunk. A read returns slices of the
//! cached chunks ([`ReadSlices`]); [`concat()`] joins them for transports that
//! need one buffer.
//! Chunks come from the [`ChunkService`](cairn_castore::ChunkService), which
//! verifies every chunk it returns; with [`crate::FsOptions::verify_chunks`]
//! they are verified again here. A failed fetch is not cached: the next read
//! tries again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cairn_castore::blobio::fetch_chunk;
use cairn_castore::{BlobError, BlobService, ChunkError, ChunkMap, ChunkRef, Digest, Name};
use futures::future::try_join_all;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::FsError;

/// Fetches and caches chunks.
pub struct ChunkCache {
    blobs: Arc<dyn BlobService>,
    cache: moka::future::Cache<Digest, Bytes>,
    maps: moka::future::Cache<Digest, Arc<ChunkMap>>,
    timeout: Duration,
    verify: bool,
    prefetch_slots: Arc<Semaphore>,
    runtime: Handle,
    fetches: AtomicU64,
}

/// The bytes of one read, in order: slices of cached chunks (no copy).
pub type ReadSlices = Vec<Bytes>;

/// The slices of one read as one buffer (a copy unless there is one slice).
pub fn concat(slices: ReadSlices) -> Bytes {
    match <[Bytes; 1]>::try_from(slices) {
        Ok([one]) => one,
        Err(slices) => {
            let mut out = BytesMut::with_capacity(slices.iter().map(Bytes::len).sum());
            for slice in &slices {
                out.extend_from_slice(slice);
            }
            out.freeze()
        }
    }
}

/// Runs backend request `fut` with a deadline.
pub(crate) async fn with_timeout<T>(
    op: &'static str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, FsError>>,
) -> Result<T, FsError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(FsError::Timeout {
            op,
            after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

impl ChunkCache {
    pub fn new(
        blobs: Arc<dyn BlobService>,
        cache_bytes: u64,
        timeout: Duration,
        verify: bool,
        prefetch_concurrency: usize,
        runtime: Handle,
    ) -> ChunkCache {
        ChunkCache {
            blobs,
            // LRU, not moka's default TinyLFU admission: a prefetched chunk
            // has been seen once, the chunks already read twice, so once the
            // cache is full TinyLFU would turn the prefetched chunks away and
            // each read would fetch and verify its chunks again.
            cache: moka::future::Cache::builder()
                .max_capacity(cache_bytes)
                .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            maps: moka::future::Cache::builder()
                .max_capacity(1 << 20)
                .weigher(|_, m: &Arc<ChunkMap>| u32::try_from(m.len() + 1).unwrap_or(u32::MAX))
                .build(),
            timeout,
            verify,
            prefetch_slots: Arc::new(Semaphore::new(prefetch_concurrency.max(1))),
            runtime,
            fetches: AtomicU64::new(0),
        }
    }

    /// The chunk map of `blob` (cached).
    pub async fn chunk_map(&self, blob: Digest) -> Result<Arc<ChunkMap>, FsError> {
        let blobs = self.blobs.clone();
        let timeout = self.timeout;
        self.maps
            .try_get_with(blob, async move {
                with_timeout("fetching a chunk map", timeout, async {
                    match blobs.chunk_map(&blob).await? {
                        Some(map) => Ok(Arc::new(map)),
                        None => Err(FsError::MissingBlob(blob)),
                    }
                })
                .await
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Chunk `chunk` of `blob`, from the cache or fetched.
    pub async fn chunk(&self, blob: Digest, chunk: ChunkRef) -> Result<Bytes, FsError> {
        let blobs = self.blobs.clone();
        let (timeout, verify) = (self.timeout, self.verify);
        let fetches = &self.fetches;
        self.cache
            .try_get_with(chunk.digest, async move {
                // Yield first: a read polled on a transport thread (see
                // `crate::fuse`) moves to the runtime before fetching and
                // verifying chunk data; only cache hits are answered inline.
                tokio::task::yield_now().await;
                fetches.fetch_add(1, Ordering::Relaxed);
                with_timeout("fetching a chunk", timeout, async {
                    let data = match fetch_chunk(blobs.as_ref(), blob, chunk).await {
                        Ok(data) => data,
                        Err(BlobError::Chunk(ChunkError::Corrupt { .. })) => {
                            return Err(FsError::Corrupt {
                                blob,
                                chunk: chunk.digest,
                            });
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if verify {
                        let data2 = data.clone();
                        let ok =
                            tokio::task::spawn_blocking(move || Digest::of(&data2) == chunk.digest)
                                .await
                                .unwrap_or(false);
                        if !ok {
                            return Err(FsError::Corrupt {
                                blob,
                                chunk: chunk.digest,
                            });
                        }
                    }
                    Ok(data)
                })
                .await
            })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Starts fetching `chunk` in the background unless it is cached.
    pub fn prefetch(self: &Arc<Self>, blob: Digest, chunk: ChunkRef) {
        self.prefetch_many(blob, std::slice::from_ref(&chunk));
    }

    /// Starts fetching those of `chunks` that are not cached: the store is
    /// told about them together first (one index lookup for all, in the
    /// local store), then each is fetched by its own task, holding one of
    /// the prefetch slots (a fetch from a local store hashes, and may wait
    /// on the disk, so the fetches spread over the runtime's threads).
    pub fn prefetch_many(self: &Arc<Self>, blob: Digest, chunks: &[ChunkRef]) {
        let wanted: Vec<ChunkRef> = chunks
            .iter()
            .filter(|c| !self.cache.contains_key(&c.digest))
            .copied()
            .collect();
        if wanted.is_empty() {
            return;
        }
        let this = self.clone();
        self.runtime.spawn(async move {
            if wanted.len() > 1 {
                let digests: Vec<Digest> = wanted.iter().map(|c| c.digest).collect();
                this.blobs.chunks().prepare(&digests).await;
            }
            for chunk in wanted {
                let this2 = this.clone();
                this.runtime.spawn(async move {
                    let Ok(_permit) = this2.prefetch_slots.acquire().await else {
                        return;
                    };
                    if let Err(e) = this2.chunk(blob, chunk).await {
                        tracing::debug!(%blob, chunk = %chunk.digest, error = %e, "prefetch failed");
                    }
                });
            }
        });
    }

    /// Bytes cached now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Chunks fetched from the store so far (cache misses, prefetches included).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

/// Reads further than this many bytes from the previous read's end (either
/// way) count as random access.
const SEQUENTIAL_SLACK: u64 = 1 << 20;

#[derive(Default)]
struct Access {
    /// End of the furthest read so far in the current sequential run.
    next: u64,
    /// Chunks below this index were already handed to the prefetcher.
    prefetched_to: usize,
    reads: u64,
}

/// One open regular file.
pub struct OpenFile {
    pub blob: Digest,
    pub map: Arc<ChunkMap>,
    pub store_path: Name,
    access: Mutex<Access>,
}

impl OpenFile {
    pub fn new(blob: Digest, map: Arc<ChunkMap>, store_path: Name) -> OpenFile {
        OpenFile {
            blob,
            map,
            store_path,
            access: Mutex::new(Access::default()),
        }
    }

    pub fn size(&self) -> u64 {
        self.map.blob_size()
    }

    /// Records a read of `[offset, end)`; returns the chunk indexes to prefetch.
    fn record(&self, offset: u64, end: u64, window: u64) -> std::ops::Range<usize> {
        let mut access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        let sequential = if access.reads == 0 {
            offset == 0
        } else {
            offset <= access.next.saturating_add(SEQUENTIAL_SLACK)
                && end.saturating_add(SEQUENTIAL_SLACK) >= access.next
        };
        access.reads += 1;
        if !sequential {
            access.next = end;
            access.prefetched_to = 0;
            return 0..0;
        }
        access.next = access.next.max(end);
        if window == 0 || end >= self.size() {
            return 0..0;
        }
        let Some(current) = self.map.chunk_at(end - 1) else {
            return 0..0;
        };
        let Some(last) = self
            .map
            .chunk_at(end.saturating_add(window).min(self.size()) - 1)
        else {
            return 0..0;
        };
        let start = (current + 1).max(access.prefetched_to);
        let stop = last + 1;
        if start >= stop {
            return 0..0;
        }
        access.prefetched_to = stop;
        start..stop
    }

    /// Reads up to `size` bytes at `offset`: the chunks it covers are fetched
    /// concurrently; a sequential reader's next `window` bytes are prefetched.
    /// The bytes come back as slices of the cached chunks, uncopied.
    pub async fn read(
        &self,
        cache: &Arc<ChunkCache>,
        offset: u64,
        size: u32,
        window: u64,
    ) -> Result<ReadSlices, FsError> {
        let blob_size = self.size();
        if offset >= blob_size || size == 0 {
            return Ok(ReadSlices::new());
        }
        let end = offset.saturating_add(u64::from(size)).min(blob_size);
        let (Some(first), Some(last)) = (self.map.chunk_at(offset), self.map.chunk_at(end - 1))
        else {
            return Ok(ReadSlices::new());
        };
        let chunks = self.map.chunks();
        let ahead = self.record(offset, end, window);
        if !ahead.is_empty() {
            cache.prefetch_many(self.blob, &chunks[ahead]);
        }
        let fetches = (first..=last).map(|i| cache.chunk(self.blob, chunks[i]));
        let mut datas = try_join_all(fetches).await?;
        for (i, data) in (first..=last).zip(&mut datas) {
            let chunk_start = self.map.start(i);
            let from = offset.saturating_sub(chunk_start) as usize;
            let to = ((end - chunk_start) as usize).min(data.len());
            *data = data.slice(from..to);
        }
        Ok(datas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(sizes: &[u32]) -> OpenFile {
        let chunks = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| ChunkRef {
                digest: Digest::of(&i.to_le_bytes()),
                size: *s,
            })
            .collect();
        OpenFile::new(
            Digest::of(b"blob"),
            Arc::new(ChunkMap::new(chunks)),
            Name::try_from("sp").expect("name"),
        )
    }

    #[test]
    fn sequential_reads_prefetch_each_chunk_once() {
        let f = file(&[100; 50]);
        assert_eq!(f.record(0, 100, 300), 1..4);
        assert_eq!(f.record(100, 200, 300), 4..5);
        assert_eq!(f.record(200, 300, 300), 5..6);
        // Out-of-order but near: still sequential, nothing new to fetch.
        assert_eq!(f.record(150, 250, 300), 0..0);
    }

    #[test]
    fn random_reads_do_not_prefetch() {
        let f = file(&[100_000; 100]);
        assert_eq!(f.record(5_000_000, 5_000_100, 1 << 20), 0..0);
        assert_eq!(f.record(1_000, 1_100, 1 << 20), 0..0);
        assert_eq!(f.record(9_000_000, 9_000_100, 1 << 20), 0..0);
        // A run that continues becomes sequential again.
        assert_eq!(f.record(9_000_100, 9_000_200, 200_000), 91..93);
    }

    #[test]
    fn window_zero_and_end_of_file() {
        let f = file(&[100; 10]);
        assert_eq!(f.record(0, 100, 0), 0..0);
        let g = file(&[100; 3]);
        assert_eq!(g.record(0, 100, 10_000), 1..3);
        assert_eq!(g.record(100, 300, 10_000), 0..0);
    }
}
