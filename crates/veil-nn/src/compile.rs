//! Compiles a quantized MLP into a boolean circuit for two-party inference.
//!
//! The circuit computes the integer inference of `QUANTIZATION.md` (steps 2 to 4) exactly, for a
//! model that is the **server's** private input and input codes that are the **client's**
//! private input. It is built from the public [`Architecture`] alone, never from a weight or a
//! bias: two models with the same architecture compile to the same circuit and [`Layout`], so the
//! circuit, which both parties see, reveals nothing else about the model. A garbled-circuit or
//! GMW backend then evaluates it with the server's values ([`CompiledModel::server_inputs`]) and
//! the client's ([`CompiledModel::client_inputs`]) as the two parties' inputs.
//!
//! # What is public
//!
//! The [`Architecture`]: the input width `input_bits`, and for every layer its `inputs` and
//! `outputs`, its `weight_bits`, its requantization `(shift, out_bits)` and its accumulator width
//! `acc_bits`.
//!
//! - The shifts are part of the public architecture, like the widths: they fix which bits of an
//!   accumulator the requantization keeps, which is free rewiring. A secret shift would need a
//!   multiplexer over every candidate shift (or comparisons against secret thresholds) in every
//!   hidden neuron.
//! - `acc_bits` is the two's-complement width of the layer's accumulator words. [`compile`]
//!   takes the smallest width that holds every accumulator of the model over all inputs
//!   (`QuantModel::accumulator_bits`, the largest [`AccRange::signed_bits`] of the layer), which
//!   makes the circuit as small as the model allows and reveals about `log2` of the largest
//!   accumulator magnitude of each layer. A server that wants to hide even that compiles with
//!   [`compile_architecture`] and wider widths: 32 bits in every layer hold every model that a
//!   model file can hold (loading checks that every accumulator range fits a signed 32-bit
//!   integer). [`CompiledModel::server_inputs`] accepts any model whose accumulators fit the
//!   compiled widths.
//!
//! [`AccRange::signed_bits`]: crate::quant::AccRange::signed_bits
//!
//! # Circuit inputs
//!
//! Values follow `veil-circuit`'s convention: bit `t` of a value is the `t`-th element of its bit
//! vector, least significant first; signed numbers are two's complement at their width. Write
//! `n_k`, `m_k`, `wb_k`, `ab_k` for `inputs`, `outputs`, `weight_bits` and `acc_bits` of layer
//! `k`, and `ib` for `input_bits`. There are `1 + L` input values for `L` layers:
//!
//! - **Value 0, the client's**: the input codes, `n_0 * ib` bits. Code `x[i]` (unsigned,
//!   `0 ..= 2^ib - 1`) is bits `i*ib .. (i+1)*ib`.
//! - **Value `1 + k`, the server's**: the weights and biases of layer `k`,
//!   `m_k * (n_k * wb_k + ab_k)` bits, all weights first, then all biases:
//!   - weight `w[j][i]` (output `j`, input `i`, i.e. `QLayer::weights[j * n_k + i]`) is bits
//!     `(j*n_k + i)*wb_k .. (j*n_k + i + 1)*wb_k`, signed `wb_k`-bit;
//!   - bias `b[j]` is bits `m_k*n_k*wb_k + j*ab_k .. m_k*n_k*wb_k + (j+1)*ab_k`, signed
//!     `ab_k`-bit (every bias fits: a bias lies within its accumulator's range, the value of the
//!     accumulator when every input is 0).
//!
//! [`Layout::input_values`] lists this order and [`CompiledModel::server_owned`] says which
//! values are the server's.
//!
//! # Circuit outputs
//!
//! By [`Outputs`], for `C = m_{L-1}` classes and logits of `lb = ab_{L-1}` bits:
//!
//! - [`Outputs::Class`]: one value, the predicted class (the first index of the largest logit)
//!   as an unsigned number of `ceil(log2 C)` bits (no bits when `C = 1`);
//! - [`Outputs::Logits`]: one value of `C * lb` bits, logit `j` at bits `j*lb .. (j+1)*lb`,
//!   signed;
//! - [`Outputs::ClassAndLogits`]: the class value, then the logits value.
//!
//! [`CompiledModel::decode`] reads them back into a [`Prediction`].
//!
//! # The computation
//!
//! Layer `k` takes unsigned words `x[i]` (the codes for layer 0, the previous layer's
//! activations of `out_bits` bits otherwise) and computes, for every output `j`, one bit heap
//! ([`Builder::dot_unsigned_signed`]) holding every partial product of `w[j][i] * x[i]`, the bias
//! as a product by the constant 1 (no AND gate) and, on a hidden layer, the rounding constant
//! `h = 2^(shift-1)` (0 when `shift = 0`), summed modulo `2^W` with
//!
//! - `W = ab_k` on the output layer and on a hidden layer with `shift = 0`;
//! - `W = max(ab_k, shift) + 1` on a hidden layer with `shift > 0`, so that `acc + h` does not
//!   overflow: for `acc` in `-2^(ab-1) ..= 2^(ab-1) - 1` and `h = 2^(shift-1)`, `acc + h` lies in
//!   `-2^(ab-1) ..= 2^ab - 1` when `shift <= ab`, and in `0 ..= 2^shift - 1` otherwise.
//!
//! Every accumulator of a model that fits the architecture lies in its layer's range, so the sum
//! modulo `2^W`, read as a signed `W`-bit number, is exactly `acc[j] + h` (the partial sums may
//! wrap; the result cannot). On a hidden layer the arithmetic shift right by `shift` drops the low
//! `shift` bits (rewiring, no gate) and [`Builder::saturate_unsigned`] clamps the result to
//! `0 ..= 2^out_bits - 1` (ReLU and saturation at once); that is `Requant::apply`. The output
//! layer's sums are the logits, and [`Builder::argmax_signed`] picks the class, the lower index on
//! ties, as `QuantModel::predict_codes` does.
//!
//! # Cost
//!
//! Only AND gates cost anything in the backends. Every partial product of a weight bit by an
//! activation bit is one AND, and compressing the heaps costs about one AND per partial product
//! more; requantization costs at most `W - shift - 1` ANDs per hidden neuron, the argmax about
//! `C (2 lb + log2 C)`. For the bundled model (64-24-10, 4-bit codes, 4-bit weights, 3-bit
//! activations), whose accumulators need 11 and 9 bits, the circuit that reveals the class (with
//! or without the logits) has 55 089 AND gates of AND depth 55, the one that reveals only the
//! logits 54 924 of depth 23; with 32-bit accumulators in both layers (widths that reveal nothing
//! about the weights) the class-revealing circuit grows to 56 904 AND gates of depth 170. The
//! tests `bundled_model_circuit_costs` and `shape_only_widths_stay_exact` print the current
//! figures.

