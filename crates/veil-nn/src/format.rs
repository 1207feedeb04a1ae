//! The model file: versioned JSON holding the float network, its quantized twin and how both
//! were made. `FORMAT.md` beside this crate specifies every field.
//!
//! Version 2 holds any model graph ([`crate::graph`]); version 1, the 8x8-digits MLP format,
//! still loads (into the same graph form, predicting exactly as before) and a model read from
//! a version-1 file is written back as version 1, byte for byte.
//!
//! Loading checks, in order: that the text is JSON, that it declares `"format": "veil-model"`,
//! that its `version` is one this build reads, that every field is known and of the right type,
//! and then the shapes and ranges ([`Model::validate`]). Each failure is a distinct
//! [`ModelError`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{IMAGE_PIXELS, NUM_CLASSES};
use crate::float::FloatModel;
use crate::graph::{FloatGraph, QuantGraph};
use crate::quant::QuantModel;

/// Value of the `format` field.
pub const FORMAT_NAME: &str = "veil-model";
/// The model-file version this build writes for graphs; it also reads and writes
/// [`FORMAT_VERSION_MLP`].
pub const FORMAT_VERSION: u32 = 2;
/// The first model-file version: an MLP over the 8x8 digits.
pub const FORMAT_VERSION_MLP: u32 = 1;
/// Largest model file read, in bytes.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;

/// How the model was trained and how well it did; informational, not used by inference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// The optimizer, `"adam"`.
    pub optimizer: String,
    /// Hidden-layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch_size: usize,
    /// Initial Adam step size.
    pub learning_rate: f32,
    /// L2 penalty on the weights.
    pub weight_decay: f32,
    /// Seed of the training stream.
    pub seed: u64,
    /// Float accuracy on the test split when the model was written.
    pub float_test_accuracy: f64,
    /// Quantized accuracy on the test split when the model was written.
    pub quantized_test_accuracy: f64,
    /// The differential-privacy guarantee of the training, for a model trained with DP-SGD;
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyInfo>,
}

/// The differential-privacy guarantee of a model trained with DP-SGD, as its accountant
/// computed it: the released model (both networks) is (`epsilon`, `delta`)-DP with respect to
/// adding or removing one training example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyInfo {
    /// The training mechanism, `"dp-sgd"`.
    pub mechanism: String,
    /// The accountant that computed `epsilon`: `"rdp-integer-orders"` (RDP at the integer
    /// orders only, what discrete Gaussian noise is proven at); `"rdp"` or `"pld"` in files
    /// made before the noise was discrete.
    pub accountant: String,
    /// The noise: `"discrete-gaussian"`, exact integer samples on a grid of `clip_norm /
    /// grid_units` (`veil_nn::train::DiscreteNoise`); `"gaussian-float"` in files made before,
    /// whose noise came from floating-point Box-Muller.
    #[serde(default = "float_noise")]
    pub noise: String,
    /// Grid units per clipping norm of the discrete noise; 0 for float noise.
    #[serde(default)]
    pub grid_units: u64,
    /// The achieved epsilon.
    pub epsilon: f64,
    /// The delta it holds at.
    pub delta: f64,
    /// The epsilon asked for; the noise was calibrated to meet it.
    pub target_epsilon: f64,
    /// Noise standard deviation over the clipping norm.
    pub noise_multiplier: f64,
    /// Largest L2 norm of one example's gradient.
    pub clip_norm: f32,
    /// Poisson sampling rate of each step.
    pub sample_rate: f64,
    /// Number of noisy steps.
    pub steps: u64,
    /// What the quantization was calibrated on: `"synthetic"` (images that do not come from
    /// the training data, labelled by the private float network), so that it adds no
    /// privacy cost.
    pub quantization_calibration: String,
}

fn float_noise() -> String {
    "gaussian-float".to_string()
}

/// A model, as read from a file of either version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`], or [`FORMAT_VERSION_MLP`] for a model read from (and to be written
    /// as) a version-1 file.
    pub version: u32,
    /// A name for people.
    pub name: String,
    /// The dataset the model classifies: `"digits"` (8x8, pixels 0..=16) or
    /// `"fashion-mnist"` (28x28, pixels 0..=255), or another name for a user's data.
    pub dataset: String,
    /// The float network.
    pub float: FloatGraph,
    /// The quantized network the protocols compute.
    pub quantized: QuantGraph,
    /// Provenance.
    pub training: TrainingInfo,
}

/// A version-1 model file: an MLP over the 8x8 digits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelV1 {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION_MLP`].
    pub version: u32,
    /// A name for people.
    pub name: String,
    /// The float network.
    pub float: FloatModel,
    /// The quantized network the protocols compute.
    pub quantized: QuantModel,
    /// Provenance.
    pub training: TrainingInfo,
}

