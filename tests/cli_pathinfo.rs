//! End-to-end tests of `cairn add`, `cairn nar dump/import`, `cairn
//! path-info` and `cairn store verify`, with Nix as the oracle: the real
//! `cairn` binary and `nix-store`/`nix` (on private stores under a temporary
//! root) are run on the same generated trees, and every store path, NAR
//! byte, hash and path-info field must agree. Expected values all come
//! from Nix at test time. Tests are skipped when `nix-store` is not on PATH.

mod common;
use common::run_ok;
use common::write_random;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn have_nix() -> bool {
    let found = Command::new("nix-store")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        eprintln!("nix-store is not on PATH: skipping");
    }
    found
}

/// A cairn store and a private Nix store, both in one temporary directory.
struct Env {
    tmp: tempfile::TempDir,
    store: PathBuf,
    nix_store_uri: String,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("cairn-store");
        let nix_store_uri = format!("local?root={}", tmp.path().join("nix-root").display());
        Env {
            tmp,
            store,
            nix_store_uri,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn cairn(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.arg("--store-dir").arg(&self.store);
        cmd
    }

    fn nix_store(&self) -> Command {
        let mut cmd = Command::new("nix-store");
        cmd.arg("--store").arg(&self.nix_store_uri);
        cmd
    }

    fn nix(&self) -> Command {
        let mut cmd = Command::new("nix");
        cmd.args(["--extra-experimental-features", "nix-command", "--store"])
            .arg(&self.nix_store_uri);
        cmd
    }

    /// `nix-store --dump PATH`.
    fn nix_dump(&self, path: &Path) -> Vec<u8> {
        run_ok(self.nix_store().arg("--dump").arg(path)).stdout
    }

    /// `cairn path-info`: the registered paths, one per line.
    fn cairn_paths(&self) -> String {
        stdout_text(&run_ok(self.cairn().arg("path-info")))
    }

    /// `cairn store verify`'s summary line.
    fn cairn_verify(&self) -> String {
        stdout_text(&run_ok(self.cairn().args(["store", "verify"])))
    }
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning a command");
    let mut stdin = child.stdin.take().unwrap();
    // The command may stop reading early on bad input: ignore broken pipes.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stdout_text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone())
        .expect("UTF-8 output")
        .trim()
        .to_string()
}

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The test inputs: a tree with every kind of entry, and roots that are a
/// single file, an executable, a multi-chunk file, an empty file and symlinks.
fn make_roots(base: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(base).unwrap();
    let tree = base.join("tree");
    std::fs::create_dir_all(tree.join("empty-dir")).unwrap();
    std::fs::create_dir_all(tree.join("a/b/c/d/e")).unwrap();
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("a/b/c/d/e/deep"), b"deep\n").unwrap();
    std::fs::create_dir_all(tree.join("a/b/empty")).unwrap();
    std::fs::write(tree.join("empty-file"), b"").unwrap();
    std::fs::write(tree.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    make_executable(&tree.join("bin/tool"));
    std::fs::write(tree.join("bin/empty-exe"), b"").unwrap();
    make_executable(&tree.join("bin/empty-exe"));
    // Names whose byte order differs from other orders.
    for name in ["A", "a.b", "a-b", "a0", "Z", "_", "~"] {
        std::fs::write(tree.join(name), name.as_bytes()).unwrap();
    }
    std::fs::write(tree.join("ünïcødé-名前"), "ünïcødé\n").unwrap();
    std::fs::write(tree.join(OsStr::from_bytes(b"latin1-\xe9\xff")), b"x").unwrap();
    std::fs::create_dir(tree.join(OsStr::from_bytes(b"dir-\xfe"))).unwrap();
    std::fs::write(tree.join(OsStr::from_bytes(b"dir-\xfe/f")), b"in").unwrap();
    std::os::unix::fs::symlink("bin/tool", tree.join("link")).unwrap();
    std::os::unix::fs::symlink("a/b", tree.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", tree.join("dangling")).unwrap();
    std::os::unix::fs::symlink("ünï/\u{7f}", tree.join("odd-link")).unwrap();
    std::os::unix::fs::symlink(OsStr::from_bytes(b"\xe9\xe8"), tree.join("latin1-link")).unwrap();
    write_random(&tree.join("big"), 3 << 20, 9);
    write_random(&tree.join("a/b/exactly-1MiB"), 1 << 20, 10);
    make_executable(&tree.join("a/b/exactly-1MiB"));
    for i in 0..50 {
        write_random(
            &tree.join(format!("a/small-{i:02}")),
            100 + i * 997,
            100 + i as u64,
        );
    }

    let file = base.join("hello.txt");
    std::fs::write(&file, b"hello, world\n").unwrap();
    let exe = base.join("script.sh");
    std::fs::write(&exe, b"#!/bin/sh\nexit 0\n").unwrap();
    make_executable(&exe);
    let big = base.join("big.bin");
    write_random(&big, (2 << 20) + 12345, 77);
    let empty = base.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let link = base.join("link-root");
    std::os::unix::fs::symlink("hello.txt", &link).unwrap();
    let dangling = base.join("dangling-root");
    std::os::unix::fs::symlink("/does/not/exist", &dangling).unwrap();
    let empty_dir = base.join("empty-tree");
    std::fs::create_dir(&empty_dir).unwrap();
    vec![tree, file, exe, big, empty, link, dangling, empty_dir]
}

/// The fields `nix path-info --json` and `cairn path-info --json` share.
fn comparable(info: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["path", "narHash", "narSize", "references", "ca"] {
        out.insert(
            key.to_string(),
            info.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{key} missing in {info}")),
        );
    }
    Value::Object(out)
}

fn single_json(out: &Output) -> Value {
    let value: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let array = value.as_array().expect("a JSON array");
    assert_eq!(array.len(), 1, "{value}");
    array[0].clone()
}

#[test]
fn add_dump_hash_and_path_info_agree_with_nix() {
    if !have_nix() {
        return;
    }
    let env = Env::new();
    let roots = make_roots(&env.path("in"));
    for root in &roots {
        let expected = stdout_text(&run_ok(env.nix_store().arg("--add").arg(root)));
        let added = stdout_text(&run_ok(env.cairn().arg("add").arg(root)));
        assert_eq!(added, expected, "cairn add {root:?}");

        let nar = env.nix_dump(root);
        let dumped = run_ok(env.cairn().args(["nar", "dump", &added])).stdout;
        assert!(
            dumped == nar,
            "cairn nar dump of {root:?} differs from nix-store --dump"
        );
        // The base name is accepted too.
        let base = added.rsplit('/').next().unwrap();
        let dumped = run_ok(env.cairn().args(["nar", "dump", base])).stdout;
        assert!(dumped == nar);

        let nix_hash = stdout_text(&run_ok(
            env.nix()
                .args(["hash", "path", "--type", "sha256"])
                .arg(root),
        ));
        let ours = single_json(&run_ok(env.cairn().args(["path-info", "--json", &added])));
        assert_eq!(ours["narHash"], Value::from(nix_hash), "{root:?}");
        assert_eq!(ours["narSize"], Value::from(nar.len() as u64), "{root:?}");

        let theirs = single_json(&run_ok(env.nix().args(["path-info", "--json", &expected])));
        assert_eq!(comparable(&ours), comparable(&theirs), "{root:?}");
    }
    // Adding again is idempotent; all paths are listed, sorted.
    let again = stdout_text(&run_ok(env.cairn().arg("add").args(&roots)));
    let listed = env.cairn_paths();
    let mut sorted: Vec<&str> = again.lines().collect();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed.lines().collect::<Vec<_>>(), sorted);
    assert!(env.cairn_verify().ends_with(" 0 problems"));
}

#[test]
fn nar_import_agrees_with_nix_and_round_trips() {
    if !have_nix() {
        return;
    }
    let env = Env::new();
    let roots = make_roots(&env.path("in"));
    for root in &roots {
        let name = root.file_name().unwrap().to_str().unwrap();
        let expected = stdout_text(&run_ok(env.nix_store().arg("--add").arg(root)));
        let nar = env.nix_dump(root);
        let out = run_with_stdin(env.cairn().args(["nar", "import", "--name", name]), &nar);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let imported = stdout_text(&out);
        assert_eq!(imported, expected, "cairn nar import of {root:?}");
        let dumped = run_ok(env.cairn().args(["nar", "dump", &imported])).stdout;
        assert!(dumped == nar, "{root:?} does not round-trip");
        let ours = single_json(&run_ok(env.cairn().args([
            "path-info",
            "--json",
            &imported,
        ])));
        let theirs = single_json(&run_ok(env.nix().args(["path-info", "--json", &expected])));
        assert_eq!(comparable(&ours), comparable(&theirs), "{root:?}");
    }
    // Names that are not valid store path names are refused.
    let nar = env.nix_dump(&roots[1]);
    for bad in ["", "a/b", "sp ace", "x*y"] {
        let out = run_with_stdin(env.cairn().args(["nar", "import", "--name", bad]), &nar);
        assert!(!out.status.success(), "name {bad:?} was accepted");
    }
    assert!(env.cairn_verify().ends_with(" 0 problems"));
}

#[test]
fn add_flat_agrees_with_nix_add_fixed() {
    if !have_nix() {
        return;
    }
    let env = Env::new();
    let roots = make_roots(&env.path("in"));
    let files: Vec<&PathBuf> = roots
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).unwrap().is_file())
        .collect();
    assert!(files.len() >= 4);
    for file in files {
        let expected = stdout_text(&run_ok(
            env.nix_store().args(["--add-fixed", "sha256"]).arg(file),
        ));
        let added = stdout_text(&run_ok(env.cairn().args(["add", "--flat"]).arg(file)));
        assert_eq!(added, expected, "cairn add --flat {file:?}");
        let ours = single_json(&run_ok(env.cairn().args(["path-info", "--json", &added])));
        let theirs = single_json(&run_ok(env.nix().args(["path-info", "--json", &expected])));
        assert_eq!(comparable(&ours), comparable(&theirs), "{file:?}");
        let dumped = run_ok(env.cairn().args(["nar", "dump", &added])).stdout;
        assert!(dumped == env.nix_dump(file));
    }
    // Only regular files can be added flat.
    for not_file in [&roots[0], &roots[5]] {
        let out = env
            .cairn()
            .args(["add", "--flat"])
            .arg(not_file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("regular file"));
    }
    assert!(env.cairn_verify().ends_with(" 0 problems"));
}

