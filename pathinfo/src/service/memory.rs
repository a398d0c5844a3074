//! An in-memory PathInfoService.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;

use super::{PathInfoError, PathInfoService};
use crate::path_info::PathInfo;

/// PathInfo in a map, by store path digest.
#[derive(Default)]
pub struct MemoryPathInfoService {
    paths: RwLock<BTreeMap<[u8; 20], PathInfo>>,
}

impl MemoryPathInfoService {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PathInfoService for MemoryPathInfoService {
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        let paths = self.paths.read().unwrap_or_else(|p| p.into_inner());
        Ok(paths.get(digest).cloned())
    }

    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        let mut paths = self.paths.write().unwrap_or_else(|p| p.into_inner());
        paths.insert(*info.store_path.digest(), info);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        let paths = self.paths.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<PathInfo> = paths.values().cloned().collect();
        all.sort_by(|a, b| a.store_path.cmp(&b.store_path));
        Ok(all)
    }
}
