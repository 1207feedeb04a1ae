//! One party of the BGW protocol: input sharing, linear operations, multiplication with
//! degree reduction, inner products and opening, over `GF(2^61 - 1)`.
//!
//! Ben-Or, Goldwasser and Wigderson, "Completeness theorems for non-cryptographic
//! fault-tolerant distributed computation", STOC 1988, section 4 (the semi-honest protocol):
//! values are shared with Shamir polynomials of degree `t` (Shamir 1979), party `i`
//! (0-based) holding the evaluation at `i + 1`. Linear operations are local. A product of two
//! degree-`t` sharings, computed locally, lies on a polynomial of degree `2t`; with `n ≥ 2t + 1`
//! it still determines the product. Degree reduction follows Gennaro, Rabin and Rabin,
//! "Simplified VSS and fast-track multiparty computations", PODC 1998, section 3: each of the
//! first `2t + 1` parties reshares its local product `h_i` with a fresh degree-`t` polynomial,
//! and party `j` takes `Σ_i λ_i · [h_i]_j`, where `λ_i` are the Lagrange coefficients at 0 for
//! the points `1..=2t+1`. That costs one round and one field element per resharing party and
//! receiver per product.
//!
//! An inner product `Σ_k a_k b_k` is reduced once: the local products are summed first (the sum
//! of degree-`2t` sharings is a degree-`2t` sharing), so a length-`k` inner product costs what a
//! single multiplication costs.
//!
//! Security: semi-honest (passive) adversary corrupting at most `t` parties, `n ≥ 2t + 1`.
//! The parties are fixed in advance ([`PartyConfig::parties`]): the mesh connects only to the
//! configured addresses and, with [`PartyConfig::with_security`] (as `veil shamir demo` always
//! runs it), accepts on each link only the pinned key of the party it expects, so the protocol
//! is semi-honest among mutually authenticated parties that trust each other to follow it. It
//! serves no outside client, so it has no counterpart of the server's trust opt-in for GMW.
//! Openings check that all `n` shares lie on one degree-`t` polynomial and name the parties
//! whose shares do not (Berlekamp-Welch), but the protocol as a whole does not claim security
//! against active deviation. Messages are still parsed as hostile input: every length, index
//! and element is checked, and every receive is bounded by the channel's read timeout.

use std::net::SocketAddr;

use veil_net::{Channel, ChannelConfig, Stats};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::MpcError;
use crate::field::{Field, M61};
use crate::mpc::core::{Bgw, Received, Round};
use crate::mpc::wire::{self, Tag};
use crate::shamir::MAX_SHARES;

/// Largest number of parties.
pub const MAX_PARTIES: usize = 64;
/// Largest vector a party accepts as someone else's input (elements).
pub const MAX_INPUT_LEN: usize = 1 << 26;

/// The identities of an encrypted mesh: this party's own, and every party's public key in
/// index order. Each channel runs the Noise IK handshake: the party with the lower index pins
/// the higher one's key, and the higher one accepts only the lower indices' keys, so every
/// channel is mutually authenticated.
#[derive(Clone, Debug)]
pub struct MeshSecurity {
    /// This party's identity.
    pub identity: std::sync::Arc<veil_net::Identity>,
    /// Every party's public key, in index order (this party's included).
    pub keys: Vec<veil_net::PublicKey>,
}

/// Configuration of one party.
#[derive(Clone, Debug)]
pub struct PartyConfig {
    /// This party's index, `0..parties.len()`; its shares are evaluations at `index + 1`.
    pub index: usize,
    /// Every party's listening address, in index order.
    pub parties: Vec<SocketAddr>,
    /// Sharing degree `t`: up to `t` parties may collude; needs `parties.len() ≥ 2t + 1`.
    pub threshold: usize,
    /// A session identifier all parties share; a fresh random one per run keeps runs apart.
    pub session_id: [u8; 16],
    /// Frame limit and timeouts of every channel; `connect_timeout` also bounds mesh setup.
    pub channel: ChannelConfig,
    /// Identities for encrypted, mutually authenticated channels (Noise IK, `veil_net::secure`);
    /// `None` runs the mesh in plaintext.
    pub security: Option<MeshSecurity>,
    /// Seed of this party's ChaCha20 generator; `None` (the default) seeds from the OS.
    pub seed: Option<[u8; 32]>,
}

