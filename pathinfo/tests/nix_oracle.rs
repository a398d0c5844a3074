//! Byte-for-byte comparisons with Nix (nix-store, nix-hash, nix,
//! nix-instantiate) on generated trees, using a private store. Skipped when
//! Nix is not installed.

mod common;

use std::fs;
use std::path::Path;

use cairn_pathinfo::nar::{NarWriter, dump_path, nar_hash_path, read_nar};
use cairn_pathinfo::narinfo::NarInfo;
use cairn_pathinfo::signing::{PublicKey, SecretKey};
use cairn_pathinfo::{FileIngestionMethod, HashAlgo, NixHash, StoreDir, StorePath};
use common::{Collector, Nix, Node};

fn trees(nix: &Nix) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    let basic = nix.path("src/basic-tree");
    common::basic_tree(&basic);
    v.push(basic);
    let large = nix.path("src/large_tree");
    common::large_tree(&large);
    v.push(large);
    for seed in 1..=6 {
        let p = nix.path(&format!("src/random-{seed}"));
        common::random_tree(&p, seed);
        v.push(p);
    }
    let empty = nix.path("src/empty");
    fs::create_dir_all(&empty).unwrap();
    v.push(empty);
    let file = nix.path("src/single.file");
    common::write_file(&file, b"just a file\n", false);
    v.push(file);
    let exe = nix.path("src/single-exe");
    common::write_file(&exe, &common::Rng::new(9).bytes(100_000), true);
    v.push(exe);
    let link = nix.path("src/just-a-link");
    std::os::unix::fs::symlink("somewhere/else", &link).unwrap();
    v.push(link);
    v
}

fn name_of(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

#[tokio::test]
async fn dump_hash_and_source_path_match_nix() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    for tree in trees(&nix) {
        let t = tree.to_str().unwrap();
        let ours = dump_path(&tree, Vec::new()).await.unwrap();
        let theirs = nix.run("nix-store", &["--dump", t]);
        assert_eq!(ours.len(), theirs.len(), "{t}: NAR length");
        assert!(ours == theirs, "{t}: NAR bytes differ");

        let (hash, size) = nar_hash_path(&tree).await.unwrap();
        assert_eq!(size, theirs.len() as u64);
        let nix_hash = nix.run_str("nix-hash", &["--type", "sha256", "--base32", t]);
        assert_eq!(hash.to_nixbase32(), nix_hash, "{t}: nix-hash");
        let sri = nix.run_str(
            "nix",
            &[
                "--extra-experimental-features",
                "nix-command",
                "hash",
                "path",
                t,
            ],
        );
        assert_eq!(hash.to_sri(), sri, "{t}: nix hash path");

        let added = nix.run_str("nix-store", &["--add", t]);
        let NixHash::Sha256(digest) = hash else {
            unreachable!()
        };
        let computed = dir
            .make_source_path(name_of(&tree), &digest, &[], false)
            .unwrap();
        assert_eq!(dir.display_path(&computed), added, "{t}: store path");
        assert_eq!(
            dir.make_fixed_output_path(
                name_of(&tree),
                FileIngestionMethod::Recursive,
                &hash,
                &[],
                false
            )
            .unwrap(),
            computed
        );
    }
}

#[tokio::test]
async fn nix_nars_parse_and_rewrite_identically() {
    let Some(nix) = Nix::new() else { return };
    for tree in trees(&nix) {
        let t = tree.to_str().unwrap();
        let theirs = nix.run("nix-store", &["--dump", t]);
        let mut w = NarWriter::new(Vec::new());
        let size = read_nar(&theirs[..], &mut w).await.unwrap();
        assert_eq!(size, theirs.len() as u64);
        let ours = w.finish().await.unwrap();
        assert!(ours == theirs, "{t}: rewritten NAR differs");

        // The events describe the tree on disk.
        let mut c = Collector::default();
        read_nar(&theirs[..], &mut c).await.unwrap();
        for node in &c.nodes {
            match node {
                Node::File { path, contents, .. } => {
                    let p = join(&tree, path);
                    assert_eq!(&fs::read(&p).unwrap(), contents, "{p:?}");
                }
                Node::Symlink(path, target) => {
                    let p = join(&tree, path);
                    use std::os::unix::ffi::OsStrExt;
                    assert_eq!(
                        fs::read_link(&p).unwrap().as_os_str().as_bytes(),
                        &target[..]
                    );
                }
                Node::DirStart(path) => assert!(join(&tree, path).is_dir()),
                Node::DirEnd => {}
            }
        }
    }
}

