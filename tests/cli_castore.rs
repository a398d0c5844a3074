//! End-to-end tests of `cairn import/export/cat/ls/store verify` as a user
//! runs them: the real binary on a real local store.

mod common;
use common::run_ok;
use common::write_random;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cairn(store: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
    cmd.arg("--store-dir").arg(store);
    cmd
}

fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn diff(a: &Path, b: &Path) {
    let status = Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(a)
        .arg(b)
        .status()
        .unwrap();
    assert!(status.success(), "{a:?} and {b:?} differ");
}

#[test]
fn import_export_cat_ls_with_odd_names() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("empty-dir")).unwrap();
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::write(src.join("empty-file"), b"").unwrap();
    std::fs::write(src.join(std::ffi::OsStr::from_bytes(b"latin1-\xe9")), b"x").unwrap();
    std::fs::write(src.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(src.join("bin/tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("bin/tool", src.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", src.join("dangling")).unwrap();
    write_random(&src.join("big"), 3 << 20, 9);
    let store = tmp.path().join("store");

    let out = run_ok(cairn(&store).arg("import").arg(&src).stdout(Stdio::piped()));
    // Piped: no progress bar on stderr, one line per root on stdout.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout_line(&out);
    let digest = line.split('\t').next().unwrap().to_string();
    assert_eq!(digest.len(), 64);

    let quiet = run_ok(cairn(&store).args(["import", "-q"]).arg(&src));
    assert_eq!(stdout_line(&quiet), digest);

    let listing = stdout_line(&run_ok(cairn(&store).args(["ls", &digest])));
    assert!(listing.contains("-r-xr-xr-x") || listing.contains("dr-xr-xr-x"));
    assert!(listing.contains("link -> bin/tool"), "{listing}");

    let exported = tmp.path().join("out");
    run_ok(cairn(&store).args(["export", &digest]).arg(&exported));
    diff(&src, &exported);
    let mode = std::fs::metadata(exported.join("bin/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0);

    // cat of a single file's blob.
    let file_digest = stdout_line(&run_ok(
        cairn(&store).args(["import", "-q"]).arg(src.join("big")),
    ));
    let cat = run_ok(cairn(&store).args(["cat", &file_digest]));
    assert!(cat.stdout == std::fs::read(src.join("big")).unwrap());

    let verify = run_ok(cairn(&store).args(["store", "verify"]));
    assert!(stdout_line(&verify).ends_with(" 0 problems"));
}

#[test]
fn bad_inputs_are_refused_naming_the_path_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");

    // A FIFO.
    let fifo_tree = tmp.path().join("fifo-tree");
    std::fs::create_dir(&fifo_tree).unwrap();
    std::fs::write(fifo_tree.join("a-file"), b"data that must not be committed").unwrap();
    let fifo = fifo_tree.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = cairn(&store)
        .arg("import")
        .arg(&fifo_tree)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipe") && err.contains("FIFO"), "{err}");

    // A socket.
    let sock_tree = tmp.path().join("sock-tree");
    std::fs::create_dir(&sock_tree).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(sock_tree.join("sock")).unwrap();
    let out = cairn(&store)
        .arg("import")
        .arg(&sock_tree)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket"));

    // A character device (we are root in the test environment).
    let dev_tree = tmp.path().join("dev-tree");
    std::fs::create_dir(&dev_tree).unwrap();
    if Command::new("mknod")
        .arg(dev_tree.join("null"))
        .args(["c", "1", "3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        let out = cairn(&store).arg("import").arg(&dev_tree).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("character device"));
    }

    // A missing path.
    let out = cairn(&store)
        .arg("import")
        .arg(tmp.path().join("missing"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));

    // Nothing was committed by the refused imports: the store holds no chunk.
    let verify = run_ok(cairn(&store).args(["store", "verify"]));
    assert_eq!(
        stdout_line(&verify),
        "checked 0 chunks, 0 chunk maps, 0 directories, 0 store paths, 0 whole-file copies: 0 problems"
    );

    // Garbage digests.
    for bad in ["xyz", "b3:1234", &"g".repeat(64)] {
        let out = cairn(&store).args(["cat", bad]).output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("digest"));
    }
    let unknown = "0".repeat(64);
    let out = cairn(&store)
        .args(["export", &unknown])
        .arg(tmp.path().join("x"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn unreadable_file_is_refused() {
    // Root reads everything, so run the import as an unprivileged user.
    if Command::new("setpriv").arg("--version").output().is_err() {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("cairn-unreadable")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("readable"), b"ok").unwrap();
    std::fs::write(tree.join("secret"), b"no").unwrap();
    std::fs::set_permissions(tree.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(&tree, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .arg("--store-dir")
        .arg(&store)
        .arg("import")
        .arg(&tree)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret") && err.contains("ermission denied"),
        "{err}"
    );
}

fn pack_bytes(store: &Path) -> u64 {
    std::fs::read_dir(store.join("packs"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn kill_9_during_a_large_import_then_import_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src: PathBuf = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..24 {
        write_random(&src.join(format!("big-{i}")), 8 << 20, i + 1);
    }
    for i in 0..400 {
        let dir = src.join(format!("d{}", i % 20));
        std::fs::create_dir_all(&dir).unwrap();
        write_random(
            &dir.join(format!("small-{i}")),
            1000 + i as usize * 37,
            1000 + i,
        );
    }
    let store = tmp.path().join("store");

    let mut killed_mid_import = 0;
    for attempt in 0..3 {
        let mut child = cairn(&store)
            .arg("import")
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        // Wait until some data has been written, then kill at a varying moment.
        let threshold = (attempt + 1) as u64 * (20 << 20);
        while pack_bytes(&store) < threshold && start.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            killed_mid_import += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever was committed is intact.
        let verify = run_ok(cairn(&store).args(["store", "verify"]));
        assert!(stdout_line(&verify).ends_with(" 0 problems"));
    }
    assert!(
        killed_mid_import > 0,
        "the import always finished before the kill"
    );

    let out = run_ok(cairn(&store).args(["import", "-q"]).arg(&src));
    let digest = stdout_line(&out);
    run_ok(cairn(&store).args(["store", "verify"]));
    let exported = tmp.path().join("out");
    run_ok(cairn(&store).args(["export", &digest]).arg(&exported));
    diff(&src, &exported);
}
