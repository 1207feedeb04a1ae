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
use crate::float::FloatModel;
use crate::graph::{
    float_input, Architecture, FloatGraph, FloatOp, Geometry, GraphError, LayerParams, Op,
    QuantGraph, Shape,
};

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
}

/// Inclusive range of an accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A quantized MLP as a version-1 model file holds it. Its inference is the model graph's
/// ([`QuantModel::to_graph`]): dense layers with a ReLU requantization between them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantModel {
    /// Width of the unsigned input codes.
    pub input_bits: u8,
    /// The layers, input first; all but the last carry a [`Requant`].
    pub layers: Vec<QLayer>,
}

impl QuantModel {
    /// The same model as a graph: `dense, relu, dense, ..., dense` on a flat input of pixels
    /// in `0..=16`, with the narrowest accumulator widths.
    pub fn to_graph(&self) -> QuantGraph {
        let mut ops = Vec::with_capacity(2 * self.layers.len());
        let mut params = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            ops.push(Op::Dense {
                outputs: l.outputs,
                weight_bits: l.weight_bits,
                acc_bits: 64,
            });
            if let Some(r) = l.requant {
                ops.push(Op::Relu {
                    shift: r.shift,
                    out_bits: r.out_bits,
                });
            }
            params.push(LayerParams {
                weights: l.weights.clone(),
                bias: l.bias.clone(),
            });
        }
        let mut g = QuantGraph {
            architecture: Architecture {
                input: Shape::flat(self.layers.first().map_or(0, |l| l.inputs)),
                input_bits: self.input_bits,
                pixel_max: u16::from(PIXEL_MAX),
                ops,
            },
            params,
            observed: None,
        };
        g.fit_acc_bits();
        g
    }

    /// The version-1 form of a graph that is an MLP on a flat input of 0..=16 pixels
    /// (`dense, relu, ..., dense`); `None` for any other graph.
    pub fn from_graph(g: &QuantGraph) -> Option<QuantModel> {
        let a = &g.architecture;
        if a.pixel_max != u16::from(PIXEL_MAX) || a.input.height != 1 || a.input.width != 1 {
            return None;
        }
        let mut layers: Vec<QLayer> = Vec::new();
        let mut inputs = a.input.len();
        let mut params = g.params.iter();
        for op in &a.ops {
            match *op {
                Op::Dense {
                    outputs,
                    weight_bits,
                    ..
                } => {
                    if layers.last().is_some_and(|l| l.requant.is_none()) {
                        return None;
                    }
                    let p = params.next()?;
                    layers.push(QLayer {
                        inputs,
                        outputs,
                        weight_bits,
                        weights: p.weights.clone(),
                        bias: p.bias.clone(),
                        requant: None,
                    });
                    inputs = outputs;
                }
                Op::Relu { shift, out_bits } => {
                    let last = layers.last_mut()?;
                    if last.requant.is_some() {
                        return None;
                    }
                    last.requant = Some(Requant { shift, out_bits });
                }
                _ => return None,
            }
        }
        Some(QuantModel {
            input_bits: a.input_bits,
            layers,
        })
    }

    /// Largest input code, `2^input_bits - 1`.
    pub fn input_max(&self) -> i64 {
        (1i64 << self.input_bits) - 1
    }

    /// The input codes of an image: `(p * (2^input_bits - 1) + 8) >> 4` for each pixel.
    pub fn quantize_input(&self, pixels: &[u8; IMAGE_PIXELS]) -> Vec<u8> {
        quantize_pixels(pixels, self.input_bits)
    }

    /// Every layer's accumulators for input codes `x` (before requantization), input layer
    /// first: the graph's tensors after each dense op.
    pub fn accumulators(&self, x: &[u8]) -> Vec<Vec<i64>> {
        let g = self.to_graph();
        let mut t = g.tensors(x);
        let keep: Vec<usize> = g.architecture.param_ops().iter().map(|k| k + 1).collect();
        keep.iter().map(|&k| std::mem::take(&mut t[k])).collect()
    }

    /// The logits for input codes `x` (the graph's integer reference).
    pub fn logits(&self, x: &[u8]) -> Vec<i64> {
        self.to_graph().logits(x)
    }

    /// The predicted class for input codes `x`.
    pub fn predict_codes(&self, x: &[u8]) -> usize {
        argmax_i64(&self.logits(x))
    }

    /// The predicted class of an image.
    pub fn predict(&self, pixels: &[u8; IMAGE_PIXELS]) -> usize {
        self.predict_codes(&self.quantize_input(pixels))
    }

    /// The exact range of every layer's accumulators over all inputs.
    pub fn accumulator_ranges(&self) -> Vec<Vec<AccRange>> {
        let g = self.to_graph();
        let ranges = g.ranges();
        g.architecture
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.geometry().has_params())
            .map(|(k, _)| ranges[k + 1].clone())
            .collect()
    }

    /// Layer widths, input first.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.first().map(|l| l.inputs).into_iter().collect();
        w.extend(self.layers.iter().map(|l| l.outputs));
        w
    }
}

