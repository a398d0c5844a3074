//! The error type of the virtio-fs daemon.

/// Why serving the store over vhost-user-fs failed.
#[derive(Debug, thiserror::Error)]
pub enum VirtioFsError {
    #[error("listening on {path}: {source}")]
    Listen {
        path: String,
        source: vhost::vhost_user::Error,
    },
    #[error("setting up the vhost-user device: {0}")]
    Device(String),
    #[error("serving the VMM: {0}")]
    Serve(String),
    #[error("a request queue count of {0} is not possible (1 to 64)")]
    QueueCount(usize),
    #[error("the queue size {0} is not a power of two between 2 and 32768")]
    QueueSize(u16),
    #[error("the filesystem: {0}")]
    Fs(#[from] cairn_fs::FsError),
}
