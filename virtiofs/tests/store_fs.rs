//! The FUSE operations of [`StoreFs`] as the virtio-fs server calls them,
//! over a tree imported into an in-memory castore: attributes and cache
//! timeouts, read-only refusals, reads, readdirplus references and xattr
//! size negotiation.

use std::ffi::CString;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn_castore::backends::MemoryStore;
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{CaStore, ChunkerConfig, Name};
use cairn_fs::{CairnFs, FsOptions, MemoryRoots};
use cairn_virtiofs::StoreFs;
use cairn_virtiofs::filesystem::CacheTimeouts;
use fuse_backend_rs::api::filesystem::{
    Context, FileSystem, FsOptions as InitFlags, GetxattrReply, ListxattrReply, ZeroCopyWriter,
};
use fuse_backend_rs::file_buf::FileVolatileSlice;
use fuse_backend_rs::file_traits::FileReadWriteVolatile;

const PATH: &str = "0c7ysjvrmrcbdajk0bz4aa2qxc1jhq2j-tree";

/// Collects what a read writes.
struct Sink(Vec<u8>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ZeroCopyWriter for Sink {
    fn write_from(
        &mut self,
        f: &mut dyn FileReadWriteVolatile,
        count: usize,
        off: u64,
    ) -> io::Result<usize> {
        let start = self.0.len();
        self.0.resize(start + count, 0);
        // SAFETY: the slice covers the `count` bytes just added to the Vec,
        // which is not touched otherwise until the read returns.
        let slice = unsafe { FileVolatileSlice::from_raw_ptr(self.0[start..].as_mut_ptr(), count) };
        let n = f.read_at_volatile(slice, off);
        self.0.truncate(start + *n.as_ref().unwrap_or(&0));
        n
    }
    fn available_bytes(&self) -> usize {
        usize::MAX
    }
}

struct Fixture {
    fs: StoreFs,
    big: Vec<u8>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("share/many")).unwrap();
    for i in 0..50 {
        std::fs::write(tree.join(format!("share/many/f{i:02}")), format!("{i}")).unwrap();
    }
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("share/big"), &big).unwrap();
    std::os::unix::fs::symlink("big", tree.join("share/link")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let memory = Arc::new(MemoryStore::new());
    let store = CaStore::new(memory.clone(), memory, ChunkerConfig::default());
    let nodes = runtime
        .block_on(import_paths(
            &store,
            &[PathBuf::from(&tree)],
            ImportOptions::default(),
        ))
        .unwrap();
    let roots = MemoryRoots::from_entries([(Name::try_from(PATH).unwrap(), nodes[0].clone())]);
    let core = {
        let _enter = runtime.enter();
        CairnFs::new(store, Arc::new(roots), FsOptions::default()).unwrap()
    };
    Fixture {
        fs: StoreFs::new(core, CacheTimeouts::default()),
        big,
        _runtime: runtime,
        _dir: dir,
    }
}

fn name(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The errno of a failed getxattr (its reply type has no Debug).
fn xattr_errno(result: io::Result<GetxattrReply>) -> i32 {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => errno(e),
    }
}

#[test]
fn init_asks_only_for_what_the_kernel_offers() {
    let f = fixture();
    let offered = InitFlags::ASYNC_READ | InitFlags::DO_READDIRPLUS | InitFlags::WRITEBACK_CACHE;
    let enabled = f.fs.init(offered).unwrap();
    assert_eq!(enabled, InitFlags::ASYNC_READ | InitFlags::DO_READDIRPLUS);
}

