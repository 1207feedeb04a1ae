//! `veil-nn`: the model every Veil protocol computes.
//!
//! - [`data`]: the 8x8 handwritten digits (UCI, as shipped by scikit-learn), bundled, with a
//!   fixed train/test split.
//! - [`float`]: a multilayer perceptron in `f32` (ReLU hidden layers, linear output).
//! - [`train`]: a deterministic mini-batch Adam trainer (Kingma and Ba, 2015) with softmax
//!   cross-entropy, and DP-SGD (Abadi et al., 2016) with its noise calibrated by `veil-dp`.
//! - [`quant`]: post-training quantization to few-bit integers and the exact integer inference
//!   that the private protocols reproduce bit for bit (specified in `QUANTIZATION.md`).
//! - [`format`]: the versioned model file (specified in `FORMAT.md`).

pub mod compile;
pub mod data;
pub mod float;
pub mod format;
pub mod graph;
pub mod images;
pub mod onnx;
pub mod quant;
pub mod train;

pub use data::{Dataset, Sample, Split};
pub use float::{Dense, FloatModel};
pub use format::{Model, ModelError, PrivacyInfo, TrainingInfo};
pub use quant::{QLayer, QuantModel, QuantSpec, Requant};
pub use train::{train, train_private, DpSgdConfig, PrivacyTarget, TrainConfig};

/// Fraction of `samples` whose label equals `predict(sample)`; 0 for an empty set.
pub fn accuracy<F: FnMut(&Sample) -> usize>(samples: &[Sample], mut predict: F) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let correct = samples
        .iter()
        .filter(|s| predict(s) == usize::from(s.label))
        .count();
    correct as f64 / samples.len() as f64
}

/// The model bundled with Veil (`models/digits.json`), compiled into this crate.
pub fn bundled_model() -> Result<Model, ModelError> {
    Model::from_json(include_str!("../../../models/digits.json"))
}
