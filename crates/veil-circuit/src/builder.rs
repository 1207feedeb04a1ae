//! A circuit builder with constant folding: the [`BoolBackend`] that emits gates.
//!
//! A [`Bit`] is either a constant or a wire, and a [`Word`] is a vector of bits, least
//! significant first (the crate's convention). Every bit operation folds constants, so
//! gadgets applied to known values emit no gates, and it also folds `x ^ x = 0`,
//! `x & x = x`, `x ^ !x = 1`, `x & !x = 0` and `!!x = x` (the builder remembers the inverse of
//! every wire it inverted). A constant that reaches an output is materialised with one
//! [`Gate::Const`] per value (0 or 1). [`Builder::finish`] drops the gates no output depends
//! on and renumbers the wires densely.
//!
//! The word-level gadgets are those of [`Gadgets`], written once for every backend (see
//! [`crate::gadgets`] for the constructions and their AND counts). The builder also offers
//! them as inherent methods taking bits by value, so that building a circuit needs no trait
//! import; each one runs the generic gadget. Ring values of `Z_2^k` for mixed protocols are
//! words of `k` bits ([`crate::ring`]).
//!
//! AND gates per gadget, for `w`-bit operands (`w >= 2`): `add` and `sub` `w - 1`, `neg`
//! `w - 2`, comparisons and `mux` `w`, `eq` `w - 1`, `max`/`min` `2w`, `relu` `w - 1`, `mul`
//! `w^2 - w + 1`, the wide products `2w^2 - w`; the exact counts are checked by the unit test
//! `documented_and_counts` for `w = 2, 3, 8, 16, 32, 64`. For example, `mul` at 64 bits is
//! 4033 ANDs, the count of the Bristol `mult64.txt`, and a 64-term dot product of 4-bit
//! unsigned by 4-bit signed values into 16 bits is 2044 ANDs, against 2296 for 64 separate
//! products summed afterwards.

use crate::backend::BoolBackend;
use crate::circuit::{Circuit, Gate, WireId};
use crate::gadgets::Gadgets;

/// A bit of a circuit under construction: a known constant or a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bit {
    /// A constant, folded away by every operation.
    Const(bool),
    /// A wire of the circuit.
    Wire(WireId),
}

impl Bit {
    /// The constant 0.
    pub const ZERO: Bit = Bit::Const(false);
    /// The constant 1.
    pub const ONE: Bit = Bit::Const(true);

    /// The value of a constant bit, `None` for a wire.
    pub fn as_const(self) -> Option<bool> {
        match self {
            Bit::Const(c) => Some(c),
            Bit::Wire(_) => None,
        }
    }
}

impl From<bool> for Bit {
    fn from(c: bool) -> Self {
        Bit::Const(c)
    }
}

/// A value under construction: its bits, least significant first.
pub type Word = Vec<Bit>;

const NONE: WireId = WireId::MAX;

