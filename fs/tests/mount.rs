//! Tests that mount the filesystem for real (they need root and /dev/fuse,
//! and are skipped otherwise) and compare it with the originals.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_castore::{BlobService, Node};
use cairn_fs::{FsOptions, MountOptions, WholeFiles, WholeFilesOptions};
use common::*;
use rand::{Rng, SeedableRng};

/// Compares the tree at `orig` with the mounted tree at `mounted`.
fn compare(orig: &Path, mounted: &Path) {
    let o = fs::symlink_metadata(orig).expect("original");
    let m = fs::symlink_metadata(mounted).unwrap_or_else(|e| panic!("{}: {e}", mounted.display()));
    assert_eq!(
        o.file_type(),
        m.file_type(),
        "type of {}",
        mounted.display()
    );
    let mode = m.permissions().mode() & 0o7777;
    if o.is_symlink() {
        assert_eq!(
            fs::read_link(orig).expect("link"),
            fs::read_link(mounted).expect("link"),
            "target of {}",
            mounted.display()
        );
    } else if o.is_file() {
        let exec = o.permissions().mode() & 0o100 != 0;
        assert_eq!(
            mode,
            if exec { 0o555 } else { 0o444 },
            "{}",
            mounted.display()
        );
        assert_eq!(o.len(), m.len(), "size of {}", mounted.display());
        let (a, b) = (
            fs::read(orig).expect("read"),
            fs::read(mounted).expect("read"),
        );
        assert!(a == b, "content of {}", mounted.display());
    } else {
        assert_eq!(mode, 0o555, "{}", mounted.display());
        let list = |p: &Path| {
            let mut v: Vec<_> = fs::read_dir(p)
                .expect("read_dir")
                .map(|e| {
                    let e = e.expect("entry");
                    (e.file_name(), e.file_type().expect("d_type"))
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let (lo, lm) = (list(orig), list(mounted));
        assert_eq!(lo, lm, "entries of {}", mounted.display());
        for (name, _) in lo {
            compare(&orig.join(&name), &mounted.join(&name));
        }
    }
}

fn getxattr(path: &Path, name: &str) -> std::io::Result<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).expect("path");
    let n = CString::new(name).expect("name");
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

#[test]
fn tree_matches_originals() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions::default());
    let mut root: Vec<String> = fs::read_dir(m.path())
        .expect("root")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    root.sort();
    assert_eq!(root, vec![HELLO, SINGLE, LINK]);
    for name in [HELLO, SINGLE, LINK] {
        compare(&m.src().join(name), &m.path().join(name));
    }
    // Twice: the second pass is served from the kernel's caches.
    compare(&m.src().join(HELLO), &m.path().join(HELLO));
    // Through the store-path symlink.
    let via_link = fs::read(m.path().join(LINK).join("bin/hello")).expect("via link");
    assert_eq!(
        via_link,
        fs::read(m.src().join(HELLO).join("bin/hello")).expect("orig")
    );
    assert!(matches!(
        fs::metadata(m.path().join("nonexistent-path")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    ));
    // Read-only.
    let err = fs::OpenOptions::new()
        .write(true)
        .open(m.path().join(HELLO).join("empty"))
        .expect_err("writable");
    assert!(
        matches!(err.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES)),
        "{err}"
    );
}

#[test]
fn xattrs_expose_digests() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions::default());
    let (_, hello) = m
        .imported
        .nodes
        .iter()
        .find(|(n, _)| n.as_bytes() == HELLO.as_bytes())
        .expect("hello")
        .clone();
    let Node::Directory { digest, .. } = hello else {
        panic!("hello is a directory");
    };
    let value = getxattr(&m.path().join(HELLO), "user.cairn.digest").expect("xattr");
    assert_eq!(value, format!("b3:{}", digest.to_hex()).into_bytes());
    let (_, single) = m
        .imported
        .nodes
        .iter()
        .find(|(n, _)| n.as_bytes() == SINGLE.as_bytes())
        .expect("single")
        .clone();
    let digest = single.digest().expect("file digest");
    let value = getxattr(&m.path().join(SINGLE), "user.cairn.digest").expect("xattr");
    assert_eq!(value, format!("b3:{}", digest.to_hex()).into_bytes());
    let missing = getxattr(&m.path().join(SINGLE), "user.other").expect_err("no such xattr");
    assert_eq!(missing.raw_os_error(), Some(libc::ENODATA));
    let on_link = getxattr(&m.path().join(LINK), "user.cairn.digest").expect_err("symlink");
    assert_eq!(on_link.raw_os_error(), Some(libc::ENODATA));
}

