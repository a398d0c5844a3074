//! Response bodies: small ones in one piece, NARs streamed from a
//! rendering task through a bounded channel.
//!
//! [`ChannelWriter`] is the `AsyncWrite` the NAR renderer writes into: it
//! gathers writes into blocks of [`BLOCK_SIZE`] and hands them to the
//! response body, waiting while [`BLOCKS_IN_FLIGHT`] blocks are unsent (so a
//! slow client slows the renderer instead of filling memory). A dropped
//! body (the client went away) makes the next write fail, which stops the
//! renderer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// The body of every response.
pub type ResponseBody = BoxBody<Bytes, io::Error>;

/// Bytes per block sent to the client.
pub const BLOCK_SIZE: usize = 256 * 1024;
/// Blocks buffered between renderer and client.
pub const BLOCKS_IN_FLIGHT: usize = 8;

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> ResponseBody {
    full(Bytes::new())
}

/// A streamed body and the writer that feeds it.
pub fn channel() -> (ChannelWriter, ResponseBody) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(BLOCKS_IN_FLIGHT);
    let stream = tokio_stream_from(rx).map(|item| item.map(Frame::data));
    (
        ChannelWriter {
            sender: PollSender::new(tx),
            buffer: BytesMut::with_capacity(BLOCK_SIZE),
        },
        BodyExt::boxed(StreamBody::new(stream)),
    )
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + Sync + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Writes into a streamed response body.
pub struct ChannelWriter {
    sender: PollSender<io::Result<Bytes>>,
    buffer: BytesMut,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}

impl ChannelWriter {
    /// Sends the buffered bytes once the channel has room.
    fn poll_send_buffer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.sender.poll_reserve(cx)).map_err(|_| gone())?;
        let block = self.buffer.split().freeze();
        self.buffer.reserve(BLOCK_SIZE);
        self.sender.send_item(Ok(block)).map_err(|_| gone())?;
        Poll::Ready(Ok(()))
    }

    /// Ends the body with an error (the client sees a broken transfer).
    pub async fn fail(mut self, error: io::Error) {
        self.buffer.clear();
        if let Some(sender) = self.sender.get_ref() {
            let _ = sender.send(Err(error)).await;
        }
    }
}

impl AsyncWrite for ChannelWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buffer.len() >= BLOCK_SIZE {
            ready!(this.poll_send_buffer(cx))?;
        }
        let n = data
            .len()
            .min(BLOCK_SIZE.saturating_sub(this.buffer.len()).max(1));
        this.buffer.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_buffer(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send_buffer(cx)
    }
}

/// Passes on only bytes `start..=end` of what is written to it; once the
/// range is complete, writes fail with [`RangeComplete`] so the producer
/// stops early.
pub struct RangeWriter<W> {
    inner: W,
    position: u64,
    start: u64,
    end: u64,
}

/// The error a [`RangeWriter`] returns once its range has been written.
#[derive(Debug, thiserror::Error)]
#[error("the requested range has been written")]
pub struct RangeComplete;

impl<W> RangeWriter<W> {
    pub fn new(inner: W, start: u64, end: u64) -> Self {
        RangeWriter {
            inner,
            position: 0,
            start,
            end,
        }
    }

    /// Whether every byte of the range went through.
    pub fn is_complete(&self) -> bool {
        self.position > self.end
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for RangeWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.is_complete() {
            return Poll::Ready(Err(io::Error::other(RangeComplete)));
        }
        let len = data.len() as u64;
        let data_end = this.position + len;
        if data_end <= this.start {
            this.position = data_end;
            return Poll::Ready(Ok(data.len()));
        }
        // Skip what lies before the range, then pass on what lies in it.
        let skip = this.start.saturating_sub(this.position);
        if skip > 0 {
            this.position += skip;
            return Poll::Ready(Ok(skip as usize));
        }
        let take = (this.end + 1 - this.position).min(len) as usize;
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &data[..take]))?;
        this.position += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn range_writer_passes_only_the_range() {
        let data: Vec<u8> = (0..=255).collect();
        for (start, end) in [(0, 0), (3, 17), (250, 255), (0, 255), (100, 100)] {
            let mut w = RangeWriter::new(Vec::new(), start, end);
            let mut written = 0;
            for piece in data.chunks(7) {
                match w.write_all(piece).await {
                    Ok(()) => written += piece.len(),
                    Err(e) => {
                        assert!(e.get_ref().is_some_and(|e| e.is::<RangeComplete>()));
                        break;
                    }
                }
            }
            assert!(w.is_complete());
            assert!(written <= data.len());
            assert_eq!(w.into_inner(), &data[start as usize..=end as usize]);
        }
    }

    #[tokio::test]
    async fn channel_delivers_everything_in_order() {
        let (mut w, body) = channel();
        let data: Vec<u8> = (0..3 * BLOCK_SIZE + 17).map(|i| i as u8).collect();
        let writer = {
            let data = data.clone();
            tokio::spawn(async move {
                for piece in data.chunks(1000) {
                    w.write_all(piece).await.unwrap();
                }
                w.shutdown().await.unwrap();
            })
        };
        let got = body.collect().await.unwrap().to_bytes();
        writer.await.unwrap();
        assert!(got == data);
    }

    #[tokio::test]
    async fn a_dropped_body_stops_the_writer() {
        let (mut w, body) = channel();
        drop(body);
        let block = vec![0u8; BLOCK_SIZE];
        let mut failed = false;
        for _ in 0..BLOCKS_IN_FLIGHT + 4 {
            if w.write_all(&block).await.is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}
