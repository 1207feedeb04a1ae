//! Word-level gadgets, written once for every [`BoolBackend`].
//!
//! [`Gadgets`] is implemented for every boolean backend: the circuit
//! [`Builder`](crate::Builder) emits their gates, the plaintext backend
//! [`Plain`](crate::plain::Plain) computes their values and the counter
//! [`Cost`](crate::cost::Cost) counts their AND gates and depth. A word is a vector of bits,
//! least significant first (the crate's convention).
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
//! summed when the gadget runs.
//!
//! The gadgets branch only on [`BoolBackend::as_constant`]: operations on public constants
//! cost nothing, and every backend that folds constants like the builder executes the same AND
//! gates in the same order.
//!
//! Operands of binary word gadgets must have equal widths; a mismatch, like an empty operand
//! list where a width is needed, is a programming error and panics with a message naming the
//! gadget. Every width from 1 up works (the test suite checks 1 to 64).
//!
//! AND gates per gadget, for `w`-bit operands (`w >= 2`; fewer when operands are constant):
//!
//! | gadget | ANDs |
//! |---|---|
//! | [`add`](Gadgets::add), [`sub`](Gadgets::sub) | `w - 1` |
//! | [`add_with_carry`](Gadgets::add_with_carry) | `w` |
//! | [`neg`](Gadgets::neg) | `w - 2` |
//! | [`lt_unsigned`](Gadgets::lt_unsigned), [`lt_signed`](Gadgets::lt_signed), `le`/`gt`/`ge` | `w` |
//! | [`eq`](Gadgets::eq), [`ne`](Gadgets::ne), [`is_zero`](Gadgets::is_zero) | `w - 1` |
//! | [`mux`](Gadgets::mux) | `w` |
//! | [`max_signed`](Gadgets::max_signed) and the other min/max | `2w` |
//! | [`relu`](Gadgets::relu) | `w - 1` |
//! | [`saturate_unsigned`](Gadgets::saturate_unsigned) to `0 < k < w - 1` bits | `w - 1` |
//! | [`clamp_signed`](Gadgets::clamp_signed) | at most `4w` |
//! | [`argmax_signed`](Gadgets::argmax_signed) of `n` values | at most `(n - 1)(2w + ceil(log2 n)) - w` |
//! | [`mul`](Gadgets::mul) (`w x w -> w`) | `w^2 - w + 1` |
//! | [`mul_unsigned_wide`](Gadgets::mul_unsigned_wide) (`w x w -> 2w`) | `2w^2 - w` |
//! | [`mul_signed_wide`](Gadgets::mul_signed_wide), [`mul_unsigned_signed`](Gadgets::mul_unsigned_signed) | `2w^2 - w` |
//! | [`sum`](Gadgets::sum) of `n` words | about `(n - 1)(w - 1)` |
//! | [`dot_unsigned_signed`](Gadgets::dot_unsigned_signed) | `w1 w2` per term, plus about one per partial product for the heap |
//! | shifts, extensions, truncation | 0 |
//!
//! The exact counts are checked by the builder's unit test `documented_and_counts` for
//! `w = 2, 3, 8, 16, 32, 64`. The AND depth of the ripple-carry gadgets and comparators is
//! linear in `w` (`w - 1` for `mul`, `2w - 1` for the wide products); `eq`, `is_zero` and the
//! reductions are logarithmic. For example, `mul` at 64 bits is 4033 ANDs, the count of the
//! Bristol `mult64.txt`, and a 64-term dot product of 4-bit unsigned by 4-bit signed values
//! into 16 bits is 2044 ANDs, against 2296 for 64 separate products summed afterwards.

use std::collections::VecDeque;

use crate::backend::BoolBackend;
use crate::bits::{mask, sign_extend};

fn same_width<T>(x: &[T], y: &[T], gadget: &str) {
    assert_eq!(
        x.len(),
        y.len(),
        "{gadget}: operands of {} and {} bits",
        x.len(),
        y.len()
    );
}

/// The word-level gadgets of every [`BoolBackend`]; see the module documentation for their
/// costs. Implemented for every backend: import the trait to call them.
pub trait Gadgets: BoolBackend {
    // ----- bits ---------------------------------------------------------------------------

