//! Mini-batch training of the float MLP with Adam (Kingma and Ba, "Adam: a method for
//! stochastic optimization", ICLR 2015, Algorithm 1) on softmax cross-entropy.
//!
//! [`train_private`] is DP-SGD (Abadi et al., CCS 2016, Algorithm 1) with Poisson sampling,
//! per-example clipping and discrete Gaussian noise on a grid ([`DiscreteNoise`]; Canonne,
//! Kamath and Steinke, NeurIPS 2020), sampled exactly in integer arithmetic so that no
//! floating-point artefact of the noise reveals the gradients (Mironov, CCS 2012);
//! [`build_private_model`] calibrates its noise to a target (epsilon, delta) with `veil-dp`
//! and records the guarantee in the model file.
//!
//! Initialization is He-uniform (He et al., ICCV 2015, section 2.2). Everything is single
//! threaded and draws its randomness from one ChaCha20 stream seeded by
//! [`TrainConfig::seed`], so a configuration trains to the same weights, bit for bit, on every
//! run on the same platform.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::data::{Dataset, IMAGE_PIXELS, NUM_CLASSES};
use crate::float::{input_features, Dense, FloatModel};

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Widths of the hidden layers, e.g. `[24]` for a 64-24-10 network.
    pub hidden: Vec<usize>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch_size: usize,
    /// Adam step size at the first epoch; it decays linearly to a tenth of that by the last.
    pub learning_rate: f32,
    /// L2 penalty on the weights (not the biases), which keeps the weight range small for
    /// few-bit quantization.
    pub weight_decay: f32,
    /// Seed of the ChaCha20 stream that initializes the weights and shuffles the batches.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![24],
            epochs: 150,
            batch_size: 32,
            learning_rate: 0.005,
            weight_decay: 1e-3,
            seed: 2026,
        }
    }
}

impl TrainConfig {
    /// The DP-SGD recipe for the digits (what `veil train --dp` uses by default): 60 epochs of
    /// an expected batch of 256, step size 0.02, no weight decay (the noise regularises).
    pub fn private() -> TrainConfig {
        TrainConfig {
            epochs: 60,
            batch_size: 256,
            learning_rate: 0.02,
            weight_decay: 0.0,
            ..TrainConfig::default()
        }
    }
}

/// What one epoch achieved, passed to the progress callback.
#[derive(Clone, Copy, Debug)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub loss: f32,
    /// Training accuracy measured during the epoch.
    pub train_accuracy: f64,
}

struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    const BETA1: f32 = 0.9;
    const BETA2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    fn new(n: usize) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32, t: i32) {
        let c1 = 1.0 - Self::BETA1.powi(t);
        let c2 = 1.0 - Self::BETA2.powi(t);
        for i in 0..params.len() {
            let g = grads[i];
            self.m[i] = Self::BETA1 * self.m[i] + (1.0 - Self::BETA1) * g;
            self.v[i] = Self::BETA2 * self.v[i] + (1.0 - Self::BETA2) * g * g;
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            params[i] -= lr * mh / (vh.sqrt() + Self::EPS);
        }
    }
}

/// He-uniform initialization of the layers of widths `widths` (biases zero).
fn init_layers(rng: &mut ChaCha20Rng, widths: &[usize]) -> Vec<Dense> {
    widths
        .windows(2)
        .map(|w| {
            let mut d = Dense::zeros(w[0], w[1]);
            let bound = (6.0 / w[0] as f32).sqrt();
            d.weights
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-bound..bound));
            d
        })
        .collect()
}

/// One Adam state per weight matrix and per bias vector.
struct Optimizer {
    weights: Vec<Adam>,
    bias: Vec<Adam>,
}

impl Optimizer {
    fn new(layers: &[Dense]) -> Optimizer {
        Optimizer {
            weights: layers.iter().map(|l| Adam::new(l.weights.len())).collect(),
            bias: layers.iter().map(|l| Adam::new(l.bias.len())).collect(),
        }
    }
}

/// Gradients (or sums of gradients) of every layer's weights and biases.
struct Grads {
    weights: Vec<Vec<f32>>,
    bias: Vec<Vec<f32>>,
}

