//! End-to-end tests of remote stores: a real S3-compatible server (moto's
//! server from PyPI, `moto_server`) on loopback, started and stopped by the
//! tests, and a store published by a static web server (python3's
//! http.server). Needs root and /dev/fuse for the mounts.

mod common;
use common::{ForegroundMount, can_mount, free_port};

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "cairn-test";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

fn wait_for(cond: impl Fn() -> bool, what: &str, limit: Duration) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child process killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto's S3 server on `port` and creates the test bucket.
fn start_s3(port: u16) -> Server {
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto_server (pip install 'moto[server]')");
    let server = Server { child };
    wait_for(|| port_open(port), "the S3 server", Duration::from_secs(60));
    let status = Command::new("curl")
        .args(["-sf", "-X", "PUT"])
        .arg(format!("http://127.0.0.1:{port}/{BUCKET}"))
        .stdout(Stdio::null())
        .status()
        .expect("curl");
    assert!(status.success(), "creating the bucket");
    server
}

fn s3_url(port: u16, extra: &str) -> String {
    format!(
        "objectstore+s3://{BUCKET}/store?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A{port}&allow_http=true{extra}"
    )
}

/// `cairn ARGS` with S3 credentials in the environment; stdout on success.
fn cairn(args: &[&str]) -> String {
    let out = cairn_command(args).output().expect("running cairn");
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cairn_command(args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command
        .args(args)
        // The default store (the whole-file copies of a `--store` go there)
        // in the build's temporary directory rather than the user's.
        .env(
            "CAIRN_STORE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-remote-default-store"),
        )
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_ENDPOINT")
        .env_remove("AWS_PROFILE");
    command
}

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("share/empty")).unwrap();
    std::fs::create_dir_all(root.join("lib/deep/er")).unwrap();
    std::fs::write(root.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    common::write_random(&root.join("share/big.bin"), 3_000_000, 7);
    common::write_random(&root.join("share/other.bin"), 2_500_000, 8);
    common::write_random(&root.join("lib/deep/er/small"), 1000, 9);
    std::fs::write(root.join("lib/empty-file"), b"").unwrap();
    std::os::unix::fs::symlink("../bin/hello", root.join("share/link")).unwrap();
}

fn base_name(store_path: &str) -> String {
    store_path
        .trim()
        .rsplit('/')
        .next()
        .expect("a store path")
        .to_string()
}

/// A `cairn mount` in the foreground, unmounted when dropped.
/// `cairn --store STORE mount MOUNTPOINT EXTRA...`, stopped when dropped.
fn mount(store: &str, mountpoint: &Path, extra: &[&str]) -> ForegroundMount {
    assert!(can_mount(), "these tests need root and /dev/fuse");
    ForegroundMount::start(cairn_command(&["--store", store]), mountpoint, extra)
}

#[test]
fn import_into_s3_then_mount_with_a_local_cache_reads_everything_back() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _s3 = start_s3(port);
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let url = s3_url(port, "");

    // Content and store paths go straight to S3.
    let digest = cairn(&["--store", &url, "import", "-q", tree.to_str().unwrap()]);
    let path = base_name(&cairn(&["--store", &url, "add", tree.to_str().unwrap()]));
    let info = cairn(&["--store", &url, "path-info", &format!("/nix/store/{path}")]);
    assert!(info.contains(&path), "{info}");
    let listed = cairn(&["--store", &url, "ls", digest.trim()]);
    assert!(listed.contains("share"), "{listed}");
    let verified = cairn(&["--store", &url, "store", "verify"]);
    assert!(verified.contains(" 0 problems"), "{verified}");

    // A composition file: a local store in front of S3.
    let near = tmp.path().join("near");
    let config = tmp.path().join("store.toml");
    std::fs::write(
        &config,
        format!(
            r#"root = "main"

[stores.main]
kind = "cache"
near = "disk"
far = "s3"

[stores.disk]
kind = "local"
path = "{}"

[stores.s3]
kind = "objectstore"
url = "s3://{BUCKET}/store"
options = {{ region = "us-east-1", endpoint = "http://127.0.0.1:{port}", allow_http = "true" }}
"#,
            near.display()
        ),
    )
    .unwrap();
    let shown = cairn(&["--store", config.to_str().unwrap(), "store", "show-config"]);
    assert!(shown.contains("kind = \"cache\""), "{shown}");

    let mountpoint = tmp.path().join("mnt");
    {
        let _mount = mount(config.to_str().unwrap(), &mountpoint, &[]);
        common::same_tree(&tree, &mountpoint.join(&path));
    }

    // What was read from S3 was written back to the near store: on its own
    // it now holds the whole path, verified.
    let near_report = cairn(&["--store-dir", near.to_str().unwrap(), "store", "verify"]);
    assert!(
        near_report.contains("1 store paths, 0 whole-file copies: 0 problems"),
        "{near_report}"
    );
    let export = tmp.path().join("exported");
    cairn(&[
        "--store-dir",
        near.to_str().unwrap(),
        "export",
        digest.trim(),
        export.to_str().unwrap(),
    ]);
    common::same_tree(&tree, &export);
}