    /// `a OR b`, as `a ^ b ^ (a & b)` (one AND).
    fn or(&mut self, a: &Self::Bit, b: &Self::Bit) -> Self::Bit {
        match (self.as_constant(a), self.as_constant(b)) {
            (Some(true), _) | (_, Some(true)) => self.constant_bit(true),
            (Some(false), _) => b.clone(),
            (_, Some(false)) => a.clone(),
            _ => {
                let t = self.xor(a, b);
                let u = self.and(a, b);
                self.xor(&t, &u)
            }
        }
    }

    /// `NOT (a XOR b)`: 1 when the bits are equal.
    fn xnor(&mut self, a: &Self::Bit, b: &Self::Bit) -> Self::Bit {
        let t = self.xor(a, b);
        self.not(&t)
    }

    /// `sel ? t : f`, as `f ^ (sel & (t ^ f))` (one AND).
    fn mux_bit(&mut self, sel: &Self::Bit, t: &Self::Bit, f: &Self::Bit) -> Self::Bit {
        match self.as_constant(sel) {
            Some(true) => t.clone(),
            Some(false) => f.clone(),
            None => {
                let d = self.xor(t, f);
                let m = self.and(sel, &d);
                self.xor(f, &m)
            }
        }
    }

    /// AND of all bits (1 for none), as a balanced tree: `n - 1` ANDs, depth `ceil(log2 n)`.
    fn and_reduce(&mut self, bits: &[Self::Bit]) -> Self::Bit {
        reduce(self, bits, true, Self::and)
    }

    /// OR of all bits (0 for none), as a balanced tree: `n - 1` ANDs, depth `ceil(log2 n)`.
    fn or_reduce(&mut self, bits: &[Self::Bit]) -> Self::Bit {
        reduce(self, bits, false, Self::or)
    }

    /// XOR of all bits (0 for none): no AND.
    fn xor_reduce(&mut self, bits: &[Self::Bit]) -> Self::Bit {
        reduce(self, bits, false, Self::xor)
    }

    // ----- words without gates ------------------------------------------------------------

    /// The low `width` bits of `value` as constants (zero beyond 128 bits).
    fn constant(&self, value: u128, width: usize) -> Vec<Self::Bit> {
        (0..width)
            .map(|i| self.constant_bit(i < 128 && (value >> i) & 1 == 1))
            .collect()
    }

    /// The two's complement of `value` at `width` bits, as constants.
    fn constant_signed(&self, value: i128, width: usize) -> Vec<Self::Bit> {
        (0..width)
            .map(|i| self.constant_bit((value >> i.min(127)) & 1 == 1))
            .collect()
    }

    /// `x` with `width - x.len()` copies of its sign bit on top (zeros for an empty word).
    ///
    /// # Panics
    /// If `width < x.len()`.
    fn sign_extend(&self, x: &[Self::Bit], width: usize) -> Vec<Self::Bit> {
        assert!(width >= x.len(), "sign_extend: {} bits to {width}", x.len());
        let fill = match x.last() {
            Some(s) => s.clone(),
            None => self.constant_bit(false),
        };
        let mut out = x.to_vec();
        out.resize(width, fill);
        out
    }

    /// `x` with `width - x.len()` zeros on top.
    ///
    /// # Panics
    /// If `width < x.len()`.
    fn zero_extend(&self, x: &[Self::Bit], width: usize) -> Vec<Self::Bit> {
        assert!(width >= x.len(), "zero_extend: {} bits to {width}", x.len());
        let mut out = x.to_vec();
        out.resize(width, self.constant_bit(false));
        out
    }

    /// The low `width` bits of `x` (the value modulo `2^width`).
    ///
    /// # Panics
    /// If `width > x.len()`.
    fn truncate(&self, x: &[Self::Bit], width: usize) -> Vec<Self::Bit> {
        assert!(width <= x.len(), "truncate: {} bits to {width}", x.len());
        x[..width].to_vec()
    }

    /// `x << k` at the width of `x` (zero when `k >= x.len()`).
    fn shl_const(&self, x: &[Self::Bit], k: usize) -> Vec<Self::Bit> {
        (0..x.len())
            .map(|i| {
                if i >= k {
                    x[i - k].clone()
                } else {
                    self.constant_bit(false)
                }
            })
            .collect()
    }

    /// `x >> k`, filling with zeros.
    fn shr_logical_const(&self, x: &[Self::Bit], k: usize) -> Vec<Self::Bit> {
        (0..x.len())
            .map(|i| match x.get(i + k) {
                Some(a) => a.clone(),
                None => self.constant_bit(false),
            })
            .collect()
    }

