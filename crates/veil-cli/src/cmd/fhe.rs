//! `veil fhe eval`: encrypted inference with TFHE, the client and the server in one process,
//! measured by `veil_harness::fhe::eval` and printed as a table or as JSON.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use veil_harness::fhe::{self, FheReport};

use super::{load_model, print_json, Bars};

/// `veil fhe ...`.
#[derive(Subcommand, Debug)]
pub enum FheCommand {
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
        /// What the server answers: the class alone, computed under encryption (an encrypted
        /// argmax, the default, as a server that reveals classes only answers), or the logits
        /// as bootstrapped digits.
        #[arg(long, value_enum, default_value_t = AnswerArg::Class)]
        answer: AnswerArg,
        /// Print one JSON object (`accuracy`, `agreement`, `server_ms_median`,
        /// `pbs_per_sample`, `server_key_bytes`, ...) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// What `veil fhe eval` asks the server to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerArg {
    /// The class alone (encrypted argmax).
    Class,
    /// The logits.
    Logits,
}

/// Runs one `veil fhe` subcommand.
pub fn run(cmd: FheCommand) -> Result<()> {
    let FheCommand::Eval {
        model,
        samples,
        answer,
        json,
    } = cmd;
    let (model, _) = load_model(model.as_deref())?;
    let answer = match answer {
        AnswerArg::Class => fhe::Answer::Class,
        AnswerArg::Logits => fhe::Answer::Logits,
    };
    let report = fhe::eval(&model, samples, answer, &mut Bars::new(json, 0))?;
    if json {
        print_json(&report)
    } else {
        print_report(&report);
        Ok(())
    }
}

/// Prints the report as a table.
fn print_report(r: &FheReport) {
    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "encrypted inference, TFHE ({} test images, answered with the {})",
        r.samples, r.answer
    );
    println!(
        "  accuracy                 {:>9.2}%  (plaintext integer model {:.2}%)",
        100.0 * r.accuracy,
        100.0 * r.plaintext_accuracy
    );
    println!("  agreement with plaintext {:>9.2}%", 100.0 * r.agreement);
    println!(
        "  server per sample        {:>9.1} ms median, {:.1} ms p95",
        r.server_ms_median, r.server_ms_p95
    );
    println!(
        "  bare keyswitch+bootstrap {:>9.1} ms median",
        r.bare_pbs_ms_median
    );
    println!("  bootstraps per sample    {:>9}", r.pbs_per_sample);
    println!(
        "  bootstrap failures       {:>9}  ({:.4}% of bootstraps)",
        r.pbs_failures,
        100.0 * r.pbs_failure_rate
    );
    let pct = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{:.3}%", 100.0 * r))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "    per stage              {:>9}",
        pct(&r.pbs_failure_rate_per_stage)
    );
    println!(
        "  activations off (stage)  {:>9}  (any cause, against the plaintext)",
        pct(&r.activation_mismatch_rate_per_stage)
    );
    if r.answer == "class" {
        println!(
            "  encrypted argmax         {:>9}  bootstraps ({} levels, radix {})",
            r.answer_pbs, r.argmax_levels, r.argmax_radix
        );
    } else {
        println!(
            "  bootstrapped digits      {:>9}  bootstraps ({}-bit digits)",
            r.answer_pbs, r.digit_bits
        );
        println!(
            "  logits off the plaintext {:>9.2}%  (largest error {}; hidden bootstraps' failures)",
            100.0 * r.logit_mismatch_rate,
            r.logit_max_abs_error
        );
    }
    println!(
        "  answer failures          {:>9}  ({:.2}% of answers; plan's bound {:.1e} per answer)",
        r.answer_failures,
        100.0 * r.answer_failure_rate,
        r.answer_failure_bound
    );
    println!(
        "  client encrypt / decrypt {:>9.1} ms / {:.2} ms",
        r.encrypt_ms_median, r.decrypt_ms_median
    );
    println!("  key generation           {:>9.0} ms", r.keygen_ms);
    println!(
        "  evaluation key           {:>9.1} MiB ({:.1} MiB compressed)",
        mb(r.server_key_bytes),
        mb(r.server_key_compressed_bytes)
    );
    println!(
        "  query / answer           {:>9.2} MiB / {:.3} MiB",
        mb(r.query_bytes),
        mb(r.answer_bytes)
    );
}
