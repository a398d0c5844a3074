//! Appending chunk bytes to this process's pack files.
//!
//! A put hands its bytes to a gathering batch and waits. One writer thread
//! per store writes whatever has gathered while its previous write ran, in
//! one vectored write, and passes the written batch to a completion thread,
//! which hands the chunks' index entries to the committer (which commits
//! them before anything handed to it later) and acknowledges the puts. The
//! writer goes on to the next write meanwhile: waking the puts no longer
//! leaves the disk idle between writes.
//! Under load thousands of small writes become a few large ones; a lone put
//! is written at once.
//!
//! Where the filesystem allows, packs are written with `O_DIRECT`: bytes go
//! from memory to the disk without a copy into the page cache (that copy,
//! into freshly allocated page-cache pages, was the largest single cost of an
//! import on this project's benchmark). A run of chunks as an import reads
//! it ([`crate::ChunkRun`], aligned and padded to [`SEGMENT_ALIGN`]) is
//! written from the import's own read buffer, without being copied at all;
//! other chunks are copied into the batch's aligned buffer. In a pack, a run
//! starts at a multiple of [`SEGMENT_ALIGN`] and its padding follows it.
//! Each write is padded with zeros to a multiple of 4 KiB and the next one
//! starts after the padding. No byte of a pack is written twice, so a
//! reader's memory map never holds a page that a later write changes.
//! Filesystems that refuse `O_DIRECT` get ordinary writes of the same
//! bytes, with writeback started as they go.
//!
//! Bytes gathered or queued but not yet written are bounded
//! ([`QUEUE_LIMIT`]): a put first reserves room for its bytes, waiting
//! (asynchronously) while the disk catches up, and the writer gives the room
//! back once a batch is written. The written batches' buffers are kept for
//! reuse ([`SPARE_BUFFERS`]), so no fresh memory is faulted in for each;
//! they are let go once the writer has been idle for a while.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use tokio::sync::{Semaphore, oneshot};

use super::entry_cache::EntryCache;
use super::{
    Ack, ChunkEntry, Failure, IndexWrite, LocalStoreError, PACK_LIMIT, ToCommit, lock,
    start_writeback,
};
use crate::{ChunkRun, Digest};

/// Where each write starts in a pack, and what it is padded to: a page, so
/// that no page of a pack is written by two writes.
const ALIGN: usize = 4096;
/// Alignment of each piece of a direct write, in memory and in the pack:
/// a sector. Runs not aligned to it are copied.
pub(super) const SEGMENT_ALIGN: usize = crate::read_blocks::RUN_ALIGN;
/// A batch's buffer starts this large and doubles as copies need: runs
/// written from their own memory leave it nearly empty.
const MIN_BUFFER: usize = 64 << 10;
/// Most pieces one `pwritev` takes (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;
/// A gathering buffer is queued for writing once it holds this much.
/// One write at a time goes to the disk, and each costs a fixed latency on
/// top of its bytes: where the disk is the slower side, larger writes move
/// more bytes per second. Over 4 sets of 12-24 alternating imports of the
/// benchmark tree, 8 MiB writes and twice the queue took the median `cairn
/// import` from 0.511-0.546 s to 0.473-0.512 s (CPU the same), with
/// readers waiting less for their blocks to come back.
const GATHER_LIMIT: usize = 8 << 20;
/// Bytes gathered or queued for writing at most (see the module comment):
/// a write being gathered while up to three wait or are written.
pub(super) const QUEUE_LIMIT: usize = 32 << 20;
/// Written buffers kept for reuse: as many as the queue can hold, so a busy
/// writer allocates none.
const SPARE_BUFFERS: usize = QUEUE_LIMIT / GATHER_LIMIT + 1;
/// Spare buffers kept once the writer has been idle for [`IDLE_TRIM`].
const IDLE_SPARE_BUFFERS: usize = 1;
const IDLE_TRIM: std::time::Duration = std::time::Duration::from_secs(2);
/// Bytes one put copies in while holding the writer's lock, at most: the
/// writer thread waits for that lock between writes.
const APPEND_STEP: usize = 1 << 20;

