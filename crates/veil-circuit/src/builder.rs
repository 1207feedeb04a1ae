//! A circuit builder with constant folding and word-level gadgets.
//!
//! A [`Bit`] is either a constant or a wire, and a [`Word`] is a vector of bits, least
//! significant first (the crate's convention). Every bit operation folds constants, so
//! gadgets applied to known values emit no gates, and it also folds `x ^ x = 0`,
//! `x & x = x`, `x ^ !x = 1`, `x & !x = 0` and `!!x = x` (the builder remembers the inverse of
//! every wire it inverted). A constant that reaches an output is materialised with one
//! [`Gate::Const`] per value (0 or 1). [`Builder::finish`] drops the gates no output depends
//! on and renumbers the wires densely.
//!
//! The gadgets are the standard AND-efficient constructions for free-XOR garbling and GMW
//! (Kolesnikov, Sadeghi and Schneider, "Improved garbled circuit building blocks and
//! applications to auctions and computing minima", CANS 2009; Boyar, Peralta and Pochuev on
//! multiplicative complexity): a full adder costs one AND (`carry = c ^ ((a ^ c) & (b ^ c))`),
//! a comparator one AND per bit (the borrow of a subtraction), a multiplexer one AND per bit
//! (`f ^ (s & (t ^ f))`). Multiplications and multi-operand sums put all their partial
//! products in one bit heap (Wallace, 1964; Dadda, 1965) that full and half adders compress
//! column by column, and signed operands use the Baugh–Wooley rewriting (1973), which turns
//! every negatively weighted partial product `-p 2^k` into `!p 2^k - 2^k`, the constants being
//! summed at build time.
//!
//! Operands of binary word gadgets must have equal widths; a mismatch, like an empty operand
//! list where a width is needed, is a programming error and panics with a message naming the
//! gadget. Every width from 1 up works (the test suite checks 1 to 64).
//!
//! AND gates per gadget, for `w`-bit operands (`w >= 2`; fewer when operands are constant):
//!
//! | gadget | ANDs |
//! |---|---|
//! | [`add`](Builder::add), [`sub`](Builder::sub) | `w - 1` |
//! | [`add_with_carry`](Builder::add_with_carry) | `w` |
//! | [`neg`](Builder::neg) | `w - 2` |
//! | [`lt_unsigned`](Builder::lt_unsigned), [`lt_signed`](Builder::lt_signed), `le`/`gt`/`ge` | `w` |
//! | [`eq`](Builder::eq), [`ne`](Builder::ne), [`is_zero`](Builder::is_zero) | `w - 1` |
//! | [`mux`](Builder::mux) | `w` |
//! | [`max_signed`](Builder::max_signed) and the other min/max | `2w` |
//! | [`relu`](Builder::relu) | `w - 1` |
//! | [`saturate_unsigned`](Builder::saturate_unsigned) to `0 < k < w - 1` bits | `w - 1` |
//! | [`clamp_signed`](Builder::clamp_signed) | at most `4w` |
//! | [`argmax_signed`](Builder::argmax_signed) of `n` values | at most `(n - 1)(2w + ceil(log2 n)) - w` |
//! | [`mul`](Builder::mul) (`w x w -> w`) | `w^2 - w + 1` |
//! | [`mul_unsigned_wide`](Builder::mul_unsigned_wide) (`w x w -> 2w`) | `2w^2 - w` |
//! | [`mul_signed_wide`](Builder::mul_signed_wide), [`mul_unsigned_signed`](Builder::mul_unsigned_signed) | `2w^2 - w` |
//! | [`sum`](Builder::sum) of `n` words | about `(n - 1)(w - 1)` |
//! | [`dot_unsigned_signed`](Builder::dot_unsigned_signed) | `w1 w2` per term, plus about one per partial product for the heap |
//! | shifts, extensions, truncation | 0 |
//!
//! The exact counts are checked by the unit test `documented_and_counts` for
//! `w = 2, 3, 8, 16, 32, 64`. The AND depth of the ripple-carry gadgets and comparators is
//! linear in `w` (`w - 1` for `mul`, `2w - 1` for the wide products); `eq`, `is_zero` and the
//! reductions are logarithmic. For example, `mul` at 64 bits is 4033 ANDs, the count of the
//! Bristol `mult64.txt`, and a 64-term dot product of 4-bit unsigned by 4-bit signed values
//! into 16 bits is 2044 ANDs, against 2296 for 64 separate products summed afterwards.

