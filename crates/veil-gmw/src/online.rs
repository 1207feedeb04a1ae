//! GMW's online phase as a synchronous state machine: messages out, messages in, no I/O.
//!
//! [`Online::start`] shares this party's inputs and returns the first [`Step`]; each message
//! of the peer goes to [`Online::receive`], which returns the next step, until
//! [`Step::Done`]. The arithmetic is that of the module documentation of [`crate::party`]
//! (ABY, NDSS 2015, section III-B): one exchange for the input masks, one per AND layer, and
//! the output opening. The messages are the ones [`crate::GmwParty`] sends on a channel: its
//! async driver only moves them (party 0 sending first in every exchange), so the same core
//! runs in tests with no runtime, no network and no OT, its triples from an ideal dealer
//! (`dealer`, test builds only), in the style of mpz's `*-core` crates.

use std::convert::Infallible;
use std::ops::ControlFlow;

use rand::{Rng, RngCore};
use veil_circuit::walk::{walk_indices, walk_layers, AndGates, GateVisitor, LayerVisitor};
use zeroize::Zeroizing;

use crate::bits::BitVec;
use crate::party::{lane_mask, lanes_fingerprint, GmwError, PreparedCircuit};
use crate::role::Role;
use crate::triples::TripleStore;

/// What a party does next.
#[derive(Debug)]
pub enum Step {
    /// Send this message, and pass the peer's message of the same exchange to
    /// [`Online::receive`] (party 0 sends first, party 1 receives first).
    Exchange(Vec<u8>),
    /// Send this message; the evaluation is then over for this party, which learns no output.
    SendLast(Vec<u8>),
    /// Receive the peer's last message (its output shares) and pass it to
    /// [`Online::receive`].
    ReceiveLast,
    /// The evaluation is over: the outputs, when this party learns them, in the layout of
    /// [`crate::GmwParty::run_batch`].
    Done(Option<Vec<Vec<u64>>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for the peer's input masks.
    Inputs,
    /// Waiting for the peer's `(d, e)` bits of AND layer `i`.
    Layer(usize),
    /// Waiting for the peer's output shares.
    Outputs,
    /// Finished (or failed).
    Over,
}

/// One party's evaluation of a prepared circuit on up to 64 lanes, as role `R`.
pub struct Online<'p, R: Role> {
    prepared: &'p PreparedCircuit,
    role: std::marker::PhantomData<R>,
    lanes: usize,
    mask: u64,
    stage: Stage,
    /// Every wire's share, erased when the evaluation ends.
    shares: Zeroizing<Vec<u64>>,
    /// This party's message of the exchange in progress: the header and masks, a layer's
    /// `(d, e)` bits, or the output shares.
    sent: Vec<u8>,
    /// This party's `(d, e)` bits of the AND layer in progress.
    de: BitVec,
    /// The triples of the AND layer in progress.
    tri: Zeroizing<Vec<[u64; 3]>>,
}

