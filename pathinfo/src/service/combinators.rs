//! The castore combinators over PathInfo services: cache (near/far with
//! write-back), priority list, race and negative cache.

use async_trait::async_trait;
use cairn_castore::combinators::cache::log_write_back_failure;
use cairn_castore::combinators::{
    CacheStore, MissKind, NegativeCache, PriorityStore, RaceStore, first_in_order, race_first,
};
use futures::future::try_join_all;

use super::{PathInfoError, PathInfoService};
use crate::path_info::PathInfo;

/// Merges listings: each store path once, first member's entry kept, sorted.
fn merge(lists: Vec<Vec<PathInfo>>) -> Vec<PathInfo> {
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<PathInfo> = lists
        .into_iter()
        .flatten()
        .filter(|i| seen.insert(*i.store_path.digest()))
        .collect();
    all.sort_by(|a, b| a.store_path.cmp(&b.store_path));
    all
}

#[async_trait]
impl PathInfoService for CacheStore<dyn PathInfoService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance()))]
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        match self.near().get(digest).await {
            Ok(Some(info)) => return Ok(Some(info)),
            Ok(None) => {}
            Err(e) => tracing::warn!(store = %self.instance(), "near store failed: {e}"),
        }
        let Some(info) = self.far().get(digest).await? else {
            return Ok(None);
        };
        if let Err(e) = self.near().put(info.clone()).await {
            log_write_back_failure(self.instance(), "a path info", &e);
        }
        Ok(Some(info))
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        self.far().put(info.clone()).await?;
        self.near().put(info).await
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        self.far().list().await
    }
}

#[async_trait]
impl PathInfoService for PriorityStore<dyn PathInfoService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance()))]
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        first_in_order(self.members().iter(), |m| m.get(digest)).await
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        match self.writer() {
            Some(writer) => writer.put(info).await,
            None => Err(PathInfoError::Backend(cairn_castore::BackendError::new(
                self.instance(),
                "a store list without members",
            ))),
        }
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        let mut lists = Vec::new();
        for m in self.members() {
            lists.push(m.list().await?);
        }
        Ok(merge(lists))
    }
}

#[async_trait]
impl PathInfoService for RaceStore<dyn PathInfoService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance()))]
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        race_first(self.members().iter().map(|m| m.get(digest))).await
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        try_join_all(self.members().iter().map(|m| m.put(info.clone()))).await?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        Ok(merge(
            try_join_all(self.members().iter().map(|m| m.list())).await?,
        ))
    }
}

#[async_trait]
impl PathInfoService for NegativeCache<dyn PathInfoService> {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance()))]
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        if self.known_missing(MissKind::PathInfo, digest) {
            return Ok(None);
        }
        let answer = self.inner().get(digest).await;
        self.remember(MissKind::PathInfo, digest, answer)
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        let digest = *info.store_path.digest();
        self.inner().put(info).await?;
        self.forget(MissKind::PathInfo, &digest);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        self.inner().list().await
    }
}