use std::collections::VecDeque;

use crate::bits::{mask, sign_extend};
use crate::circuit::{Circuit, Gate, WireId};

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

/// Weighted bits waiting to be summed: `sum_k 2^k (cols[k] + konst[k])` modulo `2^width`.
struct BitHeap {
    cols: Vec<VecDeque<Bit>>,
    konst: Vec<bool>,
}

impl BitHeap {
    fn new(width: usize) -> Self {
        BitHeap {
            cols: vec![VecDeque::new(); width],
            konst: vec![false; width],
        }
    }

    fn width(&self) -> usize {
        self.cols.len()
    }

    /// Adds `2^k` to the constant.
    fn add_pow2(&mut self, k: usize) {
        for c in self.konst.iter_mut().skip(k) {
            *c = !*c;
            if *c {
                break;
            }
        }
    }

    /// Subtracts `2^k` from the constant.
    fn sub_pow2(&mut self, k: usize) {
        for c in self.konst.iter_mut().skip(k) {
            *c = !*c;
            if !*c {
                break;
            }
        }
    }

    /// Adds `bit * 2^k`.
    fn push(&mut self, k: usize, bit: Bit) {
        match bit {
            Bit::Const(false) => {}
            Bit::Const(true) => self.add_pow2(k),
            wire => {
                if let Some(col) = self.cols.get_mut(k) {
                    col.push_back(wire);
                }
            }
        }
    }
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

