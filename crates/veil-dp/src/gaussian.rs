//! The Gaussian mechanism, exactly: its (epsilon, delta) curve and the analytic calibration.
//!
//! Balle and Wang 2018, "Improving the Gaussian Mechanism for Differential Privacy:
//! Analytical Calibration and Optimal Denoising", Theorem 8: the Gaussian mechanism with
//! noise multiplier `s` (standard deviation over L2 sensitivity) is (eps, delta)-DP iff
//! `delta >= Phi(1/(2s) - eps s) - e^eps Phi(-1/(2s) - eps s)`. The analytic Gaussian
//! mechanism (their Algorithm 1) is the smallest `s` meeting a target; here it is found by
//! bisection on this exact formula (with the second term evaluated in log space), which
//! gives the same number. The same curve is the exact delta of `k` composed Gaussians with
//! noise `s sqrt(k)` each, or of Gaussian differential privacy with `mu = 1/s` (Dong, Roth
//! and Su 2019, "Gaussian Differential Privacy", Corollary 2.13).

use crate::special::{norm_cdf, norm_log_cdf};
use crate::{Delta, DpError, Epsilon, NoiseMultiplier};

/// `delta(eps)` of the Gaussian mechanism with noise multiplier `noise` (exact).
pub fn gaussian_delta(noise: NoiseMultiplier, epsilon: Epsilon) -> f64 {
    delta_raw(noise.get(), epsilon.get())
}

fn delta_raw(s: f64, eps: f64) -> f64 {
    let a = 0.5 / s;
    let b = eps * s;
    let first = norm_cdf(a - b);
    let second = (eps + norm_log_cdf(-a - b)).exp();
    (first - second).clamp(0.0, 1.0)
}

/// The smallest epsilon with `gaussian_delta(noise, epsilon) <= delta` (exact, by bisection
/// to a relative precision of `1e-12`).
pub fn gaussian_epsilon(noise: NoiseMultiplier, delta: Delta) -> f64 {
    let s = noise.get();
    let d = delta.get();
    if delta_raw(s, 0.0) <= d {
        return 0.0;
    }
    let mut hi = 1.0;
    while delta_raw(s, hi) > d {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    let mut lo = 0.0;
    while hi - lo > 1e-12 * hi {
        let mid = 0.5 * (lo + hi);
        if delta_raw(s, mid) > d {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The analytic Gaussian mechanism (Balle and Wang 2018, Algorithm 1): the smallest noise
/// standard deviation that makes a query of L2 sensitivity `sensitivity` (finite, `> 0`)
/// (epsilon, delta)-DP. Relative precision `1e-12`.
pub fn analytic_gaussian_sigma(
    epsilon: Epsilon,
    delta: Delta,
    sensitivity: f64,
) -> Result<f64, DpError> {
    if !(sensitivity.is_finite() && sensitivity > 0.0) {
        return Err(DpError::invalid(
            "sensitivity",
            sensitivity,
            "must be finite and > 0",
        ));
    }
    Ok(analytic_gaussian_noise_multiplier(epsilon, delta)?.get() * sensitivity)
}

/// [`analytic_gaussian_sigma`] for sensitivity 1: the smallest noise multiplier.
pub fn analytic_gaussian_noise_multiplier(
    epsilon: Epsilon,
    delta: Delta,
) -> Result<NoiseMultiplier, DpError> {
    let (eps, d) = (epsilon.get(), delta.get());
    // delta_raw is decreasing in s; bracket, then bisect (geometric midpoints).
    let mut hi = 1.0;
    while delta_raw(hi, eps) > d {
        hi *= 2.0;
        if hi > 1e15 {
            return Err(DpError::NoSolution(
                "no finite noise multiplier reaches this (epsilon, delta)".into(),
            ));
        }
    }
    let mut lo = hi / 2.0;
    while delta_raw(lo, eps) <= d {
        lo /= 2.0;
        if lo < 1e-300 {
            return NoiseMultiplier::new(f64::MIN_POSITIVE);
        }
    }
    while hi - lo > 1e-12 * hi {
        let mid = (lo * hi).sqrt();
        if delta_raw(mid, eps) > d {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    NoiseMultiplier::new(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_inverts_delta() {
        let s = NoiseMultiplier::new(2.0).unwrap();
        let d = Delta::new(1e-6).unwrap();
        let e = gaussian_epsilon(s, d);
        let back = gaussian_delta(s, Epsilon::new(e).unwrap());
        assert!((back / 1e-6 - 1.0).abs() < 1e-8, "{e} {back}");
    }

    #[test]
    fn bad_sensitivity() {
        let e = Epsilon::new(1.0).unwrap();
        let d = Delta::new(1e-5).unwrap();
        assert!(analytic_gaussian_sigma(e, d, 0.0).is_err());
        assert!(analytic_gaussian_sigma(e, d, f64::NAN).is_err());
        assert!(analytic_gaussian_sigma(e, d, -1.0).is_err());
    }
}
