//! Reusable chunk buffers for imports.
//!
//! An import copies every chunk out of its read buffer into memory that
//! lives until the chunk is stored, by another thread. Left to the global
//! allocator, that memory is freed on one thread and allocated on another,
//! and much of it comes back from the kernel as freshly zeroed pages. A pool
//! per import keeps the same few megabytes cycling instead: buffers come in
//! power-of-two size classes and return to the pool when the last `Bytes`
//! pointing into them is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Smallest size class (1 KiB); smaller chunks still take a buffer of it.
const MIN_CLASS_SHIFT: u32 = 10;
/// Number of size classes: 1 KiB .. 16 MiB.
const CLASSES: usize = 15;

/// A pool of chunk buffers in power-of-two size classes.
pub struct BufferPool {
    classes: [Mutex<Vec<Vec<u8>>>; CLASSES],
    /// Bytes the pool may keep idle, over all classes.
    idle_limit: usize,
    /// Bytes idle in the pool now.
    idle: AtomicUsize,
}

impl BufferPool {
    /// A pool keeping at most `idle_limit` idle bytes (all classes together).
    pub fn new(idle_limit: usize) -> Arc<BufferPool> {
        Arc::new(BufferPool {
            classes: std::array::from_fn(|_| Mutex::new(Vec::new())),
            idle_limit,
            idle: AtomicUsize::new(0),
        })
    }

    /// The class of a buffer holding `len` bytes, if pooled at all.
    fn class_of(len: usize) -> Option<usize> {
        let shift = len
            .max(1 << MIN_CLASS_SHIFT)
            .next_power_of_two()
            .trailing_zeros();
        let class = (shift - MIN_CLASS_SHIFT) as usize;
        (class < CLASSES).then_some(class)
    }

    /// `data` copied into a pooled buffer.
    pub fn copy(self: &Arc<Self>, data: &[u8]) -> Bytes {
        let Some(class) = BufferPool::class_of(data.len()) else {
            return Bytes::copy_from_slice(data);
        };
        let reused = self.classes[class]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        if let Some(buf) = &reused {
            self.idle.fetch_sub(buf.capacity(), Ordering::Relaxed);
        }
        let mut buf =
            reused.unwrap_or_else(|| Vec::with_capacity(1 << (class as u32 + MIN_CLASS_SHIFT)));
        buf.clear();
        buf.extend_from_slice(data);
        Bytes::from_owner(PooledBuffer {
            buf,
            class,
            pool: self.clone(),
        })
    }
}

/// A buffer on loan from a [`BufferPool`].
struct PooledBuffer {
    buf: Vec<u8>,
    class: usize,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let pool = &self.pool;
        let capacity = buf.capacity();
        if pool.idle.fetch_add(capacity, Ordering::Relaxed) + capacity <= pool.idle_limit {
            pool.classes[self.class]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(buf);
        } else {
            pool.idle.fetch_sub(capacity, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_exact_and_buffers_come_back() {
        let pool = BufferPool::new(1 << 20);
        let a = pool.copy(&[7u8; 3000]);
        assert_eq!(&a[..], &[7u8; 3000][..]);
        let first = a.as_ptr();
        drop(a);
        // The same class hands the returned buffer out again.
        let b = pool.copy(&[9u8; 2500]);
        assert_eq!(b.as_ptr(), first);
        assert_eq!(&b[..], &[9u8; 2500][..]);
        // Slices keep the buffer alive until the last one goes.
        let c = b.slice(10..20);
        drop(b);
        let d = pool.copy(&[1u8; 2500]);
        assert_ne!(d.as_ptr(), first);
        assert_eq!(&c[..], &[9u8; 10][..]);
    }

    #[test]
    fn sizes_outside_the_classes_still_copy() {
        let pool = BufferPool::new(1 << 20);
        assert_eq!(&pool.copy(&[])[..], &[][..] as &[u8]);
        let big = vec![3u8; 20 << 20];
        assert_eq!(pool.copy(&big).len(), big.len());
        assert_eq!(BufferPool::class_of(1), Some(0));
        assert_eq!(BufferPool::class_of(1025), Some(1));
        assert_eq!(BufferPool::class_of(16 << 20), Some(14));
        assert_eq!(BufferPool::class_of((16 << 20) + 1), None);
    }
}
