//! Half-gates garbling (Zahur, Rosulek and Evans, "Two halves make a whole", EUROCRYPT 2015,
//! figure 2) with free-XOR (Kolesnikov and Schneider, ICALP 2008) and point-and-permute.
//!
//! Every wire `w` has a zero label `W_w^0` and a one label `W_w^1 = W_w^0 ⊕ Δ`, with a global
//! secret `Δ` whose least significant bit is 1, so the two labels of a wire differ in that bit
//! (the permute bit). XOR and INV cost nothing: `W_out^0 = W_a^0 ⊕ W_b^0` and
//! `W_out^0 = W_a^0 ⊕ Δ`. A constant wire's active label is the all-zero block, known to both
//! parties: the garbler sets its zero label to `0` or `Δ`. Each AND gate `j` costs two blocks
//! (32 bytes) of table, `T_G` and `T_E`, and four hashes to garble, two to evaluate, with the
//! hash `H(x, i) = tccr(i, x)` of Guo, Katz, Wang and Yu (tweaks `2j` and `2j+1`):
//!
//! ```text
//! garbler:   p_a = lsb(A0), p_b = lsb(B0)
//!            T_G = H(A0, 2j) ⊕ H(A1, 2j) ⊕ p_b·Δ          W_G0 = H(A0, 2j) ⊕ p_a·T_G
//!            T_E = H(B0, 2j+1) ⊕ H(B1, 2j+1) ⊕ A0           W_E0 = H(B0, 2j+1) ⊕ p_b·(T_E ⊕ A0)
//!            C0 = W_G0 ⊕ W_E0
//! evaluator: C = H(A, 2j) ⊕ lsb(A)·T_G ⊕ H(B, 2j+1) ⊕ lsb(B)·(T_E ⊕ A)
//! ```
//!
//! Both roles walk a [`Plan`]: the circuit's gates reordered by AND layer, so that each
//! layer's AND gates, independent of one another, stand side by side and are hashed in
//! batches of up to [`BATCH`], keeping the AES pipeline full. The walk is veil-circuit's one
//! gate walk ([`veil_circuit::walk`]); each role is a visitor that says what a gate does to
//! its labels. Both are resumable: the garbler
//! stops after a given number of AND gates so its tables can be sent in chunks, and the
//! evaluator consumes whatever tables it is given, so neither holds more than one chunk.

use std::ops::ControlFlow;

use veil_circuit::walk::{walk, GateVisitor};
use veil_circuit::Circuit;
use veil_ot::aes_hash::fixed_key_aes;
use veil_ot::block::zeroize_blocks;
use veil_ot::Block;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// AND gates hashed together.
pub const BATCH: usize = 64;

/// The garbler's walk over a circuit: zero labels of every wire and the AND-gate counter.
///
/// Zeroized on drop: `Δ`, the zero label of every wire and the batch's hash inputs (label pairs,
/// then their hashes). The labels are `Copy` blocks: copies in registers and on the stack
/// during a gate are not tracked.
pub struct GarbleState<'c> {
    circuit: &'c Circuit,
    layer_start: &'c [bool],
    delta: Block,
    labels: Vec<Block>,
    next_gate: usize,
    and_index: u64,
    batch: Vec<(u32, u32, u32)>,
    hash_in: Vec<Block>,
    tweaks: Vec<Block>,
}

impl Zeroize for GarbleState<'_> {
    /// Erases `Δ`, every label and the hash buffer; the state is unusable afterwards.
    fn zeroize(&mut self) {
        self.delta.zeroize();
        zeroize_blocks(&mut self.labels);
        zeroize_blocks(&mut self.hash_in);
    }
}

impl Drop for GarbleState<'_> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for GarbleState<'_> {}

