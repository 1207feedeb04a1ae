//! Bristol Fashion circuits: their statistics, and their evaluation in the clear or by two
//! parties (Yao or GMW) over loopback TCP.
//!
//! Values are integers whose bit `i` is the `i`-th wire of the value (least significant bit
//! first), written in hex, most significant digit first.

use std::path::Path;

use anyhow::{bail, Context, Result};
use veil_circuit::bits::{bits_from_hex, bits_to_hex};
use veil_circuit::{read_bristol, Circuit};
use veil_gc::{Evaluator, Garbler, Party, Reveal};
use veil_gmw::{GmwParty, PartyId, Reveal as GmwReveal, P0, P1};
use veil_net::{tcp_pair, ChannelConfig};

use crate::runtime::two_threads;

/// Loads and validates a circuit file.
pub fn load(path: &Path) -> Result<Circuit> {
    read_bristol(path).with_context(|| format!("reading {}", path.display()))
}

/// The statistics of a circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitSummary {
    /// AND gates.
    pub and_gates: usize,
    /// XOR gates.
    pub xor_gates: usize,
    /// INV gates.
    pub inv_gates: usize,
    /// Constant gates.
    pub const_gates: usize,
    /// AND depth.
    pub and_depth: u32,
    /// Wires.
    pub wires: usize,
    /// The width in bits of each input value.
    pub inputs: Vec<usize>,
    /// The width in bits of each output value.
    pub outputs: Vec<usize>,
}

/// Loads a circuit file and returns its statistics.
pub fn summary(path: &Path) -> Result<CircuitSummary> {
    let c = load(path)?;
    let s = c.stats();
    let widths = |v: &[Vec<u32>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    Ok(CircuitSummary {
        and_gates: s.and_count,
        xor_gates: s.xor_count,
        inv_gates: s.inv_count,
        const_gates: s.const_count,
        and_depth: s.and_depth,
        wires: s.num_wires as usize,
        inputs: widths(&c.inputs),
        outputs: widths(&c.outputs),
    })
}

/// Which engine evaluates a circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Backend {
    /// In the clear, in this process.
    Plain,
    /// Yao garbled circuits, garbler and evaluator over loopback TCP.
    Yao,
    /// GMW with Beaver triples, two parties over loopback TCP.
    Gmw,
}

/// Evaluates the circuit in the file `path` on one hex value per input, and returns each
/// output value in hex. With Yao or GMW both parties run in this process over a loopback TCP
/// connection: the first party (the garbler, or GMW's party 0) supplies the first
/// `first_party_inputs` values (default: 1 when the circuit has two or more input values,
/// else 0) and the second party the others.
pub fn eval(
    path: &Path,
    backend: Backend,
    inputs: &[String],
    first_party_inputs: Option<usize>,
) -> Result<Vec<String>> {
    let c = load(path)?;
    if inputs.len() != c.inputs.len() {
        bail!(
            "the circuit takes {} input values ({:?} bits), {} --input given",
            c.inputs.len(),
            c.inputs.iter().map(Vec::len).collect::<Vec<_>>(),
            inputs.len()
        );
    }
    let values = inputs
        .iter()
        .zip(&c.inputs)
        .enumerate()
        .map(|(v, (hex, wires))| {
            bits_from_hex(hex, wires.len()).with_context(|| format!("--input number {}", v + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = match backend {
        Backend::Plain => c.eval(&values)?,
        Backend::Yao | Backend::Gmw => {
            let g = first_party_inputs.unwrap_or(usize::from(c.inputs.len() >= 2));
            if g > c.inputs.len() {
                bail!(
                    "--first-party-inputs {g} exceeds the circuit's {} input values",
                    c.inputs.len()
                );
            }
            if backend == Backend::Yao {
                run_yao(&c, &values, g)?
            } else {
                run_gmw(&c, &values, g)?
            }
        }
    };
    Ok(outputs.iter().map(|o| bits_to_hex(o)).collect())
}

/// The garbler supplies input values `0..g`, the evaluator the rest; the evaluator learns the
/// outputs. Both run in this process, on two threads, over a loopback TCP connection.
fn run_yao(c: &Circuit, values: &[Vec<bool>], g: usize) -> Result<Vec<Vec<bool>>> {
    let owners: Vec<Party> = (0..values.len())
        .map(|v| {
            if v < g {
                Party::Garbler
            } else {
                Party::Evaluator
            }
        })
        .collect();
    let rt = two_threads()?;
    rt.block_on(async {
        let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await?;
        let (c2, o2) = (c.clone(), owners.clone());
        let mine: Vec<Vec<bool>> = values[..g].to_vec();
        let garbler = tokio::spawn(async move {
            let mut gb = Garbler::new(&mut veil_ot::secure_rng());
            gb.run(&mut a, &c2, &o2, &mine, Reveal::Evaluator).await
        });
        let mut ev = Evaluator::new(&mut veil_ot::secure_rng());
        let out = ev
            .run(&mut b, c, &owners, &values[g..], Reveal::Evaluator)
            .await?;
        garbler.await??;
        out.context("the evaluator received no output")
    })
}

/// Party 0 supplies input values `0..g`, party 1 the rest; both learn the outputs. Both run in
/// this process, on two threads, over a loopback TCP connection.
fn run_gmw(c: &Circuit, values: &[Vec<bool>], g: usize) -> Result<Vec<Vec<bool>>> {
    let owners: Vec<PartyId> = (0..values.len())
        .map(|v| if v < g { PartyId::P0 } else { PartyId::P1 })
        .collect();
    let rt = two_threads()?;
    rt.block_on(async {
        let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await?;
        let (c2, o2) = (c.clone(), owners.clone());
        let mine: Vec<Vec<bool>> = values[..g].to_vec();
        let p0 = tokio::spawn(async move {
            let mut p = GmwParty::<P0>::new(&mut veil_ot::secure_rng());
            p.run(&mut a, &c2, &o2, &mine, GmwReveal::Both).await
        });
        let mut p1 = GmwParty::<P1>::new(&mut veil_ot::secure_rng());
        let out = p1
            .run(&mut b, c, &owners, &values[g..], GmwReveal::Both)
            .await?;
        let out0 = p0.await??;
        anyhow::ensure!(out0 == out, "the parties disagree on the output");
        out.context("no output")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adder() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../circuits/adder64.txt")
    }

    #[test]
    fn the_adder_adds_in_the_clear_and_between_two_parties() {
        let s = summary(&adder()).unwrap();
        assert_eq!(s.inputs, vec![64, 64]);
        assert_eq!(s.outputs, vec![64]);
        let inputs = ["ff".to_string(), "1".to_string()];
        for backend in [Backend::Plain, Backend::Yao, Backend::Gmw] {
            let out = eval(&adder(), backend, &inputs, None).unwrap();
            assert_eq!(out, vec!["0000000000000100".to_string()], "{backend:?}");
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(eval(&adder(), Backend::Plain, &["1".to_string()], None).is_err());
        let two = ["zz".to_string(), "1".to_string()];
        assert!(eval(&adder(), Backend::Plain, &two, None).is_err());
        let two = ["1".to_string(), "1".to_string()];
        assert!(eval(&adder(), Backend::Yao, &two, Some(3)).is_err());
        assert!(summary(Path::new("/nonexistent/circuit.txt")).is_err());
    }
}
