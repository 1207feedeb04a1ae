//! [`Channel`]: typed and raw messages between two parties, over any [`Transport`] (TCP, in
//! memory, or one of the caller's), with communication counters.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::codec;
use crate::secure::{self, Identity, PublicKey, Sealer};
use crate::transport::{
    self, FrameLimit, MemoryTransport, Payload, TcpTransport, Transport, FRAME_HEADER_LEN,
};
use crate::{ChannelConfig, NetError, Stats};

/// Scratch buffers larger than this are released after use instead of kept for the next message.
const RETAIN_SCRATCH: usize = 16 << 20;

/// Runs `fut` under `limit`, turning expiry into [`NetError::Timeout`] for `op`.
async fn with_timeout<T>(
    op: &'static str,
    limit: Duration,
    fut: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout { op, after: limit }),
    }
}

/// Keeps `buf` for reuse unless it has grown past [`RETAIN_SCRATCH`].
fn recycle(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() > RETAIN_SCRATCH {
        Vec::new()
    } else {
        buf.clear();
        buf
    }
}

/// Error for a direction that an earlier failure left in an unknown state.
fn broken(direction: &str, reason: &str) -> NetError {
    NetError::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        format!("{direction} side of the channel is unusable: {reason}"),
    ))
}

/// What a receive accepts as the payload length of the next frame.
#[derive(Clone, Copy)]
enum Expect {
    /// Any length up to this many bytes.
    AtMost(usize),
    /// Exactly this many bytes (a handshake message): any other announced length is refused
    /// before its payload is read, with a message naming `from`.
    Exactly(usize, &'static str),
}

/// One endpoint of a two-party channel: the only type protocols talk through.
///
/// A channel carries *frames*: a 4-byte little-endian payload length followed by the payload.
/// [`send`](Self::send) / [`recv`](Self::recv) carry one bincode-encoded message per frame;
/// [`send_bytes`](Self::send_bytes) / [`recv_bytes`](Self::recv_bytes) carry raw payloads for bulk
/// data. Every transport behaves the same way: TCP ([`connect`](Self::connect),
/// [`from_tcp`](Self::from_tcp), [`tcp_pair`](crate::tcp_pair)), in-memory
/// ([`memory_pair`](Self::memory_pair)), and any other [`Transport`] given to
/// [`over`](Self::over), down to the byte counts in [`stats`](Self::stats).
///
/// # Buffering
///
/// Sends on TCP are buffered (64 KiB) and reach the peer when the buffer fills, on
/// [`flush`](Self::flush), on [`close`](Self::close), or before the next receive, which flushes
/// pending writes first. A party that sends and then waits on something other than this channel
/// must flush, and a channel dropped without [`close`](Self::close) or [`flush`](Self::flush) loses
/// whatever is still buffered. In-memory sends are delivered immediately.
///
/// # Timeouts
///
/// * A receive must get its whole frame, header and payload, within
///   [`read_timeout`](ChannelConfig::read_timeout), counted from when pending writes have been
///   flushed (a single deadline for the frame, not one per read).
/// * A send must hand its frame to the transport within
///   [`write_timeout`](ChannelConfig::write_timeout); each flush, and the flush and shutdown in
///   [`close`](Self::close), get the same allowance. A send waits only when the transport is full:
///   the socket and its buffers, or 4 queued frames in memory.
///
/// A receive that times out before any byte of the next frame arrived can be retried; one that
/// times out inside a frame, like any other failure in the middle of a frame, leaves that
/// direction unusable (see [`NetError`]).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), veil_net::NetError> {
/// use veil_net::{Channel, ChannelConfig};
///
/// let (mut alice, mut bob) = Channel::memory_pair(ChannelConfig::default());
/// alice.send(&(1u64, "hello".to_string())).await?;
/// let (n, s): (u64, String) = bob.recv().await?;
/// bob.send(&(n + 1)).await?;
/// assert_eq!(alice.recv::<u64>().await?, 2);
/// assert_eq!(alice.stats().bytes_sent, bob.stats().bytes_received);
/// assert_eq!((alice.stats().rounds, bob.stats().rounds), (1, 1));
/// # let _ = s;
/// # Ok(())
/// # }
/// ```
pub struct Channel {
    transport: Box<dyn Transport>,
    config: ChannelConfig,
    stats: Stats,
    /// Whether the last completed frame operation was a send (we are inside a flight).
    in_flight: bool,
    /// Set when a receive failed with part of a frame consumed.
    rx_broken: Option<&'static str>,
    /// Set when a send, flush or shutdown failed with part of the data possibly written.
    tx_broken: Option<&'static str>,
    /// Reused encoding buffer (TCP).
    tx_scratch: Vec<u8>,
    /// Reused receive buffer for typed messages.
    rx_scratch: Vec<u8>,
    /// Set once [`close`](Self::close) has run, to silence the drop check.
    closed: bool,
    /// After a secure handshake: seals sends and opens receives.
    sealer: Option<Box<Sealer>>,
    /// After a secure handshake: the peer's authenticated identity.
    peer_key: Option<PublicKey>,
    /// Reused buffer for sealed frames.
    sealed_scratch: Vec<u8>,
}

impl Channel {
    /// A channel over any transport: one of [`crate::transport`]'s, a wrapper of them such as
    /// [`Counting`](crate::transport::Counting), or the caller's own.
    pub fn over(transport: impl Transport + 'static, config: ChannelConfig) -> Self {
        Self {
            transport: Box::new(transport),
            config,
            stats: Stats::default(),
            in_flight: false,
            rx_broken: None,
            tx_broken: None,
            tx_scratch: Vec::new(),
            rx_scratch: Vec::new(),
            closed: false,
            sealer: None,
            peer_key: None,
            sealed_scratch: Vec::new(),
        }
    }

