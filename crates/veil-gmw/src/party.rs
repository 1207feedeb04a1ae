//! The two GMW parties: the offline phase (triples) and the online phase (Goldreich, Micali
//! and Wigderson, STOC 1987; the two-party boolean form of ABY, NDSS 2015, section III-B).
//!
//! Wire values are XOR-shared between the parties. Each wire holds a `u64` word whose bit `k`
//! is the wire's share in instance `k`: one evaluation uses bit 0 only; a batch of up to 64
//! evaluations of one circuit on different inputs uses 64 lanes at the cost of the rounds of
//! one. XOR is local (`z_i = x_i ⊕ y_i`), INV flips party 0's share, a constant is party 0's.
//! An AND with triple `(a, b, c)` opens `d = x ⊕ a` and `e = y ⊕ b`, then
//! `z_i = c_i ⊕ d·b_i ⊕ e·a_i ⊕ [i = 0]·d·e`.
//!
//! Online message flow, party 0 sending first in every exchange (so that no exchange can
//! deadlock on full socket buffers, whatever its size):
//!
//! 1. input sharing: each party sends a header (circuit fingerprint, lanes) and, for each of
//!    its input bits, a random mask that becomes the peer's share;
//! 2. one exchange per AND layer of the circuit ([`veil_circuit::Circuit::layers`]): the
//!    `(d_i, e_i)` bits of every AND gate and lane of the layer, packed;
//! 3. output opening: the shares of the output wires go to the party or parties that learn
//!    them.
//!
//! So each party sends `AND depth + 2` flights when both learn the output. Triples come from
//! the offline phase ([`crate::triples`]), which can run before the inputs exist; a run that
//! lacks triples makes the missing ones first. A [`PreparedCircuit`] holds what depends on the
//! circuit alone (its AND layers, the fingerprint, the triples one lane uses), made once for
//! every evaluation of a session.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use veil_circuit::{Circuit, Layer};
use veil_net::{Channel, NetError};
use veil_ot::{Extension, OtError, OtReceiver, OtSender};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::online::{Online, Step};
use crate::role::Role;
use crate::triples::{combine, TripleStore};

/// Names one of the two parties in data: the owner of a circuit input, who learns an output.
/// A party's own role is a type ([`Role`]: [`P0`](crate::P0) or [`P1`](crate::P1)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyId {
    /// The first party (for instance the model owner).
    P0,
    /// The second party.
    P1,
}

/// Who learns the outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    /// Party 0 only.
    P0,
    /// Party 1 only.
    P1,
    /// Both.
    Both,
}

impl Reveal {
    pub(crate) fn to(self, p: PartyId) -> bool {
        matches!(
            (self, p),
            (Reveal::Both, _) | (Reveal::P0, PartyId::P0) | (Reveal::P1, PartyId::P1)
        )
    }
}

/// Why a GMW run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GmwError {
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

/// OTs per offline exchange (one 1 MiB frame each way).
pub const OFFLINE_CHUNK: usize = 1 << 16;
/// Fewest triples a run makes when it finds too few.
pub const MIN_REFILL: usize = 1 << 14;
/// Largest number of triples one call may ask for.
pub const MAX_TRIPLES: usize = 1 << 34;

/// One GMW party, as role `R` ([`P0`](crate::P0) or [`P1`](crate::P1)): its OT state and
/// triples.
///
/// On drop the triple shares and the OT state zeroize themselves and the generator (whose key
/// derived every mask and OT choice) is overwritten. Wire shares, input masks and the OT
/// outputs of the offline phase are erased when each call ends.
pub struct GmwParty<R: Role> {
    role: std::marker::PhantomData<R>,
    rng: ChaCha20Rng,
    /// Both OT extensions, once set up (on the first offline phase).
    ot: Option<Ots>,
    /// Which extension they run (both parties must agree).
    extension: Extension,
    triples: TripleStore,
}

/// The two OT extensions a party runs, each in one direction: set up together, so that a
/// party either has both or neither.
struct Ots {
    send: OtSender,
    recv: OtReceiver,
}

impl<R: Role> Drop for GmwParty<R> {
    fn drop(&mut self) {
        veil_ot::erase_rng(&mut self.rng);
    }
}

impl<R: Role> ZeroizeOnDrop for GmwParty<R> {}

/// SHA-256 over the circuit's structure, the owners, the reveal choice and the lanes.
pub fn fingerprint(
    circuit: &Circuit,
    owners: &[PartyId],
    reveal: Reveal,
    lanes: usize,
) -> [u8; 32] {
    lanes_fingerprint(fingerprint_prefix(circuit, owners), reveal, lanes)
}

/// The hash state of [`fingerprint`] after the circuit and the owners.
fn fingerprint_prefix(circuit: &Circuit, owners: &[PartyId]) -> Sha256 {
    let mut h = Sha256::new();
    h.update(b"veil/gmw/v1");
    circuit.canonical_bytes(|b| h.update(b));
    for o in owners {
        h.update([u8::from(*o == PartyId::P1)]);
    }
    h
}

