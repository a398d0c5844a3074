//! Instantiating a whole store from a composition: the castore services
//! (built by `cairn_castore::composition::build`) and, over the same graph,
//! the PathInfo services — the embedded path database for `local` stores,
//! PathInfo objects next to the content for `objectstore` stores, the same
//! combinators for `cache`, `priority`, `race` and `negative-cache`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_castore::CaStore;
use cairn_castore::combinators::{CacheStore, NegativeCache, PriorityStore, RaceStore};
use cairn_castore::composition::{
    BuildContext, BuiltStores, Composition, CompositionError, StoreKind, build,
};

use crate::PathInfoService;
use crate::service::objectstore::ObjectStorePathInfoService;
use crate::service::{MemoryPathInfoService, SqlitePathInfoService};

/// A store ready to use: content and store paths.
pub struct InstantiatedStore {
    pub castore: CaStore,
    pub paths: Arc<dyn PathInfoService>,
    /// Every store of the composition, by alias.
    pub built: BuiltStores,
}

/// The file of the path database inside a local store's directory.
pub const PATH_DATABASE: &str = "pathinfo.sqlite";

/// Builds every store of `composition` (each once, in dependency order) and
/// returns the root's services.
pub fn instantiate(
    composition: &Composition,
    context: &BuildContext,
) -> Result<InstantiatedStore, CompositionError> {
    let built = build(composition, context)?;
    let mut paths: HashMap<&str, Arc<dyn PathInfoService>> = HashMap::new();
    for alias in composition.topological_order()? {
        let kind = &composition.stores[alias];
        let store = built
            .get(alias)
            .ok_or_else(|| CompositionError::UnknownRoot(alias.to_string()))?;
        let member = |name: &str| -> Result<Arc<dyn PathInfoService>, CompositionError> {
            paths
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
        let open_err = |e: crate::PathInfoError| CompositionError::Open {
            alias: alias.to_string(),
            source: Box::new(e),
        };
        let service: Arc<dyn PathInfoService> = match kind {
            StoreKind::Local { .. } => {
                let dir = store
                    .local_dir
                    .as_ref()
                    .ok_or(CompositionError::Unsupported {
                        alias: alias.to_string(),
                        kind: "local",
                        what: "path info without a directory",
                    })?;
                Arc::new(SqlitePathInfoService::open(dir.join(PATH_DATABASE)).map_err(open_err)?)
            }
            StoreKind::Memory {} => Arc::new(MemoryPathInfoService::new()),
            StoreKind::Objectstore { .. } => {
                let (object_store, prefix) =
                    store
                        .object_store
                        .clone()
                        .ok_or(CompositionError::Unsupported {
                            alias: alias.to_string(),
                            kind: "objectstore",
                            what: "path info without an object store",
                        })?;
                Arc::new(
                    ObjectStorePathInfoService::new(alias, object_store, prefix)
                        .with_read_only(store.read_only),
                )
            }
            StoreKind::Cache { near, far } => {
                Arc::new(CacheStore::new(alias, member(near)?, member(far)?))
            }
            StoreKind::Priority { stores } => Arc::new(PriorityStore::new(
                alias,
                stores
                    .iter()
                    .map(|s| member(s))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            StoreKind::Race { stores } => Arc::new(RaceStore::new(
                alias,
                stores
                    .iter()
                    .map(|s| member(s))
                    .collect::<Result<Vec<_>, _>>()?,
            )),
            StoreKind::NegativeCache { inner, ttl_ms } => Arc::new(NegativeCache::new(
                alias,
                member(inner)?,
                Duration::from_millis(*ttl_ms),
            )),
            StoreKind::BinaryCache {
                url,
                trusted_public_keys,
                require_sigs,
                negative_ttl_ms,
                ..
            } => crate::binary_cache::open_in_composition(
                alias,
                url,
                trusted_public_keys,
                *require_sigs,
                Duration::from_millis(*negative_ttl_ms),
                CaStore::new(
                    store.blobs.clone(),
                    store.directories.clone(),
                    built.chunker,
                ),
            )?,
        };
        paths.insert(alias, service);
    }
    let root = paths
        .get(composition.root.as_str())
        .cloned()
        .ok_or_else(|| CompositionError::UnknownRoot(composition.root.clone()))?;
    Ok(InstantiatedStore {
        castore: built.root()?,
        paths: root,
        built,
    })
}