    /// `x >> k`, filling with the sign bit (floor division by `2^k` of a signed value).
    fn shr_arith_const(&self, x: &[Self::Bit], k: usize) -> Vec<Self::Bit> {
        let sign = match x.last() {
            Some(s) => s.clone(),
            None => self.constant_bit(false),
        };
        (0..x.len())
            .map(|i| x.get(i + k).unwrap_or(&sign).clone())
            .collect()
    }

    // ----- bitwise ------------------------------------------------------------------------

    /// Bitwise XOR (no AND).
    fn xor_words(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "xor_words");
        x.iter().zip(y).map(|(a, b)| self.xor(a, b)).collect()
    }

    /// Bitwise AND (`w` ANDs).
    fn and_words(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "and_words");
        x.iter().zip(y).map(|(a, b)| self.and(a, b)).collect()
    }

    /// Bitwise OR (`w` ANDs).
    fn or_words(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "or_words");
        x.iter().zip(y).map(|(a, b)| self.or(a, b)).collect()
    }

    /// Bitwise NOT (no AND).
    fn not_word(&mut self, x: &[Self::Bit]) -> Vec<Self::Bit> {
        x.iter().map(|a| self.not(a)).collect()
    }

    // ----- arithmetic ---------------------------------------------------------------------

    /// `x + y` modulo `2^w` (ripple carry, `w - 1` ANDs).
    fn add(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "add");
        let zero = self.constant_bit(false);
        ripple_add(self, x, y, zero, false).0
    }

    /// `x + y + carry_in`: the `w`-bit sum and the carry out (`w` ANDs).
    fn add_with_carry(
        &mut self,
        x: &[Self::Bit],
        y: &[Self::Bit],
        carry_in: &Self::Bit,
    ) -> (Vec<Self::Bit>, Self::Bit) {
        same_width(x, y, "add_with_carry");
        ripple_add(self, x, y, carry_in.clone(), true)
    }

    /// `x - y` modulo `2^w`, with the borrow `y ^ ((x ^ b) & (y ^ b))`: `w - 1` ANDs, no NOT.
    fn sub(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "sub");
        let w = x.len();
        let mut b = self.constant_bit(false);
        let mut diff = Vec::with_capacity(w);
        for i in 0..w {
            let t = self.xor(&x[i], &b);
            diff.push(self.xor(&t, &y[i]));
            if i + 1 < w {
                let u = self.xor(&y[i], &b);
                let m = self.and(&t, &u);
                b = self.xor(&y[i], &m);
            }
        }
        diff
    }

    /// `-x` modulo `2^w` (`w - 2` ANDs).
    fn neg(&mut self, x: &[Self::Bit]) -> Vec<Self::Bit> {
        let zero = vec![self.constant_bit(false); x.len()];
        self.sub(&zero, x)
    }

    /// `x < y` for unsigned values (`w` ANDs).
    fn lt_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        same_width(x, y, "lt_unsigned");
        less_than(self, x, y, false)
    }

    /// `x < y` for two's-complement values (`w` ANDs).
    fn lt_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        same_width(x, y, "lt_signed");
        less_than(self, x, y, true)
    }

    /// `x <= y` for unsigned values (`w` ANDs).
    fn le_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let gt = self.lt_unsigned(y, x);
        self.not(&gt)
    }

    /// `x <= y` for two's-complement values (`w` ANDs).
    fn le_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let gt = self.lt_signed(y, x);
        self.not(&gt)
    }

    /// `x > y` for unsigned values (`w` ANDs).
    fn gt_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        self.lt_unsigned(y, x)
    }

    /// `x > y` for two's-complement values (`w` ANDs).
    fn gt_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        self.lt_signed(y, x)
    }

    /// `x >= y` for unsigned values (`w` ANDs).
    fn ge_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let lt = self.lt_unsigned(x, y);
        self.not(&lt)
    }

    /// `x >= y` for two's-complement values (`w` ANDs).
    fn ge_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let lt = self.lt_signed(x, y);
        self.not(&lt)
    }

    /// `x != y` (`w - 1` ANDs, depth `ceil(log2 w)`).
    fn ne(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let diff = self.xor_words(x, y);
        self.or_reduce(&diff)
    }

    /// `x == y` (`w - 1` ANDs, depth `ceil(log2 w)`).
    fn eq(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Self::Bit {
        let ne = self.ne(x, y);
        self.not(&ne)
    }

    /// `x == 0` (`w - 1` ANDs).
    fn is_zero(&mut self, x: &[Self::Bit]) -> Self::Bit {
        let any = self.or_reduce(x);
        self.not(&any)
    }

    /// `sel ? t : f` bitwise (`w` ANDs; none for bits where `t` and `f` agree or are opposite
    /// constants).
    fn mux(&mut self, sel: &Self::Bit, t: &[Self::Bit], f: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(t, f, "mux");
        t.iter()
            .zip(f)
            .map(|(a, b)| self.mux_bit(sel, a, b))
            .collect()
    }

    /// The larger of two two's-complement values (`2w` ANDs).
    fn max_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        let lt = self.lt_signed(x, y);
        self.mux(&lt, y, x)
    }

    /// The larger of two unsigned values (`2w` ANDs).
    fn max_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        let lt = self.lt_unsigned(x, y);
        self.mux(&lt, y, x)
    }

    /// The smaller of two two's-complement values (`2w` ANDs).
    fn min_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        let lt = self.lt_signed(x, y);
        self.mux(&lt, x, y)
    }

    /// The smaller of two unsigned values (`2w` ANDs).
    fn min_unsigned(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        let lt = self.lt_unsigned(x, y);
        self.mux(&lt, x, y)
    }

    /// `max(x, 0)` for a two's-complement value: every bit ANDed with the inverted sign
    /// (`w - 1` ANDs).
    fn relu(&mut self, x: &[Self::Bit]) -> Vec<Self::Bit> {
        let Some(sign) = x.last() else {
            return Vec::new();
        };
        let keep = self.not(sign);
        x.iter().map(|a| self.and(a, &keep)).collect()
    }

    /// `clamp(x, lo, hi)` for a two's-complement value, at the width of `x` (at most `4w`
    /// ANDs: two comparisons with constants and two multiplexers).
    ///
    /// # Panics
    /// If `lo > hi` or either bound does not fit the width of `x`.
    fn clamp_signed(&mut self, x: &[Self::Bit], lo: i128, hi: i128) -> Vec<Self::Bit> {
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
        let capped = self.mux(&above, &hi_word, x);
        self.mux(&below, &lo_word, &capped)
    }

    /// `clamp(x, 0, 2^out_bits - 1)` for a two's-complement `x`, as an unsigned `out_bits`-bit
    /// word: ReLU and saturation at once, the requantization of Veil's MLP. For
    /// `out_bits < w - 1` it costs `w - 1` ANDs: an OR over the bits above `out_bits`, one OR
    /// with the sign, and one multiplexer AND per output bit (to 0 for a negative `x`, to all
    /// ones for an overflow).
    fn saturate_unsigned(&mut self, x: &[Self::Bit], out_bits: usize) -> Vec<Self::Bit> {
        let w = x.len();
        if out_bits == 0 {
            return Vec::new();
        }
        if w <= out_bits + 1 {
            // A non-negative value of w bits is below 2^(w-1) <= 2^out_bits: ReLU suffices.
            let r = self.relu(x);
            let kept = self.truncate(&r, w.saturating_sub(1).min(out_bits));
            return self.zero_extend(&kept, out_bits);
        }
        let sign = &x[w - 1];
        let over = self.or_reduce(&x[out_bits..w - 1]);
        let sel = self.or(sign, &over);
        let fill = self.not(sign);
        x[..out_bits]
            .iter()
            .map(|a| self.mux_bit(&sel, &fill, a))
            .collect()
    }

    /// Index of the largest two's-complement value, the first one on ties, as an unsigned word
    /// of `ceil(log2 n)` bits (no bits for one value). A balanced tournament: `n - 1`
    /// comparisons, `n - 2` value multiplexers and the index multiplexers, AND depth
    /// `ceil(log2 n)` comparisons.
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    fn argmax_signed(&mut self, values: &[Vec<Self::Bit>]) -> Vec<Self::Bit> {
        argmax(self, values, true)
    }

    /// Index of the largest unsigned value, the first one on ties; see
    /// [`Gadgets::argmax_signed`].
    ///
    /// # Panics
    /// If `values` is empty or the widths differ.
    fn argmax_unsigned(&mut self, values: &[Vec<Self::Bit>]) -> Vec<Self::Bit> {
        argmax(self, values, false)
    }

    // ----- bit heaps: multiplication and sums -----------------------------------------------

    /// `x * y` modulo `2^w` (signed or unsigned alike): the `w (w + 1) / 2` partial products
    /// below `2^w` summed in a bit heap, `w^2 - w + 1` ANDs.
    fn mul(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        same_width(x, y, "mul");
        product(self, x, false, y, false, x.len())
    }

    /// The full `(w1 + w2)`-bit product of unsigned `x` and `y` (`w1 (2 w2 - 1)` ANDs or so).
    fn mul_unsigned_wide(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        product(self, x, false, y, false, x.len() + y.len())
    }

    /// The full `(w1 + w2)`-bit two's-complement product of two's-complement `x` and `y`
    /// (Baugh–Wooley; as many ANDs as the unsigned product).
    fn mul_signed_wide(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        product(self, x, true, y, true, x.len() + y.len())
    }

    /// The full `(w1 + w2)`-bit two's-complement product of unsigned `x` and two's-complement
    /// `y`, as for activations times weights in Veil's MLP.
    fn mul_unsigned_signed(&mut self, x: &[Self::Bit], y: &[Self::Bit]) -> Vec<Self::Bit> {
        product(self, x, false, y, true, x.len() + y.len())
    }

    /// The sum of words of one width, modulo `2^w` (a bit heap: about `(n - 1)(w - 1)` ANDs,
    /// logarithmic depth in `n`).
    ///
    /// # Panics
    /// If `words` is empty or the widths differ.
    fn sum(&mut self, words: &[Vec<Self::Bit>]) -> Vec<Self::Bit> {
        assert!(!words.is_empty(), "sum of no words");
        for v in words {
            same_width(&words[0], v, "sum");
        }
        self.sum_unsigned(words, words[0].len())
    }

    /// The sum of unsigned words of any widths, modulo `2^width`.
    fn sum_unsigned(&mut self, terms: &[Vec<Self::Bit>], width: usize) -> Vec<Self::Bit> {
        let mut heap = BitHeap::new(width);
        for t in terms {
            heap_unsigned(self, &mut heap, t);
        }
        reduce_heap(self, heap)
    }

    /// The sum of two's-complement words of any widths, modulo `2^width` (each term's sign is
    /// folded into one inverted bit and a constant, so narrow terms cost no sign extension).
    fn sum_signed(&mut self, terms: &[Vec<Self::Bit>], width: usize) -> Vec<Self::Bit> {
        let mut heap = BitHeap::new(width);
        for t in terms {
            heap_signed(self, &mut heap, t);
        }
        reduce_heap(self, heap)
    }

    /// `bias + sum_i xs[i] * ws[i]` modulo `2^width`, for unsigned `xs` and two's-complement
    /// `ws` of any widths: one dense-layer accumulator of Veil's MLP. Every partial product
    /// goes into one bit heap, so the terms share their carry chains.
    ///
    /// # Panics
    /// If `xs` and `ws` have different lengths.
    fn dot_unsigned_signed(
        &mut self,
        xs: &[Vec<Self::Bit>],
        ws: &[Vec<Self::Bit>],
        bias: i128,
        width: usize,
    ) -> Vec<Self::Bit> {
        assert_eq!(xs.len(), ws.len(), "dot_unsigned_signed: lengths differ");
        let mut heap = BitHeap::new(width);
        for (x, w) in xs.iter().zip(ws) {
            heap_product(self, &mut heap, x, false, w, true);
        }
        for k in 0..width {
            if (bias >> k.min(127)) & 1 == 1 {
                heap.add_pow2(k);
            }
        }
        reduce_heap(self, heap)
    }
}

