//! Post-training quantization and the exact integer inference the private protocols reproduce.
//!
//! The arithmetic is specified in `QUANTIZATION.md` beside this crate; in short, for an input
//! image with pixels `p` in `0..=16`:
//!
//! ```text
//! x0[i]   = (p[i] * (2^input_bits - 1) + 8) >> 4                        (input codes)
//! acc[j]  = bias[j] + sum_i w[j][i] * x[i]                              (exact integers)
//! x'[j]   = clamp((acc[j] + 2^(shift-1)) >> shift, 0, 2^out_bits - 1)  (hidden layers)
//! class   = first j with the largest acc[j] of the last layer
//! ```
//!
//! `>>` is the arithmetic shift (floor division by a power of two) and `2^(shift-1)` is 0 when
//! `shift` is 0. Requantization by a power of two makes ReLU, rounding and clipping one table
//! lookup on the accumulator, so a TFHE programmable bootstrap or a small comparison circuit
//! computes it exactly. Every accumulator's range follows from the weights and the input
//! widths alone ([`QuantModel::accumulator_ranges`]), so a protocol can size its encodings
//! before it sees an input.
//!
//! The scales follow the usual affine scheme with zero points fixed at zero (Jacob et al.,
//! "Quantization and training of neural networks for efficient integer-arithmetic-only
//! inference", CVPR 2018, section 2), restricted to power-of-two requantization; the clipping
//! ratio of each layer and each shift are calibrated on the training split only.

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, IMAGE_PIXELS, PIXEL_MAX};
use crate::float::{input_features, FloatModel};

/// Bit widths of a quantized model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantSpec {
    /// Width of the unsigned input codes (`1..=8`).
    pub input_bits: u8,
    /// Width of the signed weights (`2..=8`): values in `-(2^(b-1)-1) ..= 2^(b-1)-1`.
    pub weight_bits: u8,
    /// Width of the unsigned hidden activations (`1..=8`).
    pub activation_bits: u8,
}

impl Default for QuantSpec {
    fn default() -> Self {
        QuantSpec {
            input_bits: 4,
            weight_bits: 4,
            activation_bits: 3,
        }
    }
}

/// ReLU, rounding and clipping of a hidden accumulator: see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requant {
    /// Power of two the accumulator is divided by (with rounding half up).
    pub shift: u8,
    /// Width of the unsigned output (`1..=8`).
    pub out_bits: u8,
}

impl Requant {
    /// Largest output value, `2^out_bits - 1`.
    pub fn max_out(&self) -> i64 {
        (1i64 << self.out_bits) - 1
    }

    /// `clamp((acc + 2^(shift-1)) >> shift, 0, 2^out_bits - 1)`.
    pub fn apply(&self, acc: i64) -> i64 {
        let half = if self.shift == 0 {
            0
        } else {
            1i64 << (self.shift - 1)
        };
        ((acc + half) >> self.shift).clamp(0, self.max_out())
    }
}

/// One quantized dense layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QLayer {
    /// Width of the input.
    pub inputs: usize,
    /// Width of the output.
    pub outputs: usize,
    /// Width of the signed weights.
    pub weight_bits: u8,
    /// `outputs * inputs` weights, row-major (row `j` feeds output `j`).
    pub weights: Vec<i8>,
    /// `outputs` biases, in accumulator units.
    pub bias: Vec<i32>,
    /// Present on hidden layers, absent on the output layer.
    pub requant: Option<Requant>,
}

impl QLayer {
    /// The weights of output `j`.
    pub fn row(&self, j: usize) -> &[i8] {
        &self.weights[j * self.inputs..(j + 1) * self.inputs]
    }

    /// `bias[j] + sum_i w[j][i] * x[i]` for every output `j`.
    pub fn accumulate(&self, x: &[i64]) -> Vec<i64> {
        (0..self.outputs)
            .map(|j| {
                i64::from(self.bias[j])
                    + self
                        .row(j)
                        .iter()
                        .zip(x)
                        .map(|(w, v)| i64::from(*w) * v)
                        .sum::<i64>()
            })
            .collect()
    }
}

/// Inclusive range of an accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AccRange {
    /// Smallest possible value.
    pub min: i64,
    /// Largest possible value.
    pub max: i64,
}

impl AccRange {
    /// Bits of a two's-complement integer that holds every value of the range.
    pub fn signed_bits(&self) -> u32 {
        (1..=64)
            .find(|&n| {
                let lo = -(1i128 << (n - 1));
                let hi = (1i128 << (n - 1)) - 1;
                i128::from(self.min) >= lo && i128::from(self.max) <= hi
            })
            .unwrap_or(64)
    }
}

