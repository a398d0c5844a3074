//! FUSE passthrough opens of files that have a whole-file copy
//! ([`crate::whole_files`]), and the per-inode bookkeeping the kernel
//! requires for them.
//!
//! The kernel (6.9+) reads a file opened in passthrough mode straight from
//! its backing file, with that file's page cache: no request reaches the
//! daemon. It refuses to mix modes on one inode: while a file of an inode
//! is open through the page cache, a passthrough open of it fails with EIO,
//! and the other way round; and every passthrough open of an inode must name
//! the same backing file. So each inode is in one mode while any of its
//! files is open, decided by its first open: passthrough if a copy exists
//! then, otherwise cached. The counts here are decremented on RELEASE, which
//! the kernel sends after it has closed the file on its side, so they never
//! undercount the kernel's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{BackingId, FileHandle, FopenFlags, ReplyOpen};

use crate::{CairnFs, WholeFiles};

/// File handles of passthrough opens are the transport's own.
pub(crate) const PASSTHROUGH_FH: u64 = crate::core::TRANSPORT_HANDLE;

enum InodeIo {
    /// Files open through the page cache (answered by FUSE reads).
    Cached(u32),
    /// Files open in passthrough mode on `backing`.
    Passthrough { backing: BackingId, opens: u32 },
}

/// What an open is to do.
pub(crate) enum OpenMode {
    /// Answered in passthrough mode already.
    Answered,
    /// Open it through the page cache (the core's open) with this reply.
    Cached(ReplyOpen),
}

/// Passthrough state of one mount.
pub(crate) struct Passthrough {
    files: Arc<WholeFiles>,
    /// The kernel agreed to passthrough at INIT.
    negotiated: AtomicBool,
    /// Registering a backing file failed once (no CAP_SYS_ADMIN, or the
    /// copies' filesystem is refused); no new passthrough opens after that.
    refused: AtomicBool,
    inodes: Mutex<HashMap<u64, InodeIo>>,
    next_fh: AtomicU64,
    opens: AtomicU64,
}

impl Passthrough {
    pub(crate) fn new(files: Arc<WholeFiles>) -> Passthrough {
        Passthrough {
            files,
            negotiated: AtomicBool::new(false),
            refused: AtomicBool::new(false),
            inodes: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(PASSTHROUGH_FH),
            opens: AtomicU64::new(0),
        }
    }

    pub(crate) fn files(&self) -> &Arc<WholeFiles> {
        &self.files
    }

    pub(crate) fn set_negotiated(&self) {
        self.negotiated.store(true, Ordering::Relaxed);
    }

    pub(crate) fn active(&self) -> bool {
        self.negotiated.load(Ordering::Relaxed)
    }

    /// Whether new passthrough opens can happen (so copies are worth
    /// writing).
    pub(crate) fn usable(&self) -> bool {
        self.active() && !self.refused.load(Ordering::Relaxed)
    }

    /// Passthrough opens answered so far.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, InodeIo>> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, reply: ReplyOpen, backing: &BackingId) {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed) | PASSTHROUGH_FH;
        self.opens.fetch_add(1, Ordering::Relaxed);
        reply.opened_passthrough(FileHandle(fh), FopenFlags::FOPEN_NOFLUSH, backing);
    }

    /// Decides how an open of regular file `ino` is served; answers it
    /// here if in passthrough mode.
    pub(crate) fn open(&self, fs: &CairnFs, ino: u64, reply: ReplyOpen) -> OpenMode {
        let mut inodes = self.lock();
        match inodes.get_mut(&ino) {
            Some(InodeIo::Passthrough { backing, opens }) => {
                *opens += 1;
                self.answer(reply, backing);
                return OpenMode::Answered;
            }
            Some(InodeIo::Cached(opens)) => {
                *opens += 1;
                return OpenMode::Cached(reply);
            }
            None => {}
        }
        if !self.refused.load(Ordering::Relaxed)
            && let Ok((blob, size)) = fs.file_blob(ino)
            && let Some(copy) = self.files.open_copy(&blob, size)
        {
            match reply.open_backing(&copy) {
                Ok(backing) => {
                    self.answer(reply, &backing);
                    inodes.insert(ino, InodeIo::Passthrough { backing, opens: 1 });
                    return OpenMode::Answered;
                }
                Err(e) => {
                    self.refused.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        error = %e,
                        dir = %self.files.options().dir.display(),
                        "the kernel refused a passthrough backing file; files are read through FUSE"
                    );
                }
            }
        }
        inodes.insert(ino, InodeIo::Cached(1));
        OpenMode::Cached(reply)
    }

    /// A cached open of `ino` failed or was released.
    pub(crate) fn close_cached(&self, ino: u64) {
        let mut inodes = self.lock();
        if let Some(InodeIo::Cached(opens)) = inodes.get_mut(&ino) {
            *opens = opens.saturating_sub(1);
            if *opens == 0 {
                inodes.remove(&ino);
            }
        }
    }

    /// A passthrough open of `ino` was released; the last one closes the
    /// backing file's registration.
    pub(crate) fn close_passthrough(&self, ino: u64) {
        let mut inodes = self.lock();
        if let Some(InodeIo::Passthrough { opens, .. }) = inodes.get_mut(&ino) {
            *opens = opens.saturating_sub(1);
            if *opens == 0 {
                inodes.remove(&ino);
            }
        }
    }

    /// The kernel forgot `ino`: none of its files can be open.
    pub(crate) fn forget(&self, ino: u64) {
        self.lock().remove(&ino);
    }
}
