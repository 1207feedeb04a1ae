//! `veil dp`: privacy accounting of DP-SGD (Poisson-subsampled Gaussian, composed over the
//! steps) with veil-dp's RDP or PLD accountant.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use veil_dp::{
    calibrate_noise, AccountantKind, Delta, DpEvent, Epsilon, NoiseMultiplier, PldAccountant,
    RdpAccountant, SamplingRate,
};

/// The DP-SGD run being accounted.
#[derive(Args, Debug)]
pub struct DpSgdArgs {
    /// Noise multiplier (Gaussian standard deviation over the clipping norm).
    #[arg(long)]
    noise: f64,
    /// Poisson sampling rate of each step (batch size over dataset size).
    #[arg(long)]
    sample_rate: f64,
    /// Number of steps.
    #[arg(long)]
    steps: u64,
}

/// `veil dp ...`.
#[derive(Subcommand, Debug)]
pub enum DpCommand {
    /// The epsilon of DP-SGD at a given delta.
    Epsilon {
        #[command(flatten)]
        sgd: DpSgdArgs,
        /// Target delta.
        #[arg(long)]
        delta: f64,
        /// Accountant.
        #[arg(long, value_enum, default_value = "rdp")]
        accountant: Accountant,
        /// Print one JSON object (`epsilon`, `delta`, ...).
        #[arg(long)]
        json: bool,
    },
    /// The delta of DP-SGD at a given epsilon.
    Delta {
        #[command(flatten)]
        sgd: DpSgdArgs,
        /// Target epsilon.
        #[arg(long)]
        epsilon: f64,
        /// Accountant.
        #[arg(long, value_enum, default_value = "rdp")]
        accountant: Accountant,
        /// Print one JSON object (`delta`, ...).
        #[arg(long)]
        json: bool,
    },
    /// The smallest noise multiplier for a target (epsilon, delta).
    Noise {
        /// Target epsilon.
        #[arg(long)]
        epsilon: f64,
        /// Target delta.
        #[arg(long)]
        delta: f64,
        /// Poisson sampling rate of each step.
        #[arg(long)]
        sample_rate: f64,
        /// Number of steps.
        #[arg(long)]
        steps: u64,
        /// Accountant.
        #[arg(long, value_enum, default_value = "rdp")]
        accountant: Accountant,
        /// Print one JSON object (`noise`, ...).
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `veil dp` subcommand.
pub fn run(cmd: DpCommand) -> Result<()> {
    match cmd {
        DpCommand::Epsilon {
            sgd,
            delta,
            accountant,
            json,
        } => epsilon(
            sgd.noise,
            sgd.sample_rate,
            sgd.steps,
            delta,
            accountant,
            json,
        ),
        DpCommand::Delta {
            sgd,
            epsilon,
            accountant,
            json,
        } => self::delta(
            epsilon,
            sgd.noise,
            sgd.sample_rate,
            sgd.steps,
            accountant,
            json,
        ),
        DpCommand::Noise {
            epsilon,
            delta,
            sample_rate,
            steps,
            accountant,
            json,
        } => noise(epsilon, delta, sample_rate, steps, accountant, json),
    }
}

/// Which accountant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accountant {
    /// Rényi DP over dp_accounting's default orders, improved conversion.
    Rdp,
    /// Privacy-loss distributions composed by FFT (pessimistic, interval 1e-4).
    Pld,
}

impl Accountant {
    /// The library's accountant.
    pub fn kind(self) -> AccountantKind {
        match self {
            Accountant::Rdp => AccountantKind::Rdp,
            Accountant::Pld => AccountantKind::Pld(Default::default()),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Accountant::Rdp => "rdp",
            Accountant::Pld => "pld",
        }
    }
}

#[derive(Serialize)]
struct Answer {
    accountant: &'static str,
    noise: f64,
    sample_rate: f64,
    steps: u64,
    epsilon: f64,
    delta: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<f64>,
}

fn print(a: &Answer, json: bool, what: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(a)?);
    } else {
        let order = a
            .order
            .map(|o| format!(" (RDP order {o})"))
            .unwrap_or_default();
        println!(
            "{what}: epsilon {:.6}, delta {:.3e}{order}\n  noise multiplier {:.6}, sample rate {}, {} steps, {} accountant",
            a.epsilon, a.delta, a.noise, a.sample_rate, a.steps, a.accountant
        );
    }
    Ok(())
}

/// `veil dp epsilon`.
fn epsilon(noise: f64, q: f64, steps: u64, delta: f64, acc: Accountant, json: bool) -> Result<()> {
    let event = DpEvent::dp_sgd(noise, q, steps)?;
    let r = acc.kind().report(&event, Delta::new(delta)?)?;
    print(
        &Answer {
            accountant: acc.name(),
            noise,
            sample_rate: q,
            steps,
            epsilon: r.epsilon,
            delta,
            order: r.order,
        },
        json,
        "epsilon",
    )
}

/// `veil dp delta`.
fn delta(eps: f64, noise: f64, q: f64, steps: u64, acc: Accountant, json: bool) -> Result<()> {
    let event = DpEvent::dp_sgd(noise, q, steps)?;
    let e = Epsilon::new(eps)?;
    let (d, order) = match acc {
        Accountant::Rdp => {
            let mut a = RdpAccountant::default();
            a.compose(&event)?;
            let r = a.delta(e)?;
            (r.delta, Some(r.order))
        }
        Accountant::Pld => {
            let mut a = PldAccountant::default();
            a.compose(&event)?;
            (a.delta(e), None)
        }
    };
    print(
        &Answer {
            accountant: acc.name(),
            noise,
            sample_rate: q,
            steps,
            epsilon: eps,
            delta: d,
            order,
        },
        json,
        "delta",
    )
}

/// `veil dp noise`: the smallest noise multiplier meeting the target.
fn noise(eps: f64, delta: f64, q: f64, steps: u64, acc: Accountant, json: bool) -> Result<()> {
    let n: NoiseMultiplier = calibrate_noise(
        Epsilon::new(eps)?,
        Delta::new(delta)?,
        SamplingRate::new(q)?,
        steps,
        &acc.kind(),
    )?;
    let a = Answer {
        accountant: acc.name(),
        noise: n.get(),
        sample_rate: q,
        steps,
        epsilon: eps,
        delta,
        order: None,
    };
    print(&a, json, "noise")
}
