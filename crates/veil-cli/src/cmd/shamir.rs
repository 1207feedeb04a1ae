//! `veil shamir`: threshold custody of a file (split into Feldman-verifiable Shamir shares,
//! combine them back, naming any tampered share) and a three-or-more-process demo of BGW
//! arithmetic computing the bundled model's first layer on a shared digit with shared weights.
//! The sharing and the parties' computation are `veil_harness::shamir`'s; this module holds the
//! flags, the output and the demo's child processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use veil_harness::shamir::{
    combine_files, prepare_demo, run_party, split_file, write_private, PartyArgs, PartyReport,
};
use veil_harness::PublicKey;

/// `veil shamir ...`.
#[derive(Subcommand, Debug)]
pub enum ShamirCommand {
    /// Split a file into N shares, any T of which recover it (Feldman-verifiable: each share
    /// carries the dealing's commitments, so a tampered share is detected and named).
    Split {
        /// Shares needed to recover the file (at least 1, at most N).
        #[arg(long)]
        threshold: usize,
        /// Shares to write (at most 1000).
        #[arg(long)]
        shares: usize,
        /// Directory for the shares (default: beside FILE). Share i is written to
        /// `<FILE name>.share<i>`, readable by its owner only.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// The file to split (at most 1 MiB).
        file: PathBuf,
    },
    /// Recover a file from shares; fails, naming them, if any share is tampered with or the
    /// shares come from different dealings.
    Combine {
        /// Where to write the recovered file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Recover even if some shares fail verification, as long as enough pass (the bad
        /// ones are still named, on standard error).
        #[arg(long)]
        tolerant: bool,
        /// Share files.
        #[arg(required = true)]
        shares: Vec<PathBuf>,
    },
    /// A shared linear layer computed by N local processes (BGW, honest majority): party 0 holds
    /// a test digit, party 1 the bundled model's first layer, the others help; party 0 learns
    /// the layer's accumulators, which are checked against the plaintext computation.
    ///
    /// BGW is secure against semi-honest parties only: it runs among the configured parties,
    /// each link encrypted and mutually authenticated with pinned keys, which trust each other
    /// to follow the protocol.
    Demo {
        /// Number of processes (at least 3; tolerates (N-1)/2 colluding parties).
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Test digit (index into the test split) that party 0 holds.
        #[arg(long, default_value_t = 0)]
        digit: usize,
    },
    /// One party of `veil shamir demo` (started by the demo).
    #[command(hide = true)]
    Party {
        /// This party's index.
        #[arg(long)]
        index: usize,
        /// Every party's address, comma separated, in index order.
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<std::net::SocketAddr>,
        /// Sharing degree t.
        #[arg(long)]
        degree: usize,
        /// Session id, 32 hex digits.
        #[arg(long)]
        session: String,
        /// Test digit held by party 0.
        #[arg(long)]
        digit: usize,
        /// This party's identity file (encrypted, authenticated channels).
        #[arg(long)]
        identity: PathBuf,
        /// Every party's public key, comma separated, in index order.
        #[arg(long, value_delimiter = ',')]
        keys: Vec<PublicKey>,
    },
}

/// Runs one `veil shamir` subcommand.
pub fn run(cmd: ShamirCommand) -> Result<()> {
    match cmd {
        ShamirCommand::Split {
            threshold,
            shares,
            out_dir,
            file,
        } => {
            let done = split_file(threshold, shares, out_dir.as_deref(), &file)?;
            for path in &done.paths {
                println!("{}", path.display());
            }
            eprintln!(
                "split {} ({} bytes) into {shares} shares, any {threshold} of which recover it; \
                 dealing {}",
                file.display(),
                done.size,
                done.dealing
            );
            Ok(())
        }
        ShamirCommand::Combine {
            out,
            tolerant,
            shares,
        } => {
            let combined = combine_files(&shares, tolerant)?;
            for (i, path) in &combined.rejected {
                eprintln!("warning: share {i} ({path}) fails verification and was set aside");
            }
            match out {
                Some(path) => {
                    write_private(&path, &combined.secret)?;
                    eprintln!(
                        "recovered {} bytes into {}",
                        combined.secret.len(),
                        path.display()
                    );
                }
                None => std::io::stdout().write_all(&combined.secret)?,
            }
            Ok(())
        }
        ShamirCommand::Demo { parties, digit } => demo(parties, digit),
        ShamirCommand::Party {
            index,
            addrs,
            degree,
            session,
            digit,
            identity,
            keys,
        } => {
            let args = PartyArgs {
                index,
                addrs,
                degree,
                session,
                digit,
                identity,
                keys,
            };
            let report = run_party(args, &veil_nn::bundled_model()?)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
    }
}

/// Kills the demo's children if the demo fails part-way.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `veil shamir demo`: one child process per party, their reports side by side.
fn demo(parties: usize, digit: usize) -> Result<()> {
    let setup = prepare_demo(parties, digit)?;
    let degree = setup.degree;
    println!(
        "Veil Shamir demo: {parties} processes, degree {degree} (any {degree} colluding learn \
         nothing), BGW over encrypted, mutually authenticated loopback TCP"
    );
    println!(
        "party 0 holds test digit {digit}; party 1 holds the bundled model's first layer \
         ({} x {} weights, {} biases); the others help",
        setup.outputs, setup.inputs, setup.outputs
    );
    let addrs: Vec<String> = setup.addrs.iter().map(|a| a.to_string()).collect();
    let keys: Vec<String> = setup.keys.iter().map(|k| k.to_string()).collect();
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::with_capacity(parties));
    for (i, identity) in setup.identity_files.iter().enumerate() {
        let child = Command::new(&exe)
            .args(["shamir", "party", "--index", &i.to_string()])
            .args(["--addrs", &addrs.join(",")])
            .args(["--degree", &degree.to_string()])
            .args(["--session", &setup.session])
            .args(["--digit", &digit.to_string()])
            .arg("--identity")
            .arg(identity)
            .args(["--keys", &keys.join(",")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a party process")?;
        children.0.push(child);
    }
    let mut reports = Vec::with_capacity(parties);
    for (i, child) in std::mem::take(&mut children.0).into_iter().enumerate() {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "party {i} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let report: PartyReport = serde_json::from_str(line.trim())
            .with_context(|| format!("party {i} printed {line:?}"))?;
        reports.push(report);
    }
    let got = reports
        .first()
        .and_then(|r| r.output.clone())
        .context("party 0 learned no output")?;
    println!();
    println!(
        "{:<7} {:>12} {:>12} {:>8} {:>10}",
        "party", "bytes sent", "bytes recv", "flights", "ms"
    );
    for r in &reports {
        println!(
            "{:<7} {:>12} {:>12} {:>8} {:>10.1}",
            r.index, r.bytes_sent, r.bytes_received, r.rounds, r.millis
        );
    }
    println!();
    println!("shared result  {got:?}");
    println!("plaintext      {:?}", setup.expected);
    if got != setup.expected {
        bail!("the shared computation differs from the plaintext one");
    }
    println!("equal: the {parties} processes computed W·x + b exactly, no party saw x or W");
    Ok(())
}
