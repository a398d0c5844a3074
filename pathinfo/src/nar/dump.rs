//! Serialising a local file system tree as a NAR, like `nix-store --dump`.
//!
//! Directory entries are sorted by their names as bytes; a regular file is
//! executable when its owner-execute bit is set; other file types (devices,
//! sockets, FIFOs) are rejected.

use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio::io::AsyncWrite;

use super::hashing::HashingWriter;
use super::writer::{NarWriteError, NarWriter};
use crate::hash::NixHash;

/// Why a tree could not be serialised.
#[derive(Debug, Error)]
pub enum DumpError {
    /// Reading the tree failed.
    #[error("cannot read {path:?}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file that is neither regular, symlink nor directory.
    #[error("{0:?} has an unsupported file type")]
    UnsupportedFileType(PathBuf),
    /// Writing the NAR failed.
    #[error("at {path:?}: {source}")]
    Nar {
        /// The path being written.
        path: PathBuf,
        /// The error.
        source: NarWriteError,
    },
}

/// Writes the NAR of the tree at `path` into `out` and returns `out`.
pub async fn dump_path<W: AsyncWrite + Unpin>(path: &Path, out: W) -> Result<W, DumpError> {
    let mut nar = NarWriter::new(out);
    dump_path_into(path, &mut nar).await?;
    nar.finish().await.map_err(|source| DumpError::Nar {
        path: path.to_owned(),
        source,
    })
}

/// The NAR hash (SHA-256) and NAR size of the tree at `path`.
pub async fn nar_hash_path(path: &Path) -> Result<(NixHash, u64), DumpError> {
    let hw = dump_path(path, HashingWriter::new(tokio::io::sink())).await?;
    let (_, hash, size) = hw.into_parts();
    Ok((hash, size))
}

/// Writes the tree at `path` as the root node of `nar` (which must be
/// fresh). Does not flush.
pub async fn dump_path_into<W: AsyncWrite + Unpin>(
    path: &Path,
    nar: &mut NarWriter<W>,
) -> Result<(), DumpError> {
    struct Frame {
        dir: PathBuf,
        entries: std::vec::IntoIter<OsString>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let meta = lstat(path).await?;
    if let Some(frame) = dump_node(nar, path, None, &meta).await? {
        stack.push(frame);
    }
    while let Some(top) = stack.last_mut() {
        match top.entries.next() {
            Some(name) => {
                let child = top.dir.join(&name);
                let meta = lstat(&child).await?;
                if let Some(frame) = dump_node(nar, &child, Some(name.as_bytes()), &meta).await? {
                    stack.push(frame);
                }
            }
            None => {
                let dir = top.dir.clone();
                stack.pop();
                nar.directory_end()
                    .await
                    .map_err(|source| DumpError::Nar { path: dir, source })?;
            }
        }
    }

    /// Writes a node; for a directory, writes its start and returns the
    /// frame listing its entries.
    async fn dump_node<W: AsyncWrite + Unpin>(
        nar: &mut NarWriter<W>,
        path: &Path,
        name: Option<&[u8]>,
        meta: &Metadata,
    ) -> Result<Option<Frame>, DumpError> {
        let io_err = |source| DumpError::Io {
            path: path.to_owned(),
            source,
        };
        let nar_err = |source| DumpError::Nar {
            path: path.to_owned(),
            source,
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = tokio::fs::read_link(path).await.map_err(io_err)?;
            nar.symlink(name, target.as_os_str().as_bytes())
                .await
                .map_err(nar_err)?;
            Ok(None)
        } else if ft.is_file() {
            let mut file = tokio::fs::File::open(path).await.map_err(io_err)?;
            let executable = meta.permissions().mode() & 0o100 != 0;
            nar.file(name, executable, meta.len(), &mut file)
                .await
                .map_err(nar_err)?;
            Ok(None)
        } else if ft.is_dir() {
            let mut rd = tokio::fs::read_dir(path).await.map_err(io_err)?;
            let mut names = Vec::new();
            while let Some(entry) = rd.next_entry().await.map_err(io_err)? {
                names.push(entry.file_name().into_vec());
            }
            names.sort();
            nar.directory_start(name).await.map_err(nar_err)?;
            Ok(Some(Frame {
                dir: path.to_owned(),
                entries: names
                    .into_iter()
                    .map(OsString::from_vec)
                    .collect::<Vec<_>>()
                    .into_iter(),
            }))
        } else {
            Err(DumpError::UnsupportedFileType(path.to_owned()))
        }
    }
    Ok(())
}

async fn lstat(path: &Path) -> Result<Metadata, DumpError> {
    tokio::fs::symlink_metadata(path)
        .await
        .map_err(|source| DumpError::Io {
            path: path.to_owned(),
            source,
        })
}
