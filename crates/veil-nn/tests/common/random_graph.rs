//! Random model graphs for the lowering tests, shared by `veil-nn`'s `graph_lowering` and
//! `veil-fhe`'s `graph_stages` (each includes this file with `#[path]`).
//!
//! A graph is an input (flat `1..=12`, or `1..=3 x 3..=8 x 3..=8`), then one to three hidden
//! blocks (a convolution, or a dense layer usually after a flatten; a ReLU requantization with
//! a random shift and width; sometimes a 2x2 sum pool before or after the ReLU; rarely a second
//! ReLU of unsigned values), then a head that gives 1..=5 logits (a dense layer, or a
//! convolution, with or without a pool, whose output is small). Weights and biases are random,
//! biases sometimes extreme. Shapes are computed here from the definitions, not by `graph.rs`.

#![allow(dead_code)]

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use veil_nn::graph::{Architecture, LayerParams, Op, QuantGraph, Shape};

/// Output side of a `k x k` window of stride `s` over side `n` padded by `p` on each side.
pub fn window(n: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    (k >= 1 && s >= 1 && n + 2 * p >= k).then(|| (n + 2 * p - k) / s + 1)
}

/// `(channels, height, width)` of every tensor, input first, from the op definitions (`None`
/// when a window does not fit).
pub fn shapes(arch: &Architecture) -> Option<Vec<(usize, usize, usize)>> {
    let i = arch.input;
    let mut s = (i.channels, i.height, i.width);
    let mut out = vec![s];
    for op in &arch.ops {
        let (c, h, w) = s;
        s = match *op {
            Op::Dense { outputs, .. } => (outputs, 1, 1),
            Op::Conv2d {
                out_channels,
                kernel,
                stride,
                padding,
                ..
            } => (
                out_channels,
                window(h, kernel, stride, padding)?,
                window(w, kernel, stride, padding)?,
            ),
            Op::AvgPool { kernel, stride } => (
                c,
                window(h, kernel, stride, 0)?,
                window(w, kernel, stride, 0)?,
            ),
            Op::Flatten => (c * h * w, 1, 1),
            Op::Relu { .. } => s,
        };
        out.push(s);
    }
    Some(out)
}

struct Gen<'a> {
    rng: &'a mut ChaCha8Rng,
    /// `(channels, height, width)` of the current tensor.
    shape: (usize, usize, usize),
    ops: Vec<Op>,
}

