//! The model graph: one sequence of typed ops from which every lowering of a model is written.
//!
//! A model is a sequence of ops over tensors of shape channels x height x width (a flat vector
//! is `n x 1 x 1`), starting from the declared input shape; every later shape follows from the
//! ops. The same sequence exists in two forms:
//!
//! - [`FloatGraph`]: the float network, with `f32` weights (training, ONNX import);
//! - [`QuantGraph`]: the integer network the private protocols compute, split into its public
//!   [`Architecture`] (ops, shapes, bit widths, shifts, accumulator widths: what a client may
//!   know and needs to plan its side) and its private [`LayerParams`] (weights and biases).
//!
//! Every op that mixes values (dense, convolution, pooling) is described once, by its
//! [`Geometry`], as a sparse linear map ([`Rows`]): for every output, the list of inputs it
//! reads with the coefficient of each (a weight or the constant 1) and its bias. The float
//! forward pass, the integer reference, the range analysis, the boolean-circuit compiler
//! (`compile`) and the FHE planner (`veil-fhe`) all read that map, so an op is added once.
//!
//! The integer semantics are specified in `QUANTIZATION.md` (section "Model graph"): dense and
//! convolution layers are exact integer dot products plus a bias; average pooling is a sum
//! pool whose `1/k^2` is folded into the next requantization; ReLU is the requantization
//! `clamp((v + 2^(shift-1)) >> shift, 0, 2^out_bits - 1)`; the class is the first index of the
//! largest final value. Convolution follows the usual cross-correlation definition with zero
//! padding (as in ONNX `Conv` and PyTorch `Conv2d`, Goodfellow, Bengio and Courville, "Deep
//! Learning", 2016, section 9.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::quant::{AccRange, Requant};

/// Most elements a tensor may have.
pub const MAX_TENSOR: usize = 1 << 20;
/// Most ops in a graph.
pub const MAX_OPS: usize = 64;
/// Widest accumulator a model file may declare.
pub const MAX_ACC_BITS: u32 = 32;
/// Largest requantization shift.
pub const MAX_SHIFT: u8 = 31;
/// Largest kernel, stride or padding.
pub const MAX_KERNEL: usize = 32;

/// Why a graph is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op {op}: {reason}")]
pub struct GraphError {
    /// Index of the op at fault (the number of ops for a fault of the whole graph).
    pub op: usize,
    /// What is wrong.
    pub reason: String,
}

fn fail<T>(op: usize, reason: impl Into<String>) -> Result<T, GraphError> {
    Err(GraphError {
        op,
        reason: reason.into(),
    })
}

/// The shape of a tensor: `channels x height x width`, stored channel-major then row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl Shape {
    /// A flat vector of `n` values.
    pub fn flat(n: usize) -> Shape {
        Shape {
            channels: n,
            height: 1,
            width: 1,
        }
    }

    /// An image of `channels x height x width`.
    pub fn image(channels: usize, height: usize, width: usize) -> Shape {
        Shape {
            channels,
            height,
            width,
        }
    }

    /// Number of elements (saturating).
    pub fn len(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// Whether the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of element `(c, y, x)`.
    pub fn index(&self, c: usize, y: usize, x: usize) -> usize {
        (c * self.height + y) * self.width + x
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.height == 1 && self.width == 1 {
            write!(f, "{}", self.channels)
        } else {
            write!(f, "{}x{}x{}", self.channels, self.height, self.width)
        }
    }
}

/// The shape-only description of an op, shared by the float and the integer graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Geometry {
    /// Every output reads every input.
    Dense {
        /// Outputs.
        outputs: usize,
    },
    /// A 2-D convolution over `kernel x kernel` windows with zero padding.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Side of the square kernel.
        kernel: usize,
        /// Step between windows.
        stride: usize,
        /// Zeros added on each side.
        padding: usize,
    },
    /// A sum (integer) or mean (float) over `kernel x kernel` windows, per channel, no padding.
    AvgPool {
        /// Side of the window.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// Reshape to a flat vector (no arithmetic).
    Flatten,
    /// The activation: ReLU (float) or requantization (integer).
    Relu,
}

/// The coefficient of one input in one output of a [`Rows`] map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coef {
    /// The op's weight at this index.
    Weight(u32),
    /// The constant 1 (integer graph) or `1/k^2` (float graph: [`Rows::unit`]).
    One,
}

/// A sparse linear map, row by row (compressed sparse rows): output `j` is
/// `bias + sum over t in starts[j]..starts[j+1] of coef[t] * input[index[t]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Number of outputs.
    pub outputs: usize,
    /// Row `j` holds terms `starts[j]..starts[j + 1]`.
    pub starts: Vec<usize>,
    /// Input index of each term.
    pub index: Vec<u32>,
    /// Coefficient of each term.
    pub coef: Vec<Coef>,
    /// Bias index of each output (`None`: no bias).
    pub bias: Vec<Option<u32>>,
    /// The float value of [`Coef::One`].
    pub unit: f32,
}

/// An integer affine expression over some inputs, composed through linear ops (the stages of
/// the HE and mixed lowerings): `(input, coefficient)` terms by input, and a constant.
pub type Affine = (BTreeMap<u32, i64>, i64);

/// `n` inputs, each as itself.
pub fn identity_affine(n: usize) -> Vec<Affine> {
    (0..n)
        .map(|i| (BTreeMap::from([(i as u32, 1i64)]), 0))
        .collect()
}

