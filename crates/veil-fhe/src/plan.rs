//! The encoding that lets one programmable bootstrap compute a hidden neuron exactly as
//! veil-nn's integer inference does, and the server's evaluation plan built from it.
//!
//! Pure integer arithmetic, no cryptography: everything here is checked without keys.
//!
//! # Encoding (the torus is `Z / 2^64`; a bootstrap reads a phase in units of a *slot*,
//! `2^64 / 2N`, with `N` the polynomial size, so `2N` slots in all)
//!
//! - **Inputs**: the client encrypts each input code `x` (0..=15) as `x · Δ_in` with
//!   `Δ_in = slot / 64`.
//! - **Hidden neuron `j`** with exact accumulator range `[lo_j, hi_j]`
//!   (`QuantModel::accumulator_ranges`): the server computes, with no bootstrap,
//!   `k_j · Σ_i w_ji · ct_i + (k_j · (b_j − lo_j) · Δ_in + m · slot)`, an encryption of
//!   `(acc_j − lo_j) · u_j + m` slots, where `u_j = k_j / 64` slots per accumulator unit and
//!   `k_j` the largest integer with `(hi_j − lo_j) · u_j ≤ N − 2m`. The phase stays in
//!   `[m, N − m]` slots: inside the half torus that the padding bit reserves, with a margin of
//!   `m` slots on each side for the noise.
//! - **Lookup**: the bootstrap reads slot `s` and returns `LUT_j[s] · Δ_out`, where
//!   `LUT_j[s] = requant(lo_j + round((s − m) / u_j))`: ReLU, rounding and clipping of the
//!   accumulator, the very function of `Requant::apply`. One bootstrap per hidden neuron.
//! - **Output layer**: the server computes `Σ_j w_kj · y_j + b_k` on the bootstrap outputs,
//!   scaled by `Δ_out = 2^(64 − b)` with `b` the widest output accumulator (two's complement),
//!   so every logit fits the torus without wrapping; the client decrypts and rounds.
//!
//! The encrypted path therefore computes exactly the plaintext integer inference unless the
//! noise moves a phase across the boundary between two accumulator values whose lookups
//! differ: a bootstrap failure, measured by `veil fhe eval`. The idea of letting a lookup read
//! a wide accumulator at reduced resolution is Concrete ML's approximate rounding (Zama,
//! "Concrete ML", documentation on rounded table lookups); the per-neuron scaling `k_j` spends
//! the whole half torus on each neuron's own range.

use veil_nn::quant::{AccRange, QuantModel, Requant};

/// Fraction of a slot an input unit occupies: `Δ_in = slot / SUBSLOT`.
pub const SUBSLOT: u64 = 64;
/// Slots kept free at each end of a hidden neuron's phase range, against the noise (the
/// standard deviation of a bootstrap's input noise is a few slots at tfhe's 2_2 parameters).
pub const MARGIN_SLOTS: u64 = 64;

/// Why a model cannot be evaluated under this encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The model's shape is not the one supported.
    #[error("the encrypted evaluator supports MLPs with exactly one hidden layer; this model has {0} layers")]
    Layers(usize),
    /// A value does not fit the encoding.
    #[error("{0}")]
    Range(String),
}

/// How hidden neuron `j` is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeuronPlan {
    /// Smallest accumulator value.
    pub lo: i64,
    /// Largest accumulator value.
    pub hi: i64,
    /// The integer scale `k_j`.
    pub k: u64,
    /// The plaintext added after the weighted sum: `k_j·(b_j − lo_j)·Δ_in + m·slot`.
    pub offset: u64,
}

