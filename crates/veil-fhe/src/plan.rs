//! The encoding that lets one programmable bootstrap compute a hidden activation as veil-nn's
//! integer inference does, and the server's evaluation plan of a model graph of any depth.
//!
//! Pure integer arithmetic, no cryptography: everything here is checked without keys.
//!
//! # Stages
//!
//! The model graph (`veil_nn::graph`) alternates linear ops (dense, convolution, sum pooling,
//! flatten) and ReLUs. The plan composes the linear ops between two ReLUs into one affine map
//! per *stage* ([`AffineRow`]: integer coefficients over the stage's inputs, exact); each ReLU
//! becomes one programmable bootstrap per value; the linear ops after the last ReLU are the
//! output layer, left as wide accumulators for the client to decrypt.
//!
//! # Encoding (the torus is `Z / 2^64`; a bootstrap reads a phase in units of a *slot*,
//! `2^64 / 2N`, with `N` the polynomial size, so `2N` slots in all)
//!
//! - **Stage inputs**: the client encrypts each input code `x` as `x · Δ_in` with
//!   `Δ_in = slot / 64`. A stage's bootstraps return activation `i` at scale `Δ_in · 2^t_i`,
//!   or `Δ_out` before the output layer. A bootstrap's output noise (up to about `2^50` here)
//!   is far above `Δ_in = 2^46`, and the next stage multiplies its inputs by `k_j` (tens to
//!   thousands) to spread its accumulator over the slots: at `Δ_in` the noise would land
//!   thousands of slots off. So each output is encoded as coarsely as its readers allow:
//!   `t_i` is the smallest `⌊log2 k_j⌋` over the next-stage values `j` that read it (at most
//!   10), each `k_j` is rounded down to a multiple of `2^(max t_i of its inputs)` (at worst
//!   halving its resolution), and the server multiplies input `i` of value `j` by
//!   `a_ji · k_j / 2^t_i`, an integer ([`Stage::mults`]). The noiseless phase is unchanged; the
//!   noise it carries in from a bootstrap output is `2^t_i` times smaller, a few slots.
//! - **Hidden value `j`** of a stage, with exact accumulator range `[lo_j, hi_j]`
//!   (`QuantGraph::ranges`) and affine row `c_j + Σ_i a_ji x_i`: the server computes, with no
//!   bootstrap, `k_j · Σ_i a_ji · ct_i + (k_j · (c_j − lo_j) · Δ_in + m · slot)`, an encryption
//!   of `(acc_j − lo_j) · u_j + m` slots, where `u_j = k_j / 64` slots per accumulator unit and
//!   `k_j` the largest integer with `(hi_j − lo_j) · u_j ≤ N − 2m`. The phase stays in
//!   `[m, N − m]` slots: inside the half torus that the padding bit reserves, with a margin of
//!   `m` slots on each side for the noise.
//! - **Lookup**: the bootstrap reads slot `s` and returns `LUT_j[s] · Δ`, where
//!   `LUT_j[s] = requant(lo_j + round((s − m) / u_j))`: ReLU, rounding and clipping of the
//!   accumulator, the very function of `Requant::apply`.
//! - **Output layer**: the server computes the output rows on the last stage's bootstrap
//!   outputs, scaled by `Δ_out = 2^(64 − b)` with `b` the logits' width in the public
//!   architecture, so every logit fits the torus without wrapping; the client decrypts and
//!   rounds.
//!
//! The range of a hidden value is its exact range over all inputs, or, for a model quantized
//! with calibration data (`QuantGraph::observed`, as `veil import` records it), the range the
//! calibration images reached, widened by half its width and one requantization step on each
//! side and kept within the exact range: Concrete ML's practice of sizing lookups from
//! calibration (Zama, "Concrete ML", documentation on the calibration of bit widths). A dense
//! layer over a thousand inputs has a worst case tens of times wider than anything an image
//! reaches; planning over the reached range gives its lookups that much finer a resolution.
//! An input that drives an accumulator beyond its planned range by more than the margin reads
//! a wrong activation (the phase wraps): the price of the resolution, measured with the rest
//! by `veil fhe eval`.
//!
//! When `k_j ≥ 64` (an accumulator range of at most about 1900 values at `N = 2048`) every
//! accumulator value has a slot of its own, and the encrypted path computes exactly the
//! plaintext integer inference unless the noise moves a phase across the boundary between two
//! values whose lookups differ: a bootstrap failure, measured by `veil fhe eval`. Wider ranges
//! (a dense layer over 784 pixels) put several accumulator values in one slot: the lookup then
//! reads the accumulator at reduced resolution, Concrete ML's approximate rounding (Zama,
//! "Concrete ML", documentation on rounded table lookups), and an activation whose
//! accumulator lies within a slot of a requantization boundary may come out one step off; the
//! per-neuron scaling `k_j` spends the whole half torus on each neuron's own range, and
//! `veil fhe eval` measures how often the class changes.

