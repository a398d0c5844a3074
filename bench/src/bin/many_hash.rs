//! BLAKE3 of many small inputs: `ManyHasher::hash_each`, a batch at a time
//! across SIMD lanes (with the widest kernel this CPU runs, and with 8
//! lanes at most: AVX2), against the `blake3` crate hashing each input
//! alone (the baseline), on one core, in the same run. Both must give the same
//! digests; the run stops if they do not.
//!
//! The inputs lie in 8 MiB, hashed `ROUNDS` times over: in the CPU's
//! caches, as the bytes an import has just read are.
//!
//! `cargo run --release -p cairn-bench --bin many_hash [-- ROUNDS]`

use std::time::Instant;

use cairn_bench::{print_table, pseudo_random};
use cairn_castore::Digest;
use cairn_castore::many_hash::ManyHasher;

/// Best of five runs of `hash_all`: the digests it returns and its time.
fn time_hashes(hash_all: &mut dyn FnMut() -> Vec<Digest>) -> (Vec<Digest>, f64) {
    let mut best = f64::MAX;
    let mut digests = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        digests = hash_all();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (digests, best)
}

/// The length of input `i` of a class.
type LengthOf = fn(usize) -> usize;

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32);
    let data = pseudo_random(8 << 20, 9);
    let mut rows = Vec::new();
    // Lengths as the import benchmark's small files (1-32 KiB), as files
    // under 4 KiB, and as 64 KiB chunks.
    let classes: [(&str, LengthOf); 3] = [
        ("1-32 KiB", |i| 1024 + (i * 7919) % (31 * 1024)),
        ("100 B-4 KiB", |i| 100 + (i * 7919) % 4000),
        ("64 KiB", |_| 64 << 10),
    ];
    for (what, length) in classes {
        let mut inputs: Vec<&[u8]> = Vec::new();
        let mut at = 0;
        while at + length(inputs.len()) <= data.len() {
            let len = length(inputs.len());
            inputs.push(&data[at..at + len]);
            at += len;
        }
        let (crate_digests, crate_time) = time_hashes(&mut || {
            let mut all = Vec::with_capacity(inputs.len());
            for _ in 0..rounds {
                all.clear();
                all.extend(inputs.iter().map(|input| Digest::of(input)));
            }
            all
        });
        let mut timed = Vec::new();
        for max_lanes in [16, 8] {
            let mut hasher = ManyHasher::with_max_lanes(max_lanes);
            let mut batch_out = Vec::new();
            let (digests, time) = time_hashes(&mut || {
                let mut all = Vec::with_capacity(inputs.len());
                for _ in 0..rounds {
                    all.clear();
                    for batch in inputs.chunks(32) {
                        hasher.hash_each(batch, &mut batch_out);
                        all.extend_from_slice(&batch_out);
                    }
                }
                all
            });
            anyhow::ensure!(
                digests == crate_digests,
                "{what}, {max_lanes} lanes at most: the digests differ from the crate's"
            );
            timed.push(time);
        }
        let gbps = |t: f64| format!("{:.2}", (at * rounds) as f64 / t / 1e9);
        rows.push(vec![
            what.to_string(),
            inputs.len().to_string(),
            gbps(crate_time),
            gbps(timed[0]),
            format!("{:.2}", crate_time / timed[0]),
            gbps(timed[1]),
            format!("{:.2}", crate_time / timed[1]),
        ]);
    }
    println!(
        "many_hash benchmark: 8 MiB hashed {rounds} times, batches of 32 inputs, one core, best of 5"
    );
    print_table(
        &[
            "inputs",
            "count",
            "blake3 crate GB/s (baseline)",
            "hash_each GB/s",
            "speed-up",
            "8 lanes at most GB/s",
            "speed-up",
        ],
        &rows,
    );
    Ok(())
}