/// A pack file open for appending.
pub(super) struct PackOut {
    id: i64,
    file: File,
    /// Whether `file` was opened with `O_DIRECT` and still takes it.
    direct: AtomicBool,
    /// An ordinary handle, for writes a direct handle refuses.
    buffered: File,
}

impl PackOut {
    /// Creates pack `id` at `path`.
    pub(super) fn create(id: i64, path: &Path) -> std::io::Result<PackOut> {
        let buffered = OpenOptions::new().write(true).create_new(true).open(path)?;
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        Ok(match direct {
            Ok(file) => PackOut {
                id,
                file,
                direct: AtomicBool::new(true),
                buffered,
            },
            Err(e) => {
                tracing::debug!(pack = id, error = %e, "pack written without O_DIRECT");
                PackOut {
                    id,
                    file: buffered.try_clone()?,
                    direct: AtomicBool::new(false),
                    buffered,
                }
            }
        })
    }

    fn is_direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Writes `batch`'s segments at its start, which is aligned when the
    /// pack is direct; a direct write is first padded to [`ALIGN`].
    fn write(&self, batch: &mut Batch) -> std::io::Result<()> {
        if self.is_direct() {
            batch.pad_to(ALIGN);
            match write_all_at(&self.file, &batch.io_slices(), batch.start) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(pack = self.id, error = %e, "direct write refused");
                    self.direct.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        write_all_at(&self.buffered, &batch.io_slices(), batch.start)?;
        start_writeback(&self.buffered, batch.start, batch.len as u64);
        Ok(())
    }
}

/// Writes every byte of `slices` to `file` at `offset`, [`MAX_IOVECS`]
/// slices per call.
fn write_all_at(file: &File, slices: &[IoSlice<'_>], mut offset: u64) -> std::io::Result<()> {
    let mut owned: Vec<IoSlice<'_>> = slices.to_vec();
    let mut rest: &mut [IoSlice<'_>] = &mut owned;
    while !rest.is_empty() {
        let count = rest.len().min(MAX_IOVECS);
        let at = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::other("pack offset out of range"))?;
        // SAFETY: IoSlice is ABI-compatible with iovec; the first `count`
        // slices are valid for reads for the duration of the call.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                rest.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                at,
            )
        };
        if written < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        offset += written as u64;
        IoSlice::advance_slices(&mut rest, written as usize);
    }
    Ok(())
}

/// Bytes gathered for one write, with the index entries they carry.
struct Batch {
    pack: Arc<PackOut>,
    start: u64,
    /// The pieces of the write, in pack order.
    segments: Vec<Segment>,
    /// Bytes the segments take in the pack.
    len: usize,
    /// Where copied bytes go.
    buf: AlignedBuf,
    entries: Vec<(IndexWrite, Ack)>,
    /// Room reserved by the puts whose bytes are here, given back once written.
    reserved: usize,
}

/// A piece of a batch.
enum Segment {
    /// `len` bytes of the batch's buffer from `at` (a multiple of
    /// [`SEGMENT_ALIGN`]).
    Copied { at: usize, len: usize },
    /// A run's memory, written as it is: aligned, and a multiple of
    /// [`SEGMENT_ALIGN`] long.
    Borrowed(bytes::Bytes),
}

impl Batch {
    fn new(pack: Arc<PackOut>, start: u64, buf: AlignedBuf) -> Batch {
        Batch {
            pack,
            start,
            segments: Vec::new(),
            len: 0,
            buf,
            entries: Vec::new(),
            reserved: 0,
        }
    }

    /// Copies `data` in; returns its offset in the pack.
    fn push_copy(&mut self, data: &[u8]) -> u64 {
        let offset = self.start + self.len as u64;
        match self.segments.last_mut() {
            Some(Segment::Copied { len, .. }) => *len += data.len(),
            _ => self.segments.push(Segment::Copied {
                at: self.buf.len(),
                len: data.len(),
            }),
        }
        self.buf.extend(data);
        self.len += data.len();
        offset
    }