impl From<QuantModel> for QuantGraph {
    fn from(m: QuantModel) -> QuantGraph {
        m.to_graph()
    }
}

impl From<&QuantModel> for QuantGraph {
    fn from(m: &QuantModel) -> QuantGraph {
        m.to_graph()
    }
}

/// Input codes of an 8x8 digit at `input_bits` bits: `(p * (2^input_bits - 1) + 8) >> 4`.
pub fn quantize_pixels(pixels: &[u8; IMAGE_PIXELS], input_bits: u8) -> Vec<u8> {
    crate::graph::quantize_pixels(pixels, input_bits, u16::from(PIXEL_MAX))
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

/// Quantizes one op's float weights with clipping ratio `clip`; returns the weights and their
/// scale.
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

/// Shift that maps the 99.9th percentile of a ReLU's float outputs to the top code, for
/// values of scale `in_scale` (float value of one integer unit).
fn heuristic_shift(sorted_acts: &[f32], in_scale: f32, out_bits: u8) -> u8 {
    let p = sorted_acts
        .get((sorted_acts.len() as f64 * 0.999) as usize)
        .copied()
        .unwrap_or(1.0)
        .max(1e-6);
    let act_scale = p / ((1u32 << out_bits) - 1) as f32;
    (act_scale / in_scale).log2().round().clamp(0.0, 30.0) as u8
}

/// One labelled calibration image: raw pixels and its class.
pub type CalibrationImage<'a> = (&'a [u8], usize);

/// The choice made for one op with weights: its clipping ratio and, when a ReLU follows it,
/// that ReLU's shift (`None`: the percentile heuristic).
type Choice = (f32, Option<u8>);

