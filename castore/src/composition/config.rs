//! The composition configuration: named stores and the root alias.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ChunkerConfig;
use crate::backends::objectstore::RemoteOptions;

/// Why a composition cannot be read or used.
#[derive(Debug, thiserror::Error)]
pub enum CompositionError {
    #[error("reading the store configuration {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store configuration: {0}")]
    Toml(#[from] Box<toml::de::Error>),
    #[error("store URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("store {from:?} refers to {to:?}, which is not defined (defined: {defined})")]
    UnknownAlias {
        from: String,
        to: String,
        defined: String,
    },
    #[error("the root store {0:?} is not defined")]
    UnknownRoot(String),
    #[error("stores refer to each other in a cycle: {0}")]
    Cycle(String),
    #[error("store {0:?}: a {1} needs at least one member")]
    NoMembers(String, &'static str),
    #[error("chunking: {0}")]
    Chunking(#[from] crate::chunking::ChunkerConfigError),
    #[error("store {alias:?} ({kind}) cannot serve {what}")]
    Unsupported {
        alias: String,
        kind: &'static str,
        what: &'static str,
    },
    #[error("store {alias:?}: {source}")]
    Open {
        alias: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Chunk sizes of new blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl From<ChunkerConfig> for Chunking {
    fn from(c: ChunkerConfig) -> Self {
        Chunking {
            min_size: c.min_size,
            avg_size: c.avg_size,
            max_size: c.max_size,
        }
    }
}

/// Retry and timeout settings of a remote store, in milliseconds (the
/// fields of an `objectstore` store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    /// Retries of a failed request, with exponential backoff.
    pub retries: usize,
    /// First backoff (doubled per retry, up to 2 s).
    pub backoff_ms: u64,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout_ms: u64,
    /// Bound on one request.
    pub request_timeout_ms: u64,
    /// Bound on connecting.
    pub connect_timeout_ms: u64,
}

impl Default for Remote {
    fn default() -> Self {
        let d = RemoteOptions::default();
        Remote {
            retries: d.retries,
            backoff_ms: d.initial_backoff.as_millis() as u64,
            retry_timeout_ms: d.retry_timeout.as_millis() as u64,
            request_timeout_ms: d.request_timeout.as_millis() as u64,
            connect_timeout_ms: d.connect_timeout.as_millis() as u64,
        }
    }
}

impl Remote {
    pub fn options(&self) -> RemoteOptions {
        use std::time::Duration;
        RemoteOptions {
            retries: self.retries,
            initial_backoff: Duration::from_millis(self.backoff_ms),
            retry_timeout: Duration::from_millis(self.retry_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
        }
    }
}

fn default_retries() -> usize {
    Remote::default().retries
}
fn default_backoff_ms() -> u64 {
    Remote::default().backoff_ms
}
fn default_retry_timeout_ms() -> u64 {
    Remote::default().retry_timeout_ms
}
fn default_request_timeout_ms() -> u64 {
    Remote::default().request_timeout_ms
}
fn default_connect_timeout_ms() -> u64 {
    Remote::default().connect_timeout_ms
}

/// Compression of the chunks a local store writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    #[default]
    None,
    Zstd,
}

impl Compression {
    fn is_none(&self) -> bool {
        *self == Compression::None
    }
}

/// One named store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StoreKind {
    /// The embedded local store (chunks, directories, path database) in
    /// `path`; without a path, the default store directory.
    Local {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
        /// How chunks written from now on are stored: `none` (the default:
        /// raw, as files in a Nix store) or `zstd` (where it saves at least
        /// 1/16; costs CPU on every import and cold read). Reads handle both.
        #[serde(default, skip_serializing_if = "Compression::is_none")]
        compression: Compression,
    },
    /// A store in memory, gone when the process ends.
    Memory {},
    /// An object store: `url` as `object_store` parses it (`s3://`,
    /// `gs://`, `az://`, `http(s)://` read-only, `file://`, `memory://`),
    /// `options` its configuration keys (region, endpoint, ...).
    Objectstore {
        url: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        options: BTreeMap<String, String>,
        /// Retries of a failed request, with exponential backoff.
        #[serde(default = "default_retries")]
        retries: usize,
        /// First backoff in ms (doubled per retry, up to 2 s).
        #[serde(default = "default_backoff_ms")]
        backoff_ms: u64,
        /// No retry starts later than this after the first attempt (ms).
        #[serde(default = "default_retry_timeout_ms")]
        retry_timeout_ms: u64,
        /// Bound on one request (ms).
        #[serde(default = "default_request_timeout_ms")]
        request_timeout_ms: u64,
        /// Bound on connecting (ms).
        #[serde(default = "default_connect_timeout_ms")]
        connect_timeout_ms: u64,
    },
    /// `near` in front of `far`: reads from far are written to near.
    Cache { near: String, far: String },
    /// Members asked in order; writes go to the first.
    Priority { stores: Vec<String> },
    /// Members asked at once; the first answer wins; writes go to all.
    Race { stores: Vec<String> },
    /// Remembers misses of `inner` for `ttl_ms` milliseconds.
    NegativeCache {
        inner: String,
        #[serde(default = "default_negative_ttl")]
        ttl_ms: u64,
    },
    /// A Nix binary cache (`file:///dir`, `http(s)://host/prefix`), read
    /// only: paths are substituted when looked up. `trusted_public_keys`
    /// in Nix's `name:base64` form; `require_sigs = false` accepts
    /// unsigned paths; contents are ingested into the store `content`
    /// (memory without it); absent paths are remembered `negative_ttl_ms`.
    BinaryCache {
        url: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        trusted_public_keys: Vec<String>,
        #[serde(default = "default_require_sigs")]
        require_sigs: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default = "default_negative_ttl")]
        negative_ttl_ms: u64,
    },
}

fn default_require_sigs() -> bool {
    true
}

fn default_negative_ttl() -> u64 {
    2000
}

impl StoreKind {
    /// The aliases this store refers to.
    pub fn references(&self) -> Vec<&str> {
        match self {
            StoreKind::Local { .. } | StoreKind::Memory {} | StoreKind::Objectstore { .. } => {
                vec![]
            }
            StoreKind::Cache { near, far } => vec![near, far],
            StoreKind::Priority { stores } | StoreKind::Race { stores } => {
                stores.iter().map(String::as_str).collect()
            }
            StoreKind::NegativeCache { inner, .. } => vec![inner],
            StoreKind::BinaryCache { content, .. } => content.iter().map(String::as_str).collect(),
        }
    }

