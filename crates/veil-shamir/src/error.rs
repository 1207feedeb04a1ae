//! Error types: [`ShamirError`] for sharing, reconstruction, verification and share-file
//! decoding; [`MpcError`] for the n-party protocol.

use veil_net::NetError;

/// Why a sharing, reconstruction, verification or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {
    /// Sharing parameters out of range (degree, number of shares, field size).
    #[error("invalid sharing parameters: {0}")]
    InvalidParams(String),
    /// Fewer shares than needed to reconstruct.
    #[error("not enough shares: {got} given, {needed} needed")]
    NotEnoughShares {
        /// Shares supplied (or, where shares were rejected, shares that passed the checks).
        got: usize,
        /// Shares needed: degree + 1.
        needed: usize,
    },
    /// A share index is zero, above the number of shares, or too large for the field.
    #[error("share index {index} out of range 1..={max}")]
    IndexOutOfRange {
        /// The offending index.
        index: u32,
        /// The largest index allowed.
        max: u32,
    },
    /// Two shares carry the same index.
    #[error("share index {index} given twice")]
    DuplicateIndex {
        /// The repeated index.
        index: u32,
    },
    /// Shares of different vectors or parameters were mixed (different lengths or degrees).
    #[error("shares disagree on {0}")]
    Mismatched(&'static str),
    /// Shares from two or more different dealings were combined.
    #[error("shares come from {count} different dealings (share {first_index} is from dealing {first}, share {other_index} from dealing {other})")]
    MixedDealings {
        /// How many distinct dealing ids appear.
        count: usize,
        /// A share index of the first dealing seen.
        first_index: u32,
        /// Hex prefix of the first dealing id.
        first: String,
        /// A share index of another dealing.
        other_index: u32,
        /// Hex prefix of that other dealing id.
        other: String,
    },
    /// The shares do not lie on one polynomial of the stated degree; the indices of the shares
    /// identified as wrong (by Berlekamp-Welch decoding) are listed.
    #[error("bad shares detected at indices {indices:?}")]
    BadShares {
        /// Share indices whose values are inconsistent with the others.
        indices: Vec<u32>,
    },
    /// The shares are inconsistent and too many are wrong to tell which.
    #[error(
        "shares are inconsistent and cannot be corrected: more than {max_errors} may be wrong"
    )]
    Uncorrectable {
        /// Largest number of errors decodable with the shares given.
        max_errors: usize,
    },
    /// Shares failed Feldman verification against the dealing's commitments.
    #[error("shares at indices {indices:?} fail verification against the commitments")]
    VerificationFailed {
        /// Indices of the shares that failed.
        indices: Vec<u32>,
    },
    /// Share files carry commitment sets that disagree, with no set clearly supported.
    #[error("share files carry conflicting commitments")]
    ConflictingCommitments,
    /// A refresh update does not share zero (its constant commitment is not the identity) or does
    /// not match the dealing.
    #[error("invalid refresh update: {0}")]
    InvalidRefresh(&'static str),
    /// A serialized share is malformed.
    #[error("malformed share: {0}")]
    Malformed(String),
    /// A serialized share has a version this code does not read.
    #[error("unsupported share format version {0}")]
    UnsupportedVersion(u8),
}

/// Why an n-party protocol step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MpcError {
    /// The channel to `peer` failed: it closed, went silent past the timeout, or sent an
    /// unreadable frame.
    #[error("channel to party {peer}: {source}")]
    Net {
        /// The peer's party index.
        peer: usize,
        /// The channel error.
        #[source]
        source: NetError,
    },
    /// Binding or accepting on the local listening address failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Setting up the mesh did not complete within the connect timeout.
    #[error("mesh setup timed out: {0}")]
    SetupTimeout(String),
    /// A peer's hello did not match this session (session id, party count, threshold, index).
    #[error("handshake with {peer}: {reason}")]
    Handshake {
        /// The peer's claimed index, or its address.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// A peer sent a message with the wrong tag, sequence number, length or a non-canonical
    /// field element.
    #[error("malformed message from party {peer}: {reason}")]
    Malformed {
        /// The peer's party index.
        peer: usize,
        /// What was wrong.
        reason: String,
    },
    /// Opened shares are inconsistent (a party deviated or data was corrupted).
    #[error("opened shares are inconsistent: {0}")]
    Inconsistent(ShamirError),
    /// The caller asked for something the protocol cannot do (bad parameters, mismatched
    /// lengths, wrong role).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value does not fit the signed range of the field (`|v| ≤ (p-1)/2`).
    #[error("value out of range for the field: {0}")]
    Overflow(String),
}