impl Rows {
    /// These rows applied to the expressions `prev` of their inputs, with `params` (a
    /// coefficient of a missing weight, or of an op without `params`, is 0) or, for the
    /// structure alone, with every weight 1 and no bias (`structure`). Wrapping arithmetic;
    /// a term whose coefficients cancel stays, at 0.
    pub fn compose(
        &self,
        prev: &[Affine],
        params: Option<&LayerParams>,
        structure: bool,
    ) -> Vec<Affine> {
        (0..self.outputs)
            .map(|j| {
                let mut terms: BTreeMap<u32, i64> = BTreeMap::new();
                let mut constant = match (self.bias[j], params, structure) {
                    (Some(b), Some(p), false) => {
                        p.bias.get(b as usize).map_or(0, |&b| i64::from(b))
                    }
                    _ => 0,
                };
                for (i, c) in self.row(j) {
                    let w = match (c, params, structure) {
                        (Coef::One, _, _) | (Coef::Weight(_), _, true) => 1,
                        (Coef::Weight(w), Some(p), false) => {
                            p.weights.get(w as usize).map_or(0, |&w| i64::from(w))
                        }
                        (Coef::Weight(_), None, false) => 0,
                    };
                    let Some((e_terms, e_const)) = prev.get(i).filter(|_| w != 0) else {
                        continue;
                    };
                    constant = constant.wrapping_add(w.wrapping_mul(*e_const));
                    for (&t, &c) in e_terms {
                        let v = terms.entry(t).or_insert(0);
                        *v = v.wrapping_add(w.wrapping_mul(c));
                    }
                }
                (terms, constant)
            })
            .collect()
    }

    /// The terms of output `j`: `(input index, coefficient)`.
    pub fn row(&self, j: usize) -> impl Iterator<Item = (usize, Coef)> + '_ {
        let (a, b) = (self.starts[j], self.starts[j + 1]);
        self.index[a..b]
            .iter()
            .zip(&self.coef[a..b])
            .map(|(&i, &c)| (i as usize, c))
    }

    fn with_capacity(outputs: usize, terms: usize, unit: f32) -> Rows {
        let mut starts = Vec::with_capacity(outputs + 1);
        starts.push(0);
        Rows {
            outputs,
            starts,
            index: Vec::with_capacity(terms),
            coef: Vec::with_capacity(terms),
            bias: Vec::with_capacity(outputs),
            unit,
        }
    }

    fn push(&mut self, input: usize, coef: Coef) {
        self.index.push(input as u32);
        self.coef.push(coef);
    }

    fn end_row(&mut self, bias: Option<usize>) {
        self.starts.push(self.index.len());
        self.bias.push(bias.map(|b| b as u32));
    }
}

impl Geometry {
    /// The output shape for input `input`, or why the op does not apply.
    pub fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let window = |k: usize, s: usize, p: usize, n: usize| -> Result<usize, String> {
            if k == 0 || s == 0 || k > MAX_KERNEL || s > MAX_KERNEL || p > MAX_KERNEL {
                return Err(format!(
                    "kernel {k}, stride {s} and padding {p} must be 1..={MAX_KERNEL} (padding 0..={MAX_KERNEL})"
                ));
            }
            if n + 2 * p < k {
                return Err(format!(
                    "a {k}x{k} window does not fit an input of side {n} with padding {p}"
                ));
            }
            Ok((n + 2 * p - k) / s + 1)
        };
        let out = match *self {
            Geometry::Dense { outputs } => Shape::flat(outputs),
            Geometry::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            } => Shape::image(
                out_channels,
                window(kernel, stride, padding, input.height)?,
                window(kernel, stride, padding, input.width)?,
            ),
            Geometry::AvgPool { kernel, stride } => Shape::image(
                input.channels,
                window(kernel, stride, 0, input.height)?,
                window(kernel, stride, 0, input.width)?,
            ),
            Geometry::Flatten => Shape::flat(input.len()),
            Geometry::Relu => input,
        };
        if out.is_empty() || out.len() > MAX_TENSOR {
            return Err(format!(
                "gives {} values (expected 1..={MAX_TENSOR})",
                out.len()
            ));
        }
        Ok(out)
    }

    /// Numbers of weights and biases the op holds for input `input`.
    pub fn param_counts(&self, input: Shape) -> (usize, usize) {
        match *self {
            Geometry::Dense { outputs } => (outputs * input.len(), outputs),
            Geometry::Conv2d {
                out_channels,
                kernel,
                ..
            } => (
                out_channels * input.channels * kernel * kernel,
                out_channels,
            ),
            _ => (0, 0),
        }
    }

    /// Whether the op holds weights.
    pub fn has_params(&self) -> bool {
        matches!(self, Geometry::Dense { .. } | Geometry::Conv2d { .. })
    }

    /// Whether the op is a linear map ([`Geometry::rows`] is `Some`).
    pub fn is_linear(&self) -> bool {
        matches!(
            self,
            Geometry::Dense { .. } | Geometry::Conv2d { .. } | Geometry::AvgPool { .. }
        )
    }

    /// The op as a sparse linear map from input `input`; `None` for `Flatten` (a reshape) and
    /// `Relu` (elementwise). Weights are indexed row-major: dense `[output][input]`,
    /// convolution `[out_channel][in_channel][ky][kx]`.
    pub fn rows(&self, input: Shape) -> Option<Rows> {
        let out = self.output_shape(input).ok()?;
        match *self {
            Geometry::Dense { outputs } => {
                let n = input.len();
                let mut r = Rows::with_capacity(outputs, outputs * n, 1.0);
                for j in 0..outputs {
                    for i in 0..n {
                        r.push(i, Coef::Weight((j * n + i) as u32));
                    }
                    r.end_row(Some(j));
                }
                Some(r)
            }
            Geometry::Conv2d {
                kernel,
                stride,
                padding,
                ..
            } => {
                let per = input.channels * kernel * kernel;
                let mut r = Rows::with_capacity(out.len(), out.len() * per, 1.0);
                for o in 0..out.channels {
                    for y in 0..out.height {
                        for x in 0..out.width {
                            for c in 0..input.channels {
                                for ky in 0..kernel {
                                    let iy = (y * stride + ky).checked_sub(padding);
                                    for kx in 0..kernel {
                                        let ix = (x * stride + kx).checked_sub(padding);
                                        if let (Some(iy), Some(ix)) = (iy, ix) {
                                            if iy < input.height && ix < input.width {
                                                let w = ((o * input.channels + c) * kernel + ky)
                                                    * kernel
                                                    + kx;
                                                r.push(
                                                    input.index(c, iy, ix),
                                                    Coef::Weight(w as u32),
                                                );
                                            }
                                        }
                                    }
                                }
                            }
                            r.end_row(Some(o));
                        }
                    }
                }
                Some(r)
            }
            Geometry::AvgPool { kernel, stride } => {
                let mut r = Rows::with_capacity(
                    out.len(),
                    out.len() * kernel * kernel,
                    1.0 / (kernel * kernel) as f32,
                );
                for c in 0..out.channels {
                    for y in 0..out.height {
                        for x in 0..out.width {
                            for ky in 0..kernel {
                                for kx in 0..kernel {
                                    r.push(
                                        input.index(c, y * stride + ky, x * stride + kx),
                                        Coef::One,
                                    );
                                }
                            }
                            r.end_row(None);
                        }
                    }
                }
                Some(r)
            }
            Geometry::Flatten | Geometry::Relu => None,
        }
    }

    /// A short name for messages: `dense`, `conv2d`, `avg_pool`, `flatten`, `relu`.
    pub fn name(&self) -> &'static str {
        match self {
            Geometry::Dense { .. } => "dense",
            Geometry::Conv2d { .. } => "conv2d",
            Geometry::AvgPool { .. } => "avg_pool",
            Geometry::Flatten => "flatten",
            Geometry::Relu => "relu",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The float graph
// ---------------------------------------------------------------------------------------------

/// One op of a [`FloatGraph`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FloatOp {
    /// `y = W x + b`, `W` row-major (`outputs` rows of the flattened input).
    Dense {
        /// Outputs.
        outputs: usize,
        /// `outputs * inputs` weights.
        weights: Vec<f32>,
        /// `outputs` biases.
        bias: Vec<f32>,
    },
    /// 2-D convolution, weights `[out_channel][in_channel][ky][kx]`.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Side of the square kernel.
        kernel: usize,
        /// Step between windows.
        stride: usize,
        /// Zeros added on each side.
        padding: usize,
        /// The weights.
        weights: Vec<f32>,
        /// One bias per output channel.
        bias: Vec<f32>,
    },
    /// Mean over `kernel x kernel` windows.
    AvgPool {
        /// Side of the window.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// Reshape to a flat vector.
    Flatten,
    /// `max(0, x)`.
    Relu,
}

