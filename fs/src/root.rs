//! What the root directory holds: the [`RootSource`] trait, and
//! [`MemoryRoots`], an in-memory implementation.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;
use cairn_castore::{Name, Node};

use crate::FsError;

/// The entries of the filesystem root (the store paths, named
/// `<hash>-<name>`), each the root node of its tree in the castore.
#[async_trait]
pub trait RootSource: Send + Sync + 'static {
    /// The root node of the entry with this file name, or `None`.
    async fn lookup(&self, name: &[u8]) -> Result<Option<Node>, FsError>;

    /// Every entry, in any order. Only called when listing the root is
    /// enabled ([`crate::FsOptions::list_root`]).
    async fn list(&self) -> Result<Vec<(Name, Node)>, FsError>;
}

/// A root held in memory: a map from name to node.
#[derive(Default)]
pub struct MemoryRoots {
    entries: RwLock<BTreeMap<Name, Node>>,
}

impl MemoryRoots {
    pub fn new() -> MemoryRoots {
        MemoryRoots::default()
    }

    /// A root with these entries (a later duplicate name wins).
    pub fn from_entries(entries: impl IntoIterator<Item = (Name, Node)>) -> MemoryRoots {
        MemoryRoots {
            entries: RwLock::new(entries.into_iter().collect()),
        }
    }

    /// Adds or replaces an entry.
    pub fn insert(&self, name: Name, node: Node) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, node);
    }

    /// Removes an entry; returns whether it existed.
    pub fn remove(&self, name: &Name) -> bool {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some()
    }
}

#[async_trait]
impl RootSource for MemoryRoots {
    async fn lookup(&self, name: &[u8]) -> Result<Option<Node>, FsError> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let Ok(name) = Name::new(bytes::Bytes::copy_from_slice(name)) else {
            return Ok(None);
        };
        Ok(entries.get(&name).cloned())
    }

    async fn list(&self) -> Result<Vec<(Name, Node)>, FsError> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        Ok(entries
            .iter()
            .map(|(n, node)| (n.clone(), node.clone()))
            .collect())
    }
}
