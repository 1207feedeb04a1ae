//! `veil import`: a float ONNX model into a Veil model file, quantized to the integer semantics
//! of `QUANTIZATION.md` with a calibration set by `veil_harness::models::import`, its float
//! and quantized accuracy printed.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use veil_harness::data::DatasetName;
use veil_harness::models::import;
use veil_nn::QuantSpec;

use super::{print_json, Lines};

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
        &mut Lines::new("", a.json),
    )?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(&a.out)?;
    report.out = Some(a.out.display().to_string());
    if a.json {
        print_json(&report)?;
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
