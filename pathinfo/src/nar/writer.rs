//! Streaming NAR writer over any [`tokio::io::AsyncWrite`].
//!
//! Nodes are emitted in order, mirroring the reader's events: the root node
//! has no name, entries of an open directory must have names, given in
//! strictly increasing byte order. File contents come from an
//! [`AsyncRead`] ([`NarWriter::file`]) or from successive slices
//! ([`NarWriter::file_start`], [`NarWriter::file_chunk`],
//! [`NarWriter::file_end`]); their length must match the declared size.
//! [`NarWriter`] is also a [`NarVisitor`], so a NAR read with
//! [`read_nar`](super::read_nar) can be rewritten directly.

use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use super::reader::NarVisitor;
use super::{NAR_MAGIC, is_valid_entry_name, is_valid_symlink_target, padding_len};

const COPY_BUF_SIZE: usize = 64 * 1024;

/// Why a NAR could not be written.
#[derive(Debug, Error)]
pub enum NarWriteError {
    /// The underlying writer or a contents reader failed.
    #[error("I/O error writing NAR: {0}")]
    Io(#[from] io::Error),
    /// An entry name that is empty, `.`, `..`, or contains `/` or NUL.
    #[error("invalid entry name {0:?}")]
    InvalidName(String),
    /// An entry name not strictly after the previous one in its directory.
    #[error("entry {name:?} is not sorted after {previous:?}")]
    UnsortedEntry {
        /// The name, lossily decoded.
        name: String,
        /// The previous name, lossily decoded.
        previous: String,
    },
    /// An entry name equal to the previous one.
    #[error("duplicate entry name {0:?}")]
    DuplicateEntry(String),
    /// An empty symlink target or one containing NUL.
    #[error("invalid symlink target {0:?}")]
    InvalidSymlinkTarget(String),
    /// The root node was given a name, or an entry none.
    #[error("{0}")]
    NameMismatch(&'static str),
    /// An operation not allowed in the current state.
    #[error("invalid NAR writer operation: {0}")]
    InvalidState(&'static str),
    /// File contents shorter or longer than the declared size.
    #[error("file contents are {actual} bytes, declared {expected}")]
    SizeMismatch {
        /// The declared size.
        expected: u64,
        /// The size seen (a lower bound when contents were too long).
        actual: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    InDirectory,
    InFile { size: u64, remaining: u64 },
    Done,
    Failed,
}

/// A streaming NAR writer. Output is buffered; [`NarWriter::finish`] flushes
/// it and returns the inner writer.
#[derive(Debug)]
pub struct NarWriter<W: AsyncWrite> {
    out: BufWriter<W>,
    state: State,
    /// Last entry name of each open directory, innermost last.
    stack: Vec<Option<Vec<u8>>>,
    written: u64,
    copy_buf: Vec<u8>,
}

const ZEROS: [u8; 8] = [0; 8];

impl<W: AsyncWrite + Unpin> NarWriter<W> {
    /// A writer that emits one NAR into `out`.
    pub fn new(out: W) -> Self {
        NarWriter {
            out: BufWriter::with_capacity(COPY_BUF_SIZE, out),
            state: State::Start,
            stack: Vec::new(),
            written: 0,
            copy_buf: Vec::new(),
        }
    }

    /// Bytes of NAR emitted so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Whether the root node is complete.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    async fn raw(&mut self, b: &[u8]) -> Result<(), NarWriteError> {
        self.out.write_all(b).await?;
        self.written += b.len() as u64;
        Ok(())
    }

    async fn string(&mut self, s: &[u8]) -> Result<(), NarWriteError> {
        self.raw(&(s.len() as u64).to_le_bytes()).await?;
        self.raw(s).await?;
        self.raw(&ZEROS[..padding_len(s.len() as u64)]).await
    }

    /// Checks the state and name for a new node and writes what precedes it.
    async fn begin_node(&mut self, name: Option<&[u8]>) -> Result<(), NarWriteError> {
        match (self.state, name) {
            (State::Start, None) => {
                self.string(NAR_MAGIC).await?;
            }
            (State::Start, Some(_)) => {
                return Err(NarWriteError::NameMismatch("the root node has no name"));
            }
            (State::InDirectory, None) => {
                return Err(NarWriteError::NameMismatch(
                    "a directory entry needs a name",
                ));
            }
            (State::InDirectory, Some(name)) => {
                let lossy = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
                if !is_valid_entry_name(name) {
                    return Err(NarWriteError::InvalidName(lossy(name)));
                }
                if let Some(last) = self.stack.last_mut() {
                    if let Some(prev) = last.as_deref() {
                        if name == prev {
                            return Err(NarWriteError::DuplicateEntry(lossy(name)));
                        }
                        if name < prev {
                            return Err(NarWriteError::UnsortedEntry {
                                name: lossy(name),
                                previous: lossy(prev),
                            });
                        }
                    }
                    *last = Some(name.to_vec());
                }
                self.string(b"entry").await?;
                self.string(b"(").await?;
                self.string(b"name").await?;
                self.string(name).await?;
                self.string(b"node").await?;
            }
            (State::InFile { .. }, _) => {
                return Err(NarWriteError::InvalidState("file contents not finished"));
            }
            (State::Done, _) => return Err(NarWriteError::InvalidState("the NAR is complete")),
            (State::Failed, _) => {
                return Err(NarWriteError::InvalidState("writer used after an error"));
            }
        }
        self.string(b"(").await?;
        self.string(b"type").await
    }

    /// Writes what follows a finished node.
    async fn end_node(&mut self) -> Result<(), NarWriteError> {
        if self.stack.is_empty() {
            self.state = State::Done;
        } else {
            self.string(b")").await?;
            self.state = State::InDirectory;
        }
        Ok(())
    }

    fn guard<T>(&mut self, r: Result<T, NarWriteError>) -> Result<T, NarWriteError> {
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    /// Starts a directory; its entries follow, then [`NarWriter::directory_end`].
    pub async fn directory_start(&mut self, name: Option<&[u8]>) -> Result<(), NarWriteError> {
        let r = async {
            self.begin_node(name).await?;
            self.string(b"directory").await?;
            self.stack.push(None);
            self.state = State::InDirectory;
            Ok(())
        }
        .await;
        self.guard(r)
    }

    /// Ends the innermost open directory.
    pub async fn directory_end(&mut self) -> Result<(), NarWriteError> {
        if self.state != State::InDirectory {
            return Err(NarWriteError::InvalidState("no open directory to end"));
        }
        let r = async {
            self.string(b")").await?;
            self.stack.pop();
            self.end_node().await
        }
        .await;
        self.guard(r)
    }

    /// Writes a symlink.
    pub async fn symlink(
        &mut self,
        name: Option<&[u8]>,
        target: &[u8],
    ) -> Result<(), NarWriteError> {
        if !is_valid_symlink_target(target) {
            return Err(NarWriteError::InvalidSymlinkTarget(
                String::from_utf8_lossy(target).into_owned(),
            ));
        }
        let r = async {
            self.begin_node(name).await?;
            self.string(b"symlink").await?;
            self.string(b"target").await?;
            self.string(target).await?;
            self.string(b")").await?;
            self.end_node().await
        }
        .await;
        self.guard(r)
    }

    /// Starts a regular file of `size` bytes; the contents follow with
    /// [`NarWriter::file_chunk`], then [`NarWriter::file_end`].
    pub async fn file_start(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
    ) -> Result<(), NarWriteError> {
        let r = async {
            self.begin_node(name).await?;
            self.string(b"regular").await?;
            if executable {
                self.string(b"executable").await?;
                self.string(b"").await?;
            }
            self.string(b"contents").await?;
            self.raw(&size.to_le_bytes()).await?;
            self.state = State::InFile {
                size,
                remaining: size,
            };
            Ok(())
        }
        .await;
        self.guard(r)
    }

    /// Writes the next part of the current file's contents.
    pub async fn file_chunk(&mut self, data: &[u8]) -> Result<(), NarWriteError> {
        let State::InFile { size, remaining } = self.state else {
            return Err(NarWriteError::InvalidState("no file started"));
        };
        if data.len() as u64 > remaining {
            self.state = State::Failed;
            return Err(NarWriteError::SizeMismatch {
                expected: size,
                actual: size - remaining + data.len() as u64,
            });
        }
        let r = self.raw(data).await;
        self.state = State::InFile {
            size,
            remaining: remaining - data.len() as u64,
        };
        self.guard(r)
    }

    /// Ends the current file; all declared bytes must have been written.
    pub async fn file_end(&mut self) -> Result<(), NarWriteError> {
        let State::InFile { size, remaining } = self.state else {
            return Err(NarWriteError::InvalidState("no file started"));
        };
        if remaining != 0 {
            self.state = State::Failed;
            return Err(NarWriteError::SizeMismatch {
                expected: size,
                actual: size - remaining,
            });
        }
        let r = async {
            self.raw(&ZEROS[..padding_len(size)]).await?;
            self.string(b")").await?;
            self.end_node().await
        }
        .await;
        self.guard(r)
    }

    /// Writes a regular file whose contents are read from `contents`, which
    /// must yield exactly `size` bytes.
    pub async fn file<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut R,
    ) -> Result<(), NarWriteError> {
        self.file_start(name, executable, size).await?;
        let mut buf = std::mem::take(&mut self.copy_buf);
        if buf.len() < COPY_BUF_SIZE {
            buf.resize(COPY_BUF_SIZE, 0);
        }
        let r = self.copy_contents(size, contents, &mut buf).await;
        self.copy_buf = buf;
        let r = self.guard(r);
        r?;
        self.file_end().await
    }

    async fn copy_contents<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        size: u64,
        contents: &mut R,
        buf: &mut [u8],
    ) -> Result<(), NarWriteError> {
        let mut remaining = size;
        while remaining > 0 {
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = contents.read(&mut buf[..want]).await?;
            if n == 0 {
                return Err(NarWriteError::SizeMismatch {
                    expected: size,
                    actual: size - remaining,
                });
            }
            self.raw(&buf[..n]).await?;
            remaining -= n as u64;
        }
        self.state = State::InFile { size, remaining: 0 };
        // The source must end here.
        let mut probe = [0u8; 1];
        if contents.read(&mut probe).await? != 0 {
            return Err(NarWriteError::SizeMismatch {
                expected: size,
                actual: size + 1,
            });
        }
        Ok(())
    }

    /// Checks that the NAR is complete, flushes and returns the inner writer.
    pub async fn finish(mut self) -> Result<W, NarWriteError> {
        if self.state != State::Done {
            return Err(NarWriteError::InvalidState("the NAR is not complete"));
        }
        self.out.flush().await?;
        Ok(self.out.into_inner())
    }
}

impl<W: AsyncWrite + Unpin + Send> NarVisitor for NarWriter<W> {
    async fn directory_start(&mut self, name: Option<&[u8]>) -> io::Result<()> {
        NarWriter::directory_start(self, name)
            .await
            .map_err(into_io)
    }

    async fn directory_end(&mut self) -> io::Result<()> {
        NarWriter::directory_end(self).await.map_err(into_io)
    }

    async fn file<C: AsyncRead + Unpin + Send>(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut C,
    ) -> io::Result<()> {
        NarWriter::file(self, name, executable, size, contents)
            .await
            .map_err(into_io)
    }

    async fn symlink(&mut self, name: Option<&[u8]>, target: &[u8]) -> io::Result<()> {
        NarWriter::symlink(self, name, target)
            .await
            .map_err(into_io)
    }
}

fn into_io(e: NarWriteError) -> io::Error {
    match e {
        NarWriteError::Io(e) => e,
        e => io::Error::other(e),
    }
}
