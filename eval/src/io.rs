//! The evaluator's interface to the filesystem and the store. Everything
//! that touches the outside world goes through [`EvalIo`], so a store
//! implementation can be plugged in without changing the evaluator core.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A file's type as `builtins.readFileType` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    Unknown,
}

impl FileType {
    /// The name Nix uses.
    pub fn name(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }
}

/// A fetcher call (`builtins.fetchurl`, `fetchTarball`, `fetchGit`,
/// `fetchMercurial`, `fetchTree`): the builtin and its argument, given as
/// a URL or as the string attributes of the set passed.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub fetcher: &'static str,
    pub url: Option<Vec<u8>>,
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FetchRequest {
    /// The URL, from the plain argument or the `url` attribute.
    pub fn url(&self) -> Option<&[u8]> {
        self.url.as_deref().or_else(|| {
            self.attrs
                .iter()
                .find(|(k, _)| k == b"url")
                .map(|(_, v)| v.as_slice())
        })
    }
}

/// What a fetcher put into the store: its store path and, for the
/// fetchers that return a set, the other attributes (`rev`, `narHash`, ...).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub store_path: Vec<u8>,
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The error of a store that cannot fetch.
pub fn fetch_unavailable(req: &FetchRequest) -> String {
    let what = req
        .url()
        .map(|u| format!(" '{}'", String::from_utf8_lossy(u)))
        .unwrap_or_default();
    format!(
        "cannot fetch{what} with builtins.{}: fetching needs a store to put the result in, and none is available to the evaluator",
        req.fetcher
    )
}

/// Filesystem and store access used by builtins.
pub trait EvalIo {
    /// Reads a whole file.
    fn read_file(&self, path: &[u8]) -> Result<Vec<u8>, String>;
    /// Whether a path exists (following symlinks).
    fn path_exists(&self, path: &[u8]) -> bool;
    /// Whether a path is a directory (following symlinks).
    fn is_directory(&self, path: &[u8]) -> bool;
    /// The type of a path (not following a final symlink).
    fn file_type(&self, path: &[u8]) -> Result<FileType, String>;
    /// Directory entries with their types.
    fn read_dir(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, FileType)>, String>;
    /// Adds a path to the store, returning its store path.
    fn copy_path_to_store(&self, path: &[u8]) -> Result<Vec<u8>, String>;
    /// Adds a text file with the given references to the store.
    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[Vec<u8>],
    ) -> Result<Vec<u8>, String>;
    /// Runs a fetcher, adding what it fetched to the store.
    fn fetch(&self, req: &FetchRequest) -> Result<Fetched, String> {
        Err(fetch_unavailable(req))
    }
    /// The store directory.
    fn store_dir(&self) -> String;
    /// An environment variable.
    fn get_env(&self, name: &[u8]) -> Option<Vec<u8>>;
}

/// The default implementation: the real filesystem, with store paths
/// computed locally (nothing is written to a store).
pub struct RealIo {
    pub store_dir: String,
}

impl Default for RealIo {
    fn default() -> Self {
        RealIo {
            store_dir: std::env::var("NIX_STORE_DIR").unwrap_or_else(|_| "/nix/store".to_string()),
        }
    }
}

