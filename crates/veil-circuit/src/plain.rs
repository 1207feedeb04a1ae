//! The plaintext backend: bits are `bool`s and ring values are wrapping `u64`s.
//!
//! [`Plain`] runs the gadgets of [`crate::gadgets::Gadgets`] and the ring operations of
//! [`ArithBackend`] in the clear, without building a circuit: the reference that the other
//! backends are tested against, and a quick way to compute what a model outputs. Every bit is a
//! known value, so [`BoolBackend::as_constant`] always answers and the gadgets take their
//! constant-folding paths, which compute the same values. Ring values of `Z_2^k` are
//! [`Z2k`]s: `u64` arithmetic wrapped modulo `2^64` and masked to `k` bits, which is arithmetic
//! modulo `2^k` because `2^k` divides `2^64`.

use crate::backend::{check_ring_bits, ring_mask, ArithBackend, BoolBackend};

/// The plaintext backend; see the module documentation.
///
/// ```
/// use veil_circuit::gadgets::Gadgets;
/// use veil_circuit::plain::Plain;
/// use veil_circuit::bits::{bits_from_u128, bits_to_u128};
///
/// let mut p = Plain;
/// let x = bits_from_u128(200, 8);
/// let y = bits_from_u128(100, 8);
/// assert_eq!(bits_to_u128(&p.add(&x, &y)), 44);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plain;

impl BoolBackend for Plain {
    type Bit = bool;

    fn constant_bit(&self, value: bool) -> bool {
        value
    }

    fn as_constant(&self, bit: &bool) -> Option<bool> {
        Some(*bit)
    }

    fn xor(&mut self, a: &bool, b: &bool) -> bool {
        a ^ b
    }

    fn and(&mut self, a: &bool, b: &bool) -> bool {
        a & b
    }

    fn not(&mut self, a: &bool) -> bool {
        !a
    }
}

/// A value of `Z_2^k`, `1 <= k <= 64`, kept below `2^k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Z2k {
    value: u64,
    bits: u8,
}

impl Z2k {
    /// `value mod 2^k`.
    ///
    /// # Panics
    /// If `k` is not in `1..=64`.
    pub fn new(value: u64, k: usize) -> Z2k {
        check_ring_bits(k, "Z2k::new");
        Z2k {
            value: value & ring_mask(k),
            bits: k as u8,
        }
    }

    /// The value, below `2^k`.
    pub fn value(self) -> u64 {
        self.value
    }

    /// The width `k`.
    pub fn bits(self) -> usize {
        usize::from(self.bits)
    }

    /// The value read as a two's-complement number of `k` bits.
    pub fn signed(self) -> i64 {
        let shift = 64 - u32::from(self.bits);
        ((self.value << shift) as i64) >> shift
    }

    fn same(self, other: Z2k, op: &str) -> usize {
        assert_eq!(
            self.bits, other.bits,
            "{op}: ring widths {} and {}",
            self.bits, other.bits
        );
        self.bits()
    }
}

impl ArithBackend for Plain {
    type Word = Z2k;

    fn ring_bits(&self, x: &Z2k) -> usize {
        x.bits()
    }

    fn ring_constant(&mut self, value: u64, k: usize) -> Z2k {
        Z2k::new(value, k)
    }

    fn ring_add(&mut self, x: &Z2k, y: &Z2k) -> Z2k {
        let k = x.same(*y, "ring_add");
        Z2k::new(x.value.wrapping_add(y.value), k)
    }

    fn ring_sub(&mut self, x: &Z2k, y: &Z2k) -> Z2k {
        let k = x.same(*y, "ring_sub");
        Z2k::new(x.value.wrapping_sub(y.value), k)
    }

    fn ring_neg(&mut self, x: &Z2k) -> Z2k {
        Z2k::new(x.value.wrapping_neg(), x.bits())
    }

    fn ring_mul_const(&mut self, x: &Z2k, c: u64) -> Z2k {
        Z2k::new(x.value.wrapping_mul(c), x.bits())
    }

    fn ring_mul(&mut self, x: &Z2k, y: &Z2k) -> Z2k {
        let k = x.same(*y, "ring_mul");
        Z2k::new(x.value.wrapping_mul(y.value), k)
    }

    fn ring_to_bits(&mut self, x: &Z2k) -> Vec<bool> {
        (0..x.bits()).map(|i| (x.value >> i) & 1 == 1).collect()
    }

    fn ring_from_bits(&mut self, bits: &[bool]) -> Z2k {
        check_ring_bits(bits.len(), "ring_from_bits");
        let value = bits
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << i));
        Z2k::new(value, bits.len())
    }

    fn ring_from_bit(&mut self, b: &bool, k: usize) -> Z2k {
        Z2k::new(u64::from(*b), k)
    }

    fn ring_mul_bit(&mut self, x: &Z2k, b: &bool) -> Z2k {
        Z2k::new(if *b { x.value } else { 0 }, x.bits())
    }
}
