//! Materializing nodes as filesystem trees.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::services::blob::BlobError;
use crate::{BlobReader, CaStore, DirectoryServiceError, Node};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("{path}: {source}")]
    Blob {
        path: PathBuf,
        #[source]
        source: BlobError,
    },
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
}

/// Writes `node` to `dest`, which must not exist. Files get mode 0444 or
/// 0555 (executable), directories 0755 while writing, as Nix leaves them
/// writable for the owner until the end.
pub async fn export_node(store: &CaStore, node: &Node, dest: &Path) -> Result<(), ExportError> {
    if tokio::fs::symlink_metadata(dest).await.is_ok() {
        return Err(ExportError::Exists {
            path: dest.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let mut stack = vec![(dest.to_path_buf(), node.clone())];
    while let Some((path, node)) = stack.pop() {
        let io = |source| ExportError::Io {
            path: path.clone(),
            source,
        };
        match node {
            Node::Directory { digest, .. } => {
                let dir = store
                    .directories
                    .get(&digest)
                    .await?
                    .ok_or(DirectoryServiceError::NotFound(digest))?;
                tokio::fs::create_dir(&path).await.map_err(io)?;
                for (name, child) in dir.entries() {
                    let child_path = path.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
                    stack.push((child_path, child.clone()));
                }
            }
            Node::Symlink { target } => {
                tokio::fs::symlink(std::ffi::OsStr::from_bytes(target.as_bytes()), &path)
                    .await
                    .map_err(io)?;
            }
            Node::File {
                digest, executable, ..
            } => files.push((path, digest, executable)),
        }
    }
    let writes = futures::stream::iter(files.into_iter().map(|(path, digest, executable)| {
        let blobs = store.blobs.clone();
        async move {
            let io = |source| ExportError::Io {
                path: path.clone(),
                source,
            };
            let mut reader =
                BlobReader::open(blobs, digest)
                    .await
                    .map_err(|source| ExportError::Blob {
                        path: path.clone(),
                        source,
                    })?;
            let mut out = tokio::fs::File::create(&path).await.map_err(io)?;
            tokio::io::copy(&mut reader, &mut out).await.map_err(io)?;
            out.flush().await.map_err(io)?;
            let mode = if executable { 0o555 } else { 0o444 };
            tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .await
                .map_err(io)?;
            Ok::<_, ExportError>(())
        }
    }))
    .buffer_unordered(16);
    futures::pin_mut!(writes);
    while let Some(result) = writes.next().await {
        result?;
    }
    Ok(())
}
