//! Importing filesystem trees into the store.
//!
//! 1. Scan: walk the tree (symlinks are stored, not followed) and refuse
//!    anything that is not a directory, regular file or symlink, or that
//!    cannot be read, before anything is written.
//! 2. Blobs: files are read, chunked and hashed on all cores (rayon); chunks
//!    are stored in batches by tokio tasks, bounded by bytes in flight. Files
//!    are read into large pooled blocks (`read_blocks`), and the
//!    chunks of each read go to the store as one aligned run of the block
//!    ([`crate::ChunkService::put_runs`]), not as copies. Small files (those
//!    stored whole, as one chunk) are read in groups, one after another
//!    with one read each, and hashed together, one file per SIMD lane
//!    ([`crate::many_hash`]); a group's chunks leave as one run. Large files
//!    are read a step at a time, each step cut and hashed while it is in
//!    the core's cache.
//! 3. Directories: once every blob is stored, the whole tree bottom-up in
//!    one [`crate::DirectoryService::put_tree`] (one index transaction in
//!    the local store), while the chunk maps are committed and the packs
//!    synced.
//!
//! A failure stops the import before any directory is written, so no root
//! ever refers to missing data (chunks already stored stay unreferenced).

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use bytes::Bytes;
use rayon::prelude::*;
use tokio::runtime::Handle;

use crate::many_hash::ManyHasher;
use crate::read_blocks::{Arena, BlockPool};
use crate::services::blob::{BlobError, ChunkMap, ChunkRef};
use crate::{
    CaStore, ChunkRun, Digest, Directory, DirectoryServiceError, Name, NameError, Node,
    SymlinkTarget,
};

/// Why an import failed. Every variant names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "{path}: unsupported file type ({kind}); only directories, regular files and symlinks can be imported"
    )]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Name {
        path: PathBuf,
        #[source]
        source: NameError,
    },
    #[error("{path}: file changed while being imported")]
    Changed { path: PathBuf },
    #[error("{path}: {source}")]
    Blob {
        path: PathBuf,
        #[source]
        source: BlobError,
    },
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    #[error("import cancelled")]
    Cancelled,
}

/// Options of an import.
#[derive(Clone)]
pub struct ImportOptions {
    /// Bytes of chunk data queued for storing at most. A chunk counts
    /// until its store acknowledges it, which for the local store means
    /// written to a pack.
    pub max_bytes_in_flight: usize,
    /// Called with the number of bytes read so far, as files are read.
    pub progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_bytes_in_flight: 256 << 20,
            progress: None,
        }
    }
}

/// What a scan found under one root.
enum Scanned {
    Dir {
        path: PathBuf,
        children: Vec<(Name, usize)>,
    },
    File {
        path: PathBuf,
        size: u64,
        executable: bool,
    },
    Symlink(SymlinkTarget),
}

/// The result of scanning: a flat arena of nodes.
pub struct ScanTree {
    nodes: Vec<Scanned>,
    roots: Vec<usize>,
    total_bytes: u64,
}

impl ScanTree {
    /// Bytes in regular files.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }
}

/// Walks `paths` and checks every entry, without writing anything. The
/// subtrees of a directory are walked, and its files checked, on all cores.
pub fn scan(paths: &[PathBuf]) -> Result<ScanTree, ImportError> {
    let started = std::time::Instant::now();
    let mut tree = ScanTree {
        nodes: Vec::new(),
        roots: Vec::new(),
        total_bytes: 0,
    };
    for path in paths {
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        let part = scan_one(path.clone(), meta.file_type(), None)?;
        tree.total_bytes += part.total_bytes;
        let offset = tree.nodes.len();
        tree.nodes.extend(part.shifted(offset));
        tree.roots.push(tree.nodes.len() - 1);
    }
    tracing::info!(elapsed = ?started.elapsed(), nodes = tree.nodes.len(), "import: scanned");
    Ok(tree)
}

/// The scan of one subtree: its nodes, the subtree's root last, children
/// referring to nodes by index within the part.
struct ScanPart {
    nodes: Vec<Scanned>,
    total_bytes: u64,
}

impl ScanPart {
    /// The nodes, with indices moved for a place `offset` nodes further on.
    fn shifted(self, offset: usize) -> impl Iterator<Item = Scanned> {
        self.nodes.into_iter().map(move |mut node| {
            if let Scanned::Dir { children, .. } = &mut node {
                for (_, index) in children.iter_mut() {
                    *index += offset;
                }
            }
            node
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Size and executable bit of a regular file, and whether it can be read
/// (checked now, so nothing is written for an import that would fail).
/// `entry` is the file's entry in its directory's listing, when it has one:
/// its metadata comes relative to the open directory, without resolving the
/// whole path again.
fn check_file(path: &Path, entry: Option<&std::fs::DirEntry>) -> Result<(u64, bool), ImportError> {
    let meta = match entry {
        Some(entry) => entry.metadata(),
        None => std::fs::symlink_metadata(path),
    }
    .map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(ImportError::Changed {
            path: path.to_path_buf(),
        });
    }
    if !mode_allows_reading(&meta) {
        // The mode bits say no, but an ACL may say yes: ask the kernel.
        may_read_by_acl(path)?;
    }
    Ok((meta.len(), meta.permissions().mode() & 0o100 != 0))
}

/// Whether the kernel lets this process read `path` (`faccessat`, ACLs
/// included): an error naming the path if not.
fn may_read_by_acl(path: &Path) -> Result<(), ImportError> {
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| ImportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("path contains NUL"),
        })?;
    // SAFETY: c_path is a valid NUL-terminated string for the call's duration.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::R_OK,
            libc::AT_EACCESS,
        )
    };
    if rc != 0 {
        return Err(ImportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether the mode bits of a file let this process read it: the check
/// the kernel makes before ACLs, done without a system call per file. A
/// file the bits refuse is asked about again with `faccessat`; one they
/// allow but something else refuses fails when it is opened, with the same
/// error naming it.
fn mode_allows_reading(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ids = process_ids();
    let mode = meta.mode();
    if ids.uid == 0 {
        return true;
    }
    if meta.uid() == ids.uid {
        return mode & 0o400 != 0;
    }
    if meta.gid() == ids.gid || ids.groups.contains(&meta.gid()) {
        return mode & 0o040 != 0;
    }
    mode & 0o004 != 0
}

/// The effective user and groups of this process, read once.
struct ProcessIds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

fn process_ids() -> &'static ProcessIds {
    static IDS: std::sync::OnceLock<ProcessIds> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        // SAFETY: geteuid/getegid take no arguments and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        // SAFETY: with a size of 0, getgroups only returns the count.
        let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
        let mut groups = vec![0 as libc::gid_t; count.max(0) as usize];
        // SAFETY: groups has room for `count` entries.
        let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
        groups.truncate(got.max(0) as usize);
        ProcessIds { uid, gid, groups }
    })
}

