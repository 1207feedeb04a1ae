//! `Z_2^k` on boolean backends: a ring value is its `k` bits, least significant first.
//!
//! The circuit [`Builder`] and the cost counter [`Cost`] implement [`ArithBackend`] with the
//! gadgets of [`Gadgets`]: addition is the `k`-bit ripple-carry adder (`k - 1` ANDs),
//! subtraction and negation the borrow chain, multiplication the `k x k -> k` bit-heap
//! multiplier (`k^2 - k + 1` ANDs), multiplication by a public constant the same multiplier
//! with one operand constant (the partial products of its zero bits fold away), and
//! multiplication by a bit one AND per bit. The conversions to and from bits are free: the
//! word already is its bits. This is what the arithmetic of a mixed protocol costs when it runs
//! inside a boolean protocol instead (ABY, Demmler, Schneider and Zohner, NDSS 2015, compares
//! the two); [`crate::plain::Plain`] gives the values.
//!
//! Ring widths run from 1 to 64, as on every backend of the crate; a width out of range or two
//! operands of different widths panic with a message naming the operation.

use crate::backend::{check_ring_bits, ArithBackend};
use crate::gadgets::Gadgets;

#[cfg(doc)]
use crate::{cost::Cost, Builder};

fn check_pair<T>(x: &[T], y: &[T], op: &str) {
    check_ring_bits(x.len(), op);
    assert_eq!(
        x.len(),
        y.len(),
        "{op}: ring widths {} and {}",
        x.len(),
        y.len()
    );
}

