//! Directories and their canonical encoding.
//!
//! A directory is a list of named nodes, sorted by name bytes, names unique.
//! Its digest is BLAKE3 of its canonical protobuf encoding, field-compatible
//! with castore.proto:
//!
//! ```text
//! Directory     { repeated DirectoryNode directories = 1; repeated FileNode files = 2;
//!                 repeated SymlinkNode symlinks = 3; }
//! DirectoryNode { bytes name = 1; bytes digest = 2; uint64 size = 3; }
//! FileNode      { bytes name = 1; bytes digest = 2; uint64 size = 3; bool executable = 4; }
//! SymlinkNode   { bytes name = 1; bytes target = 2; }
//! ```
//!
//! Canonical means: fields in field-number order, each repeated field in name
//! order, proto3 default values (zero sizes, `false`) omitted, minimal varints.
//! Decoding accepts exactly the canonical bytes of a valid directory and
//! refuses everything else with a [`DirectoryError`].

use bytes::Bytes;

use crate::Digest;
use crate::node::{Name, NameError, Node, SymlinkTarget};

/// Why a directory (or its encoding) is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryError {
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    #[error("entries are not sorted: {0:?} after {1:?}")]
    Unsorted(Name, Name),
    #[error("duplicate entry name {0:?}")]
    Duplicate(Name),
    #[error("directory size overflows")]
    SizeOverflow,
    #[error("truncated encoding at byte {0}")]
    Truncated(usize),
    #[error("unexpected field {field} (wire type {wire_type}) at byte {offset}")]
    UnexpectedField {
        field: u64,
        wire_type: u8,
        offset: usize,
    },
    #[error("invalid digest length {0} in entry")]
    DigestLength(usize),
    #[error("encoding is not canonical")]
    NotCanonical,
}

/// A directory: named nodes sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    entries: Vec<(Name, Node)>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// Builds a directory from entries in any order; refuses duplicates.
    pub fn from_entries(mut entries: Vec<(Name, Node)>) -> Result<Directory, DirectoryError> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in entries.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(DirectoryError::Duplicate(pair[0].0.clone()));
            }
        }
        let dir = Directory { entries };
        dir.checked_size()?;
        Ok(dir)
    }

    /// Entries in name order.
    pub fn entries(&self) -> &[(Name, Node)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks a name up by binary search.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.entries
            .binary_search_by(|(n, _)| n.as_bytes().cmp(name))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The castore.proto size: number of entries plus the sizes of the child
    /// directories.
    pub fn size(&self) -> u64 {
        self.checked_size().unwrap_or(u64::MAX)
    }

    fn checked_size(&self) -> Result<u64, DirectoryError> {
        let mut size = self.entries.len() as u64;
        for (_, node) in &self.entries {
            if let Node::Directory { size: s, .. } = node {
                size = size.checked_add(*s).ok_or(DirectoryError::SizeOverflow)?;
            }
        }
        Ok(size)
    }

    /// The node that refers to this directory.
    pub fn node(&self) -> Node {
        Node::Directory {
            digest: self.digest(),
            size: self.size(),
        }
    }

    /// Digests of the child directories.
    pub fn child_directories(&self) -> impl Iterator<Item = (&Name, &Digest, u64)> {
        self.entries.iter().filter_map(|(name, node)| match node {
            Node::Directory { digest, size } => Some((name, digest, *size)),
            _ => None,
        })
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.encode())
    }

    /// The canonical protobuf encoding, written into a buffer of exactly
    /// its length ([`Directory::encoded_len`]), each entry in place.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for (field, wanted) in [(1u64, 0u8), (2, 1), (3, 2)] {
            for (name, node) in &self.entries {
                if node_field_kind(node) != wanted {
                    continue;
                }
                put_varint(&mut out, field << 3 | u64::from(WIRE_LEN));
                put_varint(&mut out, entry_body_len(name, node) as u64);
                put_bytes_field(&mut out, 1, name.as_bytes());
                match node {
                    Node::Directory { digest, size } => {
                        put_bytes_field(&mut out, 2, digest.as_bytes());
                        if *size != 0 {
                            put_varint_field(&mut out, 3, *size);
                        }
                    }
                    Node::File {
                        digest,
                        size,
                        executable,
                    } => {
                        put_bytes_field(&mut out, 2, digest.as_bytes());
                        if *size != 0 {
                            put_varint_field(&mut out, 3, *size);
                        }
                        if *executable {
                            put_varint_field(&mut out, 4, 1);
                        }
                    }
                    Node::Symlink { target } => put_bytes_field(&mut out, 2, target.as_bytes()),
                }
            }
        }
        debug_assert_eq!(out.len(), out.capacity());
        out
    }

    /// The length of [`Directory::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(name, node)| bytes_field_len(entry_body_len(name, node)))
            .sum()
    }

    /// Decodes canonical bytes; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<Directory, DirectoryError> {
        let mut reader = Reader { buf: bytes, pos: 0 };
        let mut lists: [Vec<(Name, Node)>; 3] = Default::default();
        while !reader.done() {
            let offset = reader.pos;
            let (field, wire_type) = reader.tag()?;
            if !(1..=3).contains(&field) || wire_type != WIRE_LEN {
                return Err(DirectoryError::UnexpectedField {
                    field,
                    wire_type,
                    offset,
                });
            }
            let body_start = reader.pos;
            let body = reader.len_delimited()?;
            let entry = decode_entry(field, body, body_start)?;
            lists[(field - 1) as usize].push(entry);
        }
        for list in &lists {
            for pair in list.windows(2) {
                if pair[0].0 >= pair[1].0 {
                    return Err(if pair[0].0 == pair[1].0 {
                        DirectoryError::Duplicate(pair[1].0.clone())
                    } else {
                        DirectoryError::Unsorted(pair[1].0.clone(), pair[0].0.clone())
                    });
                }
            }
        }
        let [dirs, files, links] = lists;
        let mut entries = dirs;
        entries.extend(files);
        entries.extend(links);
        let dir = Directory::from_entries(entries)?;
        if dir.encode() != bytes {
            return Err(DirectoryError::NotCanonical);
        }
        Ok(dir)
    }
}

