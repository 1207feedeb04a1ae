//! Reading and writing circuits in the Bristol Fashion format.
//!
//! The format is the one of the "Bristol Fashion" MPC circuits (Archer, Bogdanov, Lindell,
//! Nordholt, Smart and others, <https://nigelsmart.github.io/MPC-Circuits/>):
//!
//! ```text
//! ngates nwires
//! niv n_1 ... n_niv          (input values and their widths)
//! nov m_1 ... m_nov          (output values and their widths)
//! 2 1 a b out XOR            (also AND)
//! 1 1 a out INV
//! 1 1 a out EQW              (copy)
//! 1 1 c out EQ               (constant c, 0 or 1)
//! 2k k a_1..a_k b_1..b_k out_1..out_k MAND
//! ```
//!
//! Blank lines may appear anywhere. Input value 0 occupies wires `0..n_1`, value 1 the next
//! `n_2` wires, and so on; the outputs are the last `m_1 + ... + m_nov` wires, value 0 first.
//! Within a value the first wire is bit 0, the least significant: the crate's convention.
//!
//! The reader renumbers wires densely in the order they are written, resolves `EQW` copies
//! to the copied wire and splits `MAND` gates into AND gates. It never panics, names the line
//! of every error ([`CircuitError::Parse`]) and bounds its allocations by the size of the
//! file, so hostile headers cannot make it allocate gigabytes. The writer emits a file that
//! any Bristol Fashion reader accepts: inputs first, outputs last, with `EQW` copies for
//! output wires that are also inputs, are read by gates or appear more than once.

use std::fmt::Write as _;
use std::path::Path;

use crate::circuit::{Circuit, Gate, WireId};
use crate::error::CircuitError;

/// Largest number of input plus output bits the reader accepts (the circuit's input and output
/// lists are allocated up front).
pub const MAX_IO_BITS: u64 = 1 << 24;

const UNWRITTEN: WireId = WireId::MAX;

fn parse_err(line: usize, reason: impl Into<String>) -> CircuitError {
    CircuitError::Parse {
        line,
        reason: reason.into(),
    }
}

fn number(line: usize, token: &str) -> Result<u64, CircuitError> {
    token
        .parse::<u64>()
        .map_err(|_| parse_err(line, format!("expected a number, found `{token}`")))
}

/// Parses a header line made of a count and that many widths; returns the widths.
fn widths(line: usize, text: &str, what: &str) -> Result<Vec<u64>, CircuitError> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let count = number(line, tokens[0])?;
    if count != (tokens.len() - 1) as u64 {
        return Err(parse_err(
            line,
            format!(
                "declares {count} {what} values but lists {} widths",
                tokens.len() - 1
            ),
        ));
    }
    tokens[1..].iter().map(|t| number(line, t)).collect()
}

fn sum(line: usize, widths: &[u64], what: &str) -> Result<u64, CircuitError> {
    widths
        .iter()
        .try_fold(0u64, |acc, &w| acc.checked_add(w))
        .filter(|&total| total <= MAX_IO_BITS)
        .ok_or_else(|| {
            parse_err(
                line,
                format!("{what} widths exceed the supported {MAX_IO_BITS} bits"),
            )
        })
}

/// Wire renumbering state of the reader.
struct Wires {
    /// Declared wire count.
    declared: u64,
    /// For each declared wire, the circuit wire it maps to, or `UNWRITTEN`.
    map: Vec<WireId>,
    /// Next circuit wire.
    next: WireId,
}

impl Wires {
    fn read(&self, line: usize, token: &str) -> Result<WireId, CircuitError> {
        let w = number(line, token)?;
        match self.map.get(w as usize) {
            _ if w >= self.declared => Err(parse_err(
                line,
                format!(
                    "gate reads wire {w} beyond the {} wires declared",
                    self.declared
                ),
            )),
            Some(&id) if id != UNWRITTEN => Ok(id),
            _ => Err(parse_err(
                line,
                format!("gate reads wire {w} before it is written"),
            )),
        }
    }

    /// Checks that `token` names a declared, unwritten wire; returns its index.
    fn target(&self, line: usize, token: &str) -> Result<usize, CircuitError> {
        let w = number(line, token)?;
        match self.map.get(w as usize) {
            _ if w >= self.declared => Err(parse_err(
                line,
                format!(
                    "gate writes wire {w} beyond the {} wires declared",
                    self.declared
                ),
            )),
            Some(&UNWRITTEN) => Ok(w as usize),
            _ => Err(parse_err(
                line,
                format!("gate writes wire {w}, which is already written"),
            )),
        }
    }