impl Grads {
    fn zeros(layers: &[Dense]) -> Grads {
        Grads {
            weights: layers.iter().map(|l| vec![0.0; l.weights.len()]).collect(),
            bias: layers.iter().map(|l| vec![0.0; l.bias.len()]).collect(),
        }
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut f32> {
        self.weights
            .iter_mut()
            .chain(self.bias.iter_mut())
            .flat_map(|v| v.iter_mut())
    }

    fn values(&self) -> impl Iterator<Item = &f32> {
        self.weights.iter().chain(&self.bias).flat_map(|v| v.iter())
    }

    fn len(&self) -> usize {
        self.values().count()
    }

    fn clear(&mut self) {
        self.values_mut().for_each(|g| *g = 0.0);
    }

    /// Euclidean norm of all the gradients together, in `f64`.
    fn norm(&self) -> f64 {
        self.weights
            .iter()
            .chain(&self.bias)
            .flatten()
            .map(|&g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt()
    }

    /// Adds `factor` times `other`.
    #[cfg(test)]
    fn add_scaled(&mut self, other: &Grads, factor: f32) {
        let src = other.weights.iter().chain(&other.bias).flatten();
        self.values_mut()
            .zip(src)
            .for_each(|(g, o)| *g += factor * o);
    }

    /// Scales the sums by `scale`, adds the weight decay and takes one Adam step.
    fn apply(
        &mut self,
        layers: &mut [Dense],
        opt: &mut Optimizer,
        scale: f32,
        weight_decay: f32,
        lr: f32,
        t: i32,
    ) {
        for k in 0..layers.len() {
            for (g, w) in self.weights[k].iter_mut().zip(&layers[k].weights) {
                *g = *g * scale + weight_decay * w;
            }
            self.bias[k].iter_mut().for_each(|g| *g *= scale);
            opt.weights[k].step(&mut layers[k].weights, &self.weights[k], lr, t);
            opt.bias[k].step(&mut layers[k].bias, &self.bias[k], lr, t);
        }
    }
}

/// Adds the cross-entropy gradient of one example to `grads`; returns its loss and whether
/// the network classified it correctly.
fn example_gradient(
    layers: &[Dense],
    input: &[f32],
    label: usize,
    grads: &mut Grads,
) -> (f32, bool) {
    example_gradient_soft(layers, input, label, None, grads)
}

/// [`example_gradient`] against a distribution `soft` over the classes instead of the one-hot
/// `label` when given (cross-entropy `−Σ t_i ln p_i`, whose gradient is `p − t`).
fn example_gradient_soft(
    layers: &[Dense],
    input: &[f32],
    label: usize,
    soft: Option<&[f32]>,
    grads: &mut Grads,
) -> (f32, bool) {
    // Forward, keeping every layer's activation.
    let mut acts: Vec<Vec<f32>> = vec![input.to_vec()];
    for (k, layer) in layers.iter().enumerate() {
        let mut z = layer.apply(&acts[k]);
        if k + 1 < layers.len() {
            z.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        acts.push(z);
    }
    let logits = &acts[layers.len()];
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let hit = crate::float::argmax_f32(logits) == label;
    // Backward: delta is dLoss/dz for the current layer.
    let mut delta: Vec<f32> = exps.iter().map(|e| e / sum).collect();
    let loss = match soft {
        None => {
            delta[label] -= 1.0;
            sum.ln() - (logits[label] - max)
        }
        Some(t) => {
            let mut loss = 0.0;
            for ((d, ti), z) in delta.iter_mut().zip(t).zip(logits) {
                *d -= ti;
                loss += ti * (sum.ln() - (z - max));
            }
            loss
        }
    };
    for k in (0..layers.len()).rev() {
        let layer = &layers[k];
        let a = &acts[k];
        for (j, d) in delta.iter().enumerate() {
            grads.bias[k][j] += d;
            let row = &mut grads.weights[k][j * layer.inputs..(j + 1) * layer.inputs];
            row.iter_mut().zip(a).for_each(|(g, x)| *g += d * x);
        }
        if k > 0 {
            let mut prev = vec![0.0f32; layer.inputs];
            for (j, d) in delta.iter().enumerate() {
                let row = &layer.weights[j * layer.inputs..(j + 1) * layer.inputs];
                prev.iter_mut().zip(row).for_each(|(p, w)| *p += d * w);
            }
            // ReLU derivative: the activation was positive.
            prev.iter_mut()
                .zip(a)
                .for_each(|(p, x)| *p = if *x > 0.0 { *p } else { 0.0 });
            delta = prev;
        }
    }
    (loss, hit)
}

/// Checks a training configuration, initializes the layers from `rng` and their Adam states,
/// and computes every example's input features.
fn prepare(
    data: &Dataset,
    config: &TrainConfig,
    rng: &mut ChaCha20Rng,
) -> (Vec<Dense>, Optimizer, Vec<Vec<f32>>) {
    assert!(!data.is_empty(), "training needs at least one sample");
    assert!(config.batch_size > 0, "batch size must be positive");
    assert!(
        config.hidden.iter().all(|&h| h > 0),
        "hidden widths must be positive"
    );
    let mut widths = vec![IMAGE_PIXELS];
    widths.extend(&config.hidden);
    widths.push(NUM_CLASSES);
    let layers = init_layers(rng, &widths);
    let opt = Optimizer::new(&layers);
    let inputs = data
        .samples
        .iter()
        .map(|s| input_features(&s.pixels))
        .collect();
    (layers, opt, inputs)
}

/// Trains an MLP on `data`; `progress` is called after every epoch.
///
/// Panics only on a configuration that cannot train: an empty dataset, a zero batch size or a
/// zero-width hidden layer (the CLI validates these first).
pub fn train(
    data: &Dataset,
    config: &TrainConfig,
    progress: impl FnMut(EpochReport),
) -> FloatModel {
    train_targets(data, None, config, progress)
}

/// [`train`] against a distribution over the classes per sample (`soft[i]` for
/// `data.samples[i]`, summing to 1) instead of its label: distillation, as a surrogate of a
/// model that answers with its probabilities is trained. The labels still count the reported
/// training accuracy.
///
/// Panics as [`train`] does, and when `soft` does not give one distribution of
/// [`NUM_CLASSES`] values per sample.
pub fn train_distilled(
    data: &Dataset,
    soft: &[Vec<f32>],
    config: &TrainConfig,
    progress: impl FnMut(EpochReport),
) -> FloatModel {
    assert!(
        soft.len() == data.len() && soft.iter().all(|t| t.len() == NUM_CLASSES),
        "one distribution over the classes per sample"
    );
    train_targets(data, Some(soft), config, progress)
}

fn train_targets(
    data: &Dataset,
    soft: Option<&[Vec<f32>]>,
    config: &TrainConfig,
    mut progress: impl FnMut(EpochReport),
) -> FloatModel {
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let (mut layers, mut opt, inputs) = prepare(data, config, &mut rng);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut t = 0i32;

    for epoch in 0..config.epochs {
        // Fisher-Yates shuffle from the seeded stream.
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let frac = if config.epochs > 1 {
            epoch as f32 / (config.epochs - 1) as f32
        } else {
            0.0
        };
        let lr = config.learning_rate * (1.0 - 0.9 * frac);
        let mut loss_sum = 0.0f32;
        let mut batches = 0usize;
        let mut correct = 0usize;

        for batch in order.chunks(config.batch_size) {
            let mut grads = Grads::zeros(&layers);
            let mut batch_loss = 0.0f32;
            for &idx in batch {
                let label = usize::from(data.samples[idx].label);
                let target = soft.map(|t| &t[idx][..]);
                let (loss, hit) =
                    example_gradient_soft(&layers, &inputs[idx], label, target, &mut grads);
                batch_loss += loss;
                correct += usize::from(hit);
            }
            let scale = 1.0 / batch.len() as f32;
            t += 1;
            grads.apply(&mut layers, &mut opt, scale, config.weight_decay, lr, t);
            loss_sum += batch_loss * scale;
            batches += 1;
        }
        progress(EpochReport {
            epoch: epoch + 1,
            loss: loss_sum / batches.max(1) as f32,
            train_accuracy: correct as f64 / data.len() as f64,
        });
    }
    FloatModel { layers }
}

/// DP-SGD settings (Abadi et al., "Deep learning with differential privacy", CCS 2016,
/// Algorithm 1, with Poisson sampling as the accountants assume).
///
/// Each step samples every training example independently with probability
/// `q = batch_size / n` ([`TrainConfig::batch_size`] is the expected batch), clips each
/// sampled example's gradient (all layers together) to L2 norm [`DpSgdConfig::clip_norm`],
/// sums on a grid, adds discrete Gaussian noise of standard deviation at least
/// `noise_multiplier * clip_norm` (in gradient units) to every coordinate ([`DiscreteNoise`]),
/// and divides by the expected batch size `q * n` (dividing by the actual batch size would
/// leak it). Adam and the weight decay only post-process the noisy sums.
/// A run is `epochs * ceil(n / batch_size)` steps: see [`dp_sgd_schedule`].
#[derive(Clone, Debug, PartialEq)]
pub struct DpSgdConfig {
    /// Noise standard deviation over the clipping norm (sigma).
    pub noise_multiplier: f64,
    /// Largest L2 norm of one example's gradient.
    pub clip_norm: f32,
    /// Seed of the sampling and noise stream. `None`, the default, seeds a ChaCha20 stream
    /// from the operating system; a fixed seed makes runs reproducible, and is only for
    /// tests: whoever knows it can subtract the noise.
    pub noise_seed: Option<u64>,
}

/// The Poisson sampling rate and the number of steps of a DP-SGD run over `n` examples with
/// expected batch `batch_size` for `epochs` epochs: `(batch_size / n, epochs * ceil(n /
/// batch_size))`. The rate is capped at 1.
pub fn dp_sgd_schedule(n: usize, batch_size: usize, epochs: usize) -> (f64, u64) {
    let n = n.max(1);
    let batch = batch_size.clamp(1, n);
    let q = batch as f64 / n as f64;
    let steps_per_epoch = n.div_ceil(batch) as u64;
    (q, steps_per_epoch * epochs as u64)
}

/// The factor that scales a gradient of norm `norm` to norm at most `clip`.
fn clip_factor(norm: f64, clip: f32) -> f32 {
    if norm > f64::from(clip) {
        (f64::from(clip) / norm) as f32
    } else {
        1.0
    }
}

/// Grid units per clipping norm at most: a clipped gradient is rounded to multiples of
/// `clip_norm / 2^16`.
pub const MAX_GRID_UNITS: u64 = 1 << 16;

/// The discrete Gaussian mechanism of one DP-SGD step, on a grid.
///
/// Each sampled example's clipped gradient `g` (`‖g‖ ≤ C`) is scaled to `B` grid units per
/// clipping norm and rounded coordinatewise to integers `r`. Rounding moves each coordinate by
/// at most 1/2, so `‖r‖ ≤ B + √d/2` over `d` coordinates: the sensitivity, in grid units, is
/// `Δ = B + ⌈√d⌉/2`, and Veil enforces `‖r‖² ≤ Δ²` in exact integer arithmetic (an example
/// that a floating-point error pushed beyond it is scaled down, towards zero). The integer sum
/// of a step receives `N_Z(0, σ_Z²)` on every coordinate ([`veil_dp::DiscreteGaussian`]), with
/// `σ_Z² ≥ σ²·Δ²` for the calibrated noise multiplier `σ`, and is scaled back by `C / B`,
/// post-processing of an integer output.
///
/// The accounting adjusts for the grid in two ways: the sensitivity is the rounded one, `Δ`,
/// not `B`; and the guarantee is the continuous Gaussian's at noise multiplier `σ_Z / Δ ≥ σ`
/// in Rényi DP at integer orders ([`veil_dp::AccountantKind::RdpIntegerOrders`]), where the
/// discrete Gaussian's privacy loss is bounded by the continuous one's (see
/// [`veil_dp::discrete`]). `B` is `2^16`, or less for large `σ`, so that `σ_Z` stays below
/// `2^27`: at the digits MLP's 1 810 parameters `Δ` exceeds `B` by 0.03%.
#[derive(Clone, Debug)]
pub struct DiscreteNoise {
    /// Grid units per gradient unit, `B / C`.
    scale: f64,
    /// Grid units per clipping norm, `B`.
    grid_units: u64,
    /// `Δ²`, the squared sensitivity in grid units.
    delta2: u128,
    /// `N_Z(0, σ_Z²)`, absent without noise.
    noise: Option<veil_dp::DiscreteGaussian>,
}

impl DiscreteNoise {
    /// The mechanism for noise multiplier `sigma`, clipping norm `clip` and `dims` gradient
    /// coordinates.
    ///
    /// # Panics
    /// If `sigma · (1 + √d / 2)` exceeds `2^28` (a noise multiplier beyond any calibration's).
    pub fn new(sigma: f64, clip: f32, dims: usize) -> DiscreteNoise {
        let root = (dims.max(1) as f64).sqrt().ceil() as u64;
        let grid_units = if sigma > 0.0 {
            ((f64::from(1u32 << 27) / sigma).floor() as u64).clamp(1, MAX_GRID_UNITS)
        } else {
            MAX_GRID_UNITS
        };
        // Δ = (2B + ⌈√d⌉) / 2, so Δ² = ⌈(2B + ⌈√d⌉)² / 4⌉.
        let twice = u128::from(2 * grid_units + root);
        let delta2 = (twice * twice).div_ceil(4);
        let noise = (sigma > 0.0).then(|| {
            // σ_Z² ≥ σ²·Δ², with a margin for the rounding of the product.
            let s2 = (sigma * sigma * delta2 as f64 * (1.0 + 1e-12)).ceil() + 1.0;
            assert!(
                s2 <= veil_dp::discrete::MAX_SIGMA2 as f64,
                "noise multiplier {sigma} too large for the discrete sampler"
            );
            veil_dp::DiscreteGaussian::new(s2 as u64).expect("sigma^2 in range")
        });
        DiscreteNoise {
            scale: grid_units as f64 / f64::from(clip),
            grid_units,
            delta2,
            noise,
        }
    }

    /// Grid units per clipping norm.
    pub fn grid_units(&self) -> u64 {
        self.grid_units
    }

    /// The squared sensitivity in grid units, `Δ²`.
    pub fn sensitivity2(&self) -> u128 {
        self.delta2
    }

    /// `σ_Z²`, or 0 without noise.
    pub fn sigma2(&self) -> u64 {
        self.noise.map_or(0, |n| n.sigma2())
    }

    /// Adds one clipped gradient, rounded to the grid and held within the sensitivity, to the
    /// integer sums.
    fn add(&self, values: impl Iterator<Item = f32>, sums: &mut [i64]) {
        let mut r: Vec<i64> = values
            .map(|v| (f64::from(v) * self.scale).round() as i64)
            .collect();
        loop {
            let norm2: u128 = r
                .iter()
                .map(|x| x.unsigned_abs() as u128)
                .map(|x| x * x)
                .sum();
            if norm2 <= self.delta2 {
                break;
            }
            let shrink = (self.delta2 as f64 / norm2 as f64).sqrt() * (1.0 - 1e-9);
            r.iter_mut()
                .for_each(|x| *x = (*x as f64 * shrink).trunc() as i64);
        }
        sums.iter_mut().zip(&r).for_each(|(s, x)| *s += x);
    }

    /// Adds the noise to the integer sums and writes them, scaled back to gradient units, to
    /// `out`; zeroes the sums.
    fn release<'a, R: rand::RngCore + rand::CryptoRng>(
        &self,
        sums: &mut [i64],
        rng: &mut R,
        out: impl Iterator<Item = &'a mut f32>,
    ) {
        let unit = 1.0 / self.scale;
        for (s, o) in sums.iter_mut().zip(out) {
            let z = self.noise.map_or(0, |n| n.sample(rng));
            *o = ((*s + z) as f64 * unit) as f32;
            *s = 0;
        }
    }
}

/// Trains an MLP on `data` with DP-SGD (see [`DpSgdConfig`]); `progress` is called after
/// every epoch of `ceil(n / batch_size)` steps.
///
/// The initialization comes from [`TrainConfig::seed`] (it does not touch the data); the
/// sampling and the noise come from [`DpSgdConfig::noise_seed`]'s stream. The reported loss
/// and accuracy are measured on the sampled batches and are not private: they are for the
/// data's owner, and are not written to the model file.
///
/// Panics only on a configuration that cannot train, as [`train`] does, or on a clipping
/// norm or noise multiplier that is not positive and finite.
pub fn train_private(
    data: &Dataset,
    config: &TrainConfig,
    dp: &DpSgdConfig,
    mut progress: impl FnMut(EpochReport),
) -> FloatModel {
    assert!(
        dp.clip_norm.is_finite() && dp.clip_norm > 0.0,
        "the clipping norm must be positive"
    );
    assert!(
        dp.noise_multiplier.is_finite() && dp.noise_multiplier >= 0.0,
        "the noise multiplier must be non-negative"
    );

    let mut init_rng = ChaCha20Rng::seed_from_u64(config.seed);
    let mut rng = match dp.noise_seed {
        Some(seed) => ChaCha20Rng::seed_from_u64(seed),
        None => ChaCha20Rng::from_os_rng(),
    };
    let (mut layers, mut opt, inputs) = prepare(data, config, &mut init_rng);

    let n = data.len();
    let (q, steps) = dp_sgd_schedule(n, config.batch_size, config.epochs);
    let steps_per_epoch = steps / config.epochs.max(1) as u64;
    let expected_batch = (q * n as f64) as f32;
    let mut sum = Grads::zeros(&layers);
    let mut one = Grads::zeros(&layers);
    let mechanism = DiscreteNoise::new(dp.noise_multiplier, dp.clip_norm, sum.len());
    let mut sums = vec![0i64; sum.len()];
    let mut t = 0i32;

    for epoch in 0..config.epochs {
        let frac = if config.epochs > 1 {
            epoch as f32 / (config.epochs - 1) as f32
        } else {
            0.0
        };
        let lr = config.learning_rate * (1.0 - 0.9 * frac);
        let (mut loss_sum, mut seen, mut correct) = (0.0f64, 0usize, 0usize);
        for _ in 0..steps_per_epoch {
            sum.clear();
            for (idx, input) in inputs.iter().enumerate() {
                if rng.random::<f64>() >= q {
                    continue;
                }
                one.clear();
                let label = usize::from(data.samples[idx].label);
                let (loss, hit) = example_gradient(&layers, input, label, &mut one);
                let factor = clip_factor(one.norm(), dp.clip_norm);
                mechanism.add(one.values().map(|g| factor * g), &mut sums);
                loss_sum += f64::from(loss);
                seen += 1;
                correct += usize::from(hit);
            }
            mechanism.release(&mut sums, &mut rng, sum.values_mut());
            t += 1;
            sum.apply(
                &mut layers,
                &mut opt,
                1.0 / expected_batch,
                config.weight_decay,
                lr,
                t,
            );
        }
        progress(EpochReport {
            epoch: epoch + 1,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            train_accuracy: correct as f64 / seen.max(1) as f64,
        });
    }
    FloatModel { layers }
}

/// Trains on `split.train`, quantizes (calibrating on the training split), measures both
/// networks on `split.test`, and assembles the model file's contents.
pub fn build_model(
    split: &crate::data::Split,
    config: &TrainConfig,
    spec: crate::quant::QuantSpec,
    name: &str,
    progress: impl FnMut(EpochReport),
) -> crate::format::Model {
    let float = train(&split.train, config, progress);
    let quantized = crate::quant::quantize(&float, spec, &split.train);
    assemble(split, config, name, "adam", float, quantized, None)
}

/// The model file's contents for trained networks: their accuracy on `split.test` and how
/// they were made.
fn assemble(
    split: &crate::data::Split,
    config: &TrainConfig,
    name: &str,
    optimizer: &str,
    float: FloatModel,
    quantized: crate::quant::QuantModel,
    privacy: Option<crate::format::PrivacyInfo>,
) -> crate::format::Model {
    let test = &split.test.samples;
    let float_test_accuracy = crate::accuracy(test, |s| float.predict(&s.pixels));
    let quantized_test_accuracy = crate::accuracy(test, |s| quantized.predict(&s.pixels));
    crate::format::Model {
        format: crate::format::FORMAT_NAME.to_string(),
        version: crate::format::FORMAT_VERSION_MLP,
        name: name.to_string(),
        dataset: "digits".into(),
        float: float.to_graph(),
        quantized: quantized.to_graph(),
        training: crate::format::TrainingInfo {
            optimizer: optimizer.to_string(),
            hidden: config.hidden.clone(),
            epochs: config.epochs,
            batch_size: config.batch_size,
            learning_rate: config.learning_rate,
            weight_decay: config.weight_decay,
            seed: config.seed,
            float_test_accuracy,
            quantized_test_accuracy,
            privacy,
        },
    }
}

/// What a DP-SGD run must achieve and how it clips.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacyTarget {
    /// Target epsilon.
    pub epsilon: f64,
    /// Target delta.
    pub delta: f64,
    /// Largest L2 norm of one example's gradient.
    pub clip_norm: f32,
    /// The accountant that calibrates the noise and reports the achieved epsilon.
    pub accountant: veil_dp::AccountantKind,
    /// Seed of the sampling and noise stream: `None` (the operating system) except in tests.
    pub noise_seed: Option<u64>,
}

/// Images for calibrating the quantization of a private model without touching its
/// training data: random pen strokes on the 8x8 grid, drawn from nothing but `seed`, and
/// labelled by the private float network itself, so that calibration chooses the
/// quantization that agrees best with it. Quantizing is then post-processing of the DP-SGD
/// output and costs no privacy. On digits it lands within a point of calibrating on the
/// training split.
pub fn synthetic_calibration(float: &FloatModel, count: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let samples = (0..count)
        .map(|_| {
            let pixels = random_strokes(&mut rng);
            let label = float.predict(&pixels) as u8;
            crate::data::Sample { pixels, label }
        })
        .collect();
    Dataset { samples }
}

/// An 8x8 image of two to four random pen strokes: each starts on a random pixel, walks
/// three to seven steps, turning now and then, and inks the pixels it visits fully and
/// their four neighbours lightly.
fn random_strokes(rng: &mut ChaCha20Rng) -> [u8; IMAGE_PIXELS] {
    const DIRS: [(i32, i32); 8] = [
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (0, 1),
        (1, 1),
        (1, 0),
        (1, -1),
        (0, -1),
    ];
    let mut ink = [0u32; IMAGE_PIXELS];
    for _ in 0..rng.random_range(2..=4) {
        let (mut r, mut c) = (rng.random_range(1..7i32), rng.random_range(1..7i32));
        let mut dir = rng.random_range(0..8usize);
        for _ in 0..rng.random_range(3..=7) {
            ink[(r * 8 + c) as usize] += rng.random_range(10..=16);
            for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                let (nr, nc) = (r + dr, c + dc);
                if (0..8).contains(&nr) && (0..8).contains(&nc) {
                    ink[(nr * 8 + nc) as usize] += rng.random_range(0..=5);
                }
            }
            if rng.random_bool(0.3) {
                dir = (dir + if rng.random_bool(0.5) { 1 } else { 7 }) % 8;
            }
            let (dr, dc) = DIRS[dir];
            r = (r + dr).clamp(0, 7);
            c = (c + dc).clamp(0, 7);
        }
    }
    ink.map(|v| v.min(16) as u8)
}

