//! The encrypted argmax: the class computed under encryption, so that a client decrypts the
//! index of the largest logit and nothing else, and every ciphertext it receives comes out of
//! a bootstrap.
//!
//! Pure integer arithmetic and a noise model, no cryptography: the plan is checked without
//! keys; `FheServer::eval_class` evaluates it.
//!
//! # Comparing wide values with a bootstrap that reads twelve bits
//!
//! A bootstrap at tfhe's 2_2 parameters reads a phase at the resolution of a *slot* (`2^64 /
//! 2N`, 4096 slots around the torus) and with noise of several slots; a difference of two
//! logits `d = l_i − l_j` spans hundreds to thousands of values. Its sign is found in
//! *levels*, the large-precision sign evaluation of Liu, Micciancio and Polyakov (ASIACRYPT
//! 2022, section 3) recast for a server that holds the weights:
//!
//! - **A level** is an encryption of `d · u_k + c` for a unit `u_k` (slots per unit of `d`):
//!   the last hidden stage bootstrapped once more with every activation at scale `u_k` (a
//!   bootstrap's output noise is the same at any scale), then the pair's row of output weights
//!   applied. Where `d · u_k` exceeds the half torus the phase wraps: the level reads `d` modulo
//!   `2N / u_k`, the free "modulus reduction" of the paper.
//! - **A sign level** bootstraps it through a table that returns `+1` above `2M` slots, `0`
//!   below (and, the bootstrap being negacyclic, `−1` below `−M`): with noise under `M` slots it
//!   is *the sign or 0* for every `|d · u_k| < N − 2M`, and the sign for `|d · u_k| ≥ 2M`. The
//!   next level, `(N − 2M) / 2M` times finer, is valid on every `d` the previous one could
//!   leave undecided.
//! - **The last level** has unit `2M` and offset half a unit, and a table that is `+1` over
//!   the whole half torus: `+1` for `d ≥ 0`, `−1` for `d ≤ −1`, never 0. Ties go to the lower
//!   class index, as the plaintext `argmax` does.
//! - **Combining**: `S = Σ_k 2^(L−k) · t_k` is odd and its sign is that of the first non-zero
//!   `t_k`, the coarsest decided level; one more bootstrap turns it into a bit `b_ij = [d ≥ 0]`.
//! - **The class**: class `i` is the argmax exactly when it beats the other `C − 1`; a bootstrap
//!   of `wins_i = Σ_j b_ij` returns `i` when `wins_i = C − 1` and `0` otherwise, their sum is an
//!   encryption of the class, and a last bootstrap re-encrypts it with noise independent of the
//!   weights (Ducas and Stehlé, EUROCRYPT 2016: a bootstrap as the last operation).
//!
//! # Noise and failure
//!
//! A level's noise is the bootstraps' output noise times the L2 norm of the pair's weight row,
//! plus the keyswitch and modulus switch before the next bootstrap. Where a norm is large
//! (tens of hidden values, weights of 4 bits) each coefficient is split into signed digits of
//! radix `r` and the hidden values are bootstrapped at `u_k · r^q` as well: the norm becomes
//! that of the digits, for `m` times the hidden bootstraps. The plan picks the radix that needs
//! the fewest bootstraps. The margin `M` is [`TAIL`] standard deviations: a bootstrap of the
//! argmax misreads with probability below `2^-40` under the Gaussian model of the noise, and
//! [`ArgmaxPlan::failure_bound`] gives the union over a query.

use crate::plan::{slot, FhePlan, PlanError};

/// Standard deviation of a bootstrap's output noise, in slots, at [`crate::parameters`]:
/// measured at 0.13 (the test `pbs_output_noise_is_within_the_model` checks it stays below
/// this), taken as 0.2.
pub const PBS_SIGMA_SLOTS: f64 = 0.2;

/// Standard deviation of the keyswitch and modulus switch noise a bootstrap adds to its input,
/// in slots. Measured by bootstrapping fresh ciphertexts at a known distance from a table's
/// boundary, 1 200 times at each distance: 23% read across the boundary at 4 slots from it,
/// 5.8% at 8, 0.5% at 12, that is a standard deviation of 5.5 slots near the centre and tails
/// lighter than a Gaussian's of that deviation (the switch noise is a sum of bounded
/// roundings). A Gaussian of 5.5 slots is taken.
pub const SWITCH_SIGMA_SLOTS: f64 = 5.5;

