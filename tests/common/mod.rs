//! Helpers shared by the end-to-end tests of the `cairn` binary.

use std::path::Path;

/// Writes `len` pseudo-random (incompressible) bytes from `seed` to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}
