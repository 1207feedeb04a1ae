//! `veil circuit`: statistics of a Bristol Fashion circuit, and its evaluation in the clear or
//! by two parties over loopback TCP.
//!
//! Inputs and outputs are integers whose bit `i` is the `i`-th wire of the value (least
//! significant bit first), written in hex, most significant digit first.

use std::path::Path;

use anyhow::{bail, Context, Result};
use veil_circuit::bits::{bits_from_hex, bits_to_hex};
use veil_circuit::{read_bristol, Circuit};
use veil_gc::{Evaluator, Garbler, Party, Reveal};
use veil_net::{tcp_pair, ChannelConfig};

/// Loads and validates a circuit file.
pub fn load(path: &Path) -> Result<Circuit> {
    let c = read_bristol(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(c)
}

/// Prints the statistics of a circuit, as text or JSON.
pub fn stats(path: &Path, json: bool) -> Result<()> {
    let c = load(path)?;
    let s = c.stats();
    let widths = |v: &[Vec<u32>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    if json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "and_gates": s.and_count,
            "xor_gates": s.xor_count,
            "inv_gates": s.inv_count,
            "const_gates": s.const_count,
            "and_depth": s.and_depth,
            "wires": s.num_wires,
            "inputs": widths(&c.inputs),
            "outputs": widths(&c.outputs),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("circuit     {}", path.display());
        println!("inputs      {:?} bits", widths(&c.inputs));
        println!("outputs     {:?} bits", widths(&c.outputs));
        println!(
            "gates       {} AND, {} XOR, {} INV, {} constant",
            s.and_count, s.xor_count, s.inv_count, s.const_count
        );
        println!("AND depth   {}", s.and_depth);
        println!("wires       {}", s.num_wires);
    }
    Ok(())
}

/// Which engine evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// In the clear, in this process.
    Plain,
    /// Yao garbled circuits, garbler and evaluator over loopback TCP.
    Yao,
    /// GMW with Beaver triples, two parties over loopback TCP.
    Gmw,
}

/// Evaluates a circuit on hex inputs and prints each output value in hex, one per line.
pub fn eval(
    path: &Path,
    backend: Backend,
    inputs: &[String],
    first_inputs: Option<usize>,
) -> Result<()> {
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
            let g = first_inputs.unwrap_or(usize::from(c.inputs.len() >= 2));
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
    for o in outputs {
        println!("{}", bits_to_hex(&o));
    }
    Ok(())
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
    let rt = crate::bench::two_threads()?;
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
    use veil_gmw::{GmwParty, PartyId, Reveal as GmwReveal};
    let owners: Vec<PartyId> = (0..values.len())
        .map(|v| if v < g { PartyId::P0 } else { PartyId::P1 })
        .collect();
    let rt = crate::bench::two_threads()?;
    rt.block_on(async {
        let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await?;
        let (c2, o2) = (c.clone(), owners.clone());
        let mine: Vec<Vec<bool>> = values[..g].to_vec();
        let p0 = tokio::spawn(async move {
            let mut p = GmwParty::new(PartyId::P0, &mut veil_ot::secure_rng());
            p.run(&mut a, &c2, &o2, &mine, GmwReveal::Both).await
        });
        let mut p1 = GmwParty::new(PartyId::P1, &mut veil_ot::secure_rng());
        let out = p1
            .run(&mut b, c, &owners, &values[g..], GmwReveal::Both)
            .await?;
        let out0 = p0.await??;
        anyhow::ensure!(out0 == out, "the parties disagree on the output");
        out.context("no output")
    })
}
