//! `veil demo`: a `veil serve` child process, a client per protocol
//! (`veil_harness::client::compare_protocols`), and their results side by side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use veil_harness::client::compare_protocols;
use veil_harness::data::{from_set, DatasetName};
use veil_harness::PublicKey;

use super::{load_model, Lines};

/// `veil demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Model file (default: `models/digits.json` or the bundled copy).
    #[arg(long)]
    model: Option<PathBuf>,
    /// How many test digits.
    #[arg(long, default_value_t = 4)]
    digits: usize,
}

/// A `veil serve` child process on a free loopback port, killed on drop.
struct ChildServer {
    child: std::process::Child,
    /// Its address.
    addr: String,
    /// Its public key, which clients pin.
    key: PublicKey,
}

impl ChildServer {
    /// Starts `veil serve` (this executable) with the given model file, or the bundled model.
    fn start(model: Option<&Path>) -> Result<ChildServer> {
        let exe = std::env::current_exe()?;
        let mut cmd = std::process::Command::new(exe);
        // The demo's clients are its own: trusted with GMW.
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            "he,yao,gmw",
            "--trust-clients",
        ]);
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting `veil serve`")?;
        match read_banner(&mut child) {
            Ok((addr, key)) => Ok(ChildServer { child, addr, key }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }
}

/// Reads the first two lines `veil serve` prints: its address and its public key.
fn read_banner(child: &mut std::process::Child) -> Result<(String, PublicKey)> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string)
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?;
    line.clear();
    reader.read_line(&mut line)?;
    let key = line
        .trim()
        .strip_prefix("server key ")
        .and_then(|k| k.parse::<PublicKey>().ok())
        .with_context(|| format!("unexpected second line from the server: {line:?}"))?;
    Ok((addr, key))
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `veil demo`.
pub fn run(a: DemoArgs) -> Result<()> {
    let (model, _) = load_model(a.model.as_deref())?;
    let test = DatasetName::choose(None, Some(&model)).test_set()?;
    anyhow::ensure!(!test.is_empty(), "the test split is empty");
    let images = from_set(&test, 0..a.digits.clamp(1, test.len()));
    println!(
        "Veil demo: one server process, one client per protocol, {} test digits",
        images.len()
    );
    let server = ChildServer::start(a.model.as_deref())?;
    println!(
        "server: `veil serve` in child process, listening on {}, key {} (pinned by each \
         client; every session is encrypted)",
        server.addr, server.key
    );
    let q = &model.quantized;
    let plain: Vec<usize> = images.iter().map(|s| q.predict(&s.pixels)).collect();
    let rows = compare_protocols(
        &server.addr,
        server.key,
        &images,
        q,
        &mut Lines::new("", false),
    )?;
    println!();
    println!(
        "labels      {:?}",
        images.iter().map(|s| s.label).collect::<Vec<_>>()
    );
    println!("plaintext   {plain:?}");
    for r in &rows {
        println!("{:<11} {:?}", r.protocol, r.predictions);
    }
    println!();
    println!(
        "{:<9} {:>10} {:>12} {:>14} {:>14} {:>14} {:>10}",
        "protocol",
        "agreement",
        "setup ms",
        "prep ms/img",
        "online ms/img",
        "bytes/img",
        "flights/q"
    );
    let n = images.len().max(1) as f64;
    for r in &rows {
        println!(
            "{:<9} {:>9.0}% {:>12.1} {:>14.2} {:>14.2} {:>14.0} {:>10.1}",
            r.protocol,
            100.0 * r.agreement.unwrap_or(0.0),
            r.setup_ms,
            r.prepare_ms / n,
            r.online_ms_per_input,
            r.bytes_per_input,
            r.rounds_per_query
        );
    }
    println!("\n(setup: HE key generation and upload; Yao base OTs; GMW OT setup and triples for 64 digits. prep: each query's offline phase, run before its input is used (Yao garbles ahead). GMW classifies all digits in one batch.)");
    Ok(())
}
