//! Property tests: round trips of nixbase32, hash forms, store paths, NAR
//! write→read→write and narinfo serialise→parse.

mod common;

use cairn_pathinfo::nar::{NarWriter, read_nar};
use cairn_pathinfo::narinfo::NarInfo;
use cairn_pathinfo::signing::{SecretKey, Signature};
use cairn_pathinfo::{
    ContentAddress, FileIngestionMethod, HashAlgo, NixHash, StoreDir, StorePath, nixbase32,
};
use common::{Collector, Node};
use proptest::prelude::*;

fn algo() -> impl Strategy<Value = HashAlgo> {
    prop_oneof![
        Just(HashAlgo::Md5),
        Just(HashAlgo::Sha1),
        Just(HashAlgo::Sha256),
        Just(HashAlgo::Sha512)
    ]
}

fn nix_hash() -> impl Strategy<Value = NixHash> {
    (algo(), proptest::collection::vec(any::<u8>(), 64))
        .prop_map(|(a, bytes)| NixHash::from_digest(a, &bytes[..a.digest_len()]).unwrap())
}

fn store_path() -> impl Strategy<Value = StorePath> {
    (any::<[u8; 20]>(), "[a-zA-Z0-9+_?=-][a-zA-Z0-9+._?=-]{0,40}")
        .prop_map(|(d, n)| StorePath::from_parts(d, &n).unwrap())
}

/// A tree description for NAR generation.
#[derive(Debug, Clone)]
enum Tree {
    File(bool, Vec<u8>),
    Symlink(Vec<u8>),
    Dir(std::collections::BTreeMap<Vec<u8>, Tree>),
}

fn entry_name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..12).prop_filter("valid name", |n| {
        cairn_pathinfo::nar::is_valid_entry_name(n)
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        (
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(x, c)| Tree::File(x, c)),
        proptest::collection::vec(1u8..=255, 1..40).prop_map(Tree::Symlink),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        proptest::collection::btree_map(entry_name(), inner, 0..8).prop_map(Tree::Dir)
    })
}

fn write_tree<'a>(
    w: &'a mut NarWriter<Vec<u8>>,
    name: Option<&'a [u8]>,
    t: &'a Tree,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
    Box::pin(async move {
        match t {
            Tree::File(x, c) => w.file(name, *x, c.len() as u64, &mut &c[..]).await.unwrap(),
            Tree::Symlink(target) => w.symlink(name, target).await.unwrap(),
            Tree::Dir(entries) => {
                w.directory_start(name).await.unwrap();
                for (n, e) in entries {
                    write_tree(w, Some(n), e).await;
                }
                w.directory_end().await.unwrap();
            }
        }
    })
}