/// Builds a [`Circuit`] from bit and word operations; see the module documentation.
///
/// ```
/// use veil_circuit::Builder;
///
/// let mut b = Builder::new();
/// let x = b.input(8);
/// let y = b.input(8);
/// let s = b.add(&x, &y);
/// b.output(&s);
/// let circuit = b.finish();
/// assert_eq!(circuit.eval_words(&[200, 100]).unwrap(), vec![44]);
/// assert_eq!(circuit.stats().and_count, 7);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    num_wires: u32,
    inputs: Vec<Vec<WireId>>,
    outputs: Vec<Vec<WireId>>,
    gates: Vec<Gate>,
    /// For every wire, the wire holding its inverse, or `NONE`.
    inverse: Vec<WireId>,
    /// The wires holding the constants 0 and 1 once an output needs them.
    const_wires: [Option<WireId>; 2],
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn new_wire(&mut self) -> WireId {
        let w = self.num_wires;
        assert!(w < NONE - 1, "a circuit has at most 2^32 - 2 wires");
        self.num_wires += 1;
        self.inverse.push(NONE);
        w
    }

    fn gate(&mut self, make: impl FnOnce(WireId) -> Gate) -> Bit {
        let out = self.new_wire();
        self.gates.push(make(out));
        Bit::Wire(out)
    }

    /// A new input value of `width` bits (input values are numbered in creation order).
    pub fn input(&mut self, width: usize) -> Word {
        let wires: Vec<WireId> = (0..width).map(|_| self.new_wire()).collect();
        let word = wires.iter().map(|&w| Bit::Wire(w)).collect();
        self.inputs.push(wires);
        word
    }

    /// Declares `word` as the next output value; constant bits are materialised with
    /// [`Gate::Const`].
    pub fn output(&mut self, word: &[Bit]) {
        let wires = word
            .iter()
            .map(|&bit| match bit {
                Bit::Wire(w) => w,
                Bit::Const(c) => match self.const_wires[usize::from(c)] {
                    Some(w) => w,
                    None => {
                        let w = self.new_wire();
                        self.gates.push(Gate::Const { value: c, out: w });
                        self.const_wires[usize::from(c)] = Some(w);
                        w
                    }
                },
            })
            .collect();
        self.outputs.push(wires);
    }

    /// AND gates emitted so far (before [`Builder::finish`] drops unused gates).
    pub fn and_count(&self) -> usize {
        self.gates.iter().filter(|g| g.is_and()).count()
    }

    /// Gates emitted so far.
    pub fn gate_count(&self) -> usize {
        self.gates.len()
    }

    /// The circuit: gates that no output depends on are dropped and wires are renumbered
    /// densely, in creation order.
    pub fn finish(self) -> Circuit {
        let n = self.num_wires as usize;
        let mut live = vec![false; n];
        for &w in self.outputs.iter().flatten() {
            live[w as usize] = true;
        }
        let mut keep = vec![false; self.gates.len()];
        for (g, gate) in self.gates.iter().enumerate().rev() {
            if live[gate.output() as usize] {
                keep[g] = true;
                for w in gate.inputs() {
                    live[w as usize] = true;
                }
            }
        }
        let mut exists = vec![false; n];
        for &w in self.inputs.iter().flatten() {
            exists[w as usize] = true;
        }
        for (gate, _) in self.gates.iter().zip(&keep).filter(|(_, &k)| k) {
            exists[gate.output() as usize] = true;
        }
        let mut id = vec![NONE; n];
        let mut next = 0;
        for (w, _) in exists.iter().enumerate().filter(|(_, &e)| e) {
            id[w] = next;
            next += 1;
        }
        let r = |w: WireId| id[w as usize];
        let gates = self
            .gates
            .iter()
            .zip(&keep)
            .filter(|(_, &k)| k)
            .map(|(gate, _)| match *gate {
                Gate::Xor { a, b, out } => Gate::Xor {
                    a: r(a),
                    b: r(b),
                    out: r(out),
                },
                Gate::And { a, b, out } => Gate::And {
                    a: r(a),
                    b: r(b),
                    out: r(out),
                },
                Gate::Inv { a, out } => Gate::Inv {
                    a: r(a),
                    out: r(out),
                },
                Gate::Const { value, out } => Gate::Const { value, out: r(out) },
            })
            .collect();
        let remap = |values: &[Vec<WireId>]| -> Vec<Vec<WireId>> {
            values
                .iter()
                .map(|v| v.iter().map(|&w| r(w)).collect())
                .collect()
        };
        Circuit {
            num_wires: next,
            inputs: remap(&self.inputs),
            outputs: remap(&self.outputs),
            gates,
        }
    }

    // ----- bits -------------------------------------------------------------------------

    /// `a XOR b`.
    pub fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x ^ y),
            (Bit::Const(false), w) | (w, Bit::Const(false)) => w,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => self.not(w),
            (Bit::Wire(x), Bit::Wire(y)) => {
                if x == y {
                    Bit::ZERO
                } else if self.inverse[x as usize] == y {
                    Bit::ONE
                } else {
                    self.gate(|out| Gate::Xor { a: x, b: y, out })
                }
            }
        }
    }

    /// `a AND b`.
    pub fn and(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x & y),
            (Bit::Const(false), _) | (_, Bit::Const(false)) => Bit::ZERO,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => w,
            (Bit::Wire(x), Bit::Wire(y)) => {
                if x == y {
                    a
                } else if self.inverse[x as usize] == y {
                    Bit::ZERO
                } else {
                    self.gate(|out| Gate::And { a: x, b: y, out })
                }
            }
        }
    }

    /// `NOT a` (one INV gate per wire, remembered: inverting twice gives the wire back).
    pub fn not(&mut self, a: Bit) -> Bit {
        match a {
            Bit::Const(c) => Bit::Const(!c),
            Bit::Wire(x) => match self.inverse[x as usize] {
                NONE => {
                    let y = self.new_wire();
                    self.gates.push(Gate::Inv { a: x, out: y });
                    self.inverse[x as usize] = y;
                    self.inverse[y as usize] = x;
                    Bit::Wire(y)
                }
                y => Bit::Wire(y),
            },
        }
    }

    // ----- the gadgets of `Gadgets`, with bits by value -----------------------------------

    /// `a OR b` (one AND); see [`Gadgets::or`].
    pub fn or(&mut self, a: Bit, b: Bit) -> Bit {
        Gadgets::or(self, &a, &b)
    }

    /// `NOT (a XOR b)`; see [`Gadgets::xnor`].
    pub fn xnor(&mut self, a: Bit, b: Bit) -> Bit {
        Gadgets::xnor(self, &a, &b)
    }

    /// `sel ? t : f` (one AND); see [`Gadgets::mux_bit`].
    pub fn mux_bit(&mut self, sel: Bit, t: Bit, f: Bit) -> Bit {
        Gadgets::mux_bit(self, &sel, &t, &f)
    }

    /// AND of all bits (1 for none); see [`Gadgets::and_reduce`].
    pub fn and_reduce(&mut self, bits: &[Bit]) -> Bit {
        Gadgets::and_reduce(self, bits)
    }

    /// OR of all bits (0 for none); see [`Gadgets::or_reduce`].
    pub fn or_reduce(&mut self, bits: &[Bit]) -> Bit {
        Gadgets::or_reduce(self, bits)
    }

    /// XOR of all bits (0 for none); see [`Gadgets::xor_reduce`].
    pub fn xor_reduce(&mut self, bits: &[Bit]) -> Bit {
        Gadgets::xor_reduce(self, bits)
    }

    /// The low `width` bits of `value` as constants; see [`Gadgets::constant`].
    pub fn constant(&self, value: u128, width: usize) -> Word {
        Gadgets::constant(self, value, width)
    }

    /// The two's complement of `value` at `width` bits; see [`Gadgets::constant_signed`].
    pub fn constant_signed(&self, value: i128, width: usize) -> Word {
        Gadgets::constant_signed(self, value, width)
    }

    /// `x` sign-extended to `width` bits; see [`Gadgets::sign_extend`].
    pub fn sign_extend(&self, x: &[Bit], width: usize) -> Word {
        Gadgets::sign_extend(self, x, width)
    }

    /// `x` zero-extended to `width` bits; see [`Gadgets::zero_extend`].
    pub fn zero_extend(&self, x: &[Bit], width: usize) -> Word {
        Gadgets::zero_extend(self, x, width)
    }

    /// The low `width` bits of `x`; see [`Gadgets::truncate`].
    pub fn truncate(&self, x: &[Bit], width: usize) -> Word {
        Gadgets::truncate(self, x, width)
    }

    /// `x << k`; see [`Gadgets::shl_const`].
    pub fn shl_const(&self, x: &[Bit], k: usize) -> Word {
        Gadgets::shl_const(self, x, k)
    }

    /// `x >> k`, filling with zeros; see [`Gadgets::shr_logical_const`].
    pub fn shr_logical_const(&self, x: &[Bit], k: usize) -> Word {
        Gadgets::shr_logical_const(self, x, k)
    }

    /// `x >> k`, filling with the sign bit; see [`Gadgets::shr_arith_const`].
    pub fn shr_arith_const(&self, x: &[Bit], k: usize) -> Word {
        Gadgets::shr_arith_const(self, x, k)
    }

    /// Bitwise XOR; see [`Gadgets::xor_words`].
    pub fn xor_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::xor_words(self, x, y)
    }

    /// Bitwise AND; see [`Gadgets::and_words`].
    pub fn and_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::and_words(self, x, y)
    }

    /// Bitwise OR; see [`Gadgets::or_words`].
    pub fn or_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::or_words(self, x, y)
    }

    /// Bitwise NOT; see [`Gadgets::not_word`].
    pub fn not_word(&mut self, x: &[Bit]) -> Word {
        Gadgets::not_word(self, x)
    }

    /// `x + y` modulo `2^w`; see [`Gadgets::add`].
    pub fn add(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::add(self, x, y)
    }

    /// `x + y + carry_in` and the carry out; see [`Gadgets::add_with_carry`].
    pub fn add_with_carry(&mut self, x: &[Bit], y: &[Bit], carry_in: Bit) -> (Word, Bit) {
        Gadgets::add_with_carry(self, x, y, &carry_in)
    }

    /// `x - y` modulo `2^w`; see [`Gadgets::sub`].
    pub fn sub(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::sub(self, x, y)
    }

    /// `-x` modulo `2^w`; see [`Gadgets::neg`].
    pub fn neg(&mut self, x: &[Bit]) -> Word {
        Gadgets::neg(self, x)
    }

    /// `x < y`, unsigned; see [`Gadgets::lt_unsigned`].
    pub fn lt_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::lt_unsigned(self, x, y)
    }

    /// `x < y`, two's complement; see [`Gadgets::lt_signed`].
    pub fn lt_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::lt_signed(self, x, y)
    }

    /// `x <= y`, unsigned; see [`Gadgets::le_unsigned`].
    pub fn le_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::le_unsigned(self, x, y)
    }

    /// `x <= y`, two's complement; see [`Gadgets::le_signed`].
    pub fn le_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::le_signed(self, x, y)
    }

    /// `x > y`, unsigned; see [`Gadgets::gt_unsigned`].
    pub fn gt_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::gt_unsigned(self, x, y)
    }

    /// `x > y`, two's complement; see [`Gadgets::gt_signed`].
    pub fn gt_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::gt_signed(self, x, y)
    }

    /// `x >= y`, unsigned; see [`Gadgets::ge_unsigned`].
    pub fn ge_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::ge_unsigned(self, x, y)
    }

    /// `x >= y`, two's complement; see [`Gadgets::ge_signed`].
    pub fn ge_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::ge_signed(self, x, y)
    }

    /// `x != y`; see [`Gadgets::ne`].
    pub fn ne(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::ne(self, x, y)
    }

    /// `x == y`; see [`Gadgets::eq`].
    pub fn eq(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Gadgets::eq(self, x, y)
    }

    /// `x == 0`; see [`Gadgets::is_zero`].
    pub fn is_zero(&mut self, x: &[Bit]) -> Bit {
        Gadgets::is_zero(self, x)
    }

    /// `sel ? t : f` bitwise; see [`Gadgets::mux`].
    pub fn mux(&mut self, sel: Bit, t: &[Bit], f: &[Bit]) -> Word {
        Gadgets::mux(self, &sel, t, f)
    }

    /// The larger of two two's-complement values; see [`Gadgets::max_signed`].
    pub fn max_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::max_signed(self, x, y)
    }

    /// The larger of two unsigned values; see [`Gadgets::max_unsigned`].
    pub fn max_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::max_unsigned(self, x, y)
    }

    /// The smaller of two two's-complement values; see [`Gadgets::min_signed`].
    pub fn min_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::min_signed(self, x, y)
    }

    /// The smaller of two unsigned values; see [`Gadgets::min_unsigned`].
    pub fn min_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::min_unsigned(self, x, y)
    }

    /// `max(x, 0)`, two's complement; see [`Gadgets::relu`].
    pub fn relu(&mut self, x: &[Bit]) -> Word {
        Gadgets::relu(self, x)
    }

    /// `clamp(x, lo, hi)`, two's complement; see [`Gadgets::clamp_signed`].
    ///
    /// # Panics
    /// If `lo > hi` or either bound does not fit the width of `x`.
    pub fn clamp_signed(&mut self, x: &[Bit], lo: i128, hi: i128) -> Word {
        Gadgets::clamp_signed(self, x, lo, hi)
    }

    /// `clamp(x, 0, 2^out_bits - 1)` as an unsigned `out_bits`-bit word; see
    /// [`Gadgets::saturate_unsigned`].
    pub fn saturate_unsigned(&mut self, x: &[Bit], out_bits: usize) -> Word {
        Gadgets::saturate_unsigned(self, x, out_bits)
    }

    /// Index of the largest two's-complement value; see [`Gadgets::argmax_signed`].
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    pub fn argmax_signed(&mut self, values: &[Word]) -> Word {
        Gadgets::argmax_signed(self, values)
    }

    /// Index of the largest unsigned value; see [`Gadgets::argmax_unsigned`].
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    pub fn argmax_unsigned(&mut self, values: &[Word]) -> Word {
        Gadgets::argmax_unsigned(self, values)
    }

    /// `x * y` modulo `2^w`; see [`Gadgets::mul`].
    pub fn mul(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::mul(self, x, y)
    }

    /// The full product of unsigned values; see [`Gadgets::mul_unsigned_wide`].
    pub fn mul_unsigned_wide(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::mul_unsigned_wide(self, x, y)
    }

    /// The full product of two's-complement values; see [`Gadgets::mul_signed_wide`].
    pub fn mul_signed_wide(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::mul_signed_wide(self, x, y)
    }

    /// The full product of unsigned `x` and two's-complement `y`; see
    /// [`Gadgets::mul_unsigned_signed`].
    pub fn mul_unsigned_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Gadgets::mul_unsigned_signed(self, x, y)
    }

    /// The sum of words of one width; see [`Gadgets::sum`].
    ///
    /// # Panics
    /// If `words` is empty or the widths differ.
    pub fn sum(&mut self, words: &[Word]) -> Word {
        Gadgets::sum(self, words)
    }

    /// The sum of unsigned words of any widths, modulo `2^width`; see
    /// [`Gadgets::sum_unsigned`].
    pub fn sum_unsigned(&mut self, terms: &[Word], width: usize) -> Word {
        Gadgets::sum_unsigned(self, terms, width)
    }

    /// The sum of two's-complement words of any widths, modulo `2^width`; see
    /// [`Gadgets::sum_signed`].
    pub fn sum_signed(&mut self, terms: &[Word], width: usize) -> Word {
        Gadgets::sum_signed(self, terms, width)
    }

    /// `bias + sum_i xs[i] * ws[i]` modulo `2^width`; see [`Gadgets::dot_unsigned_signed`].
    ///
    /// # Panics
    /// If `xs` and `ws` have different lengths.
    pub fn dot_unsigned_signed(
        &mut self,
        xs: &[Word],
        ws: &[Word],
        bias: i128,
        width: usize,
    ) -> Word {
        Gadgets::dot_unsigned_signed(self, xs, ws, bias, width)
    }
}

