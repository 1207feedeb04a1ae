//! Models: loading a model file (either version) or an ONNX file, importing and quantizing an
//! ONNX model on a dataset, and measuring a model's float and quantized accuracy on a test
//! split.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use veil_nn::format::{Model, TrainingInfo, FORMAT_NAME, FORMAT_VERSION};
use veil_nn::graph::{float_input, FloatGraph, QuantGraph, Shape};
use veil_nn::images::ImageSet;
use veil_nn::quant::{quantize_graph, CalibrationImage};
use veil_nn::QuantSpec;

use crate::data::DatasetName;
use crate::progress::Progress;
use crate::stats::fraction;

/// The model file used when none is named, if it exists.
pub const DEFAULT_MODEL_PATH: &str = "models/digits.json";

/// Whether a model path names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Loads a model: `path` (a model file of either version, or an ONNX file, imported with the
/// default bit widths and calibrated on its dataset's training split), or else
/// [`DEFAULT_MODEL_PATH`] when it exists, or else the copy compiled into `veil-nn`. Returns
/// the model and a description of where it came from. An import reports its progress to
/// `progress`.
pub fn load_model(path: Option<&Path>, progress: &mut dyn Progress) -> Result<(Model, String)> {
    Ok(match path {
        Some(path) if is_onnx(path) => {
            (import_default(path, progress)?, path.display().to_string())
        }
        Some(path) => (Model::load(path)?, path.display().to_string()),
        None => {
            let default = Path::new(DEFAULT_MODEL_PATH);
            if default.exists() {
                (Model::load(default)?, default.display().to_string())
            } else {
                (
                    veil_nn::bundled_model()?,
                    format!("bundled {DEFAULT_MODEL_PATH}"),
                )
            }
        }
    })
}

/// What a model measures on a test split, with its architecture and costs.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// Where the model came from.
    pub model: String,
    /// The name recorded in the model file.
    pub name: String,
    /// The dataset of the test split.
    pub dataset: String,
    /// The architecture, one line.
    pub architecture: String,
    /// Test images measured.
    pub test_samples: usize,
    /// Accuracy of the float model.
    pub float_accuracy: f64,
    /// Accuracy of the quantized (integer) model.
    pub quantized_accuracy: f64,
    /// Fraction of images where the float and quantized models predict the same class.
    pub agreement: f64,
    /// Bits of the unsigned input codes.
    pub input_bits: u8,
    /// Bits of each layer's signed weights.
    pub weight_bits: Vec<u8>,
    /// Bits of each requantized activation.
    pub activation_bits: Vec<u8>,
    /// Bits of each layer's signed accumulators.
    pub accumulator_bits: Vec<u32>,
    /// Hidden activations per query (one TFHE bootstrap each).
    pub hidden_activations: usize,
    /// AND gates of the class-revealing circuit (Yao and GMW).
    pub and_gates: usize,
    /// AND depth of that circuit (GMW's rounds).
    pub and_depth: usize,
    /// The DP-SGD guarantee recorded in the file, or null.
    pub privacy: Option<veil_nn::PrivacyInfo>,
}

/// Measures `model` on the test split of `dataset`: float and quantized accuracy, their
/// agreement, and the costs of its architecture. `source` says where the model came from.
/// One progress step per test image.
pub fn evaluate(
    model: &Model,
    source: &str,
    dataset: DatasetName,
    progress: &mut dyn Progress,
) -> Result<ModelReport> {
    let test = dataset.test_set()?;
    let q = &model.quantized;
    let arch = &q.architecture;
    if test.image_len() != arch.input_count() {
        bail!(
            "the {} test images have {} pixels, the model takes {} ({})",
            dataset.file_name(),
            test.image_len(),
            arch.input_count(),
            arch.input
        );
    }
    progress.phase("evaluating", Some(test.len() as u64));
    let (mut fc, mut qc, mut agree) = (0usize, 0usize, 0usize);
    for i in 0..test.len() {
        let (f, p) = (
            model.predict_float(test.image(i)),
            model.predict(test.image(i)),
        );
        fc += usize::from(f == test.label(i));
        qc += usize::from(p == test.label(i));
        agree += usize::from(f == p);
        progress.step("");
    }
    progress.finish();
    let circuit = veil_nn::compile::compile(q, veil_nn::compile::Outputs::Class)?
        .circuit
        .stats();
    Ok(ModelReport {
        model: source.to_string(),
        name: model.name.clone(),
        dataset: dataset.file_name().to_string(),
        architecture: arch.describe(),
        test_samples: test.len(),
        float_accuracy: fraction(fc, test.len()),
        quantized_accuracy: fraction(qc, test.len()),
        agreement: fraction(agree, test.len()),
        input_bits: arch.input_bits,
        weight_bits: arch
            .ops
            .iter()
            .filter_map(|o| o.widths().map(|w| w.0))
            .collect(),
        activation_bits: arch
            .ops
            .iter()
            .filter_map(|o| o.requant().map(|r| r.out_bits))
            .collect(),
        accumulator_bits: arch
            .ops
            .iter()
            .filter_map(|o| o.widths().map(|w| w.1))
            .collect(),
        hidden_activations: arch.activations(),
        and_gates: circuit.and_count,
        and_depth: circuit.and_depth as usize,
        privacy: model.training.privacy.clone(),
    })
}