    /// Runs the client side of the secure handshake (see [`secure`]) with this endpoint's
    /// `identity`, against a server whose public key is `server` (the pin). Afterwards every
    /// frame is sealed. Call it on a fresh channel, before any other message.
    ///
    /// # Errors
    ///
    /// [`NetError::Handshake`] if the peer does not hold the private key of `server` or does not
    /// speak the handshake, [`NetError::Refused`] if the server does not accept `identity`, and
    /// the errors of [`send_bytes`](Self::send_bytes) and [`recv_bytes`](Self::recv_bytes).
    pub async fn secure_client(
        &mut self,
        identity: &Identity,
        server: &PublicKey,
    ) -> Result<(), NetError> {
        if self.sealer.is_some() {
            return Err(NetError::Handshake("the channel is already secure".into()));
        }
        let (hs, first) = secure::initiator(identity, server)?;
        self.send_bytes(&first).await?;
        let mut answer = Vec::new();
        self.recv_wire(
            &mut answer,
            Expect::Exactly(secure::MSG2_LEN, "the server's answer"),
        )
        .await?;
        self.sealer = Some(Box::new(secure::initiator_finish(hs, &answer)?));
        self.peer_key = Some(*server);
        Ok(())
    }

    /// Runs the server side of the secure handshake with this endpoint's `identity`. With an
    /// allow-list, a client whose key is not on it is told so and refused before any protocol
    /// message. Returns the client's authenticated public key.
    ///
    /// The client's first message has a fixed length (96 bytes): a frame header announcing any
    /// other length is refused as soon as its 4 bytes are in, without reading (or waiting for)
    /// a payload, whatever [`max_frame`](ChannelConfig::max_frame) allows. The handshake
    /// waits for that message under the channel's read timeout; a server that admits
    /// untrusted connections should bound the whole handshake more tightly (as
    /// `veil_protocols::serve` does).
    ///
    /// # Errors
    ///
    /// [`NetError::Handshake`] if the client's first message is not a handshake sealed for
    /// `identity` or announces another length, [`NetError::Refused`] for a client not on
    /// `allow`, and the channel's errors.
    pub async fn secure_server(
        &mut self,
        identity: &Identity,
        allow: Option<&[PublicKey]>,
    ) -> Result<PublicKey, NetError> {
        if self.sealer.is_some() {
            return Err(NetError::Handshake("the channel is already secure".into()));
        }
        let mut first = Vec::new();
        self.recv_wire(
            &mut first,
            Expect::Exactly(secure::MSG1_LEN, "the client's first message"),
        )
        .await?;
        let (hs, key) = secure::responder(identity, &first)?;
        let accept = allow.is_none_or(|list| secure::allowed(list, &key));
        let status = if accept {
            secure::ACCEPTED
        } else {
            secure::REFUSED
        };
        let (answer, sealer) = secure::responder_answer(hs, status)?;
        self.send_bytes(&answer).await?;
        self.flush().await?;
        if !accept {
            return Err(NetError::Refused(format!(
                "client key {key} is not on the allow-list"
            )));
        }
        self.sealer = sealer.map(Box::new);
        self.peer_key = Some(key);
        Ok(key)
    }

