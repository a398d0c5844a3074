//! The inode table: inode numbers handed to the kernel, each with the node it
//! stands for and its lookup count.
//!
//! An inode lives while the kernel references it (its lookup count is above
//! zero) and is released when the kernel forgets it, so memory follows what
//! the kernel caches, not the size of the store. Looking the same name up in
//! the same directory again while the inode lives returns the same number.
//! Numbers are never reused (a 64-bit counter does not wrap).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_castore::{Name, Node};

/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;

/// What an inode stands for.
#[derive(Clone, Debug)]
pub enum InodeData {
    /// The root directory (the store paths).
    Root,
    /// A node inside a store path.
    Node {
        node: Node,
        /// The store path (root entry) this node belongs to, for messages.
        store_path: Name,
        parent: u64,
    },
}

impl InodeData {
    /// Inode of the parent directory (the root's parent is itself).
    pub fn parent(&self) -> u64 {
        match self {
            InodeData::Root => ROOT_INO,
            InodeData::Node { parent, .. } => *parent,
        }
    }
}

struct Entry {
    data: InodeData,
    name: Option<Name>,
    nlookup: u64,
}

#[derive(Default)]
struct Tables {
    by_ino: HashMap<u64, Entry>,
    by_name: HashMap<(u64, Name), u64>,
}

/// Inodes currently referenced by the kernel.
pub struct InodeTable {
    tables: Mutex<Tables>,
    next: AtomicU64,
}

impl Default for InodeTable {
    fn default() -> Self {
        InodeTable::new()
    }
}

impl InodeTable {
    pub fn new() -> InodeTable {
        InodeTable {
            tables: Mutex::new(Tables::default()),
            next: AtomicU64::new(ROOT_INO + 1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `ino` stands for, if it is live.
    pub fn get(&self, ino: u64) -> Option<InodeData> {
        if ino == ROOT_INO {
            return Some(InodeData::Root);
        }
        self.lock().by_ino.get(&ino).map(|e| e.data.clone())
    }

    /// The inode of `name` in `parent` if it is live (no reference taken).
    pub fn peek(&self, parent: u64, name: &Name) -> Option<u64> {
        self.lock().by_name.get(&(parent, name.clone())).copied()
    }

    /// Records one kernel reference to `name` in `parent`, which is `node`:
    /// returns its inode, the existing one if the name is live with the same node.
    pub fn lookup(&self, parent: u64, name: &Name, node: &Node, store_path: &Name) -> u64 {
        let mut tables = self.lock();
        let key = (parent, name.clone());
        if let Some(&ino) = tables.by_name.get(&key)
            && let Some(entry) = tables.by_ino.get_mut(&ino)
            && matches!(&entry.data, InodeData::Node { node: n, .. } if n == node)
        {
            entry.nlookup += 1;
            return ino;
        }
        let ino = self.next.fetch_add(1, Ordering::Relaxed);
        tables.by_ino.insert(
            ino,
            Entry {
                data: InodeData::Node {
                    node: node.clone(),
                    store_path: store_path.clone(),
                    parent,
                },
                name: Some(name.clone()),
                nlookup: 1,
            },
        );
        tables.by_name.insert(key, ino);
        ino
    }

    /// Drops `n` kernel references to `ino`; the inode is released at zero.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut tables = self.lock();
        let Some(entry) = tables.by_ino.get_mut(&ino) else {
            return;
        };
        entry.nlookup = entry.nlookup.saturating_sub(n);
        if entry.nlookup > 0 {
            return;
        }
        let Some(entry) = tables.by_ino.remove(&ino) else {
            return;
        };
        if let Some(name) = entry.name {
            let key = (entry.data.parent(), name);
            if tables.by_name.get(&key) == Some(&ino) {
                tables.by_name.remove(&key);
            }
        }
    }

    /// Number of live inodes besides the root.
    pub fn len(&self) -> usize {
        self.lock().by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_castore::Digest;

    fn file(byte: u8) -> Node {
        Node::File {
            digest: Digest::of(&[byte]),
            size: 1,
            executable: false,
        }
    }

    fn name(s: &str) -> Name {
        Name::try_from(s).expect("valid name")
    }

    #[test]
    fn same_name_same_inode_until_forgotten() {
        let table = InodeTable::new();
        let sp = name("sp");
        let a = table.lookup(ROOT_INO, &name("a"), &file(1), &sp);
        let again = table.lookup(ROOT_INO, &name("a"), &file(1), &sp);
        assert_eq!(a, again);
        let b = table.lookup(ROOT_INO, &name("b"), &file(1), &sp);
        assert_ne!(a, b);
        table.forget(a, 1);
        assert!(table.get(a).is_some(), "one reference is left");
        table.forget(a, 1);
        assert!(table.get(a).is_none());
        assert_eq!(table.peek(ROOT_INO, &name("a")), None);
        let fresh = table.lookup(ROOT_INO, &name("a"), &file(1), &sp);
        assert_ne!(fresh, a, "numbers are not reused");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn changed_node_gets_new_inode_and_old_forget_keeps_index() {
        let table = InodeTable::new();
        let sp = name("sp");
        let old = table.lookup(ROOT_INO, &name("a"), &file(1), &sp);
        let new = table.lookup(ROOT_INO, &name("a"), &file(2), &sp);
        assert_ne!(old, new);
        table.forget(old, 1);
        assert_eq!(table.peek(ROOT_INO, &name("a")), Some(new));
        table.forget(new, 1);
        assert!(table.is_empty());
        assert!(table.get(ROOT_INO).is_some(), "the root is never forgotten");
    }
}
