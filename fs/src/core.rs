//! The filesystem core, independent of any transport (FUSE, virtio-fs):
//! lookup, getattr, readdir, open/read, readlink, xattrs, forget, statfs
//! over inode numbers and file handles.
//!
//! The root directory holds the entries of a [`RootSource`], resolved one
//! name at a time. Directories come from the castore's DirectoryService
//! through a bounded cache and are searched by binary search
//! ([`Directory::get`]); files are read through the chunk cache
//! ([`crate::reader`]). Every backend request is bounded by
//! [`FsOptions::timeout`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_castore::{CaStore, ChunkMap, Digest, Directory, DirectoryService, Name, Node, NodeKind};
use tokio::runtime::Handle;
use tracing::Instrument;

use crate::inode::{InodeData, InodeTable, ROOT_INO};
use crate::reader::{ChunkCache, OpenFile, ReadSlices, concat, with_timeout};
use crate::{FsError, FsOptions, RootSource};

/// The extended attribute holding the castore digest of a file or directory.
pub const DIGEST_XATTR: &str = "user.cairn.digest";

/// Modification time of every entry, in seconds since the epoch (as in a
/// Nix store).
pub const MTIME_SECS: u64 = 1;

/// How long a listing of the root serves handle-less readdirs from offset 0
/// before the root source is listed again.
pub const ROOT_SNAPSHOT_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// File handles with this bit set are never the core's (its handles count
/// up from 1): transports number handles of their own with it (files read
/// from whole-file copies, passthrough opens).
pub const TRANSPORT_HANDLE: u64 = 1 << 63;

/// Block size reported by stat and statfs.
pub const BLOCK_SIZE: u32 = 4096;

/// Attributes of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: NodeKind,
    /// Bytes of a file, length of a symlink target, entries of a directory
    /// (castore size).
    pub size: u64,
    /// Permission bits (read-only: 0o444, 0o555 or 0o777 for symlinks).
    pub perm: u16,
    pub nlink: u32,
    /// 512-byte blocks.
    pub blocks: u64,
}

/// One directory entry handed to a readdir callback.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    /// Inode number (a real, referenced inode when `attr` is present).
    pub ino: u64,
    /// Offset to continue reading after this entry.
    pub next_offset: u64,
    pub kind: NodeKind,
    pub name: &'a [u8],
    /// Attributes; present for readdirplus (the entry then holds one kernel
    /// reference, like a lookup), except for `.` and `..`.
    pub attr: Option<Attr>,
}

/// Filesystem statistics.
#[derive(Debug, Clone, Copy)]
pub struct StatFs {
    pub blocks: u64,
    pub files: u64,
    pub block_size: u32,
    pub name_len: u32,
}

/// The listing behind an open directory handle.
enum Listing {
    Root(Arc<Vec<(Name, Node)>>),
    Dir(Arc<Directory>),
}

impl Listing {
    fn entries(&self) -> &[(Name, Node)] {
        match self {
            Listing::Root(entries) => entries,
            Listing::Dir(dir) => dir.entries(),
        }
    }
}

/// A listing of the root and when it was taken.
/// A listing of the root, when it was taken, and when the root's entries
/// were last seen to change (the root's mtime).
struct RootSnapshot {
    taken: std::time::Instant,
    entries: Arc<Vec<(Name, Node)>>,
    changed: std::time::SystemTime,
}

struct DirHandle {
    ino: u64,
    parent: u64,
    store_path: Option<Name>,
    listing: Listing,
}

enum OpenHandle {
    File(Arc<OpenFile>),
    Dir(Arc<DirHandle>),
}

