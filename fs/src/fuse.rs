//! Serving a [`CairnFs`] over FUSE (fuser).
//!
//! No request waits on another's I/O: each request's work is polled once on
//! the FUSE thread (answers from the caches reply at once) and, if it has to
//! wait for the store, continues as a task on the tokio runtime, which
//! replies when done. The kernel is told the content is immutable: long
//! entry/attr TTLs, `FOPEN_KEEP_CACHE` (the page cache survives open/close),
//! cached directory listings and symlinks, async reads, readdirplus, parallel
//! directory operations, 1 MiB requests and the largest readahead offered
//! (raised further through the mount's `read_ahead_kb` after mounting).
//!
//! [`mount`] mounts read-only with `default_permissions` and returns a
//! [`MountHandle`]; [`Unmounter`] unmounts from another thread (a signal
//! handler's task, for instance).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use cairn_castore::NodeKind;
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request, Session, SessionACL, SessionUnmounter,
};
use tokio::runtime::Handle;

use crate::core::{Attr, BLOCK_SIZE, MTIME_SECS};
use crate::inode::ROOT_INO;
use crate::passthrough::{OpenMode, PASSTHROUGH_FH, Passthrough};
use crate::{CairnFs, FsError, WholeFiles};

/// How the filesystem is mounted.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let users other than the mounting one use the mount.
    pub allow_other: bool,
    /// Have fusermount3 unmount the filesystem if the process dies (needs
    /// `fusermount3`; without `allow_other` the mount is still limited to
    /// root and its owner).
    pub auto_unmount: bool,
    /// Threads reading FUSE requests.
    pub threads: usize,
    /// Name shown as the mount's source.
    pub fs_name: String,
    /// How long the kernel caches attributes and names (content never changes).
    pub ttl: Duration,
    /// How long the kernel caches names in the root (store paths come and go).
    pub root_entry_ttl: Duration,
    /// Kernel readahead for the mount, in KiB (the `read_ahead_kb` of its
    /// backing device), set after mounting; `None` keeps the kernel's.
    pub read_ahead_kb: Option<u32>,
    /// Whole-file copies of large, reopened files, opened in FUSE
    /// passthrough mode where the kernel offers it (6.9+, and root).
    pub whole_files: Option<Arc<WholeFiles>>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: false,
            auto_unmount: true,
            threads: 4,
            fs_name: "cairn".to_owned(),
            ttl: Duration::from_secs(365 * 24 * 3600),
            root_entry_ttl: Duration::from_secs(60),
            read_ahead_kb: Some(1024),
            whole_files: None,
        }
    }
}

/// Largest read the kernel is asked to send (also the max pages per request).
const MAX_REQUEST: u32 = 1 << 20;

struct FuseFs {
    fs: Arc<CairnFs>,
    runtime: Handle,
    ttl: Duration,
    root_entry_ttl: Duration,
    passthrough: Option<Arc<Passthrough>>,
}

fn errno(err: &FsError) -> Errno {
    Errno::from_i32(err.errno())
}

fn file_attr(attr: &Attr) -> FileAttr {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME_SECS);
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// How long the kernel keeps the root's attributes. A refresh that finds
/// the root's entries changed gives it a new mtime, which drops the
/// kernel's cached root listing: store paths added or removed while mounted
/// show up within about this long (plus the core's snapshot age).
const ROOT_ATTR_TTL: Duration = Duration::from_secs(1);

/// The root's attributes, with the time its entries last changed as mtime.
fn root_file_attr(attr: &Attr, mtime: SystemTime) -> FileAttr {
    let mut out = file_attr(attr);
    out.mtime = mtime;
    out.ctime = mtime;
    out
}

fn file_type(kind: NodeKind) -> FileType {
    match kind {
        NodeKind::Directory => FileType::Directory,
        NodeKind::File => FileType::RegularFile,
        NodeKind::Symlink => FileType::Symlink,
    }
}

impl FuseFs {
    /// Polls `work` once here; if it has to wait, it continues on the runtime.
    fn run(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut work: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(work);
        let _guard = self.runtime.enter();
        let mut cx = Context::from_waker(Waker::noop());
        if work.as_mut().poll(&mut cx).is_pending() {
            self.runtime.spawn(work);
        }
    }

