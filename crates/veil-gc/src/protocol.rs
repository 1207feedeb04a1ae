//! The two-party Yao protocol (Yao 1986; Lindell and Pinkas, "A proof of security of Yao's
//! protocol for two-party computation", J. Cryptology 2009) over a [`Channel`], with
//! half-gates garbling ([`crate::garble`]) and SoftSpokenOT extension (`veil_ot`, IKNP's
//! correlation at 31 bits per random-choice OT) with the KOS consistency check.
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
//!    of who learns the output), the number of random OTs to add to the session's pool
//!    before this evaluation (zero unless the pool holds fewer than `E`'s input bits), and the
//!    mode: evaluate now, garble ahead, or spend an evaluation garbled ahead;
//! 3. refill of the pool, when the query asked for one: a checked random-OT extension
//!    ([`veil_ot::extension`]) with random choice bits `c_j` of `E`: `E → G` the extension columns
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
//! # Garbling ahead
//!
//! The offline/online split of garbled circuits: an evaluation can be garbled before `E`'s
//! input exists ([`Garbler::garble_ahead`], [`Evaluator::receive_ahead`]), so that the query
//! which later spends it costs one round trip of `m` bits and `16m` bytes and the evaluation
//! of tables already at hand. Ahead: steps 2 and 3 as above; `G` sets aside the next `m`
//! OTs of the pool, draws a fresh `Δ` and fresh zero labels `L0_j` of `E`'s input wires, and
//! sends step 5 with `d_j = k0_j ⊕ k1_j ⊕ Δ` and step 6; `E` keeps the tables. Online:
//! `E → G` the query (mode "spend") and `e_j = x_j ⊕ c_j`; `G → E` `a_j = L0_j ⊕ k_{e_j}`,
//! then step 7. `E`'s active label is `k_{c_j} ⊕ a_j ⊕ x_j·d_j`, which is `L0_j` when
//! `x_j = 0` and `L0_j ⊕ Δ` when it is 1; the other key `k_{1⊕c_j}` stays unknown to `E`, so
//! it learns one label per wire. `E` chooses its input after it has seen the tables, which
//! asks for *adaptive* security of the garbling (Bellare, Hoang and Rogaway, ASIACRYPT 2012):
//! the decoding bits are therefore withheld until the online phase, so that the online
//! message is at least as long as the output (the bound of Applebaum, Ishai, Kushilevitz and
//! Waters, CRYPTO 2013) and a simulator that learns the output only then can still make the
//! tables decode to it. The argument holds with the gate hash modelled as a random oracle, as
//! in the offline/online garbling protocols of the field; for half-gates under fixed-key AES
//! no standard-model proof of adaptive security is known, and a user who wants none of this
//! assumption evaluates on the spot. At most [`MAX_AHEAD`] evaluations are held ahead; each is
//! spent once, in order, and `G` refuses a query that spends one it does not hold.
//!
//! # Garbling ahead with the garbler's inputs deferred
//!
//! When the evaluator's inputs exist before the garbler's (a protocol whose garbler learns its
//! input only online, as the mixed protocol's server learns its share of a layer's output),
//! [`Garbler::garble_deferred`] and [`Evaluator::receive_deferred`] run the offline phase:
//! steps 2 to 6 as on the spot (mode "deferred"), except that step 5 carries no label of the
//! garbler's inputs; the garbler keeps `Δ`, the zero labels of its input wires and the
//! decoding bits, the evaluator its active input labels and the tables. Online
//! ([`Garbler::run_deferred`], [`Evaluator::run_deferred`]) no query precedes: `G → E` the
//! active labels of the garbler's inputs, 16 bytes per bit, with the decoding bits when `E`
//! learns the output, then step 7's answer when `G` learns it. At most [`MAX_DEFERRED`] are
//! held. `E`'s inputs are bound before it sees any table, so this needs only the static
//! security of the garbling for them; the garbler's inputs arrive after the tables, which the
//! random-oracle argument above covers as it covers `E`'s inputs in garbling ahead.
//!
//! Roles are types ([`Garbler`], [`Evaluator`]); each keeps its OT state and its pool across
//! evaluations on one channel, so only the first pays for base OTs. A [`PreparedCircuit`] holds what depends on
//! the circuit alone (the gates ordered by AND layer, the fingerprint), made once and used by
//! every evaluation of a session. Every message from the peer is checked for its exact size.

use std::collections::VecDeque;

use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use veil_circuit::{Circuit, Gate};
use veil_net::{Channel, NetError};
use veil_ot::block::{blocks_from_bytes, blocks_to_bytes, pack_bits};
use veil_ot::{Block, OtError, OtReceiver, OtSender};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::garble::{decode, EvalState, GarbleState, Plan};

/// AND gates per frame of garbled tables (256 KiB): small enough that the evaluator works on
/// one frame while the garbler garbles the next.
pub const CHUNK_ANDS: usize = 1 << 13;

/// Random OTs a refill of a session's pool extends at least (the pool then holds at most
/// `max(POOL_BATCH, 4m) + m` for evaluations of `m` evaluator input bits).
pub const POOL_BATCH: usize = 1 << 13;

/// Bytes of the query an evaluation opens with: the fingerprint, the refill count and the
/// mode.
const QUERY_LEN: usize = 32 + 8 + 1;

