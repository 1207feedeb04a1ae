//! `veil-arith`: additive secret sharing over `Z_2^k`, and the product of one party's
//! plaintext matrix with the other party's secret vector, left additively shared between them,
//! computed by oblivious transfer.
//!
//! This is the offline phase of the linear layers of mixed-protocol inference (ABY, Demmler,
//! Schneider and Zohner, NDSS 2015, section III; MiniONN, Liu, Juuti, Lu and Asokan, CCS 2017,
//! section 4.2): before a query, the client draws a random mask `r` and the two parties obtain
//! shares of `W·r`, where `W` is the server's weight matrix; online, the client sends `x − r`
//! and the server computes `W·(x − r)` locally, so that the two hold shares of `W·x`.
//!
//! - [`ring`]: arithmetic modulo `2^k`, `1 ≤ k ≤ 64`, on `u64` words.
//! - [`matvec`]: the OT-based product (Gilboa, "Two party RSA key generation", CRYPTO 1999,
//!   section 3, one oblivious transfer per bit of the secret vector), over the random OTs of
//!   `veil-ot` (SoftSpokenOT, 4 bytes per OT), with a public sparsity pattern so that convolutions cost what their
//!   weights touch.
//! - [`circuits`]: the boolean circuits that take a layer's two shares back to values: the
//!   requantized activation re-masked for the next layer, and the final argmax.
//!
//! Security: semi-honest. The matrix holder learns nothing of the vector (it only sends); the
//! vector holder's share is uniformly random whatever `W` is. A party that deviates in the
//! later, online use of the shares can learn more; see the protocols that use this crate.

pub mod circuits;
pub mod matvec;
pub mod ring;

pub use matvec::{ArithError, Pattern};
