//! The two-party Yao protocol (Yao 1986; Lindell and Pinkas, "A proof of security of Yao's
//! protocol for two-party computation", J. Cryptology 2009) over a [`Channel`], with
//! half-gates garbling ([`crate::garble`]) and IKNP OT with the KOS consistency check.
//!
//! Security: the garbler is semi-honest (it could garble another circuit); the evaluator may
//! be malicious. A deviating evaluator learns nothing beyond the output of the circuit on some
//! input of its choice: its input labels come from random OTs that are checked against a
//! receiver that deviates (Keller, Orsini and Scholl, CRYPTO 2015), under an OT correlation
//! that has nothing to do with the garbling, and every evaluation is garbled under a fresh
//! free-XOR offset `Δ`. A failed check ends the evaluation before any garbled table is sent.
//!
//! Message flow of one evaluation (`G` garbler, `E` evaluator):
//!
//! 1. first evaluation of a session only: OT setup, 128 base OTs with `G` as the extension
//!    sender under a random correlation of its own (not a garbling offset);
//! 2. `G → E`: a header (SHA-256 fingerprint of the circuit, of who owns which input and of who
//!    learns the output; the first AND index) and the active labels of `G`'s input bits;
//! 3. checked random OT for `E`'s input bits ([`veil_ot::iknp`]): `E → G` the extension
//!    columns (16 bytes per bit plus 256 to 383 padding OTs), `G → E` the check key, `E → G`
//!    the 48-byte answer; `G` checks it and aborts on failure. `G` holds random
//!    keys `(k0_j, k1_j)`, `E` holds `k_{x_j}`;
//! 4. `G → E`: for each of `E`'s input bits `d_j = k0_j ⊕ k1_j ⊕ Δ`. The zero label of that
//!    wire is `k0_j`, so `E`'s active label is `k_{x_j} ⊕ x_j·d_j`;
//! 5. `G → E`: the garbled tables, 32 bytes per AND gate, in frames of at most
//!    [`CHUNK_ANDS`] gates, garbled and evaluated as they stream;
//! 6. output: `G → E` the permute bits of the output wires when `E` learns the output, and
//!    `E → G` the permute bits of its active output labels when `G` learns it.
//!
//! Roles are types ([`Garbler`], [`Evaluator`]); each keeps its OT state across evaluations on
//! one channel, so only the first pays for base OTs. A [`PreparedCircuit`] holds what depends on
//! the circuit alone (the gates ordered by AND layer, the fingerprint), made once and used by
//! every evaluation of a session. Every message from the peer is checked for its exact size.

use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use veil_circuit::{Circuit, Gate};
use veil_net::{Channel, NetError};
use veil_ot::block::{blocks_from_bytes, blocks_to_bytes, pack_bits};
use veil_ot::{Block, IknpReceiver, IknpSender, OtError};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::garble::{decode, EvalState, GarbleState, Plan};

/// AND gates per frame of garbled tables (2 MiB).
pub const CHUNK_ANDS: usize = 1 << 16;

/// Who supplies an input value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// The party that garbles.
    Garbler,
    /// The party that evaluates.
    Evaluator,
}

/// Who learns the outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    /// Only the evaluator.
    Evaluator,
    /// Only the garbler.
    Garbler,
    /// Both.
    Both,
}

impl Reveal {
    fn to_garbler(self) -> bool {
        matches!(self, Reveal::Garbler | Reveal::Both)
    }
    fn to_evaluator(self) -> bool {
        matches!(self, Reveal::Evaluator | Reveal::Both)
    }
}

/// Why a garbled-circuit evaluation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// The channel failed.
    #[error("channel: {0}")]
    Net(#[from] NetError),
    /// Oblivious transfer failed.
    #[error("oblivious transfer: {0}")]
    Ot(#[from] OtError),
    /// The peer sent something this protocol does not allow.
    #[error("protocol violation by peer: {0}")]
    Protocol(String),
    /// The caller's circuit or inputs do not fit.
    #[error("invalid input: {0}")]
    Input(String),
}

/// SHA-256 over the circuit's structure, the input owners and the reveal choice.
pub fn fingerprint(circuit: &Circuit, owners: &[Party], reveal: Reveal) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"veil/yao/v1");
    circuit.canonical_bytes(|b| h.update(b));
    for o in owners {
        h.update([u8::from(*o == Party::Evaluator)]);
    }
    h.update([reveal as u8]);
    h.finalize().into()
}

/// A circuit made ready once for every evaluation of a session: its gates ordered by AND layer,
/// the owner of each input value, who learns the outputs, and the fingerprint the two roles
/// compare. Garbler and evaluator each prepare their own from the same public description.
pub struct PreparedCircuit {
    plan: Plan,
    owners: Vec<Party>,
    reveal: Reveal,
    fingerprint: [u8; 32],
    and_gates: u64,
}

