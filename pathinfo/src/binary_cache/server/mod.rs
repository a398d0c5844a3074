//! A Nix binary cache served over HTTP from a cairn store.
//!
//! - `GET /nix-cache-info`: `StoreDir`, `WantMassQuery`, `Priority`;
//! - `GET|HEAD /<hash>.narinfo`: built from the store's PathInfo, signed
//!   with the configured secret key;
//! - `GET|HEAD /nar/<hash>-<NAR sha256>.nar[.zst]`: the NAR rendered from
//!   castore on the fly, uncompressed (with `Range` support) or zstd;
//! - `PUT /nar/…` and `PUT /<hash>.narinfo`: uploads, as `nix copy --to
//!   http://…` makes them (see [`upload`]).
//!
//! Connections are bounded by a semaphore, request bodies by size, header
//! reads by a timeout. Every request runs in its own tracing span.

pub mod body;
pub mod range;
pub mod route;
pub mod upload;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_compression::Level;
use async_compression::tokio::write::ZstdEncoder;
use cairn_castore::CaStore;
use http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{Instrument, field, info_span};

use crate::hash::NixHash;
use crate::ingest::IngestError;
use crate::narinfo::{NarInfo, NarInfoError};
use crate::path_info::PathInfo;
use crate::render::{RenderOptions, render_nar_unhashed};
use crate::service::{PathInfoError, PathInfoService};
use crate::signing::SecretKey;
use crate::store_path::StoreDir;
use crate::{binary_cache::MAX_NARINFO_SIZE, nixbase32};

use body::{RangeWriter, ResponseBody};
use range::{RangeRequest, parse_range};
use route::{NarCompression, RenderedNarName, Route, parse_route};
use upload::PendingNars;

