//! Import throughput: `cairn import` of a generated ~1 GiB tree into a fresh
//! local store, next to reading and BLAKE3-hashing the same files on all
//! cores (the baseline), both from the page cache, in the same run.
//!
//! `cargo run --release -p cairn-bench --bin import [-- SMALL_FILES LARGE_FILES LARGE_MIB]`
//!
//! Environment: `CAIRN_BENCH_TREE` keeps the generated tree in that
//! directory (reused when it exists); `CAIRN_BENCH_DIR` is where the stores
//! go (default /var/tmp); `CAIRN_BENCH_RUNS` imports per store kind, best
//! kept (default 2); `CAIRN_BENCH_ZSTD=0` skips the zstd store;
//! `RUST_LOG=cairn_castore=info` prints when each phase of an import ends;
//! `CAIRN_BENCH_IN_FLIGHT_MIB` sets the import's bytes in flight.

use std::io::Read;
use std::time::Instant;

use cairn_bench::{cpu_seconds, generate_tree, list_files, print_table};
use cairn_castore::backends::{LocalStore, LocalStoreOptions};
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{CaStore, ChunkerConfig};
use rayon::prelude::*;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 1 << 20]);
}

fn hash_all(files: &[std::path::PathBuf]) -> u64 {
    files
        .par_iter()
        .map(|p| {
            let mut f = std::fs::File::open(p).expect("open");
            let mut hasher = blake3::Hasher::new();
            let mut n_total = 0u64;
            // One buffer per thread: zeroing a fresh one per file would
            // cost the baseline more than its reads.
            READ_BUFFER.with_borrow_mut(|buf| {
                loop {
                    let n = f.read(buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    n_total += n as u64;
                }
            });
            std::hint::black_box(hasher.finalize());
            n_total
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let small = args.first().copied().unwrap_or(32_000);
    let large = args.get(1).copied().unwrap_or(8);
    let large_mib = args.get(2).copied().unwrap_or(64);
    let tmp = tempfile::Builder::new()
        .prefix("cairn-bench-import")
        .tempdir_in(std::env::var_os("CAIRN_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))?;
    // CAIRN_BENCH_TREE names a directory to generate the tree in (kept, and
    // reused when it exists) instead of a temporary one.
    let kept = std::env::var_os("CAIRN_BENCH_TREE").map(std::path::PathBuf::from);
    let tree = kept.clone().unwrap_or_else(|| tmp.path().join("tree"));
    let stats = if kept.is_some() && tree.exists() {
        let files = list_files(&tree);
        let bytes = files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        cairn_bench::TreeStats {
            files: files.len(),
            bytes,
        }
    } else {
        eprintln!("generating {small} small files and {large} x {large_mib} MiB ...");
        generate_tree(&tree, small, large, large_mib << 20)?
    };
    let files = list_files(&tree);
    let mib = stats.bytes as f64 / (1 << 20) as f64;

    // Warm the page cache, then time the baseline (best of 3).
    hash_all(&files);
    let mut baseline = f64::MAX;
    let mut baseline_cpu = f64::MAX;
    for _ in 0..3 {
        let (t, c) = (Instant::now(), cpu_seconds());
        let n = hash_all(&files);
        assert_eq!(n, stats.bytes);
        baseline = baseline.min(t.elapsed().as_secs_f64());
        baseline_cpu = baseline_cpu.min(cpu_seconds() - c);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let runs: usize = std::env::var("CAIRN_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2)
        .max(1);
    let kinds: &[bool] = if std::env::var_os("CAIRN_BENCH_ZSTD").is_some_and(|v| v == "0") {
        &[false]
    } else {
        &[false, true]
    };
    let mut results = Vec::new();
    for &compress in kinds {
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        for run in 0..runs {
            let store_dir = tmp.path().join(format!("store-{compress}-{run}"));
            let local = std::sync::Arc::new(LocalStore::open_with(
                &store_dir,
                LocalStoreOptions { compress },
            )?);
            let store = CaStore::new(local.clone(), local, ChunkerConfig::default());
            let (t, c) = (Instant::now(), cpu_seconds());
            let mut options = ImportOptions::default();
            if let Some(mib) = std::env::var("CAIRN_BENCH_IN_FLIGHT_MIB")
                .ok()
                .and_then(|m| m.parse::<usize>().ok())
            {
                options.max_bytes_in_flight = mib << 20;
            }
            rt.block_on(import_paths(&store, std::slice::from_ref(&tree), options))?;
            best = best.min(t.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_seconds() - c);
            drop(store);
            let _ = std::fs::remove_dir_all(&store_dir);
        }
        results.push((compress, best, best_cpu));
    }

    println!("(ratio = baseline time / cairn time: 1.00 is as fast as reading and hashing alone)");
    println!(
        "import benchmark: {} files, {:.0} MiB, {} cores",
        stats.files,
        mib,
        rayon::current_num_threads()
    );
    print_table(
        &["what", "wall s", "MB/s", "ratio", "CPU s", "CPU ratio"],
        &[vec![
            "read + BLAKE3, all cores (baseline)".into(),
            format!("{baseline:.2}"),
            format!("{:.0}", stats.bytes as f64 / 1e6 / baseline),
            "1.00".into(),
            format!("{baseline_cpu:.2}"),
            "1.00".into(),
        ]]
        .into_iter()
        .chain(results.iter().map(|(compress, wall, cpu)| {
            vec![
                format!(
                    "cairn import, fresh local store{}",
                    if *compress {
                        " (zstd)"
                    } else {
                        " (raw chunks, default)"
                    }
                ),
                format!("{wall:.2}"),
                format!("{:.0}", stats.bytes as f64 / 1e6 / wall),
                format!("{:.2}", baseline / wall),
                format!("{cpu:.2}"),
                format!("{:.2}", baseline_cpu / cpu),
            ]
        }))
        .collect::<Vec<_>>(),
    );
    Ok(())
}
