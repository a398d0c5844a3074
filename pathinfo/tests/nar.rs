//! NAR reader and writer tests without Nix: round trips, streaming
//! behaviour and malformed or malicious input.

mod common;

use cairn_pathinfo::nar::{
    HashingReader, HashingWriter, NarEvent, NarReadError, NarReader, NarReaderOptions,
    NarWriteError, NarWriter, dump_path, nar_hash_path, read_nar,
};
use common::{Collector, Node, RawNar};
use tokio::io::AsyncReadExt;

async fn parse(bytes: &[u8]) -> Result<Vec<Node>, NarReadError> {
    let mut c = Collector::default();
    read_nar(bytes, &mut c).await?;
    Ok(c.nodes)
}

async fn rewrite(bytes: &[u8]) -> Result<Vec<u8>, NarReadError> {
    let mut w = NarWriter::new(Vec::new());
    read_nar(bytes, &mut w).await?;
    Ok(w.finish().await.expect("complete NAR"))
}

fn dir_nar() -> RawNar {
    RawNar::new()
        .ss(&["(", "type", "directory"])
        .entry(b"a")
        .file(b"hello")
        .s(b")")
        .entry(b"b")
        .ss(&["(", "type", "symlink", "target", "a", ")"])
        .s(b")")
        .entry(b"c")
        .ss(&["(", "type", "directory", ")"])
        .s(b")")
        .s(b")")
}

#[tokio::test]
async fn reads_and_rewrites_hand_made_nar() {
    let nar = dir_nar();
    let nodes = parse(nar.bytes()).await.unwrap();
    assert_eq!(
        nodes,
        vec![
            Node::DirStart(vec![]),
            Node::File {
                path: b"/a".to_vec(),
                executable: false,
                contents: b"hello".to_vec()
            },
            Node::Symlink(b"/b".to_vec(), b"a".to_vec()),
            Node::DirStart(b"/c".to_vec()),
            Node::DirEnd,
            Node::DirEnd,
        ]
    );
    assert_eq!(rewrite(nar.bytes()).await.unwrap(), nar.bytes());
}

#[tokio::test]
async fn writer_builds_same_bytes_from_chunks() {
    let mut w = NarWriter::new(Vec::new());
    w.directory_start(None).await.unwrap();
    w.file_start(Some(b"a"), false, 5).await.unwrap();
    w.file_chunk(b"he").await.unwrap();
    w.file_chunk(b"").await.unwrap();
    w.file_chunk(b"llo").await.unwrap();
    w.file_end().await.unwrap();
    w.symlink(Some(b"b"), b"a").await.unwrap();
    w.directory_start(Some(b"c")).await.unwrap();
    w.directory_end().await.unwrap();
    w.directory_end().await.unwrap();
    assert!(w.is_complete());
    let n = w.bytes_written();
    let out = w.finish().await.unwrap();
    assert_eq!(out.len() as u64, n);
    assert_eq!(out, dir_nar().bytes());
}

