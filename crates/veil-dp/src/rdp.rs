//! Renyi differential privacy (RDP) accounting.
//!
//! RDP of order `alpha` (Mironov 2017, "Renyi Differential Privacy", Definition 4) composes
//! by addition, so the accountant keeps one number per order and adds each event's curve.
//!
//! Curves:
//! - Gaussian: `alpha / (2 sigma^2)` (Mironov 2017, Proposition 7).
//! - Laplace: `1/(alpha-1) ln(alpha/(2alpha-1) e^{(alpha-1)/b} + (alpha-1)/(2alpha-1)
//!   e^{-alpha/b})` with `b` the scale over sensitivity (Mironov 2017, Proposition 6, Table II),
//!   evaluated in the cancellation-free form of `dp_accounting`'s `_laplace_rdp`.
//! - Poisson-subsampled Gaussian: `ln(A_alpha) / (alpha-1)` (Mironov, Talwar and Zhang 2019,
//!   "Renyi Differential Privacy of the Sampled Gaussian Mechanism"). Integer orders use the
//!   binomial expansion of Section 3.3 (`_compute_log_a_int` in TF Privacy and
//!   `dp_accounting`); fractional orders use the two-sided series of Section 3.3
//!   (`_compute_log_a_frac`), whose terms need `ln erfc`. Everything is summed in log space.
//!   `q = 1` is the plain Gaussian, `q = 0` is zero. A fractional order whose series does not
//!   converge in 1000 terms gets `+inf` (it is then never the optimal order), as in
//!   `dp_accounting`.
//! - Gaussian on a batch sampled without replacement (replace-one relation): the bound of
//!   Wang, Balle and Kasiviswanathan 2019, "Subsampled Renyi Differential Privacy and
//!   Analytical Moments Accountant", Theorem 27, exact for integer orders up to 256 and with
//!   the simpler per-term bound above; fractional orders interpolate the cumulant generating
//!   function linearly between the neighbouring integers (their Corollary 10).
//!
//! Conversions to (epsilon, delta)-DP:
//! - improved ([`epsilon_from_rdp`], [`delta_from_rdp`]):
//!   `eps = rdp + ln(1 - 1/alpha) - (ln delta + ln alpha)/(alpha - 1)` (Canonne, Kamath and
//!   Steinke 2020, "The Discrete Gaussian for Differential Privacy", Proposition 12; the same
//!   bound is in Balle et al. 2020, "Hypothesis Testing Interpretations and Renyi Differential
//!   Privacy", Theorem 21), together with the KL bound `delta <= sqrt(1 - e^{-rdp})`, as
//!   `dp_accounting`'s `compute_epsilon` / `compute_delta`;
//! - classic ([`epsilon_from_rdp_classic`], [`delta_from_rdp_classic`]):
//!   `eps = rdp - ln(delta)/(alpha - 1)` (Mironov 2017, Proposition 3).
//!
//! The default orders are `dp_accounting`'s `DEFAULT_RDP_ORDERS`: 1.1 to 10.9 in steps of
//! 0.1, the integers 11 to 63, then 128, 256, 512 and 1024.

use serde::Serialize;

use crate::special::{log_add, log_comb, log_erfc, log_sub};
use crate::{Delta, Epsilon};
use crate::{DpError, DpEvent, EpsilonReport, NeighboringRelation, NoiseMultiplier, SamplingRate};

