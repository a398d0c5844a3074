//! Wrappers that compute the NAR hash (SHA-256) and size of the bytes that
//! pass through them, for writing and for reading NARs.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::hash::NixHash;

/// An [`AsyncWrite`] that hashes everything written through it. With
/// [`tokio::io::sink`] as inner writer it only hashes.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// SHA-256 of the bytes written so far.
    pub fn hash(&self) -> NixHash {
        NixHash::Sha256(self.hasher.clone().finalize().into())
    }

    /// The inner writer, the SHA-256 and the size.
    pub fn into_parts(self) -> (W, NixHash, u64) {
        (
            self.inner,
            NixHash::Sha256(self.hasher.finalize().into()),
            self.size,
        )
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.hasher.update(&buf[..n]);
        this.size += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// An [`AsyncRead`] that hashes everything read through it, e.g. a NAR being
/// parsed by [`NarReader`](super::NarReader).
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    size: u64,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
        }
    }

    /// Bytes read so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The inner reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// SHA-256 of the bytes read so far.
    pub fn hash(&self) -> NixHash {
        NixHash::Sha256(self.hasher.clone().finalize().into())
    }

    /// The inner reader, the SHA-256 and the size.
    pub fn into_parts(self) -> (R, NixHash, u64) {
        (
            self.inner,
            NixHash::Sha256(self.hasher.finalize().into()),
            self.size,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        this.hasher.update(new);
        this.size += new.len() as u64;
        Poll::Ready(Ok(()))
    }
}