impl<R: Role> std::fmt::Debug for Online<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Online")
            .field("id", &R::ID)
            .field("lanes", &self.lanes)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl<'p, R: Role> Online<'p, R> {
    /// Starts an evaluation of `prepared` as party `R` on `lanes` (1 to 64) lanes:
    /// `inputs[v][i]` holds, in bit `k`, bit `i` of this party's `v`-th input value in lane
    /// `k`. Masks come from `rng`; `triples` must hold the circuit's AND gates times `lanes`.
    pub fn start(
        prepared: &'p PreparedCircuit,
        inputs: &[Vec<u64>],
        lanes: usize,
        triples: &TripleStore,
        rng: &mut impl RngCore,
    ) -> Result<(Online<'p, R>, Step), GmwError> {
        if !(1..=64).contains(&lanes) {
            return Err(GmwError::Input(format!("{lanes} lanes (1 to 64)")));
        }
        let circuit = &prepared.circuit;
        let mine: Vec<usize> = (0..prepared.owners.len())
            .filter(|&v| prepared.owners[v] == R::ID)
            .collect();
        if mine.len() != inputs.len()
            || mine
                .iter()
                .zip(inputs)
                .any(|(&v, x)| x.len() != circuit.inputs[v].len())
        {
            return Err(GmwError::Input(
                "input values do not match the circuit's widths".into(),
            ));
        }
        if triples.available() < prepared.and_gates * lanes {
            return Err(GmwError::Input(format!(
                "{} triples for {} AND gates in {lanes} lanes",
                triples.available(),
                prepared.and_gates
            )));
        }
        let mask = lane_mask(lanes);
        let mut shares = Zeroizing::new(vec![0u64; circuit.num_wires as usize]);
        let mut sent = lanes_fingerprint(prepared.prefix.clone(), prepared.reveal, lanes).to_vec();
        let mut masks = BitVec::default();
        for (&v, value) in mine.iter().zip(inputs) {
            for (&w, &x) in circuit.inputs[v].iter().zip(value) {
                let r = rng.random::<u64>() & mask;
                shares[w as usize] = (x & mask) ^ r;
                masks.push_bits(r, lanes);
            }
        }
        sent.extend_from_slice(&masks.to_bytes());
        let step = Step::Exchange(sent.clone());
        let online = Online {
            prepared,
            role: std::marker::PhantomData,
            lanes,
            mask,
            stage: Stage::Inputs,
            shares,
            sent,
            de: BitVec::default(),
            tri: Zeroizing::new(Vec::new()),
        };
        Ok((online, step))
    }

    /// Takes the peer's message of the exchange in progress (or its last message) and returns
    /// the next step. A message of the wrong size or header is an error, and ends the
    /// evaluation.
    pub fn receive(&mut self, theirs: &[u8], triples: &mut TripleStore) -> Result<Step, GmwError> {
        let stage = std::mem::replace(&mut self.stage, Stage::Over);
        match stage {
            Stage::Inputs => {
                self.take_input_masks(theirs)?;
                self.advance(0, triples)
            }
            Stage::Layer(i) => {
                self.finish_layer(i, theirs)?;
                self.free_gates(i);
                self.advance(i + 1, triples)
            }
            Stage::Outputs => Ok(Step::Done(Some(self.open(theirs)?))),
            Stage::Over => Err(GmwError::Protocol(
                "a message after the evaluation ended".into(),
            )),
        }
    }

    fn take_input_masks(&mut self, theirs: &[u8]) -> Result<(), GmwError> {
        let (circuit, lanes) = (&self.prepared.circuit, self.lanes);
        if theirs.len() < 32 || theirs[..32] != self.sent[..32] {
            return Err(GmwError::Protocol(
                "the peer runs a different circuit, input split, output choice or batch size"
                    .into(),
            ));
        }
        let their_bits: usize = self
            .prepared
            .owners
            .iter()
            .zip(&circuit.inputs)
            .filter(|(o, _)| **o != R::ID)
            .map(|(_, w)| w.len() * lanes)
            .sum();
        let peer_masks = BitVec::from_bytes(&theirs[32..], their_bits).ok_or_else(|| {
            GmwError::Protocol(format!("input shares of {} bytes", theirs.len() - 32))
        })?;
        let mut at = 0;
        for (v, o) in self.prepared.owners.iter().enumerate() {
            if *o != R::ID {
                for &w in &circuit.inputs[v] {
                    self.shares[w as usize] = peer_masks.get_bits(at, lanes).unwrap_or(0);
                    at += lanes;
                }
            }
        }
        Ok(())
    }

    /// Runs layers from `from` on: free gates locally, up to the next layer with AND gates,
    /// whose `(d, e)` message it returns; after the last layer, the output opening.
    fn advance(&mut self, from: usize, triples: &mut TripleStore) -> Result<Step, GmwError> {
        let prepared = self.prepared;
        let one = if R::HOLDS_PUBLIC { self.mask } else { 0 };
        let mut round = OpenLayer {
            free: FreeGates {
                shares: &mut self.shares,
                one,
            },
            de: &mut self.de,
            tri: &mut self.tri,
            triples,
            lanes: self.lanes,
        };
        match walk_layers(&prepared.circuit.gates, &prepared.layers, from, &mut round) {
            ControlFlow::Continue(()) => self.output_step(),
            ControlFlow::Break((_, Err(e))) => Err(e),
            ControlFlow::Break((i, Ok(()))) => {
                self.stage = Stage::Layer(i);
                Ok(Step::Exchange(self.de.to_bytes()))
            }
        }
    }

    /// Combines the peer's `(d, e)` bits of layer `i` with this party's into the AND outputs.
    fn finish_layer(&mut self, i: usize, theirs: &[u8]) -> Result<(), GmwError> {
        let lanes = self.lanes;
        let peer = BitVec::from_bytes(theirs, self.de.len()).ok_or_else(|| {
            GmwError::Protocol(format!("AND layer message of {} bytes", theirs.len()))
        })?;
        let circuit = &self.prepared.circuit;
        for (k, &g) in self.prepared.layers[i].and_gates.iter().enumerate() {
            let out = circuit.gates[g].output();
            let at = 2 * k * lanes;
            let d =
                self.de.get_bits(at, lanes).unwrap_or(0) ^ peer.get_bits(at, lanes).unwrap_or(0);
            let e = self.de.get_bits(at + lanes, lanes).unwrap_or(0)
                ^ peer.get_bits(at + lanes, lanes).unwrap_or(0);
            let [ta, tb, tc] = self.tri.get(k).copied().unwrap_or_default();
            let mut z = tc ^ (d & tb) ^ (e & ta);
            if R::HOLDS_PUBLIC {
                z ^= d & e;
            }
            self.shares[out as usize] = z;
        }
        Ok(())
    }

    fn free_gates(&mut self, i: usize) {
        let prepared = self.prepared;
        let one = if R::HOLDS_PUBLIC { self.mask } else { 0 };
        if let Some(layer) = prepared.layers.get(i) {
            let mut free = FreeGates {
                shares: &mut self.shares,
                one,
            };
            let gates = &prepared.circuit.gates;
            if let ControlFlow::Break((_, never)) =
                walk_indices(gates, &layer.free_gates, &mut free)
            {
                match never {}
            }
        }
    }

    fn output_step(&mut self) -> Result<Step, GmwError> {
        let mut mine = BitVec::default();
        for ws in &self.prepared.circuit.outputs {
            for &w in ws {
                mine.push_bits(self.shares[w as usize], self.lanes);
            }
        }
        let reveal = self.prepared.reveal;
        self.sent = mine.to_bytes();
        Ok(match (reveal.to(R::ID), reveal.to(R::PEER)) {
            (true, true) => {
                self.stage = Stage::Outputs;
                Step::Exchange(self.sent.clone())
            }
            (true, false) => {
                self.stage = Stage::Outputs;
                Step::ReceiveLast
            }
            (false, true) => Step::SendLast(self.sent.clone()),
            (false, false) => Step::Done(None),
        })
    }

    fn open(&self, theirs: &[u8]) -> Result<Vec<Vec<u64>>, GmwError> {
        let lanes = self.lanes;
        let circuit = &self.prepared.circuit;
        let bits: usize = circuit.outputs.iter().map(Vec::len).sum::<usize>() * lanes;
        let peer = BitVec::from_bytes(theirs, bits).ok_or_else(|| {
            GmwError::Protocol(format!("output shares of {} bytes", theirs.len()))
        })?;
        let mut at = 0;
        Ok(circuit
            .outputs
            .iter()
            .map(|ws| {
                ws.iter()
                    .map(|&w| {
                        let v = self.shares[w as usize] ^ peer.get_bits(at, lanes).unwrap_or(0);
                        at += lanes;
                        v
                    })
                    .collect()
            })
            .collect())
    }
}

