//! One gate walk over a compiled [`Circuit`], shared by every evaluator.
//!
//! Every backend that runs a compiled circuit — the plaintext evaluator ([`Circuit::eval`]),
//! the half-gates garbler and evaluator (Zahur, Rosulek and Evans, Eurocrypt 2015) of
//! `veil-gc` and GMW's online phase (Goldreich, Micali and Wigderson, STOC 1987; ABY, NDSS
//! 2015, section III-B) in `veil-gmw` — walks the gate list the same way and differs only in
//! what a gate does to its wire values. That part is a [`GateVisitor`]: one callback per gate
//! kind, given the gate's index and wires. The walks:
//!
//! - [`walk`] visits the gates from an index on, in order; a callback may stop the walk
//!   (returning [`ControlFlow::Break`]) and the walk reports where, so a resumable evaluator
//!   (the garbler that sends its tables in chunks, the evaluator that consumes them as they
//!   come) continues from there;
//! - [`walk_indices`] visits the gates at given indices, in the order given (the free gates
//!   of one AND layer);
//! - [`walk_layers`] visits the circuit one AND layer at a time ([`Circuit::layers`]): each
//!   layer's AND gates as one batch ([`LayerVisitor::and_layer`], one GMW round), then its free
//!   gates one by one.
//!
//! The walks are generic over the visitor, so each evaluator gets its own monomorphised loop
//! with the callbacks inlined and no allocation per gate, as fast as a hand-written `match`.

use std::ops::ControlFlow;

use crate::circuit::{Gate, Layer, WireId};

#[cfg(doc)]
use crate::circuit::Circuit;

/// What an evaluator does with each kind of gate. A callback returns
/// [`ControlFlow::Continue`] to go on, or [`ControlFlow::Break`] to stop the walk *before*
/// this gate counts as visited (the walk reports the gate's index, from which a resumed walk
/// visits it again).
pub trait GateVisitor {
    /// Why a walk stopped: an error, or a pause of a resumable evaluator.
    type Break;

    /// Gate `index` is `out = a XOR b`.
    fn xor(&mut self, index: usize, a: WireId, b: WireId, out: WireId) -> ControlFlow<Self::Break>;

    /// Gate `index` is `out = a AND b`.
    fn and(&mut self, index: usize, a: WireId, b: WireId, out: WireId) -> ControlFlow<Self::Break>;

    /// Gate `index` is `out = NOT a`.
    fn inv(&mut self, index: usize, a: WireId, out: WireId) -> ControlFlow<Self::Break>;

    /// Gate `index` is `out = value`.
    fn constant(&mut self, index: usize, value: bool, out: WireId) -> ControlFlow<Self::Break>;
}

/// Calls the callback of `visitor` for `gate`, the gate at `index`: the one dispatch on the
/// gate kind.
#[inline(always)]
pub fn visit<V: GateVisitor + ?Sized>(
    visitor: &mut V,
    index: usize,
    gate: &Gate,
) -> ControlFlow<V::Break> {
    match *gate {
        Gate::Xor { a, b, out } => visitor.xor(index, a, b, out),
        Gate::And { a, b, out } => visitor.and(index, a, b, out),
        Gate::Inv { a, out } => visitor.inv(index, a, out),
        Gate::Const { value, out } => visitor.constant(index, value, out),
    }
}

/// Visits `gates[from..]` in order. Returns `Break((g, reason))` when the callback of gate `g`
/// stops the walk, `Continue(())` after the last gate (at once when `from` is past the end).
#[inline]
pub fn walk<V: GateVisitor + ?Sized>(
    gates: &[Gate],
    from: usize,
    visitor: &mut V,
) -> ControlFlow<(usize, V::Break)> {
    let rest = gates.get(from..).unwrap_or(&[]);
    for (k, gate) in rest.iter().enumerate() {
        let index = from + k;
        if let ControlFlow::Break(reason) = visit(visitor, index, gate) {
            return ControlFlow::Break((index, reason));
        }
    }
    ControlFlow::Continue(())
}

/// Visits the gates at `indices`, in that order (indices past the end of `gates` are
/// skipped). Returns `Break((g, reason))` when the callback of gate `g` stops the walk.
#[inline]
pub fn walk_indices<V: GateVisitor + ?Sized>(
    gates: &[Gate],
    indices: &[usize],
    visitor: &mut V,
) -> ControlFlow<(usize, V::Break)> {
    for &index in indices {
        if let Some(gate) = gates.get(index) {
            if let ControlFlow::Break(reason) = visit(visitor, index, gate) {
                return ControlFlow::Break((index, reason));
            }
        }
    }
    ControlFlow::Continue(())
}

