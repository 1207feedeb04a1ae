//! `veil eval`: a model's float and quantized accuracy, architecture, costs and recorded
//! privacy on a test split, measured by `veil_harness::models::evaluate`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use veil_harness::data::DatasetName;
use veil_harness::models::{evaluate, ModelReport};

use super::{load_model, print_json, Bars};

/// Test splits shorter than this are evaluated without a progress bar.
pub const EVAL_BAR_MIN: u64 = 2000;

/// `veil eval` flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file (version 1, version 2 or `.onnx`). Without it: `models/digits.json` if that
    /// file exists, else the copy compiled into this binary.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The test split to measure on [default: the model's own dataset].
    #[arg(long, value_enum)]
    dataset: Option<DatasetName>,
    /// Print one JSON object (`float_accuracy`, `quantized_accuracy`, ...) instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `veil eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    let (model, source) = load_model(a.model.as_deref())?;
    let dataset = DatasetName::choose(a.dataset, Some(&model));
    let report = evaluate(
        &model,
        &source,
        dataset,
        &mut Bars::new(false, EVAL_BAR_MIN),
    )?;
    if a.json {
        print_json(&report)
    } else {
        print_report(&report);
        Ok(())
    }
}

/// Prints a model report as text.
pub fn print_report(r: &ModelReport) {
    println!("model         {} ({})", r.model, r.name);
    println!("architecture  {}", r.architecture);
    println!(
        "bit widths    input {} unsigned, weights {:?} signed, activations {:?} unsigned, accumulators {:?} signed",
        r.input_bits, r.weight_bits, r.activation_bits, r.accumulator_bits
    );
    println!(
        "cost          {} hidden activations (TFHE bootstraps), {} AND gates of AND depth {} (Yao, GMW)",
        r.hidden_activations, r.and_gates, r.and_depth
    );
    println!(
        "float         {:.2}% of {} {} test images",
        100.0 * r.float_accuracy,
        r.test_samples,
        r.dataset
    );
    println!("quantized     {:.2}%", 100.0 * r.quantized_accuracy);
    println!(
        "agreement     {:.2}% (float and quantized predict the same class)",
        100.0 * r.agreement
    );
    match &r.privacy {
        Some(p) => println!(
            "privacy       ({:.4}, {:e})-DP by {} ({} accountant; {} noise, multiplier \
             {:.4}, clip norm {}, sample rate {:.4}, {} steps; target epsilon {})",
            p.epsilon,
            p.delta,
            p.mechanism,
            p.accountant,
            p.noise,
            p.noise_multiplier,
            p.clip_norm,
            p.sample_rate,
            p.steps,
            p.target_epsilon
        ),
        None => println!("privacy       none recorded (trained without differential privacy)"),
    }
}
