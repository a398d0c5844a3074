//! Shared pieces of cairn's benchmarks: the generated benchmark tree and
//! table printing.

use std::path::Path;

/// Fills `len` bytes from a xorshift generator (incompressible). The lowest
/// bit of `seed` is ignored.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like, compressible bytes (as much of a store is). The lowest bit of
/// `seed` is ignored.
pub fn text_like(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "lib", "nix", "store", "include", "share", "bin", "the", "of", "and", "function", "return",
        "static", "const", "void", "int", "char", "#define", "struct", "{", "}", "\n", "\n\t", "(",
        ")", ";", "=", "0x1f", "error", "value", "config",
    ];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

/// What [`generate_tree`] made.
pub struct TreeStats {
    pub files: usize,
    pub bytes: u64,
}

/// The benchmark tree: `small` files of 1-32 KiB (half text-like, half
/// random) in nested directories, plus `large` files of `large_size` bytes.
pub fn generate_tree(
    root: &Path,
    small: usize,
    large: usize,
    large_size: usize,
) -> std::io::Result<TreeStats> {
    let mut stats = TreeStats { files: 0, bytes: 0 };
    for i in 0..small {
        let dir = root.join(format!("pkg-{:03}/sub-{:02}", i % 300, (i / 300) % 10));
        std::fs::create_dir_all(&dir)?;
        let len = 1024 + (i * 7919) % (31 * 1024);
        let data = if i % 2 == 0 {
            text_like(len, i as u64 + 1)
        } else {
            pseudo_random(len, i as u64 + 1)
        };
        std::fs::write(dir.join(format!("file-{i}.dat")), &data)?;
        stats.files += 1;
        stats.bytes += len as u64;
    }
    let big = root.join("large");
    std::fs::create_dir_all(&big)?;
    for i in 0..large {
        // Odd seeds: the generators set the lowest bit, so two adjacent
        // seeds would make the same bytes.
        let seed = 1_000_001 + 2 * i as u64;
        let data = if i % 4 == 0 {
            text_like(large_size, seed)
        } else {
            pseudo_random(large_size, seed)
        };
        std::fs::write(big.join(format!("blob-{i}.bin")), &data)?;
        stats.files += 1;
        stats.bytes += large_size as u64;
    }
    Ok(stats)
}

/// Every regular file under `root`.
pub fn list_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(p),
                    Ok(t) if t.is_file() => out.push(p),
                    _ => {}
                }
            }
        }
    }
    out
}

/// Prints a table: a header and rows of equal width.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(header.iter().map(|s| s.to_string()).collect()));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-|-")
    );
    for row in rows {
        println!("{}", line(row.clone()));
    }
}

/// CPU seconds (user + system) this process has used so far.
pub fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// CPU seconds (user + system) of the child processes this process has
/// waited for so far.
pub fn children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
