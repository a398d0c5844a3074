//! The chunk index entries this process has seen, in memory.
//!
//! Entries never change once committed, so the cache only saves index
//! lookups. It is a plain sharded hash map keyed by digest: a digest is
//! already uniformly random, so its first eight bytes are the hash, and a
//! lookup or insert costs a read-locked or locked probe, not a general
//! purpose cache's bookkeeping. A shard that outgrows its share of the
//! capacity is emptied (the entries are cheap to look up again).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

use super::ChunkEntry;
use crate::Digest;

/// Shards: concurrent readers and writers rarely meet on one lock.
const SHARDS: usize = 16;

/// Hashes a digest by its first eight bytes (digests are uniformly random).
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `Digest` hashes as its 32-byte array (after a length prefix,
        // which lands in `write_usize` below).
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _: usize) {}
}

/// A hash map keyed by digests, hashed with [`DigestHasher`].
pub(super) type DigestMap<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;

/// Index entries by digest.
pub(super) struct EntryCache {
    shards: [RwLock<DigestMap<ChunkEntry>>; SHARDS],
    per_shard: usize,
}

impl EntryCache {
    /// A cache of at most about `capacity` entries.
    pub(super) fn new(capacity: usize) -> EntryCache {
        EntryCache {
            shards: std::array::from_fn(|_| RwLock::new(DigestMap::default())),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<DigestMap<ChunkEntry>> {
        // The last byte picks the shard; the first eight hash within it.
        &self.shards[digest.as_bytes()[31] as usize % SHARDS]
    }

    pub(super) fn get(&self, digest: &Digest) -> Option<ChunkEntry> {
        self.shard(digest)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .copied()
    }

    pub(super) fn contains(&self, digest: &Digest) -> bool {
        self.get(digest).is_some()
    }

    pub(super) fn insert(&self, digest: Digest, entry: ChunkEntry) {
        let mut shard = self
            .shard(&digest)
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.clear();
        }
        shard.insert(digest, entry);
    }

    /// Inserts many entries, taking each shard's lock once.
    pub(super) fn insert_all(&self, entries: &[(Digest, ChunkEntry)]) {
        for (index, shard) in self.shards.iter().enumerate() {
            let mut shard_entries = entries
                .iter()
                .filter(|(d, _)| d.as_bytes()[31] as usize % SHARDS == index)
                .peekable();
            if shard_entries.peek().is_none() {
                continue;
            }
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            for (digest, entry) in shard_entries {
                if shard.len() >= self.per_shard && !shard.contains_key(digest) {
                    shard.clear();
                }
                shard.insert(*digest, *entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64) -> ChunkEntry {
        ChunkEntry {
            pack: 1,
            offset,
            stored_len: 10,
            size: 10,
            compressed: false,
        }
    }

    #[test]
    fn entries_are_found_and_the_cache_stays_bounded() {
        let cache = EntryCache::new(SHARDS * 4);
        let digests: Vec<Digest> = (0..200u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
        cache.insert(digests[0], entry(0));
        assert_eq!(cache.get(&digests[0]).map(|e| e.offset), Some(0));
        assert!(!cache.contains(&digests[1]));
        let many: Vec<(Digest, ChunkEntry)> = digests
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, entry(i as u64)))
            .collect();
        cache.insert_all(&many);
        let held = digests.iter().filter(|d| cache.contains(d)).count();
        assert!(held > 0 && held <= SHARDS * 4, "{held} entries held");
        // Whatever is held is right.
        for (i, d) in digests.iter().enumerate() {
            if let Some(e) = cache.get(d) {
                assert_eq!(e.offset, i as u64);
            }
        }
    }
}
