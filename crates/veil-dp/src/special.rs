//! Special functions in double precision, written for accounting in log space.
//!
//! - `erfc` and `log_erfc`: below `x = 26`, `libm`'s `erfc` (fdlibm's rational
//!   approximations, within one ulp); beyond, where `erfc` underflows, `log_erfc` is formed in
//!   log space from Laplace's continued fraction
//!   `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`
//!   (A&S 7.1.14), evaluated by the modified Lentz algorithm (Press et al., "Numerical
//!   Recipes", 3rd ed., Section 5.2); this plays the role of the asymptotic expansion that
//!   TF Privacy's `_log_erfc` falls back to.
//! - The standard normal CDF and its log, from `erfc`.
//! - `ln_gamma`: `ln|Gamma(x)|` by Stirling's series (A&S 6.1.40) after shifting the argument
//!   to `>= 15`, and the reflection formula (A&S 6.1.17) below `1/2`; this is the log of the
//!   absolute value, as `scipy.special.gammaln`, which the generalised binomial coefficients
//!   of fractional RDP orders need.
//! - Log-space helpers (`log_add`, `log_sub`, `log_comb`).

use std::f64::consts::{LN_2, PI};

/// `ln(sqrt(pi))`.
const LN_SQRT_PI: f64 = 0.572_364_942_924_700_1;
/// `ln(2 pi) / 2`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `-x^2` with the square split so that `x^2`'s rounding does not reach the result: `xh`
/// keeps the top 26 bits of `x`, so `xh * xh` is exact.
fn minus_square(x: f64) -> f64 {
    let xh = f64::from_bits(x.to_bits() & 0xffff_ffff_f800_0000);
    let xl = x - xh;
    -xh * xh - xl * (x + xh)
}

/// `1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` for `x >= 1` (modified Lentz).
fn erfc_fraction(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for n in 1..2000 {
        let a = 0.5 * n as f64;
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        d = 1.0 / d;
        let step = c * d;
        f *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    1.0 / f
}

/// Below this, `erfc` is a normal number and `ln(erfc(x))` loses nothing.
const TAIL_LIMIT: f64 = 26.0;

/// The complementary error function `erfc(x) = 1 - erf(x)`, to within one ulp (`libm`'s
/// port of fdlibm's rational approximations).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// `ln(erfc(x))`, accurate in relative terms also where `erfc(x)` underflows.
pub fn log_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < TAIL_LIMIT {
        return libm::erfc(x).ln();
    }
    if x == f64::INFINITY {
        return f64::NEG_INFINITY;
    }
    minus_square(x) - LN_SQRT_PI + erfc_fraction(x).ln()
}

/// The standard normal CDF `Phi(x)`.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// `ln(Phi(x))`, accurate far into the lower tail.
pub fn norm_log_cdf(x: f64) -> f64 {
    log_erfc(-x / std::f64::consts::SQRT_2) - LN_2
}

/// The standard normal quantile `Phi^{-1}(p)` for `p` in `(0, 1)`, by Newton steps on
/// `ln Phi` (used only to place truncation points, so a few ulps do not matter).
pub fn norm_quantile_from_log(log_p: f64) -> f64 {
    // Start from the tail asymptote (or 0 near the median), then Newton on ln Phi(x) = log_p.
    let mut x = if log_p < -1.0 {
        -(-2.0 * log_p).sqrt()
    } else {
        0.0
    };
    for _ in 0..100 {
        let lc = norm_log_cdf(x);
        // d/dx ln Phi = phi(x)/Phi(x) = exp(ln phi - ln Phi)
        let ln_pdf = -0.5 * x * x - HALF_LN_2PI;
        let slope = (ln_pdf - lc).exp();
        let step = (lc - log_p) / slope;
        x -= step;
        if step.abs() <= 1e-14 * x.abs().max(1.0) {
            break;
        }
    }
    x
}

/// `ln|Gamma(x)|`; `+inf` at the poles `0, -1, -2, ...`.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 && x == x.floor() {
        return f64::INFINITY;
    }
    if x == 1.0 || x == 2.0 {
        return 0.0;
    }
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x).
        let r = x - x.round();
        let s = (PI * r).sin().abs();
        return (PI / s).ln() - ln_gamma(1.0 - x);
    }
    let mut y = x;
    let mut prod = 1.0;
    while y < 15.0 {
        prod *= y;
        y += 1.0;
    }
    // Stirling's series with Bernoulli terms B_2k / (2k (2k-1) y^(2k-1)), k = 1..8.
    const C: [f64; 8] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let inv = 1.0 / y;
    let inv2 = inv * inv;
    let mut series = 0.0;
    let mut p = inv;
    for c in C {
        series += c * p;
        p *= inv2;
    }
    (y - 0.5) * y.ln() - y + HALF_LN_2PI + series - prod.ln()
}