#[test]
fn random_reads_from_64_threads() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions::default());
    let files = ["lib/libbig.so", "lib/libmid.so", "bin/hello"];
    let originals: Vec<Arc<Vec<u8>>> = files
        .iter()
        .map(|f| Arc::new(fs::read(m.src().join(HELLO).join(f)).expect("orig")))
        .collect();
    let mounted = m.path().join(HELLO);
    std::thread::scope(|s| {
        for t in 0..64u64 {
            let originals = &originals;
            let mounted = &mounted;
            s.spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(t);
                let which = (t as usize) % files.len();
                let orig = &originals[which];
                let file = fs::File::open(mounted.join(files[which])).expect("open");
                for _ in 0..100 {
                    let offset = rng.random_range(0..orig.len() as u64);
                    let len = rng.random_range(1..300_000usize);
                    let mut buf = vec![0u8; len];
                    let n = file.read_at(&mut buf, offset).expect("read");
                    let end = (offset as usize + len).min(orig.len());
                    assert!(n > 0 && offset as usize + n <= end, "short read");
                    assert!(
                        buf[..n] == orig[offset as usize..offset as usize + n],
                        "thread {t}: bytes at {offset} differ"
                    );
                }
            });
        }
    });
}

/// Replaces the bytes of one chunk of `path`'s blob in the memory store;
/// returns (chunk start, chunk end) in the file.
fn corrupt_one_chunk(m: &Mounted, file_digest: cairn_castore::Digest) -> (u64, u64) {
    let map =
        m.rt.block_on(m.imported.memory.chunk_map(&file_digest))
            .expect("map")
            .expect("blob");
    assert!(map.len() >= 3, "the file spans several chunks");
    let chunk = map.chunks()[1];
    m.imported
        .memory
        .corrupt_chunk(&chunk.digest, Bytes::from(vec![0u8; chunk.size as usize]));
    (map.start(1), map.start(2))
}

/// The digest of `file` in store path `dir`, through the filesystem's xattr.
fn file_digest(m: &Mounted, dir: &str, file: &[&str]) -> cairn_castore::Digest {
    let ino = m.rt.block_on(async {
        let mut ino = m.fs.lookup(1, dir.as_bytes()).await.expect("dir").ino;
        for name in file {
            ino = m.fs.lookup(ino, name.as_bytes()).await.expect("entry").ino;
        }
        ino
    });
    let value = m.fs.getxattr(ino, b"user.cairn.digest").expect("xattr");
    let text = String::from_utf8(value).expect("utf-8");
    text.parse().expect("digest")
}

#[test]
fn corrupt_chunk_gives_eio_on_that_file_only() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions::default());
    let big_digest = file_digest(&m, HELLO, &["lib", "libbig.so"]);
    let (bad_start, bad_end) = corrupt_one_chunk(&m, big_digest);

    let path = m.path().join(HELLO).join("lib/libbig.so");
    let orig = fs::read(m.src().join(HELLO).join("lib/libbig.so")).expect("orig");
    let err = fs::read(&path).expect_err("corrupt file must not read");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // Reading the corrupt chunk directly fails too, never wrong bytes.
    let file = fs::File::open(&path).expect("open");
    let mut buf = vec![0u8; (bad_end - bad_start) as usize];
    let err = file
        .read_at(&mut buf, bad_start)
        .expect_err("corrupt chunk");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    // Bytes before the corrupt chunk are intact.
    let mut head = vec![0u8; 4096];
    file.read_exact_at(&mut head, 0).expect("head");
    assert_eq!(head, orig[..4096]);
    // Other files are fine.
    compare(
        &m.src().join(HELLO).join("lib/libmid.so"),
        &m.path().join(HELLO).join("lib/libmid.so"),
    );
    compare(&m.src().join(SINGLE), &m.path().join(SINGLE));
}