pub(crate) fn lanes_fingerprint(mut prefix: Sha256, reveal: Reveal, lanes: usize) -> [u8; 32] {
    prefix.update([reveal as u8, lanes as u8]);
    prefix.finalize().into()
}

/// A circuit made ready once for every evaluation of a session: its AND layers, the owner of
/// each input value, who learns the outputs, and the fingerprint the parties compare (up to
/// the number of lanes, which each batch adds).
pub struct PreparedCircuit {
    pub(crate) circuit: Circuit,
    pub(crate) layers: Vec<Layer>,
    pub(crate) owners: Vec<PartyId>,
    pub(crate) reveal: Reveal,
    pub(crate) prefix: Sha256,
    pub(crate) and_gates: usize,
}

impl PreparedCircuit {
    /// Prepares `circuit` with `owners` naming who supplies each input value and `reveal` who
    /// learns the outputs.
    ///
    /// # Errors
    ///
    /// [`GmwError::Input`] if `owners` does not name one owner per input value.
    pub fn new(
        circuit: &Circuit,
        owners: &[PartyId],
        reveal: Reveal,
    ) -> Result<PreparedCircuit, GmwError> {
        if owners.len() != circuit.inputs.len() {
            return Err(GmwError::Input(format!(
                "{} input owners for {} input values",
                owners.len(),
                circuit.inputs.len()
            )));
        }
        Ok(PreparedCircuit {
            circuit: circuit.clone(),
            layers: circuit.layers(),
            owners: owners.to_vec(),
            reveal,
            prefix: fingerprint_prefix(circuit, owners),
            and_gates: circuit.gates.iter().filter(|g| g.is_and()).count(),
        })
    }

    /// The circuit.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// AND gates: the triples one evaluation uses per lane.
    pub fn and_gates(&self) -> usize {
        self.and_gates
    }
}

pub(crate) fn lane_mask(lanes: usize) -> u64 {
    if lanes == 64 {
        u64::MAX
    } else {
        (1u64 << lanes) - 1
    }
}

impl<R: Role> GmwParty<R> {
    /// The party of role `R`, drawing randomness from `rng` (use [`veil_ot::secure_rng`]).
    pub fn new<G: RngCore + CryptoRng>(rng: &mut G) -> GmwParty<R> {
        GmwParty {
            role: std::marker::PhantomData,
            rng: ChaCha20Rng::from_rng(rng),
            ot: None,
            extension: Extension::default(),
            triples: TripleStore::default(),
        }
    }

    /// Makes the triples with another OT extension than the default SoftSpokenOT (`k = 4`,
    /// 7.75 bytes per triple), such as IKNP (32 bytes per triple, less computation). The peer
    /// must choose the same. Takes effect at the first offline phase.
    #[must_use]
    pub fn with_extension(mut self, extension: Extension) -> Self {
        self.extension = extension;
        self
    }

    /// This party's name in owner lists and reveal choices (`R::ID`).
    pub fn id(&self) -> PartyId {
        R::ID
    }

    /// Triples made and not yet used.
    pub fn triples_available(&self) -> usize {
        self.triples.available()
    }

    /// Sets both OT extensions up with the peer.
    async fn setup_ot(
        ch: &mut Channel,
        rng: &mut ChaCha20Rng,
        ext: Extension,
    ) -> Result<Ots, GmwError> {
        // Party 0 is the extension sender first, then the receiver; party 1 the reverse.
        Ok(if R::SENDS_FIRST {
            let send = OtSender::setup_extension(ch, rng, ext).await?;
            let recv = OtReceiver::setup_extension(ch, rng, ext).await?;
            Ots { send, recv }
        } else {
            let recv = OtReceiver::setup_extension(ch, rng, ext).await?;
            let send = OtSender::setup_extension(ch, rng, ext).await?;
            Ots { send, recv }
        })
    }

    /// The offline phase: makes `n` more triples with the peer on `ch` (which must call this
    /// with the same `n`). Needs no input; a server can run it before any client arrives.
    pub async fn offline(&mut self, ch: &mut Channel, n: usize) -> Result<(), GmwError> {
        if n > MAX_TRIPLES {
            return Err(GmwError::Input(format!(
                "{n} triples at once (at most {MAX_TRIPLES})"
            )));
        }
        let ots = match self.ot.take() {
            Some(ots) => ots,
            None => Self::setup_ot(ch, &mut self.rng, self.extension).await?,
        };
        let Ots {
            send: snd,
            recv: rcv,
        } = self.ot.insert(ots);
        let mut done = 0;
        // The random-OT outputs of one chunk, in buffers reused from chunk to chunk (the pool
        // calls of the OT extension) and erased when the phase ends.
        let mut pairs: Zeroizing<Vec<[veil_ot::Block; 2]>> = Zeroizing::new(Vec::new());
        let mut received: Zeroizing<Vec<veil_ot::Block>> = Zeroizing::new(Vec::new());
        let mut choices: Zeroizing<Vec<bool>> = Zeroizing::new(Vec::new());
        while done < n {
            let m = (n - done).min(OFFLINE_CHUNK);
            // The choice bits are random, drawn by the extension (SoftSpokenOT's first group
            // then sends nothing). Party 0 streams its OT matrix first and ends the exchange
            // receiving, so the online phase, which party 0 opens, starts a new flight on both
            // sides.
            if R::SENDS_FIRST {
                rcv.receive_random_choices_into(ch, m, &mut self.rng, &mut choices, &mut received)
                    .await?;
                snd.send_random_choices_into(ch, m, &mut pairs).await?;
            } else {
                snd.send_random_choices_into(ch, m, &mut pairs).await?;
                rcv.receive_random_choices_into(ch, m, &mut self.rng, &mut choices, &mut received)
                    .await?;
            }
            let bit_pairs: Zeroizing<Vec<(bool, bool)>> =
                Zeroizing::new(pairs.iter().map(|[x, y]| (x.lsb(), y.lsb())).collect());
            let received_bits: Zeroizing<Vec<bool>> =
                Zeroizing::new(received.iter().map(|x| x.lsb()).collect());
            let (mut a, mut b, mut c) = combine(&choices, &received_bits, &bit_pairs);
            self.triples.append(&a, &b, &c);
            a.zeroize();
            b.zeroize();
            c.zeroize();
            done += m;
        }
        Ok(())
    }

