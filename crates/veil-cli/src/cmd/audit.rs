//! `veil audit membership`: the membership-inference attacks of `veil_harness::audit` against
//! a model Veil trained on the bundled digits, with their AUC, true-positive rates at low
//! false-positive rates and the empirical epsilon lower bound beside the accountant's.
//! `veil audit extraction`: a surrogate trained on `N` answers of the model, class or logits,
//! and its agreement with the model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use veil_harness::audit::{
    digits_mlp, extraction, membership, roc_svg, Answer, ExtractionReport, MembershipReport, Target,
};

use super::{load_model, print_json, Lines};

/// `veil audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Membership inference against a digits MLP trained by `veil train` (members: the
    /// training split; non-members: the test split): loss, confidence, label-only and LiRA
    /// with shadow models.
    Membership(MembershipArgs),
    /// Model extraction: a surrogate of the model's architecture trained on its answers to N
    /// queries (random pen strokes), and how often it agrees with the model on the test split.
    Extraction(ExtractionArgs),
}

/// `veil audit extraction` flags.
#[derive(Args, Debug)]
pub struct ExtractionArgs {
    /// Model file [default: the bundled digits model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// What the model answers: the class only, or the logits.
    #[arg(long, value_enum, default_value = "class")]
    output: OutputArg,
    /// Query budgets, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    queries: Vec<usize>,
    /// Seed of the attacker's query images.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The model's answer, on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OutputArg {
    /// The class only.
    Class,
    /// The logits.
    Logits,
}

/// `veil audit membership` flags.
#[derive(Args, Debug)]
pub struct MembershipArgs {
    /// Model file [default: the bundled digits model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Shadow models for LiRA, each trained with the model's recipe on a random half of the
    /// examples.
    #[arg(long, default_value_t = 16)]
    shadows: usize,
    /// Seed of the shadows' halves and the label-only noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the ROC curves (log axes) to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// Runs `veil audit`.
pub fn run(c: AuditCommand) -> Result<()> {
    match c {
        AuditCommand::Membership(a) => run_membership(a),
        AuditCommand::Extraction(a) => run_extraction(a),
    }
}

fn run_extraction(a: ExtractionArgs) -> Result<()> {
    let (model, source) = load_model(a.model.as_deref())?;
    let (float, config) = digits_mlp(&model, &source)?;
    let answer = match a.output {
        OutputArg::Class => Answer::Class,
        OutputArg::Logits => Answer::Logits,
    };
    let split = veil_nn::data::digits_split();
    let served = |p: &[u8; veil_nn::data::IMAGE_PIXELS]| model.predict(p);
    let target = Target {
        float: &float,
        config,
        privacy: None,
    };
    let report = extraction(
        &target,
        &served,
        answer,
        &a.queries,
        &split.test,
        a.seed,
        &mut Lines::new("audit", a.json),
    )?;
    if a.json {
        print_json(&report)
    } else {
        print_extraction(&source, &report);
        Ok(())
    }
}

fn print_extraction(source: &str, r: &ExtractionReport) {
    println!(
        "model extraction from {source}, answers: {:?}; agreement of the surrogate with the \
         model on {} test images",
        r.answer, r.test_images
    );
    for p in &r.points {
        println!("  {:>7} queries  {:>6.1}%", p.queries, 100.0 * p.agreement);
    }
}

fn run_membership(a: MembershipArgs) -> Result<()> {
    let (model, source) = load_model(a.model.as_deref())?;
    let (float, config) = digits_mlp(&model, &source)?;
    let privacy = model
        .training
        .privacy
        .as_ref()
        .map(|p| (p.epsilon, p.delta));
    let split = veil_nn::data::digits_split();
    let target = Target {
        float: &float,
        config,
        privacy,
    };
    let report = membership(
        &target,
        &split.train,
        &split.test,
        a.shadows,
        a.seed,
        &mut Lines::new("audit", a.json),
    )?;
    if let Some(path) = &a.svg {
        std::fs::write(path, roc_svg(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        print_json(&report)
    } else {
        print_membership(&source, &report);
        Ok(())
    }
}

fn print_membership(source: &str, r: &MembershipReport) {
    println!(
        "membership inference against {source}: {} members (training split), {} non-members \
         (test split), {} shadow models",
        r.members, r.non_members, r.shadows
    );
    println!(
        "  {:<12}{:>8}{:>14}{:>12}{:>20}",
        "attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "epsilon lower bound"
    );
    for a in &r.attacks {
        println!(
            "  {:<12}{:>8.3}{:>14.3}{:>12.3}{:>20.3}",
            a.attack, a.auc, a.tpr_at_0_1_pct_fpr, a.tpr_at_1_pct_fpr, a.epsilon_lower_bound
        );
    }
    match r.accountant_epsilon {
        Some(e) => println!(
            "  the accountant's epsilon: {e:.3} at delta {:e} (the lower bounds are at 95% \
             confidence, Clopper-Pearson)",
            r.delta
        ),
        None => println!(
            "  trained without differential privacy: no accountant's epsilon (lower bounds at \
             delta {:e}, 95% confidence)",
            r.delta
        ),
    }
}
