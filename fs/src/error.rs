//! The one error type of the filesystem, and its mapping to errno values.

use std::sync::Arc;

use cairn_castore::{BlobError, Digest, DirectoryServiceError};

/// Why a filesystem operation failed. Cheap to clone (sources are shared),
/// so one failed fetch can be reported to every request that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    #[error("no such entry")]
    NotFound,
    #[error("inode {0} is not known (forgotten or never looked up)")]
    StaleInode(u64),
    #[error("file handle {0} is not open")]
    BadHandle(u64),
    #[error("not a directory")]
    NotDirectory,
    #[error("is a directory")]
    IsDirectory,
    #[error("not a symlink")]
    NotSymlink,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("buffer too small: {0} bytes needed")]
    Range(usize),
    #[error("directory {0} is not in the store")]
    MissingDirectory(Digest),
    #[error("blob {0} is not in the store")]
    MissingBlob(Digest),
    #[error("blob {blob}: chunk {chunk} failed verification")]
    Corrupt { blob: Digest, chunk: Digest },
    #[error("{op} timed out after {after_ms} ms")]
    Timeout { op: &'static str, after_ms: u64 },
    #[error(transparent)]
    Blob(Arc<BlobError>),
    #[error(transparent)]
    Directory(Arc<DirectoryServiceError>),
    #[error("root source: {0}")]
    Source(Arc<dyn std::error::Error + Send + Sync>),
    #[error("no tokio runtime: {0}")]
    Runtime(String),
    #[error("mount: {0}")]
    Mount(Arc<std::io::Error>),
    #[error("whole-file copy {path}: {source}")]
    WholeFile {
        path: String,
        source: Arc<std::io::Error>,
    },
}

impl FsError {
    /// Wraps any error of a [`crate::RootSource`] implementation.
    pub fn source(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> FsError {
        FsError::Source(Arc::from(err.into()))
    }

    /// The errno a kernel request failing with this error gets.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound | FsError::MissingDirectory(_) | FsError::MissingBlob(_) => {
                libc::ENOENT
            }
            FsError::StaleInode(_) => libc::ESTALE,
            FsError::BadHandle(_) => libc::EBADF,
            FsError::NotDirectory => libc::ENOTDIR,
            FsError::IsDirectory => libc::EISDIR,
            FsError::NotSymlink => libc::EINVAL,
            FsError::NoXattr => libc::ENODATA,
            FsError::Range(_) => libc::ERANGE,
            FsError::Corrupt { .. }
            | FsError::Timeout { .. }
            | FsError::Blob(_)
            | FsError::Directory(_)
            | FsError::Source(_)
            | FsError::Runtime(_)
            | FsError::Mount(_)
            | FsError::WholeFile { .. } => libc::EIO,
        }
    }
}

impl From<BlobError> for FsError {
    fn from(err: BlobError) -> Self {
        FsError::Blob(Arc::new(err))
    }
}

impl From<DirectoryServiceError> for FsError {
    fn from(err: DirectoryServiceError) -> Self {
        FsError::Directory(Arc::new(err))
    }
}

impl From<std::io::Error> for FsError {
    fn from(err: std::io::Error) -> Self {
        FsError::Mount(Arc::new(err))
    }
}
