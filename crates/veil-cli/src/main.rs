//! The `veil` command: the entry point a newcomer meets first.
//!
//! Subcommands: `train` (fit, with DP-SGD under `--dp`, quantize and write a model), `eval`
//! (accuracy and recorded privacy of a model on the digits test split), `serve`, `infer`,
//! `demo` and `bench` (private inference), `fhe`, `circuit` and `dp` (the building blocks).
//! Each subcommand's `--help` says what it does and what every flag means.

mod bench;
mod circuit_cmd;
mod dp_cmd;
mod fhe_cmd;
mod import_cmd;
mod inputs;
mod net_cmd;
mod shamir_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use veil_nn::data::digits_split;
use veil_nn::{Model, QuantSpec, TrainConfig};

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
    Train(TrainArgs),
    /// Report a model's float and quantized accuracy on a test split (the model's own dataset
    /// by default: the digits or Fashion-MNIST).
    Eval(EvalArgs),
    /// Import a float ONNX model: quantize it to Veil's integer semantics, calibrated on a
    /// dataset's training split, and write a model file (version 2).
    Import(import_cmd::ImportArgs),
    /// Serve a model privately to clients over TCP (HE, Yao and GMW), one task per client.
    Serve {
        /// Model file. Without it: `models/digits.json` if that file exists, else the copy
        /// compiled into this binary.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Protocols offered, comma separated: he, yao, gmw, and clear, the INSECURE baseline
        /// (the client's input in the clear), offered only when listed here.
        #[arg(long, default_value = "he,yao,gmw")]
        protocol: String,
        /// Address to listen on (port 0 picks a free port; the first line printed names it).
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
        /// Never reveal logits, only classes (Yao and GMW; HE clients always decrypt logits).
        #[arg(long)]
        no_logits: bool,
        /// Longest a client session may last, in seconds.
        #[arg(long, default_value_t = 600)]
        session_timeout: u64,
        /// The server's identity file (`veil identity new`); without it, a fresh identity for
        /// this run. The second line printed is the public key clients pin.
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Serve only clients with this public key (repeatable); without it, any client. The
        /// listed clients are trusted: they are served GMW too.
        #[arg(long = "allow-client", value_name = "KEY")]
        allow_client: Vec<veil_net::PublicKey>,
        /// Serve GMW to every client. GMW is secure only against semi-honest clients (a client
        /// that deviates from it can learn more of the model than its outputs), so without this
        /// flag it is served only to the clients of --allow-client, and any other client asking
        /// for it is refused with a message saying so. Yao and HE are served to any client.
        #[arg(long)]
        trust_clients: bool,
        /// Serve without encryption or authentication: for measurements on a trusted network.
        #[arg(long, conflicts_with_all = ["identity", "allow_client"])]
        insecure_plaintext: bool,
    },
    /// Classify images privately with a `veil serve` server.
    Infer {
        /// Protocol: he, yao, gmw, or clear (INSECURE: sends the input in the clear, for
        /// measurements against a server that offers it).
        #[arg(long)]
        protocol: veil_protocols::Protocol,
        /// The server's address.
        #[arg(long)]
        connect: String,
        /// Images to classify: a PNG or PGM image (converted to grey and resized to the model's
        /// input), or a CSV file of one image per line (the model's number of pixels at its
        /// scale, optionally followed by a label).
        #[arg(long, conflicts_with_all = ["digits_test", "test_rows"])]
        input: Option<PathBuf>,
        /// Rows of the test split of --dataset: `7`, `0..10` (end excluded) or `0-9`.
        #[arg(long, conflicts_with = "digits_test")]
        test_rows: Option<String>,
        /// The dataset of --test-rows.
        #[arg(long, value_enum, default_value = "digits")]
        dataset: inputs::DatasetName,
        /// Images from the digits test split (the same as --dataset digits --test-rows).
        #[arg(long)]
        digits_test: Option<String>,
        /// Ask for the logits too (if the server allows).
        #[arg(long)]
        logits: bool,
        /// Send all images in one query (GMW evaluates 64 per batch at the rounds of one).
        #[arg(long)]
        batch: bool,
        /// A copy of the served model held locally (a researcher's check, not a client's):
        /// reports how often the private prediction equals the plaintext integer reference.
        #[arg(long, value_name = "MODEL")]
        reference: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The server's public key (printed by `veil serve`): the session fails unless the
        /// server holds its private key.
        #[arg(
            long,
            value_name = "KEY",
            required_unless_present = "insecure_plaintext"
        )]
        server_key: Option<veil_net::PublicKey>,
        /// This client's identity file, for servers with an allow-list (default: a fresh key).
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Connect without encryption or authentication, to a `--insecure-plaintext` server.
        #[arg(long, conflicts_with_all = ["server_key", "identity"])]
        insecure_plaintext: bool,
    },
    /// Start a server in a child process and classify a few test digits with every protocol,
    /// side by side.
    Demo {
        /// Model file (default: `models/digits.json` or the bundled copy).
        #[arg(long)]
        model: Option<PathBuf>,
        /// How many test digits.
        #[arg(long, default_value_t = 4)]
        digits: usize,
    },
    /// Encrypted inference with TFHE.
    #[command(subcommand)]
    Fhe(FheCommand),
    /// Differential-privacy accounting of DP-SGD (RDP or PLD).
    #[command(subcommand)]
    Dp(DpCommand),
    /// Shamir secret sharing: split and combine files, and an n-process BGW demo.
    #[command(subcommand)]
    Shamir(shamir_cmd::ShamirCommand),
    /// Long-term identity keys of the encrypted channels (Noise IK, X25519).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Boolean circuits in the Bristol Fashion format: statistics and evaluation.
    #[command(subcommand)]
    Circuit(CircuitCommand),
    /// Measure Veil's protocols side by side (HE, Yao, GMW on the bundled model), or one
    /// building block with a subcommand (medians of several runs).
    Bench(BenchAll),
}

