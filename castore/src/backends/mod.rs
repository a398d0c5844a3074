//! Backends of the castore services: in memory, and the embedded local store.

pub mod local;
pub mod memory;
pub mod pack_map;

pub use local::{LocalStore, LocalStoreError, LocalStoreOptions};
pub use memory::MemoryStore;