/// One AND gate of a layer: its index in the circuit and its wires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AndGate {
    /// Index in [`Circuit::gates`].
    pub index: usize,
    /// First input.
    pub a: WireId,
    /// Second input.
    pub b: WireId,
    /// Output.
    pub out: WireId,
}

/// The AND gates of one layer, in the layer's order: an iterator of [`AndGate`]s. (Indices
/// that are past the end or not AND gates, which [`Circuit::layers`] never gives, are
/// skipped.)
#[derive(Clone, Debug)]
pub struct AndGates<'a> {
    gates: &'a [Gate],
    indices: std::slice::Iter<'a, usize>,
}

impl<'a> AndGates<'a> {
    /// The AND gates of `layer`, a layer of the circuit whose gates are `gates`.
    pub fn new(gates: &'a [Gate], layer: &'a Layer) -> Self {
        AndGates {
            gates,
            indices: layer.and_gates.iter(),
        }
    }

    /// How many indices are left (the AND gates of a layer of [`Circuit::layers`]).
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether no index is left.
    pub fn is_empty(&self) -> bool {
        self.indices.len() == 0
    }
}

impl Iterator for AndGates<'_> {
    type Item = AndGate;

    fn next(&mut self) -> Option<AndGate> {
        for &index in self.indices.by_ref() {
            if let Some(&Gate::And { a, b, out }) = self.gates.get(index) {
                return Some(AndGate { index, a, b, out });
            }
        }
        None
    }
}

