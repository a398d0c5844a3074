//! NAR, the Nix archive format: a canonical serialisation of a file system
//! tree (regular files with an executable bit, symlinks, directories with
//! entries sorted by name).
//!
//! Every string in a NAR is a little-endian `u64` length, the bytes, and zero
//! padding to a multiple of 8. The grammar is
//!
//! ```text
//! nar       = "nix-archive-1" node
//! node      = "(" "type" ( regular | symlink | directory ) ")"
//! regular   = "regular" [ "executable" "" ] "contents" <u64 size> <bytes, padded>
//! symlink   = "symlink" "target" <target>
//! directory = "directory" { "entry" "(" "name" <name> "node" node ")" }
//! ```
//!
//! [`reader`] parses and validates a NAR as a stream, [`writer`] produces
//! one, [`dump`] serialises a local tree, and [`hashing`] computes the NAR
//! hash and size on the fly.

pub mod dump;
pub mod hashing;
pub mod reader;
pub mod writer;

pub use dump::{DumpError, dump_path, dump_path_into, nar_hash_path};
pub use hashing::{HashingReader, HashingWriter};
pub use reader::{
    FileContents, NarEvent, NarReadError, NarReader, NarReaderOptions, NarVisitor, read_nar,
};
pub use writer::{NarWriteError, NarWriter};

/// The magic string a NAR starts with.
pub const NAR_MAGIC: &[u8] = b"nix-archive-1";

/// Number of zero bytes that pad a string of `len` bytes to 8.
pub(crate) const fn padding_len(len: u64) -> usize {
    ((8 - (len % 8)) % 8) as usize
}

/// Whether `name` is acceptable as a directory entry name: not empty, not
/// `.` or `..`, without `/` or NUL.
pub fn is_valid_entry_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// Whether `target` is acceptable as a symlink target: not empty, without
/// NUL.
pub fn is_valid_symlink_target(target: &[u8]) -> bool {
    !target.is_empty() && !target.contains(&0)
}