    /// Maps declared wire `w` (checked by [`Wires::target`]) to a fresh circuit wire.
    fn fresh(&mut self, w: usize) -> WireId {
        let id = self.next;
        self.map[w] = id;
        self.next += 1;
        id
    }
}

/// Parses a Bristol Fashion circuit; see the module documentation for the format.
pub fn parse_bristol(text: &str) -> Result<Circuit, CircuitError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let end = text.lines().count() + 1;
    let mut header = |what: &str| {
        lines
            .next()
            .ok_or_else(|| parse_err(end, format!("the file ends before the {what}")))
    };
    let (l1, t1) = header("header line `ngates nwires`")?;
    let (l2, t2) = header("input widths")?;
    let (l3, t3) = header("output widths")?;
    let gate_lines: Vec<(usize, &str)> = lines.collect();

    let counts: Vec<&str> = t1.split_whitespace().collect();
    if counts.len() != 2 {
        return Err(parse_err(
            l1,
            format!(
                "the header needs 2 numbers (`ngates nwires`), found {} fields",
                counts.len()
            ),
        ));
    }
    let ngates = number(l1, counts[0])?;
    let nwires = number(l1, counts[1])?;
    let in_widths = widths(l2, t2, "input")?;
    let out_widths = widths(l3, t3, "output")?;
    let in_bits = sum(l2, &in_widths, "input")?;
    let out_bits = sum(l3, &out_widths, "output")?;
    if in_bits + out_bits > MAX_IO_BITS {
        return Err(parse_err(
            l3,
            format!("input and output widths exceed the supported {MAX_IO_BITS} bits"),
        ));
    }
    if in_bits > nwires || out_bits > nwires {
        return Err(parse_err(
            l1,
            format!(
                "the header declares {nwires} wires, fewer than the {} input or output bits",
                in_bits.max(out_bits)
            ),
        ));
    }
    // Every wire is an input or is written by a gate, and a gate line names each wire it
    // writes with at least two characters: this bounds the wire map by the file size.
    if nwires > in_bits + text.len() as u64 || nwires >= u64::from(WireId::MAX) {
        return Err(parse_err(
            l1,
            format!(
                "the header declares {nwires} wires, more than a file of {} bytes can write",
                text.len()
            ),
        ));
    }
    if ngates > gate_lines.len() as u64 {
        return Err(parse_err(
            end,
            format!(
                "the file ends after {} gate lines; the header declares {ngates} gates",
                gate_lines.len()
            ),
        ));
    }
    if let Some(&(line, _)) = gate_lines.get(ngates as usize) {
        return Err(parse_err(
            line,
            format!("gate line beyond the {ngates} gates declared in the header"),
        ));
    }

    let mut wires = Wires {
        declared: nwires,
        map: vec![UNWRITTEN; nwires as usize],
        next: 0,
    };
    let mut inputs = Vec::with_capacity(in_widths.len());
    for &width in &in_widths {
        let value: Vec<WireId> = (0..width)
            .map(|_| {
                let w = wires.next as usize;
                wires.fresh(w)
            })
            .collect();
        inputs.push(value);
    }
    let mut gates = Vec::with_capacity(gate_lines.len());
    for &(line, text) in &gate_lines {
        parse_gate(line, text, &mut wires, &mut gates)?;
    }

    let mut outputs = Vec::with_capacity(out_widths.len());
    let mut next = nwires - out_bits;
    for (v, &width) in out_widths.iter().enumerate() {
        let mut value = Vec::with_capacity(width as usize);
        for bit in 0..width {
            let id = wires.map[next as usize];
            if id == UNWRITTEN {
                return Err(parse_err(
                    l3,
                    format!("output wire {next} (value {v}, bit {bit}) is never written"),
                ));
            }
            value.push(id);
            next += 1;
        }
        outputs.push(value);
    }
    Ok(Circuit {
        num_wires: wires.next,
        inputs,
        outputs,
        gates,
    })
}

