//! Discretised privacy loss distributions: a probability mass function on the grid
//! `{k * d : k integer}` plus a mass at `+inf`.
//!
//! This is the dense PMF of Google's `dp_accounting` (`pld_pmf.DensePLDPmf`; see its
//! supplementary note "Privacy Loss Distributions", Sections 2-3) and of Koskela, Jalko and
//! Honkela 2020 ("Computing Tight Differential Privacy Guarantees Using FFT"):
//! - composition is convolution of the PMFs (FFT), the infinity masses combine as
//!   `1 - (1 - a)(1 - b)`;
//! - `n`-fold self-composition raises the FFT to the `n`-th power; the output window is cut
//!   to the range outside which a Chernoff bound puts at most `tail_mass_truncation` of the
//!   mass (`common.compute_self_convolve_bounds`), and that mass is added to the infinity
//!   mass, keeping the result pessimistic;
//! - after a pairwise composition, tails of at most `tail_mass_truncation / 2` each are cut:
//!   the left one is moved onto the smallest kept loss, the right one to `+inf`
//!   (`_truncate_tails`), again pessimistic;
//! - `delta(eps) = inf_mass + sum_{l > eps} (1 - e^{eps - l}) p_l` (the hockey-stick
//!   divergence, `_get_delta_for_epsilon`), and `epsilon(delta)` is its exact inverse on the
//!   piecewise-smooth curve (`_get_epsilon_for_delta`).

use crate::fft::{convolve, self_convolve_circular};
use crate::{Delta, DpError, Epsilon};

/// The most points a PMF (or an FFT buffer) may have: `2^24`.
pub const MAX_PMF_POINTS: u64 = 1 << 24;

/// A dense discretised privacy loss distribution (one adjacency direction).
#[derive(Debug, Clone, PartialEq)]
pub struct PldPmf {
    discretization: f64,
    lower_loss: i64,
    probs: Vec<f64>,
    infinity_mass: f64,
}

impl PldPmf {
    /// The point mass at loss 0 (the PLD of a mechanism that reveals nothing).
    pub(crate) fn identity(discretization: f64) -> Self {
        PldPmf {
            discretization,
            lower_loss: 0,
            probs: vec![1.0],
            infinity_mass: 0.0,
        }
    }

    /// A PMF from its parts: `probs[i]` is the mass at loss `(lower_loss + i) * discretization`.
    pub(crate) fn from_parts(
        discretization: f64,
        lower_loss: i64,
        probs: Vec<f64>,
        infinity_mass: f64,
    ) -> Self {
        let mut pmf = PldPmf {
            discretization,
            lower_loss,
            probs,
            infinity_mass: infinity_mass.clamp(0.0, 1.0),
        };
        pmf.trim_zeros();
        pmf
    }

    fn trim_zeros(&mut self) {
        let first = self.probs.iter().position(|&p| p > 0.0);
        match first {
            None => {
                self.probs = vec![0.0];
                self.lower_loss = 0;
            }
            Some(first) => {
                let last = self.probs.iter().rposition(|&p| p > 0.0).unwrap_or(first);
                if first > 0 || last + 1 < self.probs.len() {
                    self.probs = self.probs[first..=last].to_vec();
                    self.lower_loss += first as i64;
                }
            }
        }
    }

    /// The grid step.
    pub fn discretization(&self) -> f64 {
        self.discretization
    }

    /// The index of the smallest loss held: loss `lower_loss() * discretization()`.
    pub fn lower_loss(&self) -> i64 {
        self.lower_loss
    }

    /// The masses on the grid, from the smallest loss up.
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    /// The mass at `+inf`.
    pub fn infinity_mass(&self) -> f64 {
        self.infinity_mass
    }

    fn loss(&self, i: usize) -> f64 {
        (self.lower_loss + i as i64) as f64 * self.discretization
    }

    /// Composition with `other` (same grid), cutting tails of at most `tail_mass_truncation`.
    pub(crate) fn compose(
        &self,
        other: &PldPmf,
        tail_mass_truncation: f64,
    ) -> Result<PldPmf, DpError> {
        let len = (self.probs.len() + other.probs.len() - 1) as u64;
        check_size(len.next_power_of_two())?;
        let mut probs = convolve(&self.probs, &other.probs);
        for p in probs.iter_mut() {
            *p = p.max(0.0);
        }
        let infinity_mass =
            self.infinity_mass + other.infinity_mass - self.infinity_mass * other.infinity_mass;
        let (offset, probs, right) = truncate_tails(probs, tail_mass_truncation);
        Ok(PldPmf::from_parts(
            self.discretization,
            self.lower_loss + other.lower_loss + offset as i64,
            probs,
            infinity_mass + right,
        ))
    }

