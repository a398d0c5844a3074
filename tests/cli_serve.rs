//! `cairn serve` as a binary cache for real Nix: `nix copy --to` uploads
//! into it, `nix copy --from` and `nix-store --realise` substitute from it
//! (with its signatures checked), cairn's own binary-cache client reads
//! through it, Range requests return the right bytes, and bad uploads are
//! refused without leaving anything behind.
//!
//! Needs `nix`, `nix-store`, `nix-build` (Debian's nix-bin) and a static
//! `/bin/busybox` (busybox-static) as builder, both installed by
//! scripts/test; building in a private Nix store needs root.

mod common;
use common::run_ok;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `cairn`, whose default store (used by commands given no `--store-dir`,
/// and for the whole-file copies of a `--store`) lies in the build's
/// temporary directory rather than the user's.
fn cairn() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    command.env(
        "CAIRN_STORE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-serve-default-store"),
    );
    command
}

/// A running `cairn serve`, stopped on drop.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl Server {
    fn start(store_dir: &Path, extra: &[&str]) -> Server {
        let mut child = cairn()
            .arg("--store-dir")
            .arg(store_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One HTTP/1.1 request; returns status, headers (lowercased names) and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        self.request_declaring(method, path, headers, body, body.len())
    }

    /// As [`Server::request`], announcing `declared` bytes of body.
    fn request_declaring(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        declared: usize,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {declared}\r\n",
            self.addr,
        );
        for (name, value) in headers {
            head += &format!("{name}: {value}\r\n");
        }
        head += "\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        // A server may answer and close before the whole body is sent (a
        // declared length over the limit); its answer is still read below.
        if let Err(e) = stream.write_all(body) {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ),
                "{e}"
            );
        }
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no end of headers");
        let head = String::from_utf8(response[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = response[split + 4..].to_vec();
        if method != "HEAD" && header(&headers, "transfer-encoding") == Some("chunked") {
            body = dechunk(&body);
        }
        (status, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A private Nix store with a source tree, a flat file and two built
/// (input-addressed) paths, `top` referring to `dep`, plus a signing key.
struct Env {
    tmp: tempfile::TempDir,
    secret_key: PathBuf,
    public_key: String,
    source_paths: Vec<String>,
    /// `top`'s closure: `dep`, then `top`.
    built: Vec<String>,
}

const DERIVATIONS: &str = r#"
let
  dep = derivation {
    name = "served-dep";
    system = builtins.currentSystem;
    builder = "/bin/busybox";
    args = [ "sh" "-c" "/bin/busybox mkdir -p $out/bin && /bin/busybox seq 1 20000 > $out/numbers && echo '#!/bin/sh' > $out/bin/run && /bin/busybox chmod +x $out/bin/run" ];
  };
in derivation {
  name = "served-top";
  system = builtins.currentSystem;
  builder = "/bin/busybox";
  inherit dep;
  args = [ "sh" "-c" "echo $dep > $out" ];
}
"#;

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let secret_key = tmp.path().join("secret-key");
        let public_key_file = tmp.path().join("public-key");
        run_ok(
            Command::new("nix-store")
                .arg("--generate-binary-cache-key")
                .arg("cairn-serve-1")
                .arg(&secret_key)
                .arg(&public_key_file),
        );
        let public_key = std::fs::read_to_string(&public_key_file)
            .unwrap()
            .trim()
            .to_string();
        let mut env = Env {
            tmp,
            secret_key,
            public_key,
            source_paths: Vec::new(),
            built: Vec::new(),
        };
        let tree = env.path("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        common::write_random(&tree.join("large.bin"), 3 << 20, 11);
        std::fs::write(tree.join("sub/small.txt"), b"served by cairn\n").unwrap();
        std::os::unix::fs::symlink("sub/small.txt", tree.join("link")).unwrap();
        let file = env.path("flat.txt");
        std::fs::write(&file, b"a flat file\n").unwrap();
        for source in [tree, file] {
            let out = run_ok(env.nix("nix-store").arg("--add").arg(&source));
            env.source_paths
                .push(String::from_utf8(out.stdout).unwrap().trim().to_string());
        }
        let expr = env.path("served.nix");
        std::fs::write(&expr, DERIVATIONS).unwrap();
        let out = run_ok(env.nix("nix-build").arg(&expr).arg("--no-out-link").args([
            "--option",
            "sandbox-paths",
            "/bin/busybox",
        ]));
        let top = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let closure = run_ok(env.nix("nix-store").args(["--query", "--requisites", &top]));
        env.built = String::from_utf8(closure.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(env.built.len(), 2, "{:?}", env.built);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A Nix command on the private store, with its own narinfo disk cache.
    fn nix(&self, program: &str) -> Command {
        self.nix_in(
            program,
            &format!("local?root={}", self.path("nix-root").display()),
            "uploader",
        )
    }

    /// A Nix command on `store`; `client` names its private home (and thus
    /// its narinfo disk cache), as if it ran on another machine.
    fn nix_in(&self, program: &str, store: &str, client: &str) -> Command {
        let home = self.path(&format!("home-{client}"));
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(program);
        cmd.env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env_remove("NIX_CONFIG");
        if program == "nix" {
            cmd.args(["--extra-experimental-features", "nix-command"]);
        }
        cmd.arg("--store").arg(store);
        cmd
    }

    fn all_paths(&self) -> Vec<String> {
        self.source_paths
            .iter()
            .chain(&self.built)
            .cloned()
            .collect()
    }

    /// Where a store path's files are in the private Nix store.
    fn physical(&self, root: &str, path: &str) -> PathBuf {
        self.path(root).join(path.trim_start_matches('/'))
    }

    fn nix_dump(&self, path: &str) -> Vec<u8> {
        run_ok(
            Command::new("nix-store")
                .arg("--dump")
                .arg(self.physical("nix-root", path)),
        )
        .stdout
    }

    fn same_tree(&self, root: &str, path: &str) {
        let status = Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(self.physical("nix-root", path))
            .arg(self.physical(root, path))
            .status()
            .unwrap();
        assert!(status.success(), "{path} differs in {root}");
    }
}

fn url_escape(key: &str) -> String {
    key.replace('+', "%2B")
        .replace('=', "%3D")
        .replace('/', "%2F")
}

#[test]
fn nix_copies_into_cairn_serve_and_substitutes_back_with_signatures() {
    let env = Env::new();
    let cairn_store = env.path("cairn-store");
    let key_arg = env.secret_key.to_str().unwrap().to_string();
    let server = Server::start(&cairn_store, &["--secret-key-file", &key_arg]);

    // Uploads: xz (Nix's default) for the sources, zstd for the built closure.
    run_ok(
        env.nix("nix")
            .args(["copy", "--to", &server.url()])
            .args(&env.source_paths),
    );
    run_ok(
        env.nix("nix")
            .args([
                "copy",
                "--to",
                &format!("{}?compression=zstd", server.url()),
            ])
            .arg(env.built.last().unwrap()),
    );

    // Everything comes back through a fresh store, signatures checked.
    let trusted = ["--option", "trusted-public-keys", env.public_key.as_str()];
    run_ok(
        env.nix_in(
            "nix",
            &format!("local?root={}", env.path("fresh").display()),
            "fresh",
        )
        .args(["copy", "--from", &server.url()])
        .args(trusted)
        .args(env.all_paths()),
    );
    run_ok(
        env.nix_in(
            "nix-store",
            &format!("local?root={}", env.path("fresh").display()),
            "fresh",
        )
        .args(["--verify", "--check-contents"]),
    );
    for path in env.all_paths() {
        env.same_tree("fresh", &path);
    }
    // The built closure's references survived the round trip.
    let refs = run_ok(
        env.nix_in(
            "nix-store",
            &format!("local?root={}", env.path("fresh").display()),
            "fresh",
        )
        .args(["--query", "--references", env.built.last().unwrap()]),
    );
    assert_eq!(
        String::from_utf8(refs.stdout).unwrap().trim(),
        env.built[0].as_str()
    );

    // Without the serve key trusted, the input-addressed paths are refused.
    let other = "other-key-1:2wO8X5kbiYVpeLsqdsj64pDfUkXRMoqpsbijVZx9DwI=";
    let out = env
        .nix_in(
            "nix",
            &format!("local?root={}", env.path("untrusting").display()),
            "untrusting",
        )
        .args(["copy", "--from", &server.url()])
        .args(["--option", "trusted-public-keys", other])
        .arg(&env.built[0])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "copied without a trusted signature");
    assert!(stderr.contains("signature"), "{stderr}");

    // nix-store --realise substitutes the closure from cairn.
    let realise_store = format!("local?root={}", env.path("realised").display());
    run_ok(
        env.nix_in("nix-store", &realise_store, "realiser")
            .arg("--realise")
            .arg(env.built.last().unwrap())
            .args(["--option", "substituters", &server.url()])
            .args(trusted),
    );
    for path in &env.built {
        env.same_tree("realised", path);
    }

    // cairn's own binary-cache client reads through cairn serve.
    let client_url = format!(
        "{}?trusted-public-keys={}",
        server.url(),
        url_escape(&env.public_key)
    );
    for path in env.all_paths() {
        let out = run_ok(
            cairn()
                .arg("--store")
                .arg(&client_url)
                .args(["nar", "dump", &path]),
        );
        assert!(out.stdout == env.nix_dump(&path), "{path}: NAR differs");
    }
    drop(server);

    // The same store served with zstd NARs: Nix and cairn read those too.
    let server = Server::start(
        &cairn_store,
        &["--secret-key-file", &key_arg, "--compression", "zstd"],
    );
    let hash = &env.built[0].rsplit('/').next().unwrap()[..32];
    let (status, _, narinfo) = server.request("GET", &format!("/{hash}.narinfo"), &[], b"");
    assert_eq!(status, 200);
    let narinfo = String::from_utf8(narinfo).unwrap();
    assert!(narinfo.contains("Compression: zstd\n"), "{narinfo}");
    assert!(narinfo.contains(".nar.zst\n"), "{narinfo}");
    assert!(narinfo.contains("Sig: cairn-serve-1:"), "{narinfo}");
    let zstd_store = format!("local?root={}", env.path("fresh-zstd").display());
    run_ok(
        env.nix_in("nix", &zstd_store, "zstd")
            .args(["copy", "--from", &server.url()])
            .args(trusted)
            .args(env.all_paths()),
    );
    run_ok(
        env.nix_in("nix-store", &zstd_store, "zstd")
            .args(["--verify", "--check-contents"]),
    );
    for path in env.all_paths() {
        env.same_tree("fresh-zstd", &path);
    }
    let client_url = format!(
        "{}?trusted-public-keys={}",
        server.url(),
        url_escape(&env.public_key)
    );
    let path = &env.source_paths[0];
    let out = run_ok(
        cairn()
            .arg("--store")
            .arg(&client_url)
            .args(["nar", "dump", path]),
    );
    assert!(
        out.stdout == env.nix_dump(path),
        "{path}: NAR differs over zstd"
    );
}

/// A cairn store with one path added by `cairn add`; its NAR URL and NAR.
fn served_tree(tmp: &Path) -> (PathBuf, String, Vec<u8>) {
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    common::write_random(&tree.join("big"), 2 << 20, 5);
    std::fs::write(tree.join("d/small"), b"small\n").unwrap();
    let store = tmp.join("cairn-store");
    let out = run_ok(cairn().arg("--store-dir").arg(&store).arg("add").arg(&tree));
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let nar = run_ok(
        cairn()
            .arg("--store-dir")
            .arg(&store)
            .args(["nar", "dump", &path]),
    )
    .stdout;
    (store, path, nar)
}

fn nar_url(server: &Server, path: &str) -> String {
    let hash = &path.rsplit('/').next().unwrap()[..32];
    let (status, _, narinfo) = server.request("GET", &format!("/{hash}.narinfo"), &[], b"");
    assert_eq!(status, 200);
    let narinfo = String::from_utf8(narinfo).unwrap();
    let url = narinfo
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .unwrap();
    format!("/{url}")
}

#[test]
fn range_requests_return_the_right_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, path, nar) = served_tree(tmp.path());
    let server = Server::start(&store, &[]);
    let url = nar_url(&server, &path);
    let len = nar.len();

    let (status, headers, body) = server.request("GET", &url, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert!(body == nar, "the full NAR differs");

    let (status, headers, body) = server.request("HEAD", &url, &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-length"),
        Some(len.to_string().as_str())
    );
    assert!(body.is_empty());

    let cases = [
        ("bytes=0-0".to_string(), 0, 0),
        ("bytes=0-99".to_string(), 0, 99),
        (
            format!("bytes={}-{}", len / 2 - 1000, len / 2 + 300_000),
            len / 2 - 1000,
            len / 2 + 300_000,
        ),
        (format!("bytes={}-", len - 10), len - 10, len - 1),
        ("bytes=-17".to_string(), len - 17, len - 1),
        (format!("bytes=100-{}", len * 2), 100, len - 1),
    ];
    for (range, start, end) in cases {
        let (status, headers, body) = server.request("GET", &url, &[("Range", &range)], b"");
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            Some(format!("bytes {start}-{end}/{len}").as_str()),
            "{range}"
        );
        assert!(body == nar[start..=end], "{range}: wrong bytes");
    }
    let (status, headers, _) =
        server.request("GET", &url, &[("Range", &format!("bytes={len}-"))], b"");
    assert_eq!(status, 416);
    assert!(header(&headers, "content-length").is_some());

    // zstd NARs of the same path decompress to the same bytes.
    let (status, _, body) = server.request("GET", &format!("{url}.zst"), &[], b"");
    assert_eq!(status, 200);
    let mut unzstd = Command::new("zstd")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = unzstd.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&body));
    let out = unzstd.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success() && out.stdout == nar,
        "zstd NAR differs"
    );

    // A URL naming another NAR hash for the path is not served.
    let mut wrong = url.clone();
    let at = wrong.len() - 10;
    wrong.replace_range(at..at + 1, if &url[at..at + 1] == "0" { "1" } else { "0" });
    assert_eq!(server.request("GET", &wrong, &[], b"").0, 404);
    assert_eq!(
        server.request("GET", "/nar/../../etc/passwd", &[], b"").0,
        404
    );
    let (status, _, body) = server.request("GET", "/nix-cache-info", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
    );
}

