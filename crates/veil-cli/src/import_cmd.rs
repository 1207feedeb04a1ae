//! `veil import`: a float ONNX model into a Veil model file, quantized to the integer semantics
//! of `QUANTIZATION.md` with a calibration set, its float and quantized accuracy printed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use veil_nn::format::{Model, TrainingInfo, FORMAT_NAME, FORMAT_VERSION};
use veil_nn::graph::{float_input, FloatGraph, Shape};
use veil_nn::images::ImageSet;
use veil_nn::quant::{quantize_graph, CalibrationImage};
use veil_nn::QuantSpec;

use crate::inputs::DatasetName;

/// `veil import` flags.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The float ONNX model (Gemm, MatMul + Add, Conv, Relu, AveragePool, Flatten and the
    /// Reshape that flattens).
    pub onnx: PathBuf,
    /// The dataset whose training split calibrates the quantization and whose test split
    /// measures it [default: from the model's input shape: 64 values for the digits, 1x28x28
    /// for Fashion-MNIST].
    #[arg(long, value_enum)]
    pub calibration: Option<DatasetName>,
    /// Training images used for calibration, from the first.
    #[arg(long, default_value_t = 2000)]
    pub calibration_images: usize,
    /// Where to write the model file (version 2).
    #[arg(long)]
    pub out: PathBuf,
    /// Name recorded in the model file [default: the ONNX file's stem].
    #[arg(long)]
    pub name: Option<String>,
    /// Bits of the unsigned input codes (1-8).
    #[arg(long, default_value_t = QuantSpec::default().input_bits)]
    pub input_bits: u8,
    /// Bits of the signed weights (2-8).
    #[arg(long, default_value_t = QuantSpec::default().weight_bits)]
    pub weight_bits: u8,
    /// Bits of the unsigned hidden activations (1-8).
    #[arg(long, default_value_t = QuantSpec::default().activation_bits)]
    pub activation_bits: u8,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Whether a `--model` path names an ONNX file.
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The dataset an input shape suggests.
fn dataset_of(input: Shape) -> Option<DatasetName> {
    if input == Shape::flat(64) {
        Some(DatasetName::Digits)
    } else if input.len() == 28 * 28 && input.channels <= 1 || input == Shape::flat(784) {
        Some(DatasetName::FashionMnist)
    } else {
        None
    }
}

/// What an import measured.
#[derive(serde::Serialize)]
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

/// Imports and quantizes an ONNX model.
pub fn import(
    path: &Path,
    dataset: Option<DatasetName>,
    calibration_images: usize,
    spec: QuantSpec,
    name: Option<String>,
    progress: bool,
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
    if progress {
        eprintln!(
            "quantizing {} on {n} {} training images (clipping ratios and shifts searched layer by layer) ...",
            path.display(),
            dataset.file_name()
        );
    }
    let quantized = quantize_graph(&float, spec, train.pixel_max, &calib)?;
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
fn accuracies(float: &FloatGraph, q: &veil_nn::graph::QuantGraph, test: &ImageSet) -> (f64, f64) {
    let run = q.runner();
    let (mut f, mut c) = (0usize, 0usize);
    for i in 0..test.len() {
        let x = float_input(test.image(i), q.architecture.pixel_max);
        f += usize::from(veil_nn::float::argmax_f32(&float.forward(&x)) == test.label(i));
        c += usize::from(run.predict_codes(&q.quantize_input(test.image(i))) == test.label(i));
    }
    let n = test.len().max(1) as f64;
    (f as f64 / n, c as f64 / n)
}

/// `--model X.onnx` elsewhere: imported with the default widths and calibration.
pub fn import_default(path: &Path) -> Result<Model> {
    let (model, _) = import(path, None, 2000, QuantSpec::default(), None, true)
        .with_context(|| format!("importing {}", path.display()))?;
    Ok(model)
}

/// `veil import`.
pub fn run(a: ImportArgs) -> Result<()> {
    let spec = QuantSpec {
        input_bits: a.input_bits,
        weight_bits: a.weight_bits,
        activation_bits: a.activation_bits,
    };
    if !(1..=8).contains(&a.input_bits)
        || !(2..=8).contains(&a.weight_bits)
        || !(1..=8).contains(&a.activation_bits)
    {
        bail!("bit widths: --input-bits 1-8, --weight-bits 2-8, --activation-bits 1-8");
    }
    let (model, mut report) = import(
        &a.onnx,
        a.calibration,
        a.calibration_images,
        spec,
        a.name,
        !a.json,
    )?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(&a.out)?;
    report.out = Some(a.out.display().to_string());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("wrote {} ({})", a.out.display(), report.dataset);
        println!("architecture  {}", report.architecture);
        for n in &report.notes {
            println!("note          {n}");
        }
        println!(
            "float         {:.2}% of the {} test images",
            100.0 * report.float_accuracy,
            report.dataset
        );
        println!(
            "quantized     {:.2}% (calibrated on {} training images; {} hidden activations)",
            100.0 * report.quantized_accuracy,
            report.calibration_images,
            report.hidden_activations
        );
    }
    Ok(())
}