impl<B: BoolBackend + ?Sized> Gadgets for B {}

/// A balanced tree of `op` over `bits`, `empty` for no bits.
fn reduce<B: BoolBackend + ?Sized>(
    b: &mut B,
    bits: &[B::Bit],
    empty: bool,
    op: fn(&mut B, &B::Bit, &B::Bit) -> B::Bit,
) -> B::Bit {
    let mut layer = bits.to_vec();
    while layer.len() > 1 {
        let mut next = Vec::with_capacity(layer.len().div_ceil(2));
        for pair in layer.chunks(2) {
            next.push(match pair {
                [x, y] => op(b, x, y),
                [x] => x.clone(),
                _ => unreachable!("chunks(2) yields one or two bits"),
            });
        }
        layer = next;
    }
    match layer.pop() {
        Some(bit) => bit,
        None => b.constant_bit(empty),
    }
}

/// Full adder: `(a ^ b ^ c, majority(a, b, c))` with one AND.
fn full_adder<B: Gadgets + ?Sized>(b: &mut B, x: B::Bit, y: B::Bit, z: B::Bit) -> (B::Bit, B::Bit) {
    // The first constant operand decides: 1 gives `(!(p ^ q), p | q)`, and 0 becomes the
    // carry-in, so that the general formula folds to a half adder.
    let (p, q, one, k) = if let Some(one) = b.as_constant(&x) {
        (y, z, one, x)
    } else if let Some(one) = b.as_constant(&y) {
        (x, z, one, y)
    } else if let Some(one) = b.as_constant(&z) {
        (x, y, one, z)
    } else {
        return general_full_adder(b, x, y, z);
    };
    if one {
        let s = b.xnor(&p, &q);
        let carry = b.or(&p, &q);
        (s, carry)
    } else {
        general_full_adder(b, p, q, k)
    }
}

