//! Tests of the filesystem core without a mount: lookups, listings, inode
//! lifetimes, reads and timeouts through the transport-independent API.

mod common;

use std::time::{Duration, Instant};

use cairn_castore::NodeKind;
use cairn_fs::{CairnFs, FsError, FsOptions};
use common::*;

fn core(options: FsOptions) -> (tokio::runtime::Runtime, Imported, std::sync::Arc<CairnFs>) {
    let rt = runtime();
    let imported = import(&rt);
    let fs = {
        let _guard = rt.enter();
        CairnFs::new(imported.store.clone(), imported.roots.clone(), options).expect("fs")
    };
    (rt, imported, fs)
}

/// Names listed by readdir on directory `ino`.
fn list(fs: &CairnFs, rt: &tokio::runtime::Runtime, ino: u64, plus: bool) -> Vec<(String, u64)> {
    let fh = rt.block_on(fs.opendir(ino)).expect("opendir");
    let mut out = Vec::new();
    fs.readdir(fh, 0, plus, |e| {
        out.push((String::from_utf8_lossy(e.name).into_owned(), e.ino));
        false
    })
    .expect("readdir");
    fs.releasedir(fh);
    out
}

#[test]
fn lookups_take_references_and_forget_releases_them() {
    let (rt, _imported, fs) = core(FsOptions::default());
    let hello = rt.block_on(fs.lookup(1, HELLO.as_bytes())).expect("hello");
    assert_eq!(hello.kind, NodeKind::Directory);
    let bin = rt.block_on(fs.lookup(hello.ino, b"bin")).expect("bin");
    let exe = rt.block_on(fs.lookup(bin.ino, b"hello")).expect("exe");
    assert_eq!(exe.kind, NodeKind::File);
    assert_eq!(exe.perm, 0o555);
    assert_eq!(exe.size, 300 << 10);
    let again = rt.block_on(fs.lookup(bin.ino, b"hello")).expect("again");
    assert_eq!(again.ino, exe.ino, "stable while referenced");
    assert_eq!(fs.inode_count(), 3);
    fs.forget(exe.ino, 2);
    assert!(matches!(fs.getattr(exe.ino), Err(FsError::StaleInode(_))));
    fs.forget(bin.ino, 1);
    fs.forget(hello.ino, 1);
    assert_eq!(fs.inode_count(), 0, "all released");
    assert!(matches!(
        rt.block_on(fs.lookup(1, b"missing-path")),
        Err(FsError::NotFound)
    ));
    assert!(matches!(
        rt.block_on(fs.lookup(hello.ino, b"bin")),
        Err(FsError::StaleInode(_))
    ));
}

#[test]
fn readdir_lists_entries_and_plus_takes_references() {
    let (rt, _imported, fs) = core(FsOptions::default());
    let root = list(&fs, &rt, 1, false);
    let names: Vec<&str> = root.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec![".", "..", HELLO, SINGLE, LINK]);
    assert_eq!(fs.inode_count(), 0, "plain readdir takes no references");

    let hello = rt.block_on(fs.lookup(1, HELLO.as_bytes())).expect("hello");
    let many = rt.block_on(fs.lookup(hello.ino, b"many")).expect("many");
    let entries = list(&fs, &rt, many.ino, true);
    assert_eq!(entries.len(), 302);
    assert_eq!(fs.inode_count(), 2 + 300);
    for (name, ino) in &entries[2..] {
        let attr = fs.getattr(*ino).expect("live");
        let looked = rt
            .block_on(fs.lookup(many.ino, name.as_bytes()))
            .expect("lookup");
        assert_eq!(looked.ino, attr.ino, "{name}");
        fs.forget(*ino, 2);
    }
    assert_eq!(fs.inode_count(), 2);

    // Paging: stop after a few entries, continue from the last offset.
    let fh = rt.block_on(fs.opendir(many.ino)).expect("opendir");
    let mut first = Vec::new();
    let mut next = 0;
    fs.readdir(fh, 0, true, |e| {
        if first.len() == 10 {
            return true;
        }
        first.push(e.ino);
        next = e.next_offset;
        false
    })
    .expect("readdir");
    assert_eq!(
        fs.inode_count(),
        2 + 8,
        "the refused entry holds no reference"
    );
    let mut rest = 0;
    fs.readdir(fh, next, false, |_| {
        rest += 1;
        false
    })
    .expect("readdir");
    assert_eq!(rest, 300 - 8);
    fs.releasedir(fh);
}

#[test]
fn root_listing_can_be_switched_off_but_lookups_work() {
    let (rt, _imported, fs) = core(FsOptions {
        list_root: false,
        ..FsOptions::default()
    });
    assert_eq!(list(&fs, &rt, 1, false).len(), 2);
    assert!(rt.block_on(fs.lookup(1, SINGLE.as_bytes())).is_ok());
}

