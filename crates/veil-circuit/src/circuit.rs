//! The circuit IR: wires, gates, validation, plaintext evaluation, statistics and AND layers.
//!
//! The gate set is the one of the Bristol Fashion format (XOR, AND, INV and constants; copies
//! are resolved when a file is read) and of the backends: free-XOR garbling with half gates
//! (Zahur, Rosulek and Evans, Eurocrypt 2015) and two-party GMW (Goldreich, Micali and
//! Wigderson, STOC 1987), where only AND gates cost anything. A circuit is a flat,
//! topologically ordered gate list over numbered wires, so that every backend evaluates it
//! with one pass over an array indexed by [`WireId`].
//!
//! The AND depth follows the usual multiplicative-depth definition: an AND gate lies one layer
//! above the deeper of its inputs, every other gate at the depth of its deepest input. GMW
//! evaluates the gates one [`Layer`] at a time, one communication round per layer.

use std::fmt;
use std::ops::ControlFlow;

use crate::backend::BoolBackend;
use crate::bits::{bits_from_u128, bits_to_u128, mask};
use crate::error::{CircuitError, Site};
use crate::plain::Plain;
use crate::walk::{walk, GateVisitor};

/// Index of a wire, below [`Circuit::num_wires`].
pub type WireId = u32;

/// One gate; it writes wire `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gate {
    /// `out = a XOR b`.
    Xor {
        /// First input.
        a: WireId,
        /// Second input.
        b: WireId,
        /// Output.
        out: WireId,
    },
    /// `out = a AND b`.
    And {
        /// First input.
        a: WireId,
        /// Second input.
        b: WireId,
        /// Output.
        out: WireId,
    },
    /// `out = NOT a`.
    Inv {
        /// Input.
        a: WireId,
        /// Output.
        out: WireId,
    },
    /// `out = value`.
    Const {
        /// The constant.
        value: bool,
        /// Output.
        out: WireId,
    },
}

impl Gate {
    /// The wire the gate writes.
    pub fn output(&self) -> WireId {
        match *self {
            Gate::Xor { out, .. } | Gate::And { out, .. } => out,
            Gate::Inv { out, .. } | Gate::Const { out, .. } => out,
        }
    }

    /// The wires the gate reads (two, one or none).
    pub fn inputs(&self) -> impl Iterator<Item = WireId> {
        let pair = match *self {
            Gate::Xor { a, b, .. } | Gate::And { a, b, .. } => [Some(a), Some(b)],
            Gate::Inv { a, .. } => [Some(a), None],
            Gate::Const { .. } => [None, None],
        };
        pair.into_iter().flatten()
    }

    /// Whether this is an AND gate, the only gate with a cost.
    pub fn is_and(&self) -> bool {
        matches!(self, Gate::And { .. })
    }
}

/// A boolean circuit.
///
/// Input and output values follow the crate's convention: bit `i` (least significant first) of
/// value `v` is wire `inputs[v][i]` (or `outputs[v][i]`). The input wires are written by the
/// parties, every other wire by exactly one gate, and `gates` is topologically ordered: a gate
/// reads only input wires and wires of earlier gates. An output wire may also be an input wire
/// or appear in several outputs. [`Circuit::validate`] checks all of this.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Circuit {
    /// Number of wires; every wire index is below it. Some wires may be unused.
    pub num_wires: u32,
    /// The wires of each input value, least significant bit first.
    pub inputs: Vec<Vec<WireId>>,
    /// The wires of each output value, least significant bit first.
    pub outputs: Vec<Vec<WireId>>,
    /// The gates, in topological order.
    pub gates: Vec<Gate>,
}

/// Gate counts and depth of a circuit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CircuitStats {
    /// AND gates.
    pub and_count: usize,
    /// XOR gates.
    pub xor_count: usize,
    /// INV gates.
    pub inv_count: usize,
    /// Constant gates.
    pub const_count: usize,
    /// Largest number of AND gates on a path from an input to an output.
    pub and_depth: u32,
    /// Wires ([`Circuit::num_wires`]).
    pub num_wires: u32,
    /// Input bits, over all input values.
    pub input_bits: usize,
    /// Output bits, over all output values.
    pub output_bits: usize,
}

