//! The subcommands, one module each: their flags, and how their results are printed. What
//! they compute lives in `veil_harness` (and `veil_nn`, `veil_dp`); this module holds the
//! helpers they share: loading `--model`, printing JSON, and showing progress on standard
//! error.

pub mod audit;
pub mod bench;
pub mod circuit;
pub mod demo;
pub mod dp;
pub mod eval;
pub mod fhe;
pub mod identity;
pub mod import;
pub mod infer;
pub mod link;
pub mod serve;
pub mod shamir;
pub mod train;

use std::path::Path;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use veil_harness::Progress;
use veil_nn::Model;

/// Structured logs on standard error for the long-running commands (`serve`, `link`), at
/// `info` unless `RUST_LOG` says otherwise.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Loads `--model` (a model file of either version, or an ONNX file, imported with the default
/// bit widths), or `models/digits.json` when it exists, or the bundled copy; returns the model
/// and a description of where it came from.
pub fn load_model(path: Option<&Path>) -> Result<(Model, String)> {
    veil_harness::models::load_model(path, &mut Lines::new("", false))
}

/// Prints `value` as pretty JSON on standard output.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Progress as one line on standard error per phase: `<prefix><phase> ...`.
pub struct Lines {
    prefix: &'static str,
    quiet: bool,
}

impl Lines {
    /// Lines starting with `prefix`; nothing at all when `quiet`.
    pub fn new(prefix: &'static str, quiet: bool) -> Lines {
        Lines { prefix, quiet }
    }
}

impl Progress for Lines {
    fn phase(&mut self, what: &str, _total: Option<u64>) {
        if !self.quiet {
            eprintln!("{}{what} ...", self.prefix);
        }
    }
}

/// Progress as terminal bars: a spinner for a phase of unknown length, a bar for the others.
pub struct Bars {
    hidden: bool,
    min_total: u64,
    bar: Option<ProgressBar>,
}

impl Bars {
    /// Bars, hidden altogether when `hidden`, and for phases shorter than `min_total` steps.
    pub fn new(hidden: bool, min_total: u64) -> Bars {
        Bars {
            hidden,
            min_total,
            bar: None,
        }
    }
}

impl Progress for Bars {
    fn phase(&mut self, what: &str, total: Option<u64>) {
        self.finish();
        let bar = match total {
            None => {
                let pb = ProgressBar::new_spinner();
                if !self.hidden {
                    pb.set_message(what.to_string());
                    pb.enable_steady_tick(std::time::Duration::from_millis(120));
                }
                pb
            }
            Some(n) => {
                let pb = ProgressBar::new(n);
                let template =
                    format!("{what} {{bar:30}} {{pos}}/{{len}} {{msg}}[{{elapsed}}<{{eta}}]");
                pb.set_style(
                    ProgressStyle::with_template(&template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                if n < self.min_total {
                    pb.set_draw_target(ProgressDrawTarget::hidden());
                }
                pb
            }
        };
        if self.hidden {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        self.bar = Some(bar);
    }

    fn step(&mut self, note: &str) {
        if let Some(bar) = &self.bar {
            if !note.is_empty() {
                bar.set_message(format!("{note} "));
            }
            bar.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Prints the lines a long-running command announces itself with (`veil serve`, `veil link`)
/// in one write, flushed: a script that reads the first line and closes the pipe cannot make
/// a later one fail, and a closed standard output does not stop the command.
pub fn print_banner(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        tracing::warn!("standard output is closed; running on");
    }
}