#[derive(Args, Debug)]
struct DpSgdArgs {
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

#[derive(Subcommand, Debug)]
enum DpCommand {
    /// The epsilon of DP-SGD at a given delta.
    Epsilon {
        #[command(flatten)]
        sgd: DpSgdArgs,
        /// Target delta.
        #[arg(long)]
        delta: f64,
        /// Accountant.
        #[arg(long, value_enum, default_value = "rdp")]
        accountant: dp_cmd::Accountant,
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
        accountant: dp_cmd::Accountant,
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
        accountant: dp_cmd::Accountant,
        /// Print one JSON object (`noise`, ...).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum FheCommand {
    /// Run the client and the server of encrypted inference in one process over the digits
    /// test split: accuracy, agreement with the plaintext integer model, server time per
    /// sample, bootstraps and their failures, key sizes.
    Eval {
        /// Model file. Without it: `models/digits.json` if that file exists, else the copy
        /// compiled into this binary.
        #[arg(long)]
        model: Option<PathBuf>,
        /// How many test images, from the first (default: all 359).
        #[arg(long)]
        samples: Option<usize>,
        /// Print one JSON object (`accuracy`, `agreement`, `server_ms_median`,
        /// `pbs_per_sample`, `server_key_bytes`, ...) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CircuitCommand {
    /// Gate counts, AND depth and sizes of a Bristol Fashion circuit.
    Stats {
        /// The circuit file.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a circuit and print each output value in hex, one per line.
    ///
    /// Each value is an integer whose bit i is the i-th wire of that value (least significant
    /// bit first), written in hex, most significant digit first. With `--backend yao` or
    /// `--backend gmw` both parties run in this process over a loopback TCP connection: the
    /// first party (the garbler, or GMW's party 0) supplies the first `--first-party-inputs`
    /// values and the second party the others; the evaluator (Yao) or both parties (GMW)
    /// learn the outputs.
    Eval {
        /// The circuit file (Bristol Fashion).
        #[arg(long)]
        bristol: PathBuf,
        /// Who computes: in the clear, or two parties by Yao or GMW.
        #[arg(long, value_enum, default_value = "plain")]
        backend: circuit_cmd::Backend,
        /// One input value in hex, in circuit order; repeat for each input value.
        #[arg(long = "input", value_name = "HEX")]
        inputs: Vec<String>,
        /// How many leading input values the first party supplies (default: 1 when the
        /// circuit has two or more input values, else 0).
        #[arg(long)]
        first_party_inputs: Option<usize>,
    },
}

#[derive(Args, Debug)]
struct BenchAll {
    #[command(subcommand)]
    part: Option<BenchCommand>,
    /// Print a JSON list of objects (one per protocol) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart of the comparison to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Model file (default: `models/digits.json` or the bundled copy).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Test digits for Yao (one query each) and for the GMW batch; HE uses a fifth of them.
    #[arg(long, default_value_t = 100)]
    digits: usize,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Oblivious transfer: 128 base OTs, IKNP correlated and random OT in memory and over
    /// loopback TCP, bytes per OT.
    Ot(BenchArgs),
    /// Garbled circuits: garbling and evaluation throughput on one core, AES-128 end to end
    /// over loopback TCP, bytes per AND gate.
    Gc(BenchArgs),
    /// GMW: offline triples per second, online AND gates per second for 64 batched AES-128,
    /// AES-128 online latency and rounds over loopback TCP, bytes per AND.
    Gmw(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Runs behind each median.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// `veil identity ...`.
#[derive(Subcommand, Debug)]
enum IdentityCommand {
    /// Create an identity file (private, mode 0600) and print its public key, which peers pin
    /// (`veil infer --server-key`) or allow (`veil serve --allow-client`).
    New {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an identity file's public key.
    Show {
        /// The identity file.
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
struct TrainArgs {
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
    /// Train with DP-SGD: Poisson sampling, per-example clipping and Gaussian noise, with
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
    /// Accountant that calibrates the noise and reports epsilon (with --dp).
    #[arg(long, value_enum, default_value_t = dp_cmd::Accountant::Rdp, requires = "dp")]
    accountant: dp_cmd::Accountant,
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

#[derive(Args, Debug)]
struct EvalArgs {
    /// Model file (version 1, version 2 or `.onnx`). Without it: `models/digits.json` if that
    /// file exists, else the copy compiled into this binary.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The test split to measure on [default: the model's own dataset].
    #[arg(long, value_enum)]
    dataset: Option<inputs::DatasetName>,
    /// Print one JSON object (`float_accuracy`, `quantized_accuracy`, ...) instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Eval(a) => eval(a),
        Command::Import(a) => import_cmd::run(a),
        Command::Serve {
            model,
            protocol,
            listen,
            no_logits,
            session_timeout,
            identity,
            allow_client,
            trust_clients,
            insecure_plaintext,
        } => serve_cmd(
            model,
            &protocol,
            &listen,
            !no_logits,
            session_timeout,
            net_cmd::ServeSecurity {
                identity,
                allow: allow_client,
                trust_clients,
                plaintext: insecure_plaintext,
            },
        ),
        Command::Infer {
            protocol,
            connect,
            input,
            test_rows,
            dataset,
            digits_test,
            logits,
            batch,
            reference,
            json,
            server_key,
            identity,
            insecure_plaintext,
        } => net_cmd::client_security(server_key, identity.as_deref(), insecure_plaintext)
            .and_then(|security| {
                let mut options = veil_protocols::ClientOptions::with_security(protocol, security);
                options.want_logits = logits;
                let dataset = if digits_test.is_some() {
                    inputs::DatasetName::Digits
                } else {
                    dataset
                };
                let reference = match reference {
                    Some(path) => Some(load_model(Some(path))?.0),
                    None => None,
                };
                let images = net_cmd::select_images(
                    input.as_deref(),
                    test_rows.as_deref().or(digits_test.as_deref()),
                    dataset,
                )?;
                net_cmd::infer(options, &connect, &images, batch, reference.as_ref(), json)
            }),
        Command::Identity(IdentityCommand::New { out }) => net_cmd::identity_new(&out),
        Command::Identity(IdentityCommand::Show { file }) => net_cmd::identity_show(&file),
        Command::Demo { model, digits } => demo_cmd(model, digits),
        Command::Shamir(cmd) => shamir_cmd::run(cmd, || Ok(veil_nn::bundled_model()?)),
        Command::Dp(DpCommand::Epsilon {
            sgd,
            delta,
            accountant,
            json,
        }) => dp_cmd::epsilon(
            sgd.noise,
            sgd.sample_rate,
            sgd.steps,
            delta,
            accountant,
            json,
        ),
        Command::Dp(DpCommand::Delta {
            sgd,
            epsilon,
            accountant,
            json,
        }) => dp_cmd::delta(
            epsilon,
            sgd.noise,
            sgd.sample_rate,
            sgd.steps,
            accountant,
            json,
        ),
        Command::Dp(DpCommand::Noise {
            epsilon,
            delta,
            sample_rate,
            steps,
            accountant,
            json,
        }) => dp_cmd::noise(epsilon, delta, sample_rate, steps, accountant, json),
        Command::Fhe(FheCommand::Eval {
            model,
            samples,
            json,
        }) => fhe_eval(model, samples, json),
        Command::Circuit(CircuitCommand::Stats { file, json }) => circuit_cmd::stats(&file, json),
        Command::Circuit(CircuitCommand::Eval {
            bristol,
            backend,
            inputs,
            first_party_inputs,
        }) => circuit_cmd::eval(&bristol, backend, &inputs, first_party_inputs),
        Command::Bench(BenchAll {
            part: None,
            json,
            svg,
            model,
            digits,
        }) => bench_all(model, digits, json, svg),
        Command::Bench(BenchAll {
            part: Some(BenchCommand::Ot(a)),
            ..
        }) => bench_report(a, |r, p| bench::ot(r, p), bench::OtReport::print),
        Command::Bench(BenchAll {
            part: Some(BenchCommand::Gc(a)),
            ..
        }) => bench_report(a, |r, p| bench::gc(r, p), bench::GcReport::print),
        Command::Bench(BenchAll {
            part: Some(BenchCommand::Gmw(a)),
            ..
        }) => bench_report(a, |r, p| bench::gmw(r, p), bench::GmwReport::print),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_report<R: serde::Serialize>(
    a: BenchArgs,
    measure: impl FnOnce(usize, &mut dyn FnMut(&str)) -> Result<R>,
    print: impl FnOnce(&R),
) -> Result<()> {
    let json = a.json;
    let mut progress = |what: &str| {
        if !json {
            eprintln!("measuring {what} ...");
        }
    };
    let report = measure(a.runs, &mut progress)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    if a.hidden.is_empty() || a.hidden.contains(&0) || a.hidden.iter().any(|&h| h > 4096) {
        bail!("--hidden needs one or more widths between 1 and 4096");
    }
    let base = TrainConfig::default();
    let cfg = TrainConfig {
        hidden: a.hidden.clone(),
        epochs: a.epochs.unwrap_or(if a.dp { 60 } else { base.epochs }),
        batch_size: a
            .batch_size
            .unwrap_or(if a.dp { 256 } else { base.batch_size }),
        learning_rate: a
            .learning_rate
            .unwrap_or(if a.dp { 0.02 } else { base.learning_rate }),
        weight_decay: a
            .weight_decay
            .unwrap_or(if a.dp { 0.0 } else { base.weight_decay }),
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
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
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
    let report = Report::of(
        &model,
        &a.out.display().to_string(),
        inputs::DatasetName::Digits,
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("wrote {}", a.out.display());
        report.print();
    }
    Ok(())
}

/// Loads `--model` (a model file of either version, or an ONNX file, imported with the default
/// bit widths and calibrated on its dataset's training split), or `models/digits.json` when it
/// exists, or the bundled copy; returns the model and a description of where it came from.
fn load_model(path: Option<PathBuf>) -> Result<(Model, String)> {
    Ok(match path {
        Some(path) if import_cmd::is_onnx(&path) => (
            import_cmd::import_default(&path)?,
            path.display().to_string(),
        ),
        Some(path) => (Model::load(&path)?, path.display().to_string()),
        None => {
            let default = Path::new("models/digits.json");
            if default.exists() {
                (Model::load(default)?, default.display().to_string())
            } else {
                (
                    veil_nn::bundled_model()?,
                    "bundled models/digits.json".to_string(),
                )
            }
        }
    })
}

fn bench_all(
    model: Option<PathBuf>,
    digits: usize,
    json: bool,
    svg: Option<PathBuf>,
) -> Result<()> {
    let (m, _) = load_model(model)?;
    let rows = bench::protocols(&m, digits, !json)?;
    if let Some(path) = svg {
        std::fs::write(&path, bench::svg_chart(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        bench::print_protocols(&rows);
    }
    Ok(())
}

fn demo_cmd(model: Option<PathBuf>, digits: usize) -> Result<()> {
    let path = model.clone();
    let (m, _) = load_model(model)?;
    net_cmd::demo(&m, path.as_deref(), digits)
}

fn serve_cmd(
    model: Option<PathBuf>,
    protocols: &str,
    listen: &str,
    logits: bool,
    timeout: u64,
    security: net_cmd::ServeSecurity,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (m, source) = load_model(model)?;
    tracing::info!(model = %source, "serving");
    net_cmd::serve(
        &m,
        net_cmd::parse_protocols(protocols)?,
        listen,
        logits,
        timeout,
        security,
    )
}

fn fhe_eval(model: Option<PathBuf>, samples: Option<usize>, json: bool) -> Result<()> {
    let (model, _) = load_model(model)?;
    let report = fhe_cmd::eval(&model, samples, !json)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    let (model, source) = load_model(a.model)?;
    let dataset = inputs::DatasetName::choose(a.dataset, Some(&model));
    let report = Report::of(&model, &source, dataset)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

/// What `eval` (and `train`) report about a model on the test split.
#[derive(serde::Serialize)]
struct Report {
    model: String,
    name: String,
    dataset: String,
    architecture: String,
    test_samples: usize,
    float_accuracy: f64,
    quantized_accuracy: f64,
    agreement: f64,
    input_bits: u8,
    weight_bits: Vec<u8>,
    activation_bits: Vec<u8>,
    accumulator_bits: Vec<u32>,
    /// Hidden activations per query (one TFHE bootstrap each).
    hidden_activations: usize,
    /// AND gates of the class-revealing circuit (Yao and GMW).
    and_gates: usize,
    /// AND depth of that circuit (GMW's rounds).
    and_depth: usize,
    /// The DP-SGD guarantee recorded in the file, or null.
    privacy: Option<veil_nn::PrivacyInfo>,
}

impl Report {
    fn of(model: &Model, source: &str, dataset: inputs::DatasetName) -> Result<Report> {
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
        let bar = ProgressBar::new(test.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("evaluating {bar:30} {pos}/{len} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        if test.len() < 2000 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let (mut fc, mut qc, mut agree) = (0usize, 0usize, 0usize);
        for i in 0..test.len() {
            let (f, p) = (
                model.predict_float(test.image(i)),
                model.predict(test.image(i)),
            );
            fc += usize::from(f == test.label(i));
            qc += usize::from(p == test.label(i));
            agree += usize::from(f == p);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let frac = |n: usize| n as f64 / test.len().max(1) as f64;
        let circuit = veil_nn::compile::compile(q, veil_nn::compile::Outputs::Class)?
            .circuit
            .stats();
        Ok(Report {
            model: source.to_string(),
            name: model.name.clone(),
            dataset: dataset.file_name().to_string(),
            architecture: arch.describe(),
            test_samples: test.len(),
            float_accuracy: frac(fc),
            quantized_accuracy: frac(qc),
            agreement: frac(agree),
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

    fn print(&self) {
        println!("model         {} ({})", self.model, self.name);
        println!("architecture  {}", self.architecture);
        println!(
            "bit widths    input {} unsigned, weights {:?} signed, activations {:?} unsigned, accumulators {:?} signed",
            self.input_bits, self.weight_bits, self.activation_bits, self.accumulator_bits
        );
        println!(
            "cost          {} hidden activations (TFHE bootstraps), {} AND gates of AND depth {} (Yao, GMW)",
            self.hidden_activations, self.and_gates, self.and_depth
        );
        println!(
            "float         {:.2}% of {} {} test images",
            100.0 * self.float_accuracy,
            self.test_samples,
            self.dataset
        );
        println!("quantized     {:.2}%", 100.0 * self.quantized_accuracy);
        println!(
            "agreement     {:.2}% (float and quantized predict the same class)",
            100.0 * self.agreement
        );
        match &self.privacy {
            Some(p) => println!(
                "privacy       ({:.4}, {:e})-DP by {} ({} accountant; noise multiplier {:.4}, \
                 clip norm {}, sample rate {:.4}, {} steps; target epsilon {})",
                p.epsilon,
                p.delta,
                p.mechanism,
                p.accountant,
                p.noise_multiplier,
                p.clip_norm,
                p.sample_rate,
                p.steps,
                p.target_epsilon
            ),
            None => println!("privacy       none recorded (trained without differential privacy)"),
        }
    }
}
