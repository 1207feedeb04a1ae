//! The boolean circuits between two linear layers on shares (ABY's arithmetic-to-Yao and
//! Yao-to-arithmetic conversions, Demmler, Schneider and Zohner, NDSS 2015, section III-D,
//! fused with the activation as in MiniONN, CCS 2017, section 4.3): the two additive shares of
//! each accumulator go in, their sum modulo `2^k` is read as a signed accumulator, and what
//! comes out is either the requantized activation masked for the next layer or the class.
//!
//! The requantization is Veil's (`veil_nn::quant::Requant::apply`, `QUANTIZATION.md`):
//! `clamp((acc + 2^(shift−1)) >> shift, 0, 2^out_bits − 1)`, with the same gadgets as the
//! compiled model's circuit. The caller picks `k` wide enough for every accumulator the layer
//! can reach (its public bound), so that the sum of the shares is the accumulator itself.
//!
//! Every circuit has the model owner's shares as its first input value, the other party's
//! shares as its second (and its masks for the next layer as the third), `n` words of `k` bits
//! each, least significant bit first.

use veil_circuit::{Bit, Builder, Circuit};

/// Words of `width` bits, `n` of them, from one flat input value.
fn words(b: &mut Builder, n: usize, width: u32) -> Vec<Vec<Bit>> {
    let flat = b.input(n * width as usize);
    flat.chunks(width as usize).map(<[Bit]>::to_vec).collect()
}

/// The accumulators `a_j + c_j mod 2^k` of two shared vectors.
fn sums(b: &mut Builder, n: usize, k: u32) -> Vec<Vec<Bit>> {
    let owner = words(b, n, k);
    let other = words(b, n, k);
    owner.iter().zip(&other).map(|(x, y)| b.add(x, y)).collect()
}

/// Requantizes a `k`-bit two's-complement accumulator: rounding, shift, ReLU and saturation.
fn requant(b: &mut Builder, acc: &[Bit], shift: u8, out_bits: u8) -> Vec<Bit> {
    let shift = usize::from(shift);
    let width = acc.len().max(shift) + 1;
    let mut s = b.sign_extend(acc, width);
    if shift > 0 {
        let half = b.constant(1u128 << (shift - 1), width);
        s = b.add(&s, &half);
    }
    if s.len() <= shift {
        return vec![Bit::ZERO; usize::from(out_bits)];
    }
    b.saturate_unsigned(&s[shift..], usize::from(out_bits))
}

/// `n` accumulators shared in `Z_2^k` in, `requant(acc_j) − r_j mod 2^k_out` out, where `r_j`
/// (the third input value, `n` words of `k_out` bits) is the other party's mask of the next
/// layer's input `j`: the model owner learns the next layer's masked input and nothing else.
///
/// # Panics
///
/// If a width is 0 or above 64, or `k_out < out_bits`.
pub fn requant_reshare(n: usize, k: u32, shift: u8, out_bits: u8, k_out: u32) -> Circuit {
    assert!((1..=64).contains(&k) && (1..=64).contains(&k_out));
    assert!(
        u32::from(out_bits) <= k_out,
        "the activation must fit the next ring"
    );
    let mut b = Builder::new();
    let accs = sums(&mut b, n, k);
    let masks = words(&mut b, n, k_out);
    let mut out = Vec::with_capacity(n * k_out as usize);
    for (acc, r) in accs.iter().zip(&masks) {
        let act = requant(&mut b, acc, shift, out_bits);
        let act = b.zero_extend(&act, k_out as usize);
        out.extend(b.sub(&act, r));
    }
    b.output(&out);
    b.finish()
}

/// `n` shared logits in `Z_2^k` in; out, the index of the largest (the first on ties, as the
/// integer model's argmax), and, when `logits`, the logits themselves as `k`-bit words.
pub fn argmax_of_shares(n: usize, k: u32, logits: bool) -> Circuit {
    assert!((1..=64).contains(&k) && n > 0);
    let mut b = Builder::new();
    let accs = sums(&mut b, n, k);
    let class = b.argmax_signed(&accs);
    b.output(&class);
    if logits {
        let flat: Vec<Bit> = accs.concat();
        b.output(&flat);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{embed, from_bits, mask, signed, to_bits};
    use rand::{Rng, SeedableRng};

    fn requant_plain(acc: i64, shift: u8, out_bits: u8) -> i64 {
        let half = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
        ((acc + half) >> shift).clamp(0, (1i64 << out_bits) - 1)
    }

    #[test]
    fn reshared_activations_match_the_plaintext_requantization() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (n, k, shift, out_bits, k_out) in [
            (9, 16, 5, 4, 20),
            (5, 24, 0, 3, 8),
            (6, 12, 11, 1, 3),
            (4, 64, 9, 8, 64),
        ] {
            let c = requant_reshare(n, k, shift, out_bits, k_out);
            let bound = 1i64 << (k.min(40) - 1);
            let accs: Vec<i64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            let other: Vec<u64> = (0..n).map(|_| rng.random::<u64>() & mask(k)).collect();
            let owner: Vec<u64> = accs
                .iter()
                .zip(&other)
                .map(|(&a, &o)| embed(a, k).wrapping_sub(o) & mask(k))
                .collect();
            let masks: Vec<u64> = (0..n).map(|_| rng.random::<u64>() & mask(k_out)).collect();
            let out = c
                .eval(&[
                    to_bits(&owner, k),
                    to_bits(&other, k),
                    to_bits(&masks, k_out),
                ])
                .unwrap();
            let got = from_bits(&out[0], k_out);
            for j in 0..n {
                let want = requant_plain(accs[j], shift, out_bits);
                assert_eq!(
                    got[j].wrapping_add(masks[j]) & mask(k_out),
                    want as u64,
                    "{j}"
                );
            }
        }
    }

    #[test]
    fn the_argmax_of_shares_is_the_first_largest() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let (n, k) = (10, 20);
        let c = argmax_of_shares(n, k, true);
        for round in 0..20 {
            let mut logits: Vec<i64> = (0..n).map(|_| rng.random_range(-3000..3000)).collect();
            if round % 4 == 0 {
                logits[7] = logits[2].max(logits[7]);
                logits[2] = logits[7];
            }
            let other: Vec<u64> = (0..n).map(|_| rng.random::<u64>() & mask(k)).collect();
            let owner: Vec<u64> = logits
                .iter()
                .zip(&other)
                .map(|(&a, &o)| embed(a, k).wrapping_sub(o) & mask(k))
                .collect();
            let out = c.eval(&[to_bits(&owner, k), to_bits(&other, k)]).unwrap();
            let class = from_bits(&out[0], 4)[0] as usize;
            let max = *logits.iter().max().unwrap();
            assert_eq!(class, logits.iter().position(|&l| l == max).unwrap());
            let back: Vec<i64> = from_bits(&out[1], k)
                .iter()
                .map(|&w| signed(w, k))
                .collect();
            assert_eq!(back, logits);
        }
    }
}