#[tokio::test]
async fn writer_rejects_misuse() {
    let mut w = NarWriter::new(Vec::new());
    assert!(matches!(
        w.symlink(Some(b"x"), b"t").await,
        Err(NarWriteError::NameMismatch(_))
    ));

    for (first, second, ok) in [
        (&b"b"[..], &b"a"[..], false),
        (b"a", b"a", false),
        (b"a", b"b", true),
        (b"B", b"a", true),
    ] {
        let mut w = NarWriter::new(Vec::new());
        w.directory_start(None).await.unwrap();
        w.symlink(Some(first), b"t").await.unwrap();
        let r = w.symlink(Some(second), b"t").await;
        assert_eq!(r.is_ok(), ok, "{first:?} then {second:?}: {r:?}");
        if !ok {
            assert!(matches!(
                r,
                Err(NarWriteError::UnsortedEntry { .. } | NarWriteError::DuplicateEntry(_))
            ));
        }
    }

    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        let mut w = NarWriter::new(Vec::new());
        w.directory_start(None).await.unwrap();
        assert!(matches!(
            w.symlink(Some(bad), b"t").await,
            Err(NarWriteError::InvalidName(_))
        ));
    }

    let mut w = NarWriter::new(Vec::new());
    assert!(matches!(
        w.symlink(None, b"").await,
        Err(NarWriteError::InvalidSymlinkTarget(_))
    ));

    // Contents shorter and longer than declared.
    let mut w = NarWriter::new(Vec::new());
    let r = w.file(None, false, 10, &mut &b"short"[..]).await;
    assert!(matches!(
        r,
        Err(NarWriteError::SizeMismatch {
            expected: 10,
            actual: 5
        })
    ));
    let mut w = NarWriter::new(Vec::new());
    let r = w.file(None, false, 2, &mut &b"long"[..]).await;
    assert!(matches!(r, Err(NarWriteError::SizeMismatch { .. })));
    let mut w = NarWriter::new(Vec::new());
    w.file_start(None, false, 2).await.unwrap();
    assert!(matches!(
        w.file_chunk(b"abc").await,
        Err(NarWriteError::SizeMismatch { .. })
    ));
    let mut w = NarWriter::new(Vec::new());
    w.file_start(None, false, 2).await.unwrap();
    assert!(matches!(
        w.file_end().await,
        Err(NarWriteError::SizeMismatch { .. })
    ));

    // Incomplete NAR and writes after completion.
    let mut w = NarWriter::new(Vec::new());
    w.directory_start(None).await.unwrap();
    assert!(matches!(
        w.finish().await,
        Err(NarWriteError::InvalidState(_))
    ));
    let mut w = NarWriter::new(Vec::new());
    w.symlink(None, b"t").await.unwrap();
    assert!(matches!(
        w.symlink(None, b"t").await,
        Err(NarWriteError::InvalidState(_))
    ));
    assert!(matches!(
        w.directory_end().await,
        Err(NarWriteError::InvalidState(_))
    ));
}

#[tokio::test]
async fn pull_reader_streams_and_skips() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = NarWriter::new(Vec::new());
    w.directory_start(None).await.unwrap();
    w.file(Some(b"big"), true, big.len() as u64, &mut &big[..])
        .await
        .unwrap();
    w.file(Some(b"big2"), false, big.len() as u64, &mut &big[..])
        .await
        .unwrap();
    w.symlink(Some(b"z"), b"big").await.unwrap();
    w.directory_end().await.unwrap();
    let nar = w.finish().await.unwrap();

    let mut r = NarReader::new(&nar[..]);
    assert!(matches!(
        r.next().await.unwrap(),
        Some(NarEvent::DirectoryStart { name: None })
    ));
    // Read the first file in odd-sized pieces.
    match r.next().await.unwrap() {
        Some(NarEvent::File {
            name,
            executable,
            size,
            mut contents,
        }) => {
            assert_eq!(name.as_deref(), Some(&b"big"[..]));
            assert!(executable);
            assert_eq!(size, big.len() as u64);
            let mut got = Vec::new();
            let mut buf = vec![0u8; 7777];
            loop {
                let n = contents.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, big);
            assert_eq!(contents.remaining(), 0);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Read only a little of the second file; the rest is skipped.
    match r.next().await.unwrap() {
        Some(NarEvent::File { mut contents, .. }) => {
            let mut buf = [0u8; 10];
            contents.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf[..], &big[..10]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        r.next().await.unwrap(),
        Some(NarEvent::Symlink { .. })
    ));
    assert!(matches!(
        r.next().await.unwrap(),
        Some(NarEvent::DirectoryEnd)
    ));
    assert!(r.next().await.unwrap().is_none());
    assert_eq!(r.offset(), nar.len() as u64);
    assert!(r.next().await.unwrap().is_none());

    // Large reads bypass the buffer and still see the right bytes.
    let mut c = Collector::default();
    read_nar(&nar[..], &mut c).await.unwrap();
    assert!(matches!(&c.nodes[1], Node::File { contents, .. } if *contents == big));

    // Skipping everything.
    let mut c = Collector {
        read_limit: Some(0),
        ..Default::default()
    };
    assert_eq!(read_nar(&nar[..], &mut c).await.unwrap(), nar.len() as u64);
}

#[tokio::test]
async fn hashing_wrappers_agree() {
    let nar = dir_nar();
    let mut hr = HashingReader::new(nar.bytes());
    let mut w = NarWriter::new(HashingWriter::new(Vec::new()));
    read_nar(&mut hr, &mut w).await.unwrap();
    let hw = w.finish().await.unwrap();
    let (_, wh, ws) = hw.into_parts();
    let (_, rh, rs) = hr.into_parts();
    assert_eq!(wh, rh);
    assert_eq!(ws, rs);
    assert_eq!(ws, nar.bytes().len() as u64);
    assert_eq!(
        wh,
        cairn_pathinfo::NixHash::digest(cairn_pathinfo::HashAlgo::Sha256, nar.bytes())
    );
}

#[tokio::test]
async fn dump_and_hash_local_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    common::basic_tree(&root);
    let nar = dump_path(&root, Vec::new()).await.unwrap();
    let (hash, size) = nar_hash_path(&root).await.unwrap();
    assert_eq!(size, nar.len() as u64);
    assert_eq!(
        hash,
        cairn_pathinfo::NixHash::digest(cairn_pathinfo::HashAlgo::Sha256, &nar)
    );
    assert_eq!(rewrite(&nar).await.unwrap(), nar);
    // A FIFO is not representable.
    let fifo = tmp.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert!(matches!(
        dump_path(&fifo, Vec::new()).await,
        Err(cairn_pathinfo::nar::DumpError::UnsupportedFileType(_))
    ));
}

