//! OT extension: the correlation `q_j = t_j ⊕ r_j·Δ` for any number of OTs from 128 base
//! OTs, with its columns produced one of two ways ([`Extension`]):
//!
//! - **IKNP**: Ishai, Kilian, Nissim and Petrank, "Extending oblivious transfers efficiently"
//!   (CRYPTO 2003, section 3), κ = 128, 16 bytes per OT on the wire, described below;
//! - **SoftSpokenOT** (Roy, CRYPTO 2022): the columns from small-field subspace VOLE,
//!   `16 / k` bytes per OT (4 at the default `k = 4`), described in [`crate::softspoken`].
//!
//! Everything after the columns (transposition, the three kinds of OT, the KOS check) is
//! shared.
//!
//! IKNP setup (roles reversed): the extension *sender* picks `Δ ∈ {0,1}^128` and learns, by
//! 128 random base OTs in which it is the receiver with choice bits `Δ_i`, the seed
//! `k_i^{Δ_i}` of each pair `(k_i^0, k_i^1)` the extension *receiver* holds.
//!
//! IKNP extension of `m` OTs with choice bits `r`: the receiver expands `t^i = G(k_i^0)` and
//! sends `u^i = t^i ⊕ G(k_i^1) ⊕ r` for each of the 128 columns (16 bytes per OT, the whole
//! communication); the sender computes `q^i = G(k_i^{Δ_i}) ⊕ Δ_i·u^i = t^i ⊕ Δ_i·r`. After
//! transposing, row `j` gives `q_j = t_j ⊕ r_j·Δ`:
//!
//! - **correlated OT** (what garbled circuits need): the sender holds `q_j` and `q_j ⊕ Δ`, the
//!   receiver `t_j`, the one of the two selected by `r_j`;
//! - **random OT**: both hash with `tccr(j, ·)` (Guo, Katz, Wang and Yu 2019, section 7.4), the
//!   OT index as tweak: the sender holds `H(j, q_j)` and `H(j, q_j ⊕ Δ)`, the receiver
//!   `H(j, t_j)`;
//! - **chosen-message OT**: the sender masks each message with a pad expanded from its random
//!   OT key and sends both; the receiver can unmask only the one it chose.
//!
//! **Malicious receivers.** Plain IKNP trusts the receiver to use one choice vector in all 128
//! columns; a receiver that flips bit `j` of column `i` of `u` learns, from whether its OT
//! output is right, the bit `Δ_i` (Keller, Orsini and Scholl 2015, section 1). SoftSpokenOT's
//! corrections have the same weakness, one vector per group. Both roles can
//! be switched to the KOS consistency check ([`crate::kos`], [`OtSender::with_kos_check`],
//! [`OtReceiver::with_kos_check`]): every call then carries [`crate::kos::PAD_OTS`] or a few
//! more extra OTs and two
//! more messages (the sender's hash key after the columns, the receiver's 48-byte answer), and
//! a receiver that deviates fails with [`OtError::ConsistencyCheck`] before the sender uses any
//! output of the call. Random and chosen-message OT hash the checked rows, so the few bits of
//! `Δ` a cheating receiver may guess without being caught do not reveal the other message.
//!
//! `G` is AES-CTR under the seed ([`crate::prg`]), transposition is [`crate::transpose`].
//! The math lives in the synchronous `*_core` functions; the async methods only move their
//! bytes over a [`Channel`], in frames of at most [`CHUNK_OTS`] OTs, so the receiver streams
//! while the sender works.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use subtle::ConstantTimeEq;
use veil_net::Channel;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aes_hash::fixed_key_aes;
use crate::base::{BaseOtReceiver, BaseOtSender, ChouOrlandi};
use crate::block::{pack_bits_blocks, Block};
use crate::error::OtError;
use crate::kos::{ColumnDigest, ANSWER_BYTES};
use crate::prg::AesPrg;
use crate::softspoken::{self, ReceiverLeaves, SenderLeaves};
use crate::transpose::transpose_gather;

/// How the columns of the extension matrix are made. Both parties must pick the same; a
/// mismatch ends in a malformed-message error at setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// IKNP: 16 bytes per OT, the least computation (one AES block per OT at the sender, two
    /// at the receiver).
    Iknp,
    /// SoftSpokenOT with groups of `k` columns (1, 2, 4 or 8): `16 / k` bytes per OT and
    /// `2^k / k` AES blocks per OT at each party.
    SoftSpoken {
        /// Columns per group.
        k: usize,
    },
}

impl Default for Extension {
    /// SoftSpokenOT with `k = 4`: 4 bytes per OT.
    fn default() -> Self {
        Extension::SoftSpoken {
            k: softspoken::DEFAULT_K,
        }
    }
}

impl Extension {
    /// Bytes sent per 128 OTs (one block per column or per group).
    pub fn frame_blocks_per_128(self) -> usize {
        match self {
            Extension::Iknp => KAPPA,
            Extension::SoftSpoken { k } => softspoken::groups(k),
        }
    }

    /// Bytes on the wire per OT (before the KOS check's padding).
    pub fn bytes_per_ot(self) -> f64 {
        (self.frame_blocks_per_128() * Block::BYTES) as f64 / 128.0
    }

    /// Blocks sent per 128 OTs, with the receiver's choice bits given or random
    /// (SoftSpokenOT's first group then sends nothing).
    fn frame_units(self, random: bool) -> usize {
        match self {
            Extension::Iknp => KAPPA,
            Extension::SoftSpoken { k } => softspoken::groups(k) - usize::from(random),
        }
    }

    fn check(self) -> Result<(), OtError> {
        match self {
            Extension::Iknp => Ok(()),
            Extension::SoftSpoken { k } => softspoken::check_k(k),
        }
    }
}

