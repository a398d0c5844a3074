//! The error type of boot image building and VMM launching.

use std::path::PathBuf;

/// Why a boot image could not be built or a VM not described.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no kernel image (vmlinux-* or vmlinuz-*) under {0}")]
    NoKernel(PathBuf),
    #[error("no kernel modules for version {version} at {dir}")]
    NoModules { dir: PathBuf, version: String },
    #[error("{0} has no modules.dep; run `depmod -b ROOT VERSION` on the unpacked kernel package")]
    NoModulesDep(PathBuf),
    #[error("modules.dep line {line}: {reason}")]
    ModulesDep { line: usize, reason: String },
    #[error("kernel module {0} is not in modules.dep")]
    UnknownModule(String),
    #[error("kernel module {0} is compressed; the initrd's insmod needs plain .ko files")]
    CompressedModule(String),
    #[error("module dependencies form a cycle through {0}")]
    ModuleCycle(String),
    #[error("cpio: {0}")]
    Cpio(String),
    #[error("the kernel command line would be {len} bytes, more than the {max} the kernel takes")]
    CommandLineTooLong { len: usize, max: usize },
    #[error("the command is empty")]
    EmptyCommand,
}

impl BootError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BootError {
        let path = path.into();
        move |source| BootError::Io { path, source }
    }
}
