//! `cairn virtiofs --socket PATH`: the store as the virtio-fs root of a
//! microVM, served over vhost-user-fs until the VMM disconnects (or, with
//! `--keep-serving`, to one VMM after another).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use cairn_castore::{Name, Node};
use cairn_fs::{CairnFs, FsError, FsOptions, RootSource};
use cairn_pathinfo::StorePath;
use cairn_virtiofs::{DaemonOptions, VirtioFsError};

use crate::commands::mount::StorePathRoots;
use crate::commands::whole_files::WholeFilesArgs;
use crate::store_location::{Store, StoreLocation};

/// How the filesystem served caches and waits.
#[derive(clap::Args, Clone)]
pub struct FsArgs {
    /// Don't list the store paths when the root is read (lookups still work).
    #[arg(long)]
    no_list_root: bool,
    /// Prefetch window of sequential readers, in bytes (0 turns it off).
    #[arg(long, default_value_t = cairn_fs::DEFAULT_WINDOW_BYTES)]
    window: u64,
    /// Chunk cache size in MiB. The guest's page cache holds what it read;
    /// this only needs to hold the prefetch window and what several guests
    /// share, and fresh memory costs a page fault per page.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// Seconds before an unanswered backend request gives EIO.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    pub whole_files: WholeFilesArgs,
}

impl FsArgs {
    pub fn options(&self) -> FsOptions {
        FsOptions {
            window_bytes: self.window,
            chunk_cache_bytes: self.cache_mib << 20,
            timeout: Duration::from_secs(self.timeout),
            list_root: !self.no_list_root,
            ..FsOptions::default()
        }
    }
}

#[derive(clap::Args)]
pub struct VirtiofsArgs {
    /// The vhost-user socket to listen on (a stale one is replaced).
    #[arg(long)]
    socket: PathBuf,
    /// After a VMM disconnects, wait for the next one instead of exiting.
    #[arg(long)]
    keep_serving: bool,
    /// Request queues offered to the guest (besides the high priority queue).
    #[arg(long, default_value_t = 1)]
    request_queues: usize,
    /// Descriptors per queue at most (a power of two).
    #[arg(long, default_value_t = 1024)]
    queue_size: u16,
    /// Show only these store paths and everything they refer to (repeatable;
    /// default: the whole store).
    #[arg(long = "closure", value_name = "STORE_PATH")]
    closures: Vec<String>,
    #[command(flatten)]
    fs: FsArgs,
}

/// A root that shows only the store paths of a closure.
pub struct ClosureRoots {
    inner: StorePathRoots,
    names: HashSet<String>,
}

#[async_trait]
impl RootSource for ClosureRoots {
    async fn lookup(&self, name: &[u8]) -> Result<Option<Node>, FsError> {
        match std::str::from_utf8(name) {
            Ok(name) if self.names.contains(name) => self.inner.lookup(name.as_bytes()).await,
            _ => Ok(None),
        }
    }

    async fn list(&self) -> Result<Vec<(Name, Node)>, FsError> {
        let mut entries = Vec::with_capacity(self.names.len());
        for name in &self.names {
            if let (Ok(entry), Some(node)) = (
                Name::try_from(name.as_str()),
                self.inner.lookup(name.as_bytes()).await?,
            ) {
                entries.push((entry, node));
            }
        }
        Ok(entries)
    }
}

/// The store paths `roots` (absolute paths in the store directory) and
/// everything they refer to, transitively.
pub async fn closure(store: &Store, roots: &[String]) -> anyhow::Result<HashSet<String>> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    for root in roots {
        let path = store
            .store_dir
            .parse_path(root.trim_end_matches('/'))
            .with_context(|| format!("{root} is not a store path"))?;
        queue.push_back(path);
    }
    while let Some(path) = queue.pop_front() {
        let name = path.to_base_name();
        if !seen.insert(name) {
            continue;
        }
        let info = store.paths.get_path(&path).await?.with_context(|| {
            format!(
                "{} is not in the store",
                store.store_dir.display_path(&path)
            )
        })?;
        queue.extend(
            info.references
                .into_iter()
                .filter(|r: &StorePath| !seen.contains(&r.to_base_name())),
        );
    }
    Ok(seen)
}

/// What the daemon serves: the whole store, or the closures given.
pub async fn root_source(
    store: &Store,
    closures: &[String],
) -> anyhow::Result<Arc<dyn RootSource>> {
    let inner = StorePathRoots {
        paths: store.paths.clone(),
    };
    if closures.is_empty() {
        return Ok(Arc::new(inner));
    }
    let names = closure(store, closures).await?;
    tracing::info!(paths = names.len(), "serving a closure");
    Ok(Arc::new(ClosureRoots { inner, names }))
}

/// Makes a fresh filesystem for each VMM connection (on the current runtime).
pub fn fs_factory(
    store: &Store,
    roots: Arc<dyn RootSource>,
    options: FsOptions,
) -> impl FnMut() -> Result<Arc<CairnFs>, VirtioFsError> + Send + 'static {
    let runtime = tokio::runtime::Handle::current();
    let castore = store.castore.clone();
    move || {
        let _enter = runtime.enter();
        Ok(CairnFs::new(
            castore.clone(),
            roots.clone(),
            options.clone(),
        )?)
    }
}

/// Runs `serve` on its own thread; resolves with its result.
pub fn serve_in_background(
    listening: cairn_virtiofs::Listening,
    make_fs: impl FnMut() -> Result<Arc<CairnFs>, VirtioFsError> + Send + 'static,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<Result<(), VirtioFsError>>> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("virtiofs".to_owned())
        .spawn(move || {
            let _ = done.send(listening.serve(make_fs));
        })
        .context("starting the virtio-fs thread")?;
    Ok(result)
}

pub async fn run(location: &StoreLocation, args: VirtiofsArgs) -> anyhow::Result<ExitCode> {
    let store = location.open_store()?;
    let whole_files = args.fs.whole_files.open(location)?;
    let roots = root_source(&store, &args.closures).await?;
    let options = DaemonOptions {
        request_queues: args.request_queues,
        queue_size: args.queue_size,
        keep_serving: args.keep_serving,
        whole_files: whole_files.clone(),
        ..DaemonOptions::default()
    };
    let listening = cairn_virtiofs::listen(&args.socket, options)?;
    tracing::info!(socket = %args.socket.display(), "listening for a VMM");
    let result = serve_in_background(listening, fs_factory(&store, roots, args.fs.options()))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let served = tokio::select! {
        result = result => result.context("the virtio-fs thread ended without a result"),
        _ = tokio::signal::ctrl_c() => Ok(Ok(())),
        _ = term.recv() => Ok(Ok(())),
    };
    let _ = std::fs::remove_file(&args.socket);
    finish_copies(whole_files.as_deref()).await;
    served??;
    Ok(ExitCode::SUCCESS)
}

/// How long a daemon about to exit waits for the whole-file copies it
/// started (a copy cut short is started again on a later open).
const COPY_GRACE: Duration = Duration::from_secs(30);

/// Lets the whole-file copies being written finish, for a while.
pub async fn finish_copies(whole_files: Option<&cairn_fs::WholeFiles>) {
    let Some(files) = whole_files else {
        return;
    };
    if !files.wait_idle(Duration::ZERO) {
        tracing::info!("finishing whole-file copies before exiting");
        if !tokio::task::block_in_place(|| files.wait_idle(COPY_GRACE)) {
            tracing::warn!("whole-file copies still unfinished; they are written on a later open");
        }
    }
}
