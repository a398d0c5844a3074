//! `cairn add PATH` and `cairn add --flat FILE`: as `nix-store --add` and
//! `nix-store --add-fixed sha256`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cairn_pathinfo::hash::NixHash;
use cairn_pathinfo::ingest::{IngestedNar, ingest_nar};
use cairn_pathinfo::nar::DumpError;
use cairn_pathinfo::nar::dump_path;
use cairn_pathinfo::{ContentAddress, FileIngestionMethod, PathInfo};
use tokio::io::AsyncReadExt;

use crate::store_location::{Store, StoreLocation};

#[derive(clap::Args)]
pub struct AddArgs {
    /// Files or directories to add.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Add a regular file by the sha256 of its contents (`--add-fixed sha256`).
    #[arg(long)]
    flat: bool,
}

/// Streams `path` as a NAR into the store: one read of the tree gives the
/// castore nodes and the NAR hash together.
pub async fn ingest_path(store: &Store, path: &Path) -> anyhow::Result<IngestedNar> {
    let (writer, reader) = tokio::io::duplex(1 << 20);
    let dump_path_buf = path.to_path_buf();
    let dump = tokio::spawn(async move { dump_path(&dump_path_buf, writer).await.map(drop) });
    let ingested = ingest_nar(&store.castore, reader).await;
    let dumped = dump.await.context("reading the tree")?;
    match (dumped, ingested) {
        (Ok(()), ingested) => Ok(ingested?),
        // The store refused the data and the tree's writer saw the pipe
        // close: the store's error is the cause.
        (Err(DumpError::Nar { .. }), Err(stored)) => Err(stored.into()),
        // A read error of the tree shows up on both sides; report the tree's.
        (Err(read), _) => {
            Err(anyhow::Error::new(read).context(format!("reading {}", path.display())))
        }
    }
}

/// The store path name of `path`: its last component, as Nix takes it
/// (a symlink's own name, not its target's); `.` and `..` are resolved.
fn store_name(path: &Path) -> anyhow::Result<String> {
    let resolved = match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
    };
    let name = resolved
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", path.display()))?;
    Ok(name.to_string())
}

async fn flat_sha256(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = cairn_pathinfo::hash::Hasher::new(cairn_pathinfo::HashAlgo::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    match hasher.finish() {
        NixHash::Sha256(h) => Ok(h),
        _ => anyhow::bail!("sha256 hasher returned another hash"),
    }
}

pub async fn add_one(store: &Store, path: &Path, flat: bool) -> anyhow::Result<PathInfo> {
    let name = store_name(path)?;
    if flat && !std::fs::symlink_metadata(path)?.is_file() {
        anyhow::bail!("{}: --flat adds regular files only", path.display());
    }
    let ingested = ingest_path(store, path).await?;
    let (store_path, ca) = if flat {
        let hash = NixHash::Sha256(flat_sha256(path).await?);
        let store_path = store.store_dir.make_fixed_output_path(
            &name,
            FileIngestionMethod::Flat,
            &hash,
            &[],
            false,
        )?;
        (
            store_path,
            ContentAddress::Fixed(FileIngestionMethod::Flat, hash),
        )
    } else {
        let store_path =
            store
                .store_dir
                .make_source_path(&name, &ingested.nar_sha256, &[], false)?;
        let hash = NixHash::Sha256(ingested.nar_sha256);
        (
            store_path,
            ContentAddress::Fixed(FileIngestionMethod::Recursive, hash),
        )
    };
    register(store, store_path, ingested, ca).await
}

/// Registers ingested content as a content-addressed store path without
/// references.
pub async fn register(
    store: &Store,
    store_path: cairn_pathinfo::StorePath,
    ingested: IngestedNar,
    ca: ContentAddress,
) -> anyhow::Result<PathInfo> {
    let info = PathInfo {
        store_path,
        node: ingested.node,
        references: Vec::new(),
        nar_size: ingested.nar_size,
        nar_sha256: ingested.nar_sha256,
        signatures: Vec::new(),
        deriver: None,
        ca: Some(ca),
        registration_time: now(),
    };
    store.paths.put(info.clone()).await?;
    Ok(info)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn run(location: &StoreLocation, args: AddArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    for path in &args.paths {
        let info = add_one(&store, path, args.flat).await?;
        println!("{}", store.store_dir.display_path(&info.store_path));
    }
    Ok(ExitCode::SUCCESS)
}
