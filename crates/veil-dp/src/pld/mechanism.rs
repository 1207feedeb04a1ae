//! Privacy losses of the (Poisson-subsampled) Gaussian and Laplace mechanisms, and their
//! pessimistic discretisation.
//!
//! Following `dp_accounting`'s `privacy_loss_mechanism.AdditiveNoisePrivacyLoss` (and its
//! supplementary note "Privacy Loss Distributions"): with noise density `mu`, sensitivity 1
//! and sampling probability `q`,
//! - REMOVE: `mu_upper(x) = q mu(x + 1) + (1 - q) mu(x)`, `mu_lower(x) = mu(x)`;
//! - ADD: `mu_upper(x) = mu(x)`, `mu_lower(x) = q mu(x - 1) + (1 - q) mu(x)`;
//!
//! the privacy loss `ln(mu_upper(x)/mu_lower(x))` is non-increasing in `x`, so the
//! hockey-stick divergence is `delta(eps) = mu_upper_cdf(x) - e^eps mu_lower_cdf(x)` at
//! `x = inverse_privacy_loss(eps)`. The add-or-remove relation takes the worse of the two
//! directions. Two pessimistic discretisations are offered:
//! - connect-the-dots (Doroshenko, Ghazi, Kamath, Kumar and Manurangsi 2022, "Connect the
//!   Dots: Tighter Discrete Approximations of Privacy Loss Distributions", Algorithm 1, in the
//!   fixed-gap form of `create_pmf_pessimistic_connect_dots_fixed_gap`), `dp_accounting`'s
//!   default;
//! - privacy buckets (Meiser and Mohammadi 2018, "Tight on Budget?"; Koskela et al. 2020):
//!   the mass of every interval of `x` whose losses lie in `((k-1) d, k d]` is put at `k d`,
//!   the lower tail (beyond `e^-50` of the noise mass) at `+inf`.

use crate::special::norm_quantile_from_log;
use crate::special::{log_a_times_exp_b_plus_c, log_add, norm_cdf, norm_log_cdf};

use super::pmf::{PldPmf, MAX_PMF_POINTS};
use crate::DpError;

/// The noise distribution (sensitivity normalised to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Noise {
    /// `N(0, sigma^2)`.
    Gaussian { sigma: f64 },
    /// `Lap(b)`.
    Laplace { b: f64 },
}

/// Which direction of the add-or-remove relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adjacency {
    Add,
    Remove,
}

/// `ln` of the probability mass discarded from each Gaussian tail before discretising
/// (`dp_accounting`'s `log_mass_truncation_bound`).
const LOG_MASS_TRUNCATION_BOUND: f64 = -50.0;

/// A monotone additive-noise privacy loss.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdditiveNoiseLoss {
    pub noise: Noise,
    pub q: f64,
    pub adjacency: Adjacency,
}

impl AdditiveNoiseLoss {
    fn noise_cdf(&self, x: f64) -> f64 {
        match self.noise {
            Noise::Gaussian { sigma } => norm_cdf(x / sigma),
            Noise::Laplace { b } => {
                if x < 0.0 {
                    0.5 * (x / b).exp()
                } else {
                    1.0 - 0.5 * (-x / b).exp()
                }
            }
        }
    }

    fn noise_log_cdf(&self, x: f64) -> f64 {
        match self.noise {
            Noise::Gaussian { sigma } => norm_log_cdf(x / sigma),
            Noise::Laplace { b } => {
                if x < 0.0 {
                    0.5f64.ln() + x / b
                } else {
                    (-0.5 * (-x / b).exp()).ln_1p()
                }
            }
        }
    }

    /// Loss without subsampling, REMOVE direction.
    fn loss_plain_remove(&self, x: f64) -> f64 {
        match self.noise {
            Noise::Gaussian { sigma } => (-0.5 - x) / (sigma * sigma),
            Noise::Laplace { b } => (x.abs() - (x + 1.0).abs()) / b,
        }
    }

