//! Streaming NAR reader over any [`tokio::io::AsyncRead`].
//!
//! The reader validates as it goes: magic, grammar, entry names (no `/`,
//! NUL, `.`, `..` or empty name), strict byte order of entries within a
//! directory, zero padding, string length limits, nesting depth and, by
//! default, the absence of trailing data. File contents are never buffered
//! whole: each file is handed out as a [`FileContents`] reader of exactly the
//! file's size, and whatever the consumer does not read is skipped.
//!
//! Two interfaces: the pull-based [`NarReader::next`], yielding
//! [`NarEvent`]s, and the push-based [`read_nar`] driving a [`NarVisitor`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use super::{NAR_MAGIC, is_valid_entry_name, is_valid_symlink_target, padding_len};

/// Size of the reader's internal buffer.
const BUF_SIZE: usize = 64 * 1024;
/// Longest keyword the grammar has ("executable", "directory"), with room.
const MAX_TOKEN_LEN: u64 = 16;

/// Why a NAR was rejected. Offsets are byte positions in the NAR stream.
#[derive(Debug, Error)]
pub enum NarReadError {
    /// The underlying reader failed.
    #[error("I/O error at byte {offset} of the NAR: {source}")]
    Io {
        /// Position of the failed read.
        offset: u64,
        /// The error.
        source: io::Error,
    },
    /// The stream ended inside the NAR.
    #[error("NAR truncated at byte {offset}")]
    UnexpectedEof {
        /// Where the stream ended.
        offset: u64,
    },
    /// The stream does not start with the NAR magic.
    #[error("not a NAR: bad magic at byte {offset}")]
    BadMagic {
        /// Always 0.
        offset: u64,
    },
    /// A keyword other than the one the grammar requires.
    #[error("expected {expected} at byte {offset} of the NAR, found {found}")]
    UnexpectedToken {
        /// Start of the token.
        offset: u64,
        /// What the grammar allows here.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A name, target or keyword longer than its limit.
    #[error("{what} of {len} bytes at byte {offset} of the NAR exceeds the limit of {limit}")]
    StringTooLong {
        /// Start of the string.
        offset: u64,
        /// `entry name` or `symlink target`.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// Padding after a string or file contents is not zero.
    #[error("nonzero padding at byte {offset} of the NAR")]
    BadPadding {
        /// Start of the padding.
        offset: u64,
    },
    /// An entry name that is empty, `.`, `..`, or contains `/` or NUL.
    #[error("invalid entry name {name:?} at byte {offset} of the NAR")]
    InvalidName {
        /// Start of the name.
        offset: u64,
        /// The name, lossily decoded.
        name: String,
    },
    /// An entry name equal to the previous one in the same directory.
    #[error("duplicate entry name {name:?} at byte {offset} of the NAR")]
    DuplicateEntry {
        /// Start of the name.
        offset: u64,
        /// The name, lossily decoded.
        name: String,
    },
    /// An entry name not sorted after the previous one.
    #[error("entry {name:?} at byte {offset} of the NAR is not sorted after {previous:?}")]
    UnsortedEntry {
        /// Start of the name.
        offset: u64,
        /// The name, lossily decoded.
        name: String,
        /// The previous name, lossily decoded.
        previous: String,
    },
    /// An empty symlink target or one containing NUL.
    #[error("invalid symlink target {target:?} at byte {offset} of the NAR")]
    InvalidSymlinkTarget {
        /// Start of the target.
        offset: u64,
        /// The target, lossily decoded.
        target: String,
    },
    /// Directories nested deeper than the limit.
    #[error("directories nested deeper than {limit} at byte {offset} of the NAR")]
    TooDeep {
        /// Start of the directory node.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// Bytes after the end of the NAR.
    #[error("trailing data after the end of the NAR at byte {offset}")]
    TrailingData {
        /// End of the NAR.
        offset: u64,
    },
    /// The visitor failed.
    #[error("NAR consumer failed at byte {offset}: {source}")]
    Visitor {
        /// Position of the reader when the visitor failed.
        offset: u64,
        /// The visitor's error.
        source: io::Error,
    },
    /// The reader was used again after it failed.
    #[error("NAR reader used after an error")]
    Poisoned,
}

impl NarReadError {
    /// The byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<u64> {
        use NarReadError::*;
        match self {
            Io { offset, .. }
            | UnexpectedEof { offset }
            | BadMagic { offset }
            | UnexpectedToken { offset, .. }
            | StringTooLong { offset, .. }
            | BadPadding { offset }
            | InvalidName { offset, .. }
            | DuplicateEntry { offset, .. }
            | UnsortedEntry { offset, .. }
            | InvalidSymlinkTarget { offset, .. }
            | TooDeep { offset, .. }
            | TrailingData { offset }
            | Visitor { offset, .. } => Some(*offset),
            Poisoned => None,
        }
    }
}

/// Limits and checks of a [`NarReader`].
#[derive(Debug, Clone)]
pub struct NarReaderOptions {
    /// Maximum directory nesting (the root directory counts as 1).
    pub max_depth: usize,
    /// Maximum length of an entry name.
    pub max_name_len: u64,
    /// Maximum length of a symlink target.
    pub max_target_len: u64,
    /// Whether bytes after the end of the NAR are an error. Turn off when the
    /// NAR is embedded in a longer stream (the reader buffers ahead, so the
    /// stream cannot be resumed after it anyway).
    pub reject_trailing_data: bool,
}

impl Default for NarReaderOptions {
    fn default() -> Self {
        NarReaderOptions {
            max_depth: 256,
            max_name_len: 255,
            max_target_len: 4095,
            reject_trailing_data: true,
        }
    }
}

/// One step of a NAR. `name` is `None` for the root node.
#[derive(Debug)]
pub enum NarEvent<'a, R> {
    /// A directory starts; its entries follow, then [`NarEvent::DirectoryEnd`].
    DirectoryStart {
        /// The entry name.
        name: Option<Vec<u8>>,
    },
    /// The innermost open directory ends.
    DirectoryEnd,
    /// A regular file. Its contents may be read from `contents`; whatever is
    /// left unread is skipped on the next call to [`NarReader::next`].
    File {
        /// The entry name.
        name: Option<Vec<u8>>,
        /// The executable bit.
        executable: bool,
        /// The file size in bytes.
        size: u64,
        /// The contents, exactly `size` bytes.
        contents: FileContents<'a, R>,
    },
    /// A symlink.
    Symlink {
        /// The entry name.
        name: Option<Vec<u8>>,
        /// The target.
        target: Vec<u8>,
    },
}

/// A short string of the NAR grammar, held without allocation.
struct Token {
    buf: [u8; MAX_TOKEN_LEN as usize],
    len: usize,
}

impl std::ops::Deref for Token {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The buffered input of a reader, with position tracking.
#[derive(Debug)]
struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Bytes consumed so far (handed out or parsed).
    offset: u64,
    /// An error met while a consumer read file contents.
    error: Option<NarReadError>,
}

impl<R: AsyncRead + Unpin> Input<R> {
    /// Makes sure some bytes are buffered; returns how many (0 at EOF).
    async fn fill(&mut self) -> Result<usize, NarReadError> {
        if self.pos == self.end {
            let n = self
                .inner
                .read(&mut self.buf)
                .await
                .map_err(|source| NarReadError::Io {
                    offset: self.offset,
                    source,
                })?;
            self.pos = 0;
            self.end = n;
        }
        Ok(self.end - self.pos)
    }