impl PreparedCircuit {
    /// Prepares `circuit` with `owners` naming who supplies each input value and `reveal` who
    /// learns the outputs.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] if `owners` does not name one owner per input value or the circuit
    /// has too many AND gates to index.
    pub fn new(
        circuit: &Circuit,
        owners: &[Party],
        reveal: Reveal,
    ) -> Result<PreparedCircuit, GcError> {
        if owners.len() != circuit.inputs.len() {
            return Err(GcError::Input(format!(
                "{} input owners for a circuit with {} input values",
                owners.len(),
                circuit.inputs.len()
            )));
        }
        let and_gates = circuit
            .gates
            .iter()
            .filter(|g| matches!(g, Gate::And { .. }))
            .count();
        if and_gates > usize::MAX / 64 {
            return Err(GcError::Input("circuit too large".into()));
        }
        Ok(PreparedCircuit {
            plan: Plan::new(circuit),
            owners: owners.to_vec(),
            reveal,
            fingerprint: fingerprint(circuit, owners, reveal),
            and_gates: and_gates as u64,
        })
    }

    /// The circuit, its gates in evaluation order (inputs and outputs as given).
    pub fn circuit(&self) -> &Circuit {
        self.plan.circuit()
    }

    /// The fingerprint sent in each evaluation's header ([`fingerprint`]).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
}

fn check_inputs(
    prepared: &PreparedCircuit,
    me: Party,
    inputs: &[Vec<bool>],
) -> Result<(), GcError> {
    let (circuit, owners) = (prepared.circuit(), &prepared.owners);
    let mine: Vec<usize> = (0..owners.len()).filter(|&v| owners[v] == me).collect();
    if mine.len() != inputs.len() {
        return Err(GcError::Input(format!(
            "{} input values given, {} expected",
            inputs.len(),
            mine.len()
        )));
    }
    for (k, &v) in mine.iter().enumerate() {
        if inputs[k].len() != circuit.inputs[v].len() {
            return Err(GcError::Input(format!(
                "input value {v} has {} bits, the circuit expects {}",
                inputs[k].len(),
                circuit.inputs[v].len()
            )));
        }
    }
    Ok(())
}

const HEADER_LEN: usize = 32 + 8;

/// Splits packed bits (bit `k` at bit `k % 8` of byte `k / 8`) into vectors shaped like
/// `shape`; the caller has checked that there are enough bytes.
fn unpack_like<T>(bytes: &[u8], shape: &[Vec<T>]) -> Vec<Vec<bool>> {
    let mut k = 0;
    shape
        .iter()
        .map(|v| {
            v.iter()
                .map(|_| {
                    let bit = (bytes[k / 8] >> (k % 8)) & 1 == 1;
                    k += 1;
                    bit
                })
                .collect()
        })
        .collect()
}

/// The garbler's role: its OT state and the free-XOR offset `Δ` of the evaluation under way,
/// drawn anew for each evaluation. On drop `Δ` is zeroized, the generator (whose key derived
/// `Δ` and every label) overwritten, and the OT state zeroizes itself.
pub struct Garbler {
    delta: Block,
    rng: ChaCha20Rng,
    ot: Option<IknpSender>,
    next_and: u64,
}

impl Drop for Garbler {
    fn drop(&mut self) {
        self.delta.zeroize();
        veil_ot::erase_rng(&mut self.rng);
    }
}

impl ZeroizeOnDrop for Garbler {}

impl Garbler {
    /// A garbler drawing its randomness from `rng` (use [`veil_ot::secure_rng`]).
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Garbler {
        let mut rng = ChaCha20Rng::from_rng(rng);
        let delta = Block(rng.random::<u128>() | 1);
        Garbler {
            delta,
            rng,
            ot: None,
            next_and: 0,
        }
    }

    /// Garbles `circuit` and runs it with the evaluator on `ch`. `owners` names who supplies
    /// each input value; `inputs` holds the garbler's own values, in circuit order. Returns the
    /// outputs when `reveal` includes the garbler. A session that evaluates one circuit many
    /// times prepares it once and calls [`Garbler::run_prepared`].
    pub async fn run(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        owners: &[Party],
        inputs: &[Vec<bool>],
        reveal: Reveal,
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        let prepared = PreparedCircuit::new(circuit, owners, reveal)?;
        self.run_prepared(ch, &prepared, inputs).await
    }