    /// `a OR b`, as `a ^ b ^ (a & b)` (one AND).
    pub fn or(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(true), _) | (_, Bit::Const(true)) => Bit::ONE,
            (Bit::Const(false), w) | (w, Bit::Const(false)) => w,
            (Bit::Wire(x), Bit::Wire(y)) if x == y => a,
            (Bit::Wire(x), Bit::Wire(y)) if self.inverse[x as usize] == y => Bit::ONE,
            _ => {
                let t = self.xor(a, b);
                let u = self.and(a, b);
                self.xor(t, u)
            }
        }
    }

    /// `NOT (a XOR b)`: 1 when the bits are equal.
    pub fn xnor(&mut self, a: Bit, b: Bit) -> Bit {
        let t = self.xor(a, b);
        self.not(t)
    }

    /// `sel ? t : f`, as `f ^ (sel & (t ^ f))` (one AND).
    pub fn mux_bit(&mut self, sel: Bit, t: Bit, f: Bit) -> Bit {
        match sel {
            Bit::Const(true) => t,
            Bit::Const(false) => f,
            _ if t == f => t,
            _ => {
                let d = self.xor(t, f);
                let m = self.and(sel, d);
                self.xor(f, m)
            }
        }
    }

    fn reduce(&mut self, bits: &[Bit], empty: Bit, op: fn(&mut Self, Bit, Bit) -> Bit) -> Bit {
        let mut layer = bits.to_vec();
        if layer.is_empty() {
            return empty;
        }
        while layer.len() > 1 {
            layer = layer
                .chunks(2)
                .map(|pair| match *pair {
                    [a, b] => op(self, a, b),
                    [a] => a,
                    _ => unreachable!("chunks(2) yields one or two bits"),
                })
                .collect();
        }
        layer[0]
    }

    /// AND of all bits (1 for none), as a balanced tree: `n - 1` ANDs, depth `ceil(log2 n)`.
    pub fn and_reduce(&mut self, bits: &[Bit]) -> Bit {
        self.reduce(bits, Bit::ONE, Self::and)
    }

    /// OR of all bits (0 for none), as a balanced tree: `n - 1` ANDs, depth `ceil(log2 n)`.
    pub fn or_reduce(&mut self, bits: &[Bit]) -> Bit {
        self.reduce(bits, Bit::ZERO, Self::or)
    }

    /// XOR of all bits (0 for none): no AND.
    pub fn xor_reduce(&mut self, bits: &[Bit]) -> Bit {
        self.reduce(bits, Bit::ZERO, Self::xor)
    }

    // ----- words without gates ----------------------------------------------------------

    /// The low `width` bits of `value` as constants (zero beyond 128 bits).
    pub fn constant(&self, value: u128, width: usize) -> Word {
        (0..width)
            .map(|i| Bit::Const(i < 128 && (value >> i) & 1 == 1))
            .collect()
    }

    /// The two's complement of `value` at `width` bits, as constants.
    pub fn constant_signed(&self, value: i128, width: usize) -> Word {
        (0..width)
            .map(|i| Bit::Const((value >> i.min(127)) & 1 == 1))
            .collect()
    }

    /// `x` with `width - x.len()` copies of its sign bit on top (zeros for an empty word).
    ///
    /// # Panics
    /// If `width < x.len()`.
    pub fn sign_extend(&self, x: &[Bit], width: usize) -> Word {
        assert!(width >= x.len(), "sign_extend: {} bits to {width}", x.len());
        let fill = x.last().copied().unwrap_or(Bit::ZERO);
        let mut out = x.to_vec();
        out.resize(width, fill);
        out
    }

    /// `x` with `width - x.len()` zeros on top.
    ///
    /// # Panics
    /// If `width < x.len()`.
    pub fn zero_extend(&self, x: &[Bit], width: usize) -> Word {
        assert!(width >= x.len(), "zero_extend: {} bits to {width}", x.len());
        let mut out = x.to_vec();
        out.resize(width, Bit::ZERO);
        out
    }

    /// The low `width` bits of `x` (the value modulo `2^width`).
    ///
    /// # Panics
    /// If `width > x.len()`.
    pub fn truncate(&self, x: &[Bit], width: usize) -> Word {
        assert!(width <= x.len(), "truncate: {} bits to {width}", x.len());
        x[..width].to_vec()
    }

    /// `x << k` at the width of `x` (zero when `k >= x.len()`).
    pub fn shl_const(&self, x: &[Bit], k: usize) -> Word {
        (0..x.len())
            .map(|i| if i >= k { x[i - k] } else { Bit::ZERO })
            .collect()
    }

    /// `x >> k`, filling with zeros.
    pub fn shr_logical_const(&self, x: &[Bit], k: usize) -> Word {
        (0..x.len())
            .map(|i| x.get(i + k).copied().unwrap_or(Bit::ZERO))
            .collect()
    }

    /// `x >> k`, filling with the sign bit (floor division by `2^k` of a signed value).
    pub fn shr_arith_const(&self, x: &[Bit], k: usize) -> Word {
        let sign = x.last().copied().unwrap_or(Bit::ZERO);
        (0..x.len())
            .map(|i| x.get(i + k).copied().unwrap_or(sign))
            .collect()
    }

    // ----- bitwise ----------------------------------------------------------------------

    fn same_width(x: &[Bit], y: &[Bit], gadget: &str) {
        assert_eq!(
            x.len(),
            y.len(),
            "{gadget}: operands of {} and {} bits",
            x.len(),
            y.len()
        );
    }

    /// Bitwise XOR (no AND).
    pub fn xor_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "xor_words");
        x.iter().zip(y).map(|(&a, &b)| self.xor(a, b)).collect()
    }

    /// Bitwise AND (`w` ANDs).
    pub fn and_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "and_words");
        x.iter().zip(y).map(|(&a, &b)| self.and(a, b)).collect()
    }

    /// Bitwise OR (`w` ANDs).
    pub fn or_words(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "or_words");
        x.iter().zip(y).map(|(&a, &b)| self.or(a, b)).collect()
    }

    /// Bitwise NOT (no AND).
    pub fn not_word(&mut self, x: &[Bit]) -> Word {
        x.iter().map(|&a| self.not(a)).collect()
    }

    // ----- arithmetic -------------------------------------------------------------------

    /// Full adder: `(a ^ b ^ c, majority(a, b, c))` with one AND.
    fn full_adder(&mut self, a: Bit, b: Bit, c: Bit) -> (Bit, Bit) {
        let (a, b, c) = match (a, b, c) {
            (k @ Bit::Const(_), x, y) | (x, k @ Bit::Const(_), y) | (x, y, k @ Bit::Const(_)) => {
                if k == Bit::ONE {
                    let s = self.xnor(x, y);
                    let carry = self.or(x, y);
                    return (s, carry);
                }
                (x, y, k)
            }
            abc => abc,
        };
        let t = self.xor(a, c);
        let u = self.xor(b, c);
        let m = self.and(t, u);
        (self.xor(t, b), self.xor(c, m))
    }

    /// Ripple-carry addition with carry in; the carry out only when `carry_out`.
    fn ripple_add(&mut self, x: &[Bit], y: &[Bit], cin: Bit, carry_out: bool) -> (Word, Bit) {
        let w = x.len();
        let mut c = cin;
        let mut sum = Vec::with_capacity(w);
        for i in 0..w {
            let t = self.xor(x[i], c);
            sum.push(self.xor(t, y[i]));
            if i + 1 < w || carry_out {
                let u = self.xor(y[i], c);
                let m = self.and(t, u);
                c = self.xor(c, m);
            }
        }
        (sum, if carry_out { c } else { Bit::ZERO })
    }

    /// `x + y` modulo `2^w` (ripple carry, `w - 1` ANDs).
    pub fn add(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "add");
        self.ripple_add(x, y, Bit::ZERO, false).0
    }

    /// `x + y + carry_in`: the `w`-bit sum and the carry out (`w` ANDs).
    pub fn add_with_carry(&mut self, x: &[Bit], y: &[Bit], carry_in: Bit) -> (Word, Bit) {
        Self::same_width(x, y, "add_with_carry");
        self.ripple_add(x, y, carry_in, true)
    }

    /// `x - y` modulo `2^w`, with the borrow `y ^ ((x ^ b) & (y ^ b))`: `w - 1` ANDs, no INV.
    pub fn sub(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "sub");
        let w = x.len();
        let mut b = Bit::ZERO;
        let mut diff = Vec::with_capacity(w);
        for i in 0..w {
            let t = self.xor(x[i], b);
            diff.push(self.xor(t, y[i]));
            if i + 1 < w {
                let u = self.xor(y[i], b);
                let m = self.and(t, u);
                b = self.xor(y[i], m);
            }
        }
        diff
    }

    /// `-x` modulo `2^w` (`w - 2` ANDs).
    pub fn neg(&mut self, x: &[Bit]) -> Word {
        let zero = vec![Bit::ZERO; x.len()];
        self.sub(&zero, x)
    }

    /// The borrow out of `x - y`, with the top bit's weight negative when `signed`.
    fn less_than(&mut self, x: &[Bit], y: &[Bit], signed: bool) -> Bit {
        let w = x.len();
        let mut b = Bit::ZERO;
        for i in 0..w {
            let t = self.xor(x[i], b);
            let u = self.xor(y[i], b);
            let m = self.and(t, u);
            let top = if signed && i + 1 == w { x[i] } else { y[i] };
            b = self.xor(top, m);
        }
        b
    }

    /// `x < y` for unsigned values (`w` ANDs).
    pub fn lt_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Self::same_width(x, y, "lt_unsigned");
        self.less_than(x, y, false)
    }

    /// `x < y` for two's-complement values (`w` ANDs).
    pub fn lt_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        Self::same_width(x, y, "lt_signed");
        self.less_than(x, y, true)
    }

    /// `x <= y` for unsigned values (`w` ANDs).
    pub fn le_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let gt = self.lt_unsigned(y, x);
        self.not(gt)
    }

    /// `x <= y` for two's-complement values (`w` ANDs).
    pub fn le_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let gt = self.lt_signed(y, x);
        self.not(gt)
    }

    /// `x > y` for unsigned values (`w` ANDs).
    pub fn gt_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        self.lt_unsigned(y, x)
    }

    /// `x > y` for two's-complement values (`w` ANDs).
    pub fn gt_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        self.lt_signed(y, x)
    }

    /// `x >= y` for unsigned values (`w` ANDs).
    pub fn ge_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let lt = self.lt_unsigned(x, y);
        self.not(lt)
    }

    /// `x >= y` for two's-complement values (`w` ANDs).
    pub fn ge_signed(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let lt = self.lt_signed(x, y);
        self.not(lt)
    }

    /// `x != y` (`w - 1` ANDs, depth `ceil(log2 w)`).
    pub fn ne(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let diff = self.xor_words(x, y);
        self.or_reduce(&diff)
    }

    /// `x == y` (`w - 1` ANDs, depth `ceil(log2 w)`).
    pub fn eq(&mut self, x: &[Bit], y: &[Bit]) -> Bit {
        let ne = self.ne(x, y);
        self.not(ne)
    }

    /// `x == 0` (`w - 1` ANDs).
    pub fn is_zero(&mut self, x: &[Bit]) -> Bit {
        let any = self.or_reduce(x);
        self.not(any)
    }

    /// `sel ? t : f` bitwise (`w` ANDs; none for bits where `t` and `f` agree or are opposite
    /// constants).
    pub fn mux(&mut self, sel: Bit, t: &[Bit], f: &[Bit]) -> Word {
        Self::same_width(t, f, "mux");
        t.iter()
            .zip(f)
            .map(|(&a, &b)| self.mux_bit(sel, a, b))
            .collect()
    }

    /// The larger of two two's-complement values (`2w` ANDs).
    pub fn max_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        let lt = self.lt_signed(x, y);
        self.mux(lt, y, x)
    }

    /// The larger of two unsigned values (`2w` ANDs).
    pub fn max_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        let lt = self.lt_unsigned(x, y);
        self.mux(lt, y, x)
    }

    /// The smaller of two two's-complement values (`2w` ANDs).
    pub fn min_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        let lt = self.lt_signed(x, y);
        self.mux(lt, x, y)
    }

    /// The smaller of two unsigned values (`2w` ANDs).
    pub fn min_unsigned(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        let lt = self.lt_unsigned(x, y);
        self.mux(lt, x, y)
    }

    /// `max(x, 0)` for a two's-complement value: every bit ANDed with the inverted sign
    /// (`w - 1` ANDs).
    pub fn relu(&mut self, x: &[Bit]) -> Word {
        let Some(&sign) = x.last() else {
            return Vec::new();
        };
        let keep = self.not(sign);
        x.iter().map(|&a| self.and(a, keep)).collect()
    }

    /// `clamp(x, lo, hi)` for a two's-complement value, at the width of `x` (at most `4w`
    /// ANDs: two comparisons with constants and two multiplexers).
    ///
    /// # Panics
    /// If `lo > hi` or either bound does not fit the width of `x`.
    pub fn clamp_signed(&mut self, x: &[Bit], lo: i128, hi: i128) -> Word {
        let w = x.len();
        let fits = |v: i128| sign_extend(v as u128 & mask(w), w) == v;
        assert!(
            lo <= hi && fits(lo) && fits(hi),
            "clamp_signed: bounds {lo}..={hi} at {w} bits"
        );
        let lo_word = self.constant_signed(lo, w);
        let hi_word = self.constant_signed(hi, w);
        let below = self.lt_signed(x, &lo_word);
        let above = self.lt_signed(&hi_word, x);
        let capped = self.mux(above, &hi_word, x);
        self.mux(below, &lo_word, &capped)
    }

    /// `clamp(x, 0, 2^out_bits - 1)` for a two's-complement `x`, as an unsigned `out_bits`-bit
    /// word: ReLU and saturation at once, the requantization of Veil's MLP. For
    /// `out_bits < w - 1` it costs `w - 1` ANDs: an OR over the bits above `out_bits`, one OR
    /// with the sign, and one multiplexer AND per output bit (to 0 for a negative `x`, to all
    /// ones for an overflow).
    pub fn saturate_unsigned(&mut self, x: &[Bit], out_bits: usize) -> Word {
        let w = x.len();
        if w <= out_bits + 1 {
            // A non-negative value of w bits is below 2^(w-1) <= 2^out_bits: ReLU suffices.
            let r = self.relu(x);
            let kept = self.truncate(&r, w.saturating_sub(1).min(out_bits));
            return self.zero_extend(&kept, out_bits);
        }
        let sign = x[w - 1];
        let over = self.or_reduce(&x[out_bits..w - 1]);
        let sel = self.or(sign, over);
        let fill = self.not(sign);
        x[..out_bits]
            .iter()
            .map(|&a| self.mux_bit(sel, fill, a))
            .collect()
    }

    /// Index of the largest two's-complement value, the first one on ties, as an unsigned word
    /// of `ceil(log2 n)` bits (no bits for one value). A balanced tournament: `n - 1`
    /// comparisons, `n - 2` value multiplexers and the index multiplexers, AND depth
    /// `ceil(log2 n)` comparisons.
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    pub fn argmax_signed(&mut self, values: &[Word]) -> Word {
        self.argmax(values, true)
    }

    /// Index of the largest unsigned value, the first one on ties; see
    /// [`Builder::argmax_signed`].
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    pub fn argmax_unsigned(&mut self, values: &[Word]) -> Word {
        self.argmax(values, false)
    }

    fn argmax(&mut self, values: &[Word], signed: bool) -> Word {
        assert!(!values.is_empty(), "argmax of no values");
        for v in values {
            Self::same_width(&values[0], v, "argmax");
        }
        let n = values.len();
        let bits = n.next_power_of_two().trailing_zeros() as usize;
        self.argmax_range(values, 0, n, bits, signed, false).1
    }

    /// The largest value of `values[lo..hi]` (when `need_value`) and its first index.
    fn argmax_range(
        &mut self,
        values: &[Word],
        lo: usize,
        hi: usize,
        bits: usize,
        signed: bool,
        need_value: bool,
    ) -> (Word, Word) {
        if hi - lo == 1 {
            return (values[lo].clone(), self.constant(lo as u128, bits));
        }
        let mid = lo + (hi - lo).div_ceil(2);
        let (lv, li) = self.argmax_range(values, lo, mid, bits, signed, true);
        let (rv, ri) = self.argmax_range(values, mid, hi, bits, signed, true);
        // The right half wins only when strictly larger: ties go to the lower index.
        let right = self.less_than(&lv, &rv, signed);
        let value = if need_value {
            self.mux(right, &rv, &lv)
        } else {
            Vec::new()
        };
        (value, self.mux(right, &ri, &li))
    }

    // ----- bit heaps: multiplication and sums ---------------------------------------------

    /// Compresses a bit heap into its sum modulo `2^width`: per column, full adders on the
    /// oldest three bits (one AND each) until at most two remain, then a half adder; the top
    /// column is a plain XOR.
    fn reduce_heap(&mut self, mut heap: BitHeap) -> Word {
        let w = heap.width();
        let mut out = Vec::with_capacity(w);
        for k in 0..w {
            let mut col = std::mem::take(&mut heap.cols[k]);
            if heap.konst[k] {
                col.push_back(Bit::ONE);
            }
            if k + 1 == w {
                let bits: Vec<Bit> = col.into_iter().collect();
                out.push(self.xor_reduce(&bits));
                break;
            }
            while col.len() >= 3 {
                let (a, b, c) = (col[0], col[1], col[2]);
                col.drain(..3);
                let (s, carry) = self.full_adder(a, b, c);
                col.push_back(s);
                heap.push(k + 1, carry);
            }
            out.push(match (col.pop_front(), col.pop_front()) {
                (None, _) => Bit::ZERO,
                (Some(a), None) => a,
                (Some(a), Some(b)) => {
                    let carry = self.and(a, b);
                    heap.push(k + 1, carry);
                    self.xor(a, b)
                }
            });
        }
        out
    }

    /// Puts `x` (unsigned) into the heap.
    fn heap_unsigned(&mut self, heap: &mut BitHeap, x: &[Bit]) {
        for (i, &a) in x.iter().enumerate() {
            heap.push(i, a);
        }
    }

    /// Puts `x` (two's complement) into the heap: `-s 2^(n-1)` becomes `!s 2^(n-1) - 2^(n-1)`.
    fn heap_signed(&mut self, heap: &mut BitHeap, x: &[Bit]) {
        let Some((&sign, low)) = x.split_last() else {
            return;
        };
        self.heap_unsigned(heap, low);
        let top = low.len();
        if top < heap.width() {
            let inv = self.not(sign);
            heap.push(top, inv);
            heap.sub_pow2(top);
        }
    }

    /// Puts the product `x * y` into the heap, the top bit of an operand weighing `-2^(n-1)`
    /// when it is signed (Baugh–Wooley).
    fn heap_product(&mut self, heap: &mut BitHeap, x: &[Bit], xs: bool, y: &[Bit], ys: bool) {
        let w = heap.width();
        for (i, &a) in x.iter().enumerate() {
            let a_neg = xs && i + 1 == x.len();
            for (j, &b) in y.iter().enumerate().take(w.saturating_sub(i)) {
                let b_neg = ys && j + 1 == y.len();
                let p = self.and(a, b);
                if a_neg != b_neg {
                    let inv = self.not(p);
                    heap.push(i + j, inv);
                    heap.sub_pow2(i + j);
                } else {
                    heap.push(i + j, p);
                }
            }
        }
    }

    fn product(&mut self, x: &[Bit], xs: bool, y: &[Bit], ys: bool, width: usize) -> Word {
        let mut heap = BitHeap::new(width);
        self.heap_product(&mut heap, x, xs, y, ys);
        self.reduce_heap(heap)
    }

    /// `x * y` modulo `2^w` (signed or unsigned alike): the `w (w + 1) / 2` partial products
    /// below `2^w` summed in a bit heap, `w^2 - w + 1` ANDs.
    pub fn mul(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        Self::same_width(x, y, "mul");
        self.product(x, false, y, false, x.len())
    }

    /// The full `(w1 + w2)`-bit product of unsigned `x` and `y` (`w1 (2 w2 - 1)` ANDs or so).
    pub fn mul_unsigned_wide(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        self.product(x, false, y, false, x.len() + y.len())
    }

    /// The full `(w1 + w2)`-bit two's-complement product of two's-complement `x` and `y`
    /// (Baugh–Wooley; as many ANDs as the unsigned product).
    pub fn mul_signed_wide(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        self.product(x, true, y, true, x.len() + y.len())
    }

    /// The full `(w1 + w2)`-bit two's-complement product of unsigned `x` and two's-complement
    /// `y`, as for activations times weights in Veil's MLP.
    pub fn mul_unsigned_signed(&mut self, x: &[Bit], y: &[Bit]) -> Word {
        self.product(x, false, y, true, x.len() + y.len())
    }

    /// The sum of words of one width, modulo `2^w` (a bit heap: about `(n - 1)(w - 1)` ANDs,
    /// logarithmic depth in `n`).
    ///
    /// # Panics
    /// If `words` is empty or the widths differ.
    pub fn sum(&mut self, words: &[Word]) -> Word {
        assert!(!words.is_empty(), "sum of no words");
        for v in words {
            Self::same_width(&words[0], v, "sum");
        }
        self.sum_unsigned(words, words[0].len())
    }

    /// The sum of unsigned words of any widths, modulo `2^width`.
    pub fn sum_unsigned(&mut self, terms: &[Word], width: usize) -> Word {
        let mut heap = BitHeap::new(width);
        for t in terms {
            self.heap_unsigned(&mut heap, t);
        }
        self.reduce_heap(heap)
    }

    /// The sum of two's-complement words of any widths, modulo `2^width` (each term's sign is
    /// folded into one inverted bit and a build-time constant, so narrow terms cost no sign
    /// extension).
    pub fn sum_signed(&mut self, terms: &[Word], width: usize) -> Word {
        let mut heap = BitHeap::new(width);
        for t in terms {
            self.heap_signed(&mut heap, t);
        }
        self.reduce_heap(heap)
    }

    /// `bias + sum_i xs[i] * ws[i]` modulo `2^width`, for unsigned `xs` and two's-complement
    /// `ws` of any widths: one dense-layer accumulator of Veil's MLP. Every partial product
    /// goes into one bit heap, so the terms share their carry chains.
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
        assert_eq!(xs.len(), ws.len(), "dot_unsigned_signed: lengths differ");
        let mut heap = BitHeap::new(width);
        for (x, w) in xs.iter().zip(ws) {
            self.heap_product(&mut heap, x, false, w, true);
        }
        for k in 0..width {
            if (bias >> k.min(127)) & 1 == 1 {
                heap.add_pow2(k);
            }
        }
        self.reduce_heap(heap)
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