impl<'c> GarbleState<'c> {
    /// Starts garbling `circuit` with offset `delta` (its least significant bit must be 1)
    /// and the given zero labels of the input wires, one vector per input value.
    /// `first_and` numbers the first AND gate (the hash tweak), so that several circuits
    /// garbled under one `Δ` never reuse a tweak.
    pub fn new(
        plan: &'c Plan,
        delta: Block,
        input_zero_labels: &[Vec<Block>],
        first_and: u64,
    ) -> Self {
        let circuit = &plan.circuit;
        assert!(
            delta.lsb(),
            "the free-XOR offset must have its least significant bit set"
        );
        let mut labels = vec![Block::ZERO; circuit.num_wires as usize];
        for (wires, ls) in circuit.inputs.iter().zip(input_zero_labels) {
            for (w, l) in wires.iter().zip(ls) {
                labels[*w as usize] = *l;
            }
        }
        GarbleState {
            circuit,
            layer_start: &plan.layer_start,
            delta,
            labels,
            next_gate: 0,
            and_index: first_and,
            batch: Vec::with_capacity(BATCH),
            hash_in: Vec::with_capacity(4 * BATCH),
            tweaks: Vec::with_capacity(4 * BATCH),
        }
    }

    /// Whether every gate is garbled.
    pub fn is_done(&self) -> bool {
        self.next_gate >= self.circuit.gates.len() && self.batch.is_empty()
    }

    /// The next AND-gate index (the tweak counter after this circuit).
    pub fn next_and_index(&self) -> u64 {
        self.and_index
    }

    fn flush(&mut self, tables: &mut Vec<Block>) {
        if self.batch.is_empty() {
            return;
        }
        let d = self.delta;
        self.hash_in.clear();
        self.tweaks.clear();
        for (k, &(a, b, _)) in self.batch.iter().enumerate() {
            let j = u128::from(self.and_index) + k as u128;
            let (a0, b0) = (self.labels[a as usize], self.labels[b as usize]);
            self.hash_in.extend_from_slice(&[a0, a0 ^ d, b0, b0 ^ d]);
            let (tg, te) = (Block(2 * j), Block(2 * j + 1));
            self.tweaks.extend_from_slice(&[tg, tg, te, te]);
        }
        fixed_key_aes().tccr_many(&self.tweaks, &mut self.hash_in);
        for (k, &(a, b, out)) in self.batch.iter().enumerate() {
            let h = &self.hash_in[4 * k..4 * k + 4];
            let (a0, b0) = (self.labels[a as usize], self.labels[b as usize]);
            let (pa, pb) = (a0.lsb(), b0.lsb());
            let tg = h[0] ^ h[1] ^ d.and_bit(pb);
            let wg0 = h[0] ^ tg.and_bit(pa);
            let te = h[2] ^ h[3] ^ a0;
            let we0 = h[2] ^ (te ^ a0).and_bit(pb);
            self.labels[out as usize] = wg0 ^ we0;
            tables.push(tg);
            tables.push(te);
        }
        self.and_index += self.batch.len() as u64;
        self.batch.clear();
    }

    /// Garbles gates until `max_ands` more AND gates are garbled or the circuit ends,
    /// appending two table blocks per AND gate to `tables`.
    pub fn garble(&mut self, max_ands: usize, tables: &mut Vec<Block>) {
        let circuit: &'c Circuit = self.circuit;
        let from = self.next_gate;
        let mut garbling = Garbling {
            st: self,
            tables,
            done: 0,
            max_ands,
        };
        let stop = match walk(&circuit.gates, from, &mut garbling) {
            ControlFlow::Continue(()) => circuit.gates.len().max(from),
            ControlFlow::Break((g, ())) => g,
        };
        let Garbling { st, tables, .. } = garbling;
        st.next_gate = stop;
        st.flush(tables);
    }

    /// The zero label of a wire (valid once the gate writing it is garbled).
    pub fn zero_label(&self, w: u32) -> Block {
        self.labels[w as usize]
    }

    /// The permute bits `lsb(W^0)` of every output wire: the decoding information.
    pub fn decoding_bits(&self) -> Vec<Vec<bool>> {
        self.circuit
            .outputs
            .iter()
            .map(|ws| ws.iter().map(|w| self.labels[*w as usize].lsb()).collect())
            .collect()
    }
}

/// The evaluator's walk: active labels of every wire.
///
/// Zeroized on drop: every active label and the batch's hash inputs. (The garbled tables it
/// holds are public.)
pub struct EvalState<'c> {
    circuit: &'c Circuit,
    layer_start: &'c [bool],
    labels: Vec<Block>,
    next_gate: usize,
    and_index: u64,
    batch: Vec<(u32, u32, u32, Block, Block)>,
    hash_in: Vec<Block>,
}