impl ModelV1 {
    /// The model in graph form (still to be written as version 1).
    pub fn into_model(self) -> Model {
        Model {
            format: self.format,
            version: FORMAT_VERSION_MLP,
            name: self.name,
            dataset: "digits".into(),
            float: self.float.to_graph(),
            quantized: self.quantized.to_graph(),
            training: self.training,
        }
    }
}

/// Why a model could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MODEL_BYTES`].
    #[error("model file is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The text is not JSON (for instance a truncated file).
    #[error("not a valid model file (malformed or truncated JSON): {0}")]
    Syntax(String),
    /// JSON, but not a Veil model.
    #[error("not a Veil model: the \"format\" field must be \"veil-model\"")]
    NotAModel,
    /// A Veil model of a version this build does not read.
    #[error("unsupported model version {found} (this build reads versions 1 and {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        supported: u32,
    },
    /// A field is missing, unknown or of the wrong type.
    #[error("invalid model: {0}")]
    Schema(String),
    /// The layers do not fit together or a value is out of its range.
    #[error("invalid model shape: {0}")]
    Shape(String),
}

fn shape(msg: String) -> Result<(), ModelError> {
    Err(ModelError::Shape(msg))
}

impl Model {
    /// Parses and validates a model from JSON text, of either version.
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ModelError::Syntax(e.to_string()))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(ModelError::NotAModel);
        }
        let model = match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FORMAT_VERSION_MLP) => {
                let v1: ModelV1 =
                    serde_json::from_value(value).map_err(|e| ModelError::Schema(e.to_string()))?;
                v1.validate()?;
                v1.into_model()
            }
            Some(v) if v == u64::from(FORMAT_VERSION) => {
                serde_json::from_value(value).map_err(|e| ModelError::Schema(e.to_string()))?
            }
            Some(v) => {
                return Err(ModelError::UnsupportedVersion {
                    found: v,
                    supported: FORMAT_VERSION,
                })
            }
            None => {
                return Err(ModelError::Schema(
                    "missing or non-integer \"version\"".into(),
                ))
            }
        };
        model.validate()?;
        Ok(model)
    }

    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge {
                size,
                max: MAX_MODEL_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Model::from_json(&text)
    }

    /// The model as pretty-printed JSON, ending with a newline: version 1 for a model read
    /// from or made as a version-1 file (byte for byte as that version writes it), version 2
    /// otherwise.
    pub fn to_json(&self) -> String {
        // Serializing plain data with finite floats cannot fail.
        let mut s = match self.to_v1() {
            Some(v1) => serde_json::to_string_pretty(&v1),
            None => serde_json::to_string_pretty(self),
        }
        .unwrap_or_default();
        s.push('\n');
        s
    }

    /// The version-1 form of a model whose `version` is 1 and whose graphs are MLPs.
    pub fn to_v1(&self) -> Option<ModelV1> {
        if self.version != FORMAT_VERSION_MLP {
            return None;
        }
        Some(ModelV1 {
            format: self.format.clone(),
            version: FORMAT_VERSION_MLP,
            name: self.name.clone(),
            float: FloatModel::from_graph(&self.float)?,
            quantized: QuantModel::from_graph(&self.quantized)?,
            training: self.training.clone(),
        })
    }

    /// The float network's class for raw pixels (scaled by the architecture's `pixel_max`).
    pub fn predict_float(&self, pixels: &[u8]) -> usize {
        let x = crate::graph::float_input(pixels, self.quantized.architecture.pixel_max);
        crate::float::argmax_f32(&self.float.forward(&x))
    }

    /// The quantized network's class for raw pixels: the integer reference every protocol
    /// reproduces.
    pub fn predict(&self, pixels: &[u8]) -> usize {
        self.quantized.predict(pixels)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.quantized.architecture.classes()
    }

    /// Writes the model file (after validating it).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.validate()?;
        std::fs::write(path, self.to_json()).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks the format and version, both graphs (shapes that chain, parameter counts,
    /// finite floats, integer values within their declared widths and 32 bits), and that both
    /// graphs have the same input and ops; a version-1 model must also be an MLP from 64
    /// pixels to 10 classes.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format != FORMAT_NAME {
            return Err(ModelError::NotAModel);
        }
        if self.version != FORMAT_VERSION && self.version != FORMAT_VERSION_MLP {
            return Err(ModelError::UnsupportedVersion {
                found: u64::from(self.version),
                supported: FORMAT_VERSION,
            });
        }
        let graph = |what: &str, e: crate::graph::GraphError| {
            ModelError::Shape(format!("{what} network: {e}"))
        };
        self.float.validate().map_err(|e| graph("float", e))?;
        self.quantized
            .validate()
            .map_err(|e| graph("quantized", e))?;
        let (f, q) = (&self.float, &self.quantized.architecture);
        if f.input != q.input || f.geometries() != q.geometries() {
            return shape(format!(
                "the float and quantized networks differ: {} vs {}",
                crate::graph::describe_geometries(f.input, &f.geometries()),
                q.describe()
            ));
        }
        if self.version == FORMAT_VERSION_MLP {
            match self.to_v1() {
                Some(v1) => v1.validate()?,
                None => return shape("a version-1 model must be an MLP over 64 pixels".into()),
            }
        }
        Ok(())
    }
}

