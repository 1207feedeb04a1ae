//! Transports: how a [`Channel`](crate::Channel)'s frames reach the peer.
//!
//! A channel keeps the protocol-facing half of the work (encoding, sealing, timeouts, counters,
//! the state a failure leaves behind); a [`Transport`] moves whole frames and nothing else.
//! Veil ships two, and a wrapper that composes with any transport:
//!
//! - [`TcpTransport`]: buffered halves of a TCP socket, each frame a 4-byte little-endian payload
//!   length followed by the payload;
//! - [`MemoryTransport`]: bounded in-memory queues of whole payloads, for tests and single-process
//!   runs; it never materialises a header but enforces the same limits;
//! - [`Counting`]: counts the frames and bytes that cross any transport it wraps, into a
//!   [`TrafficCounter`] that can be read (and shared by several channels) while the channel is
//!   in use.
//!
//! A transport of one's own (a network emulator with round-trip time and bandwidth, a proxy, a
//! recorder) implements [`Transport`] and is handed to
//! [`Channel::over`](crate::Channel::over); nothing in the channel or in the protocols changes.
//! The trait is object safe (its futures are boxed), so wrappers nest at run time:
//! `Counting::new(Box::new(shaped_tcp))`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::{NetError, Stats};

/// Bytes of the length header that precedes every payload on the wire.
pub const FRAME_HEADER_LEN: usize = 4;

/// Capacity of the TCP read and write buffers.
const TCP_BUFFER: usize = 64 << 10;

/// Frames an in-memory endpoint can queue before the sender has to wait for the receiver. Few,
/// as a socket's buffers are: a sender that runs ahead by megabytes leaves its frames to go cold
/// in memory (and, once freed, to be faulted in again), while a short queue lets the receiver
/// read each frame while it is still in cache.
pub(crate) const MEMORY_QUEUE_FRAMES: usize = 4;

/// Largest step by which a payload buffer grows beyond the bytes already received (see
/// [`read_payload`]).
const READ_CHUNK: usize = 1 << 20;

/// The future a [`Transport`] operation returns.
pub type TransportFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, NetError>> + Send + 'a>>;

/// A frame's payload handed to a transport: borrowed from the caller, or already owned (which
/// saves a copy on a transport that keeps whole payloads, such as [`MemoryTransport`]).
#[derive(Debug)]
pub enum Payload<'a> {
    /// Bytes the transport must copy if it keeps them.
    Borrowed(&'a [u8]),
    /// Bytes the transport may keep.
    Owned(Vec<u8>),
}

impl Payload<'_> {
    /// The payload's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Borrowed(s) => s,
            Payload::Owned(v) => v,
        }
    }

    /// The payload as an owned buffer (a copy only when borrowed).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Payload::Borrowed(s) => s.to_vec(),
            Payload::Owned(v) => v,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// What a receive accepts as the payload length of the next frame. A transport refuses any
/// other length as soon as it knows it, before reading (or allocating for) the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameLimit {
    /// Any length up to this many bytes; a longer one is [`NetError::FrameTooLarge`].
    AtMost(usize),
    /// Exactly this many bytes; another one is [`NetError::UnexpectedLength`].
    Exactly(usize),
}

impl FrameLimit {
    /// The error for an announced payload length `len`, or `None` when it is acceptable.
    pub fn check(self, len: u64) -> Option<NetError> {
        match self {
            FrameLimit::AtMost(max) if usize::try_from(len).map_or(true, |l| l > max) => {
                Some(NetError::FrameTooLarge { len, max })
            }
            FrameLimit::Exactly(expected) if usize::try_from(len).ok() != Some(expected) => {
                Some(NetError::UnexpectedLength { len, expected })
            }
            _ => None,
        }
    }
}

/// Moves whole frames between two endpoints: the seam below [`Channel`](crate::Channel).
///
/// The channel calls these methods one at a time (never concurrently), under its own timeouts:
/// a future may be dropped before it completes. A transport reports how far it got through
/// `progress`, so that the channel can tell a cancelled operation that left the stream at a
/// frame boundary (retryable) from one that did not (the direction is then unusable).
///
/// Byte counts, rounds and message counts are kept by the channel; a transport counts nothing
/// unless it wants to (as [`Counting`] does).
pub trait Transport: Send {
    /// A short name for logs and `Debug` output (`"tcp"`, `"memory"`, ...).
    fn name(&self) -> &'static str;

    /// Hands one frame to the transport. The channel has already checked the payload against
    /// its frame limit (and it fits a 4-byte length). Sets `*progress` to a non-zero value as
    /// soon as any part of the frame may have been handed on, so that a failure or cancellation
    /// after that point marks the sending direction unusable.
    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()>;

    /// Receives one frame into `buf` (replacing its contents), refusing a length outside
    /// `limit` before reading its payload. Adds to `*progress` the bytes of the frame taken off
    /// the stream, so that a cancellation with `*progress == 0` can be retried. Errors:
    /// [`NetError::PeerClosed`] at a clean end of stream, [`NetError::Truncated`] inside a
    /// frame, and `limit`'s errors ([`FrameLimit::check`]).
    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()>;