    /// `num_times`-fold self-composition by one FFT power (`num_times >= 1`).
    pub(crate) fn self_compose(
        &self,
        num_times: u64,
        tail_mass_truncation: f64,
    ) -> Result<PldPmf, DpError> {
        if num_times == 0 {
            return Ok(PldPmf::identity(self.discretization));
        }
        if num_times == 1 {
            return Ok(self.clone());
        }
        let (lower, upper) = self_convolve_bounds(&self.probs, num_times, tail_mass_truncation);
        let out_len = upper - lower + 1;
        let fft_len = (out_len.max(self.probs.len() as u64)).next_power_of_two();
        check_size(fft_len)?;
        let n = fft_len as usize;
        let circular = self_convolve_circular(&self.probs, n.max(2), num_times);
        // Entry j of the circular result holds index j (mod n); we want lower..=upper.
        let probs: Vec<f64> = (lower..=upper)
            .map(|idx| circular[(idx % n.max(2) as u64) as usize].max(0.0))
            .collect();
        let power = num_times as f64;
        let inf = tail_mass_truncation - (power * (-self.infinity_mass).ln_1p()).exp_m1();
        Ok(PldPmf::from_parts(
            self.discretization,
            i64::try_from(num_times)
                .ok()
                .and_then(|n| self.lower_loss.checked_mul(n))
                .ok_or(DpError::CountOverflow)?
                + lower as i64,
            probs,
            inf,
        ))
    }

    /// The hockey-stick divergence `delta(eps)`.
    pub fn delta_for_epsilon(&self, epsilon: Epsilon) -> f64 {
        self.delta_for_epsilon_raw(epsilon.get())
    }

    pub(crate) fn delta_for_epsilon_raw(&self, epsilon: f64) -> f64 {
        let mut delta = 0.0;
        for i in (0..self.probs.len()).rev() {
            let loss = self.loss(i);
            if loss <= epsilon {
                break;
            }
            delta += -(epsilon - loss).exp_m1() * self.probs[i];
        }
        (self.infinity_mass + delta).clamp(0.0, 1.0)
    }

    /// The smallest `eps >= 0` with `delta(eps) <= delta` (`+inf` if none).
    pub fn epsilon_for_delta(&self, delta: Delta) -> f64 {
        self.epsilon_for_delta_raw(delta.get())
    }

    pub(crate) fn epsilon_for_delta_raw(&self, delta: f64) -> f64 {
        if self.infinity_mass > delta {
            return f64::INFINITY;
        }
        let mut mass_upper = self.infinity_mass;
        let mut mass_lower = 0.0;
        for i in (0..self.probs.len()).rev() {
            let loss = self.loss(i);
            if mass_upper > delta
                && mass_lower > 0.0
                && ((mass_upper - delta) / mass_lower).ln() >= loss
            {
                break;
            }
            let prob = self.probs[i];
            mass_upper += prob;
            mass_lower += (-loss).exp() * prob;
            if mass_upper >= delta && mass_lower == 0.0 {
                return loss.max(0.0);
            }
        }
        if mass_upper <= mass_lower + delta {
            return 0.0;
        }
        ((mass_upper - delta) / mass_lower).ln().max(0.0)
    }
}

fn check_size(points: u64) -> Result<(), DpError> {
    if points > MAX_PMF_POINTS {
        Err(DpError::PldTooLarge {
            needed: points,
            limit: MAX_PMF_POINTS,
        })
    } else {
        Ok(())
    }
}

/// Cuts a prefix and a suffix of mass at most `t/2` each; the prefix mass moves onto the
/// first kept element, the suffix mass is returned (for `+inf`). Returns (offset, kept, right).
fn truncate_tails(mut probs: Vec<f64>, t: f64) -> (usize, Vec<f64>, f64) {
    if t <= 0.0 || probs.is_empty() {
        return (0, probs, 0.0);
    }
    let prefix = |iter: &mut dyn Iterator<Item = f64>| {
        let mut s = 0.0;
        let mut n = 0;
        for v in iter {
            s += v;
            if s > t / 2.0 {
                return n;
            }
            n += 1;
        }
        n
    };
    let left = prefix(&mut probs.iter().copied());
    let right_count = prefix(&mut probs.iter().rev().copied());
    let right_idx = (probs.len() - right_count).max(left + 1).min(probs.len());
    let left = left.min(probs.len() - 1);
    let left_mass: f64 = probs[..left].iter().sum();
    let right_mass: f64 = probs[right_idx..].iter().sum();
    probs.truncate(right_idx);
    let mut kept = probs.split_off(left);
    kept[0] += left_mass;
    (left, kept, right_mass)
}