    /// Largest `x` whose plain REMOVE loss is at least `loss`.
    fn inverse_plain_remove(&self, loss: f64) -> f64 {
        match self.noise {
            Noise::Gaussian { sigma } => -0.5 - loss * sigma * sigma,
            Noise::Laplace { b } => {
                let t = loss * b;
                if t > 1.0 {
                    f64::NEG_INFINITY
                } else if t <= -1.0 {
                    f64::INFINITY
                } else {
                    0.5 * (-1.0 - t)
                }
            }
        }
    }

    fn loss_remove(&self, x: f64) -> f64 {
        let l = self.loss_plain_remove(x);
        if self.q == 1.0 {
            l
        } else {
            log_a_times_exp_b_plus_c(self.q, l, 1.0 - self.q)
        }
    }

    /// The privacy loss at `x`.
    pub fn privacy_loss(&self, x: f64) -> f64 {
        match self.adjacency {
            Adjacency::Remove => self.loss_remove(x),
            Adjacency::Add => -self.loss_remove(-x),
        }
    }

    /// The largest `x` whose privacy loss is at least `loss`.
    pub fn inverse_privacy_loss(&self, loss: f64) -> f64 {
        let q = self.q;
        match self.adjacency {
            Adjacency::Remove => {
                if q == 1.0 {
                    return self.inverse_plain_remove(loss);
                }
                let floor = (-q).ln_1p();
                if loss <= floor {
                    return self.inverse_plain_remove(f64::NEG_INFINITY);
                }
                let plain = log_a_times_exp_b_plus_c(1.0 / q, loss, 1.0 - 1.0 / q);
                self.inverse_plain_remove(if plain.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    plain
                })
            }
            Adjacency::Add => {
                // Add loss at x is -remove_loss(-x); the plain add inverse is 1 + plain remove
                // inverse.
                if q == 1.0 {
                    return 1.0 + self.inverse_plain_remove(loss);
                }
                let ceiling = -(-q).ln_1p();
                if loss >= ceiling {
                    return 1.0 + self.inverse_plain_remove(f64::INFINITY);
                }
                let plain = -log_a_times_exp_b_plus_c(1.0 / q, -loss, 1.0 - 1.0 / q);
                1.0 + self.inverse_plain_remove(if plain.is_nan() { f64::INFINITY } else { plain })
            }
        }
    }

    fn mu_upper_cdf(&self, x: f64) -> f64 {
        match self.adjacency {
            Adjacency::Add => self.noise_cdf(x),
            Adjacency::Remove => {
                if self.q == 1.0 {
                    self.noise_cdf(x + 1.0)
                } else {
                    (1.0 - self.q) * self.noise_cdf(x) + self.q * self.noise_cdf(x + 1.0)
                }
            }
        }
    }

    fn mu_lower_log_cdf(&self, x: f64) -> f64 {
        match self.adjacency {
            Adjacency::Remove => self.noise_log_cdf(x),
            Adjacency::Add => {
                if self.q == 1.0 {
                    self.noise_log_cdf(x - 1.0)
                } else {
                    log_add(
                        (-self.q).ln_1p() + self.noise_log_cdf(x),
                        self.q.ln() + self.noise_log_cdf(x - 1.0),
                    )
                }
            }
        }
    }

    /// The exact hockey-stick divergence `delta(eps)` of the continuous mechanism.
    pub fn delta_for_epsilon(&self, eps: f64) -> f64 {
        let q = self.q;
        if q < 1.0 {
            match self.adjacency {
                Adjacency::Add if eps >= -(-q).ln_1p() => return 0.0,
                Adjacency::Remove if eps <= (-q).ln_1p() => return (-eps.exp_m1()).clamp(0.0, 1.0),
                _ => {}
            }
        }
        let x = self.inverse_privacy_loss(eps);
        let upper = self.mu_upper_cdf(x);
        let lower = (eps + self.mu_lower_log_cdf(x)).exp();
        let d = upper - lower;
        if d.is_nan() {
            1.0
        } else {
            d.clamp(0.0, 1.0)
        }
    }

    /// `(lower_x, upper_x)`: outside this range the discretisation treats the tails apart.
    fn tail_bounds(&self) -> (f64, f64) {
        match self.noise {
            Noise::Gaussian { sigma } => {
                let lower = sigma * norm_quantile_from_log(0.5f64.ln() + LOG_MASS_TRUNCATION_BOUND);
                let upper = -lower;
                match self.adjacency {
                    Adjacency::Add => (lower, upper + 1.0),
                    Adjacency::Remove => (lower - 1.0, upper),
                }
            }
            Noise::Laplace { .. } => match self.adjacency {
                Adjacency::Add => (0.0, 1.0),
                Adjacency::Remove => (-1.0, 0.0),
            },
        }
    }

    /// `(eps_lower, eps_upper)`: the loss range the connect-the-dots grid must span.
    fn connect_dots_bounds(&self) -> (f64, f64) {
        match self.noise {
            Noise::Gaussian { .. } => {
                let (lx, ux) = self.tail_bounds();
                (self.privacy_loss(ux), self.privacy_loss(lx))
            }
            Noise::Laplace { b } => {
                let m = 1.0 / b;
                let q = self.q;
                if q == 1.0 {
                    return (-m, m);
                }
                let up = log_a_times_exp_b_plus_c(q, m, 1.0 - q);
                let down = log_a_times_exp_b_plus_c(q, -m, 1.0 - q);
                match self.adjacency {
                    Adjacency::Add => (-up, -down),
                    Adjacency::Remove => (down, up),
                }
            }
        }
    }

    /// The connect-the-dots PMF on the grid of step `d` (pessimistic).
    pub fn connect_dots_pmf(&self, d: f64) -> Result<PldPmf, DpError> {
        let (eps_lower, eps_upper) = self.connect_dots_bounds();
        let k_upper = (eps_upper / d).ceil();
        let k_lower = (eps_lower / d).floor();
        let points = k_upper - k_lower + 1.0;
        if !(points.is_finite() && points <= MAX_PMF_POINTS as f64) {
            return Err(DpError::PldTooLarge {
                needed: if points.is_finite() {
                    points as u64
                } else {
                    u64::MAX
                },
                limit: MAX_PMF_POINTS,
            });
        }
        let (k_lower, k_upper) = (k_lower as i64, k_upper as i64);
        let mut deltas: Vec<f64> = (k_lower..=k_upper)
            .map(|k| self.delta_for_epsilon(k as f64 * d))
            .collect();
        if deltas.len() == 1 {
            let inf = deltas[0];
            return Ok(PldPmf::from_parts(d, k_lower, vec![1.0 - inf], inf));
        }
        // Enforce monotonicity against round-off (np.minimum.accumulate).
        for i in 1..deltas.len() {
            deltas[i] = deltas[i].min(deltas[i - 1]);
        }
        let n = deltas.len();
        let em1 = d.exp_m1();
        let e = d.exp();
        let mut probs = vec![0.0; n];
        probs[0] = 1.0 - deltas[0] + (deltas[1] - deltas[0]) / em1;
        for i in 1..n - 1 {
            let diff_next = deltas[i + 1] - deltas[i];
            let diff_prev = deltas[i] - deltas[i - 1];
            probs[i] = (diff_next - diff_prev * e) / em1;
        }
        probs[n - 1] = (deltas[n - 1] - deltas[n - 2]) / (-d).exp_m1();
        for p in probs.iter_mut() {
            *p = p.max(0.0);
        }
        Ok(PldPmf::from_parts(d, k_lower, probs, deltas[n - 1]))
    }

    /// The privacy-buckets PMF on the grid of step `d` (losses rounded up).
    pub fn privacy_buckets_pmf(&self, d: f64) -> Result<PldPmf, DpError> {
        let (lower_x, upper_x) = self.tail_bounds();
        let top = self.privacy_loss(lower_x);
        let bottom = self.privacy_loss(upper_x);
        let k_top = (top / d).floor();
        let k_bottom = (bottom / d).ceil();
        let points = k_top - k_bottom + 3.0;
        if !(points.is_finite() && points <= MAX_PMF_POINTS as f64) {
            return Err(DpError::PldTooLarge {
                needed: if points.is_finite() {
                    points as u64
                } else {
                    u64::MAX
                },
                limit: MAX_PMF_POINTS,
            });
        }
        let lowest = k_bottom as i64 - 1;
        let mut probs = vec![0.0; points as usize + 1];
        let mut put = |k: i64, mass: f64| {
            let idx = (k - lowest) as usize;
            probs[idx] += mass;
        };
        // Tails: below lower_x (Gaussian) goes to +inf, Laplace's flat tails keep their loss;
        // above upper_x the loss is at most loss(upper_x), rounded up.
        let mut infinity_mass = 0.0;
        let below = self.mu_upper_cdf(lower_x);
        match self.noise {
            Noise::Gaussian { .. } => infinity_mass += below,
            Noise::Laplace { .. } => put((top / d).ceil() as i64, below),
        }
        put(
            (bottom / d).ceil() as i64,
            (1.0 - self.mu_upper_cdf(upper_x)).max(0.0),
        );
        // Intervals [x_{j}, x_{j+1}] whose losses lie in [k d, (k+1) d] go to (k+1) d.
        let mut k = k_top as i64;
        let mut x = lower_x;
        let mut cdf_x = below;
        while x < upper_x {
            let next = if k as f64 * d <= bottom {
                upper_x
            } else {
                self.inverse_privacy_loss(k as f64 * d).min(upper_x)
            };
            let cdf_next = self.mu_upper_cdf(next);
            put(k + 1, (cdf_next - cdf_x).max(0.0));
            x = next;
            cdf_x = cdf_next;
            k -= 1;
            if k < lowest {
                break;
            }
        }
        Ok(PldPmf::from_parts(d, lowest, probs, infinity_mass))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(sigma: f64, q: f64, adjacency: Adjacency) -> AdditiveNoiseLoss {
        AdditiveNoiseLoss {
            noise: Noise::Gaussian { sigma },
            q,
            adjacency,
        }
    }

    #[test]
    fn inverse_inverts_loss() {
        for adj in [Adjacency::Add, Adjacency::Remove] {
            for m in [gaussian(1.1, 0.01, adj), gaussian(0.8, 1.0, adj)] {
                for x in [-3.0, -0.7, -0.2, 0.4, 2.5] {
                    let l = m.privacy_loss(x);
                    let back = m.inverse_privacy_loss(l);
                    assert!((back - x).abs() < 1e-7, "{m:?} x={x} l={l} back={back}");
                }
            }
            // Laplace: the loss is strictly monotone only between the two shifted centres.
            let m = AdditiveNoiseLoss {
                noise: Noise::Laplace { b: 2.0 },
                q: 0.3,
                adjacency: adj,
            };
            let xs: &[f64] = match adj {
                Adjacency::Remove => &[-0.9, -0.5, -0.1],
                Adjacency::Add => &[0.1, 0.5, 0.9],
            };
            for &x in xs {
                {
                    let l = m.privacy_loss(x);
                    let back = m.inverse_privacy_loss(l);
                    assert!((back - x).abs() < 1e-7, "{m:?} x={x} l={l} back={back}");
                }
            }
        }
    }

    #[test]
    fn gaussian_delta_matches_closed_form() {
        // Balle and Wang 2018, Theorem 8, sigma = 1: delta(1) = 0.126936737506...
        let m = gaussian(1.0, 1.0, Adjacency::Remove);
        assert!((m.delta_for_epsilon(1.0) - 0.126_936_737_506_643_9).abs() < 1e-14);
    }
}