    /// Whether frames are sealed (a secure handshake completed).
    pub fn is_secure(&self) -> bool {
        self.sealer.is_some()
    }

    /// The peer's authenticated public key, after a secure handshake.
    pub fn peer_key(&self) -> Option<PublicKey> {
        self.peer_key
    }

    /// Two connected in-memory endpoints, for tests and single-process runs.
    ///
    /// Each direction is a bounded queue of 64 frames; both ends use `config` and enforce its
    /// frame limit and timeouts. Dropping or closing one end makes the other's receives fail with
    /// [`NetError::PeerClosed`] once the frames already queued have been read, and its sends fail
    /// with [`NetError::PeerClosed`] at once.
    pub fn memory_pair(config: ChannelConfig) -> (Channel, Channel) {
        let (a, b) = MemoryTransport::pair();
        (Self::over(a, config), Self::over(b, config))
    }

    /// Connects to `addr` over TCP within [`connect_timeout`](ChannelConfig::connect_timeout),
    /// with `TCP_NODELAY` set.
    ///
    /// # Errors
    ///
    /// [`NetError::Timeout`] with `op == "connect"`, or [`NetError::Io`] (connection refused,
    /// unresolvable address, ...).
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: ChannelConfig,
    ) -> Result<Channel, NetError> {
        let stream = with_timeout("connect", config.connect_timeout, async {
            Ok(TcpStream::connect(addr).await?)
        })
        .await?;
        Ok(Self::from_tcp(stream, config))
    }

    /// Wraps an established TCP stream, typically one returned by `TcpListener::accept`, and sets
    /// `TCP_NODELAY` on it.
    pub fn from_tcp(stream: TcpStream, config: ChannelConfig) -> Channel {
        Self::over(TcpTransport::new(stream), config)
    }

    /// Sends `msg`, bincode-encoded (standard configuration), as one frame.
    ///
    /// On TCP the frame may stay buffered; see [Buffering](Self#buffering).
    ///
    /// # Errors
    ///
    /// [`NetError::Encode`] if `msg` cannot be encoded, [`NetError::FrameTooLarge`] if its
    /// encoding exceeds [`max_frame`](ChannelConfig::max_frame) (nothing is sent in either
    /// case), and the errors of [`send_bytes`](Self::send_bytes).
    pub async fn send<M: Serialize + ?Sized>(&mut self, msg: &M) -> Result<(), NetError> {
        if self.transport.prefers_owned() {
            let frame = codec::encode_to_vec(msg)?;
            return self.send_frame(Payload::Owned(frame)).await;
        }
        let mut scratch = std::mem::take(&mut self.tx_scratch);
        let result = match codec::encode_into(msg, &mut scratch) {
            Ok(()) => self.send_frame(Payload::Borrowed(&scratch)).await,
            Err(e) => Err(e),
        };
        self.tx_scratch = recycle(scratch);
        result
    }

    /// Receives one frame and decodes it as an `M`; the frame must contain exactly one `M`.
    ///
    /// Flushes pending writes first.
    ///
    /// # Errors
    ///
    /// [`NetError::Decode`] if the frame is not a valid `M` or has trailing bytes (the frame is
    /// consumed and the channel stays usable), and the errors of
    /// [`recv_bytes`](Self::recv_bytes).
    pub async fn recv<M: DeserializeOwned>(&mut self) -> Result<M, NetError> {
        let mut buf = std::mem::take(&mut self.rx_scratch);
        let result = match self.recv_frame(&mut buf).await {
            Ok(()) => codec::decode_exact(&buf),
            Err(e) => Err(e),
        };
        self.rx_scratch = recycle(buf);
        result
    }

    /// As [`recv`](Self::recv), for a message known to be small: a frame announcing more than
    /// `limit` payload bytes (or the channel's own limit) is refused before its payload is read.
    /// A server reading a client's message whose size follows from public parameters bounds it
    /// this way rather than by the channel's general frame limit.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv); [`NetError::FrameTooLarge`] names the smaller limit.
    pub async fn recv_within<M: DeserializeOwned>(&mut self, limit: usize) -> Result<M, NetError> {
        let mut buf = std::mem::take(&mut self.rx_scratch);
        let result = match self.recv_frame_within(&mut buf, limit).await {
            Ok(()) => codec::decode_exact(&buf),
            Err(e) => Err(e),
        };
        self.rx_scratch = recycle(buf);
        result
    }

