//! Names and nodes: the entries a directory holds.

use std::fmt;

use bytes::Bytes;

use crate::Digest;

/// Longest name accepted (bytes), as on common filesystems.
pub const MAX_NAME_LEN: usize = 255;
/// Longest symlink target accepted (bytes).
pub const MAX_SYMLINK_TARGET_LEN: usize = 4095;

/// Why a name or symlink target was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("name {0:?} is `.` or `..`")]
    Dot(String),
    #[error("name {0:?} contains `/`")]
    Slash(String),
    #[error("name {0:?} contains NUL")]
    Nul(String),
    #[error("name of {0} bytes is longer than {MAX_NAME_LEN}")]
    TooLong(usize),
    #[error("symlink target is empty")]
    EmptyTarget,
    #[error("symlink target contains NUL")]
    NulTarget,
    #[error("symlink target of {0} bytes is longer than {MAX_SYMLINK_TARGET_LEN}")]
    TargetTooLong(usize),
}

/// A validated entry name: non-empty bytes without `/` or NUL, not `.` or `..`.
/// Names are bytes, not text: any non-UTF-8 name a filesystem allows is kept.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Bytes);

impl Name {
    pub fn new(bytes: impl Into<Bytes>) -> Result<Name, NameError> {
        let bytes = bytes.into();
        let lossy = || String::from_utf8_lossy(&bytes).into_owned();
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong(bytes.len()));
        }
        if &bytes[..] == b"." || &bytes[..] == b".." {
            return Err(NameError::Dot(lossy()));
        }
        if bytes.contains(&b'/') {
            return Err(NameError::Slash(lossy()));
        }
        if bytes.contains(&0) {
            return Err(NameError::Nul(lossy()));
        }
        Ok(Name(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl TryFrom<&str> for Name {
    type Error = NameError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Name::new(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// A validated symlink target: non-empty bytes without NUL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SymlinkTarget(Bytes);

impl SymlinkTarget {
    pub fn new(bytes: impl Into<Bytes>) -> Result<SymlinkTarget, NameError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(NameError::EmptyTarget);
        }
        if bytes.len() > MAX_SYMLINK_TARGET_LEN {
            return Err(NameError::TargetTooLong(bytes.len()));
        }
        if bytes.contains(&0) {
            return Err(NameError::NulTarget);
        }
        Ok(SymlinkTarget(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SymlinkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// What a name points at. Directories and files are referred to by digest;
/// a symlink carries its target.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// `size`: entries of the child directory plus the sizes of its own
    /// child directories (castore.proto's meaning).
    Directory {
        digest: Digest,
        size: u64,
    },
    /// `size`: length of the blob in bytes.
    File {
        digest: Digest,
        size: u64,
        executable: bool,
    },
    Symlink {
        target: SymlinkTarget,
    },
}

impl Node {
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Node::Directory { digest, .. } | Node::File { digest, .. } => Some(digest),
            Node::Symlink { .. } => None,
        }
    }

    pub fn kind(&self) -> NodeKind {
        match self {
            Node::Directory { .. } => NodeKind::Directory,
            Node::File { .. } => NodeKind::File,
            Node::Symlink { .. } => NodeKind::Symlink,
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Directory { digest, size } => write!(f, "dir {digest:?} size {size}"),
            Node::File {
                digest,
                size,
                executable,
            } => write!(
                f,
                "file {digest:?} size {size}{}",
                if *executable { " executable" } else { "" }
            ),
            Node::Symlink { target } => write!(f, "symlink -> {target:?}"),
        }
    }
}

/// The three kinds of node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Directory,
    File,
    Symlink,
}
