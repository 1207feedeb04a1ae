//! `veil circuit`: statistics of a Bristol Fashion circuit, and its evaluation in the clear or
//! by two parties over loopback TCP (`veil_harness::circuits`).
//!
//! Inputs and outputs are integers whose bit `i` is the `i`-th wire of the value (least
//! significant bit first), written in hex, most significant digit first.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use veil_harness::circuits::{self, Backend};

/// `veil circuit ...`.
#[derive(Subcommand, Debug)]
pub enum CircuitCommand {
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
        backend: Backend,
        /// One input value in hex, in circuit order; repeat for each input value.
        #[arg(long = "input", value_name = "HEX")]
        inputs: Vec<String>,
        /// How many leading input values the first party supplies (default: 1 when the
        /// circuit has two or more input values, else 0).
        #[arg(long)]
        first_party_inputs: Option<usize>,
    },
}

/// Runs one `veil circuit` subcommand.
pub fn run(cmd: CircuitCommand) -> Result<()> {
    match cmd {
        CircuitCommand::Stats { file, json } => {
            let s = circuits::summary(&file)?;
            if json {
                let v = serde_json::json!({
                    "file": file.display().to_string(),
                    "and_gates": s.and_gates,
                    "xor_gates": s.xor_gates,
                    "inv_gates": s.inv_gates,
                    "const_gates": s.const_gates,
                    "and_depth": s.and_depth,
                    "wires": s.wires,
                    "inputs": s.inputs,
                    "outputs": s.outputs,
                });
                super::print_json(&v)?;
            } else {
                println!("circuit     {}", file.display());
                println!("inputs      {:?} bits", s.inputs);
                println!("outputs     {:?} bits", s.outputs);
                println!(
                    "gates       {} AND, {} XOR, {} INV, {} constant",
                    s.and_gates, s.xor_gates, s.inv_gates, s.const_gates
                );
                println!("AND depth   {}", s.and_depth);
                println!("wires       {}", s.wires);
            }
        }
        CircuitCommand::Eval {
            bristol,
            backend,
            inputs,
            first_party_inputs,
        } => {
            for hex in circuits::eval(&bristol, backend, &inputs, first_party_inputs)? {
                println!("{hex}");
            }
        }
    }
    Ok(())
}
