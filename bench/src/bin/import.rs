//! Import throughput: `cairn import` of a generated ~1 GiB tree into a fresh
//! local store, next to reading and BLAKE3-hashing the same files on all
//! cores (the baseline), both from the page cache, in the same run.
//!
//! A third row does the work any import has to do on top of the baseline,
//! whatever its store: cut each file with the default chunker, hash every
//! chunk, and hash the whole file again when it is more than one chunk.
//! Nothing is stored, so its ratio is the most an import can reach here.
//!
//! `cargo build --release && cargo run --release -p cairn-bench --bin import [-- SMALL_FILES LARGE_FILES LARGE_MIB]`
//!
//! The import is timed as a user runs it: the `cairn` binary (`CAIRN_BIN`,
//! else the one beside this benchmark), a new process for each import. The
//! library's import inside this process, whose memory is already faulted in
//! by earlier runs, is shown too. So is the disk: writing as many bytes to
//! the stores' filesystem with `O_DIRECT` and `fdatasync`, which an import
//! that makes its data durable before reporting success cannot beat.
//!
//! Environment: `CAIRN_BENCH_TREE` keeps the generated tree in that
//! directory (reused when it exists); `CAIRN_BENCH_DIR` is where the stores
//! go (default /var/tmp); `CAIRN_BENCH_RUNS` rounds, each running every
//! row once so that the rows meet the machine alike as it drifts (default
//! 3; the table shows each row's best); `CAIRN_BENCH_ZSTD=0` skips the zstd store;
//! `RUST_LOG=cairn_castore=info` prints when each phase of an in-process
//! import ends; `CAIRN_BENCH_IN_FLIGHT_MIB` sets the in-process import's
//! bytes in flight.

// The allocator of the `cairn` binary, so that the library's import here
// allocates as it does there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_bench::{
    children_cpu_seconds, cpu_seconds, generate_tree, list_files, print_table, pseudo_random,
};
use cairn_castore::backends::{LocalStore, LocalStoreOptions};
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::many_hash::ManyHasher;
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

thread_local! {
    static WHOLE_FILE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static MANY_HASHER: std::cell::RefCell<ManyHasher> = std::cell::RefCell::new(ManyHasher::new());
}

/// Small files hashed together, as the import does: at most 32 to a group.
const GROUP_FILES: usize = 32;

/// The files as the tasks that read them, by index: each file whose size
/// `whole` refuses alone (`true`: a large file), the others in groups of
/// consecutive files.
fn group_files(sizes: &[u64], whole: impl Fn(u64) -> bool) -> Vec<(std::ops::Range<usize>, bool)> {
    let mut groups = Vec::new();
    let mut start = 0;
    for (at, size) in sizes.iter().enumerate() {
        if !whole(*size) {
            if start < at {
                groups.push((start..at, false));
            }
            groups.push((at..at + 1, true));
            start = at + 1;
        } else if at - start == GROUP_FILES {
            groups.push((start..at, false));
            start = at;
        }
    }
    if start < sizes.len() {
        groups.push((start..sizes.len(), false));
    }
    groups
}

/// Reads `group` back to back into this thread's buffer and hashes the
/// files together with [`ManyHasher`]. Returns the bytes read.
fn hash_group_together(group: &[PathBuf]) -> u64 {
    let mut buf = WHOLE_FILE.take();
    buf.clear();
    let mut ends = Vec::with_capacity(group.len());
    for path in group {
        let mut f = std::fs::File::open(path).expect("open");
        f.read_to_end(&mut buf).expect("read");
        ends.push(buf.len());
    }
    let inputs: Vec<&[u8]> = ends
        .iter()
        .enumerate()
        .map(|(i, &end)| &buf[if i == 0 { 0 } else { ends[i - 1] }..end])
        .collect();
    let mut digests = Vec::with_capacity(inputs.len());
    MANY_HASHER.with_borrow_mut(|hasher| hasher.hash_each(&inputs, &mut digests));
    std::hint::black_box(&digests);
    let len = buf.len() as u64;
    WHOLE_FILE.set(buf);
    len
}

/// The baseline's work with the small files (at most 64 KiB) hashed
/// together as the import hashes them, not one by one: how much of the
/// import's lead over the baseline is this way of hashing alone.
fn hash_all_together(files: &[PathBuf], sizes: &[u64]) -> u64 {
    group_files(sizes, |size| size <= 64 << 10)
        .into_par_iter()
        .map(|(group, large)| {
            if large {
                hash_all(&files[group])
            } else {
                hash_group_together(&files[group])
            }
        })
        .sum()
}