impl Gen<'_> {
    fn is_image(&self) -> bool {
        self.shape.1 > 1 || self.shape.2 > 1
    }

    fn push(&mut self, op: Op) {
        self.ops.push(op);
        let arch = Architecture {
            input: Shape::image(self.shape.0, self.shape.1, self.shape.2),
            input_bits: 1,
            pixel_max: 1,
            ops: vec![op],
        };
        self.shape = shapes(&arch).expect("the generator only builds fitting windows")[1];
    }

    fn weight_bits(&mut self) -> u8 {
        self.rng.random_range(2..=6)
    }

    fn relu(&mut self) {
        let shift = self.rng.random_range(0..=8);
        let out_bits = self.rng.random_range(1..=4);
        self.push(Op::Relu { shift, out_bits });
    }

    fn can_pool(&self) -> bool {
        self.shape.1 >= 2 && self.shape.2 >= 2
    }

    fn pool(&mut self) {
        let stride = self.rng.random_range(1..=2);
        self.push(Op::AvgPool { kernel: 2, stride });
    }

    fn dense(&mut self, outputs: usize) {
        if (self.is_image() && self.rng.random_bool(0.8)) || self.rng.random_bool(0.1) {
            self.push(Op::Flatten);
        }
        let weight_bits = self.weight_bits();
        self.push(Op::Dense {
            outputs,
            weight_bits,
            acc_bits: 32,
        });
    }

    fn conv(&mut self, out_channels: usize, kernel: usize, stride: usize, padding: usize) {
        let weight_bits = self.weight_bits();
        self.push(Op::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            weight_bits,
            acc_bits: 32,
        });
    }

    fn hidden_conv(&mut self) {
        let padding = self.rng.random_range(0..=1);
        let side = self.shape.1.min(self.shape.2) + 2 * padding;
        let kernel = self.rng.random_range(1..=3.min(side));
        let stride = self.rng.random_range(1..=2);
        let oc = self.rng.random_range(1..=3);
        self.conv(oc, kernel, stride, padding);
    }

    fn block(&mut self) {
        if self.is_image() && self.rng.random_bool(0.65) {
            self.hidden_conv();
        } else {
            let n = self.rng.random_range(1..=6);
            self.dense(n);
        }
        let pool_before = self.can_pool() && self.rng.random_bool(0.25);
        if pool_before {
            self.pool();
        }
        self.relu();
        if !pool_before && self.can_pool() && self.rng.random_bool(0.25) {
            self.pool();
        }
        if self.rng.random_bool(0.05) {
            // A ReLU of unsigned values (activations or pooled activations).
            self.relu();
        }
    }

    /// The final op(s): 1..=5 logits.
    fn head(&mut self) {
        if self.is_image() && self.rng.random_bool(0.45) {
            let (_, h, w) = self.shape;
            for _ in 0..20 {
                let padding = self.rng.random_range(0..=1);
                let kernel = self.rng.random_range(1..=h.min(w) + 2 * padding);
                let stride = self.rng.random_range(1..=2);
                let oc = self.rng.random_range(1..=3);
                let (Some(oh), Some(ow)) = (
                    window(h, kernel, stride, padding),
                    window(w, kernel, stride, padding),
                ) else {
                    continue;
                };
                if oh >= 2 && ow >= 2 && self.rng.random_bool(0.5) {
                    // Convolution then sum pool: the logits are pooled signed values.
                    let s = self.rng.random_range(1..=2);
                    let (ph, pw) = (window(oh, 2, s, 0).unwrap(), window(ow, 2, s, 0).unwrap());
                    if (1..=5).contains(&(oc * ph * pw)) {
                        self.conv(oc, kernel, stride, padding);
                        self.push(Op::AvgPool {
                            kernel: 2,
                            stride: s,
                        });
                        return;
                    }
                } else if (1..=5).contains(&(oc * oh * ow)) {
                    self.conv(oc, kernel, stride, padding);
                    return;
                }
            }
        }
        let n = self.rng.random_range(1..=5);
        self.dense(n);
    }
}

/// Random weights of `weight_bits` bits: uniform, sparse, or all at the extremes.
fn weights(rng: &mut ChaCha8Rng, n: usize, weight_bits: u8) -> Vec<i8> {
    let m = (1i16 << (weight_bits - 1)) - 1;
    match rng.random_range(0..10) {
        0 => (0..n)
            .map(|_| if rng.random_bool(0.5) { m } else { -m } as i8)
            .collect(),
        1 => vec![m as i8; n],
        2 | 3 => (0..n)
            .map(|_| {
                if rng.random_bool(0.6) {
                    0
                } else {
                    rng.random_range(-m..=m) as i8
                }
            })
            .collect(),
        _ => (0..n).map(|_| rng.random_range(-m..=m) as i8).collect(),
    }
}

/// Random biases around `2^scale_bits`, sometimes zero, sometimes extreme.
fn biases(rng: &mut ChaCha8Rng, n: usize, scale_bits: u32) -> Vec<i32> {
    let s = 1i32 << scale_bits.min(30);
    match rng.random_range(0..12) {
        0 => vec![0; n],
        1 => (0..n)
            .map(|_| {
                let e = 1i32 << rng.random_range(8..=30);
                match rng.random_range(0..6) {
                    0 => i32::MAX,
                    1 => i32::MIN,
                    2 | 3 => e,
                    _ => -e,
                }
            })
            .collect(),
        2 => (0..n)
            .map(|_| {
                let e = 1i32 << rng.random_range(0..=20);
                if rng.random_bool(0.5) {
                    e
                } else {
                    -e
                }
            })
            .collect(),
        _ => (0..n).map(|_| rng.random_range(-s..=s)).collect(),
    }
}