impl std::fmt::Display for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Extension::Iknp => write!(f, "IKNP"),
            Extension::SoftSpoken { k } => write!(f, "SoftSpokenOT k={k}"),
        }
    }
}

/// The receiver's choice bits for one call.
enum Choices<'a> {
    /// Given by the caller.
    Given(&'a [bool]),
    /// `n` of them drawn by the extension, packed into the vector (padding included).
    Random(usize, &'a mut Zeroizing<Vec<Block>>),
}

impl Choices<'_> {
    fn len(&self) -> usize {
        match self {
            Choices::Given(c) => c.len(),
            Choices::Random(n, _) => *n,
        }
    }
}

/// The sender's column source.
enum SenderColumns {
    /// One seed per column, `k_i^{Δ_i}`.
    Iknp(Vec<AesPrg>),
    SoftSpoken(SenderLeaves),
}

/// The receiver's column source.
enum ReceiverColumns {
    /// Both seeds of every column.
    Iknp(Vec<[AesPrg; 2]>),
    SoftSpoken(ReceiverLeaves),
}

/// Security parameter: number of base OTs and width of each OT row.
pub const KAPPA: usize = 128;
/// OTs per frame of the extension matrix (a 256 KiB frame, which stays in the second-level
/// cache from the receiver's expansion to the sender's use).
pub const CHUNK_OTS: usize = 1 << 14;
/// Largest number of OTs in one call (a bound on what a peer can make us compute).
pub const MAX_OTS_PER_CALL: usize = 1 << 30;

const CHUNK_BLOCKS: usize = CHUNK_OTS / 128;
/// Blocks per column of a sub-chunk, the unit of work inside a frame: 2 048 OTs, whose
/// 128 columns (32 KiB) stay in the first-level cache from expansion to transposition.
pub const SUB_BLOCKS: usize = 16;

/// The extension sender: holds `Δ` and one seed per column.
///
/// Zeroized on drop: `Δ`, the seeds (as AES round keys, erased by `aes`) and the column matrix
/// `q` of the last chunk, kept as scratch so that no chunk leaves one behind.
pub struct OtSender {
    delta: Block,
    cols: SenderColumns,
    ext: Extension,
    /// Index of the next OT, the tweak of its hash.
    next_index: u128,
    /// The columns `q^i` of the chunk being extended, reused from chunk to chunk.
    scratch: Vec<Block>,
    /// The rows of a random-OT extension before hashing, reused from call to call (erased
    /// after each).
    rows: Vec<Block>,
    /// With the KOS check: the generator of the check's keys.
    check: Option<ChaCha20Rng>,
}

/// The extension receiver: holds both seeds of every column.
///
/// Zeroized on drop: the seeds (AES round keys) and the column matrix `t` of the last chunk.
pub struct OtReceiver {
    cols: ReceiverColumns,
    ext: Extension,
    next_index: u128,
    /// The columns `t^i` of the chunk being extended, reused from chunk to chunk.
    scratch: Vec<Block>,
    /// With the KOS check: the generator of the padding OTs' choice bits.
    check: Option<ChaCha20Rng>,
}

impl Zeroize for SenderColumns {
    /// Drops the generators (AES round keys zeroized by `aes`) and erases the scratch.
    fn zeroize(&mut self) {
        match self {
            SenderColumns::Iknp(prgs) => prgs.clear(),
            SenderColumns::SoftSpoken(l) => l.zeroize(),
        }
    }
}

impl Zeroize for ReceiverColumns {
    /// Drops the generators (AES round keys zeroized by `aes`) and erases the scratch.
    fn zeroize(&mut self) {
        match self {
            ReceiverColumns::Iknp(prgs) => prgs.clear(),
            ReceiverColumns::SoftSpoken(l) => l.zeroize(),
        }
    }
}

impl Zeroize for OtSender {
    /// Erases `Δ` and the column scratch, and drops the generators (whose AES round keys the
    /// `aes` crate zeroizes). The sender is unusable afterwards.
    fn zeroize(&mut self) {
        self.delta.zeroize();
        crate::block::zeroize_blocks(&mut self.scratch);
        crate::block::zeroize_blocks(&mut self.rows);
        self.cols.zeroize();
        if let Some(rng) = self.check.as_mut() {
            crate::erase_rng(rng);
        }
    }
}

impl Drop for OtSender {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for OtSender {}

impl Zeroize for OtReceiver {
    /// Erases the column scratch and drops the generators (AES round keys zeroized by `aes`).
    /// The receiver is unusable afterwards.
    fn zeroize(&mut self) {
        crate::block::zeroize_blocks(&mut self.scratch);
        self.cols.zeroize();
        if let Some(rng) = self.check.as_mut() {
            crate::erase_rng(rng);
        }
    }
}

impl Drop for OtReceiver {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for OtReceiver {}

fn check_count(n: usize) -> Result<(), OtError> {
    if n > MAX_OTS_PER_CALL {
        return Err(OtError::InvalidArgument(format!(
            "{n} OTs in one call (at most {MAX_OTS_PER_CALL})"
        )));
    }
    Ok(())
}

/// Transposes `cols` (128 columns of `nb` blocks each, column-major) into rows, appending the
/// first `take` rows to `out`.
fn columns_to_rows(cols: &[Block], nb: usize, take: usize, out: &mut Vec<Block>) {
    let mut m = [Block::ZERO; 128];
    let mut left = take;
    for b in 0..nb {
        transpose_gather(cols, nb, b, &mut m);
        let k = left.min(128);
        out.extend_from_slice(&m[..k]);
        left -= k;
    }
    crate::block::wipe_blocks(&mut m);
}

/// Where block `block` of column `col` of `u` lies in a frame of `nb` blocks per column: the
/// frame holds its sub-chunks of [`SUB_BLOCKS`] blocks one after the other, each column-major.
pub fn u_index(nb: usize, col: usize, block: usize) -> usize {
    frame_index(KAPPA, nb, col, block)
}

/// Where block `block` of unit `unit` (an IKNP column, a SoftSpokenOT group) lies in a frame
/// of `nb` blocks per unit and `per` units ([`Extension::frame_blocks_per_128`]).
pub fn frame_index(per: usize, nb: usize, unit: usize, block: usize) -> usize {
    let s = block / SUB_BLOCKS;
    let nbs = (nb - s * SUB_BLOCKS).min(SUB_BLOCKS);
    s * SUB_BLOCKS * per + unit * nbs + block % SUB_BLOCKS
}

impl OtSender {
    /// Sets up the default extension ([`Extension::default`], SoftSpokenOT) with Chou-Orlandi
    /// base OTs and a random `Δ`.
    pub async fn setup<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
    ) -> Result<Self, OtError> {
        Self::setup_extension(ch, rng, Extension::default()).await
    }