    /// Takes `memory` (aligned, a multiple of [`SEGMENT_ALIGN`] long) to
    /// write as it is; returns its offset in the pack.
    fn push_borrowed(&mut self, memory: bytes::Bytes) -> u64 {
        self.pad_to(SEGMENT_ALIGN);
        let offset = self.start + self.len as u64;
        self.len += memory.len();
        self.segments.push(Segment::Borrowed(memory));
        offset
    }

    /// Zeros after the last segment up to a multiple of `align` bytes.
    fn pad_to(&mut self, align: usize) {
        let pad = self.len.next_multiple_of(align) - self.len;
        if pad == 0 {
            return;
        }
        match self.segments.last_mut() {
            Some(Segment::Copied { len, .. }) => *len += pad,
            _ => self.segments.push(Segment::Copied {
                at: self.buf.len(),
                len: pad,
            }),
        }
        self.buf.extend_zeros(pad);
        self.len += pad;
    }

    fn io_slices(&self) -> Vec<IoSlice<'_>> {
        let copied = self.buf.as_slice();
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Copied { at, len } => IoSlice::new(&copied[*at..*at + *len]),
                Segment::Borrowed(memory) => IoSlice::new(memory),
            })
            .collect()
    }

    /// Whether `memory` can be written as it is.
    fn can_borrow(memory: &[u8]) -> bool {
        (memory.as_ptr() as usize).is_multiple_of(SEGMENT_ALIGN)
            && memory.len().is_multiple_of(SEGMENT_ALIGN)
    }
}

/// One piece to append.
pub(super) enum Append<'a> {
    /// A chunk whose stored bytes are copied in, and its index entry's
    /// other fields.
    Copy {
        digest: Digest,
        stored: &'a [u8],
        size: u32,
        compressed: bool,
    },
    /// A run of raw chunks, written from its own memory when that is
    /// aligned (else copied).
    Run(&'a ChunkRun),
}

impl Append<'_> {
    /// Bytes it takes in a pack.
    pub(super) fn stored_len(&self) -> usize {
        match self {
            Append::Copy { stored, .. } => stored.len(),
            Append::Run(run) if Batch::can_borrow(run.memory()) => {
                run.memory().len() + SEGMENT_ALIGN
            }
            Append::Run(run) => run.data_len(),
        }
    }
}

/// Acknowledgements of appended chunks: each answers once its part of the
/// chunks is written and their entries are handed to the committer.
pub(super) type Acks = Vec<oneshot::Receiver<Result<(), Failure>>>;

struct State {
    /// The pack appended to, and where its next byte goes.
    pack: Option<(Arc<PackOut>, u64)>,
    /// The buffer puts append to (always of the current pack).
    gathering: Option<Batch>,
    /// Buffers waiting for the writer, oldest first.
    queue: VecDeque<Batch>,
    spare: Vec<AlignedBuf>,
    closed: bool,
}

