//! Zero-concentrated differential privacy (zCDP) and its conversions.
//!
//! Bun and Steinke 2016, "Concentrated Differential Privacy: Simplifications, Extensions, and
//! Lower Bounds": rho-zCDP is RDP `alpha * rho` at every order (Definition 1.1); the Gaussian
//! mechanism with noise multiplier `sigma` is `1/(2 sigma^2)`-zCDP (Proposition 1.6);
//! eps-DP implies `eps^2/2`-zCDP (Proposition 1.4); rho-zCDP composes additively (Lemma 1.7)
//! and implies `(rho + 2 sqrt(rho ln(1/delta)), delta)`-DP (Proposition 1.3). The tighter
//! conversion minimises the improved RDP bound `alpha rho + ln(1 - 1/alpha) -
//! (ln delta + ln alpha)/(alpha - 1)` over `alpha > 1` (Canonne, Kamath and Steinke 2020,
//! Proposition 12).

use serde::{Deserialize, Serialize};

use crate::{Delta, DpError, Epsilon, NoiseMultiplier};

/// A zCDP parameter rho: finite and `>= 0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Rho(f64);

impl Rho {
    /// Validates `value` as rho: finite and `>= 0`.
    pub fn new(value: f64) -> Result<Self, DpError> {
        if value.is_finite() && value >= 0.0 {
            Ok(Rho(value))
        } else {
            Err(DpError::invalid("rho", value, "must be finite and >= 0"))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Composition: `rho_1 + rho_2` (Bun and Steinke 2016, Lemma 1.7).
    pub fn compose(self, other: Rho) -> Rho {
        Rho(self.0 + other.0)
    }

    /// `count`-fold composition: `count * rho`.
    pub fn times(self, count: u64) -> Rho {
        Rho(self.0 * count as f64)
    }
}

impl TryFrom<f64> for Rho {
    type Error = DpError;
    fn try_from(value: f64) -> Result<Self, DpError> {
        Rho::new(value)
    }
}

impl From<Rho> for f64 {
    fn from(value: Rho) -> f64 {
        value.0
    }
}

/// zCDP of the Gaussian mechanism: `rho = 1/(2 sigma^2)`.
pub fn gaussian_zcdp(noise: NoiseMultiplier) -> Rho {
    Rho(0.5 / (noise.get() * noise.get()))
}

/// zCDP implied by pure eps-DP: `rho = eps^2 / 2`.
pub fn pure_dp_to_zcdp(epsilon: Epsilon) -> Rho {
    Rho(0.5 * epsilon.get() * epsilon.get())
}

/// Bun and Steinke's conversion: `eps = rho + 2 sqrt(rho ln(1/delta))`.
pub fn zcdp_to_epsilon(rho: Rho, delta: Delta) -> f64 {
    let r = rho.get();
    r + 2.0 * (r * (1.0 / delta.get()).ln()).sqrt()
}

/// The tighter conversion through the improved RDP bound, minimised over `alpha > 1`
/// (never larger than [`zcdp_to_epsilon`]).
pub fn zcdp_to_epsilon_tight(rho: Rho, delta: Delta) -> f64 {
    let r = rho.get();
    if r == 0.0 {
        return 0.0;
    }
    let ln_d = delta.get().ln();
    let f = |alpha: f64| alpha * r + (-1.0 / alpha).ln_1p() - (ln_d + alpha.ln()) / (alpha - 1.0);
    // f is unimodal in u = ln(alpha - 1): golden-section search on u in [-20, 40].
    let g = |u: f64| f(1.0 + u.exp());
    let (mut a, mut b) = (-20.0f64, 40.0f64);
    let phi = 0.5 * (5f64.sqrt() - 1.0);
    let mut c = b - phi * (b - a);
    let mut d = a + phi * (b - a);
    let (mut fc, mut fd) = (g(c), g(d));
    for _ in 0..200 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - phi * (b - a);
            fc = g(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + phi * (b - a);
            fd = g(d);
        }
    }
    let best = fc.min(fd).max(0.0);
    best.min(zcdp_to_epsilon(rho, delta))
}