/// The fewest entries of one directory scanned as one task: the entries
/// of a small directory are not worth handing between threads one by one
/// (its subdirectories are still scanned in parallel, by the tasks that
/// meet them).
const SCAN_SPLIT_FROM: usize = 16;

fn scan_one(
    path: PathBuf,
    ft: std::fs::FileType,
    entry: Option<std::fs::DirEntry>,
) -> Result<ScanPart, ImportError> {
    let (node, total_bytes) = if ft.is_symlink() {
        let target = std::fs::read_link(&path).map_err(io_err(&path))?;
        let target = SymlinkTarget::new(Bytes::copy_from_slice(target.as_os_str().as_bytes()))
            .map_err(|source| ImportError::Name {
                path: path.clone(),
                source,
            })?;
        (Scanned::Symlink(target), 0)
    } else if ft.is_file() {
        let (size, executable) = check_file(&path, entry.as_ref())?;
        (
            Scanned::File {
                path,
                size,
                executable,
            },
            size,
        )
    } else if ft.is_dir() {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(io_err(&path))? {
            let entry = entry.map_err(io_err(&path))?;
            let child = entry.path();
            let name = Name::new(Bytes::copy_from_slice(entry.file_name().as_bytes())).map_err(
                |source| ImportError::Name {
                    path: child.clone(),
                    source,
                },
            )?;
            let child_type = entry.file_type().map_err(io_err(&child))?;
            entries.push((name, child, child_type, entry));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, parts): (Vec<Name>, Vec<Result<ScanPart, ImportError>>) = entries
            .into_par_iter()
            .with_min_len(SCAN_SPLIT_FROM)
            .map(|(name, child, child_type, entry)| {
                (name, scan_one(child, child_type, Some(entry)))
            })
            .unzip();
        let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut nodes = Vec::with_capacity(parts.iter().map(|p| p.nodes.len()).sum::<usize>() + 1);
        let mut children = Vec::with_capacity(parts.len());
        let mut total_bytes = 0;
        for (name, part) in names.into_iter().zip(parts) {
            total_bytes += part.total_bytes;
            let offset = nodes.len();
            nodes.extend(part.shifted(offset));
            children.push((name, nodes.len() - 1));
        }
        nodes.push(Scanned::Dir { path, children });
        return Ok(ScanPart { nodes, total_bytes });
    } else {
        let kind = if ft.is_socket() {
            "socket"
        } else if ft.is_fifo() {
            "FIFO"
        } else if ft.is_block_device() {
            "block device"
        } else if ft.is_char_device() {
            "character device"
        } else {
            "unknown"
        };
        return Err(ImportError::Unsupported { path, kind });
    };
    Ok(ScanPart {
        nodes: vec![node],
        total_bytes,
    })
}

/// Bounds the bytes of chunk data handed to storing tasks.
struct ByteBudget {
    available: Mutex<usize>,
    freed: Condvar,
    limit: usize,
    /// Time readers spent waiting for room, in nanoseconds (for the log).
    waited_ns: std::sync::atomic::AtomicU64,
}

impl ByteBudget {
    fn acquire(&self, n: usize) {
        let n = n.min(self.limit);
        let mut available = self.available.lock().unwrap_or_else(|p| p.into_inner());
        if *available < n {
            let started = std::time::Instant::now();
            while *available < n {
                available = self
                    .freed
                    .wait(available)
                    .unwrap_or_else(|p| p.into_inner());
            }
            self.waited_ns
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        *available -= n;
    }

    fn release(&self, n: usize) {
        let n = n.min(self.limit);
        *self.available.lock().unwrap_or_else(|p| p.into_inner()) += n;
        self.freed.notify_all();
    }
}

/// Chunks handed to the store together: one batched lookup of which are
/// new, then the puts.
const PUT_BATCH_CHUNKS: usize = 64;

/// Stores the chunks of files read on rayon threads through tokio tasks, in
/// batches of up to [`PUT_BATCH_CHUNKS`] chunks (and a quarter of the bytes
/// budget), so that the store can look them up together
/// ([`crate::ChunkService::prepare`]).
struct ChunkSink {
    store: CaStore,
    handle: Handle,
    budget: Arc<ByteBudget>,
    /// Arenas not in use by a reader (one per concurrent reader).
    arenas: Mutex<Vec<Arena>>,
    blocks: Arc<BlockPool>,
    pending: Mutex<PendingPuts>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<Result<(), BlobError>>>>,
    failed: AtomicBool,
    /// Set once a read that must not wait was refused (the kernel or the
    /// filesystem imported from does not support them): the import's small
    /// files are then read with plain reads.
    nowait_refused: AtomicBool,
}

/// Runs read but not yet handed to a store task.
#[derive(Default)]
struct PendingPuts {
    runs: Vec<ChunkRun>,
    chunks: usize,
    bytes: usize,
}

impl ChunkSink {
    fn put_run(&self, run: ChunkRun) {
        let len = run.data_len();
        self.budget.acquire(len);
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.chunks += run.chunks().len();
            pending.runs.push(run);
            pending.bytes += len;
            (pending.chunks >= PUT_BATCH_CHUNKS || pending.bytes >= self.budget.limit / 4)
                .then(|| std::mem::take(&mut *pending))
        };
        if let Some(batch) = full {
            self.spawn_batch(batch);
        }
    }

