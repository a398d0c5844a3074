//! Directory encoding vectors, derived by hand from castore.proto's wire
//! format, and the decoder's refusals.

use bytes::Bytes;
use cairn_castore::{Digest, Directory, DirectoryError, Name, Node, SymlinkTarget};
use proptest::strategy::Strategy;

fn name(s: &str) -> Name {
    Name::try_from(s).unwrap()
}

fn file(digest: Digest, size: u64, executable: bool) -> Node {
    Node::File {
        digest,
        size,
        executable,
    }
}

#[test]
fn empty_directory_is_blake3_of_nothing() {
    let dir = Directory::new();
    assert!(dir.encode().is_empty());
    assert_eq!(
        dir.digest().to_hex(),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!(dir.size(), 0);
}

#[test]
fn one_file() {
    let blob = Digest::of(b"hello");
    let dir = Directory::from_entries(vec![(name("a"), file(blob, 5, false))]).unwrap();
    // Directory.files (2, LEN) { name (1, LEN) "a"; digest (2, LEN) 32 bytes; size (3, VARINT) 5 }
    let mut expected = vec![0x12, 39, 0x0a, 1, b'a', 0x12, 32];
    expected.extend_from_slice(blob.as_bytes());
    expected.extend_from_slice(&[0x18, 5]);
    assert_eq!(dir.encode(), expected);
    assert_eq!(dir.digest(), Digest::of(&expected));
    assert_eq!(Directory::decode(&expected).unwrap(), dir);
}

#[test]
fn executable_empty_file_symlink_and_subdirectory() {
    let sub = Directory::from_entries(vec![(name("x"), file(Digest::empty(), 0, false))]).unwrap();
    let blob = Digest::of(b"#!/bin/sh\n");
    let dir = Directory::from_entries(vec![
        (name("run"), file(blob, 10, true)),
        (name("lib"), sub.node()),
        (
            name("link"),
            Node::Symlink {
                target: SymlinkTarget::new(Bytes::from_static(b"run")).unwrap(),
            },
        ),
    ])
    .unwrap();

    // sub: files { name "x"; digest; (size 0 omitted) }
    let mut sub_bytes = vec![0x12, 37, 0x0a, 1, b'x', 0x12, 32];
    sub_bytes.extend_from_slice(Digest::empty().as_bytes());
    assert_eq!(sub.encode(), sub_bytes);
    assert_eq!(sub.size(), 1);

    // directories first (field 1), then files (2), then symlinks (3).
    let mut expected = vec![0x0a, 41, 0x0a, 3, b'l', b'i', b'b', 0x12, 32];
    expected.extend_from_slice(Digest::of(&sub_bytes).as_bytes());
    expected.extend_from_slice(&[0x18, 1]);
    expected.extend_from_slice(&[0x12, 43, 0x0a, 3, b'r', b'u', b'n', 0x12, 32]);
    expected.extend_from_slice(blob.as_bytes());
    expected.extend_from_slice(&[0x18, 10, 0x20, 1]);
    expected.extend_from_slice(&[0x1a, 11, 0x0a, 4, b'l', b'i', b'n', b'k', 0x12, 3]);
    expected.extend_from_slice(b"run");
    assert_eq!(dir.encode(), expected);
    assert_eq!(dir.digest(), Digest::of(&expected));
    // 3 entries + the subdirectory's size 1.
    assert_eq!(dir.size(), 4);
    assert_eq!(Directory::decode(&expected).unwrap(), dir);
}

#[test]
fn large_sizes_use_multibyte_varints() {
    let dir =
        Directory::from_entries(vec![(name("f"), file(Digest::of(b"f"), 300, false))]).unwrap();
    let bytes = dir.encode();
    assert_eq!(&bytes[bytes.len() - 3..], &[0x18, 0xac, 0x02]);
    assert_eq!(Directory::decode(&bytes).unwrap(), dir);
}

#[test]
fn lookup_is_by_name() {
    let dir = Directory::from_entries(vec![
        (name("b"), file(Digest::of(b"b"), 1, false)),
        (name("a"), file(Digest::of(b"a"), 1, false)),
    ])
    .unwrap();
    assert_eq!(dir.entries()[0].0, name("a"));
    assert!(dir.get(b"b").is_some());
    assert!(dir.get(b"c").is_none());
}

#[test]
fn names_are_validated() {
    for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
        assert!(Name::new(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
    }
    assert!(Name::new(Bytes::from(vec![b'x'; 256])).is_err());
    assert!(Name::new(Bytes::from_static(b"caf\xe9")).is_ok());
    assert!(SymlinkTarget::new(Bytes::new()).is_err());
    assert!(SymlinkTarget::new(Bytes::from_static(b"a\0")).is_err());
}

#[test]
fn duplicates_are_refused() {
    let err = Directory::from_entries(vec![
        (name("a"), file(Digest::of(b"1"), 1, false)),
        (
            name("a"),
            Node::Symlink {
                target: SymlinkTarget::new(Bytes::from_static(b"t")).unwrap(),
            },
        ),
    ])
    .unwrap_err();
    assert!(matches!(err, DirectoryError::Duplicate(_)));
}

fn file_entry(name: &[u8], digest: &Digest, extra: &[u8]) -> Vec<u8> {
    let mut body = vec![0x0a, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[0x12, 32]);
    body.extend_from_slice(digest.as_bytes());
    body.extend_from_slice(extra);
    let mut out = vec![0x12, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn decoding_refuses_non_canonical_and_invalid_bytes() {
    let d = Digest::of(b"x");
    let valid = [
        file_entry(b"a", &d, &[0x18, 1]),
        file_entry(b"b", &d, &[0x18, 1]),
    ]
    .concat();
    assert!(Directory::decode(&valid).is_ok());

    // unsorted
    let unsorted = [
        file_entry(b"b", &d, &[0x18, 1]),
        file_entry(b"a", &d, &[0x18, 1]),
    ]
    .concat();
    assert!(matches!(
        Directory::decode(&unsorted),
        Err(DirectoryError::Unsorted(..))
    ));
    // duplicate
    let dup = [file_entry(b"a", &d, &[]), file_entry(b"a", &d, &[])].concat();
    assert!(matches!(
        Directory::decode(&dup),
        Err(DirectoryError::Duplicate(_))
    ));
    // default values written explicitly
    for extra in [&[0x18, 0][..], &[0x20, 0]] {
        assert!(matches!(
            Directory::decode(&file_entry(b"a", &d, extra)),
            Err(DirectoryError::NotCanonical)
        ));
    }
    // non-minimal varint for size 1
    assert!(Directory::decode(&file_entry(b"a", &d, &[0x18, 0x81, 0x00])).is_err());
    // bool that is neither 0 nor 1
    assert!(Directory::decode(&file_entry(b"a", &d, &[0x20, 2])).is_err());
    // invalid names
    assert!(matches!(
        Directory::decode(&file_entry(b"..", &d, &[])),
        Err(DirectoryError::Name(_))
    ));
    assert!(Directory::decode(&file_entry(b"a/b", &d, &[])).is_err());
    // unknown field
    assert!(matches!(
        Directory::decode(&[0x22, 0]),
        Err(DirectoryError::UnexpectedField { .. })
    ));
    // truncated
    assert!(matches!(
        Directory::decode(&valid[..valid.len() - 1]),
        Err(DirectoryError::Truncated(_))
    ));
    // short digest
    assert!(matches!(
        Directory::decode(&[0x12, 7, 0x0a, 1, b'a', 0x12, 2, 1, 2]),
        Err(DirectoryError::DigestLength(2))
    ));
    // a symlink decoded from files' field number is a file: files after symlinks is out of order
    let link = [0x1a, 6, 0x0a, 1, b'l', 0x12, 1, b't'];
    let out_of_order = [&link[..], &file_entry(b"a", &d, &[])].concat();
    assert!(Directory::decode(&out_of_order).is_err());
}

#[test]
fn decoding_garbage_never_panics() {
    let mut x = 0x1234_5678u32;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 97)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = Directory::decode(&bytes);
    }
}

/// A node of any kind, with sizes and name and target lengths that span
/// one- to several-byte varints.
fn any_node() -> impl proptest::strategy::Strategy<Value = Node> {
    use proptest::prelude::*;
    let size = prop_oneof![Just(0u64), 1u64..200, 200u64..100_000, any::<u64>()];
    prop_oneof![
        (any::<[u8; 32]>(), size.clone(), any::<bool>()).prop_map(|(d, size, executable)| {
            Node::File {
                digest: Digest::from(blake3::Hash::from(d)),
                size,
                executable,
            }
        }),
        (any::<[u8; 32]>(), size).prop_map(|(d, size)| Node::Directory {
            digest: Digest::from(blake3::Hash::from(d)),
            size,
        }),
        proptest::collection::vec(1u8..=255, 1..300).prop_map(|t| Node::Symlink {
            target: SymlinkTarget::new(Bytes::from(t)).unwrap(),
        }),
    ]
}

proptest::proptest! {
    /// The encoding is exactly as long as `encoded_len` says, and decodes
    /// to the same directory.
    #[test]
    fn encoded_len_is_the_encoding_length_and_decoding_inverts_it(
        entries in proptest::collection::btree_map(
            proptest::collection::vec(
                proptest::prelude::any::<u8>().prop_filter("no slash or NUL", |b| *b != b'/' && *b != 0),
                1..200,
            ).prop_filter("not . or ..", |n| n != b"." && n != b".."),
            any_node(),
            0..40,
        )
    ) {
        let entries = entries
            .into_iter()
            .map(|(n, node)| (Name::new(Bytes::from(n)).unwrap(), node))
            .collect();
        let Ok(dir) = Directory::from_entries(entries) else {
            // Sizes of child directories that overflow together.
            return Ok(());
        };
        let bytes = dir.encode();
        proptest::prop_assert_eq!(bytes.len(), dir.encoded_len());
        proptest::prop_assert_eq!(Directory::decode(&bytes).unwrap(), dir);
    }
}