    /// Pushes buffered frames to the peer. The default has nothing to push.
    fn flush(&mut self) -> TransportFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Ends the sending direction after the frames already sent, so the peer's next receive
    /// sees a clean end of stream. The default relies on the transport being dropped.
    fn shutdown(&mut self) -> TransportFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Bytes sent but still held in a buffer ([`flush`](Self::flush) pushes them).
    fn pending_writes(&self) -> usize {
        0
    }

    /// Whether the transport keeps payloads whole, so that handing it an owned buffer saves a
    /// copy.
    fn prefers_owned(&self) -> bool {
        false
    }

    /// The peer's network address, where there is one.
    fn peer_addr(&self) -> Option<SocketAddr> {
        None
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        (**self).send_frame(payload, progress)
    }

    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        (**self).recv_frame(buf, limit, progress)
    }

    fn flush(&mut self) -> TransportFuture<'_, ()> {
        (**self).flush()
    }

    fn shutdown(&mut self) -> TransportFuture<'_, ()> {
        (**self).shutdown()
    }

    fn pending_writes(&self) -> usize {
        (**self).pending_writes()
    }

    fn prefers_owned(&self) -> bool {
        (**self).prefers_owned()
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        (**self).peer_addr()
    }
}

/// Buffered halves of a TCP stream (64 KiB each way), with `TCP_NODELAY` set.
pub struct TcpTransport {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    peer: Option<SocketAddr>,
}

impl TcpTransport {
    /// Wraps an established stream.
    pub fn new(stream: TcpStream) -> Self {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let peer = stream.peer_addr().ok();
        let (read, write) = stream.into_split();
        Self {
            reader: BufReader::with_capacity(TCP_BUFFER, read),
            writer: BufWriter::with_capacity(TCP_BUFFER, write),
            peer,
        }
    }
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Transport for TcpTransport {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        Box::pin(async move {
            let header = header_for(payload.len(), u32::MAX as usize)?;
            // A buffered write may hand part of the frame on before failing or being cancelled.
            *progress = 1;
            self.writer.write_all(&header).await?;
            self.writer.write_all(payload.as_slice()).await?;
            Ok(())
        })
    }

    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        Box::pin(read_frame_limited(&mut self.reader, limit, buf, progress))
    }

    fn flush(&mut self) -> TransportFuture<'_, ()> {
        Box::pin(async move { Ok(self.writer.flush().await?) })
    }

    fn shutdown(&mut self) -> TransportFuture<'_, ()> {
        Box::pin(async move { Ok(self.writer.shutdown().await?) })
    }

    fn pending_writes(&self) -> usize {
        self.writer.buffer().len()
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
}

/// One end of an in-memory duplex: a bounded queue of 4 payloads each way. Dropping one end
/// makes the other's receives fail with [`NetError::PeerClosed`] once the queued frames have
/// been read, and its sends fail at once. A frame is queued whole or not at all, even when the
/// send is cancelled, and a cancelled receive loses nothing.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl MemoryTransport {
    /// Two connected ends.
    pub fn pair() -> (Self, Self) {
        let (a_tx, b_rx) = mpsc::channel(MEMORY_QUEUE_FRAMES);
        let (b_tx, a_rx) = mpsc::channel(MEMORY_QUEUE_FRAMES);
        (Self { tx: a_tx, rx: a_rx }, Self { tx: b_tx, rx: b_rx })
    }
}

impl Transport for MemoryTransport {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        _progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        let frame = payload.into_vec();
        // `Sender::send` either queues the whole frame or nothing, even when cancelled.
        Box::pin(async move { self.tx.send(frame).await.map_err(|_| NetError::PeerClosed) })
    }

    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        _progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        Box::pin(async move {
            // `Receiver::recv` is cancel safe: a timeout loses no frame.
            let frame = self.rx.recv().await.ok_or(NetError::PeerClosed)?;
            if let Some(e) = limit.check(frame.len() as u64) {
                return Err(e);
            }
            *buf = frame;
            Ok(())
        })
    }

    fn prefers_owned(&self) -> bool {
        true
    }
}

/// Traffic counters shared between a [`Counting`] transport and whoever reads them: frames and
/// bytes on the wire (header included) each way, and flights sent, with the meanings of
/// [`Stats`]. Cloning gives another handle to the same counters, so one counter can total the
/// traffic of many channels (every connection of a server, say).
#[derive(Clone, Debug, Default)]
pub struct TrafficCounter(Arc<CounterCells>);

#[derive(Debug, Default)]
struct CounterCells {
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    rounds: AtomicU64,
}

impl TrafficCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The totals so far.
    pub fn snapshot(&self) -> Stats {
        let c = &self.0;
        Stats {
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
            messages_sent: c.messages_sent.load(Ordering::Relaxed),
            messages_received: c.messages_received.load(Ordering::Relaxed),
            rounds: c.rounds.load(Ordering::Relaxed),
        }
    }
}

