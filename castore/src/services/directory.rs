//! DirectoryService: directories by digest, and whole closures.

use std::collections::{HashSet, VecDeque};

use async_trait::async_trait;

use super::BackendError;
use crate::directory::{Directory, DirectoryError};
use crate::{Digest, Name};

/// Errors of a [`DirectoryService`].
#[derive(Debug, thiserror::Error)]
pub enum DirectoryServiceError {
    #[error("directory {digest} is corrupt: {source}")]
    Corrupt {
        digest: Digest,
        #[source]
        source: DirectoryError,
    },
    #[error("directory {digest} failed verification: its bytes hash to {actual}")]
    DigestMismatch { digest: Digest, actual: Digest },
    #[error("refusing directory {parent}: child directory {name:?} ({child}) is not in the store")]
    MissingChild {
        parent: Digest,
        name: Name,
        child: Digest,
    },
    #[error(
        "refusing directory {parent}: child {name:?} claims size {claimed}, the stored directory has {actual}"
    )]
    ChildSize {
        parent: Digest,
        name: Name,
        claimed: u64,
        actual: u64,
    },
    #[error("directory {0} not found")]
    NotFound(Digest),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Directories by digest.
#[async_trait]
pub trait DirectoryService: Send + Sync + 'static {
    /// A directory, verified against its digest.
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError>;

    /// The castore size of a stored directory (see [`Directory::size`]).
    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError>;

    /// Stores a directory whose children were checked by [`Self::put`].
    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError>;

    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        Ok(())
    }

    /// Every stored directory digest (for verification).
    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError>;

    /// Stores a directory. Refuses one whose child directories are unknown
    /// or whose recorded child sizes disagree with the stored children, so
    /// directories are put bottom-up and a stored directory's closure is
    /// always complete.
    async fn put(&self, directory: &Directory) -> Result<Digest, DirectoryServiceError> {
        let digest = directory.digest();
        for (name, child, claimed) in directory.child_directories() {
            match self.size_of(child).await? {
                None => {
                    return Err(DirectoryServiceError::MissingChild {
                        parent: digest,
                        name: name.clone(),
                        child: *child,
                    });
                }
                Some(actual) if actual != claimed => {
                    return Err(DirectoryServiceError::ChildSize {
                        parent: digest,
                        name: name.clone(),
                        claimed,
                        actual,
                    });
                }
                Some(_) => {}
            }
        }
        self.put_checked(digest, directory).await?;
        Ok(digest)
    }

    /// Stores directories none of which is a child of another of them (one
    /// level of a tree put bottom-up), as a `put` of each would; returns
    /// their digests in order. Backends that commit many directories more
    /// cheaply together than one by one override it.
    async fn put_all(
        &self,
        directories: &[Directory],
    ) -> Result<Vec<Digest>, DirectoryServiceError> {
        futures::future::try_join_all(directories.iter().map(|d| self.put(d))).await
    }

    /// Stores a whole tree's directories given bottom-up: each child
    /// directory of one of them is stored already or comes earlier in the
    /// slice. Returns their digests in order. By default, runs of
    /// directories none of which is a child of another go to
    /// [`DirectoryService::put_all`] together; backends that can commit
    /// them all at once override it.
    async fn put_tree(
        &self,
        directories: &[Directory],
    ) -> Result<Vec<Digest>, DirectoryServiceError> {
        let mut digests = Vec::with_capacity(directories.len());
        let mut run_start = 0;
        let mut in_run: HashSet<Digest> = HashSet::new();
        for (i, directory) in directories.iter().enumerate() {
            if directory
                .child_directories()
                .any(|(_, child, _)| in_run.contains(child))
            {
                digests.extend(self.put_all(&directories[run_start..i]).await?);
                run_start = i;
                in_run.clear();
            }
            in_run.insert(directory.digest());
        }
        digests.extend(self.put_all(&directories[run_start..]).await?);
        Ok(digests)
    }

    /// The closure of `root`: the root first, then breadth-first in entry
    /// order, each directory once (a parent always comes before its children).
    async fn closure(
        &self,
        root: &Digest,
    ) -> Result<Vec<(Digest, Directory)>, DirectoryServiceError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([*root]);
        seen.insert(*root);
        while let Some(digest) = queue.pop_front() {
            let dir = self
                .get(&digest)
                .await?
                .ok_or(DirectoryServiceError::NotFound(digest))?;
            for (_, child, _) in dir.child_directories() {
                if seen.insert(*child) {
                    queue.push_back(*child);
                }
            }
            out.push((digest, dir));
        }
        Ok(out)
    }
}

/// Checks stored bytes against the digest they are stored under and decodes them.
pub fn decode_stored(digest: &Digest, bytes: &[u8]) -> Result<Directory, DirectoryServiceError> {
    let actual = Digest::of(bytes);
    if actual != *digest {
        return Err(DirectoryServiceError::DigestMismatch {
            digest: *digest,
            actual,
        });
    }
    Directory::decode(bytes).map_err(|source| DirectoryServiceError::Corrupt {
        digest: *digest,
        source,
    })
}
