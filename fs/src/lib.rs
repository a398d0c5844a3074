//! cairn-fs: the read-only filesystem that presents the store as
//! `/nix/store`, and its FUSE transport.
//!
//! - [`CairnFs`] ([`core`]): the filesystem itself, independent of any
//!   transport: inodes ([`inode`]), directories through a bounded cache,
//!   reads through a bounded chunk cache with a sliding prefetch window
//!   ([`reader`]), xattrs (`user.cairn.digest`), all bounded by a timeout.
//! - [`RootSource`] ([`root`]): what the root directory holds (the store
//!   paths, resolved by name); [`MemoryRoots`] holds them in memory.
//! - [`fuse`]: serving a [`CairnFs`] over FUSE: [`mount`] returns a
//!   [`MountHandle`] to wait on, and an [`Unmounter`] for signal handlers.
//! - [`whole_files`]: whole-file copies of large, reopened blobs on local
//!   disk, which the FUSE transport serves in passthrough mode.
//! - [`slow`]: a blob service wrapper adding latency, for tests and benchmarks.
//!
//! ```no_run
//! # async fn example(store: cairn_castore::CaStore, roots: std::sync::Arc<dyn cairn_fs::RootSource>)
//! # -> Result<(), cairn_fs::FsError> {
//! use cairn_fs::{CairnFs, FsOptions, MountOptions};
//! // Inside a tokio runtime: fetches run on it.
//! let fs = CairnFs::new(store, roots, FsOptions::default())?;
//! let handle = cairn_fs::mount(fs, "/nix/store".as_ref(), &MountOptions::default())?;
//! let unmounter = handle.unmounter();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     let _ = unmounter.unmount();
//! });
//! // Blocks until unmounted (from here or from outside).
//! tokio::task::spawn_blocking(move || handle.join())
//!     .await
//!     .map_err(|e| cairn_fs::FsError::Runtime(e.to_string()))??;
//! # Ok(())
//! # }
//! ```

pub mod core;
pub mod error;
pub mod fuse;
pub mod inode;
pub mod options;
mod passthrough;
pub mod reader;
pub mod root;
pub mod slow;
pub mod whole_files;

pub use crate::core::{Attr, CairnFs, DIGEST_XATTR, DirEntry, FsStats, StatFs};
pub use error::FsError;
pub use fuse::{MountHandle, MountOptions, Unmounter, mount};
pub use options::{DEFAULT_WINDOW_BYTES, FsOptions};
pub use root::{MemoryRoots, RootSource};
pub use whole_files::{CopyCheck, WholeFiles, WholeFilesOptions, verify_copies};
