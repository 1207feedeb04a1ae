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

use crate::quant::{AccRange, QuantModel, Requant};

/// Most inputs or outputs a layer may have.
pub const MAX_LAYER_WIDTH: usize = 4096;
/// Widest accumulator word.
pub const MAX_ACC_BITS: u32 = 64;
/// Largest requantization shift (as in the model file).
pub const MAX_SHIFT: u8 = 31;

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

/// The public shape of one layer; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerShape {
    /// Width of the input.
    pub inputs: usize,
    /// Width of the output.
    pub outputs: usize,
    /// Width of the signed weights (`2..=8`).
    pub weight_bits: u8,
    /// Two's-complement width of the accumulators and of the biases (`1..=64`).
    pub acc_bits: u32,
    /// Present on hidden layers, absent on the output layer.
    pub requant: Option<Requant>,
}

impl LayerShape {
    /// Bits of the layer's server input value: `outputs * (inputs * weight_bits + acc_bits)`.
    pub fn param_bits(&self) -> usize {
        self.outputs * (self.inputs * usize::from(self.weight_bits) + self.acc_bits as usize)
    }

    /// Width `W` of the sums the circuit computes: `acc_bits`, plus room for the rounding
    /// constant on a hidden layer with a positive shift (module documentation).
    pub fn sum_bits(&self) -> usize {
        let acc = self.acc_bits as usize;
        match self.requant {
            Some(r) if r.shift > 0 => acc.max(usize::from(r.shift)) + 1,
            _ => acc,
        }
    }

    /// The rounding constant added before the shift, `2^(shift-1)` (0 without a shift).
    fn half(&self) -> i128 {
        match self.requant {
            Some(r) if r.shift > 0 => 1i128 << (r.shift - 1),
            _ => 0,
        }
    }
}

/// The public architecture a circuit is compiled from: everything about the model that both
/// parties know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Width of the unsigned input codes (`1..=8`).
    pub input_bits: u8,
    /// The layers, input first; all but the last requantize.
    pub layers: Vec<LayerShape>,
}