fn join(root: &Path, rel: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let rel = rel.strip_prefix(b"/").unwrap_or(rel);
    if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(std::ffi::OsStr::from_bytes(rel))
    }
}

#[tokio::test]
async fn fixed_output_paths_match_nix() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    let file = nix.path("fixed-input.tar");
    common::write_file(&file, &common::Rng::new(3).bytes(12345), false);
    let f = file.to_str().unwrap();
    let data = fs::read(&file).unwrap();
    for algo in HashAlgo::ALL {
        let added = nix.run_str("nix-store", &["--add-fixed", algo.name(), f]);
        let hash = NixHash::digest(algo, &data);
        let p = dir
            .make_fixed_output_path(
                "fixed-input.tar",
                FileIngestionMethod::Flat,
                &hash,
                &[],
                false,
            )
            .unwrap();
        assert_eq!(dir.display_path(&p), added, "flat {algo}");
    }
    let tree = nix.path("fixed-tree");
    common::basic_tree(&tree);
    let nar = dump_path(&tree, Vec::new()).await.unwrap();
    for algo in HashAlgo::ALL {
        let added = nix.run_str(
            "nix-store",
            &[
                "--add-fixed",
                "--recursive",
                algo.name(),
                tree.to_str().unwrap(),
            ],
        );
        let hash = NixHash::digest(algo, &nar);
        let p = dir
            .make_fixed_output_path(
                "fixed-tree",
                FileIngestionMethod::Recursive,
                &hash,
                &[],
                false,
            )
            .unwrap();
        assert_eq!(dir.display_path(&p), added, "recursive {algo}");
    }
}

fn eval_string(nix: &Nix, expr: &str) -> String {
    let out = nix.run_str(
        "nix-instantiate",
        &["--eval", "--read-write-mode", "-E", expr],
    );
    out.trim_matches('"').to_owned()
}

