//! Read-only memory maps of pack files.
//!
//! Raw chunks are served straight out of a shared, read-only map of their
//! pack: no read system call, no copy and no allocation per chunk; the bytes
//! handed out are a [`Bytes`] that keeps the map alive. Packs are append-only
//! and never truncated while the store is in use, which is what makes
//! mapping them sound: a map only ever covers bytes that were written before
//! it was made, and those bytes never change.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;

use bytes::Bytes;

/// A read-only shared mapping of the first `len` bytes of a pack file.
pub struct PackMap {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and immutable for its whole lifetime
// (see the module comment); the pointer is only read through shared slices.
unsafe impl Send for PackMap {}
// SAFETY: as above.
unsafe impl Sync for PackMap {}

impl PackMap {
    /// Maps the whole of `file` as it is now. `None` for an empty file.
    pub fn of(file: &File) -> std::io::Result<Option<Arc<PackMap>>> {
        let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address),
        // of a valid descriptor; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(Arc::new(PackMap {
            ptr: ptr as *const u8,
            len,
        })))
    }

    /// Mapped bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is mapped (never true for a map made by [`PackMap::of`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes at `offset..offset + len`, if mapped.
    pub fn get(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: start..end lies within the live, read-only mapping.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) })
    }

    /// The bytes at `offset..offset + len` as `Bytes` that keep the map alive.
    pub fn bytes(self: &Arc<Self>, offset: u64, len: usize) -> Option<Bytes> {
        self.get(offset, len)?;
        Some(Bytes::from_owner(MappedRange {
            map: self.clone(),
            offset: offset as usize,
            len,
        }))
    }
}

impl Drop for PackMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; no slice outlives
        // the map (MappedRange holds an Arc to it).
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

/// A range of a mapped pack, owned by a [`Bytes`].
struct MappedRange {
    map: Arc<PackMap>,
    offset: usize,
    len: usize,
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        self.map
            .get(self.offset as u64, self.len)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_what_was_written_and_refuses_beyond() {
        let mut file = tempfile::tempfile().expect("tempfile");
        assert!(PackMap::of(&file).expect("map").is_none());
        file.write_all(b"hello, pack").expect("write");
        let map = PackMap::of(&file).expect("map").expect("non-empty");
        assert_eq!(map.len(), 11);
        assert_eq!(map.get(7, 4), Some(&b"pack"[..]));
        assert_eq!(map.get(7, 5), None);
        assert_eq!(map.get(u64::MAX, 1), None);
        let bytes = map.bytes(0, 5).expect("in range");
        drop(map);
        // The Bytes keep the mapping alive.
        assert_eq!(&bytes[..], b"hello");
    }
}