impl FloatOp {
    /// The op's geometry.
    pub fn geometry(&self) -> Geometry {
        match *self {
            FloatOp::Dense { outputs, .. } => Geometry::Dense { outputs },
            FloatOp::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => Geometry::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            },
            FloatOp::AvgPool { kernel, stride } => Geometry::AvgPool { kernel, stride },
            FloatOp::Flatten => Geometry::Flatten,
            FloatOp::Relu => Geometry::Relu,
        }
    }

    /// The weights and biases (empty for ops without parameters).
    pub fn params(&self) -> (&[f32], &[f32]) {
        match self {
            FloatOp::Dense { weights, bias, .. } | FloatOp::Conv2d { weights, bias, .. } => {
                (weights, bias)
            }
            _ => (&[], &[]),
        }
    }

    /// The weights and biases, mutably (empty for ops without parameters).
    pub fn params_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        match self {
            FloatOp::Dense { weights, bias, .. } | FloatOp::Conv2d { weights, bias, .. } => {
                (weights, bias)
            }
            _ => (&mut [], &mut []),
        }
    }
}

/// A float network: the input shape and the ops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatGraph {
    /// Shape of the input.
    pub input: Shape,
    /// The ops, input first.
    pub ops: Vec<FloatOp>,
}

/// Checks the shapes of a sequence of geometries from `input`: returns every tensor's shape,
/// input first.
pub fn check_shapes(input: Shape, ops: &[Geometry]) -> Result<Vec<Shape>, GraphError> {
    let n = ops.len();
    if input.is_empty() || input.len() > MAX_TENSOR {
        return fail(
            n,
            format!("the input shape {input} has {} values", input.len()),
        );
    }
    if ops.is_empty() || ops.len() > MAX_OPS {
        return fail(n, format!("{} ops (expected 1..={MAX_OPS})", ops.len()));
    }
    let mut shapes = vec![input];
    for (k, g) in ops.iter().enumerate() {
        let s = g.output_shape(shapes[k]).map_err(|reason| GraphError {
            op: k,
            reason: format!("{}: {reason}", g.name()),
        })?;
        shapes.push(s);
    }
    Ok(shapes)
}

/// A one-line description of a sequence of ops from `input`:
/// `1x28x28 -> conv 8x5x5/s2/p0 [8x12x12] -> relu [8x12x12] -> ... -> dense 10 [10]`.
pub fn describe_geometries(input: Shape, ops: &[Geometry]) -> String {
    let mut s = format!("{input}");
    let shapes = check_shapes(input, ops).ok();
    for (k, g) in ops.iter().enumerate() {
        let part = match *g {
            Geometry::Dense { outputs } => format!("dense {outputs}"),
            Geometry::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            } => format!("conv {out_channels}x{kernel}x{kernel}/s{stride}/p{padding}"),
            Geometry::AvgPool { kernel, stride } => format!("avgpool {kernel}/s{stride}"),
            Geometry::Flatten => "flatten".into(),
            Geometry::Relu => "relu".into(),
        };
        let shape = shapes
            .as_ref()
            .map(|s| format!(" [{}]", s[k + 1]))
            .unwrap_or_default();
        s.push_str(&format!(" -> {part}{shape}"));
    }
    s
}

