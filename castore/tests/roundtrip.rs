//! Import -> export round trips on generated trees, with both backends, and
//! the streaming blob writer and reader.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cairn_castore::export::export_node;
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{BlobReader, BlobWriter, CaStore, ChunkerConfig, Node};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use common::pseudo_random;

#[derive(Debug, Clone)]
enum Spec {
    File(Vec<u8>, bool),
    Link(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Spec>),
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|s| s.into_bytes()),
        Just(b"caf\xe9".to_vec()),
        Just("日本".as_bytes().to_vec()),
        Just(b".hidden".to_vec()),
    ]
}

fn content_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..300),
        (1usize..400_000, any::<u64>()).prop_map(|(len, seed)| pseudo_random(len, seed)),
    ]
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let leaf = prop_oneof![
        (content_strategy(), any::<bool>()).prop_map(|(c, x)| Spec::File(c, x)),
        "[a-z./]{1,12}".prop_map(|t| Spec::Link(t.into_bytes())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        proptest::collection::btree_map(name_strategy(), inner, 0..6).prop_map(Spec::Dir)
    })
}

fn materialize(spec: &Spec, path: &Path) {
    match spec {
        Spec::File(content, executable) => {
            std::fs::write(path, content).unwrap();
            let mode = if *executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Spec::Link(target) => {
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).unwrap()
        }
        Spec::Dir(children) => {
            std::fs::create_dir(path).unwrap();
            for (name, child) in children {
                materialize(child, &path.join(std::ffi::OsStr::from_bytes(name)));
            }
        }
    }
}

/// Compares two trees: names, types, contents, executable bits, link targets.
fn assert_same_tree(a: &Path, b: &Path) {
    let ma = std::fs::symlink_metadata(a).unwrap();
    let mb = std::fs::symlink_metadata(b).unwrap();
    assert_eq!(ma.file_type(), mb.file_type(), "{a:?} vs {b:?}");
    if ma.file_type().is_symlink() {
        assert_eq!(
            std::fs::read_link(a).unwrap(),
            std::fs::read_link(b).unwrap()
        );
    } else if ma.is_file() {
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{a:?}"
        );
        assert_eq!(
            ma.permissions().mode() & 0o100,
            mb.permissions().mode() & 0o100,
            "{a:?}"
        );
    } else {
        let names = |p: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let (na, nb) = (names(a), names(b));
        assert_eq!(na, nb, "{a:?}");
        for n in na {
            assert_same_tree(&a.join(&n), &b.join(&n));
        }
    }
}

async fn round_trip(store: &CaStore, src: &Path, out: &Path) -> Node {
    let nodes = import_paths(store, &[src.to_path_buf()], ImportOptions::default())
        .await
        .unwrap();
    export_node(store, &nodes[0], out).await.unwrap();
    assert_same_tree(src, out);
    // Importing the export gives the same root.
    let again = import_paths(store, &[out.to_path_buf()], ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(nodes[0], again[0]);
    nodes[0].clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn import_export_round_trip(spec in spec_strategy()) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        materialize(&spec, &src);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let memory = CaStore::memory();
            let a = round_trip(&memory, &src, &tmp.path().join("out-mem")).await;
            let local = CaStore::local(tmp.path().join("store")).unwrap();
            let b = round_trip(&local, &src, &tmp.path().join("out-local")).await;
            // Same tree, same digest, whatever the backend.
            assert_eq!(a, b);
        });
    }
}