impl Zeroize for EvalState<'_> {
    /// Erases every label and the hash buffer; the state is unusable afterwards.
    fn zeroize(&mut self) {
        zeroize_blocks(&mut self.labels);
        zeroize_blocks(&mut self.hash_in);
    }
}

impl Drop for EvalState<'_> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for EvalState<'_> {}

impl<'c> EvalState<'c> {
    /// Starts evaluating `circuit` from the active labels of its input wires; `first_and` as
    /// the garbler's.
    pub fn new(plan: &'c Plan, input_labels: &[Vec<Block>], first_and: u64) -> Self {
        let circuit = &plan.circuit;
        let mut labels = vec![Block::ZERO; circuit.num_wires as usize];
        for (wires, ls) in circuit.inputs.iter().zip(input_labels) {
            for (w, l) in wires.iter().zip(ls) {
                labels[*w as usize] = *l;
            }
        }
        EvalState {
            circuit,
            layer_start: &plan.layer_start,
            labels,
            next_gate: 0,
            and_index: first_and,
            batch: Vec::with_capacity(BATCH),
            hash_in: Vec::with_capacity(2 * BATCH),
        }
    }

    /// Whether every gate is evaluated.
    pub fn is_done(&self) -> bool {
        self.next_gate >= self.circuit.gates.len() && self.batch.is_empty()
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.hash_in.clear();
        for &(a, b, _, _, _) in &self.batch {
            self.hash_in.push(self.labels[a as usize]);
            self.hash_in.push(self.labels[b as usize]);
        }
        // Gate j hashes its inputs under tweaks 2j and 2j+1: consecutive over the batch.
        fixed_key_aes().tccr_many_seq(2 * u128::from(self.and_index), &mut self.hash_in);
        for (k, &(a, b, out, tg, te)) in self.batch.iter().enumerate() {
            let (wa, wb) = (self.labels[a as usize], self.labels[b as usize]);
            let wg = self.hash_in[2 * k] ^ tg.and_bit(wa.lsb());
            let we = self.hash_in[2 * k + 1] ^ (te ^ wa).and_bit(wb.lsb());
            self.labels[out as usize] = wg ^ we;
        }
        self.and_index += self.batch.len() as u64;
        self.batch.clear();
    }

    /// Evaluates gates using the tables in `tables` (two blocks per AND gate, in gate order);
    /// returns how many blocks it consumed, always an even number. It stops at the first AND
    /// gate with no table left, or at the end of the circuit.
    pub fn eval(&mut self, tables: &[Block]) -> usize {
        let circuit: &'c Circuit = self.circuit;
        let from = self.next_gate;
        let mut evaluation = Evaluation {
            st: self,
            tables,
            used: 0,
        };
        let stop = match walk(&circuit.gates, from, &mut evaluation) {
            ControlFlow::Continue(()) => circuit.gates.len().max(from),
            ControlFlow::Break((g, ())) => g,
        };
        let Evaluation { st, used, .. } = evaluation;
        st.next_gate = stop;
        st.flush();
        used
    }

    /// The active labels of every output wire (valid once [`EvalState::is_done`]).
    pub fn output_labels(&self) -> Vec<Vec<Block>> {
        self.circuit
            .outputs
            .iter()
            .map(|ws| ws.iter().map(|w| self.labels[*w as usize]).collect())
            .collect()
    }

    /// The AND-gate counter after this circuit.
    pub fn next_and_index(&self) -> u64 {
        self.and_index
    }
}

/// The garbler's visitor for one call of [`GarbleState::garble`]: AND gates join the batch
/// (hashed when it is full, when a new layer starts and before any gate that may read it),
/// XOR, INV and constant gates are garbled at once. It stops before the AND gate that would
/// exceed `max_ands`.
struct Garbling<'s, 'c> {
    st: &'s mut GarbleState<'c>,
    tables: &'s mut Vec<Block>,
    done: usize,
    max_ands: usize,
}

impl Garbling<'_, '_> {
    #[inline(always)]
    fn flush_pending(&mut self) {
        if !self.st.batch.is_empty() {
            self.done += self.st.batch.len();
            self.st.flush(self.tables);
        }
    }
}

