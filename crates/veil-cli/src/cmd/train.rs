//! `veil train`: fits an MLP on the digits training split (with DP-SGD under `--dp`),
//! quantizes it, writes the model file and reports its accuracy.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use veil_harness::data::DatasetName;
use veil_harness::models::evaluate;
use veil_nn::data::digits_split;
use veil_nn::{QuantSpec, TrainConfig};

use super::dp::Accountant;
use super::eval::{print_report, EVAL_BAR_MIN};
use super::{print_json, Bars};

/// `veil train` flags.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Where to write the model.
    #[arg(long, default_value = "models/digits.json")]
    out: PathBuf,
    /// Hidden-layer widths, comma separated (e.g. `24` or `48,24`).
    #[arg(long, value_delimiter = ',', default_value = "24")]
    hidden: Vec<usize>,
    /// Passes over the training split [default: 150, or 60 with --dp].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per mini-batch; with --dp, the expected size of the Poisson-sampled batch
    /// [default: 32, or 256 with --dp].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Initial Adam step size, decaying linearly to a tenth [default: 0.005, or 0.02 with
    /// --dp].
    #[arg(long)]
    learning_rate: Option<f32>,
    /// L2 penalty on the weights [default: 0.001, or 0 with --dp].
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Train with DP-SGD: Poisson sampling, per-example clipping and discrete Gaussian noise, with
    /// the noise calibrated to --epsilon and --delta. Sampling and noise draw from the
    /// operating system's randomness.
    #[arg(long, requires = "epsilon")]
    dp: bool,
    /// Target epsilon of the DP-SGD run (with --dp).
    #[arg(long, requires = "dp")]
    epsilon: Option<f64>,
    /// Target delta of the DP-SGD run (with --dp); well below 1/(training examples).
    #[arg(long, default_value_t = 1e-5, requires = "dp")]
    delta: f64,
    /// Largest L2 norm of one example's gradient (with --dp).
    #[arg(long, default_value_t = 1.0, requires = "dp")]
    clip_norm: f32,
    /// Accountant that calibrates the noise and reports epsilon (with --dp): RDP, at its
    /// integer orders, where the guarantee of the discrete Gaussian noise DP-SGD adds is
    /// proven; PLD, which models continuous noise, is refused.
    #[arg(long, value_enum, default_value_t = Accountant::Rdp, requires = "dp")]
    accountant: Accountant,
    /// Seed of the training randomness (initialization and batch order).
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Bits of the unsigned input codes (1-8).
    #[arg(long, default_value_t = QuantSpec::default().input_bits)]
    input_bits: u8,
    /// Bits of the signed weights (2-8).
    #[arg(long, default_value_t = QuantSpec::default().weight_bits)]
    weight_bits: u8,
    /// Bits of the unsigned hidden activations (1-8).
    #[arg(long, default_value_t = QuantSpec::default().activation_bits)]
    activation_bits: u8,
    /// Name recorded in the model file.
    #[arg(long, default_value = "digits-mlp")]
    name: String,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `veil train`.
pub fn run(a: TrainArgs) -> Result<()> {
    if a.hidden.is_empty() || a.hidden.contains(&0) || a.hidden.iter().any(|&h| h > 4096) {
        bail!("--hidden needs one or more widths between 1 and 4096");
    }
    let base = if a.dp {
        TrainConfig::private()
    } else {
        TrainConfig::default()
    };
    let cfg = TrainConfig {
        hidden: a.hidden.clone(),
        epochs: a.epochs.unwrap_or(base.epochs),
        batch_size: a.batch_size.unwrap_or(base.batch_size),
        learning_rate: a.learning_rate.unwrap_or(base.learning_rate),
        weight_decay: a.weight_decay.unwrap_or(base.weight_decay),
        seed: a.seed,
    };
    if cfg.epochs == 0 || cfg.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    let lr_ok = cfg.learning_rate.is_finite() && cfg.learning_rate > 0.0;
    let wd_ok = cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0;
    if !lr_ok || !wd_ok {
        bail!("--learning-rate must be positive and --weight-decay non-negative");
    }
    if !(1..=8).contains(&a.input_bits)
        || !(2..=8).contains(&a.weight_bits)
        || !(1..=8).contains(&a.activation_bits)
    {
        bail!("bit widths: --input-bits 1-8, --weight-bits 2-8, --activation-bits 1-8");
    }
    let spec = QuantSpec {
        input_bits: a.input_bits,
        weight_bits: a.weight_bits,
        activation_bits: a.activation_bits,
    };
    let split = digits_split();
    let bar = ProgressBar::new(cfg.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("training {bar:30} epoch {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if a.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let on_epoch = |r: veil_nn::train::EpochReport| {
        bar.set_message(format!(
            "loss {:.4} train acc {:.2}%",
            r.loss,
            100.0 * r.train_accuracy
        ));
        bar.inc(1);
    };
    let model = match a.epsilon {
        Some(epsilon) if a.dp => {
            let target = veil_nn::PrivacyTarget {
                epsilon,
                delta: a.delta,
                clip_norm: a.clip_norm,
                accountant: a.accountant.kind(),
                noise_seed: None,
            };
            veil_nn::train::build_private_model(&split, &cfg, &target, spec, &a.name, on_epoch)
                .context("DP-SGD")?
        }
        _ => veil_nn::train::build_model(&split, &cfg, spec, &a.name, on_epoch),
    };
    bar.finish_and_clear();
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(&a.out)?;
    let report = evaluate(
        &model,
        &a.out.display().to_string(),
        DatasetName::Digits,
        &mut Bars::new(false, EVAL_BAR_MIN),
    )?;
    if a.json {
        print_json(&report)?;
    } else {
        println!("wrote {}", a.out.display());
        print_report(&report);
    }
    Ok(())
}
