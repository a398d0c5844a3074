//! NAR -> castore: streaming ingestion.
//!
//! File contents stream from the NAR reader into a [`BlobWriter`] (chunked,
//! hashed and stored as they arrive; never a whole file in memory). The NAR
//! sha256 and size are computed on the same pass. Directories are kept in
//! memory until the whole NAR has been read and validated, then stored
//! bottom-up, so a bad NAR never leaves a directory (let alone a store path)
//! behind — at most unreferenced chunks.

use std::io;

use bytes::Bytes;
use cairn_castore::{
    BlobError, BlobWriter, CaStore, Directory, DirectoryServiceError, Name, Node, SymlinkTarget,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::hash::NixHash;
use crate::nar::{HashingReader, NarReadError, NarVisitor, read_nar};

/// Why a NAR could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid NAR: {0}")]
    Nar(#[from] NarReadError),
    #[error("storing file contents: {0}")]
    Blob(#[from] BlobError),
    #[error("storing a directory: {0}")]
    Directory(#[from] DirectoryServiceError),
    #[error("invalid entry: {0}")]
    Entry(String),
}

/// What a NAR became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedNar {
    pub node: Node,
    pub nar_size: u64,
    pub nar_sha256: [u8; 32],
}

struct Frame {
    name: Option<Name>,
    entries: Vec<(Name, Node)>,
}

struct Ingester<'a> {
    store: &'a CaStore,
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Directories to store, with their depth (children come before parents).
    directories: Vec<(usize, Directory)>,
    error: Option<IngestError>,
}

impl Ingester<'_> {
    fn fail(&mut self, e: IngestError) -> io::Error {
        let message = e.to_string();
        self.error = Some(e);
        io::Error::other(message)
    }

    fn place(&mut self, name: Option<&[u8]>, node: Node) -> io::Result<()> {
        match (self.stack.last_mut(), name) {
            (Some(frame), Some(name)) => {
                let name = Name::new(Bytes::copy_from_slice(name))
                    .map_err(|e| io::Error::other(e.to_string()))?;
                frame.entries.push((name, node));
                Ok(())
            }
            (None, None) => {
                self.root = Some(node);
                Ok(())
            }
            _ => Err(self.fail(IngestError::Entry("entry outside a directory".into()))),
        }
    }
}

impl NarVisitor for Ingester<'_> {
    async fn directory_start(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        let name = match name {
            Some(n) => Some(
                Name::new(Bytes::copy_from_slice(n))
                    .map_err(|e| self.fail(IngestError::Entry(e.to_string())))?,
            ),
            None => None,
        };
        self.stack.push(Frame {
            name,
            entries: Vec::new(),
        });
        Ok(())
    }

    async fn directory_end(&mut self) -> io::Result<()> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.fail(IngestError::Entry("unbalanced directory".into())));
        };
        let dir = Directory::from_entries(frame.entries)
            .map_err(|e| self.fail(IngestError::Entry(e.to_string())))?;
        let node = dir.node();
        self.directories.push((self.stack.len(), dir));
        let name = frame.name.map(|n| n.to_bytes());
        self.place(name.as_deref(), node)
    }

    async fn file<C: AsyncRead + Unpin + Send>(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        _size: u64,
        contents: &mut C,
    ) -> io::Result<()> {
        let mut writer = BlobWriter::new(self.store.blobs.clone(), self.store.chunker);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = contents.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if let Err(e) = writer.write(&buf[..n]).await {
                return Err(self.fail(e.into()));
            }
        }
        let (digest, size) = match writer.finish().await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e.into())),
        };
        self.place(
            name,
            Node::File {
                digest,
                size,
                executable,
            },
        )
    }

    async fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> io::Result<()> {
        let target = SymlinkTarget::new(Bytes::copy_from_slice(target))
            .map_err(|e| self.fail(IngestError::Entry(e.to_string())))?;
        self.place(name, Node::Symlink { target })
    }
}

/// Reads a NAR from `reader` into `store`.
pub async fn ingest_nar<R: AsyncRead + Unpin + Send>(
    store: &CaStore,
    reader: R,
) -> Result<IngestedNar, IngestError> {
    let mut hashing = HashingReader::new(reader);
    let mut ingester = Ingester {
        store,
        stack: Vec::new(),
        root: None,
        directories: Vec::new(),
        error: None,
    };
    let result = read_nar(&mut hashing, &mut ingester).await;
    if let Err(e) = result {
        return Err(ingester.error.take().unwrap_or(IngestError::Nar(e)));
    }
    let root = ingester
        .root
        .take()
        .ok_or_else(|| IngestError::Entry("NAR has no root".into()))?;

    // Directories bottom-up: deepest level first, concurrently within a level.
    let mut directories = std::mem::take(&mut ingester.directories);
    directories.sort_by_key(|d| std::cmp::Reverse(d.0));
    let mut start = 0;
    while start < directories.len() {
        let depth = directories[start].0;
        let end = directories[start..]
            .iter()
            .position(|(d, _)| *d != depth)
            .map_or(directories.len(), |p| start + p);
        let puts = directories[start..end]
            .iter()
            .map(|(_, dir)| store.directories.put(dir));
        for r in futures::future::join_all(puts).await {
            r?;
        }
        start = end;
    }
    store
        .blobs
        .chunks()
        .flush()
        .await
        .map_err(BlobError::from)?;
    store.directories.flush().await?;

    let (_, hash, size) = hashing.into_parts();
    let NixHash::Sha256(sha) = hash else {
        return Err(IngestError::Entry("NAR hash is not sha256".into()));
    };
    Ok(IngestedNar {
        node: root,
        nar_size: size,
        nar_sha256: sha,
    })
}
