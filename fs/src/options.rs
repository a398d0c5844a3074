//! Options of the filesystem core.

use std::time::Duration;

/// How the filesystem caches, prefetches and waits.
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// Bytes a sequential reader keeps in flight after its read (the
    /// prefetch window); 0 turns prefetching off.
    pub window_bytes: u64,
    /// Bytes of chunks kept in memory.
    pub chunk_cache_bytes: u64,
    /// Directories kept in memory (each decoded once, shared by lookups).
    pub directory_cache_entries: u64,
    /// When a directory is opened, this many of its child directories are
    /// fetched in the background (0: none).
    pub directory_prefetch: usize,
    /// Prefetch fetches in flight at most, over all files.
    pub prefetch_concurrency: usize,
    /// A backend request not answered within this gives EIO.
    pub timeout: Duration,
    /// List the store paths when the root is read. Lookups work either way;
    /// turn this off for stores too large to list.
    pub list_root: bool,
    /// Hash every fetched chunk again (the chunk services already verify
    /// what they return; this guards against backends that do not).
    pub verify_chunks: bool,
}

/// Default prefetch window: 32 MiB.
pub const DEFAULT_WINDOW_BYTES: u64 = 32 << 20;

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            window_bytes: DEFAULT_WINDOW_BYTES,
            chunk_cache_bytes: 512 << 20,
            directory_cache_entries: 65_536,
            directory_prefetch: 64,
            prefetch_concurrency: 512,
            timeout: Duration::from_secs(30),
            list_root: true,
            verify_chunks: false,
        }
    }
}