/// Applies one sparse map in `f32`.
fn apply_rows_f32(rows: &Rows, x: &[f32], weights: &[f32], bias: &[f32]) -> Vec<f32> {
    (0..rows.outputs)
        .map(|j| {
            // The bias is added to the sum of the products, as `Dense::apply` does, so that
            // the same weights give the same bits either way.
            let sum: f32 = rows
                .row(j)
                .map(|(i, c)| match c {
                    Coef::Weight(w) => weights[w as usize] * x[i],
                    Coef::One => rows.unit * x[i],
                })
                .sum();
            rows.bias[j].map_or(0.0, |b| bias[b as usize]) + sum
        })
        .collect()
}

impl FloatGraph {
    /// The ops' geometries.
    pub fn geometries(&self) -> Vec<Geometry> {
        self.ops.iter().map(FloatOp::geometry).collect()
    }

    /// Checks shapes and parameter counts and that every value is finite; returns every
    /// tensor's shape, input first.
    pub fn validate(&self) -> Result<Vec<Shape>, GraphError> {
        let shapes = check_shapes(self.input, &self.geometries())?;
        for (k, op) in self.ops.iter().enumerate() {
            let (w, b) = op.params();
            let (nw, nb) = op.geometry().param_counts(shapes[k]);
            if w.len() != nw || b.len() != nb {
                return fail(
                    k,
                    format!(
                        "{} on {} needs {nw} weights and {nb} biases, holds {} and {}",
                        op.geometry().name(),
                        shapes[k],
                        w.len(),
                        b.len()
                    ),
                );
            }
            if !w.iter().chain(b).all(|v| v.is_finite()) {
                return fail(k, "holds a non-finite value");
            }
        }
        Ok(shapes)
    }

    /// Every tensor of the forward pass on input `x`, input first (the last is the logits).
    /// `x` must have the input's number of values (the graph must be valid).
    pub fn activations(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let mut shape = self.input;
        let mut out = vec![x.to_vec()];
        for op in &self.ops {
            let g = op.geometry();
            let h = out.last().map(Vec::as_slice).unwrap_or_default();
            let next = match g.rows(shape) {
                Some(rows) => {
                    let (w, b) = op.params();
                    apply_rows_f32(&rows, h, w, b)
                }
                None if g == Geometry::Relu => h.iter().map(|v| v.max(0.0)).collect(),
                None => h.to_vec(),
            };
            shape = g.output_shape(shape).unwrap_or(shape);
            out.push(next);
        }
        out
    }

    /// The outputs (logits) for input `x`.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.activations(x).pop().unwrap_or_default()
    }

    /// Number of classes: the size of the last tensor.
    pub fn classes(&self) -> usize {
        self.validate()
            .ok()
            .and_then(|s| s.last().map(Shape::len))
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// The integer graph: public architecture and private parameters
// ---------------------------------------------------------------------------------------------

/// One op of an [`Architecture`], with its public bit widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Dense layer with signed `weight_bits` weights and `acc_bits` accumulators.
    Dense {
        /// Outputs.
        outputs: usize,
        /// Width of the signed weights (`2..=8`).
        weight_bits: u8,
        /// Two's-complement width of the accumulators and biases.
        acc_bits: u32,
    },
    /// Convolution with signed `weight_bits` weights and `acc_bits` accumulators.
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Side of the square kernel.
        kernel: usize,
        /// Step between windows.
        stride: usize,
        /// Zeros added on each side.
        padding: usize,
        /// Width of the signed weights (`2..=8`).
        weight_bits: u8,
        /// Two's-complement width of the accumulators and biases.
        acc_bits: u32,
    },
    /// Sum over `kernel x kernel` windows (the float mean times `kernel^2`).
    AvgPool {
        /// Side of the window.
        kernel: usize,
        /// Step between windows.
        stride: usize,
    },
    /// Reshape to a flat vector.
    Flatten,
    /// ReLU with requantization: `clamp((v + 2^(shift-1)) >> shift, 0, 2^out_bits - 1)`.
    Relu {
        /// Power of two the value is divided by, with rounding half up.
        shift: u8,
        /// Width of the unsigned output (`1..=8`).
        out_bits: u8,
    },
}

impl Op {
    /// The op's geometry.
    pub fn geometry(&self) -> Geometry {
        match *self {
            Op::Dense { outputs, .. } => Geometry::Dense { outputs },
            Op::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => Geometry::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
            },
            Op::AvgPool { kernel, stride } => Geometry::AvgPool { kernel, stride },
            Op::Flatten => Geometry::Flatten,
            Op::Relu { .. } => Geometry::Relu,
        }
    }

    /// `(weight_bits, acc_bits)` of an op with parameters.
    pub fn widths(&self) -> Option<(u8, u32)> {
        match *self {
            Op::Dense {
                weight_bits,
                acc_bits,
                ..
            }
            | Op::Conv2d {
                weight_bits,
                acc_bits,
                ..
            } => Some((weight_bits, acc_bits)),
            _ => None,
        }
    }

    /// The requantization of a `Relu`.
    pub fn requant(&self) -> Option<Requant> {
        match *self {
            Op::Relu { shift, out_bits } => Some(Requant { shift, out_bits }),
            _ => None,
        }
    }

    fn set_acc_bits(&mut self, bits: u32) {
        if let Op::Dense { acc_bits, .. } | Op::Conv2d { acc_bits, .. } = self {
            *acc_bits = bits;
        }
    }
}

/// How the integers of one tensor are represented: their signedness and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueType {
    /// Two's complement (`true`) or unsigned.
    pub signed: bool,
    /// Width in bits.
    pub bits: u32,
}

