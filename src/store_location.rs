//! Where the embedded local store lives, and opening it.

use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use cairn_castore::CaStore;
use cairn_pathinfo::service::SqlitePathInfoService;
use cairn_pathinfo::{PathInfoService, StoreDir};

/// A whole store: content, paths, and the store directory paths live under.
pub struct Store {
    pub castore: CaStore,
    pub paths: Arc<dyn PathInfoService>,
    pub store_dir: StoreDir,
}

/// The store a command works on.
pub struct StoreLocation {
    pub dir: PathBuf,
}

impl StoreLocation {
    /// `--store-dir`, else `$XDG_DATA_HOME/cairn`, else `~/.local/share/cairn`.
    pub fn new(explicit: Option<PathBuf>) -> anyhow::Result<StoreLocation> {
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
        Ok(StoreLocation { dir })
    }

    /// The content-addressed part only.
    pub fn open(&self) -> anyhow::Result<CaStore> {
        CaStore::local(&self.dir)
            .with_context(|| format!("opening the store at {}", self.dir.display()))
    }

    /// Content and store paths.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let castore = self.open()?;
        let paths = SqlitePathInfoService::open(self.dir.join("pathinfo.sqlite"))
            .with_context(|| format!("opening the path database in {}", self.dir.display()))?;
        Ok(Store {
            castore,
            paths: Arc::new(paths),
            store_dir: StoreDir::default(),
        })
    }
}