/// The work every import of `files` has to do whatever its store, on all
/// cores: read each file, cut it into chunks, hash every chunk, and hash
/// the whole file again when it is more than one chunk. Nothing is stored.
/// The files stored whole (one chunk) are hashed together in groups, as
/// the import hashes them. Returns the bytes read.
fn chunk_and_hash_all(files: &[PathBuf], sizes: &[u64], chunker: ChunkerConfig) -> u64 {
    group_files(sizes, |size| chunker.keeps_whole(size))
        .into_par_iter()
        .map(|(group, large)| {
            // Files stored whole are hashed together, as the import does.
            if !large {
                return hash_group_together(&files[group]);
            }
            let p = &files[group.start];
            let mut f = std::fs::File::open(p).expect("open");
            // One buffer per thread, kept between files, so that only the
            // first run pays for faulting it in. It is taken out while in
            // use: a thread waiting in `join` may start another file.
            let mut buf = WHOLE_FILE.take();
            buf.clear();
            f.read_to_end(&mut buf).expect("read");
            let len = buf.len() as u64;
            let ends = chunker.cut_points(&buf);
            if ends.len() <= 1 {
                std::hint::black_box(blake3::hash(&buf));
            } else {
                // The chunks of a large file are hashed on all cores, next
                // to the whole file, so that a few large files do not leave
                // a core idle at the end.
                let whole: &[u8] = &buf;
                rayon::join(
                    || {
                        ends.par_iter().enumerate().for_each(|(i, &end)| {
                            let start = if i == 0 { 0 } else { ends[i - 1] };
                            std::hint::black_box(blake3::hash(&whole[start..end]));
                        })
                    },
                    || std::hint::black_box(blake3::hash(whole)),
                );
            }
            WHOLE_FILE.set(buf);
            len
        })
        .sum()
}

/// The `cairn` binary: `CAIRN_BIN`, else the one built beside this benchmark.
fn cairn_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("CAIRN_BIN") {
        return Ok(bin.into());
    }
    let beside = std::env::current_exe()?.with_file_name("cairn");
    anyhow::ensure!(
        beside.exists(),
        "{} not found: build it first (cargo build --release) or set CAIRN_BIN",
        beside.display()
    );
    Ok(beside)
}

/// One `cairn import` of `tree` into a fresh store in `store_dir`, as a new
/// process: wall seconds and the process's CPU seconds.
fn import_with_cli(cairn: &Path, store_dir: &Path, tree: &Path) -> anyhow::Result<(f64, f64)> {
    let (t, c) = (Instant::now(), children_cpu_seconds());
    let out = std::process::Command::new(cairn)
        .arg("--store-dir")
        .arg(store_dir)
        .args(["import", "--quiet"])
        .arg(tree)
        .stdin(std::process::Stdio::null())
        .output()?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "cairn import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((wall, children_cpu_seconds() - c))
}

/// Writes `bytes` bytes to a new file in `dir` the way the local store
/// writes its packs (8 MiB writes with `O_DIRECT` where the filesystem takes
/// it, from memory on huge pages, as the import's read blocks are), then
/// `fdatasync`s it: wall seconds.
fn write_like_packs(dir: &Path, bytes: u64) -> anyhow::Result<f64> {
    const WRITE: usize = 8 << 20;
    const ALIGN: usize = 4096;
    let mut buffer = HugePageBuffer::new(WRITE)?;
    let buf = buffer.bytes_mut();
    buf.copy_from_slice(&pseudo_random(WRITE, 99));
    let path = dir.join("disk-floor");
    let _ = std::fs::remove_file(&path);
    let open = |direct: bool| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(&path)
    };
    let file = match open(true) {
        Ok(file) => file,
        Err(_) => open(false)?,
    };
    let t = Instant::now();
    let total = bytes.next_multiple_of(ALIGN as u64);
    let mut written = 0u64;
    while written < total {
        let n = ((total - written) as usize).min(WRITE);
        file.write_all_at(&buf[..n], written)?;
        written += n as u64;
    }
    file.sync_data()?;
    let wall = t.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(wall)
}

/// Memory of its own mapping on a 2 MiB boundary, asked to be backed by huge
/// pages: a direct write from it gives the disk a few large segments, as a
/// write from the import's read blocks does, rather than one per 4 KiB page.
struct HugePageBuffer {
    mapping: *mut libc::c_void,
    mapped: usize,
    start: usize,
    len: usize,
}

impl HugePageBuffer {
    const HUGE_PAGE: usize = 2 << 20;

    fn new(len: usize) -> anyhow::Result<HugePageBuffer> {
        let mapped = len + Self::HUGE_PAGE;
        // SAFETY: an anonymous private mapping without an address hint,
        // checked below.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        anyhow::ensure!(
            mapping != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        let start = (mapping as usize).next_multiple_of(Self::HUGE_PAGE) - mapping as usize;
        // SAFETY: start + len lies in the mapping; the advice only asks.
        unsafe {
            libc::madvise(
                mapping.cast::<u8>().add(start).cast(),
                len,
                libc::MADV_HUGEPAGE,
            )
        };
        Ok(HugePageBuffer {
            mapping,
            mapped,
            start,
            len,
        })
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the range lies in the mapping, which this value owns.
        unsafe {
            std::slice::from_raw_parts_mut(self.mapping.cast::<u8>().add(self.start), self.len)
        }
    }
}

impl Drop for HugePageBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.mapping, self.mapped) };
    }
}

