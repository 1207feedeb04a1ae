//! Exact sampling of the discrete Gaussian `N_Z(0, σ²)`, whose mass at each integer `x` is
//! proportional to `exp(−x² / (2σ²))`: Canonne, Kamath and Steinke, "The Discrete Gaussian for
//! Differential Privacy" (NeurIPS 2020), section 5, Algorithms 1 to 3.
//!
//! Floating-point Gaussian samplers (Box-Muller, Ziggurat) produce values whose low-order bits
//! depend on the unnoised value in ways an observer can exploit (Mironov, CCS 2012; Jin et al.,
//! S&P 2022). This sampler uses integer arithmetic only, on uniform integers drawn by rejection
//! from the caller's CSPRNG, so the numbers it returns follow the stated distribution exactly:
//!
//! - `Bernoulli(n/d)`: a uniform integer below `d` is below `n`;
//! - `Bernoulli(exp(−γ))` for rational `γ = n/d` (Algorithm 1): for `γ ≤ 1`, draw
//!   `A_k ~ Bernoulli(γ/k)` for `k = 1, 2, …` until one is 0, and answer whether that `k` is
//!   odd; for `γ > 1`, `⌊γ⌋` draws of `Bernoulli(exp(−1))` and one of `Bernoulli(exp(−(γ −
//!   ⌊γ⌋)))`, all 1;
//! - the discrete Laplace of scale `t` (Algorithm 2), from a uniform `U < t` kept with
//!   probability `exp(−U/t)` and a geometric count of `Bernoulli(exp(−1))` successes;
//! - the discrete Gaussian (Algorithm 3): `Y` from the discrete Laplace of scale
//!   `t = ⌊σ⌋ + 1`, kept with probability `exp(−(|Y| − σ²/t)² / (2σ²))`.
//!
//! `σ²` is an integer in `[1, 2^56]`, so that every quantity fits `u128`. The one departure
//! from the algorithms: a discrete Laplace draw beyond `128 t` is redrawn. Such a draw has
//! probability below `e^-127` and its acceptance in Algorithm 3 below `e^-8000` when `σ ≥ 1`,
//! so the output differs from `N_Z(0, σ²)` by a statistical distance below `2^-180`.
//!
//! The privacy of the noise it adds is what [`crate::rdp`] accounts at integer orders (see
//! the DP-SGD trainer, `veil_nn::train`), by this argument. For an integer shift `v`, the
//! discrete Gaussians centred at 0 and at `v` have the same normalising constant, so their
//! likelihood ratio at `x` is the continuous one, `exp((2⟨x, v⟩ − ‖v‖²) / 2σ²)`, and the
//! discrete Gaussian is sub-Gaussian with the continuous one's parameter (Canonne, Kamath and
//! Steinke, Corollary 9: `E[e^{tX}] ≤ e^{t²σ²/2}`, coordinate by coordinate). At an integer
//! order `α`, the Poisson-sampled mechanism's Rényi divergence `E_{μ0}[((1 − q) + q·μ1/μ0)^α]`
//! expands binomially into moment generating functions of `⟨X, v⟩` with positive weights, each
//! at most the continuous Gaussian's: the divergence the accountant computes (Mironov, Talwar
//! and Zhang 2019) bounds it. The other direction is the smaller for the continuous Gaussian by
//! the reflection `x ↦ v − x`, which swaps the two components; it swaps them for the discrete
//! Gaussian at integer shifts too. Fractional orders, and the PLD accountant's discretised
//! continuous loss, are not covered, and Veil does not use them for discrete noise.

use rand::{CryptoRng, Rng, RngCore};

use crate::DpError;

/// The largest `σ²` accepted.
pub const MAX_SIGMA2: u64 = 1 << 56;

/// `Bernoulli(n/d)`, `n ≤ d`, `d > 0`.
fn bernoulli<R: RngCore + CryptoRng>(n: u128, d: u128, rng: &mut R) -> bool {
    rng.random_range(0..d) < n
}

/// `Bernoulli(exp(−n/d))` for `n ≤ d` (Algorithm 1, first case).
fn bernoulli_exp_neg_at_most_one<R: RngCore + CryptoRng>(n: u128, d: u128, rng: &mut R) -> bool {
    let mut k: u128 = 1;
    loop {
        // `d · k` stays far below 2^128: `d ≤ 2^114` and `k` passes 40 with probability
        // below 1/40!.
        let Some(dk) = d.checked_mul(k) else {
            return k % 2 == 1;
        };
        if !bernoulli(n, dk, rng) {
            return k % 2 == 1;
        }
        k += 1;
    }
}

