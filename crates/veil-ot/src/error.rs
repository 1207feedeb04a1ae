//! Errors of the OT protocols.

use veil_net::NetError;

/// Why an OT protocol failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtError {
    /// The channel failed: the peer closed, went silent past the timeout, or sent an
    /// unreadable frame.
    #[error("channel: {0}")]
    Net(#[from] NetError),
    /// The peer's message has the wrong size or structure.
    #[error("malformed message from peer: {0}")]
    Malformed(String),
    /// The peer sent a point that is not a canonical Ristretto255 encoding, or the identity.
    #[error("invalid Ristretto point from peer at index {index}")]
    InvalidPoint {
        /// Position of the point in its message.
        index: usize,
    },
    /// The caller asked for something the protocol cannot do.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The OT extension receiver failed the consistency check: it deviated from the protocol
    /// (or its messages were changed on the way). Which equation failed is not said.
    #[error("the peer failed the OT consistency check (it deviated from the protocol)")]
    ConsistencyCheck,
}