    /// [`Garbler::run`] on a circuit prepared beforehand.
    pub async fn run_prepared(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        check_inputs(prepared, Party::Garbler, inputs)?;
        let (circuit, owners, reveal) = (prepared.circuit(), &prepared.owners, prepared.reveal);
        // The OT extension, set up on the first evaluation of the session.
        let ot = match self.ot.take() {
            Some(ot) => ot,
            None => IknpSender::setup(ch, &mut self.rng)
                .await?
                .with_kos_check(&mut self.rng),
        };
        let ot = self.ot.insert(ot);
        // A fresh offset for every evaluation: nothing an evaluator learns about one
        // evaluation's `Δ` carries over to the next.
        self.delta = Block(self.rng.random::<u128>() | 1);
        let delta = self.delta;
        // Zero labels of the garbler's inputs are fresh; the evaluator's are its random-OT keys.
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&prepared.fingerprint);
        header.extend_from_slice(&self.next_and.to_le_bytes());
        let mut zero: Zeroizing<Vec<Vec<Block>>> = Zeroizing::new(Vec::with_capacity(owners.len()));
        let mut active = Vec::new();
        let mut mine = inputs.iter();
        let mut evaluator_bits = 0usize;
        for (v, owner) in owners.iter().enumerate() {
            match owner {
                Party::Garbler => {
                    let bits = mine
                        .next()
                        .ok_or_else(|| GcError::Input("missing input".into()))?;
                    let ls: Vec<Block> =
                        bits.iter().map(|_| Block::random(&mut self.rng)).collect();
                    active.extend(ls.iter().zip(bits).map(|(l, b)| *l ^ delta.and_bit(*b)));
                    zero.push(ls);
                }
                Party::Evaluator => {
                    evaluator_bits += circuit.inputs[v].len();
                    zero.push(Vec::new());
                }
            }
        }
        ch.send_bytes(&header).await?;
        let mut bytes = Vec::new();
        blocks_to_bytes(&active, &mut bytes);
        active.zeroize();
        ch.send_bytes(&bytes).await?;
        ch.flush().await?;

        // Checked random OT: a deviating evaluator fails here, before any table is sent.
        let keys = Zeroizing::new(ot.send_random(ch, evaluator_bits).await?);
        let mut offsets: Zeroizing<Vec<Block>> =
            Zeroizing::new(keys.iter().map(|[k0, k1]| *k0 ^ *k1 ^ delta).collect());
        bytes.clear();
        blocks_to_bytes(&offsets, &mut bytes);
        offsets.zeroize();
        ch.send_bytes(&bytes).await?;
        bytes.zeroize();
        let mut k0 = keys.iter().map(|[k0, _]| *k0);
        for (v, owner) in owners.iter().enumerate() {
            if *owner == Party::Evaluator {
                zero[v] = (&mut k0).take(circuit.inputs[v].len()).collect();
            }
        }

        let mut state = GarbleState::new(&prepared.plan, delta, &zero, self.next_and);
        zero.iter_mut().for_each(|z| z.zeroize());
        let mut tables = Vec::with_capacity(2 * CHUNK_ANDS);
        while !state.is_done() {
            tables.clear();
            state.garble(CHUNK_ANDS, &mut tables);
            if !tables.is_empty() {
                bytes.clear();
                blocks_to_bytes(&tables, &mut bytes);
                ch.send_bytes(&bytes).await?;
            }
        }
        self.next_and = state.next_and_index();
        let decoding = state.decoding_bits();
        let flat: Vec<bool> = decoding.iter().flatten().copied().collect();
        if reveal.to_evaluator() {
            ch.send_bytes(&pack_bits(&flat)).await?;
        }
        ch.flush().await?;
        if reveal.to_garbler() {
            let got = ch.recv_bytes().await?;
            if got.len() != flat.len().div_ceil(8) {
                return Err(GcError::Protocol(format!(
                    "output bits: {} bytes, expected {}",
                    got.len(),
                    flat.len().div_ceil(8)
                )));
            }
            let out = unpack_like(&got, &decoding)
                .iter()
                .zip(&decoding)
                .map(|(bits, ds)| bits.iter().zip(ds).map(|(b, d)| b ^ d).collect())
                .collect();
            return Ok(Some(out));
        }
        Ok(None)
    }
}

/// The evaluator's role: its OT state. On drop the generator is overwritten and the OT state
/// zeroizes itself.
pub struct Evaluator {
    rng: ChaCha20Rng,
    ot: Option<IknpReceiver>,
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        veil_ot::erase_rng(&mut self.rng);
    }
}

impl ZeroizeOnDrop for Evaluator {}

impl Evaluator {
    /// An evaluator drawing its randomness from `rng` (use [`veil_ot::secure_rng`]).
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Evaluator {
        Evaluator {
            rng: ChaCha20Rng::from_rng(rng),
            ot: None,
        }
    }

    /// Evaluates the circuit the garbler on `ch` garbles; arguments as [`Garbler::run`], with
    /// `inputs` the evaluator's own values. Returns the outputs when `reveal` includes the
    /// evaluator.
    pub async fn run(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        owners: &[Party],
        inputs: &[Vec<bool>],
        reveal: Reveal,
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        let prepared = PreparedCircuit::new(circuit, owners, reveal)?;
        self.run_prepared(ch, &prepared, inputs).await
    }