/// Builds the integer graph for `choices` (ops with weights beyond them get clipping ratio 1
/// and the heuristic shift); returns it with the heuristic shift of every ReLU (by op index).
fn build_graph(
    float: &FloatGraph,
    spec: QuantSpec,
    pixel_max: u16,
    relu_acts: &[Option<Vec<f32>>],
    choices: &[Choice],
) -> (QuantGraph, Vec<u8>) {
    let mut scale = 1.0 / ((1u32 << spec.input_bits) - 1) as f32;
    let mut ops = Vec::with_capacity(float.ops.len());
    let mut params = Vec::new();
    let mut heuristics = vec![0u8; float.ops.len()];
    let mut owner: Option<usize> = None;
    let mut shape = float.input;
    for (k, op) in float.ops.iter().enumerate() {
        let g = op.geometry();
        match op {
            FloatOp::Dense { .. } | FloatOp::Conv2d { .. } => {
                let p = params.len();
                let clip = choices.get(p).map_or(1.0, |c| c.0);
                let (w, b) = op.params();
                let (weights, w_scale) = quantize_weights(w, spec.weight_bits, clip);
                let acc_scale = w_scale * scale;
                let bias = b
                    .iter()
                    .map(|b| (b / acc_scale).round().clamp(-1e9, 1e9) as i32)
                    .collect();
                params.push(LayerParams { weights, bias });
                ops.push(match g {
                    Geometry::Conv2d {
                        out_channels,
                        kernel,
                        stride,
                        padding,
                    } => Op::Conv2d {
                        out_channels,
                        kernel,
                        stride,
                        padding,
                        weight_bits: spec.weight_bits,
                        acc_bits: 64,
                    },
                    _ => Op::Dense {
                        outputs: g.output_shape(shape).map_or(0, |s| s.len()),
                        weight_bits: spec.weight_bits,
                        acc_bits: 64,
                    },
                });
                scale = acc_scale;
                owner = Some(p);
            }
            FloatOp::AvgPool { kernel, stride } => {
                scale /= (kernel * kernel) as f32;
                ops.push(Op::AvgPool {
                    kernel: *kernel,
                    stride: *stride,
                });
            }
            FloatOp::Flatten => ops.push(Op::Flatten),
            FloatOp::Relu => {
                let acts = relu_acts[k].as_deref().unwrap_or_default();
                let h = heuristic_shift(acts, scale, spec.activation_bits);
                heuristics[k] = h;
                let chosen = owner.take().and_then(|p| choices.get(p)).and_then(|c| c.1);
                let shift = chosen.unwrap_or(h);
                ops.push(Op::Relu {
                    shift,
                    out_bits: spec.activation_bits,
                });
                scale *= (1u64 << shift) as f32;
            }
        }
        shape = g.output_shape(shape).unwrap_or(shape);
    }
    let mut q = QuantGraph {
        architecture: Architecture {
            input: float.input,
            input_bits: spec.input_bits,
            pixel_max,
            ops,
        },
        params,
        observed: None,
    };
    q.fit_acc_bits();
    (q, heuristics)
}