/// Random parameters for every op with weights of `arch` (which must have fitting windows);
/// each bias is scaled to the shift of the ReLU after its op (64 for the logits).
pub fn random_params(rng: &mut ChaCha8Rng, arch: &Architecture) -> Vec<LayerParams> {
    let shapes = shapes(arch).expect("fitting windows");
    let mut params = Vec::new();
    for (k, op) in arch.ops.iter().enumerate() {
        let (c, h, w) = shapes[k];
        let (nw, nb, wb) = match *op {
            Op::Dense {
                outputs,
                weight_bits,
                ..
            } => (outputs * c * h * w, outputs, weight_bits),
            Op::Conv2d {
                out_channels,
                kernel,
                weight_bits,
                ..
            } => (
                out_channels * c * kernel * kernel,
                out_channels,
                weight_bits,
            ),
            _ => continue,
        };
        let shift = arch.ops[k + 1..]
            .iter()
            .find_map(|o| match *o {
                Op::Relu { shift, .. } => Some(u32::from(shift)),
                Op::Dense { .. } | Op::Conv2d { .. } => Some(6),
                _ => None,
            })
            .unwrap_or(6);
        let scale = rng.random_range(0..=shift + 3);
        params.push(LayerParams {
            weights: weights(rng, nw, wb),
            bias: biases(rng, nb, scale),
        });
    }
    params
}

/// A random graph (not validated: the caller skips those whose `validate()` fails), with its
/// accumulator widths fitted (`fit_acc_bits`).
pub fn random_graph(rng: &mut ChaCha8Rng) -> QuantGraph {
    let input = if rng.random_bool(0.35) {
        Shape::flat(rng.random_range(1..=12))
    } else {
        Shape::image(
            rng.random_range(1..=3),
            rng.random_range(3..=8),
            rng.random_range(3..=8),
        )
    };
    let input_bits = rng.random_range(1..=6);
    let mut g = Gen {
        rng: &mut *rng,
        shape: (input.channels, input.height, input.width),
        ops: Vec::new(),
    };
    if g.rng.random_bool(0.05) {
        // A ReLU of the input codes.
        g.relu();
    }
    let blocks = g.rng.random_range(1..=3);
    for _ in 0..blocks {
        g.block();
    }
    g.head();
    let architecture = Architecture {
        input,
        input_bits,
        pixel_max: 255,
        ops: g.ops,
    };
    let params = random_params(rng, &architecture);
    let mut q = QuantGraph {
        architecture,
        params,
        observed: None,
    };
    q.fit_acc_bits();
    q
}

/// Random input codes of `n` values at most `max`: uniform, or each 0 or `max`.
pub fn random_codes(rng: &mut ChaCha8Rng, n: usize, max: u8) -> Vec<u8> {
    if rng.random_bool(0.3) {
        (0..n)
            .map(|_| if rng.random_bool(0.5) { max } else { 0 })
            .collect()
    } else {
        (0..n).map(|_| rng.random_range(0..=max)).collect()
    }
}

/// Inputs to try on a graph: all zeros, all at the largest code, and `random` random ones.
pub fn inputs(rng: &mut ChaCha8Rng, arch: &Architecture, random: usize) -> Vec<Vec<u8>> {
    let n = arch.input.channels * arch.input.height * arch.input.width;
    let max = ((1u16 << arch.input_bits) - 1) as u8;
    let mut out = vec![vec![0; n], vec![max; n]];
    out.extend((0..random).map(|_| random_codes(rng, n, max)));
    out
}

/// `count` candidate graphs from `seed`, and those that validate.
pub fn valid_graphs(seed: u64, count: usize) -> Vec<QuantGraph> {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| random_graph(&mut rng))
        .filter(|g| g.validate().is_ok())
        .collect()
}
