//! Read buffers for imports, whose chunks are handed on without a copy.
//!
//! Files are read into large blocks ([`Arena`]): small files one after
//! another into the same block, large ones a step at a time. The chunks cut
//! from one read leave together as a run: one [`Bytes`] slice of its block
//! ([`Arena::split_run`]), so the store gets the bytes the kernel copied in,
//! not a copy of them. Runs start at a multiple of [`RUN_ALIGN`] bytes in
//! memory and are padded to a multiple of it, which is what a write with
//! `O_DIRECT` asks of its buffers: a store can send a run to disk straight
//! from the block. A block goes back to its [`BlockPool`] when the arena has
//! moved on and the last of its runs is dropped (the local store drops a run
//! once it is written to a pack, or its new chunks copied out of it); the
//! next block is then that same memory, already faulted in, not fresh pages.

use std::alloc::Layout;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

/// Where runs start in memory, and what their padded length is a multiple
/// of: the sector size direct writes ask for on common disks.
pub(crate) const RUN_ALIGN: usize = 512;
/// Alignment of the blocks themselves (a memory page).
const BLOCK_ALIGN: usize = 4096;

/// Blocks kept for reuse by one import, and a bound on how many are alive.
///
/// Memory an import touches for the first time costs far more than memory
/// it touches again (the kernel zeroes each new page, and a virtual machine
/// may have to back it first), so an import keeps few blocks and reuses
/// them: a reader that needs a block while `limit` blocks are alive waits
/// until the store has written or copied the runs of one and let it go.
pub(crate) struct BlockPool {
    state: Mutex<PoolState>,
    returned: Condvar,
    block_size: usize,
    limit: usize,
    /// Time readers spent waiting for a block, in nanoseconds (for the log).
    waited_ns: AtomicU64,
}

/// The longest a reader waits for a block to come back before taking one
/// over the limit.
const WAIT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

struct PoolState {
    free: Vec<Memory>,
    /// Pooled-size blocks alive (handed out and not yet dropped).
    alive: usize,
}

impl BlockPool {
    /// A pool of `block_size` blocks, at most `limit` of them alive at once
    /// (at least 2).
    pub(crate) fn new(block_size: usize, limit: usize) -> Arc<BlockPool> {
        Arc::new(BlockPool {
            state: Mutex::new(PoolState {
                free: Vec::new(),
                alive: 0,
            }),
            returned: Condvar::new(),
            block_size,
            limit: limit.max(2),
            waited_ns: AtomicU64::new(0),
        })
    }

