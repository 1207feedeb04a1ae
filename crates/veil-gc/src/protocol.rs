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
//! 2. `E → G`: the query, the SHA-256 fingerprint of the circuit (of who owns which input and
//!    of who learns the output) and the number of random OTs to add to the session's pool
//!    before this evaluation, zero unless the pool holds fewer than `E`'s input bits;
//! 3. refill of the pool, when the query asked for one: a checked random-OT extension
//!    ([`veil_ot::iknp`]) with random choice bits `c_j` of `E`: `E → G` the extension columns
//!    (16 bytes per OT plus 256 to 383 padding OTs), `G → E` the check key, `E → G` the
//!    48-byte answer; `G` checks it and aborts on failure. `G` holds random keys
//!    `(k0_j, k1_j)`, `E` holds `c_j` and `k_{c_j}`. A refill extends
//!    `max(POOL_BATCH, 4m)` OTs for an evaluation of `m` input bits of `E`, so that most
//!    evaluations draw from the pool and run no extension at all;
//! 4. `E → G`: the derandomization bits `e_j = x_j ⊕ c_j` of the next `m` OTs of the pool (one
//!    bit per input bit; `c_j` is uniform and used once, so `e_j` hides `x_j`);
//! 5. `G → E`: a header (the fingerprint and the first AND index), the active labels of `G`'s
//!    input bits, and for each of `E`'s input bits `d_j = k0_j ⊕ k1_j ⊕ Δ`: the zero label of
//!    that wire is `k_{e_j}`, so `E`'s active label is `k_{c_j} ⊕ x_j·d_j` (Beaver's
//!    derandomization of precomputed OT, CRYPTO 1995, as emp-sh2pc spends its pool);
//! 6. `G → E`: the garbled tables, 32 bytes per AND gate, in frames of at most
//!    [`CHUNK_ANDS`] gates, garbled and evaluated as they stream;
//! 7. output: `G → E` the permute bits of the output wires when `E` learns the output, and
//!    `E → G` the permute bits of its active output labels when `G` learns it.
//!
//! Steps 2 and 4 leave together, so an evaluation that draws from the pool is one round trip:
//! `E`'s query, then `G`'s labels and tables.
//!
//! Roles are types ([`Garbler`], [`Evaluator`]); each keeps its OT state and its pool across
//! evaluations on one channel, so only the first pays for base OTs. A [`PreparedCircuit`] holds what depends on
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

/// AND gates per frame of garbled tables (256 KiB): small enough that the evaluator works on
/// one frame while the garbler garbles the next.
pub const CHUNK_ANDS: usize = 1 << 13;

/// Random OTs a refill of a session's pool extends at least (the pool then holds at most
/// `max(POOL_BATCH, 4m) + m` for evaluations of `m` evaluator input bits).
pub const POOL_BATCH: usize = 1 << 13;

/// Bytes of the query an evaluation opens with: the fingerprint and the refill count.
const QUERY_LEN: usize = 32 + 8;

/// OTs a refill extends for an evaluation of `m` evaluator input bits when the pool holds
/// `left`; zero when the pool suffices.
fn refill_size(left: usize, m: usize) -> usize {
    if left >= m {
        0
    } else {
        POOL_BATCH.max(m.saturating_mul(4))
    }
}

/// The garbler's random-OT keys extended ahead of evaluations, used in order, each once.
#[derive(Default)]
struct SenderPool {
    keys: Vec<[Block; 2]>,
    used: usize,
}

impl SenderPool {
    fn left(&self) -> usize {
        self.keys.len() - self.used
    }

    /// Drops the used keys (erased) and extends `n` more, checked.
    async fn refill(
        &mut self,
        ot: &mut IknpSender,
        ch: &mut Channel,
        n: usize,
    ) -> Result<(), GcError> {
        self.keys[..self.used].iter_mut().for_each(Zeroize::zeroize);
        self.keys.drain(..self.used);
        self.used = 0;
        let mut fresh = Zeroizing::new(Vec::new());
        ot.send_random_into(ch, n, &mut fresh).await?;
        self.keys.extend_from_slice(&fresh);
        Ok(())
    }
}

impl Drop for SenderPool {
    fn drop(&mut self) {
        self.keys.zeroize();
    }
}

/// The evaluator's side of the pool: the random choice bits and the keys they selected.
#[derive(Default)]
struct ReceiverPool {
    keys: Vec<Block>,
    choices: Vec<bool>,
    used: usize,
}

impl ReceiverPool {
    fn left(&self) -> usize {
        self.keys.len() - self.used
    }

    async fn refill<R: RngCore>(
        &mut self,
        ot: &mut IknpReceiver,
        ch: &mut Channel,
        rng: &mut R,
        n: usize,
    ) -> Result<(), GcError> {
        self.keys[..self.used].iter_mut().for_each(Zeroize::zeroize);
        self.keys.drain(..self.used);
        self.choices[..self.used].zeroize();
        self.choices.drain(..self.used);
        self.used = 0;
        let mut c: Zeroizing<Vec<bool>> = Zeroizing::new((0..n).map(|_| rng.random()).collect());
        let mut fresh = Zeroizing::new(Vec::new());
        ot.receive_random_into(ch, &c, &mut fresh).await?;
        self.keys.extend_from_slice(&fresh);
        self.choices.extend_from_slice(&c);
        c.zeroize();
        Ok(())
    }
}

