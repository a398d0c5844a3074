//! [`CaStore`]: the castore services a command works with, bundled.

use std::path::Path;
use std::sync::Arc;

use crate::backends::{LocalStore, LocalStoreError, MemoryStore};
use crate::{BlobService, ChunkerConfig, DirectoryService};

/// The blob and directory services of one store, and how it chunks.
#[derive(Clone)]
pub struct CaStore {
    pub blobs: Arc<dyn BlobService>,
    pub directories: Arc<dyn DirectoryService>,
    pub chunker: ChunkerConfig,
}

impl CaStore {
    pub fn new(
        blobs: Arc<dyn BlobService>,
        directories: Arc<dyn DirectoryService>,
        chunker: ChunkerConfig,
    ) -> CaStore {
        CaStore {
            blobs,
            directories,
            chunker,
        }
    }

    /// A fresh in-memory store.
    pub fn memory() -> CaStore {
        let store = Arc::new(MemoryStore::new());
        CaStore::new(store.clone(), store, ChunkerConfig::default())
    }

    /// The embedded local store under `dir`.
    pub fn local(dir: impl AsRef<Path>) -> Result<CaStore, LocalStoreError> {
        let store = Arc::new(LocalStore::open(dir)?);
        Ok(CaStore::new(store.clone(), store, ChunkerConfig::default()))
    }
}
