//! Building the initrd: busybox (static), the kernel modules virtio-fs
//! needs in load order, and the init script, as a compressed newc cpio.

use std::path::{Path, PathBuf};

use crate::cpio::CpioWriter;
use crate::init::init_script;
use crate::{BootError, Kernel};

/// How the archive is compressed (the kernel unpacks both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

/// What goes into an initrd.
#[derive(Debug, Clone)]
pub struct InitrdSpec {
    /// A statically linked busybox (Debian's busybox-static: /bin/busybox).
    pub busybox: PathBuf,
    pub kernel: Kernel,
    /// Modules to load (with their dependencies), e.g.
    /// [`crate::modules::VIRTIO_FS_PCI`].
    pub modules: Vec<String>,
    pub compression: Compression,
}

/// Whether the ELF file `data` asks for a program interpreter (is
/// dynamically linked). `None` when it is not a 64-bit little-endian ELF.
fn has_interpreter(data: &[u8]) -> Option<bool> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = data.get(at..at.checked_add(4)?)?;
        if kind == 3u32.to_le_bytes() {
            return Some(true);
        }
    }
    Some(false)
}

fn read(path: &Path) -> Result<Vec<u8>, BootError> {
    std::fs::read(path).map_err(BootError::io(path))
}

/// Builds the initrd described by `spec`.
pub fn build_initrd(spec: &InitrdSpec) -> Result<Vec<u8>, BootError> {
    let busybox = read(&spec.busybox)?;
    match has_interpreter(&busybox) {
        Some(false) => {}
        Some(true) => {
            return Err(BootError::Cpio(format!(
                "{} is dynamically linked; the initrd needs a static busybox (Debian: busybox-static)",
                spec.busybox.display()
            )));
        }
        None => {
            return Err(BootError::Cpio(format!(
                "{} is not an x86-64 ELF executable",
                spec.busybox.display()
            )));
        }
    }
    let roots: Vec<&str> = spec.modules.iter().map(String::as_str).collect();
    let order = spec.kernel.modules_dep()?.load_order(&roots)?;

    let mut cpio = CpioWriter::new(Vec::with_capacity(busybox.len() + (4 << 20)));
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "root",
        "nix",
        "nix/store",
        "lib",
        "lib/modules",
    ] {
        cpio.directory(dir, 0o755)?;
    }
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("bin/busybox", 0o755, &busybox)?;
    cpio.symlink("bin/sh", "busybox")?;
    let mut names = Vec::with_capacity(order.len());
    for path in &order {
        if !path.ends_with(".ko") {
            return Err(BootError::CompressedModule(path.clone()));
        }
        let file = path.rsplit('/').next().unwrap_or(path).to_owned();
        let data = read(&spec.kernel.modules_dir.join(path))?;
        cpio.file(&format!("lib/modules/{file}"), 0o644, &data)?;
        names.push(file);
    }
    cpio.file("init", 0o755, init_script(&names).as_bytes())?;
    let archive = cpio.finish()?;
    tracing::debug!(modules = ?names, bytes = archive.len(), "initrd built");
    match spec.compression {
        Compression::None => Ok(archive),
        Compression::Zstd => zstd::bulk::compress(&archive, 3)
            .map_err(|e| BootError::Cpio(format!("compressing: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_interpreter_detection() {
        // This test binary is dynamically linked.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(has_interpreter(&me), Some(true));
        assert_eq!(has_interpreter(b"#!/bin/sh\n"), None);
        let mut truncated = me[..64].to_vec();
        truncated[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(has_interpreter(&truncated), None);
    }
}
