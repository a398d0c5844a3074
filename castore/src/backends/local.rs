//! `local`: the embedded default store, on local disk.
//!
//! Layout under the store directory:
//!
//! ```text
//! index.sqlite        chunk index, chunk maps, directories (SQLite, WAL)
//! packs/<id>.pack     chunk data, appended; a chunk is raw or zstd bytes;
//!                     an import's runs of chunks start at multiples of 512
//!                     bytes; zero padding to 4 KiB follows each direct write
//! ```
//!
//! Crash safety: chunk bytes are written to a pack first; only then is the
//! index entry that points at them committed, together with any chunk maps and
//! directories, by a single committer thread that batches concurrent writers
//! into one transaction (group commit). A kill -9 at any instant therefore
//! leaves at most unreferenced bytes at the end of a pack — never an index
//! entry pointing at torn data, never a torn chunk map or directory (SQLite
//! transactions are atomic, and written bytes outlive the process).
//!
//! A chunk put returns once its bytes are written and its entry is handed
//! to the committer; from then on this process finds it. The committer
//! defers chunk entries (see `run_committer`): they are committed with the
//! next chunk map, directory or sync, once 16 384 wait, after a second, or
//! when the store is dropped. Since it commits in the order writes reach it, a chunk map or
//! directory is never committed without the chunks it names.
//!
//! Durability against power loss is explicit: [`LocalStore::sync`] (called
//! by every import before it reports its result) `fdatasync`s the packs this
//! process wrote, commits the entries not committed yet, then `fdatasync`s
//! the index's write-ahead log. Chunks are
//! verified on every read, so data caught mid-write by a power cut is found by
//! `cairn store verify` and never served. Several processes may use one store
//! at once: each writer appends to pack files of its own, numbered by the
//! index.
//!
//! Chunks are stored raw by default, like the files of a Nix store: a local
//! disk is cheap next to the CPU that compressing every import and
//! decompressing every read would cost (zstd runs at about 330 MB/s on this
//! project's benchmark tree, slower than the rest of an import together).
//! With [`LocalStoreOptions::compress`] chunks are zstd-compressed (level 1)
//! when that saves at least 1/16 of their size; a 4 KiB probe skips the
//! attempt on incompressible data. Both kinds of chunk are read either way.
//!
//! Chunk bytes reach the packs through one writer thread per store
//! (`pack_writer`): puts gather while the previous write runs, and what
//! has gathered goes to disk in one write, with `O_DIRECT` where the
//! filesystem allows (no copy into the page cache). An import's runs of new
//! chunks ([`ChunkService::put_runs`]) are written from the import's read
//! blocks as they are; other puts are copied into the write's buffer.
//! Ordinary writes start writeback as they go (`sync_file_range`), so the
//! sync that ends an import finds most data already on disk.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::hash::BuildHasherDefault;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use rayon::prelude::*;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use self::entry_cache::{DigestHasher, EntryCache};
use self::pack_writer::{Append, PackOut, PackWriter};
use super::pack_map::PackMap;
use crate::Digest;
use crate::directory::Directory;
use crate::services::BackendError;
use crate::services::blob::{BlobError, BlobService, ChunkMap};
use crate::services::chunk::{ChunkError, ChunkRun, ChunkService, verify_chunk};
use crate::services::directory::{DirectoryService, DirectoryServiceError, decode_stored};

mod entry_cache;
mod pack_writer;

/// A pack file is closed for appends past this size.
const PACK_LIMIT: u64 = 1 << 30;
/// Most writes the committer takes off its queue before it commits.
const MAX_BATCH: usize = 8192;
const SCHEMA_VERSION: i64 = 1;

/// Errors opening or operating the local store.
#[derive(Debug, thiserror::Error)]
pub enum LocalStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("index {path} has schema version {found}, this cairn knows up to {SCHEMA_VERSION}")]
    NewerSchema { path: PathBuf, found: i64 },
    #[error("committing to the index failed: {0}")]
    Commit(String),
    #[error("the store's committer has stopped")]
    CommitterGone,
    #[error("pack {pack}: chunk entry out of range or unreadable: {source}")]
    Pack {
        pack: i64,
        #[source]
        source: std::io::Error,
    },
    #[error("chunk {0}: stored data does not decompress: {1}")]
    Decompress(Digest, std::io::Error),
}

impl LocalStoreError {
    fn backend(self) -> BackendError {
        BackendError::new("local", self)
    }
}

/// One index write handed to the committer.
enum IndexWrite {
    /// The entries of chunks written to a pack together.
    Chunks(Vec<(Digest, ChunkEntry)>),
    ChunkMap {
        digest: Digest,
        map: Vec<u8>,
    },
    Directory {
        digest: Digest,
        size: u64,
        data: Vec<u8>,
    },
    /// Directories stored together (digest, size, encoding).
    Directories(Vec<(Digest, u64, Vec<u8>)>),
    /// Nothing: acknowledged once everything handed over before it is
    /// committed.
    Barrier,
}

type Ack = oneshot::Sender<Result<(), Failure>>;

/// What the committer receives: a write, and whom to tell once it is
/// committed (`None` for chunk entries, whose puts have returned already).
type ToCommit = (IndexWrite, Option<Ack>);

/// Why a write handed to the writer or the committer did not land.
#[derive(Debug, Clone)]
enum Failure {
    /// The index transaction failed.
    Commit(String),
    /// Writing a pack failed.
    PackWrite(i64, String),
}

impl From<Failure> for LocalStoreError {
    fn from(failure: Failure) -> LocalStoreError {
        match failure {
            Failure::Commit(message) => LocalStoreError::Commit(message),
            Failure::PackWrite(pack, message) => LocalStoreError::Pack {
                pack,
                source: std::io::Error::other(message),
            },
        }
    }
}

