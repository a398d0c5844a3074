//! Combinators over memory stores and a store that always fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::backends::MemoryStore;
use crate::services::blob::{BlobError, BlobService, ChunkMap, ChunkRef};
use crate::services::chunk::{ChunkError, ChunkService};
use crate::services::directory::DirectoryService;
use crate::{BackendError, Digest, Directory, Name, Node};

/// Fails every request, counting them; optionally answers slowly.
#[derive(Default)]
struct Failing {
    calls: AtomicUsize,
}

#[async_trait]
impl ChunkService for Failing {
    async fn get(&self, _: &Digest) -> Result<Option<Bytes>, ChunkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(BackendError::new("failing", "down").into())
    }
    async fn put(&self, _: Digest, _: Bytes) -> Result<(), ChunkError> {
        Err(BackendError::new("failing", "down").into())
    }
    async fn size(&self, _: &Digest) -> Result<Option<u64>, ChunkError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(BackendError::new("failing", "down").into())
    }
    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        Err(BackendError::new("failing", "down").into())
    }
}

#[async_trait]
impl BlobService for Failing {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }
    async fn stored_chunk_map(&self, _: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        Err(BackendError::new("failing", "down").into())
    }
    async fn put_chunk_map(&self, _: Digest, _: &ChunkMap) -> Result<(), BlobError> {
        Err(BackendError::new("failing", "down").into())
    }
    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        Err(BackendError::new("failing", "down").into())
    }
}

/// Counts chunk lookups of an inner memory store, answering after `delay`.
struct Counting {
    inner: MemoryStore,
    gets: AtomicUsize,
    delay: Duration,
}

impl Counting {
    fn new(delay: Duration) -> Counting {
        Counting {
            inner: MemoryStore::new(),
            gets: AtomicUsize::new(0),
            delay,
        }
    }
}

#[async_trait]
impl ChunkService for Counting {
    async fn get(&self, d: &Digest) -> Result<Option<Bytes>, ChunkError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        ChunkService::get(&self.inner, d).await
    }
    async fn put(&self, d: Digest, data: Bytes) -> Result<(), ChunkError> {
        ChunkService::put(&self.inner, d, data).await
    }
    async fn size(&self, d: &Digest) -> Result<Option<u64>, ChunkError> {
        self.inner.size(d).await
    }
    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        ChunkService::list(&self.inner).await
    }
}

#[async_trait]
impl BlobService for Counting {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }
    async fn stored_chunk_map(&self, b: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        self.inner.stored_chunk_map(b).await
    }
    async fn put_chunk_map(&self, b: Digest, m: &ChunkMap) -> Result<(), BlobError> {
        self.inner.put_chunk_map(b, m).await
    }
    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        self.inner.list_chunk_maps().await
    }
}

fn chunk(text: &str) -> (Digest, Bytes) {
    let data = Bytes::from(text.to_string());
    (Digest::of(&data), data)
}

#[tokio::test]
async fn the_cache_writes_back_what_it_reads_from_far() {
    let near = Arc::new(MemoryStore::new());
    let far = Arc::new(MemoryStore::new());
    let (digest, data) = chunk("from far");
    ChunkService::put(far.as_ref(), digest, data.clone())
        .await
        .unwrap();
    let map = ChunkMap::new(vec![ChunkRef {
        digest,
        size: data.len() as u32,
    }]);
    let blob = Digest::of(b"a blob");
    far.put_chunk_map(blob, &map).await.unwrap();
    let dir = Directory::from_entries(vec![(
        Name::try_from("f").unwrap(),
        Node::File {
            digest,
            size: data.len() as u64,
            executable: false,
        },
    )])
    .unwrap();
    let dir_digest = DirectoryService::put(far.as_ref(), &dir).await.unwrap();

    let blobs = CacheStore::<dyn BlobService>::new("c", near.clone(), far.clone());
    let dirs = CacheStore::<dyn DirectoryService>::new("c", near.clone(), far.clone());
    assert!(!ChunkService::has(near.as_ref(), &digest).await.unwrap());
    assert_eq!(
        ChunkService::get(&blobs, &digest).await.unwrap(),
        Some(data.clone())
    );
    assert_eq!(
        ChunkService::get(near.as_ref(), &digest).await.unwrap(),
        Some(data)
    );
    assert_eq!(
        blobs.stored_chunk_map(&blob).await.unwrap(),
        Some(map.clone())
    );
    assert_eq!(near.stored_chunk_map(&blob).await.unwrap(), Some(map));
    assert_eq!(
        DirectoryService::get(&dirs, &dir_digest).await.unwrap(),
        Some(dir.clone())
    );
    assert_eq!(
        DirectoryService::get(near.as_ref(), &dir_digest)
            .await
            .unwrap(),
        Some(dir)
    );

    // Writes reach both sides.
    let (new, new_data) = chunk("written through");
    ChunkService::put(&blobs, new, new_data).await.unwrap();
    assert!(ChunkService::has(far.as_ref(), &new).await.unwrap());
    assert!(ChunkService::has(near.as_ref(), &new).await.unwrap());
}