/// The public architecture: everything about a quantized model that both parties know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Shape of the input.
    pub input: Shape,
    /// Width of the unsigned input codes (`1..=8`).
    pub input_bits: u8,
    /// The pixel value of full intensity in the raw input (16 for the 8x8 digits, 255 for
    /// 8-bit images): input code = `(p * (2^input_bits - 1) + floor(pixel_max / 2)) /
    /// pixel_max`, rounded down.
    pub pixel_max: u16,
    /// The ops, input first.
    pub ops: Vec<Op>,
}

/// The private parameters of one op with weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerParams {
    /// The weights, in the order of [`Geometry::rows`].
    pub weights: Vec<i8>,
    /// The biases, in accumulator units.
    pub bias: Vec<i32>,
}

/// A quantized model: public architecture and private parameters (one [`LayerParams`] per op
/// with weights, in op order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantGraph {
    /// What is public.
    pub architecture: Architecture,
    /// What is private.
    pub params: Vec<LayerParams>,
    /// The ranges the values entering each ReLU reached on the calibration images, one list
    /// per ReLU in op order (private, like the weights they come from). The TFHE plan reads
    /// an accumulator at the resolution its range allows; planning with these (widened)
    /// instead of the worst case gives wide layers a finer resolution. Absent in models
    /// quantized without calibration data (version-1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Vec<Vec<AccRange>>>,
}

/// Input codes of raw pixels: `(p * (2^bits - 1) + floor(pixel_max / 2)) / pixel_max`, each
/// pixel first clamped to `pixel_max`.
pub fn quantize_pixels(pixels: &[u8], bits: u8, pixel_max: u16) -> Vec<u8> {
    let top = (1u32 << bits) - 1;
    let pm = u32::from(pixel_max.max(1));
    pixels
        .iter()
        .map(|&p| ((u32::from(p).min(pm) * top + pm / 2) / pm) as u8)
        .collect()
}

/// The float network's input for raw pixels: `p / pixel_max`.
pub fn float_input(pixels: &[u8], pixel_max: u16) -> Vec<f32> {
    let pm = f32::from(pixel_max.max(1));
    pixels.iter().map(|&p| f32::from(p) / pm).collect()
}

fn ceil_log2(n: usize) -> u32 {
    n.next_power_of_two().trailing_zeros()
}

impl Architecture {
    /// The ops' geometries.
    pub fn geometries(&self) -> Vec<Geometry> {
        self.ops.iter().map(Op::geometry).collect()
    }

    /// Every tensor's shape, input first.
    pub fn shapes(&self) -> Result<Vec<Shape>, GraphError> {
        check_shapes(self.input, &self.geometries())
    }

    /// Checks the architecture: shapes that chain, widths in range, linear ops (dense,
    /// convolution) on unsigned values only, and a signed final tensor (logits from a linear
    /// op, not from a ReLU). Returns every tensor's shape and value type, input first.
    pub fn validate(&self) -> Result<Vec<(Shape, ValueType)>, GraphError> {
        let shapes = self.shapes()?;
        let n = self.ops.len();
        if !(1..=8).contains(&self.input_bits) {
            return fail(
                n,
                format!("input_bits is {}, expected 1..=8", self.input_bits),
            );
        }
        if self.pixel_max == 0 {
            return fail(n, "pixel_max is 0");
        }
        let mut t = ValueType {
            signed: false,
            bits: u32::from(self.input_bits),
        };
        let mut out = vec![(shapes[0], t)];
        for (k, op) in self.ops.iter().enumerate() {
            t = match *op {
                Op::Dense {
                    weight_bits,
                    acc_bits,
                    ..
                }
                | Op::Conv2d {
                    weight_bits,
                    acc_bits,
                    ..
                } => {
                    if t.signed {
                        return fail(
                            k,
                            format!(
                                "{} takes unsigned values (activations or input codes); put a relu before it",
                                op.geometry().name()
                            ),
                        );
                    }
                    if !(2..=8).contains(&weight_bits) {
                        return fail(k, format!("weight_bits is {weight_bits}, expected 2..=8"));
                    }
                    if !(1..=64).contains(&acc_bits) {
                        return fail(k, format!("acc_bits is {acc_bits}, expected 1..=64"));
                    }
                    ValueType {
                        signed: true,
                        bits: acc_bits,
                    }
                }
                Op::AvgPool { kernel, .. } => ValueType {
                    signed: t.signed,
                    bits: t.bits + ceil_log2(kernel * kernel),
                },
                Op::Flatten => t,
                Op::Relu { shift, out_bits } => {
                    if !(1..=8).contains(&out_bits) || shift > MAX_SHIFT {
                        return fail(
                            k,
                            format!(
                                "relu shift {shift} and out_bits {out_bits} (expected shift <= {MAX_SHIFT}, out_bits 1..=8)"
                            ),
                        );
                    }
                    ValueType {
                        signed: false,
                        bits: u32::from(out_bits),
                    }
                }
            };
            if t.bits > 64 {
                return fail(k, format!("values of {} bits (at most 64)", t.bits));
            }
            out.push((shapes[k + 1], t));
        }
        if !t.signed {
            return fail(
                n,
                "the graph must end with logits from a dense, convolution or pooling layer, not a relu",
            );
        }
        Ok(out)
    }

    /// Number of input codes.
    pub fn input_count(&self) -> usize {
        self.input.len()
    }

    /// Largest input code, `2^input_bits - 1`.
    pub fn input_max(&self) -> i64 {
        (1i64 << self.input_bits) - 1
    }

    /// Number of classes: the size of the final tensor (0 when the shapes do not chain).
    pub fn classes(&self) -> usize {
        self.shapes()
            .ok()
            .and_then(|s| s.last().map(Shape::len))
            .unwrap_or(0)
    }