    /// [`Evaluator::run`] on a circuit prepared beforehand.
    pub async fn run_prepared(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        check_inputs(prepared, Party::Evaluator, inputs)?;
        let (circuit, owners, reveal) = (prepared.circuit(), &prepared.owners, prepared.reveal);
        // The OT extension, set up on the first evaluation of the session.
        let ot = match self.ot.take() {
            Some(ot) => ot,
            None => IknpReceiver::setup(ch, &mut self.rng)
                .await?
                .with_kos_check(&mut self.rng),
        };
        let ot = self.ot.insert(ot);
        let header = ch.recv_bytes().await?;
        if header.len() != HEADER_LEN {
            return Err(GcError::Protocol(format!(
                "header of {} bytes",
                header.len()
            )));
        }
        if header[..32] != prepared.fingerprint {
            return Err(GcError::Protocol(
                "the garbler runs a different circuit, input split or output choice".into(),
            ));
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&header[32..]);
        let first_and = u64::from_le_bytes(first);
        // The peer picks the first index; the AND-gate counter must not overflow past it.
        let ands = prepared.and_gates;
        if first_and.checked_add(ands).is_none() {
            return Err(GcError::Protocol(format!(
                "first AND index {first_and} leaves no room for {ands} AND gates"
            )));
        }

        let garbler_bits: usize = owners
            .iter()
            .zip(&circuit.inputs)
            .filter(|(o, _)| **o == Party::Garbler)
            .map(|(_, w)| w.len())
            .sum();
        let label_bytes = Zeroizing::new(ch.recv_bytes().await?);
        let garbler_labels = blocks_from_bytes(&label_bytes)
            .map(Zeroizing::new)
            .filter(|l| l.len() == garbler_bits)
            .ok_or_else(|| {
                GcError::Protocol(format!(
                    "{} bytes of input labels, expected {}",
                    label_bytes.len(),
                    16 * garbler_bits
                ))
            })?;

        let choices: Vec<bool> = inputs.iter().flatten().copied().collect();
        let keys = Zeroizing::new(ot.receive_random(ch, &choices).await?);
        let offset_bytes = Zeroizing::new(ch.recv_bytes().await?);
        let offsets = blocks_from_bytes(&offset_bytes)
            .map(Zeroizing::new)
            .filter(|d| d.len() == choices.len())
            .ok_or_else(|| {
                GcError::Protocol(format!(
                    "{} bytes of label offsets, expected {}",
                    offset_bytes.len(),
                    16 * choices.len()
                ))
            })?;
        let mine: Zeroizing<Vec<Block>> = Zeroizing::new(
            keys.iter()
                .zip(offsets.iter())
                .zip(&choices)
                .map(|((k, d), &x)| *k ^ d.and_bit(x))
                .collect(),
        );

        let mut g_it = garbler_labels.iter().copied();
        let mut e_it = mine.iter().copied();
        let active: Zeroizing<Vec<Vec<Block>>> = owners
            .iter()
            .zip(&circuit.inputs)
            .map(|(o, w)| match o {
                Party::Garbler => (&mut g_it).take(w.len()).collect(),
                Party::Evaluator => (&mut e_it).take(w.len()).collect(),
            })
            .collect::<Vec<_>>()
            .into();

        let mut state = EvalState::new(&prepared.plan, &active, first_and);
        state.eval(&[]);
        let mut buf = Vec::new();
        while !state.is_done() {
            ch.recv_bytes_into(&mut buf).await?;
            let tables = blocks_from_bytes(&buf)
                .filter(|t| !t.is_empty() && t.len() <= 2 * CHUNK_ANDS && t.len() % 2 == 0)
                .ok_or_else(|| {
                    GcError::Protocol(format!("garbled-table frame of {} bytes", buf.len()))
                })?;
            let used = state.eval(&tables);
            if used != tables.len() {
                return Err(GcError::Protocol(
                    "more garbled tables than AND gates".into(),
                ));
            }
        }
        let labels = Zeroizing::new(state.output_labels());
        let n_out: usize = labels.iter().map(Vec::len).sum();
        let mut result = None;
        if reveal.to_evaluator() {
            let d = ch.recv_bytes().await?;
            if d.len() != n_out.div_ceil(8) {
                return Err(GcError::Protocol(format!(
                    "decoding bits: {} bytes",
                    d.len()
                )));
            }
            let decoding = unpack_like(&d, &labels);
            result = Some(decode(&labels, &decoding));
        }
        if reveal.to_garbler() {
            let lsbs: Vec<bool> = labels.iter().flatten().map(|l| l.lsb()).collect();
            ch.send_bytes(&pack_bits(&lsbs)).await?;
            ch.flush().await?;
        }
        Ok(result)
    }
}