#[tokio::test]
async fn text_paths_match_builtins_to_file() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    let plain = eval_string(&nix, r#"builtins.toFile "n" "c""#);
    let p = dir
        .make_text_path("n", &cairn_pathinfo::hash::sha256(b"c"), &[])
        .unwrap();
    assert_eq!(dir.display_path(&p), plain);

    // References: a text file mentioning two other store paths.
    let dep1 = eval_string(&nix, r#"builtins.toFile "dep-one" "1""#);
    let dep2 = eval_string(&nix, r#"builtins.toFile "dep-two" "2""#);
    let with_refs = eval_string(
        &nix,
        r#"builtins.toFile "with-refs.txt" "see ${builtins.toFile "dep-two" "2"} and ${builtins.toFile "dep-one" "1"}/x""#,
    );
    let contents = format!("see {dep2} and {dep1}/x");
    let refs = [
        dir.parse_path(&dep2).unwrap(),
        dir.parse_path(&dep1).unwrap(),
    ];
    let p = dir
        .make_text_path(
            "with-refs.txt",
            &cairn_pathinfo::hash::sha256(contents.as_bytes()),
            &refs,
        )
        .unwrap();
    assert_eq!(dir.display_path(&p), with_refs);
    // The store holds exactly that content.
    assert_eq!(
        fs::read_to_string(nix.real_path(&with_refs)).unwrap(),
        contents
    );
}

/// Copies `path` (and its closure) from the private store into a file://
/// binary cache, optionally signing.
fn copy_to_cache(nix: &Nix, cache: &Path, key_file: Option<&Path>, path: &str) {
    let mut url = format!("file://{}?compression=none", cache.display());
    if let Some(k) = key_file {
        url += &format!("&secret-key={}", k.display());
    }
    nix.nix(&["copy", "--store", &nix.store(), "--to", &url, path]);
}

fn narinfo_files(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "narinfo"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn narinfo_from_nix_copy_round_trips_and_verifies() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    let sk_text = nix.run_str(
        "nix",
        &[
            "--extra-experimental-features",
            "nix-command",
            "key",
            "generate-secret",
            "--key-name",
            "cache.example.org-1",
        ],
    );
    let sk_file = nix.path("secret.key");
    fs::write(&sk_file, &sk_text).unwrap();
    let sk: SecretKey = sk_text.parse().unwrap();
    assert_eq!(sk.to_string(), sk_text);
    let pk_text = nix.run_stdin(
        "nix",
        &[
            "--extra-experimental-features",
            "nix-command",
            "key",
            "convert-secret-to-public",
        ],
        sk_text.as_bytes(),
    );
    let pk: PublicKey = pk_text.parse().unwrap();
    assert_eq!(sk.public_key(), pk);
    assert_eq!(pk.to_string(), pk_text);

    // A tree with a reference, plus its dependency.
    let dep = eval_string(&nix, r#"builtins.toFile "dep" "dependency""#);
    let top = eval_string(
        &nix,
        r#"builtins.toFile "top" "uses ${builtins.toFile "dep" "dependency"}""#,
    );
    let tree = nix.path("cache-tree");
    common::basic_tree(&tree);
    let added = nix.run_str("nix-store", &["--add", tree.to_str().unwrap()]);

    let cache = nix.path("cache");
    for p in [&top, &added] {
        copy_to_cache(&nix, &cache, Some(&sk_file), p);
    }
    let files = narinfo_files(&cache);
    assert_eq!(files.len(), 3);
    let other = SecretKey::from_seed("cache.example.org-1", &[5; 32]).public_key();
    let mut saw_refs = false;
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let ni = NarInfo::parse(&text).unwrap();
        assert_eq!(ni.render(&dir), text, "{f:?}");
        assert_eq!(ni.to_string(), text);
        assert!(ni.verify(&dir, std::slice::from_ref(&pk)), "{f:?}");
        assert!(!ni.verify(&dir, std::slice::from_ref(&other)), "{f:?}");
        assert_eq!(
            ni.count_valid_signatures(&dir, &[pk.clone(), other.clone()]),
            Ok(1)
        );
        // A changed field breaks the signature.
        let mut tampered = ni.clone();
        tampered.nar_size += 1;
        assert!(!tampered.verify(&dir, std::slice::from_ref(&pk)));

        // NAR hash and size agree with our serialisation of the store
        // contents, and the cached NAR file is that serialisation.
        let real = nix.real_path(&dir.display_path(&ni.store_path));
        let (hash, size) = nar_hash_path(&real).await.unwrap();
        assert_eq!(ni.nar_hash, hash);
        assert_eq!(ni.nar_size, size);
        let nar_file = fs::read(cache.join(&ni.url)).unwrap();
        assert!(dump_path(&real, Vec::new()).await.unwrap() == nar_file);
        if !ni.references.is_empty() {
            saw_refs = true;
            assert_eq!(dir.display_path(&ni.store_path), top);
            assert_eq!(ni.references, vec![dir.parse_path(&dep).unwrap()]);
            assert!(ni.fingerprint(&dir).unwrap().ends_with(&format!(";{dep}")));
        }
        // The content address gives back the store path.
        let ca = ni.ca.as_ref().expect("content-addressed");
        let computed = dir
            .make_path_from_ca(ni.store_path.name(), ca, &ni.references, false)
            .unwrap();
        assert_eq!(computed, ni.store_path);
    }
    assert!(saw_refs);
}

#[tokio::test]
async fn nix_accepts_our_signatures() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    let tree = nix.path("signed-tree");
    common::random_tree(&tree, 77);
    let added = nix.run_str("nix-store", &["--add", tree.to_str().unwrap()]);
    let cache = nix.path("unsigned-cache");
    copy_to_cache(&nix, &cache, None, &added);
    let files = narinfo_files(&cache);
    assert_eq!(files.len(), 1);
    let text = fs::read_to_string(&files[0]).unwrap();
    let mut ni = NarInfo::parse(&text).unwrap();
    assert!(ni.signatures.is_empty());
    // Without a content address the path needs a signature.
    ni.ca = None;

    let key = SecretKey::from_seed("ours-1", &[42; 32]);
    let pk = key.public_key();
    let wrong = SecretKey::from_seed("ours-1", &[43; 32]).public_key();
    let from = format!("file://{}", cache.display());
    let copy = |store: &str, trusted: &PublicKey| {
        nix.try_nix(&[
            "copy",
            "--from",
            &from,
            "--to",
            &nix.store_named(store),
            "--option",
            "trusted-public-keys",
            &trusted.to_string(),
            &added,
        ])
    };

    fs::write(&files[0], ni.to_string()).unwrap();
    let err = copy("fresh-unsigned", &pk).expect_err("unsigned path accepted");
    assert!(err.contains("signature"), "{err}");

    ni.sign(&dir, &key).unwrap();
    fs::write(&files[0], ni.to_string()).unwrap();
    let err = copy("fresh-wrong-key", &wrong).expect_err("wrong key accepted");
    assert!(err.contains("signature"), "{err}");
    copy("fresh-signed", &pk).expect("signed path rejected");
    assert!(
        nix.path("fresh-signed")
            .join(added.trim_start_matches('/'))
            .exists()
    );

    // Unknown keys: Nix ignores them, and so do we; a line without a colon
    // is corrupt for both.
    let with_unknown = format!("{ni}Frobnicate: yes\n");
    fs::write(&files[0], &with_unknown).unwrap();
    copy("fresh-unknown-key", &pk).expect("unknown key rejected by Nix");
    assert_eq!(NarInfo::parse(&with_unknown).unwrap(), ni);
    let corrupt = format!("{ni}Frobnicate yes\n");
    fs::write(&files[0], &corrupt).unwrap();
    let err = copy("fresh-corrupt", &pk).expect_err("corrupt narinfo accepted by Nix");
    assert!(err.contains("corrupt"), "{err}");
    assert!(NarInfo::parse(&corrupt).is_err());
    fs::write(&files[0], ni.to_string()).unwrap();

    // Our secret key file format is one Nix reads: Nix signs the same
    // fingerprint with the same result (Ed25519 is deterministic).
    let sk_file = nix.path("our.key");
    fs::write(&sk_file, key.to_string()).unwrap();
    let cache2 = nix.path("nix-signed-cache");
    copy_to_cache(&nix, &cache2, Some(&sk_file), &added);
    let theirs = NarInfo::parse(&fs::read_to_string(&narinfo_files(&cache2)[0]).unwrap()).unwrap();
    assert_eq!(theirs.signatures, ni.signatures);
}

#[tokio::test]
async fn nix_parses_store_paths_we_accept() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    // A name at the length limit, with every allowed character class.
    let name = format!("{}+-._?=Az09", "x".repeat(201));
    assert_eq!(name.len(), 211);
    let file = nix.path(&name);
    fs::write(&file, b"x").unwrap();
    let added = nix.run_str("nix-store", &["--add", file.to_str().unwrap()]);
    let p = dir.parse_path(&added).unwrap();
    assert_eq!(p.name(), name);
    // Nix accepts names with a leading period, and so do we.
    let hidden = nix.path(".hidden");
    fs::write(&hidden, b"dot").unwrap();
    let added = nix.run_str("nix-store", &["--add", hidden.to_str().unwrap()]);
    let p = dir.parse_path(&added).unwrap();
    let (hash, _) = nar_hash_path(&hidden).await.unwrap();
    let NixHash::Sha256(d) = hash else {
        unreachable!()
    };
    assert_eq!(dir.make_source_path(".hidden", &d, &[], false).unwrap(), p);

    let too_long = nix.path(&format!("{name}y"));
    fs::write(&too_long, b"x").unwrap();
    assert!(
        nix.try_run("nix-store", &["--add", too_long.to_str().unwrap()])
            .is_err()
    );
    assert!(matches!(
        StorePath::from_base_name(&format!("{}-{name}y", p.hash_part())),
        Err(cairn_pathinfo::StorePathError::NameTooLong(212))
    ));
}