/// Most evaluations a session holds garbled ahead of the queries that spend them
/// ([`Garbler::garble_ahead`]): the evaluator keeps each one's tables (32 bytes per AND gate)
/// until then, the garbler a few labels per input bit of the evaluator.
pub const MAX_AHEAD: usize = 16;

/// Most evaluations a session holds garbled with the garbler's inputs deferred
/// ([`Garbler::garble_deferred`]); a protocol that prepares several circuits per query (one
/// per layer of a model) holds several per query.
pub const MAX_DEFERRED: usize = 256;

/// What an evaluator's query asks for (its last byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Garble now and evaluate as the tables stream.
    Now = 0,
    /// Garble one evaluation ahead, before the evaluator's input exists.
    Ahead = 1,
    /// Evaluate the oldest evaluation garbled ahead.
    Online = 2,
    /// Garble one evaluation ahead with the evaluator's inputs bound now and the garbler's
    /// deferred to the online phase.
    Deferred = 3,
}

impl Mode {
    fn from_byte(b: u8) -> Result<Mode, GcError> {
        match b {
            0 => Ok(Mode::Now),
            1 => Ok(Mode::Ahead),
            2 => Ok(Mode::Online),
            3 => Ok(Mode::Deferred),
            _ => Err(GcError::Protocol(format!("unknown query mode {b}"))),
        }
    }
}

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
        ot: &mut OtSender,
        ch: &mut Channel,
        n: usize,
    ) -> Result<(), GcError> {
        self.keys[..self.used].iter_mut().for_each(Zeroize::zeroize);
        self.keys.drain(..self.used);
        self.used = 0;
        let mut fresh = Zeroizing::new(Vec::new());
        // The evaluator's choice bits are random: SoftSpokenOT draws them from its first
        // group, which then sends nothing.
        ot.send_random_choices_into(ch, n, &mut fresh).await?;
        self.keys.extend_from_slice(&fresh);
        Ok(())
    }

    /// The next `m` key pairs, each used once (the refill rule keeps at least `m` in the pool
    /// when a query comes).
    fn take(&mut self, m: usize) -> Zeroizing<Vec<[Block; 2]>> {
        let keys = Zeroizing::new(self.keys[self.used..self.used + m].to_vec());
        self.used += m;
        keys
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

    async fn refill<R: RngCore + CryptoRng>(
        &mut self,
        ot: &mut OtReceiver,
        ch: &mut Channel,
        rng: &mut R,
        n: usize,
    ) -> Result<(), GcError> {
        self.keys[..self.used].iter_mut().for_each(Zeroize::zeroize);
        self.keys.drain(..self.used);
        self.choices[..self.used].zeroize();
        self.choices.drain(..self.used);
        self.used = 0;
        let mut c: Zeroizing<Vec<bool>> = Zeroizing::new(Vec::new());
        let mut fresh = Zeroizing::new(Vec::new());
        ot.receive_random_choices_into(ch, n, rng, &mut c, &mut fresh)
            .await?;
        self.keys.extend_from_slice(&fresh);
        self.choices.extend_from_slice(&c);
        c.zeroize();
        Ok(())
    }

    /// The next `m` keys and their choice bits, each used once.
    fn take(&mut self, m: usize) -> (Zeroizing<Vec<Block>>, Zeroizing<Vec<bool>>) {
        let range = self.used..self.used + m;
        self.used += m;
        (
            Zeroizing::new(self.keys[range.clone()].to_vec()),
            Zeroizing::new(self.choices[range].to_vec()),
        )
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
    garbler_bits: usize,
    evaluator_bits: usize,
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
        let bits_of = |who: Party| -> usize {
            owners
                .iter()
                .zip(&circuit.inputs)
                .filter(|(o, _)| **o == who)
                .map(|(_, w)| w.len())
                .sum()
        };
        Ok(PreparedCircuit {
            garbler_bits: bits_of(Party::Garbler),
            evaluator_bits: bits_of(Party::Evaluator),
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

    /// AND gates of the circuit: an evaluation's tables take 32 bytes each.
    pub fn and_gates(&self) -> u64 {
        self.and_gates
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

/// Bit `j` of packed bits (bit `k` at bit `k % 8` of byte `k / 8`).
fn bit(bytes: &[u8], j: usize) -> bool {
    (bytes[j / 8] >> (j % 8)) & 1 == 1
}

/// One evaluation garbled ahead, as the garbler keeps it until the query that spends it: the
/// zero labels of the evaluator's input wires, the pool keys set aside for them, and the
/// decoding bits, withheld until then. Erased when spent or dropped.
struct GarbledAhead {
    fingerprint: [u8; 32],
    zero: Vec<Block>,
    keys: Vec<[Block; 2]>,
    decoding: Vec<Vec<bool>>,
}

impl Drop for GarbledAhead {
    fn drop(&mut self) {
        self.zero.zeroize();
        self.keys.zeroize();
    }
}

/// One evaluation garbled ahead, as the evaluator keeps it: the garbled tables, the labels of
/// the garbler's inputs, the label offsets of its own input wires and the pool OTs set aside
/// for them. The secret parts are erased when spent or dropped.
struct ReceivedAhead {
    fingerprint: [u8; 32],
    first_and: u64,
    garbler_labels: Vec<Block>,
    offsets: Vec<Block>,
    keys: Vec<Block>,
    choices: Vec<bool>,
    tables: Vec<Block>,
}

impl Drop for ReceivedAhead {
    fn drop(&mut self) {
        self.garbler_labels.zeroize();
        self.offsets.zeroize();
        self.keys.zeroize();
        self.choices.zeroize();
    }
}

/// One evaluation garbled with the garbler's inputs deferred, as the garbler keeps it: its
/// offset `Δ`, the zero labels of its own input wires and the decoding bits. Erased when
/// spent or dropped.
struct GarbledDeferred {
    fingerprint: [u8; 32],
    delta: Block,
    zero: Vec<Block>,
    decoding: Vec<Vec<bool>>,
}

impl Drop for GarbledDeferred {
    fn drop(&mut self) {
        self.delta.zeroize();
        self.zero.zeroize();
    }
}

/// One evaluation garbled with the garbler's inputs deferred, as the evaluator keeps it: the
/// garbled tables and the active labels of its own inputs. Erased when spent or dropped.
struct ReceivedDeferred {
    fingerprint: [u8; 32],
    first_and: u64,
    labels: Vec<Block>,
    tables: Vec<Block>,
}

impl Drop for ReceivedDeferred {
    fn drop(&mut self) {
        self.labels.zeroize();
    }
}

/// The garbler's role: its OT state, the session's pool of random OTs, the evaluations garbled
/// ahead, and the free-XOR offset `Δ` of the evaluation under way, drawn anew for each
/// evaluation. On drop `Δ` is zeroized, the generator (whose key derived `Δ` and every label)
/// overwritten, and the OT state, the pool and the evaluations garbled ahead erase themselves.
pub struct Garbler {
    delta: Block,
    rng: ChaCha20Rng,
    ot: Option<OtSender>,
    pool: SenderPool,
    ahead: VecDeque<GarbledAhead>,
    deferred: VecDeque<GarbledDeferred>,
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
            ahead: VecDeque::new(),
            deferred: VecDeque::new(),
            next_and: 0,
        }
    }

    /// Evaluations garbled ahead and not yet spent.
    pub fn ahead(&self) -> usize {
        self.ahead.len()
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

    /// [`Garbler::run`] on a circuit prepared beforehand. When the evaluator spends an
    /// evaluation garbled ahead ([`Garbler::garble_ahead`]), that one runs, on the inputs it
    /// was garbled with, and `inputs` is only checked for its shape.
    pub async fn run_prepared(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        check_inputs(prepared, Party::Garbler, inputs)?;
        match self.open(ch, prepared).await? {
            Mode::Ahead | Mode::Deferred => Err(GcError::Protocol(
                "the evaluator asks to garble ahead where an evaluation was expected".into(),
            )),
            Mode::Online => self.online(ch, prepared).await,
            Mode::Now => self.now(ch, prepared, inputs).await,
        }
    }

    /// The offline phase of one evaluation, before the evaluator's input exists (the evaluator
    /// calls [`Evaluator::receive_ahead`]): refills the pool if needed, sets aside one pool OT
    /// per input bit of the evaluator, garbles under a fresh `Δ` with the garbler's `inputs`,
    /// and sends the labels of those inputs, the evaluator's label offsets and the tables. The
    /// next query of this circuit spends it: one round trip of 16 bytes per input bit of the
    /// evaluator, and no garbling.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when [`MAX_AHEAD`] evaluations are already garbled ahead or the
    /// inputs do not fit; [`GcError::Protocol`] when the evaluator's query does not ask for
    /// this; channel and OT errors.
    pub async fn garble_ahead(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<(), GcError> {
        check_inputs(prepared, Party::Garbler, inputs)?;
        if self.ahead.len() >= MAX_AHEAD {
            return Err(GcError::Input(format!(
                "{MAX_AHEAD} evaluations are already garbled ahead"
            )));
        }
        if self.open(ch, prepared).await? != Mode::Ahead {
            return Err(GcError::Protocol(
                "the evaluator asks for an evaluation where garbling ahead was expected".into(),
            ));
        }
        let m = prepared.evaluator_bits;
        let keys = self.pool.take(m);
        self.delta = Block(self.rng.random::<u128>() | 1);
        // The zero labels of the evaluator's wires are fresh: its random-OT keys stay
        // independent of them until its derandomization bits arrive.
        let zero_e: Vec<Block> = (0..m).map(|_| Block::random(&mut self.rng)).collect();
        let zero = self
            .send_labels(ch, prepared, Some(inputs), &zero_e, &keys)
            .await?;
        let decoding = self.stream_tables(ch, prepared, &zero).await?;
        ch.flush().await?;
        self.ahead.push_back(GarbledAhead {
            fingerprint: prepared.fingerprint,
            zero: zero_e,
            keys: keys.to_vec(),
            decoding,
        });
        Ok(())
    }

    /// Sets the OT extension up on the session's first evaluation, reads the evaluator's query
    /// and refills the pool as the query asks (checked against the shared rule).
    async fn open(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<Mode, GcError> {
        let ot = match self.ot.take() {
            Some(ot) => ot,
            None => OtSender::setup(ch, &mut self.rng)
                .await?
                .with_kos_check(&mut self.rng),
        };
        let ot = self.ot.insert(ot);
        let query = ch.recv_bytes().await?;
        if query.len() != QUERY_LEN {
            return Err(GcError::Protocol(format!("query of {} bytes", query.len())));
        }
        if query[..32] != prepared.fingerprint {
            return Err(GcError::Protocol(
                "the evaluator runs a different circuit, input split or output choice".into(),
            ));
        }
        let mode = Mode::from_byte(query[40])?;
        match mode {
            Mode::Online => match self.ahead.front() {
                None => {
                    return Err(GcError::Protocol(
                        "the evaluator spends an evaluation garbled ahead, and there is none"
                            .into(),
                    ))
                }
                Some(a) if a.fingerprint != prepared.fingerprint => {
                    return Err(GcError::Protocol(
                        "the evaluation garbled ahead is of another circuit".into(),
                    ))
                }
                Some(_) => {}
            },
            Mode::Ahead if self.ahead.len() >= MAX_AHEAD => {
                return Err(GcError::Protocol(format!(
                    "the evaluator asks for more than {MAX_AHEAD} evaluations garbled ahead"
                )))
            }
            Mode::Deferred if self.deferred.len() >= MAX_DEFERRED => {
                return Err(GcError::Protocol(format!(
                    "the evaluator asks for more than {MAX_DEFERRED} evaluations garbled with \
                     deferred inputs"
                )))
            }
            _ => {}
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&query[32..40]);
        // An evaluation garbled ahead has its OTs set aside already.
        let refill = match mode {
            Mode::Online => 0,
            _ => refill_size(self.pool.left(), prepared.evaluator_bits),
        };
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
        Ok(mode)
    }

    /// Reads the evaluator's derandomization bits, one per input bit of it.
    async fn recv_flips(&mut self, ch: &mut Channel, m: usize) -> Result<Vec<u8>, GcError> {
        let flips = ch.recv_bytes().await?;
        if flips.len() != m.div_ceil(8) {
            return Err(GcError::Protocol(format!(
                "{} bytes of derandomization bits, expected {}",
                flips.len(),
                m.div_ceil(8)
            )));
        }
        Ok(flips)
    }

    /// Garbles now under a fresh `Δ` and streams the tables (mode `Now`).
    async fn now(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        let zero = self.bind_evaluator(ch, prepared, Some(inputs)).await?;
        let decoding = self.stream_tables(ch, prepared, &zero).await?;
        self.finish(ch, prepared.reveal, &decoding).await
    }

    /// Reads the evaluator's derandomization bits, draws a fresh `Δ`, and sends the labels
    /// of the garbler's `inputs` (unless deferred) and the evaluator's label offsets; returns
    /// the zero labels of every input wire.
    async fn bind_evaluator(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: Option<&[Vec<bool>]>,
    ) -> Result<Zeroizing<Vec<Vec<Block>>>, GcError> {
        let m = prepared.evaluator_bits;
        let flips = self.recv_flips(ch, m).await?;
        let keys = self.pool.take(m);
        // A fresh offset for every evaluation: nothing an evaluator learns about one
        // evaluation's `Δ` carries over to the next.
        self.delta = Block(self.rng.random::<u128>() | 1);
        // The zero label of each evaluator wire is the random-OT key its derandomization bit
        // names.
        let zero_e: Zeroizing<Vec<Block>> = Zeroizing::new(
            keys.iter()
                .enumerate()
                .map(|(j, k)| k[usize::from(bit(&flips, j))])
                .collect(),
        );
        self.send_labels(ch, prepared, inputs, &zero_e, &keys).await
    }

    /// Evaluations garbled with the garbler's inputs deferred and not yet spent.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }

    /// The offline phase of an evaluation whose evaluator's inputs exist already and whose
    /// garbler's inputs do not yet (the evaluator calls [`Evaluator::receive_deferred`]): the
    /// evaluator's input labels by the pool's OTs, as on the spot, then the tables under a
    /// fresh `Δ`; the garbler keeps `Δ`, the zero labels of its own input wires and the
    /// decoding bits until [`Garbler::run_deferred`] spends them.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when [`MAX_DEFERRED`] evaluations are already held;
    /// [`GcError::Protocol`] when the evaluator's query does not ask for this; channel and OT
    /// errors.
    pub async fn garble_deferred(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<(), GcError> {
        if self.deferred.len() >= MAX_DEFERRED {
            return Err(GcError::Input(format!(
                "{MAX_DEFERRED} evaluations are already garbled with deferred inputs"
            )));
        }
        if self.open(ch, prepared).await? != Mode::Deferred {
            return Err(GcError::Protocol(
                "the evaluator asks for another evaluation where one with deferred garbler \
                 inputs was expected"
                    .into(),
            ));
        }
        let zero = self.bind_evaluator(ch, prepared, None).await?;
        let decoding = self.stream_tables(ch, prepared, &zero).await?;
        ch.flush().await?;
        let own: Vec<Block> = prepared
            .owners
            .iter()
            .zip(zero.iter())
            .filter(|(o, _)| **o == Party::Garbler)
            .flat_map(|(_, ls)| ls.iter().copied())
            .collect();
        self.deferred.push_back(GarbledDeferred {
            fingerprint: prepared.fingerprint,
            delta: self.delta,
            zero: own,
            decoding,
        });
        Ok(())
    }

    /// The online phase of the oldest evaluation garbled with deferred inputs: sends the
    /// active labels of the garbler's `inputs` (16 bytes per bit, with the decoding bits when
    /// the evaluator learns the output, in one flight), then reads the evaluator's output
    /// bits when the garbler learns it. No query precedes it: both sides know the evaluation
    /// comes.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when no evaluation of this circuit is held or the inputs do not
    /// fit; protocol and channel errors.
    pub async fn run_deferred(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        check_inputs(prepared, Party::Garbler, inputs)?;
        match self.deferred.front() {
            Some(d) if d.fingerprint == prepared.fingerprint => {}
            Some(_) => {
                return Err(GcError::Input(
                    "the oldest evaluation garbled with deferred inputs is of another circuit"
                        .into(),
                ))
            }
            None => {
                return Err(GcError::Input(
                    "no evaluation garbled with deferred inputs".into(),
                ))
            }
        }
        let spent = self
            .deferred
            .pop_front()
            .ok_or_else(|| GcError::Input("no evaluation garbled with deferred inputs".into()))?;
        let active: Zeroizing<Vec<Block>> = Zeroizing::new(
            spent
                .zero
                .iter()
                .zip(inputs.iter().flatten())
                .map(|(l, &b)| *l ^ spent.delta.and_bit(b))
                .collect(),
        );
        let mut bytes = Zeroizing::new(Vec::new());
        blocks_to_bytes(&active, &mut bytes);
        ch.send_bytes(&bytes).await?;
        self.finish(ch, prepared.reveal, &spent.decoding).await
    }

    /// Spends the oldest evaluation garbled ahead (mode `Online`): `a_j = L0_j ⊕ k_{e_j}` for
    /// each input bit of the evaluator, then the decoding bits.
    async fn online(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        let m = prepared.evaluator_bits;
        let flips = self.recv_flips(ch, m).await?;
        let spent = self
            .ahead
            .pop_front()
            .ok_or_else(|| GcError::Protocol("no evaluation garbled ahead".into()))?;
        let mut a: Zeroizing<Vec<Block>> = Zeroizing::new(
            spent
                .zero
                .iter()
                .zip(&spent.keys)
                .enumerate()
                .map(|(j, (l0, k))| *l0 ^ k[usize::from(bit(&flips, j))])
                .collect(),
        );
        let mut bytes = Zeroizing::new(Vec::new());
        blocks_to_bytes(&a, &mut bytes);
        a.zeroize();
        ch.send_bytes(&bytes).await?;
        self.finish(ch, prepared.reveal, &spent.decoding).await
    }

    /// Sends the header, the active labels of the garbler's inputs (none when they are
    /// deferred) and the evaluator's label offsets `d_j = k0_j ⊕ k1_j ⊕ Δ`; returns the zero
    /// labels of every input wire, the evaluator's being `zero_e`.
    async fn send_labels(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: Option<&[Vec<bool>]>,
        zero_e: &[Block],
        keys: &[[Block; 2]],
    ) -> Result<Zeroizing<Vec<Vec<Block>>>, GcError> {
        let (circuit, owners) = (prepared.circuit(), &prepared.owners);
        let delta = self.delta;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&prepared.fingerprint);
        header.extend_from_slice(&self.next_and.to_le_bytes());
        let mut zero: Zeroizing<Vec<Vec<Block>>> = Zeroizing::new(Vec::with_capacity(owners.len()));
        let mut active = Zeroizing::new(Vec::with_capacity(prepared.garbler_bits));
        let mut mine = inputs.map(|i| i.iter());
        let mut k = 0usize;
        for (v, owner) in owners.iter().enumerate() {
            match owner {
                Party::Garbler => {
                    let n = circuit.inputs[v].len();
                    let ls: Vec<Block> = (0..n).map(|_| Block::random(&mut self.rng)).collect();
                    if let Some(mine) = mine.as_mut() {
                        let bits = mine
                            .next()
                            .ok_or_else(|| GcError::Input("missing input".into()))?;
                        active.extend(ls.iter().zip(bits).map(|(l, b)| *l ^ delta.and_bit(*b)));
                    }
                    zero.push(ls);
                }
                Party::Evaluator => {
                    let n = circuit.inputs[v].len();
                    zero.push(zero_e[k..k + n].to_vec());
                    k += n;
                }
            }
        }
        ch.send_bytes(&header).await?;
        let mut bytes = Zeroizing::new(Vec::new());
        if inputs.is_some() {
            blocks_to_bytes(&active, &mut bytes);
            ch.send_bytes(&bytes).await?;
        }
        let offsets: Zeroizing<Vec<Block>> =
            Zeroizing::new(keys.iter().map(|[k0, k1]| *k0 ^ *k1 ^ delta).collect());
        bytes.clear();
        blocks_to_bytes(&offsets, &mut bytes);
        ch.send_bytes(&bytes).await?;
        Ok(zero)
    }

    /// Garbles under the current `Δ` from the zero labels `zero`, streaming the tables in
    /// frames of [`CHUNK_ANDS`] gates; returns the decoding bits.
    async fn stream_tables(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        zero: &[Vec<Block>],
    ) -> Result<Vec<Vec<bool>>, GcError> {
        let mut state = GarbleState::new(&prepared.plan, self.delta, zero, self.next_and);
        let mut tables = Vec::with_capacity(2 * CHUNK_ANDS);
        let mut bytes = Vec::new();
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
        Ok(state.decoding_bits())
    }

    /// The output phase: the decoding bits to the evaluator, or its output permute bits back.
    async fn finish(
        &mut self,
        ch: &mut Channel,
        reveal: Reveal,
        decoding: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        let flat: Vec<bool> = decoding.iter().flatten().copied().collect();
        if reveal.to_evaluator() {
            ch.send_bytes(&pack_bits(&flat)).await?;
        }
        ch.flush().await?;
        if !reveal.to_garbler() {
            return Ok(None);
        }
        let got = ch.recv_bytes().await?;
        if got.len() != flat.len().div_ceil(8) {
            return Err(GcError::Protocol(format!(
                "output bits: {} bytes, expected {}",
                got.len(),
                flat.len().div_ceil(8)
            )));
        }
        let out = unpack_like(&got, decoding)
            .iter()
            .zip(decoding)
            .map(|(bits, ds)| bits.iter().zip(ds).map(|(b, d)| b ^ d).collect())
            .collect();
        Ok(Some(out))
    }
}

/// The evaluator's role: its OT state, its side of the pool and the evaluations received
/// ahead. On drop the generator is overwritten and the rest erases itself.
pub struct Evaluator {
    rng: ChaCha20Rng,
    ot: Option<OtReceiver>,
    pool: ReceiverPool,
    ahead: VecDeque<ReceivedAhead>,
    deferred: VecDeque<ReceivedDeferred>,
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        veil_ot::erase_rng(&mut self.rng);
    }
}

impl ZeroizeOnDrop for Evaluator {}

/// What the garbler sends before its tables: its first AND index, the active labels of its
/// inputs and the evaluator's label offsets.
struct Garbling {
    first_and: u64,
    garbler_labels: Zeroizing<Vec<Block>>,
    offsets: Zeroizing<Vec<Block>>,
}

impl Evaluator {
    /// An evaluator drawing its randomness from `rng` (use [`veil_ot::secure_rng`]).
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Evaluator {
        Evaluator {
            rng: ChaCha20Rng::from_rng(rng),
            ot: None,
            pool: ReceiverPool::default(),
            ahead: VecDeque::new(),
            deferred: VecDeque::new(),
        }
    }

    /// Evaluations received ahead and not yet spent.
    pub fn ahead(&self) -> usize {
        self.ahead.len()
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

    /// [`Evaluator::run`] on a circuit prepared beforehand. Spends the oldest evaluation
    /// received ahead ([`Evaluator::receive_ahead`]) when there is one for this circuit: one
    /// round trip, then evaluation of tables already here.
    pub async fn run_prepared(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        check_inputs(prepared, Party::Evaluator, inputs)?;
        let choices: Zeroizing<Vec<bool>> =
            Zeroizing::new(inputs.iter().flatten().copied().collect());
        if self
            .ahead
            .front()
            .is_some_and(|a| a.fingerprint == prepared.fingerprint)
        {
            return self.online(ch, prepared, &choices).await;
        }
        self.open(ch, prepared, Mode::Now).await?;
        let (g, mine) = self.bind_inputs(ch, prepared, &choices, true).await?;
        let active = assemble(prepared, &g.garbler_labels, &mine);
        let mut state = EvalState::new(&prepared.plan, &active, g.first_and);
        state.eval(&[]);
        let mut buf = Vec::new();
        while !state.is_done() {
            ch.recv_bytes_into(&mut buf).await?;
            let tables = table_frame(&buf)?;
            let used = state.eval(&tables);
            if used != tables.len() {
                return Err(GcError::Protocol(
                    "more garbled tables than AND gates".into(),
                ));
            }
        }
        let labels = Zeroizing::new(state.output_labels());
        finish(ch, prepared.reveal, &labels).await
    }

    /// Sends the derandomization bits of `choices` on the next pool OTs, reads the garbler's
    /// labels (when `garbler_labels`) and offsets, and returns them with the evaluator's
    /// active input labels `k_{c_j} ⊕ x_j·d_j`.
    async fn bind_inputs(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        choices: &[bool],
        garbler_labels: bool,
    ) -> Result<(Garbling, Zeroizing<Vec<Block>>), GcError> {
        let (keys, pool_choices) = self.pool.take(choices.len());
        let flips: Zeroizing<Vec<bool>> = Zeroizing::new(
            choices
                .iter()
                .zip(pool_choices.iter())
                .map(|(x, c)| x ^ c)
                .collect(),
        );
        ch.send_bytes(&pack_bits(&flips)).await?;
        ch.flush().await?;
        let g = self.receive_garbling(ch, prepared, garbler_labels).await?;
        let mine: Zeroizing<Vec<Block>> = Zeroizing::new(
            keys.iter()
                .zip(g.offsets.iter())
                .zip(choices.iter())
                .map(|((k, d), &x)| *k ^ d.and_bit(x))
                .collect(),
        );
        Ok((g, mine))
    }

    /// Reads the garbled tables of a whole evaluation, checked against its AND-gate count.
    async fn receive_tables(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<Vec<Block>, GcError> {
        let want = usize::try_from(prepared.and_gates)
            .map_err(|_| GcError::Input("circuit too large".into()))?
            .saturating_mul(2);
        let mut tables = Vec::with_capacity(want);
        let mut buf = Vec::new();
        while tables.len() < want {
            ch.recv_bytes_into(&mut buf).await?;
            let frame = table_frame(&buf)?;
            if tables.len() + frame.len() > want {
                return Err(GcError::Protocol(
                    "more garbled tables than AND gates".into(),
                ));
            }
            tables.extend_from_slice(&frame);
        }
        Ok(tables)
    }

    /// Evaluations received with the garbler's inputs deferred and not yet spent.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }

    /// The evaluator's side of [`Garbler::garble_deferred`]: binds its `inputs` now (one bit
    /// up and 16 bytes down per input bit) and keeps the tables (32 bytes per AND gate) until
    /// [`Evaluator::run_deferred`].
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when [`MAX_DEFERRED`] evaluations are already held or the inputs do
    /// not fit; protocol, channel and OT errors.
    pub async fn receive_deferred(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<bool>],
    ) -> Result<(), GcError> {
        check_inputs(prepared, Party::Evaluator, inputs)?;
        if self.deferred.len() >= MAX_DEFERRED {
            return Err(GcError::Input(format!(
                "{MAX_DEFERRED} evaluations with deferred garbler inputs are already held"
            )));
        }
        let choices: Zeroizing<Vec<bool>> =
            Zeroizing::new(inputs.iter().flatten().copied().collect());
        self.open(ch, prepared, Mode::Deferred).await?;
        let (g, mine) = self.bind_inputs(ch, prepared, &choices, false).await?;
        let tables = self.receive_tables(ch, prepared).await?;
        self.deferred.push_back(ReceivedDeferred {
            fingerprint: prepared.fingerprint,
            first_and: g.first_and,
            labels: mine.to_vec(),
            tables,
        });
        Ok(())
    }

    /// The online phase of the oldest evaluation received with deferred garbler inputs: reads
    /// the garbler's input labels, evaluates the tables held, and runs the output phase.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when none of this circuit is held; protocol and channel errors.
    pub async fn run_deferred(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        match self.deferred.front() {
            Some(d) if d.fingerprint == prepared.fingerprint => {}
            _ => {
                return Err(GcError::Input(
                    "no evaluation of this circuit received with deferred garbler inputs".into(),
                ))
            }
        }
        let spent = self.deferred.pop_front().ok_or_else(|| {
            GcError::Input("no evaluation received with deferred garbler inputs".into())
        })?;
        let garbler = recv_blocks(ch, prepared.garbler_bits, "input labels").await?;
        let active = assemble(prepared, &garbler, &spent.labels);
        eval_held(ch, prepared, &active, spent.first_and, &spent.tables).await
    }

    /// The evaluator's side of [`Garbler::garble_ahead`]: receives one evaluation garbled
    /// before its input exists (32 bytes per AND gate kept until a query spends it) and sets
    /// aside one pool OT per input bit.
    ///
    /// # Errors
    ///
    /// [`GcError::Input`] when [`MAX_AHEAD`] evaluations are already held; protocol, channel
    /// and OT errors.
    pub async fn receive_ahead(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
    ) -> Result<(), GcError> {
        if self.ahead.len() >= MAX_AHEAD {
            return Err(GcError::Input(format!(
                "{MAX_AHEAD} evaluations are already received ahead"
            )));
        }
        self.open(ch, prepared, Mode::Ahead).await?;
        ch.flush().await?;
        let (keys, choices) = self.pool.take(prepared.evaluator_bits);
        let g = self.receive_garbling(ch, prepared, true).await?;
        let tables = self.receive_tables(ch, prepared).await?;
        self.ahead.push_back(ReceivedAhead {
            fingerprint: prepared.fingerprint,
            first_and: g.first_and,
            garbler_labels: g.garbler_labels.to_vec(),
            offsets: g.offsets.to_vec(),
            keys: keys.to_vec(),
            choices: choices.to_vec(),
            tables,
        });
        Ok(())
    }

    /// Spends the oldest evaluation received ahead: sends the derandomization bits, reads
    /// `a_j`, and evaluates the tables held.
    async fn online(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        choices: &[bool],
    ) -> Result<Option<Vec<Vec<bool>>>, GcError> {
        self.open(ch, prepared, Mode::Online).await?;
        let spent = self
            .ahead
            .pop_front()
            .ok_or_else(|| GcError::Input("no evaluation received ahead".into()))?;
        let flips: Zeroizing<Vec<bool>> = Zeroizing::new(
            choices
                .iter()
                .zip(&spent.choices)
                .map(|(x, c)| x ^ c)
                .collect(),
        );
        ch.send_bytes(&pack_bits(&flips)).await?;
        ch.flush().await?;
        let a = recv_blocks(ch, choices.len(), "input labels").await?;
        // `k_{c_j} ⊕ a_j ⊕ x_j·d_j`: `L0_j` when `x_j = 0`, `L0_j ⊕ Δ` when it is 1.
        let mine: Zeroizing<Vec<Block>> = Zeroizing::new(
            spent
                .keys
                .iter()
                .zip(a.iter())
                .zip(&spent.offsets)
                .zip(choices)
                .map(|(((k, a), d), &x)| *k ^ *a ^ d.and_bit(x))
                .collect(),
        );
        let active = assemble(prepared, &spent.garbler_labels, &mine);
        eval_held(ch, prepared, &active, spent.first_and, &spent.tables).await
    }

    /// Sets the OT extension up on the session's first evaluation, sends the query of `mode`
    /// and runs the refill it announces.
    async fn open(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        mode: Mode,
    ) -> Result<(), GcError> {
        let ot = match self.ot.take() {
            Some(ot) => ot,
            None => OtReceiver::setup(ch, &mut self.rng)
                .await?
                .with_kos_check(&mut self.rng),
        };
        let ot = self.ot.insert(ot);
        let refill = match mode {
            Mode::Online => 0,
            _ => refill_size(self.pool.left(), prepared.evaluator_bits),
        };
        let mut query = Vec::with_capacity(QUERY_LEN);
        query.extend_from_slice(&prepared.fingerprint);
        query.extend_from_slice(&(refill as u64).to_le_bytes());
        query.push(mode as u8);
        ch.send_bytes(&query).await?;
        if refill > 0 {
            self.pool.refill(ot, ch, &mut self.rng, refill).await?;
        }
        Ok(())
    }

    /// Reads the header, the labels of the garbler's inputs (unless deferred) and the label
    /// offsets of the evaluator's, each checked for its size.
    async fn receive_garbling(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        with_garbler_labels: bool,
    ) -> Result<Garbling, GcError> {
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
        let garbler_labels = if with_garbler_labels {
            recv_blocks(ch, prepared.garbler_bits, "input labels").await?
        } else {
            Zeroizing::new(Vec::new())
        };
        let offsets = recv_blocks(ch, prepared.evaluator_bits, "label offsets").await?;
        Ok(Garbling {
            first_and,
            garbler_labels,
            offsets,
        })
    }
}

/// One frame of exactly `n` labels (16 bytes each), erased when dropped.
async fn recv_blocks(
    ch: &mut Channel,
    n: usize,
    what: &str,
) -> Result<Zeroizing<Vec<Block>>, GcError> {
    let bytes = Zeroizing::new(ch.recv_bytes().await?);
    blocks_from_bytes(&bytes)
        .map(Zeroizing::new)
        .filter(|b| b.len() == n)
        .ok_or_else(|| {
            GcError::Protocol(format!(
                "{} bytes of {what}, expected {}",
                bytes.len(),
                16 * n
            ))
        })
}

/// Evaluates tables held since the offline phase on the active input labels, then runs the
/// output phase.
async fn eval_held(
    ch: &mut Channel,
    prepared: &PreparedCircuit,
    active: &[Vec<Block>],
    first_and: u64,
    tables: &[Block],
) -> Result<Option<Vec<Vec<bool>>>, GcError> {
    let mut state = EvalState::new(&prepared.plan, active, first_and);
    let used = state.eval(tables);
    if !state.is_done() || used != tables.len() {
        return Err(GcError::Protocol(
            "the tables garbled ahead do not fit the circuit".into(),
        ));
    }
    let labels = Zeroizing::new(state.output_labels());
    finish(ch, prepared.reveal, &labels).await
}

/// One frame of garbled tables: a whole number of AND gates, at most [`CHUNK_ANDS`].
fn table_frame(buf: &[u8]) -> Result<Vec<Block>, GcError> {
    blocks_from_bytes(buf)
        .filter(|t| !t.is_empty() && t.len() <= 2 * CHUNK_ANDS && t.len() % 2 == 0)
        .ok_or_else(|| GcError::Protocol(format!("garbled-table frame of {} bytes", buf.len())))
}

/// The active labels of every input value, in circuit order, from the garbler's and the
/// evaluator's labels in the order of their own values.
fn assemble(
    prepared: &PreparedCircuit,
    garbler: &[Block],
    evaluator: &[Block],
) -> Zeroizing<Vec<Vec<Block>>> {
    let mut g_it = garbler.iter().copied();
    let mut e_it = evaluator.iter().copied();
    prepared
        .owners
        .iter()
        .zip(&prepared.circuit().inputs)
        .map(|(o, w)| match o {
            Party::Garbler => (&mut g_it).take(w.len()).collect(),
            Party::Evaluator => (&mut e_it).take(w.len()).collect(),
        })
        .collect::<Vec<_>>()
        .into()
}

/// The evaluator's output phase: decodes with the garbler's decoding bits, or sends the
/// permute bits of its output labels to the garbler.
async fn finish(
    ch: &mut Channel,
    reveal: Reveal,
    labels: &[Vec<Block>],
) -> Result<Option<Vec<Vec<bool>>>, GcError> {
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
        let decoding = unpack_like(&d, labels);
        result = Some(decode(labels, &decoding));
    }
    if reveal.to_garbler() {
        let lsbs: Vec<bool> = labels.iter().flatten().map(|l| l.lsb()).collect();
        ch.send_bytes(&pack_bits(&lsbs)).await?;
        ch.flush().await?;
    }
    Ok(result)
}
