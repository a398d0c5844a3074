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
    /// Every store of the composition, by alias: content ...
    pub built: BuiltStores,
    /// ... and paths.
    pub paths_by_alias: HashMap<String, Arc<dyn PathInfoService>>,
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
    let mut paths: HashMap<String, Arc<dyn PathInfoService>> = HashMap::new();
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
        paths.insert(alias.to_string(), service);
    }
    let root = paths
        .get(&composition.root)
        .cloned()
        .ok_or_else(|| CompositionError::UnknownRoot(composition.root.clone()))?;
    Ok(InstantiatedStore {
        castore: built.root()?,
        paths: root,
        built,
        paths_by_alias: paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path_info::PathInfo;
    use crate::store_path::StorePath;
    use cairn_castore::composition::StoreKind;
    use cairn_castore::{Digest, Node};

    fn info(seed: u8) -> PathInfo {
        PathInfo {
            store_path: StorePath::from_parts([seed; 20], "hello").expect("valid"),
            node: Node::File {
                digest: Digest::of(&[seed]),
                size: 1,
                executable: false,
            },
            references: vec![],
            nar_size: 120,
            nar_sha256: [seed; 32],
            signatures: vec![],
            deriver: None,
            ca: None,
            registration_time: 1,
        }
    }

    #[tokio::test]
    async fn a_cached_object_store_keeps_paths_on_both_sides_and_writes_back() {
        let composition =
            Composition::from_url("objectstore+memory:///?cache=memory%3A%2F%2F").expect("valid");
        assert!(matches!(
            composition.stores["main-far"],
            StoreKind::Objectstore { .. }
        ));
        let store = instantiate(&composition, &BuildContext::default()).expect("builds");
        store.paths.put(info(1)).await.expect("put");
        assert_eq!(store.paths.get(&[1; 20]).await.expect("get"), Some(info(1)));

        // A path only the far side has is written back to near when read.
        let far_paths = ObjectStorePathInfoService::new(
            "far",
            store
                .built
                .get("main-far")
                .and_then(|b| b.object_store.clone())
                .expect("object store")
                .0,
            Default::default(),
        );
        far_paths.put(info(2)).await.expect("put far");
        let listed = store.paths.list().await.expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(
            store.paths_by_alias["main-near"]
                .get(&[2; 20])
                .await
                .expect("near"),
            None
        );
        assert_eq!(store.paths.get(&[2; 20]).await.expect("get"), Some(info(2)));
        let near = &store.paths_by_alias["main-near"];
        assert_eq!(near.get(&[2; 20]).await.expect("near"), Some(info(2)));
        assert_eq!(near.get(&[1; 20]).await.expect("near"), Some(info(1)));
    }

    #[test]
    fn an_http_store_refuses_writes() {
        let composition = Composition::from_url("objectstore+http://127.0.0.1:9/").expect("valid");
        let store = instantiate(&composition, &BuildContext::default()).expect("builds");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let err = runtime
            .block_on(store.paths.put(info(3)))
            .expect_err("read-only");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
}