/// Implements [`ArithBackend`] with `Word = Vec<Bit>` over the gadgets of a boolean backend.
macro_rules! bool_ring_backend {
    ($backend:ty) => {
        impl ArithBackend for $backend {
            type Word = Vec<<$backend as $crate::backend::BoolBackend>::Bit>;

            fn ring_bits(&self, x: &Self::Word) -> usize {
                x.len()
            }

            fn ring_constant(&mut self, value: u64, k: usize) -> Self::Word {
                check_ring_bits(k, "ring_constant");
                self.constant(u128::from(value), k)
            }

            fn ring_add(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word {
                check_pair(x, y, "ring_add");
                Gadgets::add(self, x, y)
            }

            fn ring_sub(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word {
                check_pair(x, y, "ring_sub");
                Gadgets::sub(self, x, y)
            }

            fn ring_neg(&mut self, x: &Self::Word) -> Self::Word {
                check_ring_bits(x.len(), "ring_neg");
                Gadgets::neg(self, x)
            }

            fn ring_mul_const(&mut self, x: &Self::Word, c: u64) -> Self::Word {
                check_ring_bits(x.len(), "ring_mul_const");
                let c = self.constant(u128::from(c), x.len());
                Gadgets::mul(self, x, &c)
            }

            fn ring_mul(&mut self, x: &Self::Word, y: &Self::Word) -> Self::Word {
                check_pair(x, y, "ring_mul");
                Gadgets::mul(self, x, y)
            }

            fn ring_to_bits(&mut self, x: &Self::Word) -> Self::Word {
                check_ring_bits(x.len(), "ring_to_bits");
                x.clone()
            }

            fn ring_from_bits(
                &mut self,
                bits: &[<$backend as $crate::backend::BoolBackend>::Bit],
            ) -> Self::Word {
                check_ring_bits(bits.len(), "ring_from_bits");
                bits.to_vec()
            }

            fn ring_mul_bit(
                &mut self,
                x: &Self::Word,
                b: &<$backend as $crate::backend::BoolBackend>::Bit,
            ) -> Self::Word {
                check_ring_bits(x.len(), "ring_mul_bit");
                x.iter()
                    .map(|a| $crate::backend::BoolBackend::and(self, a, b))
                    .collect()
            }
        }
    };
}

bool_ring_backend!(crate::Builder);
bool_ring_backend!(crate::cost::Cost);

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::backend::ArithBackend;
    use crate::cost::Cost;
    use crate::plain::{Plain, Z2k};
    use crate::Builder;

    const WIDTHS: [usize; 9] = [1, 2, 3, 7, 8, 16, 31, 32, 64];

    /// One computation written once for every arithmetic backend: every ring operation and
    /// both conversions. Inputs `x, y` and a bit `s`; `c` a public constant.
    fn program<B: ArithBackend>(
        b: &mut B,
        x: &B::Word,
        y: &B::Word,
        s: &B::Bit,
        c: u64,
    ) -> Vec<B::Word> {
        let k = b.ring_bits(x);
        let sum = b.ring_add(x, y);
        let diff = b.ring_sub(x, y);
        let neg = b.ring_neg(x);
        let scaled = b.ring_mul_const(x, c);
        let prod = b.ring_mul(x, y);
        let selected = b.ring_mul_bit(y, s);
        let injected = b.ring_from_bit(s, k);
        // A2B, flip the low bit, B2A: x ^ 1.
        let mut bits = b.ring_to_bits(&sum);
        bits[0] = b.not(&bits[0]);
        let flipped = b.ring_from_bits(&bits);
        let seven = b.ring_constant(7, k);
        let affine = b.ring_add(&prod, &seven);
        vec![
            sum, diff, neg, scaled, prod, selected, injected, flipped, affine,
        ]
    }

    fn reference(x: u64, y: u64, s: bool, c: u64, k: usize) -> Vec<u64> {
        let m = crate::backend::ring_mask(k);
        let sum = x.wrapping_add(y) & m;
        [
            sum,
            x.wrapping_sub(y),
            x.wrapping_neg(),
            x.wrapping_mul(c),
            x.wrapping_mul(y),
            if s { y } else { 0 },
            u64::from(s),
            sum ^ 1,
            x.wrapping_mul(y).wrapping_add(7),
        ]
        .iter()
        .map(|v| v & m)
        .collect()
    }

    #[test]
    fn every_backend_computes_wrapping_arithmetic() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for k in WIDTHS {
            let m = crate::backend::ring_mask(k);
            let c = rng.random::<u64>();
            // The circuit, built once per width.
            let mut b = Builder::new();
            let (xw, yw, sw) = (b.input(k), b.input(k), b.input(1));
            let outs = program(&mut b, &xw, &yw, &sw[0], c);
            for o in &outs {
                b.output(o);
            }
            let built_ands = b.and_count();
            let circuit = b.finish();
            // The counter: the builder's AND gates and the circuit's depth, with no circuit.
            let mut cost = Cost::new();
            let (xc, yc, sc) = (cost.input(k), cost.input(k), cost.input(1));
            for o in program(&mut cost, &xc, &yc, &sc[0], c) {
                cost.output(&o);
            }
            assert_eq!(cost.and_count() as usize, built_ands, "width {k}");
            assert_eq!(
                cost.and_count() as usize,
                circuit.stats().and_count,
                "width {k}"
            );
            assert_eq!(cost.and_depth(), circuit.stats().and_depth, "width {k}");

            for t in 0..40 {
                let (x, y) = match t {
                    0 => (0, 0),
                    1 => (m, m),
                    2 => (m, 1),
                    _ => (rng.random::<u64>() & m, rng.random::<u64>() & m),
                };
                let s = rng.random::<bool>();
                let expected = reference(x, y, s, c, k);
                let mut p = Plain;
                let got: Vec<u64> = program(&mut p, &Z2k::new(x, k), &Z2k::new(y, k), &s, c)
                    .iter()
                    .map(|z| {
                        assert_eq!(z.bits(), k);
                        z.value()
                    })
                    .collect();
                assert_eq!(got, expected, "plain, width {k}, x {x}, y {y}, s {s}");
                let from_circuit: Vec<u64> = circuit
                    .eval_words(&[u128::from(x), u128::from(y), u128::from(s)])
                    .unwrap()
                    .iter()
                    .map(|&v| v as u64)
                    .collect();
                assert_eq!(from_circuit, expected, "circuit, width {k}, x {x}, y {y}");
            }
        }
    }

    #[test]
    fn ring_values_and_conversions() {
        let mut p = Plain;
        let x = p.ring_constant(u64::MAX, 8);
        assert_eq!((x.value(), x.bits(), x.signed()), (255, 8, -1));
        assert_eq!(Z2k::new(0x80, 8).signed(), -128);
        assert_eq!(Z2k::new(u64::MAX, 64).signed(), -1);
        let bits = p.ring_to_bits(&Z2k::new(6, 4));
        assert_eq!(bits, vec![false, true, true, false]);
        assert_eq!(p.ring_from_bits(&bits), Z2k::new(6, 4));
        let mut b = Builder::new();
        let c = b.ring_constant(5, 3);
        assert_eq!(c, b.constant(5, 3));
        assert_eq!(b.and_count(), 0);
        // Multiplying by a public power of two is a shift: no AND.
        let x = b.input(16);
        let eight = b.ring_mul_const(&x, 8);
        assert_eq!(eight, b.shl_const(&x, 3));
        assert_eq!(b.and_count(), 0);
    }

    #[test]
    #[should_panic(expected = "ring_add: ring widths 8 and 9")]
    fn mismatched_widths_panic() {
        let mut p = Plain;
        let _ = p.ring_add(&Z2k::new(1, 8), &Z2k::new(1, 9));
    }

    #[test]
    #[should_panic(expected = "ring width 65 not in 1..=64")]
    fn wide_rings_panic() {
        let mut b = Builder::new();
        let x = b.input(65);
        let _ = b.ring_neg(&x);
    }
}
