//! `veil-gc`: Yao garbled circuits.
//!
//! - [`garble`]: half-gates garbling and evaluation with free-XOR and point-and-permute,
//!   32 bytes per AND gate and nothing for XOR or INV, hashed with fixed-key AES.
//! - [`protocol`]: the two-party protocol between a [`Garbler`] and an [`Evaluator`] over a
//!   channel, the evaluator's input labels obtained by SoftSpokenOT random OT, tables streamed in
//!   chunks, outputs revealed to either party or both.

pub mod garble;
pub mod protocol;

pub use garble::garble_and_evaluate;
pub use protocol::{Evaluator, Garbler, GcError, Party, PreparedCircuit, Reveal, MAX_DEFERRED};
