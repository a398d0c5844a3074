//! End-to-end tests with real microVMs: QEMU (software emulation) booting
//! Debian's kernel with cairn's initrd, its /nix/store served by cairn's
//! vhost-user-fs daemon. The kernel comes from `scripts/fetch-kernel`
//! (CAIRN_KERNEL, else its default cache directory).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cairn_castore::{CaStore, Digest};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

fn kernel() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_KERNEL") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let dir = cache.join("cairn/kernel/root");
    assert!(
        dir.join("boot").is_dir(),
        "no kernel at {}: run scripts/fetch-kernel (or set CAIRN_KERNEL)",
        dir.display()
    );
    dir
}

fn cairn(store: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--store-dir").arg(store);
    cmd.env("CAIRN_KERNEL", kernel());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `cairn add PATH`: the store path.
fn add(store: &Path, path: &Path) -> String {
    let out = cairn(store).arg("add").arg(path).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// A tree with nested directories, an executable, a symlink, an empty
/// directory, small files and a multi-chunk file.
fn make_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("share/doc/deep/er")).unwrap();
    std::fs::create_dir_all(root.join("share/empty")).unwrap();
    std::fs::write(
        root.join("bin/hello"),
        b"#!/bin/sh\necho hello from the store\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for i in 0..40 {
        std::fs::write(
            root.join(format!("share/doc/file{i:02}")),
            format!("small file {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(root.join("share/doc/deep/er/note"), b"deep\n").unwrap();
    common::write_random(&root.join("share/big.bin"), 5 << 20, 11);
    std::os::unix::fs::symlink("../bin/hello", root.join("share/link")).unwrap();
}

/// `sha256sum` lines of every file under `dir`, as `./relative` paths.
fn host_checksums(dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("find . -type f | sort | xargs sha256sum")
        .env("LC_ALL", "C")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    text(&out.stdout)
}

/// Corrupts the stored bytes of one chunk of the file `path` imported into `store`.
fn corrupt_a_chunk(store: &Path, path: &Path) {
    let data = std::fs::read(path).unwrap();
    let digest = Digest::of(&data);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let chunk = runtime.block_on(async {
        let castore = CaStore::local(store).unwrap();
        let map = castore.blobs.chunk_map(&digest).await.unwrap().unwrap();
        map.chunks()[map.chunks().len() / 2].digest
    });
    let local = cairn_castore::backends::LocalStore::open(store).unwrap();
    assert!(local.corrupt_chunk_on_disk(&chunk).unwrap());
}

#[test]
fn boot_reads_the_closure_and_reports_eio_and_the_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let damaged = tmp.path().join("damaged.bin");
    common::write_random(&damaged, 3 << 20, 5);
    let unrelated = tmp.path().join("unrelated");
    std::fs::write(&unrelated, b"not in the closure\n").unwrap();
    let tree_path = add(&store, &tree);
    let damaged_path = add(&store, &damaged);
    add(&store, &unrelated);
    corrupt_a_chunk(&store, &damaged);

    let script = format!(
        "cd {tree_path} && find . -type f | sort | xargs sha256sum; \
         echo link=$(readlink share/link); \
         echo paths=$(ls /nix/store | wc -l); \
         ./bin/hello; \
         cat {damaged_path} >/dev/null; echo cat-status=$?; \
         exit 7"
    );
    let started = Instant::now();
    let out = cairn(&store)
        .args(["boot", "--timeout-secs", "240", "--request-queues", "2"])
        .arg("--closure")
        .arg(&tree_path)
        .arg("--closure")
        .arg(&damaged_path)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    eprintln!(
        "boot took {:?}\n{stdout}\n{}",
        started.elapsed(),
        text(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "the guest's exit status comes back"
    );

    let guest_sums: String = stdout
        .lines()
        .filter(|l| l.len() > 66 && l.as_bytes()[64] == b' ' && l.contains("  ./"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        guest_sums,
        host_checksums(&tree),
        "checksums in the guest differ"
    );
    assert!(stdout.contains("link=../bin/hello"));
    assert!(stdout.contains("paths=2"), "only the closure is visible");
    assert!(stdout.contains("hello from the store"));
    assert!(
        stdout.contains("cat-status=1"),
        "reading a corrupted chunk must fail"
    );
    assert!(
        stdout.contains("Input/output error") || stdout.contains("I/O error"),
        "the guest sees EIO"
    );
}

/// Waits for `child` to exit within `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_for_socket(socket: &Path) {
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no socket at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_vmm(line: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec timeout 240 {line}"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

#[test]
fn the_daemon_outlives_or_follows_the_vm_powering_off() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let tree = tmp.path().join("tree");
    make_tree(&tree);
    let tree_path = add(&store, &tree);
    let state = tmp.path().join("state");

    let out = cairn(&store)
        .args(["boot", "--print-command", "--state-dir"])
        .arg(&state)
        .args(["--closure", &tree_path, "--", "cat"])
        .arg(format!("{tree_path}/bin/hello"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(lines[0].contains(" virtiofs --socket "), "{printed}");
    assert!(lines[1].starts_with("qemu-system-x86_64 "), "{printed}");
    let socket = state.join("virtiofs.sock");
    assert!(lines[1].contains(&*socket.to_string_lossy()));

    let daemon = |extra: &[&str]| {
        cairn(&store)
            .arg("virtiofs")
            .arg("--socket")
            .arg(&socket)
            .args(["--closure", &tree_path])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let booted = |out: &Output| {
        let console = text(&out.stdout);
        assert!(
            console.contains("echo hello from the store")
                && console.contains("cairn-status-")
                && console
                    .lines()
                    .any(|l| l.trim_end().ends_with(" 0") && l.contains("cairn-status-")),
            "{console}\n{}",
            text(&out.stderr)
        );
    };

    // Default: one VM, then the daemon exits cleanly.
    let _ = std::fs::remove_file(&socket);
    let mut once = daemon(&[]);
    wait_for_socket(&socket);
    booted(&run_vmm(lines[1]));
    let status = wait_exit(&mut once, Duration::from_secs(20));
    let status = status.unwrap_or_else(|| {
        let _ = once.kill();
        panic!("the daemon kept running after the VM powered off")
    });
    assert!(status.success(), "{}", stderr_of(&mut once));

    // --keep-serving: two VMs one after the other, then SIGTERM.
    let _ = std::fs::remove_file(&socket);
    let mut serving = daemon(&["--keep-serving"]);
    wait_for_socket(&socket);
    booted(&run_vmm(lines[1]));
    assert!(
        serving.try_wait().unwrap().is_none(),
        "the daemon stopped after the first VM"
    );
    booted(&run_vmm(lines[1]));
    assert!(serving.try_wait().unwrap().is_none());
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(serving.id() as i32, libc::SIGTERM) };
    let status =
        wait_exit(&mut serving, Duration::from_secs(20)).expect("the daemon ignores SIGTERM");
    assert!(status.success(), "{}", stderr_of(&mut serving));
}

#[test]
fn cloud_hypervisor_gets_its_command_line_and_a_clear_refusal_without_its_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let file = tmp.path().join("note");
    std::fs::write(&file, b"note\n").unwrap();
    let path = add(&store, &file);
    let state = tmp.path().join("state");
    let out = cairn(&store)
        .args([
            "boot",
            "--vmm",
            "cloud-hypervisor",
            "--print-command",
            "--state-dir",
        ])
        .arg(&state)
        .args(["--closure", &path, "--", "cat", &path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let vmm = printed.lines().nth(1).unwrap_or_default();
    assert!(vmm.starts_with("cloud-hypervisor --kernel "), "{printed}");
    assert!(vmm.contains(" --initramfs "), "{printed}");
    assert!(vmm.contains(" --memory size=512M,shared=on "), "{printed}");
    assert!(
        vmm.contains(&format!(
            " --fs tag=nixstore,socket={}/virtiofs.sock,",
            state.display()
        )),
        "{printed}"
    );
    assert!(vmm.contains("cairn.cmd="), "{printed}");
    assert!(
        state.join("initrd.cpio.zst").is_file(),
        "the initrd is kept"
    );

    // Without the binary on PATH it refuses before starting anything.
    let out = cairn(&store)
        .env("PATH", tmp.path())
        .args([
            "boot",
            "--vmm",
            "cloud-hypervisor",
            "--closure",
            &path,
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--print-command"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_of_the_vm_commands() {
    for command in ["virtiofs", "boot"] {
        let out = Command::new(bin())
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command} --help: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains(&format!("Usage: cairn {command}")));
    }
}