/// Seed of [`synthetic_calibration`]'s images for private models (public: the images do not
/// depend on any data).
pub const SYNTHETIC_CALIBRATION_SEED: u64 = 0x5eed_ca1b;

/// Number of synthetic calibration images for private models.
pub const SYNTHETIC_CALIBRATION_IMAGES: usize = 2000;

/// Trains on `split.train` with DP-SGD, quantizes without touching the training data, and
/// assembles the model file's contents with its privacy guarantee.
///
/// The noise multiplier is the smallest that the chosen accountant finds meets
/// `target` for the schedule [`dp_sgd_schedule`] gives; the file records the epsilon the
/// accountant then reports for that noise, which is at most the target. Errors come from
/// the accountant: a delta outside (0, 1), a non-positive epsilon, or a target no noise
/// meets.
pub fn build_private_model(
    split: &crate::data::Split,
    config: &TrainConfig,
    target: &PrivacyTarget,
    spec: crate::quant::QuantSpec,
    name: &str,
    progress: impl FnMut(EpochReport),
) -> Result<crate::format::Model, veil_dp::DpError> {
    use veil_dp::{Delta, Epsilon, SamplingRate};
    let epsilon = Epsilon::new(target.epsilon)?;
    let delta = Delta::new(target.delta)?;
    if !(target.clip_norm.is_finite() && target.clip_norm > 0.0) {
        return Err(veil_dp::DpError::InvalidParameter {
            name: "clip_norm",
            value: f64::from(target.clip_norm),
            reason: "must be positive and finite",
        });
    }
    // The discrete Gaussian's guarantee is proven in RDP at integer orders (see
    // [`DiscreteNoise`]); the PLD accountant models continuous noise.
    let accountant = match target.accountant {
        veil_dp::AccountantKind::Rdp | veil_dp::AccountantKind::RdpIntegerOrders => {
            veil_dp::AccountantKind::RdpIntegerOrders
        }
        veil_dp::AccountantKind::Pld(_) => {
            return Err(veil_dp::DpError::InvalidParameter {
                name: "accountant",
                value: 0.0,
                reason: "DP-SGD adds discrete Gaussian noise, whose guarantee Veil proves in \
                         RDP at integer orders; the PLD accountant models continuous noise: \
                         use the RDP accountant",
            });
        }
    };
    let (q, steps) = dp_sgd_schedule(split.train.len(), config.batch_size, config.epochs);
    let rate = SamplingRate::new(q)?;
    let noise = veil_dp::calibrate_noise(epsilon, delta, rate, steps, &accountant)?;
    let achieved = veil_dp::dp_sgd_epsilon(noise, rate, steps, delta, &accountant)?;
    let dp = DpSgdConfig {
        noise_multiplier: noise.get(),
        clip_norm: target.clip_norm,
        noise_seed: target.noise_seed,
    };
    let float = train_private(&split.train, config, &dp, progress);
    let calib = synthetic_calibration(
        &float,
        SYNTHETIC_CALIBRATION_IMAGES,
        SYNTHETIC_CALIBRATION_SEED,
    );
    let quantized = crate::quant::quantize(&float, spec, &calib);
    let dims: usize = float
        .layers
        .iter()
        .map(|l| l.weights.len() + l.bias.len())
        .sum();
    let mechanism = DiscreteNoise::new(noise.get(), target.clip_norm, dims);
    let privacy = crate::format::PrivacyInfo {
        mechanism: "dp-sgd".to_string(),
        accountant: "rdp-integer-orders".to_string(),
        noise: "discrete-gaussian".to_string(),
        grid_units: mechanism.grid_units(),
        epsilon: achieved,
        delta: target.delta,
        target_epsilon: target.epsilon,
        noise_multiplier: noise.get(),
        clip_norm: target.clip_norm,
        sample_rate: q,
        steps,
        quantization_calibration: "synthetic".to_string(),
    };
    Ok(assemble(
        split,
        config,
        name,
        "dp-sgd-adam",
        float,
        quantized,
        Some(privacy),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::digits_split;

    #[test]
    fn training_is_deterministic_and_learns() {
        let split = digits_split();
        let cfg = TrainConfig {
            hidden: vec![16],
            epochs: 5,
            ..TrainConfig::default()
        };
        let a = train(&split.train, &cfg, |_| {});
        let b = train(&split.train, &cfg, |_| {});
        assert_eq!(a, b);
        let acc = crate::accuracy(&split.test.samples, |s| a.predict(&s.pixels));
        assert!(acc > 0.85, "five epochs reach {acc}");
        let c = train(
            &split.train,
            &TrainConfig {
                seed: cfg.seed + 1,
                ..cfg.clone()
            },
            |_| {},
        );
        assert_ne!(a, c);
    }

    fn private_config() -> TrainConfig {
        TrainConfig::private()
    }

    #[test]
    fn dp_sgd_at_epsilon_8_reaches_90_percent() {
        let split = digits_split();
        let target = PrivacyTarget {
            epsilon: 8.0,
            delta: 1e-5,
            clip_norm: 1.0,
            accountant: veil_dp::AccountantKind::Rdp,
            noise_seed: Some(7),
        };
        let spec = crate::quant::QuantSpec::default();
        let m =
            build_private_model(&split, &private_config(), &target, spec, "dp", |_| {}).unwrap();
        let p = m.training.privacy.clone().unwrap();
        assert!(p.epsilon <= 8.0 && p.epsilon > 7.99, "{}", p.epsilon);
        assert_eq!(
            (p.accountant.as_str(), p.noise.as_str(), p.grid_units),
            ("rdp-integer-orders", "discrete-gaussian", MAX_GRID_UNITS)
        );
        assert_eq!((p.sample_rate, p.steps), dp_sgd_schedule(1438, 256, 60));
        // The noise matches the accountant's calibration.
        let sigma = veil_dp::calibrate_noise(
            veil_dp::Epsilon::new(8.0).unwrap(),
            veil_dp::Delta::new(1e-5).unwrap(),
            veil_dp::SamplingRate::new(p.sample_rate).unwrap(),
            p.steps,
            &veil_dp::AccountantKind::RdpIntegerOrders,
        )
        .unwrap();
        assert_eq!(p.noise_multiplier, sigma.get());
        assert!(m.training.float_test_accuracy >= 0.90, "{:?}", m.training);
        assert!(
            m.training.quantized_test_accuracy >= 0.90,
            "{:?}",
            m.training
        );
        // The record survives the file format.
        let back = crate::format::Model::from_json(&m.to_json()).unwrap();
        assert_eq!(back.training.privacy, Some(p));
    }

    #[test]
    fn distilling_one_hot_targets_is_training_on_the_labels() {
        let split = digits_split();
        let cfg = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let one_hot: Vec<Vec<f32>> = split
            .train
            .samples
            .iter()
            .map(|s| {
                (0..NUM_CLASSES)
                    .map(|c| f32::from(c == usize::from(s.label)))
                    .collect()
            })
            .collect();
        let a = train(&split.train, &cfg, |_| {});
        let b = train_distilled(&split.train, &one_hot, &cfg, |_| {});
        assert_eq!(a, b);
        // Uniform targets teach nothing about the classes.
        let flat = vec![vec![0.1f32; NUM_CLASSES]; split.train.len()];
        let c = train_distilled(&split.train, &flat, &cfg, |_| {});
        let acc = crate::accuracy(&split.test.samples, |s| c.predict(&s.pixels));
        assert!(acc < 0.3, "{acc}");
    }

    #[test]
    fn no_floating_point_gaussian_remains() {
        // The noise is `veil_dp::DiscreteGaussian`'s integers: no Box-Muller (a logarithm and
        // a cosine of uniform floats) and no other float sampler in the trainer.
        let code = include_str!("train.rs");
        let code = &code[..code.find("#[cfg(test)]\nmod tests").unwrap()];
        for banned in [
            "standard_normal",
            ".cos()",
            ".sin()",
            "TAU",
            "StandardNormal",
            "rand_distr",
        ] {
            assert!(!code.contains(banned), "the trainer still has {banned}");
        }
        assert!(code.contains("DiscreteGaussian"));
    }

    #[test]
    fn discrete_noise_bounds_the_sensitivity_and_has_the_calibrated_spread() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (clip, d) = (0.7f32, 1810);
        for sigma in [0.5, 1.3, 40.0, 1e4] {
            let m = DiscreteNoise::new(sigma, clip, d);
            // σ_Z ≥ σ·Δ, and Δ is the grid's units plus half of √d.
            let delta = (m.sensitivity2() as f64).sqrt();
            assert!(m.grid_units() as f64 + (d as f64).sqrt() / 2.0 <= delta + 1.0);
            assert!(m.sigma2() as f64 >= sigma * sigma * m.sensitivity2() as f64);
            // Every clipped example stays within Δ, the worst rounding included.
            let mut sums = vec![0i64; d];
            for k in 0..200 {
                let v: Vec<f32> = (0..d).map(|_| rng.random::<f32>() - 0.5).collect();
                let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                let scale = if k % 2 == 0 { 1.0 } else { 1.0 + 1e-6 };
                let clipped = v
                    .iter()
                    .map(|x| (f64::from(*x) / norm * f64::from(clip) * scale) as f32);
                let mut one = vec![0i64; d];
                m.add(clipped, &mut one);
                let n2: u128 = one.iter().map(|x| (x.unsigned_abs() as u128).pow(2)).sum();
                assert!(n2 <= m.sensitivity2(), "{n2} > {}", m.sensitivity2());
                sums.iter_mut().zip(&one).for_each(|(s, x)| *s += x);
            }
            // Released with nothing summed, the noise alone: its spread is σ·C (within the
            // sampling error of 1810 draws and the grid's rounding up).
            let mut zeros = vec![0i64; d];
            let mut out = vec![0f32; d];
            m.release(&mut zeros, &mut rng, out.iter_mut());
            let sd = (out.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / d as f64).sqrt();
            let want = sigma * f64::from(clip) * delta / m.grid_units() as f64;
            assert!(
                (sd / want - 1.0).abs() < 0.1,
                "sigma {sigma}: sd {sd}, want {want}"
            );
        }
    }

    #[test]
    fn the_pld_accountant_is_refused_for_discrete_noise() {
        let split = digits_split();
        let target = PrivacyTarget {
            epsilon: 8.0,
            delta: 1e-5,
            clip_norm: 1.0,
            accountant: veil_dp::AccountantKind::Pld(Default::default()),
            noise_seed: Some(7),
        };
        let err = build_private_model(
            &split,
            &private_config(),
            &target,
            crate::quant::QuantSpec::default(),
            "dp",
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("integer orders"), "{err}");
    }

    #[test]
    fn dp_sgd_noise_is_applied_and_seeded() {
        let split = digits_split();
        let cfg = TrainConfig {
            epochs: 5,
            ..private_config()
        };
        let dp = |sigma: f64, seed: Option<u64>| DpSgdConfig {
            noise_multiplier: sigma,
            clip_norm: 1.0,
            noise_seed: seed,
        };
        let acc = |m: &FloatModel| crate::accuracy(&split.test.samples, |s| m.predict(&s.pixels));
        let quiet = train_private(&split.train, &cfg, &dp(0.0, Some(1)), |_| {});
        assert!(
            acc(&quiet) > 0.85,
            "clipped SGD without noise learns: {}",
            acc(&quiet)
        );
        let drowned = train_private(&split.train, &cfg, &dp(1e4, Some(1)), |_| {});
        assert!(acc(&drowned) < 0.5, "noise 1e4 leaves {}", acc(&drowned));
        let a = train_private(&split.train, &cfg, &dp(1.0, Some(3)), |_| {});
        let b = train_private(&split.train, &cfg, &dp(1.0, Some(3)), |_| {});
        let c = train_private(&split.train, &cfg, &dp(1.0, Some(4)), |_| {});
        assert_eq!(a, b);
        assert_ne!(a, c);
        let os1 = train_private(&split.train, &cfg, &dp(1.0, None), |_| {});
        let os2 = train_private(&split.train, &cfg, &dp(1.0, None), |_| {});
        assert_ne!(os1, os2, "unseeded runs draw fresh noise");
    }

    #[test]
    fn clipping_bounds_every_example() {
        let split = digits_split();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let layers = init_layers(&mut rng, &[IMAGE_PIXELS, 16, NUM_CLASSES]);
        let mut one = Grads::zeros(&layers);
        let mut sum = Grads::zeros(&layers);
        let mut largest = 0.0f64;
        for s in split.train.samples.iter().take(50) {
            one.clear();
            example_gradient(
                &layers,
                &input_features(&s.pixels),
                usize::from(s.label),
                &mut one,
            );
            let norm = one.norm();
            largest = largest.max(norm);
            let factor = clip_factor(norm, 0.25);
            sum.add_scaled(&one, factor);
            let mut clipped = Grads::zeros(&layers);
            clipped.add_scaled(&one, factor);
            assert!(clipped.norm() <= 0.25 * (1.0 + 1e-6));
        }
        assert!(largest > 0.25, "the test clips something: {largest}");
        assert!(sum.norm() <= 50.0 * 0.25 * (1.0 + 1e-6));
    }

    #[test]
    fn schedule() {
        assert_eq!(dp_sgd_schedule(1000, 100, 3), (0.1, 30));
        assert_eq!(dp_sgd_schedule(1000, 300, 2), (0.3, 8));
        assert_eq!(dp_sgd_schedule(10, 50, 1), (1.0, 1));
    }

    #[test]
    fn bad_privacy_targets_are_errors() {
        let split = digits_split();
        let spec = crate::quant::QuantSpec::default();
        for (epsilon, delta, clip_norm) in [
            (8.0, 0.0, 1.0),
            (8.0, 1.0, 1.0),
            (-1.0, 1e-5, 1.0),
            (f64::NAN, 1e-5, 1.0),
            (8.0, 1e-5, 0.0),
            (8.0, 1e-5, f32::INFINITY),
        ] {
            let target = PrivacyTarget {
                epsilon,
                delta,
                clip_norm,
                accountant: veil_dp::AccountantKind::Rdp,
                noise_seed: Some(1),
            };
            let r = build_private_model(&split, &private_config(), &target, spec, "x", |_| {});
            assert!(r.is_err(), "{epsilon} {delta} {clip_norm}");
        }
    }
}