    /// Sets up the given extension with Chou-Orlandi base OTs and a random `Δ`.
    pub async fn setup_extension<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
        ext: Extension,
    ) -> Result<Self, OtError> {
        let delta = Block::random(rng);
        let mut base = ChouOrlandi::new(ChaCha20Rng::from_rng(rng));
        Self::setup_with_base(ch, &mut base, delta, ext).await
    }

    /// Sets up the default extension with Chou-Orlandi base OTs and the caller's `Δ` (a
    /// garbler passes its free-XOR offset, whose least significant bit is 1). `Δ` must be
    /// secret and uniformly random but for such public constraints.
    pub async fn setup_with_delta<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
        delta: Block,
    ) -> Result<Self, OtError> {
        let mut base = ChouOrlandi::new(ChaCha20Rng::from_rng(rng));
        Self::setup_with_base(ch, &mut base, delta, Extension::default()).await
    }

    /// Sets up with any base OT and extension.
    pub async fn setup_with_base<B: BaseOtReceiver>(
        ch: &mut Channel,
        base: &mut B,
        delta: Block,
        ext: Extension,
    ) -> Result<Self, OtError> {
        ext.check()?;
        // IKNP's sender learns seed `Δ_i` of each pair, SoftSpokenOT's the level sum of the
        // sibling of its path, `1 − Δ_i`.
        let flip = !matches!(ext, Extension::Iknp);
        let choices: Vec<bool> = (0..KAPPA).map(|i| delta.bit(i) ^ flip).collect();
        let mut seeds = base.receive_random(ch, &choices).await?;
        if seeds.len() != KAPPA {
            return Err(OtError::Malformed(format!(
                "base OT gave {} seeds",
                seeds.len()
            )));
        }
        let cols = match ext {
            Extension::Iknp => SenderColumns::Iknp(seeds.iter().map(|s| AesPrg::new(*s)).collect()),
            Extension::SoftSpoken { k } => {
                let bytes = ch.recv_bytes().await?;
                let sums = crate::block::blocks_from_bytes(&bytes).ok_or_else(|| {
                    OtError::Malformed(format!("SoftSpokenOT setup of {} bytes", bytes.len()))
                })?;
                let leaves = softspoken::sender_setup(k, delta, &seeds, &sums);
                seeds.zeroize();
                SenderColumns::SoftSpoken(leaves?)
            }
        };
        seeds.zeroize();
        Ok(OtSender {
            delta,
            cols,
            ext,
            next_index: 0,
            scratch: Vec::new(),
            rows: Vec::new(),
            check: None,
        })
    }

    /// Turns on the KOS consistency check for every later call (the receiver must do the
    /// same): a receiver that deviates is caught before any output of the call is returned.
    /// `rng` seeds the generator of the check's keys.
    #[must_use]
    pub fn with_kos_check<R: RngCore + CryptoRng>(mut self, rng: &mut R) -> Self {
        self.check = Some(ChaCha20Rng::from_rng(rng));
        self
    }

    /// Whether calls are checked against a malicious receiver.
    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    /// The correlation `Δ`.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// The extension the columns come from.
    pub fn extension(&self) -> Extension {
        self.ext
    }

    /// Computes the rows `q_j` of one chunk from the receiver's `u` columns (`128 * nb`
    /// blocks, laid out as [`u_index`] says), appending the first `take` to `out`.
    pub fn extend_core(
        &mut self,
        u: &[Block],
        nb: usize,
        take: usize,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let mut bytes = Vec::new();
        crate::block::blocks_to_bytes(u, &mut bytes);
        self.extend_bytes(&bytes, false, nb, take, out)
    }

    /// [`extend_core`](Self::extend_core) on the frame's bytes as they came off the wire
    /// (each block little-endian), read in place.
    fn extend_bytes(
        &mut self,
        u: &[u8],
        random: bool,
        nb: usize,
        take: usize,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let per = self.ext.frame_units(random);
        if u.len() != per * nb * Block::BYTES || take > 128 * nb {
            return Err(OtError::Malformed(format!(
                "extension chunk of {} bytes, expected {} for {take} OTs",
                u.len(),
                per * nb * Block::BYTES
            )));
        }
        // Every block of the scratch is overwritten below: resizing is all it needs.
        let q = &mut self.scratch;
        q.resize(KAPPA * SUB_BLOCKS.min(nb), Block::ZERO);
        let mut left = take;
        for (s, us) in u.chunks(per * SUB_BLOCKS * Block::BYTES).enumerate() {
            let nbs = (nb - s * SUB_BLOCKS).min(SUB_BLOCKS);
            match &mut self.cols {
                SenderColumns::Iknp(prgs) => {
                    for (i, prg) in prgs.iter_mut().enumerate() {
                        let col = &mut q[i * nbs..(i + 1) * nbs];
                        prg.fill(col);
                        // `Δ_i` is secret: mask instead of branching on it.
                        let mask = Block::ONES.and_bit(self.delta.bit(i));
                        let ucol = &us[i * nbs * Block::BYTES..(i + 1) * nbs * Block::BYTES];
                        col.iter_mut()
                            .zip(ucol.chunks_exact(Block::BYTES))
                            .for_each(|(c, x)| {
                                let x = Block::from_bytes(x.try_into().expect("16-byte chunk"));
                                *c ^= x & mask;
                            });
                    }
                }
                SenderColumns::SoftSpoken(leaves) => {
                    leaves.columns(us, random, nbs, &mut q[..KAPPA * nbs])
                }
            }
            let k = left.min(128 * nbs);
            columns_to_rows(&q[..KAPPA * nbs], nbs, k, out);
            left -= k;
        }
        Ok(())
    }

    /// `n` correlated OTs: returns `q_j`; the receiver gets `q_j ⊕ r_j·Δ`. With the KOS
    /// check, fails with [`OtError::ConsistencyCheck`] when the receiver deviated.
    pub async fn send_correlated(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> Result<Vec<Block>, OtError> {
        let mut out = Vec::new();
        self.send_correlated_into(ch, n, &mut out).await?;
        Ok(out)
    }

    /// [`send_correlated`](Self::send_correlated) into `out`, whose contents it replaces and
    /// whose allocation it reuses: a caller that extends again and again (a pool) touches no
    /// fresh memory. On error `out` is left empty and erased (its whole capacity).
    pub async fn send_correlated_into(
        &mut self,
        ch: &mut Channel,
        n: usize,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        self.send_cot(ch, n, false, out).await
    }

    /// [`send_correlated_into`](Self::send_correlated_into) where the receiver's choice bits
    /// are random ([`OtReceiver::receive_correlated_random_into`]).
    pub async fn send_correlated_random_into(
        &mut self,
        ch: &mut Channel,
        n: usize,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        self.send_cot(ch, n, true, out).await
    }

    async fn send_cot(
        &mut self,
        ch: &mut Channel,
        n: usize,
        random: bool,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        check_count(n)?;
        // Every row of the new contents is written before it is read; on error the whole
        // allocation is erased.
        out.clear();
        // With the check, the padding OTs follow the real ones.
        let (total, mut digest) = match self.check {
            Some(_) => (n + crate::kos::padding(n), Some(ColumnDigest::new())),
            None => (n, None),
        };
        out.reserve(total);
        let mut done = 0;
        let mut buf = Vec::new();
        while done < total {
            let take = (total - done).min(CHUNK_OTS);
            let nb = take.div_ceil(128);
            let step = async {
                ch.recv_bytes_into(&mut buf).await?;
                if let Some(d) = digest.as_mut() {
                    d.update_bytes(&buf);
                }
                self.extend_bytes(&buf, random, nb, take, out)
            };
            if let Err(e) = step.await {
                crate::block::zeroize_blocks(out);
                return Err(e);
            }
            done += take;
        }
        if let Some(d) = digest {
            let verdict = self.verify(ch, out, d).await;
            // The padding rows are the check's only; they go whatever the verdict.
            crate::block::wipe_blocks(&mut out[n..]);
            out.truncate(n);
            if let Err(e) = verdict {
                crate::block::zeroize_blocks(out);
                return Err(e);
            }
        }
        self.next_index = self.next_index.wrapping_add(n as u128);
        Ok(())
    }

    /// The sender's half of the KOS check on the rows `q` of one call (padding included):
    /// sends the hash key, reads `X`, `T` and the checksum of the columns, and compares both
    /// equations in constant time, with one error for either failure.
    async fn verify(
        &mut self,
        ch: &mut Channel,
        q: &[Block],
        digest: ColumnDigest,
    ) -> Result<(), OtError> {
        let rng = self
            .check
            .as_mut()
            .ok_or_else(|| OtError::InvalidArgument("no check configured".into()))?;
        let key = Block::random(rng);
        ch.send_bytes(&key.to_bytes()).await?;
        ch.flush().await?;
        // Hash the rows while the receiver hashes its own.
        let q_hash = crate::kos::rows_hash(key, q);
        let answer = ch.recv_bytes().await?;
        let fields = crate::block::blocks_from_bytes(&answer)
            .filter(|_| answer.len() == ANSWER_BYTES)
            .ok_or_else(|| {
                OtError::Malformed(format!(
                    "consistency answer of {} bytes, expected {ANSWER_BYTES}",
                    answer.len()
                ))
            })?;
        let (x, t, d) = (fields[0], fields[1], fields[2]);
        let lhs = q_hash ^ t;
        let rhs = crate::kos::dot(self.delta, x);
        let ok = lhs.ct_eq(&rhs) & d.ct_eq(&digest.finalize());
        if bool::from(ok) {
            Ok(())
        } else {
            Err(OtError::ConsistencyCheck)
        }
    }

    /// `n` random OTs: returns the pairs `(H(j, q_j), H(j, q_j ⊕ Δ))`.
    pub async fn send_random(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> Result<Vec<[Block; 2]>, OtError> {
        let mut out = Vec::new();
        self.send_random_into(ch, n, &mut out).await?;
        Ok(out)
    }

    /// [`send_random`](Self::send_random) into `out`, whose contents it replaces and whose
    /// allocation it reuses (as does the correlated scratch `q`, the rows before hashing). On
    /// error both are left empty and erased.
    pub async fn send_random_into(
        &mut self,
        ch: &mut Channel,
        n: usize,
        out: &mut Vec<[Block; 2]>,
    ) -> Result<(), OtError> {
        self.send_rot(ch, n, false, out).await
    }

    /// [`send_random_into`](Self::send_random_into) where the receiver's choice bits are
    /// random ([`OtReceiver::receive_random_choices_into`]): what GMW's triples need, and, on
    /// SoftSpokenOT, one group fewer on the wire (31 bits per OT at `k = 4`).
    pub async fn send_random_choices_into(
        &mut self,
        ch: &mut Channel,
        n: usize,
        out: &mut Vec<[Block; 2]>,
    ) -> Result<(), OtError> {
        self.send_rot(ch, n, true, out).await
    }

    async fn send_rot(
        &mut self,
        ch: &mut Channel,
        n: usize,
        random: bool,
        out: &mut Vec<[Block; 2]>,
    ) -> Result<(), OtError> {
        let first = self.next_index;
        out.clear();
        let mut q = std::mem::take(&mut self.rows);
        let result = self.send_cot(ch, n, random, &mut q).await;
        if result.is_ok() {
            self.hash_pairs_into(first, &q, out);
        }
        crate::block::wipe_blocks(&mut q);
        q.clear();
        self.rows = q;
        result
    }

    /// Hashes the rows into key pairs; the intermediate rows are erased, only the returned
    /// pairs (the caller's) remain.
    /// The random-OT keys `(H(j, q_j), H(j, q_j ⊕ Δ))`, hashed in batches that stay in the
    /// first-level cache (both keys of a batch in one pass of the wide AES).
    fn hash_pairs_into(&self, first: u128, q: &[Block], out: &mut Vec<[Block; 2]>) {
        const BATCH: usize = 256;
        let mut xs = Zeroizing::new([Block::ZERO; 2 * BATCH]);
        let mut tw = [Block::ZERO; 2 * BATCH];
        out.reserve(q.len());
        for (c, rows) in q.chunks(BATCH).enumerate() {
            let k = rows.len();
            let base = first.wrapping_add((c * BATCH) as u128);
            for (j, row) in rows.iter().enumerate() {
                xs[2 * j] = *row;
                xs[2 * j + 1] = *row ^ self.delta;
                let t = Block(base.wrapping_add(j as u128));
                tw[2 * j] = t;
                tw[2 * j + 1] = t;
            }
            fixed_key_aes().tccr_many(&tw[..2 * k], &mut xs[..2 * k]);
            out.extend(xs[..2 * k].chunks_exact(2).map(|p| [p[0], p[1]]));
        }
    }

    /// Chosen-message OT: the receiver learns `msgs[j].0` or `msgs[j].1` by its choice bit.
    /// The two messages of a pair must have the same length; lengths are public.
    pub async fn send_chosen(
        &mut self,
        ch: &mut Channel,
        msgs: &[(&[u8], &[u8])],
    ) -> Result<(), OtError> {
        let keys = Zeroizing::new(self.send_random(ch, msgs.len()).await?);
        let first = self.next_index - msgs.len() as u128;
        for frame in chosen_frames(msgs)? {
            let payload = encrypt_chosen_core(
                &keys[frame.clone()],
                first + frame.start as u128,
                &msgs[frame],
            );
            ch.send_bytes(&payload).await?;
        }
        ch.flush().await?;
        Ok(())
    }
}

/// Reads one 16-byte frame.
async fn recv_block(ch: &mut Channel, what: &str) -> Result<Block, OtError> {
    let bytes = ch.recv_bytes().await?;
    let arr: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| OtError::Malformed(format!("{what} of {} bytes", bytes.len())))?;
    Ok(Block::from_bytes(arr))
}

