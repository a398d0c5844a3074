//! PathInfoService: PathInfo by store path, with memory, sqlite and object
//! store backends, and the castore combinators over it.

pub mod combinators;
pub mod memory;
pub mod objectstore;
pub mod sqlite;

use async_trait::async_trait;

use crate::path_info::PathInfo;
use crate::store_path::StorePath;

pub use memory::MemoryPathInfoService;
pub use objectstore::ObjectStorePathInfoService;
pub use sqlite::SqlitePathInfoService;

/// Errors of a [`PathInfoService`].
#[derive(Debug, thiserror::Error)]
pub enum PathInfoError {
    #[error("path info database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("path info database {path} has schema version {found}, this cairn knows up to {known}")]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("stored path info for {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{0}")]
    Backend(#[from] cairn_castore::BackendError),
    #[error("{0}")]
    BinaryCache(std::sync::Arc<crate::binary_cache::BinaryCacheError>),
}

/// PathInfo by store path.
#[async_trait]
pub trait PathInfoService: Send + Sync + 'static {
    /// The PathInfo of the store path whose hash part is `digest`.
    async fn get(&self, digest: &[u8; 20]) -> Result<Option<PathInfo>, PathInfoError>;

    /// Registers a path (replacing an earlier registration of the same path).
    async fn put(&self, info: PathInfo) -> Result<(), PathInfoError>;

    /// Every registered path, sorted by store path.
    async fn list(&self) -> Result<Vec<PathInfo>, PathInfoError>;

    /// Looks a store path up, checking the name too.
    async fn get_path(&self, path: &StorePath) -> Result<Option<PathInfo>, PathInfoError> {
        Ok(self
            .get(path.digest())
            .await?
            .filter(|info| info.store_path == *path))
    }
}