/// Builds an input-addressed path (with a deriver and a reference) in the
/// private store, using the static busybox as builder.
fn build_input_addressed(nix: &Nix) -> String {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is needed (scripts/test installs it)");
    let bb = nix.path("bb");
    fs::create_dir_all(&bb).unwrap();
    fs::copy(busybox, bb.join("busybox")).unwrap();
    let expr = format!(
        r#"derivation {{
             name = "built-thing";
             system = builtins.currentSystem;
             builder = "${{{bb}}}/busybox";
             args = [ "sh" "-c" "echo ${{{bb}}} > $out" ];
           }}"#,
        bb = bb.display()
    );
    let drv_file = nix.path("built.nix");
    fs::write(&drv_file, expr).unwrap();
    nix.run_str(
        "nix-build",
        &[
            drv_file.to_str().unwrap(),
            "--no-out-link",
            "--option",
            "sandbox",
            "false",
            "--option",
            "build-users-group",
            "",
        ],
    )
}

#[tokio::test]
async fn narinfo_of_built_path_with_deriver() {
    let Some(nix) = Nix::new() else { return };
    let dir = StoreDir::default();
    let out = build_input_addressed(&nix);
    let key = SecretKey::from_seed("builder-1", &[9; 32]);
    let sk_file = nix.path("builder.key");
    fs::write(&sk_file, key.to_string()).unwrap();
    let cache = nix.path("built-cache");
    copy_to_cache(&nix, &cache, Some(&sk_file), &out);
    let out_path = dir.parse_path(&out).unwrap();
    let text = fs::read_to_string(cache.join(format!("{}.narinfo", out_path.hash_part()))).unwrap();
    let ni = NarInfo::parse(&text).unwrap();
    assert_eq!(ni.to_string(), text);
    assert!(text.contains("\nDeriver: "), "{text}");
    let deriver = ni.deriver.as_ref().unwrap();
    assert!(deriver.name().ends_with(".drv"));
    assert_eq!(ni.references.len(), 1);
    assert!(ni.references[0].name() == "bb");
    assert!(ni.ca.is_none());
    assert!(ni.verify(&dir, &[key.public_key()]));

    // Nix accepts the path from the cache only with a trusted signature;
    // strip Nix's signature and put ours back.
    let mut ours = ni.clone();
    ours.signatures.clear();
    let other = SecretKey::from_seed("other-1", &[10; 32]);
    ours.sign(&dir, &other).unwrap();
    let file = cache.join(format!("{}.narinfo", out_path.hash_part()));
    fs::write(&file, ours.to_string()).unwrap();
    let from = format!("file://{}", cache.display());
    let copy = |store: &str, trusted: &PublicKey| {
        nix.try_nix(&[
            "copy",
            "--from",
            &from,
            "--to",
            &nix.store_named(store),
            "--option",
            "trusted-public-keys",
            &trusted.to_string(),
            &out,
        ])
    };
    assert!(copy("fresh-a", &key.public_key()).is_err());
    copy("fresh-b", &other.public_key()).expect("our signature accepted");
}