impl GateVisitor for Garbling<'_, '_> {
    type Break = ();

    #[inline(always)]
    fn and(&mut self, g: usize, a: u32, b: u32, out: u32) -> ControlFlow<()> {
        if self.done + self.st.batch.len() >= self.max_ands {
            return ControlFlow::Break(());
        }
        if self.st.layer_start[g] {
            self.flush_pending();
        }
        self.st.batch.push((a, b, out));
        if self.st.batch.len() == BATCH {
            self.flush_pending();
        }
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn xor(&mut self, _: usize, a: u32, b: u32, out: u32) -> ControlFlow<()> {
        self.flush_pending();
        let l = &mut self.st.labels;
        l[out as usize] = l[a as usize] ^ l[b as usize];
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn inv(&mut self, _: usize, a: u32, out: u32) -> ControlFlow<()> {
        self.flush_pending();
        let l = &mut self.st.labels;
        l[out as usize] = l[a as usize] ^ self.st.delta;
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn constant(&mut self, _: usize, value: bool, out: u32) -> ControlFlow<()> {
        self.st.labels[out as usize] = self.st.delta.and_bit(value);
        ControlFlow::Continue(())
    }
}

/// The evaluator's visitor for one call of [`EvalState::eval`], batching like [`Garbling`];
/// it stops before the first AND gate with no table left.
struct Evaluation<'s, 'c> {
    st: &'s mut EvalState<'c>,
    tables: &'s [Block],
    used: usize,
}

impl GateVisitor for Evaluation<'_, '_> {
    type Break = ();

    #[inline(always)]
    fn and(&mut self, g: usize, a: u32, b: u32, out: u32) -> ControlFlow<()> {
        let (Some(&tg), Some(&te)) = (self.tables.get(self.used), self.tables.get(self.used + 1))
        else {
            return ControlFlow::Break(());
        };
        if self.st.layer_start[g] && !self.st.batch.is_empty() {
            self.st.flush();
        }
        self.st.batch.push((a, b, out, tg, te));
        self.used += 2;
        if self.st.batch.len() == BATCH {
            self.st.flush();
        }
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn xor(&mut self, _: usize, a: u32, b: u32, out: u32) -> ControlFlow<()> {
        if !self.st.batch.is_empty() {
            self.st.flush();
        }
        let l = &mut self.st.labels;
        l[out as usize] = l[a as usize] ^ l[b as usize];
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn inv(&mut self, _: usize, a: u32, out: u32) -> ControlFlow<()> {
        if !self.st.batch.is_empty() {
            self.st.flush();
        }
        let l = &mut self.st.labels;
        l[out as usize] = l[a as usize];
        ControlFlow::Continue(())
    }

    #[inline(always)]
    fn constant(&mut self, _: usize, _: bool, out: u32) -> ControlFlow<()> {
        self.st.labels[out as usize] = Block::ZERO;
        ControlFlow::Continue(())
    }
}

/// A circuit with its gates reordered by AND layer (see [`Circuit::layers`]): each layer's
/// AND gates side by side, then its free gates. The order is still topological and derived
/// from the circuit alone, so garbler and evaluator agree on it; within a run of AND gates
/// none reads another's output, which is what lets both roles hash a run as one batch.
pub struct Plan {
    circuit: Circuit,
    /// `layer_start[g]`: gate `g` is the first AND gate of its layer, so the pending batch
    /// (the previous layer's) must be hashed before it.
    layer_start: Vec<bool>,
}

impl Plan {
    /// Reorders `circuit`'s gates by AND layer.
    pub fn new(circuit: &Circuit) -> Plan {
        let mut gates = Vec::with_capacity(circuit.gates.len());
        let mut layer_start = Vec::with_capacity(circuit.gates.len());
        for layer in circuit.layers() {
            for (k, &g) in layer.and_gates.iter().enumerate() {
                gates.push(circuit.gates[g]);
                layer_start.push(k == 0);
            }
            for &g in &layer.free_gates {
                gates.push(circuit.gates[g]);
                layer_start.push(false);
            }
        }
        Plan {
            circuit: Circuit {
                num_wires: circuit.num_wires,
                inputs: circuit.inputs.clone(),
                outputs: circuit.outputs.clone(),
                gates,
            },
            layer_start,
        }
    }

    /// The reordered circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }
}

/// Decodes output labels with the garbler's permute bits: `value = lsb(label) ⊕ d`.
///
/// Branch-free: no label is compared. (Point-and-permute bits select table rows during
/// evaluation by design; they are uniformly random and independent of the wire values.)
pub fn decode(labels: &[Vec<Block>], decoding: &[Vec<bool>]) -> Vec<Vec<bool>> {
    labels
        .iter()
        .zip(decoding)
        .map(|(ls, ds)| ls.iter().zip(ds).map(|(l, d)| l.lsb() ^ d).collect())
        .collect()
}

/// Garbles and evaluates `circuit` in one process on plaintext inputs: a reference run of the
/// whole garbling scheme without the network, used by tests and benchmarks.
pub fn garble_and_evaluate<R: rand::Rng + ?Sized>(
    circuit: &Circuit,
    inputs: &[Vec<bool>],
    rng: &mut R,
) -> Vec<Vec<bool>> {
    let mut delta = Block(rng.random::<u128>() | 1);
    let zero: zeroize::Zeroizing<Vec<Vec<Block>>> = inputs
        .iter()
        .map(|v| v.iter().map(|_| Block::random(rng)).collect())
        .collect::<Vec<_>>()
        .into();
    let active: zeroize::Zeroizing<Vec<Vec<Block>>> = zero
        .iter()
        .zip(inputs)
        .map(|(ls, bits)| {
            ls.iter()
                .zip(bits)
                .map(|(l, b)| *l ^ delta.and_bit(*b))
                .collect()
        })
        .collect::<Vec<_>>()
        .into();
    let plan = Plan::new(circuit);
    let mut g = GarbleState::new(&plan, delta, &zero, 0);
    let mut tables = Vec::new();
    g.garble(usize::MAX, &mut tables);
    let mut e = EvalState::new(&plan, &active, 0);
    let used = e.eval(&tables);
    debug_assert_eq!(used, tables.len());
    delta.zeroize();
    decode(
        &zeroize::Zeroizing::new(e.output_labels()),
        &g.decoding_bits(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_circuit::Builder;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn zeroize_erases_delta_and_every_label() {
        assert_zeroize_on_drop::<GarbleState<'static>>();
        assert_zeroize_on_drop::<EvalState<'static>>();
        let mut b = Builder::new();
        let x = b.input(8);
        let y = b.input(8);
        let z = b.and_words(&x, &y);
        let w = b.xor_words(&z, &x);
        b.output(&w);
        let circuit = b.finish();
        let plan = Plan::new(&circuit);

        let delta = Block(0x5555_aaaa_5555_aaaa_0123_4567_89ab_cdef);
        let zero: Vec<Vec<Block>> = (0..2u128)
            .map(|v| (0..8u128).map(|i| Block(1000 * v + 7 * i + 3)).collect())
            .collect();
        let bits = [
            vec![true; 8],
            vec![false, true, true, false, true, false, false, true],
        ];
        let active: Vec<Vec<Block>> = zero
            .iter()
            .zip(&bits)
            .map(|(ls, bs)| {
                ls.iter()
                    .zip(bs)
                    .map(|(l, b)| *l ^ delta.and_bit(*b))
                    .collect()
            })
            .collect();
        let mut g = GarbleState::new(&plan, delta, &zero, 0);
        let mut tables = Vec::new();
        g.garble(usize::MAX, &mut tables);
        let mut e = EvalState::new(&plan, &active, 0);
        assert_eq!(e.eval(&tables), tables.len());
        assert!(e.is_done());
        let out = decode(&e.output_labels(), &g.decoding_bits());
        assert_eq!(out, veil_circuit::testing::plaintext(&circuit, &bits));
        assert!(g.labels.iter().any(|l| *l != Block::ZERO));
        assert!(e.labels.iter().any(|l| *l != Block::ZERO));

        // What `Drop` runs.
        g.zeroize();
        e.zeroize();
        assert_eq!(g.delta, Block::ZERO);
        assert!(g.labels.is_empty() && g.hash_in.is_empty());
        assert!(e.labels.is_empty() && e.hash_in.is_empty());
    }
}
