//! Verifying a whole store: every chunk, chunk map and directory.

use crate::services::blob::BlobError;
use crate::{CaStore, ChunkError, Digest, DirectoryServiceError};

/// One problem found by [`verify_store`].
#[derive(Debug)]
pub enum Problem {
    Chunk(Digest, String),
    ChunkMap(Digest, String),
    Directory(Digest, String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Chunk(d, m) => write!(f, "chunk {d}: {m}"),
            Problem::ChunkMap(d, m) => write!(f, "chunk map of blob {d}: {m}"),
            Problem::Directory(d, m) => write!(f, "directory {d}: {m}"),
        }
    }
}

/// What [`verify_store`] checked and found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub chunks: usize,
    pub chunk_maps: usize,
    pub directories: usize,
    pub problems: Vec<Problem>,
}

/// Errors that stop verification itself (listing failed).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Directory(#[from] DirectoryServiceError),
}

/// Re-reads and re-hashes every chunk, checks every chunk map against its
/// chunks and the blob digest, and every directory against its digest, its
/// encoding and its children.
pub async fn verify_store(store: &CaStore) -> Result<VerifyReport, VerifyError> {
    use futures::StreamExt;
    let mut report = VerifyReport::default();
    let chunks = store.blobs.chunks().list().await?;
    report.chunks = chunks.len();
    let blobs = store.blobs.clone();
    let mut results = futures::stream::iter(chunks.into_iter().map(|d| {
        let blobs = blobs.clone();
        async move { (d, blobs.chunks().get(&d).await) }
    }))
    .buffer_unordered(8);
    while let Some((digest, result)) = results.next().await {
        match result {
            Ok(Some(_)) => {}
            Ok(None) => report
                .problems
                .push(Problem::Chunk(digest, "listed but not readable".into())),
            Err(e) => report.problems.push(Problem::Chunk(digest, e.to_string())),
        }
    }
    drop(results);

    let maps = store.blobs.list_chunk_maps().await?;
    report.chunk_maps = maps.len();
    for blob in maps {
        let map = match store.blobs.stored_chunk_map(&blob).await {
            Ok(Some(map)) => map,
            Ok(None) => continue,
            Err(e) => {
                report.problems.push(Problem::ChunkMap(blob, e.to_string()));
                continue;
            }
        };
        let mut hasher = blake3::Hasher::new();
        let mut broken = None;
        for chunk in map.chunks() {
            match crate::blobio::fetch_chunk(store.blobs.as_ref(), blob, *chunk).await {
                Ok(data) => {
                    hasher.update(&data);
                }
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        if broken.is_none() && Digest::from(hasher.finalize()) != blob {
            broken = Some("chunks do not hash to the blob digest".into());
        }
        if let Some(m) = broken {
            report.problems.push(Problem::ChunkMap(blob, m));
        }
    }

    let dirs = store.directories.list().await?;
    report.directories = dirs.len();
    for digest in dirs {
        match store.directories.get(&digest).await {
            Ok(Some(dir)) => {
                for (name, child, size) in dir.child_directories() {
                    match store.directories.size_of(child).await {
                        Ok(Some(s)) if s == size => {}
                        Ok(Some(s)) => report.problems.push(Problem::Directory(
                            digest,
                            format!("child {name} size {size}, stored {s}"),
                        )),
                        Ok(None) => report.problems.push(Problem::Directory(
                            digest,
                            format!("child {name} ({child}) missing"),
                        )),
                        Err(e) => report
                            .problems
                            .push(Problem::Directory(digest, e.to_string())),
                    }
                }
                for (name, node) in dir.entries() {
                    if let crate::Node::File {
                        digest: blob, size, ..
                    } = node
                    {
                        match store.blobs.chunk_map(blob).await {
                            Ok(Some(map)) if map.blob_size() == *size => {}
                            Ok(Some(map)) => report.problems.push(Problem::Directory(
                                digest,
                                format!("file {name} size {size}, blob has {}", map.blob_size()),
                            )),
                            Ok(None) => report.problems.push(Problem::Directory(
                                digest,
                                format!("file {name}: blob {blob} missing"),
                            )),
                            Err(e) => report
                                .problems
                                .push(Problem::Directory(digest, e.to_string())),
                        }
                    }
                }
            }
            Ok(None) => report
                .problems
                .push(Problem::Directory(digest, "listed but not readable".into())),
            Err(e) => report
                .problems
                .push(Problem::Directory(digest, e.to_string())),
        }
    }
    Ok(report)
}