/// Chernoff bounds on the support of the `n`-fold self-convolution of `probs` (indices
/// relative to the input's first index), outside which at most `t` of the mass lies
/// (`dp_accounting`'s `compute_self_convolve_bounds`, with a wider set of exponents).
fn self_convolve_bounds(probs: &[f64], n: u64, t: f64) -> (u64, u64) {
    let len = probs.len() as f64;
    let full_upper = (probs.len() as u64 - 1).saturating_mul(n);
    if t <= 0.0 {
        return (0, full_upper);
    }
    let nf = n as f64;
    let mut ts: Vec<f64> = (1..=20).map(|k| k as f64 / len).collect();
    ts.extend((1..=40).map(|j| 0.5f64.powi(j) / len));
    let mut lower = 0.0f64;
    let mut upper = full_upper as f64;
    let log_2_over_t = (2.0 / t).ln();
    // The support's ends: the exponent's maximum over the support sits at one of them.
    let first = probs.iter().position(|&p| p > 0.0).unwrap_or(0) as f64;
    let last = probs.iter().rposition(|&p| p > 0.0).unwrap_or(0) as f64;
    for &tp in &ts {
        for t_signed in [tp, -tp] {
            // log E[e^{t X}] = m + ln sum_i p_i e^{t i - m}, with m the largest t i over the
            // support. The factors e^{t i - m} follow by one product each from e^{-m};
            // |t| * len <= 20 keeps them within [e^-20, 1] on the support, and the
            // recurrence's relative error (len * 2^-52) is far below what the ceil and floor
            // of the bound can notice.
            let m = (first * t_signed).max(last * t_signed);
            let step = t_signed.exp();
            let mut factor = (-m).exp();
            let mut s = 0.0;
            for &p in probs {
                s += p * factor;
                factor *= step;
            }
            let log_mgf = m + s.ln();
            let bound = (nf * log_mgf + log_2_over_t) / t_signed;
            if !bound.is_finite() {
                continue;
            }
            if t_signed > 0.0 {
                upper = upper.min(bound.ceil());
            } else {
                lower = lower.max(bound.floor());
            }
        }
    }
    let upper = upper.clamp(0.0, full_upper as f64) as u64;
    let lower = (lower.max(0.0) as u64).min(upper);
    (lower, upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_moves_mass_pessimistically() {
        let (off, kept, right) = truncate_tails(vec![1e-20, 1e-20, 0.5, 0.5, 1e-20], 1e-15);
        assert_eq!(off, 2);
        assert_eq!(kept.len(), 2);
        assert!((kept[0] - (0.5 + 2e-20)).abs() < 1e-30);
        assert!((right - 1e-20).abs() < 1e-30);
    }

    #[test]
    fn self_compose_matches_repeated_compose() {
        let base = PldPmf::from_parts(0.1, -2, vec![0.1, 0.2, 0.3, 0.25, 0.15], 0.001);
        let fast = base.self_compose(5, 0.0).unwrap();
        let mut slow = base.clone();
        for _ in 0..4 {
            slow = slow.compose(&base, 0.0).unwrap();
        }
        assert_eq!(fast.lower_loss, slow.lower_loss);
        assert_eq!(fast.probs.len(), slow.probs.len());
        for (a, b) in fast.probs.iter().zip(&slow.probs) {
            assert!((a - b).abs() < 1e-14);
        }
        assert!((fast.infinity_mass - slow.infinity_mass).abs() < 1e-15);
    }

    #[test]
    fn delta_and_epsilon_are_inverse() {
        let pmf = PldPmf::from_parts(0.01, -50, (0..300).map(|_| 1.0 / 300.0).collect(), 0.0);
        for eps in [0.0, 0.3, 1.0, 2.0] {
            let d = pmf.delta_for_epsilon_raw(eps);
            if d > 0.0 {
                let e = pmf.epsilon_for_delta_raw(d);
                assert!((e - eps).abs() < 1e-9, "{eps} -> {d} -> {e}");
            }
        }
        assert!((pmf.epsilon_for_delta_raw(1e-9) - 2.49).abs() < 1e-5);
    }
}