/// `dp_accounting`'s default RDP orders (152 orders).
pub fn default_orders() -> Vec<f64> {
    let mut orders: Vec<f64> = (1..100).map(|x| 1.0 + x as f64 / 10.0).collect();
    orders.extend((11..64).map(|x| x as f64));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

/// The largest accepted RDP order (integer orders cost `O(order)` each).
pub const MAX_ORDER: f64 = 1e6;

fn validate_orders(orders: &[f64]) -> Result<(), DpError> {
    if orders.is_empty() {
        return Err(DpError::invalid(
            "orders",
            0.0,
            "at least one RDP order is needed",
        ));
    }
    for &a in orders {
        if !(a > 1.0 && a <= MAX_ORDER) {
            return Err(DpError::invalid(
                "order",
                a,
                "RDP orders must lie in (1, 1e6]",
            ));
        }
    }
    Ok(())
}

/// RDP of the Gaussian mechanism at `order`: `order / (2 sigma^2)`.
pub fn rdp_gaussian(noise: NoiseMultiplier, order: f64) -> f64 {
    order / (2.0 * noise.get() * noise.get())
}

/// RDP of the Laplace mechanism with scale over sensitivity `scale` at each order
/// (Mironov 2017, Proposition 6). Orders must lie in `(1, MAX_ORDER]`.
pub fn rdp_laplace(scale: NoiseMultiplier, orders: &[f64]) -> Result<Vec<f64>, DpError> {
    validate_orders(orders)?;
    let eps = 1.0 / scale.get();
    Ok(orders.iter().map(|&a| laplace_rdp_one(eps, a)).collect())
}

fn laplace_rdp_one(eps: f64, a: f64) -> f64 {
    let c = (eps * (1.0 - 2.0 * a)).exp_m1() / (2.0 * a - 1.0);
    if a < 1.1 {
        // ln(1 + c x)/x = c * sum_{k>=1} (-c x)^{k-1}/k, with 0 <= -c x <= 0.1.
        let v = -c * (a - 1.0);
        let mut sum = 0.0;
        let mut p = 1.0;
        for k in 1..100 {
            sum += p / k as f64;
            p *= v;
        }
        eps + c * sum
    } else {
        eps + ((a - 1.0) * c).ln_1p() / (a - 1.0)
    }
}

/// The Poisson-subsampled Gaussian's `ln A_alpha` (Mironov, Talwar, Zhang 2019, Section
/// 3.3) for one `(q, sigma)` with `0 < q < 1`, evaluated at many orders with the work they
/// share done once: `ln k` for the integer orders' binomial coefficients, and the
/// order-independent `ln erfc` factor of the fractional series' first half.
struct SampledGaussian {
    log_q: f64,
    log1mq: f64,
    two_sigma2: f64,
    sqrt2_sigma: f64,
    /// `sigma^2 ln(1/q - 1) + 1/2`, where the two halves of the fractional series meet.
    z0: f64,
    /// `ln k` for `k = 0, 1, ...` (entry 0 unused), grown on demand.
    ln: Vec<f64>,
    /// `ln(erfc((i - z0) / (sqrt 2 sigma)) / 2)` for `i = 0, 1, ...`, grown on demand.
    log_e0: Vec<f64>,
    /// Scratch for the integer series' terms.
    terms: Vec<f64>,
}

impl SampledGaussian {
    fn new(q: f64, sigma: f64) -> Self {
        SampledGaussian {
            log_q: q.ln(),
            log1mq: (-q).ln_1p(),
            two_sigma2: 2.0 * sigma * sigma,
            sqrt2_sigma: std::f64::consts::SQRT_2 * sigma,
            z0: sigma * sigma * (1.0 / q - 1.0).ln() + 0.5,
            ln: vec![f64::NEG_INFINITY],
            log_e0: Vec::new(),
            terms: Vec::new(),
        }
    }

    /// `ln A_alpha` for integer `alpha`: `ln sum_i C(alpha, i) q^i (1-q)^(alpha-i)
    /// e^{(i^2 - i)/(2 sigma^2)}`, summed after factoring out the largest term.
    fn log_a_int(&mut self, alpha: u64) -> f64 {
        let n = alpha as usize;
        while self.ln.len() <= n + 1 {
            let k = self.ln.len();
            self.ln.push((k as f64).ln());
        }
        let a = alpha as f64;
        self.terms.clear();
        // ln C(alpha, i), updated by C(a, i+1) = C(a, i) (a - i)/(i + 1).
        let mut log_binom = 0.0;
        let mut max = f64::NEG_INFINITY;
        for i in 0..=n {
            let fi = i as f64;
            let s = log_binom
                + fi * self.log_q
                + (a - fi) * self.log1mq
                + (fi * fi - fi) / self.two_sigma2;
            max = max.max(s);
            self.terms.push(s);
            if i < n {
                log_binom += self.ln[n - i] - self.ln[i + 1];
            }
        }
        if !max.is_finite() {
            return max;
        }
        max + self
            .terms
            .iter()
            .map(|&s| (s - max).exp())
            .sum::<f64>()
            .ln()
    }

    fn log_e0(&mut self, i: usize) -> f64 {
        while self.log_e0.len() <= i {
            let k = self.log_e0.len() as f64;
            let v = 0.5f64.ln() + log_erfc((k - self.z0) / self.sqrt2_sigma);
            self.log_e0.push(v);
        }
        self.log_e0[i]
    }

    /// `ln A_alpha` for fractional `alpha`; `+inf` when the series has not converged after
    /// 1000 terms.
    fn log_a_frac(&mut self, alpha: f64) -> f64 {
        let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        // ln |C(alpha, i)| for the generalised binomial coefficient, updated incrementally.
        let mut log_binom = 0.0;
        for k in 0..MAX_STEPS_LOG_A_FRAC {
            let i = k as f64;
            let log_coef = log_binom;
            log_binom += ((alpha - i) / (i + 1.0)).abs().ln();
            let j = alpha - i;
            let log_t0 = log_coef + i * self.log_q + j * self.log1mq;
            let log_t1 = log_coef + j * self.log_q + i * self.log1mq;
            let log_e1 = 0.5f64.ln() + log_erfc((self.z0 - j) / self.sqrt2_sigma);
            let log_s0 = log_t0 + (i * i - i) / self.two_sigma2 + self.log_e0(k);
            let log_s1 = log_t1 + (j * j - j) / self.two_sigma2 + log_e1;
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
            // Stop once both halves shrink and the new terms are below e^-30 of the sum.
            if log_s0 < last_s0 && log_s1 < last_s1 {
                let total = log_add(log_a0, log_a1);
                if log_s0.max(log_s1) < total - 30.0 {
                    return total;
                }
            }
            last_s0 = log_s0;
            last_s1 = log_s1;
        }
        f64::INFINITY
    }

    /// RDP at order `alpha > 1`.
    fn rdp(&mut self, alpha: f64) -> f64 {
        let log_a = if is_integer_order(alpha) {
            self.log_a_int(alpha as u64)
        } else {
            self.log_a_frac(alpha)
        };
        nan_to_inf(log_a / (alpha - 1.0))
    }
}

const MAX_STEPS_LOG_A_FRAC: usize = 1000;

fn is_integer_order(alpha: f64) -> bool {
    alpha.fract() == 0.0
}

/// RDP curve of the Poisson-subsampled Gaussian (one step) at `orders` (each `> 1`).
fn sampled_gaussian_curve(q: f64, sigma: f64, orders: &[f64]) -> Vec<f64> {
    if q == 0.0 {
        return vec![0.0; orders.len()];
    }
    if q == 1.0 {
        return orders.iter().map(|a| a / (2.0 * sigma * sigma)).collect();
    }
    let mut sg = SampledGaussian::new(q, sigma);
    orders.iter().map(|&a| sg.rdp(a)).collect()
}

/// Extreme parameters (a noise multiplier near 0) can meet `inf - inf`; the bound is then
/// vacuous, which is `+inf`, never NaN.
fn nan_to_inf(x: f64) -> f64 {
    if x.is_nan() {
        f64::INFINITY
    } else {
        x
    }
}

/// RDP of the Poisson-subsampled Gaussian mechanism (one step) at each order
/// (Mironov, Talwar and Zhang 2019). Orders must lie in `(1, MAX_ORDER]`.
pub fn rdp_poisson_subsampled_gaussian(
    q: SamplingRate,
    noise: NoiseMultiplier,
    orders: &[f64],
) -> Result<Vec<f64>, DpError> {
    validate_orders(orders)?;
    Ok(sampled_gaussian_curve(q.get(), noise.get(), orders))
}

/// `ln |a - b|` and the sign of `a - b` for numbers given as (positive?, ln|.|).
fn log_sub_sign(logx: f64, logy: f64) -> (bool, f64) {
    if logx > logy {
        (true, log_sub(logx, logy))
    } else if logx < logy {
        (false, log_sub(logy, logx))
    } else {
        (true, f64::NEG_INFINITY)
    }
}

/// Log-magnitudes of forward differences of `exp(cgf)`, as `dp_accounting`'s
/// `_get_forward_diffs` (WBK19, Theorem 27).
fn forward_diffs_log(sigma: f64, n: usize) -> Vec<f64> {
    let cgf = |x: f64| x * (x + 1.0) / (2.0 * sigma * sigma);
    let mut vec = vec![0.0f64; n + 3];
    let mut signs = vec![true; n + 3];
    for i in 1..n + 3 {
        vec[i] = cgf((i - 1) as f64);
    }
    let mut deltas = vec![0.0; n + 2];
    for i in 0..n + 2 {
        let m = n + 2 - i;
        for j in 0..m {
            if signs[j] == signs[j + 1] {
                let (s, mag) = log_sub_sign(vec[j + 1], vec[j]);
                signs[j] = if signs[j + 1] { s } else { !s };
                vec[j] = mag;
            } else {
                vec[j] = log_add(vec[j], vec[j + 1]);
                signs[j] = signs[j + 1];
            }
        }
        deltas[i] = vec[0];
    }
    deltas
}

/// The WBK19 bound on `ln E[(p/q)^alpha]` for integer `alpha`, sampling without replacement.
fn wor_log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    const MAX_EXACT_ALPHA: u64 = 256;
    if alpha <= 1 {
        return 0.0;
    }
    let cgf = |x: f64| x * (x + 1.0) / (2.0 * sigma * sigma);
    let func = |x: f64| x / (2.0 * sigma * sigma);
    let (ln2, ln4, log_q) = (2f64.ln(), 4f64.ln(), q.ln());
    let a = alpha as f64;
    let log_f2m1 = func(2.0) + (-(-func(2.0)).exp()).ln_1p();
    let first = 2.0 * log_q + log_comb(a, 2.0) + (ln4 + log_f2m1).min(func(2.0) + ln2);
    let mut log_a = log_add(0.0, first);
    if alpha <= MAX_EXACT_ALPHA {
        let deltas = forward_diffs_log(sigma, alpha as usize);
        for i in 3..=alpha as usize {
            let lo = deltas[2 * (i / 2) - 1];
            let hi = deltas[2 * i.div_ceil(2) - 1];
            let fi = i as f64;
            let s = (ln4 + 0.5 * (lo + hi)).min(ln2 + cgf(fi - 1.0)) + fi * log_q + log_comb(a, fi);
            log_a = log_add(log_a, s);
        }
    } else {
        for i in 3..=alpha {
            let fi = i as f64;
            let s = ln2 + cgf(fi - 1.0) + fi * log_q + log_comb(a, fi);
            log_a = log_add(log_a, s);
        }
    }
    log_a
}

