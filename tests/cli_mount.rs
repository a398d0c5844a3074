//! End-to-end tests of the mount as a user runs it: `cairn mount` in the
//! foreground ended by SIGTERM, and `mount -t fuse.cairn` / an fstab line
//! through fuse3's mount.fuse3 helper. Needs root and /dev/fuse.

mod common;
use common::{can_mount, is_mounted};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("share/empty")).unwrap();
    std::fs::write(root.join("bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(
        root.join("bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(root.join("share/big.bin"), big).unwrap();
    std::os::unix::fs::symlink("../bin/hello", root.join("share/link")).unwrap();
}

fn add(store: &Path, tree: &Path) -> String {
    let out = Command::new(bin())
        .arg("--store-dir")
        .arg(store)
        .arg("add")
        .arg(tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    path.rsplit('/').next().unwrap().to_string()
}

/// A store, the tree of [`make_tree`] added to it, and an empty mount
/// point, all under `dir`; the last item is the added path's base name.
fn added_tree(dir: &Path) -> (PathBuf, PathBuf, PathBuf, String) {
    let (store, tree, mountpoint) = (dir.join("store"), dir.join("tree"), dir.join("mnt"));
    make_tree(&tree);
    std::fs::create_dir(&mountpoint).unwrap();
    let base = add(&store, &tree);
    (store, tree, mountpoint, base)
}

#[test]
fn foreground_mount_serves_added_paths_and_stops_on_sigterm() {
    if !can_mount() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, tree, mountpoint, base) = added_tree(tmp.path());
    let mut child = Command::new(bin())
        .arg("--store-dir")
        .arg(&store)
        .arg("mount")
        .arg(&mountpoint)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| is_mounted(&mountpoint), "the mount");
    common::same_tree(&tree, &mountpoint.join(&base));
    let listed: Vec<_> = std::fs::read_dir(&mountpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed, vec![base.clone()]);
    // A path added while mounted shows up.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("f"), b"later").unwrap();
    let later = add(&store, &other);
    assert_eq!(
        std::fs::read(mountpoint.join(&later).join("f")).unwrap(),
        b"later"
    );
    // A large file opened a second time gets a whole-file copy in the
    // store directory, which later opens read in passthrough mode.
    let big = mountpoint.join(&base).join("share/big.bin");
    let original = std::fs::read(tree.join("share/big.bin")).unwrap();
    assert!(std::fs::read(&big).unwrap() == original);
    let copies = store.join("whole-files");
    let copy_files = || -> Vec<PathBuf> {
        std::fs::read_dir(&copies)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    // Not a copy still being written (`.tmp-…`).
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_for(|| !copy_files().is_empty(), "a whole-file copy");
    let copy = copy_files().remove(0);
    assert!(std::fs::read(&copy).unwrap() == original);
    for _ in 0..3 {
        assert!(std::fs::read(&big).unwrap() == original);
    }
    // Unknown names are ENOENT.
    assert!(std::fs::metadata(mountpoint.join("0000000000000000000000000000000a-x")).is_err());

    let pid = child.id() as i32;
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "cairn mount exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "cairn mount did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!is_mounted(&mountpoint));

    // `cairn store verify` checks the copies too, and removes a bad one.
    let verify = || {
        Command::new(bin())
            .arg("--store-dir")
            .arg(&store)
            .args(["store", "verify"])
            .output()
            .unwrap()
    };
    let out = verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 whole-file copies: 0 problems"),
        "{stdout}"
    );
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[1000] ^= 1;
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, &bytes).unwrap();
    let out = verify();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("whole-file copy differs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!copy.exists());
}

/// Whether reads of `file` that must not wait (`RWF_NOWAIT`) are refused.
fn refuses_nowait_reads(file: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(file).unwrap();
    let mut byte = [0u8; 1];
    let iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: the descriptor is open, and the one iovec covers `byte`.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) };
    n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EOPNOTSUPP)
}