    async fn read_exact(&mut self, out: &mut [u8]) -> Result<(), NarReadError> {
        let mut done = 0;
        while done < out.len() {
            let avail = self.fill().await?;
            if avail == 0 {
                return Err(NarReadError::UnexpectedEof {
                    offset: self.offset,
                });
            }
            let n = avail.min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            self.offset += n as u64;
            done += n;
        }
        Ok(())
    }

    async fn skip(&mut self, mut n: u64) -> Result<(), NarReadError> {
        while n > 0 {
            let avail = self.fill().await?;
            if avail == 0 {
                return Err(NarReadError::UnexpectedEof {
                    offset: self.offset,
                });
            }
            let k = (avail as u64).min(n) as usize;
            self.pos += k;
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    async fn read_u64(&mut self) -> Result<u64, NarReadError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b).await?;
        Ok(u64::from_le_bytes(b))
    }

    async fn read_padding(&mut self, len: u64) -> Result<(), NarReadError> {
        let pad = padding_len(len);
        if pad > 0 {
            let offset = self.offset;
            let mut b = [0u8; 8];
            self.read_exact(&mut b[..pad]).await?;
            if b[..pad].iter().any(|&x| x != 0) {
                return Err(NarReadError::BadPadding { offset });
            }
        }
        Ok(())
    }