/// The builder's bits are wires or constants; its primitives emit gates, folding as described
/// in the module documentation.
impl BoolBackend for Builder {
    type Bit = Bit;

    fn constant_bit(&self, value: bool) -> Bit {
        Bit::Const(value)
    }

    fn as_constant(&self, bit: &Bit) -> Option<bool> {
        bit.as_const()
    }

    fn xor(&mut self, a: &Bit, b: &Bit) -> Bit {
        Builder::xor(self, *a, *b)
    }

    fn and(&mut self, a: &Bit, b: &Bit) -> Bit {
        Builder::and(self, *a, *b)
    }

    fn not(&mut self, a: &Bit) -> Bit {
        Builder::not(self, *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AND gates of a circuit with two `width`-bit inputs and the words `build` returns as
    /// outputs.
    fn ands(width: usize, build: impl Fn(&mut Builder, &[Word]) -> Vec<Word>) -> usize {
        let mut b = Builder::new();
        let x = b.input(width);
        let y = b.input(width);
        for out in build(&mut b, &[x, y]) {
            b.output(&out);
        }
        b.finish().stats().and_count
    }

    #[test]
    fn constants_fold() {
        let mut b = Builder::new();
        let x = b.input(16);
        let zero = b.constant(0, 16);
        let s = b.add(&x, &zero);
        assert_eq!(s, x);
        let d = b.sub(&x, &zero);
        assert_eq!(d, x);
        let eight = b.constant(8, 16);
        let p = b.mul(&x, &eight);
        assert_eq!(p, b.shl_const(&x, 3));
        let nx = b.not_word(&x);
        let back = b.not_word(&nx);
        assert_eq!(back, x);
        assert_eq!(b.xor(x[0], nx[0]), Bit::ONE);
        assert_eq!(b.and(x[0], nx[0]), Bit::ZERO);
        assert_eq!(b.xor(x[1], x[1]), Bit::ZERO);
        assert_eq!(b.and(x[1], x[1]), x[1]);
        let k = b.constant(1234, 16);
        let l = b.constant(4321, 16);
        let kl = b.mul(&k, &l);
        assert_eq!(kl, b.constant(1234 * 4321, 16));
        let lt = b.lt_signed(&k, &l);
        assert_eq!(lt, Bit::ONE);
        assert_eq!(b.and_count(), 0);
        b.output(&kl);
        b.output(&x);
        let c = b.finish();
        assert_eq!(c.stats().and_count, 0);
        assert_eq!(c.stats().const_count, 2);
        assert_eq!(
            c.eval_words(&[77]).unwrap(),
            vec![(1234 * 4321) & 0xffff, 77]
        );
    }

    #[test]
    fn finish_drops_dead_gates() {
        let mut b = Builder::new();
        let x = b.input(8);
        let y = b.input(8);
        let _unused = b.mul(&x, &y);
        let s = b.add(&x, &y);
        b.output(&s);
        assert!(b.and_count() > 7);
        let c = b.finish();
        c.validate().unwrap();
        assert_eq!(c.stats().and_count, 7);
        assert_eq!(c.num_wires as usize, 16 + c.gates.len());
    }

    #[test]
    fn documented_and_counts() {
        for w in [2usize, 3, 8, 16, 32, 64] {
            assert_eq!(ands(w, |b, v| vec![b.add(&v[0], &v[1])]), w - 1);
            assert_eq!(ands(w, |b, v| vec![b.sub(&v[0], &v[1])]), w - 1);
            assert_eq!(ands(w, |b, v| vec![b.neg(&v[0])]), w - 2);
            let carry = ands(w, |b, v| {
                let (s, c) = b.add_with_carry(&v[0], &v[1], Bit::ZERO);
                vec![s, vec![c]]
            });
            assert_eq!(carry, w);
            assert_eq!(ands(w, |b, v| vec![vec![b.lt_unsigned(&v[0], &v[1])]]), w);
            assert_eq!(ands(w, |b, v| vec![vec![b.lt_signed(&v[0], &v[1])]]), w);
            assert_eq!(ands(w, |b, v| vec![vec![b.eq(&v[0], &v[1])]]), w - 1);
            assert_eq!(ands(w, |b, v| vec![b.mux(v[0][0], &v[0], &v[1])]), w);
            assert_eq!(ands(w, |b, v| vec![b.max_signed(&v[0], &v[1])]), 2 * w);
            assert_eq!(ands(w, |b, v| vec![b.relu(&v[0])]), w - 1);
            let k = w / 2 - 1;
            let sat = ands(w, |b, v| vec![b.saturate_unsigned(&v[0], k)]);
            assert_eq!(sat, if k == 0 { 0 } else { w - 1 });
            assert_eq!(ands(w, |b, v| vec![b.mul(&v[0], &v[1])]), w * w - w + 1);
            let wide = 2 * w * w - w;
            assert_eq!(
                ands(w, |b, v| vec![b.mul_unsigned_wide(&v[0], &v[1])]),
                wide
            );
            assert_eq!(ands(w, |b, v| vec![b.mul_signed_wide(&v[0], &v[1])]), wide);
            assert_eq!(
                ands(w, |b, v| vec![b.mul_unsigned_signed(&v[0], &v[1])]),
                wide
            );
        }
        // The dot-product figures of the module documentation.
        let dot = |fused: bool| {
            let mut b = Builder::new();
            let xs: Vec<Word> = (0..64).map(|_| b.input(4)).collect();
            let ws: Vec<Word> = (0..64).map(|_| b.input(4)).collect();
            let acc = if fused {
                b.dot_unsigned_signed(&xs, &ws, 5, 16)
            } else {
                let products: Vec<Word> = xs
                    .iter()
                    .zip(&ws)
                    .map(|(x, w)| b.mul_unsigned_signed(x, w))
                    .collect();
                b.sum_signed(&products, 16)
            };
            b.output(&acc);
            b.finish().stats().and_count
        };
        assert_eq!((dot(true), dot(false)), (2044, 2296));
    }
}