#[test]
fn lookups_getattr_readlink_and_timeouts() {
    let f = fixture();
    let ctx = Context::default();
    let root_entry = f.fs.lookup(&ctx, 1, &name(PATH)).unwrap();
    assert_eq!(
        root_entry.entry_timeout,
        CacheTimeouts::default().root_entry_ttl
    );
    assert_eq!(root_entry.attr.st_mode, libc::S_IFDIR | 0o555);
    let share = f.fs.lookup(&ctx, root_entry.inode, &name("share")).unwrap();
    assert_eq!(share.entry_timeout, CacheTimeouts::default().ttl);
    let big = f.fs.lookup(&ctx, share.inode, &name("big")).unwrap();
    assert_eq!(big.attr.st_mode, libc::S_IFREG | 0o444);
    assert_eq!(big.attr.st_size, 3_000_000);
    let (st, ttl) = f.fs.getattr(&ctx, big.inode, None).unwrap();
    assert_eq!((st.st_ino, st.st_size), (big.inode, 3_000_000));
    assert!(ttl > Duration::from_secs(3600));
    let link = f.fs.lookup(&ctx, share.inode, &name("link")).unwrap();
    assert_eq!(link.attr.st_mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(f.fs.readlink(&ctx, link.inode).unwrap(), b"big");
    assert_eq!(
        errno(f.fs.lookup(&ctx, share.inode, &name("absent")).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(
        errno(f.fs.lookup(&ctx, 1, &name("not-a-store-path")).unwrap_err()),
        libc::ENOENT
    );
    assert_eq!(
        errno(f.fs.readlink(&ctx, big.inode).unwrap_err()),
        libc::EINVAL
    );
    // Every lookup took a reference; forgetting them releases the inodes.
    let before = f.fs.core().inode_count();
    f.fs.batch_forget(&ctx, vec![(link.inode, 1), (big.inode, 1)]);
    assert_eq!(f.fs.core().inode_count(), before - 2);
    assert_eq!(
        errno(f.fs.getattr(&ctx, big.inode, None).unwrap_err()),
        libc::ESTALE
    );
}

#[test]
fn reads_return_the_bytes_and_writes_are_refused() {
    let f = fixture();
    let ctx = Context::default();
    let root = f.fs.lookup(&ctx, 1, &name(PATH)).unwrap();
    let share = f.fs.lookup(&ctx, root.inode, &name("share")).unwrap();
    let big = f.fs.lookup(&ctx, share.inode, &name("big")).unwrap();
    assert_eq!(
        errno(
            f.fs.open(&ctx, big.inode, libc::O_RDWR as u32, 0)
                .unwrap_err()
        ),
        libc::EROFS
    );
    assert_eq!(
        errno(f.fs.access(&ctx, big.inode, libc::W_OK as u32).unwrap_err()),
        libc::EROFS
    );
    let (handle, options, _) =
        f.fs.open(&ctx, big.inode, libc::O_RDONLY as u32, 0)
            .unwrap();
    assert!(options.contains(fuse_backend_rs::api::filesystem::OpenOptions::KEEP_CACHE));
    let handle = handle.unwrap();
    let mut sink = Sink(Vec::new());
    let mut offset = 0u64;
    loop {
        let n =
            f.fs.read(&ctx, big.inode, handle, &mut sink, 1 << 20, offset, None, 0)
                .unwrap();
        if n == 0 {
            break;
        }
        offset += n as u64;
    }
    assert_eq!(sink.0, f.big);
    f.fs.release(&ctx, big.inode, 0, handle, false, false, None)
        .unwrap();
    assert_eq!(f.fs.core().handle_count(), 0);
}

#[test]
fn readdirplus_references_only_the_entries_taken() {
    let f = fixture();
    let ctx = Context::default();
    let root = f.fs.lookup(&ctx, 1, &name(PATH)).unwrap();
    let share = f.fs.lookup(&ctx, root.inode, &name("share")).unwrap();
    let many = f.fs.lookup(&ctx, share.inode, &name("many")).unwrap();
    let (handle, _) = f.fs.opendir(&ctx, many.inode, 0).unwrap();
    let handle = handle.unwrap();
    let before = f.fs.core().inode_count();
    // The buffer takes `.`, `..` and 10 entries, then is full.
    let mut taken = Vec::new();
    let mut next = 0;
    f.fs.readdirplus(&ctx, many.inode, handle, 4096, 0, &mut |dirent, entry| {
        if taken.len() == 12 {
            return Ok(0);
        }
        next = dirent.offset;
        taken.push((dirent.name.to_vec(), entry.inode, dirent.type_));
        Ok(1)
    })
    .unwrap();
    assert_eq!(taken[0].0, b".");
    assert_eq!(taken[0].1, 0, "`.` carries no entry");
    assert_eq!(taken[2].0, b"f00");
    assert_eq!(taken[2].2, u32::from(libc::DT_REG));
    assert_eq!(f.fs.core().inode_count(), before + 10);
    // The rest, from where the first call stopped.
    let mut rest = 0;
    f.fs.readdir(&ctx, many.inode, handle, 4096, next, &mut |dirent| {
        assert_ne!(dirent.name, b".");
        rest += 1;
        Ok(1)
    })
    .unwrap();
    assert_eq!(rest, 40);
    f.fs.releasedir(&ctx, many.inode, 0, handle).unwrap();
    for (_, inode, _) in taken.iter().skip(2) {
        f.fs.forget(&ctx, *inode, 1);
    }
    assert_eq!(f.fs.core().inode_count(), before);
}

#[test]
fn xattrs_negotiate_their_size() {
    let f = fixture();
    let ctx = Context::default();
    let root = f.fs.lookup(&ctx, 1, &name(PATH)).unwrap();
    let xattr = name(cairn_fs::DIGEST_XATTR);
    let GetxattrReply::Count(len) = f.fs.getxattr(&ctx, root.inode, &xattr, 0).unwrap() else {
        panic!("size 0 asks for the length");
    };
    let GetxattrReply::Value(value) = f.fs.getxattr(&ctx, root.inode, &xattr, len).unwrap() else {
        panic!("a large enough buffer gets the value");
    };
    assert_eq!(value.len(), len as usize);
    assert!(value.starts_with(b"b3:"));
    assert_eq!(
        xattr_errno(f.fs.getxattr(&ctx, root.inode, &xattr, len - 1)),
        libc::ERANGE
    );
    assert_eq!(
        xattr_errno(f.fs.getxattr(&ctx, root.inode, &name("user.other"), 64)),
        libc::ENODATA
    );
    let ListxattrReply::Names(names) = f.fs.listxattr(&ctx, root.inode, 256).unwrap() else {
        panic!("names expected");
    };
    assert_eq!(names, format!("{}\0", cairn_fs::DIGEST_XATTR).into_bytes());
    assert!(
        matches!(f.fs.listxattr(&ctx, root.inode, 0).unwrap(), ListxattrReply::Count(n) if n as usize == names.len())
    );
    let st = f.fs.statfs(&ctx, 1).unwrap();
    assert_eq!(st.f_namemax, 255);
}

/// Reads all of open file `handle` in 1 MiB requests.
fn read_all(fs: &StoreFs, inode: u64, handle: u64) -> Vec<u8> {
    let ctx = Context::default();
    let mut sink = Sink(Vec::new());
    loop {
        let offset = sink.0.len() as u64;
        let n = fs
            .read(&ctx, inode, handle, &mut sink, 1 << 20, offset, None, 0)
            .unwrap();
        if n == 0 {
            return sink.0;
        }
    }
}

#[test]
fn files_opened_again_are_read_from_whole_copies() {
    let f = fixture();
    let copies = f._dir.path().join("copies");
    let files =
        cairn_fs::WholeFiles::new(cairn_fs::WholeFilesOptions::in_dir(copies.clone())).unwrap();
    let fs = StoreFs::new(f.fs.core().clone(), CacheTimeouts::default())
        .with_whole_files(Some(files.clone()));
    let ctx = Context::default();
    let root = fs.lookup(&ctx, 1, &name(PATH)).unwrap();
    let share = fs.lookup(&ctx, root.inode, &name("share")).unwrap();
    let big = fs.lookup(&ctx, share.inode, &name("big")).unwrap();
    let open = |fs: &StoreFs| {
        fs.open(&ctx, big.inode, libc::O_RDONLY as u32, 0)
            .unwrap()
            .0
            .unwrap()
    };
    for _ in 0..2 {
        let handle = open(&fs);
        assert!(read_all(&fs, big.inode, handle) == f.big);
        fs.release(&ctx, big.inode, 0, handle, false, false, None)
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while files.written() == 0 {
        assert!(std::time::Instant::now() < deadline, "no copy written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let reads = fs.core().stats().reads;
    let handle = open(&fs);
    assert!(read_all(&fs, big.inode, handle) == f.big);
    // A read past the end and one across it.
    let mut tail = Sink(Vec::new());
    fs.read(&ctx, big.inode, handle, &mut tail, 100, 2_999_950, None, 0)
        .unwrap();
    assert!(tail.0 == f.big[2_999_950..]);
    assert_eq!(
        fs.core().stats().reads,
        reads,
        "reads of a copy do not go through the chunk cache"
    );
    fs.release(&ctx, big.inode, 0, handle, false, false, None)
        .unwrap();

    // A later daemon (a new boot) remembers files opened before: one open
    // is enough there.
    let small_dir = f._dir.path().join("copies2");
    let options = cairn_fs::WholeFilesOptions::in_dir(small_dir.clone());
    let first = cairn_fs::WholeFiles::new(options.clone()).unwrap();
    let fs1 = StoreFs::new(f.fs.core().clone(), CacheTimeouts::default())
        .with_whole_files(Some(first.clone()));
    let handle = open(&fs1);
    read_all(&fs1, big.inode, handle);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(first.written(), 0, "one open in one process: no copy yet");
    drop((fs1, first));
    let second = cairn_fs::WholeFiles::new(options).unwrap();
    let fs2 = StoreFs::new(f.fs.core().clone(), CacheTimeouts::default())
        .with_whole_files(Some(second.clone()));
    let handle = open(&fs2);
    read_all(&fs2, big.inode, handle);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while second.written() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no copy after a restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