    /// How long readers have waited for blocks, all together.
    pub(crate) fn waited(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.waited_ns.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of at least `len` bytes: a pooled one if it is large enough.
    /// While `limit` blocks are alive, calls `before_waiting` (which must
    /// let the chunks of blocks go on to the store) and waits for one.
    fn take(self: &Arc<Self>, len: usize, before_waiting: &dyn Fn()) -> Arc<Block> {
        let pooled = len <= self.block_size;
        let memory = if pooled {
            let mut state = self.lock();
            let mut flushed = false;
            while state.alive >= self.limit {
                if !flushed {
                    drop(state);
                    before_waiting();
                    flushed = true;
                    state = self.lock();
                    continue;
                }
                let waiting = std::time::Instant::now();
                let (woken, timeout) = self
                    .returned
                    .wait_timeout(state, WAIT_AT_MOST)
                    .unwrap_or_else(|p| p.into_inner());
                self.waited_ns
                    .fetch_add(waiting.elapsed().as_nanos() as u64, Ordering::Relaxed);
                state = woken;
                if timeout.timed_out() {
                    // Whatever holds the blocks is keeping them: more
                    // memory, not a reader stuck for good.
                    tracing::debug!(alive = state.alive, "read blocks: over the limit");
                    break;
                }
            }
            state.alive += 1;
            let pooled = state.free.pop();
            drop(state);
            pooled.unwrap_or_else(|| Memory::zeroed(self.block_size))
        } else {
            Memory::zeroed(len)
        };
        Arc::new(Block {
            memory: Some(memory),
            pool: self.clone(),
            pooled,
        })
    }
}

/// Zeroed memory of its own mapping, aligned to [`BLOCK_ALIGN`], its length
/// rounded up to a multiple of [`RUN_ALIGN`] (so a padded run never reaches
/// past it).
///
/// Blocks are mapped apart from the heap and asked to be backed by huge
/// pages (`MADV_HUGEPAGE`): a direct write from a block then hands the disk
/// a few large physically contiguous segments rather than one per 4 KiB
/// page, and the kernel faults a block in with a few faults. Memory on a
/// huge-page boundary gets the most of them, so the mapping is placed on
/// one.
struct Memory {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    /// The length mapped at `ptr`: `len` rounded up to a page.
    mapped: usize,
}

// SAFETY: Memory owns its mapping; access is governed by its owner.
unsafe impl Send for Memory {}

/// The huge page size blocks are aligned to.
const HUGE_PAGE: usize = 2 << 20;

impl Memory {
    fn zeroed(len: usize) -> Memory {
        let len = len.max(1).next_multiple_of(RUN_ALIGN);
        let too_large = || std::alloc::handle_alloc_error(Layout::new::<[u8; BLOCK_ALIGN]>());
        let Some(mapped) = len.checked_next_multiple_of(BLOCK_ALIGN) else {
            too_large()
        };
        // Room to start on a huge-page boundary; the slack is unmapped below.
        let Some(reserved) = mapped.checked_add(HUGE_PAGE) else {
            too_large()
        };
        // SAFETY: an anonymous private mapping with no address hint; the
        // result is checked below.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserved,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            too_large();
        }
        let head = (mapping as usize).next_multiple_of(HUGE_PAGE) - mapping as usize;
        let tail = reserved - head - mapped;
        // SAFETY: head < HUGE_PAGE and head + mapped + tail == reserved, so
        // start..start + mapped lies in the mapping, and the head and the
        // tail are the page-aligned parts of it around that range. Trimming
        // them is only tidiness: a failure leaves them mapped, unused. The
        // advice only asks: without huge pages the block works the same.
        let start = unsafe {
            let start = mapping.cast::<u8>().add(head);
            if head > 0 {
                libc::munmap(mapping, head);
            }
            if tail > 0 {
                libc::munmap(start.add(mapped).cast(), tail);
            }
            libc::madvise(start.cast(), mapped, libc::MADV_HUGEPAGE);
            start
        };
        let Some(ptr) = std::ptr::NonNull::new(start) else {
            too_large()
        };
        Memory { ptr, len, mapped }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: `mapped` bytes at `ptr` were mapped in `zeroed`, and
        // nothing refers to them once their Memory is dropped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

/// One block of memory, shared by the arena filling it and the runs cut
/// from it.
///
/// The bytes before the end of the last run handed out (padding included)
/// are only ever read, through [`BlockSlice`]s; the bytes after it are only
/// written, by the arena that owns the block, and no slice covers them. The
/// arena writes over earlier bytes again only once it holds the only
/// reference to the block.
struct Block {
    /// Always `Some` until dropped.
    memory: Option<Memory>,
    pool: Arc<BlockPool>,
    /// Counted among the pool's live blocks, and kept for reuse.
    pooled: bool,
}

impl Block {
    fn ptr(&self) -> *mut u8 {
        self.memory
            .as_ref()
            .map_or(std::ptr::null_mut(), |m| m.ptr.as_ptr())
    }

    fn len(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.len)
    }
}

// SAFETY: see the type's comment: shared bytes are never written, and the
// bytes written are reachable from one arena only.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        let Some(memory) = self.memory.take() else {
            return;
        };
        if self.pooled {
            let mut state = self.pool.lock();
            state.alive -= 1;
            if state.free.len() < self.pool.limit {
                state.free.push(memory);
            }
            drop(state);
            self.pool.returned.notify_one();
        }
    }
}

/// A range of a block, owned by a [`Bytes`].
struct BlockSlice {
    block: Arc<Block>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for BlockSlice {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: start..start + len lies within the block, before the end
        // of what its arena has handed out: those bytes are never written
        // while the slice exists (see `Block`).
        unsafe { std::slice::from_raw_parts(self.block.ptr().add(self.start), self.len) }
    }
}