use veil_nn::graph::{identity_affine, Affine, Architecture, QuantGraph};
use veil_nn::quant::{AccRange, Requant};

/// Fraction of a slot an input unit occupies: `Δ_in = slot / SUBSLOT`.
pub const SUBSLOT: u64 = 64;
/// Slots kept free at each end of a hidden neuron's phase range, against the noise (the
/// standard deviation of a bootstrap's input noise is a few slots at tfhe's 2_2 parameters).
pub const MARGIN_SLOTS: u64 = 64;

/// Why a model cannot be evaluated under this encoding.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The model has no activation: the encrypted evaluator needs at least one.
    #[error("the encrypted evaluator needs at least one relu (this model is linear)")]
    NoActivation,
    /// The model graph is malformed.
    #[error("invalid model graph: {0}")]
    Graph(String),
    /// A value does not fit the encoding.
    #[error("{0}")]
    Range(String),
}

/// How one hidden neuron is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeuronPlan {
    /// Smallest accumulator value.
    pub lo: i64,
    /// Largest accumulator value.
    pub hi: i64,
    /// The integer scale `k_j`.
    pub k: u64,
    /// The plaintext added after the weighted sum: `k_j·(c_j − lo_j)·Δ_in + m·slot`.
    pub offset: u64,
}

/// One output of an affine map over a stage's inputs: `constant + Σ coef · input`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AffineRow {
    /// `(input index, coefficient)`, by increasing input index, no zero coefficient.
    pub terms: Vec<(u32, i64)>,
    /// The constant.
    pub constant: i64,
}

/// A hidden stage: the linear ops between two activations, composed into one affine map, then
/// one bootstrap per output.
#[derive(Clone, Debug)]
pub struct Stage {
    /// The affine map from the stage's inputs to its accumulators.
    pub rows: Vec<AffineRow>,
    /// The requantization the bootstraps compute.
    pub requant: Requant,
    /// One plan per output.
    pub neurons: Vec<NeuronPlan>,
    /// The multipliers of the server's linear combination for each output: `(input index,
    /// a_ji · k_j / 2^t_i)`, where input `i` is encoded at `Δ_in · 2^t_i` (see the module
    /// documentation).
    pub mults: Vec<Vec<(u32, i64)>>,
    /// The scale of each bootstrap output: `Δ_in · 2^t_i` when another stage follows (`t_i`
    /// as large as the next stage's multipliers allow), `Δ_out` before the output layer.
    pub out_scale: Vec<u64>,
}

/// The server's plan for one model and one polynomial size.
#[derive(Clone, Debug)]
pub struct FhePlan {
    /// Polynomial size `N` of the bootstrapping key.
    pub polynomial_size: usize,
    /// Number of input codes.
    pub inputs: usize,
    /// Largest input code.
    pub input_max: u8,
    /// The hidden stages, input first.
    pub stages: Vec<Stage>,
    /// The output layer: logits as an affine map of the last stage's outputs.
    pub output: Vec<AffineRow>,
    /// Bits of the widest logit; `Δ_out = 2^(64 − output_bits)`.
    pub output_bits: u32,
}

/// The size of one slot for polynomial size `n`: `2^64 / 2N`.
pub fn slot(polynomial_size: usize) -> u64 {
    1u64 << (64 - (2 * polynomial_size).trailing_zeros())
}