impl State {
    /// Queues the gathering buffer; the pack's next write starts aligned.
    fn cut(&mut self) {
        if let Some(batch) = self.gathering.take() {
            if let Some((pack, end)) = &mut self.pack
                && pack.is_direct()
            {
                *end = end.next_multiple_of(ALIGN as u64);
            }
            self.queue.push_back(batch);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Room for bytes not yet written, in bytes (see [`QUEUE_LIMIT`]).
    room: Arc<Semaphore>,
}

/// The writer thread and the buffers puts gather into.
pub(super) struct PackWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PackWriter {
    /// Starts the writer thread; written chunks' entries are pinned in
    /// `cache` and go to `committer`.
    pub(super) fn start(
        committer: mpsc::Sender<ToCommit>,
        cache: Arc<EntryCache>,
    ) -> std::io::Result<PackWriter> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pack: None,
                gathering: None,
                queue: VecDeque::new(),
                spare: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
            room: Arc::new(Semaphore::new(QUEUE_LIMIT)),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-local-pack".into())
            .spawn(move || run_writer(&thread_shared, &committer, &cache))?;
        Ok(PackWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Reserves room for `bytes` bytes about to be appended, waiting while
    /// the writer is [`QUEUE_LIMIT`] behind. Returns the room reserved, to
    /// pass to [`PackWriter::append`].
    pub(super) async fn reserve(&self, bytes: usize) -> usize {
        let want = bytes.min(QUEUE_LIMIT);
        match self.shared.room.acquire_many(want as u32).await {
            Ok(permit) => {
                permit.forget();
                want
            }
            // Never closed; an unbounded append is still correct.
            Err(_) => 0,
        }
    }

    /// Appends `pieces` to the current pack (a new one from `new_pack` when
    /// there is none or it is full), `reserved` being the room
    /// [`PackWriter::reserve`] returned for them. Returns receivers that
    /// answer once the bytes are written and the chunks' index entries are
    /// pinned in the cache and handed to the committer.
    pub(super) fn append(
        &self,
        pieces: &[Append<'_>],
        mut new_pack: impl FnMut() -> Result<PackOut, LocalStoreError>,
        reserved: usize,
    ) -> Result<Acks, LocalStoreError> {
        let mut acks = Vec::new();
        let mut unplaced = reserved;
        let mut rest = pieces;
        while !rest.is_empty() {
            // One step under the lock: up to APPEND_STEP bytes (at least
            // one piece), all in one gathering batch.
            let mut state = lock(&self.shared.state);
            if state.closed {
                drop(state);
                self.shared.room.add_permits(unplaced);
                return Err(LocalStoreError::CommitterGone);
            }
            let mut step_entries = Vec::new();
            let mut step_bytes = 0usize;
            while let Some(piece) = rest.first() {
                let len = piece.stored_len();
                if !step_entries.is_empty() && step_bytes + len > APPEND_STEP {
                    break;
                }
                let full = state
                    .pack
                    .as_ref()
                    .is_none_or(|(_, end)| *end > 0 && end + len as u64 > PACK_LIMIT);
                let over = state
                    .gathering
                    .as_ref()
                    .is_some_and(|b| b.len > 0 && b.len + len > GATHER_LIMIT);
                if (full || over) && !step_entries.is_empty() {
                    // The step's entries belong to the batch being cut.
                    break;
                }
                if full {
                    state.cut();
                    match new_pack() {
                        Ok(pack) => state.pack = Some((Arc::new(pack), 0)),
                        Err(e) => {
                            drop(state);
                            self.shared.room.add_permits(unplaced);
                            return Err(e);
                        }
                    }
                } else if over {
                    state.cut();
                }
                let Some((pack, end)) = state.pack.clone() else {
                    return Err(LocalStoreError::CommitterGone);
                };
                if state.gathering.is_none() {
                    let buf = state.spare.pop().unwrap_or_default();
                    state.gathering = Some(Batch::new(pack.clone(), end, buf));
                }
                let Some(batch) = state.gathering.as_mut() else {
                    return Err(LocalStoreError::CommitterGone);
                };
                let before = batch.len;
                match piece {
                    Append::Copy {
                        digest,
                        stored,
                        size,
                        compressed,
                    } => {
                        let offset = batch.push_copy(stored);
                        step_entries.push((
                            *digest,
                            ChunkEntry {
                                pack: pack.id,
                                offset,
                                stored_len: stored.len() as u32,
                                size: *size,
                                compressed: *compressed,
                            },
                        ));
                    }
                    Append::Run(run) => {
                        let mut offset = if Batch::can_borrow(run.memory()) {
                            batch.push_borrowed(run.memory().clone())
                        } else {
                            batch.push_copy(&run.memory()[..run.data_len()])
                        };
                        for chunk in run.chunks() {
                            step_entries.push((
                                chunk.digest,
                                ChunkEntry {
                                    pack: pack.id,
                                    offset,
                                    stored_len: chunk.size,
                                    size: chunk.size,
                                    compressed: false,
                                },
                            ));
                            offset += u64::from(chunk.size);
                        }
                    }
                }
                let end = batch.start + batch.len as u64;
                step_bytes += batch.len - before;
                if let Some((_, pack_end)) = &mut state.pack {
                    *pack_end = end;
                }
                rest = &rest[1..];
            }
            let (ack, done) = oneshot::channel();
            let placed = if rest.is_empty() {
                unplaced
            } else {
                step_bytes.min(unplaced)
            };
            unplaced -= placed;
            let Some(batch) = state.gathering.as_mut() else {
                return Err(LocalStoreError::CommitterGone);
            };
            batch.reserved += placed;
            batch.entries.push((IndexWrite::Chunks(step_entries), ack));
            acks.push(done);
            drop(state);
            self.shared.wake.notify_one();
        }
        if unplaced > 0 {
            self.shared.room.add_permits(unplaced);
        }
        Ok(acks)
    }
}

impl PackWriter {
    /// Refuses further appends, and returns once everything appended so far
    /// is written and its entries handed to the committer.
    pub(super) fn stop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails every waiting put if the writer thread ends for any reason,
/// panics included, and refuses further appends.
struct StopGuard<'a>(&'a Shared);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.closed = true;
        let gathering = state.gathering.take();
        for batch in state.queue.drain(..).chain(gathering) {
            self.0.room.add_permits(batch.reserved);
            for (_, ack) in batch.entries {
                let _ = ack.send(Err(Failure::PackWrite(
                    batch.pack.id,
                    "the pack writer has stopped".into(),
                )));
            }
        }
    }
}

/// The writer thread: writes queued (or else gathering) buffers in order,
/// and hands each written one to a second thread ([`complete_writes`]),
/// which passes its entries on to the committer. The disk gets the next
/// write as soon as the writer has it, not after the puts of the last one
/// are woken.
fn run_writer(shared: &Shared, committer: &mpsc::Sender<ToCommit>, cache: &EntryCache) {
    let _stop = StopGuard(shared);
    std::thread::scope(|scope| {
        // Owned by this closure: returning from it drops the sender, and
        // the completion thread ends once it has handled every batch.
        let (written_tx, written_rx) = mpsc::channel::<(std::io::Result<()>, Batch)>();
        let completer = std::thread::Builder::new()
            .name("cairn-local-done".into())
            .spawn_scoped(scope, move || {
                complete_writes(shared, committer, cache, written_rx)
            });
        if completer.is_err() {
            tracing::error!("the pack writer's completion thread did not start");
            return;
        }
        loop {
            let mut batch = {
                let mut state = lock(&shared.state);
                loop {
                    if let Some(batch) = state.queue.pop_front() {
                        break batch;
                    }
                    if state.gathering.is_some() {
                        state.cut();
                        continue;
                    }
                    if state.closed {
                        return;
                    }
                    let (woken, timeout) = shared
                        .wake
                        .wait_timeout(state, IDLE_TRIM)
                        .unwrap_or_else(|p| p.into_inner());
                    state = woken;
                    if timeout.timed_out() {
                        state.spare.truncate(IDLE_SPARE_BUFFERS);
                    }
                }
            };
            let span = tracing::debug_span!(
                "pack_write",
                pack = batch.pack.id,
                start = batch.start,
                len = batch.len,
                segments = batch.segments.len()
            );
            let pack = batch.pack.clone();
            let written = span.in_scope(|| pack.write(&mut batch));
            if let Err((_, batch)) = written_tx.send((written, batch)).map_err(|e| e.0) {
                // The completion thread is gone (it panicked): the puts
                // of this batch learn that the writer stopped.
                fail_batch(shared, batch, "the pack writer has stopped".into());
                return;
            }
        }
        // Leaving the scope joins the completion thread.
    });
}

/// The completion thread: for each written batch, in the order written,
/// gives back its memory and room and hands its entries to the committer
/// (pinned in the cache first), then lets its puts return.
fn complete_writes(
    shared: &Shared,
    committer: &mpsc::Sender<ToCommit>,
    cache: &EntryCache,
    written: mpsc::Receiver<(std::io::Result<()>, Batch)>,
) {
    for (result, mut batch) in written {
        // Borrowed memory goes back to its owner (an import's read blocks)
        // as soon as it is on disk.
        batch.segments.clear();
        match result {
            Ok(()) => {
                // The room goes back as soon as the bytes are on disk.
                shared.room.add_permits(std::mem::take(&mut batch.reserved));
                // The chunks are stored: their entries are pinned in the
                // cache (this process finds the chunks from now on) and go
                // to the committer (which commits them before anything
                // handed to it later, then unpins them), and the puts
                // return.
                for (write, ack) in batch.entries.drain(..) {
                    if let IndexWrite::Chunks(entries) = &write {
                        cache.pin_all(entries);
                    }
                    let handed_over = committer
                        .send((write, None))
                        .map_err(|_| Failure::Commit("the store's committer has stopped".into()));
                    let _ = ack.send(handed_over);
                }
                let mut buf = std::mem::take(&mut batch.buf);
                buf.clear();
                let mut state = lock(&shared.state);
                if state.spare.len() < SPARE_BUFFERS {
                    state.spare.push(buf);
                }
            }
            Err(e) => {
                tracing::error!(pack = batch.pack.id, error = %e, "writing a pack failed");
                fail_batch(shared, batch, e.to_string());
            }
        }
    }
}

/// Gives back a batch's room and fails its puts with `why`.
fn fail_batch(shared: &Shared, batch: Batch, why: String) {
    shared.room.add_permits(batch.reserved);
    let failure = Failure::PackWrite(batch.pack.id, why);
    for (_, ack) in batch.entries {
        let _ = ack.send(Err(failure.clone()));
    }
}

/// A growable byte buffer whose start is aligned for direct writes.
#[derive(Default)]
struct AlignedBuf {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    fn len(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    fn capacity(&self) -> usize {
        self.storage.len().saturating_sub(self.offset)
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }

    fn extend(&mut self, data: &[u8]) {
        self.spare_mut(data.len()).copy_from_slice(data);
        self.len += data.len();
    }

    /// Appends `n` zero bytes.
    fn extend_zeros(&mut self, n: usize) {
        self.spare_mut(n).fill(0);
        self.len += n;
    }

    /// The `n` bytes after the contents, growing the buffer first if they
    /// do not fit.
    fn spare_mut(&mut self, n: usize) -> &mut [u8] {
        let needed = (self.len + n).next_multiple_of(ALIGN);
        if needed > self.capacity() {
            self.grow(needed.max(MIN_BUFFER).max(self.capacity() * 2));
        }
        let at = self.offset + self.len;
        &mut self.storage[at..at + n]
    }

    fn grow(&mut self, capacity: usize) {
        let mut storage = vec![0u8; capacity + ALIGN];
        let offset = storage.as_ptr().align_offset(ALIGN);
        storage[offset..offset + self.len].copy_from_slice(self.as_slice());
        self.storage = storage;
        self.offset = offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_grow_and_pad() {
        let mut buf = AlignedBuf::default();
        buf.extend(&[1u8; 10]);
        assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN, 0);
        buf.extend(&vec![2u8; GATHER_LIMIT + 5]);
        assert_eq!(buf.as_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(buf.len(), GATHER_LIMIT + 15);
        assert_eq!(&buf.as_slice()[..10], &[1u8; 10]);
        assert!(buf.as_slice()[10..].iter().all(|b| *b == 2));
        buf.extend_zeros(ALIGN - 15);
        assert_eq!(buf.len(), GATHER_LIMIT + ALIGN);
        assert!(buf.as_slice()[GATHER_LIMIT + 15..].iter().all(|b| *b == 0));
    }
}
