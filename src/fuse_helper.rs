//! `mount -t fuse.cairn STORE_DIR MOUNTPOINT` and fstab lines: fuse3's
//! `mount.fuse3` runs `cairn STORE_DIR MOUNTPOINT -o OPTIONS` and waits for
//! it to return. cairn then starts `cairn --store-dir STORE_DIR mount
//! MOUNTPOINT ...` detached (its own session, no terminal), waits until that
//! process reports the filesystem mounted, and exits 0 — or prints why the
//! mount failed and exits 1.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// Subcommands, so that `cairn SUBCOMMAND ...` is never taken for a helper call.
const SUBCOMMANDS: &[&str] = &[
    "import",
    "export",
    "cat",
    "ls",
    "add",
    "nar",
    "path-info",
    "store",
    "mount",
    "serve",
    "eval",
    "virtiofs",
    "boot",
    "help",
];

/// Mount options that concern the kernel or mount(8), not cairn.
const IGNORED: &[&str] = &[
    "rw",
    "ro",
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "relatime",
    "_netdev",
    "nofail",
    "default_permissions",
];

/// A call from mount.fuse3.
#[derive(Debug, PartialEq, Eq)]
pub struct HelperCall {
    pub store_dir: PathBuf,
    pub mountpoint: PathBuf,
    pub options: Vec<String>,
}

/// Recognises `cairn SOURCE MOUNTPOINT [-o OPTIONS]`.
pub fn detect(args: &[OsString]) -> Option<HelperCall> {
    if args.len() < 3 {
        return None;
    }
    let first = args[1].to_str()?;
    if first.starts_with('-') || SUBCOMMANDS.contains(&first) {
        return None;
    }
    if args[2].as_encoded_bytes().starts_with(b"-") {
        return None;
    }
    let mut options = Vec::new();
    let mut rest = args[3..].iter();
    while let Some(arg) = rest.next() {
        if arg == "-o" {
            let value = rest.next()?.to_str()?;
            options.extend(value.split(',').filter(|o| !o.is_empty()).map(String::from));
        } else {
            return None;
        }
    }
    Some(HelperCall {
        store_dir: PathBuf::from(&args[1]),
        mountpoint: PathBuf::from(&args[2]),
        options,
    })
}

/// The `mount` subcommand's flags for the call's options.
pub fn mount_flags(call: &HelperCall) -> Result<Vec<String>, String> {
    let mut flags = Vec::new();
    for option in &call.options {
        let (key, value) = match option.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (option.as_str(), None),
        };
        match (key, value) {
            ("allow_other", None) => flags.push("--allow-other".into()),
            ("no_list_root", None) => flags.push("--no-list-root".into()),
            ("no_whole_files", None) => flags.push("--no-whole-files".into()),
            ("whole_files_dir", Some(v)) if !v.is_empty() => {
                flags.push("--whole-files-dir".into());
                flags.push(v.to_string());
            }
            (
                "window" | "cache_mib" | "timeout" | "whole_files_mib" | "whole_files_min_kib",
                Some(v),
            ) => {
                v.parse::<u64>()
                    .map_err(|_| format!("option {key}: {v:?} is not a number"))?;
                flags.push(format!("--{}", key.replace('_', "-")));
                flags.push(v.to_string());
            }
            (k, _) if IGNORED.contains(&k) || k.starts_with("x-") => {}
            ("fsname" | "subtype", Some(_)) => {}
            _ => return Err(format!("unknown mount option {option:?}")),
        }
    }
    Ok(flags)
}

/// Starts the detached mount and waits for it to be ready.
pub fn run(call: HelperCall) -> ExitCode {
    let flags = match mount_flags(&call) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cairn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into `fds`.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("cairn: pipe: {}", std::io::Error::last_os_error());
        return ExitCode::FAILURE;
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cairn: locating the cairn binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = Command::new(exe);
    // A source naming a composition (a URL, or a TOML file) is a --store;
    // anything else is the local store's directory.
    let source = call.store_dir.to_string_lossy();
    let store_flag = if source.contains("://") || source.ends_with(".toml") {
        "--store"
    } else {
        "--store-dir"
    };
    command
        .arg(store_flag)
        .arg(&call.store_dir)
        .arg("mount")
        .arg(&call.mountpoint)
        .args(&flags)
        .arg("--ready-fd")
        .arg(write_end.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; the child gets its own session.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cairn: starting the mount: {e}");
            return ExitCode::FAILURE;
        }
    };
    drop(write_end);
    let mut ready = std::fs::File::from(read_end);
    let mut byte = [0u8; 1];
    match ready.read(&mut byte) {
        Ok(1) => {
            // Mounted; the daemon keeps running. Stop reading its stderr.
            drop(child.stderr.take());
            ExitCode::SUCCESS
        }
        _ => {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            let _ = child.wait();
            eprint!("{err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn recognises_helper_calls_only() {
        assert_eq!(
            detect(&args(&[
                "cairn",
                "/var/lib/cairn",
                "/nix/store",
                "-o",
                "rw,allow_other"
            ])),
            Some(HelperCall {
                store_dir: "/var/lib/cairn".into(),
                mountpoint: "/nix/store".into(),
                options: vec!["rw".into(), "allow_other".into()],
            })
        );
        assert_eq!(detect(&args(&["cairn", "mount", "/mnt"])), None);
        assert_eq!(detect(&args(&["cairn", "--store-dir", "/x", "ls"])), None);
        assert_eq!(detect(&args(&["cairn", "/a", "/b", "extra"])), None);
        assert_eq!(detect(&args(&["cairn", "serve", "--read-only"])), None);
        assert_eq!(detect(&args(&["cairn", "/a", "--flag"])), None);
    }

    #[test]
    fn options_become_flags() {
        let call = detect(&args(&[
            "cairn",
            "/s",
            "/m",
            "-o",
            "ro,dev,window=0,x-systemd.automount",
        ]))
        .unwrap();
        assert_eq!(mount_flags(&call).unwrap(), vec!["--window", "0"]);
        let passthrough = detect(&args(&[
            "cairn",
            "/s",
            "/m",
            "-o",
            "whole_files_dir=/var/cache/cairn,whole_files_mib=100",
        ]))
        .unwrap();
        assert_eq!(
            mount_flags(&passthrough).unwrap(),
            vec![
                "--whole-files-dir",
                "/var/cache/cairn",
                "--whole-files-mib",
                "100"
            ]
        );
        let off = detect(&args(&["cairn", "/s", "/m", "-o", "no_whole_files"])).unwrap();
        assert_eq!(mount_flags(&off).unwrap(), vec!["--no-whole-files"]);
        let bad = detect(&args(&["cairn", "/s", "/m", "-o", "frobnicate"])).unwrap();
        assert!(mount_flags(&bad).is_err());
        let nan = detect(&args(&["cairn", "/s", "/m", "-o", "window=lots"])).unwrap();
        assert!(mount_flags(&nan).is_err());
    }
}