fn count_nodes(t: &Tree) -> usize {
    match t {
        Tree::Dir(e) => 2 + e.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn nixbase32_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let s = nixbase32::encode(&bytes);
        prop_assert_eq!(s.len(), nixbase32::encoded_len(bytes.len()));
        prop_assert_eq!(nixbase32::decode(&s).unwrap(), bytes);
    }

    #[test]
    fn nixbase32_decode_never_panics(s in "[0-9a-z]{0,60}") {
        if let Ok(bytes) = nixbase32::decode(&s) {
            prop_assert_eq!(nixbase32::encode(&bytes), s);
        }
    }

    #[test]
    fn hash_forms_round_trip(h in nix_hash()) {
        for form in [h.to_typed_base16(), h.to_typed_nixbase32(), h.to_typed_base64(), h.to_sri()] {
            prop_assert_eq!(&form.parse::<NixHash>().unwrap(), &h);
        }
        for bare in [h.to_base16(), h.to_nixbase32(), h.to_base64()] {
            prop_assert_eq!(&NixHash::parse_unprefixed(h.algo(), &bare).unwrap(), &h);
        }
        prop_assert_eq!(&NixHash::parse_any(&h.to_base16().to_uppercase(), Some(h.algo())).unwrap(), &h);
    }

    #[test]
    fn hash_parse_never_panics(s in "\\PC{0,140}") {
        let _ = s.parse::<NixHash>();
        for a in HashAlgo::ALL {
            let _ = NixHash::parse_any(&s, Some(a));
        }
    }

    #[test]
    fn store_path_round_trip(p in store_path()) {
        prop_assert_eq!(&StorePath::from_base_name(&p.to_string()).unwrap(), &p);
        prop_assert_eq!(&StorePath::from_absolute_path(&p.to_absolute_path()).unwrap(), &p);
        let dir = StoreDir::new("/custom/store").unwrap();
        prop_assert_eq!(&dir.parse_path(&dir.display_path(&p)).unwrap(), &p);
    }

    #[test]
    fn store_path_order_is_base_name_order(a in store_path(), b in store_path()) {
        prop_assert_eq!(a.cmp(&b), a.to_string().cmp(&b.to_string()));
    }

    #[test]
    fn store_path_parse_never_panics(s in "\\PC{0,80}") {
        if let Ok(p) = StorePath::from_base_name(&s) {
            prop_assert_eq!(p.to_string(), s);
        }
    }

    #[test]
    fn nar_write_read_round_trip(t in tree()) {
        rt().block_on(async {
            let mut w = NarWriter::new(Vec::new());
            write_tree(&mut w, None, &t).await;
            let nar = w.finish().await.unwrap();
            // Re-written NAR is identical.
            let mut w2 = NarWriter::new(Vec::new());
            prop_assert_eq!(read_nar(&nar[..], &mut w2).await.unwrap(), nar.len() as u64);
            prop_assert_eq!(&w2.finish().await.unwrap(), &nar);
            // Every node is reported, with its contents.
            let mut c = Collector::default();
            read_nar(&nar[..], &mut c).await.unwrap();
            prop_assert_eq!(c.nodes.len(), count_nodes(&t));
            if let (Tree::File(x, data), Some(Node::File { executable, contents, .. })) = (&t, c.nodes.first()) {
                prop_assert_eq!(x, executable);
                prop_assert_eq!(data, contents);
            }
            // Any strict prefix is rejected.
            for cut in [0, nar.len() / 2, nar.len() - 1] {
                let mut c = Collector::default();
                prop_assert!(read_nar(&nar[..cut], &mut c).await.is_err());
            }
            Ok(())
        })?;
    }

    #[test]
    fn narinfo_round_trip(
        path in store_path(),
        url in "[a-z0-9/._-]{1,40}",
        compression in proptest::option::of("(none|xz|zstd|bzip2)"),
        file in proptest::option::of((any::<[u8; 32]>(), any::<u64>())),
        nar_hash in any::<[u8; 32]>(),
        nar_size in 1u64..,
        references in proptest::collection::vec(store_path(), 0..5),
        deriver in proptest::option::of(store_path()),
        system in proptest::option::of("[a-z0-9_-]{1,20}"),
        sig_seeds in proptest::collection::vec(any::<[u8; 32]>(), 0..3),
        ca in proptest::option::of((any::<bool>(), nix_hash())),
    ) {
        let mut ni = NarInfo {
            store_path: path,
            url,
            compression,
            file_hash: file.map(|(h, _)| NixHash::Sha256(h)),
            file_size: file.map(|(_, s)| s),
            nar_hash: NixHash::Sha256(nar_hash),
            nar_size,
            references,
            deriver,
            system,
            signatures: Vec::new(),
            ca: ca.map(|(text, h)| match (text, &h) {
                (true, NixHash::Sha256(d)) => ContentAddress::Text(*d),
                (true, _) => ContentAddress::Fixed(FileIngestionMethod::Flat, h),
                (false, _) => ContentAddress::Fixed(FileIngestionMethod::Recursive, h),
            }),
        };
        let dir = StoreDir::default();
        let mut keys = Vec::new();
        for (i, seed) in sig_seeds.iter().enumerate() {
            let k = SecretKey::from_seed(format!("key-{i}"), seed);
            ni.sign(&dir, &k).unwrap();
            keys.push(k.public_key());
        }
        let text = ni.to_string();
        let parsed = NarInfo::parse(&text).unwrap();
        prop_assert_eq!(&parsed, &ni);
        prop_assert_eq!(parsed.to_string(), text);
        prop_assert_eq!(parsed.count_valid_signatures(&dir, &keys).unwrap(), keys.len());
        for s in &parsed.signatures {
            prop_assert_eq!(&s.to_string().parse::<Signature>().unwrap(), s);
        }
    }

    #[test]
    fn narinfo_parse_never_panics(s in "((StorePath|URL|NarHash|NarSize|References|Sig|CA|Deriver|FileSize|X)(: |:)?[ -~]{0,60}\n?){0,8}") {
        let _ = NarInfo::parse(&s);
    }
}