#[tokio::test]
async fn every_truncation_is_an_error() {
    let nar = dir_nar();
    let bytes = nar.bytes();
    for len in 0..bytes.len() {
        let r = parse(&bytes[..len]).await;
        assert!(
            matches!(r, Err(NarReadError::UnexpectedEof { offset }) if offset == len as u64),
            "truncated at {len}: {r:?}"
        );
    }
}

#[tokio::test]
async fn garbled_bytes_never_panic() {
    let nar = dir_nar();
    for i in 0..nar.bytes().len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = nar.bytes().to_vec();
            b[i] ^= x;
            if let Ok(out) = rewrite(&b).await {
                // Whatever is accepted is canonical.
                assert_eq!(out, b, "byte {i} ^ {x:#x}");
            }
        }
    }
}

async fn expect_err(nar: RawNar) -> NarReadError {
    match parse(nar.bytes()).await {
        Ok(nodes) => panic!("accepted malformed NAR: {nodes:?}"),
        Err(e) => {
            // Errors render with their offset.
            let _ = e.to_string();
            e
        }
    }
}

fn root_dir() -> RawNar {
    RawNar::new().ss(&["(", "type", "directory"])
}

fn symlink_node(n: RawNar) -> RawNar {
    n.ss(&["(", "type", "symlink", "target", "t", ")"])
}

#[tokio::test]
async fn rejects_malicious_names() {
    for name in [&b""[..], b".", b"..", b"a/b", b"../etc", b"/", b"a\0b"] {
        let nar = symlink_node(root_dir().entry(name)).ss(&[")", ")"]);
        assert!(
            matches!(expect_err(nar).await, NarReadError::InvalidName { .. }),
            "{name:?}"
        );
    }
    let dup =
        symlink_node(symlink_node(root_dir().entry(b"a")).s(b")").entry(b"a")).ss(&[")", ")"]);
    assert!(matches!(
        expect_err(dup).await,
        NarReadError::DuplicateEntry { .. }
    ));
    let unsorted =
        symlink_node(symlink_node(root_dir().entry(b"b")).s(b")").entry(b"a")).ss(&[")", ")"]);
    assert!(matches!(
        expect_err(unsorted).await,
        NarReadError::UnsortedEntry { .. }
    ));
    let long = symlink_node(root_dir().entry(&[b'n'; 256])).ss(&[")", ")"]);
    assert!(matches!(
        expect_err(long).await,
        NarReadError::StringTooLong {
            len: 256,
            limit: 255,
            ..
        }
    ));
}