/// `Bernoulli(exp(−n/d))` for any `n`, `d > 0` (Algorithm 1).
pub(crate) fn bernoulli_exp_neg<R: RngCore + CryptoRng>(n: u128, d: u128, rng: &mut R) -> bool {
    let mut whole = n / d;
    while whole > 0 {
        if !bernoulli_exp_neg_at_most_one(1, 1, rng) {
            return false;
        }
        whole -= 1;
    }
    bernoulli_exp_neg_at_most_one(n % d, d, rng)
}

/// The discrete Laplace of scale `t ≥ 1`: mass at `x` proportional to `exp(−|x|/t)`
/// (Algorithm 2 with `s = 1`), with draws beyond `128 t` redrawn (see the module notes).
pub(crate) fn discrete_laplace<R: RngCore + CryptoRng>(t: u128, rng: &mut R) -> i128 {
    loop {
        let u = rng.random_range(0..t);
        if !bernoulli_exp_neg(u, t, rng) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp_neg_at_most_one(1, 1, rng) {
            v += 1;
        }
        if v >= 128 {
            continue;
        }
        let x = u + t * v;
        let negative = rng.random::<bool>();
        if negative && x == 0 {
            continue;
        }
        let x = x as i128;
        return if negative { -x } else { x };
    }
}

/// Integer square root, `⌊√n⌋`.
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// The discrete Gaussian `N_Z(0, σ²)` for an integer `σ²`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscreteGaussian {
    sigma2: u128,
    /// The discrete Laplace scale, `⌊σ⌋ + 1`.
    t: u128,
}

impl DiscreteGaussian {
    /// The distribution of variance parameter `sigma2` (an integer in `[1, 2^56]`).
    pub fn new(sigma2: u64) -> Result<DiscreteGaussian, DpError> {
        if !(1..=MAX_SIGMA2).contains(&sigma2) {
            return Err(DpError::invalid(
                "sigma2",
                sigma2 as f64,
                "the discrete Gaussian's sigma^2 must be an integer in [1, 2^56]",
            ));
        }
        let sigma2 = u128::from(sigma2);
        Ok(DiscreteGaussian {
            sigma2,
            t: isqrt(sigma2) + 1,
        })
    }

    /// `σ²`.
    pub fn sigma2(&self) -> u64 {
        self.sigma2 as u64
    }