fn import_digest(store: &Path, tree: &Path) -> String {
    let out = common::run_ok(
        Command::new(bin())
            .arg("--store-dir")
            .arg(store)
            .args(["import", "--quiet"])
            .arg(tree),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An import reads files from the page cache alone first (`RWF_NOWAIT`),
/// which files on a FUSE mount refuse: importing a mounted store path
/// takes plain reads instead (small files in groups, a file of several
/// chunks, one read ahead in steps), and gives the digest the original
/// tree gives, with every byte stored.
#[test]
fn importing_from_a_mount_without_nowait_reads_gives_the_originals_digest() {
    if !can_mount() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, tree, mountpoint) = (
        tmp.path().join("store"),
        tmp.path().join("tree"),
        tmp.path().join("mnt"),
    );
    make_tree(&tree);
    // Enough small files for several groups, some empty, and files of
    // one and of several chunks read alone.
    let small = tree.join("small");
    std::fs::create_dir(&small).unwrap();
    for i in 0..80u64 {
        let len = match i % 5 {
            0 => 0,
            1 => 1 + i as usize,
            _ => (i as usize * 997) % 60_000,
        };
        common::write_random(&small.join(format!("f{i:02}")), len, i);
    }
    common::write_random(&tree.join("one-chunk"), 100_000, 81);
    common::write_random(&tree.join("chunks"), 700_000, 82);
    std::fs::create_dir(&mountpoint).unwrap();
    let base = add(&store, &tree);
    let mut cairn = Command::new(bin());
    cairn.arg("--store-dir").arg(&store);
    let mount = common::ForegroundMount::start(cairn, &mountpoint, &[]);
    let mounted = mountpoint.join(&base);
    if !refuses_nowait_reads(&mounted.join("share/big.bin")) {
        // Still a valid round trip, but not of the plain-read fallback.
        eprintln!("note: this kernel's FUSE takes RWF_NOWAIT reads");
    }

    let (from_mount, from_tree) = (tmp.path().join("from-mount"), tmp.path().join("from-tree"));
    let digest = import_digest(&from_mount, &mounted);
    drop(mount);
    assert_eq!(digest, import_digest(&from_tree, &tree));
    common::run_ok(
        Command::new(bin())
            .arg("--store-dir")
            .arg(&from_mount)
            .args(["store", "verify"]),
    );
    let exported = tmp.path().join("exported");
    common::run_ok(
        Command::new(bin())
            .arg("--store-dir")
            .arg(&from_mount)
            .arg("export")
            .arg(&digest)
            .arg(&exported),
    );
    common::same_tree(&tree, &exported);
}

/// mount(8) runs helpers with its own PATH (/usr/local/sbin:/usr/local/bin:
/// /usr/sbin:/usr/bin:/sbin:/bin), where cairn is installed; for the test, a
/// link to the binary under test stands in /usr/local/bin while it runs.
struct InstalledLink(PathBuf);

impl InstalledLink {
    fn new() -> Option<InstalledLink> {
        let link = PathBuf::from("/usr/local/bin/cairn");
        if std::fs::symlink_metadata(&link).is_ok() {
            // Something is installed there already: use it only if it is us.
            let target = std::fs::read_link(&link).ok()?;
            return (target == Path::new(bin())).then_some(InstalledLink(PathBuf::new()));
        }
        std::os::unix::fs::symlink(bin(), &link).ok()?;
        Some(InstalledLink(link))
    }
}

impl Drop for InstalledLink {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn mount_t_fuse_cairn_and_fstab() {
    if !can_mount() || !Path::new("/sbin/mount.fuse3").exists() {
        eprintln!("skipped: needs root, /dev/fuse and fuse3");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, tree, mountpoint, base) = added_tree(tmp.path());
    let Some(_installed) = InstalledLink::new() else {
        eprintln!("skipped: another cairn is installed in /usr/local/bin");
        return;
    };

    let out = Command::new("mount")
        .args(["-t", "fuse.cairn", "-o", "ro,allow_other"])
        .arg(&store)
        .arg(&mountpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(&mountpoint));
    common::same_tree(&tree, &mountpoint.join(&base));
    assert!(
        Command::new("umount")
            .arg(&mountpoint)
            .status()
            .unwrap()
            .success()
    );
    wait_for(|| !is_mounted(&mountpoint), "the unmount");

    // The same through an fstab line.
    let fstab = tmp.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "{} {} fuse.cairn ro,nofail,window=0 0 0\n",
            store.display(),
            mountpoint.display()
        ),
    )
    .unwrap();
    let out = Command::new("mount")
        .arg("-T")
        .arg(&fstab)
        .arg(&mountpoint)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount -T: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::same_tree(&tree, &mountpoint.join(&base));
    assert!(
        Command::new("umount")
            .arg(&mountpoint)
            .status()
            .unwrap()
            .success()
    );
    wait_for(|| !is_mounted(&mountpoint), "the unmount");

    // A bad option is refused with a clear message.
    let out = Command::new("mount")
        .args(["-t", "fuse.cairn", "-o", "frobnicate"])
        .arg(&store)
        .arg(&mountpoint)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    assert!(!is_mounted(&mountpoint));
}

/// Without CAP_SYS_ADMIN (here: root of a user namespace of its own) the
/// kernel offers passthrough at INIT but refuses to register a backing
/// file. The mount then reads every file through FUSE, the one that has a
/// whole-file copy included, and says so once.
#[test]
fn a_refused_passthrough_backing_file_falls_back_to_fuse_reads() {
    if !can_mount() {
        eprintln!("skipped: needs root and /dev/fuse");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (store, tree, mountpoint, base) = added_tree(tmp.path());
    let log = tmp.path().join("mount.log");
    let big = mountpoint.join(&base).join("share/big.bin");
    // In the namespace: mount, read the large file until the mount has
    // tried (and failed) to open it in passthrough mode, twice more after
    // that, then stop the mount.
    let script = r#"
        CAIRN_LOG=cairn_fs=debug "$0" --store-dir "$1" mount "$2" 2>"$3" &
        pid=$!
        i=0
        until mountpoint -q "$2"; do
            i=$((i + 1)); [ $i -lt 600 ] || { echo "no mount"; exit 1; }; sleep 0.05
        done
        i=0
        until grep -q "refused a passthrough backing file" "$3"; do
            cmp "$4" "$5" || exit 1
            i=$((i + 1)); [ $i -lt 100 ] || { echo "no passthrough attempt"; exit 1; }
            sleep 0.1
        done
        cmp "$4" "$5" && cmp "$4" "$5" || exit 1
        kill -TERM $pid
        wait $pid
    "#;
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .arg(bin())
        .arg(&store)
        .arg(&mountpoint)
        .arg(&log)
        .arg(&big)
        .arg(tree.join("share/big.bin"))
        .output()
        .unwrap();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    if log.contains("the kernel offers no FUSE passthrough") {
        eprintln!("skipped: this kernel has no FUSE passthrough");
        return;
    }
    assert!(
        out.status.success(),
        "{}{}\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        log.matches("refused a passthrough backing file").count(),
        1,
        "{log}"
    );
    // The copy that could not be used was written before the refusal.
    assert!(store.join("whole-files").read_dir().unwrap().count() > 0);
}
