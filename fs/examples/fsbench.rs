//! Filesystem benchmark: a generated tree of store paths (about 1 GiB by
//! default), imported into a local castore and mounted, against the same
//! tree read natively. Prints a table with ratios. Needs root and /dev/fuse.
//!
//! ```text
//! cargo run --release -p cairn-fs --example fsbench -- [--gib 1.0] [--work /var/tmp/cairn-fsbench]
//! ```
//! (or `bench/fs/run.sh`).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{BlobService, CaStore, Name, Node};
use cairn_fs::slow::SlowBlobs;
use cairn_fs::{
    CairnFs, FsOptions, MemoryRoots, MountHandle, MountOptions, WholeFiles, WholeFilesOptions,
};
use rand::{Rng, RngCore, SeedableRng};

type Error = Box<dyn std::error::Error>;

struct Args {
    gib: f64,
    work: PathBuf,
    latency_mib: u64,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        gib: 1.0,
        work: PathBuf::from("/var/tmp/cairn-fsbench"),
        latency_mib: 128,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--gib" => args.gib = value()?.parse()?,
            "--work" => args.work = PathBuf::from(value()?),
            "--latency-mib" => args.latency_mib = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

const LARGE_PATH: &str = "00000000000000000000000000000000-large";

fn write_random(path: &Path, len: u64, rng: &mut impl RngCore) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        rng.fill_bytes(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Generates the tree (reused if already there); returns the store paths.
fn generate(root: &Path, total: u64) -> Result<Vec<PathBuf>, Error> {
    let done = root.join(".complete");
    let paths = |root: &Path| -> Result<Vec<PathBuf>, Error> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| !p.ends_with(".complete"))
            .collect();
        v.sort();
        Ok(v)
    };
    if std::fs::read_to_string(&done).ok().as_deref() == Some(&total.to_string()) {
        return paths(root);
    }
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
    let large = total / 4;
    write_random(&root.join(LARGE_PATH).join("data.bin"), large, &mut rng)?;
    let mut budget = total - large;
    let store_paths = 40;
    // Many small files, as in a real store.
    for i in 0..30_000u64 {
        let len = rng.random_range(0..4096u64);
        let sp = root.join(format!(
            "{:032}-pkg{}",
            i % store_paths + 1,
            i % store_paths
        ));
        let path = sp.join(format!("share/d{}/s{i}", (i / store_paths) % 50));
        write_random(&path, len, &mut rng)?;
        budget = budget.saturating_sub(len);
    }
    // Larger files, log-uniform from 8 KiB to 4 MiB.
    let mut i = 0u64;
    while budget > 0 {
        let exp = rng.random_range(13.0..22.0f64);
        let len = (2f64.powf(exp) as u64).min(budget);
        let sp = root.join(format!(
            "{:032}-pkg{}",
            i % store_paths + 1,
            i % store_paths
        ));
        let path = sp.join(format!("lib/l{}/f{i}", (i / store_paths) % 10));
        write_random(&path, len, &mut rng)?;
        budget -= len;
        i += 1;
    }
    for p in 0..store_paths {
        let sp = root.join(format!("{:032}-pkg{p}", p + 1));
        std::fs::create_dir_all(sp.join("bin"))?;
        std::os::unix::fs::symlink("../lib", sp.join("bin/lib"))?;
    }
    std::fs::write(&done, total.to_string())?;
    paths(root)
}