/// The dataset an input shape suggests: 64 values for the digits, 28x28 for Fashion-MNIST.
pub fn dataset_of(input: Shape) -> Option<DatasetName> {
    if input == Shape::flat(64) {
        Some(DatasetName::Digits)
    } else if input.len() == 28 * 28 && input.channels <= 1 || input == Shape::flat(784) {
        Some(DatasetName::FashionMnist)
    } else {
        None
    }
}

/// What an import measured.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The ONNX file.
    pub onnx: String,
    /// The model file written, if any.
    pub out: Option<String>,
    /// The dataset.
    pub dataset: String,
    /// The graph, one line.
    pub architecture: String,
    /// What the importer noted (ops dropped, and why).
    pub notes: Vec<String>,
    /// Calibration images used.
    pub calibration_images: usize,
    /// Float accuracy on the test split.
    pub float_accuracy: f64,
    /// Quantized accuracy on the test split.
    pub quantized_accuracy: f64,
    /// Hidden activations per query.
    pub hidden_activations: usize,
}

/// Imports a float ONNX model and quantizes it with `spec`, calibrated on the first
/// `calibration_images` training images of `dataset` (by default the dataset its input shape
/// suggests); measures both on the test split. `name` defaults to the file's stem. The
/// quantization is one progress phase.
pub fn import(
    path: &Path,
    dataset: Option<DatasetName>,
    calibration_images: usize,
    spec: QuantSpec,
    name: Option<String>,
    progress: &mut dyn Progress,
) -> Result<(Model, ImportReport)> {
    let imported = veil_nn::onnx::load_onnx(path)?;
    let float: FloatGraph = imported.graph;
    let dataset = match dataset.or_else(|| dataset_of(float.input)) {
        Some(d) => d,
        None => bail!(
            "cannot tell the dataset of an input of shape {}: pass --calibration",
            float.input
        ),
    };
    let train = dataset.train_set()?;
    let test = dataset.test_set()?;
    if train.image_len() != float.input.len() {
        bail!(
            "the model takes {} values ({}), the {} images have {}",
            float.input.len(),
            float.input,
            dataset.file_name(),
            train.image_len()
        );
    }
    let n = calibration_images.clamp(1, train.len());
    let calib: Vec<CalibrationImage<'_>> =
        (0..n).map(|i| (train.image(i), train.label(i))).collect();
    progress.phase(
        &format!(
            "quantizing {} on {n} {} training images (clipping ratios and shifts searched layer by layer)",
            path.display(),
            dataset.file_name()
        ),
        None,
    );
    let quantized = quantize_graph(&float, spec, train.pixel_max, &calib)?;
    progress.finish();
    let (float_accuracy, quantized_accuracy) = accuracies(&float, &quantized, &test);
    let name = name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".into())
    });
    let report = ImportReport {
        onnx: path.display().to_string(),
        out: None,
        dataset: dataset.file_name().into(),
        architecture: quantized.architecture.describe(),
        notes: imported.notes,
        calibration_images: n,
        float_accuracy,
        quantized_accuracy,
        hidden_activations: quantized.architecture.activations(),
    };
    let model = Model {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        name,
        dataset: dataset.file_name().into(),
        float,
        quantized,
        training: TrainingInfo {
            optimizer: format!(
                "imported from ONNX ({}), calibrated on {n} training images",
                path.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            hidden: Vec::new(),
            epochs: 0,
            batch_size: 0,
            learning_rate: 0.0,
            weight_decay: 0.0,
            seed: 0,
            float_test_accuracy: float_accuracy,
            quantized_test_accuracy: quantized_accuracy,
            privacy: None,
        },
    };
    model.validate()?;
    Ok((model, report))
}

/// Float and quantized accuracy on a test set.
fn accuracies(float: &FloatGraph, q: &QuantGraph, test: &ImageSet) -> (f64, f64) {
    let run = q.runner();
    let (mut f, mut c) = (0usize, 0usize);
    for i in 0..test.len() {
        let x = float_input(test.image(i), q.architecture.pixel_max);
        f += usize::from(veil_nn::float::argmax_f32(&float.forward(&x)) == test.label(i));
        c += usize::from(run.predict_codes(&q.quantize_input(test.image(i))) == test.label(i));
    }
    (fraction(f, test.len()), fraction(c, test.len()))
}

/// Imports an ONNX file with the default bit widths, calibrated on 2000 training images of
/// the dataset its input shape suggests.
pub fn import_default(path: &Path, progress: &mut dyn Progress) -> Result<Model> {
    let (model, _) = import(path, None, 2000, QuantSpec::default(), None, progress)
        .with_context(|| format!("importing {}", path.display()))?;
    Ok(model)
}
