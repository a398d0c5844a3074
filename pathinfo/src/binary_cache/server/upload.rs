//! Uploads: `PUT nar/…` then `PUT <hash>.narinfo`, as `nix copy --to
//! http://…` sends them.
//!
//! A NAR upload is decompressed (by its file name's extension) and ingested
//! into castore as it streams in, its file hash, NAR hash and size computed
//! on the way; it then waits, unregistered, in [`PendingNars`] for its
//! narinfo. The narinfo is accepted only if it names a waiting NAR whose
//! hashes and sizes match it exactly and if every path it references is
//! already in the store; only then is the PathInfo written. A rejected
//! upload leaves no store path behind (at most unreferenced chunks).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use async_compression::tokio::bufread::{
    BrotliDecoder, BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder,
};
use futures::TryStreamExt;
use http_body_util::BodyStream;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};
use tokio_util::io::StreamReader;

use super::ServeError;
use super::route::NarCompression;
use crate::hash::NixHash;
use crate::ingest::{IngestError, IngestedNar, ingest_nar};
use crate::nar::{HashingReader, NarReadError};

/// How long an uploaded NAR waits for its narinfo.
pub const PENDING_TTL: Duration = Duration::from_secs(3600);
/// How many uploaded NARs may wait for their narinfo at once.
pub const MAX_PENDING: usize = 4096;

/// An uploaded, ingested NAR waiting for its narinfo.
#[derive(Debug, Clone)]
pub struct PendingNar {
    pub ingested: IngestedNar,
    pub compression: NarCompression,
    pub file_sha256: NixHash,
    pub file_size: u64,
    received: Instant,
}

/// Uploaded NARs by cache-relative URL, bounded in number and age.
#[derive(Default)]
pub struct PendingNars {
    by_url: Mutex<HashMap<String, PendingNar>>,
}

impl PendingNars {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingNar>> {
        // The map holds no invariant a panicking holder could break.
        self.by_url.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, url: String, nar: PendingNar) {
        let mut map = self.lock();
        map.retain(|_, p| p.received.elapsed() < PENDING_TTL);
        while map.len() >= MAX_PENDING {
            let oldest = map
                .iter()
                .min_by_key(|(_, p)| p.received)
                .map(|(url, _)| url.clone());
            match oldest {
                Some(url) => map.remove(&url),
                None => break,
            };
        }
        map.insert(url, nar);
    }

    pub fn get(&self, url: &str) -> Option<PendingNar> {
        self.lock()
            .get(url)
            .filter(|p| p.received.elapsed() < PENDING_TTL)
            .cloned()
    }

    pub fn remove(&self, url: &str) {
        self.lock().remove(url);
    }
}

/// Fails reads once more than `limit` bytes went through.
pub struct CappedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R> CappedReader<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        CappedReader {
            inner,
            read: 0,
            limit,
        }
    }

    /// Whether the stream went past the limit.
    pub fn exceeded(&self) -> bool {
        self.read > self.limit
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CappedReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.exceeded() {
            return Poll::Ready(Err(io::Error::other("upload size limit exceeded")));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.read += (buf.filled().len() - before) as u64;
        if this.exceeded() {
            return Poll::Ready(Err(io::Error::other("upload size limit exceeded")));
        }
        Poll::Ready(Ok(()))
    }
}

/// A request body as a byte stream.
pub fn body_reader(body: Incoming) -> impl AsyncRead + Send + Unpin {
    let frames = BodyStream::new(body)
        .map_err(io::Error::other)
        .try_filter_map(|frame| futures::future::ready(Ok(frame.into_data().ok())));
    StreamReader::new(frames)
}

/// Reads a whole (small) request body of at most `limit` bytes.
pub async fn read_small_body(
    body: Incoming,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, ServeError> {
    let mut capped = CappedReader::new(body_reader(body), limit);
    let mut bytes = Vec::new();
    match capped.read_to_end(&mut bytes).await {
        Ok(_) => Ok(bytes),
        Err(_) if capped.exceeded() => Err(ServeError::TooLarge {
            what: what.to_string(),
            limit,
        }),
        Err(e) => Err(ServeError::Body(e)),
    }
}

fn decoder<'a, R: AsyncRead + Send + Unpin + 'a>(
    compression: NarCompression,
    compressed: R,
) -> Box<dyn AsyncRead + Send + Unpin + 'a> {
    let buffered = BufReader::with_capacity(256 * 1024, compressed);
    match compression {
        NarCompression::None => Box::new(buffered),
        NarCompression::Xz => Box::new(XzDecoder::new(buffered)),
        NarCompression::Zstd => Box::new(ZstdDecoder::new(buffered)),
        NarCompression::Bzip2 => Box::new(BzDecoder::new(buffered)),
        NarCompression::Brotli => Box::new(BrotliDecoder::new(buffered)),
        NarCompression::Gzip => Box::new(GzipDecoder::new(buffered)),
    }
}

/// Whether an ingest failure is the uploader's fault (a bad or truncated
/// NAR, bad compression, a broken body) rather than the store's.
fn is_bad_input(e: &IngestError) -> bool {
    matches!(e, IngestError::Nar(_) | IngestError::Entry(_))
}

/// Streams an uploaded NAR file into castore; `limit` bounds both the file
/// and the NAR inside it.
pub async fn ingest_upload(
    castore: &cairn_castore::CaStore,
    url: &str,
    compression: NarCompression,
    body: Incoming,
    limit: u64,
) -> Result<PendingNar, ServeError> {
    let too_large = || ServeError::TooLarge {
        what: format!("the NAR upload {url}"),
        limit,
    };
    let mut file = HashingReader::new(CappedReader::new(body_reader(body), limit));
    let mut nar = CappedReader::new(decoder(compression, &mut file), limit);
    let result = ingest_nar(castore, &mut nar).await;
    let ingested = match result {
        Ok(ingested) => ingested,
        Err(source) => {
            let nar_exceeded = nar.exceeded();
            drop(nar);
            if !nar_exceeded {
                // The client is still sending: read the rest of the body
                // (bounded by the limit), so that it gets the answer rather
                // than a connection reset.
                let _ = tokio::io::copy(&mut file, &mut tokio::io::sink()).await;
            }
            return Err(if nar_exceeded || file.get_ref().exceeded() {
                too_large()
            } else if is_bad_input(&source) {
                ServeError::InvalidNar {
                    url: url.to_string(),
                    source: Box::new(source),
                }
            } else {
                ServeError::Ingest {
                    url: url.to_string(),
                    source: Box::new(source),
                }
            });
        }
    };
    // Whatever follows the NAR in the decompressed stream is an error.
    let mut rest = [0u8; 1];
    let extra = nar
        .read(&mut rest)
        .await
        .map_err(|source| ServeError::InvalidNar {
            url: url.to_string(),
            source: Box::new(IngestError::Nar(NarReadError::Io {
                offset: ingested.nar_size,
                source,
            })),
        })?;
    drop(nar);
    if extra != 0 {
        let _ = tokio::io::copy(&mut file, &mut tokio::io::sink()).await;
        return Err(ServeError::TrailingData {
            url: url.to_string(),
        });
    }
    // What the decompressor left unread still belongs to the file.
    let mut sink = tokio::io::sink();
    if let Err(e) = tokio::io::copy(&mut file, &mut sink).await {
        return Err(if file.get_ref().exceeded() {
            too_large()
        } else {
            ServeError::Body(e)
        });
    }
    Ok(PendingNar {
        ingested,
        compression,
        file_sha256: file.hash(),
        file_size: file.size(),
        received: Instant::now(),
    })
}