impl CircuitStats {
    /// All gates.
    pub fn gate_count(&self) -> usize {
        self.and_count + self.xor_count + self.inv_count + self.const_count
    }
}

impl fmt::Display for CircuitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} AND, {} XOR, {} INV, {} const, AND depth {}, {} wires, {} input bits, {} output bits",
            self.and_count,
            self.xor_count,
            self.inv_count,
            self.const_count,
            self.and_depth,
            self.num_wires,
            self.input_bits,
            self.output_bits
        )
    }
}

/// The gates of one AND layer, as indices into [`Circuit::gates`].
///
/// Layer `d` holds the AND gates of AND depth `d`, which read only gates of earlier layers, and
/// the other gates of depth `d`, which read earlier layers and this layer's AND gates. A GMW
/// evaluator runs, for each layer in order, one round for all of `and_gates` at once, then
/// `free_gates` locally, in the order given (which is topological).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// AND gates of this layer (none in layer 0).
    pub and_gates: Vec<usize>,
    /// XOR, INV and constant gates of this layer, in circuit order.
    pub free_gates: Vec<usize>,
}

/// A wire's value during a run: `None` until the input or gate that writes it.
fn read<T>(
    val: &[Option<T>],
    wire: WireId,
    site: Site,
    num_wires: u32,
) -> Result<&T, CircuitError> {
    match val.get(wire as usize) {
        Some(Some(v)) => Ok(v),
        Some(None) => Err(CircuitError::ReadBeforeWrite { site, wire }),
        None => Err(CircuitError::WireOutOfRange {
            site,
            wire,
            num_wires,
        }),
    }
}

fn write<T>(
    val: &mut [Option<T>],
    wire: WireId,
    bit: T,
    site: Site,
    num_wires: u32,
) -> Result<(), CircuitError> {
    match val.get_mut(wire as usize) {
        Some(slot @ None) => {
            *slot = Some(bit);
            Ok(())
        }
        Some(Some(_)) => Err(CircuitError::WrittenTwice { site, wire }),
        None => Err(CircuitError::WireOutOfRange {
            site,
            wire,
            num_wires,
        }),
    }
}

/// A run of a circuit on a backend: the walk's visitor, checking every read and write.
struct Run<'b, B: BoolBackend + ?Sized> {
    backend: &'b mut B,
    val: Vec<Option<B::Bit>>,
    num_wires: u32,
}

impl<B: BoolBackend + ?Sized> Run<'_, B> {
    fn binary(
        &mut self,
        g: usize,
        a: WireId,
        b: WireId,
        out: WireId,
        op: fn(&mut B, &B::Bit, &B::Bit) -> B::Bit,
    ) -> ControlFlow<CircuitError> {
        let (site, n) = (Site::Gate(g), self.num_wires);
        let result = read(&self.val, a, site, n).and_then(|x| {
            let y = read(&self.val, b, site, n)?;
            Ok(op(self.backend, x, y))
        });
        flow(result.and_then(|z| write(&mut self.val, out, z, site, n)))
    }
}

fn flow(result: Result<(), CircuitError>) -> ControlFlow<CircuitError> {
    match result {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => ControlFlow::Break(e),
    }
}

impl<B: BoolBackend + ?Sized> GateVisitor for Run<'_, B> {
    type Break = CircuitError;

    fn xor(&mut self, g: usize, a: WireId, b: WireId, out: WireId) -> ControlFlow<CircuitError> {
        self.binary(g, a, b, out, B::xor)
    }

    fn and(&mut self, g: usize, a: WireId, b: WireId, out: WireId) -> ControlFlow<CircuitError> {
        self.binary(g, a, b, out, B::and)
    }

    fn inv(&mut self, g: usize, a: WireId, out: WireId) -> ControlFlow<CircuitError> {
        let (site, n) = (Site::Gate(g), self.num_wires);
        let result = read(&self.val, a, site, n).map(|x| self.backend.not(x));
        flow(result.and_then(|z| write(&mut self.val, out, z, site, n)))
    }

    fn constant(&mut self, g: usize, value: bool, out: WireId) -> ControlFlow<CircuitError> {
        let bit = self.backend.constant_bit(value);
        flow(write(
            &mut self.val,
            out,
            bit,
            Site::Gate(g),
            self.num_wires,
        ))
    }
}