/// Splits chosen-message OTs into frames of at most about 8 MiB of payload.
fn chosen_frames(msgs: &[(&[u8], &[u8])]) -> Result<Vec<std::ops::Range<usize>>, OtError> {
    const FRAME_BYTES: usize = 8 << 20;
    let mut frames = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (j, (m0, m1)) in msgs.iter().enumerate() {
        if m0.len() != m1.len() {
            return Err(OtError::InvalidArgument(format!(
                "chosen OT {j}: messages of {} and {} bytes (a pair must have one length)",
                m0.len(),
                m1.len()
            )));
        }
        if m0.len() > u32::MAX as usize / 4 {
            return Err(OtError::InvalidArgument(format!(
                "chosen OT {j}: message too long"
            )));
        }
        let cost = 4 + 2 * m0.len();
        if j > start && bytes + cost > FRAME_BYTES {
            frames.push(start..j);
            start = j;
            bytes = 0;
        }
        bytes += cost;
    }
    if start < msgs.len() {
        frames.push(start..msgs.len());
    }
    Ok(frames)
}

/// The pad of chosen-message OT `index` under random-OT key `key`, `len` bytes: the key
/// itself for up to 16 bytes, else the output of ChaCha20 keyed by key and index. The pad is
/// erased when dropped.
fn pad(key: Block, index: u128, len: usize) -> Zeroizing<Vec<u8>> {
    if len <= 16 {
        return Zeroizing::new(key.to_bytes()[..len].to_vec());
    }
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&key.to_bytes());
    seed[16..].copy_from_slice(&index.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    let mut out = Zeroizing::new(vec![0u8; len]);
    rng.fill_bytes(&mut out);
    crate::erase_rng(&mut rng);
    out
}

