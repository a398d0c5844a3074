//! Read buffers for imports, whose chunks are handed on without a copy.
//!
//! Files are read into large blocks ([`Arena`]): small files one after
//! another into the same block, large ones a step at a time. Each chunk cut
//! from what was read leaves as a [`Bytes`] slice of its block, so the
//! store gets the bytes the kernel copied in, not a copy of them. A block
//! goes back to its [`BlockPool`] when the arena has moved on and the last
//! of its chunks is dropped (the local store drops them as soon as it has
//! copied them into its pack buffer); the next block is then that same
//! memory, already faulted in, not fresh pages.

use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

/// Blocks kept for reuse by one import, and a bound on how many are alive.
///
/// Memory an import touches for the first time costs far more than memory
/// it touches again (the kernel zeroes each new page, and a virtual machine
/// may have to back it first), so an import keeps few blocks and reuses
/// them: a reader that needs a block while `limit` blocks are alive waits
/// until the store has copied the chunks of one and let it go.
pub(crate) struct BlockPool {
    state: Mutex<PoolState>,
    returned: Condvar,
    block_size: usize,
    limit: usize,
}

/// The longest a reader waits for a block to come back before taking one
/// over the limit.
const WAIT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(2);

struct PoolState {
    free: Vec<Box<[u8]>>,
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
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A block of at least `len` bytes: a pooled one if it is large enough.
    /// While `limit` blocks are alive, calls `before_waiting` (which must
    /// let the chunks of blocks go on to the store) and waits for one.
    fn take(self: &Arc<Self>, len: usize, before_waiting: &dyn Fn()) -> Arc<Block> {
        let memory = if len <= self.block_size {
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
                let (woken, timeout) = self
                    .returned
                    .wait_timeout(state, WAIT_AT_MOST)
                    .unwrap_or_else(|p| p.into_inner());
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
            pooled.unwrap_or_else(|| vec![0u8; self.block_size].into_boxed_slice())
        } else {
            vec![0u8; len].into_boxed_slice()
        };
        let len = memory.len();
        Arc::new(Block {
            ptr: Box::into_raw(memory).cast::<u8>(),
            len,
            pool: self.clone(),
        })
    }
}

/// One block of memory, shared by the arena filling it and the chunks cut
/// from it.
///
/// The bytes before the arena's fill mark are only ever read (through
/// [`BlockSlice`]s); the bytes after it are only written, by the arena that
/// owns the block, and no slice covers them. The arena writes over earlier
/// bytes again only once it holds the only reference to the block.
struct Block {
    ptr: *mut u8,
    len: usize,
    pool: Arc<BlockPool>,
}

// SAFETY: see the type's comment: shared bytes are never written, and the
// bytes written are reachable from one arena only.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from Box::into_raw of a boxed slice of len
        // bytes, and this is the last reference to it.
        let memory =
            unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.len)) };
        if memory.len() == self.pool.block_size {
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
        // SAFETY: start..start + len lies within the block, before the fill
        // mark it had when the slice was cut: those bytes are never written
        // while the slice exists (see `Block`).
        unsafe { std::slice::from_raw_parts(self.block.ptr.add(self.start), self.len) }
    }
}

/// Where one reader puts what it reads: a current block, the bytes read but
/// not yet handed out (`start..end`), and free room after them.
pub(crate) struct Arena {
    pool: Arc<BlockPool>,
    block: Option<Arc<Block>>,
    start: usize,
    end: usize,
}

impl Arena {
    pub(crate) fn new(pool: Arc<BlockPool>) -> Arena {
        Arena {
            pool,
            block: None,
            start: 0,
            end: 0,
        }
    }

    /// Forgets the bytes read but not handed out.
    pub(crate) fn clear_pending(&mut self) {
        self.end = self.start;
    }

    /// Makes room for `additional` bytes after the pending ones, keeping
    /// those contiguous: in place if there is room, at the block's start if
    /// no chunk of it is still out, else in another block.
    /// `before_waiting` is called if the pool makes it wait (see
    /// [`BlockPool`]).
    pub(crate) fn reserve(&mut self, additional: usize, before_waiting: &dyn Fn()) {
        let pending = self.end - self.start;
        if let Some(block) = &mut self.block {
            if block.len - self.end >= additional {
                return;
            }
            if pending + additional <= block.len && Arc::get_mut(block).is_some() {
                // SAFETY: this arena holds the only reference to the block
                // (get_mut synchronizes with the drops of every slice), and
                // start..end lies within it.
                unsafe { std::ptr::copy(block.ptr.add(self.start), block.ptr, pending) };
                self.start = 0;
                self.end = pending;
                return;
            }
        }
        let fresh = self.pool.take(pending + additional, before_waiting);
        if let Some(old) = &self.block {
            // SAFETY: the pending bytes of the old block are initialized and
            // never written while read here; the new block is not shared.
            unsafe { std::ptr::copy_nonoverlapping(old.ptr.add(self.start), fresh.ptr, pending) };
        }
        self.block = Some(fresh);
        self.start = 0;
        self.end = pending;
    }