    /// Reads a string of at most `limit` bytes. Returns its start offset.
    async fn read_string(
        &mut self,
        what: &'static str,
        limit: u64,
    ) -> Result<(u64, Vec<u8>), NarReadError> {
        let offset = self.offset;
        let len = self.read_u64().await?;
        if len > limit {
            return Err(NarReadError::StringTooLong {
                offset,
                what,
                len,
                limit,
            });
        }
        let mut s = vec![0u8; len as usize];
        self.read_exact(&mut s).await?;
        self.read_padding(len).await?;
        Ok((offset, s))
    }

    /// Reads a keyword into a stack buffer (no allocation); a string too
    /// long to be one is reported as an unexpected token.
    async fn read_token(&mut self, expected: &'static str) -> Result<(u64, Token), NarReadError> {
        let offset = self.offset;
        let len = self.read_u64().await?;
        if len > MAX_TOKEN_LEN {
            return Err(NarReadError::UnexpectedToken {
                offset,
                expected,
                found: format!("a string of {len} bytes"),
            });
        }
        let mut tok = Token {
            buf: [0; MAX_TOKEN_LEN as usize],
            len: len as usize,
        };
        self.read_exact(&mut tok.buf[..tok.len]).await?;
        self.read_padding(len).await?;
        Ok((offset, tok))
    }

