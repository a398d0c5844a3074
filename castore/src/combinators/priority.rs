//! [`PriorityStore`]: stores asked in order of priority.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{first_in_order, union};
use crate::Digest;
use crate::directory::Directory;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService};
use crate::services::directory::{DirectoryService, DirectoryServiceError};

/// Reads ask each member in order and take the first that has the object
/// (a failing member is passed over). Writes go to the first member.
/// Listing merges every member's list.
pub struct PriorityStore<T: ?Sized> {
    instance: String,
    members: Vec<Arc<T>>,
}

impl<T: ?Sized> PriorityStore<T> {
    /// `members` must not be empty (composition checks this).
    pub fn new(instance: impl Into<String>, members: Vec<Arc<T>>) -> Self {
        PriorityStore {
            instance: instance.into(),
            members,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn members(&self) -> &[Arc<T>] {
        &self.members
    }

    /// The member writes go to.
    pub fn writer(&self) -> Option<&Arc<T>> {
        self.members.first()
    }
}

fn no_members(instance: &str) -> crate::BackendError {
    crate::BackendError::new(instance, "a store list without members")
}

#[async_trait]
impl ChunkService for PriorityStore<dyn BlobService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        first_in_order(self.members.iter(), |m| m.chunks().get(digest)).await
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        let writer = self.writer().ok_or_else(|| no_members(&self.instance))?;
        writer.chunks().put(digest, data).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        first_in_order(self.members.iter(), |m| m.chunks().size(digest)).await
    }

    async fn puts_paused(&self) {
        for m in &self.members {
            m.chunks().puts_paused().await;
        }
    }

    async fn flush(&self) -> Result<(), ChunkError> {
        for m in &self.members {
            m.chunks().flush().await?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        let mut lists = Vec::new();
        for m in &self.members {
            lists.push(m.chunks().list().await?);
        }
        Ok(union(lists))
    }
}

#[async_trait]
impl BlobService for PriorityStore<dyn BlobService> {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        first_in_order(self.members.iter(), |m| m.stored_chunk_map(blob)).await
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        let writer = self.writer().ok_or_else(|| no_members(&self.instance))?;
        writer.put_chunk_map(blob, map).await
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        let mut lists = Vec::new();
        for m in &self.members {
            lists.push(m.list_chunk_maps().await?);
        }
        Ok(union(lists))
    }
}

#[async_trait]
impl DirectoryService for PriorityStore<dyn DirectoryService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        first_in_order(self.members.iter(), |m| m.get(digest)).await
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        first_in_order(self.members.iter(), |m| m.size_of(digest)).await
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        let writer = self.writer().ok_or_else(|| no_members(&self.instance))?;
        writer.put_checked(digest, directory).await
    }

    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        for m in &self.members {
            m.flush().await?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        let mut lists = Vec::new();
        for m in &self.members {
            lists.push(m.list().await?);
        }
        Ok(union(lists))
    }
}