/// Where one reader puts what it reads: a current block, the bytes read but
/// not yet handed out (`start..end`), and free room after them.
pub(crate) struct Arena {
    pool: Arc<BlockPool>,
    block: Option<Arc<Block>>,
    start: usize,
    end: usize,
    /// The end of the last run handed out of the current block, padding
    /// included: nothing before it is written while the block is shared.
    handed_out: usize,
}

impl Arena {
    pub(crate) fn new(pool: Arc<BlockPool>) -> Arena {
        Arena {
            pool,
            block: None,
            start: 0,
            end: 0,
            handed_out: 0,
        }
    }

    /// Forgets the bytes read but not handed out.
    pub(crate) fn clear_pending(&mut self) {
        self.end = self.start;
    }

    /// Makes room for `additional` bytes after the pending ones, keeping
    /// those contiguous and starting them at a multiple of [`RUN_ALIGN`]
    /// after everything handed out: in place if there is room, at the
    /// block's start if no run of it is still out, else in another block.
    /// `before_waiting` is called if the pool makes it wait (see
    /// [`BlockPool`]).
    pub(crate) fn reserve(&mut self, additional: usize, before_waiting: &dyn Fn()) {
        let pending = self.end - self.start;
        let in_place = self.aligned_start_with_room(additional);
        if let Some(block) = &mut self.block {
            if let Some(aligned) = in_place {
                if aligned != self.start && pending > 0 {
                    // SAFETY: both ranges lie within the block; the
                    // destination starts after everything handed out, so no
                    // slice covers it; `copy` allows the overlap.
                    unsafe {
                        std::ptr::copy(
                            block.ptr().add(self.start),
                            block.ptr().add(aligned),
                            pending,
                        )
                    };
                }
                self.start = aligned;
                self.end = aligned + pending;
                return;
            }
            if pending + additional <= block.len() && Arc::get_mut(block).is_some() {
                // SAFETY: this arena holds the only reference to the block
                // (get_mut synchronizes with the drops of every slice), and
                // start..end lies within it.
                unsafe { std::ptr::copy(block.ptr().add(self.start), block.ptr(), pending) };
                self.start = 0;
                self.end = pending;
                self.handed_out = 0;
                return;
            }
        }
        let fresh = self.pool.take(pending + additional, before_waiting);
        if let Some(old) = &self.block {
            // SAFETY: the pending bytes of the old block are initialized and
            // never written while read here; the new block is not shared.
            unsafe {
                std::ptr::copy_nonoverlapping(old.ptr().add(self.start), fresh.ptr(), pending)
            };
        }
        self.block = Some(fresh);
        self.start = 0;
        self.end = pending;
        self.handed_out = 0;
    }

    /// Where the pending bytes start in the current block once
    /// [`Arena::reserve`] has made room for `additional` more there: the
    /// first multiple of [`RUN_ALIGN`] after everything handed out, if the
    /// pending bytes and `additional` fit from there on.
    fn aligned_start_with_room(&self, additional: usize) -> Option<usize> {
        let pending = self.end - self.start;
        let block = self.block.as_ref()?;
        let aligned = self.start.max(self.handed_out).next_multiple_of(RUN_ALIGN);
        (aligned + pending + additional <= block.len()).then_some(aligned)
    }

    /// Whether [`Arena::reserve`] of `additional` bytes keeps the pending
    /// bytes in the current block, where they are if they start aligned
    /// (as they do once a reserve has placed them): no other block, no
    /// copy.
    pub(crate) fn has_room(&self, additional: usize) -> bool {
        self.aligned_start_with_room(additional) == Some(self.start)
            || (self.end == self.start && self.aligned_start_with_room(additional).is_some())
    }