/// `Δ_in` for polynomial size `n`.
pub fn input_delta(polynomial_size: usize) -> u64 {
    slot(polynomial_size) / SUBSLOT
}

/// `Δ_out = 2^(64 − bits)`.
pub fn output_delta(output_bits: u32) -> u64 {
    1u64 << (64 - output_bits)
}

/// The public facts the client needs to encrypt and decrypt for a model: its input width,
/// number of outputs and output accumulator width, all read from the public architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicShape {
    /// Input codes per query.
    pub inputs: usize,
    /// Largest input code.
    pub input_max: u8,
    /// Logits per answer.
    pub outputs: usize,
    /// Bits of the widest logit.
    pub output_bits: u32,
}

impl PublicShape {
    /// The client's view of a model, from its public architecture alone.
    pub fn of(architecture: &Architecture) -> Result<PublicShape, PlanError> {
        let types = architecture
            .validate()
            .map_err(|e| PlanError::Graph(e.to_string()))?;
        let (shape, t) = types.last().copied().ok_or(PlanError::NoActivation)?;
        if t.bits > 40 {
            return Err(PlanError::Range(format!("{}-bit logits", t.bits)));
        }
        Ok(PublicShape {
            inputs: architecture.input_count(),
            input_max: architecture.input_max() as u8,
            outputs: shape.len(),
            output_bits: t.bits,
        })
    }
}

/// An affine expression as a row: its non-zero terms by input.
fn row_of((terms, constant): Affine) -> AffineRow {
    AffineRow {
        terms: terms.into_iter().filter(|&(_, c)| c != 0).collect(),
        constant,
    }
}