/// Why a request failed; each maps to an HTTP status and a one-line
/// plain-text body.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
    #[error("this binary cache does not accept uploads")]
    ReadOnly,
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("range not satisfiable: the NAR has {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("reading the request body: {0}")]
    Body(#[source] io::Error),
    #[error("the narinfo is not UTF-8")]
    NarInfoNotUtf8,
    #[error("invalid narinfo: {0}")]
    NarInfo(#[source] NarInfoError),
    #[error("{url_hash}.narinfo describes {found}, not a path with hash part {url_hash}")]
    WrongPath { url_hash: String, found: String },
    #[error("{path}: the NAR {url} has not been uploaded; upload it before its narinfo")]
    NarNotUploaded { path: String, url: String },
    #[error("{path}: {what} mismatch: the narinfo says {expected}, the uploaded NAR has {actual}")]
    Mismatch {
        path: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{path}: {content_address} does not give this store path")]
    WrongContentAddress {
        path: String,
        content_address: String,
    },
    #[error("{path}: references {missing} are not in this cache; upload them first")]
    MissingReferences { path: String, missing: String },
    #[error("invalid NAR upload {url}: {source}")]
    InvalidNar {
        url: String,
        #[source]
        source: Box<IngestError>,
    },
    #[error("NAR upload {url}: trailing data after the NAR")]
    TrailingData { url: String },
    #[error("storing the NAR upload {url}: {source}")]
    Ingest {
        url: String,
        #[source]
        source: Box<IngestError>,
    },
    #[error(transparent)]
    PathInfo(#[from] PathInfoError),
    #[error("{path}: making the narinfo: {source}")]
    Sign {
        path: String,
        #[source]
        source: NarInfoError,
    },
}

impl ServeError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ServeError::ReadOnly => StatusCode::FORBIDDEN,
            ServeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ServeError::NarNotUploaded { .. } | ServeError::MissingReferences { .. } => {
                StatusCode::CONFLICT
            }
            ServeError::Body(_)
            | ServeError::NarInfoNotUtf8
            | ServeError::NarInfo(_)
            | ServeError::WrongPath { .. }
            | ServeError::Mismatch { .. }
            | ServeError::WrongContentAddress { .. }
            | ServeError::InvalidNar { .. }
            | ServeError::TrailingData { .. } => StatusCode::BAD_REQUEST,
            ServeError::Ingest { .. } | ServeError::PathInfo(_) | ServeError::Sign { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// The compression of the NARs the narinfo files point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedCompression {
    None,
    Zstd { level: i32 },
}

impl ServedCompression {
    fn nar_compression(self) -> NarCompression {
        match self {
            ServedCompression::None => NarCompression::None,
            ServedCompression::Zstd { .. } => NarCompression::Zstd,
        }
    }
}

/// How the cache is served.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub store_dir: StoreDir,
    /// Signs every narinfo served (in addition to the stored signatures).
    pub secret_key: Option<SecretKey>,
    pub compression: ServedCompression,
    /// `Priority` in nix-cache-info (lower is preferred by Nix).
    pub priority: u32,
    pub want_mass_query: bool,
    /// Accept `PUT` of NARs and narinfo files.
    pub allow_uploads: bool,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// The largest NAR upload, compressed and uncompressed.
    pub max_upload_bytes: u64,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    pub render: RenderOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            store_dir: StoreDir::default(),
            secret_key: None,
            compression: ServedCompression::None,
            priority: 40,
            want_mass_query: true,
            allow_uploads: true,
            max_connections: 64,
            max_upload_bytes: 16 << 30,
            header_timeout: Duration::from_secs(30),
            render: RenderOptions::default(),
        }
    }
}

/// A binary cache over a cairn store.
pub struct CacheServer {
    castore: CaStore,
    paths: Arc<dyn PathInfoService>,
    options: ServerOptions,
    pending: PendingNars,
}

type Reply = Response<ResponseBody>;

fn text_reply(status: StatusCode, content_type: &'static str, text: String, head: bool) -> Reply {
    let len = text.len();
    let mut response = Response::new(if head {
        body::empty()
    } else {
        body::full(text)
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

impl CacheServer {
    pub fn new(
        castore: CaStore,
        paths: Arc<dyn PathInfoService>,
        options: ServerOptions,
    ) -> Arc<CacheServer> {
        Arc::new(CacheServer {
            castore,
            paths,
            options,
            pending: PendingNars::default(),
        })
    }

    /// Accepts connections on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let slots = Arc::new(Semaphore::new(self.options.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.map_err(io::Error::other)?,
                () = &mut shutdown => return Ok(()),
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            tokio::spawn(async move {
                server.connection(stream, peer).await;
                drop(permit);
            });
        }
    }

    async fn connection(self: Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let server = self.clone();
        let service = service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request, peer).await) }
        });
        let result = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .await;
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }

    /// Answers one request.
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>, peer: SocketAddr) -> Reply {
        let span = info_span!(
            "request",
            %peer,
            method = %request.method(),
            path = %request.uri().path(),
            status = field::Empty,
        );
        async move {
            let head = request.method() == Method::HEAD;
            let response = match self.route(request).await {
                Ok(response) => response,
                Err(error) => {
                    let status = error.status();
                    if status.is_server_error() {
                        tracing::error!("{error}");
                    } else {
                        tracing::info!("{error}");
                    }
                    text_reply(
                        status,
                        "text/plain; charset=utf-8",
                        format!("{error}\n"),
                        head,
                    )
                }
            };
            tracing::Span::current().record("status", response.status().as_u16());
            response
        }
        .instrument(span)
        .await
    }

    async fn route(&self, request: Request<Incoming>) -> Result<Reply, ServeError> {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let head = method == Method::HEAD;
        let not_allowed = || ServeError::MethodNotAllowed {
            method: method.clone(),
            path: path.clone(),
        };
        match (parse_route(&path), &method) {
            (Route::CacheInfo, &Method::GET | &Method::HEAD) => Ok(self.cache_info(head)),
            (Route::NarInfo(digest), &Method::GET | &Method::HEAD) => {
                self.narinfo(&digest, head).await
            }
            (Route::NarInfo(digest), &Method::PUT) => {
                self.check_uploads()?;
                self.accept_narinfo(&digest, request.into_body()).await
            }
            (
                Route::Nar {
                    url,
                    rendered: Some(name),
                    ..
                },
                &Method::GET | &Method::HEAD,
            ) => {
                let range = request
                    .headers()
                    .get(RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                self.nar(&url, &name, range.as_deref(), head).await
            }
            (Route::Nar { url, .. }, &Method::HEAD) if self.pending.get(&url).is_some() => Ok(
                text_reply(StatusCode::OK, "application/x-nix-nar", String::new(), true),
            ),
            (Route::Nar { url, .. }, &Method::GET | &Method::HEAD) => {
                Err(ServeError::NotFound(url))
            }
            (
                Route::Nar {
                    url, compression, ..
                },
                &Method::PUT,
            ) => {
                self.check_uploads()?;
                self.accept_nar(url, compression, request).await
            }
            (Route::Unknown, _) => Err(ServeError::NotFound(path.clone())),
            _ => Err(not_allowed()),
        }
    }

    fn check_uploads(&self) -> Result<(), ServeError> {
        if self.options.allow_uploads {
            Ok(())
        } else {
            Err(ServeError::ReadOnly)
        }
    }

    fn cache_info(&self, head: bool) -> Reply {
        let text = format!(
            "StoreDir: {}\nWantMassQuery: {}\nPriority: {}\n",
            self.options.store_dir.as_str(),
            u8::from(self.options.want_mass_query),
            self.options.priority
        );
        text_reply(StatusCode::OK, "text/x-nix-cache-info", text, head)
    }

    /// The narinfo of `info` as this server publishes it.
    pub fn narinfo_text(&self, info: &PathInfo) -> Result<String, ServeError> {
        let compression = self.options.compression.nar_compression();
        let name = RenderedNarName {
            path_digest: *info.store_path.digest(),
            nar_sha256: info.nar_sha256,
            compression,
        };
        let (file_hash, file_size) = match compression {
            NarCompression::None => (Some(NixHash::Sha256(info.nar_sha256)), Some(info.nar_size)),
            // Known only once compressed; Nix does not need them.
            _ => (None, None),
        };
        let mut narinfo = NarInfo {
            store_path: info.store_path.clone(),
            url: name.url(),
            compression: Some(compression.narinfo_name().to_string()),
            file_hash,
            file_size,
            nar_hash: NixHash::Sha256(info.nar_sha256),
            nar_size: info.nar_size,
            references: info.references.clone(),
            deriver: info.deriver.clone(),
            system: None,
            signatures: info.signatures.clone(),
            ca: info.ca.clone(),
        };
        if let Some(key) = &self.options.secret_key {
            narinfo
                .sign(&self.options.store_dir, key)
                .map_err(|source| ServeError::Sign {
                    path: info.store_path.to_base_name(),
                    source,
                })?;
        }
        Ok(narinfo.render(&self.options.store_dir))
    }

    async fn narinfo(&self, digest: &[u8; 20], head: bool) -> Result<Reply, ServeError> {
        let hash = nixbase32::encode(digest);
        let info = self
            .paths
            .get(digest)
            .await?
            .ok_or_else(|| ServeError::NotFound(format!("{hash}.narinfo")))?;
        let text = self.narinfo_text(&info)?;
        Ok(text_reply(StatusCode::OK, "text/x-nix-narinfo", text, head))
    }

    async fn nar(
        &self,
        url: &str,
        name: &RenderedNarName,
        range: Option<&str>,
        head: bool,
    ) -> Result<Reply, ServeError> {
        let info = self
            .paths
            .get(&name.path_digest)
            .await?
            .filter(|info| info.nar_sha256 == name.nar_sha256)
            .ok_or_else(|| ServeError::NotFound(url.to_string()))?;
        let mut builder = Response::builder().header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-nix-nar"),
        );
        let (status, window) = match name.compression {
            NarCompression::None => {
                builder = builder.header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                match parse_range(range, info.nar_size) {
                    RangeRequest::Full => {
                        builder = builder.header(CONTENT_LENGTH, info.nar_size);
                        (StatusCode::OK, None)
                    }
                    RangeRequest::Partial { start, end } => {
                        builder = builder.header(CONTENT_LENGTH, end - start + 1).header(
                            CONTENT_RANGE,
                            format!("bytes {start}-{end}/{}", info.nar_size),
                        );
                        (StatusCode::PARTIAL_CONTENT, Some((start, end)))
                    }
                    RangeRequest::Unsatisfiable => {
                        return Err(ServeError::RangeNotSatisfiable {
                            size: info.nar_size,
                        });
                    }
                }
            }
            _ => (StatusCode::OK, None),
        };
        let body = if head {
            body::empty()
        } else {
            self.render_body(info, name.compression, window)
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        if let Some(headers) = builder.headers_ref() {
            response.headers_mut().extend(headers.clone());
        }
        Ok(response)
    }

    /// Starts rendering the NAR of `info` into a streamed body. The NAR's
    /// SHA-256 is not recomputed (it would cost a third of the CPU time):
    /// every chunk is checked against its BLAKE3 digest on the way and the
    /// NAR's size against the registered one; a failure breaks the transfer
    /// off, so a client never gets a complete-looking wrong NAR.
    fn render_body(
        &self,
        info: PathInfo,
        compression: NarCompression,
        window: Option<(u64, u64)>,
    ) -> ResponseBody {
        let (mut writer, body) = body::channel();
        let castore = self.castore.clone();
        let options = self.options.render;
        let level = match self.options.compression {
            ServedCompression::Zstd { level } => level,
            ServedCompression::None => 3,
        };
        let task = async move {
            let rendered = match (compression, window) {
                (NarCompression::Zstd, _) => {
                    let mut encoder = ZstdEncoder::with_quality(&mut writer, Level::Precise(level));
                    let rendered =
                        render_nar_unhashed(&castore, &info.node, &mut encoder, options).await;
                    match rendered {
                        Ok((_, rendered)) => encoder
                            .shutdown()
                            .await
                            .map(|()| Some(rendered))
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                (_, Some((start, end))) => {
                    let mut ranged = RangeWriter::new(&mut writer, start, end);
                    let rendered = render_nar_unhashed(&castore, &info.node, &mut ranged, options)
                        .await
                        .map(|(_, size)| size);
                    match rendered {
                        Ok(rendered) => Ok(Some(rendered)),
                        Err(_) if ranged.is_complete() => Ok(None),
                        Err(e) => Err(e.to_string()),
                    }
                }
                _ => render_nar_unhashed(&castore, &info.node, &mut writer, options)
                    .await
                    .map(|(_, size)| Some(size))
                    .map_err(|e| e.to_string()),
            };
            let path = info.store_path.to_base_name();
            match rendered {
                Ok(Some(size)) if size != info.nar_size => {
                    tracing::error!(
                        path,
                        size,
                        "the rendered NAR does not have the registered size"
                    );
                    writer
                        .fail(io::Error::other(format!(
                            "{path}: the rendered NAR does not have its registered size"
                        )))
                        .await;
                }
                Ok(_) => {
                    if let Err(e) = writer.shutdown().await {
                        tracing::debug!(path, "sending the NAR: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!(path, "rendering the NAR: {e}");
                    writer.fail(io::Error::other(e)).await;
                }
            }
        };
        tokio::spawn(task.instrument(info_span!("render_nar")));
        body
    }

    async fn accept_nar(
        &self,
        url: String,
        compression: NarCompression,
        request: Request<Incoming>,
    ) -> Result<Reply, ServeError> {
        let limit = self.options.max_upload_bytes;
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ServeError::TooLarge {
                what: format!("the NAR upload {url}"),
                limit,
            });
        }
        let pending =
            upload::ingest_upload(&self.castore, &url, compression, request.into_body(), limit)
                .await?;
        tracing::info!(
            nar_size = pending.ingested.nar_size,
            file_size = pending.file_size,
            "NAR upload ingested"
        );
        self.pending.insert(url, pending);
        Ok(text_reply(
            StatusCode::OK,
            "text/plain",
            String::new(),
            false,
        ))
    }

    async fn accept_narinfo(&self, digest: &[u8; 20], body: Incoming) -> Result<Reply, ServeError> {
        let bytes = upload::read_small_body(body, MAX_NARINFO_SIZE, "the narinfo").await?;
        let text = String::from_utf8(bytes).map_err(|_| ServeError::NarInfoNotUtf8)?;
        let store_dir = &self.options.store_dir;
        let narinfo = NarInfo::parse_in(store_dir, &text).map_err(ServeError::NarInfo)?;
        let path = narinfo.store_path.to_base_name();
        if narinfo.store_path.digest() != digest {
            return Err(ServeError::WrongPath {
                url_hash: nixbase32::encode(digest),
                found: path,
            });
        }
        let NixHash::Sha256(nar_sha256) = narinfo.nar_hash else {
            return Err(ServeError::NarInfo(NarInfoError::NarHashNotSha256(
                narinfo.nar_hash.algo(),
            )));
        };
        let mismatch = |what, expected: String, actual: String| ServeError::Mismatch {
            path: path.clone(),
            what,
            expected,
            actual,
        };
        let Some(pending) = self.pending.get(&narinfo.url) else {
            // A path that is already here, announced again: nothing to do.
            if let Some(existing) = self.paths.get_path(&narinfo.store_path).await?
                && existing.nar_sha256 == nar_sha256
                && existing.nar_size == narinfo.nar_size
            {
                return Ok(text_reply(
                    StatusCode::OK,
                    "text/plain",
                    String::new(),
                    false,
                ));
            }
            return Err(ServeError::NarNotUploaded {
                path,
                url: narinfo.url.clone(),
            });
        };
        let compression = narinfo.compression_or_default();
        if compression != pending.compression.narinfo_name() {
            return Err(mismatch(
                "Compression",
                compression.to_string(),
                pending.compression.narinfo_name().to_string(),
            ));
        }
        if let Some(expected @ NixHash::Sha256(_)) = &narinfo.file_hash
            && *expected != pending.file_sha256
        {
            return Err(mismatch(
                "FileHash",
                expected.to_string(),
                pending.file_sha256.to_string(),
            ));
        }
        if let Some(expected) = narinfo.file_size
            && expected != pending.file_size
        {
            return Err(mismatch(
                "FileSize",
                expected.to_string(),
                pending.file_size.to_string(),
            ));
        }
        if narinfo.nar_size != pending.ingested.nar_size {
            return Err(mismatch(
                "NarSize",
                narinfo.nar_size.to_string(),
                pending.ingested.nar_size.to_string(),
            ));
        }
        if nar_sha256 != pending.ingested.nar_sha256 {
            return Err(mismatch(
                "NarHash",
                narinfo.nar_hash.to_string(),
                NixHash::Sha256(pending.ingested.nar_sha256).to_string(),
            ));
        }
        if let Some(ca) = &narinfo.ca {
            let self_reference = narinfo.references.contains(&narinfo.store_path);
            let others: Vec<_> = narinfo
                .references
                .iter()
                .filter(|r| **r != narinfo.store_path)
                .cloned()
                .collect();
            let computed =
                store_dir.make_path_from_ca(narinfo.store_path.name(), ca, &others, self_reference);
            if computed.as_ref().ok() != Some(&narinfo.store_path) {
                return Err(ServeError::WrongContentAddress {
                    path,
                    content_address: ca.to_string(),
                });
            }
        }
        let mut missing = Vec::new();
        for reference in &narinfo.references {
            if *reference != narinfo.store_path && self.paths.get_path(reference).await?.is_none() {
                missing.push(store_dir.display_path(reference));
            }
        }
        if !missing.is_empty() {
            return Err(ServeError::MissingReferences {
                path,
                missing: missing.join(", "),
            });
        }
        let info = PathInfo {
            store_path: narinfo.store_path.clone(),
            node: pending.ingested.node.clone(),
            references: narinfo.references.clone(),
            nar_size: pending.ingested.nar_size,
            nar_sha256,
            signatures: narinfo.signatures.clone(),
            deriver: narinfo.deriver.clone(),
            ca: narinfo.ca.clone(),
            registration_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        };
        self.paths.put(info).await?;
        self.pending.remove(&narinfo.url);
        tracing::info!(path, "path registered");
        Ok(text_reply(
            StatusCode::OK,
            "text/plain",
            String::new(),
            false,
        ))
    }
}