#[test]
fn reads_return_the_original_bytes() {
    let (rt, imported, fs) = core(FsOptions {
        window_bytes: 1 << 20,
        ..FsOptions::default()
    });
    let orig = std::fs::read(imported.src.path().join(HELLO).join("lib/libbig.so")).expect("orig");
    let hello = rt.block_on(fs.lookup(1, HELLO.as_bytes())).expect("hello");
    let lib = rt.block_on(fs.lookup(hello.ino, b"lib")).expect("lib");
    let big = rt.block_on(fs.lookup(lib.ino, b"libbig.so")).expect("big");
    assert!(matches!(
        rt.block_on(fs.open(lib.ino)),
        Err(FsError::IsDirectory)
    ));
    let fh = rt.block_on(fs.open(big.ino)).expect("open");
    let mut got = Vec::new();
    let mut offset = 0u64;
    loop {
        let data = rt.block_on(fs.read(fh, offset, 100_000)).expect("read");
        if data.is_empty() {
            break;
        }
        offset += data.len() as u64;
        got.extend_from_slice(&data);
    }
    assert!(got == orig, "sequential read differs");
    let tail = rt
        .block_on(fs.read(fh, orig.len() as u64 - 10, 1000))
        .expect("tail");
    assert_eq!(&tail[..], &orig[orig.len() - 10..]);
    fs.release(fh);
    assert!(matches!(
        rt.block_on(fs.read(fh, 0, 10)),
        Err(FsError::BadHandle(_))
    ));
    let link = rt.block_on(fs.lookup(hello.ino, b"link")).expect("link");
    assert_eq!(&fs.readlink(link.ino).expect("target")[..], b"bin/hello");
}

#[test]
fn sequential_reads_prefetch_and_random_reads_do_not() {
    let (rt, imported, fs) = core(FsOptions {
        window_bytes: 2 << 20,
        ..FsOptions::default()
    });
    let control = imported.control.clone();
    let hello = rt.block_on(fs.lookup(1, HELLO.as_bytes())).expect("hello");
    let lib = rt.block_on(fs.lookup(hello.ino, b"lib")).expect("lib");
    let big = rt.block_on(fs.lookup(lib.ino, b"libbig.so")).expect("big");

    // Random reads: only the chunks read are fetched.
    let fh = rt.block_on(fs.open(big.ino)).expect("open");
    let before = control.requests();
    for offset in [3_000_000u64, 500_000, 4_500_000] {
        rt.block_on(fs.read(fh, offset, 4096)).expect("read");
    }
    std::thread::sleep(Duration::from_millis(200));
    let random_requests = control.requests() - before;
    assert!(
        random_requests <= 6,
        "{random_requests} requests for 3 reads"
    );
    fs.release(fh);

    // A sequential reader with a slow backend: after the first read the
    // following reads find their chunks already fetched.
    control.set_delay(Duration::from_millis(50));
    let fh = rt.block_on(fs.open(big.ino)).expect("open");
    rt.block_on(fs.read(fh, 0, 128 << 10)).expect("first read");
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut offset = 128 << 10;
    while offset < (1 << 20) {
        rt.block_on(fs.read(fh, offset, 128 << 10)).expect("read");
        offset += 128 << 10;
    }
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "sequential reads waited on the backend: {:?}",
        start.elapsed()
    );
}

#[test]
fn reads_as_slices_equal_reads_as_one_buffer() {
    let (rt, imported, fs) = core(FsOptions::default());
    let orig = std::fs::read(imported.src.path().join(HELLO).join("lib/libbig.so")).expect("orig");
    let hello = rt.block_on(fs.lookup(1, HELLO.as_bytes())).expect("hello");
    let lib = rt.block_on(fs.lookup(hello.ino, b"lib")).expect("lib");
    let big = rt.block_on(fs.lookup(lib.ino, b"libbig.so")).expect("big");
    let fh = rt.block_on(fs.open(big.ino)).expect("open");
    let len = orig.len() as u64;
    for (offset, size) in [
        (0, 1u32 << 20),
        (12_345, 1 << 20),
        (len - 100_000, 1 << 20),
        (70_000, 3),
        (len, 10),
    ] {
        let slices = rt.block_on(fs.read_slices(fh, offset, size)).expect("read");
        assert!(slices.iter().all(|s| !s.is_empty()));
        let joined: Vec<u8> = slices.concat();
        let one = rt.block_on(fs.read(fh, offset, size)).expect("read");
        let end = (offset + u64::from(size)).min(len) as usize;
        assert_eq!(&joined[..], &orig[offset as usize..end], "at {offset}");
        assert_eq!(&one[..], &joined[..]);
    }
    fs.release(fh);
}

#[test]
fn stalled_backend_times_out() {
    let (rt, imported, fs) = core(FsOptions {
        timeout: Duration::from_millis(300),
        ..FsOptions::default()
    });
    let single = rt
        .block_on(fs.lookup(1, SINGLE.as_bytes()))
        .expect("single");
    imported.control.set_stalled(true);
    let start = Instant::now();
    let err = rt.block_on(fs.open(single.ino)).expect_err("stalled");
    assert!(matches!(err, FsError::Timeout { .. }), "{err}");
    assert_eq!(err.errno(), libc::EIO);
    assert!(start.elapsed() < Duration::from_secs(5));
}