impl Drop for ReceiverPool {
    fn drop(&mut self) {
        self.keys.zeroize();
        self.choices.zeroize();
    }
}

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
    pool: SenderPool,
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
            pool: SenderPool::default(),
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
        let evaluator_bits: usize = owners
            .iter()
            .zip(&circuit.inputs)
            .filter(|(o, _)| **o == Party::Evaluator)
            .map(|(_, w)| w.len())
            .sum();
        // The query: the same circuit, and the refill the pool needs (the rule is shared, so
        // any other count is a deviation).
        let query = ch.recv_bytes().await?;
        if query.len() != QUERY_LEN {
            return Err(GcError::Protocol(format!("query of {} bytes", query.len())));
        }
        if query[..32] != prepared.fingerprint {
            return Err(GcError::Protocol(
                "the evaluator runs a different circuit, input split or output choice".into(),
            ));
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&query[32..]);
        let refill = refill_size(self.pool.left(), evaluator_bits);
        if u64::from_le_bytes(count) != refill as u64 {
            return Err(GcError::Protocol(format!(
                "the query asks for a refill of {} OTs, the pool needs {refill}",
                u64::from_le_bytes(count)
            )));
        }
        if refill > 0 {
            // Checked: a deviating evaluator fails here, before any label or table is sent.
            self.pool.refill(ot, ch, refill).await?;
        }
        let flips = ch.recv_bytes().await?;
        if flips.len() != evaluator_bits.div_ceil(8) {
            return Err(GcError::Protocol(format!(
                "{} bytes of derandomization bits, expected {}",
                flips.len(),
                evaluator_bits.div_ceil(8)
            )));
        }
        let keys = &self.pool.keys[self.pool.used..self.pool.used + evaluator_bits];
        self.pool.used += evaluator_bits;

        // A fresh offset for every evaluation: nothing an evaluator learns about one
        // evaluation's `Δ` carries over to the next.
        self.delta = Block(self.rng.random::<u128>() | 1);
        let delta = self.delta;
        // Zero labels of the garbler's inputs are fresh; the evaluator's are its random-OT
        // keys, the one that its derandomization bit names.
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&prepared.fingerprint);
        header.extend_from_slice(&self.next_and.to_le_bytes());
        let mut zero: Zeroizing<Vec<Vec<Block>>> = Zeroizing::new(Vec::with_capacity(owners.len()));
        let mut active = Vec::new();
        let mut mine = inputs.iter();
        let mut k = 0usize;
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
                    let n = circuit.inputs[v].len();
                    zero.push(
                        (k..k + n)
                            .map(|j| keys[j][usize::from((flips[j / 8] >> (j % 8)) & 1)])
                            .collect(),
                    );
                    k += n;
                }
            }
        }
        ch.send_bytes(&header).await?;
        let mut bytes = Vec::new();
        blocks_to_bytes(&active, &mut bytes);
        active.zeroize();
        ch.send_bytes(&bytes).await?;
        let mut offsets: Zeroizing<Vec<Block>> =
            Zeroizing::new(keys.iter().map(|[k0, k1]| *k0 ^ *k1 ^ delta).collect());
        bytes.clear();
        blocks_to_bytes(&offsets, &mut bytes);
        offsets.zeroize();
        ch.send_bytes(&bytes).await?;
        bytes.zeroize();

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
                // The evaluator starts on this frame while the next is garbled.
                ch.flush().await?;
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
    pool: ReceiverPool,
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
            pool: ReceiverPool::default(),
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
        let choices: Zeroizing<Vec<bool>> =
            Zeroizing::new(inputs.iter().flatten().copied().collect());
        let m = choices.len();
        let refill = refill_size(self.pool.left(), m);
        let mut query = Vec::with_capacity(QUERY_LEN);
        query.extend_from_slice(&prepared.fingerprint);
        query.extend_from_slice(&(refill as u64).to_le_bytes());
        ch.send_bytes(&query).await?;
        if refill > 0 {
            self.pool.refill(ot, ch, &mut self.rng, refill).await?;
        }
        let start = self.pool.used;
        let flips: Zeroizing<Vec<bool>> = Zeroizing::new(
            choices
                .iter()
                .zip(&self.pool.choices[start..start + m])
                .map(|(x, c)| x ^ c)
                .collect(),
        );
        let keys = &self.pool.keys[start..start + m];
        self.pool.used += m;
        ch.send_bytes(&pack_bits(&flips)).await?;
        ch.flush().await?;

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

        let offset_bytes = Zeroizing::new(ch.recv_bytes().await?);
        let offsets = blocks_from_bytes(&offset_bytes)
            .map(Zeroizing::new)
            .filter(|d| d.len() == m)
            .ok_or_else(|| {
                GcError::Protocol(format!(
                    "{} bytes of label offsets, expected {}",
                    offset_bytes.len(),
                    16 * m
                ))
            })?;
        let mine: Zeroizing<Vec<Block>> = Zeroizing::new(
            keys.iter()
                .zip(offsets.iter())
                .zip(choices.iter())
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