    /// The retry and timeout settings of an `objectstore` store.
    pub fn remote(&self) -> Option<Remote> {
        match self {
            StoreKind::Objectstore {
                retries,
                backoff_ms,
                retry_timeout_ms,
                request_timeout_ms,
                connect_timeout_ms,
                ..
            } => Some(Remote {
                retries: *retries,
                backoff_ms: *backoff_ms,
                retry_timeout_ms: *retry_timeout_ms,
                request_timeout_ms: *request_timeout_ms,
                connect_timeout_ms: *connect_timeout_ms,
            }),
            _ => None,
        }
    }

    /// The kind's name as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            StoreKind::Local { .. } => "local",
            StoreKind::Memory {} => "memory",
            StoreKind::Objectstore { .. } => "objectstore",
            StoreKind::Cache { .. } => "cache",
            StoreKind::Priority { .. } => "priority",
            StoreKind::Race { .. } => "race",
            StoreKind::NegativeCache { .. } => "negative-cache",
            StoreKind::BinaryCache { .. } => "binary-cache",
        }
    }
}

/// Named stores and the root alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Composition {
    /// The store commands work with.
    pub root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunking: Option<Chunking>,
    pub stores: BTreeMap<String, StoreKind>,
}

impl Composition {
    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Composition, CompositionError> {
        let composition: Composition = toml::from_str(text).map_err(Box::new)?;
        composition.validate()?;
        Ok(composition)
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Composition, CompositionError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompositionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Composition::from_toml(&text)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The chunker new blobs are cut with.
    pub fn chunker(&self) -> Result<ChunkerConfig, CompositionError> {
        match self.chunking {
            Some(c) => Ok(ChunkerConfig::new(c.min_size, c.avg_size, c.max_size)?),
            None => Ok(ChunkerConfig::default()),
        }
    }

    /// Checks that the root and every reference name a defined store, that
    /// no store reaches itself, and that lists are not empty.
    pub fn validate(&self) -> Result<(), CompositionError> {
        if !self.stores.contains_key(&self.root) {
            return Err(CompositionError::UnknownRoot(self.root.clone()));
        }
        self.chunker()?;
        for (alias, kind) in &self.stores {
            match kind {
                StoreKind::Priority { stores } if stores.is_empty() => {
                    return Err(CompositionError::NoMembers(alias.clone(), "priority list"));
                }
                StoreKind::Race { stores } if stores.is_empty() => {
                    return Err(CompositionError::NoMembers(alias.clone(), "race"));
                }
                _ => {}
            }
            for to in kind.references() {
                if !self.stores.contains_key(to) {
                    return Err(CompositionError::UnknownAlias {
                        from: alias.clone(),
                        to: to.to_string(),
                        defined: self.stores.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            }
        }
        self.topological_order().map(drop)
    }

    /// Every store, each after the stores it refers to.
    pub fn topological_order(&self) -> Result<Vec<&str>, CompositionError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: HashMap<&str, Mark> = HashMap::new();
        let mut order = Vec::new();
        // Iterative depth-first search; `path` is the chain being visited.
        for start in self.stores.keys() {
            if marks.contains_key(start.as_str()) {
                continue;
            }
            let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
            marks.insert(start.as_str(), Mark::Visiting);
            while let Some((alias, next)) = path.last().copied() {
                let refs = self
                    .stores
                    .get(alias)
                    .map(|k| k.references())
                    .unwrap_or_default();
                if let Some(child) = refs.get(next).copied() {
                    if let Some(top) = path.last_mut() {
                        top.1 += 1;
                    }
                    match marks.get(child) {
                        Some(Mark::Done) => {}
                        Some(Mark::Visiting) => {
                            let from = path.iter().position(|(a, _)| *a == child).unwrap_or(0);
                            let mut cycle: Vec<&str> =
                                path[from..].iter().map(|(a, _)| *a).collect();
                            cycle.push(child);
                            return Err(CompositionError::Cycle(cycle.join(" -> ")));
                        }
                        None => {
                            if !self.stores.contains_key(child) {
                                return Err(CompositionError::UnknownAlias {
                                    from: alias.to_string(),
                                    to: child.to_string(),
                                    defined: self
                                        .stores
                                        .keys()
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join(", "),
                                });
                            }
                            marks.insert(child, Mark::Visiting);
                            path.push((child, 0));
                        }
                    }
                } else {
                    marks.insert(alias, Mark::Done);
                    order.push(alias);
                    path.pop();
                }
            }
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
root = "main"

[stores.main]
kind = "cache"
near = "disk"
far = "s3"

[stores.disk]
kind = "local"
path = "/var/cache/cairn"

[stores.s3]
kind = "objectstore"
url = "s3://bucket/prefix"
options = { region = "eu-west-1" }
retries = 5
"#;

    #[test]
    fn a_configuration_parses_and_prints_back() {
        let c = Composition::from_toml(EXAMPLE).expect("valid");
        assert_eq!(
            c.stores["main"],
            StoreKind::Cache {
                near: "disk".into(),
                far: "s3".into()
            }
        );
        let remote = c.stores["s3"].remote().expect("an object store");
        match &c.stores["s3"] {
            StoreKind::Objectstore { options, .. } => {
                assert_eq!(remote.retries, 5);
                assert_eq!(
                    remote.request_timeout_ms,
                    Remote::default().request_timeout_ms
                );
                assert_eq!(options["region"], "eu-west-1");
            }
            other => panic!("unexpected {other:?}"),
        }
        let again = Composition::from_toml(&c.to_toml()).expect("printed form parses");
        assert_eq!(again, c);
        let order = c.topological_order().expect("acyclic");
        let pos = |a: &str| order.iter().position(|x| *x == a).expect("listed");
        assert!(pos("disk") < pos("main") && pos("s3") < pos("main"));
    }

    #[test]
    fn unknown_aliases_are_named() {
        let text = EXAMPLE.replace("far = \"s3\"", "far = \"s4\"");
        let err = Composition::from_toml(&text)
            .expect_err("unknown alias")
            .to_string();
        assert!(err.contains("\"main\" refers to \"s4\""), "{err}");
    }

    #[test]
    fn cycles_are_shown() {
        let text = r#"
root = "a"
[stores.a]
kind = "cache"
near = "m"
far = "b"
[stores.b]
kind = "priority"
stores = ["m", "a"]
[stores.m]
kind = "memory"
"#;
        let err = Composition::from_toml(text).expect_err("cycle").to_string();
        assert!(err.contains("a -> b -> a"), "{err}");
        let self_loop = "root = \"a\"\n[stores.a]\nkind = \"negative-cache\"\ninner = \"a\"\n";
        let err = Composition::from_toml(self_loop)
            .expect_err("cycle")
            .to_string();
        assert!(err.contains("a -> a"), "{err}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let err = Composition::from_toml("root = \"a\"\n[stores.a]\nkind = \"memory\"\nsize = 3\n")
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("size"), "{err}");
        let err = Composition::from_toml("root = \"a\"\n[stores.a]\nkind = \"tape\"\n")
            .expect_err("unknown kind")
            .to_string();
        assert!(err.contains("tape"), "{err}");
        let err = Composition::from_toml("root = \"b\"\n[stores.a]\nkind = \"memory\"\n")
            .expect_err("unknown root")
            .to_string();
        assert!(err.contains("\"b\""), "{err}");
        let err =
            Composition::from_toml("root = \"a\"\n[stores.a]\nkind = \"race\"\nstores = []\n")
                .expect_err("empty race")
                .to_string();
        assert!(err.contains("at least one"), "{err}");
    }
}