#[tokio::test]
async fn rejects_absurd_sizes_and_bad_padding() {
    // Name length near 2^64.
    let nar = root_dir().ss(&["entry", "(", "name"]).u(u64::MAX - 3);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::StringTooLong { .. }
    ));
    // Keyword length absurd.
    let nar = RawNar::new().s(b"(").u(1 << 60);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::UnexpectedToken { .. }
    ));
    // File size beyond the data.
    let nar = RawNar::new()
        .ss(&["(", "type", "regular", "contents"])
        .u(u64::MAX)
        .raw(b"abc");
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::UnexpectedEof { .. }
    ));
    // Symlink target too long and empty.
    let nar = RawNar::new()
        .ss(&["(", "type", "symlink", "target"])
        .s(&[b't'; 4096])
        .s(b")");
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::StringTooLong {
            what: "symlink target",
            ..
        }
    ));
    let nar = RawNar::new().ss(&["(", "type", "symlink", "target", "", ")"]);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::InvalidSymlinkTarget { .. }
    ));
    // Nonzero padding after a token.
    let mut b = RawNar::new().ss(&["(", "type", "symlink"]).0;
    b.extend_from_slice(&6u64.to_le_bytes());
    b.extend_from_slice(b"target\0\x01");
    let nar = RawNar(b).s(b"t").s(b")");
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::BadPadding { .. }
    ));
    // Nonzero padding after file contents.
    let nar = RawNar::new()
        .ss(&["(", "type", "regular", "contents"])
        .u(3)
        .raw(b"abc\0\0\0\0\x01")
        .s(b")");
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::BadPadding { offset } if offset == 24 + 16 * 4 + 8 + 3
    ));
}

#[tokio::test]
async fn rejects_structural_garbage() {
    assert!(matches!(
        expect_err(RawNar::default().s(b"nix-archive-2")).await,
        NarReadError::BadMagic { offset: 0 }
    ));
    assert!(matches!(
        expect_err(RawNar::default().u(1 << 40)).await,
        NarReadError::BadMagic { .. }
    ));
    let nar = RawNar::new().ss(&["(", "type", "fifo", ")"]);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::UnexpectedToken { .. }
    ));
    let nar = RawNar::new().ss(&["(", "type", "regular", "executable", "x", "contents"]);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::UnexpectedToken { .. }
    ));
    let nar = root_dir().ss(&["enter"]);
    assert!(matches!(
        expect_err(nar).await,
        NarReadError::UnexpectedToken { .. }
    ));
    let trailing = dir_nar().raw(b"x");
    assert!(matches!(
        expect_err(trailing).await,
        NarReadError::TrailingData { .. }
    ));
    // Trailing data may be allowed.
    let with_trailing = dir_nar().raw(b"xyz");
    let mut r = NarReader::with_options(
        with_trailing.bytes(),
        NarReaderOptions {
            reject_trailing_data: false,
            ..Default::default()
        },
    );
    while r.next().await.unwrap().is_some() {}

    // Nesting.
    let mut deep = root_dir();
    for _ in 0..300 {
        deep = deep.entry(b"d").ss(&["(", "type", "directory"]);
    }
    let e = expect_err(deep).await;
    assert!(matches!(e, NarReadError::TooDeep { limit: 256, .. }), "{e}");

    // After an error the reader stays failed.
    let nar = RawNar::new().ss(&["(", "type", "fifo"]);
    let mut r = NarReader::new(nar.bytes());
    assert!(r.next().await.is_err());
    assert!(matches!(r.next().await, Err(NarReadError::Poisoned)));
}

#[tokio::test]
async fn truncated_contents_reported_as_nar_error() {
    let nar = RawNar::new()
        .ss(&["(", "type", "regular", "contents"])
        .u(1000)
        .raw(&[7; 100]);
    let e = expect_err(nar).await;
    assert!(matches!(e, NarReadError::UnexpectedEof { .. }), "{e}");
}

#[tokio::test]
async fn reading_writing_and_dumping_can_be_spawned() {
    let nar = dir_nar().0;
    let task = tokio::spawn(async move {
        let mut w = NarWriter::new(Vec::new());
        read_nar(&nar[..], &mut w).await.unwrap();
        let out = w.finish().await.unwrap();
        assert_eq!(out, nar);
    });
    task.await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    common::basic_tree(tmp.path());
    let root = tmp.path().to_owned();
    let nar = tokio::spawn(async move { dump_path(&root, Vec::new()).await.unwrap() })
        .await
        .unwrap();
    let mut r = NarReader::new(std::io::Cursor::new(nar));
    let task = tokio::spawn(async move {
        let mut n = 0;
        while let Some(ev) = r.next().await.unwrap() {
            if let NarEvent::File { mut contents, .. } = ev {
                tokio::io::copy(&mut contents, &mut tokio::io::sink())
                    .await
                    .unwrap();
            }
            n += 1;
        }
        n
    });
    assert!(task.await.unwrap() > 10);
}