/// `(x ^ y ^ c, c ^ ((x ^ c) & (y ^ c)))`.
fn general_full_adder<B: BoolBackend + ?Sized>(
    b: &mut B,
    x: B::Bit,
    y: B::Bit,
    c: B::Bit,
) -> (B::Bit, B::Bit) {
    let t = b.xor(&x, &c);
    let u = b.xor(&y, &c);
    let m = b.and(&t, &u);
    (b.xor(&t, &y), b.xor(&c, &m))
}

/// Ripple-carry addition with carry in; the carry out only when `carry_out`.
fn ripple_add<B: BoolBackend + ?Sized>(
    b: &mut B,
    x: &[B::Bit],
    y: &[B::Bit],
    cin: B::Bit,
    carry_out: bool,
) -> (Vec<B::Bit>, B::Bit) {
    let w = x.len();
    let mut c = cin;
    let mut sum = Vec::with_capacity(w);
    for i in 0..w {
        let t = b.xor(&x[i], &c);
        sum.push(b.xor(&t, &y[i]));
        if i + 1 < w || carry_out {
            let u = b.xor(&y[i], &c);
            let m = b.and(&t, &u);
            c = b.xor(&c, &m);
        }
    }
    let carry = if carry_out { c } else { b.constant_bit(false) };
    (sum, carry)
}

