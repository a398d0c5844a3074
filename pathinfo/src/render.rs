//! castore -> NAR: streaming rendering with a sliding window.
//!
//! The directories of the tree are fetched first (concurrently, level by
//! level), then the chunk maps of its files, then the file chunks are
//! fetched with up to `window` requests in flight while the NAR is written
//! strictly in order. The NAR sha256 and size are computed while writing
//! ([`render_nar`]), or the size only ([`render_nar_unhashed`]).

use std::collections::HashMap;

use cairn_castore::blobio::fetch_chunk;
use cairn_castore::{
    BlobError, CaStore, ChunkMap, ChunkRef, Digest, Directory, DirectoryServiceError, Node,
};
use futures::{StreamExt, TryStreamExt};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use crate::hash::NixHash;
use crate::nar::{HashingWriter, NarWriteError, NarWriter};

/// Why a NAR could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("writing the NAR: {0}")]
    Write(#[from] NarWriteError),
    #[error("file of blob {blob} is {claimed} bytes, the blob has {actual}")]
    SizeMismatch {
        blob: Digest,
        claimed: u64,
        actual: u64,
    },
}

/// How much to keep in flight.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Chunk fetches in flight ahead of the writer (1 = one at a time).
    pub window: usize,
    /// Directory and chunk map fetches in flight.
    pub metadata_concurrency: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            window: 64,
            metadata_concurrency: 64,
        }
    }
}

/// A rendered NAR's hash and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderedNar {
    pub nar_sha256: [u8; 32],
    pub nar_size: u64,
}

enum Op {
    DirStart(Option<Vec<u8>>),
    DirEnd,
    File(Option<Vec<u8>>, bool, usize),
    Symlink(Option<Vec<u8>>, Vec<u8>),
}

async fn fetch_directories(
    store: &CaStore,
    root: &Node,
    concurrency: usize,
) -> Result<HashMap<Digest, Directory>, RenderError> {
    let mut all = HashMap::new();
    let mut frontier: Vec<Digest> = match root {
        Node::Directory { digest, .. } => vec![*digest],
        _ => Vec::new(),
    };
    while !frontier.is_empty() {
        let fetched: Vec<(Digest, Directory)> =
            futures::stream::iter(frontier.drain(..).map(|d| {
                let dirs = store.directories.clone();
                async move {
                    let dir = dirs
                        .get(&d)
                        .await?
                        .ok_or(DirectoryServiceError::NotFound(d))?;
                    Ok::<_, RenderError>((d, dir))
                }
            }))
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        for (digest, dir) in fetched {
            for (_, child, _) in dir.child_directories() {
                if !all.contains_key(child) && !frontier.contains(child) {
                    frontier.push(*child);
                }
            }
            all.insert(digest, dir);
        }
        frontier.retain(|d| !all.contains_key(d));
    }
    Ok(all)
}

fn plan(
    node: &Node,
    name: Option<Vec<u8>>,
    dirs: &HashMap<Digest, Directory>,
    ops: &mut Vec<Op>,
    files: &mut Vec<(Digest, u64)>,
) -> Result<(), RenderError> {
    match node {
        Node::Directory { digest, .. } => {
            let dir = dirs
                .get(digest)
                .ok_or(DirectoryServiceError::NotFound(*digest))?;
            ops.push(Op::DirStart(name));
            for (child_name, child) in dir.entries() {
                plan(
                    child,
                    Some(child_name.as_bytes().to_vec()),
                    dirs,
                    ops,
                    files,
                )?;
            }
            ops.push(Op::DirEnd);
        }
        Node::File {
            digest,
            size,
            executable,
        } => {
            ops.push(Op::File(name, *executable, files.len()));
            files.push((*digest, *size));
        }
        Node::Symlink { target } => ops.push(Op::Symlink(name, target.as_bytes().to_vec())),
    }
    Ok(())
}