fn p(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn ft(t: std::fs::FileType) -> FileType {
    if t.is_symlink() {
        FileType::Symlink
    } else if t.is_dir() {
        FileType::Directory
    } else if t.is_file() {
        FileType::Regular
    } else {
        FileType::Unknown
    }
}

fn io_err(path: &[u8], e: std::io::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
    format!("opening file '{}': {}", String::from_utf8_lossy(path), msg)
}

impl EvalIo for RealIo {
    fn read_file(&self, path: &[u8]) -> Result<Vec<u8>, String> {
        std::fs::read(p(path)).map_err(|e| io_err(path, e))
    }
    fn path_exists(&self, path: &[u8]) -> bool {
        p(path).exists()
    }
    fn is_directory(&self, path: &[u8]) -> bool {
        p(path).is_dir()
    }
    fn file_type(&self, path: &[u8]) -> Result<FileType, String> {
        std::fs::symlink_metadata(p(path))
            .map(|m| ft(m.file_type()))
            .map_err(|e| io_err(path, e))
    }
    fn read_dir(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, FileType)>, String> {
        let shown = String::from_utf8_lossy(path);
        match std::fs::metadata(p(path)) {
            Err(_) => return Err(format!("path '{shown}' does not exist")),
            Ok(m) if !m.is_dir() => return Err(format!("'{shown}' is not a directory")),
            Ok(_) => {}
        }
        let rd = std::fs::read_dir(p(path)).map_err(|e| io_err(path, e))?;
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| io_err(path, e))?;
            let t = e.file_type().map(ft).unwrap_or(FileType::Unknown);
            out.push((e.file_name().as_bytes().to_vec(), t));
        }
        Ok(out)
    }
    fn copy_path_to_store(&self, path: &[u8]) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        let store = self.store_dir.as_bytes();
        if path.starts_with(store) && path.get(store.len()) == Some(&b'/') {
            let rest = &path[store.len() + 1..];
            let end = rest.iter().position(|&c| c == b'/').unwrap_or(rest.len());
            let mut sp = store.to_vec();
            sp.push(b'/');
            sp.extend_from_slice(&rest[..end]);
            if end == rest.len() {
                return Ok(sp);
            }
        }
        if std::fs::symlink_metadata(p(path)).is_err() {
            return Err(format!(
                "path '{}' does not exist",
                String::from_utf8_lossy(path)
            ));
        }
        let nar = crate::store::nar(p(path)).map_err(|e| io_err(path, e))?;
        let h = sha2::Sha256::digest(&nar);
        let name = path.rsplit(|&c| c == b'/').next().unwrap_or(b"source");
        let name = String::from_utf8_lossy(name);
        Ok(crate::store::make_store_path(&self.store_dir, "source", &h, &name).into_bytes())
    }
    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[Vec<u8>],
    ) -> Result<Vec<u8>, String> {
        use sha2::Digest;
        let h = sha2::Sha256::digest(text);
        let mut ty = String::from("text");
        let mut refs: Vec<_> = refs.to_vec();
        refs.sort();
        refs.dedup();
        for r in refs {
            ty.push(':');
            ty.push_str(&String::from_utf8_lossy(&r));
        }
        Ok(crate::store::make_store_path(&self.store_dir, &ty, &h, name).into_bytes())
    }
    fn store_dir(&self) -> String {
        self.store_dir.clone()
    }
    fn get_env(&self, name: &[u8]) -> Option<Vec<u8>> {
        std::env::var_os(OsStr::from_bytes(name)).map(|v| v.as_bytes().to_vec())
    }
}

/// An implementation without any filesystem access (every operation
/// fails), for sandboxed evaluation such as fuzzing.
pub struct NoIo;

impl EvalIo for NoIo {
    fn read_file(&self, path: &[u8]) -> Result<Vec<u8>, String> {
        Err(format!(
            "access to '{}' is not allowed",
            String::from_utf8_lossy(path)
        ))
    }
    fn path_exists(&self, _path: &[u8]) -> bool {
        false
    }
    fn is_directory(&self, _path: &[u8]) -> bool {
        false
    }
    fn file_type(&self, path: &[u8]) -> Result<FileType, String> {
        Err(format!(
            "access to '{}' is not allowed",
            String::from_utf8_lossy(path)
        ))
    }
    fn read_dir(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, FileType)>, String> {
        Err(format!(
            "access to '{}' is not allowed",
            String::from_utf8_lossy(path)
        ))
    }
    fn copy_path_to_store(&self, path: &[u8]) -> Result<Vec<u8>, String> {
        Err(format!(
            "access to '{}' is not allowed",
            String::from_utf8_lossy(path)
        ))
    }
    fn add_text_to_store(
        &self,
        name: &str,
        text: &[u8],
        refs: &[Vec<u8>],
    ) -> Result<Vec<u8>, String> {
        RealIo::default().add_text_to_store(name, text, refs)
    }
    fn store_dir(&self) -> String {
        "/nix/store".to_string()
    }
    fn get_env(&self, _name: &[u8]) -> Option<Vec<u8>> {
        None
    }
}