    /// Hands the runs still pending to a store task.
    fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.runs.is_empty() {
            self.spawn_batch(batch);
        }
    }

    fn spawn_batch(&self, batch: PendingPuts) {
        let blobs = self.store.blobs.clone();
        let budget = self.budget.clone();
        let task = self.handle.spawn(async move {
            let lens: Vec<usize> = batch.runs.iter().map(ChunkRun::data_len).collect();
            let result = blobs.chunks().put_runs(batch.runs).await;
            for len in lens {
                budget.release(len);
            }
            result.map_err(BlobError::from)
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }
}

/// Bytes read from a large file per step: chunked and hashed while they
/// are still in the CPU's caches. A step and the chunk tail carried into
/// the next (less than the largest chunk) fit a core's 1 MiB L2 cache;
/// in four sets of 7-21 alternating runs, imports with 512 KiB steps took
/// a median 3-16% less time than with 2 MiB steps.
const READ_STEP: usize = 512 << 10;
/// Size of the pooled read blocks (see [`crate::read_blocks`]).
const BLOCK_SIZE: usize = 4 << 20;
/// Read blocks alive beyond one per reader: those whose runs the store has
/// not written (or copied) yet. Enough to keep the pack writer busy and to
/// ride out the disk's slower moments: with 4, readers of the benchmark
/// tree waited 120 ms in all for blocks to come back, and over 25
/// alternating runs 8 took the median import from 0.86 to 0.80 s (16 MiB
/// of blocks more, faulted in once per import).
const READ_BLOCKS_IN_FLIGHT: usize = 8;

/// Reads into `buf` until it is full, the file ends, or `expected` bytes
/// have come in a read that returned fewer than asked (a regular file
/// returns fewer bytes than asked only at its end, so that saves the read
/// that would return 0). The number of bytes read.
fn read_step(file: &mut File, buf: &mut [u8], expected: usize) -> std::io::Result<usize> {
    fill_step(buf, 0, expected, |rest| file.read(rest)).map_err(|(e, _)| e)
}

/// Fills `buf`, of which the first `filled` bytes are read already, with
/// `read` until the step is complete as [`read_step`] says. The bytes in
/// `buf`; on an error, with the bytes read before it.
fn fill_step(
    buf: &mut [u8],
    mut filled: usize,
    expected: usize,
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
) -> Result<usize, (std::io::Error, usize)> {
    while filled < buf.len() {
        match read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled == expected && filled < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, filled)),
        }
    }
    Ok(filled)
}

/// Reads a step into `buf` as [`read_step`] does, but only from what the
/// page cache already holds of `file`, without waiting for the disk
/// (`preadv2` with `RWF_NOWAIT`, at the file's position). The bytes read,
/// and how the step ended: complete, or stopped at the first byte missing
/// from the cache, or refused (the kernel or filesystem does not take the
/// flag). Either way a blocking read can go on from there, and reports
/// any real error.
fn read_cached(file: &mut File, buf: &mut [u8], expected: usize) -> (usize, CachedRead) {
    use std::os::fd::AsRawFd;
    let read_now = |rest: &mut [u8]| {
        let iov = libc::iovec {
            iov_base: rest.as_mut_ptr().cast(),
            iov_len: rest.len(),
        };
        // SAFETY: the descriptor is open for the borrow; the one iovec
        // covers `rest`, which is writable and outlives the call. Offset -1
        // reads at the file's position and moves it, as `read` does.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    };
    match fill_step(buf, 0, expected, read_now) {
        Ok(filled) => (filled, CachedRead::Complete),
        Err((e, filled)) => match e.raw_os_error() {
            Some(libc::EOPNOTSUPP | libc::EINVAL) => (filled, CachedRead::Refused),
            _ => (filled, CachedRead::Missing),
        },
    }
}

/// How a read of only cached bytes ([`read_cached`]) ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CachedRead {
    Complete,
    /// A byte was missing from the page cache.
    Missing,
    /// Reads that must not wait are not supported here.
    Refused,
}

/// Files at least this large are read ahead of their reads where a read
/// finds bytes missing from the page cache.
const READ_AHEAD_FROM: u64 = 1 << 20;
/// How far ahead of the next read of a large file its bytes are asked for.
const READ_AHEAD: u64 = 4 << 20;
/// How far past a read that found bytes missing from the page cache the
/// bytes of its file are asked for ahead of the reads. A file read from
/// the disk keeps missing bytes, and so keeps its reads ahead; a cached
/// file with a page reclaimed here and there goes back to plain reads.
const COLD_STRETCH: u64 = 2 * READ_AHEAD;
/// The most one request for read-ahead asks for: Linux reads at most the
/// device's request size (or the read-ahead window) per request, commonly
/// 1 MiB or more.
const READ_AHEAD_PIECE: u64 = 1 << 20;

/// Asks the kernel for the bytes of `file` from `advised` to `target`
/// (`POSIX_FADV_WILLNEED`, in pieces of [`READ_AHEAD_PIECE`]), and moves
/// `advised` there: the pages the page cache lacks are read in the
/// background while the steps before them are cut and hashed, instead of
/// one missing range at a time as each read reaches it. Pages already
/// cached cost a walk of the cache, so it is only asked for near a read
/// that found pages missing ([`read_cached`]); a file partly or wholly
/// evicted (a cold cache, or pages reclaimed since the file was last read)
/// no longer stalls its reader once per missing range. Only a hint: a
/// failure is ignored.
fn read_ahead(file: &File, advised: &mut u64, target: u64) {
    use std::os::fd::AsRawFd;
    while *advised < target {
        let len = (target - *advised).min(READ_AHEAD_PIECE);
        // SAFETY: posix_fadvise only reads its integer arguments; the
        // descriptor is valid for the duration of the borrow.
        let rc = unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                *advised as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            )
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::from_raw_os_error(rc), "posix_fadvise");
            *advised = target;
            return;
        }
        *advised += len;
    }
}

thread_local! {
    /// The directory this thread last opened a file in, open: files of one
    /// directory come one after another, and opening each relative to its
    /// directory spares the kernel a walk of the whole path.
    static PARENT: std::cell::RefCell<Option<(Vec<u8>, File)>> =
        const { std::cell::RefCell::new(None) };
}

/// Opens `path` for reading, relative to its directory (kept open by this
/// thread for the next file there). Symlinks are not followed: the scan
/// saw a regular file, and a file swapped for a link since is refused.
fn open_in_parent(path: &Path) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // The directory and the name by the last '/': the scan's paths are
    // directories joined with names, and this is far cheaper than
    // `Path::parent`, which parses every component.
    let bytes = path.as_os_str().as_bytes();
    let (parent, name) = match memchr::memrchr(b'/', bytes) {
        Some(0) => (&b"/"[..], &bytes[1..]),
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (&b"."[..], bytes),
    };
    // The name NUL-terminated, on the stack (a file name has at most 255
    // bytes on Linux).
    let mut c_name = [0u8; 256];
    if name.is_empty() || name == b"." || name == b".." || name.len() >= c_name.len() {
        return File::open(path);
    }
    if name.contains(&0) {
        return Err(std::io::Error::other("file name contains NUL"));
    }
    c_name[..name.len()].copy_from_slice(name);
    PARENT.with_borrow_mut(|cached| {
        let dir = match cached {
            Some((dir_path, dir)) if dir_path.as_slice() == parent => &*dir,
            slot => {
                let dir = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
                    .open(std::ffi::OsStr::from_bytes(parent))?;
                &slot.insert((parent.to_vec(), dir)).1
            }
        };
        // SAFETY: dir is an open descriptor and c_name a NUL-terminated
        // string, both valid for the call.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c_name.as_ptr().cast(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        Ok(unsafe { File::from_raw_fd(fd) })
    })
}