/// A visitor of a circuit one AND layer at a time: the free gates through [`GateVisitor`],
/// each layer's AND gates as one batch.
pub trait LayerVisitor: GateVisitor {
    /// The AND gates of layer `layer`, which read only wires of earlier layers, all at once.
    /// Returning [`ControlFlow::Break`] stops the walk before the layer's free gates (GMW
    /// pauses here for the layer's exchange; it evaluates the free gates with
    /// [`walk_indices`] and resumes at the next layer).
    fn and_layer(&mut self, layer: usize, ands: AndGates<'_>) -> ControlFlow<Self::Break>;
}

/// Visits `layers[from..]` in order, each layer's AND gates as one batch, then its free gates.
/// Layers without AND gates (layer 0) have no batch. Returns `Break((i, reason))` when a
/// callback of layer `i` stops the walk.
pub fn walk_layers<V: LayerVisitor + ?Sized>(
    gates: &[Gate],
    layers: &[Layer],
    from: usize,
    visitor: &mut V,
) -> ControlFlow<(usize, V::Break)> {
    let rest = layers.get(from..).unwrap_or(&[]);
    for (k, layer) in rest.iter().enumerate() {
        let i = from + k;
        if !layer.and_gates.is_empty() {
            if let ControlFlow::Break(reason) = visitor.and_layer(i, AndGates::new(gates, layer)) {
                return ControlFlow::Break((i, reason));
            }
        }
        if let ControlFlow::Break((_, reason)) = walk_indices(gates, &layer.free_gates, visitor) {
            return ControlFlow::Break((i, reason));
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BoolBackend;
    use crate::cost::{Cost, CostReport};
    use crate::plain::Plain;
    use crate::{parse_bristol, Builder, Circuit};

    /// Counts gates and records the order of visits; stops at the `stop_at`-th AND.
    #[derive(Default)]
    struct Tally {
        seen: Vec<usize>,
        ands: usize,
        stop_at: Option<usize>,
        batches: Vec<Vec<usize>>,
    }

    impl GateVisitor for Tally {
        type Break = &'static str;
        fn xor(&mut self, g: usize, _: WireId, _: WireId, _: WireId) -> ControlFlow<&'static str> {
            self.seen.push(g);
            ControlFlow::Continue(())
        }
        fn and(&mut self, g: usize, _: WireId, _: WireId, _: WireId) -> ControlFlow<&'static str> {
            if Some(self.ands) == self.stop_at {
                return ControlFlow::Break("paused");
            }
            self.ands += 1;
            self.seen.push(g);
            ControlFlow::Continue(())
        }
        fn inv(&mut self, g: usize, _: WireId, _: WireId) -> ControlFlow<&'static str> {
            self.seen.push(g);
            ControlFlow::Continue(())
        }
        fn constant(&mut self, g: usize, _: bool, _: WireId) -> ControlFlow<&'static str> {
            self.seen.push(g);
            ControlFlow::Continue(())
        }
    }

    impl LayerVisitor for Tally {
        fn and_layer(&mut self, _: usize, ands: AndGates<'_>) -> ControlFlow<&'static str> {
            assert_eq!(ands.len(), ands.clone().count());
            self.batches.push(ands.map(|g| g.index).collect());
            ControlFlow::Continue(())
        }
    }

    fn adder() -> Circuit {
        let mut b = Builder::new();
        let x = b.input(8);
        let y = b.input(8);
        let s = b.add(&x, &y);
        let n = b.not_word(&s);
        b.output(&n);
        b.output(&[crate::Bit::ONE]);
        b.finish()
    }

    #[test]
    fn walks_resume_where_they_stopped() {
        let c = adder();
        let mut t = Tally::default();
        assert!(walk(&c.gates, 0, &mut t).is_continue());
        assert_eq!(t.seen, (0..c.gates.len()).collect::<Vec<_>>());
        assert_eq!(t.ands, 7);

        let mut t = Tally {
            stop_at: Some(3),
            ..Tally::default()
        };
        let ControlFlow::Break((g, "paused")) = walk(&c.gates, 0, &mut t) else {
            panic!("the walk should pause at the fourth AND");
        };
        assert!(c.gates[g].is_and());
        t.stop_at = None;
        assert!(walk(&c.gates, g, &mut t).is_continue());
        assert_eq!(t.seen, (0..c.gates.len()).collect::<Vec<_>>());
        assert!(walk(&c.gates, c.gates.len() + 5, &mut t).is_continue());
    }

    #[test]
    fn layered_walk_batches_each_and_layer() {
        let c = adder();
        let layers = c.layers();
        let mut t = Tally::default();
        assert!(walk_layers(&c.gates, &layers, 0, &mut t).is_continue());
        assert_eq!(t.batches.len(), 7);
        for (i, batch) in t.batches.iter().enumerate() {
            assert_eq!(batch, &layers[i + 1].and_gates);
        }
        let mut sorted = t.seen.clone();
        sorted.extend(t.batches.iter().flatten());
        sorted.sort_unstable();
        assert_eq!(sorted, (0..c.gates.len()).collect::<Vec<_>>());
        assert!(walk_indices(&c.gates, &[usize::MAX], &mut t).is_continue());
    }

    #[test]
    fn compiled_circuits_run_on_every_backend() {
        let aes = parse_bristol(include_str!("../../../circuits/aes_128.txt")).unwrap();
        let mut cost = Cost::new();
        let inputs: Vec<_> = aes.inputs.iter().map(|w| cost.input(w.len())).collect();
        for out in aes.run_on(&mut cost, &inputs).unwrap() {
            cost.output(&out);
        }
        let report = CostReport::of_circuit(&aes);
        assert_eq!(cost.and_count() as usize, aes.stats().and_count);
        assert_eq!(cost.and_depth(), aes.stats().and_depth);
        assert_eq!(cost.report(), report);
        assert_eq!(report.gmw_rounds(), aes.stats().and_depth as usize);

        let key = crate::bits::bits_from_hex("000102030405060708090a0b0c0d0e0f", 128).unwrap();
        let plain = crate::bits::bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
        let out = aes
            .run_on(&mut Plain, &[key.clone(), plain.clone()])
            .unwrap();
        assert_eq!(
            crate::bits::bits_to_hex(&out[0]),
            "69c4e0d86a7b0430d8cdb78070b4c55a"
        );
        // Inlined into a builder, the circuit computes the same.
        let mut b = Builder::new();
        let k = b.input(128);
        let p = b.input(128);
        let outs = aes.run_on(&mut b, &[k, p]).unwrap();
        b.output(&outs[0]);
        assert_eq!(b.finish().eval(&[key, plain]).unwrap(), out);

        let mut bad = aes.clone();
        let last = bad.gates.len() - 1;
        bad.gates.swap(0, last);
        assert!(bad
            .run_on(&mut Plain, &[vec![false; 128], vec![false; 128]])
            .is_err());
        assert!(aes.run_on(&mut Plain, &[vec![false; 128]]).is_err());
        let _ = Plain.constant_bit(true);
    }
}