impl PartyConfig {
    /// Party `index` of `parties` with degree `threshold`, default channel settings, an all-zero
    /// session id and OS randomness.
    pub fn new(index: usize, parties: Vec<SocketAddr>, threshold: usize) -> Self {
        PartyConfig {
            index,
            parties,
            threshold,
            session_id: [0; 16],
            channel: ChannelConfig::default(),
            seed: None,
            security: None,
        }
    }

    /// Secures every channel of the mesh with `security`.
    #[must_use]
    pub fn with_security(mut self, security: MeshSecurity) -> Self {
        self.security = Some(security);
        self
    }

    /// Sets the session id.
    #[must_use]
    pub fn with_session_id(mut self, session_id: [u8; 16]) -> Self {
        self.session_id = session_id;
        self
    }

    /// Sets the channel configuration.
    #[must_use]
    pub fn with_channel(mut self, channel: ChannelConfig) -> Self {
        self.channel = channel;
        self
    }

    /// Seeds the party's generator (tests; never reuse a seed in earnest).
    #[must_use]
    pub fn with_seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the party count, index, degree and frame limit.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`].
    pub fn validate(&self) -> Result<(), MpcError> {
        let n = self.parties.len();
        let bad = |s: String| Err(MpcError::InvalidArgument(s));
        if !(2..=MAX_PARTIES.min(MAX_SHARES)).contains(&n) {
            return bad(format!("{n} parties (2..={MAX_PARTIES})"));
        }
        if self.index >= n {
            return bad(format!("party index {} out of range 0..{n}", self.index));
        }
        if n < 2 * self.threshold + 1 {
            return bad(format!(
                "{n} parties cannot multiply at degree {} (need n ≥ 2t + 1)",
                self.threshold
            ));
        }
        if self.channel.max_frame < 1024 {
            return bad("frame limit below 1024 bytes".into());
        }
        if let Some(sec) = &self.security {
            if sec.keys.len() != n {
                return bad(format!("{} public keys for {n} parties", sec.keys.len()));
            }
            if sec.keys[self.index] != sec.identity.public() {
                return bad("this party's identity is not the key listed at its index".into());
            }
        }
        Ok(())
    }
}

/// This party's shares of a vector of secret field elements. Zeroized on drop; `==` compares
/// in constant time (the length is public); `Debug` shows the length only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedVec {
    values: Vec<M61>,
}

impl std::fmt::Debug for SharedVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedVec")
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for SharedVec {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.values[..], &other.values[..]).into()
    }
}

impl Eq for SharedVec {}

impl SharedVec {
    /// Wraps share values (for callers that obtained shares elsewhere).
    pub fn from_shares(values: Vec<M61>) -> Self {
        SharedVec { values }
    }

    /// This party's share values.
    pub fn shares(&self) -> &[M61] {
        &self.values
    }

    /// Number of shared elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Elements `range` as a new shared vector.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the range is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<SharedVec, MpcError> {
        self.values
            .get(range)
            .map(|v| SharedVec { values: v.to_vec() })
            .ok_or_else(|| MpcError::InvalidArgument("slice out of bounds".into()))
    }
}

/// Communication of one operation at this party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// The operation: `"input"`, `"mul"`, `"inner_products"`, `"open"`, `"open_to"`.
    pub op: &'static str,
    /// Number of field elements the operation produced.
    pub elements: usize,
    /// Communication rounds of the operation (1 for each of the above).
    pub rounds: u32,
    /// Channel counters summed over all peers for this operation.
    pub stats: Stats,
}

/// One party of the n-party protocol, connected to every other party.
///
/// All parties must call the same operations in the same order with the same public arguments
/// (lengths, owners); each operation is tagged and numbered on the wire, so a divergence is
/// reported as [`MpcError::Malformed`] rather than misread.
pub struct Party {
    core: Bgw,
    peers: Vec<Option<Channel>>,
    log: Vec<OpRecord>,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

fn invalid(s: impl Into<String>) -> MpcError {
    MpcError::InvalidArgument(s.into())
}

impl Party {
    /// A party over established channels: `peers[j]` is the channel to party `j`, `None` at
    /// this party's own index.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the configuration is invalid or a channel is missing.
    pub fn from_channels(
        config: PartyConfig,
        peers: Vec<Option<Channel>>,
    ) -> Result<Self, MpcError> {
        config.validate()?;
        let n = config.parties.len();
        if peers.len() != n
            || peers
                .iter()
                .enumerate()
                .any(|(j, p)| p.is_some() != (j != config.index))
        {
            return Err(invalid("one channel per other party is required"));
        }
        Ok(Party {
            core: Bgw::new(config.index, n, config.threshold, config.seed)?,
            peers,
            log: Vec::new(),
        })
    }

    /// `n` parties connected by in-memory channels (single process), for tests.
    ///
    /// # Errors
    ///
    /// As [`from_channels`](Self::from_channels).
    pub fn memory_mesh(
        n: usize,
        threshold: usize,
        channel: ChannelConfig,
        seeds: Option<Vec<[u8; 32]>>,
    ) -> Result<Vec<Party>, MpcError> {
        let mut grid: Vec<Vec<Option<Channel>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for i in 0..n {
            for j in i + 1..n {
                let (a, b) = Channel::memory_pair(channel);
                grid[i][j] = Some(a);
                grid[j][i] = Some(b);
            }
        }
        let addrs: Vec<SocketAddr> = (0..n).map(|_| ([127, 0, 0, 1], 0).into()).collect();
        grid.into_iter()
            .enumerate()
            .map(|(i, peers)| {
                let mut c = PartyConfig::new(i, addrs.clone(), threshold).with_channel(channel);
                if let Some(s) = &seeds {
                    c = c.with_seed(s.get(i).copied().unwrap_or([i as u8; 32]));
                }
                Party::from_channels(c, peers)
            })
            .collect()
    }

    /// This party's index.
    pub fn index(&self) -> usize {
        self.core.index()
    }

    /// Number of parties.
    pub fn parties(&self) -> usize {
        self.core.parties()
    }

    /// Sharing degree `t`.
    pub fn threshold(&self) -> usize {
        self.core.threshold()
    }

    /// Channel counters summed over all peers.
    pub fn stats(&self) -> Stats {
        self.peers.iter().flatten().fold(Stats::default(), |a, c| {
            let s = c.stats();
            Stats {
                bytes_sent: a.bytes_sent + s.bytes_sent,
                bytes_received: a.bytes_received + s.bytes_received,
                messages_sent: a.messages_sent + s.messages_sent,
                messages_received: a.messages_received + s.messages_received,
                rounds: a.rounds + s.rounds,
            }
        })
    }

    /// One record per communicating operation so far.
    pub fn op_log(&self) -> &[OpRecord] {
        &self.log
    }

    fn record(&mut self, op: &'static str, elements: usize, before: Stats) {
        let stats = self.stats().since(&before);
        self.log.push(OpRecord {
            op,
            elements,
            rounds: 1,
            stats,
        });
    }

    /// Runs one round of the core: sends `round.outgoing[j]` to every party `j` that has one
    /// and receives from every party `j` with `round.expect[j] = Some(len)` (`len = None`: any
    /// length up to [`MAX_INPUT_LEN`]). On each link the lower index sends first, so large
    /// messages cannot deadlock.
    async fn exchange(&mut self, round: &Round) -> Result<Received, MpcError> {
        let me = self.core.index();
        let (tag, seq) = (round.tag, round.seq);
        let futs: Vec<_> = self
            .peers
            .iter_mut()
            .enumerate()
            .filter_map(|(j, ch)| ch.as_mut().map(|ch| (j, ch)))
            .map(|(j, ch)| {
                let out = round.outgoing[j].as_deref();
                let exp = round.expect[j];
                async move {
                    let mut got = None;
                    if me < j {
                        send_opt(ch, j, tag, seq, out).await?;
                    }
                    if let Some(len) = exp {
                        got = Some(wire::recv_elems(ch, j, tag, seq, len, MAX_INPUT_LEN).await?);
                    }
                    if me > j {
                        send_opt(ch, j, tag, seq, out).await?;
                    }
                    Ok::<_, MpcError>((j, got))
                }
            })
            .collect();
        let results = wire::try_join_all(futs).await?;
        let mut out: Received = (0..self.core.parties()).map(|_| None).collect();
        for (j, got) in results {
            out[j] = got;
        }
        Ok(out)
    }

    /// Shares a private vector: `owner` passes `Some(values)`, every other party `None`, and all
    /// get their shares. The length is public (the owner announces it).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the owner gives no values or a non-owner gives some,
    /// and channel or message errors.
    pub async fn input(
        &mut self,
        owner: usize,
        values: Option<&[M61]>,
    ) -> Result<SharedVec, MpcError> {
        if values.is_some_and(|v| v.len() > MAX_INPUT_LEN) {
            return Err(invalid("input too long"));
        }
        let before = self.stats();
        let (round, step) = self.core.start_input(owner, values)?;
        let got = self.exchange(&round).await?;
        let result = self.core.finish_input(step, got);
        self.record("input", result.len(), before);
        Ok(result)
    }

    /// `a + b` (local).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the lengths differ.
    pub fn add(&self, a: &SharedVec, b: &SharedVec) -> Result<SharedVec, MpcError> {
        same_len(a.len(), b.len())?;
        Ok(SharedVec {
            values: a
                .values
                .iter()
                .zip(&b.values)
                .map(|(x, y)| *x + *y)
                .collect(),
        })
    }

    /// `a - b` (local).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the lengths differ.
    pub fn sub(&self, a: &SharedVec, b: &SharedVec) -> Result<SharedVec, MpcError> {
        same_len(a.len(), b.len())?;
        Ok(SharedVec {
            values: a
                .values
                .iter()
                .zip(&b.values)
                .map(|(x, y)| *x - *y)
                .collect(),
        })
    }

    /// `a + c` for a public vector `c` (local: every party adds `c` to its share).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the lengths differ.
    pub fn add_public(&self, a: &SharedVec, c: &[M61]) -> Result<SharedVec, MpcError> {
        same_len(a.len(), c.len())?;
        Ok(SharedVec {
            values: a.values.iter().zip(c).map(|(x, y)| *x + *y).collect(),
        })
    }

    /// `a ⊙ c` for a public vector `c` (local).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the lengths differ.
    pub fn mul_public(&self, a: &SharedVec, c: &[M61]) -> Result<SharedVec, MpcError> {
        same_len(a.len(), c.len())?;
        Ok(SharedVec {
            values: a.values.iter().zip(c).map(|(x, y)| *x * *y).collect(),
        })
    }

    /// `c · a` for a public scalar `c` (local).
    pub fn scale(&self, a: &SharedVec, c: M61) -> SharedVec {
        SharedVec {
            values: a.values.iter().map(|x| *x * c).collect(),
        }
    }

    /// Element-wise products `a ⊙ b`, all in one round.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the lengths differ, and channel or message errors.
    pub async fn mul(&mut self, a: &SharedVec, b: &SharedVec) -> Result<SharedVec, MpcError> {
        same_len(a.len(), b.len())?;
        let before = self.stats();
        let mut h: Vec<M61> = a
            .values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| *x * *y)
            .collect();
        let out = self.reduce_degree(&h).await;
        h.zeroize();
        let out = out?;
        self.record("mul", out.len(), before);
        Ok(out)
    }

    /// Inner products `Σ_k lhs[r]_k · rhs[r]_k` for every pair `r`, in one round, with one degree
    /// reduction per inner product.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the slices differ in number or a pair differs in
    /// length, and channel or message errors.
    pub async fn inner_products(
        &mut self,
        lhs: &[SharedVec],
        rhs: &[SharedVec],
    ) -> Result<SharedVec, MpcError> {
        same_len(lhs.len(), rhs.len())?;
        for (a, b) in lhs.iter().zip(rhs) {
            same_len(a.len(), b.len())?;
        }
        let pairs: Vec<(&[M61], &[M61])> = lhs
            .iter()
            .zip(rhs)
            .map(|(a, b)| (a.shares(), b.shares()))
            .collect();
        self.dot_products("inner_products", &pairs).await
    }

    /// Matrix-vector product: `matrix` holds `rows × x.len()` shared elements row by row.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if `matrix.len() != rows · x.len()`, and channel or
    /// message errors.
    pub async fn matvec(
        &mut self,
        matrix: &SharedVec,
        rows: usize,
        x: &SharedVec,
    ) -> Result<SharedVec, MpcError> {
        let cols = x.len();
        if rows.checked_mul(cols) != Some(matrix.len()) {
            return Err(invalid(format!(
                "matrix of {} elements is not {rows} × {cols}",
                matrix.len()
            )));
        }
        let pairs: Vec<(&[M61], &[M61])> = if cols == 0 {
            (0..rows).map(|_| (&[][..], &[][..])).collect()
        } else {
            matrix
                .values
                .chunks(cols)
                .map(|row| (row, x.shares()))
                .collect()
        };
        self.dot_products("inner_products", &pairs).await
    }

    async fn dot_products(
        &mut self,
        op: &'static str,
        pairs: &[(&[M61], &[M61])],
    ) -> Result<SharedVec, MpcError> {
        let before = self.stats();
        let mut h: Vec<M61> = pairs.iter().map(|(a, b)| local_dot(a, b)).collect();
        let out = self.reduce_degree(&h).await;
        h.zeroize();
        let out = out?;
        self.record(op, out.len(), before);
        Ok(out)
    }

    /// Gennaro-Rabin-Rabin degree reduction of local degree-`2t` shares `h`.
    async fn reduce_degree(&mut self, h: &[M61]) -> Result<SharedVec, MpcError> {
        let (round, step) = self.core.start_reduce(h)?;
        let got = self.exchange(&round).await?;
        self.core.finish_reduce(step, got)
    }

    /// Opens `a` to every party.
    ///
    /// # Errors
    ///
    /// [`MpcError::Inconsistent`] if the shares do not lie on one degree-`t` polynomial (naming
    /// the deviating parties' share indices, party index + 1, where decoding can tell), and
    /// channel or message errors.
    pub async fn open(&mut self, a: &SharedVec) -> Result<Vec<M61>, MpcError> {
        let before = self.stats();
        let (round, step) = self.core.start_open(a, None)?;
        let got = self.exchange(&round).await?;
        let out = self.core.finish_open(step, got)?.unwrap_or_default();
        self.record("open", out.len(), before);
        Ok(out)
    }

    /// Opens `a` to party `target` only: it gets `Some(values)`, the others `None`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), plus [`MpcError::InvalidArgument`] for a bad target.
    pub async fn open_to(
        &mut self,
        a: &SharedVec,
        target: usize,
    ) -> Result<Option<Vec<M61>>, MpcError> {
        let before = self.stats();
        let (round, step) = self.core.start_open(a, Some(target))?;
        let got = self.exchange(&round).await?;
        let out = self.core.finish_open(step, got)?;
        self.record("open_to", a.len(), before);
        Ok(out)
    }

    /// Ends the session: a last empty message each way on every link (so no party closes while
    /// another still reads), then every channel is flushed and closed.
    ///
    /// # Errors
    ///
    /// Channel errors, or [`MpcError::Malformed`] if a peer is at another point of the protocol.
    pub async fn finish(mut self) -> Result<(), MpcError> {
        let round = self.core.bye();
        self.exchange(&round).await?;
        for (j, ch) in self.peers.drain(..).enumerate() {
            if let Some(ch) = ch {
                ch.close()
                    .await
                    .map_err(|source| MpcError::Net { peer: j, source })?;
            }
        }
        Ok(())
    }
}

async fn send_opt(
    ch: &mut Channel,
    peer: usize,
    tag: Tag,
    seq: u32,
    data: Option<&[M61]>,
) -> Result<(), MpcError> {
    if let Some(data) = data {
        wire::send_elems(ch, peer, tag, seq, data).await?;
        ch.flush()
            .await
            .map_err(|source| MpcError::Net { peer, source })?;
    }
    Ok(())
}

fn same_len(a: usize, b: usize) -> Result<(), MpcError> {
    if a == b {
        Ok(())
    } else {
        Err(invalid(format!("lengths differ: {a} and {b}")))
    }
}

/// `Σ a_k b_k` with lazy reduction (32 products per 128-bit accumulation).
fn local_dot(a: &[M61], b: &[M61]) -> M61 {
    let mut acc = M61::ZERO;
    for (ca, cb) in a.chunks(32).zip(b.chunks(32)) {
        let mut wide: u128 = 0;
        for (x, y) in ca.iter().zip(cb) {
            wide += M61::mul_wide(*x, *y);
        }
        acc += M61::reduce128(wide);
    }
    acc
}