    async fn expect(&mut self, token: &'static str) -> Result<(), NarReadError> {
        let expected = match token {
            "" => "\"\"",
            "(" => "\"(\"",
            ")" => "\")\"",
            "type" => "\"type\"",
            "contents" => "\"contents\"",
            "target" => "\"target\"",
            "name" => "\"name\"",
            "node" => "\"node\"",
            _ => "a keyword",
        };
        let (offset, s) = self.read_token(expected).await?;
        if *s != *token.as_bytes() {
            return Err(NarReadError::UnexpectedToken {
                offset,
                expected,
                found: format!("{:?}", String::from_utf8_lossy(&s)),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    InFile,
    AfterNode,
    InDirectory,
    Done,
    Failed,
}

/// A pull-based streaming NAR parser.
#[derive(Debug)]
pub struct NarReader<R> {
    input: Input<R>,
    opts: NarReaderOptions,
    state: State,
    /// Last entry name of each open directory, innermost last.
    stack: Vec<Option<Vec<u8>>>,
    /// Size and unread bytes of the current file.
    file_size: u64,
    file_remaining: u64,
    /// Offset where the last event started.
    event_offset: u64,
}

/// Event without its borrowed contents reader.
enum RawEvent {
    DirectoryStart(Option<Vec<u8>>),
    DirectoryEnd,
    File(Option<Vec<u8>>, bool, u64),
    Symlink(Option<Vec<u8>>, Vec<u8>),
}

impl<R: AsyncRead + Unpin> NarReader<R> {
    /// A reader with the default limits.
    pub fn new(inner: R) -> Self {
        Self::with_options(inner, NarReaderOptions::default())
    }

    /// A reader with the given limits.
    pub fn with_options(inner: R, opts: NarReaderOptions) -> Self {
        NarReader {
            input: Input {
                inner,
                buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
                pos: 0,
                end: 0,
                offset: 0,
                error: None,
            },
            opts,
            state: State::Start,
            stack: Vec::new(),
            file_size: 0,
            file_remaining: 0,
            event_offset: 0,
        }
    }

    /// Bytes of the NAR consumed so far; after the last event, the NAR size.
    pub fn offset(&self) -> u64 {
        self.input.offset
    }

    /// Where the most recent event started in the stream.
    pub fn event_offset(&self) -> u64 {
        self.event_offset
    }

    /// The inner reader. Bytes the reader buffered ahead are lost; after the
    /// whole NAR was read with trailing data rejected, there are none.
    pub fn into_inner(self) -> R {
        self.input.inner
    }

    /// Current directory nesting depth.
    pub fn depth(&self) -> usize {
        self.stack.len()
    }

    /// The next event, or `None` once the whole NAR has been read (and, by
    /// default, the stream has ended).
    pub async fn next(&mut self) -> Result<Option<NarEvent<'_, R>>, NarReadError> {
        let raw = match self.advance().await {
            Ok(raw) => raw,
            Err(e) => {
                self.state = State::Failed;
                return Err(e);
            }
        };
        Ok(raw.map(|raw| match raw {
            RawEvent::DirectoryStart(name) => NarEvent::DirectoryStart { name },
            RawEvent::DirectoryEnd => NarEvent::DirectoryEnd,
            RawEvent::Symlink(name, target) => NarEvent::Symlink { name, target },
            RawEvent::File(name, executable, size) => NarEvent::File {
                name,
                executable,
                size,
                contents: FileContents {
                    input: &mut self.input,
                    remaining: &mut self.file_remaining,
                },
            },
        }))
    }

    async fn advance(&mut self) -> Result<Option<RawEvent>, NarReadError> {
        if let Some(e) = self.input.error.take() {
            return Err(e);
        }
        loop {
            match self.state {
                State::Failed => return Err(NarReadError::Poisoned),
                State::Done => return Ok(None),
                State::Start => {
                    let (_, magic) =
                        self.input
                            .read_token("NAR magic")
                            .await
                            .map_err(|e| match e {
                                NarReadError::UnexpectedToken { .. } => {
                                    NarReadError::BadMagic { offset: 0 }
                                }
                                e => e,
                            })?;
                    if *magic != *NAR_MAGIC {
                        return Err(NarReadError::BadMagic { offset: 0 });
                    }
                    return self.parse_node(None).await.map(Some);
                }
                State::InFile => {
                    self.input.skip(self.file_remaining).await?;
                    self.file_remaining = 0;
                    self.input.read_padding(self.file_size).await?;
                    self.input.expect(")").await?;
                    self.state = State::AfterNode;
                }
                State::AfterNode => {
                    if self.stack.is_empty() {
                        if self.opts.reject_trailing_data && self.input.fill().await? > 0 {
                            return Err(NarReadError::TrailingData {
                                offset: self.input.offset,
                            });
                        }
                        self.state = State::Done;
                        return Ok(None);
                    }
                    // Closes the directory entry.
                    self.input.expect(")").await?;
                    self.state = State::InDirectory;
                }
                State::InDirectory => {
                    self.event_offset = self.input.offset;
                    let (offset, tok) = self.input.read_token("\"entry\" or \")\"").await?;
                    match &tok[..] {
                        b")" => {
                            self.stack.pop();
                            self.state = State::AfterNode;
                            return Ok(Some(RawEvent::DirectoryEnd));
                        }
                        b"entry" => {
                            self.input.expect("(").await?;
                            self.input.expect("name").await?;
                            let (offset, name) = self
                                .input
                                .read_string("entry name", self.opts.max_name_len)
                                .await?;
                            self.check_name(offset, &name)?;
                            self.input.expect("node").await?;
                            return self.parse_node(Some(name)).await.map(Some);
                        }
                        _ => {
                            return Err(NarReadError::UnexpectedToken {
                                offset,
                                expected: "\"entry\" or \")\"",
                                found: format!("{:?}", String::from_utf8_lossy(&tok)),
                            });
                        }
                    }
                }
            }
        }
    }

    fn check_name(&mut self, offset: u64, name: &[u8]) -> Result<(), NarReadError> {
        let lossy = |n: &[u8]| String::from_utf8_lossy(n).into_owned();
        if !is_valid_entry_name(name) {
            return Err(NarReadError::InvalidName {
                offset,
                name: lossy(name),
            });
        }
        // The stack is non-empty in a directory.
        if let Some(last) = self.stack.last_mut() {
            if let Some(prev) = last.as_deref() {
                if name == prev {
                    return Err(NarReadError::DuplicateEntry {
                        offset,
                        name: lossy(name),
                    });
                }
                if name < prev {
                    return Err(NarReadError::UnsortedEntry {
                        offset,
                        name: lossy(name),
                        previous: lossy(prev),
                    });
                }
            }
            *last = Some(name.to_vec());
        }
        Ok(())
    }

    async fn parse_node(&mut self, name: Option<Vec<u8>>) -> Result<RawEvent, NarReadError> {
        let node_offset = self.input.offset;
        if name.is_none() {
            self.event_offset = node_offset;
        }
        self.input.expect("(").await?;
        self.input.expect("type").await?;
        let (offset, ty) = self
            .input
            .read_token("\"regular\", \"symlink\" or \"directory\"")
            .await?;
        match &ty[..] {
            b"regular" => {
                let (offset, tok) = self
                    .input
                    .read_token("\"executable\" or \"contents\"")
                    .await?;
                let executable = match &tok[..] {
                    b"executable" => {
                        self.input.expect("").await?;
                        self.input.expect("contents").await?;
                        true
                    }
                    b"contents" => false,
                    _ => {
                        return Err(NarReadError::UnexpectedToken {
                            offset,
                            expected: "\"executable\" or \"contents\"",
                            found: format!("{:?}", String::from_utf8_lossy(&tok)),
                        });
                    }
                };
                let size = self.input.read_u64().await?;
                self.file_size = size;
                self.file_remaining = size;
                self.state = State::InFile;
                Ok(RawEvent::File(name, executable, size))
            }
            b"symlink" => {
                self.input.expect("target").await?;
                let (offset, target) = self
                    .input
                    .read_string("symlink target", self.opts.max_target_len)
                    .await?;
                if !is_valid_symlink_target(&target) {
                    return Err(NarReadError::InvalidSymlinkTarget {
                        offset,
                        target: String::from_utf8_lossy(&target).into_owned(),
                    });
                }
                self.input.expect(")").await?;
                self.state = State::AfterNode;
                Ok(RawEvent::Symlink(name, target))
            }
            b"directory" => {
                if self.stack.len() >= self.opts.max_depth {
                    return Err(NarReadError::TooDeep {
                        offset: node_offset,
                        limit: self.opts.max_depth,
                    });
                }
                self.stack.push(None);
                self.state = State::InDirectory;
                Ok(RawEvent::DirectoryStart(name))
            }
            _ => Err(NarReadError::UnexpectedToken {
                offset,
                expected: "\"regular\", \"symlink\" or \"directory\"",
                found: format!("{:?}", String::from_utf8_lossy(&ty)),
            }),
        }
    }
}

/// The contents of one file in a NAR: an [`AsyncRead`] of exactly the file's
/// size. Reads pass through the reader's buffer, or straight into the
/// caller's buffer when it is large.
#[derive(Debug)]
pub struct FileContents<'a, R> {
    input: &'a mut Input<R>,
    remaining: &'a mut u64,
}

impl<R> FileContents<'_, R> {
    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        *self.remaining
    }
}

impl<R: AsyncRead + Unpin> FileContents<'_, R> {
    fn fail(&mut self, error: NarReadError) -> io::Error {
        let io_error = match &error {
            NarReadError::UnexpectedEof { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, error.to_string())
            }
            _ => io::Error::other(error.to_string()),
        };
        self.input.error = Some(error);
        io_error
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FileContents<'_, R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let remaining = *this.remaining;
        if remaining == 0 || out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(out.remaining());
        let input = &mut *this.input;
        if input.pos == input.end {
            if want >= input.buf.len() {
                // Large read: bypass the internal buffer.
                let dst = out.initialize_unfilled_to(want);
                let mut direct = ReadBuf::new(dst);
                let res = ready!(Pin::new(&mut input.inner).poll_read(cx, &mut direct));
                let got = direct.filled().len();
                if let Err(source) = res {
                    let offset = input.offset;
                    return Poll::Ready(Err(this.fail(NarReadError::Io { offset, source })));
                }
                if got == 0 {
                    let offset = input.offset;
                    return Poll::Ready(Err(this.fail(NarReadError::UnexpectedEof { offset })));
                }
                out.advance(got);
                input.offset += got as u64;
                *this.remaining -= got as u64;
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut input.buf);
            let res = ready!(Pin::new(&mut input.inner).poll_read(cx, &mut rb));
            let got = rb.filled().len();
            if let Err(source) = res {
                let offset = input.offset;
                return Poll::Ready(Err(this.fail(NarReadError::Io { offset, source })));
            }
            if got == 0 {
                let offset = input.offset;
                return Poll::Ready(Err(this.fail(NarReadError::UnexpectedEof { offset })));
            }
            input.pos = 0;
            input.end = got;
        }
        let n = want.min(input.end - input.pos);
        out.put_slice(&input.buf[input.pos..input.pos + n]);
        input.pos += n;
        input.offset += n as u64;
        *this.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// A consumer of NAR events, driven by [`read_nar`]. `name` is `None` for
/// the root node. Errors abort reading and are reported as
/// [`NarReadError::Visitor`].
pub trait NarVisitor {
    /// A directory starts; its entries follow, in order.
    fn directory_start(
        &mut self,
        name: Option<&[u8]>,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// The innermost open directory ends.
    fn directory_end(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// A regular file of `size` bytes. `contents` yields exactly those bytes;
    /// the visitor may read all, some or none of them.
    fn file<C: AsyncRead + Unpin + Send>(
        &mut self,
        name: Option<&[u8]>,
        executable: bool,
        size: u64,
        contents: &mut C,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// A symlink.
    fn symlink(
        &mut self,
        name: Option<&[u8]>,
        target: &[u8],
    ) -> impl Future<Output = io::Result<()>> + Send;
}

/// Reads a whole NAR from `reader`, feeding `visitor`. Returns the NAR size.
pub async fn read_nar<R, V>(reader: R, visitor: &mut V) -> Result<u64, NarReadError>
where
    R: AsyncRead + Unpin + Send,
    V: NarVisitor + ?Sized,
{
    read_nar_with_options(reader, NarReaderOptions::default(), visitor).await
}

/// [`read_nar`] with explicit limits.
pub async fn read_nar_with_options<R, V>(
    reader: R,
    opts: NarReaderOptions,
    visitor: &mut V,
) -> Result<u64, NarReadError>
where
    R: AsyncRead + Unpin + Send,
    V: NarVisitor + ?Sized,
{
    let mut nar = NarReader::with_options(reader, opts);
    while let Some(event) = nar.next().await? {
        let res = match event {
            NarEvent::DirectoryStart { name } => visitor.directory_start(name.as_deref()).await,
            NarEvent::DirectoryEnd => visitor.directory_end().await,
            NarEvent::Symlink { name, target } => visitor.symlink(name.as_deref(), &target).await,
            NarEvent::File {
                name,
                executable,
                size,
                mut contents,
            } => {
                visitor
                    .file(name.as_deref(), executable, size, &mut contents)
                    .await
            }
        };
        if let Err(source) = res {
            // An error reading the contents is the NAR's fault, not the
            // visitor's.
            if let Some(e) = nar.input.error.take() {
                return Err(e);
            }
            return Err(NarReadError::Visitor {
                offset: nar.offset(),
                source,
            });
        }
    }
    Ok(nar.offset())
}