/// A quantized MLP: the model the private protocols compute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantModel {
    /// Width of the unsigned input codes.
    pub input_bits: u8,
    /// The layers, input first; all but the last carry a [`Requant`].
    pub layers: Vec<QLayer>,
}

impl QuantModel {
    /// Largest input code, `2^input_bits - 1`.
    pub fn input_max(&self) -> i64 {
        (1i64 << self.input_bits) - 1
    }

    /// The input codes of an image: `(p * (2^input_bits - 1) + 8) >> 4` for each pixel.
    pub fn quantize_input(&self, pixels: &[u8; IMAGE_PIXELS]) -> Vec<u8> {
        quantize_pixels(pixels, self.input_bits)
    }

    /// Every layer's accumulators for input codes `x`: hidden layers before requantization,
    /// then the logits.
    pub fn accumulators(&self, x: &[u8]) -> Vec<Vec<i64>> {
        let mut h: Vec<i64> = x.iter().map(|&v| i64::from(v)).collect();
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let acc = layer.accumulate(&h);
            if let Some(r) = layer.requant {
                h = acc.iter().map(|&a| r.apply(a)).collect();
            }
            out.push(acc);
        }
        out
    }

    /// The logits (last layer's accumulators) for input codes `x`.
    pub fn logits(&self, x: &[u8]) -> Vec<i64> {
        self.accumulators(x).pop().unwrap_or_default()
    }

    /// The predicted class for input codes `x`.
    pub fn predict_codes(&self, x: &[u8]) -> usize {
        argmax_i64(&self.logits(x))
    }

    /// The predicted class of an image.
    pub fn predict(&self, pixels: &[u8; IMAGE_PIXELS]) -> usize {
        self.predict_codes(&self.quantize_input(pixels))
    }

    /// Largest value of each layer's input: the input codes' for the first layer, the previous
    /// requantization's for the others.
    pub fn input_maxima(&self) -> Vec<i64> {
        let mut maxima = Vec::with_capacity(self.layers.len());
        let mut m = self.input_max();
        for layer in &self.layers {
            maxima.push(m);
            if let Some(r) = layer.requant {
                m = r.max_out();
            }
        }
        maxima
    }

    /// The exact range of every accumulator over all inputs: for output `j` with non-negative
    /// inputs up to `m`, `bias + m * (sum of negative weights)` to `bias + m * (sum of
    /// positive weights)`.
    pub fn accumulator_ranges(&self) -> Vec<Vec<AccRange>> {
        self.layers
            .iter()
            .zip(self.input_maxima())
            .map(|(layer, m)| {
                (0..layer.outputs)
                    .map(|j| {
                        let (mut lo, mut hi) = (i64::from(layer.bias[j]), i64::from(layer.bias[j]));
                        for &w in layer.row(j) {
                            let w = i64::from(w);
                            if w < 0 {
                                lo += w * m;
                            } else {
                                hi += w * m;
                            }
                        }
                        AccRange { min: lo, max: hi }
                    })
                    .collect()
            })
            .collect()
    }

    /// The widest accumulator of each layer, in two's-complement bits.
    pub fn accumulator_bits(&self) -> Vec<u32> {
        self.accumulator_ranges()
            .iter()
            .map(|l| l.iter().map(AccRange::signed_bits).max().unwrap_or(1))
            .collect()
    }

    /// Layer widths, input first.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.first().map(|l| l.inputs).into_iter().collect();
        w.extend(self.layers.iter().map(|l| l.outputs));
        w
    }

    /// Number of hidden neurons (each one a requantization).
    pub fn hidden_neurons(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.requant.is_some())
            .map(|l| l.outputs)
            .sum()
    }
}

/// Input codes of an image at `input_bits` bits: `(p * (2^input_bits - 1) + 8) >> 4`.
pub fn quantize_pixels(pixels: &[u8; IMAGE_PIXELS], input_bits: u8) -> Vec<u8> {
    let top = (1u32 << input_bits) - 1;
    pixels
        .iter()
        .map(|&p| ((u32::from(p) * top + u32::from(PIXEL_MAX / 2)) >> 4) as u8)
        .collect()
}

/// Index of the largest value, the first one on a tie; 0 for an empty slice.
pub fn argmax_i64(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

const CLIP_RATIOS: [f32; 8] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3];