impl Circuit {
    /// Width of each input value.
    pub fn input_widths(&self) -> Vec<usize> {
        self.inputs.iter().map(Vec::len).collect()
    }

    /// Width of each output value.
    pub fn output_widths(&self) -> Vec<usize> {
        self.outputs.iter().map(Vec::len).collect()
    }

    /// Input bits over all input values.
    pub fn input_bits(&self) -> usize {
        self.inputs.iter().map(Vec::len).sum()
    }

    /// Output bits over all output values.
    pub fn output_bits(&self) -> usize {
        self.outputs.iter().map(Vec::len).sum()
    }

    /// Checks the structure: every wire below `num_wires`, input wires distinct, every other
    /// wire written by at most one gate, gates reading only wires written before them, and
    /// every output wire written.
    pub fn validate(&self) -> Result<(), CircuitError> {
        let zeros: Vec<Vec<bool>> = self.inputs.iter().map(|v| vec![false; v.len()]).collect();
        self.eval(&zeros).map(|_| ())
    }

    /// Evaluates the circuit in the clear: `inputs[v][i]` is bit `i` of input value `v`; the
    /// result has one bit vector per output value.
    ///
    /// The circuit is validated along the way, so a malformed circuit gives an error, never a
    /// panic or a wrong answer; a wrong number or width of input values is an error too.
    pub fn eval(&self, inputs: &[Vec<bool>]) -> Result<Vec<Vec<bool>>, CircuitError> {
        self.run_on(&mut Plain, inputs)
    }

