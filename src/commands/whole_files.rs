//! The flags of whole-file copies, shared by `mount`, `virtiofs` and `boot`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cairn_fs::{WholeFiles, WholeFilesOptions};

use crate::store_location::StoreLocation;

/// Whole-file copies of large files opened again, on local disk: read by
/// the kernel in FUSE passthrough mode (`mount`), or straight into the
/// guest's buffers (`virtiofs`, `boot`).
#[derive(clap::Args, Clone, Debug)]
pub struct WholeFilesArgs {
    /// Don't keep whole-file copies of large files opened again.
    #[arg(long)]
    pub no_whole_files: bool,
    /// Directory of the whole-file copies [default: whole-files in the
    /// store directory; for a --store, whole-files-<hash of it> there].
    #[arg(long, value_name = "DIR")]
    pub whole_files_dir: Option<PathBuf>,
    /// Disk space of the whole-file copies at most, in MiB (least recently
    /// opened copies go first).
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    pub whole_files_mib: u64,
    /// Files smaller than this, in KiB, get no copy.
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    pub whole_files_min_kib: u64,
}

impl WholeFilesArgs {
    /// The copies directory these flags ask for (none with
    /// `--no-whole-files`).
    pub fn open(&self, location: &StoreLocation) -> anyhow::Result<Option<Arc<WholeFiles>>> {
        if self.no_whole_files {
            return Ok(None);
        }
        let dir = self
            .whole_files_dir
            .clone()
            .unwrap_or_else(|| default_dir(location));
        let options = WholeFilesOptions {
            max_bytes: self.whole_files_mib << 20,
            min_size: self.whole_files_min_kib << 10,
            ..WholeFilesOptions::in_dir(dir.clone())
        };
        WholeFiles::new(options)
            .map(Some)
            .with_context(|| format!("opening the whole-file copies in {}", dir.display()))
    }
}

/// The copies of the store a command works on: `whole-files` in the store
/// directory for the embedded store, and one directory per `--store` beside
/// it. Copies are named by digest, so any store could read any other's; but
/// a store must not serve what it cannot fetch itself (a cache composition
/// would never fill its near store, an outage of a remote store would go
/// unnoticed), so each keeps its own.
pub fn default_dir(location: &StoreLocation) -> PathBuf {
    match &location.store {
        None => location.dir.join("whole-files"),
        Some(spec) => {
            let hash = cairn_castore::Digest::of(spec.as_bytes()).to_hex();
            location.dir.join(format!("whole-files-{}", &hash[..16]))
        }
    }
}
