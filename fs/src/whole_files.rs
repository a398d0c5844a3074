//! Whole-file copies of large blobs on local disk, for FUSE passthrough.
//!
//! The kernel caches a FUSE file in 4 KiB pages (kernel 6.18 gives FUSE no
//! large folios), so even a warm read of a mounted file costs more than the
//! same read of a local file, which the kernel caches in large folios. FUSE
//! passthrough (kernel 6.9+) lets the kernel read a local file directly
//! instead, but only a file whose bytes are the whole blob at the same
//! offsets; chunks in packs are not that.
//!
//! [`WholeFiles`] keeps such copies in one directory, named by blob digest.
//! A blob of at least [`WholeFilesOptions::min_size`] bytes that has been
//! opened [`WholeFilesOptions::after_opens`] times by this process, or that
//! an earlier process opened (an empty marker in `seen/` remembers it across
//! restarts: a microVM booted again opens its files once per boot), is
//! written out by one background thread: chunk by chunk through the chunk cache (each chunk
//! verified against its digest, as every read is), into a temporary file
//! that is flushed to disk and only then renamed into place, so a crash
//! leaves either no copy or a whole one (temporary files of processes that
//! died are removed when the directory is next opened). The copies together stay within
//! [`WholeFilesOptions::max_bytes`]: the least recently opened ones are
//! removed to make room (a file open in passthrough keeps its copy alive
//! until closed). Copies are read by the kernel as they are, without a
//! second verification.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::SystemTime;

use cairn_castore::{ChunkMap, Digest};
use futures::StreamExt;
use tokio::runtime::Handle;

use crate::FsError;
use crate::reader::ChunkCache;

/// Prefix of copies being written; left over ones are removed at start.
const TEMP_PREFIX: &str = ".tmp-";

/// Subdirectory of the markers of blobs opened before.
const SEEN_DIR: &str = "seen";

/// Copies waiting to be written at most; further requests are dropped
/// (the blob's next opens ask again).
const QUEUE_DEPTH: usize = 64;

/// Bytes per write of a copy (the largest folio the page cache makes).
const WRITE_BLOCK: usize = 2 << 20;

/// Chunks fetched ahead while a copy is written.
const FETCH_AHEAD: usize = 16;

/// Open counts remembered at most before they are forgotten all at once.
const MAX_TRACKED_BLOBS: usize = 1 << 16;

/// Where copies live and which blobs get one.
#[derive(Debug, Clone)]
pub struct WholeFilesOptions {
    /// Directory of the copies (created if missing). Must be on a local
    /// filesystem that FUSE passthrough accepts as a backing file's home
    /// (not another FUSE mount).
    pub dir: PathBuf,
    /// Bytes of copies kept at most.
    pub max_bytes: u64,
    /// Blobs smaller than this are never copied.
    pub min_size: u64,
    /// Opens of a blob (in this process) before its copy is written.
    pub after_opens: u32,
}

impl WholeFilesOptions {
    /// Defaults for copies in `dir`: up to 4 GiB, blobs of 1 MiB or more,
    /// written on the second open.
    pub fn in_dir(dir: PathBuf) -> WholeFilesOptions {
        WholeFilesOptions {
            dir,
            max_bytes: 4 << 30,
            min_size: 1 << 20,
            after_opens: 2,
        }
    }
}

struct CopyRequest {
    blob: Digest,
    map: Arc<ChunkMap>,
    chunks: Arc<ChunkCache>,
    runtime: Handle,
}

#[derive(Default)]
struct State {
    opens: HashMap<Digest, u32>,
    /// Queued or being written.
    pending: HashSet<Digest>,
}

/// The directory of whole-file copies and the thread that writes them.
pub struct WholeFiles {
    options: WholeFilesOptions,
    state: Mutex<State>,
    /// Signalled whenever a queued copy is done (written or not).
    settled: Condvar,
    queue: SyncSender<CopyRequest>,
    written: AtomicU64,
    failed: AtomicU64,
}

/// A temporary copy whose writer (named by the pid after its last `-`) is
/// gone: left by a process that died while writing it.
fn is_abandoned_temp(name: &std::ffi::OsStr) -> bool {
    let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
        return false;
    };
    match rest
        .rsplit_once('-')
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
    {
        Some(pid) if pid != std::process::id() => {
            !Path::new("/proc").join(pid.to_string()).exists()
        }
        _ => true,
    }
}

impl std::fmt::Debug for WholeFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WholeFiles")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, err: std::io::Error) -> FsError {
    FsError::WholeFile {
        path: path.display().to_string(),
        source: Arc::new(err),
    }
}