use serde::{Deserialize, Serialize};
use veil_circuit::bits::{bits_from_i64, bits_from_u128, bits_to_i128, bits_to_u128};
use veil_circuit::{Bit, Builder, Circuit, CircuitError, Word};

use crate::graph::{Architecture, Coef, GraphError, Op, QuantGraph, Shape};

/// Widest accumulator word a circuit may use.
pub const MAX_ACC_BITS: u32 = 64;

/// What the circuit reveals to the party that decodes its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outputs {
    /// The predicted class only (the argmax is computed inside the circuit).
    Class,
    /// The logits only.
    Logits,
    /// The predicted class, then the logits.
    ClassAndLogits,
}

impl Outputs {
    /// Whether the class is an output.
    pub fn has_class(self) -> bool {
        matches!(self, Outputs::Class | Outputs::ClassAndLogits)
    }

    /// Whether the logits are an output.
    pub fn has_logits(self) -> bool {
        matches!(self, Outputs::Logits | Outputs::ClassAndLogits)
    }
}

/// Widens every accumulator of `architecture` to `bits` (at least its own width): a circuit
/// compiled from the result evaluates every model of the same ops whose accumulators fit
/// `bits`, and reveals nothing about the weights beyond the ops (32 bits hold every model a
/// model file can hold).
pub fn widen(architecture: &Architecture, bits: u32) -> Architecture {
    let mut a = architecture.clone();
    for op in &mut a.ops {
        if let Op::Dense { acc_bits, .. } | Op::Conv2d { acc_bits, .. } = op {
            *acc_bits = (*acc_bits).max(bits.min(MAX_ACC_BITS));
        }
    }
    a
}

/// Bits of the server's input value for op `k` of `architecture` (an op with weights):
/// its weights, then its biases.
pub fn param_bits(architecture: &Architecture, shapes: &[Shape], k: usize) -> usize {
    let op = architecture.ops[k];
    let (nw, nb) = op.geometry().param_counts(shapes[k]);
    let (wb, ab) = op.widths().unwrap_or((0, 0));
    nw * usize::from(wb) + nb * ab as usize
}

