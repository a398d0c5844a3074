//! Instantiating the castore services of a [`Composition`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use super::config::{Composition, CompositionError, Compression, StoreKind};
use crate::backends::objectstore::{ObjectStoreBackend, is_read_only_url, open_url};
use crate::backends::{LocalStore, LocalStoreOptions, MemoryStore};
use crate::combinators::{CacheStore, NegativeCache, PriorityStore, RaceStore};
use crate::{BlobService, CaStore, ChunkerConfig, DirectoryService};

/// What the builders need from outside the configuration.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Where a `local` store without a path lives.
    pub default_local_dir: Option<PathBuf>,
}

/// One instantiated store.
#[derive(Clone)]
pub struct BuiltStore {
    pub blobs: Arc<dyn BlobService>,
    pub directories: Arc<dyn DirectoryService>,
    /// The object store and prefix of an `objectstore` store (PathInfo is
    /// kept next to the content).
    pub object_store: Option<(Arc<dyn ObjectStore>, ObjectPath)>,
    /// Writes are refused (plain HTTP object stores).
    pub read_only: bool,
    /// The directory of a `local` store.
    pub local_dir: Option<PathBuf>,
}

/// Every store of a composition, instantiated once each.
pub struct BuiltStores {
    pub composition: Composition,
    pub stores: HashMap<String, BuiltStore>,
    pub chunker: ChunkerConfig,
}

impl BuiltStores {
    /// The store built for `alias`.
    pub fn get(&self, alias: &str) -> Option<&BuiltStore> {
        self.stores.get(alias)
    }

    /// The castore services of the root store.
    pub fn root(&self) -> Result<CaStore, CompositionError> {
        let root = self
            .stores
            .get(&self.composition.root)
            .ok_or_else(|| CompositionError::UnknownRoot(self.composition.root.clone()))?;
        Ok(CaStore::new(
            root.blobs.clone(),
            root.directories.clone(),
            self.chunker,
        ))
    }
}

fn open_err(alias: &str, e: impl std::error::Error + Send + Sync + 'static) -> CompositionError {
    CompositionError::Open {
        alias: alias.to_string(),
        source: Box::new(e),
    }
}

/// Instantiates every store of `composition`, each after the stores it
/// refers to, each once (a store referred to twice is shared).
pub fn build(
    composition: &Composition,
    context: &BuildContext,
) -> Result<BuiltStores, CompositionError> {
    composition.validate()?;
    let chunker = composition.chunker()?;
    let mut stores: HashMap<String, BuiltStore> = HashMap::new();
    for alias in composition.topological_order()? {
        let kind = &composition.stores[alias];
        let member = |name: &str| -> Result<BuiltStore, CompositionError> {
            stores
                .get(name)
                .cloned()
                .ok_or_else(|| CompositionError::UnknownAlias {
                    from: alias.to_string(),
                    to: name.to_string(),
                    defined: composition
                        .stores
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        let built = match kind {
            StoreKind::Local { path, compression } => {
                let dir = path
                    .clone()
                    .or_else(|| context.default_local_dir.clone())
                    .ok_or_else(|| CompositionError::Open {
                        alias: alias.to_string(),
                        source: "a local store without a path, and no default store directory"
                            .into(),
                    })?;
                let options = LocalStoreOptions {
                    compress: *compression == Compression::Zstd,
                };
                let store =
                    Arc::new(LocalStore::open_with(&dir, options).map_err(|e| open_err(alias, e))?);
                BuiltStore {
                    blobs: store.clone(),
                    directories: store,
                    object_store: None,
                    read_only: false,
                    local_dir: Some(dir),
                }
            }
            StoreKind::Memory {} => {
                let store = Arc::new(MemoryStore::new());
                BuiltStore {
                    blobs: store.clone(),
                    directories: store,
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
            StoreKind::Objectstore { url, options, .. } => {
                let remote = kind.remote().unwrap_or_default().options();
                let options: Vec<(String, String)> = options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let (object_store, prefix) =
                    open_url(url, &options, &remote).map_err(|e| open_err(alias, e))?;
                let read_only = is_read_only_url(url);
                let backend = Arc::new(
                    ObjectStoreBackend::new(alias, object_store.clone(), prefix.clone())
                        .with_read_only(read_only),
                );
                BuiltStore {
                    blobs: backend.clone(),
                    directories: backend,
                    object_store: Some((object_store, prefix)),
                    read_only,
                    local_dir: None,
                }
            }
            StoreKind::Cache { near, far } => {
                let (near, far) = (member(near)?, member(far)?);
                BuiltStore {
                    blobs: Arc::new(CacheStore::new(alias, near.blobs, far.blobs)),
                    directories: Arc::new(CacheStore::new(
                        alias,
                        near.directories,
                        far.directories,
                    )),
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
            StoreKind::Priority { stores: names } => {
                let members = names
                    .iter()
                    .map(|n| member(n))
                    .collect::<Result<Vec<_>, _>>()?;
                BuiltStore {
                    blobs: Arc::new(PriorityStore::new(
                        alias,
                        members.iter().map(|m| m.blobs.clone()).collect(),
                    )),
                    directories: Arc::new(PriorityStore::new(
                        alias,
                        members.iter().map(|m| m.directories.clone()).collect(),
                    )),
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
            StoreKind::Race { stores: names } => {
                let members = names
                    .iter()
                    .map(|n| member(n))
                    .collect::<Result<Vec<_>, _>>()?;
                BuiltStore {
                    blobs: Arc::new(RaceStore::new(
                        alias,
                        members.iter().map(|m| m.blobs.clone()).collect(),
                    )),
                    directories: Arc::new(RaceStore::new(
                        alias,
                        members.iter().map(|m| m.directories.clone()).collect(),
                    )),
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
            StoreKind::NegativeCache { inner, ttl_ms } => {
                let inner = member(inner)?;
                let ttl = Duration::from_millis(*ttl_ms);
                BuiltStore {
                    blobs: Arc::new(NegativeCache::new(alias, inner.blobs, ttl)),
                    directories: Arc::new(NegativeCache::new(alias, inner.directories, ttl)),
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
            StoreKind::BinaryCache { content, .. } => {
                let (blobs, directories): (Arc<dyn BlobService>, Arc<dyn DirectoryService>) =
                    match content {
                        Some(content) => {
                            let content = member(content)?;
                            (content.blobs, content.directories)
                        }
                        None => {
                            let store = Arc::new(MemoryStore::new());
                            (store.clone(), store)
                        }
                    };
                BuiltStore {
                    blobs,
                    directories,
                    object_store: None,
                    read_only: false,
                    local_dir: None,
                }
            }
        };
        stores.insert(alias.to_string(), built);
    }
    Ok(BuiltStores {
        composition: composition.clone(),
        stores,
        chunker,
    })
}
