//! `veil-circuit`: the boolean circuits that Veil's garbled-circuit (Yao, half gates) and GMW
//! backends execute.
//!
//! - [`circuit`]: the intermediate representation ([`Circuit`], [`Gate`], [`WireId`]), its
//!   validation, the plaintext evaluator, statistics ([`CircuitStats`]) and the AND layers that
//!   GMW evaluates one communication round at a time.
//! - [`backend`]: the [`BoolBackend`] trait (public constants, XOR, AND, NOT over a backend's
//!   own bits, in the manner of swanky's `Fancy`) and its extension [`ArithBackend`] to values
//!   of the ring `Z_2^k` for mixed protocols.
//! - [`gadgets`]: the word-level gadgets (adders, comparators, multipliers, multiplexers, ReLU,
//!   clamping, argmax, bit-heap sums, dot products), written once for every backend as the
//!   [`Gadgets`] trait, from which Veil's quantized MLP is compiled.
//! - [`builder`]: the [`Builder`], the backend whose bits are wires: it folds constants and
//!   emits the gates of a [`Circuit`].
//! - [`plain`]: the plaintext backend [`Plain`](plain::Plain), with `bool` bits and wrapping
//!   `Z_2^k` values.
//! - [`cost`]: the cost counter [`Cost`](cost::Cost): AND gates, AND depth and protocol bytes
//!   of a computation without building its circuit.
//! - [`ring`]: `Z_2^k` on the builder and the counter, with the boolean gadgets.
//! - [`walk`]: the one gate walk over a compiled circuit ([`walk::GateVisitor`]), in order or
//!   one AND layer at a time, that the plaintext evaluator, the garbler and evaluator and GMW
//!   share.
//! - [`bits`]: conversions between values (integers, hex strings) and the bit vectors the
//!   evaluators take, under the crate's one convention (below).
//! - [`bristol`]: the Bristol Fashion circuit format, read and written.
//! - [`testing`]: a backend-independent test suite: every gadget against integer arithmetic and
//!   the sample Bristol circuits against known answers, for any evaluator given as a closure.
//!
//! # Convention
//!
//! A circuit takes a list of input *values* and produces a list of output values. A value of
//! width `w` is an integer carried by `w` wires, least significant bit first: bit `i` of the
//! integer is the `i`-th wire of the value. A hex string denotes such an integer written most
//! significant digit first. Signed values are two's complement at their width. This is the
//! convention of the Bristol Fashion files (`circuits/README.md`): under it `aes_128.txt` maps
//! key `000102030405060708090a0b0c0d0e0f` (input 0) and plaintext
//! `00112233445566778899aabbccddeeff` (input 1) to `69c4e0d86a7b0430d8cdb78070b4c55a`.
//!
//! # Cost model
//!
//! XOR and INV gates are free in both backends (free-XOR garbling, Kolesnikov and Schneider,
//! ICALP 2008, with half gates, Zahur, Rosulek and Evans, Eurocrypt 2015; and GMW, Goldreich,
//! Micali and Wigderson, STOC 1987, where they are local). An AND gate costs two ciphertexts in
//! a garbled circuit and one oblivious transfer or Beaver triple in GMW, and GMW needs one
//! round of communication per AND layer. The gadgets therefore minimise AND gates first and AND
//! depth second.

pub mod backend;
pub mod bits;
pub mod bristol;
pub mod builder;
pub mod circuit;
pub mod cost;
mod error;
pub mod gadgets;
pub mod plain;
pub mod ring;
pub mod testing;
pub mod walk;

pub use backend::{ArithBackend, BoolBackend};

pub use bristol::{parse_bristol, read_bristol, write_bristol};
pub use builder::{Bit, Builder, Word};
pub use circuit::{Circuit, CircuitStats, Gate, Layer, WireId};
pub use error::{CircuitError, Site};
pub use gadgets::Gadgets;