#[tokio::test]
async fn the_cache_survives_a_failing_near_store() {
    let far = Arc::new(MemoryStore::new());
    let (digest, data) = chunk("x");
    ChunkService::put(far.as_ref(), digest, data.clone())
        .await
        .unwrap();
    let blobs = CacheStore::<dyn BlobService>::new("c", Arc::new(Failing::default()), far);
    assert_eq!(
        ChunkService::get(&blobs, &digest).await.unwrap(),
        Some(data)
    );
}

#[tokio::test]
async fn a_priority_list_asks_in_order_and_passes_over_failures() {
    let failing = Arc::new(Failing::default());
    let first = Arc::new(MemoryStore::new());
    let second = Arc::new(MemoryStore::new());
    let (a, a_data) = chunk("a");
    let (b, b_data) = chunk("b");
    ChunkService::put(first.as_ref(), a, a_data.clone())
        .await
        .unwrap();
    ChunkService::put(second.as_ref(), b, b_data.clone())
        .await
        .unwrap();
    let list = PriorityStore::<dyn BlobService>::new(
        "p",
        vec![failing.clone(), first.clone(), second.clone()],
    );
    assert_eq!(ChunkService::get(&list, &a).await.unwrap(), Some(a_data));
    assert_eq!(ChunkService::get(&list, &b).await.unwrap(), Some(b_data));
    // Missing everywhere, and one member failed: the failure is reported.
    let (c, c_data) = chunk("c");
    let err = ChunkService::get(&list, &c)
        .await
        .expect_err("a member failed");
    assert!(err.to_string().contains("failing"), "{err}");
    // Without the failing member a miss is a miss.
    let healthy = PriorityStore::<dyn BlobService>::new("p", vec![first.clone(), second.clone()]);
    assert_eq!(ChunkService::get(&healthy, &c).await.unwrap(), None);
    // Writes go to the first member only.
    ChunkService::put(&healthy, c, c_data).await.unwrap();
    assert!(ChunkService::has(first.as_ref(), &c).await.unwrap());
    assert!(!ChunkService::has(second.as_ref(), &c).await.unwrap());
    assert_eq!(ChunkService::list(&healthy).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_race_takes_the_first_answer() {
    let slow = Arc::new(Counting::new(Duration::from_secs(30)));
    let fast = Arc::new(Counting::new(Duration::from_millis(1)));
    let (d, data) = chunk("raced");
    let race = RaceStore::<dyn BlobService>::new("r", vec![slow.clone(), fast.clone()]);
    ChunkService::put(&race, d, data.clone()).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(ChunkService::get(&race, &d).await.unwrap(), Some(data));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for the slow member"
    );
    assert_eq!(slow.gets.load(Ordering::SeqCst), 1);
    assert_eq!(fast.gets.load(Ordering::SeqCst), 1);
    // A miss needs every member's answer; a failure beats a miss.
    let failing = RaceStore::<dyn BlobService>::new(
        "r",
        vec![Arc::new(Failing::default()), Arc::new(MemoryStore::new())],
    );
    assert!(
        ChunkService::get(&failing, &Digest::of(b"none"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_negative_cache_remembers_misses_for_its_ttl_only() {
    let inner = Arc::new(Counting::new(Duration::ZERO));
    let negative =
        NegativeCache::<dyn BlobService>::new("n", inner.clone(), Duration::from_millis(300));
    let (d, data) = chunk("late");
    assert_eq!(ChunkService::get(&negative, &d).await.unwrap(), None);
    assert_eq!(ChunkService::get(&negative, &d).await.unwrap(), None);
    assert_eq!(
        inner.gets.load(Ordering::SeqCst),
        1,
        "the second miss was answered from memory"
    );
    // Written elsewhere: seen once the miss expires.
    ChunkService::put(&inner.inner, d, data.clone())
        .await
        .unwrap();
    assert_eq!(ChunkService::get(&negative, &d).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        ChunkService::get(&negative, &d).await.unwrap(),
        Some(data.clone())
    );
    // Written through the cache: seen at once.
    let (e, e_data) = chunk("through");
    assert_eq!(ChunkService::get(&negative, &e).await.unwrap(), None);
    ChunkService::put(&negative, e, e_data.clone())
        .await
        .unwrap();
    assert_eq!(
        ChunkService::get(&negative, &e).await.unwrap(),
        Some(e_data)
    );
    // Errors are not remembered.
    let failing = Arc::new(Failing::default());
    let negative =
        NegativeCache::<dyn BlobService>::new("n", failing.clone(), Duration::from_secs(60));
    assert!(ChunkService::get(&negative, &d).await.is_err());
    assert!(ChunkService::get(&negative, &d).await.is_err());
    assert_eq!(failing.calls.load(Ordering::SeqCst), 2);
}