fn parse_gate(
    line: usize,
    text: &str,
    wires: &mut Wires,
    gates: &mut Vec<Gate>,
) -> Result<(), CircuitError> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() < 4 {
        return Err(parse_err(
            line,
            format!(
                "a gate line needs at least 4 fields (`nin nout wires... NAME`), found {}",
                tokens.len()
            ),
        ));
    }
    let nin = number(line, tokens[0])?;
    let nout = number(line, tokens[1])?;
    let name = tokens[tokens.len() - 1];
    let wire_fields = (tokens.len() - 3) as u64;
    if nin.checked_add(nout) != Some(wire_fields) {
        return Err(parse_err(
            line,
            format!(
                "the gate declares {nin} inputs and {nout} outputs but lists {wire_fields} wires"
            ),
        ));
    }
    let args = &tokens[2..tokens.len() - 1];
    let arity = |want_in: u64, want_out: u64| {
        if (nin, nout) == (want_in, want_out) {
            Ok(())
        } else {
            Err(parse_err(
                line,
                format!(
                    "{name} takes {want_in} inputs and {want_out} output, not {nin} and {nout}"
                ),
            ))
        }
    };
    match name {
        "XOR" | "AND" => {
            arity(2, 1)?;
            let a = wires.read(line, args[0])?;
            let b = wires.read(line, args[1])?;
            let t = wires.target(line, args[2])?;
            let out = wires.fresh(t);
            gates.push(if name == "XOR" {
                Gate::Xor { a, b, out }
            } else {
                Gate::And { a, b, out }
            });
        }
        "INV" => {
            arity(1, 1)?;
            let a = wires.read(line, args[0])?;
            let t = wires.target(line, args[1])?;
            let out = wires.fresh(t);
            gates.push(Gate::Inv { a, out });
        }
        "EQW" => {
            arity(1, 1)?;
            let a = wires.read(line, args[0])?;
            let t = wires.target(line, args[1])?;
            wires.map[t] = a;
        }
        "EQ" => {
            arity(1, 1)?;
            let value = match args[0] {
                "0" => false,
                "1" => true,
                c => {
                    return Err(parse_err(
                        line,
                        format!("EQ assigns a constant 0 or 1, not `{c}`"),
                    ))
                }
            };
            let t = wires.target(line, args[1])?;
            let out = wires.fresh(t);
            gates.push(Gate::Const { value, out });
        }
        "MAND" => {
            if nout == 0 || nin != 2 * nout {
                return Err(parse_err(
                    line,
                    format!("MAND takes 2k inputs and k outputs (k > 0), not {nin} and {nout}"),
                ));
            }
            let k = nout as usize;
            let ins = args[..2 * k]
                .iter()
                .map(|t| wires.read(line, t))
                .collect::<Result<Vec<_>, _>>()?;
            for (i, t) in args[2 * k..].iter().enumerate() {
                let t = wires.target(line, t)?;
                let out = wires.fresh(t);
                gates.push(Gate::And {
                    a: ins[i],
                    b: ins[k + i],
                    out,
                });
            }
        }
        _ => {
            return Err(parse_err(
                line,
                format!("unknown gate `{name}` (expected XOR, AND, INV, EQ, EQW or MAND)"),
            ))
        }
    }
    Ok(())
}

/// Reads and parses a Bristol Fashion file.
pub fn read_bristol(path: impl AsRef<Path>) -> Result<Circuit, CircuitError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| CircuitError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_bristol(&text)
}