impl FhePlan {
    /// Plans a model graph of any depth for polynomial size `n` (a power of two): the linear
    /// ops between two ReLUs become one affine map per stage, evaluated as LWE linear
    /// combinations, and every ReLU one programmable bootstrap.
    pub fn new(model: &QuantGraph, polynomial_size: usize) -> Result<FhePlan, PlanError> {
        model
            .validate()
            .map_err(|e| PlanError::Graph(e.to_string()))?;
        if !polynomial_size.is_power_of_two() || polynomial_size < 256 {
            return Err(PlanError::Range(format!(
                "polynomial size {polynomial_size}"
            )));
        }
        let arch = &model.architecture;
        let shape = PublicShape::of(arch)?;
        let shapes = arch.shapes().map_err(|e| PlanError::Graph(e.to_string()))?;
        let ranges = model.ranges();
        let n = polynomial_size as u64;
        let usable = (n - 2 * MARGIN_SLOTS) * SUBSLOT;
        let delta_in = input_delta(polynomial_size);
        let mut stages: Vec<Stage> = Vec::new();
        let mut expr = identity_affine(arch.input_count());
        let mut p = 0;
        for (k, op) in arch.ops.iter().enumerate() {
            let g = op.geometry();
            if let Some(rows) = g.rows(shapes[k]) {
                let params = if g.has_params() {
                    p += 1;
                    model.params.get(p - 1)
                } else {
                    None
                };
                expr = rows.compose(&expr, params, false);
            } else if let Some(requant) = op.requant() {
                // Stage outputs: ReLU of the accumulators in tensor k, over their exact
                // ranges, or over the calibration ranges widened (see the module docs).
                let observed = model.observed.as_ref().and_then(|o| o.get(stages.len()));
                let rows: Vec<AffineRow> =
                    std::mem::take(&mut expr).into_iter().map(row_of).collect();
                let neurons = rows
                    .iter()
                    .zip(&ranges[k])
                    .enumerate()
                    .map(|(j, (row, exact))| {
                        let r = match observed.and_then(|o| o.get(j)) {
                            Some(seen) => widened(seen, exact, requant),
                            None => *exact,
                        };
                        neuron_plan(row, &r, usable, delta_in, polynomial_size)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let outputs = rows.len();
                stages.push(Stage {
                    rows,
                    requant,
                    neurons,
                    mults: Vec::new(),
                    out_scale: vec![delta_in; outputs],
                });
                expr = identity_affine(outputs);
            }
        }
        let output_bits = shape.output_bits;
        if stages.is_empty() {
            return Err(PlanError::NoActivation);
        }
        // Output scales: stage s's output i is encoded at Δ_in · 2^t_i with t_i the largest
        // power of two that divides every next-stage scale k_j that reads it (after k_j is
        // rounded down to a multiple of 2^(max t_i of its inputs)); see the module docs.
        for s in 1..stages.len() {
            let (before, after) = stages.split_at_mut(s);
            let (prev, next) = (&mut before[s - 1], &mut after[0]);
            let mut t = vec![MAX_OUT_SHIFT; prev.out_scale.len()];
            for (row, n) in next.rows.iter().zip(&next.neurons) {
                let log_k = 63 - n.k.leading_zeros();
                for &(i, _) in &row.terms {
                    if let Some(ti) = t.get_mut(i as usize) {
                        *ti = (*ti).min(log_k);
                    }
                }
            }
            for (row, n) in next.rows.iter().zip(next.neurons.iter_mut()) {
                let top = row
                    .terms
                    .iter()
                    .map(|&(i, _)| t.get(i as usize).copied().unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                let k = (n.k >> top) << top;
                *n = rescaled(n, k, row.constant, delta_in, polynomial_size);
            }
            for (scale, ti) in prev.out_scale.iter_mut().zip(&t) {
                *scale = delta_in << ti;
            }
            next.mults = multipliers(&next.rows, &next.neurons, &t);
        }
        if let Some(first) = stages.first_mut() {
            first.mults = multipliers(&first.rows, &first.neurons, &[]);
        }
        let Some(last) = stages.last_mut() else {
            return Err(PlanError::NoActivation);
        };
        if output_bits + u32::from(last.requant.out_bits) > 62 {
            return Err(PlanError::Range(format!("{output_bits}-bit logits")));
        }
        last.out_scale = vec![output_delta(output_bits); last.out_scale.len()];
        Ok(FhePlan {
            polynomial_size,
            inputs: shape.inputs,
            input_max: shape.input_max,
            stages,
            output: expr.into_iter().map(row_of).collect(),
            output_bits,
        })
    }

    /// The logits the output layer gives for the last hidden stage's activations `last`.
    pub fn logits_of(&self, last: &[i64]) -> Vec<i64> {
        self.output
            .iter()
            .map(|r| {
                r.constant
                    + r.terms
                        .iter()
                        .map(|&(k, c)| c * last.get(k as usize).copied().unwrap_or(0))
                        .sum::<i64>()
            })
            .collect()
    }

    /// What the client must know (the same as [`PublicShape::of`] the architecture).
    pub fn public_shape(&self) -> PublicShape {
        PublicShape {
            inputs: self.inputs,
            input_max: self.input_max,
            outputs: self.output.len(),
            output_bits: self.output_bits,
        }
    }

    /// Bootstraps per query: one per hidden activation.
    pub fn bootstraps(&self) -> usize {
        self.stages.iter().map(|s| s.neurons.len()).sum()
    }

    /// The accumulator value slot `s` (in `0..N`) decodes to for neuron `j` of stage `stage`:
    /// the value nearest the slot's centre, within the neuron's range.
    pub fn slot_to_acc(&self, stage: usize, j: usize, s: u64) -> i64 {
        let p = &self.stages[stage].neurons[j];
        let rel = (s as i64 - MARGIN_SLOTS as i64) * SUBSLOT as i64;
        // round(rel / k), ties upward, then clamp to the range.
        let k = p.k as i64;
        let a = p.lo + (2 * rel + k).div_euclid(2 * k);
        a.clamp(p.lo, p.hi)
    }

    /// The lookup table of neuron `j` of stage `stage`: `N` torus values,
    /// `requant(acc(s)) · out_scale[j]`.
    pub fn lookup_table(&self, stage: usize, j: usize) -> Vec<u64> {
        self.lookup_table_at(stage, j, self.stages[stage].out_scale[j])
    }

    /// The same table with the activations at another `scale`: `requant(acc(s)) · scale`.
    pub fn lookup_table_at(&self, stage: usize, j: usize, scale: u64) -> Vec<u64> {
        let st = &self.stages[stage];
        (0..self.polynomial_size as u64)
            .map(|s| (st.requant.apply(self.slot_to_acc(stage, j, s)) as u64).wrapping_mul(scale))
            .collect()
    }

    /// The exact phase, in torus units, of neuron `j`'s bootstrap input for accumulator `acc`
    /// (before noise): `(acc − lo)·k·Δ_in + m·slot`.
    pub fn phase(&self, stage: usize, j: usize, acc: i64) -> u64 {
        let p = &self.stages[stage].neurons[j];
        ((acc - p.lo) as u64)
            .wrapping_mul(p.k)
            .wrapping_mul(input_delta(self.polynomial_size))
            .wrapping_add(MARGIN_SLOTS * slot(self.polynomial_size))
    }

    /// The activation a bootstrap returns for accumulator `acc` of neuron `j` of stage `stage`
    /// when its phase carries no noise: the table entry of the slot nearest the phase, negated
    /// in the upper half of the torus (a phase beyond the planned range wraps there). Equal to
    /// `requant(acc)` when the plan is exact and `acc` is within the range; the bootstrap
    /// failures `veil fhe eval` counts are the entries that differ from this one.
    pub fn noiseless_activation(&self, stage: usize, j: usize, acc: i64) -> i64 {
        let n = self.polynomial_size as u64;
        let sl = slot(self.polynomial_size);
        let s = (self.phase(stage, j, acc).wrapping_add(sl / 2) / sl) % (2 * n);
        let requant = self.stages[stage].requant;
        if s < n {
            requant.apply(self.slot_to_acc(stage, j, s))
        } else {
            -requant.apply(self.slot_to_acc(stage, j, s - n))
        }
    }

    /// Whether every accumulator of every neuron lies at least one slot from its neighbours,
    /// so that a noiseless phase always decodes to its exact value (`k_j >= 64`); when not,
    /// the lookup reads some accumulators at a coarser resolution (see the module docs).
    pub fn exact(&self) -> bool {
        self.stages
            .iter()
            .all(|s| s.neurons.iter().all(|n| n.k >= SUBSLOT))
    }
}

/// The range a neuron is planned over when calibration ranges are known: the range the
/// calibration images reached, widened by half its width and one requantization step on each
/// side, within the exact range.
fn widened(seen: &AccRange, exact: &AccRange, requant: Requant) -> AccRange {
    let pad = (seen.max - seen.min) / 2 + (1i64 << requant.shift);
    AccRange {
        min: seen.min.saturating_sub(pad).max(exact.min),
        max: seen.max.saturating_add(pad).min(exact.max),
    }
}

/// Largest output shift `t_i`: `Δ_in · 2^t` is at most `2^56`, so an activation of up to 8
/// bits times it still fits the torus.
const MAX_OUT_SHIFT: u32 = 10;

/// The server's multipliers `a_ji · k_j / 2^t_i` (inputs with no `t` entry: `t_i = 0`).
fn multipliers(rows: &[AffineRow], neurons: &[NeuronPlan], t: &[u32]) -> Vec<Vec<(u32, i64)>> {
    rows.iter()
        .zip(neurons)
        .map(|(row, n)| {
            row.terms
                .iter()
                .map(|&(i, a)| {
                    let ti = t.get(i as usize).copied().unwrap_or(0);
                    (i, a.wrapping_mul((n.k >> ti) as i64))
                })
                .collect()
        })
        .collect()
}

/// A neuron plan with scale `k` (no larger than the one it had).
fn rescaled(
    n: &NeuronPlan,
    k: u64,
    constant: i64,
    delta_in: u64,
    polynomial_size: usize,
) -> NeuronPlan {
    let offset = (k as i64)
        .wrapping_mul(constant - n.lo)
        .wrapping_mul(delta_in as i64) as u64;
    NeuronPlan {
        lo: n.lo,
        hi: n.hi,
        k,
        offset: offset.wrapping_add(MARGIN_SLOTS * slot(polynomial_size)),
    }
}

fn neuron_plan(
    row: &AffineRow,
    r: &AccRange,
    usable: u64,
    delta_in: u64,
    polynomial_size: usize,
) -> Result<NeuronPlan, PlanError> {
    let span = (r.max - r.min).max(1) as u64;
    let k = usable / span;
    if k == 0 {
        return Err(PlanError::Range(format!(
            "a hidden accumulator spans {span} values: too wide for one bootstrap of polynomial \
             size {polynomial_size} (at most {usable} values)"
        )));
    }
    let offset = (k as i64)
        .wrapping_mul(row.constant - r.min)
        .wrapping_mul(delta_in as i64) as u64;
    Ok(NeuronPlan {
        lo: r.min,
        hi: r.max,
        k,
        offset: offset.wrapping_add(MARGIN_SLOTS * slot(polynomial_size)),
    })
}

/// Decodes a logit's phase: `round(phase / Δ_out)` as a signed `bits`-bit integer.
pub fn decode_logit(phase: u64, bits: u32) -> i64 {
    let d = output_delta(bits);
    let q = phase.wrapping_add(d / 2) >> (64 - bits);
    // Sign-extend from `bits`.
    let shift = 64 - bits;
    ((q << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> QuantGraph {
        veil_nn::bundled_model().unwrap().quantized
    }

    fn plan() -> FhePlan {
        FhePlan::new(&model(), 2048).unwrap()
    }

    #[test]
    fn noiseless_phases_decode_to_the_exact_requantization() {
        let p = plan();
        assert!(p.exact());
        let m = model();
        let requant = m.architecture.ops[1].requant().unwrap();
        let s = slot(p.polynomial_size);
        let st = &p.stages[0];
        for j in 0..st.neurons.len() {
            let lut = p.lookup_table(0, j);
            let n = &st.neurons[j];
            for acc in n.lo..=n.hi {
                let phase = p.phase(0, j, acc);
                assert!(phase < (p.polynomial_size as u64 - MARGIN_SLOTS + 1) * s);
                // The bootstrap rounds the phase to the nearest slot.
                let slot_index = (phase + s / 2) / s;
                let y = lut[slot_index as usize] / output_delta(p.output_bits);
                assert_eq!(y as i64, requant.apply(acc), "neuron {j} acc {acc}");
            }
        }
    }

    #[test]
    fn the_affine_maps_reproduce_the_integer_reference() {
        let m = model();
        let p = plan();
        let codes: Vec<u8> = (0..64).map(|i| (i * 7 % 16) as u8).collect();
        let tensors = m.tensors(&codes);
        let eval = |rows: &[AffineRow], x: &[i64]| -> Vec<i64> {
            rows.iter()
                .map(|r| r.constant + r.terms.iter().map(|&(i, c)| c * x[i as usize]).sum::<i64>())
                .collect()
        };
        let x: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
        assert_eq!(eval(&p.stages[0].rows, &x), tensors[1]);
        assert_eq!(eval(&p.output, &tensors[2]), tensors[3]);
        assert_eq!(p.public_shape(), PublicShape::of(&m.architecture).unwrap());
    }

    #[test]
    fn logits_round_trip() {
        for bits in [4u32, 9, 20] {
            let d = output_delta(bits);
            for v in [
                -(1i64 << (bits - 1)),
                -3,
                -1,
                0,
                1,
                7,
                (1 << (bits - 1)) - 1,
            ] {
                let phase = (v as u64).wrapping_mul(d);
                for noise in [0i64, (d / 3) as i64, -((d / 3) as i64)] {
                    assert_eq!(decode_logit(phase.wrapping_add(noise as u64), bits), v);
                }
            }
        }
    }

    #[test]
    fn a_model_without_activation_is_an_error() {
        let mut m = model();
        m.architecture.ops.truncate(1);
        m.params.truncate(1);
        m.architecture.ops[0] = veil_nn::graph::Op::Dense {
            outputs: 24,
            weight_bits: 4,
            acc_bits: 32,
        };
        assert_eq!(FhePlan::new(&m, 2048).unwrap_err(), PlanError::NoActivation);
    }
}