    fn xattr_reply(result: Result<Vec<u8>, FsError>, size: u32, reply: ReplyXattr) {
        match result {
            Err(e) => reply.error(errno(&e)),
            Ok(value) if size == 0 => reply.size(u32::try_from(value.len()).unwrap_or(u32::MAX)),
            Ok(value) if value.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(value) => reply.data(&value),
        }
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let wanted = InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_MAX_PAGES
            // Directories are served without OPENDIR/RELEASEDIR (opendir
            // answers ENOSYS): the kernel then caches every listing and
            // keeps it, and a tree walk costs no request per directory once
            // listed. The root's listing is checked against its mtime
            // (below) whenever its attributes expire.
            | InitFlags::FUSE_NO_OPENDIR_SUPPORT
            | InitFlags::FUSE_AUTO_INVAL_DATA;
        let offered = config.capabilities();
        let wanted = match &self.passthrough {
            Some(passthrough) if offered.contains(InitFlags::FUSE_PASSTHROUGH) => {
                // Backing files live on an ordinary local filesystem.
                if config.set_max_stack_depth(1).is_ok() {
                    passthrough.set_negotiated();
                    wanted | InitFlags::FUSE_PASSTHROUGH
                } else {
                    wanted
                }
            }
            Some(_) => {
                tracing::info!(
                    "the kernel offers no FUSE passthrough; files are read through FUSE"
                );
                wanted
            }
            None => wanted,
        };
        if let Err(missing) = config.add_capabilities(wanted & offered) {
            tracing::warn!(?missing, "kernel refused FUSE capabilities");
        }
        if let Err(max) = config.set_max_readahead(MAX_REQUEST) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_write(MAX_REQUEST);
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        tracing::debug!(
            kernel_abi = ?config.kernel_abi(),
            negotiated = ?(wanted & offered),
            "FUSE session initialised"
        );
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let fs = self.fs.clone();
        let name = name.as_bytes().to_vec();
        let (ttl, entry_ttl) = if parent.0 == ROOT_INO {
            (self.ttl, self.root_entry_ttl)
        } else {
            (self.ttl, self.ttl)
        };
        self.run(async move {
            match fs.lookup(parent.0, &name).await {
                Ok(attr) => {
                    reply.entry_with_ttls(&ttl, &entry_ttl, &file_attr(&attr), Generation(0))
                }
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Some(passthrough) = &self.passthrough {
            passthrough.forget(ino.0);
        }
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == ROOT_INO {
            let fs = self.fs.clone();
            self.run(async move {
                match (fs.getattr(ROOT_INO), fs.root_mtime().await) {
                    (Ok(attr), Ok(mtime)) => {
                        reply.attr(&ROOT_ATTR_TTL, &root_file_attr(&attr, mtime))
                    }
                    (Err(e), _) | (_, Err(e)) => reply.error(errno(&e)),
                }
            });
            return;
        }
        match self.fs.getattr(ino.0) {
            Ok(attr) => reply.attr(&self.ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            reply.error(Errno::EROFS);
            return;
        }
        let passthrough = self.passthrough.clone().filter(|p| p.active());
        let reply = match &passthrough {
            Some(passthrough) => match passthrough.open(&self.fs, ino.0, reply) {
                OpenMode::Answered => return,
                OpenMode::Cached(reply) => reply,
            },
            None => reply,
        };
        let fs = self.fs.clone();
        self.run(async move {
            match fs.open(ino.0).await {
                Ok(fh) => {
                    // Taken before replying: the file may be read and
                    // released as soon as the kernel has the reply.
                    let opened = fs.opened_blob(fh);
                    reply.opened(
                        FileHandle(fh),
                        FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH,
                    );
                    if let Some(passthrough) = passthrough
                        && passthrough.usable()
                        && let Some((blob, map)) = opened
                    {
                        passthrough
                            .files()
                            .note_open(blob, &map, fs.chunk_cache(), fs.runtime());
                    }
                }
                Err(e) => {
                    if let Some(passthrough) = passthrough {
                        passthrough.close_cached(ino.0);
                    }
                    reply.error(errno(&e));
                }
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        self.run(async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let passthrough = self.passthrough.as_ref().filter(|p| p.active());
        if fh.0 & PASSTHROUGH_FH != 0 {
            if let Some(passthrough) = passthrough {
                passthrough.close_passthrough(ino.0);
            }
        } else {
            self.fs.release(fh.0);
            if let Some(passthrough) = passthrough {
                passthrough.close_cached(ino.0);
            }
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No handle is needed (readdir lists by inode); ENOSYS tells the
        // kernel to stop sending OPENDIR and RELEASEDIR and to cache
        // listings (FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR by default).
        reply.error(Errno::ENOSYS);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let fs = self.fs.clone();
        self.run(async move {
            let result = fs
                .readdir_inode(ino.0, offset, false, |entry| {
                    reply.add(
                        INodeNo(entry.ino),
                        entry.next_offset,
                        file_type(entry.kind),
                        OsStr::from_bytes(entry.name),
                    )
                })
                .await;
            match result {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let entry_ttl = if ino.0 == ROOT_INO {
            self.root_entry_ttl
        } else {
            self.ttl
        };
        let fs = self.fs.clone();
        self.run(async move {
            let result = fs
                .readdir_inode(ino.0, offset, true, |entry| {
                    let attr = entry.attr.map(|a| file_attr(&a)).unwrap_or_else(|| {
                        file_attr(&Attr {
                            ino: entry.ino,
                            kind: entry.kind,
                            size: 0,
                            perm: 0o555,
                            nlink: 2,
                            blocks: 0,
                        })
                    });
                    reply.add(
                        INodeNo(entry.ino),
                        entry.next_offset,
                        OsStr::from_bytes(entry.name),
                        &entry_ttl,
                        &attr,
                        Generation(0),
                    )
                })
                .await;
            match result {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            }
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks,
            0,
            0,
            s.files,
            0,
            s.block_size,
            s.name_len,
            s.block_size,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        FuseFs::xattr_reply(self.fs.getxattr(ino.0, name.as_bytes()), size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        FuseFs::xattr_reply(self.fs.listxattr(ino.0), size, reply);
    }
}

/// Unmounts a mounted filesystem; cheap to clone and send to another
/// thread (a signal handler's task). If files are still open the mount is
/// detached (lazily unmounted) and, after a grace period, the FUSE
/// connection is aborted, so the session, and [`MountHandle::join`], end.
#[derive(Clone)]
pub struct Unmounter {
    inner: Arc<Mutex<SessionUnmounter>>,
    mountpoint: PathBuf,
    connection: Option<u32>,
    /// Set when the session has ended.
    finished: Arc<AtomicBool>,
}

impl Unmounter {
    /// Unmounts (a second call does nothing). A busy mount is detached.
    pub fn unmount(&self) -> Result<(), FsError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let path = std::ffi::CString::new(self.mountpoint.as_os_str().as_bytes())
            .map_err(|e| FsError::Mount(Arc::new(std::io::Error::other(e))))?;
        let umount = |flags: libc::c_int| {
            // SAFETY: `path` is a valid NUL-terminated string.
            if unsafe { libc::umount2(path.as_ptr(), flags) } == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        let ours = match umount(0) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::info!(mountpoint = %self.mountpoint.display(), "mount busy: detaching");
                umount(libc::MNT_DETACH)
            }
            other => other,
        };
        // Also lets fusermount3 (auto_unmount) go; unprivileged, it unmounts.
        let theirs = inner.unmount();
        let result = match (ours, theirs) {
            (Ok(()), _) | (_, Ok(())) => Ok(()),
            (Err(e), Err(_)) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            (Err(e), Err(_)) => Err(e.into()),
        };
        if result.is_ok() && !self.finished.load(Ordering::Acquire) {
            // Files still open keep a detached mount alive: end it after a
            // grace period so the session (and whoever waits on it) ends.
            let this = self.clone();
            let _ = std::thread::Builder::new()
                .name("cairn-unmount".to_owned())
                .spawn(move || {
                    let deadline = Instant::now() + UNMOUNT_GRACE;
                    while !this.finished.load(Ordering::Acquire) {
                        if Instant::now() >= deadline {
                            if let Err(e) = this.abort() {
                                tracing::warn!(error = %e, "could not abort the FUSE connection");
                            }
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                });
        }
        result
    }

    /// Aborts the FUSE connection: pending and future requests fail and the
    /// session ends even while files are open. Needs fusectl
    /// (`/sys/fs/fuse/connections`), mounted here if missing.
    pub fn abort(&self) -> Result<(), FsError> {
        if self.finished.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(conn) = self.connection else {
            return Err(std::io::Error::other("FUSE connection number unknown").into());
        };
        let dir = Path::new("/sys/fs/fuse/connections");
        let abort = dir.join(conn.to_string()).join("abort");
        if !abort.exists() {
            let _ = std::process::Command::new("mount")
                .args(["-t", "fusectl", "fusectl"])
                .arg(dir)
                .status();
        }
        std::fs::write(&abort, b"1")?;
        Ok(())
    }
}

/// A mounted filesystem being served. Dropping it unmounts and waits for
/// the session to end.
pub struct MountHandle {
    unmounter: Unmounter,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    passthrough: Option<Arc<Passthrough>>,
}

/// Time an unmount waits for open files to close before aborting the
/// connection.
const UNMOUNT_GRACE: Duration = Duration::from_secs(2);

impl MountHandle {
    /// Whether files with whole-file copies are opened in passthrough mode
    /// (copies configured, and the kernel agreed at INIT).
    pub fn passthrough_active(&self) -> bool {
        self.passthrough.as_ref().is_some_and(|p| p.active())
    }

    /// Opens answered in passthrough mode so far.
    pub fn passthrough_opens(&self) -> u64 {
        self.passthrough.as_ref().map_or(0, |p| p.opens())
    }

    /// A handle that unmounts this filesystem from any thread.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.unmounter.mountpoint
    }

    /// Waits until the filesystem is unmounted (by [`Unmounter::unmount`]
    /// or from outside) and the session has ended.
    pub fn join(mut self) -> Result<(), FsError> {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<(), FsError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match thread.join() {
            // An aborted connection (see `Unmounter::abort`) is an unmount.
            Ok(Err(e)) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
            Ok(result) => result.map_err(FsError::from),
            Err(_) => Err(std::io::Error::other("FUSE session thread panicked").into()),
        }
    }

    /// Unmounts and waits for the session to end; if files stay open past a
    /// grace period, the connection is aborted.
    pub fn unmount(mut self) -> Result<(), FsError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), FsError> {
        self.unmounter.unmount()?;
        self.join_inner()
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if self.thread.is_some()
            && let Err(e) = self.unmount_inner()
        {
            tracing::warn!(error = %e, "unmount failed");
        }
    }
}

/// The device number (`major:minor`) of the mount at `mountpoint`, from
/// /proc/self/mountinfo (read without touching the filesystem itself).
fn mount_device(mountpoint: &Path) -> Option<(u32, u32)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let wanted = mountpoint.to_str()?;
    info.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let dev = fields.nth(2)?;
            let point = fields.nth(1)?;
            (point == wanted).then_some(dev)
        })
        .next_back()
        .and_then(|dev| {
            let (major, minor) = dev.split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
}

/// Mounts `fs` at `mountpoint` and serves it on background threads until
/// unmounted. The mount is read-only, `default_permissions`, owned by root.
pub fn mount(
    fs: Arc<CairnFs>,
    mountpoint: &Path,
    options: &MountOptions,
) -> Result<MountHandle, FsError> {
    let mountpoint = mountpoint.canonicalize()?;
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(options.fs_name.clone()),
        MountOption::Subtype("cairn".to_owned()),
        MountOption::RO,
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    if options.auto_unmount {
        config.mount_options.push(MountOption::AutoUnmount);
    }
    config.acl = if options.allow_other {
        SessionACL::All
    } else if options.auto_unmount {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let runtime = fs.runtime().clone();
    let passthrough = options
        .whole_files
        .clone()
        .map(|files| Arc::new(Passthrough::new(files)));
    let fuse = FuseFs {
        fs,
        runtime,
        ttl: options.ttl,
        root_entry_ttl: options.root_entry_ttl,
        passthrough: passthrough.clone(),
    };
    let mut session = Session::new(fuse, &mountpoint, &config)?;
    let unmounter = session.unmount_callable();
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let thread = std::thread::Builder::new()
        .name("cairn-fuse".to_owned())
        .spawn(move || {
            let result = session.run();
            done.store(true, Ordering::Release);
            result
        })?;
    let device = mount_device(&mountpoint);
    if let (Some(kb), Some((major, minor))) = (options.read_ahead_kb, device) {
        let path = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
        if let Err(e) = std::fs::write(&path, kb.to_string()) {
            tracing::debug!(path, error = %e, "could not set the mount's readahead");
        }
    }
    tracing::info!(mountpoint = %mountpoint.display(), ?device, "mounted");
    Ok(MountHandle {
        unmounter: Unmounter {
            inner: Arc::new(Mutex::new(unmounter)),
            mountpoint,
            connection: device.map(|(_, minor)| minor),
            finished,
        },
        thread: Some(thread),
        passthrough,
    })
}
