//! cairn-boot: boot images and VMM command lines with the store over
//! virtio-fs.
//!
//! - [`cpio`]: a writer of `newc` cpio archives (the initramfs format).
//! - [`kernel`]: finding a kernel image and its modules in an unpacked
//!   kernel package (or next to a given image).
//! - [`modules`]: `modules.dep`, and the load order of the modules virtio-fs
//!   needs.
//! - [`initrd`]: the initrd: busybox, those modules, and [`init`]'s script,
//!   compressed with zstd.
//! - [`init`]: the guest's init: mounts the virtio-fs tag read-only at
//!   `/nix/store`, runs the command from the kernel command line, reports
//!   its output and exit status on the serial console, powers off.
//! - [`vmm`]: QEMU and Cloud Hypervisor command lines, and [`console`]:
//!   reading the guest's serial console back (output and exit status).
//! - [`error`] holds [`BootError`].

pub mod console;
pub mod cpio;
pub mod error;
pub mod init;
pub mod initrd;
pub mod kernel;
pub mod modules;
pub mod vmm;

pub use error::BootError;
pub use initrd::{Compression, InitrdSpec, build_initrd};
pub use kernel::Kernel;
pub use vmm::{GuestSpec, Vmm};