/// The free gates on XOR shares, visited by veil-circuit's gate walk: XOR is local, INV flips
/// party 0's share and a constant is party 0's.
struct FreeGates<'a> {
    shares: &'a mut [u64],
    /// The lane mask for party 0, 0 for party 1.
    one: u64,
}

impl FreeGates<'_> {
    fn xor(&mut self, a: u32, b: u32, out: u32) {
        let s = &mut *self.shares;
        s[out as usize] = s[a as usize] ^ s[b as usize];
    }

    fn inv(&mut self, a: u32, out: u32) {
        let s = &mut *self.shares;
        s[out as usize] = s[a as usize] ^ self.one;
    }

    fn constant(&mut self, value: bool, out: u32) {
        self.shares[out as usize] = if value { self.one } else { 0 };
    }
}

impl GateVisitor for FreeGates<'_> {
    type Break = Infallible;

    fn xor(&mut self, _: usize, a: u32, b: u32, out: u32) -> ControlFlow<Infallible> {
        FreeGates::xor(self, a, b, out);
        ControlFlow::Continue(())
    }

    /// AND gates come in their layer's batch, never among the free gates.
    fn and(&mut self, _: usize, _: u32, _: u32, _: u32) -> ControlFlow<Infallible> {
        ControlFlow::Continue(())
    }

    fn inv(&mut self, _: usize, a: u32, out: u32) -> ControlFlow<Infallible> {
        FreeGates::inv(self, a, out);
        ControlFlow::Continue(())
    }

    fn constant(&mut self, _: usize, value: bool, out: u32) -> ControlFlow<Infallible> {
        FreeGates::constant(self, value, out);
        ControlFlow::Continue(())
    }
}

