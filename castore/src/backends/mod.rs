//! Backends of the castore services: in memory, and the embedded local store.

pub mod local;
pub mod memory;
pub mod objectstore;

pub use local::{LocalStore, LocalStoreError, LocalStoreOptions};
pub use memory::MemoryStore;
