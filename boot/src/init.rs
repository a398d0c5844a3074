//! The guest's init (a busybox shell script) and the kernel command line
//! that tells it what to run.
//!
//! The command travels as one kernel parameter, `cairn.cmd=`, holding the
//! base64 of a shell command line (each argument single-quoted), so any
//! bytes but NUL survive the trip. Init writes `cairn-start-<nonce>` on the
//! console before running it and `cairn-status-<nonce> <status>` after; a
//! failure of its own is `cairn-init-error-<nonce>: <what>`. The nonce
//! (`cairn.nonce=`) keeps the command's own output from faking them.

use data_encoding::BASE64;

use crate::BootError;

/// The x86 kernel's command line limit (COMMAND_LINE_SIZE), terminator included.
pub const MAX_COMMAND_LINE: usize = 2048;

/// Marker lines init writes on the console.
pub fn start_marker(nonce: &str) -> String {
    format!("cairn-start-{nonce}")
}

pub fn status_marker(nonce: &str) -> String {
    format!("cairn-status-{nonce} ")
}

pub fn error_marker(nonce: &str) -> String {
    format!("cairn-init-error-{nonce}: ")
}

/// `arg` quoted for a POSIX shell.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The kernel command line: console and quiet settings, then what init
/// needs (tag, nonce, command).
pub fn kernel_command_line(
    console: &str,
    tag: &str,
    nonce: &str,
    command: &[String],
) -> Result<String, BootError> {
    if command.is_empty() {
        return Err(BootError::EmptyCommand);
    }
    let script = command
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let line = format!(
        "console={console} panic=-1 quiet loglevel=3 cairn.tag={tag} cairn.nonce={nonce} cairn.cmd={}",
        BASE64.encode(script.as_bytes())
    );
    if line.len() >= MAX_COMMAND_LINE {
        return Err(BootError::CommandLineTooLong {
            len: line.len(),
            max: MAX_COMMAND_LINE - 1,
        });
    }
    Ok(line)
}

/// The init script, loading `modules` (file names under /lib/modules) in order.
pub fn init_script(modules: &[String]) -> String {
    let modules = modules
        .iter()
        .map(|m| shell_quote(m))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        r#"#!/bin/sh
# cairn's guest init: the store over virtio-fs at /nix/store, one command, power off.
export PATH=/bin HOME=/root TERM=dumb
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
dmesg -n 1
tag=nixstore nonce=none cmd=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    cairn.tag=*) tag="${{arg#cairn.tag=}}" ;;
    cairn.nonce=*) nonce="${{arg#cairn.nonce=}}" ;;
    cairn.cmd=*) cmd="${{arg#cairn.cmd=}}" ;;
  esac
done
fail() {{
  echo "cairn-init-error-$nonce: $*"
  poweroff -f
  sleep 5
  exit 1
}}
for m in {modules}; do
  insmod "/lib/modules/$m" || fail "loading kernel module $m"
done
mount -t virtiofs -o ro "$tag" /nix/store || fail "mounting virtio-fs tag $tag at /nix/store"
# Read ahead 1 MiB (the largest request) rather than the kernel's 128 KiB.
bdi=$(awk '$5 == "/nix/store" {{ print $3 }}' /proc/self/mountinfo)
[ -n "$bdi" ] && echo 1024 >"/sys/class/bdi/$bdi/read_ahead_kb" 2>/dev/null
script=$(echo "$cmd" | base64 -d) || fail "decoding the command"
cd /
echo "cairn-start-$nonce"
sh -c "$script" </dev/null
status=$?
echo "cairn-status-$nonce $status"
umount /nix/store 2>/dev/null
poweroff -f
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_shell() {
        let args = ["plain", "with space", "it's", "$HOME", "", "a\nb"];
        let line = args
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("for a in {line}; do printf '[%s]' \"$a\"; done"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "[plain][with space][it's][$HOME][][a\nb]"
        );
    }

    #[test]
    fn the_command_line_carries_the_command() {
        let line =
            kernel_command_line("ttyS0", "nixstore", "n1", &["echo".into(), "a b".into()]).unwrap();
        let encoded = line.rsplit("cairn.cmd=").next().unwrap();
        assert_eq!(BASE64.decode(encoded.as_bytes()).unwrap(), b"echo 'a b'");
        assert!(!line.contains('\n'));
        assert!(matches!(
            kernel_command_line("ttyS0", "t", "n", &[]),
            Err(BootError::EmptyCommand)
        ));
        let long = vec!["x".repeat(2000)];
        assert!(matches!(
            kernel_command_line("ttyS0", "t", "n", &long),
            Err(BootError::CommandLineTooLong { .. })
        ));
    }

    #[test]
    fn the_init_script_parses() {
        let script = init_script(&["virtio.ko".into(), "virtiofs.ko".into()]);
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(script.contains("for m in virtio.ko virtiofs.ko; do"));
    }
}