/// Imports the file at `path`, which holds `data`: its node's digest and
/// size, checked to be BLAKE3 of `data` and its length.
async fn import_file(store: &CaStore, path: PathBuf, data: &[u8]) -> (cairn_castore::Digest, u64) {
    let nodes = import_paths(store, &[path], ImportOptions::default())
        .await
        .unwrap();
    let Node::File { digest, size, .. } = nodes[0] else {
        panic!("not a file")
    };
    assert_eq!(size, data.len() as u64);
    assert_eq!(digest.as_bytes(), blake3::hash(data).as_bytes());
    (digest, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_chunk_file_and_streaming_writer_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let data = pseudo_random(5 << 20, 42);
    let path: PathBuf = tmp.path().join("big");
    std::fs::write(&path, &data).unwrap();
    let store = CaStore::local(tmp.path().join("store")).unwrap();
    let (digest, size) = import_file(&store, path, &data).await;
    let map = store.blobs.chunk_map(&digest).await.unwrap().unwrap();
    assert!(map.len() > 10, "{} chunks", map.len());

    // The streaming writer, fed in odd-sized pieces, gives the same digest and chunks.
    let mut writer = BlobWriter::new(store.blobs.clone(), ChunkerConfig::default());
    for piece in data.chunks(77_777) {
        writer.write(piece).await.unwrap();
    }
    let (digest2, size2) = writer.finish().await.unwrap();
    assert_eq!((digest2, size2), (digest, size));
    assert_eq!(store.blobs.chunk_map(&digest2).await.unwrap().unwrap(), map);

    // Whole read, with and without prefetch, and reads after seeks.
    for window in [0, 1 << 20, 64 << 20] {
        let mut reader = BlobReader::open(store.blobs.clone(), digest).await.unwrap();
        reader.set_window(window);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).await.unwrap();
        assert!(all == data, "window {window}");
        for offset in [0u64, 1, 65_535, 3_000_001, data.len() as u64 - 10] {
            reader.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
            let mut buf = vec![0u8; 100_000];
            let mut got = 0;
            while got < buf.len() {
                let n = reader.read(&mut buf[got..]).await.unwrap();
                if n == 0 {
                    break;
                }
                got += n;
            }
            let expected = &data[offset as usize..(offset as usize + got)];
            assert_eq!(&buf[..got], expected);
            assert_eq!(got, (data.len() - offset as usize).min(100_000));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_writer_and_cut_points_chunk_small_blobs_alike() {
    let cfg = ChunkerConfig::default();
    let avg = cfg.avg_size as usize;
    // Data whose first FastCDC cut falls below the average size.
    let early = (0..500)
        .map(|seed| pseudo_random(avg + 1, seed))
        .find(|d| cfg.next_cut(d) < avg)
        .expect("some data has a cut below the average size");
    let tmp = tempfile::tempdir().unwrap();
    let store = CaStore::local(tmp.path().join("store")).unwrap();
    for len in [avg, avg + 1] {
        let data = &early[..len];
        let expected: Vec<usize> = cfg.cut_points(data);
        assert_eq!(expected.len() == 1, len == avg, "{len} bytes: {expected:?}");
        let path = tmp.path().join(format!("f{len}"));
        std::fs::write(&path, data).unwrap();
        let nodes = import_paths(&store, &[path], ImportOptions::default())
            .await
            .unwrap();
        let Node::File { digest, .. } = nodes[0] else {
            panic!("not a file")
        };
        let imported: Vec<usize> = match store.blobs.chunk_map(&digest).await.unwrap() {
            Some(map) => map
                .chunks()
                .iter()
                .scan(0, |end, c| {
                    *end += c.size as usize;
                    Some(*end)
                })
                .collect(),
            None => vec![len],
        };
        assert_eq!(imported, expected, "import of {len} bytes");
        // A store of its own, so that the map seen is the writer's.
        let own = CaStore::memory();
        let mut writer = BlobWriter::new(own.blobs.clone(), cfg);
        writer.write(data).await.unwrap();
        let (written, _) = writer.finish().await.unwrap();
        assert_eq!(written, digest);
        let streamed = own
            .blobs
            .chunk_map(&written)
            .await
            .unwrap()
            .map(|m| m.chunks().len())
            .unwrap_or(1);
        assert_eq!(streamed, expected.len(), "writer of {len} bytes");
    }
}

/// Many small files in one directory, in sizes around the 1 KiB BLAKE3
/// chunk and the largest blob stored whole, among a few larger ones: the
/// import reads them in groups (and splits a group where a read block
/// fills) and hashes each group together. Every file's digest is that of
/// its bytes, and the tree round-trips through both backends.
#[tokio::test]
async fn groups_of_small_files_hash_and_round_trip() {
    let cfg = ChunkerConfig::default();
    let avg = cfg.avg_size as usize;
    let boundaries = [
        0,
        1,
        63,
        64,
        1023,
        1024,
        1025,
        16_384,
        avg - 1,
        avg,
        avg + 1,
        200_000,
    ];
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..400usize {
        // Mostly near the average chunk size, so that groups reach their
        // byte limit and read blocks fill in the middle of a group.
        let len = if i % 3 == 0 {
            boundaries[i / 3 % boundaries.len()]
        } else {
            avg - (i * 7919) % 4096
        };
        let name = format!("f{i:03}");
        let data = pseudo_random(len, i as u64 + 11);
        std::fs::write(src.join(&name), &data).unwrap();
        files.insert(name.into_bytes(), data);
    }
    for store in [
        CaStore::memory(),
        CaStore::local(tmp.path().join("store")).unwrap(),
    ] {
        let out = tmp.path().join(format!("out-{}", files.len()));
        let _ = std::fs::remove_dir_all(&out);
        let root = round_trip(&store, &src, &out).await;
        let Node::Directory { digest, .. } = root else {
            panic!("the root is no directory: {root:?}");
        };
        let dir = store.directories.get(&digest).await.unwrap().unwrap();
        let mut seen = 0;
        for (name, node) in dir.entries() {
            let Node::File { digest, size, .. } = node else {
                panic!("{name:?} is no file");
            };
            let data = &files[name.as_bytes()];
            assert_eq!(*size, data.len() as u64, "{name:?}");
            assert_eq!(
                *digest,
                cairn_castore::Digest::of(data),
                "{name:?} of {} bytes",
                data.len()
            );
            seen += 1;
        }
        assert_eq!(seen, files.len());
    }
}

/// A file that grows or shrinks between the scan and its read, alone or in
/// a group of small files, or large: the import fails naming it, and
/// stores no directory.
#[tokio::test]
async fn a_file_changed_after_the_scan_is_refused() {
    use cairn_castore::import::{ImportError, import_scanned, scan};
    for (victim, new_len) in [
        ("small-5", 10),      // shrank, in a group
        ("small-5", 3000),    // grew, in a group
        ("large", 300_000),   // shrank, read in steps
        ("large", 1_000_000), // grew, read in steps
        ("huge", 2_000_000),  // shrank, read in steps as the cache has them
        ("huge", 4_000_000),  // grew, read in steps as the cache has them
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for i in 0..10 {
            std::fs::write(src.join(format!("small-{i}")), pseudo_random(2000, i)).unwrap();
        }
        std::fs::write(src.join("large"), pseudo_random(900_000, 99)).unwrap();
        std::fs::write(src.join("huge"), pseudo_random(3_000_000, 98)).unwrap();
        let tree = scan(std::slice::from_ref(&src)).unwrap();
        std::fs::write(src.join(victim), pseudo_random(new_len, 7)).unwrap();
        let store = CaStore::local(tmp.path().join("store")).unwrap();
        let err = import_scanned(&store, tree, ImportOptions::default())
            .await
            .expect_err("a changed file was imported");
        match &err {
            ImportError::Changed { path } => assert_eq!(path, &src.join(victim)),
            other => panic!("{victim} to {new_len} bytes: {other}"),
        }
        assert!(err.to_string().contains("changed while being imported"));
        assert!(
            store.directories.list().await.unwrap().is_empty(),
            "a directory was stored"
        );
    }
}

/// A large file partly out of the page cache (some of its pages dropped,
/// so that some reads find every byte cached and others do not) is stored
/// as a cached one is: its digest, the chunker's chunks, its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_partly_out_of_the_page_cache_imports_alike() {
    use std::os::fd::AsRawFd;
    // Under the build's target directory: a disk filesystem, whose pages
    // can be dropped (a tmpfs /tmp keeps them).
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = pseudo_random((9 << 20) + 12_345, 31);
    let path: PathBuf = tmp.path().join("big");
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    const MIB: i64 = 1 << 20;
    for (from, len) in [(MIB, MIB), (4 * MIB, 3 * MIB)] {
        // SAFETY: plain integer arguments on an open descriptor.
        let rc =
            unsafe { libc::posix_fadvise(file.as_raw_fd(), from, len, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }
    // The drop took: a read that must not wait finds the bytes missing.
    let mut probe = [0u8; 4096];
    let iov = libc::iovec {
        iov_base: probe.as_mut_ptr().cast(),
        iov_len: probe.len(),
    };
    // SAFETY: the iovec covers `probe`, writable for the call.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, 5 * MIB, libc::RWF_NOWAIT) };
    assert_eq!(
        (n, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(libc::EAGAIN)),
        "the page is still cached"
    );

    let store = CaStore::local(tmp.path().join("store")).unwrap();
    let (digest, _) = import_file(&store, path, &data).await;
    // The chunks the chunker cuts from the bytes in memory.
    let map = store.blobs.chunk_map(&digest).await.unwrap().unwrap();
    let mut start = 0;
    let expected: Vec<(u32, [u8; 32])> = ChunkerConfig::default()
        .cut_points(&data)
        .into_iter()
        .map(|end| {
            let chunk = &data[start..end];
            start = end;
            (chunk.len() as u32, *blake3::hash(chunk).as_bytes())
        })
        .collect();
    let stored: Vec<(u32, [u8; 32])> = map
        .chunks()
        .iter()
        .map(|c| (c.size, *c.digest.as_bytes()))
        .collect();
    assert_eq!(stored, expected);
    let mut all = Vec::new();
    BlobReader::open(store.blobs.clone(), digest)
        .await
        .unwrap()
        .read_to_end(&mut all)
        .await
        .unwrap();
    assert!(all == data, "the stored bytes differ");
}

/// Drops `path`'s pages from the page cache (the file synced first), and
/// checks with `mincore`, which starts no read, that none is left.
fn evict(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: plain integer arguments on an open descriptor.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0);
    assert_eq!(cached_pages(&file), 0, "{} is still cached", path.display());
}

/// How many of `file`'s pages the page cache holds, by `mincore` on the
/// store's own read-only map of a file (mapping it reads nothing).
fn cached_pages(file: &std::fs::File) -> usize {
    let Some(map) = cairn_castore::backends::pack_map::PackMap::of(file).unwrap() else {
        return 0;
    };
    let bytes = map.get(0, map.len()).unwrap();
    let mut resident = vec![0u8; bytes.len().div_ceil(4096)];
    // SAFETY: `bytes` starts the page-aligned mapping and spans it;
    // `resident` has a byte per page of it.
    let rc = unsafe {
        libc::mincore(
            bytes.as_ptr() as *mut libc::c_void,
            bytes.len(),
            resident.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    resident.iter().filter(|&&r| r & 1 != 0).count()
}

/// Small files (read in groups) of which some are out of the page cache,
/// wholly or from some page on, import as cached ones do: the uncached ones
/// are read after the rest of their group, into their own places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_out_of_the_page_cache_import_alike() {
    // Under the build's target directory: a disk filesystem, whose pages
    // can be dropped (a tmpfs /tmp keeps them).
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let sizes = [0usize, 1, 700, 4096, 4097, 9000, 12_288, 30_000, 65_536];
    for i in 0..40 {
        let len = sizes[i % sizes.len()];
        std::fs::write(src.join(format!("f{i:02}")), pseudo_random(len, i as u64)).unwrap();
    }
    for i in (0..40).filter(|i| i % 3 != 1) {
        let path = src.join(format!("f{i:02}"));
        if std::fs::metadata(&path).unwrap().len() > 0 {
            evict(&path);
        }
    }
    // A file whose first page stays cached and whose others do not.
    let partly = src.join("f07");
    let data = std::fs::read(&partly).unwrap();
    assert!(data.len() > 8192);
    evict(&partly);
    let mut first = [0u8; 4096];
    let file = std::fs::File::open(&partly).unwrap();
    {
        use std::os::fd::AsRawFd;
        // No read-ahead past the page read.
        // SAFETY: plain integer arguments on an open descriptor.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        assert_eq!(rc, 0);
    }
    std::io::Read::read_exact(&mut &file, &mut first).unwrap();
    assert!(cached_pages(&file) < data.len().div_ceil(4096));

    let store = CaStore::local(tmp.path().join("store")).unwrap();
    round_trip(&store, &src, &tmp.path().join("out")).await;
}

/// A small file changed after the scan is refused even when it was out of
/// the page cache, and read after the rest of its group: grown or shrunk.
#[tokio::test]
async fn an_uncached_small_file_changed_after_the_scan_is_refused() {
    use cairn_castore::import::{ImportError, import_scanned, scan};
    for new_len in [1000, 3000] {
        let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for i in 0..10 {
            std::fs::write(src.join(format!("small-{i}")), pseudo_random(2000, i)).unwrap();
        }
        let tree = scan(std::slice::from_ref(&src)).unwrap();
        let victim = src.join("small-4");
        std::fs::write(&victim, pseudo_random(new_len, 7)).unwrap();
        evict(&victim);
        let store = CaStore::local(tmp.path().join("store")).unwrap();
        let err = import_scanned(&store, tree, ImportOptions::default())
            .await
            .expect_err("a changed file was imported");
        match &err {
            ImportError::Changed { path } => assert_eq!(path, &victim),
            other => panic!("to {new_len} bytes: {other}"),
        }
        assert!(store.directories.list().await.unwrap().is_empty());
    }
}