fn wor_gaussian_one(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    nan_to_inf(if is_integer_order(alpha) {
        wor_log_a_int(q, sigma, alpha as u64) / (alpha - 1.0)
    } else {
        let (f, c) = (alpha.floor(), alpha.ceil());
        let x = wor_log_a_int(q, sigma, f as u64);
        let y = wor_log_a_int(q, sigma, c as u64);
        let t = alpha - f;
        ((1.0 - t) * x + t * y) / (alpha - 1.0)
    })
}

/// RDP bound of the Gaussian mechanism on a batch of `q * n` records sampled without
/// replacement, replace-one relation (Wang, Balle, Kasiviswanathan 2019, Theorem 27;
/// fractional orders by their Corollary 10). Orders must lie in `(1, MAX_ORDER]`.
pub fn rdp_sampled_without_replacement_gaussian(
    q: SamplingRate,
    noise: NoiseMultiplier,
    orders: &[f64],
) -> Result<Vec<f64>, DpError> {
    validate_orders(orders)?;
    Ok(orders
        .iter()
        .map(|&a| wor_gaussian_one(q.get(), noise.get(), a))
        .collect())
}

/// An epsilon together with the RDP order that attains it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpsilonAtOrder {
    /// The epsilon (`+inf` when no order gives a finite bound).
    pub epsilon: f64,
    /// The optimal order.
    pub order: f64,
}

