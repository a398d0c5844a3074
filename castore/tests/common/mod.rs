//! Helpers shared by the castore integration tests.

use bytes::Bytes;
use cairn_castore::Digest;

/// Deterministic pseudo-random chunks of 1 byte to `max_len` bytes (an
/// xorshift generator seeded with `seed`), each with its digest.
pub fn pseudo_random_chunks(count: usize, seed: u64, max_len: usize) -> Vec<(Digest, Bytes)> {
    // Xorshift never leaves zero: an odd state keeps it going.
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % max_len as u64) as usize + 1;
            let data: Bytes = (0..len).map(|_| next() as u8).collect::<Vec<u8>>().into();
            (Digest::of(&data), data)
        })
        .collect()
}
