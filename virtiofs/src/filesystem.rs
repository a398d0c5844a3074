//! [`StoreFs`]: the FUSE operations a virtio-fs guest sends, answered by a
//! [`CairnFs`], read-only.
//!
//! fuse-backend-rs decodes each request and calls the [`FileSystem`] method
//! for it on the queue's thread; requests that have to wait for the store
//! block that thread on the filesystem's tokio runtime (answers from the
//! caches return at once). The kernel is told the content is immutable:
//! long entry and attribute timeouts, `FOPEN_KEEP_CACHE`, cached directory
//! listings and symlinks, readdirplus and 1 MiB requests.
//!
//! With [`WholeFiles`] set, a file that has a whole-file copy on local disk
//! is read from that copy, straight into the guest's buffers (one `preadv`,
//! as a directory-sharing daemon does); other files go through the chunk
//! cache, and opening one counts toward its copy being written.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_castore::NodeKind;
use cairn_fs::core::{BLOCK_SIZE, MTIME_SECS};
use cairn_fs::{Attr, CairnFs, FsError, WholeFiles};
use fuse_backend_rs::abi::fuse_abi::{stat64, statvfs64};
use fuse_backend_rs::api::filesystem::{
    Context, DirEntry, Entry, FileSystem, FsOptions, GetxattrReply, ListxattrReply, OpenOptions,
    ZeroCopyWriter,
};

/// The inode number of the root directory (FUSE's and the core's).
const ROOT_INO: u64 = 1;

/// How long the guest kernel may cache names and attributes.
#[derive(Debug, Clone, Copy)]
pub struct CacheTimeouts {
    /// Attributes and names below the root (store path contents never change).
    pub ttl: Duration,
    /// Names in the root (store paths come and go).
    pub root_entry_ttl: Duration,
}

impl Default for CacheTimeouts {
    fn default() -> Self {
        CacheTimeouts {
            ttl: Duration::from_secs(365 * 24 * 3600),
            root_entry_ttl: Duration::from_secs(60),
        }
    }
}

/// A [`CairnFs`] as a fuse-backend-rs [`FileSystem`].
pub struct StoreFs {
    fs: Arc<CairnFs>,
    timeouts: CacheTimeouts,
    whole_files: Option<Arc<WholeFiles>>,
    /// Open handles read from whole-file copies (handles with
    /// [`COPY_HANDLE`] set), with the copy's size.
    copies: Mutex<HashMap<u64, (Arc<File>, u64)>>,
    next_copy: AtomicU64,
}

/// Handles of files read from whole-file copies are the transport's own.
const COPY_HANDLE: u64 = cairn_fs::core::TRANSPORT_HANDLE;

fn io_error(err: &FsError) -> io::Error {
    io::Error::from_raw_os_error(err.errno())
}

fn file_type_bits(kind: NodeKind) -> u32 {
    match kind {
        NodeKind::Directory => libc::S_IFDIR,
        NodeKind::File => libc::S_IFREG,
        NodeKind::Symlink => libc::S_IFLNK,
    }
}

fn dirent_type(kind: NodeKind) -> u32 {
    u32::from(match kind {
        NodeKind::Directory => libc::DT_DIR,
        NodeKind::File => libc::DT_REG,
        NodeKind::Symlink => libc::DT_LNK,
    })
}

fn stat_of(attr: &Attr) -> stat64 {
    // SAFETY: stat64 is plain old data; all-zero is a valid value.
    let mut st: stat64 = unsafe { std::mem::zeroed() };
    st.st_ino = attr.ino;
    st.st_mode = file_type_bits(attr.kind) | u32::from(attr.perm);
    st.st_nlink = u64::from(attr.nlink);
    st.st_size = i64::try_from(attr.size).unwrap_or(i64::MAX);
    st.st_blocks = i64::try_from(attr.blocks).unwrap_or(i64::MAX);
    st.st_blksize = i64::from(BLOCK_SIZE);
    let mtime = MTIME_SECS as i64;
    st.st_atime = mtime;
    st.st_mtime = mtime;
    st.st_ctime = mtime;
    st
}

