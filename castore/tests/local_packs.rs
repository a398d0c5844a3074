//! The local store's pack writer: many concurrent puts land in a few large
//! writes, and every chunk reads back exactly, in this process and after
//! reopening the store, on a disk filesystem and on tmpfs.

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cairn_castore::Digest;
use cairn_castore::backends::{LocalStore, LocalStoreOptions};
use cairn_castore::{ChunkRef, ChunkRun, ChunkService};

/// Deterministic pseudo-random chunks of 1 byte to 128 KiB.
fn chunks(count: usize, seed: u64) -> Vec<(Digest, Bytes)> {
    common::pseudo_random_chunks(count, seed, 128 << 10)
}

async fn put_concurrently_and_read_back(root: &Path, compress: bool) {
    let store = Arc::new(LocalStore::open_with(root, LocalStoreOptions { compress }).unwrap());
    let chunks = chunks(400, 0x9e37_79b9_7f4a_7c15 ^ u64::from(compress));
    let mut tasks = Vec::new();
    for group in chunks.chunks(50) {
        let store = store.clone();
        let group = group.to_vec();
        tasks.push(tokio::spawn(async move {
            let puts = group
                .iter()
                .map(|(digest, data)| ChunkService::put(store.as_ref(), *digest, data.clone()));
            for result in futures::future::join_all(puts).await {
                result.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for (digest, data) in &chunks {
        let got = ChunkService::get(store.as_ref(), digest).await.unwrap();
        assert_eq!(got.as_ref(), Some(data), "chunk {digest} in this process");
    }
    ChunkService::flush(store.as_ref()).await.unwrap();
    drop(store);
    let store = LocalStore::open(root).unwrap();
    for (digest, data) in &chunks {
        let got = ChunkService::get(&store, digest).await.unwrap();
        assert_eq!(got.as_ref(), Some(data), "chunk {digest} after reopening");
    }
    let mut listed = ChunkService::list(&store).await.unwrap();
    listed.sort();
    let mut expected: Vec<Digest> = chunks.iter().map(|(d, _)| *d).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(listed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_read_back_on_disk() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    put_concurrently_and_read_back(tmp.path(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_compressed_puts_read_back_on_disk() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    put_concurrently_and_read_back(tmp.path(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_read_back_on_tmpfs() {
    let Ok(tmp) = tempfile::tempdir_in("/dev/shm") else {
        panic!("/dev/shm is needed for this test");
    };
    put_concurrently_and_read_back(tmp.path(), false).await;
}

fn pack_bytes(root: &Path) -> u64 {
    std::fs::read_dir(root.join("packs"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_puts_store_each_chunk_once() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let store = LocalStore::open(tmp.path()).unwrap();
    // 300 chunks (about 19 MiB: several gathered writes), 50 of them twice.
    let first = chunks(300, 0x5eed);
    let mut batch = first.clone();
    batch.extend(first[100..150].iter().cloned());
    ChunkService::put_batch(&store, batch).await.unwrap();
    // A second batch: 100 chunks stored already, 50 new.
    let more = chunks(50, 0xfeed);
    let mut second = first[..100].to_vec();
    second.extend(more.iter().cloned());
    ChunkService::put_batch(&store, second).await.unwrap();
    let unique: Vec<&(Digest, Bytes)> = first.iter().chain(&more).collect();
    for (digest, data) in &unique {
        let got = ChunkService::get(&store, digest).await.unwrap();
        assert_eq!(got.as_ref(), Some(data), "chunk {digest}");
    }
    // Each chunk's bytes are in the packs once: what the packs hold beyond
    // the unique bytes is write padding (under 4 KiB a write), far less
    // than the 150 repeated chunks (about 9 MiB) would take.
    let unique_bytes: u64 = unique.iter().map(|(_, d)| d.len() as u64).sum();
    let on_disk = pack_bytes(tmp.path());
    assert!(
        on_disk >= unique_bytes && on_disk < unique_bytes + (1 << 20),
        "{on_disk} bytes in packs for {unique_bytes} bytes of chunks"
    );
    ChunkService::flush(&store).await.unwrap();
    drop(store);
    let store = LocalStore::open(tmp.path()).unwrap();
    let mut listed = ChunkService::list(&store).await.unwrap();
    listed.sort();
    let mut expected: Vec<Digest> = unique.iter().map(|(d, _)| *d).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// A run of `chunks` back to back in memory that starts at a multiple of
/// 512 bytes and is padded to one (`shift` bytes later when not zero, so
/// that the run is not aligned).
fn run_of(chunks: &[(Digest, Bytes)], shift: usize) -> ChunkRun {
    let total: usize = chunks.iter().map(|(_, d)| d.len()).sum();
    let padded = total.next_multiple_of(512);
    let mut memory = vec![0u8; padded + 1024];
    let start = memory.as_ptr().align_offset(512) + shift;
    let mut at = start;
    for (_, data) in chunks {
        memory[at..at + data.len()].copy_from_slice(data);
        at += data.len();
    }
    let memory = Bytes::from(memory).slice(start..start + padded);
    let refs = chunks
        .iter()
        .map(|(digest, data)| ChunkRef {
            digest: *digest,
            size: data.len() as u32,
        })
        .collect();
    ChunkRun::new(memory, refs).unwrap()
}

async fn runs_read_back(root: &Path) {
    let store = LocalStore::open(root).unwrap();
    let all = chunks(9, 0x7a11);
    let runs = vec![
        // New and aligned: written from the run's own memory.
        run_of(&all[0..3], 0),
        // Not aligned: copied.
        run_of(&all[3..5], 1),
        // One chunk of the first run again: only the other one is stored.
        run_of(&[all[1].clone(), all[5].clone()], 0),
        run_of(&all[6..9], 0),
    ];
    ChunkService::put_runs(&store, runs).await.unwrap();
    for (digest, data) in &all {
        let got = ChunkService::get(&store, digest).await.unwrap();
        assert_eq!(got.as_ref(), Some(data), "chunk {digest}");
    }
    let unique_bytes: u64 = all.iter().map(|(_, d)| d.len() as u64).sum();
    let on_disk = pack_bytes(root);
    // Run padding (under 512 bytes a run) and write padding (under 4 KiB).
    assert!(
        on_disk >= unique_bytes && on_disk < unique_bytes + 8 * 1024,
        "{on_disk} bytes in packs for {unique_bytes} bytes of chunks"
    );
    // Runs of chunks stored already add nothing.
    ChunkService::put_runs(&store, vec![run_of(&all[0..3], 0), run_of(&all[6..9], 0)])
        .await
        .unwrap();
    assert_eq!(pack_bytes(root), on_disk);
    ChunkService::flush(&store).await.unwrap();
    drop(store);
    let store = LocalStore::open(root).unwrap();
    for (digest, data) in &all {
        let got = ChunkService::get(&store, digest).await.unwrap();
        assert_eq!(got.as_ref(), Some(data), "chunk {digest} after reopening");
    }
    assert_eq!(ChunkService::list(&store).await.unwrap().len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_stored_whole_or_chunk_by_chunk_and_read_back_on_disk() {
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    runs_read_back(tmp.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_stored_whole_or_chunk_by_chunk_and_read_back_on_tmpfs() {
    let Ok(tmp) = tempfile::tempdir_in("/dev/shm") else {
        panic!("/dev/shm is needed for this test");
    };
    runs_read_back(tmp.path()).await;
}