    /// One draw (Algorithm 3).
    pub fn sample<R: RngCore + CryptoRng>(&self, rng: &mut R) -> i64 {
        let (s2, t) = (self.sigma2, self.t);
        // `exp(−(|Y| − σ²/t)² / (2σ²)) = exp(−(|Y|·t − σ²)² / (2σ²t²))`; `|Y| < 128 t`, so
        // `|Y|·t < 2^63` and its square and `2σ²t²` fit `u128`.
        let den = 2 * s2 * t * t;
        loop {
            let y = discrete_laplace(t, rng);
            let a = y.unsigned_abs() * t;
            let diff = a.abs_diff(s2);
            if bernoulli_exp_neg(diff * diff, den, rng) {
                return y as i64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    /// Pearson's statistic of `counts` against the probabilities `p` (summing to at most 1;
    /// the rest is a last bin of what no entry of `p` covers).
    fn chi_square(counts: &[u64], rest: u64, p: &[f64]) -> (f64, usize) {
        let n = (counts.iter().sum::<u64>() + rest) as f64;
        let mut stat = 0.0;
        for (&c, &pi) in counts.iter().zip(p) {
            let e = n * pi;
            stat += (c as f64 - e).powi(2) / e;
        }
        let p_rest = 1.0 - p.iter().sum::<f64>();
        if p_rest * n > 5.0 {
            stat += (rest as f64 - n * p_rest).powi(2) / (n * p_rest);
        }
        (stat, p.len())
    }

    /// The 99.99% quantile of chi-square with `k` degrees of freedom, by the Wilson-Hilferty
    /// approximation (close for `k ≥ 5`).
    fn chi_square_bound(k: usize) -> f64 {
        let k = k as f64;
        let z = 3.719; // the standard normal's 99.99% quantile
        k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
    }

    #[test]
    fn bernoulli_exp_matches_its_probability() {
        let mut r = rng(1);
        for (n, d) in [
            (0u128, 1u128),
            (1, 3),
            (1, 1),
            (5, 2),
            (7, 3),
            (1, 1 << 100),
        ] {
            let p = (-(n as f64) / d as f64).exp();
            let trials = 200_000;
            let hits = (0..trials)
                .filter(|_| bernoulli_exp_neg(n, d, &mut r))
                .count() as f64;
            let sd = (p * (1.0 - p) / trials as f64).sqrt().max(1e-9);
            assert!(
                (hits / trials as f64 - p).abs() <= 5.0 * sd,
                "exp(-{n}/{d}) = {p}: {hits} of {trials}"
            );
        }
    }

    #[test]
    fn discrete_laplace_fits_its_distribution() {
        let mut r = rng(2);
        let t = 3u128;
        let n = 300_000;
        let width = 30i128;
        let mut counts = vec![0u64; (2 * width + 1) as usize];
        let mut rest = 0;
        for _ in 0..n {
            let x = discrete_laplace(t, &mut r);
            if x.abs() <= width {
                counts[(x + width) as usize] += 1;
            } else {
                rest += 1;
            }
        }
        // Mass `(1 − e^{−1/t}) / (1 + e^{−1/t}) · e^{−|x|/t}`.
        let e = (-1.0 / t as f64).exp();
        let p: Vec<f64> = (-width..=width)
            .map(|x| (1.0 - e) / (1.0 + e) * e.powi(x.abs() as i32))
            .collect();
        let (stat, k) = chi_square(&counts, rest, &p);
        assert!(
            stat < chi_square_bound(k),
            "chi-square {stat} over {k} bins"
        );
    }

    /// The exact mass of `N_Z(0, σ²)` on `[-w, w]`, normalised over a range wide enough that
    /// the rest is below 1e-30.
    fn masses(sigma2: f64, w: i64) -> Vec<f64> {
        let f = |x: i64| (-(x as f64).powi(2) / (2.0 * sigma2)).exp();
        let far = (sigma2.sqrt() * 14.0) as i64 + 2;
        let z: f64 = (-far..=far).map(f).sum();
        (-w..=w).map(|x| f(x) / z).collect()
    }

    #[test]
    fn discrete_gaussian_fits_its_distribution() {
        for (sigma2, seed) in [(1u64, 3u64), (4, 4), (50, 5)] {
            let g = DiscreteGaussian::new(sigma2).unwrap();
            let mut r = rng(seed);
            let n = 200_000;
            let w = ((sigma2 as f64).sqrt() * 4.0) as i64;
            let mut counts = vec![0u64; (2 * w + 1) as usize];
            let mut rest = 0;
            for _ in 0..n {
                let x = g.sample(&mut r);
                if x.abs() <= w {
                    counts[(x + w) as usize] += 1;
                } else {
                    rest += 1;
                }
            }
            let (stat, k) = chi_square(&counts, rest, &masses(sigma2 as f64, w));
            assert!(
                stat < chi_square_bound(k.max(5)),
                "sigma^2 {sigma2}: chi-square {stat} over {k} bins"
            );
        }
    }

    #[test]
    fn discrete_gaussian_moments() {
        // Large variances, as DP-SGD's grid makes them: mean 0, variance σ² (the discrete
        // Gaussian's variance is within `σ² · 10^-9` of it once σ ≥ 3), symmetric, and a
        // kurtosis of 3.
        for (sigma2, seed) in [(10_000u64, 6u64), (4_000_000_000, 7), (1 << 56, 8)] {
            let g = DiscreteGaussian::new(sigma2).unwrap();
            let mut r = rng(seed);
            let n = 100_000;
            let xs: Vec<f64> = (0..n).map(|_| g.sample(&mut r) as f64).collect();
            let s2 = sigma2 as f64;
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| x * x).sum::<f64>() / n as f64;
            let m3 = xs.iter().map(|x| x.powi(3)).sum::<f64>() / n as f64 / s2.powf(1.5);
            let m4 = xs.iter().map(|x| x.powi(4)).sum::<f64>() / n as f64 / (s2 * s2);
            // Standard errors: σ/√n, σ²·√(2/n), √(15/n), √(96/n).
            let n = n as f64;
            assert!(mean.abs() < 5.0 * (s2 / n).sqrt(), "{sigma2}: mean {mean}");
            assert!(
                (var / s2 - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
                "{sigma2}: variance {var}"
            );
            assert!(m3.abs() < 5.0 * (15.0 / n).sqrt(), "{sigma2}: skew {m3}");
            assert!(
                (m4 - 3.0).abs() < 5.0 * (96.0 / n).sqrt(),
                "{sigma2}: kurtosis {m4}"
            );
        }
    }

    #[test]
    fn sigma2_out_of_range_is_refused() {
        assert!(DiscreteGaussian::new(0).is_err());
        assert!(DiscreteGaussian::new(MAX_SIGMA2 + 1).is_err());
        assert_eq!(DiscreteGaussian::new(17).unwrap().t, 5);
        assert_eq!(isqrt(1 << 56), 1 << 28);
        assert_eq!(isqrt((1 << 56) - 1), (1 << 28) - 1);
    }
}
