//! Shared helpers for the integration tests: running Nix against a private
//! store, generating test trees and collecting NAR events.

#![allow(dead_code)]

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_pathinfo::nar::NarVisitor;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A Nix installation pointed at a private store under a temporary
/// directory, so nothing touches the machine's /nix.
pub struct Nix {
    pub tmp: tempfile::TempDir,
}

impl Nix {
    /// `None` (and a note on stderr) when Nix is not installed.
    pub fn new() -> Option<Self> {
        if Command::new("nix-store").arg("--version").output().is_err() {
            eprintln!("nix-store not installed; skipping");
            return None;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(tmp.path().join("xdg-cache")).expect("mkdir");
        Some(Nix { tmp })
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The private store URL, `local?root=...`.
    pub fn store(&self) -> String {
        self.store_named("root")
    }

    pub fn store_named(&self, name: &str) -> String {
        format!("local?root={}", self.path(name).display())
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_CACHE_HOME", self.path("xdg-cache"))
            .env("NIX_REMOTE", self.store())
            .env_remove("NIX_PATH");
        c
    }

    /// Runs a Nix program, returning stdout; panics with stderr on failure.
    pub fn run(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let out = self.try_run(program, args);
        match out {
            Ok(stdout) => stdout,
            Err(stderr) => panic!("{program} {args:?} failed: {stderr}"),
        }
    }

    /// Runs a Nix program; `Err(stderr)` on failure.
    pub fn try_run(&self, program: &str, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("run nix program");
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs a Nix program with `input` on stdin, returning trimmed stdout.
    pub fn run_stdin(&self, program: &str, args: &[&str], input: &[u8]) -> String {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nix program");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 output")
            .trim()
            .to_owned()
    }

    /// `nix` with the nix-command feature.
    pub fn nix(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["--extra-experimental-features", "nix-command"];
        all.extend_from_slice(args);
        self.run("nix", &all)
    }

    pub fn try_nix(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut all = vec!["--extra-experimental-features", "nix-command"];
        all.extend_from_slice(args);
        self.try_run("nix", &all)
    }

    /// Runs a program and returns its trimmed stdout as a string.
    pub fn run_str(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8(self.run(program, args))
            .expect("utf-8 output")
            .trim()
            .to_owned()
    }

    /// The real location of a store path in the private store.
    pub fn real_path(&self, store_path: &str) -> PathBuf {
        self.path("root").join(store_path.trim_start_matches('/'))
    }
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

pub fn write_file(path: &Path, contents: &[u8], executable: bool) {
    fs::write(path, contents).expect("write file");
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A hand-made tree with every kind of node and awkward names.
pub fn basic_tree(root: &Path) {
    fs::create_dir_all(root).expect("mkdir");
    write_file(&root.join("hello"), b"hello\n", false);
    write_file(&root.join("run.sh"), b"#!/bin/sh\necho hi\n", true);
    write_file(&root.join("empty-file"), b"", false);
    write_file(&root.join("empty-exec"), b"", true);
    symlink("hello", root.join("link-rel")).expect("symlink");
    symlink(
        "/nix/store/00000000000000000000000000000000-x",
        root.join("link-abs"),
    )
    .expect("symlink");
    symlink("../../nowhere/at all", root.join("dangling")).expect("symlink");
    fs::create_dir(root.join("empty-dir")).expect("mkdir");
    let deep = root.join("a/b/c/d/e");
    fs::create_dir_all(&deep).expect("mkdir");
    write_file(&deep.join("deep.txt"), b"deep", false);
    fs::create_dir(root.join("a/b/empty")).expect("mkdir");
    for name in [
        "ünïcødé.txt",
        "日本語",
        "with space",
        "B",
        "a.b",
        "a-b",
        "ab",
        "_",
        "~tilde",
        "Ω",
    ] {
        write_file(&root.join(name), name.as_bytes(), false);
    }
    // A name that is not UTF-8.
    let raw = std::ffi::OsStr::from_bytes(b"bytes-\xff\xfe");
    write_file(&root.join(raw), b"raw", false);
    for len in 1..=17 {
        write_file(
            &root.join(format!("pad-{len:02}")),
            &vec![b'x'; len],
            len % 3 == 0,
        );
    }
}

/// Large files around buffer sizes and over 1 MiB.
pub fn large_tree(root: &Path) {
    fs::create_dir_all(root).expect("mkdir");
    let mut rng = Rng::new(42);
    for (name, len) in [
        ("one-mib", 1 << 20),
        ("big", (3 << 20) / 2 + 5),
        ("buf-minus-1", 65535),
        ("buf", 65536),
        ("buf-plus-3", 65539),
    ] {
        write_file(&root.join(name), &rng.bytes(len), name == "big");
    }
}

/// A random tree.
pub fn random_tree(root: &Path, seed: u64) {
    fn fill(dir: &Path, rng: &mut Rng, depth: u32) {
        fs::create_dir_all(dir).expect("mkdir");
        let n = rng.below(6);
        for i in 0..n {
            let name = format!(
                "{}{}",
                ["f", "d", "L", "é", "z z", "0"][rng.below(6) as usize],
                i
            );
            let path = dir.join(&name);
            match rng.below(if depth < 4 { 4 } else { 3 }) {
                0 | 1 => {
                    let len = match rng.below(4) {
                        0 => 0,
                        1 => rng.below(16) as usize,
                        2 => rng.below(5000) as usize,
                        _ => rng.below(200_000) as usize,
                    };
                    let data = rng.bytes(len);
                    write_file(&path, &data, rng.below(2) == 0);
                }
                2 => symlink(format!("target-{}", rng.below(1000)), &path).expect("symlink"),
                _ => fill(&path, rng, depth + 1),
            }
        }
    }
    let mut rng = Rng::new(seed);
    fill(root, &mut rng, 0);
}

/// A node seen by [`Collector`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    DirStart(Vec<u8>),
    DirEnd,
    File {
        path: Vec<u8>,
        executable: bool,
        contents: Vec<u8>,
    },
    Symlink(Vec<u8>, Vec<u8>),
}

/// A visitor recording every event, with full paths and file contents.
/// Reads only the first `read_limit` bytes of each file.
#[derive(Default)]
pub struct Collector {
    pub nodes: Vec<Node>,
    pub stack: Vec<Vec<u8>>,
    pub read_limit: Option<usize>,
}

impl Collector {
    fn full(&self, name: Option<&[u8]>) -> Vec<u8> {
        let mut p = self.stack.last().cloned().unwrap_or_default();
        if let Some(n) = name {
            p.push(b'/');
            p.extend_from_slice(n);
        }
        p
    }
}

impl NarVisitor for Collector {
    async fn directory_start(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        let p = self.full(name);
        self.nodes.push(Node::DirStart(p.clone()));
        self.stack.push(p);
        Ok(())
    }

    async fn directory_end(&mut self) -> io::Result<()> {
        self.stack.pop();
        self.nodes.push(Node::DirEnd);
        Ok(())
    }

    async fn file<C: AsyncRead + Unpin + Send>(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut C,
    ) -> io::Result<()> {
        let mut data = Vec::new();
        match self.read_limit {
            Some(limit) => {
                let mut buf = vec![0u8; limit];
                let mut got = 0;
                while got < limit {
                    let n = contents.read(&mut buf[got..]).await?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
                data.extend_from_slice(&buf[..got]);
            }
            None => {
                contents.read_to_end(&mut data).await?;
                assert_eq!(data.len() as u64, size);
            }
        }
        let path = self.full(name);
        self.nodes.push(Node::File {
            path,
            executable,
            contents: data,
        });
        Ok(())
    }

    async fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> io::Result<()> {
        let p = self.full(name);
        self.nodes.push(Node::Symlink(p, target.to_vec()));
        Ok(())
    }
}

/// Builds raw NAR bytes token by token, without any validation, for
/// malformed-input tests.
#[derive(Default, Clone)]
pub struct RawNar(pub Vec<u8>);

impl RawNar {
    pub fn new() -> Self {
        RawNar(Vec::new()).s(b"nix-archive-1")
    }

    pub fn s(mut self, s: &[u8]) -> Self {
        self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.0.extend_from_slice(s);
        self.0.resize(self.0.len().div_ceil(8) * 8, 0);
        self
    }

    pub fn u(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }

    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    pub fn ss(self, tokens: &[&str]) -> Self {
        tokens.iter().fold(self, |n, t| n.s(t.as_bytes()))
    }

    /// `entry ( name <name> node`
    pub fn entry(self, name: &[u8]) -> Self {
        self.ss(&["entry", "(", "name"]).s(name).s(b"node")
    }

    /// A complete regular file node.
    pub fn file(self, contents: &[u8]) -> Self {
        self.ss(&["(", "type", "regular", "contents"])
            .u(contents.len() as u64)
            .raw(contents)
            .raw(&vec![0; (8 - contents.len() % 8) % 8])
            .s(b")")
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}
