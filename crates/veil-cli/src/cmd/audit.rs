//! `veil audit membership`: the membership-inference attacks of `veil_harness::audit` against
//! a model Veil trained on the bundled digits, with their AUC, true-positive rates at low
//! false-positive rates and the empirical epsilon lower bound beside the accountant's.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use veil_harness::audit::{membership, roc_svg, MembershipReport, Target};
use veil_nn::float::FloatModel;
use veil_nn::train::TrainConfig;

use super::{load_model, print_json, Lines};

/// `veil audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Membership inference against a digits MLP trained by `veil train` (members: the
    /// training split; non-members: the test split): loss, confidence, label-only and LiRA
    /// with shadow models.
    Membership(MembershipArgs),
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
    }
}

fn run_membership(a: MembershipArgs) -> Result<()> {
    let (model, source) = load_model(a.model.as_deref())?;
    let Some(float) = FloatModel::from_graph(&model.float) else {
        bail!("{source}: the audit trains shadow models with Veil's trainer, which makes digits MLPs only");
    };
    if float.layers.first().map(|l| l.inputs) != Some(veil_nn::data::IMAGE_PIXELS) {
        bail!("{source}: the audit covers the 8x8 digits models (64 inputs)");
    }
    let t = &model.training;
    let config = TrainConfig {
        hidden: t.hidden.clone(),
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        weight_decay: t.weight_decay,
        seed: t.seed,
    };
    let privacy = t.privacy.as_ref().map(|p| (p.epsilon, p.delta));
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
