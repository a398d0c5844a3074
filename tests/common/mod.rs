//! Helpers shared by the end-to-end tests of the `cairn` binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Writes `len` pseudo-random (incompressible) bytes from `seed` to `path`.
#[allow(dead_code)] // not every test binary writes random files
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

/// Asserts that the trees at `a` and `b` are identical (`diff -r`, symlinks
/// compared as links) and that `b/bin/hello` kept its executable bit.
#[allow(dead_code)] // not every test binary compares trees
pub fn same_tree(a: &Path, b: &Path) {
    let status = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .status()
        .unwrap();
    assert!(status.success(), "{a:?} differs from {b:?}");
    let mode = std::fs::metadata(b.join("bin/hello"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "executable bit lost");
}