/// Options of a [`LocalStore`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalStoreOptions {
    /// zstd-compress chunks where that saves at least 1/16 (default off).
    pub compress: bool,
}

/// The embedded local store. Implements every castore service.
pub struct LocalStore {
    options: LocalStoreOptions,
    root: PathBuf,
    index_path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    pack_files: RwLock<HashMap<i64, Arc<File>>>,
    /// Read-only maps of packs, remade when a chunk lies beyond one.
    pack_maps: RwLock<HashMap<i64, Arc<PackMap>>>,
    /// Appends chunk bytes to this process's packs.
    writer: PackWriter,
    written_packs: Mutex<Vec<i64>>,
    /// Index entries seen by this process: those it wrote and has not
    /// committed yet (kept until committed), and committed ones (which
    /// never change, so caching them only saves lookups; misses go to the
    /// index, where other processes' writes are visible).
    entries: Arc<EntryCache>,
    /// Hands index writes to the committer; `None` once the store is
    /// being dropped.
    committer: Mutex<Option<mpsc::Sender<ToCommit>>>,
    /// The committer, joined on drop so that nothing handed to it is lost.
    committer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LocalStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<LocalStore, LocalStoreError> {
        LocalStore::open_with(root, LocalStoreOptions::default())
    }

    /// [`LocalStore::open`] with options.
    pub fn open_with(
        root: impl AsRef<Path>,
        options: LocalStoreOptions,
    ) -> Result<LocalStore, LocalStoreError> {
        let root = root.as_ref().to_path_buf();
        let packs = root.join("packs");
        std::fs::create_dir_all(&packs).map_err(|source| LocalStoreError::Io {
            path: packs.clone(),
            source,
        })?;
        let index_path = root.join("index.sqlite");
        let conn = open_connection(&index_path)?;
        migrate(&conn, &index_path)?;
        let (tx, rx) = mpsc::channel();
        // Its checkpoints (which fsync) come every 64 MiB of write-ahead log
        // (see `open_connection`); `sync` syncs the log itself.
        let committer_conn = open_connection(&index_path)?;
        let committer_path = index_path.clone();
        let entries = Arc::new(EntryCache::new(1 << 20));
        let writer = PackWriter::start(tx.clone(), entries.clone()).map_err(|source| {
            LocalStoreError::Io {
                path: packs.clone(),
                source,
            }
        })?;
        let committer_thread = std::thread::Builder::new()
            .name("cairn-local-commit".into())
            .spawn({
                let entries = entries.clone();
                move || run_committer(committer_conn, committer_path, rx, entries)
            })
            .map_err(|source| LocalStoreError::Io {
                path: index_path.clone(),
                source,
            })?;
        Ok(LocalStore {
            options,
            root,
            index_path,
            readers: Mutex::new(vec![conn]),
            pack_files: RwLock::new(HashMap::new()),
            pack_maps: RwLock::new(HashMap::new()),
            writer,
            written_packs: Mutex::new(Vec::new()),
            entries,
            committer: Mutex::new(Some(tx)),
            committer_thread: Mutex::new(Some(committer_thread)),
        })
    }