    /// The free room after the pending bytes (see [`Arena::reserve`]);
    /// empty until `reserve` has moved the pending bytes past the last run
    /// handed out.
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        let len = self.block.as_ref().map_or(0, |b| b.len());
        self.unshared_mut(self.end, len)
    }

    /// Marks `n` bytes of the free room as read.
    pub(crate) fn fill(&mut self, n: usize) {
        if self.end < self.handed_out {
            return;
        }
        let len = self.block.as_ref().map_or(0, |b| b.len());
        self.end = (self.end + n).min(len);
    }

    /// The bytes read and not yet handed out, to write into (a reader that
    /// marked a file's room as read before reading it fills it later).
    /// Empty until [`Arena::reserve`] has moved the pending bytes past the
    /// last run handed out.
    pub(crate) fn pending_mut(&mut self) -> &mut [u8] {
        self.unshared_mut(self.start, self.end)
    }

    /// Bytes `from..to` of the current block to write into, if none of them
    /// was handed out (`from` is at or after the last run's end); else, or
    /// without a block, nothing.
    fn unshared_mut(&mut self, from: usize, to: usize) -> &mut [u8] {
        match &self.block {
            Some(block) if from >= self.handed_out && from <= to && to <= block.len() => {
                // SAFETY: from..to lies within the block, after everything
                // handed out, so no slice covers it, and `&mut self` makes
                // this the only writer.
                unsafe { std::slice::from_raw_parts_mut(block.ptr().add(from), to - from) }
            }
            _ => &mut [],
        }
    }

    /// The bytes read and not yet handed out.
    pub(crate) fn pending(&self) -> &[u8] {
        match &self.block {
            // SAFETY: start..end lies within the block; it is written only
            // through `&mut self`, and never where a slice covers it.
            Some(block) => unsafe {
                std::slice::from_raw_parts(block.ptr().add(self.start), self.end - self.start)
            },
            None => &[],
        }
    }

    /// Hands out the first `len` pending bytes as one run: a slice of the
    /// block that goes on past them to the next multiple of [`RUN_ALIGN`]
    /// (the padding is the pending bytes that follow, else zeros). The
    /// run starts aligned when the pending bytes did, as [`Arena::reserve`]
    /// leaves them.
    pub(crate) fn split_run(&mut self, len: usize) -> Bytes {
        let len = len.min(self.end - self.start);
        let Some(block) = &self.block else {
            return Bytes::new();
        };
        if len == 0 {
            return Bytes::new();
        }
        let run_end = self.start + len;
        let padded_end = run_end.next_multiple_of(RUN_ALIGN).min(block.len());
        let zero_from = self.end.max(self.handed_out);
        if zero_from < padded_end {
            // SAFETY: zero_from..padded_end lies within the block, after the
            // bytes read and after everything handed out: no slice covers it
            // and `&mut self` makes this the only writer.
            unsafe { std::ptr::write_bytes(block.ptr().add(zero_from), 0, padded_end - zero_from) };
        }
        let slice = BlockSlice {
            block: block.clone(),
            start: self.start,
            len: padded_end - self.start,
        };
        self.start = run_end;
        self.handed_out = self.handed_out.max(padded_end);
        Bytes::from_owner(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_into(arena: &mut Arena, data: &[u8]) {
        arena.reserve(data.len(), &|| {});
        arena.spare_mut()[..data.len()].copy_from_slice(data);
        arena.fill(data.len());
    }

    fn aligned(run: &Bytes) -> bool {
        (run.as_ptr() as usize).is_multiple_of(RUN_ALIGN) && run.len().is_multiple_of(RUN_ALIGN)
    }

    #[test]
    fn has_room_says_whether_reserve_keeps_the_pending_bytes_in_place() {
        let pool = BlockPool::new(4096, 4);
        let mut arena = Arena::new(pool);
        assert!(!arena.has_room(1), "no block yet");
        read_into(&mut arena, &[7u8; 1000]);
        let at = arena.pending().as_ptr();
        // 1000 pending bytes and 3096 more fill the block exactly.
        assert!(arena.has_room(3096));
        assert!(!arena.has_room(3097));
        arena.reserve(3096, &|| {});
        assert_eq!(
            arena.pending().as_ptr(),
            at,
            "moved although there was room"
        );
        assert_eq!(arena.pending(), &[7u8; 1000][..]);
        // Without room, the pending bytes go elsewhere.
        let kept = arena.split_run(500);
        assert!(!arena.has_room(4000));
        arena.reserve(4000, &|| {});
        assert_ne!(arena.pending().as_ptr(), at.wrapping_add(500));
        assert_eq!(arena.pending(), &[7u8; 500][..]);
        drop(kept);
    }

    #[test]
    fn a_reader_waits_for_a_block_while_the_limit_is_alive() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pool = BlockPool::new(16, 2);
        let mut first = Arena::new(pool.clone());
        let mut second = Arena::new(pool.clone());
        read_into(&mut first, &[1u8; 16]);
        read_into(&mut second, &[2u8; 16]);
        let held = first.split_run(16);
        assert_eq!(pool.lock().alive, 2);
        let flushed = Arc::new(AtomicBool::new(false));
        let (pool3, flushed3) = (pool.clone(), flushed.clone());
        let third = std::thread::spawn(move || {
            let mut arena = Arena::new(pool3);
            arena.reserve(8, &|| flushed3.store(true, Ordering::SeqCst));
            std::time::Instant::now()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!third.is_finished(), "a third block was handed out");
        assert!(
            flushed.load(Ordering::SeqCst),
            "the reader did not flush first"
        );
        // The first block comes back once its run and its arena let go.
        let released = std::time::Instant::now();
        drop(held);
        drop(first);
        let got = third.join().unwrap();
        assert!(got >= released);
        assert!(got - released < WAIT_AT_MOST, "woken only by the timeout");
        // The third reader's arena ended with its thread: the second's
        // block is the one left.
        assert_eq!(pool.lock().alive, 1);
    }

    #[test]
    fn blocks_kept_forever_cost_memory_not_a_stuck_reader() {
        let pool = BlockPool::new(16, 2);
        let mut arenas: Vec<Arena> = (0..2).map(|_| Arena::new(pool.clone())).collect();
        let held: Vec<Bytes> = arenas
            .iter_mut()
            .map(|a| {
                read_into(a, &[3u8; 16]);
                a.split_run(16)
            })
            .collect();
        let started = std::time::Instant::now();
        let mut over = Arena::new(pool.clone());
        read_into(&mut over, b"more");
        assert!(started.elapsed() >= WAIT_AT_MOST);
        assert_eq!(over.pending(), b"more");
        assert_eq!(pool.lock().alive, 3);
        drop(held);
    }

    #[test]
    fn runs_start_aligned_are_padded_and_keep_their_bytes() {
        let pool = BlockPool::new(4096, 4);
        let mut arena = Arena::new(pool.clone());
        read_into(&mut arena, b"hello world");
        let hello = arena.split_run(5);
        assert!(aligned(&hello));
        assert_eq!(hello.len(), RUN_ALIGN);
        // The padding is the pending bytes that follow, then zeros.
        assert_eq!(&hello[..11], b"hello world");
        assert!(hello[11..].iter().all(|b| *b == 0));
        assert_eq!(arena.pending(), b" world");
        // The pending bytes move past the run, to an aligned place, and
        // more is read after them without touching the run.
        read_into(&mut arena, &[7u8; 600]);
        assert_eq!(&arena.pending()[..6], b" world");
        let rest = arena.split_run(606);
        assert!(aligned(&rest));
        assert_eq!(rest.len(), 1024);
        assert_eq!(&rest[..6], b" world");
        assert_eq!(&rest[6..606], &[7u8; 600][..]);
        assert!(rest[606..].iter().all(|b| *b == 0));
        assert_eq!(&hello[..11], b"hello world");
        assert!(hello[11..].iter().all(|b| *b == 0));
        assert!(arena.pending().is_empty());
    }

    #[test]
    fn padding_never_shows_bytes_of_an_earlier_use_of_the_block() {
        let pool = BlockPool::new(RUN_ALIGN, 2);
        let mut arena = Arena::new(pool.clone());
        read_into(&mut arena, &[0xaa; RUN_ALIGN]);
        drop(arena.split_run(RUN_ALIGN));
        // The block is unshared again: it is reused from its start.
        read_into(&mut arena, b"abc");
        let run = arena.split_run(3);
        assert_eq!(&run[..3], b"abc");
        assert!(run[3..].iter().all(|b| *b == 0), "stale bytes in padding");
        assert_eq!(pool.lock().alive, 1);
    }

    #[test]
    fn a_shared_block_is_left_and_large_reads_get_their_own() {
        let pool = BlockPool::new(1024, 4);
        let mut arena = Arena::new(pool.clone());
        read_into(&mut arena, &[1u8; 700]);
        let first = arena.split_run(600);
        // 100 bytes pending; 600 more do not fit after the run (1024 bytes)
        // and the block is shared: another block, pending bytes first.
        read_into(&mut arena, &[2u8; 600]);
        assert_eq!(arena.pending()[..100], [1u8; 100]);
        assert_eq!(arena.pending()[100..], [2u8; 600]);
        assert_eq!(pool.lock().alive, 2);
        assert!(first[..600].iter().all(|b| *b == 1));
        drop(first);
        assert_eq!(pool.lock().free.len(), 1, "the first block came back");
        // More than a block: a block of its own, not pooled afterwards.
        arena.clear_pending();
        read_into(&mut arena, &[3u8; 3000]);
        let big = arena.split_run(3000);
        assert!(aligned(&big));
        assert_eq!(&big[..3000], &[3u8; 3000][..]);
        drop(big);
        drop(arena);
        assert_eq!(pool.lock().alive, 0);
        assert!(pool.lock().free.len() <= 2);
    }

    /// What a reader does next, for the property test below.
    #[derive(Debug, Clone)]
    enum Step {
        /// Read this many bytes (of a value that changes every read).
        Read(usize),
        /// Hand out this share (in 1/8ths, rounded down) of the pending bytes.
        Split(u8),
        /// Drop the run handed out this many runs ago (if still held).
        Drop(usize),
        ClearPending,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (1usize..3000).prop_map(Step::Read),
            (0u8..=8).prop_map(Step::Split),
            (0usize..6).prop_map(Step::Drop),
            Just(Step::ClearPending),
        ]
    }

    proptest::proptest! {
        /// Whatever a reader does, every run it has handed out keeps its
        /// bytes, a run split right after a read starts aligned and is
        /// padded, and the pending bytes are those read and not yet handed
        /// out.
        #[test]
        fn runs_keep_their_bytes_whatever_the_reader_does(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            // Enough blocks that no step waits for one.
            let pool = BlockPool::new(4096, 64);
            let mut arena = Arena::new(pool.clone());
            let mut pending: Vec<u8> = Vec::new();
            let mut held: Vec<(Bytes, Vec<u8>)> = Vec::new();
            let mut value = 0u8;
            let mut after_read = false;
            for step in steps {
                match step {
                    Step::Read(n) => {
                        value = value.wrapping_add(1);
                        let data: Vec<u8> =
                            (0..n).map(|i| value ^ (i as u8).wrapping_mul(31)).collect();
                        read_into(&mut arena, &data);
                        pending.extend_from_slice(&data);
                        after_read = true;
                    }
                    Step::Split(eighths) => {
                        let len = pending.len() * usize::from(eighths) / 8;
                        let run = arena.split_run(len);
                        if len > 0 {
                            proptest::prop_assert!(aligned(&run) || !after_read);
                            after_read = false;
                            proptest::prop_assert_eq!(&run[..len], &pending[..len]);
                            held.push((run, pending[..len].to_vec()));
                            pending.drain(..len);
                        }
                    }
                    Step::Drop(back) => {
                        if back < held.len() {
                            held.remove(held.len() - 1 - back);
                        }
                    }
                    Step::ClearPending => {
                        arena.clear_pending();
                        pending.clear();
                    }
                }
                proptest::prop_assert_eq!(arena.pending(), &pending[..]);
                for (run, bytes) in &held {
                    proptest::prop_assert_eq!(&run[..bytes.len()], &bytes[..]);
                }
            }
        }
    }
}