#[test]
fn an_s3_outage_gives_eio_within_the_timeout_and_reads_resume_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let s3 = start_s3(port);
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let url = s3_url(
        port,
        "&retries=1&request_timeout_ms=2000&connect_timeout_ms=1000",
    );
    let path = base_name(&cairn(&["--store", &url, "add", tree.to_str().unwrap()]));

    // A memory cache in front; prefetching off so that a file is fetched as
    // it is read.
    let cached = format!("{url}&cache=memory%3A%2F%2F");
    let timeout_secs = 5;
    let mountpoint = tmp.path().join("mnt");
    let _mount = mount(
        &cached,
        &mountpoint,
        &["--window", "0", "--timeout", &timeout_secs.to_string()],
    );
    let root = mountpoint.join(&path);
    let expected = std::fs::read(tree.join("share/big.bin")).unwrap();
    let mut file = std::fs::File::open(root.join("share/big.bin")).unwrap();
    let mut head = vec![0u8; 256 << 10];
    file.read_exact(&mut head).unwrap();
    assert_eq!(head, expected[..head.len()]);

    // The server goes away mid-read.
    drop(s3);
    wait_for(
        || !port_open(port),
        "the S3 server to stop",
        Duration::from_secs(10),
    );
    let start = Instant::now();
    let mut rest = Vec::new();
    let err = file
        .read_to_end(&mut rest)
        .expect_err("reading with the server gone");
    let took = start.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        took < Duration::from_secs(timeout_secs + 3),
        "EIO after {took:?}, the timeout is {timeout_secs} s"
    );

    // Back again (moto keeps objects in memory: the store is published
    // anew), and the same mount reads on.
    let _s3 = start_s3(port);
    cairn(&["--store", &url, "add", tree.to_str().unwrap()]);
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut all = Vec::new();
    file.read_to_end(&mut all).unwrap();
    assert!(all == expected, "big.bin differs after the outage");
    common::same_tree(&tree, &root);
}

#[test]
fn the_http_backend_reads_a_store_published_by_a_static_web_server() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let published = tmp.path().join("published");
    let file_url = format!("objectstore+file://{}", published.display());
    let path = base_name(&cairn(&[
        "--store",
        &file_url,
        "add",
        tree.to_str().unwrap(),
    ]));

    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .arg("--directory")
        .arg(&published)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let _web = Server { child };
    wait_for(
        || port_open(port),
        "the web server",
        Duration::from_secs(30),
    );
    let http_url = format!("objectstore+http://127.0.0.1:{port}/");

    let info = cairn(&[
        "--store",
        &http_url,
        "path-info",
        &format!("/nix/store/{path}"),
    ]);
    assert!(info.contains(&path), "{info}");
    // Writing to a web server is refused with a clear error.
    let out = cairn_command(&["--store", &http_url, "add", tree.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");

    let mountpoint = tmp.path().join("mnt");
    let _mount = mount(&http_url, &mountpoint, &["--no-list-root"]);
    common::same_tree(&tree, &mountpoint.join(&path));
}

#[test]
fn bad_store_configurations_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("cycle.toml");
    std::fs::write(
        &config,
        "root = \"a\"\n[stores.a]\nkind = \"cache\"\nnear = \"m\"\nfar = \"b\"\n[stores.b]\nkind = \"priority\"\nstores = [\"a\"]\n[stores.m]\nkind = \"memory\"\n",
    )
    .unwrap();
    let out = cairn_command(&["--store", config.to_str().unwrap(), "store", "show-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cycle: a -> b -> a"), "{stderr}");

    std::fs::write(
        &config,
        "root = \"a\"\n[stores.a]\nkind = \"cache\"\nnear = \"m\"\nfar = \"nowhere\"\n[stores.m]\nkind = \"memory\"\n",
    )
    .unwrap();
    let out = cairn_command(&["--store", config.to_str().unwrap(), "ls", &"0".repeat(64)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"a\" refers to \"nowhere\""), "{stderr}");

    let out = cairn_command(&[
        "--store",
        "objectstore+s3://b/p?no_such_option=1",
        "ls",
        &"0".repeat(64),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_option"), "{stderr}");
}
