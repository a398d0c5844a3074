//! [`RaceStore`]: stores asked at once, the first answer wins.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::{join_all, try_join_all};

use super::{race_first, union};
use crate::Digest;
use crate::directory::Directory;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkService};
use crate::services::directory::{DirectoryService, DirectoryServiceError};

/// Reads ask every member at once; the first to answer with the object
/// wins and the other requests are dropped. An object is missing when every
/// member says so. Writes go to every member.
pub struct RaceStore<T: ?Sized> {
    instance: String,
    members: Vec<Arc<T>>,
}

impl<T: ?Sized> RaceStore<T> {
    pub fn new(instance: impl Into<String>, members: Vec<Arc<T>>) -> Self {
        RaceStore {
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
}

#[async_trait]
impl ChunkService for RaceStore<dyn BlobService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        race_first(self.members.iter().map(|m| m.chunks().get(digest))).await
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        try_join_all(
            self.members
                .iter()
                .map(|m| m.chunks().put(digest, data.clone())),
        )
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, chunk = %digest))]
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        race_first(self.members.iter().map(|m| m.chunks().size(digest))).await
    }

    async fn puts_paused(&self) {
        join_all(self.members.iter().map(|m| m.chunks().puts_paused())).await;
    }

    async fn flush(&self) -> Result<(), ChunkError> {
        try_join_all(self.members.iter().map(|m| m.chunks().flush())).await?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        Ok(union(
            try_join_all(self.members.iter().map(|m| m.chunks().list())).await?,
        ))
    }
}

#[async_trait]
impl BlobService for RaceStore<dyn BlobService> {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, blob = %blob))]
    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        race_first(self.members.iter().map(|m| m.stored_chunk_map(blob))).await
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        try_join_all(self.members.iter().map(|m| m.put_chunk_map(blob, map))).await?;
        Ok(())
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        Ok(union(
            try_join_all(self.members.iter().map(|m| m.list_chunk_maps())).await?,
        ))
    }
}

#[async_trait]
impl DirectoryService for RaceStore<dyn DirectoryService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, directory = %digest))]
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        race_first(self.members.iter().map(|m| m.get(digest))).await
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        race_first(self.members.iter().map(|m| m.size_of(digest))).await
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        try_join_all(
            self.members
                .iter()
                .map(|m| m.put_checked(digest, directory)),
        )
        .await?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        try_join_all(self.members.iter().map(|m| m.flush())).await?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        Ok(union(
            try_join_all(self.members.iter().map(|m| m.list())).await?,
        ))
    }
}