/// Writes the NAR of `node` to `out`, returning `out` and the NAR's hash and size.
pub async fn render_nar<W: AsyncWrite + Unpin + Send>(
    store: &CaStore,
    node: &Node,
    out: W,
    options: RenderOptions,
) -> Result<(W, RenderedNar), RenderError> {
    let mut writer = NarWriter::new(HashingWriter::new(out));
    write_nar(store, node, &mut writer, options).await?;
    let (out, hash, size) = writer.finish().await?.into_parts();
    let NixHash::Sha256(nar_sha256) = hash else {
        return Err(RenderError::Write(NarWriteError::InvalidState(
            "hash is not sha256",
        )));
    };
    Ok((
        out,
        RenderedNar {
            nar_sha256,
            nar_size: size,
        },
    ))
}

/// As [`render_nar`] without computing the NAR's SHA-256 (a third of the
/// CPU time of rendering): for sending NARs whose hash is already known.
/// Every chunk is still checked against its BLAKE3 digest. Returns `out`
/// and the NAR's size.
pub async fn render_nar_unhashed<W: AsyncWrite + Unpin + Send>(
    store: &CaStore,
    node: &Node,
    out: W,
    options: RenderOptions,
) -> Result<(W, u64), RenderError> {
    let mut writer = NarWriter::new(CountingWriter {
        inner: out,
        size: 0,
    });
    write_nar(store, node, &mut writer, options).await?;
    let counted = writer.finish().await?;
    Ok((counted.inner, counted.size))
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    size: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, data))?;
        this.size += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Writes the NAR of `node` through `writer` (not finished).
async fn write_nar<W: AsyncWrite + Unpin + Send>(
    store: &CaStore,
    node: &Node,
    writer: &mut NarWriter<W>,
    options: RenderOptions,
) -> Result<(), RenderError> {
    let concurrency = options.metadata_concurrency.max(1);
    let dirs = fetch_directories(store, node, concurrency).await?;
    let mut ops = Vec::new();
    let mut files = Vec::new();
    plan(node, None, &dirs, &mut ops, &mut files)?;
    drop(dirs);

    // Look the files' blobs up together (most files are single chunks).
    let blob_digests: Vec<Digest> = files.iter().map(|(digest, _)| *digest).collect();
    store.blobs.chunks().prepare(&blob_digests).await;
    drop(blob_digests);

    let maps: Vec<ChunkMap> = futures::stream::iter(files.iter().copied().map(|(digest, size)| {
        let blobs = store.blobs.clone();
        async move {
            let map = blobs
                .chunk_map(&digest)
                .await?
                .ok_or(BlobError::NotFound(digest))?;
            if map.blob_size() != size {
                return Err(RenderError::SizeMismatch {
                    blob: digest,
                    claimed: size,
                    actual: map.blob_size(),
                });
            }
            Ok(map)
        }
    }))
    .buffered(concurrency)
    .try_collect()
    .await?;

    let chunk_list: Vec<(Digest, ChunkRef)> = files
        .iter()
        .zip(&maps)
        .flat_map(|((blob, _), map)| map.chunks().iter().map(move |c| (*blob, *c)))
        .collect();
    let multi_chunk: Vec<Digest> = maps
        .iter()
        .filter(|map| map.len() > 1)
        .flat_map(|map| map.chunks().iter().map(|c| c.digest))
        .collect();
    store.blobs.chunks().prepare(&multi_chunk).await;
    drop(multi_chunk);
    let blobs = store.blobs.clone();
    let mut chunks = futures::stream::iter(chunk_list.into_iter().map(|(blob, chunk)| {
        let blobs = blobs.clone();
        async move {
            tokio::spawn(async move { fetch_chunk(blobs.as_ref(), blob, chunk).await })
                .await
                .map_err(|e| BlobError::Io(std::io::Error::other(e)))?
        }
    }))
    .buffered(options.window.max(1));

    for op in ops {
        match op {
            Op::DirStart(name) => writer.directory_start(name.as_deref()).await?,
            Op::DirEnd => writer.directory_end().await?,
            Op::Symlink(name, target) => writer.symlink(name.as_deref(), &target).await?,
            Op::File(name, executable, index) => {
                let (_, size) = files[index];
                writer.file_start(name.as_deref(), executable, size).await?;
                for _ in 0..maps[index].len() {
                    let data =
                        chunks
                            .next()
                            .await
                            .ok_or(BlobError::Io(std::io::Error::other(
                                "chunk stream ended early",
                            )))??;
                    writer.file_chunk(&data).await?;
                }
                writer.file_end().await?;
            }
        }
    }
    Ok(())
}