/// A delta together with the RDP order that attains it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeltaAtOrder {
    /// The delta, in `[0, 1]`.
    pub delta: f64,
    /// The optimal order.
    pub order: f64,
}

fn validate_curve(orders: &[f64], rdp: &[f64]) -> Result<(), DpError> {
    validate_orders(orders)?;
    if orders.len() != rdp.len() {
        return Err(DpError::invalid(
            "rdp",
            rdp.len() as f64,
            "needs one value per order",
        ));
    }
    for &r in rdp {
        if r.is_nan() {
            return Err(DpError::invalid("rdp", r, "RDP values must not be NaN"));
        }
    }
    Ok(())
}

fn argmin(values: impl Iterator<Item = f64>) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, v) in values.enumerate() {
        if v < best.1 {
            best = (i, v);
        }
    }
    best
}

/// The improved RDP-to-DP conversion (Canonne, Kamath, Steinke 2020, Proposition 12), as
/// `dp_accounting`'s `compute_epsilon`: the smallest epsilon over the orders, never below 0.
pub fn epsilon_from_rdp(
    orders: &[f64],
    rdp: &[f64],
    delta: Delta,
) -> Result<EpsilonAtOrder, DpError> {
    validate_curve(orders, rdp)?;
    let d = delta.get();
    let eps = orders.iter().zip(rdp).map(|(&a, &r)| {
        if r < 0.0 || d * d + (-r).exp_m1() > 0.0 {
            // KL bound: delta <= sqrt(1 - e^{-KL}) already holds at epsilon = 0.
            0.0
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (d * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        }
    });
    let (i, e) = argmin(eps);
    Ok(EpsilonAtOrder {
        epsilon: e.max(0.0),
        order: orders[i],
    })
}

/// The classic RDP-to-DP conversion `eps = rdp - ln(delta)/(alpha - 1)` (Mironov 2017,
/// Proposition 3), minimised over the orders.
pub fn epsilon_from_rdp_classic(
    orders: &[f64],
    rdp: &[f64],
    delta: Delta,
) -> Result<EpsilonAtOrder, DpError> {
    validate_curve(orders, rdp)?;
    let ln_d = delta.get().ln();
    let (i, e) = argmin(
        orders
            .iter()
            .zip(rdp)
            .map(|(&a, &r)| r.max(0.0) - ln_d / (a - 1.0)),
    );
    Ok(EpsilonAtOrder {
        epsilon: e.max(0.0),
        order: orders[i],
    })
}

/// The improved conversion from a target epsilon to delta (Canonne, Kamath, Steinke 2020,
/// Proposition 12, with the KL bound), as `dp_accounting`'s `compute_delta`.
pub fn delta_from_rdp(
    orders: &[f64],
    rdp: &[f64],
    epsilon: Epsilon,
) -> Result<DeltaAtOrder, DpError> {
    validate_curve(orders, rdp)?;
    let eps = epsilon.get();
    let log_deltas = orders.iter().zip(rdp).map(|(&a, &r)| {
        let mut log_delta = if r <= 0.0 {
            f64::NEG_INFINITY
        } else {
            0.5 * (-(-r).exp()).ln_1p()
        };
        if a > 1.01 {
            let bound = (a - 1.0) * (r - eps + (-1.0 / a).ln_1p()) - a.ln();
            log_delta = log_delta.min(bound);
        }
        log_delta
    });
    let mut best = (0, f64::INFINITY);
    for (i, v) in log_deltas.enumerate() {
        if v < best.1 || i == 0 {
            best = (i, v);
        }
    }
    Ok(DeltaAtOrder {
        delta: best.1.exp().min(1.0),
        order: orders[best.0],
    })
}

/// The classic conversion `delta = e^{(alpha - 1)(rdp - eps)}` (Mironov 2017, Proposition 3),
/// minimised over the orders.
pub fn delta_from_rdp_classic(
    orders: &[f64],
    rdp: &[f64],
    epsilon: Epsilon,
) -> Result<DeltaAtOrder, DpError> {
    validate_curve(orders, rdp)?;
    let eps = epsilon.get();
    let mut best = (0, f64::INFINITY);
    for (i, (&a, &r)) in orders.iter().zip(rdp).enumerate() {
        let v = (a - 1.0) * (r.max(0.0) - eps);
        if v < best.1 || i == 0 {
            best = (i, v);
        }
    }
    Ok(DeltaAtOrder {
        delta: best.1.exp().min(1.0),
        order: orders[best.0],
    })
}

/// The RDP accountant: one RDP value per order, composed by addition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
    relation: NeighboringRelation,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        let orders = default_orders();
        let rdp = vec![0.0; orders.len()];
        RdpAccountant {
            orders,
            rdp,
            relation: NeighboringRelation::AddOrRemoveOne,
        }
    }
}

