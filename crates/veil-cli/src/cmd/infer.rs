//! `veil infer`: classifies images privately with a `veil serve` server, by
//! `veil_harness::client::infer`, and prints the predictions, accuracy, latency and traffic.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use veil_harness::client::{
    infer, pinned_security, ClientOptions, ClientSecurity, HeKeys, InferReport,
};
use veil_harness::data::{from_set, parse_range, read_input, DatasetName, RawImage};
use veil_harness::{Protocol, PublicKey};

use super::{load_model, print_json};

/// `veil infer` flags.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// Protocol: he, yao, gmw, mixed, or clear (INSECURE: sends the input in the clear, for
    /// measurements against a server that offers it).
    #[arg(long)]
    protocol: Protocol,
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
    dataset: DatasetName,
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
    server_key: Option<PublicKey>,
    /// This client's identity file, for servers with an allow-list (default: a fresh key).
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Connect without encryption or authentication, to a `--insecure-plaintext` server.
    #[arg(long, conflicts_with_all = ["server_key", "identity"])]
    insecure_plaintext: bool,
    /// HE: keep this client's keys in this file (made on first use, readable by its owner
    /// only, about 30 MB; it holds the secret key). A server that stored the evaluation key for
    /// this client's identity (--identity) needs no second upload.
    #[arg(long, value_name = "FILE")]
    he_keys: Option<PathBuf>,
}

/// Runs `veil infer`.
pub fn run(a: InferArgs) -> Result<()> {
    let security = if a.insecure_plaintext {
        ClientSecurity::InsecurePlaintext
    } else {
        let Some(server_key) = a.server_key else {
            bail!(
                "--server-key is required: pin the public key that `veil serve` prints (or pass \
                 --insecure-plaintext to a plaintext server)"
            );
        };
        pinned_security(server_key, a.identity.as_deref())?
    };
    let mut options = ClientOptions::with_security(a.protocol, security);
    options.want_logits = a.logits;
    if let Some(path) = &a.he_keys {
        if a.protocol != Protocol::He {
            bail!("--he-keys is for --protocol he");
        }
        options = options.with_he_keys(std::sync::Arc::new(he_keys(path)?));
    }
    let dataset = if a.digits_test.is_some() {
        DatasetName::Digits
    } else {
        a.dataset
    };
    let reference = match &a.reference {
        Some(path) => Some(load_model(Some(path))?.0),
        None => None,
    };
    let images = select_images(
        a.input.as_deref(),
        a.test_rows.as_deref().or(a.digits_test.as_deref()),
        dataset,
    )?;
    let report = infer(
        &a.connect,
        options,
        &images,
        a.batch,
        reference.as_ref().map(|m| &m.quantized),
    )?;
    if a.json {
        print_json(&report)
    } else {
        print_text(&report, &a.connect, images.len());
        Ok(())
    }
}

/// The keys of `--he-keys`: read from the file, or made and written there.
fn he_keys(path: &Path) -> Result<HeKeys> {
    if path.exists() {
        return Ok(HeKeys::load(path)?);
    }
    let keys = HeKeys::generate()?;
    keys.save(path)?;
    Ok(keys)
}

/// The images: `--input` (a CSV file, a PNG or a PGM image) or rows of a test split.
fn select_images(
    input: Option<&Path>,
    rows: Option<&str>,
    dataset: DatasetName,
) -> Result<Vec<RawImage>> {
    Ok(match (input, rows) {
        (Some(path), None) => read_input(path)?,
        (None, Some(r)) => {
            let test = dataset.test_set()?;
            let range = parse_range(r, test.len())?;
            from_set(&test, range)
        }
        _ => bail!("give exactly one of --input FILE and --test-rows RANGE (or --digits-test)"),
    })
}

/// Prints a report as text.
fn print_text(report: &InferReport, connect: &str, images: usize) {
    println!(
        "protocol {} via {connect}: {images} images",
        report.protocol
    );
    for (i, p) in report.predictions.iter().enumerate() {
        let label = report
            .labels
            .as_ref()
            .and_then(|l| l.get(i))
            .map(|l| format!("  label {l}"))
            .unwrap_or_default();
        let lg = report
            .logits
            .as_ref()
            .and_then(|l| l.get(i))
            .map(|l| format!("  logits {l:?}"))
            .unwrap_or_default();
        println!("  image {i:>3}: class {p}{label}{lg}");
    }
    if let Some(a) = report.accuracy {
        println!("accuracy    {:.2}%", 100.0 * a);
    }
    if let (Some(a), Some(d)) = (report.agreement, &report.disagreements) {
        println!(
            "agreement   {:.2}% with the local integer reference (differs at {d:?})",
            100.0 * a
        );
    }
    println!(
        "setup       {:.1} ms, {} bytes",
        report.setup_ms, report.setup_bytes
    );
    println!(
        "prepared    {:.1} ms, {} bytes (each query's offline phase, before its input is used)",
        report.prepare_ms, report.prepare_bytes
    );
    println!(
        "online      {:.1} ms in all, {:.2} ms per image",
        report.online_ms, report.online_ms_per_input
    );
    println!(
        "traffic     {} bytes sent, {} received ({:.0} bytes per image online)",
        report.bytes_sent, report.bytes_received, report.bytes_per_input
    );
    println!(
        "rounds      {} flights sent ({:.1} per query online)",
        report.rounds, report.rounds_per_query
    );
}
