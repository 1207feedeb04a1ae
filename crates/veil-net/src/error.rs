//! The error type of every channel operation.

use std::time::Duration;

/// Why a channel operation failed.
///
/// After [`PeerClosed`](Self::PeerClosed), [`Truncated`](Self::Truncated),
/// [`FrameTooLarge`](Self::FrameTooLarge) (on receive), [`Io`](Self::Io), or a
/// [`Timeout`](Self::Timeout) that struck in the middle of a frame, the affected direction of the
/// channel is no longer usable and later calls in that direction fail too. A
/// [`Decode`](Self::Decode) error consumes exactly the offending frame and leaves the channel
/// usable; so does a receive [`Timeout`](Self::Timeout) that expired before any byte of the next
/// frame arrived, and a send that was refused with [`FrameTooLarge`](Self::FrameTooLarge) or
/// [`Encode`](Self::Encode) (nothing was written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The peer closed the connection at a frame boundary (clean end of stream), or the in-memory
    /// peer was dropped.
    #[error("peer closed the channel")]
    PeerClosed,
    /// The stream ended inside a frame. While reading the header, `expected` is 4 and `got` the
    /// header bytes received; while reading the payload, `expected` is the announced payload length
    /// and `got` the payload bytes received.
    #[error("stream ended inside a frame: expected {expected} bytes, got {got}")]
    Truncated {
        /// Bytes the header or payload should have had.
        expected: usize,
        /// Bytes actually received before the end of the stream.
        got: usize,
    },
    /// The operation did not complete in time.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// Which operation: `"connect"`, `"read"` or `"write"`.
        op: &'static str,
        /// The configured limit that expired.
        after: Duration,
    },
    /// A frame's payload is longer than [`ChannelConfig::max_frame`](crate::ChannelConfig::max_frame):
    /// announced by the peer, or about to be sent.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced or attempted payload length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A received frame announced another payload length than the one the receive requires
    /// (a handshake message of fixed size); nothing of its payload was read.
    #[error("frame of {len} bytes where exactly {expected} were expected")]
    UnexpectedLength {
        /// The announced payload length.
        len: u64,
        /// The length required.
        expected: usize,
    },
    /// A received frame is not a valid encoding of the expected type, or has bytes left over
    /// after it.
    #[error("cannot decode frame: {0}")]
    Decode(String),
    /// A message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The encrypted-channel handshake failed: the peer does not hold the pinned key, speaks
    /// plaintext or another protocol, or sent a malformed handshake message.
    #[error("secure channel handshake failed: {0}")]
    Handshake(String),
    /// The peer refused this endpoint's identity (a server's allow-list), or this endpoint
    /// refused the peer's.
    #[error("refused: {0}")]
    Refused(String),
    /// A sealed frame failed authentication: it was modified, truncated, replayed, reordered or
    /// forged. The receiving direction is unusable afterwards.
    #[error("a sealed frame failed authentication (tampered, replayed or reordered)")]
    Decrypt,
    /// Any other I/O failure (connection refused or reset, ...), including use of a direction that
    /// an earlier failure left unusable.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl NetError {
    /// Whether this is a [`Timeout`](Self::Timeout).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether this is [`PeerClosed`](Self::PeerClosed).
    pub fn is_peer_closed(&self) -> bool {
        matches!(self, Self::PeerClosed)
    }
}