/// What one circuit input value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InputValue {
    /// The client's input codes.
    Codes,
    /// The server's weights and biases of the `p`-th op with weights.
    Layer(usize),
}

impl InputValue {
    /// Whether the value is the server's.
    pub fn is_server(self) -> bool {
        matches!(self, InputValue::Layer(_))
    }
}

/// What one circuit output value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutputValue {
    /// The predicted class, unsigned.
    Class,
    /// Every logit, signed, class 0 first.
    Logits,
}

/// How a compiled model's circuit takes its inputs and gives its outputs; see the module
/// documentation for the bits of each value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The public architecture the circuit was compiled from.
    pub architecture: Architecture,
    /// What the circuit reveals.
    pub outputs: Outputs,
    /// The circuit's input values, in order: the codes, then one value per layer.
    pub input_values: Vec<InputValue>,
    /// The circuit's output values, in order.
    pub output_values: Vec<OutputValue>,
}

impl Layout {
    /// The layout of the circuit compiled from `architecture` with `outputs` (which must be
    /// valid).
    pub fn new(architecture: Architecture, outputs: Outputs) -> Layout {
        let input_values = std::iter::once(InputValue::Codes)
            .chain((0..architecture.param_ops().len()).map(InputValue::Layer))
            .collect();
        let mut output_values = Vec::with_capacity(2);
        if outputs.has_class() {
            output_values.push(OutputValue::Class);
        }
        if outputs.has_logits() {
            output_values.push(OutputValue::Logits);
        }
        Layout {
            architecture,
            outputs,
            input_values,
            output_values,
        }
    }

    /// Width of an input value.
    pub fn input_width(&self, value: InputValue) -> usize {
        let arch = &self.architecture;
        match value {
            InputValue::Codes => arch.input_count() * usize::from(arch.input_bits),
            InputValue::Layer(p) => {
                let (Ok(shapes), Some(&k)) = (arch.shapes(), arch.param_ops().get(p)) else {
                    return 0;
                };
                param_bits(arch, &shapes, k)
            }
        }
    }

    /// Widths of the input values, in circuit order.
    pub fn input_widths(&self) -> Vec<usize> {
        self.input_values
            .iter()
            .map(|&v| self.input_width(v))
            .collect()
    }

    /// Width of an output value.
    pub fn output_width(&self, value: OutputValue) -> usize {
        let arch = &self.architecture;
        match value {
            OutputValue::Class => arch.class_bits(),
            OutputValue::Logits => arch.classes() * arch.logit_bits() as usize,
        }
    }

    /// Widths of the output values, in circuit order.
    pub fn output_widths(&self) -> Vec<usize> {
        self.output_values
            .iter()
            .map(|&v| self.output_width(v))
            .collect()
    }

    /// Input value and first bit of input code `i`.
    pub fn code_position(&self, i: usize) -> (usize, usize) {
        (0, i * usize::from(self.architecture.input_bits))
    }

    /// Input value and first bit of weight `w` (in [`crate::graph::Geometry::rows`] order) of the `p`-th op
    /// with weights; for a dense layer, weight `j * inputs + i` joins input `i` to output `j`.
    pub fn weight_position(&self, p: usize, w: usize) -> (usize, usize) {
        let k = self.architecture.param_ops()[p];
        let (wb, _) = self.architecture.ops[k].widths().unwrap_or((0, 0));
        (1 + p, w * usize::from(wb))
    }

    /// Input value and first bit of bias `j` of the `p`-th op with weights.
    pub fn bias_position(&self, p: usize, j: usize) -> (usize, usize) {
        let arch = &self.architecture;
        let k = arch.param_ops()[p];
        let shapes = arch.shapes().unwrap_or_default();
        let op = arch.ops[k];
        let (nw, _) = op.geometry().param_counts(shapes[k]);
        let (wb, ab) = op.widths().unwrap_or((0, 0));
        (1 + p, nw * usize::from(wb) + j * ab as usize)
    }
}

/// A decoded inference result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Prediction {
    /// The predicted class, when the circuit reveals it.
    pub class: Option<usize>,
    /// The logits, when the circuit reveals them.
    pub logits: Option<Vec<i64>>,
}

