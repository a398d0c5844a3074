//! Chunker speed: cutting the same bytes with `ChunkerConfig::next_cut`
//! and with the `fastcdc` crate's own v2020 chunker (the baseline, same
//! parameters and normalization), on one core, in the same run. Both must
//! cut in the same places; the run stops if they do not.
//!
//! `cargo run --release -p cairn-bench --bin chunker [-- MIB]`

use std::time::Instant;

use cairn_bench::{print_table, pseudo_random};
use cairn_castore::ChunkerConfig;

/// Runs `cut_all` on `data` five times: the chunk ends it returns, and its
/// best time.
fn time_cuts(data: &[u8], cut_all: impl Fn(&[u8]) -> Vec<usize>) -> (Vec<usize>, f64) {
    let mut best = f64::MAX;
    let mut ends = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        ends = cut_all(data);
        best = best.min(started.elapsed().as_secs_f64());
    }
    (ends, best)
}

fn main() -> anyhow::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let cfg = ChunkerConfig::default();
    let random = pseudo_random(mib << 20, 5);
    // Text-like bytes: a small alphabet, so runs of equal hashes are rare
    // but bytes repeat.
    let text: Vec<u8> = random
        .iter()
        .map(|b| b"etaoin shrdlu\n"[*b as usize % 14])
        .collect();
    let mut rows = Vec::new();
    for (what, data) in [("pseudo-random", &random), ("text-like", &text)] {
        let (crate_ends, crate_time) = time_cuts(data, |d| {
            let (min, avg, max) = (cfg.min_size, cfg.avg_size, cfg.max_size);
            fastcdc::v2020::FastCDC::new(d, min as usize, avg as usize, max as usize)
                .map(|chunk| chunk.offset + chunk.length)
                .collect()
        });
        let (ends, time) = time_cuts(data, |d| {
            let mut ends = Vec::with_capacity(d.len() / cfg.avg_size as usize + 1);
            let mut start = 0;
            while start < d.len() {
                start += cfg.next_cut(&d[start..]);
                ends.push(start);
            }
            ends
        });
        anyhow::ensure!(
            ends == crate_ends,
            "{what}: the cuts differ from the crate's"
        );
        let gbps = |t: f64| format!("{:.2}", data.len() as f64 / t / 1e9);
        rows.push(vec![
            what.to_string(),
            format!("{}", ends.len()),
            gbps(crate_time),
            gbps(time),
            format!("{:.2}", crate_time / time),
        ]);
    }
    println!(
        "chunker benchmark: {mib} MiB, FastCDC {}/{}/{} KiB, one core, best of 5",
        cfg.min_size >> 10,
        cfg.avg_size >> 10,
        cfg.max_size >> 10
    );
    print_table(
        &[
            "data",
            "chunks",
            "fastcdc crate GB/s (baseline)",
            "next_cut GB/s",
            "speed-up",
        ],
        &rows,
    );
    Ok(())
}
