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

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Blocks kept for reuse by one import.
pub(crate) struct BlockPool {
    free: Mutex<Vec<Box<[u8]>>>,
    block_size: usize,
    /// Idle blocks kept at most.
    keep: usize,
}

impl BlockPool {
    /// A pool of `block_size` blocks keeping at most `keep` idle ones.
    pub(crate) fn new(block_size: usize, keep: usize) -> Arc<BlockPool> {
        Arc::new(BlockPool {
            free: Mutex::new(Vec::new()),
            block_size,
            keep,
        })
    }

    /// A block of at least `len` bytes: a pooled one if it is large enough.
    fn take(self: &Arc<Self>, len: usize) -> Arc<Block> {
        let pooled = if len <= self.block_size {
            self.free.lock().unwrap_or_else(|p| p.into_inner()).pop()
        } else {
            None
        };
        let memory =
            pooled.unwrap_or_else(|| vec![0u8; len.max(self.block_size)].into_boxed_slice());
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
            let mut free = self.pool.free.lock().unwrap_or_else(|p| p.into_inner());
            if free.len() < self.pool.keep {
                free.push(memory);
            }
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
    pub(crate) fn reserve(&mut self, additional: usize) {
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
        let fresh = self.pool.take(pending + additional);
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
        arena.reserve(data.len());
        arena.spare_mut()[..data.len()].copy_from_slice(data);
        arena.fill(data.len());
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
        assert_eq!(
            pool.free.lock().unwrap().len(),
            1,
            "the first block came back"
        );
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
        assert!(pool.free.lock().unwrap().is_empty());
        // More than a block: a block of its own, not pooled afterwards.
        arena.clear_pending();
        read_into(&mut arena, &[3u8; 100]);
        let big = arena.split(100);
        assert_eq!(&big[..], &[3u8; 100][..]);
        drop(big);
        drop(arena);
        assert!(pool.free.lock().unwrap().len() <= 1);
    }
}
