//! Logits that leave the server out of bootstraps: each logit sent as its digits, each digit
//! the output of a bootstrap, so that no returned ciphertext is a linear combination of the
//! weights with their noise (Ducas and Stehlé, EUROCRYPT 2016: a bootstrap as the last
//! operation).
//!
//! Pure integer arithmetic and the noise model of [`crate::argmax`]; `FheServer::eval_logits`
//! evaluates it.
//!
//! # Digits from the bottom up
//!
//! A logit `l` of `B` bits is shifted to `L = l + 2^(B−1) ∈ [0, 2^B)` and read `b` bits at a
//! time, `K = ⌈B / b⌉` digits, the modular reduction of Liu, Micciancio and Polyakov
//! (ASIACRYPT 2022, section 3) with the server's freedom to re-scale the last hidden stage:
//!
//! - **Step `t`** computes the residual `R_t = (L − Σ_{s<t} d_s 2^(bs)) / 2^(bt)` at `v` slots per
//!   unit, plus half a unit: the last hidden stage bootstrapped at `v / 2^(bt)` slots per
//!   activation (a bootstrap's output noise is the same at any scale), the logit's row applied,
//!   and the digits already read subtracted, each bootstrapped at its own scale there. With
//!   `2^b · v = N` slots (half the torus), the phase holds `R_t mod 2^(b+1)`.
//! - **Folding**: a bootstrap through a constant table returns `+N/2` slots in the lower half of
//!   the torus and `−N/2` in the upper; adding `N/2` and subtracting it moves the upper half
//!   down by `N`, leaving `R_t mod 2^b = d_t` in the lower half, where a table may be any
//!   function: the digit for the client, and the digit at each later step's scale.
//! - **The top digit** `R_{K−1} < 2^b` is in the lower half already and needs no fold.
//!
//! The digits' centres are half a unit `v/2` from every boundary a table has, and `v/2` is at
//! least the margin `M` of [`crate::argmax::TAIL`] standard deviations of the residual's noise;
//! `b` is the largest digit width that keeps it so.

use crate::argmax::{PBS_SIGMA_SLOTS, SWITCH_SIGMA_SLOTS, TAIL, TAIL_PROBABILITY};
use crate::plan::{slot, FhePlan, PlanError};

/// The server's plan of the bootstrapped logits of one model.
#[derive(Clone, Debug)]
pub struct DigitsPlan {
    /// Polynomial size `N`.
    pub polynomial_size: usize,
    /// Bits of a logit `B`.
    pub bits: u32,
    /// Bits per digit `b`.
    pub digit_bits: u32,
    /// Digits per logit `K`.
    pub digits: u32,
    /// Slots per unit of a residual `v = N / 2^b`.
    pub unit: u64,
    /// Noise margin, in slots.
    pub margin: u64,
    /// Values of the last hidden stage.
    pub hidden: usize,
    /// Logits.
    pub outputs: usize,
}

/// Bits the client decodes a digit of `digit_bits` with: scale `2^(64 − digit_bits − 2)`.
pub fn client_bits(digit_bits: u32) -> u32 {
    digit_bits + 2
}

impl DigitsPlan {
    /// Plans the digits of `plan`'s logits.
    pub fn new(plan: &FhePlan) -> Result<DigitsPlan, PlanError> {
        let last = plan.stages.last().ok_or(PlanError::NoActivation)?;
        let hidden = last.neurons.len();
        let n = plan.polynomial_size as u64;
        let bits = plan.output_bits;
        if !(2..=40).contains(&bits) {
            return Err(PlanError::Range(format!("{bits}-bit logits")));
        }
        let norm2 = plan
            .output
            .iter()
            .map(|r| r.terms.iter().map(|&(_, c)| (c * c) as f64).sum::<f64>())
            .fold(0f64, f64::max);
        // The largest digit width whose half unit covers the margin; the margin counts the
        // subtracted digits of the widest case (every digit below the top one).
        let fits = |b: u32| -> Option<(u64, u64)> {
            let k = bits.div_ceil(b);
            let terms = norm2 + f64::from(k) + 1.0;
            let sigma = (PBS_SIGMA_SLOTS * PBS_SIGMA_SLOTS * terms
                + SWITCH_SIGMA_SLOTS * SWITCH_SIGMA_SLOTS)
                .sqrt();
            let m = (TAIL * sigma).ceil() as u64;
            let v = n >> b;
            (v >= 2 * m).then_some((v, m))
        };
        let (digit_bits, (unit, margin)) = (1..=8u32)
            .rev()
            .find_map(|b| fits(b).map(|x| (b, x)))
            .ok_or_else(|| {
            PlanError::Range(format!(
                "the output layer is too noisy to send its logits as bootstrapped digits \
                     (weight norm {:.0})",
                norm2.sqrt()
            ))
        })?;
        let digits = bits.div_ceil(digit_bits);
        if u64::from(digit_bits * (digits - 1)) + 2 > 52 {
            return Err(PlanError::Range(format!("{bits}-bit logits")));
        }
        Ok(DigitsPlan {
            polynomial_size: plan.polynomial_size,
            bits,
            digit_bits,
            digits,
            unit,
            margin,
            hidden,
            outputs: plan.output.len(),
        })
    }