/// Reads, chunks and hashes one file, handing the chunks of each read to
/// `sink` as one run of the arena's block.
fn ingest_file(
    sink: &ChunkSink,
    arena: &mut Arena,
    path: &Path,
    expected_size: u64,
    progress: &Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<(Digest, u64, Option<ChunkMap>), ImportError> {
    let chunker = sink.store.chunker;
    let max = chunker.max_size as usize;
    let mut file = open_in_parent(path).map_err(io_err(path))?;
    // File bytes asked for ahead of the reads (see `read_ahead`).
    let mut advised = 0u64;
    // Until where the bytes of this (large) file are asked for ahead of its
    // reads: a stretch past the last read that found bytes missing from the
    // page cache. While reads find every byte there, asking would only walk
    // the cache (see `read_cached`).
    let mut ahead_until = 0u64;
    arena.clear_pending();
    let mut hasher: Option<blake3::Hasher> = None;
    let mut chunks: Vec<ChunkRef> = Vec::new();
    let mut cuts: Vec<usize> = Vec::new();
    let mut digests: Vec<Digest> = Vec::new();
    let mut total = 0u64;
    loop {
        // The rest of the file in one step if it fits, and one byte more
        // to notice a file that grew.
        let remaining = expected_size.saturating_sub(total);
        let want = (remaining.saturating_add(1)).min(READ_STEP as u64) as usize;
        let expected_now = remaining.min(want as u64) as usize;
        arena.reserve(want, &|| sink.flush());
        let buf = &mut arena.spare_mut()[..want];
        let (mut cached, mut complete) = (0, false);
        if expected_size >= READ_AHEAD_FROM {
            let (read, ended) = read_cached(&mut file, buf, expected_now);
            (cached, complete) = (read, ended == CachedRead::Complete);
            let at = total + cached as u64;
            if !complete {
                ahead_until = at.saturating_add(COLD_STRETCH);
            }
            if at < ahead_until {
                advised = advised.max(at);
                let target = at.saturating_add(READ_AHEAD).min(expected_size);
                read_ahead(&file, &mut advised, target);
            }
        }
        let new_bytes = if complete {
            cached
        } else {
            fill_step(buf, cached, expected_now, |rest| file.read(rest))
                .map_err(|(e, _)| e)
                .map_err(io_err(path))?
        };
        arena.fill(new_bytes);
        total += new_bytes as u64;
        if let Some(p) = progress {
            p(new_bytes as u64);
        }
        let at_end = new_bytes < want;
        if total > expected_size || (at_end && total != expected_size) {
            return Err(ImportError::Changed {
                path: path.to_path_buf(),
            });
        }
        // Cut chunks; keep a tail shorter than max_size unless at the end.
        let data = arena.pending();
        cuts.clear();
        let mut pos = 0;
        if at_end && chunks.is_empty() && !data.is_empty() && chunker.keeps_whole(total) {
            pos = data.len();
            cuts.push(pos);
        }
        while pos < data.len() && (at_end || data.len() - pos >= max) {
            pos += chunker.next_cut(&data[pos..]);
            cuts.push(pos);
        }
        let single = at_end && chunks.is_empty() && cuts.len() == 1;
        let hash_chunks = |digests: &mut Vec<Digest>| {
            digests.clear();
            if cuts.len() > 1 {
                (0..cuts.len())
                    .into_par_iter()
                    .map(|i| Digest::of(&data[if i == 0 { 0 } else { cuts[i - 1] }..cuts[i]]))
                    .collect_into_vec(digests);
            } else {
                digests.extend(cuts.first().map(|end| Digest::of(&data[..*end])));
            }
        };
        if single {
            hash_chunks(&mut digests);
        } else {
            // The whole-blob digest alongside the chunks' own.
            let h = hasher.get_or_insert_with(blake3::Hasher::new);
            // A step (READ_STEP, plus less than a chunk carried over) is
            // too small to split the whole-blob hash: one thread hashes it
            // whole while the others hash its chunks.
            rayon::join(
                || hash_chunks(&mut digests),
                || {
                    h.update(&data[..pos]);
                },
            );
        }
        let mut start = 0;
        let first = chunks.len();
        for (end, digest) in cuts.iter().zip(&digests) {
            chunks.push(ChunkRef {
                digest: *digest,
                size: (end - start) as u32,
            });
            start = *end;
        }
        if start > 0 {
            // The step's chunks lie back to back: one run of the block.
            let run = ChunkRun::new(arena.split_run(start), chunks[first..].to_vec()).ok_or_else(
                || ImportError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other("chunks cut past the bytes read"),
                },
            )?;
            sink.put_run(run);
        }
        if at_end {
            if chunks.is_empty() {
                return Ok((Digest::empty(), 0, None));
            }
            if single {
                return Ok((digests[0], total, None));
            }
            let digest = Digest::from(hasher.map(|h| h.finalize()).unwrap_or(blake3::hash(&[])));
            return Ok((digest, total, Some(ChunkMap::new(chunks))));
        }
        if sink.failed.load(Ordering::Relaxed) {
            return Err(ImportError::Cancelled);
        }
    }
}

/// Small files read by one task before their digests are computed
/// together (see [`ingest_small_files`]): enough for every SIMD lane of
/// the hash, few enough bytes to stay in the core's cache.
const GROUP_FILES: usize = 32;
/// The most bytes of small files one group reads.
const GROUP_BYTES: u64 = 512 << 10;

thread_local! {
    /// This thread's hasher of small files, with its working memory.
    static MANY_HASHER: std::cell::RefCell<ManyHasher> =
        std::cell::RefCell::new(ManyHasher::new());
}

/// A file's node in the scan tree, and its digest, size and chunk map (for
/// a file of more than one chunk).
type IngestedFile = (usize, (Digest, u64, Option<ChunkMap>));

/// A file of a group read into the arena: its node, and where its bytes
/// lie among the pending ones.
struct ReadSmall {
    node: usize,
    offset: usize,
    len: usize,
}

