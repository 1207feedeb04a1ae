//! Mini-batch training of the float MLP with Adam (Kingma and Ba, "Adam: a method for
//! stochastic optimization", ICLR 2015, Algorithm 1) on softmax cross-entropy.
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

/// Trains an MLP on `data`; `progress` is called after every epoch.
///
/// Panics only on a configuration that cannot train: an empty dataset, a zero batch size or a
/// zero-width hidden layer (the CLI validates these first).
pub fn train(
    data: &Dataset,
    config: &TrainConfig,
    mut progress: impl FnMut(EpochReport),
) -> FloatModel {
    assert!(!data.is_empty(), "training needs at least one sample");
    assert!(config.batch_size > 0, "batch size must be positive");
    assert!(
        config.hidden.iter().all(|&h| h > 0),
        "hidden widths must be positive"
    );

    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let mut widths = vec![IMAGE_PIXELS];
    widths.extend(&config.hidden);
    widths.push(NUM_CLASSES);

    let mut layers: Vec<Dense> = widths
        .windows(2)
        .map(|w| {
            let mut d = Dense::zeros(w[0], w[1]);
            let bound = (6.0 / w[0] as f32).sqrt();
            d.weights
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-bound..bound));
            d
        })
        .collect();
    let mut opt_w: Vec<Adam> = layers.iter().map(|l| Adam::new(l.weights.len())).collect();
    let mut opt_b: Vec<Adam> = layers.iter().map(|l| Adam::new(l.bias.len())).collect();

    let inputs: Vec<Vec<f32>> = data
        .samples
        .iter()
        .map(|s| input_features(&s.pixels))
        .collect();
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
            let mut gw: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.weights.len()]).collect();
            let mut gb: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.bias.len()]).collect();
            let mut batch_loss = 0.0f32;
            for &idx in batch {
                let label = usize::from(data.samples[idx].label);
                // Forward, keeping every layer's activation.
                let mut acts: Vec<Vec<f32>> = vec![inputs[idx].clone()];
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
                batch_loss += sum.ln() - (logits[label] - max);
                if crate::float::argmax_f32(logits) == label {
                    correct += 1;
                }
                // Backward: delta is dLoss/dz for the current layer.
                let mut delta: Vec<f32> = exps.iter().map(|e| e / sum).collect();
                delta[label] -= 1.0;
                for k in (0..layers.len()).rev() {
                    let layer = &layers[k];
                    let a = &acts[k];
                    for (j, d) in delta.iter().enumerate() {
                        gb[k][j] += d;
                        let row = &mut gw[k][j * layer.inputs..(j + 1) * layer.inputs];
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
            }
            let scale = 1.0 / batch.len() as f32;
            t += 1;
            for k in 0..layers.len() {
                for (g, w) in gw[k].iter_mut().zip(&layers[k].weights) {
                    *g = *g * scale + config.weight_decay * w;
                }
                gb[k].iter_mut().for_each(|g| *g *= scale);
                opt_w[k].step(&mut layers[k].weights, &gw[k], lr, t);
                opt_b[k].step(&mut layers[k].bias, &gb[k], lr, t);
            }
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
    let test = &split.test.samples;
    let float_test_accuracy = crate::accuracy(test, |s| float.predict(&s.pixels));
    let quantized_test_accuracy = crate::accuracy(test, |s| quantized.predict(&s.pixels));
    crate::format::Model {
        format: crate::format::FORMAT_NAME.to_string(),
        version: crate::format::FORMAT_VERSION,
        name: name.to_string(),
        float,
        quantized,
        training: crate::format::TrainingInfo {
            optimizer: "adam".to_string(),
            hidden: config.hidden.clone(),
            epochs: config.epochs,
            batch_size: config.batch_size,
            learning_rate: config.learning_rate,
            weight_decay: config.weight_decay,
            seed: config.seed,
            float_test_accuracy,
            quantized_test_accuracy,
        },
    }
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
}