fn decode_entry(kind: u64, body: &[u8], base: usize) -> Result<(Name, Node), DirectoryError> {
    let mut reader = Reader { buf: body, pos: 0 };
    let mut name: Option<&[u8]> = None;
    let mut second: Option<&[u8]> = None;
    let mut size = 0u64;
    let mut executable = false;
    while !reader.done() {
        let offset = base + reader.pos;
        let (field, wire_type) = reader.tag()?;
        match (kind, field, wire_type) {
            (_, 1, WIRE_LEN) => name = Some(reader.len_delimited()?),
            (_, 2, WIRE_LEN) => second = Some(reader.len_delimited()?),
            (1 | 2, 3, WIRE_VARINT) => size = reader.varint()?,
            (2, 4, WIRE_VARINT) => {
                executable = match reader.varint()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DirectoryError::NotCanonical),
                }
            }
            _ => {
                return Err(DirectoryError::UnexpectedField {
                    field,
                    wire_type,
                    offset,
                });
            }
        }
    }
    let name = Name::new(Bytes::copy_from_slice(name.unwrap_or_default()))?;
    let second = second.unwrap_or_default();
    let digest =
        || Digest::try_from(second).map_err(|_| DirectoryError::DigestLength(second.len()));
    let node = match kind {
        1 => Node::Directory {
            digest: digest()?,
            size,
        },
        2 => Node::File {
            digest: digest()?,
            size,
            executable,
        },
        _ => Node::Symlink {
            target: SymlinkTarget::new(Bytes::copy_from_slice(second))?,
        },
    };
    Ok((name, node))
}

const WIRE_VARINT: u8 = 0;
const WIRE_LEN: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Which of a directory's three lists (fields 1, 2 and 3) holds `node`.
fn node_field_kind(node: &Node) -> u8 {
    match node {
        Node::Directory { .. } => 0,
        Node::File { .. } => 1,
        Node::Symlink { .. } => 2,
    }
}

/// The length of an entry's message (name, then the node's fields).
fn entry_body_len(name: &Name, node: &Node) -> usize {
    let name_len = bytes_field_len(name.as_bytes().len());
    name_len
        + match node {
            Node::Directory { size, .. } => {
                bytes_field_len(32)
                    + if *size != 0 {
                        varint_field_len(*size)
                    } else {
                        0
                    }
            }
            Node::File {
                size, executable, ..
            } => {
                bytes_field_len(32)
                    + if *size != 0 {
                        varint_field_len(*size)
                    } else {
                        0
                    }
                    + if *executable { varint_field_len(1) } else { 0 }
            }
            Node::Symlink { target } => bytes_field_len(target.as_bytes().len()),
        }
}

/// Bytes of a varint holding `value`.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a varint field (fields 1-15 have a one-byte tag).
fn varint_field_len(value: u64) -> usize {
    1 + varint_len(value)
}

/// Bytes of a length-delimited field of `len` bytes (one-byte tag).
fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3 | u64::from(WIRE_VARINT));
    put_varint(out, value);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | u64::from(WIRE_LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DirectoryError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(DirectoryError::Truncated(self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DirectoryError::NotCanonical)
    }

    fn tag(&mut self) -> Result<(u64, u8), DirectoryError> {
        let tag = self.varint()?;
        Ok((tag >> 3, (tag & 7) as u8))
    }

    fn len_delimited(&mut self) -> Result<&'a [u8], DirectoryError> {
        let start = self.pos;
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DirectoryError::Truncated(start))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(DirectoryError::Truncated(start))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
}