impl RdpAccountant {
    /// An accountant over `orders` (each in `(1, MAX_ORDER]`), add-or-remove-one relation.
    pub fn new(orders: Vec<f64>) -> Result<Self, DpError> {
        Self::with_relation(orders, NeighboringRelation::AddOrRemoveOne)
    }

    /// An accountant over `orders` for the given neighbouring relation. Poisson sampling is
    /// analysed under add-or-remove-one, sampling without replacement under replace-one.
    pub fn with_relation(orders: Vec<f64>, relation: NeighboringRelation) -> Result<Self, DpError> {
        validate_orders(&orders)?;
        let rdp = vec![0.0; orders.len()];
        Ok(RdpAccountant {
            orders,
            rdp,
            relation,
        })
    }

    /// `dp_accounting`'s default orders ([`default_orders`]).
    pub fn default_orders() -> Vec<f64> {
        default_orders()
    }

    /// The orders.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The accumulated RDP, one value per order.
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// The neighbouring relation.
    pub fn relation(&self) -> NeighboringRelation {
        self.relation
    }

    /// The RDP curve of `event` at this accountant's orders, without composing it.
    pub fn event_rdp(&self, event: &DpEvent) -> Result<Vec<f64>, DpError> {
        let mut acc = vec![0.0; self.orders.len()];
        self.accumulate(event, 1, &mut acc)?;
        Ok(acc)
    }