/// Reads a group of small files (each stored whole, as one chunk, see
/// [`crate::ChunkerConfig::keeps_whole`]) one after another into the
/// arena, hashes them together ([`ManyHasher::hash_each`]: the files' bytes
/// share the SIMD lanes that one small file leaves mostly idle), and hands
/// their chunks to `sink` as one run. A group whose files do not fit in
/// the rest of the arena's block is hashed and handed on in parts. The
/// digest and size of each file, by its node.
fn ingest_small_files(
    sink: &ChunkSink,
    arena: &mut Arena,
    tree: &ScanTree,
    group: &[usize],
    progress: &Option<Arc<dyn Fn(u64) + Send + Sync>>,
    out: &mut Vec<IngestedFile>,
) -> Result<(), ImportError> {
    arena.clear_pending();
    let mut read: Vec<ReadSmall> = Vec::with_capacity(group.len());
    let mut waiting: Vec<WaitingFile> = Vec::new();
    for &node in group {
        let Scanned::File { path, size, .. } = &tree.nodes[node] else {
            return Err(ImportError::Cancelled);
        };
        let size = *size as usize;
        // The whole file, and one byte more to notice a file that grew.
        let want = size.saturating_add(1);
        if !read.is_empty() && !arena.has_room(want) {
            finish_waiting_files(arena, tree, &read, &mut waiting, progress)?;
            hand_on_small_files(sink, arena, &mut read, out)?;
        }
        let mut file = open_in_parent(path).map_err(io_err(path))?;
        arena.reserve(want, &|| sink.flush());
        let offset = arena.pending().len();
        let buf = &mut arena.spare_mut()[..want];
        let waits_before = waiting.len();
        let got = if sink.nowait_refused.load(Ordering::Relaxed) {
            read_step(&mut file, buf, size).map_err(io_err(path))?
        } else {
            match read_cached(&mut file, buf, size) {
                (got, CachedRead::Complete) => got,
                (filled, ended) => {
                    if ended == CachedRead::Refused {
                        sink.nowait_refused.store(true, Ordering::Relaxed);
                    } else {
                        // The rest of the file is asked for now and read
                        // after the group's other files: the pages of the
                        // group's files missing from the cache are read
                        // from the disk together, not one file after
                        // another while the reader waits for each.
                        read_ahead(&file, &mut (filled as u64), size as u64);
                    }
                    waiting.push(WaitingFile {
                        read_at: read.len(),
                        file,
                        filled,
                    });
                    // Its room, filled in by `finish_waiting_files`.
                    size
                }
            }
        };
        arena.fill(got);
        if got != size {
            return Err(ImportError::Changed { path: path.clone() });
        }
        // A waiting file is counted once it is read.
        if waiting.len() == waits_before
            && let Some(p) = progress
        {
            p(got as u64);
        }
        read.push(ReadSmall {
            node,
            offset,
            len: got,
        });
    }
    finish_waiting_files(arena, tree, &read, &mut waiting, progress)?;
    hand_on_small_files(sink, arena, &mut read, out)?;
    if sink.failed.load(Ordering::Relaxed) {
        return Err(ImportError::Cancelled);
    }
    Ok(())
}

/// A small file whose bytes were not all in the page cache when its group
/// was read: open, its room in the arena set aside, read after the rest.
struct WaitingFile {
    /// Its place in the group's [`ReadSmall`] list.
    read_at: usize,
    file: File,
    /// Bytes of it read already.
    filled: usize,
}

/// Reads the rest of each waiting file into its room, waiting for the disk
/// now, and checks that each ends where the scan said.
fn finish_waiting_files(
    arena: &mut Arena,
    tree: &ScanTree,
    read: &[ReadSmall],
    waiting: &mut Vec<WaitingFile>,
    progress: &Option<Arc<dyn Fn(u64) + Send + Sync>>,
) -> Result<(), ImportError> {
    for WaitingFile {
        read_at,
        mut file,
        filled,
    } in waiting.drain(..)
    {
        let small = &read[read_at];
        let Scanned::File { path, .. } = &tree.nodes[small.node] else {
            return Err(ImportError::Cancelled);
        };
        let room = arena
            .pending_mut()
            .get_mut(small.offset..small.offset + small.len)
            .ok_or(ImportError::Cancelled)?;
        let got = fill_step(room, filled, small.len, |rest| file.read(rest))
            .map_err(|(e, _)| e)
            .map_err(io_err(path))?;
        // One byte more than the scan saw would be a file that grew.
        let mut beyond = [0u8; 1];
        let more = read_step(&mut file, &mut beyond, 0).map_err(io_err(path))?;
        if got != small.len || more != 0 {
            return Err(ImportError::Changed { path: path.clone() });
        }
        if let Some(p) = progress {
            p(got as u64);
        }
    }
    Ok(())
}

/// Hashes the small files `read` holds (all of the arena's pending bytes,
/// back to back), hands them to `sink` as one run, and records their
/// digests in `out`.
fn hand_on_small_files(
    sink: &ChunkSink,
    arena: &mut Arena,
    read: &mut Vec<ReadSmall>,
    out: &mut Vec<IngestedFile>,
) -> Result<(), ImportError> {
    if read.is_empty() {
        return Ok(());
    }
    let data = arena.pending();
    let inputs: Vec<&[u8]> = read
        .iter()
        .map(|file| &data[file.offset..file.offset + file.len])
        .collect();
    let mut digests = Vec::with_capacity(read.len());
    MANY_HASHER.with_borrow_mut(|hasher| hasher.hash_each(&inputs, &mut digests));
    let mut chunks = Vec::with_capacity(read.len());
    for (file, digest) in read.iter().zip(&digests) {
        out.push((file.node, (*digest, file.len as u64, None)));
        if file.len > 0 {
            chunks.push(ChunkRef {
                digest: *digest,
                size: file.len as u32,
            });
        }
    }
    let total = data.len();
    read.clear();
    if !chunks.is_empty() {
        let run = ChunkRun::new(arena.split_run(total), chunks).ok_or_else(|| ImportError::Io {
            path: PathBuf::from("<small files>"),
            source: std::io::Error::other("chunks past the bytes read"),
        })?;
        sink.put_run(run);
    } else {
        arena.clear_pending();
    }
    Ok(())
}

/// What one task of the blob phase reads: a large file, or a group of
/// consecutive small ones.
enum Work<'a> {
    Large(usize),
    Small(&'a [usize]),
}