/// Why a model could not be compiled, encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The model is malformed (shapes that do not fit together, values out of their widths).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The architecture is malformed.
    #[error("invalid architecture: {0}")]
    InvalidArchitecture(String),
    /// The model is well formed but does not fit the compiled circuit.
    #[error("the model does not fit the compiled circuit: {0}")]
    ModelMismatch(String),
    /// The client gave the wrong number of input codes.
    #[error("expected {expected} input codes, got {got}")]
    CodeCount {
        /// Codes the circuit takes.
        expected: usize,
        /// Codes given.
        got: usize,
    },
    /// An input code is above `2^input_bits - 1`.
    #[error("input code {index} is {code}, above the largest code {max}")]
    CodeRange {
        /// Index of the code.
        index: usize,
        /// Its value.
        code: u8,
        /// The largest code.
        max: u64,
    },
    /// Input values that do not fit the layout.
    #[error("input values: {0}")]
    Inputs(String),
    /// Output values that do not fit the layout.
    #[error("output values: {0}")]
    Outputs(String),
    /// The plaintext evaluation failed.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The model graph is malformed.
    #[error("invalid model graph: {0}")]
    Graph(#[from] GraphError),
}

/// A model compiled into a circuit, and how to feed and read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledModel {
    /// The circuit.
    pub circuit: Circuit,
    /// Its inputs and outputs.
    pub layout: Layout,
}

/// Compiles `model` for two-party inference, at the narrowest accumulator widths the model
/// allows (its architecture's own); the circuit depends on that architecture only.
pub fn compile(model: &QuantGraph, outputs: Outputs) -> Result<CompiledModel, CompileError> {
    model
        .validate_with(MAX_ACC_BITS)
        .map_err(|e| CompileError::InvalidModel(e.to_string()))?;
    compile_architecture(&model.architecture, outputs)
}

/// The next op after `k` that is not a `Flatten` (a reshape, no gate).
fn next_real_op(ops: &[Op], k: usize) -> Option<&Op> {
    ops[k + 1..].iter().find(|o| !matches!(o, Op::Flatten))
}

/// A tensor's words in the circuit: each value's bits and whether they are two's complement.
struct Words {
    words: Vec<Word>,
    signed: bool,
}

