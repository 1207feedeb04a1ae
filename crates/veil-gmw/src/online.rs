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

use rand::{Rng, RngCore};
use veil_circuit::Gate;
use zeroize::Zeroizing;

use crate::bits::BitVec;
use crate::party::{lane_mask, lanes_fingerprint, GmwError, PartyId, PreparedCircuit};
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

/// One party's evaluation of a prepared circuit on up to 64 lanes.
pub struct Online<'p> {
    prepared: &'p PreparedCircuit,
    id: PartyId,
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

impl std::fmt::Debug for Online<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Online")
            .field("id", &self.id)
            .field("lanes", &self.lanes)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl<'p> Online<'p> {
    /// Starts an evaluation of `prepared` as party `id` on `lanes` (1 to 64) lanes:
    /// `inputs[v][i]` holds, in bit `k`, bit `i` of this party's `v`-th input value in lane
    /// `k`. Masks come from `rng`; `triples` must hold the circuit's AND gates times `lanes`.
    pub fn start(
        prepared: &'p PreparedCircuit,
        id: PartyId,
        inputs: &[Vec<u64>],
        lanes: usize,
        triples: &TripleStore,
        rng: &mut impl RngCore,
    ) -> Result<(Online<'p>, Step), GmwError> {
        if !(1..=64).contains(&lanes) {
            return Err(GmwError::Input(format!("{lanes} lanes (1 to 64)")));
        }
        let circuit = &prepared.circuit;
        let mine: Vec<usize> = (0..prepared.owners.len())
            .filter(|&v| prepared.owners[v] == id)
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
            id,
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
            .filter(|(o, _)| **o != self.id)
            .map(|(_, w)| w.len() * lanes)
            .sum();
        let peer_masks = BitVec::from_bytes(&theirs[32..], their_bits).ok_or_else(|| {
            GmwError::Protocol(format!("input shares of {} bytes", theirs.len() - 32))
        })?;
        let mut at = 0;
        for (v, o) in self.prepared.owners.iter().enumerate() {
            if *o != self.id {
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
        let layers = &self.prepared.layers;
        for i in from..layers.len() {
            if layers[i].and_gates.is_empty() {
                self.free_gates(i);
                continue;
            }
            let (circuit, lanes) = (&self.prepared.circuit, self.lanes);
            self.de.clear();
            self.tri.clear();
            for &g in &layers[i].and_gates {
                if let Gate::And { a, b, .. } = circuit.gates[g] {
                    let t = triples
                        .take(lanes)
                        .ok_or_else(|| GmwError::Input("ran out of triples".into()))?;
                    self.de.push_bits(self.shares[a as usize] ^ t.0, lanes);
                    self.de.push_bits(self.shares[b as usize] ^ t.1, lanes);
                    self.tri.push([t.0, t.1, t.2]);
                }
            }
            self.stage = Stage::Layer(i);
            return Ok(Step::Exchange(self.de.to_bytes()));
        }
        self.output_step()
    }

    /// Combines the peer's `(d, e)` bits of layer `i` with this party's into the AND outputs.
    fn finish_layer(&mut self, i: usize, theirs: &[u8]) -> Result<(), GmwError> {
        let lanes = self.lanes;
        let me0 = self.id == PartyId::P0;
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
            if me0 {
                z ^= d & e;
            }
            self.shares[out as usize] = z;
        }
        Ok(())
    }

    fn free_gates(&mut self, i: usize) {
        let me0 = self.id == PartyId::P0;
        let circuit = &self.prepared.circuit;
        for &g in &self.prepared.layers[i].free_gates {
            let s = &mut self.shares;
            match circuit.gates[g] {
                Gate::Xor { a, b, out } => s[out as usize] = s[a as usize] ^ s[b as usize],
                Gate::Inv { a, out } => {
                    s[out as usize] = s[a as usize] ^ if me0 { self.mask } else { 0 }
                }
                Gate::Const { value, out } => {
                    s[out as usize] = if me0 && value { self.mask } else { 0 }
                }
                Gate::And { .. } => {}
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
        let peer = if self.id == PartyId::P0 {
            PartyId::P1
        } else {
            PartyId::P0
        };
        let reveal = self.prepared.reveal;
        self.sent = mine.to_bytes();
        Ok(match (reveal.to(self.id), reveal.to(peer)) {
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