impl WholeFiles {
    /// Opens (creating) the directory, removes copies left half-written by
    /// an earlier process, and starts the writer thread.
    pub fn new(options: WholeFilesOptions) -> Result<Arc<WholeFiles>, FsError> {
        let seen = options.dir.join(SEEN_DIR);
        std::fs::create_dir_all(&seen).map_err(|e| io_error(&seen, e))?;
        let entries = std::fs::read_dir(&options.dir).map_err(|e| io_error(&options.dir, e))?;
        for entry in entries.flatten() {
            if is_abandoned_temp(&entry.file_name()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let (queue, requests) = std::sync::mpsc::sync_channel(QUEUE_DEPTH);
        let files = Arc::new(WholeFiles {
            options,
            state: Mutex::new(State::default()),
            settled: Condvar::new(),
            queue,
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&files);
        std::thread::Builder::new()
            .name("cairn-whole-files".to_owned())
            .spawn(move || writer_loop(weak, requests))
            .map_err(|e| FsError::Runtime(format!("starting the whole-file writer: {e}")))?;
        Ok(files)
    }

    pub fn options(&self) -> &WholeFilesOptions {
        &self.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, blob: &Digest) -> PathBuf {
        self.options.dir.join(blob.to_hex())
    }

    fn marker_of(&self, blob: &Digest) -> PathBuf {
        self.options.dir.join(SEEN_DIR).join(blob.to_hex())
    }

    /// Whether an earlier process opened `blob`; marks it opened if not.
    fn seen_before(&self, blob: &Digest) -> bool {
        let marker = self.marker_of(blob);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&marker)
        {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
            Err(e) => {
                tracing::debug!(marker = %marker.display(), error = %e, "marking a blob opened");
                false
            }
        }
    }

    /// Whether blobs of `size` bytes get copies.
    pub fn eligible(&self, size: u64) -> bool {
        size >= self.options.min_size && size <= self.options.max_bytes
    }

    /// The whole copy of `blob` (of `size` bytes), opened for reading, if
    /// there is one. Marks it as recently used.
    pub fn open_copy(&self, blob: &Digest, size: u64) -> Option<File> {
        if !self.eligible(size) {
            return None;
        }
        let file = File::open(self.path_of(blob)).ok()?;
        match file.metadata() {
            Ok(meta) if meta.is_file() && meta.len() == size => {}
            _ => return None,
        }
        let _ = file.set_modified(SystemTime::now());
        Some(file)
    }

    /// Records an open of `blob`; once it has been opened often enough and
    /// has no copy, queues the copy to be written in the background.
    pub fn note_open(
        &self,
        blob: Digest,
        map: &Arc<ChunkMap>,
        chunks: &Arc<ChunkCache>,
        runtime: &Handle,
    ) {
        if !self.eligible(map.blob_size()) {
            return;
        }
        {
            let mut state = self.lock();
            if state.pending.contains(&blob) {
                return;
            }
            if state.opens.len() >= MAX_TRACKED_BLOBS {
                state.opens.clear();
            }
            let opens = state.opens.entry(blob).or_insert(0);
            *opens += 1;
            let first = *opens == 1;
            if *opens < self.options.after_opens && !(first && self.seen_before(&blob)) {
                return;
            }
            state.opens.remove(&blob);
            state.pending.insert(blob);
        }
        let request = CopyRequest {
            blob,
            map: map.clone(),
            chunks: chunks.clone(),
            runtime: runtime.clone(),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(request)
        {
            self.lock().pending.remove(&blob);
            self.settled.notify_all();
        }
    }

    /// Waits until no copy is queued or being written, for at most
    /// `timeout`; returns whether that is the case (a daemon about to exit
    /// lets the copies it started finish).
    pub fn wait_idle(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.lock();
        while !state.pending.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.settled.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Copies written so far by this process.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Copies that could not be written (a chunk failing verification, a
    /// backend error, a full disk).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Writes the copy of `request.blob` unless it exists.
    fn write_copy(&self, request: &CopyRequest) -> Result<bool, FsError> {
        let blob = request.blob;
        let size = request.map.blob_size();
        let target = self.path_of(&blob);
        if self.open_copy(&blob, size).is_some() {
            return Ok(false);
        }
        self.make_room(size)?;
        let temp = self.options.dir.join(format!(
            "{TEMP_PREFIX}{}-{}",
            blob.to_hex(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o444)
            .open(&temp)
            .map_err(|e| io_error(&temp, e))?;
        // Written in aligned blocks of WRITE_BLOCK bytes: the page cache
        // then holds the copy in large folios, which later reads copy out
        // of fastest (chunk-sized writes leave 4 to 128 KiB folios).
        let mut file = BufWriter::with_capacity(WRITE_BLOCK, file);
        let filled = request.runtime.block_on(async {
            let mut chunks = futures::stream::iter(request.map.chunks().iter().copied())
                .map(|chunk| request.chunks.chunk(blob, chunk))
                .buffered(FETCH_AHEAD);
            let mut written = 0u64;
            while let Some(data) = chunks.next().await {
                let data = data?;
                file.write_all(&data).map_err(|e| io_error(&temp, e))?;
                written += data.len() as u64;
            }
            Ok::<u64, FsError>(written)
        });
        let finished = filled.and_then(|written| {
            if written != size {
                return Err(io_error(
                    &temp,
                    std::io::Error::other(format!("wrote {written} bytes of {size}")),
                ));
            }
            let file = file
                .into_inner()
                .map_err(|e| io_error(&temp, e.into_error()))?;
            file.sync_data().map_err(|e| io_error(&temp, e))?;
            std::fs::rename(&temp, &target).map_err(|e| io_error(&target, e))?;
            let _ = std::fs::remove_file(self.marker_of(&blob));
            Ok(())
        });
        if let Err(e) = finished {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok(true)
    }

    /// Removes the least recently used copies until `incoming` more bytes
    /// fit within the bound.
    fn make_room(&self, incoming: u64) -> Result<(), FsError> {
        let dir = &self.options.dir;
        let mut copies: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(dir)
            .map_err(|e| io_error(dir, e))?
            .flatten()
            .filter(|e| {
                !e.file_name()
                    .as_encoded_bytes()
                    .starts_with(TEMP_PREFIX.as_bytes())
            })
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = copies.iter().map(|c| c.1).sum();
        copies.sort();
        for (_, len, path) in copies {
            if total.saturating_add(incoming) <= self.options.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                tracing::debug!(copy = %path.display(), "whole-file copy evicted");
            }
        }
        Ok(())
    }
}

/// Niceness of the writer thread: copies are background work, and must not
/// take CPU from the reads being served (they fetch and verify every chunk
/// of the file once more, unless it is still cached).
const WRITER_NICENESS: i32 = 10;

/// What [`verify_copies`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopyCheck {
    /// Copies whose bytes hash to the digest they are named by.
    pub good: u64,
    /// Copies that did not (removed), or could not be read.
    pub bad: Vec<PathBuf>,
}

/// Hashes every whole-file copy in `dir` (a copy is named by its blob's
/// digest, the BLAKE3 of its whole content) and removes those that differ.
/// A directory that does not exist holds no copies.
pub fn verify_copies(dir: &Path) -> Result<CopyCheck, FsError> {
    let mut check = CopyCheck::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(check),
        Err(e) => return Err(io_error(dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Some(expected) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<Digest>().ok())
        else {
            continue;
        };
        let mut hasher = blake3::Hasher::new();
        let hashed = File::open(&path).and_then(|file| {
            hasher
                .update_reader(file)
                .map(|h| Digest::from(h.finalize()))
        });
        if hashed.is_ok_and(|d| d == expected) {
            check.good += 1;
        } else {
            let _ = std::fs::remove_file(&path);
            check.bad.push(path);
        }
    }
    Ok(check)
}

fn writer_loop(files: std::sync::Weak<WholeFiles>, requests: Receiver<CopyRequest>) {
    // SAFETY: gettid has no preconditions; setpriority on this thread's id
    // changes only this thread's niceness.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, WRITER_NICENESS) != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "lowering the copy writer's priority");
        }
    }
    while let Ok(request) = requests.recv() {
        let Some(files) = files.upgrade() else {
            return;
        };
        let span = tracing::debug_span!("whole_file_copy", blob = %request.blob);
        let _entered = span.enter();
        match files.write_copy(&request) {
            Ok(true) => {
                files.written.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(bytes = request.map.blob_size(), "whole-file copy written");
            }
            Ok(false) => {}
            Err(e) => {
                files.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(blob = %request.blob, error = %e, "whole-file copy not written");
            }
        }
        files.lock().pending.remove(&request.blob);
        files.settled.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_writers_are_abandoned() {
        let ours = format!("{TEMP_PREFIX}abc-{}", std::process::id());
        assert!(is_abandoned_temp(ours.as_ref()));
        // pid 1 is alive wherever this runs.
        assert!(!is_abandoned_temp(format!("{TEMP_PREFIX}abc-1").as_ref()));
        assert!(is_abandoned_temp(
            format!("{TEMP_PREFIX}abc-4000000000").as_ref()
        ));
        assert!(is_abandoned_temp(format!("{TEMP_PREFIX}garbage").as_ref()));
        assert!(!is_abandoned_temp("0123abcd".as_ref()));
    }
}
