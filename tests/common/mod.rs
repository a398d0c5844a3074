//! Helpers shared by the end-to-end tests of the `cairn` binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Writes `len` pseudo-random (incompressible) bytes from `seed` to `path`.
#[allow(dead_code)] // not every test binary writes random files
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

/// Asserts that the trees at `a` and `b` are identical (`diff -r`, symlinks
/// compared as links) and that `b/bin/hello` kept its executable bit.
#[allow(dead_code)] // not every test binary compares trees
pub fn same_tree(a: &Path, b: &Path) {
    let status = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(a)
        .arg(b)
        .status()
        .unwrap();
    assert!(status.success(), "{a:?} differs from {b:?}");
    let mode = std::fs::metadata(b.join("bin/hello"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "executable bit lost");
}

/// Runs `cmd` and asserts it succeeded, showing its output if not.
#[allow(dead_code)] // not every test binary runs commands this way
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
#[allow(dead_code)] // not every test binary starts servers
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether this process may mount FUSE filesystems (root and /dev/fuse).
#[allow(dead_code)] // not every test binary mounts
pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    Path::new("/dev/fuse").exists() && unsafe { libc::geteuid() } == 0
}

/// Whether something is mounted at `mountpoint`.
#[allow(dead_code)] // not every test binary mounts
pub fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(canonical) = mountpoint.canonicalize() else {
        return false;
    };
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == canonical.to_str())
        })
        .unwrap_or(false)
}

/// A `cairn mount` in the foreground, stopped with SIGTERM (and unmounted,
/// if it is still mounted) when dropped, even by a failed assertion.
#[allow(dead_code)] // not every test binary mounts
pub struct ForegroundMount {
    child: Child,
    mountpoint: PathBuf,
}

#[allow(dead_code)] // not every test binary mounts
impl ForegroundMount {
    /// Runs `cairn` (the binary, with its store options given) as `mount
    /// MOUNTPOINT OPTIONS...`, creating the mount point, and waits until it
    /// is mounted.
    pub fn start(mut cairn: Command, mountpoint: &Path, options: &[&str]) -> ForegroundMount {
        std::fs::create_dir_all(mountpoint).unwrap();
        let child = cairn
            .arg("mount")
            .arg(mountpoint)
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mount = ForegroundMount {
            child,
            mountpoint: mountpoint.to_path_buf(),
        };
        let start = Instant::now();
        while !is_mounted(mountpoint) {
            assert!(start.elapsed() < Duration::from_secs(30), "no mount");
            std::thread::sleep(Duration::from_millis(50));
        }
        mount
    }
}

impl Drop for ForegroundMount {
    fn drop(&mut self) {
        // SAFETY: kill takes a pid and a signal number, nothing borrowed.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}