impl StoreFs {
    pub fn new(fs: Arc<CairnFs>, timeouts: CacheTimeouts) -> StoreFs {
        StoreFs {
            fs,
            timeouts,
            whole_files: None,
            copies: Mutex::new(HashMap::new()),
            next_copy: AtomicU64::new(0),
        }
    }

    /// Reads files that have whole-file copies from those copies, and has
    /// copies written for files opened again.
    pub fn with_whole_files(mut self, whole_files: Option<Arc<WholeFiles>>) -> StoreFs {
        self.whole_files = whole_files;
        self
    }

    fn lock_copies(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Arc<File>, u64)>> {
        self.copies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A handle on the whole-file copy of file `inode`, if it has one.
    fn open_copy(&self, inode: u64) -> Option<u64> {
        let files = self.whole_files.as_ref()?;
        let (blob, size) = self.fs.file_blob(inode).ok()?;
        let copy = files.open_copy(&blob, size)?;
        let handle = self.next_copy.fetch_add(1, Ordering::Relaxed) | COPY_HANDLE;
        // `open_copy` checked the copy's size against the blob's.
        self.lock_copies().insert(handle, (Arc::new(copy), size));
        Some(handle)
    }

    /// Copies up to `size` bytes at `offset` of a whole-file copy into the
    /// guest's buffers.
    fn read_copy(
        &self,
        handle: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
    ) -> io::Result<usize> {
        let (copy, len) = self
            .lock_copies()
            .get(&handle)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let want =
            usize::try_from(len.saturating_sub(offset).min(u64::from(size))).unwrap_or(usize::MAX);
        // fuse-backend-rs reads through `&mut File`; positioned reads
        // (preadv) leave the descriptor's state alone, so a second File on
        // the same descriptor, never closed, serves concurrent reads.
        // SAFETY: the descriptor stays open while `copy` lives, which
        // outlives `file`; ManuallyDrop keeps `file` from closing it.
        let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(copy.as_raw_fd()) });
        let mut done = 0;
        while done < want {
            let n = w.write_from(&mut *file, want - done, offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// The filesystem served.
    pub fn core(&self) -> &Arc<CairnFs> {
        &self.fs
    }

    fn entry(&self, parent: u64, attr: &Attr) -> Entry {
        Entry {
            inode: attr.ino,
            generation: 0,
            attr: stat_of(attr),
            attr_flags: 0,
            attr_timeout: self.timeouts.ttl,
            entry_timeout: if parent == ROOT_INO {
                self.timeouts.root_entry_ttl
            } else {
                self.timeouts.ttl
            },
        }
    }

    /// Runs a request that may have to wait for the store on the
    /// filesystem's runtime, blocking this (queue) thread.
    fn wait<T>(&self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        {
            // Answers from the caches are ready at the first poll: no
            // runtime round trip for them.
            let _enter = self.fs.runtime().enter();
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if let std::task::Poll::Ready(value) = work.as_mut().poll(&mut cx) {
                return value;
            }
        }
        self.fs.runtime().block_on(work)
    }

    fn xattr_value(value: Vec<u8>, size: u32) -> io::Result<GetxattrReply> {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        if size == 0 {
            Ok(GetxattrReply::Count(len))
        } else if len > size {
            Err(io::Error::from_raw_os_error(libc::ERANGE))
        } else {
            Ok(GetxattrReply::Value(value))
        }
    }

    fn list(
        &self,
        handle: u64,
        offset: u64,
        plus: bool,
        add_entry: &mut dyn FnMut(&cairn_fs::DirEntry<'_>) -> io::Result<usize>,
    ) -> io::Result<()> {
        let mut failure = None;
        self.fs
            .readdir(handle, offset, plus, |entry| match add_entry(entry) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => {
                    failure = Some(e);
                    true
                }
            })
            .map_err(|e| io_error(&e))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl FileSystem for StoreFs {
    type Inode = u64;
    type Handle = u64;

    fn init(&self, capable: FsOptions) -> io::Result<FsOptions> {
        let wanted = FsOptions::ASYNC_READ
            | FsOptions::DO_READDIRPLUS
            | FsOptions::READDIRPLUS_AUTO
            | FsOptions::PARALLEL_DIROPS
            | FsOptions::CACHE_SYMLINKS
            | FsOptions::MAX_PAGES
            | FsOptions::BIG_WRITES;
        let enabled = wanted & capable;
        tracing::debug!(?capable, ?enabled, "virtio-fs session initialised");
        Ok(enabled)
    }

    fn lookup(&self, _ctx: &Context, parent: u64, name: &CStr) -> io::Result<Entry> {
        let span = tracing::debug_span!("virtiofs_lookup", parent);
        let _enter = span.enter();
        let attr = self
            .wait(self.fs.lookup(parent, name.to_bytes()))
            .map_err(|e| io_error(&e))?;
        Ok(self.entry(parent, &attr))
    }

    fn forget(&self, _ctx: &Context, inode: u64, count: u64) {
        self.fs.forget(inode, count);
    }

    fn batch_forget(&self, _ctx: &Context, requests: Vec<(u64, u64)>) {
        for (inode, count) in requests {
            self.fs.forget(inode, count);
        }
    }

    fn getattr(
        &self,
        _ctx: &Context,
        inode: u64,
        _handle: Option<u64>,
    ) -> io::Result<(stat64, Duration)> {
        let attr = self.fs.getattr(inode).map_err(|e| io_error(&e))?;
        Ok((stat_of(&attr), self.timeouts.ttl))
    }

    fn readlink(&self, _ctx: &Context, inode: u64) -> io::Result<Vec<u8>> {
        self.fs
            .readlink(inode)
            .map(|target| target.to_vec())
            .map_err(|e| io_error(&e))
    }

    fn open(
        &self,
        _ctx: &Context,
        inode: u64,
        flags: u32,
        _fuse_flags: u32,
    ) -> io::Result<(Option<u64>, OpenOptions, Option<u32>)> {
        if flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32 {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        let span = tracing::debug_span!("virtiofs_open", inode);
        let _enter = span.enter();
        if let Some(handle) = self.open_copy(inode) {
            return Ok((Some(handle), OpenOptions::KEEP_CACHE, None));
        }
        let handle = self.wait(self.fs.open(inode)).map_err(|e| io_error(&e))?;
        if let Some(files) = &self.whole_files
            && let Some((blob, map)) = self.fs.opened_blob(handle)
        {
            files.note_open(blob, &map, self.fs.chunk_cache(), self.fs.runtime());
        }
        Ok((Some(handle), OpenOptions::KEEP_CACHE, None))
    }

    fn read(
        &self,
        _ctx: &Context,
        _inode: u64,
        handle: u64,
        w: &mut dyn ZeroCopyWriter,
        size: u32,
        offset: u64,
        _lock_owner: Option<u64>,
        _flags: u32,
    ) -> io::Result<usize> {
        if handle & COPY_HANDLE != 0 {
            return self.read_copy(handle, w, size, offset);
        }
        // Each slice of a cached chunk goes straight into the guest's
        // buffers: one copy per byte, no joined intermediate buffer.
        let slices = self
            .wait(self.fs.read_slices(handle, offset, size))
            .map_err(|e| io_error(&e))?;
        let mut written = 0;
        for slice in &slices {
            w.write_all(slice)?;
            written += slice.len();
        }
        Ok(written)
    }

    fn flush(&self, _ctx: &Context, _inode: u64, _handle: u64, _lock_owner: u64) -> io::Result<()> {
        Ok(())
    }

    fn release(
        &self,
        _ctx: &Context,
        _inode: u64,
        _flags: u32,
        handle: u64,
        _flush: bool,
        _flock_release: bool,
        _lock_owner: Option<u64>,
    ) -> io::Result<()> {
        if handle & COPY_HANDLE != 0 {
            self.lock_copies().remove(&handle);
        } else {
            self.fs.release(handle);
        }
        Ok(())
    }

    fn statfs(&self, _ctx: &Context, _inode: u64) -> io::Result<statvfs64> {
        let stats = self.fs.statfs();
        // SAFETY: statvfs64 is plain old data; all-zero is a valid value.
        let mut st: statvfs64 = unsafe { std::mem::zeroed() };
        st.f_bsize = u64::from(stats.block_size);
        st.f_frsize = u64::from(stats.block_size);
        st.f_blocks = stats.blocks;
        st.f_files = stats.files;
        st.f_namemax = u64::from(stats.name_len);
        Ok(st)
    }

    fn getxattr(
        &self,
        _ctx: &Context,
        inode: u64,
        name: &CStr,
        size: u32,
    ) -> io::Result<GetxattrReply> {
        let value = self
            .fs
            .getxattr(inode, name.to_bytes())
            .map_err(|e| io_error(&e))?;
        Self::xattr_value(value, size)
    }

    fn listxattr(&self, _ctx: &Context, inode: u64, size: u32) -> io::Result<ListxattrReply> {
        let names = self.fs.listxattr(inode).map_err(|e| io_error(&e))?;
        let len = u32::try_from(names.len()).unwrap_or(u32::MAX);
        if size == 0 {
            Ok(ListxattrReply::Count(len))
        } else if len > size {
            Err(io::Error::from_raw_os_error(libc::ERANGE))
        } else {
            Ok(ListxattrReply::Names(names))
        }
    }

    fn opendir(
        &self,
        _ctx: &Context,
        inode: u64,
        _flags: u32,
    ) -> io::Result<(Option<u64>, OpenOptions)> {
        let span = tracing::debug_span!("virtiofs_opendir", inode);
        let _enter = span.enter();
        let handle = self
            .wait(self.fs.opendir(inode))
            .map_err(|e| io_error(&e))?;
        // Listings of store paths never change; the root's may.
        let options = if inode == ROOT_INO {
            OpenOptions::empty()
        } else {
            OpenOptions::KEEP_CACHE | OpenOptions::CACHE_DIR
        };
        Ok((Some(handle), options))
    }

    fn readdir(
        &self,
        _ctx: &Context,
        _inode: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry) -> io::Result<usize>,
    ) -> io::Result<()> {
        self.list(handle, offset, false, &mut |entry| {
            add_entry(DirEntry {
                ino: entry.ino,
                offset: entry.next_offset,
                type_: dirent_type(entry.kind),
                name: entry.name,
            })
        })
    }

    fn readdirplus(
        &self,
        _ctx: &Context,
        inode: u64,
        handle: u64,
        _size: u32,
        offset: u64,
        add_entry: &mut dyn FnMut(DirEntry, Entry) -> io::Result<usize>,
    ) -> io::Result<()> {
        self.list(handle, offset, true, &mut |entry| {
            let dirent = DirEntry {
                ino: entry.ino,
                offset: entry.next_offset,
                type_: dirent_type(entry.kind),
                name: entry.name,
            };
            // `.` and `..` hold no reference: an entry with inode 0 tells
            // the kernel not to instantiate them.
            let dot = entry.name == b"." || entry.name == b"..";
            let entry = match &entry.attr {
                Some(attr) if !dot => self.entry(inode, attr),
                _ => Entry {
                    inode: 0,
                    generation: 0,
                    // SAFETY: plain old data; all-zero is valid.
                    attr: unsafe { std::mem::zeroed() },
                    attr_flags: 0,
                    attr_timeout: Duration::ZERO,
                    entry_timeout: Duration::ZERO,
                },
            };
            add_entry(dirent, entry)
        })
    }

    fn releasedir(&self, _ctx: &Context, _inode: u64, _flags: u32, handle: u64) -> io::Result<()> {
        self.fs.releasedir(handle);
        Ok(())
    }

    fn access(&self, _ctx: &Context, inode: u64, mask: u32) -> io::Result<()> {
        self.fs.getattr(inode).map_err(|e| io_error(&e))?;
        if mask & libc::W_OK as u32 != 0 {
            return Err(io::Error::from_raw_os_error(libc::EROFS));
        }
        Ok(())
    }
}