/// Post-training quantization of a float graph at the widths of `spec`, for raw pixels of
/// full intensity `pixel_max`, calibrated on `calib` (training images only): for each op with
/// weights in turn, the clipping ratio of its weights and the shift of the ReLU after it that
/// give the best calibration accuracy, later ops being quantized by the percentile heuristic
/// meanwhile. Scales follow the ops: a dense or convolution layer multiplies the scale of its
/// input by its weights' scale, a sum pool divides it by `k^2`, a ReLU multiplies it by
/// `2^shift`.
pub fn quantize_graph(
    float: &FloatGraph,
    spec: QuantSpec,
    pixel_max: u16,
    calib: &[CalibrationImage<'_>],
) -> Result<QuantGraph, GraphError> {
    float.validate()?;
    let codes: Vec<Vec<u8>> = calib
        .iter()
        .map(|(p, _)| crate::graph::quantize_pixels(p, spec.input_bits, pixel_max))
        .collect();
    // Every ReLU's float outputs over the calibration set, sorted.
    let relu_ops: Vec<usize> = (0..float.ops.len())
        .filter(|&k| float.ops[k] == FloatOp::Relu)
        .collect();
    let mut relu_acts: Vec<Option<Vec<f32>>> = vec![None; float.ops.len()];
    for &k in &relu_ops {
        relu_acts[k] = Some(Vec::new());
    }
    for (p, _) in calib {
        let t = float.activations(&float_input(p, pixel_max));
        for &k in &relu_ops {
            if let Some(v) = relu_acts[k].as_mut() {
                v.extend_from_slice(&t[k + 1]);
            }
        }
    }
    for v in relu_acts.iter_mut().flatten() {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    // Calibration accuracy of a candidate from op `first` on, given every calibration
    // image's input tensor of that op (the ops before it are fixed while it is searched).
    let calib_acc = |m: &QuantGraph, first: usize, prefix: &[Vec<i64>]| {
        let run = m.runner();
        let correct = prefix
            .iter()
            .zip(calib)
            .filter(|(x, (_, label))| argmax_i64(&run.logits_from(first, x.to_vec())) == *label)
            .count();
        correct as f64 / prefix.len().max(1) as f64
    };
    let param_ops: Vec<usize> = (0..float.ops.len())
        .filter(|&k| float.ops[k].geometry().has_params())
        .collect();
    // The ReLU that each op with weights feeds (before the next op with weights), if any.
    let mut feeds_relu = Vec::new();
    for (k, op) in float.ops.iter().enumerate() {
        if op.geometry().has_params() {
            let next = float.ops[k + 1..]
                .iter()
                .position(|o| o.geometry().has_params() || *o == FloatOp::Relu)
                .map(|d| k + 1 + d)
                .filter(|&j| float.ops[j] == FloatOp::Relu);
            feeds_relu.push(next);
        }
    }
    let mut choices: Vec<Choice> = Vec::with_capacity(feeds_relu.len());
    for (p, relu) in feeds_relu.into_iter().enumerate() {
        // Every calibration image's tensor at the input of this op, under the choices made.
        let first = param_ops[p];
        let (fixed, _) = build_graph(float, spec, pixel_max, &relu_acts, &choices);
        let mut head = fixed.clone();
        head.architecture.ops.truncate(first);
        let run = head.runner();
        let prefix: Vec<Vec<i64>> = codes
            .iter()
            .map(|x| run.logits_from(0, x.iter().map(|&v| i64::from(v)).collect()))
            .collect();
        let mut best: Option<(f64, Choice)> = None;
        for clip in CLIP_RATIOS {
            let mut trial = choices.clone();
            trial.push((clip, None));
            let shifts: Vec<Option<u8>> = match relu {
                Some(r) => {
                    let (_, h) = build_graph(float, spec, pixel_max, &relu_acts, &trial);
                    let h = h[r];
                    (h.saturating_sub(3)..=h.saturating_add(3).min(30))
                        .map(Some)
                        .collect()
                }
                None => vec![None],
            };
            for shift in shifts {
                if let Some(c) = trial.last_mut() {
                    c.1 = shift;
                }
                let (cand, _) = build_graph(float, spec, pixel_max, &relu_acts, &trial);
                let acc = calib_acc(&cand, first, &prefix);
                if best.as_ref().is_none_or(|(a, _)| acc > *a) {
                    best = Some((acc, (clip, shift)));
                }
            }
        }
        if let Some((_, c)) = best {
            choices.push(c);
        }
    }
    let (mut q, _) = build_graph(float, spec, pixel_max, &relu_acts, &choices);
    q.observed = Some(observed_ranges(&q, &codes));
    q.validate()?;
    Ok(q)
}

/// The range of the values entering each ReLU over input codes `codes`, per ReLU in op order.
fn observed_ranges(q: &QuantGraph, codes: &[Vec<u8>]) -> Vec<Vec<AccRange>> {
    let relus: Vec<usize> = (0..q.architecture.ops.len())
        .filter(|&k| q.architecture.ops[k].requant().is_some())
        .collect();
    let run = q.runner();
    let mut out: Vec<Vec<AccRange>> = Vec::with_capacity(relus.len());
    for x in codes {
        let t = run.tensors_from(0, x.iter().map(|&v| i64::from(v)).collect());
        for (r, &k) in relus.iter().enumerate() {
            if out.len() <= r {
                out.push(t[k].iter().map(|&v| AccRange { min: v, max: v }).collect());
            } else {
                for (range, &v) in out[r].iter_mut().zip(&t[k]) {
                    range.min = range.min.min(v);
                    range.max = range.max.max(v);
                }
            }
        }
    }
    out
}

/// Post-training quantization of a float MLP over the 8x8 digits (the version-1 model), through
/// [`quantize_graph`], calibrated on `calib` (the training split).
pub fn quantize(float: &FloatModel, spec: QuantSpec, calib: &Dataset) -> QuantModel {
    let graph = float.to_graph();
    let images: Vec<CalibrationImage<'_>> = calib
        .samples
        .iter()
        .map(|s| (&s.pixels[..], usize::from(s.label)))
        .collect();
    quantize_graph(&graph, spec, u16::from(PIXEL_MAX), &images)
        .ok()
        .and_then(|g| QuantModel::from_graph(&g))
        .unwrap_or(QuantModel {
            input_bits: spec.input_bits,
            layers: Vec::new(),
        })
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
        // Hidden neuron 1's accumulator lies in -7..=-1, so its activation is always 0 and
        // logit 1 reads only neuron 0 (activation 0..=3) through weight -2.
        assert_eq!(r[1][1], AccRange { min: 2 - 6, max: 2 });
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