/// The server's plan for one model and one polynomial size.
#[derive(Clone, Debug)]
pub struct FhePlan {
    /// Polynomial size `N` of the bootstrapping key.
    pub polynomial_size: usize,
    /// Width of the input.
    pub inputs: usize,
    /// The hidden layer's weights, row-major.
    pub hidden_weights: Vec<i8>,
    /// The hidden requantization.
    pub requant: Requant,
    /// One plan per hidden neuron.
    pub neurons: Vec<NeuronPlan>,
    /// The output layer's weights, row-major (`outputs` rows of `neurons.len()`).
    pub output_weights: Vec<i8>,
    /// The output layer's biases.
    pub output_bias: Vec<i32>,
    /// Bits of the widest output accumulator; `Δ_out = 2^(64 − output_bits)`.
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
/// number of outputs and output accumulator width (the layer sizes and bit widths are public).
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

impl FhePlan {
    /// Plans a one-hidden-layer model for polynomial size `n` (a power of two).
    pub fn new(model: &QuantModel, polynomial_size: usize) -> Result<FhePlan, PlanError> {
        if model.layers.len() != 2 {
            return Err(PlanError::Layers(model.layers.len()));
        }
        if !polynomial_size.is_power_of_two() || polynomial_size < 256 {
            return Err(PlanError::Range(format!(
                "polynomial size {polynomial_size}"
            )));
        }
        let (hidden, out) = (&model.layers[0], &model.layers[1]);
        let requant = hidden
            .requant
            .ok_or_else(|| PlanError::Range("the hidden layer has no requantization".into()))?;
        let ranges = model.accumulator_ranges();
        let n = polynomial_size as u64;
        let usable = (n - 2 * MARGIN_SLOTS) * SUBSLOT;
        let delta_in = input_delta(polynomial_size);
        let neurons = ranges[0]
            .iter()
            .zip(&hidden.bias)
            .map(|(r, &b)| {
                let span = (r.max - r.min).max(1) as u64;
                let k = usable / span;
                // More than one slot per accumulator unit, so that rounding the noiseless
                // phase to a slot always recovers the accumulator.
                if k <= SUBSLOT {
                    return Err(PlanError::Range(format!(
                        "a hidden accumulator spans {span} values: too wide for one bootstrap of \
                         polynomial size {polynomial_size} (at most {} values)",
                        usable / (SUBSLOT + 1)
                    )));
                }
                let offset = (k as i64)
                    .wrapping_mul(i64::from(b) - r.min)
                    .wrapping_mul(delta_in as i64) as u64;
                Ok(NeuronPlan {
                    lo: r.min,
                    hi: r.max,
                    k,
                    offset: offset.wrapping_add(MARGIN_SLOTS * slot(polynomial_size)),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output_bits = ranges[1]
            .iter()
            .map(AccRange::signed_bits)
            .max()
            .unwrap_or(1);
        if output_bits + u32::from(requant.out_bits) > 62 {
            return Err(PlanError::Range(format!("{output_bits}-bit logits")));
        }
        Ok(FhePlan {
            polynomial_size,
            inputs: hidden.inputs,
            hidden_weights: hidden.weights.clone(),
            requant,
            neurons,
            output_weights: out.weights.clone(),
            output_bias: out.bias.clone(),
            output_bits,
        })
    }

    /// What the client must know.
    pub fn public_shape(&self, input_max: u8) -> PublicShape {
        PublicShape {
            inputs: self.inputs,
            input_max,
            outputs: self.output_bias.len(),
            output_bits: self.output_bits,
        }
    }

    /// The hidden layer's weights into neuron `j`.
    pub fn hidden_row(&self, j: usize) -> &[i8] {
        &self.hidden_weights[j * self.inputs..(j + 1) * self.inputs]
    }

    /// The output layer's weights into logit `k`.
    pub fn output_row(&self, k: usize) -> &[i8] {
        let h = self.neurons.len();
        &self.output_weights[k * h..(k + 1) * h]
    }

    /// The accumulator value slot `s` (in `0..N`) decodes to for neuron `j`.
    pub fn slot_to_acc(&self, j: usize, s: u64) -> i64 {
        let p = &self.neurons[j];
        let rel = (s as i64 - MARGIN_SLOTS as i64) * SUBSLOT as i64;
        // round(rel / k), ties upward, then clamp to the range.
        let k = p.k as i64;
        let a = p.lo + (2 * rel + k).div_euclid(2 * k);
        a.clamp(p.lo, p.hi)
    }

    /// The lookup table of neuron `j`: `N` torus values, `requant(acc(s)) · Δ_out`.
    pub fn lookup_table(&self, j: usize) -> Vec<u64> {
        let d = output_delta(self.output_bits);
        (0..self.polynomial_size as u64)
            .map(|s| (self.requant.apply(self.slot_to_acc(j, s)) as u64).wrapping_mul(d))
            .collect()
    }

    /// The exact phase, in torus units, of neuron `j`'s bootstrap input for accumulator `acc`
    /// (before noise): `(acc − lo)·k·Δ_in + m·slot`.
    pub fn phase(&self, j: usize, acc: i64) -> u64 {
        let p = &self.neurons[j];
        ((acc - p.lo) as u64)
            .wrapping_mul(p.k)
            .wrapping_mul(input_delta(self.polynomial_size))
            .wrapping_add(MARGIN_SLOTS * slot(self.polynomial_size))
    }
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

    fn plan() -> FhePlan {
        let m = veil_nn::bundled_model().unwrap().quantized;
        FhePlan::new(&m, 2048).unwrap()
    }

    #[test]
    fn noiseless_phases_decode_to_the_exact_requantization() {
        let p = plan();
        let m = veil_nn::bundled_model().unwrap().quantized;
        let s = slot(p.polynomial_size);
        for j in 0..p.neurons.len() {
            let lut = p.lookup_table(j);
            let n = &p.neurons[j];
            for acc in n.lo..=n.hi {
                let phase = p.phase(j, acc);
                assert!(phase < (p.polynomial_size as u64 - MARGIN_SLOTS + 1) * s);
                // The bootstrap rounds the phase to the nearest slot.
                let slot_index = (phase + s / 2) / s;
                let y = lut[slot_index as usize] / output_delta(p.output_bits);
                assert_eq!(
                    y as i64,
                    m.layers[0].requant.unwrap().apply(acc),
                    "neuron {j} acc {acc}"
                );
            }
        }
    }

    #[test]
    fn neighbouring_accumulators_are_at_least_one_slot_apart() {
        let p = plan();
        for n in &p.neurons {
            assert!(n.k >= SUBSLOT, "k = {}", n.k);
        }
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
    fn unsupported_shapes_are_errors() {
        let mut m = veil_nn::bundled_model().unwrap().quantized;
        m.layers.pop();
        assert_eq!(FhePlan::new(&m, 2048).unwrap_err(), PlanError::Layers(1));
    }
}