fn nix_base32_sha256(data: &[u8], tmp: &Path) -> String {
    let file = tmp.join("hash-input");
    std::fs::write(&file, data).unwrap();
    let out = run_ok(
        Command::new("nix-hash")
            .args(["--type", "sha256", "--base32", "--flat"])
            .arg(&file),
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn narinfo_for(store_path: &str, url: &str, nar: &[u8], hash: &str, refs: &str) -> String {
    format!(
        "StorePath: {store_path}\nURL: {url}\nCompression: none\nNarHash: sha256:{hash}\nNarSize: {}\nReferences: {refs}\n",
        nar.len()
    )
}

fn registered_paths(store: &Path) -> String {
    let out = run_ok(cairn().arg("--store-dir").arg(store).arg("path-info"));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bad_uploads_are_refused_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, _, nar) = served_tree(tmp.path());
    let hash = nix_base32_sha256(&nar, tmp.path());
    let store = tmp.path().join("upload-store");
    let server = Server::start(&store, &["--max-upload-mib", "4"]);
    let path_hash = "0c8w2ahhs1fn5byr0lqc5kfdq3spi3ps";
    let store_path = format!("/nix/store/{path_hash}-uploaded");
    let narinfo_url = format!("/{path_hash}.narinfo");

    // A truncated NAR and garbage are refused with the reason.
    let (status, _, body) = server.request("PUT", "/nar/trunc.nar", &[], &nar[..nar.len() / 2]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("truncated"), "{body}");
    let (status, _, body) =
        server.request("PUT", "/nar/junk.nar", &[], b"this is not a NAR at all");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a NAR"), "{body}");
    let (status, _, body) = server.request("PUT", "/nar/junk.nar.xz", &[], &nar[..4096]);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // Their narinfo files find no NAR to register.
    let info = narinfo_for(&store_path, "nar/trunc.nar", &nar, &hash, "");
    let (status, _, body) = server.request("PUT", &narinfo_url, &[], info.as_bytes());
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("has not been uploaded"), "{body}");

    // A good NAR with a narinfo that lies about it.
    let (status, _, _) = server.request("PUT", "/nar/good.nar", &[], &nar);
    assert_eq!(status, 200);
    let bad_hash = nix_base32_sha256(b"something else", tmp.path());
    let info = narinfo_for(&store_path, "nar/good.nar", &nar, &bad_hash, "");
    let (status, _, body) = server.request("PUT", &narinfo_url, &[], info.as_bytes());
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("NarHash mismatch"), "{body}");
    let info = narinfo_for(&store_path, "nar/good.nar", &nar[1..], &hash, "");
    let (status, _, body) = server.request("PUT", &narinfo_url, &[], info.as_bytes());
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("NarSize mismatch"));
    // ... names another path than its URL, references a missing path, or is garbage.
    let info = narinfo_for(&store_path, "nar/good.nar", &nar, &hash, "");
    let other_url = "/1c8w2ahhs1fn5byr0lqc5kfdq3spi3ps.narinfo";
    assert_eq!(
        server.request("PUT", other_url, &[], info.as_bytes()).0,
        400
    );
    let missing = "2c8w2ahhs1fn5byr0lqc5kfdq3spi3ps-missing";
    let info_refs = narinfo_for(&store_path, "nar/good.nar", &nar, &hash, missing);
    let (status, _, body) = server.request("PUT", &narinfo_url, &[], info_refs.as_bytes());
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(missing), "{body}");
    assert_eq!(
        server
            .request("PUT", &narinfo_url, &[], b"StorePath nothing\n")
            .0,
        400
    );
    // Too large for --max-upload-mib.
    let (status, _, body) = server.request_declaring("PUT", "/nar/big.nar", &[], b"", 5 << 20);
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("larger than the limit"));
    // Nothing was registered by any of that.
    assert_eq!(server.request("GET", &narinfo_url, &[], b"").0, 404);
    drop(server);
    assert_eq!(registered_paths(&store).trim(), "");

    // The honest narinfo is accepted, and the path is served back.
    let server = Server::start(&store, &[]);
    assert_eq!(server.request("PUT", "/nar/good.nar", &[], &nar).0, 200);
    let (status, _, body) = server.request("PUT", &narinfo_url, &[], info.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let url = nar_url(&server, &store_path);
    let (status, _, body) = server.request("GET", &url, &[], b"");
    assert_eq!(status, 200);
    assert!(body == nar);
    drop(server);
    assert!(registered_paths(&store).contains(&store_path));

    // A read-only server refuses uploads.
    let server = Server::start(&store, &["--read-only"]);
    let (status, _, body) = server.request("PUT", "/nar/good.nar", &[], &nar);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("does not accept uploads"));
}