/// Reads `path` start to end (or `limit` bytes) with 1 MiB reads; returns seconds.
fn read_file(path: &Path, limit: u64) -> Result<f64, Error> {
    let start = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    while total < limit {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn best_of(n: usize, mut f: impl FnMut() -> Result<f64, Error>) -> Result<f64, Error> {
    let mut best = f64::MAX;
    for _ in 0..n {
        best = best.min(f()?);
    }
    Ok(best)
}

fn shell(script: &str) -> Result<f64, Error> {
    let start = Instant::now();
    let status = Command::new("sh").arg("-c").arg(script).status()?;
    if !status.success() {
        return Err(format!("`{script}` failed: {status}").into());
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Drops the kernel's page, dentry and inode caches (needs root).
fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn tar_cmd(dir: &Path) -> String {
    format!("tar -cf - -C '{}' . | wc -c > /dev/null", dir.display())
}

fn walk_cmd(dir: &Path) -> String {
    format!(
        "find '{0}' -type f > /dev/null && find '{0}' -printf '%s %m %i\\n' > /dev/null",
        dir.display()
    )
}

struct Bench {
    rt: tokio::runtime::Runtime,
    store: CaStore,
    roots: Arc<MemoryRoots>,
    mountpoint: PathBuf,
}

impl Bench {
    fn mount(
        &self,
        store: CaStore,
        options: FsOptions,
    ) -> Result<(MountHandle, Arc<CairnFs>), Error> {
        self.mount_with(store, options, &MountOptions::default())
    }

    fn mount_with(
        &self,
        store: CaStore,
        options: FsOptions,
        mount_options: &MountOptions,
    ) -> Result<(MountHandle, Arc<CairnFs>), Error> {
        let fs = {
            let _guard = self.rt.enter();
            CairnFs::new(store, self.roots.clone(), options)?
        };
        let handle = cairn_fs::mount(fs.clone(), &self.mountpoint, mount_options)?;
        Ok((handle, fs))
    }
}

struct Row {
    name: String,
    native: String,
    cairn: String,
    ratio: f64,
    target: &'static str,
}

fn gbps(bytes: u64, secs: f64) -> String {
    format!("{:.2} GB/s ({secs:.3} s)", bytes as f64 / secs / 1e9)
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let total = (args.gib * (1u64 << 30) as f64) as u64;
    let src = args.work.join("tree");
    let store_dir = args.work.join("store");
    let mountpoint = args.work.join("mnt");
    std::fs::create_dir_all(&mountpoint)?;

    eprintln!("generating {} MiB under {}", total >> 20, src.display());
    let paths = generate(&src, total)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = CaStore::local(&store_dir)?;
    eprintln!("importing into {}", store_dir.display());
    let t = Instant::now();
    let nodes = rt.block_on(import_paths(&store, &paths, ImportOptions::default()))?;
    eprintln!("imported in {:.1} s", t.elapsed().as_secs_f64());
    let entries: Vec<(Name, Node)> = paths
        .iter()
        .zip(nodes)
        .map(|(p, n)| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            Name::try_from(name).map(|name| (name, n))
        })
        .collect::<Result<_, _>>()?;
    let bench = Bench {
        rt,
        store: store.clone(),
        roots: Arc::new(MemoryRoots::from_entries(entries)),
        mountpoint: mountpoint.clone(),
    };
    let large_rel = Path::new(LARGE_PATH).join("data.bin");
    let large_len = std::fs::metadata(src.join(&large_rel))?.len();
    let tree_bytes = total;
    let mut rows = Vec::new();

    // 1. Sequential read of the large file, warm.
    read_file(&src.join(&large_rel), u64::MAX)?;
    let native = best_of(3, || read_file(&src.join(&large_rel), u64::MAX))?;
    let (handle, fs) = bench.mount(bench.store.clone(), FsOptions::default())?;
    let cold = read_file(&mountpoint.join(&large_rel), u64::MAX)?;
    let before = fs.stats();
    let warm = best_of(3, || read_file(&mountpoint.join(&large_rel), u64::MAX))?;
    let after = fs.stats();
    eprintln!(
        "warm passes: {} read requests reached the filesystem ({} bytes)",
        after.reads - before.reads,
        after.read_bytes - before.read_bytes
    );
    handle.unmount()?;
    rows.push(Row {
        name: format!(
            "sequential read, {} MiB file, cold (vs native warm)",
            large_len >> 20
        ),
        native: gbps(large_len, native),
        cairn: gbps(large_len, cold),
        ratio: native / cold,
        target: "",
    });
    rows.push(Row {
        name: format!(
            "sequential read, {} MiB file, warm, FUSE page cache (--no-whole-files)",
            large_len >> 20
        ),
        native: gbps(large_len, native),
        cairn: gbps(large_len, warm),
        ratio: native / warm,
        target: "",
    });

    // 1b. The same mount as `cairn mount` by default: the second open
    // writes a whole-file copy, later opens read it in passthrough mode.
    let copies = args.work.join("whole-files");
    let _ = std::fs::remove_dir_all(&copies);
    let files = WholeFiles::new(WholeFilesOptions::in_dir(copies.clone()))?;
    let (handle, fs) = bench.mount_with(
        bench.store.clone(),
        FsOptions::default(),
        &MountOptions {
            whole_files: Some(files.clone()),
            ..MountOptions::default()
        },
    )?;
    read_file(&mountpoint.join(&large_rel), u64::MAX)?;
    read_file(&mountpoint.join(&large_rel), u64::MAX)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while files.written() == 0 && files.failed() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if files.written() == 0 || !handle.passthrough_active() {
        eprintln!("no passthrough here (kernel without FUSE passthrough, or not root)");
    }
    // Native and passthrough passes alternate: the machine's memory
    // bandwidth moves from run to run.
    let before = fs.stats();
    let (mut native_best, mut passthrough_best) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        native_best = native_best.min(read_file(&src.join(&large_rel), u64::MAX)?);
        passthrough_best = passthrough_best.min(read_file(&mountpoint.join(&large_rel), u64::MAX)?);
    }
    let after = fs.stats();
    eprintln!(
        "passthrough passes: {} opens in passthrough, {} read requests reached the filesystem",
        handle.passthrough_opens(),
        after.reads - before.reads
    );
    handle.unmount()?;
    let _ = std::fs::remove_dir_all(&copies);
    rows.push(Row {
        name: format!(
            "sequential read, {} MiB file, warm, passthrough from a whole-file copy",
            large_len >> 20
        ),
        native: gbps(large_len, native_best),
        cairn: gbps(large_len, passthrough_best),
        ratio: native_best / passthrough_best,
        target: ">= 0.9",
    });

    // 2. Whole tree right after mounting.
    shell(&tar_cmd(&src))?;
    let native = best_of(2, || shell(&tar_cmd(&src)))?;
    let (handle, _) = bench.mount(bench.store.clone(), FsOptions::default())?;
    let cold = shell(&tar_cmd(&mountpoint))?;
    handle.unmount()?;
    rows.push(Row {
        name: "tar -c of the whole tree, cold mount (vs native warm)".into(),
        native: gbps(tree_bytes, native),
        cairn: gbps(tree_bytes, cold),
        ratio: native / cold,
        target: "",
    });

    // 3. Metadata walk.
    shell(&walk_cmd(&src))?;
    let native = best_of(2, || shell(&walk_cmd(&src)))?;
    let (handle, _) = bench.mount(bench.store.clone(), FsOptions::default())?;
    let cold = shell(&walk_cmd(&mountpoint))?;
    let warm = best_of(2, || shell(&walk_cmd(&mountpoint)))?;
    handle.unmount()?;
    rows.push(Row {
        name: "find -type f + stat of every entry, cold mount (vs native warm)".into(),
        native: format!("{native:.3} s"),
        cairn: format!("{cold:.3} s"),
        ratio: native / cold,
        target: "",
    });
    rows.push(Row {
        name: "find -type f + stat of every entry, warm".into(),
        native: format!("{native:.3} s"),
        cairn: format!("{warm:.3} s"),
        ratio: native / warm,
        target: ">= 0.5",
    });

    // 4. Through a backend adding 20 ms per request.
    let limit = (args.latency_mib << 20).min(large_len);
    // The large store path in a memory store, so that the backend's own
    // cost does not hide its latency.
    let memory = CaStore::memory();
    bench.rt.block_on(import_paths(
        &memory,
        &[src.join(LARGE_PATH)],
        ImportOptions::default(),
    ))?;
    let mut timed = Vec::new();
    for window in [cairn_fs::DEFAULT_WINDOW_BYTES, 0] {
        let slow = SlowBlobs::new(memory.blobs.clone());
        slow.control().set_delay(Duration::from_millis(20));
        let blobs: Arc<dyn BlobService> = Arc::new(slow);
        let store = CaStore::new(blobs, memory.directories.clone(), memory.chunker);
        let (handle, _) = bench.mount(
            store,
            FsOptions {
                window_bytes: window,
                ..FsOptions::default()
            },
        )?;
        let secs = read_file(&mountpoint.join(&large_rel), limit)?;
        handle.unmount()?;
        timed.push(secs);
    }
    rows.push(Row {
        name: format!(
            "memory store + 20 ms/request: sequential {} MiB, window {} MiB (vs window 0)",
            limit >> 20,
            cairn_fs::DEFAULT_WINDOW_BYTES >> 20
        ),
        native: gbps(limit, timed[1]),
        cairn: gbps(limit, timed[0]),
        ratio: timed[1] / timed[0],
        target: ">= 8",
    });
    // 5. The metadata walk with every cache dropped first, on both sides:
    // native reads its inodes from disk, cairn its index and directories.
    // Last, so that dropping the caches disturbs nothing else.
    // Three rounds, alternating; the best of each side.
    if drop_caches() {
        let (mut native_cold, mut cold_both) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            drop_caches();
            native_cold = native_cold.min(shell(&walk_cmd(&src))?);
            let (handle, _) = bench.mount(bench.store.clone(), FsOptions::default())?;
            drop_caches();
            cold_both = cold_both.min(shell(&walk_cmd(&mountpoint))?);
            handle.unmount()?;
        }
        rows.push(Row {
            name: "find -type f + stat of every entry, page cache dropped (vs native the same)"
                .into(),
            native: format!("{native_cold:.3} s"),
            cairn: format!("{cold_both:.3} s"),
            ratio: native_cold / cold_both,
            target: ">= 0.5",
        });
    }

    println!();
    println!("| benchmark | native (or baseline) | cairn | ratio | target |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2}x | {} |",
            r.name, r.native, r.cairn, r.ratio, r.target
        );
    }
    Ok(())
}
