//! Backends of the castore services: in memory, the embedded local store,
//! and object stores (S3, GCS, Azure, HTTP, file).

pub mod local;
pub mod memory;
pub mod objectstore;
pub mod pack_map;

pub use local::{LocalStore, LocalStoreError, LocalStoreOptions};
pub use memory::MemoryStore;