/// Quantizes one float layer's weights with clipping ratio `clip`; returns the weights and
/// their scale.
fn quantize_weights(w: &[f32], bits: u8, clip: f32) -> (Vec<i8>, f32) {
    let qmax = ((1i32 << (bits - 1)) - 1) as f32;
    let wmax = w.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
    let scale = clip * wmax / qmax;
    let q = w
        .iter()
        .map(|x| (x / scale).round().clamp(-qmax, qmax) as i8)
        .collect();
    (q, scale)
}

fn quantize_layer(
    float: &crate::float::Dense,
    bits: u8,
    clip: f32,
    in_scale: f32,
    requant: Option<Requant>,
) -> (QLayer, f32) {
    let (weights, w_scale) = quantize_weights(&float.weights, bits, clip);
    let acc_scale = w_scale * in_scale;
    let bias = float
        .bias
        .iter()
        .map(|b| (b / acc_scale).round().clamp(-1e9, 1e9) as i32)
        .collect();
    (
        QLayer {
            inputs: float.inputs,
            outputs: float.outputs,
            weight_bits: bits,
            weights,
            bias,
            requant,
        },
        acc_scale,
    )
}

/// Float activations of hidden layer `k` (after ReLU) on the calibration set.
fn float_activations(float: &FloatModel, k: usize, calib: &Dataset) -> Vec<f32> {
    let mut out = Vec::new();
    for s in &calib.samples {
        let mut h = input_features(&s.pixels);
        for (i, layer) in float.layers.iter().enumerate().take(k + 1) {
            h = layer.apply(&h);
            if i + 1 < float.layers.len() {
                h.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        out.extend(h);
    }
    out
}

/// Shift that maps the 99.9th percentile of a layer's float activations to the top code.
fn heuristic_shift(acts: &mut [f32], acc_scale: f32, out_bits: u8) -> u8 {
    acts.sort_by(|a, b| a.total_cmp(b));
    let p = acts
        .get((acts.len() as f64 * 0.999) as usize)
        .copied()
        .unwrap_or(1.0)
        .max(1e-6);
    let act_scale = p / ((1u32 << out_bits) - 1) as f32;
    (act_scale / acc_scale).log2().round().clamp(0.0, 30.0) as u8
}

/// Post-training quantization of `float` at the widths of `spec`, calibrated on `calib` (the
/// training split): for each layer in turn, the clipping ratio and the shift that give the best
/// calibration accuracy, later layers being quantized by the percentile heuristic meanwhile.
pub fn quantize(float: &FloatModel, spec: QuantSpec, calib: &Dataset) -> QuantModel {
    let n = float.layers.len();
    let codes: Vec<Vec<u8>> = calib
        .samples
        .iter()
        .map(|s| quantize_pixels(&s.pixels, spec.input_bits))
        .collect();
    let calib_acc = |m: &QuantModel| {
        let correct = codes
            .iter()
            .zip(&calib.samples)
            .filter(|(x, s)| m.predict_codes(x) == usize::from(s.label))
            .count();
        correct as f64 / codes.len().max(1) as f64
    };
    let input_scale = 1.0 / ((1u32 << spec.input_bits) - 1) as f32;
    let hidden_acts: Vec<Vec<f32>> = (0..n.saturating_sub(1))
        .map(|k| float_activations(float, k, calib))
        .collect();

    // Completes a model from fixed layers with heuristic choices for the rest.
    let complete = |fixed: &[QLayer], mut in_scale: f32| -> QuantModel {
        let mut layers = fixed.to_vec();
        for k in fixed.len()..n {
            let hidden = k + 1 < n;
            let (mut layer, acc_scale) =
                quantize_layer(&float.layers[k], spec.weight_bits, 1.0, in_scale, None);
            if hidden {
                let mut acts = hidden_acts[k].clone();
                let shift = heuristic_shift(&mut acts, acc_scale, spec.activation_bits);
                layer.requant = Some(Requant {
                    shift,
                    out_bits: spec.activation_bits,
                });
                in_scale = acc_scale * (1u64 << shift) as f32;
            }
            layers.push(layer);
        }
        QuantModel {
            input_bits: spec.input_bits,
            layers,
        }
    };

    let mut fixed: Vec<QLayer> = Vec::with_capacity(n);
    let mut in_scale = input_scale;
    for k in 0..n {
        let hidden = k + 1 < n;
        let mut best: Option<(f64, QLayer, f32)> = None;
        for clip in CLIP_RATIOS {
            let (layer, acc_scale) =
                quantize_layer(&float.layers[k], spec.weight_bits, clip, in_scale, None);
            let shifts: Vec<u8> = if hidden {
                let mut acts = hidden_acts[k].clone();
                let h = heuristic_shift(&mut acts, acc_scale, spec.activation_bits);
                (h.saturating_sub(3)..=h.saturating_add(3).min(30)).collect()
            } else {
                vec![0]
            };
            for shift in shifts {
                let mut cand = layer.clone();
                let mut next_scale = in_scale;
                if hidden {
                    cand.requant = Some(Requant {
                        shift,
                        out_bits: spec.activation_bits,
                    });
                    next_scale = acc_scale * (1u64 << shift) as f32;
                }
                let mut trial = fixed.clone();
                trial.push(cand.clone());
                let acc = calib_acc(&complete(&trial, next_scale));
                if best.as_ref().is_none_or(|(a, _, _)| acc > *a) {
                    best = Some((acc, cand, next_scale));
                }
            }
        }
        if let Some((_, layer, next_scale)) = best {
            fixed.push(layer);
            in_scale = next_scale;
        }
    }
    QuantModel {
        input_bits: spec.input_bits,
        layers: fixed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> QuantModel {
        QuantModel {
            input_bits: 2,
            layers: vec![
                QLayer {
                    inputs: 2,
                    outputs: 2,
                    weight_bits: 3,
                    weights: vec![3, -2, -1, 1],
                    bias: vec![1, -4],
                    requant: Some(Requant {
                        shift: 1,
                        out_bits: 2,
                    }),
                },
                QLayer {
                    inputs: 2,
                    outputs: 2,
                    weight_bits: 3,
                    weights: vec![1, -1, -2, 3],
                    bias: vec![0, 2],
                    requant: None,
                },
            ],
        }
    }

    #[test]
    fn requant_rounds_half_up_and_clips() {
        let r = Requant {
            shift: 2,
            out_bits: 2,
        };
        let got: Vec<i64> = [-9, -1, 0, 1, 2, 5, 6, 9, 10, 13, 100]
            .iter()
            .map(|&a| r.apply(a))
            .collect();
        assert_eq!(got, vec![0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
        let r0 = Requant {
            shift: 0,
            out_bits: 3,
        };
        assert_eq!((r0.apply(-3), r0.apply(5), r0.apply(9)), (0, 5, 7));
    }

    #[test]
    fn integer_inference_by_hand() {
        let m = tiny();
        // x = [3, 1]: acc0 = [1 + 9 - 2, -4 - 3 + 1] = [8, -6]; h = [clamp((8+1)>>1)=3 (4 clipped), 0]
        // logits = [0 + 3 - 0, 2 - 6 + 0] = [3, -4]
        assert_eq!(m.accumulators(&[3, 1]), vec![vec![8, -6], vec![3, -4]]);
        assert_eq!(m.predict_codes(&[3, 1]), 0);
        // x = [0, 3]: acc0 = [1 - 6, -4 + 3] = [-5, -1] -> h = [0, 0]; logits = [0, 2] -> class 1
        assert_eq!(m.predict_codes(&[0, 3]), 1);
    }

    #[test]
    fn ranges_bound_every_accumulator() {
        let m = tiny();
        let r = m.accumulator_ranges();
        assert_eq!(
            r[0][0],
            AccRange {
                min: 1 - 6,
                max: 1 + 9
            }
        );
        assert_eq!(
            r[1][1],
            AccRange {
                min: 2 - 6,
                max: 2 + 9
            }
        );
        for a in 0..4u8 {
            for b in 0..4u8 {
                for (layer, accs) in m.accumulators(&[a, b]).iter().enumerate() {
                    for (j, v) in accs.iter().enumerate() {
                        assert!(r[layer][j].min <= *v && *v <= r[layer][j].max);
                    }
                }
            }
        }
        assert_eq!(AccRange { min: -8, max: 7 }.signed_bits(), 4);
        assert_eq!(AccRange { min: -9, max: 7 }.signed_bits(), 5);
        assert_eq!(AccRange { min: 0, max: 8 }.signed_bits(), 5);
    }

    #[test]
    fn pixel_codes() {
        let mut p = [0u8; IMAGE_PIXELS];
        p[1] = 16;
        p[2] = 8;
        p[3] = 1;
        let c4 = quantize_pixels(&p, 4);
        assert_eq!(&c4[..4], &[0, 15, 8, 1]);
        let c2 = quantize_pixels(&p, 2);
        assert_eq!(&c2[..4], &[0, 3, 2, 0]);
    }
}