    /// Composes `event`. On error the accountant is left unchanged.
    pub fn compose(&mut self, event: &DpEvent) -> Result<&mut Self, DpError> {
        let curve = self.event_rdp(event)?;
        for (r, c) in self.rdp.iter_mut().zip(curve) {
            *r += c;
        }
        Ok(self)
    }

    /// Adds an RDP curve (one value per order, each `>= 0` or `+inf`) computed elsewhere,
    /// for example a per-step curve scaled by a step count.
    pub fn compose_curve(&mut self, curve: &[f64]) -> Result<&mut Self, DpError> {
        if curve.len() != self.orders.len() {
            return Err(DpError::invalid(
                "curve",
                curve.len() as f64,
                "needs one value per order",
            ));
        }
        for &c in curve {
            if c.is_nan() || c < 0.0 {
                return Err(DpError::invalid("curve", c, "RDP values must be >= 0"));
            }
        }
        for (r, c) in self.rdp.iter_mut().zip(curve) {
            *r += c;
        }
        Ok(self)
    }

    fn unsupported(reason: impl Into<String>) -> DpError {
        DpError::UnsupportedEvent {
            accountant: "rdp",
            reason: reason.into(),
        }
    }

    fn accumulate(&self, event: &DpEvent, count: u64, acc: &mut [f64]) -> Result<(), DpError> {
        if count == 0 {
            return Ok(());
        }
        let add = |acc: &mut [f64], f: &dyn Fn(f64) -> f64| {
            for (slot, &a) in acc.iter_mut().zip(&self.orders) {
                *slot += count as f64 * f(a);
            }
        };
        match event {
            DpEvent::Gaussian { noise_multiplier } => {
                let s = noise_multiplier.get();
                add(acc, &|a| a / (2.0 * s * s));
            }
            DpEvent::Laplace {
                scale_over_sensitivity,
            } => {
                let eps = 1.0 / scale_over_sensitivity.get();
                add(acc, &|a| laplace_rdp_one(eps, a));
            }
            DpEvent::PoissonSampled { q, event } => {
                if q.get() == 0.0 {
                    return Ok(());
                }
                if self.relation != NeighboringRelation::AddOrRemoveOne {
                    return Err(Self::unsupported(
                        "Poisson sampling is analysed under the add-or-remove-one relation",
                    ));
                }
                if q.get() == 1.0 {
                    return self.accumulate(event, count, acc);
                }
                let sigma = event.effective_gaussian_noise().ok_or_else(|| {
                    Self::unsupported(
                        "the event inside PoissonSampled must be a Gaussian or a composition \
                         of Gaussians",
                    )
                })?;
                if sigma.is_infinite() {
                    return Ok(());
                }
                let curve = sampled_gaussian_curve(q.get(), sigma, &self.orders);
                for (slot, c) in acc.iter_mut().zip(curve) {
                    *slot += count as f64 * c;
                }
            }
            DpEvent::SampledWithoutReplacement { n, batch, event } => {
                let q = SamplingRate::from_batch(*batch, *n)?.get();
                if q == 0.0 {
                    return Ok(());
                }
                if self.relation != NeighboringRelation::ReplaceOne {
                    return Err(Self::unsupported(
                        "sampling without replacement is analysed under the replace-one \
                         relation; build the accountant with NeighboringRelation::ReplaceOne",
                    ));
                }
                if q == 1.0 {
                    return self.accumulate(event, count, acc);
                }
                let sigma = event.effective_gaussian_noise().ok_or_else(|| {
                    Self::unsupported(
                        "the event inside SampledWithoutReplacement must be a Gaussian or a \
                         composition of Gaussians",
                    )
                })?;
                if sigma.is_infinite() {
                    return Ok(());
                }
                add(acc, &|a| wor_gaussian_one(q, sigma, a));
            }
            DpEvent::SelfComposed { event, count: c } => {
                let total = count.checked_mul(*c).ok_or(DpError::CountOverflow)?;
                self.accumulate(event, total, acc)?;
            }
            DpEvent::Composed(events) => {
                for e in events {
                    self.accumulate(e, count, acc)?;
                }
            }
        }
        Ok(())
    }