    /// Sends `data` as one raw frame, for bulk data that needs no encoding.
    ///
    /// # Errors
    ///
    /// [`NetError::FrameTooLarge`] if `data` exceeds [`max_frame`](ChannelConfig::max_frame)
    /// (checked before anything is written), [`NetError::Timeout`] with `op == "write"`,
    /// [`NetError::PeerClosed`] if the in-memory peer is gone, [`NetError::Io`] otherwise.
    pub async fn send_bytes(&mut self, data: &[u8]) -> Result<(), NetError> {
        self.send_frame(Payload::Borrowed(data)).await
    }

    /// Sends `data` as one raw frame, handing the buffer to the transport: the in-memory
    /// transport delivers it to the peer without a copy. Errors as [`send_bytes`](Self::send_bytes).
    pub async fn send_bytes_owned(&mut self, data: Vec<u8>) -> Result<(), NetError> {
        self.send_frame(Payload::Owned(data)).await
    }

    /// Receives one raw frame.
    ///
    /// Flushes pending writes first.
    ///
    /// # Errors
    ///
    /// [`NetError::PeerClosed`] at a clean end of stream, [`NetError::Truncated`] if the stream
    /// ends inside a frame, [`NetError::FrameTooLarge`] if the announced length exceeds
    /// [`max_frame`](ChannelConfig::max_frame) (nothing of the payload is read or allocated),
    /// [`NetError::Timeout`] with `op == "read"` (or `"write"` from the flush), [`NetError::Io`]
    /// otherwise.
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, NetError> {
        let mut buf = Vec::new();
        self.recv_frame(&mut buf).await?;
        Ok(buf)
    }

    /// Receives one raw frame into `buf`, replacing its contents and reusing its allocation where
    /// the transport allows (on the in-memory transport the delivered buffer replaces `buf`).
    ///
    /// # Errors
    ///
    /// As [`recv_bytes`](Self::recv_bytes). On error, the contents of `buf` are unspecified.
    pub async fn recv_bytes_into(&mut self, buf: &mut Vec<u8>) -> Result<(), NetError> {
        self.recv_frame(buf).await
    }

    /// Pushes buffered sends to the peer (a no-op in memory).
    ///
    /// # Errors
    ///
    /// [`NetError::Timeout`] with `op == "write"`, or [`NetError::Io`]; either leaves the sending
    /// side unusable.
    pub async fn flush(&mut self) -> Result<(), NetError> {
        if self.transport.pending_writes() == 0 {
            return Ok(());
        }
        if let Some(reason) = self.tx_broken {
            return Err(broken("sending", reason));
        }
        let result = with_timeout("write", self.config.write_timeout, self.transport.flush()).await;
        if result.is_err() {
            self.tx_broken = Some("a flush failed");
        }
        result
    }