/// The read-only filesystem. Create with [`CairnFs::new`] inside a tokio
/// runtime; its methods are called from any thread.
pub struct CairnFs {
    directories: Arc<dyn DirectoryService>,
    roots: Arc<dyn RootSource>,
    options: FsOptions,
    inodes: InodeTable,
    dir_cache: moka::future::Cache<Digest, Arc<Directory>>,
    chunks: Arc<ChunkCache>,
    handles: Mutex<HashMap<u64, OpenHandle>>,
    next_handle: AtomicU64,
    runtime: Handle,
    reads: AtomicU64,
    read_bytes: AtomicU64,
    dir_prefetch_slots: Arc<tokio::sync::Semaphore>,
    /// The root listing served to handle-less readdirs, and when it was taken.
    root_snapshot: Mutex<Option<RootSnapshot>>,
}

/// Counters of the requests served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Read requests answered with data.
    pub reads: u64,
    /// Bytes returned by those reads.
    pub read_bytes: u64,
    /// Chunks fetched from the store (chunk cache misses and prefetches).
    pub chunk_fetches: u64,
}

fn attr_of(ino: u64, node: &Node) -> Attr {
    let (kind, size, perm) = match node {
        Node::Directory { size, .. } => (NodeKind::Directory, *size, 0o555),
        Node::File {
            size, executable, ..
        } => (
            NodeKind::File,
            *size,
            if *executable { 0o555 } else { 0o444 },
        ),
        Node::Symlink { target } => (NodeKind::Symlink, target.as_bytes().len() as u64, 0o777),
    };
    Attr {
        ino,
        kind,
        size,
        perm,
        nlink: if kind == NodeKind::Directory { 2 } else { 1 },
        blocks: size.div_ceil(512),
    }
}

fn root_attr() -> Attr {
    Attr {
        ino: ROOT_INO,
        kind: NodeKind::Directory,
        size: 0,
        perm: 0o555,
        nlink: 2,
        blocks: 0,
    }
}

/// An inode number for a readdir entry that has no live inode: never one
/// the table hands out (those count up from 2).
fn placeholder_ino(parent: u64, name: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parent.hash(&mut h);
    name.hash(&mut h);
    h.finish() | (1 << 63)
}

async fn fetch_directory(
    cache: &moka::future::Cache<Digest, Arc<Directory>>,
    directories: Arc<dyn DirectoryService>,
    timeout: std::time::Duration,
    digest: Digest,
) -> Result<Arc<Directory>, FsError> {
    cache
        .try_get_with(digest, async move {
            with_timeout("fetching a directory", timeout, async {
                match directories.get(&digest).await? {
                    Some(dir) => Ok(Arc::new(dir)),
                    None => Err(FsError::MissingDirectory(digest)),
                }
            })
            .await
        })
        .await
        .map_err(|e| (*e).clone())
}

fn lossy(name: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(name)
}

impl CairnFs {
    /// A filesystem over `store` whose root holds the entries of `roots`.
    /// Must be called within a tokio runtime (fetches run on it).
    pub fn new(
        store: CaStore,
        roots: Arc<dyn RootSource>,
        options: FsOptions,
    ) -> Result<Arc<CairnFs>, FsError> {
        let runtime = Handle::try_current().map_err(|e| FsError::Runtime(e.to_string()))?;
        let chunks = Arc::new(ChunkCache::new(
            store.blobs.clone(),
            options.chunk_cache_bytes,
            options.timeout,
            options.verify_chunks,
            options.prefetch_concurrency,
            runtime.clone(),
        ));
        Ok(Arc::new(CairnFs {
            directories: store.directories.clone(),
            roots,
            dir_cache: moka::future::Cache::builder()
                .max_capacity(options.directory_cache_entries.max(1))
                .weigher(|_, d: &Arc<Directory>| u32::try_from(d.len() + 1).unwrap_or(u32::MAX))
                .build(),
            options,
            inodes: InodeTable::new(),
            chunks,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            runtime,
            reads: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            dir_prefetch_slots: Arc::new(tokio::sync::Semaphore::new(16)),
            root_snapshot: Mutex::new(None),
        }))
    }

    pub fn options(&self) -> &FsOptions {
        &self.options
    }