/// Compiles the circuit of a public architecture: it evaluates every model that the
/// architecture admits ([`Architecture::admits`]).
pub fn compile_architecture(
    architecture: &Architecture,
    outputs: Outputs,
) -> Result<CompiledModel, CompileError> {
    let types = architecture
        .validate()
        .map_err(|e| CompileError::InvalidArchitecture(e.to_string()))?;
    let shapes: Vec<Shape> = types.iter().map(|(s, _)| *s).collect();
    let layout = Layout::new(architecture.clone(), outputs);
    let ib = usize::from(architecture.input_bits);
    let mut b = Builder::new();
    let codes = b.input(layout.input_width(InputValue::Codes));
    let param_ops = architecture.param_ops();
    let params: Vec<Word> = param_ops
        .iter()
        .map(|&k| b.input(param_bits(architecture, &shapes, k)))
        .collect();

    let mut t = Words {
        words: codes.chunks(ib).map(<[Bit]>::to_vec).collect(),
        signed: false,
    };
    let plus_one: Word = vec![Bit::ONE, Bit::ZERO];
    let mut p = 0;
    for (k, op) in architecture.ops.iter().enumerate() {
        let g = op.geometry();
        if let Some(rows) = g.rows(shapes[k]) {
            // A ReLU right after (past any flatten) has its rounding constant added in this
            // op's bit heap, at one more bit of width when it shifts.
            let fused = next_real_op(&architecture.ops, k).and_then(Op::requant);
            let bits = types[k + 1].1.bits as usize;
            let (width, half) = match fused {
                Some(r) if r.shift > 0 => {
                    (bits.max(usize::from(r.shift)) + 1, 1i128 << (r.shift - 1))
                }
                _ => (bits, 0),
            };
            // Unsigned factors: a two's-complement input of `n` bits enters as its unsigned
            // offset `v + 2^(n-1)` (top bit inverted), the offset subtracted in the constant.
            let mut offset_per_term = 0i128;
            let factors: Vec<Word> = if t.signed {
                t.words
                    .iter()
                    .map(|w| {
                        let mut u = w.clone();
                        if let Some(top) = u.last_mut() {
                            *top = b.not(*top);
                        }
                        offset_per_term = 1i128 << (w.len() - 1);
                        u
                    })
                    .collect()
            } else {
                t.words.clone()
            };
            let (wb, ab) = op
                .widths()
                .map_or((0, 0), |(w, a)| (usize::from(w), a as usize));
            let (weights, biases): (&[Bit], &[Bit]) = if g.has_params() {
                let (nw, _) = g.param_counts(shapes[k]);
                params[p].split_at(nw * wb)
            } else {
                (&[], &[])
            };
            let sums: Vec<Word> = (0..rows.outputs)
                .map(|j| {
                    let mut xs: Vec<Word> = Vec::new();
                    let mut ws: Vec<Word> = Vec::new();
                    let mut constant = half;
                    for (i, c) in rows.row(j) {
                        xs.push(factors[i].clone());
                        match c {
                            Coef::Weight(w) => {
                                let w = w as usize;
                                ws.push(weights[w * wb..(w + 1) * wb].to_vec());
                            }
                            Coef::One => ws.push(plus_one.clone()),
                        }
                        constant -= offset_per_term;
                    }
                    if let Some(bi) = rows.bias[j] {
                        let bi = bi as usize;
                        xs.push(vec![Bit::ONE]);
                        ws.push(biases[bi * ab..(bi + 1) * ab].to_vec());
                    }
                    if xs.is_empty() {
                        return b.constant_signed(constant, width);
                    }
                    b.dot_unsigned_signed(&xs, &ws, constant, width)
                })
                .collect();
            if g.has_params() {
                p += 1;
            }
            // Dense and convolution sums are signed; a pool keeps its input's signedness
            // (a pool of activations is unsigned, and its sums use every bit of its width).
            t = Words {
                words: sums,
                signed: types[k + 1].1.signed,
            };
        } else if let Some(r) = op.requant() {
            // Fused: the rounding constant is already in the sums. Otherwise add it here.
            let prev = architecture.ops[..k]
                .iter()
                .rev()
                .find(|o| !matches!(o, Op::Flatten))
                .map(|o| o.geometry().is_linear())
                .unwrap_or(false);
            let shift = usize::from(r.shift);
            let words: Vec<Word> = t
                .words
                .iter()
                .map(|w| {
                    let mut s = if t.signed {
                        w.clone()
                    } else {
                        b.zero_extend(w, w.len() + 1)
                    };
                    if !prev && shift > 0 {
                        let width = s.len().max(shift) + 1;
                        let ext = b.sign_extend(&s, width);
                        let half = b.constant(1u128 << (shift - 1), width);
                        s = b.add(&ext, &half);
                    }
                    if s.len() <= shift {
                        // Every value shifts to its sign: 0 or -1, both clamped to 0.
                        return vec![Bit::ZERO; usize::from(r.out_bits)];
                    }
                    b.saturate_unsigned(&s[shift..], usize::from(r.out_bits))
                })
                .collect();
            t = Words {
                words,
                signed: false,
            };
        }
        // Flatten: the same words.
    }
    let logits = t.words;
    if outputs.has_class() {
        let class = b.argmax_signed(&logits);
        b.output(&class);
    }
    if outputs.has_logits() {
        let all: Word = logits.concat();
        b.output(&all);
    }
    Ok(CompiledModel {
        circuit: b.finish(),
        layout,
    })
}

impl CompiledModel {
    /// Server side: the circuit input values that encode the model's weights and biases, one per
    /// op with weights in circuit input order, after checking that the compiled architecture
    /// admits the model ([`Architecture::admits`]).
    pub fn server_inputs(&self, model: &QuantGraph) -> Result<Vec<Vec<bool>>, CompileError> {
        let arch = &self.layout.architecture;
        model
            .validate_with(MAX_ACC_BITS)
            .map_err(|e| CompileError::InvalidModel(e.to_string()))?;
        arch.admits(model)
            .map_err(|e| CompileError::ModelMismatch(e.to_string()))?;
        Ok(model
            .params
            .iter()
            .zip(arch.param_ops())
            .map(|(layer, k)| {
                let (wb, ab) = arch.ops[k].widths().unwrap_or((0, 0));
                let mut bits = Vec::with_capacity(
                    layer.weights.len() * usize::from(wb) + layer.bias.len() * ab as usize,
                );
                for &w in &layer.weights {
                    bits.extend(bits_from_i64(i64::from(w), usize::from(wb)));
                }
                for &c in &layer.bias {
                    bits.extend(bits_from_i64(i64::from(c), ab as usize));
                }
                bits
            })
            .collect())
    }