    /// Torus units per activation at step `t`: `v / 2^(bt)` slots.
    pub fn hidden_scale(&self, t: u32) -> u64 {
        (self.unit * slot(self.polynomial_size)) >> (self.digit_bits * t)
    }

    /// The constant of a logit's residual at step `t`: `(c + 2^(B−1)) · v / 2^(bt) + v/2`.
    pub fn constant(&self, c: i64, t: u32) -> u64 {
        ((c + (1i64 << (self.bits - 1))) as u64)
            .wrapping_mul(self.hidden_scale(t))
            .wrapping_add(self.unit / 2 * slot(self.polynomial_size))
    }

    /// Torus units of digit `s` in step `t > s`'s residual: `v · 2^(−b(t−s))` slots.
    pub fn subtract_scale(&self, s: u32, t: u32) -> u64 {
        (self.unit * slot(self.polynomial_size)) >> (self.digit_bits * (t - s))
    }

    /// The folding table: `N/2` slots everywhere (negated in the upper half).
    pub fn fold_table(&self) -> Vec<u64> {
        let half = self.polynomial_size as u64 / 2 * slot(self.polynomial_size);
        vec![half; self.polynomial_size]
    }

    /// The torus units the fold adds back: `N/2` slots.
    pub fn fold_constant(&self) -> u64 {
        self.polynomial_size as u64 / 2 * slot(self.polynomial_size)
    }

    /// A table reading a folded residual's digit `⌊y / v⌋` times `scale`.
    pub fn digit_table(&self, scale: u64) -> Vec<u64> {
        let top = (1u64 << self.digit_bits) - 1;
        (0..self.polynomial_size as u64)
            .map(|y| (y / self.unit).min(top).wrapping_mul(scale))
            .collect()
    }

    /// The client's scale of a digit.
    pub fn client_scale(&self) -> u64 {
        1u64 << (64 - client_bits(self.digit_bits))
    }

    /// Bootstraps per logit: `K − 1` folds, `K` digits for the client, and each digit below
    /// the top once for every later step.
    pub fn per_logit(&self) -> usize {
        let k = self.digits as usize;
        (k - 1) + k + k * (k - 1) / 2
    }

    /// Bootstraps of a logits answer beyond the hidden stages before the last: the last stage
    /// at each step's scale, and every logit's.
    pub fn bootstraps(&self) -> usize {
        self.hidden * self.digits as usize + self.outputs * self.per_logit()
    }

    /// Bound on the probability that one of the digits' bootstraps misreads (union bound).
    pub fn failure_bound(&self) -> f64 {
        (self.outputs * self.per_logit()) as f64 * TAIL_PROBABILITY
    }

    /// The logit from its digits, as the client reassembles it.
    pub fn assemble(&self, digits: &[i64]) -> i64 {
        let l: i64 = digits
            .iter()
            .enumerate()
            .map(|(t, &d)| d << (self.digit_bits * t as u32))
            .sum();
        l - (1i64 << (self.bits - 1))
    }

    /// What the digits pipeline gives for logit `l` when every bootstrap reads its phase with
    /// `noise` slots of error (the simulation the tests check the plan with).
    pub fn simulate(&self, l: i64, noise: i64) -> Vec<i64> {
        let n = self.polynomial_size as u64;
        let s = slot(self.polynomial_size);
        let read = |phase: u64, table: &[u64]| -> u64 {
            let x = (phase
                .wrapping_add((noise as u64).wrapping_mul(s))
                .wrapping_add(s / 2)
                / s)
                % (2 * n);
            if x < n {
                table[x as usize]
            } else {
                table[(x - n) as usize].wrapping_neg()
            }
        };
        let mut got: Vec<i64> = Vec::new();
        for t in 0..self.digits {
            let mut phase = (l as u64)
                .wrapping_mul(self.hidden_scale(t))
                .wrapping_add(self.constant(0, t));
            for (sd, &d) in got.iter().enumerate() {
                phase =
                    phase.wrapping_sub((d as u64).wrapping_mul(self.subtract_scale(sd as u32, t)));
            }
            if t + 1 < self.digits {
                let sign = read(phase, &self.fold_table());
                phase = phase.wrapping_add(self.fold_constant()).wrapping_sub(sign);
            }
            let d = read(phase, &self.digit_table(self.client_scale()));
            got.push(crate::decode_logit(d, client_bits(self.digit_bits)));
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_logit_comes_back_through_its_digits_within_the_margin() {
        let m = veil_nn::bundled_model().unwrap().quantized;
        let p = DigitsPlan::new(&FhePlan::new(&m, 2048).unwrap()).unwrap();
        assert!(p.digit_bits >= 2 && p.digits >= 2, "{p:?}");
        let half = 1i64 << (p.bits - 1);
        let mg = p.margin as i64 - 1;
        for l in -half..half {
            for noise in [-mg, 0, mg] {
                let d = p.simulate(l, noise);
                assert!(d.iter().all(|&x| (0..1 << p.digit_bits).contains(&x)));
                assert_eq!(p.assemble(&d), l, "logit {l} noise {noise}: {d:?}");
            }
        }
        assert!(p.failure_bound() < 1e-9);
    }
}
