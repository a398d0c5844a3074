//! cairn-virtiofs: a vhost-user-fs daemon serving the fs core to microVMs.
//!
//! A VMM (QEMU's `vhost-user-fs-pci`, Cloud Hypervisor's `--fs`) connects to
//! a Unix socket and hands over the guest's memory and virtqueues; the guest
//! kernel's virtio-fs driver sends FUSE requests through those queues.
//!
//! - [`filesystem`]: [`StoreFs`], the FUSE operations (decoded by
//!   fuse-backend-rs) answered by a [`cairn_fs::CairnFs`], read-only.
//! - [`backend`]: [`VirtioFsBackend`], the vhost-user device: one high
//!   priority queue plus any number of request queues, each served by its
//!   own thread.
//! - [`daemon`]: [`serve`] listens on the socket and serves one VMM after
//!   another until one disconnects (or forever, with
//!   [`DaemonOptions::keep_serving`]).
//! - [`error`] holds [`VirtioFsError`].

pub mod backend;
pub mod daemon;
pub mod error;
pub mod filesystem;

pub use backend::VirtioFsBackend;
pub use daemon::{DaemonOptions, Listening, listen, serve};
pub use error::VirtioFsError;
pub use filesystem::StoreFs;