    /// The free room after the pending bytes (see [`Arena::reserve`]).
    pub(crate) fn spare_mut(&mut self) -> &mut [u8] {
        match &self.block {
            // SAFETY: end..len lies within the block, no slice covers it
            // (slices end at or before `start`), and `&mut self` makes this
            // the only writer.
            Some(block) => unsafe {
                std::slice::from_raw_parts_mut(block.ptr.add(self.end), block.len - self.end)
            },
            None => &mut [],
        }
    }

    /// Marks `n` bytes of the free room as read.
    pub(crate) fn fill(&mut self, n: usize) {
        let len = self.block.as_ref().map_or(0, |b| b.len);
        self.end = (self.end + n).min(len);
    }

    /// The bytes read and not yet handed out.
    pub(crate) fn pending(&self) -> &[u8] {
        match &self.block {
            // SAFETY: start..end lies within the block and is only written
            // through `&mut self`.
            Some(block) => unsafe {
                std::slice::from_raw_parts(block.ptr.add(self.start), self.end - self.start)
            },
            None => &[],
        }
    }

    /// Hands out the first `len` pending bytes as a slice of the block.
    pub(crate) fn split(&mut self, len: usize) -> Bytes {
        let len = len.min(self.end - self.start);
        let Some(block) = &self.block else {
            return Bytes::new();
        };
        let slice = BlockSlice {
            block: block.clone(),
            start: self.start,
            len,
        };
        self.start += len;
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

    #[test]
    fn a_reader_waits_for_a_block_while_the_limit_is_alive() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let pool = BlockPool::new(16, 2);
        let mut first = Arena::new(pool.clone());
        let mut second = Arena::new(pool.clone());
        read_into(&mut first, &[1u8; 16]);
        read_into(&mut second, &[2u8; 16]);
        let held = first.split(16);
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
        // The first block comes back once its slice and its arena let go.
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
                a.split(16)
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
    fn slices_keep_their_bytes_and_blocks_come_back() {
        let pool = BlockPool::new(64, 4);
        let mut arena = Arena::new(pool.clone());
        read_into(&mut arena, b"hello world");
        let hello = arena.split(5);
        assert_eq!(arena.pending(), b" world");
        let rest = arena.split(6);
        assert_eq!(&hello[..], b"hello");
        assert_eq!(&rest[..], b" world");
        // 60 more bytes do not fit after the 11 used: the block is still
        // shared by the slices, so another block is taken.
        read_into(&mut arena, &[7u8; 60]);
        assert_eq!(arena.pending(), &[7u8; 60][..]);
        assert_eq!(&hello[..], b"hello");
        drop((hello, rest));
        assert_eq!(pool.lock().free.len(), 1, "the first block came back");
        // Room is left in the block: the pending bytes grow in place.
        read_into(&mut arena, b"xy");
        let all = arena.split(62);
        assert_eq!(&all[..60], &[7u8; 60][..]);
        assert_eq!(&all[60..], b"xy");
    }

    #[test]
    fn an_unshared_block_is_reused_in_place_and_large_reads_get_their_own() {
        let pool = BlockPool::new(32, 4);
        let mut arena = Arena::new(pool.clone());
        read_into(&mut arena, &[1u8; 30]);
        drop(arena.split(28));
        // Only the arena refers to the block now: the 2 pending bytes move
        // to its start and the block is filled again.
        read_into(&mut arena, &[2u8; 20]);
        assert_eq!(arena.pending()[..2], [1, 1]);
        assert_eq!(arena.pending()[2..], [2u8; 20]);
        assert!(pool.lock().free.is_empty());
        // More than a block: a block of its own, not pooled afterwards.
        arena.clear_pending();
        read_into(&mut arena, &[3u8; 100]);
        let big = arena.split(100);
        assert_eq!(&big[..], &[3u8; 100][..]);
        drop(big);
        drop(arena);
        assert!(pool.lock().free.len() <= 1);
    }
}