/// The sender's frame for chosen-message OTs `first ..`: each pair's length (u32 LE), then
/// for each pair `m0 ⊕ pad(k0)` and `m1 ⊕ pad(k1)`.
pub fn encrypt_chosen_core(keys: &[[Block; 2]], first: u128, msgs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(msgs.len() as u32).to_le_bytes());
    for (m0, _) in msgs {
        out.extend_from_slice(&(m0.len() as u32).to_le_bytes());
    }
    for (j, ((m0, m1), k)) in msgs.iter().zip(keys).enumerate() {
        let idx = first + j as u128;
        for (m, key) in [(m0, k[0]), (m1, k[1])] {
            let p = pad(key, idx, m.len());
            out.extend(m.iter().zip(p.iter()).map(|(a, b)| a ^ b));
        }
    }
    out
}

/// The receiver's side of [`encrypt_chosen_core`]: unmasks the chosen message of each pair.
pub fn decrypt_chosen_core(
    keys: &[Block],
    choices: &[bool],
    first: u128,
    frame: &[u8],
) -> Result<Vec<Vec<u8>>, OtError> {
    let bad = |what: String| OtError::Malformed(format!("chosen OT frame: {what}"));
    let count_bytes = frame
        .get(..4)
        .ok_or_else(|| bad("truncated count".into()))?;
    let count = u32::from_le_bytes([
        count_bytes[0],
        count_bytes[1],
        count_bytes[2],
        count_bytes[3],
    ]) as usize;
    if count != keys.len() || count != choices.len() {
        return Err(bad(format!("{count} OTs, expected {}", keys.len())));
    }
    let lens_end = 4 + 4 * count;
    let lens_bytes = frame
        .get(4..lens_end)
        .ok_or_else(|| bad("truncated lengths".into()))?;
    let lens: Vec<usize> = lens_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let total: u128 = lens.iter().map(|&l| 2 * l as u128).sum();
    if total != (frame.len() - lens_end) as u128 {
        return Err(bad(format!(
            "{} payload bytes for messages totalling {total}",
            frame.len() - lens_end
        )));
    }
    let mut pos = lens_end;
    let mut out = Vec::with_capacity(count);
    for (j, &len) in lens.iter().enumerate() {
        // The choice bit is secret: read both ciphertexts and select with a mask rather than
        // indexing by it.
        let mask = 0u8.wrapping_sub(u8::from(choices[j]));
        let (c0, c1) = frame[pos..pos + 2 * len].split_at(len);
        let p = pad(keys[j], first + j as u128, len);
        out.push(
            c0.iter()
                .zip(c1)
                .zip(p.iter())
                .map(|((a, b), k)| ((a & !mask) | (b & mask)) ^ k)
                .collect(),
        );
        pos += 2 * len;
    }
    Ok(out)
}