    /// Client side: the input values encoding an image's input codes (one value), after
    /// checking their number and range.
    pub fn client_inputs(&self, codes: &[u8]) -> Result<Vec<Vec<bool>>, CompileError> {
        let arch = &self.layout.architecture;
        let expected = arch.input_count();
        if codes.len() != expected {
            return Err(CompileError::CodeCount {
                expected,
                got: codes.len(),
            });
        }
        let ib = usize::from(arch.input_bits);
        let max = (1u64 << ib) - 1;
        let mut bits = Vec::with_capacity(expected * ib);
        for (index, &code) in codes.iter().enumerate() {
            if u64::from(code) > max {
                return Err(CompileError::CodeRange { index, code, max });
            }
            bits.extend(bits_from_u128(u128::from(code), ib));
        }
        Ok(vec![bits])
    }

    /// Which circuit input values belong to the server (`true`) and to the client (`false`), in
    /// circuit order.
    pub fn server_owned(&self) -> Vec<bool> {
        self.layout
            .input_values
            .iter()
            .map(|v| v.is_server())
            .collect()
    }

    /// All circuit input values, in circuit order, from the server's and the client's (as
    /// [`CompiledModel::server_inputs`] and [`CompiledModel::client_inputs`] give them).
    pub fn merge_inputs(
        &self,
        server: Vec<Vec<bool>>,
        client: Vec<Vec<bool>>,
    ) -> Result<Vec<Vec<bool>>, CompileError> {
        let owned = self.server_owned();
        let servers = owned.iter().filter(|&&s| s).count();
        if server.len() != servers || client.len() != owned.len() - servers {
            return Err(CompileError::Inputs(format!(
                "{} server and {} client values given, the circuit takes {} and {}",
                server.len(),
                client.len(),
                servers,
                owned.len() - servers
            )));
        }
        let (mut server, mut client) = (server.into_iter(), client.into_iter());
        let merged: Vec<Vec<bool>> = owned
            .iter()
            .filter_map(|&s| if s { server.next() } else { client.next() })
            .collect();
        for (index, (value, width)) in merged.iter().zip(self.layout.input_widths()).enumerate() {
            if value.len() != width {
                return Err(CompileError::Inputs(format!(
                    "input value {index} has {} bits, the circuit takes {width}",
                    value.len()
                )));
            }
        }
        Ok(merged)
    }

    /// Decodes the circuit's output values.
    pub fn decode(&self, outputs: &[Vec<bool>]) -> Result<Prediction, CompileError> {
        let layout = &self.layout;
        if outputs.len() != layout.output_values.len() {
            return Err(CompileError::Outputs(format!(
                "{} values given, the circuit gives {}",
                outputs.len(),
                layout.output_values.len()
            )));
        }
        let mut prediction = Prediction {
            class: None,
            logits: None,
        };
        for (index, (&kind, bits)) in layout.output_values.iter().zip(outputs).enumerate() {
            let width = layout.output_width(kind);
            if bits.len() != width {
                return Err(CompileError::Outputs(format!(
                    "output value {index} has {} bits, the circuit gives {width}",
                    bits.len()
                )));
            }
            match kind {
                OutputValue::Class => {
                    let class = bits_to_u128(bits) as usize;
                    let classes = layout.architecture.classes();
                    if class >= classes {
                        return Err(CompileError::Outputs(format!(
                            "class {class} is not below {classes}"
                        )));
                    }
                    prediction.class = Some(class);
                }
                OutputValue::Logits => {
                    let lb = layout.architecture.logit_bits() as usize;
                    // A logit has at most 64 bits, so it fits an i64.
                    prediction.logits =
                        Some(bits.chunks(lb).map(|c| bits_to_i128(c) as i64).collect());
                }
            }
        }
        Ok(prediction)
    }

    /// Evaluates the circuit in the clear on `model` and input codes `codes`: what the two
    /// parties obtain together, for tests and for checking a deployment.
    pub fn eval_plain(&self, model: &QuantGraph, codes: &[u8]) -> Result<Prediction, CompileError> {
        let inputs = self.merge_inputs(self.server_inputs(model)?, self.client_inputs(codes)?)?;
        self.decode(&self.circuit.eval(&inputs)?)
    }
}
