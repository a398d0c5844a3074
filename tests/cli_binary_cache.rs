//! Nix binary caches as cairn stores, against real Nix: caches written by
//! `nix copy --to file://…` are read through `cairn nar dump`, `cairn
//! path-info` and a FUSE mount, and tampered caches are refused.
//!
//! Needs `nix-store` and `nix` (Debian's nix-bin, installed by
//! scripts/test); the mount test also needs root and /dev/fuse.

mod common;
use common::{ForegroundMount, can_mount, run_ok};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cairn`, whose default store (used by commands given no `--store-dir`,
/// and for the whole-file copies of a `--store`) lies in the build's
/// temporary directory rather than the user's.
fn cairn() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command.env(
        "CAIRN_STORE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-binary-cache-default-store"),
    );
    command
}

/// A private Nix store with a few paths, copied into signed binary caches.
struct Env {
    tmp: tempfile::TempDir,
    nix_store_uri: String,
    secret_key: PathBuf,
    public_key: String,
    /// Store paths (`/nix/store/…`) added to the Nix store.
    paths: Vec<String>,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let nix_store_uri = format!("local?root={}", tmp.path().join("nix-root").display());
        let secret_key = tmp.path().join("secret-key");
        let public_key_file = tmp.path().join("public-key");
        run_ok(
            Command::new("nix-store")
                .arg("--generate-binary-cache-key")
                .arg("cairn-test-1")
                .arg(&secret_key)
                .arg(&public_key_file),
        );
        let public_key = std::fs::read_to_string(&public_key_file)
            .unwrap()
            .trim()
            .to_string();
        let mut env = Env {
            tmp,
            nix_store_uri,
            secret_key,
            public_key,
            paths: Vec::new(),
        };
        // A tree with a large file, an executable, a symlink, nesting.
        let tree = env.path("tree");
        std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        common::write_random(&tree.join("large.bin"), 5 << 20, 7);
        std::fs::write(tree.join("sub/small.txt"), b"hello from a binary cache\n").unwrap();
        std::fs::write(tree.join("sub/deeper/empty"), b"").unwrap();
        let tool = tree.join("tool.sh");
        std::fs::write(&tool, b"#!/bin/sh\necho hi\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("sub/small.txt", tree.join("link")).unwrap();
        let file = env.path("single-file.txt");
        std::fs::write(&file, b"a flat file path\n").unwrap();
        for source in [tree, file] {
            let out = run_ok(
                Command::new("nix-store")
                    .arg("--store")
                    .arg(&env.nix_store_uri)
                    .arg("--add")
                    .arg(&source),
            );
            env.paths
                .push(String::from_utf8(out.stdout).unwrap().trim().to_string());
        }
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Copies every path into a new cache directory with `compression`.
    fn make_cache(&self, name: &str, compression: &str) -> PathBuf {
        let dir = self.path(name);
        let to = format!(
            "file://{}?secret-key={}&compression={compression}",
            dir.display(),
            self.secret_key.display()
        );
        run_ok(
            Command::new("nix")
                .args(["--extra-experimental-features", "nix-command", "--store"])
                .arg(&self.nix_store_uri)
                .args(["copy", "--to", &to])
                .args(&self.paths),
        );
        dir
    }

    fn cache_url(&self, dir: &Path, key: &str) -> String {
        let key = key
            .replace('+', "%2B")
            .replace('=', "%3D")
            .replace('/', "%2F");
        format!("file://{}?trusted-public-keys={key}", dir.display())
    }

    fn nix_dump(&self, path: &str) -> Vec<u8> {
        run_ok(
            Command::new("nix-store")
                .arg("--dump")
                .arg(self.physical(path)),
        )
        .stdout
    }

    /// Where a store path's files are in the private Nix store.
    fn physical(&self, path: &str) -> PathBuf {
        self.path("nix-root").join(path.trim_start_matches('/'))
    }
}

/// The `.nar*` file and the narinfo of `path` in a cache directory.
fn cache_files(cache: &Path, path: &str) -> (PathBuf, PathBuf) {
    let base = path.rsplit('/').next().unwrap();
    let hash = &base[..32];
    let narinfo = cache.join(format!("{hash}.narinfo"));
    let text = std::fs::read_to_string(&narinfo).unwrap();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .unwrap()
        .to_string();
    (cache.join(url), narinfo)
}

#[test]
fn nix_copied_caches_read_back_byte_identical_in_every_compression() {
    let env = Env::new();
    for compression in ["xz", "zstd", "bzip2", "none"] {
        let cache = env.make_cache(&format!("cache-{compression}"), compression);
        let url = env.cache_url(&cache, &env.public_key);
        for path in &env.paths {
            let out = run_ok(cairn().arg("--store").arg(&url).args(["nar", "dump", path]));
            assert!(
                out.stdout == env.nix_dump(path),
                "{compression}: the NAR of {path} differs from nix-store --dump"
            );
        }
        let info = run_ok(
            cairn()
                .arg("--store")
                .arg(&url)
                .args(["path-info", "--json"])
                .args(&env.paths),
        );
        let text = String::from_utf8(info.stdout).unwrap();
        for path in &env.paths {
            assert!(text.contains(path.as_str()), "{compression}: {text}");
        }
    }
}

fn refused(url: &str, path: &str) -> String {
    let out = cairn()
        .arg("--store")
        .arg(url)
        .args(["path-info", path])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "cairn accepted {path} from {url}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tampered_nars_and_signatures_are_refused() {
    let env = Env::new();
    let cache = env.make_cache("cache", "xz");
    let large = &env.paths[0];
    let (nar_file, narinfo) = cache_files(&cache, large);

    // An untrusted key, and no key at all.
    let other = "other-key-1:2wO8X5kbiYVpeLsqdsj64pDfUkXRMoqpsbijVZx9DwI=";
    let stderr = refused(&env.cache_url(&cache, other), large);
    assert!(stderr.contains("no valid signature"), "{stderr}");
    assert!(stderr.contains("other-key-1"), "{stderr}");
    let stderr = refused(&format!("file://{}", cache.display()), large);
    assert!(stderr.contains("none configured"), "{stderr}");
    // Without signatures only when explicitly allowed.
    run_ok(
        cairn()
            .arg("--store")
            .arg(format!("file://{}?require-sigs=false", cache.display()))
            .args(["path-info", large]),
    );

    let url = env.cache_url(&cache, &env.public_key);
    // A narinfo whose signature no longer matches (NarSize changed).
    let original = std::fs::read_to_string(&narinfo).unwrap();
    let forged: String = original
        .lines()
        .map(|l| match l.strip_prefix("NarSize: ") {
            Some(n) => format!("NarSize: {}\n", n.parse::<u64>().unwrap() + 1),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&narinfo, &forged).unwrap();
    let stderr = refused(&url, large);
    assert!(stderr.contains("no valid signature"), "{stderr}");
    // A corrupted signature.
    let bad_sig: String = original
        .lines()
        .map(|l| match l.strip_prefix("Sig: cairn-test-1:") {
            Some(sig) => format!("Sig: cairn-test-1:A{}\n", &sig[1..]),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&narinfo, &bad_sig).unwrap();
    let stderr = refused(&url, large);
    assert!(stderr.contains("no valid signature"), "{stderr}");
    std::fs::write(&narinfo, &original).unwrap();

    // A NAR file with one byte flipped in the middle.
    let mut bytes = std::fs::read(&nar_file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&nar_file, &bytes).unwrap();
    let stderr = refused(&url, large);
    assert!(stderr.contains("lzma data error"), "{stderr}");
    assert!(
        stderr.contains(large.rsplit('/').next().unwrap()),
        "{stderr}"
    );
    // A missing NAR file.
    std::fs::remove_file(&nar_file).unwrap();
    let stderr = refused(&url, large);
    assert!(stderr.contains("is missing"), "{stderr}");
    // The other path is unaffected.
    run_ok(
        cairn()
            .arg("--store")
            .arg(&url)
            .args(["path-info", &env.paths[1]]),
    );
}

#[test]
fn mounted_binary_cache_substitutes_paths_when_looked_up() {
    if !can_mount() {
        panic!("this test needs root and /dev/fuse");
    }
    let env = Env::new();
    let cache = env.make_cache("cache", "xz");
    let mnt = env.path("mnt");
    let mut command = cairn();
    command
        .arg("--store")
        .arg(env.cache_url(&cache, &env.public_key));
    let mount = ForegroundMount::start(command, &mnt, &[]);
    // Nothing is listed before it is looked up.
    assert_eq!(std::fs::read_dir(&mnt).unwrap().count(), 0);
    // Concurrent first lookups of one path.
    let base = env.paths[0].rsplit('/').next().unwrap().to_string();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let file = mnt.join(&base).join("large.bin");
            std::thread::spawn(move || std::fs::read(file).unwrap())
        })
        .collect();
    let expected = std::fs::read(env.physical(&env.paths[0]).join("large.bin")).unwrap();
    for reader in readers {
        assert!(reader.join().unwrap() == expected, "large.bin differs");
    }
    for path in &env.paths {
        let base = path.rsplit('/').next().unwrap();
        let status = Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(env.physical(path))
            .arg(mnt.join(base))
            .status()
            .unwrap();
        assert!(status.success(), "{path} differs in the mount");
    }
    let tool = std::fs::metadata(mnt.join(&base).join("tool.sh")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(tool.permissions().mode() & 0o111, 0o111);
    // Unknown paths are absent.
    assert!(std::fs::metadata(mnt.join("00000000000000000000000000000000-nothing")).is_err());
    drop(mount);
}

#[test]
fn local_store_in_front_of_a_binary_cache_keeps_substituted_paths() {
    let env = Env::new();
    let cache = env.make_cache("cache", "zstd");
    let local = env.path("local-store");
    let near = format!("local://{}", local.display())
        .replace('/', "%2F")
        .replace(':', "%3A");
    let url = format!("{}&cache={near}", env.cache_url(&cache, &env.public_key));
    let path = &env.paths[0];
    run_ok(cairn().arg("--store").arg(&url).args(["path-info", path]));
    // The cache can go away: the local store alone has the path and its contents.
    std::fs::remove_dir_all(&cache).unwrap();
    let out = run_ok(
        cairn()
            .arg("--store")
            .arg(format!("local://{}", local.display()))
            .args(["nar", "dump", path]),
    );
    assert!(out.stdout == env.nix_dump(path), "the NAR differs");
}

/// A python3 http.server over a directory, logging requests to a file.
struct WebServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl WebServer {
    fn start(dir: &Path, log: PathBuf) -> WebServer {
        let port = common::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("python3 -m http.server");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "no web server");
            std::thread::sleep(Duration::from_millis(50));
        }
        WebServer { child, port, log }
    }

    /// Request lines of the log that start with `prefix` (e.g. `GET /nar/`).
    fn requests(&self, prefix: &str) -> usize {
        let needle = format!("\"{prefix}");
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn concurrent_first_reads_over_http_download_the_nar_once() {
    if !can_mount() {
        panic!("this test needs root and /dev/fuse");
    }
    let env = Env::new();
    let cache = env.make_cache("cache", "xz");
    let web = WebServer::start(&cache, env.path("web.log"));
    let url = env.cache_url(&cache, &env.public_key).replacen(
        &format!("file://{}", cache.display()),
        &format!("http://127.0.0.1:{}", web.port),
        1,
    );
    let mnt = env.path("mnt");
    let mut command = cairn();
    command.arg("--store").arg(&url);
    let mount = ForegroundMount::start(command, &mnt, &[]);
    let base = env.paths[0].rsplit('/').next().unwrap().to_string();
    let expected = std::fs::read(env.physical(&env.paths[0]).join("large.bin")).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let root = mnt.join(&base);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let name = if i % 2 == 0 {
                    "large.bin"
                } else {
                    "sub/small.txt"
                };
                std::fs::read(root.join(name)).unwrap()
            })
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let got = reader.join().unwrap();
        if i % 2 == 0 {
            assert!(got == expected, "large.bin differs");
        } else {
            assert_eq!(got, b"hello from a binary cache\n");
        }
    }
    assert_eq!(
        web.requests("GET /nar/"),
        1,
        "the NAR was downloaded more than once"
    );
    // The other path is fetched when looked up, and only then.
    let other = env.paths[1].rsplit('/').next().unwrap();
    assert_eq!(
        std::fs::read(mnt.join(other)).unwrap(),
        b"a flat file path\n"
    );
    assert_eq!(web.requests("GET /nar/"), 2);
    drop(mount);
}
