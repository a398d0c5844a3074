//! Where the embedded local store lives, and opening it.

use std::path::PathBuf;

use anyhow::Context;
use cairn_castore::CaStore;

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

    pub fn open(&self) -> anyhow::Result<CaStore> {
        CaStore::local(&self.dir)
            .with_context(|| format!("opening the store at {}", self.dir.display()))
    }
}