/// The layered walk up to the next AND layer: free gates as [`FreeGates`], then the layer's
/// `(d, e)` bits, one triple per AND gate and lane, after which the walk pauses
/// (`Break(Ok(()))`) for the exchange; `Break(Err(_))` when the triples run out.
struct OpenLayer<'a> {
    free: FreeGates<'a>,
    de: &'a mut BitVec,
    tri: &'a mut Vec<[u64; 3]>,
    triples: &'a mut TripleStore,
    lanes: usize,
}

impl GateVisitor for OpenLayer<'_> {
    type Break = Result<(), GmwError>;

    fn xor(&mut self, _: usize, a: u32, b: u32, out: u32) -> ControlFlow<Self::Break> {
        self.free.xor(a, b, out);
        ControlFlow::Continue(())
    }

    /// AND gates come in their layer's batch, never among the free gates.
    fn and(&mut self, _: usize, _: u32, _: u32, _: u32) -> ControlFlow<Self::Break> {
        ControlFlow::Continue(())
    }

    fn inv(&mut self, _: usize, a: u32, out: u32) -> ControlFlow<Self::Break> {
        self.free.inv(a, out);
        ControlFlow::Continue(())
    }

    fn constant(&mut self, _: usize, value: bool, out: u32) -> ControlFlow<Self::Break> {
        self.free.constant(value, out);
        ControlFlow::Continue(())
    }
}

impl LayerVisitor for OpenLayer<'_> {
    fn and_layer(&mut self, _: usize, ands: AndGates<'_>) -> ControlFlow<Self::Break> {
        let lanes = self.lanes;
        self.de.clear();
        self.tri.clear();
        for g in ands {
            let Some(t) = self.triples.take(lanes) else {
                return ControlFlow::Break(Err(GmwError::Input("ran out of triples".into())));
            };
            let s = &*self.free.shares;
            self.de.push_bits(s[g.a as usize] ^ t.0, lanes);
            self.de.push_bits(s[g.b as usize] ^ t.1, lanes);
            self.tri.push([t.0, t.1, t.2]);
        }
        ControlFlow::Break(Ok(()))
    }
}
