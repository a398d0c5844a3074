//! Which store a command works on, and opening it.
//!
//! `--store CONFIG_FILE_OR_URL` names a composition: a URL (anything with
//! `://`, see `cairn_castore::composition::url`) or a TOML file of named
//! stores. Without it, the embedded local store in `--store-dir` (default
//! `$XDG_DATA_HOME/cairn`). Every command opens its store through
//! [`StoreLocation::open_store`] (or [`StoreLocation::open`] for content
//! only), so all of them accept the same stores.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cairn_castore::CaStore;
use cairn_castore::composition::{BuildContext, Composition, build};
use cairn_pathinfo::composition::instantiate;
use cairn_pathinfo::{PathInfoService, StoreDir};

/// A whole store: content, paths, and the store directory paths live under.
pub struct Store {
    pub castore: CaStore,
    pub paths: Arc<dyn PathInfoService>,
    pub store_dir: StoreDir,
}

/// The store a command works on.
pub struct StoreLocation {
    /// The embedded local store's directory (the default store, and the
    /// directory of `local://` stores without a path).
    pub dir: PathBuf,
    /// `--store`: a composition config file or URL.
    pub store: Option<String>,
}

impl StoreLocation {
    /// `--store-dir`, else `$XDG_DATA_HOME/cairn`, else `~/.local/share/cairn`.
    pub fn new(explicit: Option<PathBuf>, store: Option<String>) -> anyhow::Result<StoreLocation> {
        let dir = match explicit {
            Some(dir) => dir,
            None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
                Some(data) => PathBuf::from(data).join("cairn"),
                None => {
                    let home = std::env::var_os("HOME")
                        .context("neither --store-dir, XDG_DATA_HOME nor HOME is set")?;
                    PathBuf::from(home).join(".local/share/cairn")
                }
            },
        };
        Ok(StoreLocation { dir, store })
    }

    /// The composition `--store` names (a URL if it contains `://`, else a
    /// TOML file), or the embedded local store.
    pub fn composition(&self) -> anyhow::Result<Composition> {
        match self.store.as_deref() {
            None => Ok(Composition::from_url("local://")?),
            Some(spec) if spec.contains("://") => Composition::from_url(spec)
                .with_context(|| format!("reading the store URL {spec:?}")),
            Some(file) => Composition::from_file(file.as_ref())
                .with_context(|| format!("reading the store configuration {file:?}")),
        }
    }

    fn context(&self) -> BuildContext {
        BuildContext {
            default_local_dir: Some(self.dir.clone()),
        }
    }

    /// What the store is, for messages and the mount's source name.
    pub fn describe(&self) -> String {
        match &self.store {
            Some(spec) => spec.clone(),
            None => self.dir.display().to_string(),
        }
    }

    /// The content-addressed part only.
    pub fn open(&self) -> anyhow::Result<CaStore> {
        let composition = self.composition()?;
        let built = build(&composition, &self.context())
            .with_context(|| format!("opening the store {}", self.describe()))?;
        Ok(built.root()?)
    }

    /// Content and store paths: the one function every command (and every
    /// front end serving the store) opens a store with.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let composition = self.composition()?;
        let store = instantiate(&composition, &self.context())
            .with_context(|| format!("opening the store {}", self.describe()))?;
        Ok(Store {
            castore: store.castore,
            paths: store.paths,
            store_dir: StoreDir::default(),
        })
    }
}