    /// The smallest epsilon (improved conversion) at `delta`, and its order.
    pub fn epsilon(&self, delta: Delta) -> Result<EpsilonAtOrder, DpError> {
        epsilon_from_rdp(&self.orders, &self.rdp, delta)
    }

    /// The smallest epsilon by the classic conversion (Mironov 2017) at `delta`.
    pub fn epsilon_classic(&self, delta: Delta) -> Result<EpsilonAtOrder, DpError> {
        epsilon_from_rdp_classic(&self.orders, &self.rdp, delta)
    }

    /// The smallest delta (improved conversion) at `epsilon`, and its order.
    pub fn delta(&self, epsilon: Epsilon) -> Result<DeltaAtOrder, DpError> {
        delta_from_rdp(&self.orders, &self.rdp, epsilon)
    }

    /// The smallest delta by the classic conversion at `epsilon`.
    pub fn delta_classic(&self, epsilon: Epsilon) -> Result<DeltaAtOrder, DpError> {
        delta_from_rdp_classic(&self.orders, &self.rdp, epsilon)
    }

    /// [`RdpAccountant::epsilon`] as a serialisable report.
    pub fn report(&self, delta: Delta) -> Result<EpsilonReport, DpError> {
        let e = self.epsilon(delta)?;
        Ok(EpsilonReport {
            epsilon: e.epsilon,
            delta: delta.get(),
            order: Some(e.order),
            accountant: "rdp".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(x: f64) -> SamplingRate {
        SamplingRate::new(x).unwrap()
    }
    fn s(x: f64) -> NoiseMultiplier {
        NoiseMultiplier::new(x).unwrap()
    }

    #[test]
    fn default_orders_shape() {
        let o = default_orders();
        assert_eq!(o.len(), 99 + 53 + 4);
        assert!((o[0] - 1.1).abs() < 1e-15 && (o[98] - 10.9).abs() < 1e-12);
        assert_eq!(o[99], 11.0);
        assert_eq!(*o.last().unwrap(), 1024.0);
    }

    #[test]
    fn fractional_orders_match_reference() {
        // dp_accounting 0.6.0, _compute_rdp_poisson_subsampled_gaussian.
        let r = rdp_poisson_subsampled_gaussian(q(0.1), s(0.7), &[2.3, 5.5, 10.9]).unwrap();
        let want = [0.09285578, 2.79912109, 8.58727955];
        for (g, w) in r.iter().zip(want) {
            assert!(((g - w) / w).abs() < 1e-7, "{g} vs {w}");
        }
        // Not converging (small sigma, small order): +inf, as dp_accounting.
        let r = rdp_poisson_subsampled_gaussian(q(0.1), s(0.7), &[1.1, 1.5]).unwrap();
        assert!(r.iter().all(|x| x.is_infinite()));
        let r = rdp_poisson_subsampled_gaussian(q(1e-4), s(5.0), &[1.1, 3.7]).unwrap();
        for (g, w) in r.iter().zip([2.24830560e-10, 7.55004631e-10]) {
            assert!(((g - w) / w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn integer_orders_match_reference() {
        let r = rdp_poisson_subsampled_gaussian(q(0.1), s(0.7), &[2.0, 3.0, 63.0, 1024.0]).unwrap();
        let want = [
            6.48218230e-02,
            2.46064780e-01,
            6.19459907e+01,
            1.04259312e+03,
        ];
        for (g, w) in r.iter().zip(want) {
            assert!(((g - w) / w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn extreme_noise_gives_infinity_not_nan() {
        let r = rdp_poisson_subsampled_gaussian(q(0.5), s(1e-200), &[1.5, 2.0, 2.5]).unwrap();
        assert!(r.iter().all(|x| *x == f64::INFINITY), "{r:?}");
        let mut acc = RdpAccountant::default();
        acc.compose(&DpEvent::dp_sgd(1e-200, 0.5, 3).unwrap())
            .unwrap();
        assert_eq!(
            acc.epsilon(Delta::new(1e-5).unwrap()).unwrap().epsilon,
            f64::INFINITY
        );
    }

    #[test]
    fn q_one_and_zero() {
        let o = [1.5, 2.0, 32.0];
        let r = rdp_poisson_subsampled_gaussian(q(1.0), s(2.0), &o).unwrap();
        for (g, a) in r.iter().zip(o) {
            assert_eq!(*g, a / 8.0);
        }
        let r = rdp_poisson_subsampled_gaussian(q(0.0), s(2.0), &o).unwrap();
        assert!(r.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn sampled_without_replacement_matches_reference() {
        // dp_accounting 0.6.0, _compute_rdp_sample_wor_gaussian(0.01, 1.5, orders).
        let o = [2.0, 3.0, 4.5, 10.0, 32.0, 300.0];
        let want = [
            2.23824349e-04,
            3.39191665e-04,
            5.25465012e-04,
            1.21253079e-03,
            2.37985392e+00,
            6.20484128e+01,
        ];
        let r = rdp_sampled_without_replacement_gaussian(q(0.01), s(1.5), &o).unwrap();
        for (g, w) in r.iter().zip(want) {
            assert!(((g - w) / w).abs() < 1e-7, "{g} vs {w}");
        }
    }

    #[test]
    fn relation_is_enforced() {
        let mut acc = RdpAccountant::default();
        let wor =
            DpEvent::sampled_without_replacement(100, 10, DpEvent::gaussian(1.0).unwrap()).unwrap();
        assert!(matches!(
            acc.compose(&wor),
            Err(DpError::UnsupportedEvent { .. })
        ));
        let mut acc =
            RdpAccountant::with_relation(default_orders(), NeighboringRelation::ReplaceOne)
                .unwrap();
        acc.compose(&wor).unwrap();
        let poisson = DpEvent::dp_sgd(1.0, 0.1, 10).unwrap();
        assert!(acc.compose(&poisson).is_err());
    }

    #[test]
    fn failed_compose_leaves_accountant_unchanged() {
        let mut acc = RdpAccountant::default();
        acc.compose(&DpEvent::gaussian(1.0).unwrap()).unwrap();
        let before = acc.clone();
        let bad = DpEvent::Composed(vec![
            DpEvent::gaussian(2.0).unwrap(),
            DpEvent::poisson_sampled(0.5, DpEvent::laplace(1.0).unwrap()).unwrap(),
        ]);
        assert!(acc.compose(&bad).is_err());
        assert_eq!(acc, before);
    }

    #[test]
    fn bad_orders_and_curves() {
        assert!(RdpAccountant::new(vec![]).is_err());
        assert!(RdpAccountant::new(vec![1.0]).is_err());
        assert!(RdpAccountant::new(vec![f64::NAN]).is_err());
        assert!(RdpAccountant::new(vec![1e300]).is_err());
        assert!(epsilon_from_rdp(&[2.0], &[1.0, 2.0], Delta::new(1e-5).unwrap()).is_err());
        assert!(epsilon_from_rdp(&[2.0], &[f64::NAN], Delta::new(1e-5).unwrap()).is_err());
        let mut acc = RdpAccountant::default();
        assert!(acc.compose_curve(&[1.0]).is_err());
    }

    #[test]
    fn delta_conversion_inverts_epsilon_conversion() {
        let mut acc = RdpAccountant::default();
        acc.compose(&DpEvent::dp_sgd(1.1, 0.01, 1000).unwrap())
            .unwrap();
        let e = acc.epsilon(Delta::new(1e-5).unwrap()).unwrap();
        // dp_accounting 0.6.0: (1.7117701662429012, 9.6)
        assert!((e.epsilon - 1.711_770_166_242_901_2).abs() < 1e-8, "{e:?}");
        assert!((e.order - 9.6).abs() < 1e-12);
        let d = acc.delta(Epsilon::new(e.epsilon).unwrap()).unwrap();
        assert!((d.delta / 1e-5 - 1.0).abs() < 1e-6, "{d:?}");
        // dp_accounting 0.6.0: get_delta_and_optimal_order(2.0) = (8.149712124416227e-07, 9.8)
        let d = acc.delta(Epsilon::new(2.0).unwrap()).unwrap();
        assert!(
            (d.delta / 8.149_712_124_416_227e-7 - 1.0).abs() < 1e-7,
            "{d:?}"
        );
        assert!((d.order - 9.8).abs() < 1e-12);
        // Classic conversions are looser.
        assert!(
            acc.epsilon_classic(Delta::new(1e-5).unwrap())
                .unwrap()
                .epsilon
                > e.epsilon
        );
        assert!(acc.delta_classic(Epsilon::new(2.0).unwrap()).unwrap().delta > d.delta);
    }
}