    /// Runs the circuit on any [`BoolBackend`]: `inputs[v][i]` is bit `i` of input value `v`
    /// as a bit of that backend, and the result has the backend's bits of each output value.
    /// A compiled circuit (a Bristol file, say) can so be evaluated by [`Plain`] (which is
    /// [`Circuit::eval`]), costed by [`Cost`](crate::cost::Cost) or inlined into a larger
    /// circuit by a [`Builder`](crate::Builder). The gates go through the one walk of
    /// [`crate::walk`].
    ///
    /// The circuit is validated along the way, as by [`Circuit::eval`].
    pub fn run_on<B: BoolBackend + ?Sized>(
        &self,
        backend: &mut B,
        inputs: &[Vec<B::Bit>],
    ) -> Result<Vec<Vec<B::Bit>>, CircuitError> {
        if inputs.len() != self.inputs.len() {
            return Err(CircuitError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        for (index, (wires, given)) in self.inputs.iter().zip(inputs).enumerate() {
            if wires.len() != given.len() {
                return Err(CircuitError::InputWidth {
                    index,
                    expected: wires.len(),
                    got: given.len(),
                });
            }
        }
        let n = self.num_wires;
        let mut run = Run {
            backend,
            val: vec![None; n as usize],
            num_wires: n,
        };
        for (value, (wires, given)) in self.inputs.iter().zip(inputs).enumerate() {
            for (bit, (&w, x)) in wires.iter().zip(given).enumerate() {
                write(&mut run.val, w, x.clone(), Site::Input { value, bit }, n)?;
            }
        }
        if let ControlFlow::Break((_, e)) = walk(&self.gates, 0, &mut run) {
            return Err(e);
        }
        self.outputs
            .iter()
            .enumerate()
            .map(|(value, wires)| {
                wires
                    .iter()
                    .enumerate()
                    .map(|(bit, &w)| Ok(read(&run.val, w, Site::Output { value, bit }, n)?.clone()))
                    .collect()
            })
            .collect()
    }

    /// Evaluates the circuit on integer values: `inputs[v]` is input value `v` (its bits above
    /// the value's width are ignored, so a negative number cast to `u128` passes its two's
    /// complement). Every input and output value must be at most 128 bits wide.
    pub fn eval_words(&self, inputs: &[u128]) -> Result<Vec<u128>, CircuitError> {
        if let Some(width) = self
            .inputs
            .iter()
            .chain(&self.outputs)
            .map(Vec::len)
            .find(|&w| w > 128)
        {
            return Err(CircuitError::TooWide { width });
        }
        if inputs.len() != self.inputs.len() {
            return Err(CircuitError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        let bits: Vec<Vec<bool>> = self
            .inputs
            .iter()
            .zip(inputs)
            .map(|(wires, &v)| bits_from_u128(v & mask(wires.len()), wires.len()))
            .collect();
        Ok(self.eval(&bits)?.iter().map(|b| bits_to_u128(b)).collect())
    }

    /// The AND depth of every wire (0 for inputs and unwritten wires).
    fn wire_depths(&self) -> Vec<u32> {
        let mut depth = vec![0u32; self.num_wires as usize];
        for gate in &self.gates {
            let d = gate_depth(gate, &depth);
            if let Some(slot) = depth.get_mut(gate.output() as usize) {
                *slot = d;
            }
        }
        depth
    }

    /// The AND depth of every gate, in gate order: an AND gate is one more than the deeper of
    /// its inputs, any other gate as deep as its deepest input (inputs and constants are at
    /// depth 0). AND gates of equal depth can be evaluated in one GMW round.
    pub fn and_layers(&self) -> Vec<u32> {
        let mut depth = vec![0u32; self.num_wires as usize];
        self.gates
            .iter()
            .map(|gate| {
                let d = gate_depth(gate, &depth);
                if let Some(slot) = depth.get_mut(gate.output() as usize) {
                    *slot = d;
                }
                d
            })
            .collect()
    }

    /// Feeds a canonical byte encoding of the circuit (wire count, input and output wires,
    /// every gate) to `sink`, in pieces: two parties that hash it (each protocol with its own
    /// domain tag) agree on the digest exactly when they hold the same circuit.
    pub fn canonical_bytes(&self, mut sink: impl FnMut(&[u8])) {
        sink(&self.num_wires.to_le_bytes());
        for (tag, values) in [(0u8, &self.inputs), (1u8, &self.outputs)] {
            sink(&[tag]);
            sink(&(values.len() as u64).to_le_bytes());
            for v in values.iter() {
                sink(&(v.len() as u64).to_le_bytes());
                for w in v {
                    sink(&w.to_le_bytes());
                }
            }
        }
        sink(&(self.gates.len() as u64).to_le_bytes());
        let mut buf = Vec::with_capacity(13 * 1024);
        for chunk in self.gates.chunks(1024) {
            buf.clear();
            for g in chunk {
                let (t, a, b, o) = match *g {
                    Gate::Xor { a, b, out } => (0u8, a, b, out),
                    Gate::And { a, b, out } => (1, a, b, out),
                    Gate::Inv { a, out } => (2, a, 0, out),
                    Gate::Const { value, out } => (3, u32::from(value), 0, out),
                };
                buf.push(t);
                buf.extend_from_slice(&a.to_le_bytes());
                buf.extend_from_slice(&b.to_le_bytes());
                buf.extend_from_slice(&o.to_le_bytes());
            }
            sink(&buf);
        }
    }

    /// The gates grouped by AND depth into `and_depth + 1` [`Layer`]s; see [`Layer`] for the
    /// evaluation order.
    pub fn layers(&self) -> Vec<Layer> {
        let depths = self.and_layers();
        let top = depths.iter().copied().max().unwrap_or(0) as usize;
        let mut layers = vec![Layer::default(); top + 1];
        for (g, (gate, &d)) in self.gates.iter().zip(&depths).enumerate() {
            let layer = &mut layers[d as usize];
            if gate.is_and() {
                layer.and_gates.push(g);
            } else {
                layer.free_gates.push(g);
            }
        }
        layers
    }

    /// Gate counts, AND depth (over the outputs) and sizes.
    pub fn stats(&self) -> CircuitStats {
        let mut s = CircuitStats {
            num_wires: self.num_wires,
            input_bits: self.input_bits(),
            output_bits: self.output_bits(),
            ..CircuitStats::default()
        };
        for gate in &self.gates {
            match gate {
                Gate::Xor { .. } => s.xor_count += 1,
                Gate::And { .. } => s.and_count += 1,
                Gate::Inv { .. } => s.inv_count += 1,
                Gate::Const { .. } => s.const_count += 1,
            }
        }
        let depth = self.wire_depths();
        s.and_depth = self
            .outputs
            .iter()
            .flatten()
            .filter_map(|&w| depth.get(w as usize).copied())
            .max()
            .unwrap_or(0);
        s
    }
}

fn gate_depth(gate: &Gate, depth: &[u32]) -> u32 {
    let d = gate
        .inputs()
        .filter_map(|w| depth.get(w as usize).copied())
        .max()
        .unwrap_or(0);
    if gate.is_and() {
        d + 1
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// out0 = (a AND b) XOR c, out1 = NOT a, out2 = 1.
    fn small() -> Circuit {
        Circuit {
            num_wires: 7,
            inputs: vec![vec![0, 1], vec![2]],
            outputs: vec![vec![4], vec![5, 0], vec![6]],
            gates: vec![
                Gate::And { a: 0, b: 1, out: 3 },
                Gate::Xor { a: 3, b: 2, out: 4 },
                Gate::Inv { a: 0, out: 5 },
                Gate::Const {
                    value: true,
                    out: 6,
                },
            ],
        }
    }

    #[test]
    fn evaluates_and_counts() {
        let c = small();
        c.validate().unwrap();
        for a in 0..4u128 {
            for b in 0..2u128 {
                let out = c.eval_words(&[a, b]).unwrap();
                let (x, y) = (a & 1, a >> 1);
                assert_eq!(out, vec![(x & y) ^ b, (x ^ 1) | (x << 1), 1]);
            }
        }
        let s = c.stats();
        assert_eq!(
            (s.and_count, s.xor_count, s.inv_count, s.const_count),
            (1, 1, 1, 1)
        );
        assert_eq!(s.and_depth, 1);
        assert_eq!(s.gate_count(), 4);
        assert_eq!(c.and_layers(), vec![1, 1, 0, 0]);
        let layers = c.layers();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].free_gates, vec![2, 3]);
        assert_eq!(layers[1].and_gates, vec![0]);
        assert_eq!(layers[1].free_gates, vec![1]);
    }

    #[test]
    fn rejects_malformed_circuits() {
        let mut c = small();
        c.gates[1] = Gate::Xor { a: 3, b: 9, out: 4 };
        assert!(matches!(
            c.validate(),
            Err(CircuitError::WireOutOfRange {
                site: Site::Gate(1),
                wire: 9,
                ..
            })
        ));
        let mut c = small();
        c.gates.swap(0, 1);
        assert!(matches!(
            c.validate(),
            Err(CircuitError::ReadBeforeWrite {
                site: Site::Gate(0),
                wire: 3
            })
        ));
        let mut c = small();
        c.gates[2] = Gate::Inv { a: 0, out: 2 };
        assert!(matches!(
            c.validate(),
            Err(CircuitError::WrittenTwice {
                site: Site::Gate(2),
                wire: 2
            })
        ));
        let mut c = small();
        c.inputs[1] = vec![1];
        assert!(matches!(
            c.validate(),
            Err(CircuitError::WrittenTwice { .. })
        ));
        let mut c = small();
        c.gates.pop();
        assert!(matches!(
            c.validate(),
            Err(CircuitError::ReadBeforeWrite {
                site: Site::Output { value: 2, bit: 0 },
                wire: 6
            })
        ));
        let c = small();
        assert!(matches!(
            c.eval(&[vec![true, false]]),
            Err(CircuitError::InputCount {
                expected: 2,
                got: 1
            })
        ));
        assert!(matches!(
            c.eval(&[vec![true], vec![false]]),
            Err(CircuitError::InputWidth { index: 0, .. })
        ));
        // Stats and layers never panic, even on a malformed circuit.
        let mut c = small();
        c.gates[0] = Gate::And {
            a: 100,
            b: 200,
            out: 300,
        };
        let _ = c.stats();
        let _ = c.layers();
    }
}