    /// The counters so far; see [`Stats`] for their definitions.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration this channel was created with (and any read timeout set since).
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Sets the [`read_timeout`](ChannelConfig::read_timeout) of the receives that follow: for
    /// a reply known to take longer than the usual exchange, such as an encrypted evaluation.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.config.read_timeout = timeout;
    }

    /// The peer's address for TCP channels, `None` in memory.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.transport.peer_addr()
    }

    /// Flushes pending sends and shuts down the sending direction, so the peer sees a clean end
    /// of stream ([`NetError::PeerClosed`]) after the last frame.
    ///
    /// # Errors
    ///
    /// As [`flush`](Self::flush); the connection is released either way.
    pub async fn close(mut self) -> Result<(), NetError> {
        self.closed = true;
        self.flush().await?;
        with_timeout(
            "write",
            self.config.write_timeout,
            self.transport.shutdown(),
        )
        .await
    }

    async fn send_frame(&mut self, payload: Payload<'_>) -> Result<(), NetError> {
        let max = self.config.effective_max_frame();
        let Some(sealer) = self.sealer.as_mut() else {
            return self.send_wire(payload, max).await;
        };
        transport::header_for(payload.as_slice().len(), max)?;
        if let Some(reason) = self.tx_broken {
            return Err(broken("sending", reason));
        }
        let mut sealed = std::mem::take(&mut self.sealed_scratch);
        if let Err(e) = sealer.seal(payload.as_slice(), &mut sealed) {
            self.tx_broken = Some("sealing failed");
            return Err(e);
        }
        let wire_max = secure::sealed_len(max).min(u32::MAX as usize);
        let result = if self.transport.prefers_owned() {
            self.send_wire(Payload::Owned(sealed), wire_max).await
        } else {
            let r = self.send_wire(Payload::Borrowed(&sealed), wire_max).await;
            self.sealed_scratch = recycle(sealed);
            r
        };
        if result.is_err() {
            // The sealer's counter moved on: the peer cannot open anything sent after a gap.
            self.tx_broken = Some("a sealed send failed");
        }
        result
    }

    async fn send_wire(&mut self, payload: Payload<'_>, max: usize) -> Result<(), NetError> {
        let len = payload.as_slice().len();
        transport::header_for(len, max)?;
        if let Some(reason) = self.tx_broken {
            return Err(broken("sending", reason));
        }
        let limit = self.config.write_timeout;
        let mut progress = 0usize;
        let result = with_timeout(
            "write",
            limit,
            self.transport.send_frame(payload, &mut progress),
        )
        .await;
        if result.is_err() && progress > 0 {
            self.tx_broken = Some("a send failed part-way through a frame");
        }
        result?;
        tracing::trace!(len, "frame sent");
        self.stats.bytes_sent += (FRAME_HEADER_LEN + len) as u64;
        self.stats.messages_sent += 1;
        if !self.in_flight {
            self.in_flight = true;
            self.stats.rounds += 1;
        }
        Ok(())
    }

    async fn recv_frame(&mut self, buf: &mut Vec<u8>) -> Result<(), NetError> {
        self.recv_frame_within(buf, usize::MAX).await
    }

    /// Receives a frame whose payload is at most `limit` bytes (and the channel's own limit).
    async fn recv_frame_within(&mut self, buf: &mut Vec<u8>, limit: usize) -> Result<(), NetError> {
        let max = self.config.effective_max_frame().min(limit);
        if self.sealer.is_none() {
            return self.recv_wire(buf, Expect::AtMost(max)).await;
        }
        let max = secure::sealed_len(max).min(u32::MAX as usize);
        let mut sealed = std::mem::take(&mut self.sealed_scratch);
        let result = self.recv_wire(&mut sealed, Expect::AtMost(max)).await;
        let result = match (result, self.sealer.as_mut()) {
            (Ok(()), Some(sealer)) => sealer.open(&sealed, buf),
            (Ok(()), None) => Err(NetError::Decrypt),
            (Err(e), _) => Err(e),
        };
        self.sealed_scratch = recycle(sealed);
        if matches!(result, Err(NetError::Decrypt)) {
            self.rx_broken = Some("a sealed frame failed authentication");
        }
        result
    }

    async fn recv_wire(&mut self, buf: &mut Vec<u8>, expect: Expect) -> Result<(), NetError> {
        // A sending side that already failed cannot deliver its buffer; the receiving side is
        // independent of it.
        if self.tx_broken.is_none() {
            self.flush().await?;
        }
        if let Some(reason) = self.rx_broken {
            return Err(broken("receiving", reason));
        }
        let limit = self.config.read_timeout;
        let frame_limit = match expect {
            Expect::AtMost(max) => FrameLimit::AtMost(max),
            Expect::Exactly(len, _) => FrameLimit::Exactly(len),
        };
        let mut consumed = 0usize;
        let result = with_timeout(
            "read",
            limit,
            self.transport.recv_frame(buf, frame_limit, &mut consumed),
        )
        .await;
        if let Err(e) = result {
            if consumed > 0 {
                self.rx_broken = Some("an earlier receive failed inside a frame");
            }
            return Err(match (e, expect) {
                (NetError::UnexpectedLength { len, expected }, Expect::Exactly(_, from)) => {
                    secure::wrong_length(from, len, expected)
                }
                (e, _) => e,
            });
        }
        tracing::trace!(len = buf.len(), "frame received");
        self.stats.bytes_received += (FRAME_HEADER_LEN + buf.len()) as u64;
        self.stats.messages_received += 1;
        self.in_flight = false;
        Ok(())
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("transport", &self.transport.name())
            .field("peer_addr", &self.peer_addr())
            .field("stats", &self.stats)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let pending = self.transport.pending_writes();
        if pending > 0 && !self.closed && self.tx_broken.is_none() {
            tracing::warn!(
                pending,
                "channel dropped with unflushed sends; call flush() or close() first"
            );
        }
    }
}
