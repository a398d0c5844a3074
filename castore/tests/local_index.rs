//! The local store's index: chunk entries are committed after their puts
//! return, yet never lost and never after a chunk map or directory that
//! names their chunks. A second store opened on the same directory plays
//! the other process that reads the index.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_castore::backends::LocalStore;
use cairn_castore::{BlobService, ChunkMap, ChunkRef, ChunkService, Digest};

/// Distinct pseudo-random chunks of 1 byte to 16 KiB.
fn chunks(count: usize, seed: u64) -> Vec<(Digest, Bytes)> {
    common::pseudo_random_chunks(count, seed, 16 << 10)
}

/// Two stores on one new directory: the process that writes, and another
/// that reads the index (the directory lives as long as the first value).
fn writer_and_reader() -> (tempfile::TempDir, LocalStore, LocalStore) {
    let tmp = tempfile::tempdir().unwrap();
    let writer = LocalStore::open(tmp.path()).unwrap();
    let reader = LocalStore::open(tmp.path()).unwrap();
    (tmp, writer, reader)
}

/// How many of `chunks` `store` finds, with their bytes checked.
async fn found(store: &LocalStore, chunks: &[(Digest, Bytes)]) -> usize {
    let mut found = 0;
    for (digest, data) in chunks {
        if let Some(got) = ChunkService::get(store, digest).await.unwrap() {
            assert_eq!(&got, data, "chunk {digest}");
            found += 1;
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_put_then_dropped_without_a_flush_are_found_after_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let chunks = chunks(300, 1);
    let store = LocalStore::open(tmp.path()).unwrap();
    for batch in chunks.chunks(64) {
        store.put_batch(batch.to_vec()).await.unwrap();
    }
    drop(store);
    let reopened = LocalStore::open(tmp.path()).unwrap();
    assert_eq!(found(&reopened, &chunks).await, chunks.len());
}

/// A blob made of `chunks`, and its chunk map.
fn blob_of(chunks: &[(Digest, Bytes)]) -> (Digest, ChunkMap) {
    let whole: Vec<u8> = chunks.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let map = ChunkMap::new(
        chunks
            .iter()
            .map(|(digest, data)| ChunkRef {
                digest: *digest,
                size: data.len() as u32,
            })
            .collect(),
    );
    (Digest::of(&whole), map)
}

/// A blob's digest, its chunk map, and its chunks.
type BlobWithChunks = (Digest, ChunkMap, Vec<(Digest, Bytes)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_map_is_never_visible_before_its_chunks() {
    let (_tmp, writer, reader) = writer_and_reader();
    let reader = Arc::new(reader);
    let blobs: Arc<Vec<BlobWithChunks>> = Arc::new(
        (0..20u64)
            .map(|round| {
                let chunks = chunks(40, 100 + round);
                let (blob, map) = blob_of(&chunks);
                (blob, map, chunks)
            })
            .collect(),
    );
    // Another process watches the index while the writer works: the moment
    // it finds a chunk map, it must find every chunk the map names.
    let watcher = tokio::spawn({
        let (reader, blobs) = (reader.clone(), blobs.clone());
        async move {
            let mut seen = vec![false; blobs.len()];
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.iter().any(|s| !s) {
                for (i, (blob, _, chunks)) in blobs.iter().enumerate() {
                    if !seen[i] && reader.stored_chunk_map(blob).await.unwrap().is_some() {
                        assert_eq!(found(&reader, chunks).await, chunks.len(), "blob {i}");
                        seen[i] = true;
                    }
                }
                assert!(Instant::now() < deadline, "maps seen: {seen:?}");
                tokio::task::yield_now().await;
            }
        }
    });
    for (blob, map, chunks) in blobs.iter() {
        writer.put_batch(chunks.clone()).await.unwrap();
        writer.put_chunk_map(*blob, map).await.unwrap();
    }
    watcher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_entries_reach_the_index_without_a_flush() {
    let (_tmp, writer, reader) = writer_and_reader();
    let chunks = chunks(50, 7);
    writer.put_batch(chunks.clone()).await.unwrap();
    // The writer finds them at once; another process within a few seconds,
    // while the writer stays open and idle.
    assert_eq!(found(&writer, &chunks).await, chunks.len());
    wait_until_found(&reader, &chunks, Instant::now(), Duration::from_secs(10)).await;
}

/// Waits until `reader` finds every one of `chunks`, failing the test if
/// that takes `within` from `since`. Each lookup the reader makes goes to
/// the index: it caches only what it found.
async fn wait_until_found(
    reader: &LocalStore,
    chunks: &[(Digest, Bytes)],
    since: Instant,
    within: Duration,
) {
    loop {
        let seen = found(reader, chunks).await;
        if seen == chunks.len() {
            return;
        }
        assert!(
            since.elapsed() < within,
            "only {seen} of {} chunks in the index {:?} after {within:?}",
            chunks.len(),
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_commits_every_chunk_put_before_it() {
    let (_tmp, writer, reader) = writer_and_reader();
    let chunks = chunks(120, 11);
    for batch in chunks.chunks(30) {
        writer.put_batch(batch.to_vec()).await.unwrap();
    }
    ChunkService::flush(&writer).await.unwrap();
    assert_eq!(found(&reader, &chunks).await, chunks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_entries_are_committed_at_once_when_puts_pause() {
    let (_tmp, writer, reader) = writer_and_reader();
    let chunks = chunks(40, 13);
    writer.put_batch(chunks.clone()).await.unwrap();
    let paused = Instant::now();
    writer.puts_paused().await;
    // Left alone, the entries would wait up to a second for more; told
    // that no more puts come, the writer commits them now.
    wait_until_found(&reader, &chunks, paused, Duration::from_millis(800)).await;
}

/// The page size the index file at `dir` was made with.
fn index_page_size(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite")).unwrap();
    conn.pragma_query_value(None, "page_size", |row| row.get(0))
        .unwrap()
}

/// A new index has 16 KiB pages; an index made with SQLite's default 4 KiB
/// pages (an older store) opens as it is, keeps its pages and takes chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_indexes_have_16_kib_pages_and_older_ones_still_open() {
    let tmp = tempfile::tempdir().unwrap();
    let chunks = chunks(50, 9);

    let new = tmp.path().join("new");
    let store = LocalStore::open(&new).unwrap();
    store.put_batch(chunks.clone()).await.unwrap();
    store.sync().await.unwrap();
    drop(store);
    assert_eq!(index_page_size(&new), 16 << 10);

    let older = tmp.path().join("older");
    std::fs::create_dir(&older).unwrap();
    {
        let conn = rusqlite::Connection::open(older.join("index.sqlite")).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE placeholder (x INTEGER); DROP TABLE placeholder;")
            .unwrap();
    }
    assert_eq!(index_page_size(&older), 4096);
    let store = LocalStore::open(&older).unwrap();
    store.put_batch(chunks.clone()).await.unwrap();
    store.sync().await.unwrap();
    assert_eq!(found(&store, &chunks).await, chunks.len());
    drop(store);
    assert_eq!(index_page_size(&older), 4096);
    let reopened = LocalStore::open(&older).unwrap();
    assert_eq!(found(&reopened, &chunks).await, chunks.len());
}