/// A transport that counts what crosses the one it wraps into a [`TrafficCounter`]: complete
/// frames only, with their 4-byte header, so that its totals match the channels' own
/// [`Stats`] over the same traffic.
#[derive(Debug)]
pub struct Counting<T> {
    inner: T,
    counter: TrafficCounter,
    /// Whether the last complete frame was a send (a flight is in progress).
    in_flight: bool,
}

impl<T: Transport> Counting<T> {
    /// Wraps `inner`, counting into `counter`.
    pub fn new(inner: T, counter: TrafficCounter) -> Self {
        Self {
            inner,
            counter,
            in_flight: false,
        }
    }

    /// The wrapped transport.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Transport for Counting<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        let len = (FRAME_HEADER_LEN + payload.len()) as u64;
        Box::pin(async move {
            self.inner.send_frame(payload, progress).await?;
            let c = &self.counter.0;
            c.bytes_sent.fetch_add(len, Ordering::Relaxed);
            c.messages_sent.fetch_add(1, Ordering::Relaxed);
            if !std::mem::replace(&mut self.in_flight, true) {
                c.rounds.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    }

    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        Box::pin(async move {
            self.inner.recv_frame(buf, limit, progress).await?;
            let c = &self.counter.0;
            c.bytes_received
                .fetch_add((FRAME_HEADER_LEN + buf.len()) as u64, Ordering::Relaxed);
            c.messages_received.fetch_add(1, Ordering::Relaxed);
            self.in_flight = false;
            Ok(())
        })
    }

    fn flush(&mut self) -> TransportFuture<'_, ()> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> TransportFuture<'_, ()> {
        self.inner.shutdown()
    }

    fn pending_writes(&self) -> usize {
        self.inner.pending_writes()
    }

    fn prefers_owned(&self) -> bool {
        self.inner.prefers_owned()
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// Reads one frame under `limit` (see [`FrameLimit`]).
async fn read_frame_limited<R: AsyncRead + Unpin>(
    reader: &mut R,
    limit: FrameLimit,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> Result<(), NetError> {
    let announced = read_header(reader, consumed).await?;
    if let Some(e) = limit.check(u64::from(announced)) {
        return Err(e);
    }
    buf.clear();
    read_payload(reader, announced as usize, buf, consumed).await
}

/// Encodes a payload length as a frame header, or refuses it when above `max`.
pub(crate) fn header_for(len: usize, max: usize) -> Result<[u8; 4], NetError> {
    let too_large = || NetError::FrameTooLarge {
        len: u64::try_from(len).unwrap_or(u64::MAX),
        max,
    };
    if len > max {
        return Err(too_large());
    }
    let len32 = u32::try_from(len).map_err(|_| too_large())?;
    Ok(len32.to_le_bytes())
}

/// Reads one frame into `buf` (cleared first), refusing payloads above `max` before reading them.
///
/// `consumed` is advanced as bytes of the frame are taken off the stream, so that a caller whose
/// future was cancelled (by a timeout) can tell whether the stream is still at a frame boundary.
#[cfg(feature = "fuzzing")]
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> Result<(), NetError> {
    read_frame_limited(reader, FrameLimit::AtMost(max), buf, consumed).await
}

/// Reads a frame's 4-byte header; returns the announced payload length.
async fn read_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    consumed: &mut usize,
) -> Result<u32, NetError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                NetError::PeerClosed
            } else {
                NetError::Truncated {
                    expected: FRAME_HEADER_LEN,
                    got: filled,
                }
            });
        }
        filled += n;
        *consumed += n;
    }
    Ok(u32::from_le_bytes(header))
}

/// Reads exactly `len` payload bytes, appending them to the empty `buf`.
///
/// The buffer is not sized from the announced length up front: it grows only as data arrives, by
/// at most `max(READ_CHUNK, bytes received so far)` at a time and never beyond `len`. A peer that
/// announces a large frame and then sends little can make us hold at most about twice what it
/// actually sent (plus 1 MiB).
async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> Result<(), NetError> {
    while buf.len() < len {
        let remaining = len - buf.len();
        if buf.capacity() == buf.len() {
            buf.reserve_exact(remaining.min(READ_CHUNK.max(buf.len())));
        }
        let limit = u64::try_from(remaining).unwrap_or(u64::MAX);
        let n = (&mut *reader).take(limit).read_buf(buf).await?;
        if n == 0 {
            return Err(NetError::Truncated {
                expected: len,
                got: buf.len(),
            });
        }
        *consumed += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_encoding() {
        assert_eq!(header_for(0, 10).unwrap(), [0, 0, 0, 0]);
        assert_eq!(header_for(0x0102_0304, usize::MAX).unwrap(), [4, 3, 2, 1]);
        assert!(matches!(
            header_for(11, 10),
            Err(NetError::FrameTooLarge { len: 11, max: 10 })
        ));
        #[cfg(target_pointer_width = "64")]
        assert!(matches!(
            header_for(1 << 32, usize::MAX),
            Err(NetError::FrameTooLarge { len, .. }) if len == 1 << 32
        ));
    }
}