    /// Sends first (party 0) or receives first (party 1): one exchange of one frame each way.
    async fn exchange(&self, ch: &mut Channel, mine: &[u8]) -> Result<Vec<u8>, GmwError> {
        if R::SENDS_FIRST {
            ch.send_bytes(mine).await?;
            ch.flush().await?;
            Ok(ch.recv_bytes().await?)
        } else {
            let theirs = ch.recv_bytes().await?;
            ch.send_bytes(mine).await?;
            ch.flush().await?;
            Ok(theirs)
        }
    }

    /// Evaluates `circuit` once with the peer; `inputs` are this party's input values in
    /// circuit order (those whose owner is this party). Returns the outputs if `reveal`
    /// includes this party.
    pub async fn run(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        owners: &[PartyId],
        inputs: &[Vec<bool>],
        reveal: Reveal,
    ) -> Result<Option<Vec<Vec<bool>>>, GmwError> {
        let words: Zeroizing<Vec<Vec<u64>>> = Zeroizing::new(
            inputs
                .iter()
                .map(|v| v.iter().map(|&b| u64::from(b)).collect())
                .collect(),
        );
        let out = self
            .run_batch(ch, circuit, owners, &words, 1, reveal)
            .await?;
        Ok(out.map(|o| {
            o.iter()
                .map(|v| v.iter().map(|w| w & 1 == 1).collect())
                .collect()
        }))
    }

    /// Evaluates `circuit` on `lanes` (1 to 64) inputs at once: `inputs[v][i]` holds, in bit
    /// `k`, bit `i` of this party's `v`-th input value in instance `k`. Outputs come back in
    /// the same layout. The rounds are those of one evaluation. A session that evaluates one
    /// circuit many times prepares it once and calls [`GmwParty::run_batch_prepared`].
    pub async fn run_batch(
        &mut self,
        ch: &mut Channel,
        circuit: &Circuit,
        owners: &[PartyId],
        inputs: &[Vec<u64>],
        lanes: usize,
        reveal: Reveal,
    ) -> Result<Option<Vec<Vec<u64>>>, GmwError> {
        let prepared = PreparedCircuit::new(circuit, owners, reveal)?;
        self.run_batch_prepared(ch, &prepared, inputs, lanes).await
    }

    /// [`GmwParty::run_batch`] on a circuit prepared beforehand.
    pub async fn run_batch_prepared(
        &mut self,
        ch: &mut Channel,
        prepared: &PreparedCircuit,
        inputs: &[Vec<u64>],
        lanes: usize,
    ) -> Result<Option<Vec<Vec<u64>>>, GmwError> {
        if !(1..=64).contains(&lanes) {
            return Err(GmwError::Input(format!("{lanes} lanes (1 to 64)")));
        }
        let needed = prepared.and_gates * lanes;
        if self.triples.available() < needed {
            // Both parties compute the same deficit from the circuit, so they agree on it.
            // Small deficits are rounded up so that a stream of small circuits does not pay
            // an OT exchange each.
            let missing = (needed - self.triples.available()).max(MIN_REFILL);
            self.offline(ch, missing).await?;
        }
        // The synchronous core computes; this driver moves its messages.
        let (mut core, mut step) =
            Online::<R>::start(prepared, inputs, lanes, &self.triples, &mut self.rng)?;
        loop {
            step = match step {
                Step::Exchange(mine) => {
                    let theirs = self.exchange(ch, &mine).await?;
                    core.receive(&theirs, &mut self.triples)?
                }
                Step::ReceiveLast => {
                    let theirs = ch.recv_bytes().await?;
                    core.receive(&theirs, &mut self.triples)?
                }
                Step::SendLast(mine) => {
                    ch.send_bytes(&mine).await?;
                    ch.flush().await?;
                    return Ok(None);
                }
                Step::Done(out) => return Ok(out),
            };
        }
    }
}