    /// Width of each logit: the final tensor's width (0 when invalid).
    pub fn logit_bits(&self) -> u32 {
        self.validate()
            .ok()
            .and_then(|t| t.last().map(|(_, v)| v.bits))
            .unwrap_or(0)
    }

    /// Width of the class output, `ceil(log2 classes)`.
    pub fn class_bits(&self) -> usize {
        ceil_log2(self.classes()) as usize
    }

    /// Number of hidden activations (requantized values) per query.
    pub fn activations(&self) -> usize {
        self.shapes().map_or(0, |s| {
            self.ops
                .iter()
                .enumerate()
                .filter(|(_, o)| matches!(o, Op::Relu { .. }))
                .map(|(k, _)| s[k + 1].len())
                .sum()
        })
    }

    /// Indices of the ops with weights, in order: parameter block `p` belongs to op
    /// `param_ops()[p]`.
    pub fn param_ops(&self) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&k| self.ops[k].geometry().has_params())
            .collect()
    }

    /// A one-line description: `1x28x28 -> conv 8x5x5/s2/p0 [8x12x12] -> relu ... -> dense 10`.
    pub fn describe(&self) -> String {
        describe_geometries(self.input, &self.geometries())
    }

    /// Checks that `model` can be computed by a lowering of this architecture: the same input,
    /// ops and widths, with accumulators no wider than this architecture's (narrower ones fit).
    pub fn admits(&self, model: &QuantGraph) -> Result<(), GraphError> {
        let theirs = &model.architecture;
        let n = self.ops.len();
        if (theirs.input, theirs.input_bits, theirs.pixel_max)
            != (self.input, self.input_bits, self.pixel_max)
        {
            return fail(
                n,
                format!(
                    "the model takes {} codes of {} bits (pixel max {}), the circuit {} of {} bits (pixel max {})",
                    theirs.input, theirs.input_bits, theirs.pixel_max, self.input, self.input_bits, self.pixel_max
                ),
            );
        }
        if theirs.ops.len() != n {
            return fail(
                n,
                format!(
                    "the model has {} ops, this architecture {n}",
                    theirs.ops.len()
                ),
            );
        }
        for (k, (t, o)) in theirs.ops.iter().zip(&self.ops).enumerate() {
            let same = match (t.widths(), o.widths()) {
                (Some((tw, ta)), Some((ow, oa))) => {
                    let mut t2 = *t;
                    t2.set_acc_bits(oa);
                    if ta > oa {
                        return fail(
                            k,
                            format!(
                                "the model needs {ta}-bit accumulators, this architecture has {oa}"
                            ),
                        );
                    }
                    tw == ow && t2 == *o
                }
                _ => t == o,
            };
            if !same {
                return fail(
                    k,
                    format!("the model's op is {t:?}, this architecture's {o:?}"),
                );
            }
        }
        Ok(())
    }
}

/// The bias of output `j` (0 without one, or when the parameters are short).
fn bias_of(rows: &Rows, j: usize, p: Option<&LayerParams>) -> i64 {
    match (rows.bias[j], p) {
        (Some(b), Some(p)) => p.bias.get(b as usize).map_or(0, |&b| i64::from(b)),
        _ => 0,
    }
}

/// The integer value of a coefficient (0 when the parameters are short).
fn coef_of(c: Coef, p: Option<&LayerParams>) -> i64 {
    match (c, p) {
        (Coef::Weight(w), Some(p)) => p.weights.get(w as usize).map_or(0, |&w| i64::from(w)),
        (Coef::Weight(_), None) => 0,
        (Coef::One, _) => 1,
    }
}

/// Applies one sparse map to exact integers (a valid model's values never overflow: they fit
/// their declared widths).
fn apply_rows_i64(rows: &Rows, x: &[i64], p: Option<&LayerParams>) -> Vec<i64> {
    (0..rows.outputs)
        .map(|j| {
            let mut acc = bias_of(rows, j, p);
            for (i, c) in rows.row(j) {
                let v = x.get(i).copied().unwrap_or(0);
                acc = acc.wrapping_add(coef_of(c, p).wrapping_mul(v));
            }
            acc
        })
        .collect()
}

/// The integer reference of one graph with its sparse maps built ([`QuantGraph::runner`]).
pub struct Runner<'a> {
    graph: &'a QuantGraph,
    rows: Vec<Option<Rows>>,
}

impl Runner<'_> {
    /// The tensors from op `first` on, given that op's input tensor `x` (first in the result).
    pub fn tensors_from(&self, first: usize, x: Vec<i64>) -> Vec<Vec<i64>> {
        let mut out = vec![x];
        for (k, op) in self.graph.architecture.ops.iter().enumerate().skip(first) {
            let h = out.last().map(Vec::as_slice).unwrap_or_default();
            let next = match (self.rows.get(k).and_then(Option::as_ref), op.requant()) {
                (Some(rows), _) => apply_rows_i64(rows, h, self.graph.params_of(k)),
                (None, Some(r)) => h.iter().map(|&v| r.apply(v)).collect(),
                (None, None) => h.to_vec(),
            };
            out.push(next);
        }
        out
    }

    /// The logits from op `first` on, given that op's input tensor.
    pub fn logits_from(&self, first: usize, x: Vec<i64>) -> Vec<i64> {
        self.tensors_from(first, x).pop().unwrap_or_default()
    }

    /// The predicted class of input codes `x`.
    pub fn predict_codes(&self, x: &[u8]) -> usize {
        let x = x.iter().map(|&v| i64::from(v)).collect();
        crate::quant::argmax_i64(&self.logits_from(0, x))
    }
}

impl QuantGraph {
    /// The parameters of op `k`, if it has weights.
    fn params_of(&self, k: usize) -> Option<&LayerParams> {
        let p = self
            .architecture
            .ops
            .iter()
            .take(k)
            .filter(|o| o.geometry().has_params())
            .count();
        if self.architecture.ops.get(k)?.geometry().has_params() {
            self.params.get(p)
        } else {
            None
        }
    }

