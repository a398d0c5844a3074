//! The chunk index entries this process has seen, in memory.
//!
//! Entries never change once committed, so for committed entries the cache
//! only saves index lookups. It is a plain sharded hash map keyed by digest:
//! a digest is already uniformly random, so its first eight bytes are the
//! hash, and a lookup or insert costs a read-locked or locked probe, not a
//! general purpose cache's bookkeeping. A shard that outgrows its share of
//! the capacity is emptied (committed entries are cheap to look up again).
//!
//! Entries of chunks written but not yet committed are the only record of
//! those chunks until the committer commits them: they are pinned
//! ([`EntryCache::pin_all`]), kept apart from the evictable entries, and
//! join those once committed ([`EntryCache::unpin_all`]).

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
    shards: [RwLock<Shard>; SHARDS],
    per_shard: usize,
}

/// One shard: committed entries (evictable) and uncommitted ones (pinned).
#[derive(Default)]
struct Shard {
    committed: DigestMap<ChunkEntry>,
    pinned: DigestMap<ChunkEntry>,
}

impl Shard {
    fn get(&self, digest: &Digest) -> Option<ChunkEntry> {
        self.committed
            .get(digest)
            .or_else(|| self.pinned.get(digest))
            .copied()
    }

    /// Adds a committed entry, emptying the committed ones first if they
    /// have reached `limit`.
    fn insert_committed(&mut self, digest: Digest, entry: ChunkEntry, limit: usize) {
        if self.committed.len() >= limit && !self.committed.contains_key(&digest) {
            self.committed.clear();
        }
        self.committed.insert(digest, entry);
    }
}

impl EntryCache {
    /// A cache of at most about `capacity` entries.
    pub(super) fn new(capacity: usize) -> EntryCache {
        EntryCache {
            shards: std::array::from_fn(|_| RwLock::new(Shard::default())),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<Shard> {
        &self.shards[shard_of(digest)]
    }

    pub(super) fn get(&self, digest: &Digest) -> Option<ChunkEntry> {
        self.shard(digest)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
    }

    pub(super) fn contains(&self, digest: &Digest) -> bool {
        self.get(digest).is_some()
    }

    /// Adds a committed entry.
    pub(super) fn insert(&self, digest: Digest, entry: ChunkEntry) {
        self.shard(&digest)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert_committed(digest, entry, self.per_shard);
    }

    /// Adds committed entries, taking each shard's lock once.
    pub(super) fn insert_all(&self, entries: &[(Digest, ChunkEntry)]) {
        self.each_shard(entries, |shard, digest, entry| {
            shard.insert_committed(*digest, *entry, self.per_shard)
        });
    }

    /// Adds the entries of chunks written but not committed yet: they stay
    /// until [`EntryCache::unpin_all`].
    pub(super) fn pin_all(&self, entries: &[(Digest, ChunkEntry)]) {
        self.each_shard(entries, |shard, digest, entry| {
            shard.pinned.insert(*digest, *entry);
        });
    }

    /// Moves entries pinned by [`EntryCache::pin_all`] among the committed
    /// ones, now that they are.
    pub(super) fn unpin_all(&self, entries: &[(Digest, ChunkEntry)]) {
        self.each_shard(entries, |shard, digest, entry| {
            shard.pinned.remove(digest);
            shard.insert_committed(*digest, *entry, self.per_shard);
        });
    }

    /// Calls `f` on each of `entries` with its shard locked, taking each
    /// shard's lock once.
    fn each_shard(
        &self,
        entries: &[(Digest, ChunkEntry)],
        mut f: impl FnMut(&mut Shard, &Digest, &ChunkEntry),
    ) {
        for (index, shard) in self.shards.iter().enumerate() {
            let mut shard_entries = entries
                .iter()
                .filter(|(d, _)| shard_of(d) == index)
                .peekable();
            if shard_entries.peek().is_none() {
                continue;
            }
            let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
            for (digest, entry) in shard_entries {
                f(&mut shard, digest, entry);
            }
        }
    }
}

/// The shard of a digest: its last byte (the first eight hash within it).
fn shard_of(digest: &Digest) -> usize {
    digest.as_bytes()[31] as usize % SHARDS
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

    #[test]
    fn pinned_entries_outlive_evictions_until_unpinned() {
        let cache = EntryCache::new(SHARDS * 4);
        let digests: Vec<Digest> = (0..400u32).map(|i| Digest::of(&i.to_le_bytes())).collect();
        let entries = |range: std::ops::Range<usize>| -> Vec<(Digest, ChunkEntry)> {
            range.map(|i| (digests[i], entry(i as u64))).collect()
        };
        let pinned = entries(0..100);
        cache.pin_all(&pinned);
        // Far more committed entries than the cache holds.
        cache.insert_all(&entries(100..400));
        for (digest, e) in &pinned {
            assert_eq!(cache.get(digest).map(|got| got.offset), Some(e.offset));
        }
        // Once committed, they are evictable like any other.
        cache.unpin_all(&pinned);
        cache.insert_all(&entries(100..400));
        let held = pinned.iter().filter(|(d, _)| cache.contains(d)).count();
        assert!(
            held < pinned.len(),
            "{held} of the unpinned entries still held"
        );
    }
}