impl Architecture {
    /// The architecture of `model`, with the narrowest accumulator widths that hold every
    /// accumulator of the model (the largest [`AccRange::signed_bits`] of each layer).
    pub fn of(model: &QuantModel) -> Result<Architecture, CompileError> {
        let mut arch = Architecture {
            input_bits: model.input_bits,
            layers: model
                .layers
                .iter()
                .map(|l| LayerShape {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    weight_bits: l.weight_bits,
                    acc_bits: 1,
                    requant: l.requant,
                })
                .collect(),
        };
        arch.validate().map_err(|e| match e {
            CompileError::InvalidArchitecture(msg) => CompileError::InvalidModel(msg),
            other => other,
        })?;
        for (k, l) in model.layers.iter().enumerate() {
            let invalid =
                |msg: String| Err(CompileError::InvalidModel(format!("layer {k}: {msg}")));
            if l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
                return invalid(format!(
                    "{}x{} but holds {} weights and {} biases",
                    l.outputs,
                    l.inputs,
                    l.weights.len(),
                    l.bias.len()
                ));
            }
            let wmax = (1i16 << (l.weight_bits - 1)) - 1;
            if let Some(w) = l.weights.iter().find(|w| i16::from(**w).abs() > wmax) {
                return invalid(format!(
                    "weight {w} is outside -{wmax}..={wmax} ({} bits)",
                    l.weight_bits
                ));
            }
        }
        for (shape, ranges) in arch.layers.iter_mut().zip(model.accumulator_ranges()) {
            shape.acc_bits = ranges
                .iter()
                .map(AccRange::signed_bits)
                .max()
                .unwrap_or(1)
                .max(1);
        }
        Ok(arch)
    }

    /// Checks the architecture: at least one layer, layers that fit together, every width in
    /// its range, a requantization on every layer but the last.
    pub fn validate(&self) -> Result<(), CompileError> {
        let invalid = |msg: String| Err(CompileError::InvalidArchitecture(msg));
        if !(1..=8).contains(&self.input_bits) {
            return invalid(format!("input_bits is {}, expected 1..=8", self.input_bits));
        }
        let Some(first) = self.layers.first() else {
            return invalid("no layers".into());
        };
        let last = self.layers.len() - 1;
        let mut width = first.inputs;
        for (k, l) in self.layers.iter().enumerate() {
            if l.inputs != width {
                return invalid(format!(
                    "layer {k} takes {} inputs, the previous layer gives {width}",
                    l.inputs
                ));
            }
            for (what, n) in [("inputs", l.inputs), ("outputs", l.outputs)] {
                if !(1..=MAX_LAYER_WIDTH).contains(&n) {
                    return invalid(format!(
                        "layer {k} has {n} {what}, expected 1..={MAX_LAYER_WIDTH}"
                    ));
                }
            }
            if !(2..=8).contains(&l.weight_bits) {
                return invalid(format!(
                    "layer {k}: weight_bits is {}, expected 2..=8",
                    l.weight_bits
                ));
            }
            if !(1..=MAX_ACC_BITS).contains(&l.acc_bits) {
                return invalid(format!(
                    "layer {k}: acc_bits is {}, expected 1..={MAX_ACC_BITS}",
                    l.acc_bits
                ));
            }
            match (k == last, l.requant) {
                (true, Some(_)) => return invalid("the output layer must not requantize".into()),
                (false, None) => {
                    return invalid(format!("hidden layer {k} lacks a requantization"))
                }
                (false, Some(r)) if !(1..=8).contains(&r.out_bits) || r.shift > MAX_SHIFT => {
                    return invalid(format!(
                        "hidden layer {k}: shift {} and out_bits {} (expected shift <= {MAX_SHIFT}, out_bits 1..=8)",
                        r.shift, r.out_bits
                    ));
                }
                _ => {}
            }
            width = l.outputs;
        }
        Ok(())
    }

    /// Checks that `model` can be evaluated by a circuit compiled from this architecture: the
    /// same input width, layer sizes, weight widths and requantizations, and accumulators that
    /// fit this architecture's widths (narrower ones are fine).
    pub fn check(&self, model: &QuantModel) -> Result<(), CompileError> {
        let theirs = Architecture::of(model)?;
        let mismatch = |msg: String| Err(CompileError::ModelMismatch(msg));
        if theirs.input_bits != self.input_bits {
            return mismatch(format!(
                "input_bits is {}, the circuit takes {}",
                theirs.input_bits, self.input_bits
            ));
        }
        if theirs.layers.len() != self.layers.len() {
            return mismatch(format!(
                "{} layers, the circuit has {}",
                theirs.layers.len(),
                self.layers.len()
            ));
        }
        for (k, (t, o)) in theirs.layers.iter().zip(&self.layers).enumerate() {
            if (t.inputs, t.outputs) != (o.inputs, o.outputs) {
                return mismatch(format!(
                    "layer {k} is {}x{}, the circuit's is {}x{}",
                    t.outputs, t.inputs, o.outputs, o.inputs
                ));
            }
            if t.weight_bits != o.weight_bits {
                return mismatch(format!(
                    "layer {k} has {}-bit weights, the circuit takes {}",
                    t.weight_bits, o.weight_bits
                ));
            }
            if t.requant != o.requant {
                return mismatch(format!(
                    "layer {k} requantizes with {:?}, the circuit with {:?}",
                    t.requant, o.requant
                ));
            }
            if t.acc_bits > o.acc_bits {
                return mismatch(format!(
                    "layer {k} needs {}-bit accumulators, the circuit has {}",
                    t.acc_bits, o.acc_bits
                ));
            }
        }
        Ok(())
    }

    /// Number of input codes (the first layer's inputs).
    pub fn input_count(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Number of classes (the last layer's outputs).
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Width of the class output, `ceil(log2 classes)`.
    pub fn class_bits(&self) -> usize {
        self.classes().next_power_of_two().trailing_zeros() as usize
    }

    /// Width of each logit, the last layer's `acc_bits`.
    pub fn logit_bits(&self) -> usize {
        self.layers.last().map_or(0, |l| l.acc_bits as usize)
    }
}

/// What one circuit input value holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InputValue {
    /// The client's input codes.
    Codes,
    /// The server's weights and biases of this layer.
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
    /// The layout of the circuit compiled from `architecture` with `outputs`.
    pub fn new(architecture: Architecture, outputs: Outputs) -> Layout {
        let input_values = std::iter::once(InputValue::Codes)
            .chain((0..architecture.layers.len()).map(InputValue::Layer))
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
            InputValue::Layer(k) => arch.layers.get(k).map_or(0, LayerShape::param_bits),
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
            OutputValue::Logits => arch.classes() * arch.logit_bits(),
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

    /// Input value and first bit of the weight of layer `layer` from input `i` to output `j`.
    pub fn weight_position(&self, layer: usize, j: usize, i: usize) -> (usize, usize) {
        let l = &self.architecture.layers[layer];
        (1 + layer, (j * l.inputs + i) * usize::from(l.weight_bits))
    }

    /// Input value and first bit of the bias of output `j` of layer `layer`.
    pub fn bias_position(&self, layer: usize, j: usize) -> (usize, usize) {
        let l = &self.architecture.layers[layer];
        let weights = l.outputs * l.inputs * usize::from(l.weight_bits);
        (1 + layer, weights + j * l.acc_bits as usize)
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
/// allows ([`Architecture::of`]); the circuit depends on that architecture only.
pub fn compile(model: &QuantModel, outputs: Outputs) -> Result<CompiledModel, CompileError> {
    compile_architecture(&Architecture::of(model)?, outputs)
}

/// Compiles the circuit of a public architecture: it evaluates every model that fits
/// `architecture` ([`Architecture::check`]).
pub fn compile_architecture(
    architecture: &Architecture,
    outputs: Outputs,
) -> Result<CompiledModel, CompileError> {
    architecture.validate()?;
    let layout = Layout::new(architecture.clone(), outputs);
    let ib = usize::from(architecture.input_bits);
    let mut b = Builder::new();
    let codes = b.input(layout.input_width(InputValue::Codes));
    let params: Vec<Word> = architecture
        .layers
        .iter()
        .map(|l| b.input(l.param_bits()))
        .collect();

    let mut xs: Vec<Word> = codes.chunks(ib).map(<[Bit]>::to_vec).collect();
    let mut logits: Vec<Word> = Vec::new();
    for (l, p) in architecture.layers.iter().zip(&params) {
        let wb = usize::from(l.weight_bits);
        let ab = l.acc_bits as usize;
        let row = l.inputs * wb;
        let (weights, biases) = p.split_at(l.outputs * row);
        // The bias enters the heap as one more product, by the constant 1.
        let mut factors = xs.clone();
        factors.push(vec![Bit::ONE]);
        let (width, half) = (l.sum_bits(), l.half());
        let sums: Vec<Word> = (0..l.outputs)
            .map(|j| {
                let mut ws: Vec<Word> = weights[j * row..(j + 1) * row]
                    .chunks(wb)
                    .map(<[Bit]>::to_vec)
                    .collect();
                ws.push(biases[j * ab..(j + 1) * ab].to_vec());
                b.dot_unsigned_signed(&factors, &ws, half, width)
            })
            .collect();
        match l.requant {
            Some(r) => {
                xs = sums
                    .iter()
                    .map(|s| {
                        b.saturate_unsigned(&s[usize::from(r.shift)..], usize::from(r.out_bits))
                    })
                    .collect();
            }
            None => logits = sums,
        }
    }
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
    /// layer in circuit input order, after checking that the model fits the compiled
    /// architecture ([`Architecture::check`]).
    pub fn server_inputs(&self, model: &QuantModel) -> Result<Vec<Vec<bool>>, CompileError> {
        let arch = &self.layout.architecture;
        arch.check(model)?;
        Ok(model
            .layers
            .iter()
            .zip(&arch.layers)
            .map(|(layer, shape)| {
                let mut bits = Vec::with_capacity(shape.param_bits());
                for &w in &layer.weights {
                    bits.extend(bits_from_i64(i64::from(w), usize::from(shape.weight_bits)));
                }
                for &c in &layer.bias {
                    bits.extend(bits_from_i64(i64::from(c), shape.acc_bits as usize));
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
                    let lb = layout.architecture.logit_bits();
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
    pub fn eval_plain(&self, model: &QuantModel, codes: &[u8]) -> Result<Prediction, CompileError> {
        let inputs = self.merge_inputs(self.server_inputs(model)?, self.client_inputs(codes)?)?;
        self.decode(&self.circuit.eval(&inputs)?)
    }
}