/// Standard deviations of margin: a Gaussian exceeds 7.3 standard deviations with probability
/// `2.9 · 10^-13 < 2^-41`.
pub const TAIL: f64 = 7.3;

/// `P(|N(0, 1)| > TAIL)`, for [`ArgmaxPlan::failure_bound`].
pub const TAIL_PROBABILITY: f64 = 2.9e-13;

/// One level of the sign of every pair's difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// Torus units per unit of the difference.
    pub unit: u64,
    /// Torus units added to every difference at this level.
    pub offset: u64,
    /// The last level (unit `2M`, never 0).
    pub tie: bool,
}

/// One pair `i < j` of classes: `d = l_i − l_j` as an affine map of the last hidden stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The lower class.
    pub i: usize,
    /// The higher class.
    pub j: usize,
    /// `(hidden value, digit q, coefficient digit)`: the coefficient of hidden value `k` is
    /// `Σ_q digit_q · r^q`.
    pub terms: Vec<(u32, u32, i64)>,
    /// `c_i − c_j`.
    pub constant: i64,
}

/// The server's plan of the encrypted argmax of one model.
#[derive(Clone, Debug)]
pub struct ArgmaxPlan {
    /// Polynomial size `N`.
    pub polynomial_size: usize,
    /// Number of classes `C`.
    pub classes: usize,
    /// Values of the last hidden stage.
    pub hidden: usize,
    /// Largest activation of the last hidden stage.
    pub max_activation: i64,
    /// Radix of the coefficients' digits (1: coefficients whole).
    pub radix: i64,
    /// Digits per coefficient.
    pub digits: u32,
    /// The pairs, `(0, 1), (0, 2), …, (C − 2, C − 1)`.
    pub pairs: Vec<Pair>,
    /// Largest `|l_i − l_j|` over every input.
    pub max_difference: i64,
    /// Noise margin of a level, in slots.
    pub margin: u64,
    /// The levels, coarsest first.
    pub levels: Vec<Level>,
    /// Torus units of one unit of `S`: each level's output is `t_k` times it.
    pub sign_unit: u64,
    /// Torus units of one win.
    pub win_unit: u64,
    /// Noise margin of the wins and of the class, in slots.
    pub win_margin: u64,
    /// Torus units of one class index before the last bootstrap.
    pub class_unit: u64,
    /// Bits the client decodes the class with: scale `2^(64 − class_bits)`.
    pub class_bits: u32,
}

/// Bits the client decodes a class of `classes` with: the class at scale `2^(64 − bits)`,
/// read as a signed `bits`-bit integer.
pub fn class_bits(classes: usize) -> u32 {
    64 - (classes as u64).leading_zeros() + 1
}

/// Balanced digits of `a` in radix `r` (`r = 1`: `a` itself), least significant first.
fn digits_of(a: i64, r: i64, m: u32) -> Vec<i64> {
    if r == 1 {
        return vec![a];
    }
    let mut out = Vec::with_capacity(m as usize);
    let mut a = a;
    for _ in 0..m {
        let mut d = a.rem_euclid(r);
        if d >= r / 2 {
            d -= r;
        }
        out.push(d);
        a = (a - d) / r;
    }
    out
}

/// The largest `|a|` that `m` balanced digits of radix `r` hold: `(r/2 − 1)(r^m − 1)/(r − 1)`.
fn digit_reach(r: i64, m: u32) -> i64 {
    r.checked_pow(m)
        .map_or(i64::MAX, |p| (r / 2 - 1) * ((p - 1) / (r - 1)))
}

/// Margin in slots for noise of `sigma` slots.
fn margin_of(sigma: f64) -> u64 {
    (TAIL * sigma).ceil() as u64
}

/// Noise, in slots, of a linear combination with squared coefficient norm `norm2` of bootstrap
/// outputs, as the next bootstrap reads it.
fn sigma_of(norm2: f64) -> f64 {
    (PBS_SIGMA_SLOTS * PBS_SIGMA_SLOTS * norm2 + SWITCH_SIGMA_SLOTS * SWITCH_SIGMA_SLOTS).sqrt()
}