/// Removes a store made by a row, and waits until the filesystem is done
/// with it, so that the next row does not share the machine with that work.
fn remove_store(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
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
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| f.metadata().map(|m| m.len()))
        .collect::<Result<_, _>>()?;
    let mib = stats.bytes as f64 / (1 << 20) as f64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let runs: usize = std::env::var("CAIRN_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let with_zstd = std::env::var_os("CAIRN_BENCH_ZSTD").is_none_or(|v| v != "0");
    let cairn = cairn_binary()?;
    let in_flight = std::env::var("CAIRN_BENCH_IN_FLIGHT_MIB")
        .ok()
        .and_then(|m| m.parse::<usize>().ok());
    let library_import = |compress: bool, run: usize| -> anyhow::Result<(f64, f64)> {
        let store_dir = tmp.path().join(format!("store-{compress}-{run}"));
        let local = std::sync::Arc::new(LocalStore::open_with(
            &store_dir,
            LocalStoreOptions { compress },
        )?);
        let store = CaStore::new(local.clone(), local, ChunkerConfig::default());
        let (t, c) = (Instant::now(), cpu_seconds());
        let mut options = ImportOptions::default();
        if let Some(mib) = in_flight {
            options.max_bytes_in_flight = mib << 20;
        }
        rt.block_on(import_paths(&store, std::slice::from_ref(&tree), options))?;
        let measured = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        drop(store);
        remove_store(&store_dir);
        Ok(measured)
    };
    let timed = |work: &dyn Fn() -> u64| {
        let (t, c) = (Instant::now(), cpu_seconds());
        let n = work();
        assert_eq!(n, stats.bytes);
        (t.elapsed().as_secs_f64(), cpu_seconds() - c)
    };

    // Warm the page cache (and the chunker's table), then run the rows in
    // rounds: each round runs every row once, so that a row and the
    // baseline meet the machine in the same state, however it drifts
    // through the run. Per row: each round's (wall, CPU) seconds, or only
    // wall where the CPU is not this process's or a child's.
    hash_all(&files);
    chunk_and_hash_all(&files, &sizes, ChunkerConfig::default());
    let mut measured: Vec<Vec<(f64, Option<f64>)>> = vec![Vec::new(); 7];
    for run in 0..runs {
        let (w, c) = timed(&|| hash_all(&files));
        measured[0].push((w, Some(c)));
        let (w, c) = timed(&|| hash_all_together(&files, &sizes));
        measured[1].push((w, Some(c)));
        let (w, c) = timed(&|| chunk_and_hash_all(&files, &sizes, ChunkerConfig::default()));
        measured[2].push((w, Some(c)));
        measured[3].push((write_like_packs(tmp.path(), stats.bytes)?, None));
        let store_dir = tmp.path().join(format!("store-cli-{run}"));
        let (w, c) = import_with_cli(&cairn, &store_dir, &tree)?;
        remove_store(&store_dir);
        measured[4].push((w, Some(c)));
        let (w, c) = library_import(false, run)?;
        measured[5].push((w, Some(c)));
        if with_zstd {
            let (w, c) = library_import(true, run)?;
            measured[6].push((w, Some(c)));
        }
    }
    let best = |row: &[(f64, Option<f64>)]| {
        let wall = row.iter().map(|m| m.0).fold(f64::MAX, f64::min);
        let cpu = row.iter().filter_map(|m| m.1).reduce(f64::min);
        (wall, cpu)
    };
    let (baseline, baseline_cpu) = best(&measured[0]);
    let baseline_cpu = baseline_cpu.unwrap_or(f64::NAN);
    let (disk, _) = best(&measured[3]);

    println!(
        "(ratio = baseline time / time: 1.00 is as fast as reading and hashing alone; \
         disk = disk floor time / time: 1.00 is as fast as the disk takes the bytes)"
    );
    println!(
        "import benchmark: {} files, {:.0} MiB, {} cores, best of {runs} rounds, each running every row once",
        stats.files,
        mib,
        rayon::current_num_threads()
    );
    let row = |what: &str, measured: &[(f64, Option<f64>)]| {
        let (wall, cpu) = best(measured);
        vec![
            what.to_string(),
            format!("{wall:.2}"),
            format!("{:.0}", stats.bytes as f64 / 1e6 / wall),
            format!("{:.2}", baseline / wall),
            format!("{:.2}", disk / wall),
            cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into()),
            cpu.map(|c| format!("{:.2}", baseline_cpu / c))
                .unwrap_or_else(|| "-".into()),
        ]
    };
    let names = [
        "read + BLAKE3, all cores (baseline)",
        "read + BLAKE3, small files hashed together (ManyHasher)",
        "read + cut + BLAKE3 of chunks and blobs, nothing stored",
        "write as many bytes, O_DIRECT + fdatasync (disk floor)",
        "cairn import, a new process (default store)",
        "library import in this process (raw chunks)",
        "library import in this process (zstd)",
    ];
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&measured)
        .filter(|(_, m)| !m.is_empty())
        .map(|(name, m)| row(name, m))
        .collect();
    print_table(
        &[
            "what",
            "wall s",
            "MB/s",
            "ratio",
            "disk",
            "CPU s",
            "CPU ratio",
        ],
        &rows,
    );
    Ok(())
}
