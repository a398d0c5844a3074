//! Helpers shared by this crate's unit tests.

/// `len` pseudo-random bytes (xorshift64) from `seed`: the same bytes for
/// the same seed, different bytes for different odd seeds.
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
