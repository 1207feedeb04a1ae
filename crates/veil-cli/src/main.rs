//! The `veil` command: the entry point a newcomer meets first.
//!
//! Subcommands: `train` (fit, with DP-SGD under `--dp`, quantize and write a model), `eval`
//! (accuracy and recorded privacy of a model on the digits test split), `serve`, `infer`,
//! `demo` and `bench` (private inference), `link` (a network between them), `fhe`, `circuit`
//! and `dp` (the building blocks).
//! Each subcommand's `--help` says what it does and what every flag means.
//!
//! This file holds the command line and its dispatch; each subcommand's flags and output live
//! in a module of [`cmd`], and what they compute in `veil_harness`, `veil_nn` and `veil_dp`.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Private machine-learning inference: a client gets a model's prediction on its own input
/// without showing the input; the server computes it without showing the model.
#[derive(Parser, Debug)]
#[command(name = "veil", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train an MLP on the digits training split, quantize it and write the model file.
    ///
    /// With the defaults this reproduces the bundled `models/digits.json` bit for bit.
    Train(cmd::train::TrainArgs),
    /// Report a model's float and quantized accuracy on a test split (the model's own dataset
    /// by default: the digits or Fashion-MNIST).
    Eval(cmd::eval::EvalArgs),
    /// Import a float ONNX model: quantize it to Veil's integer semantics, calibrated on a
    /// dataset's training split, and write a model file (version 2).
    Import(cmd::import::ImportArgs),
    /// Serve a model privately to clients over TCP (HE, Yao and GMW), one task per client.
    Serve(cmd::serve::ServeArgs),
    /// Classify images privately with a `veil serve` server.
    Infer(cmd::infer::InferArgs),
    /// Emulate a network link between a client and a server: forward connections with an
    /// added round-trip time and a rate limit per direction.
    Link(cmd::link::LinkArgs),
    /// Start a server in a child process and classify a few test digits with every protocol,
    /// side by side.
    Demo(cmd::demo::DemoArgs),
    /// Encrypted inference with TFHE.
    #[command(subcommand)]
    Fhe(cmd::fhe::FheCommand),
    /// Differential-privacy accounting of DP-SGD (RDP or PLD).
    #[command(subcommand)]
    Dp(cmd::dp::DpCommand),
    /// Privacy audits: membership inference against a model, measured beside its
    /// accountant's epsilon.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Shamir secret sharing: split and combine files, and an n-process BGW demo.
    #[command(subcommand)]
    Shamir(cmd::shamir::ShamirCommand),
    /// Long-term identity keys of the encrypted channels (Noise IK, X25519).
    #[command(subcommand)]
    Identity(cmd::identity::IdentityCommand),
    /// Boolean circuits in the Bristol Fashion format: statistics and evaluation.
    #[command(subcommand)]
    Circuit(cmd::circuit::CircuitCommand),
    /// Measure Veil's protocols side by side (HE, Yao, GMW and mixed on the bundled model), or
    /// one building block with a subcommand (medians of several runs).
    Bench(cmd::bench::BenchAll),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Train(a) => cmd::train::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Infer(a) => cmd::infer::run(a),
        Command::Link(a) => cmd::link::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Fhe(c) => cmd::fhe::run(c),
        Command::Dp(c) => cmd::dp::run(c),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Shamir(c) => cmd::shamir::run(c),
        Command::Identity(c) => cmd::identity::run(c),
        Command::Circuit(c) => cmd::circuit::run(c),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
