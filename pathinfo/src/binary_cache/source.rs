//! Where a binary cache's files come from: a directory (`file://`) or an
//! HTTP server (`http://`, `https://`).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;

use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// Why a file could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("unsupported binary cache URL {0:?} (use file://, http:// or https://)")]
    Url(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: HTTP status {status}")]
    Status { what: String, status: u16 },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("invalid file name {0:?} in the binary cache")]
    BadName(String),
}

/// A stream of a file's bytes.
pub type FileReader = Pin<Box<dyn AsyncRead + Send>>;

/// The files of a binary cache.
#[derive(Clone)]
pub enum CacheSource {
    /// A directory.
    Directory(PathBuf),
    /// An HTTP(S) server; `base` ends with `/`.
    Http {
        client: reqwest::Client,
        base: url::Url,
    },
}

impl fmt::Display for CacheSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheSource::Directory(dir) => write!(f, "file://{}", dir.display()),
            CacheSource::Http { base, .. } => write!(f, "{base}"),
        }
    }
}

/// Cache-relative names: no absolute paths, no `..`, no empty segments.
fn check_name(name: &str) -> Result<(), SourceError> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && !name.contains(['?', '#', '\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(SourceError::BadName(name.to_string()))
    }
}

impl CacheSource {
    /// The cache at `url` (`file:///dir`, `http://host/prefix`, ...),
    /// without its query.
    pub fn from_url(url: &str) -> Result<CacheSource, SourceError> {
        let mut parsed = url::Url::parse(url).map_err(|_| SourceError::Url(url.to_string()))?;
        parsed.set_query(None);
        parsed.set_fragment(None);
        match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| SourceError::Url(url.to_string()))?;
                Ok(CacheSource::Directory(dir))
            }
            "http" | "https" => {
                if !parsed.path().ends_with('/') {
                    let path = format!("{}/", parsed.path());
                    parsed.set_path(&path);
                }
                // reqwest is built without a TLS provider of its own: ring,
                // as for the object stores (a no-op if one is installed).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .connect_timeout(std::time::Duration::from_secs(30))
                    .build()
                    .map_err(|source| SourceError::Http {
                        what: format!("creating an HTTP client for {url}"),
                        source,
                    })?;
                Ok(CacheSource::Http {
                    client,
                    base: parsed,
                })
            }
            _ => Err(SourceError::Url(url.to_string())),
        }
    }

    /// Opens `name`; `None` if the cache has no such file.
    pub async fn fetch_stream(&self, name: &str) -> Result<Option<FileReader>, SourceError> {
        check_name(name)?;
        match self {
            CacheSource::Directory(dir) => {
                let path = dir.join(name);
                match tokio::fs::File::open(&path).await {
                    Ok(file) => Ok(Some(Box::pin(file))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(SourceError::Io {
                        what: format!("opening {}", path.display()),
                        source,
                    }),
                }
            }
            CacheSource::Http { client, base } => {
                let url = base
                    .join(name)
                    .map_err(|_| SourceError::BadName(name.to_string()))?;
                let what = || format!("GET {url}");
                let response =
                    client
                        .get(url.clone())
                        .send()
                        .await
                        .map_err(|source| SourceError::Http {
                            what: what(),
                            source,
                        })?;
                let status = response.status();
                if status == reqwest::StatusCode::NOT_FOUND
                    || status == reqwest::StatusCode::FORBIDDEN
                {
                    return Ok(None);
                }
                if !status.is_success() {
                    return Err(SourceError::Status {
                        what: what(),
                        status: status.as_u16(),
                    });
                }
                let stream = response.bytes_stream().map_err(io::Error::other);
                Ok(Some(Box::pin(StreamReader::new(stream))))
            }
        }
    }

    /// Reads `name` whole, refusing files larger than `limit`.
    pub async fn fetch_small(
        &self,
        name: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(reader) = self.fetch_stream(name).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|source| SourceError::Io {
                what: format!("reading {name}"),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(SourceError::TooLarge {
                what: name.to_string(),
                limit,
            });
        }
        Ok(Some(bytes))
    }
}