#[test]
fn stalled_backend_gives_eio_and_cached_data_keeps_working() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions {
        timeout: Duration::from_millis(500),
        ..FsOptions::default()
    });
    let hello = m.path().join(HELLO);
    let cached = fs::read(hello.join("bin/hello")).expect("read before stalling");
    m.imported.control.set_stalled(true);
    let start = Instant::now();
    let err = fs::read(hello.join("lib/libbig.so")).expect_err("stalled");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "EIO came late");
    // Cached content, names and attributes keep working.
    assert_eq!(fs::read(hello.join("bin/hello")).expect("cached"), cached);
    assert!(fs::metadata(hello.join("bin/hello")).is_ok());
    m.imported.control.set_stalled(false);
    compare(&m.src().join(HELLO).join("lib"), &hello.join("lib"));
}

#[test]
fn listing_the_root_can_be_switched_off() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions {
        list_root: false,
        ..FsOptions::default()
    });
    let listed = fs::read_dir(m.path()).expect("root").count();
    assert_eq!(listed, 0);
    compare(&m.src().join(HELLO), &m.path().join(HELLO));
    compare(&m.src().join(SINGLE), &m.path().join(SINGLE));
}

#[test]
fn root_listing_follows_the_root_source_while_mounted() {
    if !can_mount() {
        return;
    }
    let m = mount_with(FsOptions::default());
    let names = |m: &Mounted| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(m.path())
            .expect("root")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = names(&m);
    assert!(before.contains(&HELLO.to_owned()));
    // Listed again at once: served from the kernel's cache, still correct.
    assert_eq!(names(&m), before);
    let (_, hello_node) = m
        .imported
        .nodes
        .iter()
        .find(|(n, _)| n.as_bytes() == HELLO.as_bytes())
        .expect("hello")
        .clone();
    let added = "00000000000000000000000000000000-added";
    m.imported.roots.insert(
        cairn_castore::Name::try_from(added).expect("name"),
        hello_node,
    );
    // A new entry shows up once the root's attributes expire (1 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = names(&m);
        if now.contains(&added.to_owned()) {
            assert_eq!(now.len(), before.len() + 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "added root never listed: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    compare(&m.src().join(HELLO), &m.path().join(added));
}

#[test]
fn unmounting_during_reads_does_not_hang() {
    if !can_mount() {
        return;
    }
    let mut m = mount_with(FsOptions::default());
    m.imported.control.set_delay(Duration::from_millis(5));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for t in 0..8 {
        let dir = m.path().join(HELLO);
        let (stop, reads) = (stop.clone(), reads.clone());
        readers.push(std::thread::spawn(move || {
            let files = ["lib/libbig.so", "lib/libmid.so", "bin/hello"];
            let mut i = t;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(file) = fs::File::open(dir.join(files[i % files.len()])) {
                    let mut buf = vec![0u8; 128 << 10];
                    let mut off = 0;
                    while let Ok(n) = file.read_at(&mut buf, off) {
                        if n == 0 || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        off += n as u64;
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
            }
        }));
    }
    let until = Instant::now() + Duration::from_secs(10);
    while reads.load(Ordering::Relaxed) < 20 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(reads.load(Ordering::Relaxed) >= 20, "readers made progress");
    let handle = m.handle.take().expect("handle");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(handle.unmount());
    });
    let result = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("unmount hung");
    result.expect("unmount");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader");
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let point = m.path().to_str().expect("utf-8").to_owned();
    assert!(
        !mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(point.as_str())),
        "still mounted"
    );
}

#[test]
fn unmounter_ends_the_session_while_a_file_stays_open() {
    if !can_mount() {
        return;
    }
    let mut m = mount_with(FsOptions::default());
    let held = fs::File::open(m.path().join(SINGLE)).expect("open");
    let mut buf = [0u8; 16];
    held.read_exact_at(&mut buf, 0).expect("read");
    let handle = m.handle.take().expect("handle");
    let unmounter = handle.unmounter();
    let (tx, rx) = std::sync::mpsc::channel();
    // The foreground pattern: one thread waits on the session, another
    // (a signal handler) unmounts.
    std::thread::spawn(move || {
        let _ = tx.send(handle.join());
    });
    unmounter.unmount().expect("unmount");
    let joined = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("session did not end");
    joined.expect("session");
    drop(held);
    // A second unmount is harmless.
    unmounter.unmount().expect("second unmount");
}