impl ArgmaxPlan {
    /// Plans the argmax of `plan`'s output layer: the radix of fewest bootstraps among whole
    /// coefficients and radices 4, 8 and 16.
    pub fn new(plan: &FhePlan) -> Result<ArgmaxPlan, PlanError> {
        let mut best: Option<ArgmaxPlan> = None;
        let mut last_err = None;
        for radix in [1, 4, 8, 16] {
            match ArgmaxPlan::with_radix(plan, radix) {
                Ok(p) => {
                    if best
                        .as_ref()
                        .is_none_or(|b| p.bootstraps() < b.bootstraps())
                    {
                        best = Some(p);
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        best.ok_or_else(|| {
            last_err.unwrap_or_else(|| PlanError::Range("no radix fits the argmax".into()))
        })
    }

    /// Plans the argmax with coefficients split into digits of `radix` (1: whole).
    pub fn with_radix(plan: &FhePlan, radix: i64) -> Result<ArgmaxPlan, PlanError> {
        let last = plan.stages.last().ok_or(PlanError::NoActivation)?;
        let hidden = last.neurons.len();
        let max_activation = last.requant.max_out();
        let classes = plan.output.len();
        if !(2..=64).contains(&classes) {
            return Err(PlanError::Range(format!(
                "an encrypted argmax over {classes} classes (2 to 64)"
            )));
        }
        if !(radix == 1 || (radix >= 2 && (radix as u64).is_power_of_two())) {
            return Err(PlanError::Range(format!("radix {radix}")));
        }
        let n = plan.polynomial_size as u64;
        let rows: Vec<Vec<i64>> = plan
            .output
            .iter()
            .map(|row| {
                let mut w = vec![0i64; hidden];
                for &(k, c) in &row.terms {
                    if let Some(x) = w.get_mut(k as usize) {
                        *x += c;
                    }
                }
                w
            })
            .collect();
        let max_coef = (0..classes)
            .flat_map(|i| (i + 1..classes).map(move |j| (i, j)))
            .flat_map(|(i, j)| rows[i].iter().zip(&rows[j]).map(|(a, b)| (a - b).abs()))
            .max()
            .unwrap_or(0);
        let mut digits = 1;
        if radix > 1 {
            while digit_reach(radix, digits) < max_coef {
                digits += 1;
            }
        }
        let (mut pairs, mut max_difference, mut worst_norm2) = (Vec::new(), 0i64, 0f64);
        for i in 0..classes {
            for j in i + 1..classes {
                let constant = plan.output[i].constant - plan.output[j].constant;
                let (mut hi, mut lo, mut norm2) = (constant, constant, 0f64);
                let mut terms = Vec::new();
                for (k, (a, b)) in rows[i].iter().zip(&rows[j]).enumerate() {
                    let c = a - b;
                    if c > 0 {
                        hi += c * max_activation;
                    } else {
                        lo += c * max_activation;
                    }
                    for (q, d) in digits_of(c, radix, digits).into_iter().enumerate() {
                        if d != 0 {
                            norm2 += (d * d) as f64;
                            terms.push((k as u32, q as u32, d));
                        }
                    }
                }
                max_difference = max_difference.max(hi.abs()).max(lo.abs());
                worst_norm2 = worst_norm2.max(norm2);
                pairs.push(Pair {
                    i,
                    j,
                    terms,
                    constant,
                });
            }
        }
        let s = slot(plan.polynomial_size);
        let m = margin_of(sigma_of(worst_norm2));
        if 4 * m >= n {
            return Err(PlanError::Range(format!(
                "the output layer is too noisy for an encrypted argmax: a margin of {m} slots \
                 (weight norm {:.0} in radix {radix}) leaves no room in {n}",
                worst_norm2.sqrt()
            )));
        }
        // The levels, coarsest first: each valid on every difference the one before could
        // leave undecided (see the module docs).
        let mut levels = Vec::new();
        let mut range = max_difference.max(1) as u64;
        let tie_range = (n - 2 * m) / (2 * m);
        loop {
            if range <= tie_range {
                levels.push(Level {
                    unit: 2 * m * s,
                    offset: m * s,
                    tie: true,
                });
                break;
            }
            let unit = (n - 2 * m - 1) * s / range;
            levels.push(Level {
                unit,
                offset: m * s,
                tie: false,
            });
            // |d| · unit < 2M slots: the differences this level may leave at 0.
            range = (2 * m * s - 1) / unit;
            if levels.len() > 16 {
                return Err(PlanError::Range("an argmax of more than 16 levels".into()));
            }
        }
        let l = levels.len() as u32;
        // S = Σ 2^(L−k) t_k, odd, |S| ≤ 2^L − 1.
        let s_norm2: f64 = (0..l).map(|k| 4f64.powi(k as i32)).sum();
        let ms = margin_of(sigma_of(s_norm2));
        let top = (1u64 << l) - 1;
        let sign_unit = (n - ms - 1) / top;
        if sign_unit < ms {
            return Err(PlanError::Range(format!(
                "{l} levels of sign do not fit one bootstrap"
            )));
        }
        // wins ∈ [0, C − 1] at W per win plus W/2; the class likewise.
        let mw = margin_of(sigma_of((classes - 1) as f64));
        let win_unit = ((2 * (n - mw - 1)) / (2 * classes as u64 - 1)).min(n);
        if win_unit < 2 * mw {
            return Err(PlanError::Range(format!(
                "{classes} classes do not fit one bootstrap"
            )));
        }
        let class_bits = class_bits(classes);
        Ok(ArgmaxPlan {
            polynomial_size: plan.polynomial_size,
            classes,
            hidden,
            max_activation,
            radix,
            digits,
            pairs,
            max_difference,
            margin: m,
            levels,
            sign_unit: sign_unit * s,
            win_unit: win_unit * s,
            win_margin: mw,
            class_unit: win_unit * s,
            class_bits,
        })
    }

    /// The scale of hidden value bootstraps for level `k` and digit `q`: `u_k · r^q`.
    pub fn hidden_scale(&self, k: usize, q: u32) -> u64 {
        self.levels[k]
            .unit
            .wrapping_mul((self.radix as u64).wrapping_pow(q))
    }

    /// The constant of pair `p`'s level-`k` ciphertext: `(c_i − c_j) · u_k + offset`.
    pub fn pair_constant(&self, p: usize, k: usize) -> u64 {
        let lv = &self.levels[k];
        (self.pairs[p].constant as u64)
            .wrapping_mul(lv.unit)
            .wrapping_add(lv.offset)
    }

    /// The table of level `k`: `0` below `2M` slots and `1` above for a sign level, `1`
    /// everywhere for the last; times [`sign_unit`](Self::sign_unit).
    pub fn level_table(&self, k: usize) -> Vec<u64> {
        let tie = self.levels[k].tie;
        (0..self.polynomial_size as u64)
            .map(|s| {
                if tie || s >= 2 * self.margin {
                    self.sign_unit
                } else {
                    0
                }
            })
            .collect()
    }

    /// The weight of level `k` in `S`: `2^(L−1−k)`.
    pub fn level_weight(&self, k: usize) -> i64 {
        1i64 << (self.levels.len() - 1 - k)
    }

    /// The table that turns `S` into `±W/2` (`b · W` once `W/2` is added).
    pub fn sign_table(&self) -> Vec<u64> {
        vec![self.win_unit / 2; self.polynomial_size]
    }

    /// The table of class `i`'s wins: `i` times [`class_unit`](Self::class_unit) when the
    /// phase reads `C − 1` wins, else 0.
    pub fn winner_table(&self, i: usize) -> Vec<u64> {
        let s = slot(self.polynomial_size);
        let w = self.win_unit / s;
        (0..self.polynomial_size as u64)
            .map(|x| {
                if x / w == self.classes as u64 - 1 {
                    (i as u64).wrapping_mul(self.class_unit)
                } else {
                    0
                }
            })
            .collect()
    }

    /// The last table: the class at the client's scale `2^(64 − class_bits)`.
    pub fn class_table(&self) -> Vec<u64> {
        let s = slot(self.polynomial_size);
        let z = self.class_unit / s;
        (0..self.polynomial_size as u64)
            .map(|x| (x / z).min(self.classes as u64 - 1) << (64 - self.class_bits))
            .collect()
    }

    /// Bootstraps of the last hidden stage: one per value, level and digit.
    pub fn hidden_bootstraps(&self) -> usize {
        self.hidden * self.levels.len() * self.digits as usize
    }

    /// Bootstraps the argmax adds to a query beyond the hidden stages before the last: the
    /// last stage at every scale, one per pair and level, one per pair for its bit, one per
    /// class above 0 and the last.
    pub fn bootstraps(&self) -> usize {
        self.hidden_bootstraps()
            + self.pairs.len() * (self.levels.len() + 1)
            + (self.classes - 1)
            + 1
    }

    /// An upper bound on the probability that one of the argmax's bootstraps misreads its
    /// phase, under the Gaussian model (union bound over the query).
    pub fn failure_bound(&self) -> f64 {
        (self.bootstraps() - self.hidden_bootstraps()) as f64 * TAIL_PROBABILITY
    }

    /// What level `k`'s bootstrap returns for difference `d` read with `noise` slots of error:
    /// `t_k ∈ {−1, 0, 1}` (the simulation the tests check the plan with).
    pub fn level_output(&self, k: usize, d: i64, noise: i64) -> i64 {
        let n = self.polynomial_size as u64;
        let s = slot(self.polynomial_size);
        let lv = &self.levels[k];
        let phase = (d as u64)
            .wrapping_mul(lv.unit)
            .wrapping_add(lv.offset)
            .wrapping_add((noise as u64).wrapping_mul(s));
        let x = (phase.wrapping_add(s / 2) / s) % (2 * n);
        let table = self.level_table(k);
        let (v, sign) = if x < n {
            (table[x as usize], 1)
        } else {
            (table[(x - n) as usize], -1)
        };
        if v == 0 {
            0
        } else {
            sign
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ArgmaxPlan {
        let m = veil_nn::bundled_model().unwrap().quantized;
        ArgmaxPlan::new(&FhePlan::new(&m, 2048).unwrap()).unwrap()
    }

    #[test]
    fn balanced_digits_recompose() {
        for r in [4i64, 8, 16] {
            let reach = digit_reach(r, 3);
            assert!(reach >= 21);
            for a in -reach..=reach {
                let d = digits_of(a, r, 3);
                assert!(d.iter().all(|x| (-r / 2..r / 2).contains(x)));
                let back: i64 = d.iter().rev().fold(0, |acc, x| acc * r + x);
                assert_eq!(back, a, "{a} in radix {r}");
            }
        }
    }

    /// Every difference in range, with noise anywhere within the margin: every level returns
    /// the sign or 0, the first non-zero is the sign (tie: +), and `S` is odd.
    #[test]
    fn the_levels_decide_every_difference_within_the_margin() {
        let p = plan();
        assert!(p.levels.len() >= 2 && p.levels.last().unwrap().tie);
        let m = p.margin as i64 - 1;
        for d in -p.max_difference..=p.max_difference {
            let want = if d >= 0 { 1 } else { -1 };
            for noise in [-m, -m / 2, 0, m / 2, m] {
                let t: Vec<i64> = (0..p.levels.len())
                    .map(|k| p.level_output(k, d, noise))
                    .collect();
                let first = t.iter().copied().find(|&x| x != 0);
                assert_eq!(first, Some(want), "d {d} noise {noise}: {t:?}");
                let s: i64 = t
                    .iter()
                    .enumerate()
                    .map(|(k, x)| p.level_weight(k) * x)
                    .sum();
                assert_eq!(s.signum(), want);
                assert_eq!(s.rem_euclid(2), 1);
            }
        }
    }

    #[test]
    fn the_pairs_reproduce_the_logit_differences() {
        let m = veil_nn::bundled_model().unwrap().quantized;
        let fp = FhePlan::new(&m, 2048).unwrap();
        for radix in [1, 4, 8] {
            let p = ArgmaxPlan::with_radix(&fp, radix).unwrap();
            assert_eq!(p.pairs.len(), 45);
            let codes: Vec<u8> = (0..64).map(|i| (i * 5 % 16) as u8).collect();
            let t = m.tensors(&codes);
            let (h, logits) = (&t[2], &t[3]);
            for pair in &p.pairs {
                let d = pair.constant
                    + pair
                        .terms
                        .iter()
                        .map(|&(k, q, c)| c * radix.pow(q) * h[k as usize])
                        .sum::<i64>();
                assert_eq!(d, logits[pair.i] - logits[pair.j]);
                assert!(d.abs() <= p.max_difference);
            }
        }
    }

    #[test]
    fn the_tables_count_wins_and_name_the_class() {
        let p = plan();
        let s = slot(p.polynomial_size);
        let (w, z) = (p.win_unit / s, p.class_unit / s);
        for i in 0..p.classes {
            let t = p.winner_table(i);
            for wins in 0..p.classes as u64 {
                let centre = wins * w + w / 2;
                for x in [centre - p.win_margin, centre, centre + p.win_margin] {
                    let want = if wins == p.classes as u64 - 1 {
                        i as u64 * p.class_unit
                    } else {
                        0
                    };
                    assert_eq!(t[x as usize], want, "class {i} wins {wins} at {x}");
                }
            }
        }
        let t = p.class_table();
        for c in 0..p.classes as u64 {
            for x in [c * z + z / 2 - p.win_margin, c * z + z / 2 + p.win_margin] {
                assert_eq!(crate::decode_logit(t[x as usize], p.class_bits), c as i64);
            }
        }
        assert!(p.failure_bound() < 1e-9);
    }
}
