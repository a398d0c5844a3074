//! cairn-fs: the read-only filesystem that presents the store as
//! `/nix/store`, and its FUSE transport.
//!
//! - [`CairnFs`] ([`core`]): the filesystem itself, independent of any
//!   transport: inodes, directories, reads with prefetch.
//! - [`RootSource`] ([`root`]): what the root directory holds (the store
//!   paths); [`MemoryRoots`] holds them in memory.
//! - [`fuse`]: serving a [`CairnFs`] over FUSE: [`mount`] returns a
//!   [`MountHandle`] to wait on or unmount.

pub mod core;
pub mod error;
pub mod fuse;
pub mod inode;
pub mod options;
pub mod reader;
pub mod root;
pub mod slow;

pub use crate::core::{Attr, CairnFs, DIGEST_XATTR, DirEntry, FsStats, StatFs};
pub use error::FsError;
pub use fuse::{MountHandle, MountOptions, Unmounter, mount};
pub use options::{DEFAULT_WINDOW_BYTES, FsOptions};
pub use root::{MemoryRoots, RootSource};
