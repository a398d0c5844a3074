//! `cairn mount MOUNTPOINT`: the store as a read-only filesystem over FUSE,
//! in the foreground until SIGINT/SIGTERM or an unmount from outside.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use cairn_castore::{Name, Node};
use cairn_fs::{CairnFs, FsError, FsOptions, MountOptions, RootSource};
use cairn_pathinfo::{PathInfoService, StorePath};

use crate::commands::whole_files::WholeFilesArgs;
use crate::store_location::StoreLocation;

#[derive(clap::Args)]
pub struct MountArgs {
    /// Where to mount (an existing directory, e.g. /nix/store).
    mountpoint: PathBuf,
    /// Don't list the store paths when the root is read (lookups still work).
    #[arg(long)]
    no_list_root: bool,
    /// Prefetch window of sequential readers, in bytes (0 turns it off).
    #[arg(long, default_value_t = cairn_fs::DEFAULT_WINDOW_BYTES)]
    window: u64,
    /// Chunk cache size in MiB.
    #[arg(long, default_value_t = 512)]
    cache_mib: u64,
    /// Seconds before an unanswered backend request gives EIO.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Let other users use the mount.
    #[arg(long)]
    allow_other: bool,
    /// Don't ask fusermount3 to unmount when the process dies.
    #[arg(long)]
    no_auto_unmount: bool,
    #[command(flatten)]
    whole_files: WholeFilesArgs,
    /// Write one byte to this file descriptor once mounted (used by the
    /// `mount -t fuse.cairn` helper).
    #[arg(long, hide = true)]
    ready_fd: Option<i32>,
}

/// The root of the filesystem: the store paths of a PathInfoService.
pub struct StorePathRoots {
    pub paths: Arc<dyn PathInfoService>,
}

#[async_trait]
impl RootSource for StorePathRoots {
    async fn lookup(&self, name: &[u8]) -> Result<Option<Node>, FsError> {
        let Ok(path) = StorePath::from_base_name_bytes(name) else {
            return Ok(None);
        };
        let info = self
            .paths
            .get_path(&path)
            .await
            .map_err(|e| FsError::Source(Arc::new(e)))?;
        Ok(info.map(|i| i.node))
    }

    async fn list(&self) -> Result<Vec<(Name, Node)>, FsError> {
        let infos = self
            .paths
            .list()
            .await
            .map_err(|e| FsError::Source(Arc::new(e)))?;
        Ok(infos
            .into_iter()
            .filter_map(|i| {
                Name::try_from(i.store_path.to_base_name().as_str())
                    .ok()
                    .map(|n| (n, i.node))
            })
            .collect())
    }
}

pub async fn run(location: &StoreLocation, args: MountArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let options = FsOptions {
        window_bytes: args.window,
        chunk_cache_bytes: args.cache_mib << 20,
        timeout: Duration::from_secs(args.timeout),
        list_root: !args.no_list_root,
        ..FsOptions::default()
    };
    let fs = CairnFs::new(
        store.castore.clone(),
        Arc::new(StorePathRoots {
            paths: store.paths.clone(),
        }),
        options,
    )?;
    let whole_files = args.whole_files.open(location)?;
    let mount_options = MountOptions {
        whole_files,
        allow_other: args.allow_other,
        auto_unmount: !args.no_auto_unmount,
        fs_name: format!("cairn:{}", location.describe()),
        ..MountOptions::default()
    };
    let handle = cairn_fs::mount(fs, &args.mountpoint, &mount_options)
        .with_context(|| format!("mounting on {}", args.mountpoint.display()))?;
    let unmounter = handle.unmounter();
    tracing::info!(mountpoint = %args.mountpoint.display(), "mounted");
    if let Some(fd) = args.ready_fd {
        use std::io::Write;
        use std::os::fd::FromRawFd;
        // SAFETY: the fd was passed by the helper for exactly this purpose
        // and is used once here.
        let mut ready = unsafe { std::fs::File::from_raw_fd(fd) };
        let _ = ready.write_all(b"1");
    }
    let mut joined = tokio::task::spawn_blocking(move || handle.join());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = &mut joined => {
            result.context("waiting for the mount")??;
            return Ok(ExitCode::SUCCESS);
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    unmounter.unmount().context("unmounting")?;
    joined.await.context("waiting for the mount")??;
    Ok(ExitCode::SUCCESS)
}