    /// Where the store lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_err(&self, source: rusqlite::Error) -> LocalStoreError {
        LocalStoreError::Index {
            path: self.index_path.clone(),
            source,
        }
    }

    /// Runs `f` with a pooled read connection.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LocalStoreError> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.index_path)?,
        };
        let result = f(&conn).map_err(|e| self.index_err(e));
        lock(&self.readers).push(conn);
        result
    }

    async fn commit(&self, write: IndexWrite) -> Result<(), LocalStoreError> {
        let (ack, done) = oneshot::channel();
        lock(&self.committer)
            .as_ref()
            .ok_or(LocalStoreError::CommitterGone)?
            .send((write, Some(ack)))
            .map_err(|_| LocalStoreError::CommitterGone)?;
        match done.await {
            Ok(result) => result.map_err(LocalStoreError::from),
            Err(_) => Err(LocalStoreError::CommitterGone),
        }
    }

    fn pack_path(&self, id: i64) -> PathBuf {
        self.root.join("packs").join(format!("{id:08}.pack"))
    }

    fn pack_file(&self, id: i64) -> Result<Arc<File>, LocalStoreError> {
        if let Some(f) = read_lock(&self.pack_files).get(&id) {
            return Ok(f.clone());
        }
        let path = self.pack_path(id);
        let file = File::open(&path).map_err(|source| LocalStoreError::Io { path, source })?;
        let file = Arc::new(file);
        write_lock(&self.pack_files).insert(id, file.clone());
        Ok(file)
    }

    /// Creates a new pack for this process's appends.
    fn new_pack(&self) -> Result<PackOut, LocalStoreError> {
        let conn = open_connection(&self.index_path)?;
        let id: i64 = conn
            .query_row(
                "INSERT INTO packs (created) VALUES (strftime('%s','now')) RETURNING id",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.index_err(e))?;
        let path = self.pack_path(id);
        let io = |source| LocalStoreError::Io {
            path: path.clone(),
            source,
        };
        let pack = PackOut::create(id, &path).map_err(io)?;
        let reader = File::open(&path).map_err(io)?;
        write_lock(&self.pack_files).insert(id, Arc::new(reader));
        lock(&self.written_packs).push(id);
        Ok(pack)
    }

    fn chunk_entry(&self, digest: &Digest) -> Result<Option<ChunkEntry>, LocalStoreError> {
        if let Some(entry) = self.entries.get(digest) {
            return Ok(Some(entry));
        }
        let entry = self.chunk_entry_from_index(digest)?;
        if let Some(entry) = entry {
            self.entries.insert(*digest, entry);
        }
        Ok(entry)
    }

    /// Loads the index entries of `digests` not yet known to this process,
    /// in one read transaction.
    fn load_chunk_entries(&self, digests: &[Digest]) -> Result<(), LocalStoreError> {
        let mut missing: Vec<&Digest> = digests
            .iter()
            .filter(|d| !self.entries.contains(d))
            .collect();
        // In key order, the lookups walk the index's B-tree front to back.
        missing.sort_unstable();
        if missing.is_empty() {
            return Ok(());
        }
        let found = self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let mut found = Vec::with_capacity(missing.len());
            {
                let mut stmt = tx.prepare_cached(CHUNK_ENTRY_BY_DIGEST)?;
                for digest in &missing {
                    let entry = stmt
                        .query_row([digest.as_bytes().as_slice()], chunk_entry_of_row)
                        .optional()?;
                    if let Some(entry) = entry {
                        found.push((**digest, entry));
                    }
                }
            }
            tx.finish()?;
            Ok(found)
        })?;
        self.entries.insert_all(&found);
        Ok(())
    }

    fn chunk_entry_from_index(
        &self,
        digest: &Digest,
    ) -> Result<Option<ChunkEntry>, LocalStoreError> {
        self.with_reader(|conn| {
            conn.prepare_cached(CHUNK_ENTRY_BY_DIGEST)?
                .query_row([digest.as_bytes().as_slice()], chunk_entry_of_row)
                .optional()
        })
    }

    /// A map of pack `id` covering `end` bytes, mapping it (again) if needed.
    fn pack_map(&self, id: i64, end: u64) -> Result<Option<Arc<PackMap>>, LocalStoreError> {
        if let Some(map) = read_lock(&self.pack_maps).get(&id)
            && map.len() as u64 >= end
        {
            return Ok(Some(map.clone()));
        }
        let file = self.pack_file(id)?;
        let map =
            PackMap::of(&file).map_err(|source| LocalStoreError::Pack { pack: id, source })?;
        if let Some(map) = &map {
            write_lock(&self.pack_maps).insert(id, map.clone());
        }
        Ok(map.filter(|m| m.len() as u64 >= end))
    }

    fn read_chunk(&self, digest: &Digest, entry: &ChunkEntry) -> Result<Bytes, ChunkError> {
        let pack_err = |source| {
            ChunkError::Backend(
                LocalStoreError::Pack {
                    pack: entry.pack,
                    source,
                }
                .backend(),
            )
        };
        if !entry.compressed {
            let end = entry.offset + u64::from(entry.stored_len);
            let map = self
                .pack_map(entry.pack, end)
                .map_err(|e| ChunkError::Backend(e.backend()))?;
            let data = map
                .and_then(|m| m.bytes(entry.offset, entry.stored_len as usize))
                .ok_or_else(|| {
                    pack_err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("chunk {digest} lies beyond the end of its pack"),
                    ))
                })?;
            verify_chunk(digest, &data)?;
            return Ok(data);
        }
        let file = self
            .pack_file(entry.pack)
            .map_err(|e| ChunkError::Backend(e.backend()))?;
        let mut stored = vec![0u8; entry.stored_len as usize];
        file.read_exact_at(&mut stored, entry.offset)
            .map_err(pack_err)?;
        let data = decompress(&stored, entry.size as usize)
            .map_err(|e| ChunkError::Backend(LocalStoreError::Decompress(*digest, e).backend()))?;
        verify_chunk(digest, &data)?;
        Ok(Bytes::from(data))
    }

    /// Stores the chunks not stored yet: one index lookup for those this
    /// process does not know, one append of the new ones to the pack writer,
    /// and a wait for them to be written. The chunks' bytes are let go as
    /// soon as they are copied to the writer, before that wait.
    async fn store_chunks(&self, chunks: Vec<(Digest, Bytes)>) -> Result<(), ChunkError> {
        let be = |e: LocalStoreError| ChunkError::Backend(e.backend());
        let mut new = self
            .not_stored(chunks.iter().map(|(digest, _)| digest))
            .map_err(be)?;
        if new.is_empty() {
            return Ok(());
        }
        let mut fresh = Vec::with_capacity(new.len());
        for (digest, data) in &chunks {
            if new.remove(digest) {
                let size = u32::try_from(data.len()).map_err(|_| {
                    be(LocalStoreError::Decompress(
                        *digest,
                        std::io::Error::other("chunk too large"),
                    ))
                })?;
                let compressed = if self.options.compress {
                    maybe_compress(data)
                } else {
                    None
                };
                fresh.push((*digest, data, size, compressed));
            }
        }
        let appends: Vec<Append<'_>> = fresh
            .iter()
            .map(|(digest, data, size, compressed)| Append::Copy {
                digest: *digest,
                stored: compressed.as_deref().unwrap_or(data),
                size: *size,
                compressed: compressed.is_some(),
            })
            .collect();
        let acks = self.append_pieces(&appends).await.map_err(be)?;
        drop(appends);
        drop(fresh);
        drop(chunks);
        self.await_written(acks).await
    }

    /// Stores runs as an import hands them over: a run whose chunks are all
    /// new here goes to the pack writer whole (written from the run's own
    /// memory); the new chunks of any other run are copied in one by one.
    async fn store_runs(&self, runs: Vec<ChunkRun>) -> Result<(), ChunkError> {
        let be = |e: LocalStoreError| ChunkError::Backend(e.backend());
        let mut new = self
            .not_stored(runs.iter().flat_map(ChunkRun::chunks).map(|c| &c.digest))
            .map_err(be)?;
        if new.is_empty() {
            return Ok(());
        }
        let mut appends = Vec::with_capacity(runs.len());
        for run in &runs {
            // New, and the first of its digest in this call.
            let fresh: Vec<bool> = run.chunks().iter().map(|c| new.remove(&c.digest)).collect();
            if fresh.iter().all(|f| *f) {
                appends.push(Append::Run(run));
                continue;
            }
            let mut at = 0;
            for (chunk, fresh) in run.chunks().iter().zip(fresh) {
                let end = at + chunk.size as usize;
                if fresh {
                    appends.push(Append::Copy {
                        digest: chunk.digest,
                        stored: &run.memory()[at..end],
                        size: chunk.size,
                        compressed: false,
                    });
                }
                at = end;
            }
        }
        if appends.is_empty() {
            return Ok(());
        }
        let acks = self.append_pieces(&appends).await.map_err(be)?;
        // The pack writer holds what it still needs of the runs.
        drop(appends);
        drop(runs);
        self.await_written(acks).await
    }

    /// Which of `digests` the store does not hold, each once: those this
    /// process does not know are looked up in the index together first.
    fn not_stored<'a>(
        &self,
        digests: impl Iterator<Item = &'a Digest>,
    ) -> Result<HashSet<Digest, BuildHasherDefault<DigestHasher>>, LocalStoreError> {
        let mut unknown: HashSet<Digest, BuildHasherDefault<DigestHasher>> = HashSet::default();
        unknown.extend(digests.filter(|digest| !self.entries.contains(digest)));
        if !unknown.is_empty() {
            let lookups: Vec<Digest> = unknown.iter().copied().collect();
            self.load_chunk_entries(&lookups)?;
            unknown.retain(|digest| !self.entries.contains(digest));
        }
        Ok(unknown)
    }

    /// Hands `appends` to the pack writer once it has room for them.
    async fn append_pieces(
        &self,
        appends: &[Append<'_>],
    ) -> Result<pack_writer::Acks, LocalStoreError> {
        let total = appends.iter().map(Append::stored_len).sum();
        let reserved = self.writer.reserve(total).await;
        self.writer.append(appends, || self.new_pack(), reserved)
    }

    /// Waits until the appended chunks are written and their entries
    /// handed to the committer (the pack writer pins them in the cache
    /// before it does).
    async fn await_written(&self, acks: pack_writer::Acks) -> Result<(), ChunkError> {
        let mut failure = None;
        for done in acks {
            let result = match done.await {
                Ok(result) => result.map_err(LocalStoreError::from),
                Err(_) => Err(LocalStoreError::CommitterGone),
            };
            if let Err(e) = result {
                failure.get_or_insert(e);
            }
        }
        if let Some(e) = failure {
            return Err(ChunkError::Backend(e.backend()));
        }
        Ok(())
    }

    /// Stores directories in one index transaction. Each child directory
    /// must be stored already or, with `earlier_in_slice`, come earlier in
    /// `directories` (a tree given bottom-up); the children not in the
    /// slice are looked up in one read transaction.
    async fn put_directories(
        &self,
        directories: &[Directory],
        earlier_in_slice: bool,
    ) -> Result<Vec<Digest>, DirectoryServiceError> {
        // Each encoded once, for its digest and for the index, on all cores.
        let (encoded, digests): (Vec<Vec<u8>>, Vec<Digest>) = directories
            .par_iter()
            .map(|directory| {
                let encoded = directory.encode();
                let digest = Digest::of(&encoded);
                (encoded, digest)
            })
            .unzip();
        // With `earlier_in_slice`, each directory's place and size in the
        // slice: a child found here at an earlier place is stored with it.
        let mut in_slice: HashMap<Digest, (usize, u64), BuildHasherDefault<DigestHasher>> =
            HashMap::default();
        if earlier_in_slice {
            for (i, (directory, digest)) in directories.iter().zip(&digests).enumerate() {
                in_slice.entry(*digest).or_insert((i, directory.size()));
            }
        }
        let earlier = |child: &Digest, place: usize| {
            in_slice
                .get(child)
                .filter(|(at, _)| *at < place)
                .map(|(_, size)| *size)
        };
        let outside: Vec<Digest> = directories
            .iter()
            .enumerate()
            .flat_map(|(i, directory)| {
                directory
                    .child_directories()
                    .filter(move |(_, child, _)| earlier(child, i).is_none())
                    .map(|(_, child, _)| *child)
            })
            .collect();
        let stored = if outside.is_empty() {
            HashMap::default()
        } else {
            self.with_reader(|conn| {
                let tx = conn.unchecked_transaction()?;
                let mut sizes: HashMap<Digest, u64, BuildHasherDefault<DigestHasher>> =
                    HashMap::default();
                {
                    let mut stmt =
                        tx.prepare_cached("SELECT size FROM directories WHERE digest = ?1")?;
                    for child in &outside {
                        let size = stmt
                            .query_row([child.as_bytes().as_slice()], |row| row.get::<_, i64>(0))
                            .optional()?;
                        if let Some(size) = size {
                            sizes.insert(*child, size as u64);
                        }
                    }
                }
                tx.finish()?;
                Ok(sizes)
            })
            .map_err(|e| DirectoryServiceError::Backend(e.backend()))?
        };
        for (i, (directory, digest)) in directories.iter().zip(&digests).enumerate() {
            for (name, child, claimed) in directory.child_directories() {
                match earlier(child, i).or_else(|| stored.get(child).copied()) {
                    None => {
                        return Err(DirectoryServiceError::MissingChild {
                            parent: *digest,
                            name: name.clone(),
                            child: *child,
                        });
                    }
                    Some(actual) if actual != claimed => {
                        return Err(DirectoryServiceError::ChildSize {
                            parent: *digest,
                            name: name.clone(),
                            claimed,
                            actual,
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        let writes = directories
            .iter()
            .zip(&digests)
            .zip(encoded)
            .map(|((directory, digest), data)| (*digest, directory.size(), data))
            .collect();
        self.commit(IndexWrite::Directories(writes))
            .await
            .map_err(|e| DirectoryServiceError::Backend(e.backend()))?;
        Ok(digests)
    }

    /// Makes everything this process stored durable, and visible to other
    /// processes: packs first, then the index entries not committed yet are
    /// committed, then the index (its write-ahead log) is synced.
    pub async fn sync(&self) -> Result<(), LocalStoreError> {
        let written = lock(&self.written_packs).clone();
        for id in written {
            let file = self.pack_file(id)?;
            file.sync_data()
                .map_err(|source| LocalStoreError::Pack { pack: id, source })?;
        }
        self.commit(IndexWrite::Barrier).await?;
        // Every commit so far is in the write-ahead log, or was checkpointed
        // into the index file, which a checkpoint syncs: syncing the log
        // makes them all durable, without copying pages into the index.
        let wal = self.index_path.with_file_name("index.sqlite-wal");
        match File::open(&wal) {
            Ok(file) => file.sync_data().map_err(|source| LocalStoreError::Io {
                path: wal.clone(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.with_reader(|conn| {
                conn.pragma_update(None, "synchronous", "FULL")?;
                let r = conn.query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()));
                conn.pragma_update(None, "synchronous", "NORMAL")?;
                r
            }),
            Err(source) => Err(LocalStoreError::Io { path: wal, source }),
        }
    }

    /// Overwrites the stored bytes of a chunk in place (to test verification).
    pub fn corrupt_chunk_on_disk(&self, digest: &Digest) -> Result<bool, LocalStoreError> {
        let Some(entry) = self.chunk_entry(digest)? else {
            return Ok(false);
        };
        let path = self.pack_path(entry.pack);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| LocalStoreError::Io {
                path: path.clone(),
                source,
            })?;
        let at = entry.offset + u64::from(entry.stored_len) / 2;
        let mut byte = [0u8; 1];
        let io = |source| LocalStoreError::Io {
            path: path.clone(),
            source,
        };
        file.read_exact_at(&mut byte, at).map_err(io)?;
        byte[0] ^= 0xff;
        file.write_all_at(&byte, at).map_err(io)?;
        Ok(true)
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        // The writer hands the entries of its last writes to the committer
        // before it ends; the committer commits what is left once its
        // channel closes.
        self.writer.stop();
        drop(lock(&self.committer).take());
        if let Some(thread) = lock(&self.committer_thread).take()
            && thread.join().is_err()
        {
            tracing::error!(index = %self.index_path.display(), "the index committer panicked");
        }
    }
}

#[derive(Clone, Copy)]
struct ChunkEntry {
    pack: i64,
    offset: u64,
    stored_len: u32,
    size: u32,
    compressed: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read_lock<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write_lock<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

/// The page size of a new index, in bytes.
const INDEX_PAGE_SIZE: i64 = 16 << 10;
/// Bytes of write-ahead log after which it is checkpointed.
const CHECKPOINT_BYTES: i64 = 64 << 20;

/// Sets the write-ahead log's checkpoint threshold to [`CHECKPOINT_BYTES`],
/// in the index's own pages (an index made before the page size was
/// raised keeps its smaller pages).
fn set_checkpoint_threshold(conn: &Connection) -> rusqlite::Result<()> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        CHECKPOINT_BYTES / page_size.max(512),
    )
}

fn open_connection(path: &Path) -> Result<Connection, LocalStoreError> {
    let err = |source| LocalStoreError::Index {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(err)?;
    // Pages of 16 KiB rather than SQLite's 4 KiB: a directory's row (about
    // a kilobyte per 10-15 entries) rarely spills into overflow pages, and
    // inserts split pages a quarter as often. Importing the benchmark tree
    // costs the committer a fifth less CPU, and lookups are as fast. Only a
    // new index takes it; an existing one keeps the size it was made with.
    conn.pragma_update(None, "page_size", INDEX_PAGE_SIZE)
        .map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    // Lookups read the index through a memory map instead of a pread per
    // page; a larger page cache keeps the upper B-tree levels resident; the
    // WAL is checkpointed every 64 MiB instead of every 1000 pages.
    conn.pragma_update(None, "mmap_size", 1i64 << 30)
        .map_err(err)?;
    conn.pragma_update(None, "cache_size", -32768i64)
        .map_err(err)?;
    set_checkpoint_threshold(&conn).map_err(err)?;
    // Closing the last connection leaves the write-ahead log as it is (the
    // next process reads it) instead of copying it into the index there
    // and then: the checkpoints above do that, off the end of a command.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(err)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), LocalStoreError> {
    let err = |source| LocalStoreError::Index {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(LocalStoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
        });
    }
    if version < 1 {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS chunks (digest BLOB PRIMARY KEY, pack INTEGER NOT NULL,
                 offset INTEGER NOT NULL, stored_len INTEGER NOT NULL, size INTEGER NOT NULL,
                 compressed INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS chunk_maps (digest BLOB PRIMARY KEY, map BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS directories (digest BLOB PRIMARY KEY, size INTEGER NOT NULL,
                 data BLOB NOT NULL) WITHOUT ROWID;
             PRAGMA user_version = 1;
             COMMIT;",
        )
        .map_err(err)?;
    }
    Ok(())
}

/// The index entry of one chunk, by digest.
const CHUNK_ENTRY_BY_DIGEST: &str =
    "SELECT pack, offset, stored_len, size, compressed FROM chunks WHERE digest = ?1";

/// A row of [`CHUNK_ENTRY_BY_DIGEST`].
fn chunk_entry_of_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkEntry> {
    Ok(ChunkEntry {
        pack: row.get(0)?,
        offset: row.get::<_, i64>(1)? as u64,
        stored_len: row.get(2)?,
        size: row.get(3)?,
        compressed: row.get(4)?,
    })
}

/// Pack bytes after which written data is handed to the disk in the
/// background, so that the sync at the end of an import finds little left.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Starts writeback of the `WRITEBACK_STEP` that a write of `len` bytes at
/// `offset` completed (the kernel writes it out while the import goes on).
fn start_writeback(file: &File, offset: u64, len: u64) {
    let end = offset + len;
    if end / WRITEBACK_STEP == offset / WRITEBACK_STEP {
        return;
    }
    let step_start = (end / WRITEBACK_STEP - 1) * WRITEBACK_STEP;
    // SAFETY: sync_file_range only reads its integer arguments; the file
    // descriptor is valid for the duration of the borrow.
    let result = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            step_start as libc::off64_t,
            WRITEBACK_STEP as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if result != 0 {
        // Only a hint: the sync at the end writes whatever is left.
        tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range");
    }
}

/// Most chunk entries left uncommitted: more are committed at once. A few
/// such commits while an import reads keep the one at its end short (it
/// is the only one nothing else overlaps); on this project's benchmark
/// tree, 37 000 entries committed at the end took 35-48 ms, a last 4 000
/// after two commits of 16 384 took 12-17 ms.
const DEFER_ENTRIES: usize = 1 << 14;
/// The longest chunk entries stay uncommitted when nothing else asks for
/// a commit (until then only this process sees them).
const DEFER_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes received by the committer and not yet committed.
#[derive(Default)]
struct Pending {
    writes: Vec<ToCommit>,
    /// Writes whose sender waits for the commit.
    waiters: usize,
    /// Chunk entries among the writes.
    chunk_entries: usize,
    /// When the deferral of the chunk entries began: when the first came
    /// in, or when the transaction that failed to commit them ended.
    since: Option<std::time::Instant>,
    /// After a failed transaction, the deferred entries are tried again
    /// only once they are [`DEFER_AT_MOST`] old or somebody waits for a
    /// write, not as soon as there are many of them.
    failed: bool,
}

impl Pending {
    fn push(&mut self, (write, ack): ToCommit) {
        if let IndexWrite::Chunks(entries) = &write {
            self.chunk_entries += entries.len();
            self.since.get_or_insert_with(std::time::Instant::now);
        }
        if ack.is_some() {
            self.waiters += 1;
        }
        self.writes.push((write, ack));
    }

    /// Whether the writes should be committed now: someone waits for
    /// them, or the deferred chunk entries are many or old enough.
    fn due(&self) -> bool {
        self.waiters > 0
            || (!self.failed
                && (self.chunk_entries >= DEFER_ENTRIES || self.writes.len() >= MAX_BATCH))
            || self
                .since
                .is_some_and(|since| since.elapsed() >= DEFER_AT_MOST)
    }
}

/// The committer: commits the index writes of every task of this process,
/// in the order they arrive, many to a transaction.
///
/// Chunk entries come from the pack writer once their bytes are written,
/// and nobody waits for them: they are deferred until a write somebody
/// waits for arrives (a chunk map, directories, a sync), until there are
/// [`DEFER_ENTRIES`] of them, or for [`DEFER_AT_MOST`]. An import's chunk
/// entries thus go to the index in a few transactions, not one every few
/// milliseconds; with random digests as keys, each transaction rewrites
/// most leaf pages of a small chunk table, so this saves most of the
/// index's writes. Order keeps the index consistent: a chunk map or directory is
/// committed in the same transaction as the entries of the chunks it names,
/// or after them, as those entries were handed over before the put that
/// names them returned. Entries of a failed transaction are kept and tried
/// again with the next one; the writes somebody waited for get the error.
/// When the store is dropped, what is left is committed before the thread
/// ends.
fn run_committer(
    mut conn: Connection,
    path: PathBuf,
    rx: mpsc::Receiver<ToCommit>,
    cache: Arc<EntryCache>,
) {
    let mut pending = Pending::default();
    let mut open = true;
    while open {
        let received = match pending.since {
            None if pending.writes.is_empty() => {
                rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            }
            since => {
                let deadline = since.unwrap_or_else(std::time::Instant::now) + DEFER_AT_MOST;
                rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            }
        };
        match received {
            Ok(write) => pending.push(write),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open = false,
        }
        while pending.writes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(write) => pending.push(write),
                Err(_) => break,
            }
        }
        if pending.writes.is_empty() || (open && !pending.due()) {
            continue;
        }
        let batch = std::mem::take(&mut pending);
        let span = tracing::debug_span!(
            "index_commit",
            writes = batch.writes.len(),
            chunk_entries = batch.chunk_entries
        );
        let result = span
            .in_scope(|| commit_batch(&mut conn, &batch.writes))
            .map_err(|e| {
                tracing::error!(index = %path.display(), error = %e, "index commit failed");
                Failure::Commit(e)
            });
        for (write, ack) in batch.writes {
            match (ack, &write) {
                (Some(ack), _) => {
                    let _ = ack.send(result.clone());
                }
                // Committed: the cache may let the entries go now.
                (None, IndexWrite::Chunks(entries)) if result.is_ok() => cache.unpin_all(entries),
                // The chunks are written: their entries wait for the next
                // transaction, at the pace of the deferral.
                (None, _) if result.is_err() => {
                    pending.push((write, None));
                    pending.since = Some(std::time::Instant::now());
                    pending.failed = true;
                }
                (None, _) => {}
            }
        }
        if result.is_err() && !open && !pending.writes.is_empty() {
            tracing::error!(
                index = %path.display(),
                chunk_entries = pending.chunk_entries,
                "chunk entries left uncommitted: their chunks stay unreferenced in the packs"
            );
        }
    }
}

/// Chunk entries inserted by one statement.
const INSERT_BATCH: usize = 32;

/// Inserts [`INSERT_BATCH`] chunk entries, six values each (built once).
fn insert_chunks_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(build_insert_chunks_sql)
}

fn build_insert_chunks_sql() -> String {
    let rows: Vec<String> = (0..INSERT_BATCH)
        .map(|r| {
            let p = 6 * r;
            format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6
            )
        })
        .collect();
    format!(
        "INSERT OR IGNORE INTO chunks (digest, pack, offset, stored_len, size, compressed) VALUES {}",
        rows.join(", ")
    )
}

fn commit_batch(conn: &mut Connection, batch: &[ToCommit]) -> Result<(), String> {
    if batch
        .iter()
        .all(|(write, _)| matches!(write, IndexWrite::Barrier))
    {
        // Only syncs waiting for what came before: nothing to write.
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    {
        let mut chunk = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO chunks (digest, pack, offset, stored_len, size, compressed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(|e| e.to_string())?;
        let mut map = tx
            .prepare_cached("INSERT OR IGNORE INTO chunk_maps (digest, map) VALUES (?1, ?2)")
            .map_err(|e| e.to_string())?;
        let mut dir = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO directories (digest, size, data) VALUES (?1, ?2, ?3)",
            )
            .map_err(|e| e.to_string())?;
        // Chunk entries in key order: each index page is then visited once
        // per transaction rather than once per entry that lands on it.
        let mut chunks: Vec<&(Digest, ChunkEntry)> = batch
            .iter()
            .filter_map(|(write, _)| match write {
                IndexWrite::Chunks(entries) => Some(entries.iter()),
                _ => None,
            })
            .flatten()
            .collect();
        chunks.sort_unstable_by_key(|(digest, _)| *digest);
        // Whole batches of rows in one statement each: a statement per row
        // costs more than the row's insert.
        let batches = chunks.chunks_exact(INSERT_BATCH);
        let rest = batches.remainder();
        if batches.len() > 0 {
            let mut many = tx
                .prepare_cached(insert_chunks_sql())
                .map_err(|e| e.to_string())?;
            for batch in batches {
                use rusqlite::types::{ToSqlOutput, Value, ValueRef};
                let mut values: Vec<ToSqlOutput<'_>> = Vec::with_capacity(6 * INSERT_BATCH);
                for (digest, entry) in batch {
                    values.extend([
                        ToSqlOutput::Borrowed(ValueRef::Blob(digest.as_bytes())),
                        ToSqlOutput::Owned(Value::Integer(entry.pack)),
                        ToSqlOutput::Owned(Value::Integer(entry.offset as i64)),
                        ToSqlOutput::Owned(Value::Integer(entry.stored_len.into())),
                        ToSqlOutput::Owned(Value::Integer(entry.size.into())),
                        ToSqlOutput::Owned(Value::Integer(entry.compressed.into())),
                    ]);
                }
                many.execute(rusqlite::params_from_iter(values))
                    .map_err(|e| e.to_string())?;
            }
        }
        for (digest, entry) in rest {
            chunk
                .execute(params![
                    digest.as_bytes().as_slice(),
                    entry.pack,
                    entry.offset as i64,
                    entry.stored_len,
                    entry.size,
                    entry.compressed
                ])
                .map_err(|e| e.to_string())?;
        }
        for (write, _) in batch {
            match write {
                IndexWrite::Chunks(_) | IndexWrite::Barrier => Ok(0),
                IndexWrite::ChunkMap { digest, map: m } => {
                    map.execute(params![digest.as_bytes().as_slice(), m])
                }
                IndexWrite::Directory { digest, size, data } => {
                    dir.execute(params![digest.as_bytes().as_slice(), *size as i64, data])
                }
                IndexWrite::Directories(directories) => {
                    // In key order, as the chunk entries above.
                    let mut sorted: Vec<&(Digest, u64, Vec<u8>)> = directories.iter().collect();
                    sorted.sort_unstable_by_key(|(digest, _, _)| *digest);
                    sorted.into_iter().try_fold(0, |n, (digest, size, data)| {
                        dir.execute(params![digest.as_bytes().as_slice(), *size as i64, data])
                            .map(|m| n + m)
                    })
                }
            }
            .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

thread_local! {
    /// One zstd context per thread, reused for every chunk.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(1).ok());
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// Decompresses with this thread's reused context.
fn decompress(stored: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| match d.borrow_mut().as_mut() {
        Some(d) => d.decompress(stored, size),
        None => zstd::bulk::decompress(stored, size),
    })
}

/// zstd level 1 when it saves at least 1/16; a 4 KiB probe first.
fn maybe_compress(data: &[u8]) -> Option<Vec<u8>> {
    const PROBE: usize = 4096;
    if data.len() < 512 {
        return None;
    }
    if data.len() > PROBE * 4 {
        let probe = COMPRESSOR.with(|c| {
            c.borrow_mut()
                .as_mut()
                .and_then(|c| c.compress(&data[..PROBE]).ok())
        })?;
        if probe.len() > PROBE - PROBE / 16 {
            return None;
        }
    }
    let compressed =
        COMPRESSOR.with(|c| c.borrow_mut().as_mut().and_then(|c| c.compress(data).ok()))?;
    (compressed.len() <= data.len() - data.len() / 16).then_some(compressed)
}

#[async_trait]
impl ChunkService for LocalStore {
    async fn get(&self, digest: &Digest) -> Result<Option<Bytes>, ChunkError> {
        let Some(entry) = self
            .chunk_entry(digest)
            .map_err(|e| ChunkError::Backend(e.backend()))?
        else {
            return Ok(None);
        };
        self.read_chunk(digest, &entry).map(Some)
    }

    async fn put(&self, digest: Digest, data: Bytes) -> Result<(), ChunkError> {
        self.store_chunks(vec![(digest, data)]).await
    }

    async fn put_batch(&self, chunks: Vec<(Digest, Bytes)>) -> Result<(), ChunkError> {
        self.store_chunks(chunks).await
    }

    async fn put_runs(&self, runs: Vec<ChunkRun>) -> Result<(), ChunkError> {
        if self.options.compress {
            // Compressed chunks are new bytes: nothing to write as it is.
            let chunks = runs.into_iter().flat_map(ChunkRun::into_chunks).collect();
            return self.store_chunks(chunks).await;
        }
        self.store_runs(runs).await
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, ChunkError> {
        Ok(self
            .chunk_entry(digest)
            .map_err(|e| ChunkError::Backend(e.backend()))?
            .map(|e| u64::from(e.size)))
    }

    async fn prepare(&self, digests: &[Digest]) {
        // Batches of a few thousand keep one read transaction short.
        for batch in digests.chunks(4096) {
            if let Err(e) = self.load_chunk_entries(batch) {
                tracing::debug!(error = %e, "looking up chunk entries ahead");
                return;
            }
        }
    }

    async fn puts_paused(&self) {
        // A write with somebody waiting makes the committer commit the
        // deferred chunk entries now; nobody actually waits for it.
        let (ack, _done) = oneshot::channel();
        if let Some(committer) = lock(&self.committer).as_ref() {
            let _ = committer.send((IndexWrite::Barrier, Some(ack)));
        }
    }

    async fn flush(&self) -> Result<(), ChunkError> {
        self.sync()
            .await
            .map_err(|e| ChunkError::Backend(e.backend()))
    }

    async fn list(&self) -> Result<Vec<Digest>, ChunkError> {
        list_digests(self, "SELECT digest FROM chunks")
            .map_err(|e| ChunkError::Backend(e.backend()))
    }
}

fn list_digests(store: &LocalStore, sql: &str) -> Result<Vec<Digest>, LocalStoreError> {
    store.with_reader(|conn| {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(d) = Digest::try_from(row?.as_slice()) {
                out.push(d);
            }
        }
        Ok(out)
    })
}

#[async_trait]
impl BlobService for LocalStore {
    fn chunks(&self) -> &dyn ChunkService {
        self
    }

    async fn stored_chunk_map(&self, blob: &Digest) -> Result<Option<ChunkMap>, BlobError> {
        let bytes = self
            .with_reader(|conn| {
                conn.prepare_cached("SELECT map FROM chunk_maps WHERE digest = ?1")?
                    .query_row([blob.as_bytes().as_slice()], |row| row.get::<_, Vec<u8>>(0))
                    .optional()
            })
            .map_err(|e| BlobError::Backend(e.backend()))?;
        bytes.map(|b| ChunkMap::decode(blob, &b)).transpose()
    }

    async fn put_chunk_map(&self, blob: Digest, map: &ChunkMap) -> Result<(), BlobError> {
        self.commit(IndexWrite::ChunkMap {
            digest: blob,
            map: map.encode(),
        })
        .await
        .map_err(|e| BlobError::Backend(e.backend()))
    }

    async fn list_chunk_maps(&self) -> Result<Vec<Digest>, BlobError> {
        list_digests(self, "SELECT digest FROM chunk_maps")
            .map_err(|e| BlobError::Backend(e.backend()))
    }
}

#[async_trait]
impl DirectoryService for LocalStore {
    async fn get(&self, digest: &Digest) -> Result<Option<Directory>, DirectoryServiceError> {
        let bytes = self
            .with_reader(|conn| {
                conn.prepare_cached("SELECT data FROM directories WHERE digest = ?1")?
                    .query_row([digest.as_bytes().as_slice()], |row| {
                        row.get::<_, Vec<u8>>(0)
                    })
                    .optional()
            })
            .map_err(|e| DirectoryServiceError::Backend(e.backend()))?;
        bytes.map(|b| decode_stored(digest, &b)).transpose()
    }

    async fn size_of(&self, digest: &Digest) -> Result<Option<u64>, DirectoryServiceError> {
        self.with_reader(|conn| {
            conn.prepare_cached("SELECT size FROM directories WHERE digest = ?1")?
                .query_row([digest.as_bytes().as_slice()], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|s| s.map(|s| s as u64))
        .map_err(|e| DirectoryServiceError::Backend(e.backend()))
    }

    async fn put_checked(
        &self,
        digest: Digest,
        directory: &Directory,
    ) -> Result<(), DirectoryServiceError> {
        self.commit(IndexWrite::Directory {
            digest,
            size: directory.size(),
            data: directory.encode(),
        })
        .await
        .map_err(|e| DirectoryServiceError::Backend(e.backend()))
    }

    async fn put_all(
        &self,
        directories: &[Directory],
    ) -> Result<Vec<Digest>, DirectoryServiceError> {
        self.put_directories(directories, false).await
    }

    async fn put_tree(
        &self,
        directories: &[Directory],
    ) -> Result<Vec<Digest>, DirectoryServiceError> {
        self.put_directories(directories, true).await
    }

    async fn flush(&self) -> Result<(), DirectoryServiceError> {
        self.sync()
            .await
            .map_err(|e| DirectoryServiceError::Backend(e.backend()))
    }

    async fn list(&self) -> Result<Vec<Digest>, DirectoryServiceError> {
        list_digests(self, "SELECT digest FROM directories")
            .map_err(|e| DirectoryServiceError::Backend(e.backend()))
    }
}
