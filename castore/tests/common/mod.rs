//! Helpers shared by the castore integration tests.

use bytes::Bytes;
use cairn_castore::Digest;

/// An xorshift64 generator seeded with `seed`: deterministic, and never
/// stuck at zero (an odd state keeps it going).
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// `len` pseudo-random bytes from `seed` (bits 24-31 of each xorshift
/// step).
#[allow(dead_code)]
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut next = xorshift(seed);
    (0..len).map(|_| (next() >> 24) as u8).collect()
}

/// Deterministic pseudo-random chunks of 1 byte to `max_len` bytes (from
/// [`xorshift`] seeded with `seed`), each with its digest.
#[allow(dead_code)]
pub fn pseudo_random_chunks(count: usize, seed: u64, max_len: usize) -> Vec<(Digest, Bytes)> {
    let mut next = xorshift(seed);
    (0..count)
        .map(|_| {
            let len = (next() % max_len as u64) as usize + 1;
            let data: Bytes = (0..len).map(|_| next() as u8).collect::<Vec<u8>>().into();
            (Digest::of(&data), data)
        })
        .collect()
}
