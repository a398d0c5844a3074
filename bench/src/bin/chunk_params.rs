//! Chooses FastCDC parameters by measurement: chunks two similar trees (a
//! generated tree, and a copy with 1% of its small files edited, bytes
//! inserted into and appended to its large files) with several parameter
//! sets, and prints per-chunk overhead (chunk count) next to dedup (the new
//! bytes the edited copy costs once the first tree is stored).
//!
//! `cargo run --release -p cairn-bench --bin chunk_params [-- SMALL LARGE LARGE_MIB]`

use std::collections::HashSet;

use cairn_bench::{list_files, print_table, pseudo_random};
use cairn_castore::ChunkerConfig;

fn chunks_of(files: &[Vec<u8>], cfg: &ChunkerConfig) -> Vec<(blake3::Hash, usize)> {
    let mut out = Vec::new();
    for data in files {
        let mut start = 0;
        for end in cfg.cut_points(data) {
            out.push((blake3::hash(&data[start..end]), end - start));
            start = end;
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let small = args.first().copied().unwrap_or(4000);
    let large = args.get(1).copied().unwrap_or(4);
    let large_mib = args.get(2).copied().unwrap_or(32);
    let tmp = tempfile::tempdir()?;
    let stats = cairn_bench::generate_tree(tmp.path(), small, large, large_mib << 20)?;
    let mut paths = list_files(tmp.path());
    paths.sort();
    let first: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    // The edited copy.
    let mut second = first.clone();
    for (i, data) in second.iter_mut().enumerate() {
        if data.len() > 1 << 20 {
            let at = data.len() / 3;
            data.splice(at..at, pseudo_random(100, i as u64));
            data.extend_from_slice(&pseudo_random(4096, i as u64 + 7));
        } else if i % 100 == 0 && !data.is_empty() {
            let at = data.len() / 2;
            data[at] ^= 0xff;
        }
    }
    let mut rows = Vec::new();
    for (min, avg, max) in [
        (4, 16, 64),
        (8, 32, 128),
        (16, 64, 256),
        (32, 128, 512),
        (64, 256, 1024),
    ] {
        let cfg = ChunkerConfig::new(min << 10, avg << 10, max << 10)?;
        let a = chunks_of(&first, &cfg);
        let b = chunks_of(&second, &cfg);
        let stored: HashSet<blake3::Hash> = a.iter().map(|(h, _)| *h).collect();
        let mut seen = HashSet::new();
        let new_bytes: usize = b
            .iter()
            .filter(|(h, _)| !stored.contains(h) && seen.insert(*h))
            .map(|(_, len)| *len)
            .sum();
        rows.push(vec![
            format!("{min}/{avg}/{max}"),
            a.len().to_string(),
            format!("{:.0}", stats.bytes as f64 / a.len() as f64 / 1024.0),
            format!("{:.2}", new_bytes as f64 / (1 << 20) as f64),
        ]);
    }
    println!(
        "chunking: {} files, {:.0} MiB; edited copy: 1% of small files changed, 100 bytes inserted and 4 KiB appended to each large file",
        stats.files,
        stats.bytes as f64 / (1 << 20) as f64
    );
    print_table(
        &[
            "min/avg/max KiB",
            "chunks",
            "mean chunk KiB",
            "new MiB for the copy",
        ],
        &rows,
    );
    Ok(())
}