/// `files` (in reading order) as tasks: each large file alone, the small
/// files between them in groups of at most [`GROUP_FILES`] files and
/// [`GROUP_BYTES`] bytes.
fn group_small_files<'a>(
    files: &'a [usize],
    nodes: &[Scanned],
    chunker: crate::ChunkerConfig,
) -> Vec<Work<'a>> {
    let size_of = |i: usize| match &nodes[i] {
        Scanned::File { size, .. } => *size,
        _ => 0,
    };
    let mut work = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (at, &file) in files.iter().enumerate() {
        let size = size_of(file);
        if !chunker.keeps_whole(size) {
            if start < at {
                work.push(Work::Small(&files[start..at]));
            }
            work.push(Work::Large(file));
            start = at + 1;
            bytes = 0;
            continue;
        }
        if at > start && (at - start >= GROUP_FILES || bytes + size > GROUP_BYTES) {
            work.push(Work::Small(&files[start..at]));
            start = at;
            bytes = 0;
        }
        bytes += size;
    }
    if start < files.len() {
        work.push(Work::Small(&files[start..]));
    }
    work
}

/// Files at least this large are spread out among the others (see
/// [`spread_large_files`]).
const SPREAD_FROM: u64 = 4 << 20;

/// The files of a scanned tree, in the order they are read: the tree's,
/// except that files of [`SPREAD_FROM`] or more are spread evenly among the
/// others. Large files give the disk more bytes per second of CPU than
/// small ones (which cost an open, a close and a lookup each): read one
/// after another, they would leave readers waiting for the disk and then
/// the disk waiting for readers. Mixed, the writes stay even from the first
/// file to the last.
fn spread_large_files(nodes: &[Scanned]) -> Vec<usize> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if let Scanned::File { size, .. } = node {
            if *size >= SPREAD_FROM {
                large.push(i);
            } else {
                small.push(i);
            }
        }
    }
    if large.is_empty() || small.is_empty() {
        small.extend(large);
        return small;
    }
    // Large file k goes after the first (k + 1/2) / large.len() of the
    // small files.
    let mut files = Vec::with_capacity(small.len() + large.len());
    let mut small_files = small.into_iter();
    let small_count = small_files.len();
    let large_count = large.len();
    for (k, file) in large.into_iter().enumerate() {
        let before = (2 * k + 1) * small_count / (2 * large_count);
        while files.len() - k < before {
            match small_files.next() {
                Some(small_file) => files.push(small_file),
                None => break,
            }
        }
        files.push(file);
    }
    files.extend(small_files);
    files
}

/// The results of the blob phase's tasks, or the error that stopped it:
/// the first error that is not [`ImportError::Cancelled`]. Once one task
/// fails, the others stop with `Cancelled`, and one of those may come
/// first in the list.
fn first_cause<T>(results: Vec<Result<T, ImportError>>) -> Result<Vec<T>, ImportError> {
    let mut cancelled = None;
    let mut done = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(value) => done.push(value),
            Err(ImportError::Cancelled) => cancelled = Some(ImportError::Cancelled),
            Err(cause) => return Err(cause),
        }
    }
    match cancelled {
        Some(cancelled) => Err(cancelled),
        None => Ok(done),
    }
}

/// What the import built from the files' digests: the roots' nodes, the
/// chunk maps of files of more than one chunk (by node), and the
/// directories, each after its subdirectories.
struct Built {
    roots: Vec<Node>,
    maps: Vec<(usize, Digest, ChunkMap)>,
    dirs: Vec<Directory>,
}

/// No parent: the node is a root.
const NO_PARENT: usize = usize::MAX;

/// The directories of a tree, built while its files are read: a directory
/// is built (its entries sorted, encoded and hashed) as soon as the last of
/// its files and subdirectories is done, by the reader that finished that
/// one, so the end of an import has no tree left to build. Nothing is
/// stored here: the directories wait for the import to store them.
struct DirectoryAssembly {
    /// Each node's directory, or [`NO_PARENT`].
    parents: Vec<usize>,
    /// For each directory, its files and subdirectories not done yet.
    remaining: Vec<AtomicUsize>,
    /// Each node, once done.
    nodes: Vec<OnceLock<Node>>,
    /// The directories built, each after its subdirectories.
    built: Mutex<Vec<Directory>>,
    /// Why a directory could not be built, if one could not.
    failed: Mutex<Option<ImportError>>,
}

impl DirectoryAssembly {
    /// The assembly of `tree`, with its symlinks done and the directories
    /// that wait for no file (empty, or holding only symlinks) built.
    fn new(tree: &ScanTree) -> DirectoryAssembly {
        let is_link = |i: usize| matches!(tree.nodes[i], Scanned::Symlink(_));
        let mut parents = vec![NO_PARENT; tree.nodes.len()];
        let mut remaining = Vec::with_capacity(tree.nodes.len());
        for (i, scanned) in tree.nodes.iter().enumerate() {
            let waits_for = match scanned {
                Scanned::Dir { children, .. } => {
                    for (_, child) in children {
                        parents[*child] = i;
                    }
                    children.iter().filter(|(_, c)| !is_link(*c)).count()
                }
                _ => 0,
            };
            remaining.push(AtomicUsize::new(waits_for));
        }
        let nodes: Vec<OnceLock<Node>> = tree
            .nodes
            .iter()
            .map(|scanned| match scanned {
                Scanned::Symlink(target) => OnceLock::from(Node::Symlink {
                    target: target.clone(),
                }),
                _ => OnceLock::new(),
            })
            .collect();
        let assembly = DirectoryAssembly {
            parents,
            remaining,
            nodes,
            built: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
        };
        for (i, scanned) in tree.nodes.iter().enumerate() {
            if let Scanned::Dir { children, .. } = scanned
                && children.iter().all(|(_, c)| is_link(*c))
            {
                assembly.build(tree, i);
            }
        }
        assembly
    }

    /// Records file `i` as read, with the digest and size it was stored
    /// with, and builds every directory that completes.
    fn file_done(&self, tree: &ScanTree, i: usize, digest: Digest, size: u64) {
        let executable = matches!(
            tree.nodes[i],
            Scanned::File {
                executable: true,
                ..
            }
        );
        let _ = self.nodes[i].set(Node::File {
            digest,
            size,
            executable,
        });
        if self.last_of_its_directory(i) {
            self.build(tree, self.parents[i]);
        }
    }