    /// Every tensor of the integer reference on input codes `x`, input first: accumulators
    /// after dense and convolution layers, sums after pooling, requantized activations after
    /// each ReLU; the last is the logits. `x` must hold the input's number of codes.
    pub fn tensors(&self, x: &[u8]) -> Vec<Vec<i64>> {
        let x: Vec<i64> = x.iter().map(|&v| i64::from(v)).collect();
        self.tensors_from(0, x)
    }

    /// The tensors of the integer reference from op `first` on, given that op's input tensor
    /// `x` (itself first in the result).
    pub fn tensors_from(&self, first: usize, x: Vec<i64>) -> Vec<Vec<i64>> {
        self.runner().tensors_from(first, x)
    }

    /// The integer reference with every op's sparse map built once, for many inputs.
    pub fn runner(&self) -> Runner<'_> {
        let shapes = self.architecture.shapes().unwrap_or_default();
        let rows = self
            .architecture
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| shapes.get(k).and_then(|&s| op.geometry().rows(s)))
            .collect();
        Runner { graph: self, rows }
    }

    /// The logits for input codes `x`.
    pub fn logits(&self, x: &[u8]) -> Vec<i64> {
        self.tensors(x).pop().unwrap_or_default()
    }

    /// The predicted class for input codes `x`: the first index of the largest logit.
    pub fn predict_codes(&self, x: &[u8]) -> usize {
        crate::quant::argmax_i64(&self.logits(x))
    }

    /// The input codes of raw pixels.
    pub fn quantize_input(&self, pixels: &[u8]) -> Vec<u8> {
        let a = &self.architecture;
        quantize_pixels(pixels, a.input_bits, a.pixel_max)
    }

    /// The predicted class of raw pixels.
    pub fn predict(&self, pixels: &[u8]) -> usize {
        self.predict_codes(&self.quantize_input(pixels))
    }

    /// The exact range of every value of every tensor over all inputs, input first.
    pub fn ranges(&self) -> Vec<Vec<AccRange>> {
        let a = &self.architecture;
        let mut shape = a.input;
        let mut out = vec![vec![
            AccRange {
                min: 0,
                max: a.input_max()
            };
            shape.len()
        ]];
        for (k, op) in a.ops.iter().enumerate() {
            let g = op.geometry();
            let h = out.last().map(Vec::as_slice).unwrap_or_default();
            let next = match (g.rows(shape), op.requant()) {
                (Some(rows), _) => {
                    let p = self.params_of(k);
                    (0..rows.outputs)
                        .map(|j| {
                            let b = bias_of(&rows, j, p);
                            let (mut lo, mut hi) = (b, b);
                            for (i, c) in rows.row(j) {
                                let w = coef_of(c, p);
                                let r = h.get(i).copied().unwrap_or(AccRange { min: 0, max: 0 });
                                let (x, y) = (w.saturating_mul(r.min), w.saturating_mul(r.max));
                                lo = lo.saturating_add(x.min(y));
                                hi = hi.saturating_add(x.max(y));
                            }
                            AccRange { min: lo, max: hi }
                        })
                        .collect()
                }
                (None, Some(r)) => h
                    .iter()
                    .map(|v| AccRange {
                        min: r.apply(v.min),
                        max: r.apply(v.max),
                    })
                    .collect(),
                (None, None) => h.to_vec(),
            };
            shape = g.output_shape(shape).unwrap_or(shape);
            out.push(next);
        }
        out
    }

    /// The narrowest accumulator width of every op with weights, in op order (0 for the
    /// other ops): the widest [`AccRange::signed_bits`] of its outputs and of its biases (a
    /// bias can lie outside its accumulator's range when no input can be 0).
    pub fn narrowest_acc_bits(&self) -> Vec<u32> {
        let ranges = self.ranges();
        self.architecture
            .ops
            .iter()
            .enumerate()
            .map(|(k, op)| {
                if !op.geometry().has_params() {
                    return 0;
                }
                let biases = self.params_of(k).map_or(&[][..], |p| &p.bias[..]);
                ranges[k + 1]
                    .iter()
                    .copied()
                    .chain(biases.iter().map(|&b| AccRange {
                        min: i64::from(b),
                        max: i64::from(b),
                    }))
                    .map(|r| r.signed_bits())
                    .max()
                    .unwrap_or(1)
            })
            .collect()
    }

    /// Sets every accumulator width to the narrowest that holds the model's values.
    pub fn fit_acc_bits(&mut self) {
        let bits = self.narrowest_acc_bits();
        for (op, b) in self.architecture.ops.iter_mut().zip(bits) {
            op.set_acc_bits(b.max(1));
        }
    }

    /// Checks the architecture, the number and widths of the parameters, and that every value
    /// lies within its declared width and within [`MAX_ACC_BITS`] bits (what a model file may
    /// hold).
    pub fn validate(&self) -> Result<(), GraphError> {
        self.validate_with(MAX_ACC_BITS)
    }

    /// [`QuantGraph::validate`] with accumulators of up to `max_acc_bits` bits (at most 62, so
    /// that exact ranges never overflow).
    pub fn validate_with(&self, max_acc_bits: u32) -> Result<(), GraphError> {
        let max_acc_bits = max_acc_bits.min(62);
        let a = &self.architecture;
        let types = a.validate()?;
        let param_ops = a.param_ops();
        let n = a.ops.len();
        if self.params.len() != param_ops.len() {
            return fail(
                n,
                format!(
                    "{} parameter blocks for {} ops with weights",
                    self.params.len(),
                    param_ops.len()
                ),
            );
        }
        for (p, &k) in self.params.iter().zip(&param_ops) {
            let op = a.ops[k];
            let (nw, nb) = op.geometry().param_counts(types[k].0);
            if p.weights.len() != nw || p.bias.len() != nb {
                return fail(
                    k,
                    format!(
                        "needs {nw} weights and {nb} biases, holds {} and {}",
                        p.weights.len(),
                        p.bias.len()
                    ),
                );
            }
            let (wb, ab) = op.widths().unwrap_or((8, 64));
            if ab > max_acc_bits {
                return fail(k, format!("acc_bits is {ab}, at most {max_acc_bits} here"));
            }
            let wmax = (1i16 << (wb - 1)) - 1;
            if let Some(w) = p.weights.iter().find(|w| i16::from(**w).abs() > wmax) {
                return fail(
                    k,
                    format!("weight {w} does not fit {wb} signed bits (|w| <= {wmax})"),
                );
            }
            let bits = AccRange::signed_bits;
            if let Some(b) = p.bias.iter().find(|&&b| {
                bits(&AccRange {
                    min: i64::from(b),
                    max: i64::from(b),
                }) > ab
            }) {
                return fail(
                    k,
                    format!("bias {b} does not fit the {ab}-bit accumulators"),
                );
            }
        }
        let ranges = self.ranges();
        for (k, (_, t)) in types.iter().enumerate().skip(1) {
            let Some(r) = ranges[k].iter().find(|r| {
                let (lo, hi) = if t.signed {
                    (-(1i128 << (t.bits - 1)), (1i128 << (t.bits - 1)) - 1)
                } else {
                    (0, (1i128 << t.bits) - 1)
                };
                i128::from(r.min) < lo || i128::from(r.max) > hi
            }) else {
                continue;
            };
            return fail(
                k - 1,
                format!(
                    "values span {}..={}, beyond the declared {}-bit {}",
                    r.min,
                    r.max,
                    t.bits,
                    if t.signed { "signed" } else { "unsigned" }
                ),
            );
        }
        if let Some(obs) = &self.observed {
            let relus: Vec<usize> = (0..n).filter(|&k| a.ops[k].requant().is_some()).collect();
            if obs.len() != relus.len() {
                return fail(
                    n,
                    format!("{} observed ranges for {} relus", obs.len(), relus.len()),
                );
            }
            for (o, &k) in obs.iter().zip(&relus) {
                if o.len() != types[k].0.len() || o.iter().any(|r| r.min > r.max) {
                    return fail(k, "observed ranges of the wrong size or empty");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_rows_follow_the_definition() {
        // 1x3x3 input, 2x2 kernel, stride 1, padding 1: a 4x4 output; corner (0,0) reads only
        // input (0,0) through kernel tap (1,1).
        let g = Geometry::Conv2d {
            out_channels: 1,
            kernel: 2,
            stride: 1,
            padding: 1,
        };
        let input = Shape::image(1, 3, 3);
        assert_eq!(g.output_shape(input).unwrap(), Shape::image(1, 4, 4));
        let r = g.rows(input).unwrap();
        assert_eq!(r.row(0).collect::<Vec<_>>(), vec![(0, Coef::Weight(3))]);
        // Output (1,1) reads inputs (0,0),(0,1),(1,0),(1,1) through taps 0..4.
        let mid: Vec<_> = r.row(5).collect();
        assert_eq!(
            mid,
            vec![
                (0, Coef::Weight(0)),
                (1, Coef::Weight(1)),
                (3, Coef::Weight(2)),
                (4, Coef::Weight(3))
            ]
        );
    }

    #[test]
    fn pool_sums_in_integers_and_averages_in_floats() {
        let g = FloatGraph {
            input: Shape::image(1, 2, 2),
            ops: vec![FloatOp::AvgPool {
                kernel: 2,
                stride: 2,
            }],
        };
        assert_eq!(g.forward(&[1.0, 2.0, 3.0, 6.0]), vec![3.0]);
        let q = QuantGraph {
            architecture: Architecture {
                input: Shape::image(1, 2, 2),
                input_bits: 4,
                pixel_max: 15,
                ops: vec![
                    Op::AvgPool {
                        kernel: 2,
                        stride: 2,
                    },
                    Op::Dense {
                        outputs: 1,
                        weight_bits: 2,
                        acc_bits: 8,
                    },
                ],
            },
            params: vec![LayerParams {
                weights: vec![-1],
                bias: vec![3],
            }],
            observed: None,
        };
        q.validate().unwrap();
        assert_eq!(
            q.tensors(&[1, 2, 3, 6]),
            vec![vec![1, 2, 3, 6], vec![12], vec![-9]]
        );
        assert_eq!(
            q.ranges()[2],
            vec![AccRange {
                min: 3 - 60,
                max: 3
            }]
        );
    }

    #[test]
    fn bad_graphs_are_named_errors() {
        let arch = |ops: Vec<Op>| Architecture {
            input: Shape::image(1, 4, 4),
            input_bits: 4,
            pixel_max: 255,
            ops,
        };
        let dense = Op::Dense {
            outputs: 3,
            weight_bits: 4,
            acc_bits: 12,
        };
        let e = arch(vec![dense, dense]).validate().unwrap_err();
        assert_eq!(e.op, 1);
        assert!(e.reason.contains("put a relu"), "{e}");
        let e = arch(vec![
            dense,
            Op::Relu {
                shift: 1,
                out_bits: 3,
            },
        ])
        .validate()
        .unwrap_err();
        assert!(e.reason.contains("must end with logits"), "{e}");
        let conv = Op::Conv2d {
            out_channels: 2,
            kernel: 5,
            stride: 1,
            padding: 0,
            weight_bits: 4,
            acc_bits: 12,
        };
        let e = arch(vec![conv]).validate().unwrap_err();
        assert!(e.reason.contains("does not fit"), "{e}");
    }
}