/// Writes a circuit in the Bristol Fashion format.
///
/// Wires are renumbered: the input values first, in order, then the gates' intermediate
/// wires, then the outputs, value 0 first. A gate whose output wire is used exactly once, as
/// an output, writes its output slot directly; every other output (an input wire, a wire read
/// by gates, a wire that appears in several outputs) is copied into its slot with `EQW` at the
/// end. Constants are written as `EQ` gates. The circuit is validated first.
pub fn write_bristol(circuit: &Circuit) -> Result<String, CircuitError> {
    circuit.validate()?;
    let n = circuit.num_wires as usize;
    let mut is_input = vec![false; n];
    for &w in circuit.inputs.iter().flatten() {
        is_input[w as usize] = true;
    }
    let mut read_by_gate = vec![false; n];
    for gate in &circuit.gates {
        for w in gate.inputs() {
            read_by_gate[w as usize] = true;
        }
    }
    let mut output_uses = vec![0u32; n];
    for &w in circuit.outputs.iter().flatten() {
        output_uses[w as usize] = output_uses[w as usize].saturating_add(1);
    }
    let direct = |w: WireId| {
        let w = w as usize;
        !is_input[w] && !read_by_gate[w] && output_uses[w] == 1
    };

    let in_bits = circuit.input_bits() as u64;
    let out_bits = circuit.output_bits() as u64;
    let direct_gates = circuit.gates.iter().filter(|g| direct(g.output())).count() as u64;
    let base = in_bits + circuit.gates.len() as u64 - direct_gates;
    let nwires = base + out_bits;

    let mut id = vec![u64::MAX; n];
    for (next, &w) in circuit.inputs.iter().flatten().enumerate() {
        id[w as usize] = next as u64;
    }
    let mut copies = Vec::new();
    for (k, &w) in circuit.outputs.iter().flatten().enumerate() {
        let slot = base + k as u64;
        if direct(w) {
            id[w as usize] = slot;
        } else {
            copies.push((w, slot));
        }
    }

    let mut out = String::new();
    let widths = |values: &[Vec<WireId>]| {
        let mut s = values.len().to_string();
        for v in values {
            let _ = write!(s, " {}", v.len());
        }
        s
    };
    let _ = writeln!(out, "{} {}", circuit.gates.len() + copies.len(), nwires);
    let _ = writeln!(out, "{}", widths(&circuit.inputs));
    let _ = writeln!(out, "{}", widths(&circuit.outputs));
    out.push('\n');
    let mut next = in_bits;
    for gate in &circuit.gates {
        let o = gate.output() as usize;
        if id[o] == u64::MAX {
            id[o] = next;
            next += 1;
        }
        let _ = match *gate {
            Gate::Xor { a, b, .. } => {
                writeln!(
                    out,
                    "2 1 {} {} {} XOR",
                    id[a as usize], id[b as usize], id[o]
                )
            }
            Gate::And { a, b, .. } => {
                writeln!(
                    out,
                    "2 1 {} {} {} AND",
                    id[a as usize], id[b as usize], id[o]
                )
            }
            Gate::Inv { a, .. } => writeln!(out, "1 1 {} {} INV", id[a as usize], id[o]),
            Gate::Const { value, .. } => writeln!(out, "1 1 {} {} EQ", u8::from(value), id[o]),
        };
    }
    for (w, slot) in copies {
        let _ = writeln!(out, "1 1 {} {} EQW", id[w as usize], slot);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(text: &str) -> (usize, String) {
        match parse_bristol(text) {
            Err(CircuitError::Parse { line, reason }) => (line, reason),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    const AND2: &str = "2 4\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n1 1 2 3 INV\n";

    #[test]
    fn parses_a_small_circuit() {
        let c = parse_bristol(AND2).unwrap();
        assert_eq!(c.num_wires, 4);
        for a in 0..2 {
            for b in 0..2 {
                assert_eq!(c.eval_words(&[a, b]).unwrap(), vec![1 - (a & b)]);
            }
        }
    }

    #[test]
    fn special_gates() {
        // EQW copies, EQ constants and MAND; outputs: [copy of input 0, const 1], [a0&b0, a1&b1].
        let text = "4 11\n2 2 2\n2 2 2\n\
                    4 2 0 1 2 3 4 5 MAND\n1 1 0 6 EQW\n1 1 1 8 EQ\n\
                    1 1 4 9 EQW\n\n1 1 5 10 EQW\n1 1 6 7 EQW\n";
        // Wires need not be written in increasing order.
        assert!(parse_bristol(text).is_err(), "gate count is 6, not 4");
        let text = text.replacen("4 11", "6 11", 1);
        let c = parse_bristol(&text).unwrap();
        for a in 0..4u128 {
            for b in 0..4u128 {
                assert_eq!(c.eval_words(&[a, b]).unwrap(), vec![(a & 1) | 2, a & b]);
            }
        }
        let again = parse_bristol(&write_bristol(&c).unwrap()).unwrap();
        assert_eq!(again.eval_words(&[3, 1]).unwrap(), vec![3, 1]);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(err_line("").0, 1);
        assert_eq!(err_line("1 2\n").0, 2);
        assert_eq!(err_line("x 4\n2 1 1\n1 1\n").0, 1);
        assert_eq!(err_line("1 2 3\n2 1 1\n1 1\n").0, 1);
        assert_eq!(err_line("1 4\n2 1\n1 1\n2 1 0 1 2 AND\n").0, 2);
        let (line, reason) = err_line(&AND2.replace("2 1 0 1 2 AND", "2 1 0 1 99 AND"));
        assert_eq!(line, 5);
        assert_eq!(reason, "gate writes wire 99 beyond the 4 wires declared");
        let (line, reason) = err_line(&AND2.replace("2 1 0 1 2 AND", "2 1 0 77 2 AND"));
        assert_eq!(
            (line, reason.as_str()),
            (5, "gate reads wire 77 beyond the 4 wires declared")
        );
        assert_eq!(
            err_line(&AND2.replace("2 1 0 1 2 AND", "3 1 0 1 2 AND")).0,
            5
        );
        assert_eq!(
            err_line(&AND2.replace("2 1 0 1 2 AND", "2 1 0 1 2 NAND")).1,
            "unknown gate `NAND` (expected XOR, AND, INV, EQ, EQW or MAND)"
        );
        assert_eq!(err_line(&AND2.replace("1 1 2 3 INV", "1 1 2 0 INV")).0, 6);
        assert_eq!(err_line(&AND2.replace("1 1 2 3 INV", "1 1 3 3 INV")).0, 6);
        assert_eq!(err_line(&AND2.replace("1 1 2 3 INV", "1 1 2 3 EQ")).0, 6);
    }
}