    /// Whether node `i` is the last its directory waited for.
    fn last_of_its_directory(&self, i: usize) -> bool {
        let parent = self.parents[i];
        // Each child's node is set before its count goes, and the count
        // that reaches zero sees every one of them.
        parent != NO_PARENT && self.remaining[parent].fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Builds directory `i`, whose children are all done, then each
    /// directory above it that this completes.
    fn build(&self, tree: &ScanTree, mut i: usize) {
        loop {
            let Scanned::Dir { path, children, .. } = &tree.nodes[i] else {
                return;
            };
            let entries: Option<Vec<(Name, Node)>> = children
                .iter()
                .map(|(name, c)| {
                    self.nodes[*c]
                        .get()
                        .map(|node| (name.clone(), node.clone()))
                })
                .collect();
            let built = entries.ok_or(ImportError::Cancelled).and_then(|entries| {
                Directory::from_entries(entries).map_err(|e| ImportError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })
            });
            let dir = match built {
                Ok(dir) => dir,
                Err(e) => {
                    lock(&self.failed).get_or_insert(e);
                    return;
                }
            };
            let _ = self.nodes[i].set(dir.node());
            lock(&self.built).push(dir);
            if !self.last_of_its_directory(i) {
                return;
            }
            i = self.parents[i];
        }
    }