/// The borrow out of `x - y`, with the top bit's weight negative when `signed`.
fn less_than<B: BoolBackend + ?Sized>(
    b: &mut B,
    x: &[B::Bit],
    y: &[B::Bit],
    signed: bool,
) -> B::Bit {
    let w = x.len();
    let mut borrow = b.constant_bit(false);
    for i in 0..w {
        let t = b.xor(&x[i], &borrow);
        let u = b.xor(&y[i], &borrow);
        let m = b.and(&t, &u);
        let top = if signed && i + 1 == w { &x[i] } else { &y[i] };
        borrow = b.xor(top, &m);
    }
    borrow
}

fn argmax<B: Gadgets + ?Sized>(b: &mut B, values: &[Vec<B::Bit>], signed: bool) -> Vec<B::Bit> {
    assert!(!values.is_empty(), "argmax of no values");
    for v in values {
        same_width(&values[0], v, "argmax");
    }
    let n = values.len();
    let bits = n.next_power_of_two().trailing_zeros() as usize;
    argmax_range(b, values, 0, n, bits, signed, false).1
}

/// The largest value of `values[lo..hi]` (when `need_value`) and its first index.
fn argmax_range<B: Gadgets + ?Sized>(
    b: &mut B,
    values: &[Vec<B::Bit>],
    lo: usize,
    hi: usize,
    bits: usize,
    signed: bool,
    need_value: bool,
) -> (Vec<B::Bit>, Vec<B::Bit>) {
    if hi - lo == 1 {
        return (values[lo].clone(), b.constant(lo as u128, bits));
    }
    let mid = lo + (hi - lo).div_ceil(2);
    let (lv, li) = argmax_range(b, values, lo, mid, bits, signed, true);
    let (rv, ri) = argmax_range(b, values, mid, hi, bits, signed, true);
    // The right half wins only when strictly larger: ties go to the lower index.
    let right = less_than(b, &lv, &rv, signed);
    let value = if need_value {
        b.mux(&right, &rv, &lv)
    } else {
        Vec::new()
    };
    (value, b.mux(&right, &ri, &li))
}

