//! NAR rendering: (a) the NAR hash of the generated ~1 GiB tree rendered
//! from a local castore, next to `nix hash path` of the same tree on disk
//! (the baseline), both with a warm page cache; (b) rendering a ~30 MiB
//! subset from a backend that adds 20 ms to every request, with the default
//! sliding window next to one request at a time (the baseline). Both in the
//! same run; the rendered hashes are checked against Nix's.
//!
//! `cargo run --release -p cairn-bench --bin nar [-- SMALL LARGE LARGE_MIB SUB_SMALL SUB_LARGE SUB_LARGE_MIB]`

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use cairn_bench::{generate_tree, print_table};
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{
    BlobError, BlobService, CaStore, ChunkError, ChunkMap, ChunkService, Digest, Directory,
    DirectoryService, DirectoryServiceError, Node,
};
use cairn_pathinfo::NixHash;
use cairn_pathinfo::render::{RenderOptions, render_nar};

/// Blob, chunk and directory services over another store, each call
/// delayed by `delay` (a remote backend's round trip).
struct Delayed {
    inner: CaStore,
    delay: Duration,
}

impl Delayed {
    async fn wait(&self) {
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl ChunkService for Delayed {
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        self.wait().await;
        self.inner.blobs.chunks().get(digest).await
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        self.wait().await;
        self.inner.blobs.chunks().put(digest, data).await
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        self.wait().await;
        self.inner.blobs.chunks().size(digest).await
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        self.wait().await;
        self.inner.blobs.chunks().list().await
    }
}

#[async_trait]
impl BlobService for Delayed {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        self.wait().await;
        self.inner.blobs.stored_chunk_map(blob).await
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        self.wait().await;
        self.inner.blobs.put_chunk_map(blob, map).await
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        self.wait().await;
        self.inner.blobs.list_chunk_maps().await
    }
}

#[async_trait]
impl DirectoryService for Delayed {
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        self.wait().await;
        self.inner.directories.get(digest).await
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        self.wait().await;
        self.inner.directories.size_of(digest).await
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        self.wait().await;
        self.inner.directories.put_checked(digest, directory).await
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        self.wait().await;
        self.inner.directories.list().await
    }
}

/// `nix hash path DIR` (SRI sha256 of the NAR) and its wall time.
fn nix_hash_path(dir: &Path) -> anyhow::Result<(String, f64)> {
    let start = Instant::now();
    let out = Command::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "hash",
            "path",
        ])
        .arg(dir)
        .output()
        .context("running nix hash path (is Nix installed?)")?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "nix hash path failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((String::from_utf8(out.stdout)?.trim().to_string(), secs))
}

/// Renders `node`'s NAR into a sink: (SRI hash, NAR size, wall seconds).
async fn render_hash(
    store: &CaStore,
    node: &Node,
    options: RenderOptions,
) -> anyhow::Result<(String, u64, f64)> {
    let start = Instant::now();
    let (_, rendered) = render_nar(store, node, tokio::io::sink(), options).await?;
    let secs = start.elapsed().as_secs_f64();
    Ok((
        NixHash::Sha256(rendered.nar_sha256).to_sri(),
        rendered.nar_size,
        secs,
    ))
}

fn row(what: &str, secs: f64, bytes: u64, ratio: f64) -> Vec<String> {
    vec![
        what.to_string(),
        format!("{secs:.2}"),
        format!("{:.0}", bytes as f64 / 1e6 / secs),
        format!("{ratio:.2}"),
    ]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (small, large, large_mib) = (arg(0, 32_000), arg(1, 8), arg(2, 64));
    let (sub_small, sub_large, sub_large_mib) = (arg(3, 200), arg(4, 3), arg(5, 8));
    let tmp = tempfile::Builder::new()
        .prefix("cairn-bench-nar")
        .tempdir_in(std::env::var_os("CAIRN_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // (a) NAR hash of the whole tree.
    let tree = tmp.path().join("tree");
    eprintln!("generating {small} small files and {large} x {large_mib} MiB ...");
    let stats = generate_tree(&tree, small, large, large_mib << 20)?;
    let store = CaStore::local(tmp.path().join("store"))?;
    eprintln!("importing ...");
    let node = rt
        .block_on(import_paths(
            &store,
            std::slice::from_ref(&tree),
            ImportOptions::default(),
        ))?
        .remove(0);
    // Warm both (and check they agree), then best of 3 each.
    let (nix_hash, _) = nix_hash_path(&tree)?;
    let (ours, nar_size, _) = rt.block_on(render_hash(&store, &node, RenderOptions::default()))?;
    anyhow::ensure!(
        ours == nix_hash,
        "NAR hash {ours} differs from Nix's {nix_hash}"
    );
    let (mut nix_best, mut cairn_best) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        nix_best = nix_best.min(nix_hash_path(&tree)?.1);
        let (h, _, secs) = rt.block_on(render_hash(&store, &node, RenderOptions::default()))?;
        anyhow::ensure!(h == nix_hash);
        cairn_best = cairn_best.min(secs);
    }

    // (b) A subset from a backend with 20 ms per request.
    let subset = tmp.path().join("subset");
    let sub_stats = generate_tree(&subset, sub_small, sub_large, sub_large_mib << 20)?;
    let sub_store = CaStore::local(tmp.path().join("sub-store"))?;
    let sub_node = rt
        .block_on(import_paths(
            &sub_store,
            std::slice::from_ref(&subset),
            ImportOptions::default(),
        ))?
        .remove(0);
    let delayed = Arc::new(Delayed {
        inner: sub_store.clone(),
        delay: Duration::from_millis(20),
    });
    let slow = CaStore::new(delayed.clone(), delayed, sub_store.chunker);
    let (sub_nix_hash, _) = nix_hash_path(&subset)?;
    let one_at_a_time = RenderOptions {
        window: 1,
        metadata_concurrency: 1,
    };
    let (h1, sub_nar_size, serial) = rt.block_on(render_hash(&slow, &sub_node, one_at_a_time))?;
    let (h64, _, windowed) =
        rt.block_on(render_hash(&slow, &sub_node, RenderOptions::default()))?;
    anyhow::ensure!(
        h1 == sub_nix_hash && h64 == sub_nix_hash,
        "subset NAR hash differs from Nix's"
    );

    println!("(ratio = baseline time / time: above 1.00 is faster than the baseline)");
    println!(
        "(a) NAR hash of the benchmark tree: {} files, {:.0} MiB of files, NAR {:.0} MiB, page cache warm, best of 3",
        stats.files,
        stats.bytes as f64 / (1 << 20) as f64,
        nar_size as f64 / (1 << 20) as f64
    );
    print_table(
        &["what", "wall s", "MB/s", "ratio"],
        &[
            row("nix hash path DIR (baseline)", nix_best, nar_size, 1.0),
            row(
                "cairn render_nar from local castore",
                cairn_best,
                nar_size,
                nix_best / cairn_best,
            ),
        ],
    );
    println!();
    println!(
        "(b) NAR rendering from a backend adding 20 ms per request: {} files, NAR {:.0} MiB",
        sub_stats.files,
        sub_nar_size as f64 / (1 << 20) as f64
    );
    print_table(
        &["what", "wall s", "MB/s", "ratio"],
        &[
            row("window 1, metadata 1 (baseline)", serial, sub_nar_size, 1.0),
            row(
                "RenderOptions::default() (window 64)",
                windowed,
                sub_nar_size,
                serial / windowed,
            ),
        ],
    );
    Ok(())
}