    /// The runtime fetches run on.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Live inodes (besides the root).
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// Open files and directories.
    pub fn handle_count(&self) -> usize {
        self.lock_handles().len()
    }

    /// Requests served so far.
    pub fn stats(&self) -> FsStats {
        FsStats {
            reads: self.reads.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            chunk_fetches: self.chunks.fetches(),
        }
    }

    /// Bytes in the chunk cache.
    pub fn cached_chunk_bytes(&self) -> u64 {
        self.chunks.cached_bytes()
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, OpenHandle>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn data(&self, ino: u64) -> Result<InodeData, FsError> {
        self.inodes.get(ino).ok_or(FsError::StaleInode(ino))
    }

    /// A directory by digest, from the cache or the DirectoryService.
    async fn directory(&self, digest: Digest) -> Result<Arc<Directory>, FsError> {
        fetch_directory(
            &self.dir_cache,
            self.directories.clone(),
            self.options.timeout,
            digest,
        )
        .await
    }

    /// Starts fetching the child directories of `dir` that are not cached
    /// yet, so that a walk finds them ready.
    fn prefetch_children(&self, dir: &Directory) {
        let limit = self.options.directory_prefetch;
        for (_, digest, _) in dir.child_directories().take(limit) {
            if self.dir_cache.contains_key(digest) {
                continue;
            }
            let (cache, directories) = (self.dir_cache.clone(), self.directories.clone());
            let (timeout, digest) = (self.options.timeout, *digest);
            let slots = self.dir_prefetch_slots.clone();
            self.runtime.spawn(async move {
                let Ok(_permit) = slots.acquire_owned().await else {
                    return;
                };
                if let Err(e) = fetch_directory(&cache, directories, timeout, digest).await {
                    tracing::debug!(directory = %digest, error = %e, "directory prefetch failed");
                }
            });
        }
    }

    /// Resolves `name` in directory `parent` and takes one reference to the
    /// resulting inode (released by [`CairnFs::forget`]).
    pub async fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr, FsError> {
        let span = tracing::debug_span!("lookup", parent, name = %lossy(name));
        async {
            let (node, store_path) = match self.data(parent)? {
                InodeData::Root => {
                    let node = with_timeout(
                        "looking up a root entry",
                        self.options.timeout,
                        self.roots.lookup(name),
                    )
                    .await?
                    .ok_or(FsError::NotFound)?;
                    let name = Name::new(Bytes::copy_from_slice(name))
                        .map_err(|_| FsError::NotFound)?;
                    (node, name)
                }
                InodeData::Node {
                    node: Node::Directory { digest, .. },
                    store_path,
                    ..
                } => {
                    let dir = self.directory(digest).await.inspect_err(|e| {
                        tracing::error!(store_path = %store_path, directory = %digest, error = %e, "directory unavailable");
                    })?;
                    let node = dir.get(name).ok_or(FsError::NotFound)?.clone();
                    (node, store_path)
                }
                InodeData::Node { .. } => return Err(FsError::NotDirectory),
            };
            let name = Name::new(Bytes::copy_from_slice(name)).map_err(|_| FsError::NotFound)?;
            let ino = self.inodes.lookup(parent, &name, &node, &store_path);
            Ok(attr_of(ino, &node))
        }
        .instrument(span)
        .await
    }

    /// Drops `n` references to `ino` taken by lookups (and readdirplus).
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr, FsError> {
        Ok(match self.data(ino)? {
            InodeData::Root => root_attr(),
            InodeData::Node { node, .. } => attr_of(ino, &node),
        })
    }

    pub fn readlink(&self, ino: u64) -> Result<Bytes, FsError> {
        match self.data(ino)? {
            InodeData::Node {
                node: Node::Symlink { target },
                ..
            } => Ok(Bytes::copy_from_slice(target.as_bytes())),
            _ => Err(FsError::NotSymlink),
        }
    }

    fn insert_handle(&self, handle: OpenHandle) -> u64 {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.lock_handles().insert(fh, handle);
        fh
    }

    /// Opens directory `ino` for reading; returns a handle for
    /// [`CairnFs::readdir`].
    pub async fn opendir(&self, ino: u64) -> Result<u64, FsError> {
        let span = tracing::debug_span!("opendir", ino);
        async {
            let handle = match self.data(ino)? {
                InodeData::Root => DirHandle {
                    ino,
                    parent: ROOT_INO,
                    store_path: None,
                    listing: Listing::Root(Arc::new(self.list_root().await?)),
                },
                InodeData::Node {
                    node: Node::Directory { digest, .. },
                    store_path,
                    parent,
                } => {
                    let dir = self.directory(digest).await.inspect_err(|e| {
                        tracing::error!(store_path = %store_path, directory = %digest, error = %e, "directory unavailable");
                    })?;
                    self.prefetch_children(&dir);
                    DirHandle {
                        ino,
                        parent,
                        store_path: Some(store_path),
                        listing: Listing::Dir(dir),
                    }
                }
                InodeData::Node { .. } => return Err(FsError::NotDirectory),
            };
            Ok(self.insert_handle(OpenHandle::Dir(Arc::new(handle))))
        }
        .instrument(span)
        .await
    }

    fn dir_handle(&self, fh: u64) -> Result<Arc<DirHandle>, FsError> {
        match self.lock_handles().get(&fh) {
            Some(OpenHandle::Dir(d)) => Ok(d.clone()),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// Lists directory handle `fh` from `offset` (0 = start; then the
    /// `next_offset` of the last entry taken). `add` gets each entry and
    /// returns `true` when it could not take it (its buffer is full), which
    /// ends the listing. With `plus`, each entry other than `.` and `..`
    /// carries attributes and holds one inode reference once taken.
    pub fn readdir(
        &self,
        fh: u64,
        offset: u64,
        plus: bool,
        add: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<(), FsError> {
        let handle = self.dir_handle(fh)?;
        self.list_from(&handle, offset, plus, add);
        Ok(())
    }

    /// Lists directory `ino` from `offset` without an open handle (for a
    /// transport that does not open directories): the listing comes from
    /// the directory cache, or for the root from a snapshot of the root
    /// source that a listing from offset 0 renews once it is
    /// [`ROOT_SNAPSHOT_TTL`] old, so that later offsets page through the
    /// same snapshot. Otherwise as [`CairnFs::readdir`].
    pub async fn readdir_inode(
        &self,
        ino: u64,
        offset: u64,
        plus: bool,
        add: impl FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<(), FsError> {
        let span = tracing::debug_span!("readdir", ino, offset, plus);
        async {
            let handle = match self.data(ino)? {
                InodeData::Root => DirHandle {
                    ino,
                    parent: ROOT_INO,
                    store_path: None,
                    listing: Listing::Root(self.root_snapshot(offset == 0).await?),
                },
                InodeData::Node {
                    node: Node::Directory { digest, .. },
                    store_path,
                    parent,
                } => {
                    let fresh = !self.dir_cache.contains_key(&digest);
                    let dir = self.directory(digest).await.inspect_err(|e| {
                        tracing::error!(store_path = %store_path, directory = %digest, error = %e, "directory unavailable");
                    })?;
                    if fresh {
                        self.prefetch_children(&dir);
                    }
                    DirHandle {
                        ino,
                        parent,
                        store_path: Some(store_path),
                        listing: Listing::Dir(dir),
                    }
                }
                InodeData::Node { .. } => return Err(FsError::NotDirectory),
            };
            self.list_from(&handle, offset, plus, add);
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// The root's entries, sorted; relisted when `renew` and the snapshot
    /// is older than [`ROOT_SNAPSHOT_TTL`].
    async fn root_snapshot(&self, renew: bool) -> Result<Arc<Vec<(Name, Node)>>, FsError> {
        {
            let snapshot = self.root_snapshot.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = snapshot.as_ref()
                && (!renew || s.taken.elapsed() < ROOT_SNAPSHOT_TTL)
            {
                return Ok(s.entries.clone());
            }
        }
        let entries = Arc::new(self.list_root().await?);
        let mut snapshot = self.root_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let changed = match snapshot.as_ref() {
            Some(old) if old.entries == entries => old.changed,
            _ => std::time::SystemTime::now(),
        };
        *snapshot = Some(RootSnapshot {
            taken: std::time::Instant::now(),
            entries: entries.clone(),
            changed,
        });
        Ok(entries)
    }

    /// When the root's entries last changed, as far as a listing at most
    /// [`ROOT_SNAPSHOT_TTL`] old shows: a transport gives it as the root's
    /// mtime, so that a kernel's cached listing of the root is dropped when
    /// (and only when) store paths come or go.
    pub async fn root_mtime(&self) -> Result<std::time::SystemTime, FsError> {
        self.root_snapshot(true).await?;
        let snapshot = self.root_snapshot.lock().unwrap_or_else(|p| p.into_inner());
        Ok(snapshot
            .as_ref()
            .map(|s| s.changed)
            .unwrap_or(std::time::UNIX_EPOCH))
    }

    /// The root source's entries (none when listing is switched off), sorted.
    async fn list_root(&self) -> Result<Vec<(Name, Node)>, FsError> {
        let mut entries = if self.options.list_root {
            with_timeout("listing the root", self.options.timeout, self.roots.list()).await?
        } else {
            Vec::new()
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Ok(entries)
    }

    fn list_from(
        &self,
        handle: &DirHandle,
        offset: u64,
        plus: bool,
        mut add: impl FnMut(&DirEntry<'_>) -> bool,
    ) {
        let mut pos = offset;
        while pos < 2 {
            let (ino, name): (u64, &[u8]) = if pos == 0 {
                (handle.ino, b".")
            } else {
                (handle.parent, b"..")
            };
            let attr = if plus {
                Some(self.getattr(ino).unwrap_or(Attr { ino, ..root_attr() }))
            } else {
                None
            };
            let entry = DirEntry {
                ino,
                next_offset: pos + 1,
                kind: NodeKind::Directory,
                name,
                attr,
            };
            if add(&entry) {
                return;
            }
            pos += 1;
        }
        let entries = handle.listing.entries();
        let start = usize::try_from(pos - 2).unwrap_or(usize::MAX);
        for (i, (name, node)) in entries.iter().enumerate().skip(start) {
            let next_offset = i as u64 + 3;
            let (ino, attr) = if plus {
                let store_path = handle.store_path.as_ref().unwrap_or(name);
                let ino = self.inodes.lookup(handle.ino, name, node, store_path);
                (ino, Some(attr_of(ino, node)))
            } else {
                let ino = self
                    .inodes
                    .peek(handle.ino, name)
                    .unwrap_or_else(|| placeholder_ino(handle.ino, name.as_bytes()));
                (ino, None)
            };
            let entry = DirEntry {
                ino,
                next_offset,
                kind: node.kind(),
                name: name.as_bytes(),
                attr,
            };
            if add(&entry) {
                if plus {
                    self.inodes.forget(ino, 1);
                }
                return;
            }
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.lock_handles().remove(&fh);
    }

    /// Opens regular file `ino`; returns a handle for [`CairnFs::read`].
    pub async fn open(&self, ino: u64) -> Result<u64, FsError> {
        let span = tracing::debug_span!("open", ino);
        async {
            match self.data(ino)? {
                InodeData::Node {
                    node: Node::File { digest, .. },
                    store_path,
                    ..
                } => {
                    let map = self.chunks.chunk_map(digest).await.inspect_err(|e| {
                        tracing::error!(store_path = %store_path, blob = %digest, error = %e, "open failed");
                    })?;
                    // Readers read right after opening: start on the first chunk.
                    if let Some(first) = map.chunks().first() {
                        self.chunks.prefetch(digest, *first);
                    }
                    let file = OpenFile::new(digest, map, store_path);
                    Ok(self.insert_handle(OpenHandle::File(Arc::new(file))))
                }
                InodeData::Node {
                    node: Node::Directory { .. },
                    ..
                }
                | InodeData::Root => Err(FsError::IsDirectory),
                InodeData::Node { .. } => Err(FsError::NotFound),
            }
        }
        .instrument(span)
        .await
    }

    /// The blob and size of regular file `ino` (no fetch).
    pub fn file_blob(&self, ino: u64) -> Result<(Digest, u64), FsError> {
        match self.data(ino)? {
            InodeData::Node {
                node: Node::File { digest, size, .. },
                ..
            } => Ok((digest, size)),
            InodeData::Node {
                node: Node::Directory { .. },
                ..
            }
            | InodeData::Root => Err(FsError::IsDirectory),
            InodeData::Node { .. } => Err(FsError::NotFound),
        }
    }

    /// The blob and chunk map behind open file handle `fh`.
    pub fn opened_blob(&self, fh: u64) -> Option<(Digest, Arc<ChunkMap>)> {
        self.file_handle(fh).ok().map(|f| (f.blob, f.map.clone()))
    }

    /// The chunk cache every read goes through.
    pub fn chunk_cache(&self) -> &Arc<ChunkCache> {
        &self.chunks
    }

    fn file_handle(&self, fh: u64) -> Result<Arc<OpenFile>, FsError> {
        match self.lock_handles().get(&fh) {
            Some(OpenHandle::File(f)) => Ok(f.clone()),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// Reads up to `size` bytes at `offset` of open file `fh` (fewer only at
    /// the end of the file), as one buffer.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, FsError> {
        self.read_slices(fh, offset, size).await.map(concat)
    }

    /// [`CairnFs::read`] as slices of the cached chunks, in order, for
    /// transports that can write them out one after another without
    /// joining them first.
    pub async fn read_slices(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<ReadSlices, FsError> {
        let file = self.file_handle(fh)?;
        let span = tracing::debug_span!("read", fh, offset, size);
        file.read(&self.chunks, offset, size, self.options.window_bytes)
            .instrument(span)
            .await
            .inspect(|slices| {
                self.reads.fetch_add(1, Ordering::Relaxed);
                let len: usize = slices.iter().map(Bytes::len).sum();
                self.read_bytes.fetch_add(len as u64, Ordering::Relaxed);
            })
            .inspect_err(|e| {
                tracing::error!(
                    store_path = %file.store_path,
                    blob = %file.blob,
                    offset,
                    size,
                    error = %e,
                    "read failed"
                );
            })
    }

    pub fn release(&self, fh: u64) {
        self.lock_handles().remove(&fh);
    }

    /// Value of extended attribute `name` of `ino`.
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>, FsError> {
        if name != DIGEST_XATTR.as_bytes() {
            return Err(FsError::NoXattr);
        }
        match self.data(ino)? {
            InodeData::Node { node, .. } => match node.digest() {
                Some(digest) => Ok(format!("b3:{}", digest.to_hex()).into_bytes()),
                None => Err(FsError::NoXattr),
            },
            InodeData::Root => Err(FsError::NoXattr),
        }
    }

    /// Names of the extended attributes of `ino`, each NUL-terminated.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>, FsError> {
        match self.data(ino)? {
            InodeData::Node { node, .. } if node.digest().is_some() => {
                let mut out = DIGEST_XATTR.as_bytes().to_vec();
                out.push(0);
                Ok(out)
            }
            _ => Ok(Vec::new()),
        }
    }

    pub fn statfs(&self) -> StatFs {
        StatFs {
            blocks: 0,
            files: self.inodes.len() as u64 + 1,
            block_size: BLOCK_SIZE,
            name_len: cairn_castore::node::MAX_NAME_LEN as u32,
        }
    }
}