/// Whole-file copies in a fresh directory: blobs of 1 MiB or more, written
/// on their second open.
fn whole_files() -> (tempfile::TempDir, Arc<WholeFiles>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = WholeFiles::new(WholeFilesOptions {
        dir: dir.path().join("copies"),
        max_bytes: 64 << 20,
        min_size: 1 << 20,
        after_opens: 2,
    })
    .expect("whole files");
    (dir, files)
}

fn mount_with_copies(files: &Arc<WholeFiles>) -> Mounted {
    mount_with_options(
        FsOptions::default(),
        MountOptions {
            whole_files: Some(files.clone()),
            ..MountOptions::default()
        },
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whole-file copies in `dir` (not the markers or temporary files).
fn copies_in(dir: &Path) -> usize {
    fs::read_dir(dir)
        .expect("copies dir")
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .count()
}

fn drop_page_cache() {
    fs::write("/proc/sys/vm/drop_caches", "1").expect("drop caches");
}

#[test]
fn reopened_large_files_are_read_in_passthrough_from_whole_copies() {
    if !can_mount() {
        return;
    }
    let (dir, files) = whole_files();
    let m = mount_with_copies(&files);
    let rel = format!("{HELLO}/lib/libbig.so");
    let path = m.path().join(&rel);
    let orig = fs::read(m.src().join(&rel)).expect("orig");

    // First open: through FUSE; no copy yet.
    assert_eq!(fs::read(&path).expect("first read"), orig);
    assert!(
        m.handle.as_ref().expect("handle").passthrough_active(),
        "kernel 6.9+ with FUSE passthrough, run as root"
    );
    assert_eq!(files.written(), 0);
    // Second open, held: the copy is written in the background.
    let held = fs::File::open(&path).expect("second open");
    wait_for("the whole-file copy", || files.written() == 1);
    let blob = file_digest(&m, HELLO, &["lib", "libbig.so"]);
    let copy = dir.path().join("copies").join(blob.to_hex());
    assert_eq!(fs::read(&copy).expect("copy"), orig);
    // While a file of the inode is open through the page cache, new opens
    // stay in that mode (the kernel refuses to mix them).
    assert_eq!(fs::read(&path).expect("read while held"), orig);
    let handle = m.handle.as_ref().expect("handle");
    assert_eq!(handle.passthrough_opens(), 0);
    drop(held);

    // Once the last one is released, opens go to the copy.
    wait_for("a passthrough open", || {
        assert_eq!(fs::read(&path).expect("read"), orig);
        handle.passthrough_opens() > 0
    });
    drop_page_cache();
    let reads = m.fs.stats().reads;
    let file = fs::File::open(&path).expect("open");
    let mut buf = vec![0u8; orig.len()];
    file.read_exact_at(&mut buf, 0).expect("read");
    assert!(buf == orig, "passthrough read differs from the original");
    let mut tail = vec![0u8; 1000];
    file.read_exact_at(&mut tail, 3 << 20)
        .expect("read at offset");
    assert_eq!(tail, orig[3 << 20..(3 << 20) + 1000]);
    assert_eq!(
        m.fs.stats().reads,
        reads,
        "passthrough reads never reach the daemon"
    );
    // Two passthrough files of one inode at once.
    let again = fs::read(&path).expect("second passthrough file");
    assert!(again == orig);
    drop(file);

    // Files below the size threshold never get copies.
    for _ in 0..3 {
        fs::read(m.path().join(SINGLE)).expect("small file");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(files.written(), 1);
    assert_eq!(copies_in(&dir.path().join("copies")), 1);
}

#[test]
fn a_corrupt_blob_gets_no_whole_copy() {
    if !can_mount() {
        return;
    }
    let (dir, files) = whole_files();
    let m = mount_with_copies(&files);
    let blob = file_digest(&m, HELLO, &["lib", "libbig.so"]);
    corrupt_one_chunk(&m, blob);
    let path = m.path().join(HELLO).join("lib/libbig.so");
    for _ in 0..2 {
        let err = fs::read(&path).expect_err("corrupt file must not read");
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    wait_for("the copy to fail", || files.failed() == 1);
    assert_eq!(
        copies_in(&dir.path().join("copies")),
        0,
        "no copy and no temporary file left"
    );
    let err = fs::read(&path).expect_err("still corrupt");
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(m.handle.as_ref().expect("handle").passthrough_opens(), 0);
}