impl ModelV1 {
    /// Checks that both networks map 64 pixels to 10 classes through layers that fit
    /// together, that every value is within its declared width, and that every quantized
    /// accumulator fits in a signed 32-bit integer.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format != FORMAT_NAME {
            return Err(ModelError::NotAModel);
        }
        self.validate_float()?;
        self.validate_quantized()?;
        if self.float.widths() != self.quantized.widths() {
            return shape(format!(
                "float widths {:?} differ from quantized widths {:?}",
                self.float.widths(),
                self.quantized.widths()
            ));
        }
        Ok(())
    }

    fn validate_float(&self) -> Result<(), ModelError> {
        let layers = &self.float.layers;
        if layers.is_empty() {
            return shape("float network has no layers".into());
        }
        let mut width = IMAGE_PIXELS;
        for (k, l) in layers.iter().enumerate() {
            if l.inputs != width {
                return shape(format!(
                    "float layer {k} takes {} inputs, expected {width}",
                    l.inputs
                ));
            }
            if l.outputs == 0 || l.outputs > 4096 {
                return shape(format!("float layer {k} has {} outputs", l.outputs));
            }
            if l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
                return shape(format!(
                    "float layer {k} is {}x{} but holds {} weights and {} biases",
                    l.outputs,
                    l.inputs,
                    l.weights.len(),
                    l.bias.len()
                ));
            }
            if !l.weights.iter().chain(&l.bias).all(|v| v.is_finite()) {
                return shape(format!("float layer {k} holds a non-finite value"));
            }
            width = l.outputs;
        }
        if width != NUM_CLASSES {
            return shape(format!(
                "float network ends with {width} outputs, expected {NUM_CLASSES}"
            ));
        }
        Ok(())
    }

    fn validate_quantized(&self) -> Result<(), ModelError> {
        let q = &self.quantized;
        if !(1..=8).contains(&q.input_bits) {
            return shape(format!("input_bits is {}, expected 1..=8", q.input_bits));
        }
        if q.layers.is_empty() {
            return shape("quantized network has no layers".into());
        }
        let mut width = IMAGE_PIXELS;
        let last = q.layers.len() - 1;
        for (k, l) in q.layers.iter().enumerate() {
            if l.inputs != width {
                return shape(format!(
                    "quantized layer {k} takes {} inputs, expected {width}",
                    l.inputs
                ));
            }
            if l.outputs == 0 || l.outputs > 4096 {
                return shape(format!("quantized layer {k} has {} outputs", l.outputs));
            }
            if l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
                return shape(format!(
                    "quantized layer {k} is {}x{} but holds {} weights and {} biases",
                    l.outputs,
                    l.inputs,
                    l.weights.len(),
                    l.bias.len()
                ));
            }
            if !(2..=8).contains(&l.weight_bits) {
                return shape(format!(
                    "quantized layer {k}: weight_bits is {}, expected 2..=8",
                    l.weight_bits
                ));
            }
            let wmax = (1i16 << (l.weight_bits - 1)) - 1;
            if let Some(w) = l.weights.iter().find(|w| i16::from(**w).abs() > wmax) {
                return shape(format!(
                    "quantized layer {k}: weight {w} does not fit {} signed bits",
                    l.weight_bits
                ));
            }
            match (k == last, l.requant) {
                (true, Some(_)) => return shape("the output layer must not requantize".into()),
                (false, None) => {
                    return shape(format!("hidden layer {k} lacks its requantization"))
                }
                (false, Some(r)) => {
                    if !(1..=8).contains(&r.out_bits) || r.shift > 31 {
                        return shape(format!(
                            "hidden layer {k}: shift {} and out_bits {} (expected shift <= 31, out_bits 1..=8)",
                            r.shift, r.out_bits
                        ));
                    }
                }
                (true, None) => {}
            }
            width = l.outputs;
        }
        if width != NUM_CLASSES {
            return shape(format!(
                "quantized network ends with {width} outputs, expected {NUM_CLASSES}"
            ));
        }
        for (k, layer) in q.accumulator_ranges().iter().enumerate() {
            for (j, r) in layer.iter().enumerate() {
                if r.min < i64::from(i32::MIN) || r.max > i64::from(i32::MAX) {
                    return shape(format!(
                        "accumulator {j} of layer {k} spans {}..={}, beyond 32 bits",
                        r.min, r.max
                    ));
                }
            }
        }
        Ok(())
    }
}