    /// The roots, chunk maps and directories, once every file is done
    /// (`ingested` are the readers' results).
    fn finish(
        &self,
        tree: &ScanTree,
        ingested: Vec<Vec<IngestedFile>>,
    ) -> Result<Built, ImportError> {
        if let Some(e) = lock(&self.failed).take() {
            return Err(e);
        }
        let maps = ingested
            .into_iter()
            .flatten()
            .filter_map(|(i, (digest, _, map))| map.map(|map| (i, digest, map)))
            .collect();
        let roots = tree
            .roots
            .iter()
            .map(|r| self.nodes[*r].get().cloned().ok_or(ImportError::Cancelled))
            .collect::<Result<_, _>>()?;
        let dirs = std::mem::take(&mut *lock(&self.built));
        Ok(Built { roots, maps, dirs })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Imports `paths` into `store`, returning one root node per path.
pub async fn import_paths(
    store: &CaStore,
    paths: &[PathBuf],
    options: ImportOptions,
) -> Result<Vec<Node>, ImportError> {
    let scan_paths = paths.to_vec();
    let tree = tokio::task::spawn_blocking(move || scan(&scan_paths))
        .await
        .map_err(|_| ImportError::Cancelled)??;
    import_scanned(store, tree, options).await
}

/// Imports a tree produced by [`scan`].
pub async fn import_scanned(
    store: &CaStore,
    tree: ScanTree,
    options: ImportOptions,
) -> Result<Vec<Node>, ImportError> {
    let started = std::time::Instant::now();
    let tree = Arc::new(tree);
    let sink = Arc::new(ChunkSink {
        store: store.clone(),
        handle: Handle::current(),
        budget: Arc::new(ByteBudget {
            available: Mutex::new(options.max_bytes_in_flight),
            freed: Condvar::new(),
            limit: options.max_bytes_in_flight,
            waited_ns: Default::default(),
        }),
        arenas: Mutex::new(Vec::new()),
        // Each reader's current block, and a few on their way to the store.
        blocks: BlockPool::new(
            BLOCK_SIZE,
            rayon::current_num_threads() + READ_BLOCKS_IN_FLIGHT,
        ),
        pending: Mutex::new(PendingPuts::default()),
        tasks: Mutex::new(Vec::new()),
        failed: AtomicBool::new(false),
        nowait_refused: AtomicBool::new(false),
    });

    // Phase 2: blobs.
    let files = spread_large_files(&tree.nodes);
    let assembly = Arc::new(DirectoryAssembly::new(&tree));
    let (sink2, progress, tree2) = (sink.clone(), options.progress.clone(), tree.clone());
    let assembly2 = assembly.clone();
    let chunker = store.chunker;
    let results = tokio::task::spawn_blocking(move || {
        let work = group_small_files(&files, &tree2.nodes, chunker);
        let results = work
            .par_iter()
            .map(|work| {
                let arena = sink2.arenas.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let mut arena = arena.unwrap_or_else(|| Arena::new(sink2.blocks.clone()));
                let mut done = Vec::new();
                let r = match *work {
                    Work::Large(i) => match &tree2.nodes[i] {
                        Scanned::File { path, size, .. } => {
                            ingest_file(&sink2, &mut arena, path, *size, &progress)
                                .map(|v| done.push((i, v)))
                        }
                        _ => Err(ImportError::Cancelled),
                    },
                    Work::Small(group) => {
                        ingest_small_files(&sink2, &mut arena, &tree2, group, &progress, &mut done)
                    }
                };
                arena.clear_pending();
                sink2
                    .arenas
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(arena);
                if r.is_err() {
                    sink2.failed.store(true, Ordering::Relaxed);
                } else {
                    for (i, (digest, size, _)) in &done {
                        assembly2.file_done(&tree2, *i, *digest, *size);
                    }
                }
                r.map(|()| done)
            })
            .collect::<Vec<_>>();
        sink2.flush();
        // Close the directories the readers kept open.
        rayon::broadcast(|_| PARENT.take());
        sink2
            .arenas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        results
    })
    .await
    .map_err(|_| ImportError::Cancelled)?;
    // The store tasks still write the last runs. Meanwhile the store may
    // commit what it has deferred (the directories were built as their
    // files were read); the store's work is awaited before anything that
    // names its chunks is put.
    tracing::info!(elapsed = ?started.elapsed(), "import: files read");
    store.blobs.chunks().puts_paused().await;
    let tasks = std::mem::take(&mut *sink.tasks.lock().unwrap_or_else(|p| p.into_inner()));
    let stored = tokio::spawn(async move {
        let mut first_store_error = None;
        for task in tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_store_error.get_or_insert(e);
                }
                Err(e) => {
                    first_store_error.get_or_insert(BlobError::Io(std::io::Error::other(e)));
                }
            }
        }
        tracing::info!(elapsed = ?started.elapsed(), "import: store tasks done");
        first_store_error
    });
    let built = first_cause(results).and_then(|results| assembly.finish(&tree, results));
    let first_store_error = stored.await.map_err(|_| ImportError::Cancelled)?;
    let waited = std::time::Duration::from_nanos(sink.budget.waited_ns.load(Ordering::Relaxed));
    tracing::info!(
        elapsed = ?started.elapsed(),
        readers_waited = ?waited,
        readers_waited_for_blocks = ?sink.blocks.waited(),
        "import: blobs stored"
    );
    let Built { roots, maps, dirs } = built?;
    if let Some(source) = first_store_error {
        return Err(ImportError::Blob {
            path: PathBuf::from("<store>"),
            source,
        });
    }
    let map_puts = maps.into_iter().map(|(i, digest, map)| {
        let blobs = store.blobs.clone();
        let tree = tree.clone();
        async move {
            blobs
                .put_chunk_map(digest, &map)
                .await
                .map_err(|source| ImportError::Blob {
                    path: match &tree.nodes[i] {
                        Scanned::File { path, .. } => path.clone(),
                        _ => PathBuf::new(),
                    },
                    source,
                })
        }
    });
    // The packs are synced while the chunk maps and directories are
    // committed: the maps before the directories that name their blobs.
    let blobs = store.blobs.clone();
    let chunks_synced = tokio::spawn(async move { blobs.chunks().flush().await });
    for r in futures::future::join_all(map_puts).await {
        r?;
    }
    tracing::info!(elapsed = ?started.elapsed(), "import: chunk maps stored");
    // The sync after the directories makes them durable too.
    store.directories.put_tree(&dirs).await?;
    tracing::info!(elapsed = ?started.elapsed(), "import: directories stored");
    chunks_synced
        .await
        .map_err(|_| ImportError::Cancelled)?
        .map_err(|e| ImportError::Blob {
            path: PathBuf::from("<store>"),
            source: e.into(),
        })?;
    store.directories.flush().await?;
    tracing::info!(elapsed = ?started.elapsed(), "import: synced");
    // Freeing the scan tree, the nodes and the directories (a few
    // allocations per file) takes milliseconds the caller need not wait.
    rayon::spawn(move || drop((tree, assembly, dirs, sink)));
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_open_relative_to_their_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        for (name, content) in [("a", "first"), ("b", "second")] {
            std::fs::write(dir.join(name), content).unwrap();
        }
        std::fs::write(tmp.path().join("c"), "third").unwrap();
        std::os::unix::fs::symlink("a", dir.join("link")).unwrap();
        // Two files of one directory (the second through the kept one),
        // one of another, then the first directory again.
        for (path, content) in [
            (dir.join("a"), "first"),
            (dir.join("b"), "second"),
            (tmp.path().join("c"), "third"),
            (dir.join("b"), "second"),
        ] {
            let mut read = String::new();
            open_in_parent(&path)
                .unwrap()
                .read_to_string(&mut read)
                .unwrap();
            assert_eq!(read, content, "{}", path.display());
        }
        // A link is not followed; a missing file is an error.
        let err = open_in_parent(&dir.join("link")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        assert!(open_in_parent(&dir.join("missing")).is_err());
        // Paths without a usable last name go to the plain open.
        assert!(open_in_parent(&dir.join(".")).is_ok());
        assert!(open_in_parent(Path::new("/")).is_ok());
    }

    fn file(size: u64) -> Scanned {
        Scanned::File {
            path: PathBuf::from("f"),
            size,
            executable: false,
        }
    }

    #[test]
    fn small_files_are_grouped_and_large_ones_read_alone() {
        let chunker = crate::ChunkerConfig::default();
        let whole = u64::from(chunker.avg_size);
        let sizes = [
            10,
            whole,
            whole + 1,
            0,
            5,
            SPREAD_FROM,
            whole,
            whole,
            whole,
            whole,
            whole,
            whole,
            whole,
            whole,
            1,
        ];
        let mut nodes: Vec<Scanned> = sizes.iter().map(|s| file(*s)).collect();
        nodes.extend((0..70).map(|_| file(100)));
        let files: Vec<usize> = (0..nodes.len()).collect();
        let work = group_small_files(&files, &nodes, chunker);
        let mut seen = Vec::new();
        for item in &work {
            match item {
                Work::Large(i) => {
                    assert!(!chunker.keeps_whole(sizes[*i]), "{i} read alone");
                    seen.push(*i);
                }
                Work::Small(group) => {
                    assert!(!group.is_empty() && group.len() <= GROUP_FILES);
                    let bytes: u64 = group
                        .iter()
                        .map(|&i| match &nodes[i] {
                            Scanned::File { size, .. } => *size,
                            _ => 0,
                        })
                        .sum();
                    assert!(bytes <= GROUP_BYTES || group.len() == 1, "{group:?}");
                    for &i in *group {
                        assert!(i >= sizes.len() || chunker.keeps_whole(sizes[i]));
                    }
                    seen.extend_from_slice(group);
                }
            }
        }
        // Every file once, in reading order.
        assert_eq!(seen, files);
        // Eight files of the largest size stored whole fill one group's
        // bytes: the file after them starts another.
        assert_eq!(GROUP_BYTES, 8 * whole);
        let full: Vec<usize> = (6..14).collect();
        assert!(
            work.iter()
                .any(|w| matches!(w, Work::Small(g) if *g == full.as_slice()))
        );
    }

    #[test]
    fn large_files_are_spread_among_the_small_ones_and_none_is_lost() {
        let large = SPREAD_FROM;
        for (small_count, large_count) in [(0, 3), (5, 0), (1, 1), (10, 2), (1000, 8), (3, 7)] {
            // Large files first, as a tree that sorts them first holds them,
            // with a symlink among them that is no file.
            let mut nodes: Vec<Scanned> = (0..large_count).map(|_| file(large)).collect();
            nodes.push(Scanned::Symlink(
                SymlinkTarget::new(Bytes::from_static(b"t")).unwrap(),
            ));
            nodes.extend((0..small_count).map(|i| file(i as u64)));
            let order = spread_large_files(&nodes);

            let mut sorted = order.clone();
            sorted.sort_unstable();
            let files: Vec<usize> = (0..nodes.len()).filter(|&i| i != large_count).collect();
            assert_eq!(sorted, files, "{small_count} small, {large_count} large");

            // Small files keep their order.
            let small_order: Vec<usize> =
                order.iter().copied().filter(|&i| i > large_count).collect();
            assert!(small_order.is_sorted());

            // Between two large files, and before the first, lie about
            // small_count / large_count small ones.
            if small_count >= large_count && large_count > 0 {
                let places: Vec<usize> = order
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| **i < large_count)
                    .map(|(place, _)| place)
                    .collect();
                let share = small_count / large_count;
                assert!(
                    places[0] >= share / 2 && places[0] <= share / 2 + 1,
                    "{places:?}"
                );
                for pair in places.windows(2) {
                    let between = pair[1] - pair[0] - 1;
                    assert!(between + 1 >= share && between <= share + 1, "{places:?}");
                }
            }
        }
    }
}
