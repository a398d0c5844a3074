//! PathInfo in an object store, next to the castore objects:
//! `<prefix>/pathinfo/<n[0..2]>/<nixbase32 hash>.pathinfo`, in the text form
//! of [`crate::path_info_text`]. A path registered again replaces its
//! object (one atomic put).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{PathInfoError, PathInfoService};
use crate::path_info::PathInfo;
use crate::path_info_text::{from_text, to_text};
use cairn_castore::BackendError;

/// Fetches in flight while listing.
const LIST_CONCURRENCY: usize = 32;

/// PathInfo objects in an object store.
pub struct ObjectStorePathInfoService {
    instance: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    read_only: bool,
}

/// The key of the PathInfo of the store path whose hash part is `hash`.
pub fn path_info_key(prefix: &ObjectPath, digest: &[u8; 20]) -> ObjectPath {
    let hash = crate::nixbase32::encode(digest);
    prefix
        .clone()
        .join("pathinfo")
        .join(&hash[..2])
        .join(format!("{hash}.pathinfo"))
}

impl ObjectStorePathInfoService {
    pub fn new(
        instance: impl Into<String>,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    ) -> Self {
        ObjectStorePathInfoService {
            instance: instance.into(),
            store,
            prefix,
            read_only: false,
        }
    }

    /// Refuses writes (for stores served by plain web servers).
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    fn backend(&self, e: object_store::Error) -> PathInfoError {
        PathInfoError::Backend(BackendError::new(self.instance.clone(), e))
    }

    async fn fetch(&self, key: &ObjectPath) -> Result<Option<PathInfo>, PathInfoError> {
        let bytes = match self.store.get(key).await {
            Ok(result) => result.bytes().await.map_err(|e| self.backend(e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend(e)),
        };
        let corrupt = |reason: String| PathInfoError::Corrupt {
            path: key.to_string(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(e.to_string()))?;
        from_text(text)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }
}

#[async_trait]
impl PathInfoService for ObjectStorePathInfoService {
    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance))]
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError> {
        let key = path_info_key(&self.prefix, digest);
        let info = self.fetch(&key).await?;
        match info {
            // An object under another path's key is not this path's.
            Some(info) if info.store_path.digest() != digest => Err(PathInfoError::Corrupt {
                path: key.to_string(),
                reason: format!("holds {}", info.store_path.to_base_name()),
            }),
            other => Ok(other),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(store = %self.instance, path = %info.store_path.to_base_name()))]
    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError> {
        if self.read_only {
            return Err(PathInfoError::Backend(BackendError::new(
                self.instance.clone(),
                cairn_castore::backends::objectstore::ReadOnlyStore,
            )));
        }
        let text = to_text(&info).map_err(|e| PathInfoError::Corrupt {
            path: info.store_path.to_base_name(),
            reason: e.to_string(),
        })?;
        let key = path_info_key(&self.prefix, info.store_path.digest());
        self.store
            .put(&key, PutPayload::from_bytes(Bytes::from(text)))
            .await
            .map(drop)
            .map_err(|e| self.backend(e))
    }

    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError> {
        let dir = self.prefix.clone().join("pathinfo");
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(&dir))
            .map_ok(|meta| meta.location)
            .try_filter(|k| futures::future::ready(k.as_ref().ends_with(".pathinfo")))
            .try_collect()
            .await
            .map_err(|e| self.backend(e))?;
        let mut all: Vec<PathInfo> = futures::stream::iter(keys)
            .map(|key| async move { self.fetch(&key).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_filter_map(|info| futures::future::ready(Ok(info)))
            .try_collect()
            .await?;
        all.sort_by(|a, b| a.store_path.cmp(&b.store_path));
        Ok(all)
    }
}
