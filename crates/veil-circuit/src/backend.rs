//! Backends for boolean and ring values: the interface that every gadget is written against.
//!
//! The design is that of swanky's `Fancy` trait (Galois, Inc.; after the BMR16 `fancy-garbling`
//! library of Ball, Malkin and Rosulek, CCS 2016): one circuit description, run by several
//! backends that give a bit different meanings. A [`BoolBackend`] has an associated
//! [`Bit`](BoolBackend::Bit) type and four primitive operations: public constants, XOR, AND and
//! NOT. Every word-level gadget (adders, comparators, multiplexers, ReLU, clamping, argmax,
//! multipliers, bit-heap sums, dot products) is written once, in [`crate::gadgets::Gadgets`],
//! on top of these primitives, and so runs unchanged on
//!
//! - the circuit [`Builder`](crate::Builder), whose bits are wires and which emits gates;
//! - the plaintext backend [`Plain`](crate::plain::Plain), whose bits are `bool`s;
//! - the cost counter [`Cost`](crate::cost::Cost), whose bits record their AND depth and which
//!   counts AND gates, AND depth and the bytes each protocol would send, without building a
//!   circuit.
//!
//! Only AND gates cost anything in Veil's boolean protocols (free-XOR garbling with half gates,
//! Zahur, Rosulek and Evans, Eurocrypt 2015; GMW, Goldreich, Micali and Wigderson, STOC 1987),
//! so a backend must fold operations on *public constants* exactly as the builder does:
//! `0 & x = 0`, `1 & x = x`, `0 ^ x = x`, `1 ^ x = !x`, and tell a constant apart with
//! [`BoolBackend::as_constant`]. The gadgets branch only on that answer, never on a secret
//! value, so every backend that folds the same way executes the same AND gates in the same
//! order. The builder and the counter also fold `x ^ x = 0`, `x & x = x`, `x ^ !x = 1`,
//! `x & !x = 0` and `!!x = x`, which keeps their AND counts equal.
//!
//! [`ArithBackend`] extends a boolean backend with values of the ring `Z_2^k`, for the mixed
//! (arithmetic and boolean) protocols in the style of ABY (Demmler, Schneider and Zohner, NDSS
//! 2015, section III): addition, subtraction, negation and multiplication by a public constant,
//! which are local on additive shares, the multiplication of two values (one arithmetic Beaver
//! triple), and the conversions between a ring value and its bits (A2B and B2A, section IV).
//! The plaintext backend implements it with wrapping `u64` arithmetic masked to `k` bits; the
//! builder and the counter implement it with the boolean gadgets (a `k`-bit ripple-carry adder
//! and so on), a ring value being its `k` bits.

use crate::bits::mask;

/// A backend for boolean values: public constants, XOR, AND and NOT.
///
/// Implementations fold operations on public constants (see the module documentation), so that
/// the gadgets of [`crate::gadgets::Gadgets`], which every `BoolBackend` has, cost the same
/// AND gates on every backend.
pub trait BoolBackend {
    /// A bit of this backend: a wire, a plain value, a label, a share or a cost record.
    type Bit: Clone;

    /// The public constant `value`.
    fn constant_bit(&self, value: bool) -> Self::Bit;

    /// `Some(v)` when `bit` is known to be the public constant `v`, `None` otherwise. Gadgets
    /// use it only to skip gates whose result is known.
    fn as_constant(&self, bit: &Self::Bit) -> Option<bool>;

    /// `a XOR b` (free in every protocol).
    fn xor(&mut self, a: &Self::Bit, b: &Self::Bit) -> Self::Bit;

    /// `a AND b` (one AND gate unless an operand is a constant).
    fn and(&mut self, a: &Self::Bit, b: &Self::Bit) -> Self::Bit;

    /// `NOT a` (free in every protocol).
    fn not(&mut self, a: &Self::Bit) -> Self::Bit;
}

/// A boolean backend with values of the ring `Z_2^k` (see the module documentation).
///
/// A ring value carries its bit width `k`, from 1 to 64 on every backend of this crate
/// ([`ArithBackend::ring_bits`]); the operands of a binary operation must have the same width,
/// and a mismatch, like a width out of range, is a programming error that panics with a
/// message naming the operation. Ring values and bits convert with
/// [`ArithBackend::ring_to_bits`] (least significant first, the crate's convention) and
/// [`ArithBackend::ring_from_bits`].
pub trait ArithBackend: BoolBackend {
    /// A value of `Z_2^k` on this backend.
    type Word: Clone;

    /// The width `k` of `x`.
    fn ring_bits(&self, x: &Self::Word) -> usize;

    /// The public constant `value mod 2^k`.
    fn ring_constant(&mut self, value: u64, k: usize) -> Self::Word;

    /// `x + y mod 2^k`.
    fn ring_add(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word;

    /// `x - y mod 2^k`.
    fn ring_sub(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word;

    /// `-x mod 2^k`.
    fn ring_neg(&mut self, x: &Self::Word) -> Self::Word;

    /// `c x mod 2^k` for a public `c`.
    fn ring_mul_const(&mut self, x: &Self::Word, c: u64) -> Self::Word;

    /// `x y mod 2^k`.
    fn ring_mul(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word;

    /// The `k` bits of `x`, least significant first (A2B).
    fn ring_to_bits(&mut self, x: &Self::Word) -> Vec<Self::Bit>;

    /// The value of `Z_2^k`, `k = bits.len()`, whose bits are `bits`, least significant first
    /// (B2A).
    fn ring_from_bits(&mut self, bits: &[Self::Bit]) -> Self::Word;

    /// The bit `b` as the value 0 or 1 of `Z_2^k` (bit injection).
    fn ring_from_bit(&mut self, b: &Self::Bit, k: usize) -> Self::Word {
        let zero = self.constant_bit(false);
        let mut bits = vec![zero; k];
        if let Some(first) = bits.first_mut() {
            *first = b.clone();
        }
        self.ring_from_bits(&bits)
    }

    /// `b x mod 2^k`: `x` when the bit `b` is 1, else 0 (the selection of ABY's ReLU).
    fn ring_mul_bit(&mut self, x: &Self::Word, b: &Self::Bit) -> Self::Word {
        let k = self.ring_bits(x);
        let y = self.ring_from_bit(b, k);
        self.ring_mul(x, &y)
    }
}

/// Checks a ring width, for the backends of this crate.
pub(crate) fn check_ring_bits(k: usize, op: &str) {
    assert!((1..=64).contains(&k), "{op}: ring width {k} not in 1..=64");
}

/// `2^k - 1` as a `u64`, for `k` in `1..=64`.
pub(crate) fn ring_mask(k: usize) -> u64 {
    mask(k) as u64
}