/// `ln|C(n, k)|` for real `n` and `k` (generalised binomial coefficient).
pub fn log_comb(n: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// `ln(e^a + e^b)`.
pub fn log_add(a: f64, b: f64) -> f64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    if hi == f64::INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `ln(e^a - e^b)` for `a >= b` (`-inf` when equal).
pub fn log_sub(a: f64, b: f64) -> f64 {
    if b == f64::NEG_INFINITY {
        return a;
    }
    if a <= b {
        return f64::NEG_INFINITY;
    }
    a + (-(b - a).exp()).ln_1p()
}

/// `ln(a * e^b + c)` where the result's argument is positive (`a`, `c` may be negative).
/// Returns NaN when `a e^b + c <= 0`.
pub fn log_a_times_exp_b_plus_c(a: f64, b: f64, c: f64) -> f64 {
    if a == 0.0 {
        return c.ln();
    }
    if a < 0.0 {
        if c <= 0.0 {
            return f64::NAN;
        }
        let (lc, lab) = (c.ln(), (-a).ln() + b);
        return if lab < lc { log_sub(lc, lab) } else { f64::NAN };
    }
    let d = b + a.ln();
    if c == 0.0 {
        d
    } else if c < 0.0 {
        let lc = (-c).ln();
        if lc < d {
            log_sub(d, lc)
        } else {
            f64::NAN
        }
    } else {
        log_add(d, c.ln())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn erfc_matches_reference_values() {
        // Reference values: mpmath at 40 digits.
        let cases = [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (1.5, 0.033_894_853_524_689_27),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_034_8e-12),
            (10.0, 2.088_487_583_762_545e-45),
            (-1.0, 1.842_700_792_949_715),
        ];
        for (x, want) in cases {
            assert!(
                rel(erfc(x), want) < 3e-15,
                "erfc({x}) = {} vs {want}",
                erfc(x)
            );
        }
    }

    #[test]
    fn log_erfc_far_tail() {
        // ln erfc(30) from mpmath: -903.974117110643878...
        let v = log_erfc(30.0);
        assert!(rel(v, -903.974_117_110_643_9) < 1e-15, "{v}");
        assert!(rel(log_erfc(2.0), 0.004_677_734_981_047_266f64.ln()) < 1e-14);
        assert_eq!(log_erfc(f64::INFINITY), f64::NEG_INFINITY);
        assert!((log_erfc(-40.0) - LN_2).abs() < 1e-15);
    }

    #[test]
    fn ln_gamma_values() {
        assert!(ln_gamma(1.0).abs() < 1e-15);
        assert!(ln_gamma(2.0).abs() < 1e-15);
        assert!(rel(ln_gamma(0.5), PI.sqrt().ln()) < 1e-15);
        // ln 10! = 15.104412573075516
        assert!(rel(ln_gamma(11.0), 15.104_412_573_075_516) < 1e-15);
        assert!((ln_gamma(3.0) - 2f64.ln()).abs() < 1e-14);
        assert!((ln_gamma(1.5) - (0.5 * PI.sqrt()).ln()).abs() < 1e-14);
        // ln|Gamma(-2.5)| = ln(8 sqrt(pi) / 15) = -0.0562437164976740...
        assert!((ln_gamma(-2.5) - (8.0 * PI.sqrt() / 15.0).ln()).abs() < 1e-14);
        // ln Gamma(1025) = ln 1024!
        let mut s = 0.0;
        for k in 1..=1024 {
            s += (k as f64).ln();
        }
        assert!(rel(ln_gamma(1025.0), s) < 1e-14);
        assert_eq!(ln_gamma(-3.0), f64::INFINITY);
    }

    #[test]
    fn normal_quantile_inverts_log_cdf() {
        for lp in [-0.1, -1.0, -10.0, -50.0, -200.0] {
            let x = norm_quantile_from_log(lp);
            assert!(
                (norm_log_cdf(x) - lp).abs() < 1e-12 * lp.abs().max(1.0),
                "{lp}"
            );
        }
    }

    #[test]
    fn log_helpers() {
        assert!((log_add(1.0f64.ln(), 2.0f64.ln()) - 3.0f64.ln()).abs() < 1e-15);
        assert!((log_sub(3.0f64.ln(), 2.0f64.ln())).abs() < 1e-15);
        assert!((log_a_times_exp_b_plus_c(2.0, 0.0, -1.0)).abs() < 1e-15);
        assert!(log_a_times_exp_b_plus_c(-2.0, 0.0, 1.0).is_nan());
    }
}