/// A NAR string: length, bytes, zero padding to 8.
fn nar_str(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(s);
    out.resize(out.len() + (8 - s.len() % 8) % 8, 0);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not in the NAR", String::from_utf8_lossy(needle)))
}

/// `nar` with the first entry named `from` renamed `to` (NAR strings are
/// self-delimiting, so the result is well-formed whatever the lengths).
fn rename(nar: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut key = nar_str(b"name");
    key.extend(nar_str(from));
    let at = find(nar, &key) + 16;
    let mut out = nar[..at].to_vec();
    out.extend(nar_str(to));
    out.extend_from_slice(&nar[at + nar_str(from).len()..]);
    out
}

/// `nar` with the u64 length of the string following `tag` set to `len`.
fn set_length_after(nar: &[u8], tag: &[u8], len: u64) -> Vec<u8> {
    let at = find(nar, &nar_str(tag)) + nar_str(tag).len();
    let mut out = nar.to_vec();
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
    out
}

#[test]
fn bad_nars_are_refused_and_leave_the_store_unchanged() {
    if !have_nix() {
        return;
    }
    let env = Env::new();
    // Something in the store already.
    let roots = make_roots(&env.path("in"));
    run_ok(env.cairn().arg("add").arg(&roots[0]).arg(&roots[3]));
    let paths_before = env.cairn_paths();
    let verify_before = env.cairn_verify();
    assert!(verify_before.ends_with(" 0 problems"), "{verify_before}");
    let dirs_before = directories(&verify_before);

    // The victim: entries aa, axb, bb/ (with a file cc of 2 MiB), dd -> aa.
    let victim = env.path("victim");
    std::fs::create_dir_all(victim.join("bb")).unwrap();
    std::fs::write(victim.join("aa"), b"first file").unwrap();
    std::fs::write(victim.join("axb"), b"second file").unwrap();
    write_random(&victim.join("bb/cc"), 2 << 20, 5);
    std::os::unix::fs::symlink("aa", victim.join("dd")).unwrap();
    let nar = env.nix_dump(&victim);

    let mut cases: Vec<(&str, Vec<u8>, bool)> = Vec::new();
    // (what, bytes, whether nix-store --restore must refuse it too)
    cases.push(("empty input", Vec::new(), true));
    for cut in [7, 8, 100, nar.len() / 2, nar.len() - 8, nar.len() - 1] {
        cases.push(("truncated", nar[..cut].to_vec(), true));
    }
    let mut magic = nar.clone();
    magic[10] ^= 0x20;
    cases.push(("bad magic", magic, true));
    let type_at = find(&nar, &nar_str(b"directory"));
    let mut token = nar.clone();
    token[type_at + 8] = b'D';
    cases.push(("garbled type", token, true));
    let mut padding = nar.clone();
    let aa = find(&nar, &nar_str(b"aa"));
    padding[aa + 8 + 3] = 1;
    cases.push(("nonzero padding", padding, true));
    let mut garbage = nar.clone();
    for i in (0..garbage.len()).step_by(97) {
        garbage[i] = garbage[i].wrapping_mul(31).wrapping_add(7);
    }
    cases.push(("bytes scrambled all over", garbage, true));
    let mut trailing = nar.clone();
    trailing.extend_from_slice(&nar_str(b"more"));
    cases.push(("trailing data", trailing, false));
    cases.push(("name ..", rename(&nar, b"aa", b".."), true));
    cases.push(("name .", rename(&nar, b"aa", b"."), true));
    cases.push(("name a/b", rename(&nar, b"axb", b"a/b"), true));
    cases.push(("name with NUL", rename(&nar, b"axb", b"a\0b"), false));
    cases.push(("empty name", rename(&nar, b"aa", b""), true));
    cases.push(("duplicate entries", rename(&nar, b"axb", b"aa"), true));
    cases.push(("duplicate entries", rename(&nar, b"dd", b"bb"), true));
    // Nix 2.8's restore accepts unsorted entries, but such a NAR is not the
    // canonical serialisation of any tree: its hash could never be rendered.
    cases.push(("unsorted entries", rename(&nar, b"aa", b"zz"), false));
    cases.push(("unsorted entries", rename(&nar, b"bb", b"ab"), false));
    // Absurd lengths: a file, a name and a symlink target of ~2^60 bytes.
    cases.push((
        "absurd file length",
        set_length_after(&nar, b"contents", 1 << 60),
        true,
    ));
    cases.push((
        "absurd name length",
        set_length_after(&nar, b"name", 1 << 60),
        true,
    ));
    cases.push((
        "absurd target length",
        set_length_after(&nar, b"target", 1 << 60),
        true,
    ));
    cases.push((
        "file length past the end",
        set_length_after(&nar, b"contents", (3 << 20) as u64),
        true,
    ));

    for (i, (what, bytes, nix_refuses)) in cases.iter().enumerate() {
        if *nix_refuses {
            let dest = env.path(&format!("restore-{i}"));
            let out = run_with_stdin(Command::new("nix-store").arg("--restore").arg(&dest), bytes);
            assert!(!out.status.success(), "nix-store --restore accepted {what}");
        }
        let out = run_with_stdin(
            env.cairn().args(["nar", "import", "--name", "victim"]),
            bytes,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: cairn nar import succeeded");
        assert!(out.stdout.is_empty(), "{what}: printed a path");
        assert!(
            err.starts_with("error: ") && err.contains("NAR") && err.lines().count() == 1,
            "{what}: unclear message {err:?}"
        );
        assert!(!err.contains("panick"), "{what}: {err}");
        assert_eq!(env.cairn_paths(), paths_before, "{what}");
        let verify = env.cairn_verify();
        assert!(verify.ends_with(" 0 problems"), "{what}: {verify}");
        assert_eq!(directories(&verify), dirs_before, "{what}: {verify}");
    }

    // The untouched NAR still imports, as Nix adds it.
    let out = run_with_stdin(
        env.cairn().args(["nar", "import", "--name", "victim"]),
        &nar,
    );
    assert!(out.status.success());
    let expected = stdout_text(&run_ok(env.nix_store().arg("--add").arg(&victim)));
    assert_eq!(stdout_text(&out), expected);
}

/// The directory count of a `cairn store verify` summary line.
fn directories(verify: &str) -> u64 {
    let before = verify
        .split(" directories")
        .next()
        .unwrap_or_else(|| panic!("no directory count in {verify:?}"));
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no directory count in {verify:?}"))
}

#[test]
fn store_verify_detects_a_corrupted_chunk() {
    if !have_nix() {
        return;
    }
    let env = Env::new();
    let file = env.path("payload.bin");
    write_random(&file, 4 << 20, 3);
    let added = stdout_text(&run_ok(env.cairn().arg("add").arg(&file)));
    assert!(env.cairn_verify().ends_with(" 0 problems"));

    let packs: Vec<PathBuf> = std::fs::read_dir(env.store.join("packs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension() == Some(OsStr::new("pack")))
        .collect();
    let pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a pack file");
    let mut bytes = std::fs::read(pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(pack, &bytes).unwrap();

    let out = env.cairn().args(["store", "verify"]).output().unwrap();
    assert!(!out.status.success(), "verify missed a corrupted chunk");
    let summary = stdout_text(&out);
    assert!(!summary.ends_with(" 0 problems"), "{summary}");
    assert!(!out.stderr.is_empty());

    // Dumping the damaged path fails rather than writing wrong bytes silently.
    let out = env.cairn().args(["nar", "dump", &added]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout != env.nix_dump(&file));
}