impl OtReceiver {
    /// Sets up the default extension ([`Extension::default`], SoftSpokenOT) with Chou-Orlandi
    /// base OTs.
    pub async fn setup<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
    ) -> Result<Self, OtError> {
        Self::setup_extension(ch, rng, Extension::default()).await
    }

    /// Sets up the given extension with Chou-Orlandi base OTs.
    pub async fn setup_extension<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
        ext: Extension,
    ) -> Result<Self, OtError> {
        let mut base = ChouOrlandi::new(ChaCha20Rng::from_rng(rng));
        Self::setup_with_base(ch, &mut base, rng, ext).await
    }

    /// Sets up with any base OT and extension; `rng` draws SoftSpokenOT's tree roots.
    pub async fn setup_with_base<B: BaseOtSender, R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        base: &mut B,
        rng: &mut R,
        ext: Extension,
    ) -> Result<Self, OtError> {
        ext.check()?;
        let mut pairs = base.send_random(ch, KAPPA).await?;
        if pairs.len() != KAPPA {
            return Err(OtError::Malformed(format!(
                "base OT gave {} pairs",
                pairs.len()
            )));
        }
        let cols = match ext {
            Extension::Iknp => ReceiverColumns::Iknp(
                pairs
                    .iter()
                    .map(|[a, b]| [AesPrg::new(*a), AesPrg::new(*b)])
                    .collect(),
            ),
            Extension::SoftSpoken { k } => {
                let mut roots: Vec<Block> = (0..softspoken::groups(k))
                    .map(|_| Block::random(rng))
                    .collect();
                let (leaves, sums) = softspoken::receiver_setup(k, &pairs, &roots);
                roots.zeroize();
                let mut bytes = Vec::with_capacity(sums.len() * Block::BYTES);
                crate::block::blocks_to_bytes(&sums, &mut bytes);
                ch.send_bytes(&bytes).await?;
                ch.flush().await?;
                ReceiverColumns::SoftSpoken(leaves)
            }
        };
        pairs.iter_mut().for_each(|p| p.zeroize());
        Ok(OtReceiver {
            cols,
            ext,
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        })
    }

    /// Turns on the KOS consistency check for every later call (the sender must do the same).
    /// `rng` seeds the generator of the padding OTs' choice bits.
    #[must_use]
    pub fn with_kos_check<R: RngCore + CryptoRng>(mut self, rng: &mut R) -> Self {
        self.check = Some(ChaCha20Rng::from_rng(rng));
        self
    }

    /// Whether calls carry the consistency check.
    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    /// The extension the columns come from.
    pub fn extension(&self) -> Extension {
        self.ext
    }

    /// Computes one chunk: the `u` columns to send (`128 * nb` blocks, laid out as [`u_index`]
    /// says: sub-chunks of [`SUB_BLOCKS`] blocks, each column-major) and the
    /// receiver's rows `t_j`, the first `take` of which are appended to `out`.
    pub fn extend_core(
        &mut self,
        r: &[Block],
        take: usize,
        u: &mut Vec<Block>,
        out: &mut Vec<Block>,
    ) {
        let mut bytes = Vec::new();
        let mut r = r.to_vec();
        self.extend_bytes(&mut r, false, take, &mut bytes, out);
        u.clear();
        u.extend(
            bytes
                .chunks_exact(Block::BYTES)
                .map(|c| Block::from_bytes(c.try_into().expect("16-byte chunk"))),
        );
    }

    /// [`extend_core`](Self::extend_core) writing `u` as the bytes of its frame, appended to
    /// `frame`.
    /// With `random` the choice bits are drawn here, into `r`, where the extension allows
    /// (SoftSpokenOT; IKNP's caller draws them).
    fn extend_bytes(
        &mut self,
        r: &mut [Block],
        random: bool,
        take: usize,
        frame: &mut Vec<u8>,
        out: &mut Vec<Block>,
    ) {
        let nb = r.len();
        let start = frame.len();
        let per = self.ext.frame_units(random);
        frame.resize(start + per * nb * Block::BYTES, 0);
        // Every block of the scratch is overwritten below: resizing is all it needs. The
        // scratch holds `t` and then `G(k_i^1)` for one sub-chunk.
        let scratch = &mut self.scratch;
        scratch.resize(2 * KAPPA * SUB_BLOCKS.min(nb), Block::ZERO);
        let (t, g) = scratch.split_at_mut(KAPPA * SUB_BLOCKS.min(nb));
        let mut left = take;
        let mut at = start;
        for rs in r.chunks_mut(SUB_BLOCKS) {
            let nbs = rs.len();
            let sub = &mut frame[at..at + per * nbs * Block::BYTES];
            at += sub.len();
            match &mut self.cols {
                ReceiverColumns::Iknp(prgs) => {
                    let mut bytes = sub.chunks_exact_mut(Block::BYTES);
                    for (i, [p0, p1]) in prgs.iter_mut().enumerate() {
                        let tc = &mut t[i * nbs..(i + 1) * nbs];
                        let gc = &mut g[i * nbs..(i + 1) * nbs];
                        p0.fill(tc);
                        p1.fill(gc);
                        for ((x, y), c) in gc.iter().zip(tc.iter()).zip(rs.iter()) {
                            let dst = bytes.next().expect("the frame holds 128 * nb blocks");
                            dst.copy_from_slice(&(*x ^ *y ^ *c).to_bytes());
                        }
                    }
                }
                ReceiverColumns::SoftSpoken(leaves) => {
                    leaves.columns(rs, random, &mut t[..KAPPA * nbs], sub)
                }
            }
            let k = left.min(128 * nbs);
            columns_to_rows(&t[..KAPPA * nbs], nbs, k, out);
            left -= k;
        }
    }

    /// Correlated OTs with the given choice bits: returns `t_j = q_j ⊕ r_j·Δ`.
    pub async fn receive_correlated(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let mut out = Vec::new();
        self.receive_correlated_into(ch, choices, &mut out).await?;
        Ok(out)
    }

    /// [`receive_correlated`](Self::receive_correlated) into `out`, whose contents it replaces
    /// and whose allocation it reuses. On error `out` is left empty and erased.
    pub async fn receive_correlated_into(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        self.receive_cot(ch, Choices::Given(choices), out).await
    }

    /// `n` correlated OTs with random choice bits, appended to `choices` (whose contents it
    /// replaces): on SoftSpokenOT they are the first group's VOLE output, which that group
    /// then need not correct (one group fewer on the wire); IKNP draws them from `rng`. The
    /// sender calls [`OtSender::send_correlated_random_into`].
    pub async fn receive_correlated_random_into<R: RngCore + CryptoRng>(
        &mut self,
        ch: &mut Channel,
        n: usize,
        rng: &mut R,
        choices: &mut Vec<bool>,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        choices.zeroize();
        choices.clear();
        let r = match self.ext {
            Extension::Iknp => {
                choices.extend((0..n).map(|_| rng.next_u32() & 1 == 1));
                return self.receive_cot(ch, Choices::Given(choices), out).await;
            }
            Extension::SoftSpoken { .. } => {
                let mut r = Zeroizing::new(Vec::new());
                self.receive_cot(ch, Choices::Random(n, &mut r), out)
                    .await?;
                r
            }
        };
        choices.extend((0..n).map(|j| r[j / 128].bit(j % 128)));
        Ok(())
    }

    async fn receive_cot(
        &mut self,
        ch: &mut Channel,
        choices: Choices<'_>,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let n = choices.len();
        check_count(n)?;
        out.clear();
        let result = self.receive_correlated_inner(ch, choices, out).await;
        if result.is_err() {
            crate::block::zeroize_blocks(out);
        }
        result
    }

    async fn receive_correlated_inner(
        &mut self,
        ch: &mut Channel,
        choices: Choices<'_>,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let n = choices.len();
        let pad = match self.check {
            Some(_) => crate::kos::padding(n),
            None => 0,
        };
        let total = n + pad;
        let mut digest = self.check.as_ref().map(|_| ColumnDigest::new());
        let (mut r, random) = match &choices {
            Choices::Given(given) => {
                let mut all = Vec::with_capacity(total);
                all.extend_from_slice(given);
                if let Some(rng) = self.check.as_mut() {
                    all.extend((0..pad).map(|_| rng.next_u32() & 1 == 1));
                }
                let r = pack_bits_blocks(&all);
                all.zeroize();
                (Zeroizing::new(r), false)
            }
            Choices::Random(..) => (Zeroizing::new(vec![Block::ZERO; total.div_ceil(128)]), true),
        };
        out.reserve(total);
        for (c, rc) in r.chunks_mut(CHUNK_BLOCKS).enumerate() {
            let take = (total - c * CHUNK_OTS).min(CHUNK_OTS);
            // The frame is handed to the channel whole: in memory it moves to the peer as is.
            let mut frame = Vec::new();
            self.extend_bytes(rc, random, take, &mut frame, out);
            if let Some(d) = digest.as_mut() {
                d.update_bytes(&frame);
            }
            ch.send_bytes_owned(frame).await?;
        }
        ch.flush().await?;
        if let Some(d) = digest {
            let key = recv_block(ch, "check key").await?;
            let x = crate::kos::choices_hash(key, &r, total);
            let t = crate::kos::rows_hash(key, out);
            let mut answer = Vec::with_capacity(ANSWER_BYTES);
            crate::block::blocks_to_bytes(&[x, t, d.finalize()], &mut answer);
            ch.send_bytes(&answer).await?;
            ch.flush().await?;
            crate::block::wipe_blocks(&mut out[n..]);
            out.truncate(n);
        }
        if let Choices::Random(_, keep) = choices {
            keep.clear();
            keep.extend_from_slice(&r);
        }
        self.next_index = self.next_index.wrapping_add(n as u128);
        Ok(())
    }

    /// Random OTs: returns `H(j, t_j)`, equal to the sender's key selected by the choice bit.
    pub async fn receive_random(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let mut out = Vec::new();
        self.receive_random_into(ch, choices, &mut out).await?;
        Ok(out)
    }

    /// [`receive_random`](Self::receive_random) into `out`, whose contents it replaces and
    /// whose allocation it reuses. On error `out` is left empty and erased.
    pub async fn receive_random_into(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let first = self.next_index;
        self.receive_correlated_into(ch, choices, out).await?;
        fixed_key_aes().tccr_many_seq(first, out);
        Ok(())
    }

    /// `n` random OTs with random choice bits, written to `choices`: returns `H(j, t_j)`. The
    /// sender calls [`OtSender::send_random_choices_into`]; see
    /// [`receive_correlated_random_into`](Self::receive_correlated_random_into).
    pub async fn receive_random_choices_into<R: RngCore + CryptoRng>(
        &mut self,
        ch: &mut Channel,
        n: usize,
        rng: &mut R,
        choices: &mut Vec<bool>,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        let first = self.next_index;
        self.receive_correlated_random_into(ch, n, rng, choices, out)
            .await?;
        fixed_key_aes().tccr_many_seq(first, out);
        Ok(())
    }

    /// Chosen-message OT: returns the chosen message of each pair.
    pub async fn receive_chosen(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Vec<u8>>, OtError> {
        let first = self.next_index;
        let keys = Zeroizing::new(self.receive_random(ch, choices).await?);
        let mut out = Vec::with_capacity(choices.len());
        while out.len() < choices.len() {
            let frame = ch.recv_bytes().await?;
            let at = out.len();
            let count = frame
                .get(..4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                .ok_or_else(|| OtError::Malformed("chosen OT frame: truncated count".into()))?;
            if count == 0 || count > choices.len() - at {
                return Err(OtError::Malformed(format!(
                    "chosen OT frame of {count} OTs, {} expected",
                    choices.len() - at
                )));
            }
            let end = at + count;
            out.extend(decrypt_chosen_core(
                &keys[at..end],
                &choices[at..end],
                first + at as u128,
                &frame,
            )?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::ZeroizeOnDrop;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    /// A sender and a receiver wired by hand (as base OTs with choice bits `Δ_i` would leave
    /// them), so that the synchronous cores run without a channel.
    fn pair(delta: Block) -> (OtSender, OtReceiver) {
        let seeds: Vec<[Block; 2]> = (0..KAPPA as u128)
            .map(|i| [Block(2 * i + 1), Block(2 * i + 2)])
            .collect();
        let sender = OtSender {
            delta,
            cols: SenderColumns::Iknp(
                (0..KAPPA)
                    .map(|i| AesPrg::new(seeds[i][usize::from(delta.bit(i))]))
                    .collect(),
            ),
            ext: Extension::Iknp,
            next_index: 0,
            scratch: Vec::new(),
            rows: Vec::new(),
            check: None,
        };
        let receiver = OtReceiver {
            cols: ReceiverColumns::Iknp(
                seeds
                    .iter()
                    .map(|[a, b]| [AesPrg::new(*a), AesPrg::new(*b)])
                    .collect(),
            ),
            ext: Extension::Iknp,
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        };
        (sender, receiver)
    }

    #[test]
    fn zeroize_erases_delta_seeds_and_row_matrices() {
        assert_zeroize_on_drop::<OtSender>();
        assert_zeroize_on_drop::<OtReceiver>();
        assert_zeroize_on_drop::<AesPrg>();
        let delta = Block(0x0123_4567_89ab_cdef_fedc_ba98_7654_3211);
        let (mut sender, mut receiver) = pair(delta);
        let choices: Vec<bool> = (0..300).map(|k| k % 3 == 1).collect();
        let r = pack_bits_blocks(&choices);
        let (mut u, mut t, mut q) = (Vec::new(), Vec::new(), Vec::new());
        receiver.extend_core(&r, choices.len(), &mut u, &mut t);
        sender
            .extend_core(&u, r.len(), choices.len(), &mut q)
            .unwrap();
        for j in 0..choices.len() {
            assert_eq!(t[j], q[j] ^ delta.and_bit(choices[j]));
        }
        // The column matrices of the chunk are held, secret, until the owner goes.
        assert!(sender.scratch.iter().any(|b| *b != Block::ZERO));
        assert!(receiver.scratch.iter().any(|b| *b != Block::ZERO));

        // What `Drop` runs.
        sender.zeroize();
        receiver.zeroize();
        assert_eq!(sender.delta, Block::ZERO);
        assert!(sender.scratch.is_empty());
        assert!(matches!(&sender.cols, SenderColumns::Iknp(p) if p.is_empty()));
        assert!(receiver.scratch.is_empty());
        assert!(matches!(&receiver.cols, ReceiverColumns::Iknp(p) if p.is_empty()));
    }
}
