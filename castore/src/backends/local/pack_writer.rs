//! Appending chunk bytes to this process's pack files.
//!
//! A put copies its bytes into a gathering buffer and waits. One writer
//! thread per store writes whatever has gathered while its previous write
//! ran, in one write, then hands the chunks' index entries to the committer,
//! which acknowledges the puts once their entries are committed. Under load
//! thousands of small writes become a few large ones; a lone put is written
//! at once.
//!
//! Where the filesystem allows, packs are written with `O_DIRECT`: bytes go
//! from the buffer to the disk without a copy into the page cache (that copy,
//! into freshly allocated page-cache pages, was the largest single cost of an
//! import on this project's benchmark). Direct writes need aligned offsets and
//! lengths, so each write is padded with zeros to a multiple of 4 KiB and the
//! next one starts after the padding. No byte of a pack is written twice, so a
//! reader's memory map never holds a page that a later write changes.
//! Filesystems that refuse `O_DIRECT` get ordinary writes, unpadded, with
//! writeback started as they go.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use tokio::sync::oneshot;

use super::{
    Ack, ChunkEntry, Failure, IndexWrite, LocalStoreError, PACK_LIMIT, lock, start_writeback,
};
use crate::Digest;

/// Alignment of direct writes: offsets, lengths and memory.
const ALIGN: usize = 4096;
/// A gathering buffer is queued for writing once it holds this much.
const GATHER_LIMIT: usize = 8 << 20;
/// Written buffers kept for reuse.
const SPARE_BUFFERS: usize = 4;

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

    /// Writes `buf` at `start`, which is aligned when the pack is direct.
    fn write(&self, buf: &mut AlignedBuf, start: u64) -> std::io::Result<()> {
        if self.is_direct() {
            match self.file.write_all_at(buf.padded(), start) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(pack = self.id, error = %e, "direct write refused");
                    self.direct.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.buffered.write_all_at(buf.as_slice(), start)?;
        start_writeback(&self.buffered, start, buf.len() as u64);
        Ok(())
    }
}

/// Bytes gathered for one write, with the index entries they carry.
struct Batch {
    pack: Arc<PackOut>,
    start: u64,
    buf: AlignedBuf,
    entries: Vec<(IndexWrite, Ack)>,
}

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
}

/// The writer thread and the buffers puts gather into.
pub(super) struct PackWriter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PackWriter {
    /// Starts the writer thread; written chunks' entries go to `committer`.
    pub(super) fn start(committer: mpsc::Sender<(IndexWrite, Ack)>) -> std::io::Result<PackWriter> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pack: None,
                gathering: None,
                queue: VecDeque::new(),
                spare: Vec::new(),
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-local-pack".into())
            .spawn(move || run_writer(&thread_shared, &committer))?;
        Ok(PackWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Appends the stored bytes `data` of chunk `digest` to the current pack
    /// (a new one from `new_pack` when there is none or it is full).
    /// `entry` makes the chunk's index entry from its pack and offset.
    /// Returns that entry and a receiver that answers once the bytes are
    /// written and the entry committed.
    pub(super) fn append(
        &self,
        data: &[u8],
        new_pack: impl FnOnce() -> Result<PackOut, LocalStoreError>,
        digest: Digest,
        entry: impl FnOnce(i64, u64) -> ChunkEntry,
    ) -> Result<(ChunkEntry, oneshot::Receiver<Result<(), Failure>>), LocalStoreError> {
        let len = data.len() as u64;
        let mut state = lock(&self.shared.state);
        if state.closed {
            return Err(LocalStoreError::CommitterGone);
        }
        let full = state
            .pack
            .as_ref()
            .is_none_or(|(_, end)| *end > 0 && end + len > PACK_LIMIT);
        if full {
            state.cut();
            state.pack = Some((Arc::new(new_pack()?), 0));
        }
        if state
            .gathering
            .as_ref()
            .is_some_and(|b| !b.buf.is_empty() && b.buf.len() + data.len() > GATHER_LIMIT)
        {
            state.cut();
        }
        let Some((pack, end)) = state.pack.clone() else {
            return Err(LocalStoreError::CommitterGone);
        };
        if state.gathering.is_none() {
            let buf = state.spare.pop().unwrap_or_default();
            state.gathering = Some(Batch {
                pack: pack.clone(),
                start: end,
                buf,
                entries: Vec::new(),
            });
        }
        let (ack, done) = oneshot::channel();
        let Some(batch) = state.gathering.as_mut() else {
            return Err(LocalStoreError::CommitterGone);
        };
        let offset = batch.start + batch.buf.len() as u64;
        let entry = entry(pack.id, offset);
        batch.buf.extend(data);
        batch
            .entries
            .push((IndexWrite::Chunk { digest, entry }, ack));
        if let Some((_, end)) = &mut state.pack {
            *end = offset + len;
        }
        drop(state);
        self.shared.wake.notify_one();
        Ok((entry, done))
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
/// then passes their entries on to the committer.
fn run_writer(shared: &Shared, committer: &mpsc::Sender<(IndexWrite, Ack)>) {
    let _stop = StopGuard(shared);
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
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
        };
        let span = tracing::debug_span!(
            "pack_write",
            pack = batch.pack.id,
            start = batch.start,
            len = batch.buf.len()
        );
        let written = span.in_scope(|| batch.pack.write(&mut batch.buf, batch.start));
        match written {
            Ok(()) => {
                for (write, ack) in batch.entries.drain(..) {
                    if let Err(mpsc::SendError((_, ack))) = committer.send((write, ack)) {
                        let _ = ack.send(Err(Failure::Commit(
                            "the store's committer has stopped".into(),
                        )));
                    }
                }
            }
            Err(e) => {
                tracing::error!(pack = batch.pack.id, error = %e, "writing a pack failed");
                let failure = Failure::PackWrite(batch.pack.id, e.to_string());
                for (_, ack) in batch.entries.drain(..) {
                    let _ = ack.send(Err(failure.clone()));
                }
            }
        }
        let mut buf = batch.buf;
        buf.clear();
        let mut state = lock(&shared.state);
        if state.spare.len() < SPARE_BUFFERS {
            state.spare.push(buf);
        }
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

    fn is_empty(&self) -> bool {
        self.len == 0
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
        let needed = (self.len + data.len()).next_multiple_of(ALIGN);
        if needed > self.capacity() {
            self.grow(needed.max(GATHER_LIMIT).max(self.capacity() * 2));
        }
        let at = self.offset + self.len;
        self.storage[at..at + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    fn grow(&mut self, capacity: usize) {
        let mut storage = vec![0u8; capacity + ALIGN];
        let offset = storage.as_ptr().align_offset(ALIGN);
        storage[offset..offset + self.len].copy_from_slice(self.as_slice());
        self.storage = storage;
        self.offset = offset;
    }

    /// The contents zero-padded to a multiple of [`ALIGN`].
    fn padded(&mut self) -> &[u8] {
        let end = self.len.next_multiple_of(ALIGN);
        let start = self.offset;
        self.storage[start + self.len..start + end].fill(0);
        &self.storage[start..start + end]
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
        let padded = buf.padded();
        assert_eq!(padded.len(), (GATHER_LIMIT + 15).next_multiple_of(ALIGN));
        assert!(padded[GATHER_LIMIT + 15..].iter().all(|b| *b == 0));
    }
}