/// Weighted bits waiting to be summed: `sum_k 2^k (cols[k] + konst[k])` modulo `2^width`.
struct BitHeap<T> {
    cols: Vec<VecDeque<T>>,
    konst: Vec<bool>,
}

impl<T: Clone> BitHeap<T> {
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
}

/// Adds `bit * 2^k` to the heap: a constant goes to the heap's constant.
fn heap_push<B: BoolBackend + ?Sized>(b: &B, heap: &mut BitHeap<B::Bit>, k: usize, bit: B::Bit) {
    match b.as_constant(&bit) {
        Some(false) => {}
        Some(true) => heap.add_pow2(k),
        None => {
            if let Some(col) = heap.cols.get_mut(k) {
                col.push_back(bit);
            }
        }
    }
}

/// Compresses a bit heap into its sum modulo `2^width`: per column, full adders on the oldest
/// three bits (one AND each) until at most two remain, then a half adder; the top column is a
/// plain XOR.
fn reduce_heap<B: Gadgets + ?Sized>(b: &mut B, mut heap: BitHeap<B::Bit>) -> Vec<B::Bit> {
    let w = heap.width();
    let mut out = Vec::with_capacity(w);
    for k in 0..w {
        let mut col = std::mem::take(&mut heap.cols[k]);
        if heap.konst[k] {
            col.push_back(b.constant_bit(true));
        }
        if k + 1 == w {
            let bits: Vec<B::Bit> = col.into_iter().collect();
            out.push(b.xor_reduce(&bits));
            break;
        }
        while col.len() >= 3 {
            let (Some(x), Some(y), Some(z)) = (col.pop_front(), col.pop_front(), col.pop_front())
            else {
                unreachable!("the column holds at least three bits");
            };
            let (s, carry) = full_adder(b, x, y, z);
            col.push_back(s);
            heap_push(b, &mut heap, k + 1, carry);
        }
        out.push(match (col.pop_front(), col.pop_front()) {
            (None, _) => b.constant_bit(false),
            (Some(x), None) => x,
            (Some(x), Some(y)) => {
                let carry = b.and(&x, &y);
                heap_push(b, &mut heap, k + 1, carry);
                b.xor(&x, &y)
            }
        });
    }
    out
}

/// Puts `x` (unsigned) into the heap.
fn heap_unsigned<B: BoolBackend + ?Sized>(b: &B, heap: &mut BitHeap<B::Bit>, x: &[B::Bit]) {
    for (i, a) in x.iter().enumerate() {
        heap_push(b, heap, i, a.clone());
    }
}

/// Puts `x` (two's complement) into the heap: `-s 2^(n-1)` becomes `!s 2^(n-1) - 2^(n-1)`.
fn heap_signed<B: BoolBackend + ?Sized>(b: &mut B, heap: &mut BitHeap<B::Bit>, x: &[B::Bit]) {
    let Some((sign, low)) = x.split_last() else {
        return;
    };
    heap_unsigned(b, heap, low);
    let top = low.len();
    if top < heap.width() {
        let inv = b.not(sign);
        heap_push(b, heap, top, inv);
        heap.sub_pow2(top);
    }
}

/// Puts the product `x * y` into the heap, the top bit of an operand weighing `-2^(n-1)` when
/// it is signed (Baugh–Wooley).
fn heap_product<B: BoolBackend + ?Sized>(
    b: &mut B,
    heap: &mut BitHeap<B::Bit>,
    x: &[B::Bit],
    xs: bool,
    y: &[B::Bit],
    ys: bool,
) {
    let w = heap.width();
    for (i, p) in x.iter().enumerate() {
        let p_neg = xs && i + 1 == x.len();
        for (j, q) in y.iter().enumerate().take(w.saturating_sub(i)) {
            let q_neg = ys && j + 1 == y.len();
            let pq = b.and(p, q);
            if p_neg != q_neg {
                let inv = b.not(&pq);
                heap_push(b, heap, i + j, inv);
                heap.sub_pow2(i + j);
            } else {
                heap_push(b, heap, i + j, pq);
            }
        }
    }
}

fn product<B: Gadgets + ?Sized>(
    b: &mut B,
    x: &[B::Bit],
    xs: bool,
    y: &[B::Bit],
    ys: bool,
    width: usize,
) -> Vec<B::Bit> {
    let mut heap = BitHeap::new(width);
    heap_product(b, &mut heap, x, xs, y, ys);
    reduce_heap(b, heap)
}
