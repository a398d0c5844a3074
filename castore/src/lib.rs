//! cairn-castore: the content-addressed store.
//!
//! Everything cairn stores lives here, addressed by BLAKE3 digests:
//! - [`Digest`]: BLAKE3-256 of raw bytes;
//! - blobs (the bytes of one regular file), stored as FastCDC chunks
//!   ([`chunking`]) with a chunk map per multi-chunk blob;
//! - [`Directory`]: named [`Node`]s, digest = BLAKE3 of the canonical
//!   castore.proto encoding.
//!
//! The services ([`ChunkService`], [`BlobService`], [`DirectoryService`]) are
//! traits with one error type each; [`backends`] implements them. Blobs are
//! read with [`BlobReader`] and written with [`BlobWriter`]; [`import`] turns
//! a filesystem tree into nodes and [`export`] turns nodes back into a tree.
//! [`combinators`] build stores from stores (cache, priority list, race,
//! negative cache) and [`composition`] assembles them from one configuration
//! or URL.

pub mod backends;
pub mod blobio;
pub mod chunking;
pub mod combinators;
pub mod composition;
pub mod digest;
pub mod directory;
pub mod export;
pub mod import;
pub mod many_hash;
pub mod node;
mod read_blocks;
pub mod services;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod verify;

pub use blobio::{BlobReader, BlobWriter};
pub use chunking::ChunkerConfig;
pub use digest::{Digest, DigestError};
pub use directory::{Directory, DirectoryError};
pub use node::{Name, NameError, Node, NodeKind, SymlinkTarget};
pub use services::BackendError;
pub use services::blob::{BlobError, BlobService, ChunkMap, ChunkRef};
pub use services::chunk::{ChunkError, ChunkRun, ChunkService};
pub use services::directory::{DirectoryService, DirectoryServiceError};
pub use store::CaStore;
