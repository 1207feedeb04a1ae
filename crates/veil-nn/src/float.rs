//! A multilayer perceptron in `f32`: dense layers with ReLU between them and a linear output.
//!
//! The input of the network is the image scaled to `[0, 1]`: pixel / 16. The prediction is the
//! index of the largest output (the first one on a tie).

use serde::{Deserialize, Serialize};

use crate::data::{IMAGE_PIXELS, PIXEL_MAX};
use crate::graph::{FloatGraph, FloatOp, Shape};

/// One dense layer: `y = W x + b`, with `W` stored row-major (`outputs` rows of `inputs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    /// Width of the input.
    pub inputs: usize,
    /// Width of the output.
    pub outputs: usize,
    /// `outputs * inputs` weights, row `j` feeding output `j`.
    pub weights: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
}

impl Dense {
    /// A layer of zeros.
    pub fn zeros(inputs: usize, outputs: usize) -> Dense {
        Dense {
            inputs,
            outputs,
            weights: vec![0.0; inputs * outputs],
            bias: vec![0.0; outputs],
        }
    }

    /// `W x + b`.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.weights
            .chunks_exact(self.inputs)
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>())
            .collect()
    }
}

/// A float MLP: ReLU after every layer but the last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatModel {
    /// The layers, input first.
    pub layers: Vec<Dense>,
}

impl FloatModel {
    /// The layer widths, input first: e.g. `[64, 32, 10]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = Vec::with_capacity(self.layers.len() + 1);
        if let Some(first) = self.layers.first() {
            w.push(first.inputs);
        }
        w.extend(self.layers.iter().map(|l| l.outputs));
        w
    }

    /// The outputs (logits) for a float input vector: the model graph's float forward pass.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        self.to_graph().forward(x)
    }

    /// The same network as a graph on a flat input: `dense, relu, ..., dense`.
    pub fn to_graph(&self) -> FloatGraph {
        let mut ops = Vec::with_capacity(2 * self.layers.len());
        for (k, l) in self.layers.iter().enumerate() {
            ops.push(FloatOp::Dense {
                outputs: l.outputs,
                weights: l.weights.clone(),
                bias: l.bias.clone(),
            });
            if k + 1 < self.layers.len() {
                ops.push(FloatOp::Relu);
            }
        }
        FloatGraph {
            input: Shape::flat(self.layers.first().map_or(0, |l| l.inputs)),
            ops,
        }
    }

    /// The MLP form of a graph on a flat input made of `dense, relu, ..., dense`; `None` for
    /// any other graph.
    pub fn from_graph(g: &FloatGraph) -> Option<FloatModel> {
        if g.input.height != 1 || g.input.width != 1 {
            return None;
        }
        let mut layers: Vec<Dense> = Vec::new();
        let mut inputs = g.input.len();
        for (k, op) in g.ops.iter().enumerate() {
            match op {
                FloatOp::Dense {
                    outputs,
                    weights,
                    bias,
                } if k % 2 == 0 => {
                    layers.push(Dense {
                        inputs,
                        outputs: *outputs,
                        weights: weights.clone(),
                        bias: bias.clone(),
                    });
                    inputs = *outputs;
                }
                FloatOp::Relu if k % 2 == 1 && k + 1 < g.ops.len() => {}
                _ => return None,
            }
        }
        Some(FloatModel { layers })
    }

    /// The predicted class of an image.
    pub fn predict(&self, pixels: &[u8; IMAGE_PIXELS]) -> usize {
        argmax_f32(&self.forward(&input_features(pixels)))
    }
}

/// The float network's input: each pixel divided by 16.
pub fn input_features(pixels: &[u8; IMAGE_PIXELS]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| f32::from(p) / f32::from(PIXEL_MAX))
        .collect()
}

/// Index of the largest value, the first one on a tie; 0 for an empty slice.
pub fn argmax_f32(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
