//! An in-memory store implementing every castore service; for tests and as
//! a scratch store. Reads are verified like any other backend's.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Digest;
use crate::directory::Directory;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService, verify_chunk};
use crate::services::directory::{DirectoryService, DirectoryServiceError, decode_stored};

/// Chunks, chunk maps and directories in hash maps.
#[derive(Default)]
pub struct MemoryStore {
    chunks: RwLock<HashMap<Digest, Bytes>>,
    chunk_maps: RwLock<HashMap<Digest, ChunkMap>>,
    directories: RwLock<HashMap<Digest, (u64, Bytes)>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Replaces a stored chunk's bytes (to test verification).
    pub fn corrupt_chunk(&self, digest: &Digest, data: Bytes) {
        write(&self.chunks).insert(*digest, data);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl ChunkService for MemoryStore {
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        let data = read(&self.chunks).get(digest).cloned();
        match data {
            Some(data) => {
                verify_chunk(digest, &data)?;
                Ok(Some(data))
            }
            None => Ok(None),
        }
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        // A copy: `data` may be a slice of a much larger buffer (see
        // `ChunkService::put_batch`).
        write(&self.chunks)
            .entry(digest)
            .or_insert_with(|| Bytes::copy_from_slice(&data));
        Ok(())
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        Ok(read(&self.chunks).get(digest).map(|d| d.len() as u64))
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        Ok(read(&self.chunks).keys().copied().collect())
    }
}

#[async_trait]
impl BlobService for MemoryStore {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        Ok(read(&self.chunk_maps).get(blob).cloned())
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        write(&self.chunk_maps).insert(blob, map.clone());
        Ok(())
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        Ok(read(&self.chunk_maps).keys().copied().collect())
    }
}

#[async_trait]
impl DirectoryService for MemoryStore {
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        let bytes = read(&self.directories).get(digest).map(|(_, b)| b.clone());
        bytes.map(|b| decode_stored(digest, &b)).transpose()
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        Ok(read(&self.directories).get(digest).map(|(s, _)| *s))
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        write(&self.directories)
            .insert(digest, (directory.size(), Bytes::from(directory.encode())));
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        Ok(read(&self.directories).keys().copied().collect())
    }
}
